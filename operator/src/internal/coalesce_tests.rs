//! The coalescing of value questions, on a counting source: concurrent identical questions share
//! one query, answers are repeated for the interval and no longer, errors that say nothing about
//! the metric source are not repeated, and different metrics are asked separately.

use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::Utc;

use super::*;

/// Answers after `delay` with the number of queries so far; `gone/…` is an unknown object.
struct Counting {
    calls: AtomicUsize,
    delay: Duration,
}

#[async_trait::async_trait]
impl ValueSource for Counting {
    async fn value(&self, ns: &str, so: &str, metric: &str) -> Answer {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(self.delay).await;
        match so {
            "gone" => Err(ValueError::unknown_scaled_object(ns, so)),
            "failing" => Err(ValueError::Scaler(format!("{metric}: query {n} failed"))),
            _ => Ok(MetricValue {
                metric_name: metric.to_owned(),
                value: n as f64,
                timestamp: Utc::now(),
                source: ValueOrigin::Live,
            }),
        }
    }
    fn is_leader(&self) -> bool {
        true
    }
}

fn setup(delay: Duration) -> (Arc<Counting>, Arc<Coalesced>) {
    let inner = Arc::new(Counting { calls: AtomicUsize::new(0), delay });
    let c = Arc::new(Coalesced::new(inner.clone(), LIVE_QUERY_MIN_INTERVAL));
    (inner, c)
}

#[tokio::test(start_paused = true)]
async fn a_hundred_concurrent_questions_cause_one_query() {
    let (inner, c) = setup(Duration::from_millis(500));
    let asks: Vec<_> = (0..100)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.value("ns", "so", "s0-prometheus").await })
        })
        .collect();
    let mut live = 0;
    for a in asks {
        let v = a.await.unwrap().unwrap();
        assert_eq!(v.value, 1.0);
        live += usize::from(v.source == ValueOrigin::Live);
    }
    assert_eq!(inner.calls.load(Ordering::SeqCst), 1);
    assert_eq!(live, 1, "only the question that ran the query is answered live");
}

#[tokio::test(start_paused = true)]
async fn answers_are_repeated_for_the_interval_only() {
    let (inner, c) = setup(Duration::ZERO);
    assert_eq!(c.value("ns", "so", "m").await.unwrap().value, 1.0);
    tokio::time::advance(LIVE_QUERY_MIN_INTERVAL - Duration::from_millis(10)).await;
    let again = c.value("ns", "so", "m").await.unwrap();
    assert_eq!((again.value, again.source), (1.0, ValueOrigin::Cache));
    tokio::time::advance(Duration::from_millis(20)).await;
    assert_eq!(c.value("ns", "so", "m").await.unwrap().value, 2.0);
    // Another metric, object or namespace is its own question.
    assert_eq!(c.value("ns", "so", "other").await.unwrap().value, 3.0);
    assert_eq!(c.value("ns2", "so", "m").await.unwrap().value, 4.0);
    assert_eq!(inner.calls.load(Ordering::SeqCst), 4);
}

#[tokio::test(start_paused = true)]
async fn scaler_errors_are_repeated_unknown_objects_are_asked_again() {
    let (inner, c) = setup(Duration::ZERO);
    let first = c.value("ns", "failing", "m").await;
    assert_eq!(c.value("ns", "failing", "m").await, first);
    assert_eq!(inner.calls.load(Ordering::SeqCst), 1);
    // The object may be created any moment: its absence is not repeated.
    assert!(c.value("ns", "gone", "m").await.is_err());
    assert!(c.value("ns", "gone", "m").await.is_err());
    assert_eq!(inner.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn a_question_whose_asker_went_away_is_answered_for_the_others() {
    let (inner, c) = setup(Duration::from_millis(500));
    let first = {
        let c = c.clone();
        tokio::spawn(async move { c.value("ns", "so", "m").await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = {
        let c = c.clone();
        tokio::spawn(async move { c.value("ns", "so", "m").await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    first.abort();
    let v = second.await.unwrap().unwrap();
    assert_eq!(v.value, 2.0, "the waiting question ran the query again");
    assert_eq!(inner.calls.load(Ordering::SeqCst), 2);
}

#[test]
fn the_table_is_pruned_of_stale_entries() {
    let (_, c) = setup(Duration::ZERO);
    {
        let mut entries = c.entries.lock().unwrap();
        for i in 0..PRUNE_ABOVE {
            let e = Entry::default();
            let _ = e.answer.set((Instant::now() - LIVE_QUERY_MIN_INTERVAL * 2, Err(ValueError::NotLeader)));
            entries.insert(("ns".into(), format!("so{i}"), "m".into()), Arc::new(e));
        }
    }
    let _ = c.entry(&("ns".into(), "new".into(), "m".into()));
    assert_eq!(c.entries.lock().unwrap().len(), 1);
}
