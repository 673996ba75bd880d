//! The broker's clock: deadlines in ticks of 100 ms since the broker started, kept in one
//! bucket per tick.
//!
//! Every connection has a deadline (CONNECT, then keep-alive), so a deadline must cost little:
//! an entry in a tick's bucket takes 16 bytes, where a tree node per deadline took about 90.
//! A deadline is checked lazily: a packet only moves the connection's `last_seen`, and an entry
//! that comes due early is scheduled again for the deadline then in force. Deadlines are
//! rounded up to the tick, so nothing fires early and nothing fires more than a tick late,
//! well inside MQTT's keep-alive rule (one and a half times the interval, in seconds).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Ticks per second.
pub const TICKS_PER_SECOND: u32 = 10;

/// How long a tick is.
const TICK: Duration = Duration::from_millis(1000 / TICKS_PER_SECOND as u64);

/// `d` in ticks, rounded up.
pub fn ticks(d: Duration) -> u32 {
    let whole = floor_ticks(d);
    if TICK * whole < d {
        whole.saturating_add(1)
    } else {
        whole
    }
}

/// `d` in ticks, rounded down, in 64-bit arithmetic (this runs for every input).
fn floor_ticks(d: Duration) -> u32 {
    let ticks = d.as_secs() * u64::from(TICKS_PER_SECOND) + u64::from(d.subsec_nanos() / TICK.subsec_nanos());
    u32::try_from(ticks).unwrap_or(u32::MAX)
}

/// Something due at a tick.
#[derive(Debug, Clone, Copy)]
pub enum Timer<C> {
    /// A connection's CONNECT or keep-alive deadline.
    Conn(C),
    /// A delayed will.
    Will { session: u32, uid: u64 },
    /// A session's expiry.
    Expiry { session: u32, uid: u64 },
    /// Publishing the `$SYS` topics.
    Sys,
}

/// Timers bucketed by tick.
#[derive(Debug)]
pub struct Timers<C> {
    epoch: Instant,
    buckets: BTreeMap<u32, Vec<Timer<C>>>,
}

impl<C> Timers<C> {
    /// No timers, with tick 0 at `epoch`.
    pub fn new(epoch: Instant) -> Timers<C> {
        Timers { epoch, buckets: BTreeMap::new() }
    }

    /// The tick `now` falls in.
    pub fn tick(&self, now: Instant) -> u32 {
        floor_ticks(now.saturating_duration_since(self.epoch))
    }

    /// The first tick not before `at`.
    pub fn tick_after(&self, at: Instant) -> u32 {
        ticks(at.saturating_duration_since(self.epoch))
    }

    /// When `tick` starts.
    pub fn instant(&self, tick: u32) -> Instant {
        self.epoch + TICK * tick
    }

    /// Runs `timer` at `tick`.
    pub fn schedule(&mut self, tick: u32, timer: Timer<C>) {
        self.buckets.entry(tick).or_default().push(timer);
    }

    /// Runs `timer` at the first tick not before `at`.
    pub fn schedule_at(&mut self, at: Instant, timer: Timer<C>) {
        self.schedule(self.tick_after(at), timer);
    }

    /// When the first timer is due.
    pub fn next(&self) -> Option<Instant> {
        self.buckets.keys().next().map(|&tick| self.instant(tick))
    }

    /// How many timers are scheduled.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.buckets.values().map(Vec::len).sum()
    }

    /// The earliest bucket due at `now`, with its tick.
    pub fn pop_due(&mut self, now: Instant) -> Option<(u32, Vec<Timer<C>>)> {
        let now = self.tick(now);
        self.buckets.first_entry().filter(|e| *e.key() <= now).map(|e| e.remove_entry())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_round_up_to_their_tick() {
        let epoch = Instant::now();
        let mut t = Timers::<u32>::new(epoch);
        t.schedule_at(epoch + Duration::from_millis(150), Timer::Conn(1));
        t.schedule_at(epoch + Duration::from_millis(200), Timer::Conn(2));
        assert_eq!(t.next(), Some(epoch + Duration::from_millis(200)));
        assert!(t.pop_due(epoch + Duration::from_millis(199)).is_none(), "never early");
        let (tick, due) = t.pop_due(epoch + Duration::from_millis(250)).unwrap();
        assert_eq!((tick, due.len()), (2, 2));
        assert!(t.next().is_none());
    }
}
