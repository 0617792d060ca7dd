//! Tests of the loop's schedule and of its ticks' log lines (one span per tick).

use ebb_plumbing::testing::LogSink;

use super::*;

#[test]
fn phase_offsets_are_stable_and_spread() {
    let i = Duration::from_secs(30);
    assert_eq!(phase_offset("ns", "a", i), phase_offset("ns", "a", i));
    let offsets: std::collections::BTreeSet<_> =
        (0..1000).map(|n| phase_offset("ns", &format!("so-{n}"), i).as_secs()).collect();
    assert!(offsets.len() >= 29, "1000 objects spread over the 30 one-second slots: {}", offsets.len());
    for n in 0..100 {
        assert!(phase_offset("ns", &format!("so-{n}"), i) < i);
    }
}

#[test]
fn first_tick_lands_on_the_phase() {
    let i = Duration::from_secs(10);
    let now = std::time::UNIX_EPOCH + Duration::from_millis(1_000_003_500);
    // 1_000_003_500 ms mod 10_000 = 3_500; with offset 5 s the next tick is 1.5 s away.
    assert_eq!(first_tick(now, i, Duration::from_secs(5)), Duration::from_millis(1_500));
    assert_eq!(first_tick(now, i, Duration::from_millis(3_500)), Duration::ZERO);
    assert_eq!(first_tick(now, i, Duration::from_secs(2)), Duration::from_millis(8_500));
}

/// A loop context whose API answers every request 503.
fn unavailable_api() -> Arc<LoopContext> {
    let svc = tower::service_fn(|_req: http::Request<kube::client::Body>| async {
        Ok::<_, std::convert::Infallible>(
            http::Response::builder().status(503).body(kube::client::Body::empty()).unwrap(),
        )
    });
    let client = kube::Client::new(svc, "apps");
    let args = <crate::Args as clap::Parser>::try_parse_from(["ebb-operator"]).unwrap();
    let metrics = crate::metrics::Metrics::register(&mut prometheus_client::registry::Registry::default());
    let reporter = kube::runtime::events::Reporter { controller: "test".into(), instance: None };
    let leadership = crate::leader::Leadership::always();
    crate::context(&args, client, metrics, reporter, leadership).unwrap().core.clone()
}

/// A loop of the seed cron object named `name`, its target at 0 replicas in the cache.
fn cron_loop(cx: &LoopContext, name: &str) -> (Arc<Shared>, Target) {
    let mut so: ScaledObject =
        serde_yaml::from_str(include_str!("../../../tests/fixtures/seed/cron-prescale.yaml")).unwrap();
    so.metadata.namespace = Some("apps".into());
    so.metadata.name = Some(name.into());
    let parsed = ebb_scalers::parse_scaled_object(&so, &ebb_scalers::ParseContext::default()).unwrap();
    let target = Target::deployment(&format!("{name}-app"));
    cx.replicas.set(&target, "apps", 0);
    let triggers = parsed.triggers.iter().map(|t| (t.clone(), t.config.build().unwrap())).collect();
    let composite = ebb_scalers::validate::modifiers::composite(&so).ok().flatten();
    let shared = Shared::new(Arc::new(so), triggers, composite);
    (Arc::new(shared), target)
}

#[tokio::test]
async fn one_objects_ticks_can_be_filtered_by_their_span() {
    // The value is a regular expression searched in the field: anchored, "seen" only.
    let (logs, _guard) = LogSink::capture("ebb_operator[tick{scaled_object=^seen$}]=debug");
    let cx = unavailable_api();
    for name in ["seen", "unseen"] {
        let (shared, target) = cron_loop(&cx, name);
        let model = StatusModel::default();
        for _ in 0..3 {
            run_tick(&cx, &model, &shared, &target).await;
        }
    }
    let text = logs.text();
    let ticks: Vec<&str> = text.lines().filter(|l| l.contains("tick: active=")).collect();
    assert_eq!(ticks.len(), 3, "one line per tick of the filtered object:\n{text}");
    for line in &ticks {
        assert!(line.contains(r#"tick{namespace="apps" scaled_object="seen"}"#), "{line}");
        assert!(line.contains(", current=0, desired="), "{line}");
    }
    // The failed status write (the API answers 503) is logged inside the same span.
    assert!(
        text.lines().any(|l| l.contains(r#"scaled_object="seen""#) && l.contains("status write failed")),
        "{text}"
    );
    assert!(!text.contains("unseen"), "another object's ticks are filtered out:\n{text}");
}
