//! Parameter parsing of the prometheus trigger: defaults, required parameters, bad values,
//! authentication-mode combinations, TLS material, secrets kept out of messages, and sharing of
//! HTTP clients between triggers.

use std::collections::BTreeMap;
use std::sync::Arc;

use ebb_api::MetadataValue;

use super::auth::{AuthMode, Credentials};
use super::*;
use crate::params::ParseContext;

const BASE: &[(&str, &str)] =
    &[("serverAddress", "http://prometheus:9090"), ("query", "sum(up)"), ("threshold", "100")];

fn ctx(auth: &[(&str, &str)]) -> ParseContext {
    let mut c = ParseContext::default();
    c.auth.insert(0, auth.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect());
    c
}

fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, MetadataValue> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), MetadataValue::from(*v))).collect()
}

/// BASE with `extra` added or overriding (an empty value removes the key).
fn with(extra: &[(&str, &str)]) -> BTreeMap<String, MetadataValue> {
    let mut m = meta(BASE);
    for (k, v) in extra {
        if v.is_empty() {
            m.remove(*k);
        } else {
            m.insert((*k).to_owned(), MetadataValue::from(*v));
        }
    }
    m
}

fn parse_full(
    m: &BTreeMap<String, MetadataValue>,
    auth: &[(&str, &str)],
) -> (Result<PrometheusConfig, ParseError>, Vec<String>) {
    let c = ctx(auth);
    let p = Params::new(0, "prometheus", PARAMS, m, &c);
    let r = parse_config(&p);
    (r, p.into_warnings())
}

fn parse_ok(extra: &[(&str, &str)], auth: &[(&str, &str)]) -> PrometheusConfig {
    parse_full(&with(extra), auth).0.unwrap()
}

fn parse_err(extra: &[(&str, &str)], auth: &[(&str, &str)]) -> String {
    parse_full(&with(extra), auth).0.unwrap_err().to_string()
}

#[test]
fn defaults_and_metric_name() {
    let c = parse_ok(&[], &[]);
    assert_eq!(c.threshold, 100.0);
    assert_eq!(c.target(), 100.0);
    assert_eq!(c.activation_threshold, 0.0);
    assert!(c.ignore_null_values);
    assert!(!c.unsafe_ssl);
    assert_eq!(c.timeout, Duration::from_secs(3));
    assert!(c.auth.modes.is_empty() && c.auth.credentials == Credentials::None);
    assert_eq!(ebb_api::metric_name::with_index(2, &c.metric_part()), "s2-prometheus");
    assert_eq!(c.query_url().as_str(), "http://prometheus:9090/api/v1/query");
    assert_eq!(c.describe(), "query \"sum(up)\" on http://prometheus:9090");
}

#[test]
fn optional_values_are_read() {
    let c = parse_ok(
        &[
            ("serverAddress", "http://vmselect:8481/select/0/prometheus/"),
            ("activationThreshold", "5.5"),
            ("namespace", "team-a"),
            ("queryParameters", "dedup=true, partial_response=false"),
            ("customHeaders", "X-Scope-OrgID=tenant-1,X-Client-Id = cid"),
            ("ignoreNullValues", "false"),
            ("unsafeSsl", "true"),
            ("timeout", "1500"),
        ],
        &[],
    );
    assert_eq!(c.query_url().as_str(), "http://vmselect:8481/select/0/prometheus/api/v1/query");
    assert_eq!(c.activation_target(), 5.5);
    assert_eq!(c.namespace.as_deref(), Some("team-a"));
    assert_eq!(
        c.query_parameters,
        vec![("dedup".to_owned(), "true".to_owned()), ("partial_response".to_owned(), "false".to_owned())]
    );
    let headers: Vec<(&str, &str)> =
        c.custom_headers.iter().map(|(k, v)| (k.as_str(), v.to_str().unwrap())).collect();
    assert_eq!(headers, vec![("x-scope-orgid", "tenant-1"), ("x-client-id", "cid")]);
    assert!(!c.ignore_null_values && c.unsafe_ssl);
    assert_eq!(c.timeout, Duration::from_millis(1500));
    assert_eq!(parse_ok(&[("timeout", "2s")], &[]).timeout, Duration::from_secs(2));
    assert_eq!(parse_ok(&[("timeout", "250ms")], &[]).timeout, Duration::from_millis(250));
}

