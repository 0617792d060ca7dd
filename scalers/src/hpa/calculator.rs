//! The per-HPA state the controller keeps in memory between syncs (recommendation history and
//! scale events) and one sync over it: bounds, metric proposal, stabilization, rate limits.
//! The order of the steps is described in the parent module.

use chrono::{DateTime, TimeDelta, Utc};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerBehavior;
use serde::Serialize;

use super::behavior::{
    Behavior, BehaviorError, DEFAULT_SCALE_DOWN_STABILIZATION_SECONDS, PolicyType, ScalingRules, SelectPolicy,
};
use super::metrics::{MetricSample, MetricsProposal, Tolerances, propose};
use super::{Recommendation, reason};

/// A replica count with the time it was recorded: a raw recommendation, or the size of a scale
/// event (always positive; the direction is the list it is in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stamped {
    pub at: DateTime<Utc>,
    pub replicas: i32,
}

/// Which normalization the controller applies.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    /// `spec.behavior` is set: stabilization windows and rate policies.
    Behavior(Behavior),
    /// `spec.behavior` is absent: scale-down window only, scale-up capped at max(2 × current, 4).
    Legacy { downscale_window_seconds: i32 },
}

/// Floor of the legacy scale-up cap.
const LEGACY_SCALE_UP_MINIMUM: f64 = 4.0;
/// Factor of the legacy scale-up cap.
const LEGACY_SCALE_UP_FACTOR: f64 = 2.0;

/// State the HPA controller keeps in memory per HPA: recommendation history and scale events.
#[derive(Debug, Clone)]
pub struct HpaCalculator {
    min_replicas: i32,
    max_replicas: i32,
    mode: Mode,
    tolerances: Tolerances,
    recommendations: Vec<Stamped>,
    scale_up_events: Vec<Stamped>,
    scale_down_events: Vec<Stamped>,
}

impl HpaCalculator {
    /// An HPA with `spec.behavior` set (already defaulted, see [`Behavior::from_k8s`]).
    pub fn new(min_replicas: i32, max_replicas: i32, behavior: Behavior) -> Self {
        Self::with_mode(min_replicas, max_replicas, Mode::Behavior(behavior))
    }

    /// An HPA without `spec.behavior`: the controller then keeps only a 300 s scale-down
    /// window (inclusive of its start), caps a scale-up at max(2 × current, 4) and has no
    /// scale-down rate limit.
    pub fn without_behavior(min_replicas: i32, max_replicas: i32) -> Self {
        Self::with_mode(
            min_replicas,
            max_replicas,
            Mode::Legacy { downscale_window_seconds: DEFAULT_SCALE_DOWN_STABILIZATION_SECONDS },
        )
    }

    /// The calculator for an HPA spec: [`Self::without_behavior`] when `behavior` is `None`,
    /// otherwise [`Self::new`] with the defaulted behavior.
    pub fn from_k8s(
        min_replicas: i32,
        max_replicas: i32,
        behavior: Option<&HorizontalPodAutoscalerBehavior>,
    ) -> Result<Self, BehaviorError> {
        Ok(match behavior {
            None => Self::without_behavior(min_replicas, max_replicas),
            Some(b) => Self::new(min_replicas, max_replicas, Behavior::from_k8s(Some(b))?),
        })
    }

    /// Replaces the default tolerance band (0.1 both ways).
    pub fn with_tolerances(mut self, tolerances: Tolerances) -> Self {
        self.tolerances = tolerances;
        self
    }

    fn with_mode(min_replicas: i32, max_replicas: i32, mode: Mode) -> Self {
        Self {
            min_replicas,
            max_replicas,
            mode,
            tolerances: Tolerances::default(),
            recommendations: Vec::new(),
            scale_up_events: Vec::new(),
            scale_down_events: Vec::new(),
        }
    }

    pub fn min_replicas(&self) -> i32 {
        self.min_replicas
    }

