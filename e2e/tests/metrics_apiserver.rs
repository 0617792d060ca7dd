//! The metrics-apiserver as the cluster's `v1beta1.external.metrics.k8s.io` APIService, with the
//! operator, on the cluster `EBB_E2E_CLUSTER` selects (the local control plane, or upstream
//! Kubernetes with its real aggregator, HPA controller, TokenReview and RBAC):
//!
//! - the HPA controller reads a cron ScaledObject's metric through the aggregator and scales the
//!   Deployment to the value; the real kubectl reads the same value and the resource list
//!   (which must be seed 003's, byte for byte);
//! - direct requests to the secure port: no credentials, a denied or unknown token, a client
//!   certificate from another CA, a front-proxy certificate with a name not allowed (local only:
//!   upstream's front-proxy CA key is not at hand), and forged identity headers never get a value; the aggregator's certificate and a valid token do;
//!   bad selectors and unknown objects are answered with Status bodies that say what to check;
//!   SubjectAccessReview answers are cached for the configured TTL and then asked again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod metrics_apiserver_support;

use std::time::{Duration, Instant};

use ebb_sandbox::pki::CertAuthority;
use ebb_sandbox::sandbox::FRONT_PROXY_CLIENT;
use metrics_apiserver_support::*;
use serde_json::{Value, json};

