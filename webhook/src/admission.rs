//! One admission review from body to answer: decode (HTTP 400 for a body that is not a
//! review), let through what is never blocked (deletes, connects, subresources, kinds that are
//! not ebb's, updates that leave spec and annotations as they were — finalizer, label and
//! ownerReference changes — and updates of objects being deleted), then run the rules of the
//! object's kind and count ScaledObject validations. Nothing here writes anywhere: a dry run is
//! validated exactly like a real request. The endpoint is not authenticated, so nothing a review
//! claims (namespace, user) is trusted: the counters label only namespaces the watches know.

use std::sync::Arc;
use std::time::Duration;

use ebb_api::{ClusterTriggerAuthentication, ScaledObject, TriggerAuthentication};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::index::Index;
use crate::metrics::Metrics;
use crate::review::{self, Request, Response};
use crate::rules::scaled_object::{self, WorkloadFacts, reason};
use crate::rules::{Verdict, auth};

/// An HTTP answer: status and JSON (or, for 400, plain text) body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn is_json(&self) -> bool {
        self.status == 200
    }
}

/// The admission handler's shared state.
#[derive(Clone)]
pub struct Webhook {
    pub index: Arc<Index>,
    pub metrics: Metrics,
    /// Client for the cpu/memory target lookup (none: those rules warn instead).
    pub client: Option<kube::Client>,
    /// How long a review waits for the index's first sync before it is refused with 503.
    pub sync_wait: Duration,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("index", &self.index)
            .field("client", &self.client.is_some())
            .field("sync_wait", &self.sync_wait)
            .finish_non_exhaustive()
    }
}

/// What a decoded request needs.
enum Plan {
    Answer(Response),
    ScaledObject { so: Box<ScaledObject>, ns: String, action: &'static str },
    Auth(Box<ebb_api::TriggerAuthenticationSpec>),
}

impl Webhook {
    pub fn new(index: Arc<Index>, metrics: Metrics, client: Option<kube::Client>) -> Self {
        Self { index, metrics, client, sync_wait: Duration::from_secs(5) }
    }

    /// Answers one review body: waits (bounded) for the index's first sync, and reads the
    /// scale target when a cpu/memory rule needs it.
    pub async fn review(&self, body: &[u8]) -> Reply {
        let (version, uid, plan) = match self.plan(body) {
            Ok(p) => p,
            Err(reply) => return reply,
        };
        let response = match plan {
            Plan::ScaledObject { so, ns, action } => {
                let facts = match &self.client {
                    Some(c) if crate::workload::needed(&so) => crate::workload::facts(c, &so, &ns).await,
                    Some(_) => WorkloadFacts::NotNeeded,
                    None => no_client(&so),
                };
                if !self.index.is_synced() {
                    self.index.wait_synced(self.sync_wait).await;
                }
                self.scaled_object(&uid, &so, &ns, action, &facts)
            }
            other => self.finish(&uid, other),
        };
        Reply { status: 200, body: review::encode(&version, &response) }
    }

    /// Answers one review body without waiting or reading anything (cpu/memory requests are
    /// then left unchecked with a warning). Used by tests, the fuzzer and the benchmark.
    pub fn review_now(&self, body: &[u8]) -> Reply {
        let (version, uid, plan) = match self.plan(body) {
            Ok(p) => p,
            Err(reply) => return reply,
        };
        let response = match plan {
            Plan::ScaledObject { so, ns, action } => {
                self.scaled_object(&uid, &so, &ns, action, &no_client(&so))
            }
            other => self.finish(&uid, other),
        };
        Reply { status: 200, body: review::encode(&version, &response) }
    }

    fn finish(&self, uid: &str, plan: Plan) -> Response {
        match plan {
            Plan::Answer(r) => r,
            Plan::Auth(spec) => verdict_response(uid, auth::evaluate(&spec)),
            Plan::ScaledObject { so, ns, action } => {
                self.scaled_object(uid, &so, &ns, action, &no_client(&so))
            }
        }
    }

    fn plan(&self, body: &[u8]) -> Result<(String, String, Plan), Reply> {
        let review =
            review::decode(body).map_err(|e| Reply { status: 400, body: e.to_string().into_bytes() })?;
        let r = review.request;
        let plan = self.plan_request(&r);
        Ok((review.api_version, r.uid, plan))
    }

