//! Label selectors from outside: the metrics API server's `labelSelector` query parameter (the
//! HPA controller, or anyone who can reach the APIService) and the selector grammar it shares with
//! the local control plane (`ebb_api::label_selector`: the string and the object form). Property:
//! no panic; what parses once parses the same way again when written back.
#![no_main]

use std::collections::BTreeMap;

use ebb_api::label_selector::LabelSelector;
use ebb_metrics_apiserver::selector;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // As a raw query string (form-encoded), then as the decoded selector.
    let from_query = selector::label_selector(Some(text));
    let _ = selector::scaled_object(from_query.as_deref());
    let _ = selector::scaled_object(Some(text));
    // The shared grammar, matched against labels taken from the same text.
    if let Ok(s) = LabelSelector::parse(text) {
        let canonical = s.to_string();
        match LabelSelector::parse(&canonical) {
            Ok(again) => assert_eq!(again.to_string(), canonical, "canonical form of {text:?} is not stable"),
            Err(e) => panic!("{text:?} parsed, but its canonical form {canonical:?} does not: {e}"),
        }
        let labels: BTreeMap<String, String> = text
            .split(',')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let _ = s.matches(&labels);
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data)
        && let Ok(s) = LabelSelector::from_object(&v)
    {
        let _ = s.matches(&BTreeMap::new());
    }
});
