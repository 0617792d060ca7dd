//! Rule-by-rule tables: each row is a ScaledObject (a base object with one change) or an
//! authentication spec, and the expected outcome — allowed, or denied with a reason label and a
//! message fragment — plus expected warnings.

use ebb_api::ScaledObject;
use ebb_scalers::{ParseContext, parse_scaled_object};
use serde_json::{Value, json};

use super::Verdict;
use super::scaled_object::{self as so_rules, ContainerRequests, WorkloadFacts, reason};
use crate::index::{HpaIndex, HpaKeys, Snapshot, SoIndex, SoKeys, Workload};

fn deployment(name: &str) -> Workload {
    Workload::new("apps/v1", "Deployment", name)
}

/// The cluster the cross-object rows run against (namespace `ns`).
pub(super) fn cluster() -> Snapshot {
    let mut sos = SoIndex::default();
    sos.apply("ns", "taken", SoKeys { target: deployment("busy"), hpa: "keda-hpa-taken".into() });
    sos.apply("ns", "custom", SoKeys { target: deployment("other"), hpa: "shared-hpa".into() });
    let mut hpas = HpaIndex::default();
    let hpa = |t: &str, owner: Option<&str>, off: bool| HpaKeys {
        target: deployment(t),
        owner: owner.map(Into::into),
        validation_off: off,
    };
    hpas.apply("ns", "keda-hpa-taken", hpa("busy", Some("taken"), false));
    hpas.apply("ns", "manual", hpa("manual-target", None, false));
    hpas.apply("ns", "optout", hpa("optout-target", None, true));
    hpas.apply("ns", "orphan", hpa("orphan-target", Some("gone"), false));
    hpas.apply("ns", "keda-hpa-app", hpa("mine-target", Some("app"), false));
    Snapshot::synced(sos, hpas)
}

pub(super) fn cron() -> Value {
    json!({"type": "cron", "metadata": {"timezone": "UTC", "start": "0 8 * * 1-5", "end": "0 18 * * 1-5", "desiredReplicas": "2"}})
}

/// The valid cron trigger, named `name` (a formula variable).
pub(super) fn named_cron(name: &str) -> Value {
    let mut t = cron();
    t["name"] = json!(name);
    t
}

/// `app` in `ns` on Deployment `web`, one valid cron trigger; `spec` and `meta` are merged in.
pub(super) fn so(spec: Value, meta: Value) -> ScaledObject {
    let mut v = json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": "app", "namespace": "ns"},
        "spec": {"scaleTargetRef": {"name": "web"}, "minReplicaCount": 0, "maxReplicaCount": 5, "triggers": [cron()]}});
    merge(&mut v["spec"], spec);
    merge(&mut v["metadata"], meta);
    serde_json::from_value(v).unwrap()
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(i), Value::Object(f)) = (into.as_object_mut(), from) {
        i.extend(f);
    }
}

pub(super) enum Want {
    Allowed,
    Denied(&'static str, &'static str),
}

pub(super) fn check(row: &str, v: &Verdict, want: &Want, warning: Option<&str>) {
    match want {
        Want::Allowed => assert!(v.allowed(), "{row}: expected allowed, got {:?}", v.denials),
        Want::Denied(reason, fragment) => {
            assert!(
                v.denials.iter().any(|d| d.reason == *reason && d.message.contains(fragment)),
                "{row}: expected {reason} containing {fragment:?}, got {:?}",
                v.denials
            );
        }
    }
    match warning {
        Some(w) => assert!(
            v.warnings.iter().any(|x| x.contains(w)),
            "{row}: expected warning {w:?} in {:?}",
            v.warnings
        ),
        None => assert!(v.warnings.is_empty(), "{row}: unexpected warnings {:?}", v.warnings),
    }
}

