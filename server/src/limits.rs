//! Request rate limits: failed authentications per client address, and requests and writes per
//! API key. Token buckets, refilled continuously; a refusal says when the next token arrives
//! (`Retry-After`). Buckets of idle keys and addresses are forgotten, so unknown clients cannot
//! make the tables grow without bound.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// A rate: `per_minute` tokens a minute, at most `burst` saved up. `per_minute == 0` is no limit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub per_minute: u32,
    pub burst: u32,
}

impl Rate {
    pub const UNLIMITED: Rate = Rate { per_minute: 0, burst: 0 };

    pub fn per_minute(per_minute: u32) -> Rate {
        Rate { per_minute, burst: per_minute }
    }

    fn is_unlimited(self) -> bool {
        self.per_minute == 0
    }
}

/// At most this many buckets are kept; past it, full (idle) ones are dropped first.
const MAX_BUCKETS: usize = 100_000;

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by key.
pub struct Limiter<K> {
    rate: Rate,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    pub fn new(rate: Rate) -> Limiter<K> {
        Limiter { rate, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes a token for `key`: `Ok` if there was one, else how long until there is.
    pub fn take(&self, key: &K) -> Result<(), Duration> {
        self.take_at(key, Instant::now())
    }

    /// Whether `key` has a token, without taking it.
    pub fn has_token(&self, key: &K) -> Result<(), Duration> {
        self.peek_at(key, Instant::now())
    }

    fn take_at(&self, key: &K, now: Instant) -> Result<(), Duration> {
        if self.rate.is_unlimited() {
            return Ok(());
        }
        let mut buckets = self.buckets.lock();
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            self.forget_full(&mut buckets, now);
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket { tokens: f64::from(self.rate.burst), at: now });
        self.refill(bucket, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(self.wait_for_token(bucket.tokens))
        }
    }

    fn peek_at(&self, key: &K, now: Instant) -> Result<(), Duration> {
        if self.rate.is_unlimited() {
            return Ok(());
        }
        let mut buckets = self.buckets.lock();
        match buckets.get_mut(key) {
            None => Ok(()),
            Some(bucket) => {
                self.refill(bucket, now);
                if bucket.tokens >= 1.0 {
                    Ok(())
                } else {
                    Err(self.wait_for_token(bucket.tokens))
                }
            }
        }
    }

    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        let per_second = f64::from(self.rate.per_minute) / 60.0;
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(f64::from(self.rate.burst.max(1)));
        bucket.at = now;
    }

    fn wait_for_token(&self, tokens: f64) -> Duration {
        let per_second = f64::from(self.rate.per_minute) / 60.0;
        Duration::from_secs_f64(((1.0 - tokens) / per_second).max(0.001))
    }

    fn forget_full(&self, buckets: &mut HashMap<K, Bucket>, now: Instant) {
        let per_second = f64::from(self.rate.per_minute) / 60.0;
        let burst = f64::from(self.rate.burst.max(1));
        buckets.retain(|_, b| b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_second < burst);
        if buckets.len() >= MAX_BUCKETS {
            // Everyone is busy: start over rather than grow (a rare, brief leniency).
            buckets.clear();
        }
    }
}

/// `Retry-After` seconds for a wait: whole seconds, at least one.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_refuses_past_its_burst_and_refills_at_its_rate() {
        let limiter = Limiter::new(Rate { per_minute: 60, burst: 3 });
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.take_at(&"a", start), Ok(()));
        }
        let wait = limiter.take_at(&"a", start).err().unwrap_or_default();
        assert!(wait > Duration::from_millis(900) && wait <= Duration::from_secs(1), "{wait:?}");
        assert_eq!(limiter.take_at(&"b", start), Ok(()), "another key has its own bucket");
        assert_eq!(limiter.take_at(&"a", start + Duration::from_millis(1001)), Ok(()));
        assert!(limiter.peek_at(&"a", start + Duration::from_millis(1002)).is_err());
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_secs(2)), 2);
    }

    #[test]
    fn unlimited_never_refuses() {
        let limiter = Limiter::new(Rate::UNLIMITED);
        let now = Instant::now();
        assert!((0..10_000).all(|_| limiter.take_at(&1, now).is_ok()));
    }
}
