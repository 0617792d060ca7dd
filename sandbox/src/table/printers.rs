//! Built-in printers: the column sets and cell functions kube-apiserver uses for the built-in kinds
//! the control plane serves (same headers, order, priorities and cell formats).

use chrono::{DateTime, Utc};
use ebb_api::label_selector::LabelSelector;
use serde_json::{Value, json};

use super::{AGE_DESCRIPTION, Column, NAME_DESCRIPTION, int_at, since, str_at};

type Now = DateTime<Utc>;

fn c(name: &str, type_: &str, priority: i32, description: &str, cell: super::CellFn) -> Column {
    Column::computed(name, type_, priority, description, cell)
}

/// The columns kube-apiserver prints for a built-in kind. Kinds without a dedicated printer get
/// `Name`, `Age`; kinds served with the generic convertor (CRDs, RBAC roles) get `Name`,
/// `Created At` (an RFC 3339 timestamp).
pub fn builtin_columns(group: &str, kind: &str) -> Vec<Column> {
    let name = Column::name_column();
    let age = Column::age_column();
    match (group, kind) {
        ("apps", "Deployment") => vec![
            name,
            c("Ready", "string", 0, "Ready pods out of desired replicas.", deploy_ready),
            c("Up-to-date", "string", 0, "Replicas updated to the current template.", |o, _| {
                int(o, "/status/updatedReplicas")
            }),
            c("Available", "string", 0, "Replicas available to users.", |o, _| {
                int(o, "/status/availableReplicas")
            }),
            age,
            c("Containers", "string", 1, "Names of each container in the template.", containers),
            c("Images", "string", 1, "Images referenced by each container in the template.", images),
            c("Selector", "string", 1, "Label selector for the pods.", selector),
        ],
        ("apps", "StatefulSet") => vec![
            name,
            c("Ready", "string", 0, "Ready pods out of desired replicas.", deploy_ready),
            age,
            c("Containers", "string", 1, "Names of each container in the template.", containers),
            c("Images", "string", 1, "Images referenced by each container in the template.", images),
        ],
        ("autoscaling", "HorizontalPodAutoscaler") => vec![
            name,
            c("Reference", "string", 0, "The scaled workload (kind/name).", hpa_reference),
            c("Targets", "string", 0, "Current/target value of each metric.", hpa_targets),
            c("MinPods", "string", 0, "Lower replica limit.", hpa_min),
            c("MaxPods", "string", 0, "Upper replica limit.", |o, _| int(o, "/spec/maxReplicas")),
            c("Replicas", "string", 0, "Current replicas.", |o, _| int(o, "/status/currentReplicas")),
            age,
        ],
        ("", "Namespace") => vec![name, c("Status", "string", 0, "The namespace phase.", ns_status), age],
        ("", "Secret") => vec![
            name,
            c("Type", "string", 0, "The secret type.", |o, _| text(non_empty(str_at(o, "/type"), "Opaque"))),
            c("Data", "string", 0, "Number of data entries.", secret_data),
            age,
        ],
        ("", "ConfigMap") => {
            vec![name, c("Data", "string", 0, "Number of data entries.", configmap_data), age]
        }
        ("", "ServiceAccount") => {
            vec![
                name,
                c("Secrets", "string", 0, "Number of referenced secrets.", |o, _| count(o, "/secrets")),
                age,
            ]
        }
        ("", "Service") => vec![
            name,
            c("Type", "string", 0, "The service type.", |o, _| text(svc_type(o))),
            c("Cluster-IP", "string", 0, "The cluster IP.", svc_cluster_ip),
            c("External-IP", "string", 0, "External addresses.", svc_external_ip),
            c("Port(s)", "string", 0, "Exposed ports.", svc_ports),
            age,
            c("Selector", "string", 1, "Label selector for the pods.", svc_selector),
        ],
        ("" | "events.k8s.io", "Event") => event_columns(),
        ("coordination.k8s.io", "Lease") => vec![
            name,
            c("Holder", "string", 0, "Identity of the current holder.", |o, _| {
                text(str_at(o, "/spec/holderIdentity"))
            }),
            age,
        ],
        (
            "admissionregistration.k8s.io",
            "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration",
        ) => vec![
            name,
            c("Webhooks", "integer", 0, "Number of webhooks in this configuration.", |o, _| {
                count(o, "/webhooks")
            }),
            age,
        ],
        ("", "Pod") => vec![
            name,
            c("Ready", "string", 0, "Ready containers out of all containers.", pod_ready),
            c("Status", "string", 0, "The pod's phase, or why its container waits.", pod_status),
            c("Restarts", "string", 0, "Container restarts.", pod_restarts),
            age,
        ],
        ("apiregistration.k8s.io", "APIService") => vec![
            name,
            c("Service", "string", 0, "The service serving this API, or Local.", apiservice_service),
            c("Available", "string", 0, "Whether the API is available.", apiservice_available),
            age,
        ],
        ("apiextensions.k8s.io", "CustomResourceDefinition")
        | ("rbac.authorization.k8s.io", "Role" | "ClusterRole") => {
            vec![name, c("Created At", "date", 0, AGE_DESCRIPTION, created_at)]
        }
        _ => vec![name, age],
    }
}

