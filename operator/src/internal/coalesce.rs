//! Bounds the work value questions cause: [`Coalesced`] wraps a [`ValueSource`] so that the
//! source is asked at most once per (namespace, ScaledObject, metric) per interval. Questions
//! arriving while the source answers wait for that answer; for the interval after it, the same
//! answer (a value, or a scaler error or time-out) is served again. Every question but the one
//! that ran the query gets a value marked `cache`. Answers that
//! depend on nothing but the object list (unknown object or metric, an internal failure) are
//! shared only with the questions that waited for them. Old entries are dropped as the table
//! grows, so its size follows the questions of one interval.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ebb_api::internal::{MetricValue, ValueError, ValueOrigin};
use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::ValueSource;

/// Least time between two questions to the source about one metric. Below the HPA controller's
/// 15-second sync period, so the HPA itself always gets a value measured for its question.
pub const LIVE_QUERY_MIN_INTERVAL: Duration = Duration::from_secs(2);

/// Entries kept before stale ones are dropped.
const PRUNE_ABOVE: usize = 1024;

type Key = (String, String, String);
type Answer = Result<MetricValue, ValueError>;

/// One question's answer, filled once by whichever asker runs the query.
#[derive(Default)]
struct Entry {
    answer: OnceCell<(Instant, Answer)>,
}

impl Entry {
    /// Whether a new question may use this entry: still being answered, or answered within
    /// `interval` with an answer worth repeating.
    fn usable(&self, interval: Duration) -> bool {
        match self.answer.get() {
            None => true,
            Some((at, answer)) => at.elapsed() < interval && repeatable(answer),
        }
    }
}

/// Values, scaler errors and time-outs describe the metric source and are repeated for the
/// interval; the other errors are not.
fn repeatable(answer: &Answer) -> bool {
    matches!(answer, Ok(_) | Err(ValueError::Scaler(_) | ValueError::Timeout(_)))
}

/// A [`ValueSource`] asking its inner source at most once per metric per interval.
pub struct Coalesced {
    inner: Arc<dyn ValueSource>,
    interval: Duration,
    entries: Mutex<HashMap<Key, Arc<Entry>>>,
}

impl std::fmt::Debug for Coalesced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalesced").field("interval", &self.interval).finish_non_exhaustive()
    }
}

impl Coalesced {
    pub fn new(inner: Arc<dyn ValueSource>, interval: Duration) -> Self {
        Self { inner, interval, entries: Mutex::default() }
    }

    /// The entry answering this question: the current one when usable, else a new one.
    fn entry(&self, key: &Key) -> Arc<Entry> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = entries.get(key).filter(|e| e.usable(self.interval)) {
            return e.clone();
        }
        if entries.len() >= PRUNE_ABOVE {
            entries.retain(|_, e| e.usable(self.interval));
        }
        let e = Arc::new(Entry::default());
        entries.insert(key.clone(), e.clone());
        e
    }
}

#[async_trait::async_trait]
impl ValueSource for Coalesced {
    async fn value(&self, namespace: &str, scaled_object: &str, metric: &str) -> Answer {
        let key = (namespace.to_owned(), scaled_object.to_owned(), metric.to_owned());
        let entry = self.entry(&key);
        let mut asked = false;
        let ran = &mut asked;
        // If the asker running the query goes away, a waiting one runs it instead.
        let (_, answer) = entry
            .answer
            .get_or_init(|| async move {
                *ran = true;
                (Instant::now(), self.inner.value(namespace, scaled_object, metric).await)
            })
            .await;
        match answer {
            Ok(v) if !asked => Ok(MetricValue { source: ValueOrigin::Cache, ..v.clone() }),
            other => other.clone(),
        }
    }

    fn is_leader(&self) -> bool {
        self.inner.is_leader()
    }
}

#[cfg(test)]
#[path = "coalesce_tests.rs"]
mod tests;
