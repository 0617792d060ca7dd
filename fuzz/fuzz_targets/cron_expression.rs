//! Cron expressions (`scalers::cron::schedule`): parsing of the start and end expressions, the
//! next fire time and the window rule in any IANA time zone at any instant the scaler can see.
//! Properties: no panic, bounded time (libFuzzer's `-timeout`), and a next fire time lies
//! strictly after the instant asked.
#![no_main]

use arbitrary::Arbitrary;
use chrono::{DateTime, Utc};
use chrono_tz::TZ_VARIANTS;
use ebb_scalers::cron::schedule::{Schedule, next_transition, window_open};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    start: String,
    end: String,
    zone: u16,
    /// Seconds after 1900-01-01; folded into 1900..2200 so the search's year limits are crossed.
    seconds: u64,
}

/// 1900-01-01T00:00:00Z.
const EARLIEST: i64 = -2_208_988_800;
/// 300 years of seconds.
const SPAN: u64 = 300 * 366 * 86_400;

fuzz_target!(|input: Input| {
    let Ok(start) = Schedule::parse(&input.start) else { return };
    let tz = TZ_VARIANTS[usize::from(input.zone) % TZ_VARIANTS.len()];
    let secs = EARLIEST + i64::try_from(input.seconds % SPAN).unwrap_or(0);
    let Some(now) = DateTime::<Utc>::from_timestamp(secs, 0) else { return };
    let local = now.with_timezone(&tz);
    if let Some(next) = start.next_after(&local) {
        assert!(next > local, "{:?} in {tz}: next fire {next} is not after {local}", input.start);
    }
    let Ok(end) = Schedule::parse(&input.end) else { return };
    let open = window_open(&start, &end, tz, now);
    if let Some(t) = next_transition(&start, &end, tz, now) {
        assert!(t > now, "transition {t} is not after {now}");
        let _ = open;
    }
});
