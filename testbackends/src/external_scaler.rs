//! A real external scaler for tests and benchmarks: a gRPC server speaking KEDA's
//! `externalscaler.ExternalScaler` protocol on 127.0.0.1 (optionally over TLS), whose metric,
//! target and activity the test sets, which pushes activity on every open `StreamIsActive`
//! stream when told to, and which records what it was asked. Its messages are written here
//! independently of ebb's client, from KEDA's `externalscaler.proto`, so the two check each other.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tonic::codegen::http;
use tonic::server::Grpc;
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;

/// `ScaledObjectRef`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ScaledObjectRef {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub namespace: String,
    #[prost(map = "string, string", tag = "3")]
    pub scaler_metadata: HashMap<String, String>,
}

/// `IsActiveResponse`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct IsActiveResponse {
    #[prost(bool, tag = "1")]
    pub result: bool,
}

/// `GetMetricSpecResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetMetricSpecResponse {
    #[prost(message, repeated, tag = "1")]
    pub metric_specs: Vec<MetricSpec>,
}

/// `MetricSpec`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricSpec {
    #[prost(string, tag = "1")]
    pub metric_name: String,
    #[prost(int64, tag = "2")]
    pub target_size: i64,
    #[prost(double, tag = "3")]
    pub target_size_float: f64,
}

/// `GetMetricsRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetMetricsRequest {
    #[prost(message, optional, tag = "1")]
    pub scaled_object_ref: Option<ScaledObjectRef>,
    #[prost(string, tag = "2")]
    pub metric_name: String,
}

/// `GetMetricsResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetMetricsResponse {
    #[prost(message, repeated, tag = "1")]
    pub metric_values: Vec<MetricValue>,
}

/// `MetricValue`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricValue {
    #[prost(string, tag = "1")]
    pub metric_name: String,
    #[prost(int64, tag = "2")]
    pub metric_value: i64,
    #[prost(double, tag = "3")]
    pub metric_value_float: f64,
}

/// What the server answers and what it saw.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// `GetMetricSpec`: the metric specs answered (default: one, `queue` with target 10).
    pub specs: Vec<MetricSpec>,
    /// `GetMetrics`: the values answered.
    pub values: Vec<MetricValue>,
    /// `IsActive`.
    pub active: bool,
    /// Last `ScaledObjectRef` received (any call).
    pub last_ref: Option<ScaledObjectRef>,
    /// Last `GetMetricsRequest.metricName`.
    pub last_metric_name: Option<String>,
    /// Calls per method name.
    pub calls: HashMap<&'static str, usize>,
    /// `StreamIsActive` streams opened so far.
    pub streams_opened: usize,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    pushes: broadcast::Sender<bool>,
    /// Bumped to end every open stream.
    epoch: watch::Sender<u64>,
    /// Set when the server stops: every connection closes.
    stopped: watch::Sender<bool>,
}

/// A running external scaler; stops when dropped.
#[derive(Debug)]
pub struct ExternalScaler {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    _task: tokio::task::JoinHandle<()>,
}

impl Drop for ExternalScaler {
    fn drop(&mut self) {
        self._task.abort();
        self.shared.stopped.send_replace(true);
    }
}

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, State> {
    s.state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ExternalScaler {
    /// Starts on 127.0.0.1 (any free port), over TLS when `tls` is given (ALPN h2 is set here).
    pub async fn start(tls: Option<rustls::ServerConfig>) -> std::io::Result<Self> {
        Self::start_on("127.0.0.1:0".parse().map_err(std::io::Error::other)?, tls).await
    }

    /// Starts on `addr` (to restart a stopped scaler on the same port).
    pub async fn start_on(addr: SocketAddr, tls: Option<rustls::ServerConfig>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = State {
            specs: vec![MetricSpec { metric_name: "queue".into(), target_size: 10, target_size_float: 0.0 }],
            ..State::default()
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            pushes: broadcast::channel(1024).0,
            epoch: watch::channel(0).0,
            stopped: watch::channel(false).0,
        });
        let acceptor = tls.map(|mut c| {
            c.alpn_protocols = vec![b"h2".to_vec()];
            tokio_rustls::TlsAcceptor::from(Arc::new(c))
        });
        let s = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { continue };
                let _ = tcp.set_nodelay(true);
                let (s, acceptor) = (s.clone(), acceptor.clone());
                let mut stopped = s.stopped.subscribe();
                let conn = async move {
                    let svc = TowerToHyperService::new(tower::service_fn(move |req| route(s.clone(), req)));
                    let builder = auto::Builder::new(TokioExecutor::new()).http2_only();
                    match acceptor {
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(tcp), svc).await;
                        }
                        Some(a) => {
                            if let Ok(t) = a.accept(tcp).await {
                                let _ = builder.serve_connection(TokioIo::new(t), svc).await;
                            }
                        }
                    }
                };
                tokio::spawn(async move {
                    tokio::select! {
                        () = conn => {}
                        _ = stopped.wait_for(|s| *s) => {}
                    }
                });
            }
        });
        Ok(Self { addr, shared, _task: task })
    }

    /// `host:port` for `scalerAddress`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Changes what the server answers.
    pub fn set(&self, f: impl FnOnce(&mut State)) {
        f(&mut lock(&self.shared));
    }

    /// Sets `IsActive` and one metric value (as `metricValueFloat`).
    pub fn set_value(&self, value: f64, active: bool) {
        self.set(|s| {
            s.active = active;
            s.values =
                vec![MetricValue { metric_name: "queue".into(), metric_value: 0, metric_value_float: value }];
        });
    }

    /// A copy of the state (answers and what was seen).
    pub fn state(&self) -> State {
        lock(&self.shared).clone()
    }

    /// Sets `IsActive` to `active` and pushes it on every open stream; returns the instant of
    /// the push and how many streams received it.
    pub fn push(&self, active: bool) -> (Instant, usize) {
        lock(&self.shared).active = active;
        let at = Instant::now();
        (at, self.shared.pushes.send(active).unwrap_or(0))
    }

    /// Ends every open `StreamIsActive` stream (clients must reopen them).
    pub fn end_streams(&self) {
        self.shared.epoch.send_modify(|e| *e += 1);
    }
}

