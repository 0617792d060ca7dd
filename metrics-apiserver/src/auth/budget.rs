//! The budget of TokenReviews for bearer tokens no cache knows: a token bucket (a sustained
//! rate with a burst) and a cap on reviews in flight. Anyone who reaches the secure port can
//! send a request with a made-up token, and each one would otherwise cost a TokenReview at the
//! Kubernetes API server; past the budget such requests are refused at once (429 with
//! Retry-After) without a review. Requests from the aggregator (front-proxy certificate) and
//! tokens with a cached answer never draw on it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a review was not started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limited {
    /// The sustained rate (with its burst) is used up; a review is possible again after the
    /// given time.
    Rate(Duration),
    /// The cap on reviews in flight is reached.
    Concurrency,
}

impl Limited {
    /// Whole seconds a client should wait before trying again (at least 1).
    pub fn retry_after_secs(self) -> u64 {
        match self {
            Limited::Rate(wait) => wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            Limited::Concurrency => 1,
        }
        .max(1)
    }
}

/// A review allowed by the budget; it counts as in flight until dropped.
#[derive(Debug)]
pub struct Ticket {
    _in_flight: OwnedSemaphorePermit,
}

/// The token bucket's state.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

/// How many reviews may start and when.
#[derive(Debug)]
pub struct Budget {
    rate: f64,
    burst: f64,
    bucket: Mutex<Bucket>,
    in_flight: Arc<Semaphore>,
}

impl Budget {
    /// `rate` reviews per second sustained, up to `burst` at once after a quiet time, at most
    /// `concurrency` in flight (each at least 1). The bucket starts full at `now`.
    pub fn new(rate: u32, burst: u32, concurrency: usize, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            rate: f64::from(rate.max(1)),
            burst,
            bucket: Mutex::new(Bucket { tokens: burst, refilled: now }),
            in_flight: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    /// A ticket for one review at `now`, or why not. A refusal uses up nothing.
    pub fn take(&self, now: Instant) -> Result<Ticket, Limited> {
        let permit = self.in_flight.clone().try_acquire_owned().map_err(|_| Limited::Concurrency)?;
        // The bucket is plain numbers: a panic while holding the lock leaves nothing torn.
        let mut bucket = self.bucket.lock().unwrap_or_else(PoisonError::into_inner);
        let elapsed = now.saturating_duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.refilled = bucket.refilled.max(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(Ticket { _in_flight: permit })
        } else {
            Err(Limited::Rate(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_the_burst_then_the_rate() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let budget = Budget::new(10, 5, 100, t0);
        let mut held = Vec::new();
        for _ in 0..5 {
            held.push(budget.take(t0).unwrap());
        }
        // Empty: the next token comes after 1/10 s.
        assert_eq!(budget.take(t0).unwrap_err(), Limited::Rate(Duration::from_millis(100)));
        assert_eq!(budget.take(at(50)).unwrap_err(), Limited::Rate(Duration::from_millis(50)));
        held.push(budget.take(at(100)).unwrap());
        assert!(budget.take(at(100)).is_err());
        // One more per 100 ms; not more than the burst after a long pause.
        let allowed = (1..=10).filter(|i| budget.take(at(100 + i * 100)).is_ok()).count();
        assert_eq!(allowed, 10);
        assert!(budget.take(at(1100)).is_err());
        let after_pause = (0..20).filter(|_| budget.take(at(60_000)).is_ok()).count();
        assert_eq!(after_pause, 5);
    }

    #[test]
    fn reviews_in_flight_are_capped_and_freed_by_dropping_the_ticket() {
        let t0 = Instant::now();
        let budget = Budget::new(1000, 1000, 2, t0);
        let a = budget.take(t0).unwrap();
        let _b = budget.take(t0).unwrap();
        assert_eq!(budget.take(t0).unwrap_err(), Limited::Concurrency);
        drop(a);
        budget.take(t0).unwrap();
    }

    #[test]
    fn a_refusal_for_concurrency_costs_no_token() {
        let t0 = Instant::now();
        let budget = Budget::new(1, 1, 1, t0);
        let held = budget.take(t0).unwrap();
        assert_eq!(budget.take(t0 + Duration::from_secs(1)).unwrap_err(), Limited::Concurrency);
        drop(held);
        budget.take(t0 + Duration::from_secs(1)).unwrap();
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        assert_eq!(Limited::Rate(Duration::from_millis(100)).retry_after_secs(), 1);
        assert_eq!(Limited::Rate(Duration::from_millis(1500)).retry_after_secs(), 2);
        assert_eq!(Limited::Rate(Duration::from_secs(3)).retry_after_secs(), 3);
        assert_eq!(Limited::Rate(Duration::ZERO).retry_after_secs(), 1);
        assert_eq!(Limited::Concurrency.retry_after_secs(), 1);
    }
}
