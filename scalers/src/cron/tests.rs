//! Cron trigger parsing and evaluation against the seed fixture and bad input.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use ebb_api::MetadataValue;

use super::*;
use crate::params::ParseContext;

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, MetadataValue> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), MetadataValue::from(*v))).collect()
}

const SEED: &[(&str, &str)] = &[
    ("timezone", "Asia/Seoul"),
    ("start", "00,15,30,45 * * * *"),
    ("end", "05,20,35,50 * * * *"),
    ("desiredReplicas", "1"),
];

fn parse_pairs(pairs: &[(&str, &str)]) -> Result<CronConfig, ParseError> {
    let m = params(pairs);
    let ctx = ParseContext::default();
    let p = Params::new(0, "cron", PARAMS, &m, &ctx);
    parse_config(&p)
}

#[test]
fn seed_metric_name_target_and_values() {
    let c = parse_pairs(SEED).unwrap();
    assert_eq!(
        ebb_api::metric_name::with_index(0, &c.metric_part()),
        "s0-cron-Asia-Seoul-00,15,30,45xxxx-05,20,35,50xxxx"
    );
    assert_eq!(c.target(), 1.0);
    // 10:02 KST = 01:02 UTC: inside the window.
    assert_eq!(c.value_at(Utc.with_ymd_and_hms(2026, 11, 23, 1, 2, 0).unwrap()), 1.0);
    // 10:07 KST: outside.
    assert_eq!(c.value_at(Utc.with_ymd_and_hms(2026, 11, 23, 1, 7, 0).unwrap()), 0.0);
}

#[test]
fn bad_input_is_one_clear_error() {
    let with = |k: &str, v: &str| -> Vec<(&str, String)> {
        SEED.iter().map(|(a, b)| (*a, if *a == k { v.to_owned() } else { (*b).to_owned() })).collect()
    };
    let cases: &[(&str, &str, &str)] = &[
        (
            "timezone",
            "Asia/Seul",
            "spec.triggers[0] (cron) metadata.timezone: unknown time zone \"Asia/Seul\"",
        ),
        ("start", "61 * * * *", "spec.triggers[0] (cron) metadata.start: "),
        (
            "end",
            "00,15,30,45 * * * *",
            "spec.triggers[0] (cron) metadata.end: start and end fire at the same times",
        ),
        (
            "end",
            "0,15,30,45 * * * 0-7",
            "spec.triggers[0] (cron) metadata.end: start and end fire at the same times",
        ),
        (
            "desiredReplicas",
            "0",
            "spec.triggers[0] (cron) metadata.desiredReplicas: must be an integer ≥ 1, found 0",
        ),
        (
            "desiredReplicas",
            "two",
            "spec.triggers[0] (cron) metadata.desiredReplicas: must be an integer ≥ 1, found \"two\"",
        ),
    ];
    for (k, v, want) in cases {
        let owned = with(k, v);
        let pairs: Vec<(&str, &str)> = owned.iter().map(|(a, b)| (*a, b.as_str())).collect();
        let err = parse_pairs(&pairs).unwrap_err().to_string();
        assert!(err.starts_with(want), "{k}={v}: {err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }
    let missing: Vec<(&str, &str)> = SEED.iter().copied().filter(|(k, _)| *k != "end").collect();
    assert_eq!(
        parse_pairs(&missing).unwrap_err().to_string(),
        "spec.triggers[0] (cron) metadata.end: required; set metadata.end"
    );
}

#[tokio::test]
async fn measures_at_the_given_instant() {
    let c = parse_pairs(SEED).unwrap();
    let s = c.build().unwrap();
    let open = s.measure(Utc.with_ymd_and_hms(2026, 11, 23, 1, 15, 0).unwrap()).await.unwrap();
    assert_eq!(open, Measurement { value: 1.0, active: true });
    let closed = s.measure(Utc.with_ymd_and_hms(2026, 11, 23, 1, 20, 0).unwrap()).await.unwrap();
    assert_eq!(closed, Measurement { value: 0.0, active: false });
}
