//! Tests of request-header settings, chain verification and identity headers.

use std::collections::BTreeMap;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use ebb_sandbox::pki::CertAuthority;

use super::*;

fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn settings(allowed: &[&str]) -> RequestHeaderConfig {
    RequestHeaderConfig {
        ca_pem: None,
        allowed_names: allowed.iter().map(|s| (*s).to_owned()).collect(),
        username_headers: vec!["X-Remote-User".into()],
        group_headers: vec!["X-Remote-Group".into()],
        extra_prefixes: vec!["X-Remote-Extra-".into()],
    }
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
    }
    map
}

#[test]
fn settings_are_read_from_the_config_map() {
    let ca = CertAuthority::new("front-proxy-ca").unwrap();
    let cm = data(&[
        (CA_KEY, ca.cert_pem()),
        (ALLOWED_NAMES_KEY, r#"["front-proxy-client","aggregator"]"#),
        (USERNAME_HEADERS_KEY, r#"["X-Remote-User"]"#),
        (GROUP_HEADERS_KEY, r#"["X-Remote-Group"]"#),
        (EXTRA_PREFIXES_KEY, r#"["X-Remote-Extra-"]"#),
        ("client-ca-file", "ignored"),
    ]);
    let cfg = RequestHeaderConfig::from_config_map(&cm).unwrap();
    assert_eq!(cfg.ca_pem.as_deref(), Some(ca.cert_pem()));
    assert_eq!(cfg.allowed_names, ["front-proxy-client", "aggregator"]);
    assert_eq!(cfg.username_headers, ["X-Remote-User"]);

    // Missing lists: no allowed names (any name), usual headers.
    let cfg = RequestHeaderConfig::from_config_map(&data(&[(CA_KEY, ca.cert_pem())])).unwrap();
    assert_eq!(cfg, RequestHeaderConfig { ca_pem: Some(ca.cert_pem().to_owned()), ..settings(&[]) });
    // No CA at all: request-header authentication off.
    let cfg = RequestHeaderConfig::from_config_map(&data(&[])).unwrap();
    assert_eq!(cfg.ca_pem, None);
    assert!(FrontProxy::new(cfg).unwrap().is_none());
}

#[test]
fn bad_settings_name_the_key() {
    let cases = [
        (data(&[(CA_KEY, "not pem")]), "requestheader-client-ca-file: no certificate"),
        (
            data(&[(CA_KEY, "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n")]),
            "requestheader-client-ca-file: invalid PEM",
        ),
        (
            data(&[(ALLOWED_NAMES_KEY, "front-proxy-client")]),
            "requestheader-allowed-names is not a JSON list",
        ),
        (data(&[(GROUP_HEADERS_KEY, "[1]")]), "requestheader-group-headers is not a JSON list"),
    ];
    for (cm, message) in cases {
        let err = RequestHeaderConfig::from_config_map(&cm).unwrap_err();
        assert!(err.starts_with(message), "{err}");
    }
}

#[test]
fn chains_verify_only_against_the_requestheader_ca() {
    let ca = CertAuthority::new("front-proxy-ca").unwrap();
    let other = CertAuthority::new("someone-else").unwrap();
    let fp = FrontProxy::new(RequestHeaderConfig { ca_pem: Some(ca.cert_pem().to_owned()), ..settings(&[]) })
        .unwrap()
        .unwrap();
    let good = ca.issue_client("front-proxy-client", &[]).unwrap().cert_der().unwrap();
    assert_eq!(fp.verified_name(std::slice::from_ref(&good)).unwrap(), "front-proxy-client");
    let forged = other.issue_client("front-proxy-client", &[]).unwrap().cert_der().unwrap();
    let err = fp.verified_name(&[forged]).unwrap_err();
    assert!(err.starts_with("the client certificate is not signed by the requestheader CA"), "{err}");
    assert_eq!(fp.verified_name(&[]).unwrap_err(), "no client certificate");
    assert_eq!(common_name(&good).unwrap(), "front-proxy-client");
}

/// Kubernetes' aggregated servers add `system:authenticated` to every authenticated user; the
/// aggregator itself fetches `/openapi/v2` as `system:aggregator` with no group header, and RBAC
/// grants that path to `system:authenticated` only.
#[test]
fn front_proxy_users_are_authenticated_users() {
    let cfg = settings(&["front-proxy-client"]);
    let user =
        header_identity("front-proxy-client", &headers(&[("X-Remote-User", "system:aggregator")]), &cfg)
            .unwrap()
            .unwrap();
    assert_eq!(user.groups, ["system:authenticated"]);
    let h = headers(&[
        ("X-Remote-User", "bob"),
        ("X-Remote-Group", "system:authenticated"),
        ("X-Remote-Group", "x"),
    ]);
    let user = header_identity("front-proxy-client", &h, &cfg).unwrap().unwrap();
    assert_eq!(user.groups, ["system:authenticated", "x"], "not added twice");
}

#[test]
fn identity_comes_from_the_headers_of_an_allowed_name() {
    let cfg = settings(&["front-proxy-client"]);
    let h = headers(&[
        ("X-Remote-User", "alice"),
        ("X-Remote-Group", "devs"),
        ("x-remote-group", "system:authenticated"),
        ("X-Remote-Extra-Scopes", "view"),
        ("X-Remote-Extra-Scopes", "edit"),
        ("X-Remote-Extra-Acme.com%2Fproject", "ebb"),
        ("Authorization", "Bearer ignored"),
    ]);
    let user = header_identity("front-proxy-client", &h, &cfg).unwrap().unwrap();
    assert_eq!(user.name, "alice");
    assert_eq!(user.groups, ["devs", "system:authenticated"]);
    assert_eq!(user.extra["scopes"], ["view", "edit"]);
    assert_eq!(user.extra["acme.com/project"], ["ebb"]);
    assert_eq!(user.extra.len(), 2);

    // Not an allowed name: refused, whatever the headers say.
    let err = header_identity("mallory", &h, &cfg).unwrap_err();
    assert!(err.contains("\"mallory\" is not an allowed front-proxy name"), "{err}");
    assert!(err.contains("front-proxy-client"), "{err}");
    // No allowed names: any name the CA signed.
    assert!(header_identity("anyone", &h, &settings(&[])).unwrap().is_some());
    // No username: no identity from headers.
    let no_user = headers(&[("X-Remote-Group", "system:masters"), ("X-Remote-User", " ")]);
    assert_eq!(header_identity("front-proxy-client", &no_user, &cfg).unwrap(), None);
}

#[test]
fn the_first_username_header_with_a_value_wins() {
    let cfg = RequestHeaderConfig {
        username_headers: vec!["X-Remote-User".into(), "X-Other-User".into()],
        ..settings(&[])
    };
    let h = headers(&[("X-Other-User", "bob")]);
    assert_eq!(header_identity("cn", &h, &cfg).unwrap().unwrap().name, "bob");
    let h = headers(&[("X-Other-User", "bob"), ("X-Remote-User", "alice")]);
    assert_eq!(header_identity("cn", &h, &cfg).unwrap().unwrap().name, "alice");
}
