//! One-shot timers: a min-heap of deadlines over a slab of live timers. Cancelling removes the
//! slab entry; its heap entry is skipped when it surfaces. The earliest deadline bounds how long
//! the shard waits in the kernel.
//!
//! A hashed wheel would make insertion O(1) instead of O(log n); at the timer counts a shard
//! carries (one keep-alive per connection) the heap is not where time goes, and it keeps
//! deadlines exact.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use slab::Slab;

/// Identifies a pending timer; stale ids (fired or cancelled) are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerId {
    index: u32,
    gen: u32,
}

/// One shard timer that follows a sans-I/O machine's next deadline (its `poll_timeout`).
/// After each event the driver hands it the machine's deadline: it re-arms when the deadline
/// moved earlier and stays put when it moved later (firing early costs one idle
/// `handle_timeout`, cheaper than re-arming on every event).
#[derive(Debug)]
pub struct Deadline {
    token: u64,
    armed: Option<(Instant, TimerId)>,
}

impl Deadline {
    /// A deadline whose `Event::Timer`s carry `token`.
    pub fn new(token: u64) -> Deadline {
        Deadline { token, armed: None }
    }

    /// Whether a timer event with `token` is this deadline firing; if so it is disarmed and
    /// the driver runs the machine's `handle_timeout`.
    pub fn fired(&mut self, token: u64) -> bool {
        let mine = token == self.token;
        if mine {
            self.armed = None;
        }
        mine
    }

    /// Arms the shard timer for `next` unless one as early is armed already.
    pub fn follow(&mut self, ops: &mut crate::Ops, next: Option<Instant>) {
        let Some(next) = next else { return };
        if let Some((at, id)) = self.armed {
            if at <= next {
                return;
            }
            ops.cancel_timer(id);
        }
        self.armed = Some((next, ops.timer_at(next, self.token)));
    }
}

/// What a timer does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimerKind {
    /// Delivered to the handler as `Event::Timer` with this token.
    User(u64),
    /// The graceful-close deadline of socket slot `index` (generation `gen`).
    Linger { index: u32, gen: u32 },
    /// The slow-consumer deadline of socket slot `index`.
    Stall { index: u32, gen: u32 },
    /// The TLS handshake deadline of socket slot `index`.
    Handshake { index: u32, gen: u32 },
    /// Submit for slot `index` again (a listener backing off after an accept error).
    Rearm { index: u32, gen: u32 },
    /// The deadline of QUIC connection `index` (generation `gen`).
    Quic { index: u32, gen: u32 },
}

struct Entry {
    gen: u32,
    deadline: Instant,
    kind: TimerKind,
}

/// The timer set of one shard.
#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    live: Slab<Entry>,
    next_gen: u32,
}

impl Timers {
    /// Schedules `kind` at `deadline`.
    pub fn insert(&mut self, deadline: Instant, kind: TimerKind) -> TimerId {
        self.next_gen = self.next_gen.wrapping_add(1);
        let gen = self.next_gen;
        let index = self.live.insert(Entry { gen, deadline, kind }) as u32;
        self.heap.push(Reverse((deadline, index, gen)));
        TimerId { index, gen }
    }

    /// Cancels a pending timer; returns whether it was still pending.
    pub fn cancel(&mut self, id: TimerId) -> bool {
        match self.live.get(id.index as usize) {
            Some(e) if e.gen == id.gen => {
                self.live.remove(id.index as usize);
                true
            }
            _ => false,
        }
    }

    /// The earliest pending deadline.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        self.skip_stale();
        self.heap.peek().map(|Reverse((d, _, _))| *d)
    }

    /// Removes and returns the earliest timer due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(TimerId, TimerKind)> {
        self.skip_stale();
        let &Reverse((deadline, index, gen)) = self.heap.peek()?;
        if deadline > now {
            return None;
        }
        self.heap.pop();
        let entry = self.live.remove(index as usize);
        Some((TimerId { index, gen }, entry.kind))
    }

    /// Pending timers.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    fn skip_stale(&mut self) {
        while let Some(&Reverse((deadline, index, gen))) = self.heap.peek() {
            match self.live.get(index as usize) {
                Some(e) if e.gen == gen && e.deadline == deadline => return,
                _ => {
                    self.heap.pop();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ms(base: Instant, n: u64) -> Instant {
        base + Duration::from_millis(n)
    }

    #[test]
    fn fire_in_deadline_order() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        for n in [30, 10, 20, 10, 50] {
            t.insert(ms(t0, n), TimerKind::User(n));
        }
        assert_eq!(t.next_deadline(), Some(ms(t0, 10)));
        let mut fired = vec![];
        while let Some((_, TimerKind::User(n))) = t.pop_due(ms(t0, 30)) {
            fired.push(n);
        }
        assert_eq!(fired, [10, 10, 20, 30]);
        assert_eq!(t.len(), 1);
        assert_eq!(t.next_deadline(), Some(ms(t0, 50)));
    }

    #[test]
    fn cancelled_timers_never_fire_and_ids_go_stale() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        let a = t.insert(ms(t0, 5), TimerKind::User(1));
        let b = t.insert(ms(t0, 6), TimerKind::User(2));
        assert!(t.cancel(a));
        assert!(!t.cancel(a), "second cancel is a no-op");
        assert_eq!(t.next_deadline(), Some(ms(t0, 6)));
        // Slot of `a` is reused by a new timer; the old id must not cancel it.
        let c = t.insert(ms(t0, 7), TimerKind::User(3));
        assert!(!t.cancel(a));
        assert_eq!(t.pop_due(ms(t0, 100)).map(|(id, _)| id), Some(b));
        assert_eq!(t.pop_due(ms(t0, 100)).map(|(id, _)| id), Some(c));
        assert!(t.pop_due(ms(t0, 100)).is_none());
        assert!(!t.cancel(b), "fired timers are stale");
    }

    #[test]
    fn nothing_fires_early() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        t.insert(ms(t0, 10), TimerKind::User(1));
        assert!(t.pop_due(ms(t0, 9)).is_none());
        assert!(t.pop_due(ms(t0, 10)).is_some());
    }
}