type BoxBody = tonic::body::Body;

async fn route<B>(s: Arc<Shared>, req: http::Request<B>) -> Result<http::Response<BoxBody>, Infallible>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    let path = req.uri().path().to_owned();
    let name: &'static str = match path.as_str() {
        "/externalscaler.ExternalScaler/IsActive" => "IsActive",
        "/externalscaler.ExternalScaler/StreamIsActive" => "StreamIsActive",
        "/externalscaler.ExternalScaler/GetMetricSpec" => "GetMetricSpec",
        "/externalscaler.ExternalScaler/GetMetrics" => "GetMetrics",
        _ => return Ok(Status::unimplemented(path).into_http()),
    };
    *lock(&s).calls.entry(name).or_default() += 1;
    let resp = match name {
        "IsActive" => {
            let s = s.clone();
            let svc = tower::service_fn(move |r: Request<ScaledObjectRef>| {
                let mut st = lock(&s);
                st.last_ref = Some(r.into_inner());
                let result = st.active;
                async move { Ok::<_, Status>(Response::new(IsActiveResponse { result })) }
            });
            Grpc::new(ProstCodec::<IsActiveResponse, ScaledObjectRef>::default()).unary(svc, req).await
        }
        "GetMetricSpec" => {
            let s = s.clone();
            let svc = tower::service_fn(move |r: Request<ScaledObjectRef>| {
                let mut st = lock(&s);
                st.last_ref = Some(r.into_inner());
                let metric_specs = st.specs.clone();
                async move { Ok::<_, Status>(Response::new(GetMetricSpecResponse { metric_specs })) }
            });
            Grpc::new(ProstCodec::<GetMetricSpecResponse, ScaledObjectRef>::default()).unary(svc, req).await
        }
        "GetMetrics" => {
            let s = s.clone();
            let svc = tower::service_fn(move |r: Request<GetMetricsRequest>| {
                let mut st = lock(&s);
                let r = r.into_inner();
                st.last_ref = r.scaled_object_ref;
                st.last_metric_name = Some(r.metric_name);
                let metric_values = st.values.clone();
                async move { Ok::<_, Status>(Response::new(GetMetricsResponse { metric_values })) }
            });
            Grpc::new(ProstCodec::<GetMetricsResponse, GetMetricsRequest>::default()).unary(svc, req).await
        }
        _ => {
            let s = s.clone();
            let svc = tower::service_fn(move |r: Request<ScaledObjectRef>| {
                let mut st = lock(&s);
                st.last_ref = Some(r.into_inner());
                st.streams_opened += 1;
                drop(st);
                let rx = s.pushes.subscribe();
                let mut epoch = s.epoch.subscribe();
                epoch.mark_unchanged();
                let stream = futures::stream::unfold((rx, epoch), |(mut rx, mut epoch)| async move {
                    loop {
                        tokio::select! {
                            _ = epoch.changed() => return None,
                            m = rx.recv() => match m {
                                Ok(result) => return Some((Ok(IsActiveResponse { result }), (rx, epoch))),
                                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                                Err(broadcast::error::RecvError::Closed) => return None,
                            },
                        }
                    }
                });
                let stream: std::pin::Pin<
                    Box<dyn futures::Stream<Item = Result<IsActiveResponse, Status>> + Send>,
                > = Box::pin(stream);
                async move { Ok::<_, Status>(Response::new(stream)) }
            });
            Grpc::new(ProstCodec::<IsActiveResponse, ScaledObjectRef>::default())
                .server_streaming(svc, req)
                .await
        }
    };
    Ok(resp)
}
