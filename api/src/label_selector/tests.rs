use std::collections::BTreeMap;

use serde_json::json;

use super::*;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
}

#[test]
fn label_selector_parse_and_match_table() {
    let web = labels(&[("app", "web"), ("tier", "frontend"), ("n", "5")]);
    let db = labels(&[("app", "db")]);
    let none = labels(&[]);
    // (selector, matches web, matches db, matches none)
    let cases: &[(&str, bool, bool, bool)] = &[
        ("", true, true, true),
        ("app=web", true, false, false),
        ("app==web", true, false, false),
        ("app!=web", false, true, true),
        ("app in (web,db)", true, true, false),
        ("app in (db)", false, true, false),
        ("app notin (db)", true, false, true),
        ("tier", true, false, false),
        ("!tier", false, true, true),
        ("app=web,tier=frontend", true, false, false),
        ("app=web,tier=backend", false, false, false),
        ("  app = web ,  tier  ", true, false, false),
        ("app,!tier", false, true, false),
        ("n>4", true, false, false),
        ("n<5", false, false, false),
        ("tier=", false, false, false),
        ("example.com/role notin (x, y)", true, true, true),
    ];
    for (sel, w, d, n) in cases {
        let s = LabelSelector::parse(sel).unwrap_or_else(|e| panic!("{sel:?}: {e}"));
        assert_eq!(s.matches(&web), *w, "{sel:?} vs web");
        assert_eq!(s.matches(&db), *d, "{sel:?} vs db");
        assert_eq!(s.matches(&none), *n, "{sel:?} vs none");
    }
}

#[test]
fn empty_value_matches_empty_label() {
    let s = LabelSelector::parse("a=").unwrap();
    assert!(s.matches(&labels(&[("a", "")])));
    assert!(!s.matches(&labels(&[("a", "x")])));
    let s = LabelSelector::parse("a in (x,)").unwrap();
    assert_eq!(s.requirements()[0].values, vec!["".to_string(), "x".to_string()]);
}

#[test]
fn label_selector_parse_errors() {
    let cases: &[(&str, &str)] = &[
        ("app=web,", "expected: identifier after ','"),
        ("app in (web", "expected: ',' or ')'"),
        ("app in web", "expected: '('"),
        ("app in (a,,)", "expected: ',', or identifier"),
        ("app web", "expected: in, notin, =, ==, !=, gt, lt"),
        ("=web", "expected: !, identifier, or 'end of string'"),
        ("app=a b", "expected: ',' or 'end of string'"),
        ("-bad=x", "must start and end with an alphanumeric"),
        ("app=-x", "invalid label value"),
        ("Example.COM/a=b", "prefix part must be a lowercase RFC 1123 subdomain"),
        ("/a=b", "prefix part must be non-empty"),
        ("a/=b", "name part must be non-empty"),
        ("n>x", "must be an integer"),
    ];
    for (sel, want) in cases {
        let e = LabelSelector::parse(sel).expect_err(sel);
        assert!(e.0.contains(want), "{sel:?}: got {:?}, want it to contain {want:?}", e.0);
    }
    let long_value = format!("a={}", "v".repeat(64));
    let e = LabelSelector::parse(&long_value).unwrap_err();
    assert!(e.0.contains("no more than 63 characters"), "{}", e.0);
    assert!(LabelSelector::parse(&format!("a={}", "v".repeat(63))).is_ok());
    let long_key = format!("{}=x", "k".repeat(64));
    assert!(LabelSelector::parse(&long_key).unwrap_err().0.contains("no more than 63"));
    // parse errors inside a requirement carry kube's prefix
    assert!(LabelSelector::parse("app in (a,,)").unwrap_err().0.starts_with("unable to parse requirement: "));
}

#[test]
fn display_is_canonical_and_sorted() {
    let s = LabelSelector::parse("z=1,a in (y,x,x),!m,b").unwrap();
    assert_eq!(s.to_string(), "a in (x,y),b,!m,z=1");
}

