//! A/B arbitration (CME MDP 3.0 "Packet Sequencing and A/B Arbitration"): the same packets
//! arrive on two feeds; the first copy of each sequence number wins and the other is dropped
//! and counted; packets are handed on strictly in sequence; a number missing on both feeds
//! once `gap_wait` has passed (or once `window` later packets are held) is a gap.
//!
//! Sans-I/O: [`Arbiter::packet`] takes a packet from either feed, [`Arbiter::poll`] gives
//! what follows, [`Arbiter::poll_timeout`] and [`Arbiter::handle_timeout`] drive the wait.
//!
//! The rules, each tested:
//! - A packet numbered below the next expected is a duplicate (dropped, counted).
//! - The expected packet is delivered at once, then every held one that follows it.
//! - A packet past the expected one is held (its copy from the other feed is a duplicate).
//! - The wait for a missing number starts when the first later packet is held; when it
//!   ends, or when `window` packets are held, the missing numbers are a gap: the arbiter
//!   reports `Gap { from, to }` and goes on from the first held packet.
//! - A packet numbered 1 when the next expected is more than `window` past it is a restart
//!   (CME starts sequence numbers over each week): the arbiter starts over from it and
//!   reports it. (A copy of packet 1 lagging by less than the window is a duplicate.)

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Which feed a packet came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// Feed A.
    A,
    /// Feed B.
    B,
}

/// What the arbiter hands on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arbitrated<P> {
    /// The next packet in sequence.
    Packet {
        /// Its sequence number.
        seq: u32,
        /// The feed whose copy won.
        feed: Feed,
        /// The packet.
        packet: P,
    },
    /// Numbers `from..=to` were lost on both feeds.
    Gap {
        /// The first missing number.
        from: u32,
        /// The last.
        to: u32,
    },
    /// Sequence numbers started over at 1 (after `last`).
    Restart {
        /// The last number before the restart.
        last: u32,
    },
}

/// What [`Arbiter::fast`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fast {
    /// The next in sequence: handle it now.
    Deliver,
    /// Seen already: drop it.
    Duplicate,
    /// Out of order (or the first): hand it to [`Arbiter::packet`].
    Slow,
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Packets handed on.
    pub delivered: u64,
    /// Copies dropped because the other feed's came first (or a number came twice).
    pub duplicates: u64,
    /// Numbers lost on both feeds.
    pub lost: u64,
    /// Gaps reported.
    pub gaps: u64,
}

/// The arbiter's settings.
#[derive(Debug, Clone, Copy)]
pub struct ArbiterConfig {
    /// How long a missing number is waited for once a later one is held.
    pub gap_wait: Duration,
    /// How many later packets may be held before the missing numbers are given up.
    pub window: usize,
}

impl Default for ArbiterConfig {
    /// 10 ms and 1,000 packets: well past the usual A/B skew of microseconds.
    fn default() -> ArbiterConfig {
        ArbiterConfig { gap_wait: Duration::from_millis(10), window: 1000 }
    }
}

/// The A/B arbiter of one channel's incremental feeds.
#[derive(Debug)]
pub struct Arbiter<P> {
    config: ArbiterConfig,
    /// The next number to hand on; `None` before the first packet.
    next: Option<u32>,
    held: BTreeMap<u32, (Feed, P)>,
    /// When the wait for `next` ends, while packets are held.
    deadline: Option<Instant>,
    out: std::collections::VecDeque<Arbitrated<P>>,
    counts: Counts,
}

impl<P> Arbiter<P> {
    /// An arbiter that takes the first packet it sees as the start of the sequence.
    pub fn new(config: ArbiterConfig) -> Arbiter<P> {
        Arbiter {
            config,
            next: None,
            held: BTreeMap::new(),
            deadline: None,
            out: std::collections::VecDeque::new(),
            counts: Counts::default(),
        }
    }

    /// The counters so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// The next number expected, once started.
    pub fn expected(&self) -> Option<u32> {
        self.next
    }

    /// The fast path, before [`Arbiter::packet`]: for the next expected number with nothing
    /// held, it is taken at once (counted as delivered; the caller handles the packet
    /// without copying it); an old number is a duplicate. Anything else needs the packet
    /// itself: [`Fast::Slow`].
    pub fn fast(&mut self, seq: u32) -> Fast {
        match self.next {
            Some(next) if seq == next && self.held.is_empty() && self.out.is_empty() => {
                self.counts.delivered += 1;
                self.next = Some(seq.wrapping_add(1));
                Fast::Deliver
            }
            Some(next) if seq < next && !(seq == 1 && next as usize > 1 + self.config.window) => {
                self.counts.duplicates += 1;
                Fast::Duplicate
            }
            _ => Fast::Slow,
        }
    }

