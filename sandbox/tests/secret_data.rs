//! A Secret whose `data` is not base64 is refused as kube-apiserver v1.35 refuses it (status,
//! reason and message as observed on upstream; `differential.rs` scenario `secret-data` compares
//! the two through kubectl): through the HTTP API on create and on a merge patch.

#![allow(clippy::unwrap_used)]

mod common;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

#[tokio::test]
async fn secret_data_that_is_not_base64_is_a_bad_request() {
    let (sb, client) =
        common::start(ebb_sandbox::sandbox::Config { controllers: false, ..Default::default() }).await;
    let secrets: Api<kube::api::DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &kube::api::ApiResource::erase::<Secret>(&()));
    let plain: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "plain"},
        "data": {"user": "YWRtaW4=", "password": "hunter2-plain>text"}
    }))
    .unwrap();
    let kube::Error::Api(e) = secrets.create(&PostParams::default(), &plain).await.unwrap_err() else {
        panic!("not an API error")
    };
    assert_eq!((e.code, e.reason.as_str()), (400, "BadRequest"));
    assert_eq!(
        e.message,
        "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data at input byte 7"
    );
    // A valid Secret, then a merge patch putting plain text into it.
    let ok: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ok"}, "data": {"user": "YWRtaW4="}
    }))
    .unwrap();
    secrets.create(&PostParams::default(), &ok).await.unwrap();
    let p = json!({"data": {"k": "a=b"}});
    let kube::Error::Api(e) =
        secrets.patch("ok", &PatchParams::default(), &Patch::Merge(&p)).await.unwrap_err()
    else {
        panic!("not an API error")
    };
    assert_eq!((e.code, e.reason.as_str()), (400, "BadRequest"), "{}", e.message);
    assert!(e.message.ends_with("illegal base64 data at input byte 1"), "{}", e.message);
    sb.stop().await;
}
