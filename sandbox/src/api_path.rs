//! Parsing a Kubernetes API request path into what it addresses: discovery documents, or a
//! resource (group, version, plural) with optional namespace, name and subresource.

/// What a path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Version,
    Health,
    CoreVersions,
    Groups,
    Group(String),
    Resources {
        group: String,
        version: String,
    },
    /// `/openapi/v3`.
    OpenApiIndex,
    /// `/openapi/v3/{api/v1 | apis/group/version}`.
    OpenApi(String),
    Object(ObjectPath),
    NotFound,
}

/// A resource path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectPath {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
}

pub fn parse(path: &str) -> Target {
    let parts: Vec<&str> = path.trim_matches('/').split('/').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        ["version"] => Target::Version,
        ["healthz"] | ["livez"] | ["readyz"] => Target::Health,
        ["api"] => Target::CoreVersions,
        ["api", "v1"] => Target::Resources { group: String::new(), version: "v1".into() },
        ["api", "v1", rest @ ..] => object("", "v1", rest),
        ["apis"] => Target::Groups,
        ["apis", g] => Target::Group((*g).to_owned()),
        ["apis", g, v] => Target::Resources { group: (*g).to_owned(), version: (*v).to_owned() },
        ["apis", g, v, rest @ ..] => object(g, v, rest),
        ["openapi", "v3"] => Target::OpenApiIndex,
        ["openapi", "v3", rest @ ..] => Target::OpenApi(rest.join("/")),
        _ => Target::NotFound,
    }
}

fn object(group: &str, version: &str, rest: &[&str]) -> Target {
    let mk = |plural: &str, namespace: Option<&str>, name: Option<&str>, sub: Option<&str>| {
        Target::Object(ObjectPath {
            group: group.to_owned(),
            version: version.to_owned(),
            plural: plural.to_owned(),
            namespace: namespace.map(str::to_owned),
            name: name.map(str::to_owned),
            sub: sub.map(str::to_owned),
        })
    };
    match rest {
        ["namespaces", ns, sub] if group.is_empty() && (*sub == "status" || *sub == "finalize") => {
            mk("namespaces", None, Some(ns), Some(sub))
        }
        ["namespaces", ns, plural] => mk(plural, Some(ns), None, None),
        ["namespaces", ns, plural, name] => mk(plural, Some(ns), Some(name), None),
        ["namespaces", ns, plural, name, sub] => mk(plural, Some(ns), Some(name), Some(sub)),
        [plural] => mk(plural, None, None, None),
        [plural, name] => mk(plural, None, Some(name), None),
        [plural, name, sub] => mk(plural, None, Some(name), Some(sub)),
        _ => Target::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(t: Target) -> ObjectPath {
        match t {
            Target::Object(o) => o,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn paths() {
        assert_eq!(parse("/apis"), Target::Groups);
        assert_eq!(parse("/api/v1"), Target::Resources { group: String::new(), version: "v1".into() });
        let o = obj(parse("/apis/apps/v1/namespaces/default/deployments/web/scale"));
        assert_eq!(
            (
                o.group.as_str(),
                o.plural.as_str(),
                o.namespace.as_deref(),
                o.name.as_deref(),
                o.sub.as_deref()
            ),
            ("apps", "deployments", Some("default"), Some("web"), Some("scale"))
        );
        let n = obj(parse("/api/v1/namespaces/demo"));
        assert_eq!((n.plural.as_str(), n.namespace, n.name.as_deref()), ("namespaces", None, Some("demo")));
        let list = obj(parse("/api/v1/namespaces/demo/secrets"));
        assert_eq!(
            (list.plural.as_str(), list.namespace.as_deref(), list.name),
            ("secrets", Some("demo"), None)
        );
        let st = obj(parse("/api/v1/namespaces/demo/status"));
        assert_eq!(
            (st.plural.as_str(), st.name.as_deref(), st.sub.as_deref()),
            ("namespaces", Some("demo"), Some("status"))
        );
        let all = obj(parse("/apis/keda.sh/v1alpha1/scaledobjects"));
        assert_eq!((all.plural.as_str(), all.namespace), ("scaledobjects", None));
    }
}
