//! The gRPC client of one external scaler: a lazily connected HTTP/2 channel whose connector
//! dials through the egress policy (`scalerAddress`) and, when configured, wraps the stream in
//! rustls (ALPN `h2`); unary calls bounded by a deadline and a message size cap, and the
//! `StreamIsActive` server stream.

use std::error::Error as _;
use std::io;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::Uri;
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tonic::client::Grpc;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};
use tonic_prost::ProstCodec;

use super::proto::{
    GET_METRIC_SPEC, GET_METRICS, GetMetricSpecResponse, GetMetricsRequest, GetMetricsResponse, IS_ACTIVE,
    IsActiveResponse, STREAM_IS_ACTIVE, ScaledObjectRef,
};
use crate::error::ScalerError;

/// Largest message accepted from an external scaler.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Bound on establishing the TCP (and TLS) connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// How to reach one external scaler.
#[derive(Clone)]
pub struct Dial {
    /// `host:port`.
    pub address: String,
    /// TLS configuration (ALPN h2 set) when the connection is encrypted.
    pub tls: Option<Arc<ClientConfig>>,
}

impl std::fmt::Debug for Dial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dial").field("address", &self.address).field("tls", &self.tls.is_some()).finish()
    }
}

async fn connect(dial: Arc<Dial>) -> io::Result<TokioIo<Box<dyn Io>>> {
    let tcp = crate::egress::connect_tcp(&dial.address, "scalerAddress").await?;
    let _ = tcp.set_nodelay(true);
    let Some(tls) = &dial.tls else { return Ok(TokioIo::new(Box::new(tcp) as Box<dyn Io>)) };
    let name = crate::kafka::wire::tls::server_name(&dial.address)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let stream = tokio_rustls::TlsConnector::from(tls.clone()).connect(name, tcp).await?;
    Ok(TokioIo::new(Box::new(stream) as Box<dyn Io>))
}

/// A client of one external scaler; the connection is made on first use and remade after
/// failures by the channel itself.
#[derive(Debug)]
pub struct Client {
    dial: Arc<Dial>,
    channel: OnceLock<Channel>,
}

impl Client {
    pub fn new(dial: Dial) -> Self {
        Self { dial: Arc::new(dial), channel: OnceLock::new() }
    }

    fn grpc(&self) -> Result<Grpc<Channel>, ScalerError> {
        let channel = match self.channel.get() {
            Some(c) => c.clone(),
            None => {
                // `http://` only names the authority: TLS, when configured, is the connector's.
                let endpoint = Endpoint::from_shared(format!("http://{}", self.dial.address))
                    .map_err(|e| ScalerError::Config(format!("scalerAddress: {e}")))?
                    .connect_timeout(CONNECT_TIMEOUT)
                    .http2_keep_alive_interval(Duration::from_secs(30))
                    .keep_alive_timeout(Duration::from_secs(10))
                    .keep_alive_while_idle(true);
                let dial = self.dial.clone();
                let connector = tower::service_fn(move |_: Uri| connect(dial.clone()));
                self.channel.get_or_init(|| endpoint.connect_with_connector_lazy(connector)).clone()
            }
        };
        Ok(Grpc::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES))
    }

    async fn unary<Req, Resp>(&self, path: &'static str, req: Req) -> Result<Resp, ScalerError>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let mut grpc = self.grpc()?;
        grpc.ready().await.map_err(|e| unavailable(&self.dial.address, &e))?;
        let codec: ProstCodec<Req, Resp> = ProstCodec::default();
        let resp = grpc
            .unary(tonic::Request::new(req), PathAndQuery::from_static(path), codec)
            .await
            .map_err(|s| status_error(&self.dial.address, path, &s))?;
        Ok(resp.into_inner())
    }

    pub async fn is_active(&self, r: &ScaledObjectRef) -> Result<bool, ScalerError> {
        let resp: IsActiveResponse = self.unary(IS_ACTIVE, r.clone()).await?;
        Ok(resp.result)
    }

    pub async fn metric_spec(&self, r: &ScaledObjectRef) -> Result<GetMetricSpecResponse, ScalerError> {
        self.unary(GET_METRIC_SPEC, r.clone()).await
    }

    pub async fn metrics(
        &self,
        r: &ScaledObjectRef,
        metric_name: &str,
    ) -> Result<GetMetricsResponse, ScalerError> {
        let req =
            GetMetricsRequest { scaled_object_ref: Some(r.clone()), metric_name: metric_name.to_owned() };
        self.unary(GET_METRICS, req).await
    }

    /// Opens `StreamIsActive`; each message is one pushed activity.
    pub async fn stream_is_active(
        &self,
        r: &ScaledObjectRef,
    ) -> Result<tonic::Streaming<IsActiveResponse>, ScalerError> {
        let mut grpc = self.grpc()?;
        grpc.ready().await.map_err(|e| unavailable(&self.dial.address, &e))?;
        let codec: ProstCodec<ScaledObjectRef, IsActiveResponse> = ProstCodec::default();
        let resp = grpc
            .server_streaming(
                tonic::Request::new(r.clone()),
                PathAndQuery::from_static(STREAM_IS_ACTIVE),
                codec,
            )
            .await
            .map_err(|s| status_error(&self.dial.address, STREAM_IS_ACTIVE, &s))?;
        Ok(resp.into_inner())
    }

    pub fn address(&self) -> &str {
        &self.dial.address
    }
}

fn unavailable(address: &str, e: &(dyn std::error::Error + 'static)) -> ScalerError {
    if let Some(d) = crate::egress::find_denied(e) {
        return ScalerError::Denied(d.to_string());
    }
    ScalerError::Unreachable(format!("external scaler {address}: {}", error_chain(e)))
}

/// The error and its sources, one line, bounded.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    super::sanitize(&out, 512)
}

/// A gRPC status as a scaler error; the server's message is sanitized and bounded.
pub fn status_error(address: &str, path: &str, s: &tonic::Status) -> ScalerError {
    let method = path.rsplit('/').next().unwrap_or(path);
    let msg = super::sanitize(s.message(), 256);
    let detail = match s.source() {
        Some(src) => format!("{msg} ({})", error_chain(src)),
        None => msg,
    };
    if let Some(d) = s.source().and_then(crate::egress::find_denied) {
        return ScalerError::Denied(d.to_string());
    }
    let text = format!("external scaler {address}: {method}: {:?}: {detail}", s.code());
    if s.source().is_some() {
        // The client's own failure (connection, TLS, HTTP/2), not an answer of the scaler.
        return ScalerError::Unreachable(text);
    }
    match s.code() {
        tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => ScalerError::Unauthorized(text),
        tonic::Code::NotFound | tonic::Code::Unimplemented => ScalerError::NotFound(text),
        tonic::Code::ResourceExhausted => ScalerError::Throttled(text),
        tonic::Code::Unavailable | tonic::Code::Cancelled | tonic::Code::DeadlineExceeded => {
            ScalerError::Unreachable(text)
        }
        _ => ScalerError::InvalidResponse(text),
    }
}
