//! Server-side printing: the `meta.k8s.io/v1` `Table` responses that `kubectl get` asks for with
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` ([`for_list`] for a list response of a
//! resource; [`table`] and [`row`] from given columns). Column sets come from a CRD's
//! `additionalPrinterColumns` (cells computed with JSONPath; [`crd_columns`]) or from the built-in
//! printers in `table::printers` (cells computed by functions; [`builtin_columns`]). As kube-apiserver does, every column is filled
//! (priority > 0 columns too; kubectl hides those unless `-o wide`), and ages are rendered as
//! relative durations ("5m", "3h2m", "2d").

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::jsonpath::{self, JsonPath};
use crate::resources::Resource;

mod printers;

pub use printers::builtin_columns;

/// Computes one cell from the object and the current time.
pub type CellFn = fn(&Value, DateTime<Utc>) -> Value;

/// One column of a table.
#[derive(Debug, Clone)]
pub struct Column {
    /// Header, as kube-apiserver sends it (kubectl upper-cases it).
    pub name: String,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    pub type_: String,
    /// e.g. `name` for the name column.
    pub format: String,
    /// Human description of the column.
    pub description: String,
    /// 0 = shown by default; higher = only with `-o wide`.
    pub priority: i32,
    /// JSONPath the cell is read from (CRD columns).
    pub json_path: Option<String>,
    /// Function computing the cell (built-in printers); takes precedence over `json_path`.
    pub cell: Option<CellFn>,
}

impl Column {
    /// A column whose cells come from a JSONPath, converted according to `type_`.
    pub fn json_path(name: &str, type_: &str, path: &str) -> Self {
        Column {
            name: name.to_string(),
            type_: type_.to_string(),
            format: String::new(),
            description: String::new(),
            priority: 0,
            json_path: Some(path.to_string()),
            cell: None,
        }
    }

    /// A column whose cells are computed by `cell`.
    pub fn computed(name: &str, type_: &str, priority: i32, description: &str, cell: CellFn) -> Self {
        Column {
            name: name.to_string(),
            type_: type_.to_string(),
            format: String::new(),
            description: description.to_string(),
            priority,
            json_path: None,
            cell: Some(cell),
        }
    }

    /// The `Name` column (format `name`).
    pub fn name_column() -> Self {
        Column { format: "name".into(), ..Column::computed("Name", "string", 0, NAME_DESCRIPTION, name_cell) }
    }

    /// The `Age` column: relative age of `metadata.creationTimestamp`.
    pub fn age_column() -> Self {
        Column::computed("Age", "string", 0, AGE_DESCRIPTION, age_cell)
    }

    /// The column definition object (`meta.k8s.io/v1` `TableColumnDefinition`).
    pub fn definition(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.type_,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

pub(crate) const NAME_DESCRIPTION: &str =
    "Name of the object, unique within its namespace (or cluster-wide for cluster-scoped kinds).";
pub(crate) const AGE_DESCRIPTION: &str = "Time since the object was created (metadata.creationTimestamp).";

/// The request's `includeObject` table option: what `rows[].object` carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IncludeObject {
    /// `null`.
    None,
    /// A `PartialObjectMetadata` (the default).
    #[default]
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// Parses the `includeObject` query value (`None`, `Metadata`, `Object`; empty = `Metadata`).
    pub fn from_query(s: &str) -> Option<Self> {
        match s {
            "" | "Metadata" => Some(Self::Metadata),
            "None" => Some(Self::None),
            "Object" => Some(Self::Object),
            _ => None,
        }
    }
}

/// The `Table` (meta.k8s.io/v1) for a list of objects of one resource. `list_meta` is the list's
/// `{resourceVersion, continue, remainingItemCount}` (empty fields are dropped). For a single-object
/// GET, pass the one object and `{resourceVersion: <its resourceVersion>}`.
pub fn table(
    columns: &[Column],
    items: &[Value],
    list_meta: Value,
    include_object: IncludeObject,
    now: DateTime<Utc>,
) -> Value {
    let compiled = compile(columns);
    let rows: Vec<Value> = items.iter().map(|item| row_with(&compiled, item, include_object, now)).collect();
    let metadata: Map<String, Value> = match list_meta {
        Value::Object(m) => m
            .into_iter()
            .filter(|(_, v)| {
                !v.is_null() && v.as_str() != Some("") && v.as_object().is_none_or(|o| !o.is_empty())
            })
            .collect(),
        _ => Map::new(),
    };
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": column_definitions(columns),
        "rows": rows,
    })
}

/// The Table for a list response of `res` (`items` and `metadata` of the list): the CRD's
/// additionalPrinterColumns for a custom resource, the built-in printer's columns otherwise.
pub fn for_list(res: &Resource, list: &Value, include_object: Option<&str>) -> Value {
    let columns = if res.custom {
        crd_columns(res.printer_columns.as_ref())
    } else {
        builtin_columns(&res.group, &res.kind)
    };
    let items: Vec<Value> = list.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
    let include = include_object.and_then(IncludeObject::from_query).unwrap_or_default();
    let meta = list.get("metadata").cloned().unwrap_or_else(|| json!({}));
    table(&columns, &items, meta, include, Utc::now())
}

/// The `columnDefinitions` array.
pub fn column_definitions(columns: &[Column]) -> Value {
    Value::Array(columns.iter().map(Column::definition).collect())
}

/// One `TableRow` (`{cells, object}`) for `item`, e.g. for watch events in table form.
pub fn row(columns: &[Column], item: &Value, include_object: IncludeObject, now: DateTime<Utc>) -> Value {
    row_with(&compile(columns), item, include_object, now)
}

/// The row's `object` for the given `includeObject`.
pub fn row_object(item: &Value, include_object: IncludeObject) -> Value {
    match include_object {
        IncludeObject::None => Value::Null,
        IncludeObject::Object => item.clone(),
        IncludeObject::Metadata => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": item.get("metadata").cloned().unwrap_or_else(|| json!({})),
        }),
    }
}

struct Compiled<'a> {
    column: &'a Column,
    path: Option<JsonPath>,
}

fn compile(columns: &[Column]) -> Vec<Compiled<'_>> {
    columns
        .iter()
        .map(|c| Compiled {
            column: c,
            path: if c.cell.is_some() {
                None
            } else {
                c.json_path.as_deref().and_then(|p| JsonPath::parse(p).ok())
            },
        })
        .collect()
}

fn row_with(
    columns: &[Compiled<'_>],
    item: &Value,
    include_object: IncludeObject,
    now: DateTime<Utc>,
) -> Value {
    let cells: Vec<Value> = columns
        .iter()
        .map(|c| match (c.column.cell, &c.path) {
            (Some(f), _) => f(item, now),
            (None, Some(path)) => path_cell(&c.column.type_, path, item, now),
            (None, None) => Value::Null,
        })
        .collect();
    json!({ "cells": cells, "object": row_object(item, include_object) })
}

/// A JSONPath column's cell: the first result, converted by column type; `null` when the path
/// selects nothing or the value does not fit the type.
fn path_cell(type_: &str, path: &JsonPath, item: &Value, now: DateTime<Utc>) -> Value {
    let Some(v) = path.eval(item).into_iter().next() else { return Value::Null };
    if v.is_null() {
        return Value::Null;
    }
    match type_ {
        "string" => Value::String(jsonpath::to_text(&v)),
        "integer" => match &v {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .map_or(Value::Null, |i| Value::Number(i.into())),
            _ => Value::Null,
        },
        "number" => match &v {
            Value::Number(n) => {
                n.as_f64().and_then(serde_json::Number::from_f64).map_or(Value::Null, Value::Number)
            }
            _ => Value::Null,
        },
        "boolean" => match v {
            Value::Bool(b) => Value::Bool(b),
            _ => Value::Null,
        },
        "date" => match v.as_str() {
            Some(s) => match DateTime::parse_from_rfc3339(s) {
                Ok(t) => Value::String(human_duration(now.signed_duration_since(t.with_timezone(&Utc)))),
                Err(_) => Value::String("<invalid>".into()),
            },
            None => Value::Null,
        },
        _ => Value::Null,
    }
}

/// The columns for a custom resource: `Name`, then the CRD version's `additionalPrinterColumns`
/// (the array); when it declares none, `Name` and `Age` (a `date` column on
/// `.metadata.creationTimestamp`), as kube-apiserver serves them.
pub fn crd_columns(additional_printer_columns: Option<&Value>) -> Vec<Column> {
    let mut cols = vec![Column::name_column()];
    let declared = additional_printer_columns.and_then(Value::as_array).filter(|a| !a.is_empty());
    let Some(declared) = declared else {
        cols.push(Column {
            description: AGE_DESCRIPTION.into(),
            ..Column::json_path("Age", "date", ".metadata.creationTimestamp")
        });
        return cols;
    };
    for c in declared {
        let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let path = s("jsonPath");
        let description = match s("description") {
            d if d.is_empty() => format!("Custom resource column (JSONPath {path})"),
            d => d,
        };
        cols.push(Column {
            format: s("format"),
            description,
            priority: c
                .get("priority")
                .and_then(Value::as_i64)
                .and_then(|p| i32::try_from(p).ok())
                .unwrap_or(0),
            ..Column::json_path(&s("name"), &s("type"), &path)
        });
    }
    cols
}

// ---- shared cell helpers ----

/// `metadata.name`.
pub(crate) fn name_cell(obj: &Value, _now: DateTime<Utc>) -> Value {
    Value::String(str_at(obj, "/metadata/name").to_string())
}

/// Relative age of `metadata.creationTimestamp` (`<unknown>` when absent).
pub(crate) fn age_cell(obj: &Value, now: DateTime<Utc>) -> Value {
    Value::String(since(obj.pointer("/metadata/creationTimestamp"), now))
}

/// The string at a JSON pointer, or `""`.
pub(crate) fn str_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

/// The integer at a JSON pointer, or `default`.
pub(crate) fn int_at(obj: &Value, pointer: &str, default: i64) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(default)
}

/// Parses an RFC 3339 timestamp.
pub(crate) fn parse_time(v: Option<&Value>) -> Option<DateTime<Utc>> {
    let s = v?.as_str()?;
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// Relative time since the timestamp, `<unknown>` when absent or unparsable.
pub(crate) fn since(v: Option<&Value>, now: DateTime<Utc>) -> String {
    match parse_time(v) {
        Some(t) => human_duration(now.signed_duration_since(t)),
        None => "<unknown>".to_string(),
    }
}

/// A duration as kube prints ages: about 2–3 significant figures ("45s", "3m20s", "15m", "3h2m",
/// "20h", "3d4h", "45d", "2y30d"); `<invalid>` for clearly negative durations.
pub fn human_duration(d: chrono::TimeDelta) -> String {
    let seconds = d.num_seconds();
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 { format!("{minutes}m") } else { format!("{minutes}m{s}s") };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 { format!("{hours}h") } else { format!("{hours}h{m}m") };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 { format!("{days}d") } else { format!("{days}d{h}h") };
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        let dy = days % 365;
        return if dy == 0 { format!("{years}y") } else { format!("{years}y{dy}d") };
    }
    format!("{years}y")
}

#[cfg(test)]
mod tests;
