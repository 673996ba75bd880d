//! Rate limits (vsftpd's `local_max_rate`, and one for the whole server): token buckets a
//! transfer spends its bytes from. A bucket holds at most a quarter of a second's worth, so a
//! transfer that waited does not burst far above its rate.

use std::time::{Duration, Instant};

/// A token bucket: `rate` bytes a second.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    rate: u64,
    /// Bytes that may go now; below zero, a debt (bytes that arrived before they were
    /// allowed, such as an upload's in flight when its reads were held).
    tokens: i64,
    last: Instant,
}

impl Bucket {
    /// A full bucket of `rate` bytes a second.
    pub(crate) fn new(rate: u64, now: Instant) -> Bucket {
        let rate = rate.max(1);
        Bucket { rate, tokens: Self::burst(rate), last: now }
    }

    /// Its rate, bytes a second.
    pub(crate) fn rate(&self) -> u64 {
        self.rate
    }

    fn burst(rate: u64) -> i64 {
        (rate / 4).clamp(16 * 1024, i64::MAX as u64) as i64
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last);
        let earned = (elapsed.as_secs_f64() * self.rate as f64) as i64;
        if earned > 0 {
            self.tokens = self.tokens.saturating_add(earned).min(Self::burst(self.rate));
            self.last = now;
        }
    }

    /// How many bytes may go now.
    pub(crate) fn allowance(&mut self, now: Instant) -> u64 {
        self.refill(now);
        self.tokens.max(0) as u64
    }

    /// `n` bytes went (perhaps more than allowed: a debt).
    pub(crate) fn spend(&mut self, now: Instant, n: u64) {
        self.refill(now);
        self.tokens = self.tokens.saturating_sub(n.min(i64::MAX as u64) as i64);
    }

    /// When some bytes (at least a 20th of a second's worth, or the whole debt) may go again.
    pub(crate) fn ready_at(&self, now: Instant) -> Instant {
        let want = (self.rate as i64 / 20).max(1) - self.tokens;
        if want <= 0 {
            return now;
        }
        now + Duration::from_secs_f64(want as f64 / self.rate as f64)
    }
}

/// The buckets a transfer spends from: its own and its shard's, either optional.
pub(crate) struct Limits<'a>(pub(crate) [Option<&'a mut Bucket>; 2]);

impl Limits<'_> {
    /// How many bytes may go now (`u64::MAX` without limits).
    pub(crate) fn allowance(&mut self, now: Instant) -> u64 {
        self.0.iter_mut().flatten().map(|b| b.allowance(now)).min().unwrap_or(u64::MAX)
    }

    /// `n` bytes went.
    pub(crate) fn spend(&mut self, now: Instant, n: u64) {
        self.0.iter_mut().flatten().for_each(|b| b.spend(now, n));
    }

    /// When bytes may go again.
    pub(crate) fn ready_at(&self, now: Instant) -> Instant {
        self.0.iter().flatten().map(|b| b.ready_at(now)).max().unwrap_or(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_lets_its_rate_through() {
        let t0 = Instant::now();
        let mut b = Bucket::new(1_000_000, t0);
        assert_eq!(b.allowance(t0), 250_000, "a quarter second's burst");
        b.spend(t0, 250_000);
        assert_eq!(b.allowance(t0), 0);
        assert_eq!(b.ready_at(t0), t0 + Duration::from_millis(50));
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(b.allowance(t1), 100_000);
        // A debt must be paid back before more goes.
        b.spend(t1, 300_000);
        assert_eq!(b.allowance(t1), 0);
        assert_eq!(b.ready_at(t1), t1 + Duration::from_millis(250));
        // Idle time earns no more than the burst.
        assert_eq!(b.allowance(t1 + Duration::from_secs(60)), 250_000);
        // Over ten simulated seconds, the rate and no more.
        let mut b = Bucket::new(1_000_000, t0);
        let (mut now, mut moved) = (t0, 0);
        while now < t0 + Duration::from_secs(10) {
            let n = b.allowance(now).min(64 * 1024);
            b.spend(now, n);
            moved += n;
            now = if n == 0 { b.ready_at(now) } else { now + Duration::from_millis(1) };
        }
        assert!((10_000_000..=10_300_000).contains(&moved), "{moved}");
    }

    #[test]
    fn limits_take_the_tightest() {
        let t0 = Instant::now();
        let (mut a, mut b) = (Bucket::new(1_000_000, t0), Bucket::new(400_000, t0));
        let mut both = Limits([Some(&mut a), Some(&mut b)]);
        assert_eq!(both.allowance(t0), 100_000);
        both.spend(t0, 100_000);
        assert_eq!(both.ready_at(t0), t0 + Duration::from_millis(50));
        assert_eq!(Limits([None, None]).allowance(t0), u64::MAX);
    }
}