fn event_columns() -> Vec<Column> {
    let mut name = Column::name_column();
    name.priority = 1;
    name.description = NAME_DESCRIPTION.into();
    vec![
        c("Last Seen", "string", 0, "Time since the event was last observed.", event_last_seen),
        c("Type", "string", 0, "Normal or Warning.", |o, _| text(event_field(o, Ev::Type))),
        c("Reason", "string", 0, "Short machine-readable reason.", |o, _| text(event_field(o, Ev::Reason))),
        c("Object", "string", 0, "The object the event is about (kind/name).", event_object),
        c("Subobject", "string", 1, "Field path within the object.", |o, _| {
            text(event_field(o, Ev::FieldPath))
        }),
        c("Source", "string", 1, "Component (and host) that reported the event.", event_source),
        c("Message", "string", 0, "Human-readable description.", |o, _| {
            text(event_field(o, Ev::Message).trim())
        }),
        c("First Seen", "string", 1, "Time since the event was first observed.", event_first_seen),
        c("Count", "string", 1, "How many times the event occurred.", event_count),
        name,
    ]
}

fn text(s: &str) -> Value {
    Value::String(s.to_string())
}

fn non_empty<'a>(s: &'a str, default: &'a str) -> &'a str {
    if s.is_empty() { default } else { s }
}

fn int(o: &Value, pointer: &str) -> Value {
    json!(int_at(o, pointer, 0))
}

fn count(o: &Value, pointer: &str) -> Value {
    let n = match o.pointer(pointer) {
        Some(Value::Array(a)) => a.len(),
        Some(Value::Object(m)) => m.len(),
        _ => 0,
    };
    json!(n)
}

// ---- workloads ----

/// `ready/desired` (`spec.replicas` defaults to 1).
fn deploy_ready(o: &Value, _: Now) -> Value {
    let desired = int_at(o, "/spec/replicas", 1);
    let ready = int_at(o, "/status/readyReplicas", 0);
    Value::String(format!("{ready}/{desired}"))
}

fn container_statuses(o: &Value) -> impl Iterator<Item = &Value> {
    o.pointer("/status/containerStatuses").and_then(Value::as_array).into_iter().flatten()
}

/// `ready/containers` of a Pod.
fn pod_ready(o: &Value, _: Now) -> Value {
    let total = o.pointer("/spec/containers").and_then(Value::as_array).map_or(0, Vec::len);
    let ready = container_statuses(o).filter(|c| c["ready"] == true).count();
    Value::String(format!("{ready}/{total}"))
}

