//! The Kafka wire layer over tokio: one `Connection` per broker (TCP, optionally TLS), opened
//! with ApiVersions (every later request uses the highest version both sides speak) and SASL
//! when configured; requests are framed, correlated and decoded with `kafka-protocol`. Every
//! request sent is counted, so callers can report requests per poll.
//!
//! A broker's answers are untrusted (a tenant names the bootstrap servers): each frame is bounded
//! by what its request can produce and read only as its bytes arrive (`frame`), and walked by its
//! wire schema before decoding (`schema`), so no count or length on the wire can make the
//! process reserve more memory than the bytes it received justify.

pub mod calls;
pub mod frame;
pub mod fuzz;
pub mod msk_iam;
pub mod oauth;
pub mod sasl;
pub mod schema;
pub mod schemas;
pub mod scram;
pub mod tls;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiVersionsRequest, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::config::SaslSettings;

/// Bound on opening one TCP connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const CLIENT_ID: &str = "ebb";
/// Bound on the memory a decoded response may take (as estimated by the schema walk).
const MAX_DECODED: usize = 48 << 20;

pub use calls::Call;

/// What went wrong talking to one broker. Messages carry the broker's address, never secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// Could not connect, or the connection broke.
    Io(String),
    /// The TLS handshake failed (certificate not trusted, wrong name, no TLS on the port).
    Tls(String),
    /// SASL authentication was refused.
    Auth(String),
    /// The broker answered with something this client cannot use.
    Protocol(String),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(m) | Self::Tls(m) | Self::Auth(m) | Self::Protocol(m) => f.write_str(m),
        }
    }
}

/// A byte stream to a broker.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Stream for T {}

/// How a connection is opened: TLS connector and SASL credentials, shared by a cluster.
#[derive(Clone, Default)]
pub struct Opener {
    pub tls: Option<TlsConnector>,
    pub sasl: Option<SaslSettings>,
}

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opener").field("tls", &self.tls.is_some()).field("sasl", &self.sasl).finish()
    }
}

