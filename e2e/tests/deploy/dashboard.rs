//! deploy/grafana/ebb-dashboard.json against what ebb exports: the metric names of every query
//! (panels and template variables) are read with a small PromQL scanner and compared with the
//! names a running operator and webhook serve on /metrics (their `# TYPE` lines and samples),
//! after the operator has polled a real ScaledObject. Series of kube-state-metrics are allowed by
//! name. The KEDA names the README lists for KEDA's own dashboard are checked the same way.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Parser as _;
use ebb_sandbox::sandbox::{Config, Sandbox};
use kube::api::{Api, DynamicObject, PostParams};
use serde_json::{Value, json};

use base64::Engine as _;

use super::{deploy, flags::ADMIN_PATHS, render_overlay, temp_dir};

/// kube-state-metrics series the dashboard may query (HPA replicas of each ScaledObject).
const KUBE_STATE_METRICS: [&str; 4] = [
    "kube_horizontalpodautoscaler_status_current_replicas",
    "kube_horizontalpodautoscaler_status_desired_replicas",
    "kube_horizontalpodautoscaler_spec_max_replicas",
    "kube_horizontalpodautoscaler_spec_min_replicas",
];

/// The KEDA metric names (keda-semantics §8) the dashboard must show.
const KEDA_NAMES: [&str; 12] = [
    "keda_scaler_metrics_value",
    "keda_scaler_metrics_latency_seconds",
    "keda_scaler_active",
    "keda_scaler_detail_errors_total",
    "keda_scaled_object_errors_total",
    "keda_scaled_object_paused",
    "keda_internal_scale_loop_latency_seconds",
    "keda_resource_registered_total",
    "keda_trigger_registered_total",
    "keda_build_info",
    "keda_webhook_scaled_object_validations_total",
    "keda_webhook_scaled_object_validation_errors_total",
];

/// The ebb-exported names KEDA's published dashboard (config/grafana/keda-dashboard.json in
/// kedacore/keda) queries, and whether ebb exports each: the dashboard still uses KEDA's
/// pre-2.14 names for the error counters. deploy/README.md carries the same table.
const KEDA_DASHBOARD: [(&str, bool); 4] = [
    ("keda_scaler_metrics_value", true),
    ("keda_scaler_errors_total", false),
    ("keda_scaler_errors", false),
    ("keda_scaled_object_errors", false),
];

/// KEDA names the dashboard shows that a running operator does not export yet: the operator
/// registers the registration gauges but never calls `Metrics::object_added`/`object_removed`
/// outside its unit tests, so the series never appear. The test fails once they do, so that
/// this list (and deploy/README.md) is emptied.
const NOT_EXPORTED_YET: [&str; 0] = [];

/// PromQL words that are neither functions (those are followed by `(`) nor metric names.
const KEYWORDS: [&str; 8] = ["bool", "and", "or", "unless", "offset", "atan2", "inf", "nan"];

/// Clauses followed by a parenthesized list of label names.
const GROUPING: [&str; 6] = ["by", "without", "on", "ignoring", "group_left", "group_right"];

/// The metric names a PromQL expression (or a Grafana `label_values(...)` query) reads.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut s = expr.trim().to_owned();
    // label_values(metric{...}, label) → metric{...}; label_values(label) → nothing.
    if let Some(inner) = s.strip_prefix("label_values(").and_then(|r| r.strip_suffix(')')) {
        s = match top_level_comma(inner) {
            Some(i) => inner[..i].to_owned(),
            None => String::new(),
        };
    }
    let s = strip_delimited(&strip_grouping_lists(&strip_strings_and_variables(&s)));
    let chars: Vec<char> = s.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace()).copied();
            if next != Some('(') && !KEYWORDS.contains(&word.as_str()) {
                names.insert(word);
            }
        } else if c.is_ascii_digit() || c == '.' {
            // Numbers and durations (5m, 1.5e3).
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    names
}

fn top_level_comma(s: &str) -> Option<usize> {
    let mut depth = 0i32;
    let mut last = None;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '{' | '[' => depth += 1,
            ')' | '}' | ']' => depth -= 1,
            ',' if depth == 0 => last = Some(i),
            _ => {}
        }
    }
    last
}

/// Removes quoted strings and Grafana variables (`$name`, `${name}`, `$__rate_interval`).
fn strip_strings_and_variables(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                let mut escaped = false;
                for d in chars.by_ref() {
                    if !escaped && d == c {
                        break;
                    }
                    escaped = d == '\\' && !escaped;
                }
                out.push_str("\"\"");
            }
            '$' => {
                if chars.peek() == Some(&'{') {
                    for d in chars.by_ref() {
                        if d == '}' {
                            break;
                        }
                    }
                } else {
                    while chars.peek().is_some_and(|d| d.is_ascii_alphanumeric() || *d == '_') {
                        chars.next();
                    }
                }
                out.push('0');
            }
            _ => out.push(c),
        }
    }
    out
}

