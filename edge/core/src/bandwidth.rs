//! A token bucket for the uplink's bandwidth cap (sans IO: callers pass `now` in microseconds).
//!
//! Tokens are bytes, refilled at `rate` bytes per second up to `burst`. A take larger than the
//! burst is allowed once the bucket is full and leaves it in debt, so huge requests still pass at
//! the capped average rate; [`TokenBucket::force_take`] (alarms) never waits but still pays, so
//! what follows it waits for the debt.

/// The bucket. `rate == 0` is not a bucket: callers skip it (unlimited).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBucket {
    /// Bytes per microsecond.
    rate: f64,
    burst: f64,
    /// May be negative (debt).
    tokens: f64,
    last_us: u64,
}

impl TokenBucket {
    /// A full bucket of `burst` bytes refilled at `bytes_per_sec` (both at least 1).
    pub fn new(bytes_per_sec: u64, burst: u64, now_us: u64) -> TokenBucket {
        let burst = burst.max(1) as f64;
        TokenBucket { rate: bytes_per_sec.max(1) as f64 / 1e6, burst, tokens: burst, last_us: now_us }
    }

    /// The bucket for a cap of `kbps` kilobits per second, with a burst of a quarter second
    /// (at least 16 KiB, so small requests are not split hairs).
    pub fn for_kbps(kbps: u64, now_us: u64) -> TokenBucket {
        let bytes_per_sec = kbps.saturating_mul(1000) / 8;
        TokenBucket::new(bytes_per_sec, (bytes_per_sec / 4).max(16 * 1024), now_us)
    }

    fn refill(&mut self, now_us: u64) {
        // A clock that goes backwards refills nothing.
        let elapsed = now_us.saturating_sub(self.last_us) as f64;
        self.last_us = self.last_us.max(now_us);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
    }

    /// Bytes available now (negative while in debt).
    pub fn available(&mut self, now_us: u64) -> f64 {
        self.refill(now_us);
        self.tokens
    }

    /// Takes `n` bytes when the bucket holds at least `min(n, burst)`; otherwise takes nothing and
    /// returns how many microseconds to wait before it will.
    pub fn try_take(&mut self, now_us: u64, n: u64) -> Result<(), u64> {
        self.refill(now_us);
        let need = (n as f64).min(self.burst);
        if self.tokens >= need {
            self.tokens -= n as f64;
            Ok(())
        } else {
            Err(((need - self.tokens) / self.rate).ceil().max(1.0) as u64)
        }
    }

    /// Takes `n` bytes now, whatever the bucket holds (it may go into debt).
    pub fn force_take(&mut self, now_us: u64, n: u64) {
        self.refill(now_us);
        self.tokens -= n as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000;

    #[test]
    fn takes_wait_for_refill_at_the_rate() {
        // 1000 B/s, burst 500 B. (now µs, take, expected)
        let mut b = TokenBucket::new(1000, 500, 0);
        let steps: [(u64, u64, Result<(), u64>); 7] = [
            (0, 300, Ok(())),         // 200 left
            (0, 300, Err(100_000)),   // needs 100 more: 0.1 s
            (100_000, 300, Ok(())),   // 300 - 300 = 0
            (100_000, 1, Err(1_000)), // 1 ms for one byte
            (10 * S, 500, Ok(())),    // refill is capped at the burst
            (10 * S, 1, Err(1_000)),  //  ... so nothing is left
            (10 * S + 500_000, 500, Ok(())),
        ];
        for (i, (now, n, expected)) in steps.into_iter().enumerate() {
            assert_eq!(b.try_take(now, n), expected, "step {i}");
        }
    }

    #[test]
    fn a_take_larger_than_the_burst_passes_when_full_and_leaves_debt() {
        let mut b = TokenBucket::new(1000, 500, 0);
        assert_eq!(b.try_take(0, 2000), Ok(()));
        assert_eq!(b.available(0), -1500.0);
        // The debt is repaid at the rate before the next byte: 1.5 s + 1 ms.
        assert_eq!(b.try_take(0, 1), Err(1_501_000));
        assert_eq!(b.try_take(1_501_000, 1), Ok(()));
    }

    #[test]
    fn forced_takes_never_wait_but_others_pay_for_them() {
        let mut b = TokenBucket::new(1000, 500, 0);
        b.force_take(0, 800); // an alarm batch
        assert_eq!(b.available(0), -300.0);
        assert_eq!(b.try_take(0, 100), Err(400_000));
        assert_eq!(b.try_take(400_000, 100), Ok(()));
    }

    #[test]
    fn the_average_rate_holds_over_many_takes() {
        // 64 kbit/s = 8000 B/s; send 1 KiB chunks as soon as allowed for 10 s.
        let mut b = TokenBucket::for_kbps(64, 0);
        let (mut now, mut sent) = (0u64, 0u64);
        while now < 10 * S {
            match b.try_take(now, 1024) {
                Ok(()) => sent += 1024,
                Err(wait) => now += wait,
            }
        }
        // 10 s at 8000 B/s plus the initial burst (16 KiB).
        let expected = 10 * 8000 + 16 * 1024;
        assert!(sent.abs_diff(expected) <= 1024, "sent {sent}, expected about {expected}");
    }

    #[test]
    fn a_clock_going_backwards_refills_nothing() {
        let mut b = TokenBucket::new(1000, 500, 10 * S);
        assert_eq!(b.try_take(10 * S, 500), Ok(()));
        assert!(b.try_take(S, 1).is_err());
        assert_eq!(b.available(S), 0.0);
    }
}