#[test]
fn seed_metadata_parses_and_metric_name_is_deprecated() {
    let m = meta(&[
        ("serverAddress", "http://prometheus:9090"),
        ("metricName", "http_requests_per_second"),
        ("query", "sum(rate(http_requests_total[30s])) by (service)\n"),
        ("threshold", "100"),
    ]);
    let (r, warnings) = parse_full(&m, &[]);
    let c = r.unwrap();
    assert_eq!(c.query, "sum(rate(http_requests_total[30s])) by (service)");
    assert_eq!(c.metric_part(), "prometheus");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("metadata.metricName: ignored; the metric name is generated"),
        "{warnings:?}"
    );
}

#[test]
fn seed_object_parses_with_both_metric_names() {
    let so: ebb_api::ScaledObject =
        serde_yaml::from_str(include_str!("../../../tests/fixtures/seed/prometheus-ultra-fast.yaml"))
            .unwrap();
    let parsed = crate::parse_scaled_object(&so, &ParseContext::default()).unwrap();
    assert_eq!(parsed.metric_names(), ["s0-prometheus", "s1-prometheus"]);
    let targets: Vec<f64> = parsed.triggers.iter().map(|t| t.target()).collect();
    assert_eq!(targets, [100.0, 500.0]);
    assert_eq!(parsed.warnings.len(), 2, "{:?}", parsed.warnings);
}

#[test]
fn bad_input_is_one_clear_error() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("serverAddress", "")], "metadata.serverAddress: required"),
        (&[("query", "")], "metadata.query: required"),
        (&[("threshold", "")], "metadata.threshold: required"),
        (&[("threshold", "abc")], "metadata.threshold: expected a number, found \"abc\""),
        (&[("threshold", "0")], "metadata.threshold: must be greater than 0"),
        (&[("threshold", "-5")], "metadata.threshold: must be greater than 0"),
        (&[("threshold", "Inf")], "metadata.threshold: expected a finite number"),
        (
            &[("activationThreshold", "lots")],
            "metadata.activationThreshold: expected a number, found \"lots\"",
        ),
        (&[("ignoreNullValues", "maybe")], "metadata.ignoreNullValues: expected true or false"),
        (&[("unsafeSsl", "yes")], "metadata.unsafeSsl: expected true or false, found \"yes\""),
        (&[("timeout", "0")], "metadata.timeout: must be greater than 0"),
        (&[("timeout", "soon")], "metadata.timeout: expected milliseconds (\"1000\") or a duration"),
        (
            &[("serverAddress", "prometheus:9090")],
            "metadata.serverAddress: expected an http:// or https:// URL",
        ),
        (&[("serverAddress", "ftp://prometheus")], "found scheme \"ftp\""),
        (&[("serverAddress", "not a url")], "metadata.serverAddress: expected an http:// or https:// URL"),
        (&[("queryParameters", "dedup")], "metadata.queryParameters: entry 1 (\"dedup\") is not key=value"),
        (&[("queryParameters", "time=0")], "\"time\" is set by the scaler itself"),
        (
            &[("customHeaders", "X Bad=1")],
            "metadata.customHeaders: \"X Bad\" is not a valid HTTP header name",
        ),
        (&[("customHeaders", "=1")], "metadata.customHeaders: entry 1 (\"=1\") is not key=value"),
        (&[("customHeaders", "Authorization=Bearer abc")], "the Authorization header carries a credential"),
    ];
    for (extra, want) in cases {
        let e = parse_err(extra, &[]);
        assert!(e.starts_with("spec.triggers[0] (prometheus) "), "{extra:?}: {e}");
        assert!(e.contains(want), "{extra:?}: {e}");
    }
}

#[test]
fn credentials_in_the_server_address_are_refused_without_echo() {
    let e = parse_err(&[("serverAddress", "http://admin:hunter2@prometheus:9090")], &[]);
    assert!(e.contains("must not contain a user name or password") && !e.contains("hunter2"), "{e}");
}

#[test]
fn auth_modes_and_their_credentials() {
    let c = parse_ok(&[("authModes", "basic")], &[("username", "u"), ("password", "p")]);
    assert_eq!(c.auth.modes, vec![AuthMode::Basic]);
    assert_eq!(c.auth.credentials, Credentials::Basic { username: "u".into(), password: Some("p".into()) });
    let c = parse_ok(&[("authModes", "basic")], &[("username", "u")]);
    assert_eq!(c.auth.credentials, Credentials::Basic { username: "u".into(), password: None });

    let c = parse_ok(&[("authModes", "bearer")], &[("bearerToken", "tok-1")]);
    assert_eq!(c.auth.credentials, Credentials::Bearer("tok-1".into()));
    let c = parse_ok(&[], &[("authModes", "bearer"), ("token", "tok-2")]);
    assert_eq!(c.auth.credentials, Credentials::Bearer("tok-2".into()));
    let c = parse_ok(&[("authMode", "bearer")], &[("bearerToken", "tok-3")]);
    assert_eq!(c.auth.modes, vec![AuthMode::Bearer]);

    let c = parse_ok(
        &[("authModes", "custom, bearer")],
        &[("customAuthHeader", "X-Api-Key"), ("customAuthValue", "k-123"), ("bearerToken", "t")],
    );
    assert_eq!(c.auth.modes, vec![AuthMode::Custom, AuthMode::Bearer]);
    let (h, v) = c.auth.custom.as_ref().unwrap();
    assert_eq!((h.as_str(), v.to_str().unwrap(), v.is_sensitive()), ("x-api-key", "k-123", true));
    assert!(c.describe().ends_with("(auth: custom,bearer)"), "{}", c.describe());

    // Credentials without a mode are not used.
    assert_eq!(parse_ok(&[], &[("bearerToken", "t")]).auth.credentials, Credentials::None);
}

