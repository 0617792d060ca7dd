//! Runs the built `ebb-operator` binary against the local control plane: the admin port
//! answers, readiness waits for the first ScaledObject list, a bind failure is reported, and
//! SIGTERM stops the process cleanly.

#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use ebb_plumbing::testing::ServerProcess;
use reqwest::StatusCode;

const LONG: Duration = Duration::from_secs(20);

fn command(kubeconfig: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ebb-operator"));
    command.env_remove("RUST_LOG").env("KUBECONFIG", kubeconfig).env("POD_NAMESPACE", "default");
    command
}

/// A control plane (with ebb's CRDs unless `bare`) and a kubeconfig file for it.
async fn control_plane(bare: bool) -> (ebb_sandbox::sandbox::Sandbox, std::path::PathBuf) {
    let sb = ebb_sandbox::sandbox::Sandbox::start(Default::default()).await.unwrap();
    if !bare {
        for (_, crd) in ebb_api::crds::all() {
            sb.create(&serde_json::to_value(&crd).unwrap()).unwrap();
        }
    }
    let path =
        std::env::temp_dir().join(format!("ebb-operator-kc-{}-{}", std::process::id(), sb.addr.port()));
    ebb_sandbox::kubeconfig::write_kubeconfig(&path, &sb.kubeconfig()).unwrap();
    (sb, path)
}

async fn wait_status(client: &reqwest::Client, url: String, want: StatusCode) -> String {
    // The watch retries a missing resource with backoff of up to 30 s (kube-runtime's default).
    let until = std::time::Instant::now() + Duration::from_secs(45);
    loop {
        let r = client.get(&url).send().await.unwrap();
        let (status, body) = (r.status(), r.text().await.unwrap());
        if status == want || std::time::Instant::now() > until {
            assert_eq!(status, want, "{url}: {body}");
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_admin_port_and_exits_cleanly_on_sigterm() {
    let (sb, kc) = control_plane(false).await;
    let mut command = command(&kc);
    // The admin address comes from the environment, the rest from flags.
    command.env("EBB_ADMIN_ADDR", "127.0.0.1:0").args(["--log-format", "json"]);
    let mut server = ServerProcess::start(command).unwrap();
    assert_eq!(server.admin_addr().ip().to_string(), "127.0.0.1");
    let client = reqwest::Client::new();

    for path in ["/livez", "/readyz"] {
        assert_eq!(wait_status(&client, server.admin_url(path), StatusCode::OK).await, "ok", "{path}");
    }
    let metrics = client.get(server.admin_url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.lines().any(|line| line.starts_with("keda_build_info{name=\"ebb-operator\"")),
        "{metrics}"
    );

    server.terminate().unwrap();
    let status = server.wait_exit(LONG).unwrap();
    assert!(status.success(), "exit status {status}");
    server
        .wait_for_log(LONG, |event| event["message"] == "shutdown requested" && event["signal"] == "SIGTERM")
        .unwrap();
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_until_scaled_objects_can_be_listed() {
    let (sb, kc) = control_plane(true).await;
    let mut command = command(&kc);
    command.env("EBB_ADMIN_ADDR", "127.0.0.1:0").args(["--log-format", "json"]);
    let mut server = ServerProcess::start(command).unwrap();
    let client = reqwest::Client::new();
    wait_status(&client, server.admin_url("/livez"), StatusCode::OK).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let body = wait_status(&client, server.admin_url("/readyz"), StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(body.contains("ScaledObject"), "{body}");
    for (_, crd) in ebb_api::crds::all() {
        sb.create(&serde_json::to_value(&crd).unwrap()).unwrap();
    }
    wait_status(&client, server.admin_url("/readyz"), StatusCode::OK).await;
    server.terminate().unwrap();
    assert!(server.wait_exit(LONG).unwrap().success());
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_address_in_use_fails_with_the_address() {
    let (sb, kc) = control_plane(false).await;
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = command(&kc).args(["--admin-addr", &addr, "--log-format", "json"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("cannot bind the admin server to {addr}")), "{stderr}");
    sb.stop().await;
}