    fn plan_request(&self, r: &Request) -> Plan {
        let allow = || Plan::Answer(Response::allow(&r.uid, Vec::new()));
        let action = match r.operation.as_str() {
            "CREATE" => "create",
            "UPDATE" => "update",
            // Deletes and connects are never blocked.
            _ => return allow(),
        };
        if r.sub_resource.as_deref().is_some_and(|s| !s.is_empty())
            || r.kind.group != ebb_api::constants::GROUP
        {
            return allow();
        }
        let kind = r.kind.kind.as_str();
        if !matches!(kind, "ScaledObject" | "TriggerAuthentication" | "ClusterTriggerAuthentication") {
            return allow();
        }
        let Some(object) = &r.object else {
            return Plan::Answer(Response::deny(
                &r.uid,
                400,
                format!("{action} of a {kind} without an object"),
                vec![],
            ));
        };
        if action == "update" && !needs_review(object, r.old_object.as_deref()) {
            return allow();
        }
        let undecodable = |e: serde_json::Error| format!("cannot read the {kind}: {e}");
        match kind {
            "ScaledObject" => {
                let so: ScaledObject = match typed(object) {
                    Ok(so) => so,
                    Err(e) => {
                        let ns = r.namespace.as_deref().unwrap_or_default();
                        let known = self.index.read().knows_namespace(ns);
                        self.metrics.record(ns, known, action, &[reason::UNDECODABLE]);
                        return Plan::Answer(Response::deny(&r.uid, 400, undecodable(e), vec![]));
                    }
                };
                let ns = r
                    .namespace
                    .clone()
                    .filter(|n| !n.is_empty())
                    .or_else(|| so.metadata.namespace.clone())
                    .unwrap_or_else(|| "default".to_owned());
                let mut so = Box::new(so);
                if so.metadata.name.as_deref().is_none_or(str::is_empty) {
                    so.metadata.name = r.name.clone().filter(|n| !n.is_empty());
                }
                Plan::ScaledObject { so, ns, action }
            }
            "TriggerAuthentication" => match typed::<TriggerAuthentication>(object) {
                Ok(ta) => Plan::Auth(Box::new(ta.spec)),
                Err(e) => Plan::Answer(Response::deny(&r.uid, 400, undecodable(e), vec![])),
            },
            _ => match typed::<ClusterTriggerAuthentication>(object) {
                Ok(cta) => Plan::Auth(Box::new(cta.spec.auth)),
                Err(e) => Plan::Answer(Response::deny(&r.uid, 400, undecodable(e), vec![])),
            },
        }
    }

    fn scaled_object(
        &self,
        uid: &str,
        so: &ScaledObject,
        ns: &str,
        action: &'static str,
        facts: &WorkloadFacts,
    ) -> Response {
        let snapshot = self.index.read();
        let known = snapshot.knows_namespace(ns);
        if !snapshot.is_synced() {
            drop(snapshot);
            self.metrics.record(ns, known, action, &[reason::NOT_READY]);
            return Response::deny(
                uid,
                503,
                "ebb-webhook has not finished reading the existing ScaledObjects and HPAs; retry shortly"
                    .to_owned(),
                Vec::new(),
            );
        }
        let verdict = scaled_object::evaluate(so, ns, &snapshot, facts);
        drop(snapshot);
        self.metrics.record(ns, known, action, &verdict.reasons());
        verdict_response(uid, verdict)
    }
}

fn no_client(so: &ScaledObject) -> WorkloadFacts {
    if crate::workload::needed(so) {
        WorkloadFacts::Unknown("the webhook runs without access to the cluster".to_owned())
    } else {
        WorkloadFacts::NotNeeded
    }
}

fn verdict_response(uid: &str, v: Verdict) -> Response {
    if v.allowed() {
        Response::allow(uid, v.warnings)
    } else {
        Response::deny(uid, 403, v.message(), v.warnings)
    }
}

fn typed<T: DeserializeOwned>(raw: &RawValue) -> Result<T, serde_json::Error> {
    serde_json::from_str(raw.get())
}

/// The parts of an object the rules read.
#[derive(serde::Deserialize, PartialEq)]
struct RuleInput {
    #[serde(default)]
    spec: Option<serde_json::Value>,
    #[serde(default)]
    metadata: Option<MetaInput>,
}

#[derive(serde::Deserialize, PartialEq)]
struct MetaInput {
    #[serde(default)]
    annotations: Option<serde_json::Value>,
    #[serde(default, rename = "deletionTimestamp")]
    deletion_timestamp: Option<serde_json::Value>,
}

/// Whether an update must go through the rules: not when the object is being deleted, nor when
/// spec and annotations are unchanged (finalizer, label or ownerReference edits).
fn needs_review(new: &RawValue, old: Option<&RawValue>) -> bool {
    let Ok(n) = serde_json::from_str::<RuleInput>(new.get()) else { return true };
    if n.metadata.as_ref().is_some_and(|m| m.deletion_timestamp.is_some()) {
        return false;
    }
    let Some(Ok(o)) = old.map(|o| serde_json::from_str::<RuleInput>(o.get())) else { return true };
    let annotations = |r: &RuleInput| r.metadata.as_ref().and_then(|m| m.annotations.clone());
    !(n.spec == o.spec && annotations(&n) == annotations(&o))
}

#[cfg(test)]
mod tests;
