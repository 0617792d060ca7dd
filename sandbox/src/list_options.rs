//! The list and watch options that choose where a read starts — `resourceVersion`,
//! `resourceVersionMatch`, `sendInitialEvents` — checked as kube-apiserver checks them, and the
//! start of a watch they select.
//!
//! kube-apiserver refuses inconsistent combinations with a 422 `Invalid` Status on
//! `ListOptions.meta.k8s.io` listing each offending field (same wording and order here). A watch
//! with `sendInitialEvents=true` is a *streaming list* (client-go's WatchList): the current
//! objects as ADDED events, then — when bookmarks are allowed — a BOOKMARK annotated
//! `k8s.io/initial-events-end: "true"` carrying the list's resourceVersion, then the watch goes
//! on. With `sendInitialEvents=false` the watch sends no initial events.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::status::ApiError;

/// The annotation on the bookmark that closes the initial events of a streaming list.
pub const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";

/// A boolean query parameter as kube-apiserver converts it: absent is `None`; `false` and `0`
/// are false; any other value, the empty one included, is true.
pub fn query_bool(q: &BTreeMap<String, String>, name: &str) -> Option<bool> {
    q.get(name).map(|v| v != "false" && v != "0")
}

/// One refused field: (field, reason of the cause, message of the cause).
type Cause = (&'static str, &'static str, String);

fn forbidden(field: &'static str, detail: impl Into<String>) -> Cause {
    (field, "FieldValueForbidden", format!("Forbidden: {}", detail.into()))
}

fn not_supported(field: &'static str, value: &str, supported: &[&str]) -> Cause {
    let quoted: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
    (
        field,
        "FieldValueNotSupported",
        format!("Unsupported value: {value:?}: supported values: {}", quoted.join(", ")),
    )
}

/// Checks the options of a list (`watch` false) or watch request, as kube-apiserver does.
pub fn validate(q: &BTreeMap<String, String>, watch: bool) -> Result<(), ApiError> {
    let rv = q.get("resourceVersion").map(String::as_str).unwrap_or_default();
    let rv_match = q.get("resourceVersionMatch").map(String::as_str).unwrap_or_default();
    let has_continue = q.get("continue").is_some_and(|c| !c.is_empty());
    let send_initial = query_bool(q, "sendInitialEvents");
    let mut causes = Vec::new();
    if watch {
        if send_initial.is_some() && rv_match != "NotOlderThan" {
            causes.push(forbidden(
                "resourceVersionMatch",
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        if !rv_match.is_empty() {
            if send_initial.is_none() {
                causes.push(forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                ));
            }
            if rv_match != "NotOlderThan" {
                causes.push(not_supported("resourceVersionMatch", rv_match, &["NotOlderThan"]));
            }
            if has_continue {
                causes.push(forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden when continue is provided",
                ));
            }
        }
    } else {
        if !rv_match.is_empty() {
            if rv.is_empty() {
                causes.push(forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                ));
            }
            if has_continue {
                causes.push(forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden when continue is provided",
                ));
            }
            if rv_match != "Exact" && rv_match != "NotOlderThan" {
                causes.push(not_supported("resourceVersionMatch", rv_match, &["Exact", "NotOlderThan", ""]));
            }
            if rv_match == "Exact" && rv == "0" {
                causes.push(forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                ));
            }
        }
        if send_initial.is_some() {
            causes.push(forbidden("sendInitialEvents", "sendInitialEvents is forbidden for list"));
        }
    }
    if causes.is_empty() { Ok(()) } else { Err(invalid(&causes)) }
}

/// The 422 kube-apiserver answers for refused list options.
fn invalid(causes: &[Cause]) -> ApiError {
    let texts: Vec<String> = causes.iter().map(|(field, _, msg)| format!("{field}: {msg}")).collect();
    let why = if texts.len() == 1 { texts.join("") } else { format!("[{}]", texts.join(", ")) };
    let mut e = ApiError::new(422, "Invalid", format!("ListOptions.meta.k8s.io \"\" is invalid: {why}"));
    let causes: Vec<Value> = causes
        .iter()
        .map(|(field, reason, message)| json!({"reason": reason, "message": message, "field": field}))
        .collect();
    e.details = Some(json!({"group": "meta.k8s.io", "kind": "ListOptions", "causes": causes}));
    e
}

