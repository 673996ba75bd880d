//! A simulated MDP 3.0 exchange, for tests and benchmarks: books changed at random (every
//! update valid for the book it changes), trades and statistics in the same RptSeq sequence,
//! orders (market by order) when asked, incremental packets carrying them, snapshots of the
//! books, channel resets; the true books and their history kept for comparison.
//!
//! The template mix (of the messages in a packet): 70% book updates (46), 20% trade summaries
//! (48), 10% volume and session statistics (37, 51); with orders, half the book updates give
//! way to order updates (47), and the book updates carry order entries too. It is an
//! assumption, not a measurement of CME's feeds: book updates dominate every channel, trades
//! follow.

use std::collections::HashMap;

use super::book::{Action, Book, BookSide, Level};
use super::orders::{Order, OrderAction, OrderBook, Side};
use super::packet;
use super::templates::{
    self as t, md_incremental_refresh_book46 as inc, snapshot_full_refresh52 as snap,
    snapshot_full_refresh_order_book53 as order_snap,
};

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

/// One order entry as the exchange sends it.
#[derive(Debug, Clone, Copy)]
pub struct OrderEntry {
    /// SecurityID.
    pub id: i32,
    /// What happened to the order.
    pub action: OrderAction,
    /// The order (for a Delete, as it was).
    pub order: Order,
}

/// The exchange: the true books, their history, and the packets it sent. A channel reset
/// starts RptSeq over, so one RptSeq may name a book of each reset's era: all are kept.
#[derive(Debug)]
pub struct Exchange {
    /// Each instrument's book and RptSeq.
    pub books: HashMap<i32, (Book, u32)>,
    /// Every book each instrument had, by RptSeq (unless [`Exchange::forgetful`]).
    pub history: HashMap<(i32, u32), Vec<Book>>,
    /// Each instrument's orders (with [`Exchange::with_orders`]).
    pub orders: HashMap<i32, OrderBook>,
    /// Every order book each instrument had (unless forgetful).
    pub order_history: HashMap<i32, Vec<OrderBook>>,
    /// The last MsgSeqNum sent.
    pub seq: u32,
    depth: usize,
    keep_history: bool,
    keep_orders: bool,
    next_order: u64,
    next_trade: u32,
}

impl Exchange {
    /// An exchange of `instruments` instruments (ids 1 and up), books `depth` deep.
    pub fn new(instruments: i32, depth: usize) -> Exchange {
        let books = (1..=instruments).map(|id| (id, (Book::new(depth, 2), 0))).collect();
        let history = (1..=instruments).map(|id| ((id, 0), vec![Book::new(depth, 2)])).collect();
        Exchange {
            books,
            history,
            orders: HashMap::new(),
            order_history: HashMap::new(),
            seq: 0,
            depth,
            keep_history: true,
            keep_orders: false,
            next_order: 0,
            next_trade: 0,
        }
    }

    /// The same, keeping no history (for long benchmark streams).
    pub fn forgetful(mut self) -> Exchange {
        self.keep_history = false;
        self.history.clear();
        self.order_history.clear();
        self
    }

    /// The same, with orders (market by order).
    pub fn with_orders(mut self) -> Exchange {
        self.keep_orders = true;
        for &id in self.books.keys() {
            self.orders.insert(id, OrderBook::new());
            if self.keep_history {
                self.order_history.insert(id, vec![OrderBook::new()]);
            }
        }
        self
    }

    /// The next RptSeq of instrument `id`, its book unchanged (a trade, a statistic).
    fn sequence(&mut self, id: i32) -> u32 {
        let (book, rpt) = self.books.get_mut(&id).expect("known");
        *rpt += 1;
        if self.keep_history {
            self.history.entry((id, *rpt)).or_default().push(book.clone());
        }
        *rpt
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
        let px = price(rng);
        let qty = 1 + rng.below(500) as i32;
        let update = Level { price: px, qty, orders: None };
        book.apply(side, action, level, update).expect("the exchange makes valid updates");
        *rpt += 1;
        if self.keep_history {
            self.history.entry((id, *rpt)).or_default().push(book.clone());
        }
        Entry { id, rpt: *rpt, side, action, level, px, qty }
    }

