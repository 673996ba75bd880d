//! One MDP 3.0 channel: the incremental feeds (A and B) arbitrated, books kept per
//! instrument, gaps recovered from the snapshot loop. Sans-I/O: the driver hands in packets
//! and time, and acts on the [`Event`]s (join or leave the snapshot feed, read a published
//! book).
//!
//! ## The recovery state machine
//! Two states, [`State::InSync`] and [`State::Recovering`]; the rules, each tested:
//! 1. A channel starts Recovering: no book is known until its snapshot is applied.
//! 2. In sync, each incremental entry must carry its instrument's next RptSeq (83). An entry
//!    at or below the instrument's RptSeq was applied already and is skipped. One past the
//!    next is an instrument gap: the instrument turns stale and the channel starts
//!    Recovering.
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
//! 8. A book is published ([`Event::Published`]) only at the end of an event (the
//!    MatchEventIndicator EndOfEvent bit), and after a recovery's replay. A stale
//!    instrument is never published; [`Channel::book`] gives no book for it.
//! 9. A malformed packet or message is a packet gap for rule 3 (its content is unknown).

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use super::arbiter::{Arbiter, ArbiterConfig, Arbitrated, Fast, Feed};
use super::book::{Action, Book, BookSide, Level};
use super::packet::Packet;
use super::templates::{self, Message};

/// The channel's settings.
#[derive(Debug, Clone, Copy)]
pub struct ChannelConfig {
    /// A/B arbitration.
    pub arbiter: ArbiterConfig,
    /// Outright book depth (the instrument definition's MarketDepth; 10 for most futures).
    pub depth: usize,
    /// Implied book depth.
    pub implied_depth: usize,
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

/// What the driver is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The instrument's book changed and is complete: read it with [`Channel::book`].
    Published(i32),
    /// The instrument's book can no longer be trusted (rules 2, 3).
    Stale(i32),
    /// The instrument's book was rebuilt from a snapshot (rule 5).
    Recovered(i32),
    /// Packets lost on both feeds.
    Gap {
        /// The first missing number.
        from: u32,
        /// The last.
        to: u32,
    },
    /// A ChannelReset4 emptied every book.
    ChannelReset,
    /// Start reading the snapshot feed.
    JoinSnapshots,
    /// Stop reading it.
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

type Instruments = HashMap<i32, Instrument, std::hash::BuildHasherDefault<IdHasher>>;

struct Instrument {
    book: Book,
    rpt_seq: u32,
    stale: bool,
    changed: bool,
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelCounts {
    /// Incremental messages applied.
    pub messages: u64,
    /// Book entries applied.
    pub entries: u64,
    /// Snapshots applied.
    pub snapshots: u64,
    /// Malformed packets or messages.
    pub malformed: u64,
}

/// One channel.
pub struct Channel {
    config: ChannelConfig,
    arbiter: Arbiter<Vec<u8>>,
    state: State,
    instruments: Instruments,
    /// Incremental packets since recovery began: (MsgSeqNum, bytes).
    buffered: std::collections::VecDeque<(u32, Vec<u8>)>,
    /// The number of the first packet that could not be buffered (or was dropped).
    buffer_from: Option<u32>,
    /// Instruments the snapshot loop announces, and those recovered from it.
    announced: usize,
    recovered: BTreeSet<i32>,
    events: std::collections::VecDeque<Event>,
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
            instruments: Instruments::default(),
            buffered: Default::default(),
            buffer_from: None,
            announced: 0,
            recovered: BTreeSet::new(),
            events: Default::default(),
            publishing: Vec::new(),
            counts: ChannelCounts::default(),
        };
        c.recover();
        c
    }

