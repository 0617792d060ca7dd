//! The scale loop's decision after each poll (pure): activation 0→1 (or idle→min), deactivation
//! to 0 (or idle) after `cooldownPeriod` since the last active poll and past
//! `initialCooldownPeriod`, raising to min, fallback from zero, and the paused-scale-in/-out
//! guards. Between 1 and max the HPA decides; this function only covers what the HPA cannot.
//! It lives beside the HPA calculator so the operator and `ebb simulate` run the same rules.

use chrono::{DateTime, Duration, Utc};

/// Event reason when ebb scales a target up from zero or idle.
pub const EVENT_ACTIVATED: &str = "KEDAScaleTargetActivated";
/// Event reason when ebb scales a target down to zero or idle.
pub const EVENT_DEACTIVATED: &str = "KEDAScaleTargetDeactivated";

/// The parts of a ScaledObject the decision depends on.
#[derive(Clone, Debug, PartialEq)]
pub struct LoopSpec {
    pub min: i32,
    pub max: i32,
    pub idle: Option<i32>,
    pub cooldown: Duration,
    pub initial_cooldown: Duration,
    pub created: DateTime<Utc>,
    /// `fallback.replicas` when fallback is configured.
    pub fallback_replicas: Option<i32>,
}

impl LoopSpec {
    pub fn from_spec(spec: &ebb_api::ScaledObjectSpec, created: DateTime<Utc>) -> Self {
        Self {
            min: spec.min_replicas(),
            max: spec.max_replicas(),
            idle: spec.idle_replica_count,
            cooldown: Duration::seconds(i64::from(spec.cooldown_period())),
            initial_cooldown: Duration::seconds(i64::from(spec.initial_cooldown_period())),
            created,
            fallback_replicas: spec.fallback.as_ref().map(|f| f.replicas),
        }
    }

    /// Replicas when no trigger is active and the cooldown has passed, if ebb scales down at all.
    pub fn resting_replicas(&self) -> Option<i32> {
        match self.idle {
            Some(idle) => Some(idle),
            None if self.min == 0 => Some(0),
            None => None,
        }
    }

    /// Replicas ebb writes when activating: at least one, at least min.
    pub fn active_floor(&self) -> i32 {
        self.min.max(1).min(self.max.max(1))
    }
}

/// What the last poll found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PollOutcome {
    /// Some trigger is active (or activation is forced by annotation).
    pub active: bool,
    /// Some trigger failed to measure.
    pub any_error: bool,
    /// Fallback replicas are in force (some metric failed `failureThreshold` times).
    pub fallback_active: bool,
}

/// Direction guards from the paused-scale-in / paused-scale-out annotations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Guards {
    pub scale_in_paused: bool,
    pub scale_out_paused: bool,
}

/// What ebb does after a poll.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// New `/scale` replicas to write, if any.
    pub write: Option<i32>,
    /// Event reason to emit with the write.
    pub event: Option<&'static str>,
    /// `status.lastActiveTime` after this poll.
    pub last_active: Option<DateTime<Utc>>,
    /// One line explaining the decision.
    pub reason: String,
    /// When a cooldown holds the replicas, the instant it ends.
    pub hold_until: Option<DateTime<Utc>>,
}

/// Decides what to write after a poll at `now` with the target at `current` replicas.
pub fn decide(
    spec: &LoopSpec,
    last_active: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    current: i32,
    poll: PollOutcome,
    guards: Guards,
) -> Decision {
    let keep = |last_active, reason: String| Decision {
        write: None,
        event: None,
        last_active,
        reason,
        hold_until: None,
    };
    if poll.active {
        let floor = spec.active_floor();
        let below = current == 0 || spec.idle.is_some_and(|idle| current <= idle);
        if below && current < floor {
            if guards.scale_out_paused {
                return keep(Some(now), format!("active, but scale-out is paused; staying at {current}"));
            }
            return Decision {
                write: Some(floor),
                event: Some(EVENT_ACTIVATED),
                last_active: Some(now),
                reason: format!("active: scaling {current} → {floor}"),
                hold_until: None,
            };
        }
        return keep(
            Some(now),
            format!("active at {current} replicas; the HPA scales between {floor} and {}", spec.max),
        );
    }
    if poll.any_error {
        if let (true, Some(fb), 0) = (poll.fallback_active, spec.fallback_replicas, current)
            && fb > 0
            && !guards.scale_out_paused
        {
            return Decision {
                write: Some(fb),
                event: None,
                last_active,
                reason: format!("triggers failing past failureThreshold: scaling 0 → fallback {fb}"),
                hold_until: None,
            };
        }
        return keep(
            last_active,
            format!(
                "not active and some triggers failed: holding {current} (a failing source never scales to zero)"
            ),
        );
    }
    if let Some(rest) = spec.resting_replicas() {
        if current > rest {
            let initial_until = spec.created + spec.initial_cooldown;
            if now <= initial_until {
                let reason = format!("not active; initialCooldownPeriod holds {current}");
                return Decision { hold_until: Some(initial_until), ..keep(last_active, reason) };
            }
            if let Some(t) = last_active {
                let until = t + spec.cooldown;
                if now <= until {
                    let reason = format!("not active; cooldownPeriod holds {current}");
                    return Decision { hold_until: Some(until), ..keep(last_active, reason) };
                }
            }
            if guards.scale_in_paused {
                return keep(
                    last_active,
                    format!("not active, but scale-in is paused; staying at {current}"),
                );
            }
            return Decision {
                write: Some(rest),
                event: Some(EVENT_DEACTIVATED),
                last_active,
                reason: format!("not active past cooldown: scaling {current} → {rest}"),
                hold_until: None,
            };
        }
        return keep(last_active, format!("not active; at {current} replicas"));
    }
    if current < spec.min && !guards.scale_out_paused {
        return Decision {
            write: Some(spec.min),
            event: None,
            last_active,
            reason: format!("below minReplicaCount: scaling {current} → {}", spec.min),
            hold_until: None,
        };
    }
    keep(last_active, format!("not active; the HPA keeps {current} within [{}, {}]", spec.min, spec.max))
}

#[cfg(test)]
mod tests;
