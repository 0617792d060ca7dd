//! Where an AWS trigger's credentials come from, decided at parse time from the
//! TriggerAuthentication (`awsAccessKeyID` / `awsSecretAccessKey` / `awsSessionToken`,
//! `awsRoleArn`, `podIdentity {provider: aws, roleArn, identityOwner}`) and the `identityOwner`
//! metadata. Secret values live in [`Secret`], whose Debug never shows them.

use std::fmt;

use crate::error::{ParseError, ParseErrorKind};
use crate::params::Params;

/// Annotation on a ServiceAccount naming the IAM role of its pods (EKS IRSA).
pub const ROLE_ARN_ANNOTATION: &str = "eks.amazonaws.com/role-arn";

/// A secret string: compared and hashed by value, never shown.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The value, for handing to the SDK only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The identity an AWS trigger acts as.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum AwsCredentials {
    /// ebb's own credential chain: environment, web identity (IRSA), ECS/EC2 metadata.
    Operator,
    /// Static keys from the TriggerAuthentication.
    Static { access_key_id: Secret, secret_access_key: Secret, session_token: Option<Secret> },
    /// A role assumed through STS with the base identity.
    AssumeRole { role_arn: String, base: Box<AwsCredentials> },
}

impl AwsCredentials {
    /// Short description without secrets, for `ebb check` and events.
    pub fn describe(&self) -> String {
        match self {
            Self::Operator => "ebb's own AWS identity".to_owned(),
            Self::Static { session_token: None, .. } => "static keys".to_owned(),
            Self::Static { session_token: Some(_), .. } => "static keys with session token".to_owned(),
            Self::AssumeRole { role_arn, base } => {
                format!("role {role_arn} assumed with {}", base.describe())
            }
        }
    }
}

impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Decides the credentials of one trigger. In order: `podIdentity` provider `aws` (its `roleArn`,
/// else the workload's role for `identityOwner: workload`, else ebb's own identity); metadata
/// `identityOwner: operator`; `awsRoleArn` (assumed with the static keys if given, else with
/// ebb's identity); static keys. Nothing at all is an error: ebb's own identity is used only
/// when asked for.
pub fn resolve(p: &Params<'_>) -> Result<AwsCredentials, ParseError> {
    if let Some(pi) = p.pod_identity().filter(|pi| pi.provider == "aws") {
        if let Some(arn) = pi.role_arn.as_deref().filter(|a| !a.is_empty()) {
            check_role_arn(p, "podIdentity.roleArn", arn)?;
            return Ok(assume(arn, AwsCredentials::Operator));
        }
        return match pi.identity_owner.as_deref().unwrap_or("keda") {
            "keda" | "" => {
                p.allow_operator_identity("podIdentity provider aws with identityOwner keda")?;
                Ok(AwsCredentials::Operator)
            }
            "workload" => {
                let arn = p.workload_role_arn().filter(|a| !a.is_empty()).ok_or_else(|| {
                    p.trigger_error(format!(
                        "podIdentity identityOwner is workload, but the scale target's ServiceAccount has no {ROLE_ARN_ANNOTATION} annotation"
                    ))
                })?;
                check_role_arn(p, ROLE_ARN_ANNOTATION, arn)?;
                Ok(assume(arn, AwsCredentials::Operator))
            }
            other => Err(p.trigger_error(format!(
                "podIdentity identityOwner must be keda or workload, found {other:?}"
            ))),
        };
    }
    if p.text("identityOwner")?.as_deref() == Some("operator") {
        p.allow_operator_identity("identityOwner: operator")?;
        return Ok(AwsCredentials::Operator);
    }
    let id = p.text("awsAccessKeyID")?;
    let key = p.text("awsSecretAccessKey")?;
    let token = p.text("awsSessionToken")?;
    let keys = match (id, key) {
        (Some(id), Some(key)) => Some(AwsCredentials::Static {
            access_key_id: Secret::new(id),
            secret_access_key: Secret::new(key),
            session_token: token.map(Secret::new),
        }),
        (Some(_), None) => {
            return Err(p.error(
                "awsSecretAccessKey",
                ParseErrorKind::MissingParameter,
                "awsAccessKeyID is set, so the TriggerAuthentication must also give awsSecretAccessKey",
            ));
        }
        (None, Some(_)) => {
            return Err(p.error(
                "awsAccessKeyID",
                ParseErrorKind::MissingParameter,
                "awsSecretAccessKey is set, so the TriggerAuthentication must also give awsAccessKeyID",
            ));
        }
        (None, None) => None,
    };
    if let Some(arn) = p.text("awsRoleArn")? {
        check_role_arn(p, "awsRoleArn", &arn)?;
        return Ok(assume(&arn, keys.unwrap_or(AwsCredentials::Operator)));
    }
    keys.ok_or_else(|| ParseError {
        kind: ParseErrorKind::MissingCredentials,
        ..p.trigger_error(
            "no AWS credentials: reference a TriggerAuthentication with awsAccessKeyID and awsSecretAccessKey, \
             awsRoleArn, or podIdentity provider aws (or set identityOwner: operator to use ebb's own identity)",
        )
    })
}

fn assume(arn: &str, base: AwsCredentials) -> AwsCredentials {
    AwsCredentials::AssumeRole { role_arn: arn.to_owned(), base: Box::new(base) }
}

/// `arn:<partition>:iam::<12 digits>:role/<name>`.
fn check_role_arn(p: &Params<'_>, what: &str, arn: &str) -> Result<(), ParseError> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = matches!(parts.as_slice(), ["arn", partition, "iam", "", account, resource]
        if partition.starts_with("aws")
            && account.len() == 12
            && account.chars().all(|c| c.is_ascii_digit())
            && resource.strip_prefix("role/").is_some_and(|r| !r.is_empty()));
    if ok {
        Ok(())
    } else {
        let message = format!(
            "{what}: expected a role ARN such as \"arn:aws:iam::123456789012:role/queue-reader\", found {arn:?}"
        );
        Err(if what == "awsRoleArn" {
            p.error("awsRoleArn", ParseErrorKind::InvalidParameter, message)
        } else {
            p.trigger_error(message)
        })
    }
}
