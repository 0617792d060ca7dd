//! The admin server over real sockets: probes, metrics exposition, bind errors, shutdown.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use ebb_plumbing::admin::{self, AdminServer, OPENMETRICS_CONTENT_TYPE, Readiness};
use ebb_plumbing::build_info::{self, BuildInfo};
use prometheus_client::registry::Registry;
use reqwest::StatusCode;

const LONG: Duration = Duration::from_secs(10);

fn registry_with_build_info() -> Arc<Registry> {
    let mut registry = Registry::default();
    build_info::register(&mut registry, &BuildInfo::new("ebb-admin-test", "9.8.7"));
    Arc::new(registry)
}

/// Status, content type and body of `GET http://{addr}{path}`.
async fn get(
    client: &reqwest::Client,
    addr: SocketAddr,
    path: &str,
) -> reqwest::Result<(StatusCode, String, String)> {
    let response = client.get(format!("http://{addr}{path}")).send().await?;
    let status = response.status();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    Ok((status, content_type, response.text().await?))
}

#[tokio::test]
async fn probes_metrics_and_graceful_shutdown() {
    let readiness = Readiness::default();
    let server =
        AdminServer::bind("127.0.0.1:0".parse().unwrap(), registry_with_build_info(), readiness.clone())
            .await
            .unwrap();
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0, "port 0 must resolve to the bound port");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();

    let (status, _, body) = get(&client, addr, "/livez").await.unwrap();
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));

    let (status, content_type, body) = get(&client, addr, "/readyz").await.unwrap();
    assert_eq!((status, body.as_str()), (StatusCode::SERVICE_UNAVAILABLE, "starting"));
    assert!(content_type.starts_with("text/plain"), "{content_type}");

    readiness.set_ready();
    let (status, _, body) = get(&client, addr, "/readyz").await.unwrap();
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));

    readiness.set_not_ready("no connection to the operator");
    let (status, _, body) = get(&client, addr, "/readyz").await.unwrap();
    assert_eq!((status, body.as_str()), (StatusCode::SERVICE_UNAVAILABLE, "no connection to the operator"));

    let (status, content_type, body) = get(&client, addr, "/metrics").await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, OPENMETRICS_CONTENT_TYPE);
    let sample = body
        .lines()
        .find(|line| line.starts_with("keda_build_info{"))
        .unwrap_or_else(|| panic!("no keda_build_info sample in:\n{body}"));
    assert!(sample.contains("name=\"ebb-admin-test\""), "{sample}");
    assert!(sample.contains("version=\"9.8.7\""), "{sample}");
    assert!(sample.ends_with("} 1"), "{sample}");
    assert!(body.ends_with("# EOF\n"), "{body}");

    let (status, _, _) = get(&client, addr, "/nope").await.unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND);

    stop.send(()).unwrap();
    tokio::time::timeout(LONG, task).await.unwrap().unwrap().unwrap();
    assert!(
        client.get(format!("http://{addr}/livez")).send().await.is_err(),
        "server must stop listening after shutdown"
    );
}

#[tokio::test]
async fn bind_failure_names_the_address() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();

    let err = AdminServer::bind(addr, registry_with_build_info(), Readiness::default()).await.unwrap_err();
    assert!(matches!(err, admin::AdminError::Bind { addr: a, .. } if a == addr));
    let message = err.to_string();
    assert!(message.contains(&addr.to_string()), "{message}");
    assert!(message.starts_with("cannot bind the admin server to "), "{message}");

    // The one-call form reports the same failure without waiting for shutdown.
    let err = tokio::time::timeout(
        LONG,
        admin::serve(addr, registry_with_build_info(), Readiness::default(), std::future::pending()),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}
