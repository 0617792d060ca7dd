//! Watches: a chunked stream of `{"type", "object"}` JSON lines. Without a resourceVersion
//! (or "0") the current objects come first as ADDED; with one, the stream resumes after it
//! from the store's history, or sends one ERROR event with a 410 `Expired` Status when that
//! version has been compacted, as kube-apiserver does. Streaming lists (`sendInitialEvents`,
//! see `list_options`) send the current objects whatever the resourceVersion and close them
//! with the annotated bookmark. Selectors filter events, and an object moving out of (into) a
//! label selection is sent as DELETED (ADDED). Bookmarks are sent when asked for;
//! `timeoutSeconds` ends the stream.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{Response, header};
use ebb_api::label_selector::LabelSelector;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::control::{ControlPlane, ListOptions, as_served};
use crate::field_selector::FieldSelector;
use crate::list_options::{self, Start};
use crate::meta;
use crate::resources::Resource;
use crate::status::ApiError;
use crate::store::{Event, EventType};

/// How often bookmarks are sent when `allowWatchBookmarks=true`.
pub const BOOKMARK_INTERVAL: Duration = Duration::from_secs(5);

struct Filter {
    res: Resource,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    fn in_scope(&self, ev: &Event) -> bool {
        ev.key.0 == self.res.group
            && ev.key.1 == self.res.plural
            && self.namespace.as_ref().is_none_or(|ns| ev.key.2 == *ns)
    }
    fn selected(&self, obj: &Value) -> bool {
        self.labels.matches(&meta::labels(obj)) && self.fields.matches(obj)
    }
    /// The event as this watcher sees it, if at all.
    fn view(&self, ev: &Event) -> Option<(EventType, Value)> {
        if !self.in_scope(ev) {
            return None;
        }
        let now = self.selected(&ev.object);
        let before = ev.prev.as_ref().is_some_and(|p| self.selected(p));
        let t = match (ev.type_, before, now) {
            (EventType::Deleted, _, true) | (EventType::Deleted, true, _) => EventType::Deleted,
            (EventType::Deleted, false, false) => return None,
            (_, false, true) => EventType::Added,
            (_, true, true) => ev.type_,
            (_, true, false) => EventType::Deleted,
            (_, false, false) => return None,
        };
        Some((t, as_served(&self.res, &ev.object)))
    }
}

fn line(type_: &str, object: &Value) -> Bytes {
    let mut s = serde_json::to_vec(&json!({"type": type_, "object": object})).unwrap_or_default();
    s.push(b'\n');
    Bytes::from(s)
}

/// Starts a watch and returns the streaming response.
pub fn serve(
    cp: Arc<ControlPlane>,
    res: Resource,
    namespace: Option<String>,
    opts: ListOptions,
    q: &BTreeMap<String, String>,
    drop_now: bool,
) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let labels = LabelSelector::parse(opts.label_selector.as_deref().unwrap_or_default());
    let fields = FieldSelector::parse(opts.field_selector.as_deref().unwrap_or_default());
    let (labels, fields) = match (labels, fields) {
        (Ok(l), Ok(f)) => (l, f),
        (Err(e), _) => return crate::server::error_response(&ApiError::bad_request(e.to_string())),
        (_, Err(e)) => return crate::server::error_response(&ApiError::bad_request(e.to_string())),
    };
    let namespace = if res.namespaced { namespace } else { None };
    let filter = Filter { res, namespace, labels, fields };
    let start = list_options::watch_start(q);
    let bookmarks = list_options::query_bool(q, "allowWatchBookmarks").unwrap_or(false);
    let timeout = q.get("timeoutSeconds").and_then(|t| t.parse::<u64>().ok()).unwrap_or(1800).min(1800);
    if !drop_now {
        tokio::spawn(run(cp, filter, start, bookmarks, Duration::from_secs(timeout), tx));
    }
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::TRANSFER_ENCODING, "chunked")
        .body(Body::from_stream(stream))
        .unwrap_or_default()
}

async fn run(
    cp: Arc<ControlPlane>,
    f: Filter,
    start: Start,
    bookmarks: bool,
    timeout: Duration,
    tx: mpsc::Sender<Bytes>,
) {
    let mut last_rv;
    let since = match start {
        Start::Initial { .. } => None,
        Start::Now => Some(cp.store.current_rv()),
        Start::Since(rv) => Some(rv),
    };
    let mut rx: broadcast::Receiver<Arc<Event>> = match since {
        None => {
            let (items, rv, rx) =
                cp.store.list_and_watch(&f.res.group, &f.res.plural, f.namespace.as_deref());
            if let Start::Initial { not_older_than: Some(wanted), .. } = start
                && wanted > rv
            {
                // kube-apiserver waits a few seconds for its cache to catch up, then gives up
                // like this; the store is never behind, so the answer comes at once.
                let _ = tx.send(line("ERROR", &too_large(wanted, rv))).await;
                return;
            }
            for (_, obj) in items {
                if f.selected(&obj) && tx.send(line("ADDED", &as_served(&f.res, &obj))).await.is_err() {
                    return;
                }
            }
            if let Start::Initial { end_bookmark: true, .. } = start {
                let end = list_options::initial_events_end(&f.res.api_version(), &f.res.kind, rv);
                if tx.send(line("BOOKMARK", &end)).await.is_err() {
                    return;
                }
            }
            last_rv = rv;
            rx
        }
        Some(rv) => match cp.store.watch_since(&f.res.group, &f.res.plural, rv) {
            Ok((backlog, rx)) => {
                last_rv = rv;
                for ev in backlog {
                    last_rv = ev.rv;
                    if let Some((t, obj)) = f.view(&ev)
                        && tx.send(line(t.as_str(), &obj)).await.is_err()
                    {
                        return;
                    }
                }
                rx
            }
            Err(gone) => {
                let e =
                    ApiError::gone(format!("too old resource version: {} ({})", gone.requested, gone.oldest));
                let _ = tx.send(line("ERROR", &e.to_status())).await;
                return;
            }
        },
    };
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut tick = tokio::time::interval(BOOKMARK_INTERVAL);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = &mut deadline => return,
            _ = tick.tick(), if bookmarks => {
                let bm = json!({"kind": f.res.kind, "apiVersion": f.res.api_version(), "metadata": {"resourceVersion": last_rv.to_string()}});
                if tx.send(line("BOOKMARK", &bm)).await.is_err() { return; }
            }
            ev = rx.recv() => match ev {
                Ok(ev) => {
                    if ev.rv <= last_rv { continue; }
                    last_rv = ev.rv;
                    if let Some((t, obj)) = f.view(&ev)
                        && tx.send(line(t.as_str(), &obj)).await.is_err() { return; }
                }
                // A watcher too slow for the broadcast buffer is cut off; the client resumes
                // from its last resource version, as after any dropped connection.
                Err(_) => return,
            },
            () = tx.closed() => return,
        }
    }
}

/// The Status of the ERROR event for a streaming list asking for a version not reached yet.
fn too_large(wanted: u64, current: u64) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("Timeout: Too large resource version: {wanted}, current: {current}"),
        "reason": "Timeout",
        "details": {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1},
        "code": 504,
    })
}
