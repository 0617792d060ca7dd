//! Streaming lists (`sendInitialEvents=true`, the WatchList protocol client-go ≥ 0.35 uses by
//! default for its informers and `kubectl wait`): the same watch requests go to upstream
//! kube-apiserver (the oracle) and to the local control plane, and the answers must agree.
//!
//! What upstream answers (kube-apiserver v1.35, recorded with curl):
//! - `watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan`
//!   (resourceVersion empty, `0` or one already reached): an ADDED event per current object, then
//!   one BOOKMARK whose object is [`configmap_end`] / [`scaledobject_end`] — apiVersion and kind
//!   of the resource, `metadata.resourceVersion` the list's version (not older than any object
//!   sent), annotation `k8s.io/initial-events-end: "true"` — then the watch goes on.
//!   (Built-in kinds whose Go type has non-pointer struct fields also print those empty, e.g. a
//!   CustomResourceDefinition's `spec`; clients read only metadata, and the local control plane
//!   omits them.)
//! - Without `allowWatchBookmarks`: the ADDED events and no closing bookmark — no error.
//! - `sendInitialEvents=false` with `resourceVersionMatch=NotOlderThan` and no resourceVersion:
//!   no initial events; the watch starts at the current version.
//! - Malformed combinations: 422 `Invalid` on `ListOptions.meta.k8s.io` ([`REFUSED`]).
//! - A resourceVersion not reached yet: after about 3 s, one ERROR event with a 504 `Timeout`
//!   Status `Too large resource version` (not compared: the local store has no lag to wait out).

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

use super::{common, get, upstream_client};

const NS: &str = "watch-list";
const STREAM: &str =
    "watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan";

/// Upstream's closing bookmark for ConfigMaps (resourceVersion masked).
fn configmap_end() -> Value {
    json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"resourceVersion": "<rv>", "annotations": {"k8s.io/initial-events-end": "true"}}})
}

/// Upstream's closing bookmark for a custom resource (resourceVersion masked).
fn scaledobject_end() -> Value {
    json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"annotations": {"k8s.io/initial-events-end": "true"}, "resourceVersion": "<rv>"}})
}

/// Refused option combinations on `configmaps` (watches and lists), with upstream's code and message.
const REFUSED: &[(&str, u16, &str)] = &[
    (
        "watch=true&sendInitialEvents=true&allowWatchBookmarks=true",
        422,
        "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
    ),
    (
        "watch=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan",
        422,
        "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
    ),
    (
        "sendInitialEvents=true&resourceVersionMatch=NotOlderThan",
        422,
        "ListOptions.meta.k8s.io \"\" is invalid: [resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided, sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list]",
    ),
    (
        "watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=Exact&resourceVersion=1",
        422,
        "ListOptions.meta.k8s.io \"\" is invalid: [resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan, resourceVersionMatch: Unsupported value: \"Exact\": supported values: \"NotOlderThan\"]",
    ),
    (
        "watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&continue=abc",
        422,
        "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue is provided",
    ),
    (
        "resourceVersionMatch=Exact&resourceVersion=0",
        422,
        "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
    ),
    (
        "resourceVersionMatch=Bogus&resourceVersion=5",
        422,
        "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Unsupported value: \"Bogus\": supported values: \"Exact\", \"NotOlderThan\", \"\"",
    ),
    (
        "resourceVersionMatch=NotOlderThan&resourceVersion=5&continue=abc",
        422,
        "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue is provided",
    ),
];

/// One event of a watch body as compared: ADDED/MODIFIED by name, the closing bookmark by its
/// object with the resourceVersion masked. Periodic bookmarks (no annotation) are dropped: their
/// timing differs by design.
fn events(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut max_rv = 0u64;
    for line in body.lines().filter(|l| !l.trim().is_empty()) {
        let ev: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let obj = &ev["object"];
        let rv: u64 = obj["metadata"]["resourceVersion"].as_str().and_then(|v| v.parse().ok()).unwrap_or(0);
        match ev["type"].as_str().unwrap_or_default() {
            "BOOKMARK" if obj["metadata"]["annotations"]["k8s.io/initial-events-end"] == "true" => {
                assert!(
                    rv >= max_rv,
                    "the closing bookmark's version {rv} is older than an object sent ({max_rv})"
                );
                let mut masked = obj.clone();
                masked["metadata"]["resourceVersion"] = json!("<rv>");
                out.push(format!("BOOKMARK {masked}"));
            }
            "BOOKMARK" => {}
            t => {
                max_rv = max_rv.max(rv);
                out.push(format!("{t} {}", obj["metadata"]["name"].as_str().unwrap_or_default()));
            }
        }
    }
    out
}

async fn configmap(client: &kube::Client, name: &str) {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    let cm = serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"wl": "1"}}, "data": {"k": name}}),
    );
    cms.create(&PostParams::default(), &cm.unwrap()).await.unwrap();
}

