use std::time::Duration;

/// Exponential backoff with full jitter, capped.
///
/// Pure: the caller supplies the random fraction, so tests are exact and the async shell decides
/// where randomness comes from.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff { base, max: max.max(base), attempt: 0 }
    }

    /// Delay before the next attempt. `jitter` in `0.0..=1.0` picks a point in the upper half of the
    /// window `[cap/2, cap]`, so retries spread out but never collapse to zero.
    pub fn next_delay(&mut self, jitter: f64) -> Duration {
        let factor = 1u64.checked_shl(self.attempt.min(30)).unwrap_or(u64::MAX);
        let cap = self.base.saturating_mul(u32::try_from(factor).unwrap_or(u32::MAX)).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let j = jitter.clamp(0.0, 1.0);
        cap.mul_f64(0.5 + 0.5 * j)
    }

    /// Attempts made since the last success.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Call after a success: the next failure starts from `base` again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(base_ms: u64, max_ms: u64, jitters: &[f64], expect_ms: &[u64]) {
        let mut b = Backoff::new(Duration::from_millis(base_ms), Duration::from_millis(max_ms));
        let got: Vec<u64> = jitters.iter().map(|&j| b.next_delay(j).as_millis() as u64).collect();
        assert_eq!(got, expect_ms);
    }

    #[test]
    fn doubles_up_to_the_cap() {
        check(100, 1000, &[1.0; 6], &[100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn jitter_stays_in_the_upper_half() {
        check(100, 1000, &[0.0, 0.0, 0.5, 2.0, -1.0], &[50, 100, 300, 800, 500]);
    }

    #[test]
    fn never_overflows_after_many_failures() {
        let mut b = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
        for _ in 0..1000 {
            assert!(b.next_delay(1.0) <= Duration::from_secs(30));
        }
        b.reset();
        assert_eq!(b.next_delay(1.0), Duration::from_millis(250));
    }
}
