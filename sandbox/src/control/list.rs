//! LIST: label and field selectors, and paging with limit/continue over the current data.

use serde_json::{Value, json};

use super::{ControlPlane, as_served};
use crate::meta;
use crate::resources::Resource;
use crate::status::ApiError;

/// Query options of a list.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub limit: Option<usize>,
    pub continue_: Option<String>,
}

impl ControlPlane {
    /// LIST with selectors and paging.
    pub fn list(&self, res: &Resource, ns: Option<&str>, opts: &ListOptions) -> Result<Value, ApiError> {
        let labels =
            ebb_api::label_selector::LabelSelector::parse(opts.label_selector.as_deref().unwrap_or_default())
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let fields =
            crate::field_selector::FieldSelector::parse(opts.field_selector.as_deref().unwrap_or_default())
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let ns = if res.namespaced { ns } else { None };
        let (items, rv) = self.store.list(&res.group, &res.plural, ns);
        let start_after: Option<(String, String)> = match &opts.continue_ {
            Some(c) if !c.is_empty() => Some(decode_continue(c)?),
            _ => None,
        };
        let mut out = Vec::new();
        let mut next = None;
        let mut remaining = 0usize;
        for (k, obj) in items {
            if start_after.as_ref().is_some_and(|(sn, sname)| (&k.2, &k.3) <= (sn, sname)) {
                continue;
            }
            if !labels.matches(&meta::labels(&obj)) || !fields.matches(&obj) {
                continue;
            }
            if opts.limit.is_some_and(|l| l > 0 && out.len() >= l) {
                remaining += 1;
                continue;
            }
            out.push(as_served(res, &obj));
            next = Some((k.2.clone(), k.3.clone()));
        }
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if remaining > 0
            && let Some((n, m)) = next
        {
            metadata["continue"] = Value::String(encode_continue(&n, &m));
            metadata["remainingItemCount"] = json!(remaining);
        }
        Ok(
            json!({"kind": res.list_kind, "apiVersion": res.api_version(), "metadata": metadata, "items": out}),
        )
    }
}

fn encode_continue(ns: &str, name: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json!({"ns": ns, "name": name}).to_string())
}

fn decode_continue(token: &str) -> Result<(String, String), ApiError> {
    use base64::Engine;
    let bad = || ApiError::bad_request("continue key is not valid: malformed token");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    Ok((v["ns"].as_str().ok_or_else(bad)?.to_owned(), v["name"].as_str().ok_or_else(bad)?.to_owned()))
}
