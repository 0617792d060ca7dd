//! Tests of the leader-only client: writes refused while not leading, reads passed, leadership checked after the throttle wait.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::client::Body;
use tower::{ServiceBuilder, ServiceExt};

use super::*;
use crate::throttle::Throttle;

type Seen = Arc<Mutex<Vec<String>>>;

/// An API stand-in recording `METHOD path` of each request it receives.
fn api(
    seen: Seen,
) -> impl Service<
    Request<Body>,
    Response = http::Response<Body>,
    Error = Infallible,
    Future = impl Future<Output = Result<http::Response<Body>, Infallible>> + Send + 'static,
> + Clone
+ Send
+ 'static {
    tower::service_fn(move |req: Request<Body>| {
        seen.lock().unwrap().push(format!("{} {}", req.method(), req.uri().path()));
        async {
            Ok(http::Response::builder()
                .header("content-type", "application/json")
                .body(Body::from(br#"{"metadata":{"name":"x"}}"#.to_vec()))
                .unwrap())
        }
    })
}

fn req(method: Method, path: &str) -> Request<Body> {
    Request::builder().method(method).uri(path).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn writes_are_refused_while_not_leading_reads_pass() {
    let (tx, rx) = watch::channel(false);
    let seen: Seen = Arc::default();
    let mut svc = LeaderOnlyLayer::new(Leadership::new(rx)).layer(api(seen.clone()));
    for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        let err = svc.ready().await.unwrap().call(req(m.clone(), "/apis/apps/v1/x")).await.unwrap_err();
        let refused = err.downcast_ref::<NotLeader>().unwrap();
        assert_eq!(refused.method, m.as_str());
        assert_eq!(refused.path, "/apis/apps/v1/x");
    }
    for m in [Method::GET, Method::HEAD, Method::OPTIONS] {
        svc.ready().await.unwrap().call(req(m, "/api/v1/r")).await.unwrap();
    }
    assert_eq!(*seen.lock().unwrap(), ["GET /api/v1/r", "HEAD /api/v1/r", "OPTIONS /api/v1/r"]);
    tx.send(true).unwrap();
    svc.ready().await.unwrap().call(req(Method::PATCH, "/w")).await.unwrap();
    assert_eq!(seen.lock().unwrap().last().map(String::as_str), Some("PATCH /w"));
}

/// Leadership lost while a write waits for its throttle token: the write is not sent.
#[tokio::test(start_paused = true)]
async fn leadership_is_checked_after_the_throttle_wait() {
    let (tx, rx) = watch::channel(true);
    let seen: Seen = Arc::default();
    let svc = ServiceBuilder::new()
        .layer(Throttle::new(1.0, 1))
        .layer(LeaderOnlyLayer::new(Leadership::new(rx)))
        .service(api(seen.clone()));
    let client = kube::Client::new(svc, "default");
    let first = client.request_text(req(Method::PATCH, "/first").map(|_| Vec::new())).await;
    assert!(first.is_ok(), "{first:?}");
    // The second write needs a token that exists only one second from now.
    let waiting = tokio::spawn({
        let client = client.clone();
        async move { client.request_text(req(Method::PATCH, "/second").map(|_| Vec::new())).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    tx.send(false).unwrap();
    let err = waiting.await.unwrap().unwrap_err();
    assert!(is_not_leader(&err), "{err:?}");
    assert!(err.to_string().contains("does not hold the leader Lease"), "{err}");
    assert_eq!(*seen.lock().unwrap(), ["PATCH /first"]);
}

#[tokio::test]
async fn the_refusal_reaches_callers_of_the_typed_api() {
    let seen: Seen = Arc::default();
    let (_tx, rx) = watch::channel(false);
    let svc = LeaderOnlyLayer::new(Leadership::new(rx)).layer(api(seen.clone()));
    let client = kube::Client::new(svc, "default");
    let cms: kube::Api<k8s_openapi::api::core::v1::ConfigMap> = kube::Api::default_namespaced(client);
    let err = cms.delete("x", &Default::default()).await.unwrap_err();
    assert!(is_not_leader(&err), "{err:?}");
    assert!(cms.get("x").await.is_ok());
    assert_eq!(*seen.lock().unwrap(), ["GET /api/v1/namespaces/default/configmaps/x"]);
}

#[tokio::test(start_paused = true)]
async fn lost_completes_on_loss_and_never_for_a_closed_channel_that_leads() {
    let (tx, rx) = watch::channel(true);
    let l = Leadership::new(rx);
    assert!(l.is_leader());
    let lost = tokio::spawn(l.lost());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!lost.is_finished());
    tx.send(false).unwrap();
    lost.await.unwrap();
    assert!(!l.is_leader());
    // Closed while not leading: lost at once.
    drop(tx);
    tokio::time::timeout(Duration::from_secs(1), l.lost()).await.unwrap();
    // Closed while leading (no election): never lost.
    let always = Leadership::always();
    assert!(always.is_leader());
    assert!(tokio::time::timeout(Duration::from_secs(60), always.lost()).await.is_err());
}

#[tokio::test]
async fn via_sends_through_another_client() {
    let seen: Seen = Arc::default();
    let inner = kube::Client::new(api(seen.clone()), "default");
    let outer = kube::Client::new(Via(inner), "default");
    outer.request_text(req(Method::GET, "/version").map(|_| Vec::new())).await.unwrap();
    assert_eq!(*seen.lock().unwrap(), ["GET /version"]);
}