#[test]
fn bad_auth_combinations() {
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        ("basic", &[], "metadata.username: required by authModes basic; set parameter \"username\""),
        ("bearer", &[], "metadata.bearerToken: required by authModes bearer"),
        ("tls", &[], "metadata.cert: required by authModes tls"),
        ("tls", &[("cert", "junk"), ("key", "junk")], "metadata.cert: is not a PEM-encoded certificate"),
        (
            "custom",
            &[("customAuthHeader", "X-Key")],
            "metadata.customAuthValue: required by authModes custom",
        ),
        (
            "custom",
            &[("customAuthHeader", "Bad Header"), ("customAuthValue", "v")],
            "metadata.customAuthHeader: is not a valid HTTP header name",
        ),
        (
            "custom",
            &[("customAuthHeader", "X-Key"), ("customAuthValue", "se\ncret")],
            "metadata.customAuthValue: contains characters not allowed",
        ),
        ("basic,bearer", &[("username", "u"), ("bearerToken", "t")], "basic and bearer cannot be combined"),
        ("oauth", &[], "metadata.authModes: \"oauth\" is not supported by the prometheus scaler"),
        ("kerberos", &[], "metadata.authModes: unknown authentication mode \"kerberos\""),
        ("basic", &[("username", "a:b")], "metadata.username: must not contain ':'"),
    ];
    for (modes, auth, want) in cases {
        let e = parse_err(&[("authModes", modes)], auth);
        assert!(e.contains(want), "{modes}: {e}");
        assert!(!e.contains("se\ncret") && !e.contains("junk"), "secret echoed: {e}");
    }
    let e = parse_err(
        &[("authModes", "custom"), ("customHeaders", "X-Key=1")],
        &[("customAuthHeader", "X-Key"), ("customAuthValue", "v")],
    );
    assert!(e.contains("metadata.customHeaders: header \"x-key\" is also set by authModes custom"), "{e}");
    let e = parse_err(&[], &[("ca", "not pem")]);
    assert!(e.contains("metadata.ca: is not a PEM-encoded certificate bundle"), "{e}");
}

#[test]
fn secrets_in_metadata_are_ignored_with_a_warning() {
    let (r, warnings) = parse_full(&with(&[("authModes", "bearer"), ("bearerToken", "leaked")]), &[]);
    let e = r.unwrap_err().to_string();
    assert!(e.contains("metadata.bearerToken: required by authModes bearer"), "{e}");
    let w = warnings.join("\n");
    assert!(w.contains("bearerToken is a credential and is read only from a TriggerAuthentication"), "{w}");
    assert!(!w.contains("leaked") && !e.contains("leaked"));
}

fn test_identity() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert =
        rcgen::CertificateParams::new(vec!["client".to_owned()]).unwrap().signed_by(&key, &issuer).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

#[test]
fn tls_material_is_validated_and_never_shown() {
    let (ca, cert, key) = test_identity();
    let c = parse_ok(&[("authModes", "tls")], &[("ca", &ca), ("cert", &cert), ("key", &key)]);
    assert_eq!(c.auth.tls.ca.as_deref(), Some(ca.trim()));
    assert!(c.auth.tls.identity.is_some());
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("PRIVATE KEY") && !dbg.contains("BEGIN CERTIFICATE"), "{dbg}");
    let e = parse_err(
        &[("authModes", "tls")],
        &[("cert", &cert), ("key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")],
    );
    assert!(e.contains("metadata.key: cert and key do not form a usable client identity"), "{e}");
    let e = parse_err(&[("authModes", "tls")], &[("cert", &cert), ("key", &cert)]);
    assert!(e.contains("metadata.key: is not a PEM-encoded private key") && !e.contains("BEGIN"), "{e}");
}

