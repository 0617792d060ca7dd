//! Leadership as the rest of the operator sees it ([`Leadership`]: a cheap read of the election's
//! watch channel, and a future completing when leadership is lost) and the guard on the
//! leader-only API client ([`LeaderOnlyLayer`]): a write (any method but GET, HEAD and OPTIONS)
//! is refused with [`NotLeader`] when this replica does not lead at the moment the request
//! would be sent. The layer sits below the client-side throttle, so a write that waited for its
//! token is checked after the wait, not before it; the refusal reaches callers as
//! `kube::Error::Service` holding a [`NotLeader`] ([`is_not_leader`] tells).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Method, Request};
use tokio::sync::watch;
use tower::{BoxError, Layer, Service};

/// Whether this replica leads, as the election last published it.
#[derive(Clone, Debug)]
pub struct Leadership {
    rx: watch::Receiver<bool>,
}

impl Leadership {
    pub fn new(rx: watch::Receiver<bool>) -> Self {
        Self { rx }
    }

    /// Leading for good (no election): nothing ever publishes a change.
    pub fn always() -> Self {
        Self { rx: watch::channel(true).1 }
    }

    /// Whether this replica leads now.
    pub fn is_leader(&self) -> bool {
        *self.rx.borrow()
    }

    /// Completes as soon as this replica does not lead (at once if it does not lead now). A
    /// channel whose election is gone can no longer change: then it completes only if the last
    /// value published was "not leading".
    pub fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.rx.clone();
        async move {
            if rx.wait_for(|leading| !*leading).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// A write refused because this replica does not hold the leader Lease.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{method} {path} refused: this replica does not hold the leader Lease")]
pub struct NotLeader {
    pub method: String,
    /// The request path without its query.
    pub path: String,
}

/// Whether a kube client error is a write refused by [`LeaderOnlyLayer`].
pub fn is_not_leader(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Service(b) if b.is::<NotLeader>())
}

fn is_write(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Refuses writes while this replica does not lead.
#[derive(Clone, Debug)]
pub struct LeaderOnlyLayer {
    leadership: Leadership,
}

impl LeaderOnlyLayer {
    pub fn new(leadership: Leadership) -> Self {
        Self { leadership }
    }
}

impl<S> Layer<S> for LeaderOnlyLayer {
    type Service = LeaderOnly<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LeaderOnly { inner, leadership: self.leadership.clone() }
    }
}

/// The service of [`LeaderOnlyLayer`].
#[derive(Clone, Debug)]
pub struct LeaderOnly<S> {
    inner: S,
    leadership: Leadership,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> Service<Request<B>> for LeaderOnly<S>
where
    S: Service<Request<B>>,
    S::Response: Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<Result<S::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if is_write(req.method()) && !self.leadership.is_leader() {
            let refused = NotLeader { method: req.method().to_string(), path: req.uri().path().to_owned() };
            return Box::pin(std::future::ready(Err(Box::new(refused) as BoxError)));
        }
        let fut = self.inner.call(req);
        Box::pin(async move { fut.await.map_err(Into::into) })
    }
}

/// Sends through an existing client: lets a client of its own (its own throttle, its own
/// request queue, the leader guard) share another client's connections.
#[derive(Clone)]
pub struct Via(pub kube::Client);

impl std::fmt::Debug for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Via").finish_non_exhaustive()
    }
}

impl Service<Request<kube::client::Body>> for Via {
    type Response = http::Response<kube::client::Body>;
    type Error = kube::Error;
    type Future = BoxFuture<Result<Self::Response, kube::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<kube::client::Body>) -> Self::Future {
        let client = self.0.clone();
        Box::pin(async move { client.send(req).await })
    }
}

#[cfg(test)]
mod tests;
