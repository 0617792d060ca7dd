//! Reading the scale target's containers for the cpu/memory rules: one GET of the Deployment or
//! StatefulSet, only for ScaledObjects with a cpu or memory trigger (other objects never cause
//! a request). Other kinds, a missing target or an API error leave the rule unchecked with a
//! warning instead of blocking the apply (the target may be created right after).

use std::time::Duration;

use ebb_api::ScaledObject;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::PodSpec;
use kube::{Api, Client};

use crate::rules::scaled_object::{ContainerRequests, WorkloadFacts};

/// Longest the lookup may take (the API server gives the whole review 10 s).
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

/// Whether any trigger is cpu or memory.
pub fn needed(so: &ScaledObject) -> bool {
    so.spec.triggers.iter().any(|t| matches!(t.type_.as_str(), "cpu" | "memory"))
}

/// Requests of each container of a pod template.
pub fn containers(pod: &PodSpec) -> Vec<ContainerRequests> {
    pod.containers
        .iter()
        .map(|c| {
            // A limit alone counts: Kubernetes then defaults the request to it (as KEDA accepts).
            let req = c.resources.as_ref().and_then(|r| r.requests.as_ref());
            let lim = c.resources.as_ref().and_then(|r| r.limits.as_ref());
            let set = |m: Option<
                &std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
            >,
                       k: &str| {
                m.and_then(|m| m.get(k)).is_some_and(|q| !is_zero(&q.0))
            };
            let has = |k: &str| set(req, k) || (req.and_then(|r| r.get(k)).is_none() && set(lim, k));
            ContainerRequests { name: c.name.clone(), cpu: has("cpu"), memory: has("memory") }
        })
        .collect()
}

fn is_zero(q: &str) -> bool {
    let digits: String = q.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    digits.parse::<f64>().is_ok_and(|v| v == 0.0)
}

/// Looks the target of `so` up in `ns` when a cpu/memory rule needs it.
pub async fn facts(client: &Client, so: &ScaledObject, ns: &str) -> WorkloadFacts {
    if !needed(so) {
        return WorkloadFacts::NotNeeded;
    }
    let t = &so.spec.scale_target_ref;
    let group = t.api_version().rsplit_once('/').map_or("", |(g, _)| g);
    let what = format!("{} {}/{}", t.kind(), ns, t.name);
    let pod = match (group, t.kind()) {
        ("apps", "Deployment") => {
            let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
            lookup(api.get_opt(&t.name), &what).await.map(|d| d.and_then(|d| d.spec).map(|s| s.template.spec))
        }
        ("apps", "StatefulSet") => {
            let api: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
            lookup(api.get_opt(&t.name), &what).await.map(|d| d.and_then(|d| d.spec).map(|s| s.template.spec))
        }
        _ => return WorkloadFacts::Unknown(format!("{} is not a Deployment or StatefulSet", t.kind())),
    };
    match pod {
        Ok(Some(Some(pod))) => WorkloadFacts::Containers(containers(&pod)),
        Ok(_) => WorkloadFacts::Unknown(format!("{what} not found")),
        Err(why) => WorkloadFacts::Unknown(why),
    }
}

async fn lookup<T>(
    get: impl Future<Output = Result<Option<T>, kube::Error>>,
    what: &str,
) -> Result<Option<T>, String> {
    match tokio::time::timeout(LOOKUP_TIMEOUT, get).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("cannot read {what}: {e}")),
        Err(_) => Err(format!("reading {what} timed out after {LOOKUP_TIMEOUT:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_requests_are_read_and_zero_is_none() {
        let pod: PodSpec = serde_json::from_value(serde_json::json!({"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "0"}}},
            {"name": "b"},
            {"name": "c", "resources": {"requests": {"memory": "64Mi", "cpu": "0.0"}}},
            {"name": "d", "resources": {"limits": {"cpu": "1", "memory": "0"}}},
        ]}))
        .unwrap();
        assert_eq!(
            containers(&pod),
            [
                ContainerRequests { name: "a".into(), cpu: true, memory: false },
                ContainerRequests { name: "b".into(), cpu: false, memory: false },
                ContainerRequests { name: "c".into(), cpu: false, memory: true },
                ContainerRequests { name: "d".into(), cpu: true, memory: false },
            ]
        );
    }
}