/// The first waiting container's reason, else the phase.
fn pod_status(o: &Value, _: Now) -> Value {
    let waiting =
        container_statuses(o).find_map(|c| c.pointer("/state/waiting/reason").and_then(Value::as_str));
    Value::String(waiting.unwrap_or_else(|| non_empty(str_at(o, "/status/phase"), "Pending")).to_owned())
}

fn pod_restarts(o: &Value, _: Now) -> Value {
    let n: i64 = container_statuses(o).filter_map(|c| c["restartCount"].as_i64()).sum();
    json!(n)
}

fn template_containers(o: &Value) -> impl Iterator<Item = &Value> {
    o.pointer("/spec/template/spec/containers").and_then(Value::as_array).into_iter().flatten()
}

fn containers(o: &Value, _: Now) -> Value {
    let names: Vec<&str> = template_containers(o).map(|c| str_at(c, "/name")).collect();
    Value::String(names.join(","))
}

fn images(o: &Value, _: Now) -> Value {
    let imgs: Vec<&str> = template_containers(o).map(|c| str_at(c, "/image")).collect();
    Value::String(imgs.join(","))
}

fn selector(o: &Value, _: Now) -> Value {
    let sel = o.pointer("/spec/selector").unwrap_or(&Value::Null);
    match LabelSelector::from_object(sel) {
        Ok(s) => Value::String(s.to_string()),
        Err(_) => text("<invalid>"),
    }
}

// ---- HorizontalPodAutoscaler ----

fn hpa_reference(o: &Value, _: Now) -> Value {
    Value::String(format!(
        "{}/{}",
        str_at(o, "/spec/scaleTargetRef/kind"),
        str_at(o, "/spec/scaleTargetRef/name")
    ))
}

fn hpa_min(o: &Value, _: Now) -> Value {
    match o.pointer("/spec/minReplicas").and_then(Value::as_i64) {
        Some(n) => Value::String(n.to_string()),
        None => text("<unset>"),
    }
}

/// A quantity as text (`"<unknown>"` when absent).
fn qty(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "<unknown>".to_string(),
    }
}

fn percent(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_i64).map(|n| format!("{n}%"))
}

/// One metric as `current/target`, per source type (External/Object `(avg)` when the target is
/// an average value; Resource/ContainerResource prefixed with the resource name).
fn hpa_metric(spec: &Value, status: Option<&Value>) -> String {
    let kind = str_at(spec, "/type");
    let src = match kind {
        "External" => "external",
        "Object" => "object",
        "Pods" => "pods",
        "Resource" => "resource",
        "ContainerResource" => "containerResource",
        _ => return "<unknown type>".to_string(),
    };
    let target = spec.get(src).and_then(|s| s.get("target")).unwrap_or(&Value::Null);
    let current = status.and_then(|s| s.get(src)).and_then(|s| s.get("current"));
    let cur = |field: &str| qty(current.and_then(|c| c.get(field)));
    match kind {
        "External" | "Object" => match target.get("averageValue") {
            Some(avg) => format!("{}/{} (avg)", cur("averageValue"), qty(Some(avg))),
            None => format!("{}/{}", cur("value"), qty(target.get("value"))),
        },
        "Pods" => format!("{}/{}", cur("averageValue"), qty(target.get("averageValue"))),
        _ => {
            let res = spec.get(src).map(|s| str_at(s, "/name")).unwrap_or_default();
            match target.get("averageValue") {
                Some(avg) => format!("{res}: {}/{}", cur("averageValue"), qty(Some(avg))),
                None => {
                    let c = percent(current.and_then(|c| c.get("averageUtilization")))
                        .unwrap_or_else(|| "<unknown>".into());
                    let t = percent(target.get("averageUtilization")).unwrap_or_else(|| "<auto>".into());
                    format!("{res}: {c}/{t}")
                }
            }
        }
    }
}

