//! The documents that describe the API rather than answer it: the group list (`/apis`), the
//! group (`/apis/external.metrics.k8s.io`), the resource list of the version (what
//! `kubectl get --raw /apis/external.metrics.k8s.io/v1beta1` prints, byte for byte as KEDA's
//! metrics server prints it), and the minimal OpenAPI v2 and v3 documents the aggregator
//! fetches. All are built once at startup ([`Documents`]).

use axum::body::Bytes;
use serde_json::{Value, json};

/// API group served.
pub const GROUP: &str = "external.metrics.k8s.io";
/// Version served.
pub const VERSION: &str = "v1beta1";
/// `group/version`.
pub const GROUP_VERSION: &str = "external.metrics.k8s.io/v1beta1";
/// The one resource of the version.
pub const RESOURCE: &str = "externalmetrics";
/// Kind of the value lists.
pub const LIST_KIND: &str = "ExternalMetricValueList";

/// The resource list of `external.metrics.k8s.io/v1beta1`, compact JSON.
pub const RESOURCE_LIST: &str = concat!(
    r#"{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"external.metrics.k8s.io/v1beta1","#,
    r#""resources":[{"name":"externalmetrics","singularName":"","namespaced":true,"#,
    r#""kind":"ExternalMetricValueList","verbs":["get"]}]}"#
);

fn group_version() -> Value {
    json!({"groupVersion": GROUP_VERSION, "version": VERSION})
}

fn group() -> Value {
    json!({
        "name": GROUP,
        "versions": [group_version()],
        "preferredVersion": group_version(),
    })
}

/// The `APIGroupList` served at `/apis`.
pub fn group_list() -> Value {
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [group()]})
}

/// The `APIGroup` served at `/apis/external.metrics.k8s.io`.
pub fn api_group() -> Value {
    let mut doc = group();
    if let Some(map) = doc.as_object_mut() {
        map.insert("kind".into(), json!("APIGroup"));
        map.insert("apiVersion".into(), json!("v1"));
    }
    doc
}

/// Definitions shared by both OpenAPI documents: the value list and its items.
fn schemas(prefix: &str) -> Value {
    let list = format!("{prefix}io.k8s.metrics.pkg.apis.external_metrics.v1beta1.ExternalMetricValue");
    json!({
        "io.k8s.metrics.pkg.apis.external_metrics.v1beta1.ExternalMetricValueList": {
            "description": "ExternalMetricValueList is a list of values for a given metric for some set of labels",
            "type": "object",
            "required": ["metadata", "items"],
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"type": "object"},
                "items": {"type": "array", "items": {"$ref": list}},
            },
            "x-kubernetes-group-version-kind": [{"group": GROUP, "version": VERSION, "kind": LIST_KIND}],
        },
        "io.k8s.metrics.pkg.apis.external_metrics.v1beta1.ExternalMetricValue": {
            "description": "ExternalMetricValue is a metric value for an external metric",
            "type": "object",
            "required": ["metricName", "metricLabels", "timestamp", "value"],
            "properties": {
                "metricName": {"type": "string"},
                "metricLabels": {"type": "object", "additionalProperties": {"type": "string"}},
                "timestamp": {"type": "string", "format": "date-time"},
                "window": {"type": "integer", "format": "int64"},
                "value": {"type": "string"},
            },
        },
    })
}

fn operation(list_ref: &str, v3: bool) -> Value {
    let schema = json!({"$ref": list_ref});
    let ok = if v3 {
        json!({"description": "OK", "content": {"application/json": {"schema": schema}}})
    } else {
        json!({"description": "OK", "schema": schema})
    };
    let params = [
        json!({"name": "namespace", "in": "path", "required": true, "description": "namespace of the ScaledObject", "schema": {"type": "string"}}),
        json!({"name": "metric", "in": "path", "required": true, "description": "external metric name (s<index>-<scaler>)", "schema": {"type": "string"}}),
        json!({"name": "labelSelector", "in": "query", "required": true, "description": "must select one ScaledObject: scaledobject.keda.sh/name=<name>", "schema": {"type": "string"}}),
    ];
    let params: Vec<Value> = if v3 {
        params.into_iter().collect()
    } else {
        // OpenAPI v2 puts the type on the parameter itself.
        params
            .into_iter()
            .map(|mut p| {
                if let Some(map) = p.as_object_mut() {
                    map.remove("schema");
                    map.insert("type".into(), json!("string"));
                }
                p
            })
            .collect()
    };
    json!({
        "get": {
            "description": "read the current value of an external metric of a ScaledObject",
            "operationId": "readExternalMetricValue",
            "tags": ["externalMetrics_v1beta1"],
            "parameters": params,
            "responses": {"200": ok, "401": {"description": "Unauthorized"}},
            "x-kubernetes-action": "list",
            "x-kubernetes-group-version-kind": {"group": GROUP, "version": VERSION, "kind": LIST_KIND},
        }
    })
}

