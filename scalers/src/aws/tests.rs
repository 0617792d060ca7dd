//! Shared AWS parsing: credentials from TriggerAuthentication and pod identity, endpoint and
//! region checks, redaction in Debug, error classification and the shared client cache.

use std::collections::BTreeMap;

use ebb_api::{AuthPodIdentity, MetadataValue};

use super::client::{AwsClients, ClientKey};
use super::credentials::{AwsCredentials, Secret, resolve};
use super::error::{Kind, classify, describe_service_error, scrub};
use crate::params::{Params, ParseContext};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const ROLE: &str = "arn:aws:iam::123456789012:role/queue-reader";

fn md(pairs: &[(&str, &str)]) -> BTreeMap<String, MetadataValue> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), MetadataValue::from(*v))).collect()
}

fn ctx(auth: &[(&str, &str)], pi: Option<AuthPodIdentity>, workload: Option<&str>) -> ParseContext {
    let mut c = ParseContext::default();
    c.auth.insert(0, auth.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect());
    if let Some(pi) = pi {
        c.pod_identity.insert(0, pi);
    }
    c.workload_role_arn = workload.map(str::to_owned);
    c
}

fn aws_pi(role: Option<&str>, owner: Option<&str>) -> AuthPodIdentity {
    AuthPodIdentity {
        provider: "aws".into(),
        role_arn: role.map(str::to_owned),
        identity_owner: owner.map(str::to_owned),
        ..Default::default()
    }
}

fn creds(meta: &[(&str, &str)], c: &ParseContext) -> Result<AwsCredentials, String> {
    let m = md(meta);
    let p = Params::new(0, "aws-sqs-queue", super::sqs::PARAMS, &m, c);
    resolve(&p).map_err(|e| e.to_string())
}

fn keys(token: Option<&str>) -> AwsCredentials {
    AwsCredentials::Static {
        access_key_id: Secret::new("AKIDEXAMPLE"),
        secret_access_key: Secret::new(SECRET),
        session_token: token.map(Secret::new),
    }
}

fn assume(base: AwsCredentials) -> AwsCredentials {
    AwsCredentials::AssumeRole { role_arn: ROLE.into(), base: Box::new(base) }
}

#[test]
fn credential_sources_in_order() {
    let both = [("awsAccessKeyID", "AKIDEXAMPLE"), ("awsSecretAccessKey", SECRET)];
    let with_token =
        [("awsAccessKeyID", "AKIDEXAMPLE"), ("awsSecretAccessKey", SECRET), ("awsSessionToken", "tok")];
    let with_role = [("awsAccessKeyID", "AKIDEXAMPLE"), ("awsSecretAccessKey", SECRET), ("awsRoleArn", ROLE)];
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, ParseContext, AwsCredentials);
    let cases: Vec<Case> = vec![
        ("static keys", vec![], ctx(&both, None, None), keys(None)),
        ("static keys and token", vec![], ctx(&with_token, None, None), keys(Some("tok"))),
        ("role over keys", vec![], ctx(&with_role, None, None), assume(keys(None))),
        ("role alone", vec![], ctx(&[("awsRoleArn", ROLE)], None, None), assume(AwsCredentials::Operator)),
        (
            "role in metadata",
            vec![("awsRoleArn", ROLE)],
            ctx(&[], None, None),
            assume(AwsCredentials::Operator),
        ),
        (
            "identityOwner operator",
            vec![("identityOwner", "operator")],
            ctx(&both, None, None),
            AwsCredentials::Operator,
        ),
        ("pod identity aws", vec![], ctx(&both, Some(aws_pi(None, None)), None), AwsCredentials::Operator),
        (
            "pod identity keda",
            vec![],
            ctx(&[], Some(aws_pi(None, Some("keda"))), None),
            AwsCredentials::Operator,
        ),
        (
            "pod identity role",
            vec![],
            ctx(&[], Some(aws_pi(Some(ROLE), None)), None),
            assume(AwsCredentials::Operator),
        ),
        (
            "pod identity workload",
            vec![],
            ctx(&[], Some(aws_pi(None, Some("workload"))), Some(ROLE)),
            assume(AwsCredentials::Operator),
        ),
        (
            "provider none falls back to keys",
            vec![],
            ctx(&both, Some(AuthPodIdentity { provider: "none".into(), ..Default::default() }), None),
            keys(None),
        ),
    ];
    for (name, meta, c, want) in cases {
        assert_eq!(creds(&meta, &c).unwrap(), want, "{name}");
    }
}

