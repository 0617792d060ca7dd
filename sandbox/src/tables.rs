//! Server-side printing for `kubectl get`: turns a list into a `meta.k8s.io/v1` Table with the
//! columns kube-apiserver prints for built-in kinds, or a CRD's additionalPrinterColumns.

use serde_json::Value;

use crate::resources::Resource;
use crate::table::{IncludeObject, builtin_columns, crd_columns, table};

/// The Table for a list response (`items` and `metadata` of the list).
pub fn for_list(res: &Resource, list: &Value, include_object: Option<&str>) -> Value {
    let columns = if res.custom {
        crd_columns(res.printer_columns.as_ref())
    } else {
        builtin_columns(&res.group, &res.kind)
    };
    let items: Vec<Value> = list.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
    let include = include_object.and_then(IncludeObject::from_query).unwrap_or_default();
    let meta = list.get("metadata").cloned().unwrap_or_else(|| serde_json::json!({}));
    table(&columns, &items, meta, include, chrono::Utc::now())
}
