//! One MDP 3.0 channel: the incremental feeds (A and B) arbitrated, books kept per
//! instrument (by price, and by order when asked), gaps recovered from the snapshot loops.
//! Sans-I/O: the driver hands in packets and time, and acts on the [`Event`]s (join or leave
//! the snapshot feeds, read a published book, take a trade or a statistic).
//!
//! ## The recovery state machine
//! Two states, [`State::InSync`] and [`State::Recovering`]; the rules, each tested:
//! 1. A channel starts Recovering: no book is known until its snapshot is applied.
//! 2. In sync, each incremental entry that carries RptSeq (83) must carry its instrument's
//!    next: book levels (46), trades (48), volume (37), statistics (49, 51) and limits (50)
//!    share the one sequence. An entry at or below the instrument's RptSeq was applied
//!    already and is skipped. One past the next is an instrument gap: the instrument turns
//!    stale and the channel starts Recovering.
//! 3. A packet gap (lost on both feeds, from the [`Arbiter`]) makes every instrument stale:
//!    the missing packets could have touched any of them. The channel starts Recovering.
//! 4. Starting to recover: [`Event::JoinSnapshots`]; every incremental packet from then on is
//!    buffered (and still applied to the instruments that are not stale).
//! 5. A snapshot (SnapshotFullRefresh52) of a stale or unknown instrument is applied when the
//!    buffer holds every packet after its LastMsgSeqNumProcessed (369). The book becomes the
//!    snapshot's; the instrument's RptSeq becomes the snapshot's. The buffered packets after
//!    369 are replayed for that instrument by rule 2; a gap in the replay leaves it stale
//!    for the next snapshot. A snapshot too old for the buffer is skipped.
//! 6. Recovering ends when no instrument is stale and every instrument the loop announces
//!    (TotNumReports, 911) has been recovered: [`Event::LeaveSnapshots`], the buffer is
//!    dropped, and the channel is InSync.
//! 7. ChannelReset4 empties every book and sets every RptSeq to 0. The books are known
//!    (empty), so none is stale.
//! 8. Books are published ([`Event::Published`]) only at the end of an event (the
//!    MatchEventIndicator EndOfEvent bit, on whichever message carries it), and after a
//!    recovery's replay. A stale book is never published; [`Channel::book`] and
//!    [`Channel::orders`] give no book for it.
//! 9. A malformed packet or message is a packet gap for rule 3 (its content is unknown).
//! 10. Order books ([`ChannelConfig::orders`]) are stale on their own. Order entries (46's
//!     NoOrderIDEntries, 47) carry no RptSeq: the packet sequence alone orders them, so rule
//!     3 makes every order book stale and rule 2's instrument gap makes its order book stale
//!     too. An order update the book cannot take makes it stale. An order snapshot
//!     (SnapshotFullRefreshOrderBook53) is applied once its chunks (1 to NoChunks, in order,
//!     one LastMsgSeqNumProcessed) are all in, by rule 5's test; the buffered packets after
//!     369 are replayed for that instrument's orders. Each book recovers from its own
//!     snapshot; rule 6 waits for both.
//! 11. An instrument definition (MDInstrumentDefinitionFuture54, from the definition loop
//!     or the incrementals) sets the instrument's depths, outright and implied, from the
//!     MarketDepth of its GBX and GBI feed types; a Delete forgets the instrument.
//!     Instruments without a definition take [`ChannelConfig::depth`].

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Instant;

use super::arbiter::{Arbiter, ArbiterConfig, Arbitrated, Fast, Feed};
use super::book::{Action, Book, BookSide, Level};
use super::orders::{Order, OrderAction, OrderBook, Side};
use super::packet::Packet;
use super::templates::{self, Message};

/// The channel's settings.
#[derive(Debug, Clone, Copy)]
pub struct ChannelConfig {
    /// A/B arbitration.
    pub arbiter: ArbiterConfig,
    /// Outright book depth for instruments without a definition (10 for most futures).
    pub depth: usize,
    /// Implied book depth for instruments without a definition.
    pub implied_depth: usize,
    /// Keep market-by-order books too (rule 10).
    pub orders: bool,
    /// The most incremental packets held while recovering; past it the oldest go (a snapshot
    /// older than what is held then waits for the next loop).
    pub max_buffered: usize,
    /// The most instruments kept; entries for more (a hostile or misdirected feed) are
    /// ignored.
    pub max_instruments: usize,
}

impl Default for ChannelConfig {
    fn default() -> ChannelConfig {
        ChannelConfig {
            arbiter: ArbiterConfig::default(),
            depth: 10,
            implied_depth: 2,
            orders: false,
            max_buffered: 100_000,
            max_instruments: 100_000,
        }
    }
}

