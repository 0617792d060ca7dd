//! Table tests of the scale-loop decision.

use chrono::TimeZone;

use super::*;

fn t(s: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::seconds(s)
}

fn spec(min: i32, idle: Option<i32>) -> LoopSpec {
    LoopSpec {
        min,
        max: 10,
        idle,
        cooldown: Duration::seconds(300),
        initial_cooldown: Duration::seconds(0),
        created: t(0),
        fallback_replicas: None,
    }
}

const ACTIVE: PollOutcome = PollOutcome { active: true, any_error: false, fallback_active: false };
const IDLE: PollOutcome = PollOutcome { active: false, any_error: false, fallback_active: false };
const FAILING: PollOutcome = PollOutcome { active: false, any_error: true, fallback_active: false };

#[test]
fn table() {
    let none = Guards::default();
    // (name, spec, last_active, now, current, poll, guards, want write, want event)
    type Case = (
        &'static str,
        LoopSpec,
        Option<i64>,
        i64,
        i32,
        PollOutcome,
        Guards,
        Option<i32>,
        Option<&'static str>,
    );
    let cases: Vec<Case> = vec![
        ("activate from zero", spec(0, None), None, 100, 0, ACTIVE, none, Some(1), Some(EVENT_ACTIVATED)),
        ("activate to min", spec(3, None), None, 100, 0, ACTIVE, none, Some(3), Some(EVENT_ACTIVATED)),
        ("activate from idle", spec(2, Some(0)), None, 100, 0, ACTIVE, none, Some(2), Some(EVENT_ACTIVATED)),
        ("active, HPA owns range", spec(0, None), None, 100, 4, ACTIVE, none, None, None),
        ("cooldown holds at exactly 300 s", spec(0, None), Some(100), 400, 1, IDLE, none, None, None),
        (
            "deactivate after cooldown",
            spec(0, None),
            Some(100),
            401,
            1,
            IDLE,
            none,
            Some(0),
            Some(EVENT_DEACTIVATED),
        ),
        (
            "deactivate to idle",
            spec(2, Some(0)),
            Some(100),
            500,
            2,
            IDLE,
            none,
            Some(0),
            Some(EVENT_DEACTIVATED),
        ),
        (
            "never active: scale to zero at once",
            spec(0, None),
            None,
            10,
            3,
            IDLE,
            none,
            Some(0),
            Some(EVENT_DEACTIVATED),
        ),
        ("min>0 without idle: HPA owns", spec(2, None), Some(0), 1000, 2, IDLE, none, None, None),
        ("below min without idle", spec(2, None), None, 1000, 0, IDLE, none, Some(2), None),
        ("errors never scale to zero", spec(0, None), Some(0), 1000, 3, FAILING, none, None, None),
        (
            "scale-in paused",
            spec(0, None),
            Some(0),
            1000,
            3,
            IDLE,
            Guards { scale_in_paused: true, scale_out_paused: false },
            None,
            None,
        ),
        (
            "scale-out paused",
            spec(0, None),
            None,
            10,
            0,
            ACTIVE,
            Guards { scale_in_paused: false, scale_out_paused: true },
            None,
            None,
        ),
    ];
    for (name, sp, last, now, current, poll, guards, write, event) in cases {
        let d = decide(&sp, last.map(t), t(now), current, poll, guards);
        assert_eq!(d.write, write, "{name}: {}", d.reason);
        assert_eq!(d.event, event, "{name}");
        if poll.active {
            assert_eq!(d.last_active, Some(t(now)), "{name}: active polls refresh lastActiveTime");
        } else {
            assert_eq!(d.last_active, last.map(t), "{name}: inactive polls keep lastActiveTime");
        }
    }
}

#[test]
fn initial_cooldown_delays_first_scale_to_zero() {
    let mut sp = spec(0, None);
    sp.initial_cooldown = Duration::seconds(120);
    assert_eq!(decide(&sp, None, t(120), 1, IDLE, Guards::default()).write, None);
    assert_eq!(decide(&sp, None, t(121), 1, IDLE, Guards::default()).write, Some(0));
}

#[test]
fn fallback_from_zero() {
    let mut sp = spec(0, None);
    sp.fallback_replicas = Some(4);
    let poll = PollOutcome { active: false, any_error: true, fallback_active: true };
    assert_eq!(decide(&sp, None, t(10), 0, poll, Guards::default()).write, Some(4));
    assert_eq!(
        decide(&sp, None, t(10), 2, poll, Guards::default()).write,
        None,
        "HPA applies fallback above zero"
    );
}
