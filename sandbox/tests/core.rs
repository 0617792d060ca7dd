//! Conformance of the local control plane with kube-apiserver, driven through kube-rs: each
//! test checks one behaviour a real API server has.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;

fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "main", "image": "x"}]}}}
    }))
    .unwrap()
}

#[tokio::test]
async fn crud_conflicts_and_selectors() {
    let (sb, client) = common::start(Default::default()).await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let created = deps.create(&PostParams::default(), &deployment("web", 2)).await.unwrap();
    assert!(created.metadata.uid.is_some());
    assert_eq!(created.metadata.generation, Some(1));
    let again = deps.create(&PostParams::default(), &deployment("web", 2)).await.unwrap_err();
    assert!(
        matches!(again, kube::Error::Api(ref e) if e.code == 409 && e.reason == "AlreadyExists"),
        "{again:?}"
    );

    // Optimistic concurrency: a stale resourceVersion is a 409 Conflict.
    let mut stale = created.clone();
    let mut fresh = created.clone();
    fresh.spec.as_mut().unwrap().replicas = Some(3);
    let updated = deps.replace("web", &PostParams::default(), &fresh).await.unwrap();
    assert_eq!(updated.metadata.generation, Some(2), "a spec change bumps generation");
    stale.spec.as_mut().unwrap().replicas = Some(4);
    let err = deps.replace("web", &PostParams::default(), &stale).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref e) if e.code == 409 && e.reason == "Conflict"), "{err:?}");

    deps.create(&PostParams::default(), &deployment("api", 1)).await.unwrap();
    let web_only = deps.list(&ListParams::default().labels("app=web")).await.unwrap();
    assert_eq!(web_only.items.len(), 1);
    let by_name = deps.list(&ListParams::default().fields("metadata.name=api")).await.unwrap();
    assert_eq!(by_name.items[0].metadata.name.as_deref(), Some("api"));
    let page = deps.list(&ListParams::default().limit(1)).await.unwrap();
    assert_eq!(page.items.len(), 1);
    let token = page.metadata.continue_.clone().unwrap();
    let rest = deps.list(&ListParams::default().limit(1).continue_token(&token)).await.unwrap();
    assert_eq!(rest.items.len(), 1);
    assert_ne!(rest.items[0].metadata.name, page.items[0].metadata.name);

    let missing = deps.get("nope").await.unwrap_err();
    assert!(matches!(missing, kube::Error::Api(ref e) if e.code == 404), "{missing:?}");
    let in_missing_ns: Api<ConfigMap> = Api::namespaced(client.clone(), "nowhere");
    let e = in_missing_ns
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "c"}})).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(e, kube::Error::Api(ref e) if e.code == 404), "{e:?}");
    sb.stop().await;
}

#[tokio::test]
async fn status_and_scale_subresources() {
    let (sb, client) =
        common::start(ebb_sandbox::sandbox::Config { controllers: false, ..Default::default() }).await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deps.create(&PostParams::default(), &deployment("web", 1)).await.unwrap();
    // The main resource ignores status; /status ignores everything else.
    let p = json!({"spec": {"replicas": 5}, "status": {"replicas": 7}});
    let after = deps.patch("web", &PatchParams::default(), &Patch::Merge(&p)).await.unwrap();
    assert_eq!(after.spec.unwrap().replicas, Some(5));
    assert!(after.status.is_none());
    let after = deps.patch_status("web", &PatchParams::default(), &Patch::Merge(&p)).await.unwrap();
    assert_eq!(after.spec.unwrap().replicas, Some(5));
    assert_eq!(after.status.unwrap().replicas, Some(7));

    let scale = deps.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(5));
    assert_eq!(scale.status.as_ref().unwrap().replicas, 7);
    assert_eq!(scale.status.unwrap().selector.as_deref(), Some("app=web"));
    deps.patch_scale("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 0}})))
        .await
        .unwrap();
    assert_eq!(deps.get("web").await.unwrap().spec.unwrap().replicas, Some(0));
    sb.stop().await;
}

