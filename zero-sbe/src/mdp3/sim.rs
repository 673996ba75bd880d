//! A simulated MDP 3.0 exchange, for tests and benchmarks: books changed at random (every
//! update valid for the book it changes), incremental packets carrying them, snapshots of the
//! books, channel resets; the true books and their history kept for comparison.

use std::collections::HashMap;

use super::book::{Action, Book, BookSide, Level};
use super::packet;
use super::templates::{self as t, md_incremental_refresh_book46 as inc, snapshot_full_refresh52 as snap};

/// A small xorshift generator: a run is replayable from its seed.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// One book entry as the exchange sends it.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// SecurityID.
    pub id: i32,
    /// RptSeq.
    pub rpt: u32,
    /// The side.
    pub side: BookSide,
    /// MDUpdateAction.
    pub action: Action,
    /// MDPriceLevel.
    pub level: u8,
    /// MDEntryPx's mantissa.
    pub px: i64,
    /// MDEntrySize.
    pub qty: i32,
}

/// The exchange: the true books, their history by RptSeq, and the packets it sent. A channel
/// reset starts RptSeq over, so one RptSeq may name a book of each reset's era: all are kept.
#[derive(Debug)]
pub struct Exchange {
    /// Each instrument's book and RptSeq.
    pub books: HashMap<i32, (Book, u32)>,
    /// Every book each instrument had, by RptSeq (unless [`Exchange::forgetful`]).
    pub history: HashMap<(i32, u32), Vec<Book>>,
    /// The last MsgSeqNum sent.
    pub seq: u32,
    depth: usize,
    keep_history: bool,
}

impl Exchange {
    /// An exchange of `instruments` instruments (ids 1 and up), books `depth` deep.
    pub fn new(instruments: i32, depth: usize) -> Exchange {
        let books = (1..=instruments).map(|id| (id, (Book::new(depth, 2), 0))).collect();
        let history = (1..=instruments).map(|id| ((id, 0), vec![Book::new(depth, 2)])).collect();
        Exchange { books, history, seq: 0, depth, keep_history: true }
    }

    /// The same, keeping no history (for long benchmark streams).
    pub fn forgetful(mut self) -> Exchange {
        self.keep_history = false;
        self.history.clear();
        self
    }

    /// A valid random entry for instrument `id`, applied to the truth.
    pub fn entry(&mut self, rng: &mut Rng, id: i32) -> Entry {
        let depth = self.depth;
        let (book, rpt) = self.books.get_mut(&id).expect("known");
        let side = if rng.below(2) == 0 { BookSide::Bid } else { BookSide::Offer };
        let len = if side == BookSide::Bid { book.bids.levels().len() } else { book.offers.levels().len() };
        let (action, level) = match rng.below(10) {
            0..=4 if len < depth => (Action::New, 1 + rng.below(len as u64 + 1) as u8),
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
        if self.keep_history {
            self.history.entry((id, *rpt)).or_default().push(book.clone());
        }
        Entry { id, rpt: *rpt, side, action, level, px, qty }
    }

    /// The next incremental packet: 1 to 3 messages of 1 to 4 entries, the last one ending
    /// the event.
    pub fn incremental(&mut self, rng: &mut Rng) -> Vec<u8> {
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
    pub fn reset(&mut self) -> Vec<u8> {
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
    pub fn snapshot(&self, seq: u32, id: i32) -> Vec<u8> {
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

/// An MDIncrementalRefreshBook46 carrying `entries`, ending the event if `end`.
pub fn book_message(entries: &[Entry], end: bool) -> Vec<u8> {
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