/// The channel's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Every known instrument's book is right.
    InSync,
    /// Some books are stale or unknown; the snapshot loop is being read.
    Recovering,
}

/// A trade (MDIncrementalRefreshTradeSummary48).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trade {
    /// SecurityID.
    pub security_id: i32,
    /// The price's mantissa (exponent -9).
    pub price: i64,
    /// The quantity traded.
    pub qty: i32,
    /// How many orders took part.
    pub orders: i32,
    /// AggressorSide (5797): 1 buy, 2 sell, none when there is no aggressor (implied, opening).
    pub aggressor: Option<u8>,
    /// MDTradeEntryID (37711).
    pub trade_id: Option<u32>,
}

/// A statistic: volume (37), daily statistics (49) and session statistics (51).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statistic {
    /// SecurityID.
    pub security_id: i32,
    /// MDEntryType (269): `e` volume; `6` settlement, `B` cleared volume, `C` open interest,
    /// `W` fixing price; `4` open, `7` high, `8` low, `N` highest bid, `O` lowest offer.
    pub kind: u8,
    /// MDUpdateAction (279).
    pub action: u8,
    /// The price's mantissa (exponent -9), if it has one.
    pub price: Option<i64>,
    /// The size, if it has one.
    pub qty: Option<i32>,
}

/// A change of trading status (SecurityStatus30), for one instrument or a whole group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// The instrument, or none for every instrument of the group.
    pub security_id: Option<i32>,
    /// SecurityGroup (1151), space or NUL padded.
    pub security_group: [u8; 6],
    /// SecurityTradingStatus (326).
    pub trading_status: Option<u8>,
    /// HaltReason (327).
    pub halt_reason: u8,
    /// SecurityTradingEvent (1174).
    pub trading_event: u8,
}

/// An instrument's definition (MDInstrumentDefinitionFuture54), the fields the channel reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    /// SecurityID.
    pub security_id: i32,
    /// Symbol (55).
    pub symbol: String,
    /// SecurityGroup (1151).
    pub security_group: String,
    /// Outright depth: MarketDepth (264) of feed type GBX.
    pub depth: usize,
    /// Implied depth: MarketDepth of feed type GBI (0 without one).
    pub implied_depth: usize,
    /// MinPriceIncrement (969), mantissa of exponent -9.
    pub min_price_increment: i64,
    /// DisplayFactor (9787), mantissa of exponent -9.
    pub display_factor: i64,
}

/// What the driver is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The instrument's books changed and are complete: read them with [`Channel::book`]
    /// and [`Channel::orders`] (a stale one gives none).
    Published(i32),
    /// A book of the instrument can no longer be trusted (rules 2, 3, 10).
    Stale(i32),
    /// A book of the instrument was rebuilt from a snapshot (rules 5, 10).
    Recovered(i32),
    /// A trade, in RptSeq order (one lost in a gap is not recovered: snapshots hold books).
    Trade(Trade),
    /// A statistic, in RptSeq order.
    Statistic(Statistic),
    /// A trading status change.
    Status(Status),
    /// An instrument was defined or its definition changed: read it with
    /// [`Channel::definition`] (rule 11).
    Defined(i32),
    /// Packets lost on both feeds.
    Gap {
        /// The first missing number.
        from: u32,
        /// The last.
        to: u32,
    },
    /// A ChannelReset4 emptied every book.
    ChannelReset,
    /// Start reading the snapshot feeds.
    JoinSnapshots,
    /// Stop reading them.
    LeaveSnapshots,
}

/// SecurityIDs hashed by one multiplication: SipHash's flood resistance buys nothing for keys
/// a channel caps in number (`max_instruments`) and costs a tenth of the time per entry.
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_i32(&mut self, v: i32) {
        self.0 = u64::from(v as u32).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type ById<T> = HashMap<i32, T, std::hash::BuildHasherDefault<IdHasher>>;

struct Instrument {
    book: Book,
    rpt_seq: u32,
    /// The book by price (and with it the RptSeq sequence) is not known right.
    stale: bool,
    orders: OrderBook,
    /// The book by order is not known right (rule 10; always false when none are kept).
    orders_stale: bool,
    changed: bool,
}

impl Instrument {
    fn fresh(&self) -> bool {
        !self.stale && !self.orders_stale
    }
}

/// What an incremental packet is applied to: everything, or one instrument's book by price
/// or by order (a replay after its snapshot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    All,
    Levels(i32),
    Orders(i32),
}

