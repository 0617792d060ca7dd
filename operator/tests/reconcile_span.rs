//! One reconcile's log lines in its `reconcile{namespace, scaled_object}` span, against the
//! scripted API server. A test binary of its own: a scoped log subscriber races with other tests
//! reaching the same log call sites on other threads (their interest can be cached without it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod scripted;

use ebb_plumbing::testing::LogSink;
use serde_json::json;

use scripted::*;

#[tokio::test]
async fn a_reconcile_logs_what_it_did_in_the_objects_span() {
    for (filter, shown) in [("^web$", true), ("^other$", false)] {
        let (logs, _guard) =
            LogSink::capture(&format!("ebb_operator[reconcile{{scaled_object={filter}}}]=debug"));
        let so = labelled(json!({"metadata": {"annotations": {"autoscaling.keda.sh/paused": "true"}}}));
        let calls = vec![
            call("DELETE", HPA_PATH, &[]).reply(404, not_found()),
            call("PATCH", STATUS_PATH, &[]),
            event("ScaledObjectPaused", "ScaledObject is paused", false),
        ];
        reconcile(&so, calls).await.0.unwrap();
        let text = logs.text();
        if !shown {
            assert!(text.is_empty(), "another object's reconcile is filtered out:\n{text}");
            continue;
        }
        let line = text.lines().find(|l| l.contains("reconciled")).unwrap_or_else(|| panic!("{text}"));
        assert!(line.contains(r#"reconcile{namespace="shop" scaled_object="web"}"#), "{line}");
        assert!(
            line.contains(
                "stop-loop, delete-hpa keda-hpa-web, status, paused-metric true, event ScaledObjectPaused"
            ),
            "{line}"
        );
    }
}