    /// A valid random order update for instrument `id` (a new order at `at`, if given),
    /// applied to the truth.
    pub fn order_entry(&mut self, rng: &mut Rng, id: i32, at: Option<(Side, i64)>) -> OrderEntry {
        let book = self.orders.get_mut(&id).expect("orders are kept");
        let any = |rng: &mut Rng| {
            let k = rng.below(book.len() as u64) as usize;
            *book.bids().chain(book.offers()).nth(k).expect("k < len")
        };
        self.next_order += 1;
        // A tenth of the updates are new orders, none past 40 resting orders (but those a new
        // level brings): books stay about that size.
        let roll = if book.len() > 40 { rng.below(9) } else { rng.below(10) };
        let (action, order) = if at.is_some() || book.is_empty() || roll == 9 {
            let (side, px) =
                at.unwrap_or_else(|| (if rng.below(2) == 0 { Side::Bid } else { Side::Offer }, price(rng)));
            let id = 1_000_000 + self.next_order;
            let order =
                Order { id, side, price: px, qty: 1 + rng.below(50) as i32, priority: self.next_order };
            (OrderAction::New, order)
        } else if roll <= 3 {
            let mut o = any(rng);
            o.qty = 1 + rng.below(50) as i32;
            if rng.below(3) == 0 {
                o.price = price(rng);
                o.priority = self.next_order;
            }
            (OrderAction::Change, o)
        } else if roll <= 6 {
            (OrderAction::Delete, any(rng))
        } else {
            (OrderAction::Change, any(rng))
        };
        book.apply(action, order).expect("the exchange makes valid order updates");
        if self.keep_history {
            self.order_history.entry(id).or_default().push(book.clone());
        }
        OrderEntry { id, action, order }
    }

