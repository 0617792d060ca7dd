//! Shared setup for the control plane's conformance tests: a started sandbox and a kube-rs
//! client configured from its kubeconfig, exactly as a user's program would connect.

#![allow(dead_code, clippy::unwrap_used)]

use ebb_sandbox::sandbox::{Config, Sandbox};

pub async fn start(cfg: Config) -> (Sandbox, kube::Client) {
    let sb = Sandbox::start(cfg).await.unwrap();
    let kc = kube::config::Kubeconfig::from_yaml(&sb.kubeconfig()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
    let client = kube::Client::try_from(config).unwrap();
    (sb, client)
}
