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
fn max_replica_count_zero_is_refused_like_keda() {
    // KEDA: the HPA's minReplicas is max(1, minReplicaCount) and must not exceed maxReplicaCount
    // (CheckReplicaCountBoundsAreValid); with minReplicaCount unset its webhook admits 0, but the
    // HPA it then writes is refused by the API server (maxReplicas must be greater than 0).
    let want = "spec.maxReplicaCount: maxReplicaCount (0) must be at least 1: \
                the HorizontalPodAutoscaler's minReplicas is max(1, minReplicaCount) = 1 \
                and must not exceed maxReplicaCount";
    for extra in ["  minReplicaCount: 0\n  maxReplicaCount: 0\n", "  maxReplicaCount: 0\n"] {
        let o = so(&format!("{HEAD}{extra}  triggers:\n{CRON}"));
        assert_eq!(errors(&o), [want], "{extra}");
    }
    // minReplicaCount above it: the one min/max error, not two.
    let o = so(&format!("{HEAD}  minReplicaCount: 2\n  maxReplicaCount: 0\n  triggers:\n{CRON}"));
    assert_eq!(
        errors(&o),
        ["spec.minReplicaCount: minReplicaCount (2) must be less than or equal to maxReplicaCount (0)"]
    );
    let one = so(&format!("{HEAD}  minReplicaCount: 0\n  maxReplicaCount: 1\n  triggers:\n{CRON}"));
    assert!(errors(&one).is_empty(), "{:?}", errors(&one));
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

const SECRET: &str = "hunter2-not-a-number";

fn with_auth(pairs: &[(usize, &str, &str)]) -> ParseContext {
    let mut ctx = ParseContext::default();
    for (i, k, v) in pairs {
        ctx.auth.entry(*i).or_default().insert((*k).to_owned(), (*v).to_owned());
    }
    ctx
}

fn errors_with(o: &ScaledObject, ctx: &ParseContext) -> Vec<String> {
    parse_scaled_object(o, ctx)
        .map(|_| Vec::new())
        .unwrap_or_else(|es| es.iter().map(ToString::to_string).collect())
}

const KAFKA: &str =
    "  - type: kafka\n    metadata: {bootstrapServers: 'k:9092', consumerGroup: g, topic: t}\n";
const SQS: &str = "  - type: aws-sqs-queue\n    metadata: {queueURL: 'https://sqs.us-east-1.amazonaws.com/123456789012/q'}\n";
const PROMETHEUS: &str =
    "  - type: prometheus\n    metadata: {serverAddress: 'http://p:9090', query: up, threshold: '1'}\n";

/// A TriggerAuthentication maps a Secret key holding a non-value onto each parameter a scaler
/// reads from authentication; every error names the trigger and the parameter, none shows the
/// value.
#[test]
fn values_from_an_authentication_never_appear_in_errors() {
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);
    let cases: &[Case] = &[
        (KAFKA, "unsafeSsl", &[("tls", "enable")]),
        (KAFKA, "tls", &[]),
        (KAFKA, "sasl", &[]),
        (SQS, "awsRegion", &[]),
        (SQS, "awsRoleArn", &[]),
        (PROMETHEUS, "authModes", &[]),
        (PROMETHEUS, "authMode", &[]),
    ];
    for (trigger, param, extra) in cases {
        let o = so(&format!("{HEAD}  triggers:\n{trigger}"));
        let mut ctx = with_auth(&[(0, param, SECRET)]);
        for (k, v) in *extra {
            ctx.auth.entry(0).or_default().insert((*k).to_owned(), (*v).to_owned());
        }
        let es = errors_with(&o, &ctx);
        assert_eq!(es.len(), 1, "{param}: {es:?}");
        assert!(es[0].starts_with("spec.triggers[0] ("), "{param}: {}", es[0]);
        assert!(es[0].contains(param), "{param}: {}", es[0]);
        assert!(!es[0].contains(SECRET) && !es[0].contains("hunter2"), "{param}: {}", es[0]);
        assert!(es[0].contains("TriggerAuthentication"), "{param}: the source is named: {}", es[0]);
    }
}

/// KEDA refuses a parameter given both in the trigger's metadata and by the
/// TriggerAuthentication ("unable to set `tls` in both ScaledObject and TriggerAuthentication
/// together"); ebb does so for every parameter read from authentication, and for
/// `<name>FromEnv`, naming both places and neither value.
#[test]
fn a_parameter_set_in_metadata_and_by_the_authentication_is_an_error() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "  - type: kafka\n    metadata: {bootstrapServers: 'k:9092', consumerGroup: g, tls: disable}\n",
            "tls",
            "enable",
        ),
        (
            "  - type: kafka\n    metadata: {bootstrapServers: 'k:9092', consumerGroup: g, sasl: none}\n",
            "sasl",
            "plaintext",
        ),
        (
            "  - type: aws-sqs-queue\n    metadata: {queueURL: q, awsRegion: eu-west-1}\n",
            "awsRegion",
            "us-east-1",
        ),
    ];
    for (trigger, param, auth_value) in cases {
        let o = so(&format!("{HEAD}  triggers:\n{trigger}"));
        let ctx = with_auth(&[(0, param, auth_value)]);
        let es = errors_with(&o, &ctx);
        assert!(
            es.iter().any(|e| e.contains(&format!("metadata.{param}:"))
                && e.contains("both in the trigger's metadata and by the TriggerAuthentication")),
            "{param}: {es:?}"
        );
        assert!(es.iter().all(|e| !e.contains(auth_value)), "{param}: {es:?}");
    }
}

/// The operator's own cloud identity is lent only to the triggers the operator allows; the
/// others get the operator's reason (which names the flag that allows it).
#[test]
fn the_operator_identity_is_used_only_where_allowed() {
    use crate::params::OperatorIdentity;
    use ebb_api::AuthPodIdentity;
    let reason = "is allowed only in namespaces listed in --operator-identity-namespaces";
    let only = |triggers: &[usize]| OperatorIdentity::Only {
        triggers: triggers.iter().copied().collect(),
        reason: reason.to_owned(),
    };
    let metadata = so(&format!(
        "{HEAD}  triggers:\n  - type: aws-sqs-queue\n    metadata: {{queueURL: q, awsRegion: us-east-1, identityOwner: operator}}\n"
    ));
    let keda = so(&format!(
        "{HEAD}  triggers:\n  - type: aws-sqs-queue\n    metadata: {{queueURL: q, awsRegion: us-east-1}}\n"
    ));
    let mut pod_identity = ParseContext::default();
    pod_identity.pod_identity.insert(0, AuthPodIdentity { provider: "aws".into(), ..Default::default() });
    for (o, base, what) in [
        (&metadata, ParseContext::default(), "identityOwner: operator"),
        (&keda, pod_identity, "podIdentity provider aws with identityOwner keda"),
    ] {
        assert!(parse_scaled_object(o, &base).is_ok(), "{what}: allowed by default (ebb check)");
        let denied = ParseContext { operator_identity: only(&[]), ..base.clone() };
        let es = errors_with(o, &denied);
        assert_eq!(es.len(), 1, "{what}: {es:?}");
        assert!(
            es[0].starts_with("spec.triggers[0] (aws-sqs-queue): ") && es[0].contains(reason),
            "{}",
            es[0]
        );
        assert!(es[0].contains(what), "{what}: {}", es[0]);
        let allowed = ParseContext { operator_identity: only(&[0]), ..base };
        assert!(parse_scaled_object(o, &allowed).is_ok(), "{what}");
    }
}
