//! Label key and value validation, as kube-apiserver checks them (`IsQualifiedName` for keys,
//! `IsValidLabelValue` for values).

use super::{SelectorError, err};

const NAME_MAX: usize = 63;
const PREFIX_MAX: usize = 253;

fn is_alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn is_qualified_name_part(s: &str) -> bool {
    let (Some(first), Some(last)) = (s.chars().next(), s.chars().last()) else { return false };
    is_alnum(first) && is_alnum(last) && s.chars().all(|c| is_alnum(c) || matches!(c, '-' | '_' | '.'))
}

/// RFC 1123 subdomain: dot-separated lowercase labels of `[a-z0-9]([-a-z0-9]*[a-z0-9])?`.
fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= PREFIX_MAX
        && s.split('.').all(|l| {
            let (Some(first), Some(last)) = (l.chars().next(), l.chars().last()) else { return false };
            let lower_alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
            lower_alnum(first) && lower_alnum(last) && l.chars().all(|c| lower_alnum(c) || c == '-')
        })
}

/// Validates a label key: an optional DNS subdomain prefix and `/`, then a name of at most 63
/// alphanumeric, `-`, `_` or `.` characters that starts and ends alphanumeric.
pub fn validate_label_key(key: &str) -> Result<(), SelectorError> {
    let invalid = |why: String| Err(err(format!("invalid label key {key:?}: {why}")));
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        if p.is_empty() {
            return invalid("prefix part must be non-empty".into());
        }
        if !is_dns1123_subdomain(p) {
            return invalid(format!(
                "prefix part must be a lowercase RFC 1123 subdomain of at most {PREFIX_MAX} characters"
            ));
        }
    }
    if name.is_empty() {
        return invalid("name part must be non-empty".into());
    }
    if name.len() > NAME_MAX {
        return invalid(format!("name part must be no more than {NAME_MAX} characters"));
    }
    if !is_qualified_name_part(name) {
        return invalid(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end \
             with an alphanumeric character"
                .into(),
        );
    }
    Ok(())
}

/// Validates a label value: empty, or at most 63 alphanumeric, `-`, `_` or `.` characters that
/// starts and ends alphanumeric.
pub fn validate_label_value(key: &str, value: &str) -> Result<(), SelectorError> {
    if value.is_empty() {
        return Ok(());
    }
    if value.len() > NAME_MAX {
        return Err(err(format!(
            "invalid label value {value:?} for key {key:?}: must be no more than {NAME_MAX} characters"
        )));
    }
    if !is_qualified_name_part(value) {
        return Err(err(format!(
            "invalid label value {value:?} for key {key:?}: must consist of alphanumeric characters, \
             '-', '_' or '.', and must start and end with an alphanumeric character"
        )));
    }
    Ok(())
}