/// What `kubectl get --raw /apis/external.metrics.k8s.io/v1beta1` prints in seed 003.
fn seed_003_resource_list() -> Value {
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "external.metrics.k8s.io/v1beta1",
        "resources": [{"name": "externalmetrics", "singularName": "", "namespaced": true,
            "kind": "ExternalMetricValueList", "verbs": ["get"]}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hpa_reads_the_metric_through_the_aggregator() {
    let Stack { cluster, client, pki: _, operator, server } = start_stack("aggregated").await;

    // min 1, desiredReplicas 3: only the HPA, reading the metric, can take it to 3.
    create_deployment(&client, "web", 1).await;
    create_cron_so(&client, "web", "web", 3, 10).await;
    let metric = metric_name(&client, "web").await;
    assert!(metric.starts_with("s0-cron-UTC-") && metric.ends_with("xxxx"), "{metric}");
    let Some(took) = wait_until(Duration::from_secs(60), async || replicas(&client, "web").await == 3).await
    else {
        let hpa = hpa_state(&client, "web").await;
        panic!("the HPA did not scale web to 3 within 60 s; its state: {hpa}\n{}", cluster.logs(20));
    };
    println!("HPA scaled web 1 -> 3 through the aggregator in {took:?}");

    let path = value_path(&metric, "web");
    let (ok, out, err) = kubectl(&cluster, &["get", "--raw", &path]).await;
    assert!(ok, "kubectl get --raw {path}: {err}");
    println!("$ kubectl get --raw \"{path}\"\n{out}");
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list["kind"], "ExternalMetricValueList");
    assert_eq!(list["apiVersion"], "external.metrics.k8s.io/v1beta1");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{out}");
    assert_eq!(items[0]["metricName"], metric.as_str());
    assert_eq!(items[0]["value"], "3");
    assert_eq!(items[0]["metricLabels"]["scaledobject.keda.sh/name"], "web");
    let stamp = chrono::DateTime::parse_from_rfc3339(items[0]["timestamp"].as_str().unwrap()).unwrap();
    assert!((chrono::Utc::now() - stamp.to_utc()).num_seconds().abs() < 30, "{stamp}");

    let (ok, out, err) = kubectl(&cluster, &["get", "--raw", "/apis/external.metrics.k8s.io/v1beta1"]).await;
    assert!(ok, "{err}");
    println!("$ kubectl get --raw /apis/external.metrics.k8s.io/v1beta1\n{out}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), seed_003_resource_list());
    assert_eq!(out.trim_end(), ebb_metrics_apiserver::discovery::RESOURCE_LIST);

    // Mistakes through kubectl come back as the server's Status message.
    let no_selector = format!("/apis/external.metrics.k8s.io/v1beta1/namespaces/default/{metric}");
    let (ok, _, err) = kubectl(&cluster, &["get", "--raw", &no_selector]).await;
    assert!(!ok);
    assert!(err.contains("no labelSelector"), "{err}");
    let (ok, _, err) = kubectl(&cluster, &["get", "--raw", &value_path(&metric, "nothing")]).await;
    assert!(!ok);
    assert!(err.contains("ScaledObject default/nothing is unknown to the operator"), "{err}");

    let (_, metrics) = server.admin_get("/metrics").await;
    let served: f64 = metrics
        .lines()
        .find(|l| {
            l.starts_with("ebb_metrics_apiserver_requests_total{route=\"externalmetrics\",code=\"200\"}")
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0);
    assert!(served >= 2.0, "the HPA's and kubectl's reads are counted:\n{metrics}");

    server.stop().await;
    operator.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_requests_are_authenticated_and_authorized() {
    let (cluster, client) = start_cluster(Duration::from_secs(3600)).await;
    let pki = Pki::new(&cluster, "direct");
    let port = free_port();
    let operator = start_operator(&client, &pki, port);
    let server = start_metrics_apiserver(&client, &pki, port, &["--auth-cache-ttl", "2s"]).await;
    create_deployment(&client, "api", 1).await;
    create_cron_so(&client, "api", "api", 2, 10).await;
    let metric = metric_name(&client, "api").await;
    let alice = cluster.add_user("alice", &["devs", "system:authenticated"]).await;
    let bob = cluster.add_user("bob", &["system:authenticated"]).await;
    let carol = cluster.add_user("carol", &["system:authenticated"]).await;
    cluster.deny(&bob).await;

    let plain = https_client(&cluster, None);
    let url = server.url(&value_path(&metric, "api"));
    let get = |client: &reqwest::Client, token: Option<&str>| {
        let r = client.get(&url);
        match token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    };
    // A valid token gets the value (once the operator polled the new object).
    let mut body = Value::Null;
    wait_for("alice to read the value", Duration::from_secs(20), async || {
        let (status, b) = answer(get(&plain, Some(&alice.token))).await;
        body = b;
        status == 200
    })
    .await;
    assert_eq!(body["items"][0]["value"], "2", "{body}");

    let refused = |what: &str, status: u16, body: &Value, code: u16, fragment: &str| {
        assert_eq!(status, code, "{what}: {body}");
        assert_eq!(body["kind"], "Status", "{what}: {body}");
        assert_eq!(body["code"], code, "{what}: {body}");
        assert!(body.get("items").is_none(), "{what}: no value in a refusal: {body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(fragment), "{what}: {message}");
    };
    let (status, body) = answer(get(&plain, None)).await;
    refused("no credentials", status, &body, 401, "no credentials");
    let (status, body) = answer(get(&plain, Some("not-a-token"))).await;
    refused("unknown token", status, &body, 401, "not accepted by a TokenReview");
    let (status, body) = answer(get(&plain, Some(&bob.token))).await;
    refused("denied token", status, &body, 403, &format!("User \"{}\" cannot get resource", bob.name));
    let forged = plain.get(&url).header("X-Remote-User", "admin").header("X-Remote-Group", "system:masters");
    let (status, body) = answer(forged).await;
    refused("forged identity headers", status, &body, 401, "no credentials");

    // A client certificate from another CA is refused in the handshake (or with 401).
    let stranger =
        CertAuthority::new("not-the-front-proxy-ca").unwrap().issue_client(FRONT_PROXY_CLIENT, &[]).unwrap();
    let result =
        https_client(&cluster, Some(&stranger)).get(&url).header("X-Remote-User", "admin").send().await;
    match result {
        Err(err) => println!("certificate from another CA refused in the handshake: {err}"),
        Ok(response) => {
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            refused("certificate from another CA", status, &body, 401, "");
        }
    }
    // The front-proxy CA, but a name that is not allowed.
    let mallory = cluster.front_proxy_ca().issue_client("mallory", &[]).unwrap();
    let (status, body) =
        answer(https_client(&cluster, Some(&mallory)).get(&url).header("X-Remote-User", "admin")).await;
    refused("disallowed front-proxy name", status, &body, 401, "not an allowed front-proxy name");
    // The aggregator's certificate: the headers name the user, and that user is authorized.
    let proxy = cluster.front_proxy_client();
    let aggregator = https_client(&cluster, Some(&proxy));
    let as_user = |user: &str| {
        aggregator.get(&url).header("X-Remote-User", user).header("X-Remote-Group", "system:authenticated")
    };
    let (status, body) = answer(as_user(&alice.name)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"][0]["value"], "2");
    let (status, body) = answer(as_user(&bob.name)).await;
    refused("aggregator speaking for a denied user", status, &body, 403, &format!("User \"{}\"", bob.name));
    let (status, body) = answer(aggregator.get(&url)).await;
    refused("aggregator certificate without a user", status, &body, 401, "no credentials");

    // Mistakes: each Status says what to check.
    let base = |path: &str| server.url(path);
    let cases = [
        (
            format!("/apis/external.metrics.k8s.io/v1beta1/namespaces/default/{metric}"),
            400,
            "no labelSelector",
        ),
        (
            format!(
                "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/{metric}?labelSelector=app%3Dapi"
            ),
            400,
            "does not select one ScaledObject",
        ),
        (
            format!(
                "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/{metric}?labelSelector=a+in+%28b"
            ),
            400,
            "invalid labelSelector",
        ),
        (value_path(&metric, "missing"), 404, "ScaledObject default/missing is unknown to the operator"),
        (value_path("s1-nothing", "api"), 404, &format!("has no metric s1-nothing; it has: {metric}")),
        ("/apis/external.metrics.k8s.io/v1beta1/s0-x".to_owned(), 404, "external metrics are namespaced"),
    ];
    for (path, code, fragment) in cases {
        let (status, body) = answer(plain.get(base(&path)).bearer_auth(&alice.token)).await;
        refused(&path, status, &body, code, fragment);
    }
    let (status, body) = answer(plain.post(&url).bearer_auth(&alice.token)).await;
    refused("POST", status, &body, 405, "read-only");

    // Discovery and OpenAPI need credentials too; health probes do not.
    for path in [
        "/apis",
        "/apis/external.metrics.k8s.io",
        "/apis/external.metrics.k8s.io/v1beta1",
        "/openapi/v2",
        "/openapi/v3",
    ] {
        let (status, body) = answer(plain.get(base(path))).await;
        refused(path, status, &body, 401, "no credentials");
        let (status, body) = answer(plain.get(base(path)).bearer_auth(&alice.token)).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (status, body) =
        answer(plain.get(base("/apis/external.metrics.k8s.io/v1beta1")).bearer_auth(&alice.token)).await;
    assert_eq!((status, body), (200, seed_003_resource_list()));
    for path in ["/livez", "/readyz", "/healthz"] {
        let response = plain.get(base(path)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        assert_eq!(response.text().await.unwrap(), "ok");
    }

    // Access decisions are reused for the TTL (2 s here), then asked again.
    let (status, _) = answer(get(&plain, Some(&carol.token))).await;
    assert_eq!(status, 200);
    cluster.deny(&carol).await;
    let denied_at = Instant::now();
    let (status, _) = answer(get(&plain, Some(&carol.token))).await;
    assert_eq!(status, 200, "the cached decision still holds right after the change");
    let took = wait_for("carol's denial to be seen", Duration::from_secs(10), async || {
        answer(get(&plain, Some(&carol.token))).await.0 == 403
    })
    .await;
    let seen_after = denied_at.elapsed();
    println!("SubjectAccessReview cache: denial seen {seen_after:?} after the change ({took:?} of polling)");
    assert!(
        seen_after >= Duration::from_millis(900) && seen_after < Duration::from_secs(5),
        "{seen_after:?}"
    );

    let (_, metrics) = server.admin_get("/metrics").await;
    for series in [
        "ebb_metrics_apiserver_requests_total{route=\"externalmetrics\",code=\"401\"}",
        "ebb_metrics_apiserver_requests_total{route=\"externalmetrics\",code=\"403\"}",
        "ebb_metrics_apiserver_auth_reviews_total{review=\"access\",result=\"cached\"}",
        "ebb_metrics_apiserver_auth_reviews_total{review=\"token\",result=\"denied\"}",
    ] {
        assert!(metrics.lines().any(|l| l.starts_with(series)), "missing {series} in\n{metrics}");
    }

    server.stop().await;
    operator.stop().await;
    cluster.stop().await;
}