const VALUE_PATH: &str = "/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/{metric}";

/// The OpenAPI v2 (Swagger) document served at `/openapi/v2`.
pub fn openapi_v2(version: &str) -> Value {
    let list_ref = "#/definitions/io.k8s.metrics.pkg.apis.external_metrics.v1beta1.ExternalMetricValueList";
    json!({
        "swagger": "2.0",
        "info": {"title": "ebb-metrics-apiserver", "version": version},
        "paths": {VALUE_PATH: operation(list_ref, false)},
        "definitions": schemas("#/definitions/"),
    })
}

/// The OpenAPI v3 discovery document served at `/openapi/v3`.
pub fn openapi_v3_index() -> Value {
    json!({"paths": {"apis/external.metrics.k8s.io/v1beta1": {
        "serverRelativeURL": "/openapi/v3/apis/external.metrics.k8s.io/v1beta1"
    }}})
}

/// The OpenAPI v3 document of the group version, served at
/// `/openapi/v3/apis/external.metrics.k8s.io/v1beta1`.
pub fn openapi_v3(version: &str) -> Value {
    let list_ref =
        "#/components/schemas/io.k8s.metrics.pkg.apis.external_metrics.v1beta1.ExternalMetricValueList";
    json!({
        "openapi": "3.0.0",
        "info": {"title": "ebb-metrics-apiserver", "version": version},
        "paths": {VALUE_PATH: operation(list_ref, true)},
        "components": {"schemas": schemas("#/components/schemas/")},
    })
}

/// Every document, serialized once.
#[derive(Clone, Debug)]
pub struct Documents {
    pub group_list: Bytes,
    pub group: Bytes,
    pub resource_list: Bytes,
    pub openapi_v2: Bytes,
    pub openapi_v3_index: Bytes,
    pub openapi_v3: Bytes,
}

impl Documents {
    /// Serializes every document; `version` is the program version put in the OpenAPI info.
    pub fn new(version: &str) -> Self {
        let bytes = |v: Value| Bytes::from(v.to_string());
        Self {
            group_list: bytes(group_list()),
            group: bytes(api_group()),
            resource_list: Bytes::from_static(RESOURCE_LIST.as_bytes()),
            openapi_v2: bytes(openapi_v2(version)),
            openapi_v3_index: bytes(openapi_v3_index()),
            openapi_v3: bytes(openapi_v3(version)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_list_is_what_keda_prints() {
        let doc: Value = serde_json::from_str(RESOURCE_LIST).unwrap();
        assert_eq!(
            doc,
            json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "external.metrics.k8s.io/v1beta1",
                "resources": [{"name": "externalmetrics", "singularName": "", "namespaced": true,
                    "kind": "ExternalMetricValueList", "verbs": ["get"]}]})
        );
        // Compact, in KEDA's field order, no trailing newline.
        assert!(RESOURCE_LIST.starts_with(r#"{"kind":"APIResourceList","apiVersion":"v1","groupVersion""#));
        assert!(!RESOURCE_LIST.contains(' '));
    }

    #[test]
    fn group_documents_name_the_one_version() {
        let list = group_list();
        assert_eq!(list["kind"], "APIGroupList");
        assert_eq!(list["groups"].as_array().unwrap().len(), 1);
        assert_eq!(list["groups"][0]["name"], GROUP);
        assert_eq!(list["groups"][0]["preferredVersion"]["groupVersion"], GROUP_VERSION);
        let group = api_group();
        assert_eq!(group["kind"], "APIGroup");
        assert_eq!(group["apiVersion"], "v1");
        assert_eq!(group["versions"], json!([{"groupVersion": GROUP_VERSION, "version": VERSION}]));
    }

    #[test]
    fn openapi_documents_reference_their_own_definitions() {
        let v2 = openapi_v2("1.2.3");
        assert_eq!(v2["swagger"], "2.0");
        let op = &v2["paths"][VALUE_PATH]["get"];
        let reference = op["responses"]["200"]["schema"]["$ref"].as_str().unwrap();
        let name = reference.strip_prefix("#/definitions/").unwrap();
        assert!(v2["definitions"][name].is_object(), "{reference}");
        assert!(op["parameters"].as_array().unwrap().iter().all(|p| p["type"] == "string"));

        let v3 = openapi_v3("1.2.3");
        let reference = v3["paths"][VALUE_PATH]["get"]["responses"]["200"]["content"]["application/json"]
            ["schema"]["$ref"]
            .as_str()
            .unwrap();
        let name = reference.strip_prefix("#/components/schemas/").unwrap();
        assert!(v3["components"]["schemas"][name].is_object(), "{reference}");
        let index = openapi_v3_index();
        assert_eq!(
            index["paths"]["apis/external.metrics.k8s.io/v1beta1"]["serverRelativeURL"],
            "/openapi/v3/apis/external.metrics.k8s.io/v1beta1"
        );
    }
}