/// Rule 2's verdict on an entry.
enum Admit<'a> {
    Apply(&'a mut Instrument),
    Skip,
    Gap,
}

/// An order snapshot being collected, chunk by chunk (rule 10).
struct Chunks {
    last: u32,
    next: u32,
    orders: OrderBook,
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelCounts {
    /// Incremental messages applied.
    pub messages: u64,
    /// Entries applied in RptSeq order (book levels, trades, statistics).
    pub entries: u64,
    /// Order entries applied.
    pub orders: u64,
    /// Snapshots applied (by price and by order).
    pub snapshots: u64,
    /// Malformed packets or messages.
    pub malformed: u64,
}

/// One channel.
pub struct Channel {
    config: ChannelConfig,
    arbiter: Arbiter<Vec<u8>>,
    state: State,
    instruments: ById<Instrument>,
    definitions: ById<Definition>,
    /// Incremental packets since recovery began: (MsgSeqNum, bytes).
    buffered: VecDeque<(u32, Vec<u8>)>,
    /// The number of the first packet that could not be buffered (or was dropped).
    buffer_from: Option<u32>,
    /// Instruments the snapshot loop announces, and those recovered from it.
    announced: usize,
    recovered: BTreeSet<i32>,
    chunks: ById<Chunks>,
    events: VecDeque<Event>,
    /// Instruments changed since the last end of event (each once), for `publish`.
    publishing: Vec<i32>,
    counts: ChannelCounts,
}

impl Channel {
    /// A channel, starting Recovering (rule 1).
    pub fn new(config: ChannelConfig) -> Channel {
        let mut c = Channel {
            config,
            arbiter: Arbiter::new(config.arbiter),
            state: State::InSync,
            instruments: ById::default(),
            definitions: ById::default(),
            buffered: VecDeque::new(),
            buffer_from: None,
            announced: 0,
            recovered: BTreeSet::new(),
            chunks: ById::default(),
            events: VecDeque::new(),
            publishing: Vec::new(),
            counts: ChannelCounts::default(),
        };
        c.recover();
        c
    }

    /// The settings.
    pub fn config(&self) -> &ChannelConfig {
        &self.config
    }

    /// The state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The book by price of an instrument, unless it is stale or unknown.
    pub fn book(&self, security_id: i32) -> Option<&Book> {
        self.instruments.get(&security_id).filter(|i| !i.stale).map(|i| &i.book)
    }

    /// The book by order of an instrument, when the channel keeps them, unless it is stale or
    /// unknown.
    pub fn orders(&self, security_id: i32) -> Option<&OrderBook> {
        let i = self.instruments.get(&security_id)?;
        (self.config.orders && !i.orders_stale).then_some(&i.orders)
    }

    /// An instrument's definition, if one came.
    pub fn definition(&self, security_id: i32) -> Option<&Definition> {
        self.definitions.get(&security_id)
    }

