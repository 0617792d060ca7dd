//! Table tests of the reconcile plan: one named case per branch, each with the object, what the
//! operator remembers of it and what the target check found, and the expected steps and end
//! written out as literals from KEDA's documented behaviour (labels, finalizer, pause, HPA shape
//! and name, status conditions and fields, events), never computed with the operator's code.

use std::time::Duration;

use ebb_api::{ScaledObject, ScaledObjectStatus};
use ebb_scalers::{Location, ParseContext, ParseError, ParseErrorKind};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Value, json};

use super::plan::{Checked, End, Event, Input, Observed, RESYNC, Step, plan, plan_checked};
use crate::error::Error;
use crate::hpa::HpaError;
use crate::target::{Target, TargetNotFound};

mod cases;
mod hpa_active;
mod paused_directions;
use cases::cases;

/// The reconcile's clock, and an earlier time conditions of a remembered status carry.
const NOW: &str = "2025-01-01T00:00:00Z";
const EARLIER: &str = "2024-12-31T00:00:00Z";
/// The object's fingerprint in every case, and the one of a loop started for an older spec.
const FP: &str = "fp-now";
const OLD_FP: &str = "fp-old";
/// Cron `0 8 * * *` → `0 18 * * *` in UTC: `s0-cron-<timezone>-<start>-<end>`, spaces removed,
/// `*` written `x`.
const METRIC: &str = "s0-cron-UTC-08xxx-018xxx";
const READY_MSG: &str = "ScaledObject is defined correctly and is ready for scaling";

fn time(s: &str) -> Time {
    serde_json::from_value(json!(s)).unwrap()
}

/// Merges `patch` into `base` (objects key by key, `null` removes).
fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    b.remove(&k);
                } else {
                    merge(b.entry(k).or_insert(Value::Null), v);
                }
            }
        }
        (b, p) => *b = p,
    }
}

/// A labelled cron ScaledObject `shop/web` targeting Deployment `web`, max 5, with `patch`.
fn object(patch: Value) -> ScaledObject {
    let mut so = json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": "web", "namespace": "shop", "uid": "uid-1", "resourceVersion": "7",
            "labels": {"scaledobject.keda.sh/name": "web"}},
        "spec": {"scaleTargetRef": {"name": "web"}, "maxReplicaCount": 5,
            "triggers": [{"type": "cron", "metadata": {"timezone": "UTC", "start": "0 8 * * *",
                "end": "0 18 * * *", "desiredReplicas": "3"}}]}});
    merge(&mut so, patch);
    serde_json::from_value(so).unwrap()
}

fn cond(type_: &str, status: &str, reason: &str, message: &str, at: &str) -> Value {
    let mut c = json!({"type": type_, "status": status, "lastTransitionTime": at});
    if !reason.is_empty() {
        c["reason"] = json!(reason);
        c["message"] = json!(message);
    }
    c
}

fn status(v: Value) -> ScaledObjectStatus {
    serde_json::from_value(v).unwrap()
}

/// The status of an object that was reconciled before and is scaling (conditions set earlier).
fn scaling() -> Value {
    json!({
        "conditions": [
            cond("Ready", "True", "ScaledObjectReady", READY_MSG, EARLIER),
            cond("Active", "False", "ScalerNotActive", "Scaling is not performed because triggers are not active", EARLIER),
            cond("Fallback", "False", "NoFallbackFound", "No fallbacks are active on this scaled object", EARLIER),
            cond("Paused", "False", "ScaledObjectUnpaused", "ScaledObject is not paused", EARLIER),
        ],
        "scaleTargetKind": "apps/v1.Deployment",
        "scaleTargetGVKR": {"group": "apps", "version": "v1", "kind": "Deployment", "resource": "deployments"},
        "originalReplicaCount": 2,
        "externalMetricNames": [METRIC],
        "hpaName": "keda-hpa-web",
        "triggersTypes": "cron",
    })
}

/// `scaling()` with `patch` merged.
fn scaling_with(patch: Value) -> Value {
    let mut s = scaling();
    merge(&mut s, patch);
    s
}

fn write(v: Value) -> Step {
    Step::WriteStatus(Box::new(status(v)))
}

/// The HPA KEDA shapes for the object: minReplicas max(1, min), maxReplicas, one External
/// metric selected by `scaledobject.keda.sh/name`, AverageValue target 1 (cron), a controller
/// owner reference and ebb's labels.
fn hpa(name: &str) -> Step {
    hpa_annotated(name, Value::Null)
}

