//! Token buckets: the pure arithmetic, a per-address map of them for the REST rate and session
//! creations, and a per-address count of open streams. Times are passed in, so the logic is
//! tested without sleeping.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A bucket of `capacity` tokens refilled at `rate` tokens per second.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    rate: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(capacity: f64, rate: f64, now: Instant) -> Self {
        Self { capacity, rate, tokens: capacity, updated: now }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.updated = now;
    }

    /// Takes `amount` if the bucket holds it; otherwise takes nothing and says how long until
    /// it would (never for an amount over the capacity or a bucket that does not refill).
    pub fn try_take(&mut self, amount: f64, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= amount {
            self.tokens -= amount;
            Ok(())
        } else {
            Err(self.time_until(amount))
        }
    }

    /// Takes `amount` even when the bucket holds less: the debt is paid back by waiting (see
    /// [`TokenBucket::wait`]). For audio, which has already arrived and is never refused.
    pub fn take_with_debt(&mut self, amount: f64, now: Instant) {
        self.refill(now);
        self.tokens -= amount;
    }

    /// How long until the bucket is out of debt (zero when it is not in debt).
    pub fn wait(&mut self, now: Instant) -> Duration {
        self.refill(now);
        self.time_until(0.0)
    }

    fn time_until(&self, amount: f64) -> Duration {
        let missing = amount - self.tokens;
        if missing <= 0.0 {
            Duration::ZERO
        } else if self.rate <= 0.0 || amount > self.capacity {
            Duration::MAX
        } else {
            Duration::from_secs_f64(missing / self.rate)
        }
    }

    fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.capacity
    }
}

/// Buckets kept before full (idle) ones are forgotten, which bounds the map's memory.
const PRUNE_ABOVE: usize = 10_000;

/// One token bucket per client address.
pub struct KeyedLimiter {
    capacity: f64,
    rate: f64,
    buckets: Mutex<HashMap<IpAddr, TokenBucket>>,
}

impl KeyedLimiter {
    pub fn new(capacity: f64, rate: f64) -> Self {
        Self { capacity, rate, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one token for `key`, or says how long until one is there.
    pub fn check(&self, key: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > PRUNE_ABOVE {
            // A full bucket behaves exactly like a missing one, so forgetting it changes nothing.
            buckets.retain(|_, bucket| !bucket.is_full(now));
        }
        let (capacity, rate) = (self.capacity, self.rate);
        buckets.entry(key).or_insert_with(|| TokenBucket::new(capacity, rate, now)).try_take(1.0, now)
    }
}

/// `Retry-After` seconds for a wait: whole seconds, rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs_f64().ceil();
    if secs.is_finite() && secs < 86_400.0 {
        (secs as u64).max(1)
    } else {
        86_400
    }
}

/// Open streams per client address.
#[derive(Clone, Default)]
pub struct ConnectionCounter {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One open stream of an address; dropping it gives the place back.
pub struct ConnectionSlot {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    key: IpAddr,
}

impl ConnectionCounter {
    /// A slot for `key` if it has fewer than `max` open.
    pub fn try_open(&self, key: IpAddr, max: usize) -> Option<ConnectionSlot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(key).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(ConnectionSlot { open: self.open.clone(), key })
    }

    pub fn open_for(&self, key: IpAddr) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).get(&key).copied().unwrap_or(0)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(3.0, 10.0, t0);
        for _ in 0..3 {
            bucket.try_take(1.0, t0).unwrap();
        }
        let wait = bucket.try_take(1.0, t0).unwrap_err();
        assert!((99 * MS..=101 * MS).contains(&wait), "{wait:?}");
        assert!(bucket.try_take(1.0, t0 + 50 * MS).is_err());
        bucket.try_take(1.0, t0 + 100 * MS).unwrap();
        // Refill never exceeds the capacity.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            bucket.try_take(1.0, later).unwrap();
        }
        assert!(bucket.try_take(1.0, later).is_err());
        assert_eq!(bucket.try_take(4.0, later).unwrap_err(), Duration::MAX);
    }

    #[test]
    fn debt_is_paid_back_by_waiting() {
        let t0 = Instant::now();
        // 1 s of audio burst, refilled at 1x real time (tokens are ms of audio).
        let mut bucket = TokenBucket::new(1_000.0, 1_000.0, t0);
        bucket.take_with_debt(500.0, t0);
        assert_eq!(bucket.wait(t0), Duration::ZERO);
        bucket.take_with_debt(10_000.0, t0);
        let wait = bucket.wait(t0);
        assert!((9_499 * MS..=9_501 * MS).contains(&wait), "{wait:?}");
        assert!(bucket.wait(t0 + Duration::from_secs(5)) > Duration::from_secs(4));
        assert_eq!(bucket.wait(t0 + Duration::from_secs(10)), Duration::ZERO);
    }

    #[test]
    fn addresses_have_their_own_buckets_and_idle_ones_are_forgotten() {
        let t0 = Instant::now();
        let limiter = KeyedLimiter::new(2.0, 1.0);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        limiter.check(a, t0).unwrap();
        limiter.check(a, t0).unwrap();
        assert!(limiter.check(a, t0).is_err());
        limiter.check(b, t0).unwrap();
        for i in 0..=PRUNE_ABOVE as u32 + 1 {
            limiter.check(IpAddr::from(i.to_be_bytes()), t0).unwrap();
        }
        // Pruning on the next check keeps only buckets that are not full.
        limiter.check(b, t0 + Duration::from_secs(10)).unwrap();
        assert!(limiter.buckets.lock().unwrap().len() < 10);
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1_001)), 2);
        assert_eq!(retry_after_secs(Duration::MAX), 86_400);
    }

    #[test]
    fn connection_slots_are_counted_per_address_and_given_back() {
        let counter = ConnectionCounter::default();
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let first = counter.try_open(a, 2).unwrap();
        let _second = counter.try_open(a, 2).unwrap();
        assert!(counter.try_open(a, 2).is_none());
        assert!(counter.try_open("::1".parse().unwrap(), 2).is_some());
        drop(first);
        assert_eq!(counter.open_for(a), 1);
        assert!(counter.try_open(a, 2).is_some());
    }
}