    pub fn max_replicas(&self) -> i32 {
        self.max_replicas
    }

    /// The behavior in force; `None` for an HPA without `spec.behavior`.
    pub fn behavior(&self) -> Option<&Behavior> {
        match &self.mode {
            Mode::Behavior(b) => Some(b),
            Mode::Legacy { .. } => None,
        }
    }

    pub fn tolerances(&self) -> Tolerances {
        self.tolerances
    }

    /// Recorded raw recommendations (old entries are reused in place, so not in time order).
    pub fn recommendations(&self) -> &[Stamped] {
        &self.recommendations
    }

    /// Recorded scale-up events (replicas added).
    pub fn scale_up_events(&self) -> &[Stamped] {
        &self.scale_up_events
    }

    /// Recorded scale-down events (replicas removed).
    pub fn scale_down_events(&self) -> &[Stamped] {
        &self.scale_down_events
    }

    /// One controller sync at `now`. `current` = scale.spec.replicas, `ready` = ready pods
    /// (only Value targets use it). Records the recommendation and, when desired != current,
    /// the scale event, exactly as upstream.
    pub fn sync(
        &mut self,
        now: DateTime<Utc>,
        current: i32,
        ready: i32,
        metrics: &[MetricSample],
    ) -> Recommendation {
        if self.recommendations.is_empty() {
            self.recommendations.push(Stamped { at: now, replicas: current });
        }
        if current == 0 && self.min_replicas != 0 {
            return Recommendation::fixed(0, reason::SCALING_DISABLED);
        }
        if current > self.max_replicas {
            self.record_scale_event(now, current, self.max_replicas);
            return Recommendation::fixed(self.max_replicas, reason::TOO_MANY_REPLICAS);
        }
        if current < self.min_replicas {
            self.record_scale_event(now, current, self.min_replicas);
            return Recommendation::fixed(self.min_replicas, reason::TOO_FEW_REPLICAS);
        }
        let (proposal, metric) = match propose(metrics, current, ready, self.tolerances) {
            MetricsProposal::Valid { replicas, metric, .. } => (replicas.max(0), metric),
            MetricsProposal::Invalid { replicas, .. } => {
                return Recommendation {
                    desired: current,
                    reason: reason::FAILED_GET_EXTERNAL_METRIC.to_owned(),
                    proposal: replicas,
                    stabilized: None,
                    metric: None,
                };
            }
        };
        let (stabilized, stabilize_reason) = match &self.mode {
            Mode::Behavior(b) => {
                stabilize_with_behavior(&mut self.recommendations, b, now, current, proposal)
            }
            Mode::Legacy { downscale_window_seconds } => {
                stabilize_legacy(&mut self.recommendations, *downscale_window_seconds, now, proposal)
            }
        };
        let (desired, limit_reason) = match &self.mode {
            Mode::Behavior(b) => limit_with_behavior(
                LimitArgs {
                    now,
                    current,
                    desired: stabilized,
                    min: self.min_replicas,
                    max: self.max_replicas,
                },
                b,
                &self.scale_up_events,
                &self.scale_down_events,
            ),
            Mode::Legacy { .. } => limit_legacy(current, stabilized, self.min_replicas, self.max_replicas),
        };
        if desired != current {
            self.record_scale_event(now, current, desired);
        }
        let why = if desired != stabilized {
            limit_reason
        } else if stabilized != proposal {
            stabilize_reason
        } else {
            reason::DESIRED_WITHIN_RANGE
        };
        Recommendation {
            desired,
            reason: why.to_owned(),
            proposal: Some(proposal),
            stabilized: Some(stabilized),
            metric: Some(metric),
        }
    }

