//! The leader label on this replica's own Pod: `ebb.keda.sh/leader: "true"` while the replica
//! leads (serves metric values), absent otherwise. Service `ebb-operator` selects it, so the
//! metrics API server's connections to the internal metrics service reach the leader only.
//!
//! A task follows the leadership channel and merge-patches the Pod (namespace
//! `--operator-namespace`, name `--pod-name`): it first removes a label a previous process may
//! have left, sets it after leadership is acquired, removes it when leadership is lost, and on
//! shutdown removes it before the election releases the Lease (the election waits for
//! [`PodLabel::finished`]). A failed patch (Pod not found, not allowed, API unreachable) is
//! logged once as a warning saying what to fix, then retried with backoff; it never stops the
//! operator.

use std::future::Future;
use std::time::Duration;

use ebb_plumbing::backoff::Backoff;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use tokio::sync::watch;

/// Label carried by the leading replica's Pod (value [`LEADER_VALUE`]).
pub const LEADER_LABEL: &str = "ebb.keda.sh/leader";

/// Value of [`LEADER_LABEL`] on the leader's Pod.
pub const LEADER_VALUE: &str = "true";

/// First pause after a failed patch; doubled after each further failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Longest pause between two patch attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Bound on one patch request.
const PATCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Which Pod to label, and how long shutdown may wait for the label's removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodLabelConfig {
    /// Namespace of the Pod (the operator's namespace).
    pub namespace: String,
    /// Name of this replica's Pod.
    pub pod: String,
    /// Bound on removing the label at shutdown (the Lease is released after it).
    pub stop_timeout: Duration,
}

/// The running label task. Dropping it stops the task.
#[derive(Debug)]
pub struct PodLabel {
    task: tokio::task::JoinHandle<()>,
    done: watch::Receiver<bool>,
}

impl PodLabel {
    /// Starts keeping the label of `cfg.pod` in line with `leader` until `shutdown` completes
    /// (or the channel's sender goes), then removes it.
    pub fn spawn(
        client: kube::Client,
        cfg: PodLabelConfig,
        leader: watch::Receiver<bool>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Self {
        let (done_tx, done) = watch::channel(false);
        let labeller = Labeller::new(Api::namespaced(client, &cfg.namespace), cfg);
        let task = tokio::spawn(async move {
            labeller.run(leader, shutdown).await;
            done_tx.send_replace(true);
        });
        Self { task, done }
    }

    /// Completes once the task has removed the label after shutdown (or given up on it), or
    /// has ended in any other way.
    pub fn finished(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut done = self.done.clone();
        async move {
            let _ = done.wait_for(|d| *d).await;
        }
    }
}

impl Drop for PodLabel {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The merge patch setting (`leading`) or removing the leader label.
pub fn label_patch(leading: bool) -> serde_json::Value {
    let value = if leading { json!(LEADER_VALUE) } else { serde_json::Value::Null };
    json!({"metadata": {"labels": {LEADER_LABEL: value}}})
}

struct Labeller {
    api: Api<Pod>,
    cfg: PodLabelConfig,
    /// What the Pod's label was last patched to (`None`: not yet known).
    applied: Option<bool>,
    /// Whether the current run of failures has been reported.
    warned: bool,
}

impl Labeller {
    fn new(api: Api<Pod>, cfg: PodLabelConfig) -> Self {
        Self { api, cfg, applied: None, warned: false }
    }

    async fn run(mut self, mut leader: watch::Receiver<bool>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
        loop {
            let want = *leader.borrow_and_update();
            let pause = if self.applied == Some(want) {
                None
            } else {
                let attempt = tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    ok = self.set(want) => ok,
                };
                if attempt {
                    backoff.reset();
                    None
                } else {
                    Some(backoff.next_pause())
                }
            };
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                changed = leader.changed() => if changed.is_err() { break },
                () = sleep_or_forever(pause) => {}
            }
        }
        if self.applied != Some(false)
            && tokio::time::timeout(self.cfg.stop_timeout, self.set(false)).await.is_err()
        {
            tracing::warn!(
                pod = %self.cfg.pod, namespace = %self.cfg.namespace, label = LEADER_LABEL,
                "could not remove the leader label before stopping (timed out); Service ebb-operator may route to this Pod until it is gone"
            );
        }
    }

