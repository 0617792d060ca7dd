//! Tests of the authentication decisions that need no cluster: which credentials are looked
//! at, which are refused before any review, and the messages.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};
use ebb_plumbing::tls::PeerCertificates;
use ebb_sandbox::pki::CertAuthority;

use super::front_proxy::RequestHeaderConfig;
use super::reviews::{ReviewConfig, Reviews};
use super::*;
use crate::metrics::Metrics;

#[test]
fn attributes_follow_the_route() {
    let route = crate::routes::route("/apis/external.metrics.k8s.io/v1beta1/namespaces/prod/s0-queue");
    assert_eq!(
        Attributes::of(&route, "/apis/external.metrics.k8s.io/v1beta1/namespaces/prod/s0-queue"),
        Attributes::Resource { namespace: "prod".into(), resource: "s0-queue".into() }
    );
    for path in ["/apis", "/apis/external.metrics.k8s.io/v1beta1", "/openapi/v2", "/nothing"] {
        assert_eq!(
            Attributes::of(&crate::routes::route(path), path),
            Attributes::NonResource { path: path.into() }
        );
    }
}

#[test]
fn forbidden_messages_name_user_and_resource() {
    let attrs = Attributes::Resource { namespace: "prod".into(), resource: "s0-queue".into() };
    assert_eq!(
        forbidden_message("bob", &attrs, ""),
        "s0-queue.external.metrics.k8s.io is forbidden: User \"bob\" cannot get resource \"s0-queue\" \
         in API group \"external.metrics.k8s.io\" in the namespace \"prod\""
    );
    assert_eq!(
        forbidden_message("bob", &Attributes::NonResource { path: "/apis".into() }, "denied by policy"),
        "forbidden: User \"bob\" cannot get path \"/apis\": denied by policy"
    );
}

#[test]
fn bearer_tokens_are_read_from_authorization() {
    let cases = [
        (Some("Bearer abc"), Some("abc")),
        (Some("bearer abc "), Some("abc")),
        (Some("BEARER  abc"), Some("abc")),
        (Some("Basic YWxpY2U6eA=="), None),
        (Some("Bearer "), None),
        (Some("Bearer"), None),
        (None, None),
    ];
    for (value, want) in cases {
        let mut h = HeaderMap::new();
        if let Some(v) = value {
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        assert_eq!(bearer_token(&h), want, "{value:?}");
    }
}

/// An authenticator whose reviews go to an address where nothing listens: any request that
/// gets as far as a review fails with 500, so 401s seen here are decided before any review.
fn unreachable_authenticator() -> Authenticator {
    let config = kube::Config::new("https://127.0.0.1:9".parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let cfg = ReviewConfig { capacity: 16, timeout: Duration::from_secs(2), ..ReviewConfig::default() };
    Authenticator::delegated(Reviews::new(client, cfg, Metrics::unregistered()))
}

fn chain(pem_cert: &ebb_sandbox::pki::Leaf) -> PeerCertificates {
    PeerCertificates(Arc::new(vec![pem_cert.cert_der().unwrap()]))
}

#[tokio::test]
async fn requests_without_trusted_credentials_are_refused_before_any_review() {
    let auth = unreachable_authenticator();
    let attrs = Attributes::NonResource { path: "/apis".into() };
    let forged = {
        let mut h = HeaderMap::new();
        h.insert("X-Remote-User", HeaderValue::from_static("admin"));
        h.insert("X-Remote-Group", HeaderValue::from_static("system:masters"));
        h
    };
    // Nothing at all; forged identity headers without a certificate.
    for headers in [HeaderMap::new(), forged.clone()] {
        let err = auth.check(None, &headers, &attrs).await.unwrap_err();
        assert_eq!(err.code, 401, "{err}");
        assert!(err.message.contains("no credentials"), "{err}");
    }
    let empty = PeerCertificates::default();
    assert_eq!(auth.check(Some(&empty), &forged, &attrs).await.unwrap_err().code, 401);

    // A certificate while no requestheader CA is known.
    let ca = CertAuthority::new("front-proxy-ca").unwrap();
    let proxy = ca.issue_client("front-proxy-client", &[]).unwrap();
    let err = auth.check(Some(&chain(&proxy)), &forged, &attrs).await.unwrap_err();
    assert_eq!(err.code, 401);
    assert!(err.message.contains("no requestheader CA is configured"), "{err}");

    let settings = RequestHeaderConfig {
        ca_pem: Some(ca.cert_pem().to_owned()),
        allowed_names: vec!["front-proxy-client".into()],
        username_headers: vec!["X-Remote-User".into()],
        group_headers: vec!["X-Remote-Group".into()],
        extra_prefixes: vec![],
    };
    assert!(auth.set_request_header(settings).unwrap());
    // Another CA's certificate with the right name.
    let other = CertAuthority::new("other").unwrap().issue_client("front-proxy-client", &[]).unwrap();
    let err = auth.check(Some(&chain(&other)), &forged, &attrs).await.unwrap_err();
    assert_eq!(err.code, 401);
    assert!(err.message.contains("not signed by the requestheader CA"), "{err}");
    // The right CA, a name that is not allowed.
    let mallory = ca.issue_client("mallory", &[]).unwrap();
    let err = auth.check(Some(&chain(&mallory)), &forged, &attrs).await.unwrap_err();
    assert_eq!(err.code, 401);
    assert!(err.message.contains("not an allowed front-proxy name"), "{err}");
    // The aggregator's certificate and headers: authenticated, so the (unreachable)
    // authorization review is what fails.
    let err = auth.check(Some(&chain(&proxy)), &forged, &attrs).await.unwrap_err();
    assert_eq!(err.code, 500, "{err}");
    assert!(err.message.starts_with("cannot check authorization: SubjectAccessReview"), "{err}");
    // A bearer token goes to a TokenReview.
    let mut bearer = HeaderMap::new();
    bearer.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer sekrit"));
    let err = auth.check(None, &bearer, &attrs).await.unwrap_err();
    assert_eq!(err.code, 500);
    assert!(err.message.starts_with("cannot check the bearer token: TokenReview"), "{err}");
    assert!(!err.message.contains("sekrit"), "{err}");

    // Dropping the CA refuses certificates again.
    assert!(!auth.set_request_header(RequestHeaderConfig { ca_pem: None, ..Default::default() }).unwrap());
    assert_eq!(auth.check(Some(&chain(&proxy)), &forged, &attrs).await.unwrap_err().code, 401);
}

#[tokio::test]
async fn disabled_lets_everything_through() {
    let auth = Authenticator::disabled();
    assert!(!auth.enabled());
    let attrs = Attributes::NonResource { path: "/apis".into() };
    auth.check(None, &HeaderMap::new(), &attrs).await.unwrap();
    assert!(!auth.set_request_header(RequestHeaderConfig::default()).unwrap());
}
