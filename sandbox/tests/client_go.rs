//! What client-go ≥ 0.35 sends that older clients did not, answered by upstream kube-apiserver
//! (the oracle, one control plane for the binary) and by the local control plane alike:
//! streaming lists (`client_go/watch_list.rs`) and protobuf Events (`client_go/proto_events.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "client_go/proto_events.rs"]
mod proto_events;
#[path = "client_go/watch_list.rs"]
mod watch_list;

use ebb_testbackends::kubernetes::Upstream;

/// A kube-rs client of the shared upstream control plane.
async fn upstream_client() -> kube::Client {
    let up = tokio::task::spawn_blocking(Upstream::shared).await.unwrap();
    let kc = kube::config::Kubeconfig::from_yaml(&up.kubeconfig().unwrap()).unwrap();
    let config = kube::config::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
    kube::Client::try_from(config).unwrap()
}

/// GET `path` and its answer: the body, or the error's code and message.
async fn get(client: &kube::Client, path: &str) -> Result<String, (u16, String)> {
    let req = http::Request::get(path).body(Vec::new()).unwrap();
    client.request_text(req).await.map_err(|e| match e {
        kube::Error::Api(s) => (s.code, s.message),
        other => (0, other.to_string()),
    })
}