    /// The instruments known, in order.
    pub fn instruments(&self) -> Vec<i32> {
        let mut ids: Vec<i32> = self.instruments.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// The last RptSeq applied to an instrument's book, unless it is stale or unknown.
    pub fn rpt_seq(&self, security_id: i32) -> Option<u32> {
        self.instruments.get(&security_id).filter(|i| !i.stale).map(|i| i.rpt_seq)
    }

    /// The arbiter's counters.
    pub fn arbitration(&self) -> super::arbiter::Counts {
        self.arbiter.counts()
    }

    /// The channel's counters.
    pub fn counts(&self) -> ChannelCounts {
        self.counts
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Hands each pending event to `f`, inline on the caller's thread, with the channel (its
    /// books, definitions and counters readable from the callback).
    pub fn for_each_event(&mut self, mut f: impl FnMut(&Channel, Event)) {
        while let Some(e) = self.events.pop_front() {
            f(self, e);
        }
    }

    /// When [`Channel::handle_timeout`] is due (the arbiter's gap wait).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.arbiter.poll_timeout()
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.arbiter.handle_timeout(now);
        self.arbitrated();
    }

    /// An incremental packet from feed A or B. In sequence, it is applied from the caller's
    /// bytes (nothing copied); only a packet held for reordering, or buffered for recovery, is
    /// copied.
    pub fn incremental(&mut self, now: Instant, feed: Feed, bytes: &[u8]) {
        let Ok(p) = Packet::parse(bytes) else {
            self.counts.malformed += 1;
            return;
        };
        match self.arbiter.fast(p.seq) {
            Fast::Deliver => {
                if self.in_sequence(bytes) {
                    self.buffer(p.seq, bytes.to_vec());
                    self.finish_recovery();
                }
            }
            Fast::Duplicate => {}
            Fast::Slow => {
                self.arbiter.packet(now, feed, p.seq, bytes.to_vec());
                self.arbitrated();
            }
        }
    }

    /// A packet from the instrument definition loop (rule 11).
    pub fn definitions(&mut self, bytes: &[u8]) {
        let Ok(packet) = Packet::parse(bytes) else {
            self.counts.malformed += 1;
            return;
        };
        for message in packet.messages() {
            match message.map(templates::decode) {
                Ok(Ok(Message::MDInstrumentDefinitionFuture54(d))) => self.define(&d),
                Ok(Ok(_)) => {}
                _ => {
                    self.counts.malformed += 1;
                    return;
                }
            }
        }
    }

    /// Applies a packet in sequence; whether it is to be buffered (the channel is
    /// recovering).
    fn in_sequence(&mut self, bytes: &[u8]) -> bool {
        if !self.apply_packet(bytes, Scope::All) {
            self.counts.malformed += 1;
            self.all_stale();
        }
        self.state == State::Recovering
    }

    fn arbitrated(&mut self) {
        while let Some(a) = self.arbiter.poll() {
            match a {
                Arbitrated::Packet { seq, packet, .. } => {
                    if self.in_sequence(&packet) {
                        self.buffer(seq, packet);
                    }
                }
                Arbitrated::Gap { from, to } => {
                    self.events.push_back(Event::Gap { from, to });
                    self.all_stale();
                }
                Arbitrated::Restart { .. } => {}
            }
        }
        self.finish_recovery();
    }

    fn buffer(&mut self, seq: u32, packet: Vec<u8>) {
        self.buffer_from.get_or_insert(seq);
        self.buffered.push_back((seq, packet));
        if self.buffered.len() > self.config.max_buffered {
            self.buffered.pop_front();
            self.buffer_from = self.buffered.front().map(|(s, _)| *s);
        }
    }

    /// Rule 3 (and 9): every book stale, recovery.
    fn all_stale(&mut self) {
        let ids: Vec<i32> = self.instruments.keys().copied().collect();
        for id in ids {
            self.stale(id, true, true);
        }
        self.chunks.clear();
        self.recover();
    }

    /// Marks an instrument's book by price and/or by order stale.
    fn stale(&mut self, id: i32, levels: bool, orders: bool) {
        let keep_orders = self.config.orders;
        if let Some(i) = self.instruments.get_mut(&id) {
            let was_fresh = i.fresh();
            i.stale |= levels;
            i.orders_stale |= orders && keep_orders;
            if was_fresh && !i.fresh() {
                i.changed = false;
                self.recovered.remove(&id);
                self.events.push_back(Event::Stale(id));
            }
        }
        self.recover();
    }

    /// Rule 4.
    fn recover(&mut self) {
        if self.state != State::Recovering {
            self.state = State::Recovering;
            self.buffered.clear();
            self.buffer_from = None;
            self.events.push_back(Event::JoinSnapshots);
        }
    }

    /// Applies an incremental packet to `scope`. Returns false if it is malformed.
    fn apply_packet(&mut self, bytes: &[u8], scope: Scope) -> bool {
        let Ok(packet) = Packet::parse(bytes) else { return false };
        for message in packet.messages() {
            let Ok(message) = message else { return false };
            let Ok(message) = templates::decode(message) else { return false };
            let Some(indicator) = self.apply_message(&message, scope) else { return false };
            if scope == Scope::All {
                self.counts.messages += 1;
                if indicator.end_of_event() {
                    self.publish();
                }
            }
        }
        true
    }

    /// Applies one incremental message; its MatchEventIndicator, or none if it is malformed.
    fn apply_message(
        &mut self,
        message: &Message<'_>,
        scope: Scope,
    ) -> Option<templates::MatchEventIndicator> {
        Some(match message {
            Message::MDIncrementalRefreshBook46(m) => {
                for e in m.no_md_entries().ok()? {
                    self.level(&e.ok()?, scope);
                }
                if self.config.orders && matches!(scope, Scope::All | Scope::Orders(_)) {
                    self.book_orders(m, scope)?;
                }
                m.match_event_indicator()
            }
            Message::MDIncrementalRefreshOrderBook47(m) => {
                for e in m.no_md_entries().ok()? {
                    let e = e.ok()?;
                    let order = Order {
                        id: e.order_id().unwrap_or(0),
                        side: Side::from_entry_type(e.md_entry_type().0).unwrap_or(Side::Bid),
                        price: e.md_entry_px().mantissa().unwrap_or(0),
                        qty: e.md_display_qty().unwrap_or(0),
                        priority: e.md_order_priority().unwrap_or(0),
                    };
                    let reset = e.md_entry_type().0 == b'J';
                    self.order(e.security_id(), reset, e.md_update_action().0, order, scope);
                }
                m.match_event_indicator()
            }
            Message::MDIncrementalRefreshTradeSummary48(m) => {
                for e in m.no_md_entries().ok()? {
                    let e = e.ok()?;
                    if self.sequenced(e.security_id(), e.rpt_seq(), scope) {
                        self.events.push_back(Event::Trade(Trade {
                            security_id: e.security_id(),
                            price: e.md_entry_px().mantissa(),
                            qty: e.md_entry_size(),
                            orders: e.number_of_orders(),
                            aggressor: e.aggressor_side().map(|a| a.0),
                            trade_id: e.md_trade_entry_id(),
                        }));
                    }
                }
                m.match_event_indicator()
            }
            Message::MDIncrementalRefreshVolume37(m) => {
                for e in m.no_md_entries().ok()? {
                    let e = e.ok()?;
                    let s = Statistic {
                        security_id: e.security_id(),
                        kind: b'e',
                        action: e.md_update_action().0,
                        price: None,
                        qty: Some(e.md_entry_size()),
                    };
                    self.statistic(s, e.rpt_seq(), scope);
                }
                m.match_event_indicator()
            }
            Message::MDIncrementalRefreshDailyStatistics49(m) => {
                for e in m.no_md_entries().ok()? {
                    let e = e.ok()?;
                    let s = Statistic {
                        security_id: e.security_id(),
                        kind: e.md_entry_type().0,
                        action: e.md_update_action().0,
                        price: e.md_entry_px().mantissa(),
                        qty: e.md_entry_size(),
                    };
                    self.statistic(s, e.rpt_seq(), scope);
                }
                m.match_event_indicator()
            }
            Message::MDIncrementalRefreshSessionStatistics51(m) => {
                for e in m.no_md_entries().ok()? {
                    let e = e.ok()?;
                    let s = Statistic {
                        security_id: e.security_id(),
                        kind: e.md_entry_type().0,
                        action: e.md_update_action().0,
                        price: Some(e.md_entry_px().mantissa()),
                        qty: e.md_entry_size(),
                    };
                    self.statistic(s, e.rpt_seq(), scope);
                }
                m.match_event_indicator()
            }
            Message::MDIncrementalRefreshLimitsBanding50(m) => {
                // Sequenced (rule 2); the limits themselves are in the snapshot and the
                // message for whoever wants them.
                for e in m.no_md_entries().ok()? {
                    let e = e.ok()?;
                    self.sequenced(e.security_id(), e.rpt_seq(), scope);
                }
                m.match_event_indicator()
            }
            Message::ChannelReset4(m) => {
                if scope == Scope::All {
                    self.reset();
                }
                m.match_event_indicator()
            }
            Message::SecurityStatus30(m) => {
                if scope == Scope::All {
                    let mut security_group = [0; 6];
                    security_group.copy_from_slice(m.security_group());
                    self.events.push_back(Event::Status(Status {
                        security_id: m.security_id(),
                        security_group,
                        trading_status: m.security_trading_status().map(|s| s.0),
                        halt_reason: m.halt_reason().0,
                        trading_event: m.security_trading_event().0,
                    }));
                }
                m.match_event_indicator()
            }
            Message::MDInstrumentDefinitionFuture54(d) => {
                if scope == Scope::All {
                    self.define(d);
                }
                d.match_event_indicator()
            }
            // Snapshots do not come on the incremental feeds, and templates outside the
            // schema (option and spread definitions, quote requests) are not read.
            Message::SnapshotFullRefresh52(_)
            | Message::SnapshotFullRefreshOrderBook53(_)
            | Message::Unknown(_) => templates::MatchEventIndicator(0),
        })
    }

    /// Rule 2 for one entry: whether it is to be applied (the instrument's RptSeq then
    /// advanced to it).
    fn sequenced(&mut self, id: i32, rpt: u32, scope: Scope) -> bool {
        match admit(&mut self.instruments, &self.config, &self.definitions, id, rpt, scope) {
            Admit::Apply(_) => {
                self.counts.entries += 1;
                true
            }
            Admit::Skip => false,
            Admit::Gap => {
                self.stale(id, true, true);
                false
            }
        }
    }

    fn statistic(&mut self, s: Statistic, rpt: u32, scope: Scope) {
        if self.sequenced(s.security_id, rpt, scope) {
            self.events.push_back(Event::Statistic(s));
        }
    }

    /// Rule 2 for one book level, applied.
    fn level(
        &mut self,
        e: &templates::md_incremental_refresh_book46::no_md_entries::Entry<'_>,
        scope: Scope,
    ) {
        let id = e.security_id();
        let i = match admit(&mut self.instruments, &self.config, &self.definitions, id, e.rpt_seq(), scope) {
            Admit::Apply(i) => i,
            Admit::Skip => return,
            Admit::Gap => return self.stale(id, true, true),
        };
        self.counts.entries += 1;
        let entry_type = e.md_entry_type().0;
        let ok = if entry_type == b'J' {
            i.book.clear();
            true
        } else if let (Some(side), Some(action)) =
            (BookSide::from_entry_type(entry_type), Action::from_u8(e.md_update_action().0))
        {
            let level = Level {
                price: e.md_entry_px().mantissa().unwrap_or(0),
                qty: e.md_entry_size().unwrap_or(0),
                orders: e.number_of_orders(),
            };
            i.book.apply(side, action, e.md_price_level(), level).is_ok()
        } else {
            true
        };
        if !std::mem::replace(&mut i.changed, true) {
            self.publishing.push(id);
        }
        if !ok {
            self.stale(id, true, false);
        }
    }

    /// The order entries of a book message (rule 10): each names its book entry
    /// (ReferenceID, 1-based), which gives the instrument, side and price. An entry without
    /// a reference is skipped (CME gives one to every order entry).
    fn book_orders(
        &mut self,
        m: &templates::md_incremental_refresh_book46::Decoder<'_>,
        scope: Scope,
    ) -> Option<()> {
        for o in m.no_order_id_entries().ok()? {
            let o = o.ok()?;
            let Some(reference) = o.reference_id().and_then(|r| usize::from(r).checked_sub(1)) else {
                continue;
            };
            let e = m.no_md_entries().ok()?.nth(reference)?.ok()?;
            let entry_type = e.md_entry_type().0;
            let order = Order {
                id: o.order_id(),
                side: Side::from_entry_type(entry_type).unwrap_or(Side::Bid),
                price: e.md_entry_px().mantissa().unwrap_or(0),
                qty: o.md_display_qty().unwrap_or(0),
                priority: o.md_order_priority().unwrap_or(0),
            };
            self.order(e.security_id(), entry_type == b'J', o.order_update_action().0, order, scope);
        }
        Some(())
    }

    /// One order entry (rule 10): `reset` empties the book (a BookReset entry).
    fn order(&mut self, id: i32, reset: bool, action: u8, order: Order, scope: Scope) {
        if !self.config.orders || (scope != Scope::All && scope != Scope::Orders(id)) {
            return;
        }
        let Some(i) = instrument(&mut self.instruments, &self.config, &self.definitions, id) else { return };
        if i.orders_stale {
            return;
        }
        self.counts.orders += 1;
        let ok = if reset {
            i.orders.clear();
            true
        } else {
            OrderAction::from_u8(action).is_some_and(|a| i.orders.apply(a, order).is_ok())
        };
        if !std::mem::replace(&mut i.changed, true) {
            self.publishing.push(id);
        }
        if !ok {
            self.stale(id, false, true);
        }
    }

    /// Rule 7.
    fn reset(&mut self) {
        for (id, i) in self.instruments.iter_mut() {
            i.book.clear();
            i.rpt_seq = 0;
            i.stale = false;
            i.orders.clear();
            i.orders_stale = false;
            if !std::mem::replace(&mut i.changed, true) {
                self.publishing.push(*id);
            }
            self.recovered.insert(*id);
        }
        self.chunks.clear();
        self.events.push_back(Event::ChannelReset);
    }

    /// Rule 11.
    fn define(&mut self, d: &templates::md_instrument_definition_future54::Decoder<'_>) {
        let id = d.security_id();
        if d.security_update_action().0 == b'D' {
            self.definitions.remove(&id);
            self.instruments.remove(&id);
            self.recovered.remove(&id);
            return;
        }
        if !self.definitions.contains_key(&id) && self.definitions.len() >= self.config.max_instruments {
            return;
        }
        let text = |b: &[u8]| String::from_utf8_lossy(b).trim_end_matches(['\0', ' ']).to_string();
        let mut depth = self.config.depth;
        let mut implied_depth = 0;
        if let Ok(feeds) = d.no_md_feed_types() {
            for f in feeds.flatten() {
                let market_depth = usize::try_from(f.market_depth()).unwrap_or(0);
                match f.md_feed_type() {
                    b"GBX" => depth = market_depth,
                    b"GBI" => implied_depth = market_depth,
                    _ => {}
                }
            }
        }
        let definition = Definition {
            security_id: id,
            symbol: text(d.symbol()),
            security_group: text(d.security_group()),
            depth,
            implied_depth,
            min_price_increment: d.min_price_increment().mantissa(),
            display_factor: d.display_factor().mantissa(),
        };
        if let Some(i) = self.instruments.get_mut(&id) {
            i.book.set_depth(depth, implied_depth);
        }
        if self.definitions.get(&id) != Some(&definition) {
            self.definitions.insert(id, definition);
            self.events.push_back(Event::Defined(id));
        }
    }

    /// Rule 8: the changed books, in instrument order (stale ones are not published).
    fn publish(&mut self) {
        let mut ids = std::mem::take(&mut self.publishing);
        ids.sort_unstable();
        for id in ids.drain(..) {
            if let Some(i) = self.instruments.get_mut(&id) {
                let publishable = !i.stale || (self.config.orders && !i.orders_stale);
                if std::mem::replace(&mut i.changed, false) && publishable {
                    self.events.push_back(Event::Published(id));
                }
            }
        }
        self.publishing = ids;
    }

    /// A packet from a snapshot feed, by price or by order (rules 5, 10); ignored when not
    /// recovering.
    pub fn snapshot(&mut self, bytes: &[u8]) {
        if self.state != State::Recovering {
            return;
        }
        let Ok(packet) = Packet::parse(bytes) else {
            self.counts.malformed += 1;
            return;
        };
        for message in packet.messages() {
            let Ok(message) = message else {
                self.counts.malformed += 1;
                return;
            };
            match templates::decode(message) {
                Ok(Message::SnapshotFullRefresh52(s)) => self.level_snapshot(&s),
                Ok(Message::SnapshotFullRefreshOrderBook53(s)) => self.order_snapshot(&s),
                _ => {}
            }
        }
        self.finish_recovery();
    }

    /// Rule 5's test: every packet after `last` (369) is at hand: the buffer starts at or
    /// before it, or nothing newer has come since recovery began.
    fn covered(&self, last: u32) -> bool {
        let needed = last.wrapping_add(1);
        match self.buffer_from {
            Some(from) => from <= needed,
            None => self.arbiter.expected().is_none_or(|next| next <= needed),
        }
    }

    /// Replays the buffered packets after `last` to `scope`, then publishes the book it
    /// recovered, unless the replay found it stale again.
    fn replay(&mut self, last: u32, scope: Scope) {
        let (Scope::Levels(id) | Scope::Orders(id)) = scope else { return };
        let needed = last.wrapping_add(1);
        let replay: Vec<Vec<u8>> =
            self.buffered.iter().filter(|(seq, _)| *seq >= needed).map(|(_, p)| p.clone()).collect();
        for p in replay {
            self.apply_packet(&p, scope);
        }
        if let Some(i) = self.instruments.get_mut(&id) {
            let fresh = if matches!(scope, Scope::Levels(_)) { !i.stale } else { !i.orders_stale };
            if fresh {
                i.changed = false;
                self.events.push_back(Event::Published(id));
            }
            if i.fresh() {
                self.recovered.insert(id);
            }
        }
    }

    /// Rule 5.
    fn level_snapshot(&mut self, s: &templates::snapshot_full_refresh52::Decoder<'_>) {
        let id = s.security_id();
        self.announced = usize::try_from(s.tot_num_reports()).unwrap_or(0);
        if let Some(i) = self.instruments.get(&id).filter(|i| !i.stale) {
            if i.fresh() {
                self.recovered.insert(id);
            }
            return;
        }
        let last = s.last_msg_seq_num_processed();
        if !self.covered(last) {
            return;
        }
        let (depth, implied_depth) = depths(&self.config, &self.definitions, id);
        let mut book = Book::new(depth, implied_depth);
        let Ok(entries) = s.no_md_entries() else {
            self.counts.malformed += 1;
            return;
        };
        for entry in entries {
            let Ok(e) = entry else {
                self.counts.malformed += 1;
                return;
            };
            let Some(side) = BookSide::from_entry_type(e.md_entry_type().0) else { continue };
            let level = Level {
                price: e.md_entry_px().mantissa().unwrap_or(0),
                qty: e.md_entry_size().unwrap_or(0),
                orders: e.number_of_orders(),
            };
            let at = e.md_price_level().unwrap_or(1);
            if at < 1 || book.apply(side, Action::New, at as u8, level).is_err() {
                return; // a snapshot this book cannot hold: wait for the next one
            }
        }
        let Some(i) = instrument(&mut self.instruments, &self.config, &self.definitions, id) else { return };
        i.book = book;
        i.rpt_seq = s.rpt_seq();
        i.stale = false;
        i.changed = false;
        self.counts.snapshots += 1;
        self.events.push_back(Event::Recovered(id));
        self.replay(last, Scope::Levels(id));
    }

    /// Rule 10's order snapshot, one chunk.
    fn order_snapshot(&mut self, s: &templates::snapshot_full_refresh_order_book53::Decoder<'_>) {
        let id = s.security_id();
        if !self.config.orders || self.instruments.get(&id).is_some_and(|i| !i.orders_stale) {
            return;
        }
        let (last, chunk) = (s.last_msg_seq_num_processed(), s.current_chunk());
        let mut chunks = match self.chunks.remove(&id) {
            Some(c) if c.last == last && c.next == chunk => c,
            _ if chunk == 1 => Chunks { last, next: 1, orders: OrderBook::new() },
            _ => return, // a chunk out of order: wait for the loop to come round
        };
        let Ok(entries) = s.no_md_entries() else {
            self.counts.malformed += 1;
            return;
        };
        for entry in entries {
            let Ok(e) = entry else {
                self.counts.malformed += 1;
                return;
            };
            let Some(side) = Side::from_entry_type(e.md_entry_type().0) else { continue };
            let order = Order {
                id: e.order_id(),
                side,
                price: e.md_entry_px().mantissa(),
                qty: e.md_display_qty(),
                priority: e.md_order_priority().unwrap_or(0),
            };
            if chunks.orders.apply(OrderAction::New, order).is_err() {
                return;
            }
        }
        if chunk < s.no_chunks() {
            chunks.next = chunk + 1;
            self.chunks.insert(id, chunks);
            return;
        }
        if !self.covered(last) {
            return;
        }
        let Some(i) = instrument(&mut self.instruments, &self.config, &self.definitions, id) else { return };
        i.orders = chunks.orders;
        i.orders_stale = false;
        i.changed = false;
        self.counts.snapshots += 1;
        self.events.push_back(Event::Recovered(id));
        self.replay(last, Scope::Orders(id));
    }

    /// Rule 6.
    fn finish_recovery(&mut self) {
        if self.state == State::Recovering
            && self.announced > 0
            && self.recovered.len() >= self.announced
            && self.instruments.values().all(Instrument::fresh)
        {
            self.state = State::InSync;
            self.buffered.clear();
            self.buffer_from = None;
            self.chunks.clear();
            self.events.push_back(Event::LeaveSnapshots);
        }
    }
}

/// An instrument's depths: its definition's, or the configured ones.
fn depths(config: &ChannelConfig, definitions: &ById<Definition>, id: i32) -> (usize, usize) {
    definitions.get(&id).map_or((config.depth, config.implied_depth), |d| (d.depth, d.implied_depth))
}

/// An instrument, made (stale: rule 1) if it is new, unless the channel holds its most.
fn instrument<'a>(
    instruments: &'a mut ById<Instrument>,
    config: &ChannelConfig,
    definitions: &ById<Definition>,
    id: i32,
) -> Option<&'a mut Instrument> {
    let full = instruments.len() >= config.max_instruments;
    match instruments.entry(id) {
        std::collections::hash_map::Entry::Occupied(o) => Some(o.into_mut()),
        std::collections::hash_map::Entry::Vacant(_) if full => None,
        std::collections::hash_map::Entry::Vacant(v) => {
            let (depth, implied_depth) = depths(config, definitions, id);
            Some(v.insert(Instrument {
                book: Book::new(depth, implied_depth),
                rpt_seq: 0,
                stale: true,
                orders: OrderBook::new(),
                orders_stale: config.orders,
                changed: false,
            }))
        }
    }
}

/// Rule 2: an entry of instrument `id` at RptSeq `rpt`, in `scope`. An applied entry
/// advances the instrument's RptSeq.
fn admit<'a>(
    instruments: &'a mut ById<Instrument>,
    config: &ChannelConfig,
    definitions: &ById<Definition>,
    id: i32,
    rpt: u32,
    scope: Scope,
) -> Admit<'a> {
    match scope {
        Scope::All => {}
        Scope::Levels(only) if only == id => {}
        _ => return Admit::Skip,
    }
    let Some(i) = instrument(instruments, config, definitions, id) else { return Admit::Skip };
    if i.stale || rpt <= i.rpt_seq {
        Admit::Skip
    } else if rpt != i.rpt_seq + 1 {
        Admit::Gap
    } else {
        i.rpt_seq = rpt;
        Admit::Apply(i)
    }
}
