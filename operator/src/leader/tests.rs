use ebb_sandbox::faults::{FaultAction, FaultRule};
use ebb_sandbox::sandbox::{Config, Sandbox};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::*;

const NS: &str = "default";
const LEASE: &str = "ebb-operator";
const LEASE_DURATION: Duration = Duration::from_secs(2);
const RENEW_DEADLINE: Duration = Duration::from_millis(1200);
const RETRY: Duration = Duration::from_millis(200);
/// Allowance for API round trips and scheduling on a loaded machine.
const SLACK: Duration = Duration::from_millis(600);

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn spec(holder: Option<&str>, renew: Option<&str>, seconds: Option<i32>) -> LeaseSpec {
    LeaseSpec {
        holder_identity: holder.map(str::to_string),
        renew_time: renew.map(|r| MicroTime(ts(r))),
        lease_duration_seconds: seconds,
        ..LeaseSpec::default()
    }
}

#[test]
fn decisions() {
    let now = ts("2025-01-01T00:00:10Z");
    let table: Vec<(&str, LeaseSpec, Decision)> = vec![
        ("no holder", spec(None, Some("2025-01-01T00:00:09Z"), Some(15)), Decision::TakeOver),
        ("empty holder", spec(Some(""), Some("2025-01-01T00:00:09Z"), Some(15)), Decision::TakeOver),
        ("mine, even if expired", spec(Some("me"), Some("2024-01-01T00:00:00Z"), Some(15)), Decision::Renew),
        (
            "other, fresh",
            spec(Some("b"), Some("2025-01-01T00:00:00Z"), Some(15)),
            Decision::Follow("b".into()),
        ),
        (
            "other, expires exactly now",
            spec(Some("b"), Some("2025-01-01T00:00:05Z"), Some(5)),
            Decision::Follow("b".into()),
        ),
        ("other, expired", spec(Some("b"), Some("2025-01-01T00:00:04.999Z"), Some(5)), Decision::TakeOver),
        (
            "other, record's duration wins",
            spec(Some("b"), Some("2025-01-01T00:00:08Z"), Some(1)),
            Decision::TakeOver,
        ),
        (
            "other, default duration",
            spec(Some("b"), Some("2025-01-01T00:00:08Z"), None),
            Decision::Follow("b".into()),
        ),
        ("other, no times", spec(Some("b"), None, Some(15)), Decision::TakeOver),
    ];
    for (name, spec, want) in table {
        assert_eq!(decide(&spec, "me", now, 3), want, "{name}");
    }
}

#[test]
fn lease_seconds_round_up() {
    for (d, want) in [(0, 1), (500, 1), (1000, 1), (1500, 2), (15_000, 15)] {
        assert_eq!(lease_seconds(Duration::from_millis(d)), want, "{d} ms");
    }
}

#[test]
fn normalization_orders_timings() {
    let ok = cfg("a");
    assert_eq!(ok.clone().normalized(), ok);
    let bad = LeaderConfig {
        renew_deadline: Duration::from_secs(5),
        retry_period: Duration::from_secs(9),
        ..cfg("a")
    };
    let fixed = bad.normalized();
    assert!(fixed.renew_deadline < LEASE_DURATION, "{fixed:?}");
    assert!(fixed.retry_period < fixed.renew_deadline, "{fixed:?}");
    assert_eq!(LeaderConfig::new("ns", "l", "me").lease_duration, Duration::from_secs(15));
}

fn cfg(identity: &str) -> LeaderConfig {
    LeaderConfig {
        namespace: NS.into(),
        name: LEASE.into(),
        identity: identity.into(),
        lease_duration: LEASE_DURATION,
        renew_deadline: RENEW_DEADLINE,
        retry_period: RETRY,
        annotations: Default::default(),
    }
}

