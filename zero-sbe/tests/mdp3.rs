//! The MDP 3.0 channel driven by a generated exchange: books changed at random on a few
//! instruments, packets copied to feeds A and B with loss, reordering and duplication, a
//! snapshot loop answering while the channel recovers, channel resets. Whatever happens, every
//! book the channel publishes equals the loss-free book at the same RptSeq, and once the
//! stream ends and recovery is done, every book is the exchange's.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use zero_sbe::mdp3::arbiter::{ArbiterConfig, Feed};
use zero_sbe::mdp3::book::{Action, Book, BookSide, Level};
use zero_sbe::mdp3::channel::{Channel, ChannelConfig, Event, State};
use zero_sbe::mdp3::packet;
use zero_sbe::mdp3::templates::{
    self as t, md_incremental_refresh_book46 as inc, snapshot_full_refresh52 as snap,
};

const DEPTH: usize = 5;

/// A small xorshift generator: the test is replayable from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// One book entry as the exchange sends it.
#[derive(Clone, Copy)]
struct Entry {
    id: i32,
    rpt: u32,
    side: BookSide,
    action: Action,
    level: u8,
    px: i64,
    qty: i32,
}

/// The exchange: the true books, their history by RptSeq, and the packets it sent. A channel
/// reset starts RptSeq over, so one RptSeq may name a book of each reset's era: all are kept.
struct Exchange {
    books: HashMap<i32, (Book, u32)>,
    history: HashMap<(i32, u32), Vec<Book>>,
    seq: u32,
}

impl Exchange {
    fn new(instruments: i32) -> Exchange {
        let books = (1..=instruments).map(|id| (id, (Book::new(DEPTH, 2), 0))).collect();
        let history = (1..=instruments).map(|id| ((id, 0), vec![Book::new(DEPTH, 2)])).collect();
        Exchange { books, history, seq: 0 }
    }

    /// A valid random entry for instrument `id`, applied to the truth.
    fn entry(&mut self, rng: &mut Rng, id: i32) -> Entry {
        let (book, rpt) = self.books.get_mut(&id).expect("known");
        let side = if rng.below(2) == 0 { BookSide::Bid } else { BookSide::Offer };
        let len = if side == BookSide::Bid { book.bids.levels().len() } else { book.offers.levels().len() };
        let (action, level) = match rng.below(10) {
            0..=4 if len < DEPTH => (Action::New, 1 + rng.below(len as u64 + 1) as u8),
            _ if len == 0 => (Action::New, 1),
            5..=6 => (Action::Change, 1 + rng.below(len as u64) as u8),
            7..=8 => (Action::Delete, 1 + rng.below(len as u64) as u8),
            9 if rng.below(4) == 0 => (Action::DeleteThru, 1),
            _ => (Action::Change, 1),
        };
        let px = 4_000_000_000_000 + rng.below(100) as i64 * 250_000_000;
        let qty = 1 + rng.below(500) as i32;
        let update = Level { price: px, qty, orders: None };
        book.apply(side, action, level, update).expect("the exchange makes valid updates");
        *rpt += 1;
        self.history.entry((id, *rpt)).or_default().push(book.clone());
        Entry { id, rpt: *rpt, side, action, level, px, qty }
    }

    /// The next incremental packet: 1 to 3 messages of 1 to 4 entries, the last one ending
    /// the event.
    fn incremental(&mut self, rng: &mut Rng) -> Vec<u8> {
        self.seq += 1;
        let n = self.books.len() as u64;
        let mut messages = Vec::new();
        let count = 1 + rng.below(3);
        for m in 0..count {
            let entries: Vec<Entry> = (0..1 + rng.below(4))
                .map(|_| {
                    let id = 1 + rng.below(n) as i32;
                    self.entry(rng, id)
                })
                .collect();
            messages.push(book_message(&entries, m + 1 == count));
        }
        let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let mut out = Vec::new();
        packet::write(self.seq, 1_000 + u64::from(self.seq), &refs, &mut out);
        out
    }