/// Removes label matchers `{...}` and ranges `[...]`.
fn strip_delimited(s: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in s.chars() {
        match c {
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Removes the parenthesized label lists of grouping clauses so their labels are not taken for
/// metric names.
fn strip_grouping_lists(s: &str) -> String {
    let mut out = s.to_owned();
    for kw in GROUPING {
        while let Some(pos) = find_word_before_paren(&out, kw) {
            let open = out[pos..].find('(').map(|i| pos + i).unwrap_or(out.len());
            let close = out[open..].find(')').map(|i| open + i + 1).unwrap_or(out.len());
            out.replace_range(pos..close, " ");
        }
    }
    out
}

fn find_word_before_paren(s: &str, word: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = s[from..].find(word).map(|i| from + i) {
        let before_ok =
            i == 0 || !s[..i].chars().last().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        let after = s[i + word.len()..].trim_start();
        if before_ok && after.starts_with('(') {
            return Some(i);
        }
        from = i + word.len();
    }
    None
}

/// Every query of the dashboard: panel targets' `expr` and query variables.
fn dashboard_queries(dash: &Value) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(e)) = m.get("expr") {
                    out.push(e.clone());
                }
                if m.get("type") == Some(&json!("query")) {
                    match m.get("query") {
                        Some(Value::String(q)) => out.push(q.clone()),
                        Some(Value::Object(q)) => {
                            out.extend(q.get("query").and_then(Value::as_str).map(str::to_owned))
                        }
                        _ => {}
                    }
                }
                m.values().for_each(|v| walk(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(dash, &mut out);
    out
}

fn dashboard_metric_names() -> BTreeSet<String> {
    let text = std::fs::read_to_string(deploy().join("grafana/ebb-dashboard.json")).unwrap();
    let dash: Value = serde_json::from_str(&text).unwrap();
    let queries = dashboard_queries(&dash);
    assert!(queries.len() >= 20, "only {} queries found", queries.len());
    queries.iter().flat_map(|q| metric_names(q)).collect()
}

/// Names served in a Prometheus text exposition: sample names, and the names each `# TYPE`
/// line implies.
fn exported_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (name, ty) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            match ty {
                "counter" => names.insert(format!("{name}_total")),
                "histogram" => {
                    ["_bucket", "_sum", "_count"].iter().all(|s| names.insert(format!("{name}{s}")))
                }
                "info" => names.insert(format!("{name}_info")),
                _ => names.insert(name.to_owned()),
            };
        } else if !line.starts_with('#') && !line.is_empty() {
            names.insert(line.split(['{', ' ']).next().unwrap_or("").to_owned());
        }
    }
    names
}