    /// The next incremental packet: 1 to 3 messages (the mix of the module's doc), the last
    /// one ending the event.
    pub fn incremental(&mut self, rng: &mut Rng) -> Vec<u8> {
        self.seq += 1;
        let n = self.books.len() as u64;
        let mut messages = Vec::new();
        let count = 1 + rng.below(3);
        for m in 0..count {
            let end = m + 1 == count;
            let kind = rng.below(100);
            let message = match kind {
                0..=19 => {
                    let trades: Vec<(i32, u32, u32)> = (0..1 + rng.below(2))
                        .map(|_| {
                            let id = 1 + rng.below(n) as i32;
                            self.next_trade += 1;
                            (id, self.sequence(id), self.next_trade)
                        })
                        .collect();
                    trade_message(rng, &trades, end)
                }
                20..=29 => {
                    let id = 1 + rng.below(n) as i32;
                    let rpt = self.sequence(id);
                    statistics_message(rng, id, rpt, end)
                }
                30..=64 if self.keep_orders => {
                    let entries: Vec<OrderEntry> = (0..1 + rng.below(3))
                        .map(|_| {
                            let id = 1 + rng.below(n) as i32;
                            self.order_entry(rng, id, None)
                        })
                        .collect();
                    order_message(&entries, end)
                }
                _ => {
                    let entries: Vec<Entry> = (0..1 + rng.below(4))
                        .map(|_| {
                            let id = 1 + rng.below(n) as i32;
                            self.entry(rng, id)
                        })
                        .collect();
                    // With orders, each new level brings a new order (ReferenceID).
                    let mut orders = Vec::new();
                    for (k, e) in entries.iter().enumerate() {
                        if self.keep_orders && e.action == Action::New && rng.below(2) == 0 {
                            let side = if e.side == BookSide::Bid { Side::Bid } else { Side::Offer };
                            orders.push((k as u8 + 1, self.order_entry(rng, e.id, Some((side, e.px)))));
                        }
                    }
                    book_message(&entries, &orders, end)
                }
            };
            messages.push(message);
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
        for (id, orders) in self.orders.iter_mut() {
            orders.clear();
            self.order_history.entry(*id).or_default().push(OrderBook::new());
        }
        let mut msg = Vec::new();
        let mut r = t::channel_reset4::Encoder::new(&mut msg);
        r.set_transact_time(1).set_match_event_indicator(t::MatchEventIndicator(0x80));
        r.no_md_entries(1).entry().set_appl_id(1);
        let mut out = Vec::new();
        packet::write(self.seq, 0, &[&msg], &mut out);
        out
    }

    /// A snapshot packet of instrument `id`'s book by price, as of the last packet sent.
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

    /// The order snapshot of instrument `id`, as of the last packet sent: one packet per
    /// chunk of at most `per_chunk` orders (numbered from `seq`), an empty book in one.
    pub fn order_snapshot(&self, seq: u32, id: i32, per_chunk: usize) -> Vec<Vec<u8>> {
        let orders: Vec<Order> = self.orders[&id].bids().chain(self.orders[&id].offers()).copied().collect();
        let chunks: Vec<&[Order]> =
            if orders.is_empty() { vec![&[]] } else { orders.chunks(per_chunk.max(1)).collect() };
        let count = chunks.len() as u32;
        (chunks.into_iter().zip(1..))
            .map(|(chunk, k)| {
                let mut msg = Vec::new();
                let mut s = order_snap::Encoder::new(&mut msg);
                s.set_last_msg_seq_num_processed(self.seq)
                    .set_tot_num_reports(self.books.len() as u32)
                    .set_security_id(id)
                    .set_no_chunks(count)
                    .set_current_chunk(k)
                    .set_transact_time(1);
                let mut g = s.no_md_entries(chunk.len());
                for o in chunk {
                    let mut e = g.entry();
                    e.set_order_id(o.id).set_md_order_priority(Some(o.priority));
                    e.md_entry_px().set_mantissa(o.price);
                    e.set_md_display_qty(o.qty).set_md_entry_type(t::MDEntryTypeBook(side_char(o.side)));
                }
                let mut out = Vec::new();
                packet::write(seq + k - 1, 0, &[&msg], &mut out);
                out
            })
            .collect()
    }
}

fn price(rng: &mut Rng) -> i64 {
    4_000_000_000_000 + rng.below(100) as i64 * 250_000_000
}

fn side_char(side: Side) -> u8 {
    match side {
        Side::Bid => b'0',
        Side::Offer => b'1',
    }
}

fn indicator(end: bool) -> t::MatchEventIndicator {
    t::MatchEventIndicator(if end { 0x80 } else { 0 })
}

/// An MDIncrementalRefreshBook46 carrying `entries` and `orders` (each with the 1-based
/// index of its entry), ending the event if `end`.
pub fn book_message(entries: &[Entry], orders: &[(u8, OrderEntry)], end: bool) -> Vec<u8> {
    let mut msg = Vec::new();
    let mut m = inc::Encoder::new(&mut msg);
    m.set_transact_time(1).set_match_event_indicator(indicator(end));
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
    let mut g = m.no_order_id_entries(orders.len());
    for (reference, o) in orders {
        g.entry()
            .set_order_id(o.order.id)
            .set_md_order_priority(Some(o.order.priority))
            .set_md_display_qty(Some(o.order.qty))
            .set_reference_id(Some(*reference))
            .set_order_update_action(t::OrderUpdateAction(order_action(o.action)));
    }
    msg
}

fn order_action(a: OrderAction) -> u8 {
    match a {
        OrderAction::New => 0,
        OrderAction::Change => 1,
        OrderAction::Delete => 2,
    }
}

/// An MDIncrementalRefreshOrderBook47 carrying `entries`.
pub fn order_message(entries: &[OrderEntry], end: bool) -> Vec<u8> {
    let mut msg = Vec::new();
    let mut m = t::md_incremental_refresh_order_book47::Encoder::new(&mut msg);
    m.set_transact_time(1).set_match_event_indicator(indicator(end));
    let mut g = m.no_md_entries(entries.len());
    for e in entries {
        let mut w = g.entry();
        w.set_order_id(Some(e.order.id)).set_md_order_priority(Some(e.order.priority));
        w.md_entry_px().set_mantissa(Some(e.order.price));
        w.set_md_display_qty(Some(e.order.qty))
            .set_security_id(e.id)
            .set_md_update_action(t::MDUpdateAction(order_action(e.action)))
            .set_md_entry_type(t::MDEntryTypeBook(side_char(e.order.side)));
    }
    msg
}

/// An MDIncrementalRefreshTradeSummary48 of one trade per (SecurityID, RptSeq,
/// MDTradeEntryID).
pub fn trade_message(rng: &mut Rng, trades: &[(i32, u32, u32)], end: bool) -> Vec<u8> {
    let mut msg = Vec::new();
    let mut m = t::md_incremental_refresh_trade_summary48::Encoder::new(&mut msg);
    m.set_transact_time(1).set_match_event_indicator(indicator(end));
    let mut g = m.no_md_entries(trades.len());
    for &(id, rpt, trade_id) in trades {
        let mut w = g.entry();
        w.md_entry_px().set_mantissa(price(rng));
        w.set_md_entry_size(1 + rng.below(20) as i32)
            .set_security_id(id)
            .set_rpt_seq(rpt)
            .set_number_of_orders(2)
            .set_aggressor_side(Some(t::AggressorSide(1 + rng.below(2) as u8)))
            .set_md_update_action(t::MDUpdateAction(0))
            .set_md_trade_entry_id(Some(trade_id));
    }
    m.no_order_id_entries(0);
    msg
}

/// A volume (37) or session statistics (51) message of one entry.
pub fn statistics_message(rng: &mut Rng, id: i32, rpt: u32, end: bool) -> Vec<u8> {
    let mut msg = Vec::new();
    if rng.below(2) == 0 {
        let mut m = t::md_incremental_refresh_volume37::Encoder::new(&mut msg);
        m.set_transact_time(1).set_match_event_indicator(indicator(end));
        m.no_md_entries(1)
            .entry()
            .set_md_entry_size(rng.below(100_000) as i32)
            .set_security_id(id)
            .set_rpt_seq(rpt)
            .set_md_update_action(t::MDUpdateAction(0));
    } else {
        let mut m = t::md_incremental_refresh_session_statistics51::Encoder::new(&mut msg);
        m.set_transact_time(1).set_match_event_indicator(indicator(end));
        let mut g = m.no_md_entries(1);
        let mut w = g.entry();
        w.md_entry_px().set_mantissa(price(rng));
        w.set_security_id(id)
            .set_rpt_seq(rpt)
            .set_open_close_settl_flag(None)
            .set_md_update_action(t::MDUpdateAction(0))
            .set_md_entry_type(t::MDEntryTypeStatistics(b'7'))
            .set_md_entry_size(None);
    }
    msg
}