    /// A ChannelReset4: every book emptied, every RptSeq 0.
    fn reset(&mut self) -> Vec<u8> {
        self.seq += 1;
        for (id, (book, rpt)) in self.books.iter_mut() {
            book.clear();
            *rpt = 0;
            self.history.entry((*id, 0)).or_default().push(book.clone());
        }
        let mut msg = Vec::new();
        let mut r = t::channel_reset4::Encoder::new(&mut msg);
        r.set_transact_time(1).set_match_event_indicator(t::MatchEventIndicator(0x80));
        r.no_md_entries(1).entry().set_appl_id(1);
        let mut out = Vec::new();
        packet::write(self.seq, 0, &[&msg], &mut out);
        out
    }

    /// A snapshot packet of instrument `id` as of the last packet sent.
    fn snapshot(&self, seq: u32, id: i32) -> Vec<u8> {
        let (book, rpt) = &self.books[&id];
        let mut msg = Vec::new();
        let mut s = snap::Encoder::new(&mut msg);
        s.set_last_msg_seq_num_processed(self.seq)
            .set_tot_num_reports(self.books.len() as u32)
            .set_security_id(id)
            .set_rpt_seq(*rpt)
            .set_transact_time(1)
            .set_last_update_time(1);
        let levels: Vec<(u8, usize, Level)> = [(b'0', &book.bids), (b'1', &book.offers)]
            .into_iter()
            .flat_map(|(c, side)| side.levels().iter().enumerate().map(move |(i, l)| (c, i, *l)))
            .collect();
        let mut g = s.no_md_entries(levels.len());
        for (c, i, l) in levels {
            let mut e = g.entry();
            e.md_entry_px().set_mantissa(Some(l.price));
            e.set_md_entry_size(Some(l.qty))
                .set_md_price_level(Some(i as i8 + 1))
                .set_md_entry_type(t::MDEntryType(c));
        }
        let mut out = Vec::new();
        packet::write(seq, 0, &[&msg], &mut out);
        out
    }
}

fn book_message(entries: &[Entry], end: bool) -> Vec<u8> {
    let mut msg = Vec::new();
    let mut m = inc::Encoder::new(&mut msg);
    m.set_transact_time(1).set_match_event_indicator(t::MatchEventIndicator(if end { 0x80 } else { 0 }));
    let mut g = m.no_md_entries(entries.len());
    for e in entries {
        let mut w = g.entry();
        w.md_entry_px().set_mantissa(Some(e.px));
        let side = match e.side {
            BookSide::Bid => b'0',
            BookSide::Offer => b'1',
            BookSide::ImpliedBid => b'E',
            BookSide::ImpliedOffer => b'F',
        };
        let action = match e.action {
            Action::New => 0,
            Action::Change => 1,
            Action::Delete => 2,
            Action::DeleteThru => 3,
            Action::DeleteFrom => 4,
            Action::Overlay => 5,
        };
        w.set_md_entry_size(Some(e.qty))
            .set_security_id(e.id)
            .set_rpt_seq(e.rpt)
            .set_md_price_level(e.level)
            .set_md_update_action(t::MDUpdateAction(action))
            .set_md_entry_type(t::MDEntryTypeBook(side));
    }
    m.no_order_id_entries(0);
    msg
}

