//! Unknown fields of a custom resource per `fieldValidation`, with the answers kube-apiserver
//! v1.35 gives for the same ScaledObject (observed with kubectl against upstream): `Strict` is
//! `400 BadRequest` `ScaledObject in version "v1alpha1" cannot be handled as a ScaledObject:
//! strict decoding error: unknown field "…", unknown field "…"` (paths sorted); `Warn` (and no
//! parameter) stores the object pruned with one `Warning: 299 - "unknown field \"…\""` header
//! per field; `Ignore` stores it pruned silently. Trigger `metadata` is a map and keeps any key.

#![allow(clippy::unwrap_used)]

mod common;

use ebb_sandbox::sandbox::Config;
use serde_json::{Value, json};

const PATHS: [&str; 2] = [
    "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.policies[0].tolerance",
    "spec.pollingIntervall",
];

fn so(name: &str) -> Value {
    json!({
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"name": "app"},
            "pollingIntervall": 10,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {"policies": [
                {"type": "Pods", "value": 1, "periodSeconds": 60, "tolerance": 0.1}
            ]}}}},
            "triggers": [{"type": "cron", "metadata": {"timezone": "UTC", "start": "0 8 * * *",
                "end": "0 9 * * *", "desiredReplicas": "2", "extra": "x"}}]
        }
    })
}

async fn post(client: &kube::Client, query: &str, body: &Value) -> (u16, Vec<String>, Value) {
    let req = http::Request::post(format!("/apis/keda.sh/v1alpha1/namespaces/default/scaledobjects{query}"))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).unwrap())
        .unwrap();
    let resp = client.send(req.map(kube::client::Body::from)).await.unwrap();
    let status = resp.status().as_u16();
    let warnings = resp.headers().get_all("warning").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    let bytes = resp.into_body().collect_bytes().await.unwrap();
    (status, warnings, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn unknown_fields_of_custom_resources_follow_field_validation() {
    let (sb, client) = common::start(Config { controllers: false, ..Default::default() }).await;
    for (_, crd) in ebb_api::crds::all() {
        sb.create(&serde_json::to_value(crd).unwrap()).unwrap();
    }
    let (code, _, body) = post(&client, "?fieldValidation=Strict", &so("strict")).await;
    assert_eq!((code, body["reason"].as_str()), (400, Some("BadRequest")), "{body}");
    assert_eq!(
        body["message"],
        format!(
            "ScaledObject in version \"v1alpha1\" cannot be handled as a ScaledObject: strict decoding error: unknown field \"{}\", unknown field \"{}\"",
            PATHS[0], PATHS[1]
        )
    );
    for (query, name, warned) in [
        ("?fieldValidation=Warn", "warn", true),
        ("", "default", true),
        ("?fieldValidation=Ignore", "ignore", false),
    ] {
        let (code, warnings, body) = post(&client, query, &so(name)).await;
        assert_eq!(code, 201, "{name}: {body}");
        let want: Vec<String> = if warned {
            PATHS.iter().map(|p| format!("299 - \"unknown field \\\"{p}\\\"\"")).collect()
        } else {
            Vec::new()
        };
        assert_eq!(warnings, want, "{name}");
        let spec = &body["spec"];
        assert!(spec.get("pollingIntervall").is_none(), "{name}: {spec}");
        assert_eq!(
            spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]["policies"][0],
            json!({"type": "Pods", "value": 1, "periodSeconds": 60}),
            "{name}"
        );
        assert_eq!(spec["triggers"][0]["metadata"]["extra"], "x", "{name}: trigger metadata is a map");
    }
    sb.stop().await;
}