    /// Stores a scale event (only kept when `spec.behavior` is set), reusing the slot of one
    /// event older than the longest policy period of that direction.
    fn record_scale_event(&mut self, now: DateTime<Utc>, from: i32, to: i32) {
        let Mode::Behavior(b) = &self.mode else {
            return;
        };
        let (events, rules, change) = if to > from {
            (&mut self.scale_up_events, &b.scale_up, to.saturating_sub(from))
        } else {
            (&mut self.scale_down_events, &b.scale_down, from.saturating_sub(to))
        };
        let cutoff = before(now, rules.longest_period_seconds());
        let old = events.iter().rposition(|e| e.at < cutoff);
        put(events, old, Stamped { at: now, replicas: change });
    }
}

/// `now − seconds`, or the earliest representable instant if that underflows.
fn before(now: DateTime<Utc>, seconds: i32) -> DateTime<Utc> {
    now.checked_sub_signed(TimeDelta::seconds(i64::from(seconds))).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Overwrites slot `old` when given, else appends.
fn put(list: &mut Vec<Stamped>, old: Option<usize>, item: Stamped) {
    match old.and_then(|i| list.get_mut(i)) {
        Some(slot) => *slot = item,
        None => list.push(item),
    }
}

/// Stabilization with behavior: the current count moved into [lowest recommendation of the
/// scale-up window, highest of the scale-down window] (both windows include the new
/// proposal; a record counts when strictly newer than the window start). Records the proposal.
fn stabilize_with_behavior(
    recs: &mut Vec<Stamped>,
    b: &Behavior,
    now: DateTime<Utc>,
    current: i32,
    proposal: i32,
) -> (i32, &'static str) {
    let up_cutoff = before(now, b.scale_up.stabilization_window_seconds);
    let down_cutoff = before(now, b.scale_down.stabilization_window_seconds);
    let mut up = proposal;
    let mut down = proposal;
    let mut old = None;
    for (i, r) in recs.iter().enumerate() {
        if r.at > up_cutoff {
            up = up.min(r.replicas);
        }
        if r.at > down_cutoff {
            down = down.max(r.replicas);
        }
        if r.at < up_cutoff && r.at < down_cutoff {
            old = Some(i);
        }
    }
    let mut result = current;
    if result < up {
        result = up;
    }
    if result > down {
        result = down;
    }
    put(recs, old, Stamped { at: now, replicas: proposal });
    let why = if proposal >= current { reason::SCALE_UP_STABILIZED } else { reason::SCALE_DOWN_STABILIZED };
    (result, why)
}

/// Stabilization without behavior: the highest recommendation not older than the window start
/// (the start itself included) and the proposal. Records the proposal.
fn stabilize_legacy(
    recs: &mut Vec<Stamped>,
    window_seconds: i32,
    now: DateTime<Utc>,
    proposal: i32,
) -> (i32, &'static str) {
    let cutoff = before(now, window_seconds);
    let mut highest = proposal;
    let mut old = None;
    for (i, r) in recs.iter().enumerate() {
        if r.at < cutoff {
            old = Some(i);
        } else if r.replicas > highest {
            highest = r.replicas;
        }
    }
    put(recs, old, Stamped { at: now, replicas: proposal });
    (highest, reason::SCALE_DOWN_STABILIZED)
}

#[derive(Debug, Clone, Copy)]
struct LimitArgs {
    now: DateTime<Utc>,
    current: i32,
    desired: i32,
    min: i32,
    max: i32,
}

/// Rate limits with behavior, plus the [min, max] bounds: returns the count and the
/// limiting reason (`DesiredWithinRange` when nothing binds).
fn limit_with_behavior(
    a: LimitArgs,
    b: &Behavior,
    ups: &[Stamped],
    downs: &[Stamped],
) -> (i32, &'static str) {
    if a.desired > a.current {
        let limit = scale_up_limit(a.now, a.current, ups, downs, &b.scale_up).max(a.current);
        let (maximum, why) =
            if a.max > limit { (limit, reason::SCALE_UP_LIMIT) } else { (a.max, reason::TOO_MANY_REPLICAS) };
        if a.desired > maximum {
            return (maximum, why);
        }
    } else if a.desired < a.current {
        let limit = scale_down_limit(a.now, a.current, ups, downs, &b.scale_down).min(a.current);
        let (minimum, why) =
            if a.min < limit { (limit, reason::SCALE_DOWN_LIMIT) } else { (a.min, reason::TOO_FEW_REPLICAS) };
        if a.desired < minimum {
            return (minimum, why);
        }
    }
    (a.desired, reason::DESIRED_WITHIN_RANGE)
}

/// Bounds without behavior: [min, min(max, max(2 × current, 4))].
fn limit_legacy(current: i32, desired: i32, min: i32, max: i32) -> (i32, &'static str) {
    let cap = (LEGACY_SCALE_UP_FACTOR * f64::from(current)).max(LEGACY_SCALE_UP_MINIMUM) as i32;
    let (maximum, why) =
        if max > cap { (cap, reason::SCALE_UP_LIMIT) } else { (max, reason::TOO_MANY_REPLICAS) };
    if desired < min {
        (min, reason::TOO_FEW_REPLICAS)
    } else if desired > maximum {
        (maximum, why)
    } else {
        (desired, reason::DESIRED_WITHIN_RANGE)
    }
}

/// Replicas changed by the events strictly newer than `now − period_seconds`.
fn changed_within(events: &[Stamped], now: DateTime<Utc>, period_seconds: i32) -> i32 {
    let cutoff = before(now, period_seconds);
    events.iter().filter(|e| e.at > cutoff).fold(0i32, |acc, e| acc.saturating_add(e.replicas))
}

/// Replica count at the start of a policy's period: current minus what was added plus what
/// was removed within it.
fn period_start(now: DateTime<Utc>, current: i32, ups: &[Stamped], downs: &[Stamped], period: i32) -> i32 {
    current
        .saturating_sub(changed_within(ups, now, period))
        .saturating_add(changed_within(downs, now, period))
}

/// Highest count the scale-up policies allow now.
fn scale_up_limit(
    now: DateTime<Utc>,
    current: i32,
    ups: &[Stamped],
    downs: &[Stamped],
    rules: &ScalingRules,
) -> i32 {
    let (mut result, pick): (i32, fn(i32, i32) -> i32) = match rules.select_policy {
        SelectPolicy::Disabled => return current,
        SelectPolicy::Min => (i32::MAX, std::cmp::min),
        SelectPolicy::Max => (i32::MIN, std::cmp::max),
    };
    for p in &rules.policies {
        let start = period_start(now, current, ups, downs, p.period_seconds);
        let proposed = match p.type_ {
            PolicyType::Pods => start.saturating_add(p.value),
            PolicyType::Percent => (f64::from(start) * (1.0 + f64::from(p.value) / 100.0)).ceil() as i32,
        };
        result = pick(result, proposed);
    }
    result
}

/// Lowest count the scale-down policies allow now (a Percent limit is truncated toward zero).
fn scale_down_limit(
    now: DateTime<Utc>,
    current: i32,
    ups: &[Stamped],
    downs: &[Stamped],
    rules: &ScalingRules,
) -> i32 {
    let (mut result, pick): (i32, fn(i32, i32) -> i32) = match rules.select_policy {
        SelectPolicy::Disabled => return current,
        SelectPolicy::Min => (i32::MIN, std::cmp::max),
        SelectPolicy::Max => (i32::MAX, std::cmp::min),
    };
    for p in &rules.policies {
        let start = period_start(now, current, ups, downs, p.period_seconds);
        let proposed = match p.type_ {
            PolicyType::Pods => start.saturating_sub(p.value),
            PolicyType::Percent => (f64::from(start) * (1.0 - f64::from(p.value) / 100.0)) as i32,
        };
        result = pick(result, proposed);
    }
    result
}