#[test]
fn scaled_object_rules() {
    let long = "x".repeat(64);
    let rows: Vec<(&str, Value, Value, Want, Option<&str>)> = vec![
        ("valid", json!({}), json!({}), Want::Allowed, None),
        (
            "cpu beside cron scales to zero",
            json!({"triggers": [{"type": "cpu", "metricType": "Utilization", "metadata": {"value": "50"}}, cron()]}),
            json!({}),
            Want::Allowed,
            Some("not checked"),
        ),
        (
            "memory only with min 1",
            json!({"minReplicaCount": 1, "triggers": [{"type": "memory", "metricType": "AverageValue", "metadata": {"value": "512Mi", "containerName": "app"}}]}),
            json!({}),
            Want::Allowed,
            Some("not checked"),
        ),
        (
            "cpu metricType Value",
            json!({"minReplicaCount": 1, "triggers": [{"type": "cpu", "metricType": "Value", "metadata": {"value": "50"}}]}),
            json!({}),
            Want::Denied(reason::INVALID_TRIGGER, "metricType Value is not allowed for cpu triggers"),
            Some("not checked"),
        ),
        (
            "min > max",
            json!({"minReplicaCount": 6}),
            json!({}),
            Want::Denied(
                reason::INVALID_SPEC,
                "minReplicaCount (6) must be less than or equal to maxReplicaCount (5)",
            ),
            None,
        ),
        (
            "idle >= min",
            json!({"minReplicaCount": 1, "idleReplicaCount": 1}),
            json!({}),
            Want::Denied(reason::INVALID_SPEC, "idleReplicaCount (1) must be less than minReplicaCount (1)"),
            None,
        ),
        (
            "fallback negative",
            json!({"fallback": {"failureThreshold": -1, "replicas": 2}}),
            json!({}),
            Want::Denied(reason::INVALID_SPEC, "failureThreshold and replicas must not be negative"),
            None,
        ),
        (
            "fallback only cpu",
            json!({"minReplicaCount": 1, "fallback": {"failureThreshold": 3, "replicas": 2}, "triggers": [{"type": "cpu", "metadata": {"value": "50"}}]}),
            json!({}),
            Want::Denied(
                reason::INVALID_SPEC,
                "fallback needs at least one trigger other than cpu or memory",
            ),
            Some("not checked"),
        ),
        (
            "name > 63",
            json!({}),
            json!({"name": long}),
            Want::Denied(reason::INVALID_SPEC, "metadata.name: must be at most 63 characters"),
            None,
        ),
        (
            "hpa name > 63",
            json!({"advanced": {"horizontalPodAutoscalerConfig": {"name": long}}}),
            json!({}),
            Want::Denied(reason::INVALID_SPEC, "longer than 63 characters"),
            None,
        ),
        (
            "duplicate trigger names",
            json!({"triggers": [merged(cron(), json!({"name": "a"})), merged(cron(), json!({"name": "a"}))]}),
            json!({}),
            Want::Denied(reason::INVALID_SPEC, "spec.triggers[1].name: duplicate trigger name \"a\""),
            None,
        ),
        (
            "useCachedMetrics on cron",
            json!({"triggers": [merged(cron(), json!({"useCachedMetrics": true}))]}),
            json!({}),
            Want::Denied(reason::INVALID_TRIGGER, "useCachedMetrics is not supported for cron triggers"),
            None,
        ),
        (
            "useCachedMetrics on cpu",
            json!({"minReplicaCount": 1, "triggers": [cron(), {"type": "cpu", "useCachedMetrics": true, "metadata": {"value": "50"}}]}),
            json!({}),
            Want::Denied(
                reason::INVALID_TRIGGER,
                "spec.triggers[1] (cpu): useCachedMetrics is not supported for cpu triggers",
            ),
            Some("not checked"),
        ),
        (
            "only cpu/memory with min 0",
            json!({"triggers": [{"type": "memory", "metadata": {"value": "50"}}]}),
            json!({}),
            Want::Denied(reason::INVALID_SPEC, "cannot scale from zero"),
            Some("not checked"),
        ),
        (
            "no triggers",
            json!({"triggers": []}),
            json!({}),
            Want::Denied(reason::INVALID_SPEC, "spec.triggers: at least one trigger is required"),
            None,
        ),
        (
            "no target name",
            json!({"scaleTargetRef": {"name": ""}}),
            json!({}),
            Want::Denied(reason::INVALID_SPEC, "spec.scaleTargetRef.name: required"),
            None,
        ),
        (
            "bad cron",
            json!({"triggers": [merged(cron(), json!({"metadata": {"timezone": "UTC", "start": "61 * * * *", "end": "0 18 * * *", "desiredReplicas": "1"}}))]}),
            json!({}),
            Want::Denied(reason::INVALID_TRIGGER, "spec.triggers[0] (cron) metadata.start"),
            None,
        ),
        (
            "unknown timezone",
            json!({"triggers": [merged(cron(), json!({"metadata": {"timezone": "Mars/Olympus", "start": "0 8 * * *", "end": "0 18 * * *", "desiredReplicas": "1"}}))]}),
            json!({}),
            Want::Denied(reason::INVALID_TRIGGER, "metadata.timezone"),
            None,
        ),
        (
            "missing parameter",
            json!({"triggers": [{"type": "cron", "metadata": {"timezone": "UTC", "start": "0 8 * * *", "end": "0 18 * * *"}}]}),
            json!({}),
            Want::Denied(reason::INVALID_TRIGGER, "metadata.desiredReplicas: required"),
            None,
        ),
        (
            "unknown trigger type",
            json!({"triggers": [{"type": "crom", "metadata": {}}]}),
            json!({}),
            Want::Denied(reason::UNKNOWN_TRIGGER_TYPE, "unknown trigger type \"crom\""),
            None,
        ),
        (
            "Utilization on cron",
            json!({"triggers": [merged(cron(), json!({"metricType": "Utilization"}))]}),
            json!({}),
            Want::Denied(
                reason::INVALID_TRIGGER,
                "metricType Utilization is only valid for cpu and memory triggers",
            ),
            None,
        ),
        (
            "paused-replicas not a number",
            json!({}),
            json!({"annotations": {"autoscaling.keda.sh/paused-replicas": "two"}}),
            Want::Denied(reason::INVALID_SPEC, "\"two\" is not a replica count"),
            None,
        ),
        (
            "paused-replicas negative",
            json!({}),
            json!({"annotations": {"autoscaling.keda.sh/paused-replicas": "-1"}}),
            Want::Denied(reason::INVALID_SPEC, "-1 is negative; a replica count is 0 or more"),
            None,
        ),
        (
            "paused-replicas with spaces (Go's ParseInt does not trim)",
            json!({}),
            json!({"annotations": {"autoscaling.keda.sh/paused-replicas": " 2"}}),
            Want::Denied(reason::INVALID_SPEC, "is not a replica count"),
            None,
        ),
        (
            "paused-replicas zero",
            json!({}),
            json!({"annotations": {"autoscaling.keda.sh/paused-replicas": "0"}}),
            Want::Allowed,
            None,
        ),
        (
            "paused as a Go boolean",
            json!({}),
            json!({"annotations": {"autoscaling.keda.sh/paused": "1", "autoscaling.keda.sh/paused-scale-in": "False"}}),
            Want::Allowed,
            None,
        ),
        (
            "paused not a boolean",
            json!({}),
            json!({"annotations": {"autoscaling.keda.sh/paused": "yes"}}),
            Want::Allowed,
            Some("metadata.annotations[autoscaling.keda.sh/paused]: \"yes\" is not a boolean"),
        ),
        (
            "paused-scale-out not a boolean",
            json!({}),
            json!({"annotations": {"autoscaling.keda.sh/paused-scale-out": "off"}}),
            Want::Allowed,
            Some("is read as true: scale-out is paused"),
        ),
        (
            "formula without target",
            json!({"advanced": {"scalingModifiers": {"formula": "a + b"}}}),
            json!({}),
            Want::Denied(reason::SCALING_MODIFIERS, "scalingModifiers.target: required with a formula"),
            None,
        ),
        (
            "target without formula",
            json!({"advanced": {"scalingModifiers": {"target": "2"}}}),
            json!({}),
            Want::Denied(reason::SCALING_MODIFIERS, "scalingModifiers.formula: required"),
            None,
        ),
        (
            "bad modifier numbers",
            json!({"advanced": {"scalingModifiers": {"formula": "a", "target": "x", "activationTarget": "-1"}}}),
            json!({}),
            Want::Denied(reason::SCALING_MODIFIERS, "activationTarget: expected a number ≥ 0, found \"-1\""),
            None,
        ),
        (
            "good modifiers",
            json!({"advanced": {"scalingModifiers": {"formula": "a", "target": "2", "activationTarget": "0.5"}},
                   "triggers": [named_cron("a")]}),
            json!({}),
            Want::Allowed,
            None,
        ),
        (
            "formula with a syntax error",
            json!({"advanced": {"scalingModifiers": {"formula": "a + * count([a], {# > 1})", "target": "2"}},
                   "triggers": [named_cron("a")]}),
            json!({}),
            Want::Denied(reason::SCALING_MODIFIERS, "syntax error: unexpected '*' (at character 4)"),
            None,
        ),
        (
            "formula with expr-lang's closures",
            json!({"advanced": {"scalingModifiers": {"formula": "a + count([a], {# > 1})", "target": "2"}},
                   "triggers": [named_cron("a")]}),
            json!({}),
            Want::Allowed,
            None,
        ),
        (
            "formula naming no trigger",
            json!({"advanced": {"scalingModifiers": {"formula": "a + b", "target": "2"}},
                   "triggers": [named_cron("a")]}),
            json!({}),
            Want::Denied(reason::SCALING_MODIFIERS, "unknown name \"b\" (at character 4)"),
            None,
        ),
        (
            "scalingModifiers fallback without a formula",
            json!({"fallback": {"failureThreshold": 3, "replicas": 2, "behavior": "scalingModifiers"}}),
            json!({}),
            Want::Denied(reason::SCALING_MODIFIERS, "spec.fallback.behavior: scalingModifiers needs"),
            None,
        ),
        (
            "duplicate target",
            json!({"scaleTargetRef": {"name": "busy"}}),
            json!({}),
            Want::Denied(
                reason::DUPLICATE_TARGET,
                "the workload Deployment/busy is already scaled by another ScaledObject in namespace \"ns\"",
            ),
            None,
        ),
        (
            "own target on update",
            json!({"scaleTargetRef": {"name": "busy"}}),
            json!({"name": "taken"}),
            Want::Allowed,
            None,
        ),
        (
            "same name, other kind",
            json!({"scaleTargetRef": {"name": "busy", "kind": "StatefulSet"}}),
            json!({}),
            Want::Allowed,
            None,
        ),
        (
            "same target, other version",
            json!({"scaleTargetRef": {"name": "busy", "apiVersion": "apps/v1beta2"}}),
            json!({}),
            Want::Denied(reason::DUPLICATE_TARGET, "already scaled by another ScaledObject"),
            None,
        ),
        (
            "duplicate hpa name",
            json!({"advanced": {"horizontalPodAutoscalerConfig": {"name": "shared-hpa"}}}),
            json!({}),
            Want::Denied(
                reason::DUPLICATE_HPA_NAME,
                "the HPA name \"shared-hpa\" is already used by another ScaledObject in namespace \"ns\"",
            ),
            None,
        ),
        (
            "default hpa name of another",
            json!({"advanced": {"horizontalPodAutoscalerConfig": {"name": "keda-hpa-taken"}}}),
            json!({}),
            Want::Denied(reason::DUPLICATE_HPA_NAME, "already used by another ScaledObject"),
            None,
        ),
        (
            "foreign hpa",
            json!({"scaleTargetRef": {"name": "manual-target"}}),
            json!({}),
            Want::Denied(
                reason::FOREIGN_HPA,
                "already scaled by an HPA in namespace \"ns\" that this ScaledObject does not own",
            ),
            None,
        ),
        (
            "foreign hpa adopted",
            json!({"scaleTargetRef": {"name": "manual-target"}, "advanced": {"horizontalPodAutoscalerConfig": {"name": "manual"}}}),
            json!({"annotations": {"scaledobject.keda.sh/transfer-hpa-ownership": "true"}}),
            Want::Allowed,
            None,
        ),
        (
            "transfer without naming it",
            json!({"scaleTargetRef": {"name": "manual-target"}}),
            json!({"annotations": {"scaledobject.keda.sh/transfer-hpa-ownership": "true"}}),
            Want::Denied(
                reason::FOREIGN_HPA,
                "an HPA in namespace \"ns\" that this ScaledObject does not own",
            ),
            None,
        ),
        (
            "validation off on the so",
            json!({"scaleTargetRef": {"name": "manual-target"}}),
            json!({"annotations": {"validations.keda.sh/hpa-ownership": "false"}}),
            Want::Allowed,
            None,
        ),
        (
            "validation off on the hpa",
            json!({"scaleTargetRef": {"name": "optout-target"}}),
            json!({}),
            Want::Allowed,
            None,
        ),
        (
            "hpa of a deleted so",
            json!({"scaleTargetRef": {"name": "orphan-target"}}),
            json!({}),
            Want::Denied(
                reason::FOREIGN_HPA,
                "an HPA in namespace \"ns\" that this ScaledObject does not own",
            ),
            None,
        ),
        ("own hpa", json!({"scaleTargetRef": {"name": "mine-target"}}), json!({}), Want::Allowed, None),
        (
            "cooldown irrelevant",
            json!({"minReplicaCount": 2, "cooldownPeriod": 60}),
            json!({}),
            Want::Allowed,
            Some("spec.cooldownPeriod has no effect: minReplicaCount is 2"),
        ),
        (
            "initial cooldown irrelevant",
            json!({"minReplicaCount": 1, "initialCooldownPeriod": 60}),
            json!({}),
            Want::Allowed,
            Some("spec.initialCooldownPeriod has no effect"),
        ),
        (
            "polling irrelevant",
            json!({"minReplicaCount": 1, "pollingInterval": 5}),
            json!({}),
            Want::Allowed,
            Some("spec.pollingInterval has no effect on scaling"),
        ),
        (
            "polling with fallback",
            json!({"minReplicaCount": 1, "pollingInterval": 5, "fallback": {"failureThreshold": 3, "replicas": 2}}),
            json!({}),
            Want::Allowed,
            None,
        ),
        (
            "cooldown with idle",
            json!({"minReplicaCount": 2, "idleReplicaCount": 0, "cooldownPeriod": 60, "pollingInterval": 5}),
            json!({}),
            Want::Allowed,
            None,
        ),
        (
            "cooldown with min 0",
            json!({"cooldownPeriod": 60, "pollingInterval": 5}),
            json!({}),
            Want::Allowed,
            None,
        ),
    ];
    let index = cluster();
    for (row, spec, meta, want, warning) in rows {
        let object = so(spec, meta);
        let facts = if crate::workload::needed(&object) {
            WorkloadFacts::Unknown("not checked in this table".into())
        } else {
            WorkloadFacts::NotNeeded
        };
        let v = so_rules::evaluate(&object, "ns", &index, &facts);
        check(row, &v, &want, warning);
    }
}

