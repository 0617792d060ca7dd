//! Exponential backoff for retry loops: the pause after a failure starts at `first` and doubles
//! after each further failure up to `max`; a success starts over ([`Backoff`]). No jitter: each
//! of ebb's retry loops retries one thing of its own (a patch, a pass, a query), not a herd.

use std::time::Duration;

/// The pauses of one retry loop: `first`, then doubled after each failure up to `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Pauses from `first` doubling up to `max` (a `max` below `first` caps `first` too).
    pub fn new(first: Duration, max: Duration) -> Self {
        let first = first.min(max);
        Self { first, max, next: first }
    }

    /// The pause to take after a failure; the one after it is twice as long (up to the cap).
    pub fn next_pause(&mut self) -> Duration {
        let pause = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        pause
    }

    /// After a success: the next failure pauses `first` again.
    pub fn reset(&mut self) {
        self.next = self.first;
    }

    /// The pause the next failure will take, without counting it.
    pub fn peek(&self) -> Duration {
        self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &[u64]) -> Vec<Duration> {
        s.iter().map(|s| Duration::from_secs(*s)).collect()
    }

    fn pauses(backoff: &mut Backoff, n: usize) -> Vec<Duration> {
        (0..n).map(|_| backoff.next_pause()).collect()
    }

    #[test]
    fn doubles_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        assert_eq!(pauses(&mut b, 8), secs(&[1, 2, 4, 8, 16, 30, 30, 30]));
        let mut b = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
        let ms: Vec<u128> = pauses(&mut b, 10).iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]);
    }

    #[test]
    fn reset_starts_over() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        assert_eq!(pauses(&mut b, 3), secs(&[1, 2, 4]));
        assert_eq!(b.peek(), Duration::from_secs(8));
        b.reset();
        assert_eq!(b.peek(), Duration::from_secs(1));
        assert_eq!(pauses(&mut b, 2), secs(&[1, 2]));
    }

    #[test]
    fn cap_below_first_and_no_overflow() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_millis(500));
        assert_eq!(pauses(&mut b, 3), vec![Duration::from_millis(500); 3]);
        let mut b = Backoff::new(Duration::from_secs(1), Duration::MAX);
        let last = pauses(&mut b, 200).pop();
        assert_eq!(last, Some(Duration::MAX), "saturates instead of panicking");
        let mut b = Backoff::new(Duration::ZERO, Duration::from_secs(5));
        assert_eq!(pauses(&mut b, 3), vec![Duration::ZERO; 3]);
    }
}