/// [`hpa`] carrying `annotations`: KEDA copies every annotation of the ScaledObject onto its HPA.
fn hpa_annotated(name: &str, annotations: Value) -> Step {
    let v = json!({
        "metadata": {"name": name, "namespace": "shop", "annotations": annotations,
            "labels": {"scaledobject.keda.sh/name": "web", "app.kubernetes.io/name": name,
                "app.kubernetes.io/version": env!("CARGO_PKG_VERSION"), "app.kubernetes.io/part-of": "web",
                "app.kubernetes.io/managed-by": "ebb-operator"},
            "ownerReferences": [{"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "web",
                "uid": "uid-1", "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 5,
            "metrics": [{"type": "External", "external": {
                "metric": {"name": METRIC, "selector": {"matchLabels": {"scaledobject.keda.sh/name": "web"}}},
                "target": {"type": "AverageValue", "averageValue": "1"}}}]},
    });
    let h: HorizontalPodAutoscaler = serde_json::from_value(v).unwrap();
    Step::ApplyHpa(Box::new(h))
}

fn event(reason: &'static str, note: &str) -> Step {
    Step::Event(Event::normal(reason, note))
}

fn warning(reason: &'static str, note: &str) -> Step {
    Step::Event(Event::warning(reason, note))
}

fn started() -> [Step; 2] {
    [Step::StartLoop, event("KEDAScalersStarted", "Started scalers watch: cron")]
}

fn done() -> Step {
    Step::Reconciled { fingerprint: FP.into() }
}

fn unpaused() -> Step {
    Step::PausedMetric { paused: false }
}

fn check_failed(message: &str) -> [Value; 2] {
    [
        cond("Ready", "False", "ScaledObjectCheckFailed", message, NOW),
        cond("Active", "Unknown", "UnknownState", "ScaledObject check failed", NOW),
    ]
}

/// What the target check finds.
enum Check {
    /// The plan must not read the target.
    NotRead,
    /// Deployment `web` with these replicas; the triggers parse.
    Found(Option<i32>),
    Failed(fn() -> Error),
}

struct Case {
    name: &'static str,
    so: ScaledObject,
    /// The status model remembered from the last write.
    model: Option<Value>,
    /// Fingerprint of the running loop, before the check and after it.
    running: Option<&'static str>,
    running_after_check: Option<&'static str>,
    last_reconcile: Option<(&'static str, Duration)>,
    check: Check,
    /// What the controller's watch says of the HPA's `ScalingActive` (`None`: not known).
    hpa: Option<Option<crate::hpa_active::ScalingActive>>,
    steps: Vec<Step>,
    end: End,
}

impl Case {
    fn new(name: &'static str, so: ScaledObject, check: Check, steps: Vec<Step>, end: End) -> Self {
        Self {
            name,
            so,
            model: None,
            running: None,
            running_after_check: None,
            last_reconcile: None,
            check,
            hpa: None,
            steps,
            end,
        }
    }

    /// The watch reports this `ScalingActive` for the HPA (`None`: no HPA or no condition).
    fn with_hpa(mut self, condition: Option<(&str, &str, &str)>) -> Self {
        self.hpa = Some(condition.map(|(status, reason, message)| crate::hpa_active::ScalingActive {
            status: status.into(),
            reason: reason.into(),
            message: message.into(),
        }));
        self
    }

    /// Reconciled before: the model is `model` and a loop for the current spec runs.
    fn known(mut self, model: Value) -> Self {
        self.model = Some(model);
        self.running = Some(FP);
        self.running_after_check = Some(FP);
        self
    }

    /// The last complete reconcile: its fingerprint and age.
    fn with_last(mut self, fp: &'static str, age_secs: u64) -> Self {
        self.last_reconcile = Some((fp, Duration::from_secs(age_secs)));
        self
    }

    fn loop_running(mut self, before: Option<&'static str>, after: Option<&'static str>) -> Self {
        self.running = before;
        self.running_after_check = after;
        self
    }
}

fn api_error(code: u16) -> kube::Error {
    kube::Error::Api(kube::core::Status::failure("answer", "Reason").with_code(code).boxed())
}

/// Both stages, as reconcile runs them.
fn run(case: &Case) -> (Vec<Step>, End) {
    let input = Input {
        so: &case.so,
        model: case.model.clone().map(status),
        fingerprint: FP.into(),
        reconcile_fingerprint: FP.into(),
        running_loop: case.running.map(Into::into),
        last_reconcile: case.last_reconcile.map(|(fp, age)| (fp.into(), age)),
        hpa_scaling_active: case.hpa.clone(),
        now: time(NOW),
    };
    let first = plan(&input);
    let mut steps = first.steps;
    let end = match (first.end, &case.check) {
        (End::CheckTarget(_), Check::NotRead) => panic!("{}: the target was read", case.name),
        (End::CheckTarget(model), check) => {
            let check = match check {
                Check::Found(replicas) => Ok(Checked {
                    target: Target::deployment("web"),
                    replicas: *replicas,
                    parsed: ebb_scalers::parse_scaled_object(&case.so, &ParseContext::default()).unwrap(),
                }),
                Check::Failed(e) => Err(e()),
                Check::NotRead => unreachable!(),
            };
            let observed = Observed { check, running_loop: case.running_after_check.map(Into::into) };
            let second = plan_checked(&input, *model, &observed);
            steps.extend(second.steps);
            second.end
        }
        (end, Check::NotRead) => end,
        (end, _) => panic!("{}: the target was not read; the plan ended with {end:?}", case.name),
    };
    (steps, end)
}

#[test]
fn plan_table() {
    let cases = cases();
    let mut names = std::collections::BTreeSet::new();
    for case in &cases {
        assert!(names.insert(case.name), "duplicate case name {}", case.name);
        let (steps, end) = run(case);
        assert_eq!(end, case.end, "{}: end", case.name);
        assert_eq!(steps.len(), case.steps.len(), "{}: steps {steps:#?}", case.name);
        for (i, (got, want)) in steps.iter().zip(&case.steps).enumerate() {
            assert_eq!(got, want, "{}: step {i}", case.name);
        }
    }
    assert_eq!(cases.len(), 24);
}