pub(super) fn merged(mut a: Value, b: Value) -> Value {
    merge(&mut a, b);
    a
}

#[test]
fn cross_object_rules_are_per_namespace_and_say_one_thing_each() {
    let index = cluster();
    let busy = so(json!({"scaleTargetRef": {"name": "busy"}}), json!({}));
    // The HPA owned by the existing ScaledObject is reported through that object only.
    let v = so_rules::evaluate(&busy, "ns", &index, &WorkloadFacts::NotNeeded);
    assert_eq!(v.reasons(), [reason::DUPLICATE_TARGET]);
    assert_eq!(v.denials.len(), 1);
    assert!(so_rules::evaluate(&busy, "elsewhere", &index, &WorkloadFacts::NotNeeded).allowed());
}

#[test]
fn parser_messages_are_the_operators() {
    let object = so(
        json!({"minReplicaCount": 9, "triggers": [{"type": "cron", "metadata": {"timezone": "Nowhere/City", "start": "0 8 * * *", "end": "0 9 * * *", "desiredReplicas": "1"}}]}),
        json!({}),
    );
    let v = so_rules::evaluate(
        &object,
        "ns",
        &Snapshot::synced(Default::default(), Default::default()),
        &WorkloadFacts::NotNeeded,
    );
    let operator: Vec<String> = parse_scaled_object(&object, &ParseContext::default())
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(operator.len(), 2, "{operator:?}");
    assert_eq!(v.message(), operator.join("; "));
}