    /// Takes a packet numbered `seq` from `feed`.
    pub fn packet(&mut self, now: Instant, feed: Feed, seq: u32, packet: P) {
        let next = match self.next {
            None => seq,
            Some(next) if seq == 1 && next as usize > 1 + self.config.window => {
                // A restart: whatever was held belongs to the old sequence.
                self.held.clear();
                self.deadline = None;
                self.out.push_back(Arbitrated::Restart { last: next - 1 });
                1
            }
            Some(next) => next,
        };
        if seq < next || self.held.contains_key(&seq) {
            self.counts.duplicates += 1;
            self.next = Some(next);
            return;
        }
        if seq == next {
            self.deliver(seq, feed, packet);
            self.drain();
        } else {
            self.next = Some(next);
            self.held.insert(seq, (feed, packet));
            self.deadline.get_or_insert(now + self.config.gap_wait);
            if self.held.len() > self.config.window {
                self.give_up(now);
            }
        }
    }

    fn deliver(&mut self, seq: u32, feed: Feed, packet: P) {
        self.counts.delivered += 1;
        self.out.push_back(Arbitrated::Packet { seq, feed, packet });
        self.next = Some(seq.wrapping_add(1));
    }

    /// Hands on the held packets that now follow in sequence.
    fn drain(&mut self) {
        while let Some(next) = self.next {
            let Some((feed, packet)) = self.held.remove(&next) else { break };
            self.deliver(next, feed, packet);
        }
        self.deadline = if self.held.is_empty() { None } else { self.deadline };
    }

    /// The missing numbers are lost: report the gap and go on from the first held packet
    /// (waiting afresh if another number is missing after it).
    fn give_up(&mut self, now: Instant) {
        let (Some(next), Some((&first, _))) = (self.next, self.held.first_key_value()) else { return };
        self.counts.gaps += 1;
        self.counts.lost += u64::from(first - next);
        self.out.push_back(Arbitrated::Gap { from: next, to: first - 1 });
        self.next = Some(first);
        self.drain();
        self.deadline = (!self.held.is_empty()).then(|| now + self.config.gap_wait);
    }

    /// What follows, in order.
    pub fn poll(&mut self) -> Option<Arbitrated<P>> {
        self.out.pop_front()
    }

