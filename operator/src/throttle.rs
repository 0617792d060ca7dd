//! Client-side rate limiting of Kubernetes API requests: a token bucket (`--kube-api-qps`
//! tokens per second, at most `--kube-api-burst` saved up) wrapped around the kube client's
//! HTTP stack as a tower layer. A request waits for its token before it is sent; waiting is
//! fair (first come, first served) because the client's buffer polls readiness in order.
//! A watch takes one token when it starts, like any other request.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};
use tower::{Layer, Service};

/// Token bucket arithmetic. Tokens may go negative: each reservation takes a token at once and
/// is told how long to wait until that token exists.
#[derive(Debug)]
struct Bucket {
    qps: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(qps: f64, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self { qps, burst, tokens: burst, at: now }
    }

    /// Takes one token at `now`; returns how long to wait before using it.
    fn reserve(&mut self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.qps).min(self.burst);
        self.at = now.max(self.at);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-self.tokens / self.qps) }
    }
}

/// The layer: `qps` ≤ 0 (or not finite) disables throttling.
#[derive(Clone, Debug)]
pub struct Throttle {
    bucket: Option<Arc<Mutex<Bucket>>>,
}

impl Throttle {
    pub fn new(qps: f64, burst: u32) -> Self {
        let bucket = (qps.is_finite() && qps > 0.0)
            .then(|| Arc::new(Mutex::new(Bucket::new(qps, burst, Instant::now()))));
        Self { bucket }
    }
}

impl<S> Layer<S> for Throttle {
    type Service = Throttled<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Throttled { inner, bucket: self.bucket.clone(), wait: None, granted: false }
    }
}

/// A service whose requests each wait for a token.
pub struct Throttled<S> {
    inner: S,
    bucket: Option<Arc<Mutex<Bucket>>>,
    wait: Option<Pin<Box<Sleep>>>,
    granted: bool,
}

impl<S> std::fmt::Debug for Throttled<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttled").field("granted", &self.granted).finish_non_exhaustive()
    }
}

impl<S, R> Service<R> for Throttled<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if !self.granted
            && let Some(bucket) = &self.bucket
        {
            if self.wait.is_none() {
                let now = Instant::now();
                let delay = bucket.lock().unwrap_or_else(PoisonError::into_inner).reserve(now);
                if delay.is_zero() {
                    self.granted = true;
                } else {
                    self.wait = Some(Box::pin(tokio::time::sleep_until(now + delay)));
                }
            }
            if let Some(wait) = &mut self.wait {
                if wait.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.wait = None;
                self.granted = true;
            }
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        self.granted = false;
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::ServiceExt;

    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_paces_at_qps() {
        let t0 = Instant::now();
        let mut b = Bucket::new(10.0, 3, t0);
        let waits: Vec<u128> = (0..6).map(|_| b.reserve(t0).as_millis()).collect();
        assert_eq!(waits, [0, 0, 0, 100, 200, 300]);
        // After a quiet second the bucket is full again, never more than the burst.
        let later = t0 + Duration::from_secs(10);
        let waits: Vec<u128> = (0..4).map(|_| b.reserve(later).as_millis()).collect();
        assert_eq!(waits, [0, 0, 0, 100]);
    }

    #[tokio::test(start_paused = true)]
    async fn requests_beyond_the_burst_wait_for_their_tokens() {
        let layer = Throttle::new(5.0, 2);
        let mut svc = layer.layer(tower::service_fn(|_: ()| async { Ok::<_, Infallible>(Instant::now()) }));
        let start = Instant::now();
        let mut sent = Vec::new();
        for _ in 0..5 {
            sent.push(svc.ready().await.unwrap().call(()).await.unwrap() - start);
        }
        let ms: Vec<u128> = sent.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [0, 0, 200, 400, 600]);
    }

    #[tokio::test(start_paused = true)]
    async fn zero_qps_disables_throttling() {
        let mut svc =
            Throttle::new(0.0, 0).layer(tower::service_fn(|_: ()| async { Ok::<_, Infallible>(()) }));
        let start = Instant::now();
        for _ in 0..1000 {
            svc.ready().await.unwrap().call(()).await.unwrap();
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
