//! Runs the built `ebb-metrics-apiserver` binary: the admin and secure ports answer, readiness
//! follows the (absent) operator, `--insecure-skip-auth` is announced loudly, bad files and a
//! taken address are reported with their names, and SIGTERM stops the process cleanly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ebb_plumbing::testing::ServerProcess;
use ebb_sandbox::pki::CertAuthority;
use reqwest::StatusCode;

const LONG: Duration = Duration::from_secs(20);

/// Certificates in a fresh directory: serving (`tls.*`), client for the operator link
/// (`client.*`), and the CA (`ca.crt`).
struct Certs {
    dir: PathBuf,
    ca_pem: String,
}

impl Certs {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ebb-mas-process-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = CertAuthority::new("test-ca").unwrap();
        let serving = ca.issue_server(&["localhost"], &[[127, 0, 0, 1].into()]).unwrap();
        let client = ca.issue_client("ebb-metrics-apiserver", &[]).unwrap();
        for (name, text) in [
            ("tls.crt", &serving.cert_pem),
            ("tls.key", &serving.key_pem),
            ("client.crt", &client.cert_pem),
            ("client.key", &client.key_pem),
            ("ca.crt", &ca.cert_pem().to_owned()),
        ] {
            std::fs::write(dir.join(name), text).unwrap();
        }
        Self { dir, ca_pem: ca.cert_pem().to_owned() }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_owned()
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port where nothing listens.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn command(certs: &Certs) -> Command {
    command_with(certs, &[])
}

/// The command with the certificate flags, `overrides` replacing some of them.
fn command_with(certs: &Certs, overrides: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ebb-metrics-apiserver"));
    command.env_remove("RUST_LOG");
    let operator = format!("https://127.0.0.1:{}", closed_port());
    let flags = [
        ("--tls-cert-file", certs.path("tls.crt")),
        ("--tls-key-file", certs.path("tls.key")),
        ("--operator-url", operator),
        ("--operator-ca-file", certs.path("ca.crt")),
        ("--operator-cert-file", certs.path("client.crt")),
        ("--operator-key-file", certs.path("client.key")),
    ];
    for (flag, value) in flags {
        let value = overrides.iter().find(|(f, _)| *f == flag).map_or(value, |(_, v)| (*v).to_owned());
        command.args([flag, &value]);
    }
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_both_ports_and_exits_cleanly_on_sigterm() {
    let certs = Certs::new("serve");
    let mut command = command(&certs);
    // The admin address comes from the environment, the rest from flags.
    command.env("EBB_ADMIN_ADDR", "127.0.0.1:0").args([
        "--log-format",
        "json",
        "--secure-addr",
        "127.0.0.1:0",
        "--insecure-skip-auth",
    ]);
    let mut server = ServerProcess::start(command).unwrap();
    assert_eq!(server.admin_addr().ip().to_string(), "127.0.0.1");
    let warning = server
        .wait_for_log(LONG, |event| {
            event["level"] == "WARN"
                && event["message"].as_str().unwrap_or("").contains("--insecure-skip-auth")
        })
        .unwrap();
    assert!(warning["message"].as_str().unwrap().contains("AUTHENTICATION AND AUTHORIZATION ARE OFF"));
    let listening =
        server.wait_for_log(LONG, |event| event["message"] == "metrics API server listening (TLS)").unwrap();
    let secure: std::net::SocketAddr = listening["addr"].as_str().unwrap().parse().unwrap();

    let admin = reqwest::Client::new();
    let livez = admin.get(server.admin_url("/livez")).send().await.unwrap();
    assert_eq!(livez.status(), StatusCode::OK);
    // No operator: not ready, and the reason names the operator.
    let readyz = admin.get(server.admin_url("/readyz")).send().await.unwrap();
    assert_eq!(readyz.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        readyz.text().await.unwrap().contains("operator's internal metrics service at https://127.0.0.1:")
    );
    let metrics = admin.get(server.admin_url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.lines().any(|line| line.starts_with("keda_build_info{name=\"ebb-metrics-apiserver\"")),
        "{metrics}"
    );
    assert!(metrics.lines().any(|line| line == "ebb_metrics_apiserver_operator_link_up 0"), "{metrics}");

    let tls = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(certs.ca_pem.as_bytes()).unwrap())
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    let base = format!("https://localhost:{}", secure.port());
    let list = tls.get(format!("{base}/apis/external.metrics.k8s.io/v1beta1")).send().await.unwrap();
    assert_eq!(list.status(), StatusCode::OK);
    assert_eq!(list.text().await.unwrap(), ebb_metrics_apiserver::discovery::RESOURCE_LIST);
    let started = Instant::now();
    let value = tls
        .get(format!(
            "{base}/apis/external.metrics.k8s.io/v1beta1/namespaces/default/s0-x?labelSelector=scaledobject.keda.sh%2Fname%3Dweb"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(value.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_secs(1), "fails fast: {:?}", started.elapsed());
    let body: serde_json::Value = value.json().await.unwrap();
    assert_eq!(body["reason"], "ServiceUnavailable");
    assert!(body["message"].as_str().unwrap().contains("is unreachable"), "{body}");

    // The clients go first, and their connection tasks run on other threads while the exit is
    // awaited below (blocking this one); otherwise the server would wait out its grace period
    // for an HTTP/2 shutdown handshake nobody answers.
    drop((tls, admin));
    server.terminate().unwrap();
    let status = server.wait_exit(LONG).unwrap();
    assert!(status.success(), "exit status {status}");
    server
        .wait_for_log(LONG, |event| event["message"] == "shutdown requested" && event["signal"] == "SIGTERM")
        .unwrap();
}

fn run_to_failure(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn admin_address_in_use_fails_with_the_address() {
    let certs = Certs::new("admin-taken");
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let stderr = run_to_failure(command(&certs).args([
        "--admin-addr",
        &addr,
        "--secure-addr",
        "127.0.0.1:0",
        "--insecure-skip-auth",
        "--log-format",
        "json",
    ]));
    assert!(stderr.contains(&format!("cannot bind the admin server to {addr}")), "{stderr}");
}

#[test]
fn bad_files_are_named() {
    let certs = Certs::new("bad-files");
    let missing = certs.dir.join("nowhere.crt");
    let args = |flag: &str, path: &Path| {
        let mut c = command_with(&certs, &[(flag, path.to_str().unwrap())]);
        c.args(["--admin-addr", "127.0.0.1:0", "--secure-addr", "127.0.0.1:0", "--insecure-skip-auth"]);
        c
    };
    let stderr = run_to_failure(&mut args("--tls-cert-file", &missing));
    assert!(stderr.contains(&format!("reading {}", missing.display())), "{stderr}");
    let stderr = run_to_failure(&mut args("--operator-ca-file", &missing));
    assert!(stderr.contains(&format!("reading {}", missing.display())), "{stderr}");
    // A key that does not belong to the certificate.
    let stderr = run_to_failure(&mut args("--tls-key-file", &certs.dir.join("client.key")));
    assert!(stderr.contains("TLS configuration"), "{stderr}");
}

#[test]
fn checking_callers_needs_a_cluster() {
    let certs = Certs::new("no-cluster");
    let stderr = run_to_failure(
        command(&certs)
            .env("KUBECONFIG", certs.dir.join("no-kubeconfig"))
            .env_remove("KUBERNETES_SERVICE_HOST")
            .args(["--admin-addr", "127.0.0.1:0", "--secure-addr", "127.0.0.1:0"]),
    );
    assert!(stderr.contains("cannot build a Kubernetes client"), "{stderr}");
}