fn hpa_targets(o: &Value, _: Now) -> Value {
    let specs = o.pointer("/spec/metrics").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    if specs.is_empty() {
        return text("<none>");
    }
    let statuses = o.pointer("/status/currentMetrics").and_then(Value::as_array);
    const MAX: usize = 2;
    let shown: Vec<String> = specs
        .iter()
        .enumerate()
        .take(MAX)
        .map(|(i, s)| hpa_metric(s, statuses.and_then(|st| st.get(i))))
        .collect();
    let mut out = shown.join(", ");
    if specs.len() > MAX {
        out.push_str(&format!(" + {} more...", specs.len() - MAX));
    }
    Value::String(out)
}

// ---- core kinds ----

fn ns_status(o: &Value, _: Now) -> Value {
    // kube-apiserver sets the phase to Active on create
    text(non_empty(str_at(o, "/status/phase"), "Active"))
}

fn secret_data(o: &Value, _: Now) -> Value {
    // stringData is merged into data on write; count keys from both
    let keys = |p: &str| -> Vec<String> {
        o.pointer(p).and_then(Value::as_object).map(|m| m.keys().cloned().collect()).unwrap_or_default()
    };
    let mut all = keys("/data");
    all.extend(keys("/stringData"));
    all.sort();
    all.dedup();
    json!(all.len())
}

fn configmap_data(o: &Value, _: Now) -> Value {
    let n = |p: &str| o.pointer(p).and_then(Value::as_object).map_or(0, |m| m.len());
    json!(n("/data") + n("/binaryData"))
}

fn svc_type(o: &Value) -> &str {
    non_empty(str_at(o, "/spec/type"), "ClusterIP")
}

fn svc_cluster_ip(o: &Value, _: Now) -> Value {
    let first = o
        .pointer("/spec/clusterIPs/0")
        .and_then(Value::as_str)
        .unwrap_or_else(|| str_at(o, "/spec/clusterIP"));
    text(non_empty(first, "<none>"))
}

fn strings_at<'a>(o: &'a Value, pointer: &str) -> Vec<&'a str> {
    o.pointer(pointer).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect()
}

fn svc_external_ip(o: &Value, _: Now) -> Value {
    let external = strings_at(o, "/spec/externalIPs");
    let s = match svc_type(o) {
        "ClusterIP" | "NodePort" if external.is_empty() => "<none>".to_string(),
        "ClusterIP" | "NodePort" => external.join(","),
        "LoadBalancer" => {
            let mut lb: Vec<&str> = o
                .pointer("/status/loadBalancer/ingress")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|i| non_empty(str_at(i, "/ip"), str_at(i, "/hostname")))
                .filter(|s| !s.is_empty())
                .collect();
            lb.sort_unstable();
            lb.dedup();
            lb.extend(external);
            if lb.is_empty() { "<pending>".to_string() } else { lb.join(",") }
        }
        "ExternalName" => str_at(o, "/spec/externalName").to_string(),
        _ => "<unknown>".to_string(),
    };
    Value::String(s)
}

fn svc_ports(o: &Value, _: Now) -> Value {
    let ports: Vec<String> = o
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            let port = int_at(p, "/port", 0);
            let proto = non_empty(str_at(p, "/protocol"), "TCP");
            match int_at(p, "/nodePort", 0) {
                n if n > 0 => format!("{port}:{n}/{proto}"),
                _ => format!("{port}/{proto}"),
            }
        })
        .collect();
    if ports.is_empty() { text("<none>") } else { Value::String(ports.join(",")) }
}

fn svc_selector(o: &Value, _: Now) -> Value {
    let pairs: Vec<String> = o
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    if pairs.is_empty() { text("<none>") } else { Value::String(pairs.join(",")) }
}

// ---- Event (core/v1 and events.k8s.io/v1 field names) ----

#[derive(Clone, Copy)]
enum Ev {
    Type,
    Reason,
    Message,
    FieldPath,
}