#[tokio::test]
async fn workload_status_follows_spec() {
    let (sb, client) = common::start(Default::default()).await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deps.create(&PostParams::default(), &deployment("web", 3)).await.unwrap();
    let mut ready = 0;
    for _ in 0..50 {
        ready = deps.get("web").await.unwrap().status.and_then(|s| s.ready_replicas).unwrap_or(0);
        if ready == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ready, 3);
    sb.stop().await;
}

#[tokio::test]
async fn watch_resumes_and_expired_versions_are_gone() {
    let (sb, client) =
        common::start(ebb_sandbox::sandbox::Config { history: 5, controllers: false, ..Default::default() })
            .await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm = |n: &str| {
        serde_json::from_value::<ConfigMap>(json!({"metadata": {"name": n}, "data": {"k": "v"}})).unwrap()
    };
    let first = cms.create(&PostParams::default(), &cm("a")).await.unwrap();
    let rv = first.metadata.resource_version.clone().unwrap();
    cms.create(&PostParams::default(), &cm("b")).await.unwrap();
    // Resume after "a": the next event is "b".
    let mut stream = cms.watch(&WatchParams::default().timeout(5), &rv).await.unwrap().boxed();
    match stream.try_next().await.unwrap() {
        Some(WatchEvent::Added(o)) => assert_eq!(o.metadata.name.as_deref(), Some("b")),
        other => panic!("{other:?}"),
    }
    // Compact the history past "a", then resuming from it is 410 Gone.
    for n in ["c", "d", "e", "f", "g", "h"] {
        cms.create(&PostParams::default(), &cm(n)).await.unwrap();
    }
    let mut stream = cms.watch(&WatchParams::default().timeout(5), &rv).await.unwrap().boxed();
    match stream.try_next().await.unwrap() {
        Some(WatchEvent::Error(e)) => assert_eq!(e.code, 410),
        other => panic!("{other:?}"),
    }
    // Bookmarks carry the current version.
    let latest = cms.list(&ListParams::default()).await.unwrap().metadata.resource_version.unwrap();
    let mut stream = cms.watch(&WatchParams::default().timeout(10), &latest).await.unwrap().boxed();
    match tokio::time::timeout(Duration::from_secs(8), stream.try_next()).await.unwrap().unwrap() {
        Some(WatchEvent::Bookmark(b)) => assert_eq!(b.metadata.resource_version, latest),
        other => panic!("{other:?}"),
    }
    sb.stop().await;
}

#[tokio::test]
async fn finalizers_and_garbage_collection() {
    let (sb, client) =
        common::start(ebb_sandbox::sandbox::Config { controllers: false, ..Default::default() }).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let held: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}))
            .unwrap();
    cms.create(&PostParams::default(), &held).await.unwrap();
    let pending = cms.delete("held", &DeleteParams::default()).await.unwrap();
    assert!(pending.is_left(), "deletion waits for the finalizer");
    let obj = cms.get("held").await.unwrap();
    assert!(obj.metadata.deletion_timestamp.is_some());
    let e = cms
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/hold", "x/y"]}})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, kube::Error::Api(ref e) if e.code == 403 || e.code == 422),
        "no new finalizers while deleting: {e:?}"
    );
    cms.patch("held", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}})))
        .await
        .unwrap();
    assert!(
        cms.get_opt("held").await.unwrap().is_none(),
        "removing the last finalizer completes the deletion"
    );

    // Dependents go with their owner.
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let owner = deps.create(&PostParams::default(), &deployment("owner", 1)).await.unwrap();
    let child: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "child", "ownerReferences": [{
        "apiVersion": "apps/v1", "kind": "Deployment", "name": "owner", "uid": owner.metadata.uid.unwrap(), "controller": true}]}})).unwrap();
    cms.create(&PostParams::default(), &child).await.unwrap();
    deps.delete("owner", &DeleteParams::background()).await.unwrap();
    let mut gone = false;
    for _ in 0..20 {
        if cms.get_opt("child").await.unwrap().is_none() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "garbage collector deletes dependents");

    // Namespaces: deleting one deletes its content.
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "tmp"}})).unwrap(),
    )
    .await
    .unwrap();
    let tmp: Api<ConfigMap> = Api::namespaced(client.clone(), "tmp");
    tmp.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "c"}})).unwrap())
        .await
        .unwrap();
    nss.delete("tmp", &DeleteParams::default()).await.unwrap();
    assert!(nss.get_opt("tmp").await.unwrap().is_none());
    assert!(tmp.list(&ListParams::default()).await.unwrap().items.is_empty());
    sb.stop().await;
}

