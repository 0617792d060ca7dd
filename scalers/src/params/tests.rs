//! The typed reader: values and defaults, errors naming trigger, parameter and expectation,
//! sources, redaction of values from authentication or the environment, warnings.

use super::*;

const SPECS: &[ParamSpec] = &[
    ParamSpec::new("queue", ParamKind::Text).required().from_env(),
    ParamSpec::new("length", ParamKind::Int { min: 1 }).default("5"),
    ParamSpec::new("ratio", ParamKind::Float { min: 0.0 }),
    ParamSpec::new("flag", ParamKind::Bool).default("false"),
    ParamSpec::new("mode", ParamKind::Enum(&["a", "b"])).default("a"),
    ParamSpec::new("password", ParamKind::Text).secret(),
    ParamSpec::new("metricName", ParamKind::Text).deprecated("ignored; the metric name is generated"),
];

fn md(pairs: &[(&str, &str)]) -> BTreeMap<String, MetadataValue> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), MetadataValue::from(*v))).collect()
}

#[test]
fn reads_typed_values_and_defaults() {
    let m = md(&[("queue", "q"), ("ratio", "0.5"), ("flag", "TRUE")]);
    let ctx = ParseContext::default();
    let p = Params::new(0, "t", SPECS, &m, &ctx);
    assert_eq!(p.required_text("queue").unwrap(), "q");
    assert_eq!(p.int("length").unwrap(), Some(5));
    assert_eq!(p.float("ratio").unwrap(), Some(0.5));
    assert_eq!(p.bool("flag").unwrap(), Some(true));
    assert_eq!(p.text("mode").unwrap().as_deref(), Some("a"));
    assert!(p.into_warnings().is_empty());
}

#[test]
fn errors_name_trigger_parameter_and_expectation() {
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: &[Case] = &[
        (&[], "queue", "spec.triggers[2] (t) metadata.queue: required; set metadata.queue or queueFromEnv"),
        (
            &[("length", "x")],
            "length",
            "spec.triggers[2] (t) metadata.length: expected an integer, found \"x\"",
        ),
        (
            &[("length", "0")],
            "length",
            "spec.triggers[2] (t) metadata.length: expected an integer ≥ 1, found \"0\"",
        ),
        (
            &[("ratio", "NaN")],
            "ratio",
            "spec.triggers[2] (t) metadata.ratio: expected a finite number, found \"NaN\"",
        ),
        (
            &[("flag", "yes")],
            "flag",
            "spec.triggers[2] (t) metadata.flag: expected true or false, found \"yes\"",
        ),
        (&[("mode", "c")], "mode", "spec.triggers[2] (t) metadata.mode: expected one of a, b, found \"c\""),
    ];
    let ctx = ParseContext::default();
    for (pairs, param, want) in cases {
        let m = md(pairs);
        let p = Params::new(2, "t", SPECS, &m, &ctx);
        let err = match *param {
            "queue" => p.required_text("queue").unwrap_err(),
            "length" => p.int("length").unwrap_err(),
            "ratio" => p.float("ratio").unwrap_err(),
            "flag" => p.bool("flag").unwrap_err(),
            _ => p.text("mode").unwrap_err(),
        };
        assert_eq!(err.to_string(), *want);
    }
}

#[test]
fn resolves_from_env_and_auth() {
    let m = md(&[("queueFromEnv", "QUEUE_URL")]);
    let mut ctx = ParseContext::default();
    ctx.env.insert("QUEUE_URL".into(), "from-env".into());
    ctx.auth.insert(0, [("password".to_owned(), "s3cret".to_owned())].into());
    let p = Params::new(0, "t", SPECS, &m, &ctx);
    assert_eq!(p.required_text("queue").unwrap(), "from-env");
    assert_eq!(p.text("password").unwrap().as_deref(), Some("s3cret"));

    let missing = md(&[("queueFromEnv", "NOPE")]);
    let p = Params::new(0, "t", SPECS, &missing, &ctx);
    let e = p.required_text("queue").unwrap_err().to_string();
    assert!(e.contains("queueFromEnv") && e.contains("\"NOPE\" is not set"), "{e}");
}

#[test]
fn debug_shows_names_not_values() {
    let m = md(&[("queue", "q")]);
    let mut ctx = ParseContext::default();
    ctx.env.insert("DB_PASSWORD".into(), "env-value".into());
    ctx.auth.insert(0, [("password".to_owned(), "s3cret".to_owned())].into());
    let p = Params::new(0, "t", SPECS, &m, &ctx);
    for text in [format!("{ctx:?}"), format!("{ctx:#?}"), format!("{p:?}")] {
        assert!(
            text.contains("password") && !text.contains("s3cret") && !text.contains("env-value"),
            "{text}"
        );
    }
}

#[test]
fn secrets_are_not_read_from_metadata_nor_echoed() {
    let m = md(&[("queue", "q"), ("password", "leak")]);
    let ctx = ParseContext::default();
    let p = Params::new(0, "t", SPECS, &m, &ctx);
    assert_eq!(p.text("password").unwrap(), None);
    let w = p.into_warnings().join("\n");
    assert!(w.contains("read only from a TriggerAuthentication") && !w.contains("leak"), "{w}");
}

const FROM_AUTH: &[ParamSpec] = &[
    ParamSpec::new("queueLength", ParamKind::Int { min: 1 }).from_auth().from_env(),
    ParamSpec::new("region", ParamKind::Text).from_auth(),
];

/// A value from a TriggerAuthentication (a Secret key mapped onto a non-secret parameter) or
/// from the target's environment is never echoed: the error names the trigger, the
/// parameter, the source and what was expected.
#[test]
fn values_from_authentication_or_environment_are_never_echoed() {
    let secret = "hunter2-not-a-number";
    let m = md(&[]);
    let mut ctx = ParseContext::default();
    ctx.auth.insert(0, [("queueLength".to_owned(), secret.to_owned())].into());
    let p = Params::new(0, "t", FROM_AUTH, &m, &ctx);
    let e = p.int("queueLength").unwrap_err().to_string();
    assert!(!e.contains("hunter2"), "{e}");
    assert!(
        e.starts_with("spec.triggers[0] (t) metadata.queueLength: expected an integer")
            && e.contains("TriggerAuthentication"),
        "{e}"
    );
    let e = p.error("region", ParseErrorKind::InvalidParameter, format!("bad {secret:?} and {secret}"));
    assert!(!e.to_string().contains("hunter2"), "{e}");

    let m = md(&[("queueLengthFromEnv", "LEN")]);
    let mut ctx = ParseContext::default();
    ctx.env.insert("LEN".into(), secret.into());
    let p = Params::new(0, "t", FROM_AUTH, &m, &ctx);
    let e = p.int("queueLength").unwrap_err().to_string();
    assert!(!e.contains("hunter2") && e.contains("\"LEN\""), "{e}");
}

#[test]
fn warns_on_unknown_and_deprecated() {
    let m = md(&[("queue", "q"), ("qeue", "typo"), ("metricName", "x")]);
    let ctx = ParseContext::default();
    let w = Params::new(1, "t", SPECS, &m, &ctx).into_warnings();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(
        w[0].contains("metadata.qeue: unknown parameter is ignored; accepted: queue, length"),
        "{}",
        w[0]
    );
    assert!(w[1].contains("metadata.metricName: ignored; the metric name is generated"), "{}", w[1]);
}
