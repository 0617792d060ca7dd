//! Parameter parsing of the external triggers (addresses, TLS material, pass-through metadata,
//! no warnings for the scaler's own keys) and the bounds on text taken from the scaler.

use std::collections::BTreeMap;

use ebb_api::MetadataValue;

use super::*;
use crate::params::ParseContext;

fn parse(
    type_: &str,
    meta: &[(&str, &str)],
    auth: &[(&str, &str)],
) -> (Result<ExternalConfig, String>, Vec<String>) {
    let m: BTreeMap<String, MetadataValue> =
        meta.iter().map(|(k, v)| ((*k).to_owned(), MetadataValue::from(*v))).collect();
    let mut c = ParseContext::default();
    c.auth.insert(0, auth.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect());
    let p = Params::new(0, type_, PARAMS, &m, &c);
    let r = parse_config(&p, type_ == "external-push").map_err(|e| e.to_string());
    (r, p.into_warnings())
}

fn err(meta: &[(&str, &str)], auth: &[(&str, &str)]) -> String {
    parse("external", meta, auth).0.unwrap_err()
}

#[test]
fn address_and_pass_through_metadata() {
    let (c, warnings) = parse("external", &[("scalerAddress", "scaler.ns.svc:8080"), ("queue", "jobs")], &[]);
    let c = c.unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(c.address, "scaler.ns.svc:8080");
    assert!(c.tls.is_none() && !c.push);
    assert_eq!(c.metadata.get("queue").map(String::as_str), Some("jobs"));
    assert_eq!(c.metadata.get("scalerAddress").map(String::as_str), Some("scaler.ns.svc:8080"));
    assert_eq!(
        crate::trigger::TriggerSpec::new(0, "external", None, Default::default(), false, Arc::new(c))
            .metric_name,
        "s0-external"
    );
    let push = parse("external-push", &[("scalerAddress", "[::1]:9000")], &[]).0.unwrap();
    assert!(push.push);
    assert_eq!(push.metric_part(), "external-push");
}

#[test]
fn bad_addresses() {
    for a in
        ["scaler", "scaler:0", "scaler:99999", ":80", "http://scaler:80", "a b:80", "user@host:80", "[zz]:80"]
    {
        let e = err(&[("scalerAddress", a)], &[]);
        assert!(e.contains("scalerAddress") && e.contains("host:port"), "{a}: {e}");
    }
    assert!(err(&[], &[]).contains("scalerAddress"));
}

#[test]
fn tls_parameters() {
    let e = err(&[("scalerAddress", "s:1"), ("tlsCertFile", "/etc/passwd")], &[]);
    assert!(e.contains("tlsCertFile") && e.contains("caCert"), "{e}");
    let e = err(&[("scalerAddress", "s:1")], &[("tlsClientCert", "x")]);
    assert!(e.contains("tlsClientKey"), "{e}");
    let e = err(&[("scalerAddress", "s:1")], &[("caCert", "not pem")]);
    assert!(e.contains("caCert"), "{e}");
    let c = parse("external", &[("scalerAddress", "s:1"), ("enableTLS", "true"), ("unsafeSsl", "true")], &[])
        .0
        .unwrap();
    assert!(c.tls.as_ref().is_some_and(|t| t.unsafe_ssl && t.ca.is_none()));
    assert_eq!(c.describe(), "external scaler at s:1 over tls (unverified)");
    let e = err(&[("scalerAddress", "s:1"), ("enableTLS", "yes")], &[]);
    assert!(e.contains("enableTLS"), "{e}");
}

#[test]
fn the_key_is_read_only_from_authentication_and_never_shown() {
    let (c, warnings) =
        parse("external", &[("scalerAddress", "s:1"), ("tlsClientKey", "SECRETKEYMATERIAL")], &[]);
    // A key in metadata is a credential in the wrong place: warned about, never read.
    assert!(warnings.iter().any(|w| w.contains("tlsClientKey")), "{warnings:?}");
    let c = c.unwrap();
    assert!(c.tls.is_none() && !c.metadata.contains_key("tlsClientKey"));
    assert!(!format!("{c:?}").contains("SECRETKEYMATERIAL"));
}

#[test]
fn text_from_the_scaler_is_bounded_and_printable() {
    assert_eq!(sanitize("a\nb\u{7}c", 10), "a b c");
    assert_eq!(sanitize(&"x".repeat(20), 5), "xxxxx…");
}