fn is_events_api(o: &Value) -> bool {
    str_at(o, "/apiVersion").starts_with("events.k8s.io/")
}

fn event_field(o: &Value, f: Ev) -> &str {
    let new = is_events_api(o);
    let p = match (f, new) {
        (Ev::Type, _) => "/type",
        (Ev::Reason, _) => "/reason",
        (Ev::Message, false) => "/message",
        (Ev::Message, true) => "/note",
        (Ev::FieldPath, false) => "/involvedObject/fieldPath",
        (Ev::FieldPath, true) => "/regarding/fieldPath",
    };
    str_at(o, p)
}

fn event_object(o: &Value, _: Now) -> Value {
    let base = if is_events_api(o) { "/regarding" } else { "/involvedObject" };
    let kind = str_at(o, &format!("{base}/kind")).to_lowercase();
    let name = str_at(o, &format!("{base}/name"));
    Value::String(if name.is_empty() { kind } else { format!("{kind}/{name}") })
}

fn event_source(o: &Value, _: Now) -> Value {
    let (comp, host) = if is_events_api(o) {
        (str_at(o, "/deprecatedSource/component"), str_at(o, "/deprecatedSource/host"))
    } else {
        (str_at(o, "/source/component"), str_at(o, "/source/host"))
    };
    let comp = non_empty(comp, str_at(o, "/reportingController"));
    let host = non_empty(host, str_at(o, "/reportingInstance"));
    Value::String(if host.is_empty() { comp.to_string() } else { format!("{comp}, {host}") })
}

fn event_ptr<'a>(o: &'a Value, core: &str, events_api: &str) -> Option<&'a Value> {
    o.pointer(if is_events_api(o) { events_api } else { core }).filter(|v| !v.is_null())
}

fn first_seen(o: &Value, now: Now) -> String {
    match event_ptr(o, "/firstTimestamp", "/deprecatedFirstTimestamp") {
        Some(t) => since(Some(t), now),
        None => since(o.pointer("/eventTime"), now),
    }
}

fn event_first_seen(o: &Value, now: Now) -> Value {
    Value::String(first_seen(o, now))
}

fn event_last_seen(o: &Value, now: Now) -> Value {
    if let Some(t) = o.pointer("/series/lastObservedTime") {
        return Value::String(since(Some(t), now));
    }
    match event_ptr(o, "/lastTimestamp", "/deprecatedLastTimestamp") {
        Some(t) => Value::String(since(Some(t), now)),
        None => Value::String(first_seen(o, now)),
    }
}

fn event_count(o: &Value, _: Now) -> Value {
    if let Some(n) = o.pointer("/series/count").and_then(Value::as_i64) {
        return json!(n);
    }
    let n = event_ptr(o, "/count", "/deprecatedCount").and_then(Value::as_i64).unwrap_or(0);
    json!(if n == 0 { 1 } else { n })
}

// ---- APIService, generic ----

fn apiservice_service(o: &Value, _: Now) -> Value {
    match o.pointer("/spec/service").filter(|v| v.is_object()) {
        Some(s) => Value::String(format!("{}/{}", str_at(s, "/namespace"), str_at(s, "/name"))),
        None => text("Local"),
    }
}

fn apiservice_available(o: &Value, _: Now) -> Value {
    let cond = o
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| str_at(c, "/type") == "Available");
    let Some(cond) = cond else { return text("Unknown") };
    let status = str_at(cond, "/status");
    let reason = str_at(cond, "/reason");
    if status == "True" || reason.is_empty() {
        text(status)
    } else {
        Value::String(format!("{status} ({reason})"))
    }
}

/// `metadata.creationTimestamp` in RFC 3339 UTC (the generic convertor's `date` cell).
fn created_at(o: &Value, _: Now) -> Value {
    let t = super::parse_time(o.pointer("/metadata/creationTimestamp"));
    Value::String(t.map_or_else(
        || "0001-01-01T00:00:00Z".to_string(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    ))
}
