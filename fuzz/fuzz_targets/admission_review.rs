//! AdmissionReview bodies, as anyone who reaches the webhook's port can send them, through the
//! webhook's whole review handling (`Webhook::review_now`: decode, triage, ScaledObject and
//! TriggerAuthentication rules, answer). Properties: no panic; a 200 answer is an
//! AdmissionReview echoing the request's uid with a boolean `allowed`; anything else is a 400.
#![no_main]

use std::sync::{Arc, OnceLock};

use ebb_webhook::admission::Webhook;
use ebb_webhook::index::{Index, Snapshot, SoIndex, SoKeys, Workload};
use ebb_webhook::metrics::Metrics;
use libfuzzer_sys::fuzz_target;

/// One ScaledObject already indexed (`ns/taken` scaling Deployment `busy`), so the conflict
/// rules have something to find.
fn index() -> Arc<Index> {
    static INDEX: OnceLock<Arc<Index>> = OnceLock::new();
    INDEX
        .get_or_init(|| {
            let mut sos = SoIndex::default();
            sos.apply(
                "ns",
                "taken",
                SoKeys {
                    target: Workload::new("apps/v1", "Deployment", "busy"),
                    hpa: "keda-hpa-taken".into(),
                },
            );
            Arc::new(Index::new(Snapshot::synced(sos, Default::default())))
        })
        .clone()
}

fuzz_target!(|body: &[u8]| {
    // Fresh counters per input: the counters' growth is not what this target measures.
    let webhook = Webhook::new(index(), Metrics::default(), None);
    let reply = webhook.review_now(body);
    match reply.status {
        200 => {
            let v: serde_json::Value = serde_json::from_slice(&reply.body).expect("a 200 answer is JSON");
            assert_eq!(v["kind"], "AdmissionReview");
            let response = &v["response"];
            assert!(response["allowed"].is_boolean(), "{v}");
            // (A body may hold numbers serde_json's Value cannot, in fields the review ignores.)
            if let Ok(request) = serde_json::from_slice::<serde_json::Value>(body) {
                assert_eq!(response["uid"], request["request"]["uid"], "uid not echoed");
            }
        }
        400 => assert!(std::str::from_utf8(&reply.body).is_ok(), "a 400 answer is text"),
        other => panic!("unexpected status {other}"),
    }
});
