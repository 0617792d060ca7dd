//! Checks kube-apiserver makes while it decodes a request body into its typed object, before
//! anything else looks at it: a Secret's `data` values must be standard base64 (Go's decoder,
//! which skips `\r` and `\n`). A bad value is a 400 `BadRequest` worded as kube-apiserver words
//! it — `Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte
//! N` — where N is the offset Go's decoder reports. Like kube-apiserver, the message does not
//! name the key and never shows the value.
//!
//! A custom resource is pruned against its CRD's schema ([`crate::schema`]) here too, so the
//! unknown fields are gone before admission webhooks see the object; the request's
//! `fieldValidation` decides whether they are dropped silently, dropped with a `Warning` header
//! each (`unknown field "spec.x"`), or refuse the request with kube-apiserver's `strict decoding
//! error`.

use serde_json::Value;

use crate::control::{FieldValidation, WriteCtx};
use crate::resources::Resource;
use crate::status::ApiError;

/// Drops the fields of a custom resource its schema does not have, as `ctx.field_validation`
/// says (see the module documentation).
pub fn prune(res: &Resource, obj: &mut Value, ctx: &WriteCtx) -> Result<(), ApiError> {
    let Some(schema) = &res.schema else { return Ok(()) };
    let unknown = crate::schema::prune(schema, obj);
    if unknown.is_empty() {
        return Ok(());
    }
    match ctx.field_validation {
        FieldValidation::Ignore => {}
        FieldValidation::Warn => {
            for path in unknown {
                ctx.warnings.push(format!("unknown field {path:?}"));
            }
        }
        FieldValidation::Strict => {
            let list: Vec<String> = unknown.iter().map(|p| format!("unknown field {p:?}")).collect();
            return Err(ApiError::bad_request(format!(
                "{kind} in version {version:?} cannot be handled as a {kind}: strict decoding error: {}",
                list.join(", "),
                kind = res.kind,
                version = res.version,
            )));
        }
    }
    Ok(())
}

/// Refuses a body kube-apiserver could not decode into the resource's type.
pub fn check(res: &Resource, obj: &Value) -> Result<(), ApiError> {
    if !(res.group.is_empty() && res.kind == "Secret") {
        return Ok(());
    }
    let Some(data) = obj.get("data").and_then(Value::as_object) else { return Ok(()) };
    for value in data.values() {
        let Some(text) = value.as_str() else { continue };
        if let Some(at) = base64_error(text.as_bytes()) {
            return Err(ApiError::bad_request(format!(
                "Secret in version \"{}\" cannot be handled as a Secret: illegal base64 data at input byte {at}",
                res.version
            )));
        }
    }
    Ok(())
}

fn is_alphabet(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'+' || c == b'/'
}

/// The offset Go's padded standard base64 decoder reports for `src`, `None` when it decodes.
pub fn base64_error(src: &[u8]) -> Option<usize> {
    let newline = |c: u8| c == b'\n' || c == b'\r';
    let mut si = 0;
    loop {
        // One quantum of up to four symbols.
        let mut j = 0;
        while j < 4 {
            if si == src.len() {
                return match j {
                    0 => None,
                    _ => Some(si - j),
                };
            }
            let c = src[si];
            si += 1;
            if is_alphabet(c) {
                j += 1;
                continue;
            }
            if newline(c) {
                continue;
            }
            if c != b'=' {
                return Some(si - 1);
            }
            // Padding: the quantum ends here.
            match j {
                0 | 1 => return Some(si - 1),
                2 => {
                    while si < src.len() && newline(src[si]) {
                        si += 1;
                    }
                    if si == src.len() {
                        return Some(src.len());
                    }
                    if src[si] != b'=' {
                        return Some(si - 1);
                    }
                    si += 1;
                }
                _ => {}
            }
            while si < src.len() && newline(src[si]) {
                si += 1;
            }
            return (si < src.len()).then_some(si);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::base64_error;

    /// Offsets kube-apiserver v1.35 reported for these values of a Secret's `data`.
    #[test]
    fn offsets_match_kube_apiserver() {
        for (value, want) in [
            ("hunter2-plain>text", Some(7)),
            ("abc", Some(0)),
            ("abcde", Some(4)),
            ("ab=c", Some(2)),
            ("YWRtaW4", Some(4)),
            ("YW Rt", Some(2)),
            ("YWRtaW4==", Some(8)),
            ("YQ==YQ==", Some(4)),
            ("!!", Some(0)),
            ("YWRt\naW4=", None),
            ("YWRtaW4=", None),
            ("", None),
        ] {
            assert_eq!(base64_error(value.as_bytes()), want, "{value:?}");
        }
    }
}
