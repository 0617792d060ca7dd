//! Kubernetes quantities (`api::quantity`) and external metric names (`api::metric_name`): the
//! text forms that come from manifests and from the HPA's requests. Properties: no panic; a
//! parsed quantity formats back to a quantity that parses; a normalized metric name is stable.
#![no_main]

use ebb_api::{metric_name, quantity};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(v) = quantity::parse(text) {
        let formatted = quantity::format(v);
        let again = quantity::parse(&formatted);
        assert!(again.is_ok(), "{text:?} parsed to {v}, formatted as {formatted:?}, which does not parse");
        let _ = quantity::format_milli(quantity::to_milli(v));
    }
    let normalized = metric_name::normalize(text);
    assert_eq!(metric_name::normalize(&normalized), normalized, "normalize is not idempotent on {text:?}");
    let _ = metric_name::trigger_index(text);
    let mut parts = text.splitn(3, '\n');
    let (tz, start, end) =
        (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let _ = metric_name::cron_part(tz, start, end);
    let _ = metric_name::with_index(data.len(), text);
});