#[test]
fn from_object_each_operator() {
    let labels_web = labels(&[("app", "web"), ("tier", "frontend")]);
    let cases = [
        (json!(null), true),
        (json!({}), true),
        (json!({"matchLabels": {"app": "web"}}), true),
        (json!({"matchLabels": {"app": "db"}}), false),
        (json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]}), true),
        (json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["api"]}]}), false),
        (json!({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}), false),
        (json!({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}), true),
        (json!({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}), true),
        (json!({"matchExpressions": [{"key": "env", "operator": "Exists"}]}), false),
        (json!({"matchExpressions": [{"key": "env", "operator": "DoesNotExist"}]}), true),
        (json!({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}), false),
        (
            json!({"matchLabels": {"app": "web"},
                   "matchExpressions": [{"key": "tier", "operator": "In", "values": ["backend"]}]}),
            false,
        ),
    ];
    for (obj, want) in cases {
        let s = LabelSelector::from_object(&obj).unwrap_or_else(|e| panic!("{obj}: {e}"));
        assert_eq!(s.matches(&labels_web), want, "{obj}");
    }
    let s = LabelSelector::from_object(&json!({"matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["b", "a"]}]}))
    .unwrap();
    assert_eq!(s.to_string(), "app=web,env notin (a,b)");
}

#[test]
fn from_object_errors() {
    let cases = [
        (
            json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}),
            "not a valid label selector operator",
        ),
        (json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}), "must not be empty"),
        (
            json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
            "take no values",
        ),
        (json!({"matchLabels": {"bad key": "x"}}), "invalid label key"),
        (json!({"matchLabels": {"a": 3}}), "must be a string"),
        (json!("app=web"), "must be an object"),
    ];
    for (obj, want) in cases {
        let e = LabelSelector::from_object(&obj).expect_err(&obj.to_string());
        assert!(e.0.contains(want), "{obj}: {}", e.0);
    }
}

#[test]
fn matches_object_reads_metadata_labels() {
    let obj = json!({"metadata": {"name": "x", "labels": {"app": "web"}}});
    assert!(LabelSelector::parse("app=web").unwrap().matches_object(&obj));
    assert!(!LabelSelector::parse("app=db").unwrap().matches_object(&obj));
    assert!(LabelSelector::parse("!app").unwrap().matches_object(&json!({"metadata": {}})));
}

/// Found by the `label_selector` fuzz target: `a notin (,,)` parsed, but its canonical form
/// `a notin ()` did not. kube-apiserver's `labels.Parse` reads `()` as the set holding the empty
/// value, and rejects `,,` right before `)`.
#[test]
fn empty_elements_read_as_kube_apiserver_reads_them() {
    let values = |sel: &str| LabelSelector::parse(sel).map(|s| s.requirements()[0].values.clone());
    let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert_eq!(values("a notin ()").unwrap(), strings(&[""]));
    assert_eq!(values("a in (,)").unwrap(), strings(&[""]));
    assert_eq!(values("a in (,x)").unwrap(), strings(&["", "x"]));
    assert_eq!(values("a in (x,,y)").unwrap(), strings(&["", "x", "y"]));
    for bad in ["a notin (,,)", "a in (x,,)"] {
        let e = values(bad).expect_err(bad);
        assert!(e.0.contains("expected: ',', or identifier"), "{bad}: {}", e.0);
    }
    for sel in ["a notin ()", "a in (,x)"] {
        let canonical = LabelSelector::parse(sel).unwrap().to_string();
        assert_eq!(LabelSelector::parse(&canonical).unwrap().to_string(), canonical, "{sel}");
    }
}

/// kube-apiserver's label selector lexer separates tokens by ' ', '\t', '\r' and '\n' only
/// (`isWhitespace` in apimachinery's `labels` package); any other byte, a vertical tab or a
/// no-break space included, belongs to the key or value and makes it invalid.
#[test]
fn only_ascii_blanks_separate_tokens() {
    for sel in ["app=web\u{a0}", "app=web\u{0b}", "\u{3000}app=web", "app\u{0c}", "app in (web\u{2003})"] {
        assert!(LabelSelector::parse(sel).is_err(), "{sel:?} parsed");
    }
    let s = LabelSelector::parse("\tapp = web\r\n,\ttier").unwrap();
    assert_eq!(s.to_string(), "app=web,tier");
}