#[tokio::test]
async fn server_side_apply_tracks_field_owners() {
    let (sb, client) =
        common::start(ebb_sandbox::sandbox::Config { controllers: false, ..Default::default() }).await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let mine = PatchParams::apply("ebb-operator/hpa");
    let d = deps.patch("web", &mine, &Patch::Apply(deployment("web", 2))).await.unwrap();
    let managers: Vec<_> = d
        .metadata
        .managed_fields
        .unwrap()
        .iter()
        .map(|m| (m.manager.clone().unwrap(), m.operation.clone().unwrap()))
        .collect();
    assert_eq!(managers, [("ebb-operator/hpa".to_string(), "Apply".to_string())]);
    // Another manager takes replicas with an update; applying a different value conflicts.
    deps.patch(
        "web",
        &PatchParams { field_manager: Some("kubectl-scale".into()), ..Default::default() },
        &Patch::Merge(json!({"spec": {"replicas": 3}})),
    )
    .await
    .unwrap();
    let e = deps.patch("web", &mine, &Patch::Apply(deployment("web", 5))).await.unwrap_err();
    match e {
        kube::Error::Api(e) => {
            assert_eq!(e.code, 409);
            assert!(
                e.message.contains("conflict with \"kubectl-scale\"") && e.message.contains(".spec.replicas"),
                "{}",
                e.message
            );
        }
        other => panic!("{other:?}"),
    }
    let forced = deps.patch("web", &mine.clone().force(), &Patch::Apply(deployment("web", 5))).await.unwrap();
    assert_eq!(forced.spec.unwrap().replicas, Some(5));
    // Dropping a field from the applied configuration removes it.
    let mut without_labels = deployment("web", 5);
    without_labels.metadata.labels = None;
    let d = deps.patch("web", &mine.clone().force(), &Patch::Apply(without_labels)).await.unwrap();
    assert!(d.metadata.labels.unwrap_or_default().is_empty(), "labels owned only by the applier are removed");
    sb.stop().await;
}

#[tokio::test]
async fn injected_faults() {
    use ebb_sandbox::faults::{FaultAction, FaultRule};
    let (sb, client) =
        common::start(ebb_sandbox::sandbox::Config { controllers: false, ..Default::default() }).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    sb.cp.faults.add(FaultRule {
        method: Some("GET".into()),
        path: "/configmaps".into(),
        action: FaultAction::Fail(500),
        remaining: Some(1),
    });
    let e = cms.list(&ListParams::default()).await.unwrap_err();
    assert!(matches!(e, kube::Error::Api(ref e) if e.code == 500), "{e:?}");
    assert!(cms.list(&ListParams::default()).await.is_ok(), "the rule ran out");
    // 429 carries Retry-After, which kube-rs honours by retrying.
    sb.cp.faults.add(FaultRule {
        method: Some("GET".into()),
        path: "/configmaps".into(),
        action: FaultAction::Fail(429),
        remaining: Some(2),
    });
    assert!(cms.list(&ListParams::default()).await.is_ok(), "kube-rs retries throttled requests");
    assert!(sb.cp.faults.take("GET", "/configmaps").is_empty(), "both throttled answers were consumed");

    sb.cp.faults.add(FaultRule {
        method: None,
        path: "/configmaps".into(),
        action: FaultAction::Delay(Duration::from_millis(300)),
        remaining: Some(1),
    });
    let t = std::time::Instant::now();
    cms.list(&ListParams::default()).await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(300));

    sb.cp.faults.add(FaultRule {
        method: Some("GET".into()),
        path: "/configmaps".into(),
        action: FaultAction::DropWatch,
        remaining: Some(1),
    });
    let mut stream = cms.watch(&WatchParams::default().timeout(30), "0").await.unwrap().boxed();
    let next = tokio::time::timeout(Duration::from_secs(2), stream.try_next())
        .await
        .expect("a dropped watch ends at once");
    assert!(matches!(next, Ok(None)), "{next:?}");
    sb.stop().await;
}
