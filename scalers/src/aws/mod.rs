//! The AWS scalers (`aws-sqs-queue`, `aws-cloudwatch`) and what they share: the region, endpoint
//! and credential parameters, the credential sources (static keys, the operator's own chain, an
//! assumed role), one SDK client per distinct (region, endpoint, credentials) for the whole process,
//! and the mapping of AWS errors to bounded `ScalerError` reasons.

pub mod client;
pub mod cloudwatch;
pub mod credentials;
pub mod error;
pub mod sqs;

use crate::error::{ParseError, ParseErrorKind};
use crate::params::{ParamKind, ParamSpec, Params};

pub use client::{AwsClients, ClientKey};
pub use credentials::{AwsCredentials, Secret};

/// `awsRegion`: the region of the queue or metric.
pub(crate) const AWS_REGION: ParamSpec = ParamSpec::new("awsRegion", ParamKind::Text).from_auth();
/// `awsEndpoint`: an endpoint URL replacing the service's default one (VPC endpoints, moto, LocalStack).
pub(crate) const AWS_ENDPOINT: ParamSpec = ParamSpec::new("awsEndpoint", ParamKind::Text);
/// `identityOwner`: `pod` (credentials from the TriggerAuthentication) or `operator` (ebb's own).
pub(crate) const IDENTITY_OWNER: ParamSpec =
    ParamSpec::new("identityOwner", ParamKind::Enum(&["pod", "operator"])).default("pod");
/// `awsRoleArn`: a role to assume, from the TriggerAuthentication (or the metadata).
pub(crate) const AWS_ROLE_ARN: ParamSpec = ParamSpec::new("awsRoleArn", ParamKind::Text).from_auth();
pub(crate) const AWS_ACCESS_KEY_ID: ParamSpec = ParamSpec::new("awsAccessKeyID", ParamKind::Text).secret();
pub(crate) const AWS_SECRET_ACCESS_KEY: ParamSpec =
    ParamSpec::new("awsSecretAccessKey", ParamKind::Text).secret();
pub(crate) const AWS_SESSION_TOKEN: ParamSpec = ParamSpec::new("awsSessionToken", ParamKind::Text).secret();

/// Reads `awsEndpoint`: an absolute http(s) URL without a query.
pub(crate) fn endpoint(p: &Params<'_>) -> Result<Option<String>, ParseError> {
    let Some(raw) = p.text("awsEndpoint")? else { return Ok(None) };
    let ok = ["http://", "https://"]
        .iter()
        .find_map(|s| raw.strip_prefix(s))
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/') && !rest.contains(['?', '#', ' ']));
    if !ok {
        return Err(p.error(
            "awsEndpoint",
            ParseErrorKind::InvalidParameter,
            format!("expected an http:// or https:// URL such as \"http://127.0.0.1:5000\", found {raw:?}"),
        ));
    }
    Ok(Some(raw.trim_end_matches('/').to_owned()))
}

/// Checks a region name's shape (`us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`).
pub(crate) fn check_region(p: &Params<'_>, region: &str) -> Result<(), ParseError> {
    let ok = !region.is_empty()
        && region.len() <= 32
        && region.split('-').count() >= 3
        && region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && region.chars().last().is_some_and(|c| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(p.error(
            "awsRegion",
            ParseErrorKind::InvalidParameter,
            format!("expected an AWS region such as \"us-east-1\", found {region:?}"),
        ))
    }
}

#[cfg(test)]
mod tests;
