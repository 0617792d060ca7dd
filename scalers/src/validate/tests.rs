//! Whole-object validation: the seed fixtures and the spec-level rules.

use ebb_api::ScaledObject;

use super::*;

fn so(yaml: &str) -> ScaledObject {
    serde_yaml::from_str(yaml).unwrap()
}

fn seed(name: &str) -> ScaledObject {
    let path = format!("{}/../tests/fixtures/seed/{name}", env!("CARGO_MANIFEST_DIR"));
    so(&std::fs::read_to_string(path).unwrap())
}

fn errors(o: &ScaledObject) -> Vec<String> {
    parse_scaled_object(o, &ParseContext::default())
        .map(|_| Vec::new())
        .unwrap_or_else(|es| es.iter().map(ToString::to_string).collect())
}

const HEAD: &str = "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: w}\nspec:\n  scaleTargetRef: {name: w}\n";
const CRON: &str =
    "  - type: cron\n    metadata: {timezone: UTC, start: 0 8 * * *, end: 0 9 * * *, desiredReplicas: '2'}\n";

#[test]
fn seed_cron_parses_with_its_metric_name() {
    let parsed = parse_scaled_object(&seed("cron-prescale.yaml"), &ParseContext::default()).unwrap();
    assert_eq!(parsed.metric_names(), ["s0-cron-Asia-Seoul-00,15,30,45xxxx-05,20,35,50xxxx"]);
    assert!(parsed.warnings.is_empty());
}

#[test]
fn kafka_seed_reads_bare_booleans_as_strings() {
    let kafka = seed("kafka-trigger.yaml");
    assert_eq!(kafka.spec.triggers[0].metadata["allowIdleConsumers"].as_str(), "false");
}

#[test]
fn spec_rules() {
    let cases: &[(&str, &str)] = &[
        (
            "  minReplicaCount: 3\n  maxReplicaCount: 2\n",
            "spec.minReplicaCount: minReplicaCount (3) must be less than or equal to maxReplicaCount (2)",
        ),
        (
            "  minReplicaCount: 1\n  idleReplicaCount: 1\n",
            "spec.idleReplicaCount: idleReplicaCount (1) must be less than minReplicaCount (1)",
        ),
        ("  pollingInterval: 0\n", "spec.pollingInterval: must be ≥ 1, found 0"),
        (
            "  fallback: {failureThreshold: -1, replicas: 2}\n",
            "spec.fallback: failureThreshold and replicas must not be negative",
        ),
    ];
    for (extra, want) in cases {
        let o = so(&format!("{HEAD}{extra}  triggers:\n{CRON}"));
        assert_eq!(errors(&o), [*want]);
    }
    let none = so(&format!("{HEAD}  triggers: []\n"));
    assert_eq!(errors(&none), ["spec.triggers: at least one trigger is required"]);
    let dup = so(&format!("{HEAD}  triggers:\n{CRON}    name: a\n{CRON}    name: a\n"));
    assert_eq!(errors(&dup), ["spec.triggers[1].name: duplicate trigger name \"a\""]);
    let cached = so(&format!("{HEAD}  triggers:\n{CRON}    useCachedMetrics: true\n"));
    assert_eq!(
        errors(&cached),
        ["spec.triggers[0] (cron): useCachedMetrics is not supported for cron triggers"]
    );
    let long = so(&format!(
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: {}}}\nspec:\n  scaleTargetRef: {{name: w}}\n  triggers:\n{CRON}",
        "a".repeat(60)
    ));
    assert!(errors(&long).iter().any(|e| e.contains("longer than 63")), "{:?}", errors(&long));
}

#[test]
fn unknown_parameters_warn_and_list_accepted() {
    let o = so(&format!(
        "{HEAD}  triggers:\n  - type: cron\n    metadata: {{timezone: UTC, start: 0 8 * * *, end: 0 9 * * *, desiredReplicas: '2', tz: x}}\n"
    ));
    let p = parse_scaled_object(&o, &ParseContext::default()).unwrap();
    assert_eq!(
        p.warnings,
        [
            "spec.triggers[0] (cron) metadata.tz: unknown parameter is ignored; accepted: timezone, start, end, desiredReplicas"
        ]
    );
}