#[test]
fn promql_scanner_finds_metric_names() {
    let cases: [(&str, &[&str]); 8] = [
        ("keda_scaler_active{exported_namespace=~\"$namespace\"}", &["keda_scaler_active"]),
        ("sum by (scaledObject, scaler) (rate(a_total{x=\"y,z\"}[$__rate_interval]))", &["a_total"]),
        ("histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))", &["h_bucket"]),
        ("count(m == 1) or vector(0)", &["m"]),
        ("sum(rate(s_sum[1m])) / sum(rate(s_count[1m]))", &["s_count", "s_sum"]),
        (
            "label_values(keda_scaled_object_paused{exported_namespace=~\"$namespace\"}, scaledObject)",
            &["keda_scaled_object_paused"],
        ),
        ("label_values(namespace)", &[]),
        ("max without (instance) (g) * on (namespace) group_left (owner) kube_x", &["g", "kube_x"]),
    ];
    for (expr, want) in cases {
        let got = metric_names(expr);
        let want: BTreeSet<String> = want.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(got, want, "{expr}");
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let resp = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_queries_only_metrics_ebb_exports() {
    let queried = dashboard_metric_names();
    for name in KEDA_NAMES {
        assert!(queried.contains(name), "the dashboard does not show {name}");
    }

    let sb = Sandbox::start(Config { controllers: false, ..Default::default() }).await.unwrap();
    for (_, crd) in ebb_api::crds::all() {
        sb.create(&serde_json::to_value(&crd).unwrap()).unwrap();
    }
    let kc = kube::config::Kubeconfig::from_yaml(&sb.kubeconfig()).unwrap();
    let client =
        kube::Client::try_from(kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap())
            .unwrap();

    // The webhook, on the control plane's certificate for its Service.
    let dir = temp_dir("dashboard");
    let leaf = sb.service_cert("keda", "ebb-webhook").unwrap();
    std::fs::write(dir.join("tls.crt"), &leaf.cert_pem).unwrap();
    std::fs::write(dir.join("tls.key"), &leaf.key_pem).unwrap();
    let args = ebb_webhook::Args::try_parse_from([
        "ebb-webhook",
        "--admin-addr=127.0.0.1:0",
        "--secure-addr=127.0.0.1:0",
        &format!("--tls-cert-file={}", dir.join("tls.crt").display()),
        &format!("--tls-key-file={}", dir.join("tls.key").display()),
    ])
    .unwrap();
    let bound = ebb_webhook::bind(&args, client.clone()).await.unwrap();
    let webhook_admin = bound.admin_addr();
    sb.map_service("keda", "ebb-webhook", bound.secure_addr());
    let index = bound.webhook().index.clone();
    let (wh_trigger, wh_shutdown) = ebb_plumbing::shutdown::channel();
    let webhook = tokio::spawn(async move { bound.serve(wh_shutdown).await });

    assert!(index.wait_synced(Duration::from_secs(20)).await, "the webhook's watches never listed");
    // Registered as deployed, with the control plane's CA as caBundle: every ScaledObject below
    // is reviewed, so the webhook's counters have samples.
    let mut vwc =
        render_overlay("default").get("ValidatingWebhookConfiguration", "keda-admission").unwrap().clone();
    let ca = base64::engine::general_purpose::STANDARD.encode(sb.ca.cert_pem());
    for hook in vwc["webhooks"].as_array_mut().unwrap() {
        hook["clientConfig"]["caBundle"] = json!(ca);
    }
    sb.create(&vwc).unwrap();

    // The operator, polling one cron ScaledObject every second.
    let deps: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &kube::api::ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
    );
    deps.create(&PostParams::default(), &serde_json::from_value(json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"}, "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "web"}]}}}})).unwrap())
        .await
        .unwrap();
    let sos: Api<ebb_api::ScaledObject> = Api::namespaced(client.clone(), "default");
    sos.create(&PostParams::default(), &serde_json::from_value(json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": "web"}, "spec": {"scaleTargetRef": {"name": "web"}, "pollingInterval": 1, "minReplicaCount": 1,
        "triggers": [{"type": "cron", "metadata": {"timezone": "UTC", "start": "0 0 * * *", "end": "1 0 * * *", "desiredReplicas": "2"}}]}})).unwrap())
        .await
        .unwrap();
    let mut bad: ebb_api::ScaledObject = serde_json::from_value(json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": "bad"}, "spec": {"scaleTargetRef": {"name": "web"}, "minReplicaCount": 3, "maxReplicaCount": 1,
        "triggers": [{"type": "cron", "metadata": {"timezone": "UTC", "start": "0 0 * * *", "end": "1 0 * * *", "desiredReplicas": "2"}}]}})).unwrap();
    bad.metadata.namespace = None;
    let denied = sos.create(&PostParams::default(), &bad).await;
    assert!(denied.is_err(), "the webhook admitted minReplicaCount > maxReplicaCount");
    let operator_admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let args = ebb_operator::Args::try_parse_from([
        "ebb-operator",
        "--admin-addr",
        &operator_admin.to_string(),
        "--leader-elect=false",
    ])
    .unwrap();
    let (op_trigger, op_shutdown) = ebb_plumbing::shutdown::channel();
    let operator = tokio::spawn(ebb_operator::serve(args, client.clone(), op_shutdown));

    let started = Instant::now();
    let operator_text = loop {
        let text = match reqwest::get(format!("http://{operator_admin}/metrics")).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if text.contains("keda_scaler_metrics_value{")
            && text.contains("keda_internal_scale_loop_latency_seconds{")
        {
            break text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the operator never polled the ScaledObject:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (status, webhook_text) = get(webhook_admin, "/metrics").await;
    assert_eq!(status, 200);
    for admin in [operator_admin, webhook_admin] {
        for path in ADMIN_PATHS {
            let (status, _) = get(admin, path).await;
            assert!(status == 200 || (path == "/readyz" && status == 503), "{admin}{path}: {status}");
        }
    }

    let exported: BTreeSet<String> =
        exported_names(&operator_text).union(&exported_names(&webhook_text)).cloned().collect();
    let missing: Vec<&String> = queried
        .iter()
        .filter(|n| {
            !exported.contains(*n)
                && !KUBE_STATE_METRICS.contains(&n.as_str())
                && !NOT_EXPORTED_YET.contains(&n.as_str())
        })
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics ebb does not export: {missing:?}\nexported: {exported:?}"
    );
    for name in NOT_EXPORTED_YET {
        assert!(
            !exported.contains(name),
            "{name} is exported now: remove it from NOT_EXPORTED_YET and the README"
        );
    }
    for (name, exported_by_ebb) in KEDA_DASHBOARD {
        assert_eq!(
            exported.contains(name),
            exported_by_ebb,
            "{name}: deploy/README.md's table of KEDA's dashboard is out of date"
        );
    }
    println!("dashboard queries {} metrics, all exported: {queried:?}", queried.len());

    op_trigger.trigger();
    wh_trigger.trigger();
    let _ = tokio::time::timeout(Duration::from_secs(10), operator).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), webhook).await;
    std::fs::remove_dir_all(&dir).unwrap();
    sb.stop().await;
}
