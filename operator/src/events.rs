//! The operator's event recorder: kube-runtime's [`Recorder`] (which turns a repeated event into
//! an `events.k8s.io` series, counted, instead of a new Event object), with its memory bounded.
//!
//! kube's recorder remembers every event it published, to find the series of a repeat, and
//! forgets old ones only when it publishes again: after 10,000 ScaledObjects each recorded
//! `ScaledObjectReady` and `KEDAScalersStarted` at start, 20,000 events stayed in memory for
//! good. Here the recorder is replaced by a fresh one (an empty memory) after
//! [`MAX_REMEMBERED`] publications or [`MAX_AGE`], whichever comes first — client-go's recorder,
//! which KEDA uses, likewise remembers a bounded number of events (4,096; each remembered event
//! of kube's recorder holds about 1.5 KB, hence fewer here). A repeat after the replacement
//! starts a new Event instead of counting in the old series.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, Recorder, Reporter};

/// Publications one recorder remembers before it is replaced.
pub const MAX_REMEMBERED: u32 = 1024;
/// Age after which a recorder is replaced (kube's recorder forgets events of 6 minutes ago).
pub const MAX_AGE: Duration = Duration::from_secs(6 * 60);

/// A [`Recorder`] whose memory of published events is bounded.
pub struct EventRecorder {
    client: Client,
    reporter: Reporter,
    current: Mutex<Generation>,
}

struct Generation {
    recorder: Recorder,
    since: Instant,
    published: u32,
}

impl EventRecorder {
    /// Publishes through `client` as `reporter`.
    pub fn new(client: Client, reporter: Reporter) -> Self {
        let current = Mutex::new(Generation::new(&client, &reporter));
        Self { client, reporter, current }
    }

    /// The recorder to publish the next event with (a fresh one when the current one remembered
    /// enough or is old).
    fn recorder(&self) -> Recorder {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if current.published >= MAX_REMEMBERED || current.since.elapsed() >= MAX_AGE {
            *current = Generation::new(&self.client, &self.reporter);
        }
        current.published += 1;
        current.recorder.clone()
    }

    /// Publishes `ev` about `reference` (a repeat within the current recorder's memory counts in
    /// its series).
    pub async fn publish(&self, ev: &Event, reference: &ObjectReference) -> Result<(), kube::Error> {
        self.recorder().publish(ev, reference).await
    }

    /// Replaces a recorder older than [`MAX_AGE`], so its memory goes even when nothing is
    /// published any more; called periodically.
    pub fn expire(&self) {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if current.published > 0 && current.since.elapsed() >= MAX_AGE {
            *current = Generation::new(&self.client, &self.reporter);
        }
    }

    /// Publications made through the current recorder (for tests).
    pub fn remembered(&self) -> u32 {
        self.current.lock().unwrap_or_else(PoisonError::into_inner).published
    }
}

impl Generation {
    fn new(client: &Client, reporter: &Reporter) -> Self {
        Self {
            recorder: Recorder::new(client.clone(), reporter.clone()),
            since: Instant::now(),
            published: 0,
        }
    }
}

impl std::fmt::Debug for EventRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventRecorder").field("reporter", &self.reporter).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use kube::runtime::events::EventType;

    use super::*;

    /// A client whose API accepts every request with `{}` (an Event), counting creates and patches.
    fn api() -> (Client, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let (creates, patches) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (c, p) = (creates.clone(), patches.clone());
        let svc = tower::service_fn(move |req: http::Request<kube::client::Body>| {
            let counter = if req.method() == http::Method::POST { &c } else { &p };
            counter.fetch_add(1, Ordering::SeqCst);
            async {
                Ok::<_, std::convert::Infallible>(
                    http::Response::builder()
                        .status(200)
                        .body(kube::client::Body::from(br#"{"metadata":{}}"#.to_vec()))
                        .unwrap(),
                )
            }
        });
        (Client::new(svc, "apps"), creates, patches)
    }

    fn reference(name: &str) -> ObjectReference {
        ObjectReference { name: Some(name.into()), namespace: Some("apps".into()), ..Default::default() }
    }

    fn event() -> Event {
        Event {
            type_: EventType::Normal,
            reason: "ScaledObjectReady".into(),
            note: Some("ScaledObject is ready for scaling".into()),
            action: "ScaledObjectReady".into(),
            secondary: None,
        }
    }

    #[tokio::test]
    async fn a_repeat_counts_in_its_series_and_memory_is_bounded() {
        let (client, creates, patches) = api();
        let r = EventRecorder::new(client, Reporter { controller: "ebb".into(), instance: None });
        r.publish(&event(), &reference("a")).await.unwrap();
        r.publish(&event(), &reference("a")).await.unwrap();
        assert_eq!((creates.load(Ordering::SeqCst), patches.load(Ordering::SeqCst)), (1, 1), "one series");
        for i in 0..MAX_REMEMBERED {
            r.publish(&event(), &reference(&format!("o-{i}"))).await.unwrap();
        }
        assert!(r.remembered() <= MAX_REMEMBERED, "{} remembered", r.remembered());
        assert!(r.remembered() < 10, "replaced after {MAX_REMEMBERED} publications: {}", r.remembered());
    }
}