    /// Patches the label to `leading`; whether it worked.
    async fn set(&mut self, leading: bool) -> bool {
        let patch = Patch::Merge(label_patch(leading));
        let result = tokio::time::timeout(
            PATCH_TIMEOUT,
            self.api.patch(&self.cfg.pod, &PatchParams::default(), &patch),
        )
        .await;
        let (pod, namespace) = (&self.cfg.pod, &self.cfg.namespace);
        match result {
            Ok(Ok(_)) => {
                self.applied = Some(leading);
                if std::mem::take(&mut self.warned) {
                    tracing::info!(%pod, %namespace, label = LEADER_LABEL, leading, "leader label patched again");
                } else {
                    tracing::debug!(%pod, %namespace, label = LEADER_LABEL, leading, "leader label patched");
                }
                true
            }
            Ok(Err(e)) => {
                self.report(leading, &hint(&e, namespace, pod));
                false
            }
            Err(_) => {
                self.report(leading, &format!("no answer from the API server within {PATCH_TIMEOUT:?}"));
                false
            }
        }
    }

    /// Logs a failure: a warning the first time in a run of failures, then at debug level.
    fn report(&mut self, leading: bool, why: &str) {
        let action = if leading { "set" } else { "remove" };
        let (pod, namespace) = (&self.cfg.pod, &self.cfg.namespace);
        if std::mem::replace(&mut self.warned, true) {
            tracing::debug!(%pod, %namespace, label = LEADER_LABEL, "cannot {action} the leader label: {why}");
        } else {
            tracing::warn!(
                %pod, %namespace, label = LEADER_LABEL,
                "cannot {action} the leader label on this replica's Pod (Service ebb-operator routes to the labelled Pod); retrying with backoff: {why}"
            );
        }
    }
}

/// What a failed patch means and what to fix.
fn hint(e: &kube::Error, namespace: &str, pod: &str) -> String {
    match e {
        kube::Error::Api(status) if status.is_not_found() => format!(
            "Pod {namespace}/{pod} does not exist: --pod-name (POD_NAME) must name this replica's own Pod \
             (downward API metadata.name) and --operator-namespace (POD_NAMESPACE) its namespace; \
             leave POD_NAME unset outside a cluster"
        ),
        kube::Error::Api(status) if status.is_forbidden() => format!(
            "not allowed to patch Pod {namespace}/{pod}: grant the operator's ServiceAccount the verbs get and \
             patch on pods in namespace {namespace} (a Role): {}",
            status.message
        ),
        other => format!("patching Pod {namespace}/{pod} failed: {other}"),
    }
}

async fn sleep_or_forever(pause: Option<Duration>) {
    match pause {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_set_and_remove_the_label() {
        assert_eq!(label_patch(true), json!({"metadata": {"labels": {"ebb.keda.sh/leader": "true"}}}));
        assert_eq!(label_patch(false), json!({"metadata": {"labels": {"ebb.keda.sh/leader": null}}}));
    }

    #[test]
    fn hints_say_what_to_fix() {
        let status = |code: u16, reason: &str| {
            kube::Error::Api(Box::new(kube::core::Status {
                code,
                reason: reason.into(),
                message: "denied".into(),
                ..Default::default()
            }))
        };
        let missing = hint(&status(404, "NotFound"), "keda", "op-1");
        assert!(
            missing.contains("Pod keda/op-1 does not exist") && missing.contains("POD_NAME"),
            "{missing}"
        );
        let forbidden = hint(&status(403, "Forbidden"), "keda", "op-1");
        assert!(forbidden.contains("get and patch on pods in namespace keda"), "{forbidden}");
        let other = hint(&status(500, "InternalError"), "keda", "op-1");
        assert!(other.starts_with("patching Pod keda/op-1 failed"), "{other}");
    }
}