/// Errors worded as kube-apiserver words them: after `!key` the selector expects a comma or its
/// end (not inside a requirement), and an opening parenthesis expects ',', ')' or an identifier.
#[test]
fn error_messages_as_kube_apiserver_words_them() {
    let e = LabelSelector::parse("!a=b").unwrap_err();
    assert_eq!(e.0, "found '=', expected: ',' or 'end of string'");
    let e = LabelSelector::parse("a in (=)").unwrap_err();
    assert_eq!(e.0, "unable to parse requirement: found '=', expected: ',', ')' or identifier");
}

/// The cases the metrics API server's selector reading is held to, in the vocabulary of
/// requirements it reads (`=` and `==` alike).
mod metrics_api_cases {
    /// One requirement, as the metrics API server reads it.
    #[derive(Debug, PartialEq, Eq)]
    enum Requirement {
        Equals(String, String),
        NotEquals(String, String),
        In(String, Vec<String>),
        NotIn(String, Vec<String>),
        Exists(String),
        DoesNotExist(String),
        GreaterThan(String, String),
        LessThan(String, String),
    }

    fn parse(selector: &str) -> Result<Vec<Requirement>, String> {
        use super::LabelOp;
        let parsed = super::LabelSelector::parse(selector).map_err(|e| e.0)?;
        let read = |r: &super::Requirement| {
            let (key, values) = (r.key.clone(), r.values.clone());
            let one = values.first().cloned().unwrap_or_default();
            match r.op {
                LabelOp::Equals | LabelOp::DoubleEquals => Requirement::Equals(key, one),
                LabelOp::NotEquals => Requirement::NotEquals(key, one),
                LabelOp::In => Requirement::In(key, values),
                LabelOp::NotIn => Requirement::NotIn(key, values),
                LabelOp::Exists => Requirement::Exists(key),
                LabelOp::DoesNotExist => Requirement::DoesNotExist(key),
                LabelOp::GreaterThan => Requirement::GreaterThan(key, one),
                LabelOp::LessThan => Requirement::LessThan(key, one),
            }
        };
        Ok(parsed.requirements().iter().map(read).collect())
    }

    #[test]
    fn parses_every_operator() {
        use Requirement::*;
        let s = |v: &str| v.to_owned();
        let cases = [
            ("a=b", vec![Equals(s("a"), s("b"))]),
            ("a==b", vec![Equals(s("a"), s("b"))]),
            ("a = b", vec![Equals(s("a"), s("b"))]),
            ("a=", vec![Equals(s("a"), s(""))]),
            ("a!=b", vec![NotEquals(s("a"), s("b"))]),
            ("x.io/a in (b, c)", vec![In(s("x.io/a"), vec![s("b"), s("c")])]),
            ("a notin (b)", vec![NotIn(s("a"), vec![s("b")])]),
            ("a in(b)", vec![In(s("a"), vec![s("b")])]),
            ("a", vec![Exists(s("a"))]),
            ("!a", vec![DoesNotExist(s("a"))]),
            ("a>1,b<2", vec![GreaterThan(s("a"), s("1")), LessThan(s("b"), s("2"))]),
            (
                "a=b, c in (d,e),!f",
                vec![Equals(s("a"), s("b")), In(s("c"), vec![s("d"), s("e")]), DoesNotExist(s("f"))],
            ),
            ("", vec![]),
        ];
        for (selector, want) in cases {
            assert_eq!(parse(selector).unwrap(), want, "{selector:?}");
        }
    }

    #[test]
    fn rejects_malformed_selectors() {
        let cases = [
            ("a=b,", "found '', expected: identifier after ','"),
            ("a in (b", "found '', expected: ',' or ')'"),
            ("a in b", "found 'b' expected: '('"),
            ("a)", "found ')', expected: in, notin"),
            ("a=b c", "found 'c', expected: ',' or 'end of string'"),
            ("a~b", "invalid label key"),
            ("a>x", "must be an integer"),
            ("/a=b", "invalid label key"),
            ("a in ((b))", "found '(', expected: ',', ')' or identifier"),
            ("a b", "expected: in, notin, =, ==, !=, gt, lt"),
        ];
        for (selector, message) in cases {
            let err = parse(selector).unwrap_err();
            assert!(err.contains(message), "{selector:?}: {err}");
        }
    }
}