#[test]
fn credential_errors_name_what_is_missing() {
    let cases: Vec<(ParseContext, &str)> = vec![
        (
            ctx(&[], None, None),
            "spec.triggers[0] (aws-sqs-queue): no AWS credentials: reference a TriggerAuthentication",
        ),
        (
            ctx(&[("awsAccessKeyID", "AKIDEXAMPLE")], None, None),
            "metadata.awsSecretAccessKey: awsAccessKeyID is set, so the TriggerAuthentication must also give awsSecretAccessKey",
        ),
        (
            ctx(&[("awsSecretAccessKey", SECRET)], None, None),
            "metadata.awsAccessKeyID: awsSecretAccessKey is set",
        ),
        (
            ctx(&[("awsRoleArn", "queue-reader")], None, None),
            // A value from the TriggerAuthentication is never shown.
            "metadata.awsRoleArn: awsRoleArn: expected a role ARN such as \"arn:aws:iam::123456789012:role/<redacted>\", found <redacted>",
        ),
        (
            ctx(&[], Some(aws_pi(None, Some("workload"))), None),
            "podIdentity identityOwner is workload, but the scale target's ServiceAccount has no eks.amazonaws.com/role-arn annotation",
        ),
        (
            ctx(&[], Some(aws_pi(None, Some("pod"))), None),
            "podIdentity identityOwner must be keda or workload, found \"pod\"",
        ),
        (
            ctx(&[], Some(aws_pi(Some("arn:aws:iam::12:role/x"), None)), None),
            "podIdentity.roleArn: expected a role ARN",
        ),
    ];
    for (c, want) in cases {
        let e = creds(&[], &c).unwrap_err();
        assert!(e.contains(want), "want {want:?} in {e}");
        assert!(!e.contains(SECRET), "{e}");
    }
    let e = creds(&[("identityOwner", "team")], &ctx(&[], None, None)).unwrap_err();
    assert!(e.contains("metadata.identityOwner: expected one of pod, operator, found \"team\""), "{e}");
}

#[test]
fn debug_and_describe_never_show_secrets() {
    let c = assume(keys(Some("session-token-value")));
    for text in [format!("{c:?}"), format!("{c:#?}"), c.describe()] {
        assert!(!text.contains(SECRET) && !text.contains("session-token-value"), "{text}");
    }
    assert_eq!(c.describe(), format!("role {ROLE} assumed with static keys with session token"));
    let key = ClientKey { region: "us-east-1".into(), endpoint: None, credentials: keys(Some("tok")) };
    let shown = format!("{:?}", AwsClients::shared(key));
    assert!(shown.contains("us-east-1") && !shown.contains(SECRET) && !shown.contains("tok\""), "{shown}");
}

#[test]
fn clients_are_shared_per_region_endpoint_and_identity() {
    let key = |region: &str, secret: &str| ClientKey {
        region: region.into(),
        endpoint: Some("http://127.0.0.1:1".into()),
        credentials: AwsCredentials::Static {
            access_key_id: Secret::new("AKIDSHARE"),
            secret_access_key: Secret::new(secret),
            session_token: None,
        },
    };
    let a = AwsClients::shared(key("eu-west-1", "one"));
    let b = AwsClients::shared(key("eu-west-1", "one"));
    let c = AwsClients::shared(key("eu-west-1", "two"));
    let d = AwsClients::shared(key("eu-west-2", "one"));
    assert!(std::sync::Arc::ptr_eq(&a, &b));
    assert!(!std::sync::Arc::ptr_eq(&a, &c) && !std::sync::Arc::ptr_eq(&a, &d));
}