/// Runs a channel against an exchange; returns how many books were published and checked.
fn run(seed: u64, packets: usize, loss_a: u64, loss_b: u64, resets: bool) -> (usize, Channel) {
    let mut rng = Rng(seed | 1);
    let mut ex = Exchange::new(4);
    let config = ChannelConfig {
        arbiter: ArbiterConfig { gap_wait: Duration::from_millis(5), window: 32 },
        depth: DEPTH,
        ..Default::default()
    };
    let mut ch = Channel::new(config);
    let start = Instant::now();
    let mut snapshot_seq = 0u32;
    let mut joined = true; // a channel starts recovering
    let mut checked = 0;
    let mut pending: Vec<(u64, Feed, Vec<u8>)> = Vec::new();
    let mut slot = 0u64;
    let step = |ch: &mut Channel, joined: &mut bool, checked: &mut usize, ex: &Exchange| {
        while let Some(e) = ch.poll_event() {
            match e {
                Event::Published(id) => {
                    let rpt = ch.rpt_seq(id).expect("a published book is not stale");
                    let book = ch.book(id).expect("published");
                    let truths = &ex.history[&(id, rpt)];
                    assert!(
                        truths.contains(book),
                        "instrument {id} at RptSeq {rpt} (seed {seed}): {book:?} is none of {truths:?}"
                    );
                    *checked += 1;
                }
                Event::JoinSnapshots => *joined = true,
                Event::LeaveSnapshots => *joined = false,
                _ => {}
            }
        }
    };
    for n in 0..packets {
        let bytes =
            if resets && n > 0 && rng.below(200) == 0 { ex.reset() } else { ex.incremental(&mut rng) };
        for (feed, loss) in [(Feed::A, loss_a), (Feed::B, loss_b)] {
            if rng.below(100) >= loss {
                pending.push((slot + rng.below(6), feed, bytes.clone()));
                if rng.below(50) == 0 {
                    pending.push((slot + rng.below(10), feed, bytes.clone())); // a duplicate
                }
            }
        }
        slot += 3;
        pending.sort_by_key(|p| p.0);
        let due: Vec<_> = pending.iter().take_while(|p| p.0 <= slot).cloned().collect();
        pending.drain(..due.len());
        for (at, feed, p) in due {
            let now = start + Duration::from_micros(at * 100);
            ch.handle_timeout(now);
            ch.incremental(now, feed, &p);
            step(&mut ch, &mut joined, &mut checked, &ex);
        }
        // The snapshot loop: one instrument's snapshot every other packet while joined.
        if joined && n % 2 == 0 {
            snapshot_seq += 1;
            let id = 1 + (snapshot_seq % 4) as i32;
            ch.snapshot(&ex.snapshot(snapshot_seq, id));
            step(&mut ch, &mut joined, &mut checked, &ex);
        }
    }
    // The rest arrives, the gap waits end, and the loop runs until the channel is in sync.
    for (at, feed, p) in std::mem::take(&mut pending) {
        let now = start + Duration::from_micros(at * 100);
        ch.handle_timeout(now);
        ch.incremental(now, feed, &p);
        step(&mut ch, &mut joined, &mut checked, &ex);
    }
    ch.handle_timeout(start + Duration::from_secs(3600));
    step(&mut ch, &mut joined, &mut checked, &ex);
    for k in 0..64 {
        if ch.state() == State::InSync {
            break;
        }
        ch.snapshot(&ex.snapshot(snapshot_seq + k, 1 + (k % 4) as i32));
        step(&mut ch, &mut joined, &mut checked, &ex);
    }
    assert_eq!(ch.state(), State::InSync, "seed {seed}");
    for (id, (book, _)) in &ex.books {
        assert_eq!(ch.book(*id), Some(book), "instrument {id} at the end (seed {seed})");
    }
    (checked, ch)
}

#[test]
fn a_loss_free_feed_publishes_every_event() {
    let (checked, ch) = run(7, 300, 0, 0, false);
    assert!(checked > 200, "{checked}");
    assert_eq!(ch.arbitration().lost, 0);
    assert!(ch.arbitration().duplicates >= 300, "every B copy is a duplicate");
}

#[test]
fn loss_on_one_feed_is_covered_by_the_other() {
    let (_, ch) = run(11, 400, 30, 0, false);
    assert_eq!(ch.arbitration().lost, 0);
}

#[test]
fn loss_on_both_feeds_recovers_from_snapshots() {
    let (checked, ch) = run(13, 600, 20, 20, false);
    assert!(ch.arbitration().gaps > 0, "the test made gaps");
    assert!(ch.counts().snapshots > 4, "it recovered more than once at start");
    assert!(checked > 50, "{checked}");
}

#[test]
fn channel_resets_empty_the_books() {
    run(17, 800, 5, 5, true);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]
    /// Any seed, any loss on either feed, resets or not: published books are always right.
    #[test]
    fn published_books_are_always_the_loss_free_books(
        seed in any::<u64>(),
        loss_a in 0u64..40,
        loss_b in 0u64..40,
        resets in any::<bool>(),
    ) {
        run(seed, 300, loss_a, loss_b, resets);
    }
}