    /// The state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The book of an instrument, unless it is stale or unknown.
    pub fn book(&self, security_id: i32) -> Option<&Book> {
        self.instruments.get(&security_id).filter(|i| !i.stale).map(|i| &i.book)
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
                }
                self.finish_recovery();
            }
            Fast::Duplicate => {}
            Fast::Slow => {
                self.arbiter.packet(now, feed, p.seq, bytes.to_vec());
                self.arbitrated();
            }
        }
    }

    /// Applies a packet in sequence; whether it is to be buffered (the channel is
    /// recovering).
    fn in_sequence(&mut self, bytes: &[u8]) -> bool {
        if !self.apply_packet(bytes, None) {
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

    /// Rule 3 (and 9): every instrument stale, recovery.
    fn all_stale(&mut self) {
        let ids: Vec<i32> = self.instruments.keys().copied().collect();
        for id in ids {
            self.stale(id);
        }
        self.recover();
    }

    fn stale(&mut self, id: i32) {
        if let Some(i) = self.instruments.get_mut(&id) {
            if !i.stale {
                i.stale = true;
                i.changed = false;
                self.recovered.remove(&id);
                self.events.push_back(Event::Stale(id));
            }
        }
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

    /// Applies an incremental packet: every instrument, or only `only` (a replay). Returns
    /// false if it is malformed.
    fn apply_packet(&mut self, bytes: &[u8], only: Option<i32>) -> bool {
        let Ok(packet) = Packet::parse(bytes) else { return false };
        for message in packet.messages() {
            let Ok(message) = message else { return false };
            match templates::decode(message) {
                Ok(Message::MDIncrementalRefreshBook46(m)) => {
                    if only.is_none() {
                        self.counts.messages += 1;
                    }
                    let Ok(entries) = m.no_md_entries() else { return false };
                    for entry in entries {
                        let Ok(e) = entry else { return false };
                        self.entry(&e, only);
                    }
                    if m.match_event_indicator().end_of_event() && only.is_none() {
                        self.publish();
                    }
                }
                Ok(Message::ChannelReset4(m)) if only.is_none() => {
                    // Rule 7: every book is known again, empty.
                    for (id, i) in self.instruments.iter_mut() {
                        i.book.clear();
                        i.rpt_seq = 0;
                        i.stale = false;
                        if !std::mem::replace(&mut i.changed, true) {
                            self.publishing.push(*id);
                        }
                        self.recovered.insert(*id);
                    }
                    self.events.push_back(Event::ChannelReset);
                    if m.match_event_indicator().end_of_event() {
                        self.publish();
                    }
                }
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        true
    }

    /// Rule 2 for one book entry.
    fn entry(
        &mut self,
        e: &templates::md_incremental_refresh_book46::no_md_entries::Entry<'_>,
        only: Option<i32>,
    ) {
        let id = e.security_id();
        if only.is_some_and(|o| o != id) {
            return;
        }
        let full = self.instruments.len() >= self.config.max_instruments;
        let i = match self.instruments.entry(id) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            // Rule 1: an instrument first seen in the incrementals has no known book; past
            // the cap, it is not kept at all.
            std::collections::hash_map::Entry::Vacant(v) if !full => {
                let book = Book::new(self.config.depth, self.config.implied_depth);
                v.insert(Instrument { book, rpt_seq: 0, stale: true, changed: false });
                return;
            }
            std::collections::hash_map::Entry::Vacant(_) => return,
        };
        if i.stale {
            return;
        }
        let rpt = e.rpt_seq();
        if rpt <= i.rpt_seq {
            return;
        }
        if rpt != i.rpt_seq + 1 {
            self.stale(id);
            self.recover();
            return;
        }
        i.rpt_seq = rpt;
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
        let first_change = !std::mem::replace(&mut i.changed, true);
        if first_change {
            self.publishing.push(id);
        }
        if !ok {
            self.stale(id);
            self.recover();
        }
    }

    /// Rule 8: the changed books, in instrument order (those that went stale meanwhile are
    /// not published).
    fn publish(&mut self) {
        let mut ids = std::mem::take(&mut self.publishing);
        ids.sort_unstable();
        for id in ids.drain(..) {
            if let Some(i) = self.instruments.get_mut(&id) {
                if std::mem::replace(&mut i.changed, false) && !i.stale {
                    self.events.push_back(Event::Published(id));
                }
            }
        }
        self.publishing = ids;
    }

    /// A packet from the snapshot feed (rule 5); ignored when not recovering.
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
            if let Ok(Message::SnapshotFullRefresh52(s)) = templates::decode(message) {
                self.apply_snapshot(&s);
            }
        }
        self.finish_recovery();
    }

    fn apply_snapshot(&mut self, s: &templates::snapshot_full_refresh52::Decoder<'_>) {
        let id = s.security_id();
        self.announced = usize::try_from(s.tot_num_reports()).unwrap_or(0);
        let needed = s.last_msg_seq_num_processed().wrapping_add(1);
        let known = self.instruments.get(&id).is_some_and(|i| !i.stale);
        if known {
            self.recovered.insert(id);
            return;
        }
        // Every packet after 369 must be at hand (rule 5): the buffer starts at or before it,
        // or nothing newer has come since recovery began.
        let covered = match self.buffer_from {
            Some(from) => from <= needed,
            None => self.arbiter.expected().is_none_or(|next| next <= needed),
        };
        if !covered {
            return;
        }
        let mut book = Book::new(self.config.depth, self.config.implied_depth);
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
        self.counts.snapshots += 1;
        self.instruments.insert(id, Instrument { book, rpt_seq: s.rpt_seq(), stale: false, changed: false });
        self.events.push_back(Event::Recovered(id));
        let replay: Vec<Vec<u8>> =
            self.buffered.iter().filter(|(seq, _)| *seq >= needed).map(|(_, p)| p.clone()).collect();
        for p in replay {
            self.apply_packet(&p, Some(id));
        }
        if let Some(i) = self.instruments.get_mut(&id) {
            if !i.stale {
                self.recovered.insert(id);
                i.changed = false;
                self.events.push_back(Event::Published(id));
            }
        }
    }

    /// Rule 6.
    fn finish_recovery(&mut self) {
        let none_stale = self.instruments.values().all(|i| !i.stale);
        if self.state == State::Recovering
            && none_stale
            && self.recovered.len() >= self.announced
            && self.announced > 0
        {
            self.state = State::InSync;
            self.buffered.clear();
            self.buffer_from = None;
            self.events.push_back(Event::LeaveSnapshots);
        }
    }
}
