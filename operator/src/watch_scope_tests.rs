//! Tests of [`super`]: parsing KEDA's `WATCH_NAMESPACE` list, and the merge of per-namespace
//! watches into one stream a reflector store can be filled from.

use futures::FutureExt as _;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::reflector;

use super::*;

fn set(names: &[&str]) -> WatchScope {
    WatchScope::Namespaces(names.iter().map(|s| (*s).to_owned()).collect())
}

#[test]
fn the_list_is_parsed_as_keda_takes_it() {
    assert_eq!(WatchScope::parse(""), Ok(WatchScope::All), "empty: all namespaces");
    assert_eq!(WatchScope::parse(" , ,"), Ok(WatchScope::All), "only empty entries: all namespaces");
    assert_eq!(WatchScope::parse("team-a"), Ok(set(&["team-a"])));
    assert_eq!(WatchScope::parse(" team-b , ,team-a,team-b,"), Ok(set(&["team-a", "team-b"])));
    assert_eq!(set(&["b", "a"]).to_string(), "a,b");
    assert!(set(&["a"]).contains("a") && !set(&["a"]).contains("b") && WatchScope::All.contains("b"));
}

#[test]
fn an_entry_that_is_no_namespace_name_is_refused_by_name() {
    let long = "a".repeat(64);
    for bad in ["Team-A", "team_b", "-a", "a-", "a.b", long.as_str()] {
        let err = WatchScope::parse(&format!("ok,{bad}")).expect_err(bad);
        assert!(err.contains(&format!("{bad:?}")) && err.contains("DNS-1123"), "{bad}: {err}");
    }
    assert!(WatchScope::parse(&"a".repeat(63)).is_ok());
}

fn cm(ns: &str, name: &str, version: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({"metadata": {"namespace": ns, "name": name,
        "resourceVersion": version}}))
    .expect("a ConfigMap")
}

/// Feeds `events` (namespace number, event) through the merge into the reflector store.
fn run(
    merge: &mut Merge<ConfigMap>,
    writer: &mut reflector::store::Writer<ConfigMap>,
    events: Vec<(usize, Event<ConfigMap>)>,
) {
    for (i, e) in events {
        merge.take(i, Ok(e));
        while let Some(Ok(out)) = merge.out.pop_front() {
            writer.apply_watcher_event(&out);
        }
    }
}

fn contents(reader: &Store<ConfigMap>) -> Vec<String> {
    let mut v: Vec<String> = reader
        .state()
        .iter()
        .map(|o| {
            format!(
                "{}/{}@{}",
                o.namespace().unwrap_or_default(),
                o.name_any(),
                o.resource_version().unwrap_or_default()
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn one_namespace_relisting_leaves_the_others_objects_in_the_store() {
    let (reader, mut writer) = reflector::store::<ConfigMap>();
    let mut merge = Merge::new(vec!["a".into(), "b".into()], reader.clone());
    run(
        &mut merge,
        &mut writer,
        vec![
            (0, Event::Init),
            (0, Event::InitApply(cm("a", "x", "1"))),
            (1, Event::Init),
            (0, Event::InitDone),
            (0, Event::Apply(cm("a", "y", "2"))),
            (1, Event::InitApply(cm("b", "z", "3"))),
        ],
    );
    assert!(contents(&reader).is_empty(), "nothing before every namespace has listed");
    assert!(reader.wait_until_ready().now_or_never().is_none(), "not ready before every list");
    run(&mut merge, &mut writer, vec![(1, Event::InitDone)]);
    assert_eq!(contents(&reader), ["a/x@1", "a/y@2", "b/z@3"]);
    assert!(reader.wait_until_ready().now_or_never().is_some(), "ready once every namespace listed");

    // Namespace a re-lists (its watch expired): x was deleted meanwhile, y changed.
    run(
        &mut merge,
        &mut writer,
        vec![
            (0, Event::Init),
            (0, Event::InitApply(cm("a", "y", "4"))),
            (1, Event::Apply(cm("b", "w", "5"))),
        ],
    );
    assert_eq!(contents(&reader), ["a/x@1", "a/y@4", "b/w@5", "b/z@3"], "a re-list applies as it goes");
    run(&mut merge, &mut writer, vec![(0, Event::InitDone), (1, Event::Delete(cm("b", "z", "3")))]);
    assert_eq!(contents(&reader), ["a/y@4", "b/w@5"], "b's objects survive a's re-list");
}

#[test]
fn a_namespace_relisting_before_the_others_listed_replaces_its_part_of_the_first_list() {
    let (reader, mut writer) = reflector::store::<ConfigMap>();
    let mut merge = Merge::new(vec!["a".into(), "b".into()], reader.clone());
    run(
        &mut merge,
        &mut writer,
        vec![
            (0, Event::Init),
            (0, Event::InitApply(cm("a", "x", "1"))),
            (0, Event::InitDone),
            (0, Event::Init),
            (0, Event::InitApply(cm("a", "y", "2"))),
            (1, Event::Init),
            (1, Event::InitApply(cm("b", "z", "3"))),
            (1, Event::InitDone),
        ],
    );
    assert_eq!(contents(&reader), ["a/y@2", "b/z@3"]);
    // a's re-list finishes after the first list was announced; x stays gone, y stays.
    run(&mut merge, &mut writer, vec![(0, Event::InitDone)]);
    assert_eq!(contents(&reader), ["a/y@2", "b/z@3"]);
}