#[test]
fn debug_and_describe_hold_no_credentials() {
    let c = parse_ok(
        &[("authModes", "basic,custom"), ("customHeaders", "X-Tenant=t1")],
        &[
            ("username", "alice"),
            ("password", "pw-secret-1"),
            ("customAuthHeader", "X-Key"),
            ("customAuthValue", "cv-secret-2"),
        ],
    );
    for text in [format!("{c:?}"), c.describe()] {
        assert!(
            !text.contains("pw-secret-1") && !text.contains("cv-secret-2") && !text.contains("alice"),
            "{text}"
        );
    }
}

#[test]
fn triggers_share_one_client_per_origin_and_tls_settings() {
    let build = |extra: &[(&str, &str)]| query::PrometheusScaler::new(parse_ok(extra, &[])).unwrap();
    let a = build(&[("serverAddress", "http://pool-a.invalid:9090"), ("query", "one")]);
    let b =
        build(&[("serverAddress", "http://pool-a.invalid:9090/prefix"), ("query", "two"), ("timeout", "5s")]);
    let other_tls = build(&[("serverAddress", "http://pool-a.invalid:9090"), ("unsafeSsl", "true")]);
    let other_port = build(&[("serverAddress", "http://pool-a.invalid:9091")]);
    assert!(Arc::ptr_eq(a.client(), b.client()), "same origin and TLS settings share one client");
    assert!(!Arc::ptr_eq(a.client(), other_tls.client()));
    assert!(!Arc::ptr_eq(a.client(), other_port.client()));
    assert!(pool::live_clients() >= 3);
    // Through the registry entry point too: build() takes the shared client.
    let s1 = parse_ok(&[("serverAddress", "http://pool-b.invalid")], &[]).build().unwrap();
    let s2 = parse_ok(&[("serverAddress", "http://pool-b.invalid"), ("query", "x")], &[]).build().unwrap();
    let key = parse_ok(&[("serverAddress", "http://pool-b.invalid")], &[]).pool_key();
    let c = pool::client(&key).unwrap();
    // The pool holds one client for pool-b: s1, s2 and this handle point at it.
    assert_eq!(Arc::strong_count(&c), 3, "{s1:?} {s2:?}");
}

const KEYS: &[(&str, &str)] =
    &[("awsAccessKeyID", "AKIDPARSE"), ("awsSecretAccessKey", "secret-parse-value")];

#[test]
fn aws_region_turns_on_sigv4_with_the_trigger_identity() {
    assert_eq!(parse_ok(&[], &[]).sigv4, None);
    let c = parse_ok(&[("awsRegion", "us-east-1")], KEYS);
    let aws = c.sigv4.as_ref().unwrap();
    assert_eq!(aws.region, "us-east-1");
    assert_eq!(aws.credentials.describe(), "static keys");
    assert_eq!(
        c.describe(),
        "query \"sum(up)\" on http://prometheus:9090 (AWS SigV4, region us-east-1, static keys)"
    );
    let debug = format!("{c:?}");
    assert!(!debug.contains("secret-parse-value") && !debug.contains("AKIDPARSE"), "{debug}");

    // podIdentity provider aws: the operator's identity (or the role it names).
    let mut cx = ctx(&[]);
    cx.pod_identity.insert(
        0,
        serde_json::from_value(
            serde_json::json!({"provider": "aws", "roleArn": "arn:aws:iam::123456789012:role/amp-reader"}),
        )
        .unwrap(),
    );
    let m = with(&[("awsRegion", "us-west-2")]);
    let c = parse_config(&Params::new(0, "prometheus", PARAMS, &m, &cx)).unwrap();
    assert_eq!(
        c.sigv4.unwrap().credentials.describe(),
        "role arn:aws:iam::123456789012:role/amp-reader assumed with ebb's own AWS identity"
    );
}

#[test]
fn aws_settings_that_cannot_work_are_rejected() {
    let e = parse_err(&[], KEYS);
    assert!(e.contains("awsRegion") && e.contains("set awsRegion to the workspace's region"), "{e}");
    let e = parse_err(&[("awsRegion", "us-east-1")], &[]);
    assert!(e.contains("no AWS credentials"), "{e}");
    let e = parse_err(&[("awsRegion", "Frankfurt")], KEYS);
    assert!(e.contains("expected an AWS region"), "{e}");
    let auth = [KEYS, &[("username", "u"), ("password", "p")]].concat();
    let e = parse_err(&[("awsRegion", "us-east-1"), ("authModes", "basic")], &auth);
    assert!(e.contains("cannot be combined with authModes basic"), "{e}");
    assert!(!e.contains("secret-parse-value"), "{e}");
}