async fn sandbox() -> (Sandbox, kube::Client) {
    let sb = Sandbox::start(Config { controllers: false, ..Config::default() }).await.unwrap();
    let kc = kube::config::Kubeconfig::from_yaml(&sb.kubeconfig()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
    (sb, kube::Client::try_from(config).unwrap())
}

struct Candidate {
    rx: watch::Receiver<bool>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Candidate {
    fn start(client: &kube::Client, identity: &str) -> Self {
        let (tx, rx) = watch::channel(false);
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(run(client.clone(), cfg(identity), tx, shutdown));
        Self { rx, stop: Some(stop), task }
    }

    fn leading(&self) -> bool {
        *self.rx.borrow()
    }

    /// Waits until the published leadership equals `want`; returns how long that took.
    async fn wait_for(&mut self, want: bool, within: Duration) -> Duration {
        let start = Instant::now();
        tokio::time::timeout(within, self.rx.wait_for(|v| *v == want))
            .await
            .unwrap_or_else(|_| panic!("leadership did not become {want} within {within:?}"))
            .unwrap();
        start.elapsed()
    }

    async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(RENEW_DEADLINE + SLACK, self.task).await.unwrap().unwrap();
    }
}

async fn lease(client: &kube::Client) -> LeaseSpec {
    Api::<Lease>::namespaced(client.clone(), NS).get(LEASE).await.unwrap().spec.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_candidate_leads_renews_and_releases() {
    let (_sb, client) = sandbox().await;
    let mut a = Candidate::start(&client, "a");
    a.wait_for(true, RETRY + SLACK).await;

    let first = lease(&client).await;
    assert_eq!(first.holder_identity.as_deref(), Some("a"));
    assert_eq!(first.lease_transitions, Some(0));
    assert_eq!(first.lease_duration_seconds, Some(2));
    assert!(first.acquire_time.is_some());
    tokio::time::sleep(RETRY * 3).await;
    let later = lease(&client).await;
    assert!(later.renew_time > first.renew_time, "renewTime did not advance: {first:?} -> {later:?}");
    assert_eq!(later.acquire_time, first.acquire_time);
    assert!(a.leading());

    let rx = a.rx.clone();
    a.shutdown().await;
    assert!(!*rx.borrow());
    let released = lease(&client).await;
    assert_eq!(released.holder_identity.as_deref().unwrap_or_default(), "");
    assert_eq!(released.lease_duration_seconds, Some(1));
    assert_eq!(released.lease_transitions, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_candidates_never_lead_together() {
    let (_sb, client) = sandbox().await;
    let a = Candidate::start(&client, "a");
    let b = Candidate::start(&client, "b");
    let start = Instant::now();
    while a.leading() == b.leading() {
        assert!(start.elapsed() < RETRY + SLACK, "no leader elected");
        assert!(!(a.leading() && b.leading()), "both lead");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let leader = if a.leading() { "a" } else { "b" };
    for _ in 0..60 {
        let (la, lb) = (a.leading(), b.leading());
        assert!(la ^ lb, "a={la} b={lb}: exactly one must lead");
        assert_eq!(if la { "a" } else { "b" }, leader, "leadership moved without a failure");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(lease(&client).await.holder_identity.as_deref(), Some(leader));
    assert_eq!(lease(&client).await.lease_transitions, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_takes_over_after_leader_dies() {
    let (_sb, client) = sandbox().await;
    let mut a = Candidate::start(&client, "a");
    a.wait_for(true, RETRY + SLACK).await;
    let mut b = Candidate::start(&client, "b");
    // b respects a's live lease for longer than a lease duration.
    tokio::time::sleep(LEASE_DURATION + RETRY * 2).await;
    assert!(!b.leading());
    assert_eq!(lease(&client).await.holder_identity.as_deref(), Some("a"));

    a.task.abort();
    let took = b.wait_for(true, LEASE_DURATION + RETRY + SLACK).await;
    assert!(took >= LEASE_DURATION - RETRY * 2, "took over after {took:?}, before the lease expired");
    let spec = lease(&client).await;
    assert_eq!(spec.holder_identity.as_deref(), Some("b"));
    assert_eq!(spec.lease_transitions, Some(1));
    assert_eq!(spec.acquire_time, spec.renew_time);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_hands_over_at_once() {
    let (_sb, client) = sandbox().await;
    let mut a = Candidate::start(&client, "a");
    a.wait_for(true, RETRY + SLACK).await;
    let mut b = Candidate::start(&client, "b");
    tokio::time::sleep(RETRY * 3).await;
    assert!(!b.leading());

    let released = Instant::now();
    a.shutdown().await;
    b.wait_for(true, RETRY + SLACK).await;
    assert!(released.elapsed() < LEASE_DURATION, "waited for expiry instead of the release");
    let spec = lease(&client).await;
    assert_eq!(spec.holder_identity.as_deref(), Some("b"));
    assert_eq!(spec.lease_transitions, Some(1));
    assert_eq!(spec.lease_duration_seconds, Some(2));
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_holder_ends_leadership_at_once() {
    let (_sb, client) = sandbox().await;
    let mut a = Candidate::start(&client, "a");
    a.wait_for(true, RETRY + SLACK).await;

    // Another holder writes a fresh lease (as a replica with a skewed clock might).
    let api = Api::<Lease>::namespaced(client.clone(), NS);
    let mut stolen = api.get(LEASE).await.unwrap();
    let spec = stolen.spec.as_mut().unwrap();
    spec.holder_identity = Some("intruder".into());
    spec.renew_time = Some(MicroTime(Timestamp::now()));
    spec.lease_transitions = Some(1);
    api.replace(LEASE, &PostParams::default(), &stolen).await.unwrap();
    let lost = a.wait_for(false, RETRY + SLACK).await;
    assert!(lost < RETRY + SLACK);

    // The intruder never renews: once its lease expires, a takes it back.
    a.wait_for(true, LEASE_DURATION + RETRY + SLACK).await;
    let spec = lease(&client).await;
    assert_eq!(spec.holder_identity.as_deref(), Some("a"));
    assert_eq!(spec.lease_transitions, Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_renewals_step_down_after_renew_deadline() {
    let (sb, client) = sandbox().await;
    let mut a = Candidate::start(&client, "a");
    a.wait_for(true, RETRY + SLACK).await;

    sb.cp.faults.add(FaultRule {
        method: Some("PUT".into()),
        path: format!("/leases/{LEASE}"),
        action: FaultAction::Fail(500),
        remaining: None,
    });
    let lost = a.wait_for(false, RENEW_DEADLINE + SLACK).await;
    assert!(lost >= RENEW_DEADLINE - RETRY * 2, "stepped down after {lost:?}, before the renew deadline");

    // Once the API server accepts writes again, a renews its own (still recorded) lease.
    sb.cp.faults.clear();
    a.wait_for(true, RETRY + SLACK).await;
    let spec = lease(&client).await;
    assert_eq!(spec.holder_identity.as_deref(), Some("a"));
    assert_eq!(spec.lease_transitions, Some(0));
}
