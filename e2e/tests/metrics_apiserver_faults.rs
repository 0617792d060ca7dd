//! The metrics-apiserver when things around it change, on the cluster `EBB_E2E_CLUSTER` selects
//! (the local control plane, or upstream Kubernetes answering its TokenReviews and
//! SubjectAccessReviews):
//!
//! - the operator stops: `/readyz` turns false and value requests are answered 503 within a
//!   second (a burst of them too, none hanging); the operator comes back on the same address:
//!   ready again within a second of it listening, values flow again; over several cycles the
//!   process's open file descriptors do not grow;
//! - the operator hangs (connections open, nothing answered): requests in flight and new ones
//!   are answered 503 once the health check gives up, long before their own timeout;
//! - an operator replica that is not the leader: its answers are reported as 503 saying so, and
//!   values flow once it takes over;
//! - the serving certificate is replaced on disk: new connections get the new certificate
//!   without a restart, open ones keep working.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod metrics_apiserver_support;

use std::time::{Duration, Instant};

use metrics_apiserver_support::*;
use serde_json::Value;

const CYCLES: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_outages_are_seen_within_a_second_and_recovered() {
    let (cluster, client) = start_cluster(Duration::from_secs(3600)).await;
    let pki = Pki::new(&cluster, "outage");
    let port = free_port();
    let mut operator = start_operator(&client, &pki, port);
    let server = start_metrics_apiserver(&client, &pki, port, &[]).await;
    create_deployment(&client, "web", 1).await;
    create_cron_so(&client, "web", "web", 2, 10).await;
    let metric = metric_name(&client, "web").await;
    let http = https_client(&cluster, None);
    let url = server.url(&value_path(&metric, "web"));
    let token = cluster.reader_token().await;
    let value = async || answer(http.get(&url).bearer_auth(&token)).await;
    wait_for("the first value", Duration::from_secs(20), async || value().await.0 == 200).await;
    let fds_before = fd_count();

    for cycle in 1..=CYCLES {
        // Stop: not ready and 503 within a second of the operator going away.
        let stopping = Instant::now();
        let stop = tokio::spawn(operator.stop());
        let unready = wait_for("/readyz to turn false", Duration::from_secs(5), async || {
            server.admin_get("/readyz").await.0 == 503
        })
        .await;
        let (_, reason) = server.admin_get("/readyz").await;
        assert!(reason.contains("operator's internal metrics service at https://127.0.0.1:"), "{reason}");
        let asked = Instant::now();
        let burst: Vec<_> =
            (0..32).map(|_| tokio::spawn(answer(http.get(&url).bearer_auth(&token)))).collect();
        for request in burst {
            let (status, body) = request.await.unwrap();
            assert_eq!(status, 503, "{body}");
            assert_eq!(body["reason"], "ServiceUnavailable");
            let message = body["message"].as_str().unwrap();
            assert!(
                message.contains("is unreachable") && message.contains(&format!("127.0.0.1:{port}")),
                "{message}"
            );
        }
        let answered = asked.elapsed();
        let (status, _) = server.admin_get("/readyz").await;
        assert_eq!(status, 503);
        stop.await.unwrap();
        println!(
            "cycle {cycle}: not ready {unready:?} after stop was requested; 32 requests answered 503 in {answered:?} \
             (stop took {:?})",
            stopping.elapsed()
        );
        assert!(unready < Duration::from_secs(1), "cycle {cycle}: readiness took {unready:?}");
        assert!(answered < Duration::from_secs(1), "cycle {cycle}: 503s took {answered:?}");

        // Back on the same address: ready within a second, values again.
        let starting = Instant::now();
        operator = start_operator(&client, &pki, port);
        let ready = wait_for("/readyz to turn true", Duration::from_secs(5), async || {
            server.admin_get("/readyz").await.0 == 200
        })
        .await;
        let flowing =
            wait_for("values again", Duration::from_secs(30), async || value().await.0 == 200).await;
        println!(
            "cycle {cycle}: ready {ready:?} after the operator was started, values after {flowing:?} more \
             (leadership and first poll) — {:?} in all",
            starting.elapsed()
        );
        assert!(ready < Duration::from_secs(1), "cycle {cycle}: readiness took {ready:?}");
    }
    let (status, body) = value().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"][0]["value"], "2");
    let fds_after = fd_count();
    println!("open file descriptors: {fds_before} before {CYCLES} outages, {fds_after} after");
    assert!(fds_after <= fds_before + 6, "descriptors grew from {fds_before} to {fds_after}");
    let (_, metrics) = server.admin_get("/metrics").await;
    assert!(metrics.lines().any(|l| l == "ebb_metrics_apiserver_operator_link_up 1"), "{metrics}");
    assert!(
        metrics
            .lines()
            .any(|l| l
                .starts_with("ebb_metrics_apiserver_requests_total{route=\"externalmetrics\",code=\"503\"}")),
        "{metrics}"
    );

    server.stop().await;
    operator.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_operator_is_cut_off_before_the_request_timeout() {
    let (cluster, client) = start_cluster(Duration::from_secs(3600)).await;
    let pki = Pki::new(&cluster, "hung");
    let port = free_port();
    let operator = start_operator(&client, &pki, port);
    let proxy = FreezingProxy::start(port).await;
    // Value queries may take 30 s; the health check gives up after 1 s (4 × 250 ms).
    let server = start_metrics_apiserver(&client, &pki, proxy.port, &["--operator-timeout", "30s"]).await;
    create_deployment(&client, "web", 1).await;
    create_cron_so(&client, "web", "web", 2, 10).await;
    let metric = metric_name(&client, "web").await;
    let http = https_client(&cluster, None);
    let url = server.url(&value_path(&metric, "web"));
    let token = cluster.reader_token().await;
    wait_for("the first value", Duration::from_secs(20), async || {
        answer(http.get(&url).bearer_auth(&token)).await.0 == 200
    })
    .await;

    proxy.freeze(true);
    let frozen = Instant::now();
    let (status, body) = answer(http.get(&url).bearer_auth(&token)).await;
    let answered = frozen.elapsed();
    println!("operator hung: a request in flight was answered {status} after {answered:?}");
    assert_eq!(status, 503, "{body}");
    assert!(body["message"].as_str().unwrap().contains("is unreachable"), "{body}");
    assert!(answered < Duration::from_secs(2), "{answered:?}");
    assert_eq!(server.admin_get("/readyz").await.0, 503);

    proxy.freeze(false);
    let back = wait_for("values after the thaw", Duration::from_secs(10), async || {
        answer(http.get(&url).bearer_auth(&token)).await.0 == 200
    })
    .await;
    println!("operator answering again: values after {back:?}");
    assert_eq!(server.admin_get("/readyz").await.0, 200);

    server.stop().await;
    operator.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_operator_is_reported_as_not_leader() {
    let (cluster, client) = start_cluster(Duration::from_secs(3600)).await;
    let pki = Pki::new(&cluster, "follower");
    let (leader_port, follower_port) = (free_port(), free_port());
    let leader = start_operator(&client, &pki, leader_port);
    create_deployment(&client, "web", 1).await;
    create_cron_so(&client, "web", "web", 2, 10).await;
    let metric = metric_name(&client, "web").await;
    let to_leader = start_metrics_apiserver(&client, &pki, leader_port, &[]).await;
    let http = https_client(&cluster, None);
    let token = cluster.reader_token().await;
    let path = value_path(&metric, "web");
    wait_for("a value from the leader", Duration::from_secs(20), async || {
        answer(http.get(to_leader.url(&path)).bearer_auth(&token)).await.0 == 200
    })
    .await;

    let follower = start_operator(&client, &pki, follower_port);
    let to_follower = start_metrics_apiserver(&client, &pki, follower_port, &["--insecure-skip-auth"]).await;
    wait_for("readiness on the follower's link", Duration::from_secs(5), async || {
        to_follower.admin_get("/readyz").await.0 == 200
    })
    .await;
    let (status, body) = answer(http.get(to_follower.url(&path))).await;
    assert_eq!(status, 503, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("is not the leader"), "{message}");
    assert!(message.contains(&format!("https://127.0.0.1:{follower_port}")), "{message}");
    println!("follower: {message}");

    // The leader goes; the follower takes over and answers.
    leader.stop().await;
    let took = wait_for("the follower to lead and answer", Duration::from_secs(30), async || {
        answer(http.get(to_follower.url(&path))).await.0 == 200
    })
    .await;
    println!("the follower answered {took:?} after the leader stopped");
    let (status, body): (u16, Value) = answer(http.get(to_follower.url(&path))).await;
    assert_eq!((status, &body["items"][0]["value"]), (200, &Value::from("2")), "{body}");

    to_follower.stop().await;
    to_leader.stop().await;
    follower.stop().await;
    cluster.stop().await;
}

/// The serving certificate a new connection to `server` is given.
async fn served_certificate(cluster: &Cluster, server: &MetricsServer) -> Vec<u8> {
    let response = https_client(cluster, None).get(server.url("/livez")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let info = response.extensions().get::<reqwest::tls::TlsInfo>().unwrap();
    info.peer_certificate().unwrap().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_serving_certificate_is_served_without_restart() {
    let (cluster, client) = start_cluster(Duration::from_secs(3600)).await;
    let pki = Pki::new(&cluster, "rotate");
    let server = start_metrics_apiserver(&client, &pki, free_port(), &["--insecure-skip-auth"]).await;
    let first = std::fs::read_to_string(pki.dir.path("tls.crt")).unwrap();
    let first_der = ebb_sandbox::pki::Leaf { cert_pem: first, key_pem: String::new() }.cert_der().unwrap();
    assert_eq!(served_certificate(&cluster, &server).await, first_der.as_ref());
    // A connection opened before the rotation.
    let open = https_client(&cluster, None);
    assert_eq!(open.get(server.url("/livez")).send().await.unwrap().status().as_u16(), 200);

    for round in 1..=2 {
        let next = cluster.service_cert(SERVICE_NS, SERVICE);
        pki.rotate_serving(&next);
        let next_der = next.cert_der().unwrap();
        assert_ne!(next_der.as_ref(), first_der.as_ref());
        assert_eq!(served_certificate(&cluster, &server).await, next_der.as_ref(), "round {round}");
        let response = open.get(server.url("/apis")).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "the connection opened before still works");
    }
    // A broken replacement (certificate without its key) keeps the last good one.
    let good = std::fs::read(pki.dir.path("tls.crt")).unwrap();
    let orphan = cluster.service_cert(SERVICE_NS, SERVICE);
    pki.dir.write("tls.crt", &orphan.cert_pem);
    let good_der =
        ebb_sandbox::pki::Leaf { cert_pem: String::from_utf8(good).unwrap(), key_pem: String::new() }
            .cert_der()
            .unwrap();
    assert_eq!(served_certificate(&cluster, &server).await, good_der.as_ref());
    assert!(!server.task.is_finished());

    server.stop().await;
    cluster.stop().await;
}
