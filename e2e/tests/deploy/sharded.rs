//! The sharded overlay: operator and metrics API server agree on the shard count, every
//! operator replica advertises its Pod IP, and each program may use the Leases it needs.

use serde_json::{Value, json};

use super::{render_overlay, selects};

#[test]
fn sharded_operator_and_metrics_apiserver_agree_on_shards_and_may_use_the_leases() {
    let env_of = |d: &Value, name: &str| -> Option<Value> {
        let env = d["spec"]["template"]["spec"]["containers"][0]["env"].as_array()?;
        env.iter().find(|e| e["name"] == name).cloned()
    };
    // Which verbs a Role in keda bound to `account` grants on Leases without naming them.
    let lease_verbs = |r: &super::Rendered, account: &str| -> Vec<String> {
        let mut verbs = Vec::new();
        for b in r.of_kind("RoleBinding").filter(|b| {
            b["metadata"]["namespace"] == "keda"
                && b["roleRef"]["kind"] == "Role"
                && b["subjects"].as_array().unwrap().iter().any(|s| s["name"] == account)
        }) {
            let Some(role) = r.of_kind("Role").find(|role| {
                role["metadata"]["name"] == b["roleRef"]["name"] && role["metadata"]["namespace"] == "keda"
            }) else {
                continue;
            };
            for rule in role["rules"].as_array().unwrap() {
                if rule["apiGroups"] == json!(["coordination.k8s.io"])
                    && rule["resources"] == json!(["leases"])
                    && rule.get("resourceNames").is_none()
                {
                    verbs.extend(
                        rule["verbs"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()),
                    );
                }
            }
        }
        verbs
    };
    for r in [render_overlay("sharded"), super::render_everything()] {
        let op = r.get("Deployment", "ebb-operator").unwrap();
        let api = r.get("Deployment", "ebb-metrics-apiserver").unwrap();
        let shards =
            env_of(op, "EBB_SHARDS").unwrap_or_else(|| panic!("{}: operator without EBB_SHARDS", r.name));
        let routed = env_of(api, "EBB_OPERATOR_SHARDS")
            .unwrap_or_else(|| panic!("{}: metrics API server without EBB_OPERATOR_SHARDS", r.name));
        assert_eq!(shards["value"], routed["value"], "{}: shard counts differ", r.name);
        let n: u32 = shards["value"].as_str().unwrap().parse().unwrap();
        assert!(n > 1, "{}: {n} shard", r.name);
        assert!(op["spec"]["replicas"].as_u64().unwrap() > 1, "{}: one operator replica", r.name);
        let pod_ip = env_of(op, "POD_IP").unwrap_or_else(|| panic!("{}: operator without POD_IP", r.name));
        assert_eq!(pod_ip["valueFrom"]["fieldRef"]["fieldPath"], "status.podIP", "{}", r.name);
        let args = op["spec"]["template"]["spec"]["containers"][0]["args"].as_array().unwrap();
        assert!(args.contains(&json!("--leader-elect=true")), "{}: sharding needs leader election", r.name);
        let op_verbs = lease_verbs(&r, "ebb-operator");
        for v in ["get", "list", "create", "update", "delete"] {
            assert!(
                op_verbs.iter().any(|x| x == v),
                "{}: ebb-operator may not {v} Leases: {op_verbs:?}",
                r.name
            );
        }
        let api_verbs = lease_verbs(&r, "ebb-metrics-apiserver");
        assert!(api_verbs.iter().any(|x| x == "list"), "{}: metrics API server may not list Leases", r.name);
        assert!(
            api_verbs.iter().all(|x| x == "get" || x == "list" || x == "watch"),
            "{}: metrics API server may write Leases: {api_verbs:?}",
            r.name
        );
        // Every replica's internal port admits the metrics API server (not only the leader's).
        let labels = &op["spec"]["template"]["metadata"]["labels"];
        let policy = r.get("NetworkPolicy", "ebb-operator").unwrap();
        assert!(selects(&policy["spec"]["podSelector"]["matchLabels"], labels), "{}", r.name);
    }
    // Without the component the operator is not sharded and the metrics API server reads no Lease.
    let default = render_overlay("default");
    assert!(env_of(default.get("Deployment", "ebb-operator").unwrap(), "EBB_SHARDS").is_none());
    assert!(lease_verbs(&default, "ebb-metrics-apiserver").is_empty());
}
