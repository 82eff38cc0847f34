//! In-process sliding-window rate limiter (the seed's 10 requests/minute on auth endpoints).
//!
//! In process rather than in Redis: one replica enforces its own budget, so N replicas allow at
//! most N times the limit per key, which still defeats online guessing (Argon2 cost plus 10 tries
//! a minute per replica); it needs no extra service and cannot fail open when a cache is down.
//! Memory is bounded: keys whose window is empty are dropped when the map grows past
//! [`MAX_KEYS`], and beyond that new keys share one overflow bucket (fail closed).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Most keys tracked before pruning (and then overflowing into one shared key).
pub const MAX_KEYS: usize = 100_000;
const OVERFLOW_KEY: &str = "\0overflow";

/// Allows `limit` calls per `window` for each key.
#[derive(Debug)]
pub struct RateLimiter {
    limit: usize,
    window: Duration,
    hits: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl RateLimiter {
    pub fn new(limit: u32, window: Duration) -> RateLimiter {
        RateLimiter { limit: limit.max(1) as usize, window, hits: Mutex::new(HashMap::new()) }
    }

    /// Records a call for `key`; `Err(retry_after)` when the key is over its limit (the refused
    /// call is not counted).
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut hits = self.hits.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !hits.contains_key(key) && hits.len() >= MAX_KEYS {
            let window = self.window;
            hits.retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        let key = if !hits.contains_key(key) && hits.len() >= MAX_KEYS { OVERFLOW_KEY } else { key };
        let times = hits.entry(key.to_owned()).or_default();
        while times.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
            times.pop_front();
        }
        if times.len() >= self.limit {
            let oldest = *times.front().expect("invariant: limit >= 1 so the window is not empty");
            return Err(self.window.saturating_sub(now.duration_since(oldest)));
        }
        times.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn allows_the_limit_then_refuses_until_the_window_slides() {
        let limiter = RateLimiter::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            limiter.check("a").unwrap();
            tokio::time::advance(Duration::from_secs(10)).await;
        }
        // Calls at 0, 10, 20 s; now 30 s: the first leaves the window at 60 s.
        assert_eq!(limiter.check("a"), Err(Duration::from_secs(30)));
        limiter.check("b").unwrap();
        tokio::time::advance(Duration::from_secs(30)).await;
        limiter.check("a").unwrap();
        assert!(limiter.check("a").is_err());
    }
}