/// One open, authenticated connection to a broker.
pub struct Connection {
    stream: Box<dyn Stream>,
    addr: String,
    correlation: i32,
    versions: BTreeMap<i16, (i16, i16)>,
    counter: Arc<AtomicU64>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects to `addr` (`host:port`), negotiates versions and authenticates.
    pub async fn open(addr: &str, opener: &Opener, counter: Arc<AtomicU64>) -> Result<Self, WireError> {
        let connect = crate::egress::connect_tcp(addr, "bootstrapServers or an advertised broker");
        let tcp: TcpStream = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(WireError::Io(format!("{addr}: {e}"))),
            Err(_) => return Err(WireError::Io(format!("{addr}: no connection within {CONNECT_TIMEOUT:?}"))),
        };
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn Stream> = match &opener.tls {
            None => Box::new(tcp),
            Some(connector) => {
                let name = tls::server_name(addr).map_err(|e| WireError::Tls(format!("{addr}: {e}")))?;
                // A plaintext listener never answers a ClientHello; bound the wait.
                match tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp)).await {
                    Ok(Ok(s)) => Box::new(s),
                    Ok(Err(e)) => return Err(WireError::Tls(format!("{addr}: TLS handshake failed: {e}"))),
                    Err(_) => {
                        return Err(WireError::Tls(format!(
                            "{addr}: TLS handshake not answered within {CONNECT_TIMEOUT:?}; is this listener TLS?"
                        )));
                    }
                }
            }
        };
        Self::over(stream, addr, opener.sasl.as_ref(), counter).await
    }

    /// Opens a connection over an established `stream` to the broker at `addr`: negotiates
    /// versions and authenticates with `sasl` when given.
    pub async fn over(
        stream: Box<dyn Stream>,
        addr: &str,
        sasl: Option<&SaslSettings>,
        counter: Arc<AtomicU64>,
    ) -> Result<Self, WireError> {
        let mut conn =
            Self { stream, addr: addr.to_owned(), correlation: 0, versions: BTreeMap::new(), counter };
        conn.negotiate().await?;
        if let Some(sasl) = sasl {
            sasl::authenticate(&mut conn, sasl).await?;
        }
        Ok(conn)
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    async fn negotiate(&mut self) -> Result<(), WireError> {
        let mut req = ApiVersionsRequest::default();
        req.client_software_name = StrBytes::from_static_str("ebb");
        req.client_software_version = StrBytes::from_static_str(env!("CARGO_PKG_VERSION"));
        let mut resp = self.send_version(&req, 3).await?;
        // UNSUPPORTED_VERSION: the broker answers in v0 and lists what it speaks; ask again in v0.
        if resp.error_code == 35 {
            resp = self.send_version(&ApiVersionsRequest::default(), 0).await?;
        }
        if resp.error_code != 0 {
            return Err(WireError::Protocol(format!(
                "{}: ApiVersions failed with error code {}",
                self.addr, resp.error_code
            )));
        }
        self.versions = resp.api_keys.iter().map(|k| (k.api_key, (k.min_version, k.max_version))).collect();
        Ok(())
    }

    /// The version to use for `R`: the highest both sides speak.
    pub fn version<R: Call>(&self) -> Result<i16, WireError> {
        let ours = R::KEY.valid_versions();
        let (min, max) = self.versions.get(&(R::KEY as i16)).copied().ok_or_else(|| {
            WireError::Protocol(format!("{}: the broker does not support the {:?} API", self.addr, R::KEY))
        })?;
        let v = max.min(R::MAX).min(ours.max);
        if v < min.max(ours.min) {
            return Err(WireError::Protocol(format!(
                "{}: no common version of {:?} (broker {min}..{max}, ebb up to {})",
                self.addr,
                R::KEY,
                R::MAX
            )));
        }
        Ok(v)
    }

    /// Sends `req` at the negotiated version; returns the version used and the response.
    pub async fn send<R: Call>(&mut self, req: &R) -> Result<(i16, R::Response), WireError> {
        let v = self.version::<R>()?;
        Ok((v, self.send_version(req, v).await?))
    }

    /// Sends `req` at `version`.
    pub async fn send_version<R: Call>(&mut self, req: &R, version: i16) -> Result<R::Response, WireError> {
        let addr = self.addr.clone();
        let proto = |what: &str, e: &dyn fmt::Display| WireError::Protocol(format!("{addr}: {what}: {e}"));
        self.correlation = self.correlation.wrapping_add(1);
        let mut header = RequestHeader::default();
        header.request_api_key = R::KEY as i16;
        header.request_api_version = version;
        header.correlation_id = self.correlation;
        header.client_id = Some(StrBytes::from_static_str(CLIENT_ID));
        let mut buf = BytesMut::with_capacity(64);
        buf.extend_from_slice(&[0; 4]);
        header
            .encode(&mut buf, R::header_version(version))
            .map_err(|e| proto("encoding the request header", &e))?;
        req.encode(&mut buf, version).map_err(|e| proto(&format!("encoding {:?} v{version}", R::KEY), &e))?;
        let len = u32::try_from(buf.len() - 4).map_err(|e| proto("request size", &e))?;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        self.counter.fetch_add(1, Ordering::Relaxed);
        let io = |e: std::io::Error| WireError::Io(format!("{addr}: connection lost: {e}"));
        self.stream.write_all(&buf).await.map_err(io)?;
        self.stream.flush().await.map_err(io)?;
        let mut share = frame::Share::default();
        let cap = req.max_response();
        let body = frame::read(&mut self.stream, cap, &mut share).await.map_err(|e| match e {
            frame::FrameError::Io(e) => io(e),
            frame::FrameError::TooLarge { len, cap } => WireError::Protocol(format!(
                "{addr}: response of {len} bytes to {:?} v{version} exceeds the {cap} bytes it can take; \
                 is this a Kafka broker (and is tls set to match the listener)?",
                R::KEY
            )),
            frame::FrameError::Budget { held } => WireError::Io(format!(
                "{addr}: response to {:?} not read: Kafka responses in flight hold {held} bytes, \
                 the process-wide bound is {} bytes",
                R::KEY,
                frame::BUDGET
            )),
        })?;
        let header_version = R::Response::header_version(version);
        let decoded = schema::check(
            &body,
            (&schemas::RESPONSE_HEADER, header_version),
            (R::SCHEMA, version),
            MAX_DECODED,
        )
        .map_err(|e| {
            WireError::Protocol(format!("{addr}: malformed response to {:?} v{version}: {e}", R::KEY))
        })?;
        share.grow(decoded).map_err(|held| {
            WireError::Io(format!(
                "{addr}: response to {:?} not decoded: Kafka responses in flight hold {held} bytes, \
                 the process-wide bound is {} bytes",
                R::KEY,
                frame::BUDGET
            ))
        })?;
        let mut body = Bytes::from(body);
        let rh = ResponseHeader::decode(&mut body, header_version)
            .map_err(|e| proto("decoding the response header", &e))?;
        if rh.correlation_id != self.correlation {
            return Err(WireError::Protocol(format!(
                "{addr}: response correlation id {} does not match request {}",
                rh.correlation_id, self.correlation
            )));
        }
        R::Response::decode(&mut body, version)
            .map_err(|e| proto(&format!("malformed response: decoding {:?} v{version}", R::KEY), &e))
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    #[tokio::test]
    async fn refused_connection_names_the_address() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let addr = format!("127.0.0.1:{port}");
        let e = Connection::open(&addr, &Opener::default(), Arc::default()).await.unwrap_err();
        match e {
            WireError::Io(m) => assert!(m.starts_with(&addr), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_non_kafka_peer_is_a_protocol_error_not_a_hang() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut b = [0u8; 64];
            let _ = s.read(&mut b).await;
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        });
        let e = Connection::open(&addr, &Opener::default(), Arc::default()).await.unwrap_err();
        assert!(matches!(&e, WireError::Protocol(m) if m.contains("is this a Kafka broker")), "{e:?}");
    }
}