#[test]
fn error_codes_map_to_bounded_reasons() {
    let cases: &[(&str, Option<u16>, Kind)] = &[
        ("AWS.SimpleQueueService.NonExistentQueue", Some(400), Kind::NotFound),
        ("QueueDoesNotExist", Some(400), Kind::NotFound),
        ("ResourceNotFoundException", Some(400), Kind::NotFound),
        ("AccessDenied", Some(403), Kind::Unauthorized),
        ("AccessDeniedException", Some(400), Kind::Unauthorized),
        ("KMS.AccessDeniedException", Some(400), Kind::Unauthorized),
        ("InvalidClientTokenId", Some(403), Kind::Unauthorized),
        ("SignatureDoesNotMatch", Some(403), Kind::Unauthorized),
        ("ExpiredToken", Some(400), Kind::Unauthorized),
        ("UnrecognizedClientException", Some(400), Kind::Unauthorized),
        ("Throttling", Some(400), Kind::Throttled),
        ("ThrottlingException", Some(400), Kind::Throttled),
        ("RequestThrottled", Some(403), Kind::Throttled),
        ("AWS.SimpleQueueService.RequestThrottled", Some(403), Kind::Throttled),
        ("RequestLimitExceeded", Some(503), Kind::Throttled),
        ("TooManyRequestsException", Some(429), Kind::Throttled),
        ("ServiceUnavailable", Some(503), Kind::Unreachable),
        ("InternalFailure", Some(500), Kind::Unreachable),
        ("InvalidParameterValue", Some(400), Kind::Config),
        ("ValidationError", Some(400), Kind::Config),
        ("SomethingNew", Some(403), Kind::Unauthorized),
        ("SomethingNew", Some(429), Kind::Throttled),
        ("SomethingNew", Some(502), Kind::Unreachable),
        ("SomethingNew", Some(400), Kind::InvalidResponse),
    ];
    for (code, status, want) in cases {
        assert_eq!(classify(code, *status), *want, "{code} {status:?}");
    }
}

#[test]
fn scrub_removes_secret_values() {
    let text = format!("echo {SECRET} and tok-123 and AKIDEXAMPLE");
    let out = scrub(text, &assume(keys(Some("tok-123"))));
    assert_eq!(out, "echo <redacted> and <redacted> and AKIDEXAMPLE");
}

#[test]
fn endpoint_and_region_shapes() {
    let c = ctx(&[("awsAccessKeyID", "a"), ("awsSecretAccessKey", "b")], None, None);
    let parse = |meta: &[(&str, &str)]| {
        let mut all = vec![("queueURL", "orders")];
        all.extend_from_slice(meta);
        let m = md(&all);
        let p = Params::new(0, "aws-sqs-queue", super::sqs::PARAMS, &m, &c);
        super::sqs::parse_config(&p).map_err(|e| e.to_string())
    };
    let ok = parse(&[("awsRegion", "us-gov-west-1"), ("awsEndpoint", "http://127.0.0.1:5000/")]).unwrap();
    assert_eq!(ok.client.endpoint.as_deref(), Some("http://127.0.0.1:5000"));
    assert_eq!(ok.client.region, "us-gov-west-1");
    for (meta, want) in [
        (
            vec![("awsRegion", "us-east-1"), ("awsEndpoint", "127.0.0.1:5000")],
            "metadata.awsEndpoint: expected an http:// or https:// URL",
        ),
        (vec![("awsRegion", "us-east-1"), ("awsEndpoint", "http://")], "metadata.awsEndpoint: expected"),
        (vec![("awsRegion", "US East")], "metadata.awsRegion: expected an AWS region such as \"us-east-1\""),
        (vec![("awsRegion", "useast1")], "metadata.awsRegion: expected an AWS region"),
    ] {
        let e = parse(&meta).unwrap_err();
        assert!(e.contains(want), "{meta:?}: {e}");
    }
}

/// `awsEndpoint` can point at any service: its answer's text reaches a message only in the shape
/// of an AWS error with a code AWS defines, on one line and shortened.
#[test]
fn answers_that_are_not_aws_errors_are_not_shown() {
    let marker = "SECRET-INTERNAL-7f3a";
    let shown = describe_service_error(
        "AccessDenied",
        "User is not authorized\nto call GetQueueAttributes",
        403,
        false,
    );
    assert_eq!(shown, "AccessDenied: User is not authorized to call GetQueueAttributes (HTTP 403)");
    for (code, message) in [
        (marker, "x"),
        ("UnknownError", marker),
        ("<html><title>", marker),
        ("", marker),
        ("Some Code With Spaces", marker),
    ] {
        let text = describe_service_error(code, message, 500, false);
        assert!(!text.contains(marker), "{code:?}: {text}");
        assert!(text.contains("HTTP 500"), "{text}");
    }
    let long = describe_service_error("ThrottlingException", &"y".repeat(5000), 400, false);
    assert!(long.chars().count() < 260, "{long}");
    // From AWS's own endpoints, codes ebb does not list are shown too.
    assert_eq!(
        describe_service_error("KMS.DisabledException", "key disabled", 400, true),
        "KMS.DisabledException: key disabled (HTTP 400)"
    );
    assert!(!describe_service_error("KMS.DisabledException", "key disabled", 400, false).contains("key"));
}