/// Where a (valid) watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The current objects as ADDED events first (a watch without resourceVersion, or with
    /// `0`, or `sendInitialEvents=true`); `end_bookmark` closes them with the annotated bookmark.
    /// A streaming list's resourceVersion is a lower bound (`not_older_than`).
    Initial { end_bookmark: bool, not_older_than: Option<u64> },
    /// No initial events, changes after the current version (`sendInitialEvents=false` without
    /// a resourceVersion).
    Now,
    /// Changes after this version.
    Since(u64),
}

/// The start a watch's options select. A resourceVersion that is not a number is treated as
/// absent, as before streaming lists existed here.
pub fn watch_start(q: &BTreeMap<String, String>) -> Start {
    let rv: Option<u64> =
        q.get("resourceVersion").filter(|v| !v.is_empty() && *v != "0").and_then(|v| v.parse().ok());
    let bookmarks = query_bool(q, "allowWatchBookmarks").unwrap_or(false);
    match (query_bool(q, "sendInitialEvents"), rv) {
        (Some(true), rv) => Start::Initial { end_bookmark: bookmarks, not_older_than: rv },
        (Some(false), Some(rv)) => Start::Since(rv),
        (Some(false), None) => Start::Now,
        (None, Some(rv)) => Start::Since(rv),
        (None, None) => Start::Initial { end_bookmark: false, not_older_than: None },
    }
}

/// The object of the bookmark closing the initial events, at version `rv`.
pub fn initial_events_end(api_version: &str, kind: &str, rv: u64) -> Value {
    json!({
        "kind": kind,
        "apiVersion": api_version,
        "metadata": {"resourceVersion": rv.to_string(), "annotations": {INITIAL_EVENTS_END: "true"}},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> BTreeMap<String, String> {
        s.split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect()
    }

    #[test]
    fn starts() {
        let stream = "sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan";
        let initial = |end_bookmark, not_older_than| Start::Initial { end_bookmark, not_older_than };
        assert_eq!(watch_start(&q(stream)), initial(true, None));
        assert_eq!(watch_start(&q(&format!("{stream}&resourceVersion=7"))), initial(true, Some(7)));
        assert_eq!(watch_start(&q("sendInitialEvents=true")), initial(false, None));
        assert_eq!(watch_start(&q("sendInitialEvents=false")), Start::Now);
        assert_eq!(watch_start(&q("sendInitialEvents=0&resourceVersion=4")), Start::Since(4));
        assert_eq!(watch_start(&q("resourceVersion=4")), Start::Since(4));
        assert_eq!(watch_start(&q("resourceVersion=0")), initial(false, None));
        assert_eq!(watch_start(&q("")), initial(false, None));
    }

    #[test]
    fn booleans_convert_as_kube_apiserver_does() {
        assert_eq!(query_bool(&q("a=false"), "a"), Some(false));
        assert_eq!(query_bool(&q("a=0"), "a"), Some(false));
        assert_eq!(query_bool(&q("a="), "a"), Some(true));
        assert_eq!(query_bool(&q("a=maybe"), "a"), Some(true));
        assert_eq!(query_bool(&q(""), "a"), None);
    }

    #[test]
    fn refusals_list_every_cause() {
        let e = validate(&q("resourceVersionMatch=Exact&resourceVersion=0&sendInitialEvents=true"), false)
            .unwrap_err();
        assert_eq!(e.code, 422);
        assert_eq!(e.details.as_ref().map(|d| d["causes"].as_array().map(Vec::len)), Some(Some(2)));
        assert!(validate(&q("resourceVersionMatch=NotOlderThan&resourceVersion=5&limit=1"), false).is_ok());
        assert!(validate(&q("sendInitialEvents=false&resourceVersionMatch=NotOlderThan"), true).is_ok());
    }
}
