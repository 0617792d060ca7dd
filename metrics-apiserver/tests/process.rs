//! Runs the built `ebb-metrics-apiserver` binary: the admin port answers, a bind failure is reported,
//! and SIGTERM stops the process cleanly.

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use ebb_plumbing::testing::ServerProcess;
use reqwest::StatusCode;

const LONG: Duration = Duration::from_secs(20);

fn command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ebb-metrics-apiserver"));
    command.env_remove("RUST_LOG");
    command
}

#[tokio::test]
async fn serves_admin_port_and_exits_cleanly_on_sigterm() {
    let mut command = command();
    // The admin address comes from the environment, the rest from flags.
    command.env("EBB_ADMIN_ADDR", "127.0.0.1:0").args([
        "--log-format",
        "json",
        "--secure-addr",
        "127.0.0.1:0",
    ]);
    let mut server = ServerProcess::start(command).unwrap();
    assert_eq!(server.admin_addr().ip().to_string(), "127.0.0.1");
    let client = reqwest::Client::new();

    for path in ["/livez", "/readyz"] {
        let response = client.get(server.admin_url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.text().await.unwrap(), "ok", "{path}");
    }
    let metrics = client.get(server.admin_url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.lines().any(|line| line.starts_with("keda_build_info{name=\"ebb-metrics-apiserver\"")),
        "{metrics}"
    );

    let event =
        server.wait_for_log(LONG, |event| event["message"] == "secure endpoint not served yet").unwrap();
    assert_eq!(event["secure_addr"], "127.0.0.1:0");

    server.terminate().unwrap();
    let status = server.wait_exit(LONG).unwrap();
    assert!(status.success(), "exit status {status}");
    server
        .wait_for_log(LONG, |event| event["message"] == "shutdown requested" && event["signal"] == "SIGTERM")
        .unwrap();
}

#[test]
fn admin_address_in_use_fails_with_the_address() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = command().args(["--admin-addr", &addr, "--log-format", "json"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("cannot bind the admin server to {addr}")), "{stderr}");
}
