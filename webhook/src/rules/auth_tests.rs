//! Table of the (Cluster)TriggerAuthentication rules: each row an authentication spec and the
//! expected outcome (allowed, or denied with a reason and message fragment) and warning.

use ebb_api::TriggerAuthenticationSpec;
use serde_json::{Value, json};

use super::auth;
use super::tests::{Want, check};

#[test]
fn auth_rules() {
    let rows: Vec<(&str, Value, Want, Option<&str>)> = vec![
        (
            "secret refs",
            json!({"secretTargetRef": [{"parameter": "password", "name": "s", "key": "k"}]}),
            Want::Allowed,
            None,
        ),
        (
            "aws keda role",
            json!({"podIdentity": {"provider": "aws", "roleArn": "arn:aws:iam::1:role/r"}}),
            Want::Allowed,
            None,
        ),
        (
            "aws workload without role",
            json!({"podIdentity": {"provider": "aws", "identityOwner": "workload"}}),
            Want::Allowed,
            None,
        ),
        (
            "aws workload with role",
            json!({"podIdentity": {"provider": "aws", "roleArn": "arn:aws:iam::1:role/r", "identityOwner": "workload"}}),
            Want::Denied(
                auth::reason::POD_IDENTITY,
                "spec.podIdentity.roleArn: cannot be set when identityOwner is workload",
            ),
            None,
        ),
        (
            "bad identity owner",
            json!({"podIdentity": {"provider": "aws", "identityOwner": "me"}}),
            Want::Denied(
                auth::reason::POD_IDENTITY,
                "identityOwner: expected keda or workload, found \"me\"",
            ),
            None,
        ),
        (
            "unknown provider",
            json!({"podIdentity": {"provider": "aws-kiam"}}),
            Want::Denied(auth::reason::POD_IDENTITY, "unknown provider \"aws-kiam\""),
            None,
        ),
        (
            "unsupported provider",
            json!({"podIdentity": {"provider": "gcp"}}),
            Want::Allowed,
            Some("\"gcp\" is not supported by ebb"),
        ),
        (
            "empty identity id",
            json!({"podIdentity": {"provider": "azure-workload", "identityId": ""}}),
            Want::Denied(auth::reason::POD_IDENTITY, "identityId: must not be empty"),
            Some("not supported by ebb"),
        ),
        (
            "incomplete secret ref",
            json!({"secretTargetRef": [{"parameter": "p", "name": "", "key": "k"}]}),
            Want::Denied(auth::reason::REFERENCE, "spec.secretTargetRef[0].name: required"),
            None,
        ),
        (
            "incomplete config map ref",
            json!({"configMapTargetRef": [{"parameter": "", "name": "c", "key": "k"}]}),
            Want::Denied(auth::reason::REFERENCE, "spec.configMapTargetRef[0].parameter: required"),
            None,
        ),
        (
            "incomplete env",
            json!({"env": [{"parameter": "p", "name": " "}]}),
            Want::Denied(auth::reason::REFERENCE, "spec.env[0].name: required"),
            None,
        ),
        (
            "duplicate parameter",
            json!({"env": [{"parameter": "p", "name": "E"}], "secretTargetRef": [{"parameter": "p", "name": "s", "key": "k"}]}),
            Want::Allowed,
            Some("parameter \"p\" is given by env[0], secretTargetRef[0]; secretTargetRef[0] wins"),
        ),
        (
            "vault",
            json!({"hashiCorpVault": {"address": "https://vault"}}),
            Want::Allowed,
            Some("spec.hashiCorpVault is not supported by ebb"),
        ),
    ];
    for (row, spec, want, warning) in rows {
        let spec: TriggerAuthenticationSpec = serde_json::from_value(spec).unwrap();
        check(row, &auth::evaluate(&spec), &want, warning);
    }
}