/// Every answer compared, in order, as text lines.
async fn answers(client: &kube::Client) -> Vec<String> {
    let mut out = Vec::new();
    let cms = format!("/api/v1/namespaces/{NS}/configmaps");
    let current = get(client, &format!("{cms}?labelSelector=wl")).await.unwrap();
    let current: Value = serde_json::from_str(&current).unwrap();
    let current_rv = current["metadata"]["resourceVersion"].as_str().unwrap().to_owned();
    for (what, query) in [
        ("no resourceVersion", format!("{STREAM}&labelSelector=wl&timeoutSeconds=1")),
        ("resourceVersion 0", format!("{STREAM}&labelSelector=wl&resourceVersion=0&timeoutSeconds=1")),
        (
            "reached resourceVersion",
            format!("{STREAM}&labelSelector=wl&resourceVersion={current_rv}&timeoutSeconds=1"),
        ),
        ("field selector", format!("{STREAM}&fieldSelector=metadata.name%3Da&timeoutSeconds=1")),
        ("nothing selected", format!("{STREAM}&labelSelector=none&timeoutSeconds=1")),
        (
            "no bookmarks",
            "watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&labelSelector=wl&timeoutSeconds=1"
                .to_owned(),
        ),
    ] {
        let body = get(client, &format!("{cms}?{query}")).await;
        out.push(format!("{what}: {:?}", body.map(|b| events(&b))));
    }
    let so = format!("/apis/keda.sh/v1alpha1/namespaces/{NS}/scaledobjects?{STREAM}&timeoutSeconds=1");
    out.push(format!("custom resource: {:?}", get(client, &so).await.map(|b| events(&b))));
    for (query, _, _) in REFUSED {
        // timeoutSeconds ends the answer should the request be taken.
        let answer = get(client, &format!("{cms}?{query}&timeoutSeconds=1")).await;
        out.push(format!("{query}: {:?}", answer.map(|b| events(&b))));
    }
    // The watch goes on after the closing bookmark; with sendInitialEvents=false it starts now.
    for (what, query, name) in [
        ("then watching", format!("{STREAM}&labelSelector=wl&timeoutSeconds=3"), "c"),
        (
            "no initial events",
            "watch=true&sendInitialEvents=false&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&labelSelector=wl&timeoutSeconds=3".to_owned(),
            "d",
        ),
    ] {
        let (c, path) = (client.clone(), format!("{cms}?{query}"));
        let watch = tokio::spawn(async move { get(&c, &path).await });
        tokio::time::sleep(Duration::from_millis(1000)).await;
        configmap(client, name).await;
        out.push(format!("{what}: {:?}", watch.await.unwrap().map(|b| events(&b))));
    }
    out
}

async fn prepare(client: &kube::Client) {
    let nss: Api<Namespace> = Api::all(client.clone());
    let ns = serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap();
    nss.create(&PostParams::default(), &ns).await.unwrap();
    configmap(client, "a").await;
    configmap(client, "b").await;
}

fn expected() -> Vec<String> {
    let (cm_end, so_end) =
        (format!("BOOKMARK {}", configmap_end()), format!("BOOKMARK {}", scaledobject_end()));
    let mut out = vec![
        format!("no resourceVersion: Ok([\"ADDED a\", \"ADDED b\", {cm_end:?}])"),
        format!("resourceVersion 0: Ok([\"ADDED a\", \"ADDED b\", {cm_end:?}])"),
        format!("reached resourceVersion: Ok([\"ADDED a\", \"ADDED b\", {cm_end:?}])"),
        format!("field selector: Ok([\"ADDED a\", {cm_end:?}])"),
        format!("nothing selected: Ok([{cm_end:?}])"),
        "no bookmarks: Ok([\"ADDED a\", \"ADDED b\"])".to_owned(),
        format!("custom resource: Ok([{so_end:?}])"),
    ];
    out.extend(REFUSED.iter().map(|(q, code, msg)| format!("{q}: Err(({code}, {msg:?}))")));
    out.push(format!("then watching: Ok([\"ADDED a\", \"ADDED b\", {cm_end:?}, \"ADDED c\"])"));
    out.push("no initial events: Ok([\"ADDED d\"])".to_owned());
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_lists_answer_as_upstream() {
    let upstream = upstream_client().await;
    ebb_testbackends::kubernetes::crds::install(&upstream, "watch-list-test").await.unwrap();
    let (sb, local) = common::start(Default::default()).await;
    for (_, crd) in ebb_api::crds::all() {
        sb.create(&serde_json::to_value(&crd).unwrap()).unwrap();
    }
    prepare(&upstream).await;
    prepare(&local).await;
    let (from_upstream, from_local) = (answers(&upstream).await, answers(&local).await);
    sb.stop().await;
    let expected = expected();
    assert_eq!(from_upstream, expected, "upstream no longer answers as recorded");
    for (i, (l, e)) in from_local.iter().zip(&expected).enumerate() {
        assert_eq!(l, e, "answer {i} of the local control plane differs from upstream's");
    }
    assert_eq!(from_local.len(), expected.len());
}