    /// When [`Arbiter::handle_timeout`] is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// The wait for a missing number ended: it is a gap.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| now >= d) {
            self.give_up(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn drain(a: &mut Arbiter<u32>) -> Vec<Arbitrated<u32>> {
        std::iter::from_fn(|| a.poll()).collect()
    }

    fn seqs(out: &[Arbitrated<u32>]) -> Vec<u32> {
        out.iter()
            .filter_map(|o| match o {
                Arbitrated::Packet { seq, .. } => Some(*seq),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn first_copy_wins_and_order_is_kept() {
        let now = Instant::now();
        let mut a = Arbiter::new(ArbiterConfig::default());
        a.packet(now, Feed::A, 10, 10);
        a.packet(now, Feed::B, 10, 10);
        a.packet(now, Feed::B, 12, 12); // 11 late on both: held
        a.packet(now, Feed::A, 11, 11);
        a.packet(now, Feed::A, 12, 12);
        let out = drain(&mut a);
        assert_eq!(seqs(&out), [10, 11, 12]);
        assert!(matches!(out[2], Arbitrated::Packet { feed: Feed::B, .. }), "B's 12 came first");
        assert_eq!(a.counts(), Counts { delivered: 3, duplicates: 2, lost: 0, gaps: 0 });
        assert_eq!(a.poll_timeout(), None);
    }

    #[test]
    fn a_number_lost_on_both_feeds_is_a_gap_after_the_wait() {
        let now = Instant::now();
        let mut a = Arbiter::new(ArbiterConfig { gap_wait: Duration::from_millis(5), window: 100 });
        a.packet(now, Feed::A, 1, 1);
        a.packet(now, Feed::A, 4, 4);
        a.packet(now, Feed::B, 5, 5);
        assert_eq!(seqs(&drain(&mut a)), [1]);
        assert_eq!(a.poll_timeout(), Some(now + Duration::from_millis(5)));
        a.handle_timeout(now + Duration::from_millis(4));
        assert!(drain(&mut a).is_empty(), "not yet");
        a.handle_timeout(now + Duration::from_millis(5));
        let out = drain(&mut a);
        assert_eq!(out[0], Arbitrated::Gap { from: 2, to: 3 });
        assert_eq!(seqs(&out), [4, 5]);
        assert_eq!(a.counts().lost, 2);
        // A late copy of a lost number is a duplicate now.
        a.packet(now, Feed::B, 3, 3);
        assert_eq!(a.counts().duplicates, 1);
    }

    #[test]
    fn a_full_window_gives_up_at_once() {
        let now = Instant::now();
        let mut a = Arbiter::new(ArbiterConfig { gap_wait: Duration::from_secs(60), window: 3 });
        a.packet(now, Feed::A, 1, 1);
        for seq in 3..=6 {
            a.packet(now, Feed::A, seq, seq);
        }
        let out = drain(&mut a);
        assert_eq!(out[1], Arbitrated::Gap { from: 2, to: 2 });
        assert_eq!(seqs(&out), [1, 3, 4, 5, 6]);
    }

    #[test]
    fn a_restart_at_one_starts_over() {
        let now = Instant::now();
        let mut a = Arbiter::new(ArbiterConfig { gap_wait: Duration::from_millis(10), window: 10 });
        for seq in 100..103 {
            a.packet(now, Feed::A, seq, seq);
        }
        a.packet(now, Feed::A, 1, 1);
        a.packet(now, Feed::B, 1, 1);
        a.packet(now, Feed::B, 2, 2);
        let out = drain(&mut a);
        assert_eq!(out[3], Arbitrated::Restart { last: 102 });
        assert_eq!(seqs(&out), [100, 101, 102, 1, 2]);
        assert_eq!(a.counts().duplicates, 1);
        // Early in a sequence, a lagging copy of packet 1 is a duplicate, not a restart.
        let mut a = Arbiter::new(ArbiterConfig { gap_wait: Duration::from_millis(10), window: 10 });
        for seq in 1..5 {
            a.packet(now, Feed::A, seq, seq);
        }
        a.packet(now, Feed::B, 1, 1);
        assert!(!drain(&mut a).iter().any(|o| matches!(o, Arbitrated::Restart { .. })));
        assert_eq!(a.counts().duplicates, 1);
    }

    proptest! {
        /// Each packet sent on both feeds, each copy lost with some chance and delayed by a
        /// few places: every number that arrived on either feed is handed on exactly once, in
        /// order, and every number lost on both is inside a reported gap.
        #[test]
        fn arbitration_delivers_each_number_once_in_order(
            n in 1u32..300,
            loss_a in 0u32..40,
            loss_b in 0u32..40,
            seed in any::<u64>(),
        ) {
            let mut rng = seed;
            let mut roll = move |below: u32| {
                rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
                (rng % u64::from(below.max(1))) as u32
            };
            // (arrival slot, feed, seq)
            let mut arrivals = Vec::new();
            let mut arrived = std::collections::BTreeSet::new();
            for seq in 1..=n {
                for (feed, loss) in [(Feed::A, loss_a), (Feed::B, loss_b)] {
                    if roll(100) >= loss {
                        arrivals.push((seq * 4 + roll(12), feed, seq));
                        arrived.insert(seq);
                    }
                }
            }
            arrivals.sort_by_key(|&(slot, feed, seq)| (slot, feed == Feed::B, seq));
            prop_assume!(!arrivals.is_empty());
            // The arbiter starts at the first packet it sees; earlier numbers are duplicates.
            let first = arrivals[0].2;
            let start = Instant::now();
            let mut a = Arbiter::new(ArbiterConfig { gap_wait: Duration::from_millis(50), window: 64 });
            let mut out = Vec::new();
            for (slot, feed, seq) in arrivals {
                let now = start + Duration::from_micros(u64::from(slot));
                a.handle_timeout(now);
                a.packet(now, feed, seq, seq);
                out.extend(drain(&mut a));
            }
            while let Some(t) = a.poll_timeout() {
                a.handle_timeout(t);
            }
            out.extend(drain(&mut a));
            let got = seqs(&out);
            let expected: Vec<u32> = arrived.iter().copied().filter(|&s| s >= first).collect();
            prop_assert_eq!(&got, &expected);
            let lost: u64 = out.iter().map(|o| match o {
                Arbitrated::Gap { from, to } => u64::from(to - from + 1),
                _ => 0,
            }).sum();
            // Every number from the first to the last handed on either came or is in a gap.
            let last = *expected.last().expect("the first one at least");
            prop_assert_eq!(lost, u64::from(last - first + 1) - expected.len() as u64);
        }
    }
}