#[test]
fn resource_requests_rule() {
    let c = |name: &str, cpu: bool, memory: bool| ContainerRequests { name: name.into(), cpu, memory };
    let object = so(
        json!({"minReplicaCount": 1, "triggers": [
            {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "60"}},
            {"type": "memory", "metricType": "Utilization", "metadata": {"value": "60", "containerName": "side"}}]}),
        json!({}),
    );
    let rows: Vec<(WorkloadFacts, Vec<&str>, Option<&str>)> = vec![
        (WorkloadFacts::Containers(vec![c("app", true, false), c("side", true, true)]), vec![], None),
        (
            WorkloadFacts::Containers(vec![c("app", false, true), c("side", true, false)]),
            vec![
                "spec.triggers[0] (cpu): container \"app\" of the scale target has no cpu request",
                "spec.triggers[1] (memory): container \"side\" of the scale target has no memory request",
            ],
            None,
        ),
        (
            WorkloadFacts::Unknown("Deployment ns/web not found".into()),
            vec![],
            Some("not checked: Deployment ns/web not found"),
        ),
    ];
    for (facts, want, warning) in rows {
        let (denials, warnings) = so_rules::resource_requests(&object, &facts);
        let got: Vec<&str> = denials.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(got.len(), want.len(), "{got:?}");
        for (g, w) in got.iter().zip(&want) {
            assert!(g.starts_with(w), "{g:?} vs {w:?}");
        }
        assert_eq!(
            warnings.first().map(String::as_str).map(|w| w.contains(warning.unwrap_or("\0"))),
            warning.map(|_| true)
        );
    }
    assert_eq!(
        so_rules::resource_requests(&so(json!({}), json!({})), &WorkloadFacts::Unknown("x".into())),
        (vec![], vec![])
    );
}
