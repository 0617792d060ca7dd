//! Where the webhook's rules meet the shared parser: the seed ScaledObjects pass, and parse
//! errors that only the operator can settle (values a TriggerAuthentication supplies) are left
//! to it while the user's own mistakes are denied.

use ebb_api::ScaledObject;
use ebb_scalers::{ParseContext, ParseErrorKind, parse_scaled_object};
use serde_json::{Value, json};

use super::scaled_object::{self as so_rules, WorkloadFacts, reason};
use super::tests::{cluster, cron, merged, so};

#[test]
fn seed_fixtures_pass_the_rules() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/seed");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let v: Value = serde_yaml::from_str(&text).unwrap();
        if v["kind"] != "ScaledObject" {
            continue;
        }
        let object: ScaledObject = serde_json::from_value(v).unwrap();
        let verdict = so_rules::evaluate(&object, "default", &cluster(), &WorkloadFacts::NotNeeded);
        assert!(verdict.allowed(), "{}: {:?}", path.display(), verdict.denials);
        // The parser may only lack what the operator resolves later (credentials, parameters a
        // referenced TriggerAuthentication supplies).
        if let Err(errors) = parse_scaled_object(&object, &ParseContext::default()) {
            for e in errors {
                assert!(
                    matches!(e.kind, ParseErrorKind::MissingCredentials | ParseErrorKind::MissingParameter),
                    "{}: {e}",
                    path.display()
                );
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 4, "seed ScaledObjects found in {}", dir.display());
}

#[test]
fn what_only_the_operator_can_read_is_left_to_it() {
    use super::scaled_object::{Judgement, judge};
    use ebb_scalers::{Location, ParseError};
    let with_auth =
        so(json!({"triggers": [merged(cron(), json!({"authenticationRef": {"name": "creds"}}))]}), json!({}));
    let err = |parameter: &str, kind| ParseError {
        location: Location::Trigger { index: 0, type_: "cron".into(), parameter: Some(parameter.into()) },
        message: "m".into(),
        kind,
    };
    let rows = [
        (err("startFromEnv", ParseErrorKind::MissingParameter), Judgement::Later),
        // Not a parameter a TriggerAuthentication may supply: still the user's to fix.
        (err("timezone", ParseErrorKind::MissingParameter), Judgement::Deny(reason::INVALID_TRIGGER)),
        (err("start", ParseErrorKind::InvalidParameter), Judgement::Deny(reason::INVALID_TRIGGER)),
        (ParseError::spec("spec.x", "y"), Judgement::Deny(reason::INVALID_SPEC)),
    ];
    for (e, want) in rows {
        assert_eq!(judge(&with_auth, &e), want, "{e}");
    }
    let no_credentials = err("x", ParseErrorKind::MissingCredentials);
    assert_eq!(judge(&with_auth, &no_credentials), Judgement::Warn);
}
