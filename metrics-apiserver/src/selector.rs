//! Label selectors as the HPA controller sends them (`labelSelector=scaledobject.keda.sh/name=web`):
//! reading the parameter from the query string ([`label_selector`]) and finding the one
//! ScaledObject a selector names ([`scaled_object`]). The selector grammar itself (parsing and
//! validation as kube-apiserver does them) is `ebb_api::label_selector`. Requirements on other
//! labels are accepted and ignored, as KEDA does.

use ebb_api::constants::SCALED_OBJECT_NAME_LABEL;
use ebb_api::label_selector::{LabelOp, LabelSelector};

/// Why a selector does not name a ScaledObject (the message is shown to the caller as is).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// No `labelSelector` parameter, or an empty one.
    #[error(
        "no labelSelector: select the ScaledObject with labelSelector={SCALED_OBJECT_NAME_LABEL}=<name> \
         (the HPA that ebb creates for a ScaledObject does so)"
    )]
    Missing,
    /// The selector does not parse.
    #[error("invalid labelSelector {selector:?}: {why}")]
    Invalid {
        /// The selector as received.
        selector: String,
        /// What is wrong.
        why: String,
    },
    /// The selector parses but names no single ScaledObject.
    #[error(
        "labelSelector {selector:?} does not select one ScaledObject: it must contain \
         {SCALED_OBJECT_NAME_LABEL}=<name>"
    )]
    NoScaledObject {
        /// The selector as received.
        selector: String,
    },
}

/// The form-decoded value of the first `labelSelector` parameter of `query`.
pub fn label_selector(query: Option<&str>) -> Option<String> {
    let query = query?;
    query.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (form_decode(name)? == "labelSelector").then(|| form_decode(value)).flatten()
    })
}

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space); `None` when malformed.
fn form_decode(text: &str) -> Option<String> {
    let spaced = text.replace('+', " ");
    crate::routes::decode(&spaced)
}

/// The name of the ScaledObject `selector` selects: the value of its
/// `scaledobject.keda.sh/name=<name>` (or `in (<name>)`) requirement.
pub fn scaled_object(selector: Option<&str>) -> Result<String, SelectorError> {
    let selector = match selector {
        Some(s) if !s.trim().is_empty() => s,
        _ => return Err(SelectorError::Missing),
    };
    let parsed = LabelSelector::parse(selector)
        .map_err(|why| SelectorError::Invalid { selector: selector.to_owned(), why: why.0 })?;
    // `name=<so>`, `name==<so>` or `name in (<so>)`: a requirement that allows exactly one name.
    let on_name = parsed.requirements().iter().filter(|r| r.key == SCALED_OBJECT_NAME_LABEL);
    let mut names = on_name.filter_map(|r| match (r.op, r.values.as_slice()) {
        (LabelOp::Equals | LabelOp::DoubleEquals | LabelOp::In, [name]) => Some(name.as_str()),
        _ => None,
    });
    let first = names.next();
    match first {
        Some(name) if !name.is_empty() && names.all(|other| other == name) => Ok(name.to_owned()),
        _ => Err(SelectorError::NoScaledObject { selector: selector.to_owned() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameter_is_form_decoded() {
        let cases: [(Option<&str>, Option<&str>); 7] = [
            (None, None),
            (Some(""), None),
            (Some("labelSelector=scaledobject.keda.sh%2Fname%3Dweb"), Some("scaledobject.keda.sh/name=web")),
            (Some("labelSelector=scaledobject.keda.sh/name=web"), Some("scaledobject.keda.sh/name=web")),
            (Some("watch=0&labelSelector=a+in+%28b%29&labelSelector=x"), Some("a in (b)")),
            (Some("labelSelector"), Some("")),
            (Some("labelSelector=%zz"), None),
        ];
        for (query, want) in cases {
            assert_eq!(label_selector(query).as_deref(), want, "{query:?}");
        }
    }

    #[test]
    fn finds_the_scaled_object() {
        let ok = [
            ("scaledobject.keda.sh/name=web", "web"),
            ("scaledobject.keda.sh/name==web", "web"),
            ("scaledobject.keda.sh/name in (web)", "web"),
            ("app=x,scaledobject.keda.sh/name=web", "web"),
            ("scaledobject.keda.sh/name=web,scaledobject.keda.sh/name=web", "web"),
        ];
        for (selector, want) in ok {
            assert_eq!(scaled_object(Some(selector)).unwrap(), want, "{selector}");
        }
        let missing = [None, Some(""), Some("  ")];
        for selector in missing {
            assert_eq!(scaled_object(selector), Err(SelectorError::Missing));
        }
        let none = [
            "app=web",
            "scaledobject.keda.sh/name!=web",
            "scaledobject.keda.sh/name in (a,b)",
            "scaledobject.keda.sh/name",
            "scaledobject.keda.sh/name=",
            "scaledobject.keda.sh/name=a,scaledobject.keda.sh/name=b",
        ];
        for selector in none {
            assert_eq!(
                scaled_object(Some(selector)),
                Err(SelectorError::NoScaledObject { selector: selector.to_owned() }),
                "{selector}"
            );
        }
        let err = scaled_object(Some("a in (b")).unwrap_err();
        assert!(matches!(err, SelectorError::Invalid { .. }));
        assert!(err.to_string().starts_with("invalid labelSelector \"a in (b\": "), "{err}");
        assert!(
            SelectorError::Missing.to_string().contains("labelSelector=scaledobject.keda.sh/name=<name>")
        );
    }

    /// kube-apiserver (and so KEDA's metrics server, which parses the parameter with
    /// `labels.Parse`) rejects these selectors: a label value or key name must start and end with an
    /// alphanumeric character, a key prefix is a lowercase DNS subdomain, `,,` right before `)` is an
    /// error, a `>`/`<` value is a valid label value too, and only ' ', tab, CR and LF separate tokens.
    #[test]
    fn rejects_what_kube_apiserver_rejects() {
        let rejected = [
            "scaledobject.keda.sh/name=-web",
            "scaledobject.keda.sh/name=web,Example.COM/a=b",
            "scaledobject.keda.sh/name=web,a.=b",
            "scaledobject.keda.sh/name=web,a in (x,,)",
            "scaledobject.keda.sh/name=web,n>-1",
            "scaledobject.keda.sh/name=web\u{a0}",
        ];
        let accepted: Vec<_> = rejected
            .iter()
            .map(|selector| (selector, scaled_object(Some(selector))))
            .filter(|(_, got)| !matches!(got, Err(SelectorError::Invalid { .. })))
            .collect();
        assert!(accepted.is_empty(), "accepted: {accepted:?}");
    }

    /// `in (web,web)` is the set {web}: as upstream's `RequiresExactMatch`, it names `web`.
    #[test]
    fn a_set_of_one_repeated_name_selects_it() {
        assert_eq!(scaled_object(Some("scaledobject.keda.sh/name in (web,web)")), Ok("web".to_owned()));
    }
}
