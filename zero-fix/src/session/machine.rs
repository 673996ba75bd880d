//! The FIX session machine (sans I/O, on the caller's clock): logon and logout handshakes,
//! heartbeats and test requests, sequence numbers in both directions, resend requests and gap
//! fills, sequence resets, session-level rejects. It implements zero-core's
//! [`Machine`](zero_core::machine::Machine), so every zero-core runner drives it.
//!
//! Received messages are decoded as [`Session::poll_event`] is called, and an application
//! message is handed out borrowed from the receive buffer, once, in sequence order: the
//! counterparty's resends fill a gap first, and what arrived beyond the gap waits and follows.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use zero_core::machine::{Closed, Machine};

use super::config::{Role, SessionConfig};
use super::schedule::Window;
use super::store::{MemoryStore, MessageStore};
use crate::codec::{tag, Builder, Decoded, Decoder, Garbled, Malformed, Message, Timestamp};
use crate::dict::Reject;

/// Sequence numbers kept back from application messages for the session's own (a Logout
/// saying why sending stopped needs one).
const RESERVED_SEQ: u64 = 16;

/// Receive capacity kept once every received byte is consumed.
const RX_KEEP: usize = 64 << 10;

/// What a session tells its application.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// The Logon handshake is done: application messages may flow.
    LoggedOn,
    /// An application message, in sequence, exactly once.
    Application(Message<'a>),
    /// The counterparty rejected one of ours at the session level (35=3).
    Rejected {
        /// The number of our message (RefSeqNum).
        ref_seq_num: Option<u64>,
        /// SessionRejectReason, if given.
        reason: Option<u64>,
        /// Text, if given.
        text: Option<String>,
    },
    /// A received message was garbled and ignored (it did not count).
    Garbled(Garbled),
    /// We rejected a received message (it counted, and was not delivered).
    RejectedIncoming {
        /// Its number.
        seq_num: u64,
        /// Why.
        reject: Reject,
    },
    /// The session is down, and why.
    Disconnected(Cause),
}

/// Why a session went down.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cause {
    /// A Logout handshake (their text, if any).
    LoggedOut(Option<String>),
    /// They sent a number lower than expected without PossDupFlag.
    SeqTooLow {
        /// What we expected.
        expected: u64,
        /// What came.
        received: u64,
    },
    /// Their SenderCompID or TargetCompID is not this session's.
    CompId,
    /// Their BeginString is not this session's.
    BeginString,
    /// The first message was not a Logon, or the Logon was unusable.
    BadLogon(&'static str),
    /// A message without MsgSeqNum.
    NoSeqNum,
    /// No Logon answer in time.
    LogonTimeout,
    /// No answer to a TestRequest in time.
    HeartbeatTimeout,
    /// The session's schedule is closed (a connection outside its window is refused).
    OutsideSchedule,
    /// The sequence numbers ran out (see `SessionConfig::max_seq_num`): reset before sending.
    SeqExhausted,
    /// The store failed (a full disk): the session stopped sending rather than lose a number.
    Store(String),
    /// The connection ended (the transport's cause).
    Connection(Closed),
}

/// Why a message was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The session is not logged on.
    #[error("the session is not logged on")]
    NotLoggedOn,
    /// The sequence numbers ran out.
    #[error("the sequence numbers ran out: reset the session")]
    SeqExhausted,
    /// The store failed; nothing was sent.
    #[error("the message store failed: {0}")]
    Store(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No connection; an initiator reconnects at `retry_at`.
    Down { retry_at: Option<Instant> },
    /// An initiator's connection is opening.
    Connecting,
    /// An acceptor's connection is open; its Logon is due by `deadline`.
    AwaitingLogon { deadline: Instant },
    /// An initiator sent its Logon; the answer is due by `deadline`.
    LogonSent { deadline: Instant },
    /// Logged on.
    Active,
    /// We sent a Logout; the answer is due by `deadline`.
    LogoutSent { deadline: Instant },
    /// Ended for good.
    Closed,
}

/// What became of a received message.
enum Fate {
    /// Handled by the session (or ignored).
    Done,
    /// An application message to hand out.
    Deliver,
    /// Beyond a gap: kept until the gap is filled.
    Hold(u64),
}

/// A FIX session over one connection at a time.
pub struct Session<S: MessageStore = MemoryStore> {
    rx: Vec<u8>,
    rx_pos: usize,
    decoder: Decoder,
    core: Core<S>,
}

struct Core<S> {
    config: SessionConfig,
    store: S,
    state: State,
    /// The heartbeat interval in force (an acceptor's is the initiator's).
    heart_bt_int: Duration,
    outbox: Vec<u8>,
    sending: Vec<u8>,
    close: bool,
    /// The application ended the session: it does not reconnect.
    ending: bool,
    /// A Disconnected event was given for the coming close.
    told: bool,
    events: VecDeque<Event<'static>>,
    now: Instant,
    /// (an instant, the wall-clock time then): SendingTime is read from it.
    clock: (Instant, Timestamp),
    last_sent: Instant,
    last_received: Instant,
    /// A TestRequest's answer is due by then.
    test_request: Option<Instant>,
    test_requests: u64,
    /// A gap is being filled up to this number.
    resend_until: Option<u64>,
    /// Messages that arrived beyond a gap, by number.
    held: BTreeMap<u64, Vec<u8>>,
    /// Our Logon asked for a reset.
    reset_sent: bool,
    failures: u32,
    /// Connections opened since the last Logon: the driver's target for the next one.
    failover: usize,
    /// FIXT 1.1: the counterparty's DefaultApplVerID, from its Logon.
    their_appl_ver_id: Option<String>,
    /// The open schedule window closes then (`None`: no schedule, or not checked yet).
    window_end: Option<Instant>,
}

impl<S: MessageStore> Session<S> {
    /// A session with `store`; `now` and `wall` are the same moment on the monotonic and
    /// wall clocks (SendingTime follows the former from the latter; see
    /// [`Session::set_clock`]). An initiator connects as soon as its driver asks.
    pub fn new(config: SessionConfig, store: S, now: Instant, wall: Timestamp) -> Session<S> {
        let retry_at = (config.role == Role::Initiator).then_some(now);
        let heart_bt_int = config.heart_bt_int;
        Session {
            rx: Vec::new(),
            rx_pos: 0,
            decoder: Decoder::default(),
            core: Core {
                config,
                store,
                state: State::Down { retry_at },
                heart_bt_int,
                outbox: Vec::new(),
                sending: Vec::new(),
                close: false,
                ending: false,
                told: false,
                events: VecDeque::new(),
                now,
                clock: (now, wall),
                last_sent: now,
                last_received: now,
                test_request: None,
                test_requests: 0,
                resend_until: None,
                held: BTreeMap::new(),
                reset_sent: false,
                failures: 0,
                failover: 0,
                their_appl_ver_id: None,
                window_end: None,
            },
        }
    }

    /// Re-anchors SendingTime on the wall clock (a driver calls it now and then, so that a
    /// long session follows the system clock's corrections).
    pub fn set_clock(&mut self, now: Instant, wall: Timestamp) {
        self.core.clock = (now, wall);
    }

    /// Whether application messages may be sent.
    pub fn is_logged_on(&self) -> bool {
        self.core.state == State::Active
    }

    /// The number the next message sent will carry.
    pub fn next_out(&self) -> u64 {
        self.core.store.next_out()
    }

    /// The number expected next from the counterparty.
    pub fn next_in(&self) -> u64 {
        self.core.store.next_in()
    }

    /// FIXT 1.1: the DefaultApplVerID the counterparty's Logon named (`9` is FIX 5.0 SP2).
    pub fn counterparty_appl_ver_id(&self) -> Option<&str> {
        self.core.their_appl_ver_id.as_deref()
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.core.store
    }

    /// Sends an application message of `msg_type`: the session writes the header, `body`
    /// the rest. Returns its sequence number.
    pub fn send(
        &mut self,
        now: Instant,
        msg_type: &[u8],
        body: impl FnOnce(&mut Builder),
    ) -> Result<u64, SendError> {
        self.core.send_app(now, msg_type, body)
    }

    /// The session's configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.core.config
    }

    /// Starts the Logout handshake (the connection closes when the counterparty answers, or
    /// after the logout timeout). An initiator reconnects later; see [`Session::close`].
    pub fn logout(&mut self, now: Instant, text: Option<&str>) {
        self.core.now = now;
        if matches!(self.core.state, State::Active | State::LogonSent { .. } | State::AwaitingLogon { .. }) {
            self.core.logout(text);
        }
    }

    /// Ends the session for good: logs out if logged on, and does not reconnect.
    pub fn close(&mut self, now: Instant) {
        let core = &mut self.core;
        core.now = now;
        core.ending = true;
        match core.state {
            State::Active => core.logout(None),
            State::Down { .. } => core.state = State::Closed,
            State::LogoutSent { .. } | State::Closed => {}
            _ => core.close = true,
        }
    }

    /// The next event. An application message borrows the receive buffer until the next call.
    pub fn poll_event(&mut self) -> Option<Event<'_>> {
        self.poll_event_replying().map(|(event, _)| event)
    }

    /// [`Session::poll_event`], with a [`Sender`] to answer on this session while the event
    /// (a borrowed message) is still in hand: the application's inline reply path.
    pub fn poll_event_replying(&mut self) -> Option<(Event<'_>, Sender<'_, S>)> {
        if let Some(event) = self.core.events.pop_front() {
            return Some((event, Sender { core: &mut self.core }));
        }
        self.compact();
        let Session { rx, rx_pos, decoder, core } = self;
        let mut deliver = None;
        while core.reading() {
            if let Some(held) = core.ready_held() {
                rx.splice(*rx_pos..*rx_pos, held);
            }
            if *rx_pos >= rx.len() {
                break;
            }
            let start = *rx_pos;
            match decoder.decode(&rx[start..]) {
                Decoded::Partial => break,
                Decoded::Garbled { why, skip } => {
                    *rx_pos += skip;
                    return Some((Event::Garbled(why), Sender { core }));
                }
                Decoded::Malformed { why, seq_num, len } => {
                    *rx_pos += len;
                    core.malformed(why, seq_num);
                }
                Decoded::Message(m) => {
                    *rx_pos += m.bytes().len();
                    match core.receive(&m) {
                        Fate::Deliver => {
                            deliver = Some(start);
                            break;
                        }
                        Fate::Hold(seq) => drop(core.held.insert(seq, m.bytes().to_vec())),
                        Fate::Done => {}
                    }
                }
            }
            if let Some(event) = core.events.pop_front() {
                return Some((event, Sender { core }));
            }
        }
        // Handed out only here, after the loop: a message borrowed inside it would keep the
        // buffer borrowed through the loop's later turns.
        deliver.map(|start| (Event::Application(decoder.message(&rx[start..])), Sender { core }))
    }

    fn compact(&mut self) {
        if self.rx_pos == self.rx.len() || !self.core.reading() {
            self.rx.clear();
            self.rx_pos = 0;
            if self.rx.capacity() > RX_KEEP {
                self.rx = Vec::new();
            }
        } else if self.rx_pos >= RX_KEEP && self.rx_pos * 2 >= self.rx.len() {
            self.rx.drain(..self.rx_pos);
            self.rx_pos = 0;
        }
    }
}

/// Sends on a session while one of its received messages is in hand (see
/// [`Session::poll_event_replying`]).
pub struct Sender<'a, S: MessageStore> {
    core: &'a mut Core<S>,
}

impl<S: MessageStore> Sender<'_, S> {
    /// [`Session::send`].
    pub fn send(
        &mut self,
        now: Instant,
        msg_type: &[u8],
        body: impl FnOnce(&mut Builder),
    ) -> Result<u64, SendError> {
        self.core.send_app(now, msg_type, body)
    }
}

impl<S: MessageStore> Machine for Session<S> {
    fn wants_connect(&mut self, now: Instant) -> bool {
        match self.core.state {
            State::Down { retry_at: Some(at) } if at <= now && !self.core.ending => {
                self.core.now = now;
                if let Some(next) = self.core.check_schedule() {
                    self.core.state = State::Down { retry_at: Some(next) };
                    return false;
                }
                self.core.state = State::Connecting;
                !self.core.ending
            }
            _ => false,
        }
    }

    fn handle_connected(&mut self, now: Instant) {
        let core = &mut self.core;
        core.now = now;
        core.last_received = now;
        core.told = false;
        if core.check_schedule().is_some() {
            return core.disconnect(Cause::OutsideSchedule);
        }
        match core.config.role {
            Role::Initiator if core.state == State::Connecting => {
                core.state = State::LogonSent { deadline: now + core.config.logon_timeout };
                if core.config.reset_on_logon {
                    if let Err(e) = core.store.reset(core.wall()) {
                        return core.store_failed(e);
                    }
                }
                core.reset_sent = core.config.reset_on_logon;
                core.heart_bt_int = core.config.heart_bt_int;
                let _ = core.send_logon(core.reset_sent);
            }
            Role::Acceptor if matches!(core.state, State::Down { .. }) => {
                core.state = State::AwaitingLogon { deadline: now + core.config.logon_timeout };
            }
            _ => {}
        }
    }

    fn handle_input(&mut self, now: Instant, data: &[u8]) {
        self.core.now = now;
        if self.core.reading() {
            self.core.last_received = now;
            self.rx.extend_from_slice(data);
        }
    }

    fn handle_closed(&mut self, now: Instant, cause: Closed) {
        let core = &mut self.core;
        core.now = now;
        if core.state == State::Closed {
            return;
        }
        if !std::mem::take(&mut core.told) && cause != Closed::Requested {
            core.events.push_back(Event::Disconnected(Cause::Connection(cause)));
        }
        core.close = false;
        core.outbox.clear();
        core.held.clear();
        core.resend_until = None;
        core.test_request = None;
        self.rx.clear();
        self.rx_pos = 0;
        core.state = if core.ending {
            State::Closed
        } else if core.config.role == Role::Initiator {
            if !matches!(core.state, State::Active | State::LogoutSent { .. }) {
                // Never logged on over this one: the next goes to the next address.
                core.failover = core.failover.wrapping_add(1);
            }
            core.failures = (core.failures + 1).min(5);
            let backoff = core.config.reconnect_interval * (1 << (core.failures - 1)).min(16);
            State::Down { retry_at: Some(now + backoff) }
        } else {
            State::Down { retry_at: None }
        };
    }

    fn handle_timeout(&mut self, now: Instant) {
        let core = &mut self.core;
        core.now = now;
        if core.window_end.is_some_and(|end| now >= end) {
            core.window_end = None;
            match core.state {
                State::Active => {
                    tracing::info!(session = %core.config.sender_comp_id, "FIX session window closed; logging out");
                    core.logout(Some("End of session window"));
                }
                State::AwaitingLogon { .. } | State::LogonSent { .. } => {
                    core.disconnect(Cause::OutsideSchedule)
                }
                _ => {}
            }
        }
        match core.state {
            State::AwaitingLogon { deadline } | State::LogonSent { deadline } if now >= deadline => {
                core.disconnect(Cause::LogonTimeout);
            }
            State::LogoutSent { deadline } if now >= deadline => core.close = true,
            State::Active => {
                if core.test_request.is_some_and(|due| now >= due) {
                    core.disconnect(Cause::HeartbeatTimeout);
                    return;
                }
                if core.test_request.is_none() && now >= core.last_received + core.heart_bt_int * 6 / 5 {
                    core.test_requests += 1;
                    let id = core.test_requests.to_string();
                    if core
                        .send(b"1", |b| {
                            b.str(tag::TEST_REQ_ID, id.as_bytes());
                        })
                        .is_ok()
                    {
                        core.test_request = Some(now + core.heart_bt_int);
                    }
                }
                if now >= core.last_sent + core.heart_bt_int {
                    let _ = core.send(b"0", |_| {});
                }
            }
            _ => {}
        }
    }

    fn poll_transmit(&mut self) -> Option<&[u8]> {
        let core = &mut self.core;
        if core.outbox.is_empty() {
            return None;
        }
        // Write ahead: what accounts for these bytes is durable before they leave.
        if let Err(e) = core.store.flush(core.now) {
            core.store_failed(e);
            return None;
        }
        std::mem::swap(&mut core.outbox, &mut core.sending);
        core.outbox.clear();
        Some(&core.sending)
    }

    fn poll_close(&mut self) -> bool {
        std::mem::take(&mut self.core.close)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let core = &self.core;
        let due = match core.state {
            State::Down { retry_at } => return retry_at,
            State::AwaitingLogon { deadline }
            | State::LogonSent { deadline }
            | State::LogoutSent { deadline } => deadline,
            State::Active => {
                let receive = core.test_request.unwrap_or(core.last_received + core.heart_bt_int * 6 / 5);
                receive.min(core.last_sent + core.heart_bt_int)
            }
            State::Connecting | State::Closed => return None,
        };
        Some(core.window_end.map_or(due, |end| due.min(end)))
    }

    fn is_drained(&self) -> bool {
        self.core.state == State::Closed && !self.core.close
    }

    /// An initiator fails over: each connection that did not log on moves the next to the
    /// next address; a Logon brings it back to the primary.
    fn target(&self) -> usize {
        self.core.failover
    }
}

impl<S: MessageStore> Core<S> {
    /// Whether received bytes are read (a connection is up and not being given up).
    fn reading(&self) -> bool {
        !matches!(self.state, State::Down { .. } | State::Connecting | State::Closed) && !self.close
    }

    fn wall(&self) -> Timestamp {
        let (at, wall) = self.clock;
        let since = self.now.saturating_duration_since(at).as_nanos() as u64;
        Timestamp(wall.0 + since)
    }

    /// Applies the schedule now. Outside a window: returns when the next opens. Inside one:
    /// notes when it closes, and starts the numbers over if they began before it opened.
    fn check_schedule(&mut self) -> Option<Instant> {
        let schedule = self.config.schedule.as_ref()?;
        let wall = self.wall();
        let after = |t: Timestamp| self.now + Duration::from_nanos(t.0.saturating_sub(wall.0));
        match schedule.window(wall) {
            Window::Closed { next } => {
                self.window_end = None;
                Some(after(next))
            }
            Window::Open { start, end } => {
                self.window_end = Some(after(end));
                if self.store.created().is_none_or(|began| began < start) {
                    tracing::info!(session = %self.config.sender_comp_id, "a new FIX session window: numbers start over");
                    if let Err(e) = self.store.reset(wall) {
                        self.store_failed(e);
                    }
                }
                None
            }
        }
    }

    /// Writes a message with the next number and stores it before it can leave.
    fn send(&mut self, msg_type: &[u8], body: impl FnOnce(&mut Builder)) -> Result<u64, SendError> {
        let seq = self.store.next_out();
        if seq > self.config.max_seq_num {
            self.disconnect(Cause::SeqExhausted);
            return Err(SendError::SeqExhausted);
        }
        let start = self.outbox.len();
        let wall = self.wall();
        let config = &self.config;
        let mut b = Builder::new(&mut self.outbox, config.begin_string.as_bytes(), msg_type);
        b.str(tag::SENDER_COMP_ID, config.sender_comp_id.as_bytes())
            .str(tag::TARGET_COMP_ID, config.target_comp_id.as_bytes())
            .uint(tag::MSG_SEQ_NUM, seq)
            .timestamp(tag::SENDING_TIME, wall, config.precision);
        body(&mut b);
        let range = b.finish();
        if let Err(e) = self.store.save(seq, &self.outbox[range]) {
            self.outbox.truncate(start);
            let why = e.to_string();
            self.store_failed(e);
            return Err(SendError::Store(why));
        }
        self.last_sent = self.now;
        Ok(seq)
    }

    /// An application message: only when logged on, and never into the numbers kept back.
    fn send_app(
        &mut self,
        now: Instant,
        msg_type: &[u8],
        body: impl FnOnce(&mut Builder),
    ) -> Result<u64, SendError> {
        self.now = now;
        if self.state != State::Active {
            return Err(SendError::NotLoggedOn);
        }
        if self.store.next_out() + RESERVED_SEQ > self.config.max_seq_num {
            self.logout(Some("sequence numbers exhausted"));
            self.disconnect(Cause::SeqExhausted);
            return Err(SendError::SeqExhausted);
        }
        self.send(msg_type, body)
    }

    fn send_logon(&mut self, reset: bool) -> Result<u64, SendError> {
        let heart_bt_int = self.heart_bt_int.as_secs();
        let fixt = self.config.begin_string == "FIXT.1.1";
        let appl_ver = fixt.then(|| self.config.default_appl_ver_id.clone().unwrap_or_else(|| "9".into()));
        self.send(b"A", |b| {
            b.uint(tag::ENCRYPT_METHOD, 0).uint(tag::HEART_BT_INT, heart_bt_int);
            if reset {
                b.bool(tag::RESET_SEQ_NUM_FLAG, true);
            }
            if let Some(v) = &appl_ver {
                b.str(tag::DEFAULT_APPL_VER_ID, v.as_bytes());
            }
        })
    }

    fn logout(&mut self, text: Option<&str>) {
        let _ = self.send(b"5", |b| {
            if let Some(t) = text {
                b.str(tag::TEXT, t.as_bytes());
            }
        });
        self.state = State::LogoutSent { deadline: self.now + self.config.logout_timeout };
    }

    /// Closes the connection (after what is queued), saying why once.
    fn disconnect(&mut self, cause: Cause) {
        tracing::debug!(?cause, session = %self.config.sender_comp_id, "FIX session closing its connection");
        if !self.told {
            self.events.push_back(Event::Disconnected(cause));
            self.told = true;
        }
        self.close = true;
    }

    fn store_failed(&mut self, e: std::io::Error) {
        tracing::error!(error = %e, "FIX message store failed; the session stops");
        self.outbox.clear();
        self.ending = true;
        self.disconnect(Cause::Store(e.to_string()));
    }

    fn advance(&mut self) {
        let next = self.store.next_in() + 1;
        if let Err(e) = self.store.set_next_in(next) {
            self.store_failed(e);
        }
    }

    /// A session Reject (35=3) of message `seq`.
    fn reject(&mut self, seq: u64, msg_type: Option<&[u8]>, reject: Reject) {
        let _ = self.send(b"3", |b| {
            b.uint(tag::REF_SEQ_NUM, seq);
            if let Some(t) = reject.tag {
                b.uint(tag::REF_TAG_ID, u64::from(t));
            }
            if let Some(t) = msg_type {
                b.str(tag::REF_MSG_TYPE, t);
            }
            b.uint(tag::SESSION_REJECT_REASON, u64::from(reject.reason))
                .str(tag::TEXT, reject.text.as_bytes());
        });
        self.events.push_back(Event::RejectedIncoming { seq_num: seq, reject });
    }

    /// A message that framed but whose fields could not be read.
    fn malformed(&mut self, why: Malformed, seq: Option<u64>) {
        let Some(seq) = seq else { return };
        if seq != self.store.next_in() || self.state != State::Active {
            return;
        }
        let reject = Reject { reason: why.reject_reason(), tag: why.ref_tag(), text: "Invalid message" };
        self.reject(seq, None, reject);
        self.advance();
    }

    /// The messages held beyond a gap that is now filled, in order, if the next is there.
    fn ready_held(&mut self) -> Option<Vec<u8>> {
        let next = self.store.next_in();
        while self.held.first_key_value().is_some_and(|(&seq, _)| seq < next) {
            self.held.pop_first();
        }
        if self.held.first_key_value()?.0 != &next {
            return None;
        }
        let mut bytes = Vec::new();
        let mut expect = next;
        while let Some(entry) = self.held.first_entry().filter(|e| *e.key() == expect) {
            bytes.extend_from_slice(&entry.remove());
            expect += 1;
        }
        Some(bytes)
    }

    fn receive(&mut self, m: &Message) -> Fate {
        if m.begin_string() != self.config.begin_string.as_bytes() {
            self.logout(Some("Incorrect BeginString"));
            self.disconnect(Cause::BeginString);
            return Fate::Done;
        }
        let msg_type = m.msg_type();
        if matches!(self.state, State::AwaitingLogon { .. } | State::LogonSent { .. }) && msg_type != b"A" {
            if msg_type == b"5" {
                // A refused Logon: the counterparty's text says why (a number too low, ...).
                let text = m.get(tag::TEXT).map(|t| String::from_utf8_lossy(t).into_owned());
                self.disconnect(Cause::LoggedOut(text));
            } else {
                self.disconnect(Cause::BadLogon("the first message was not a Logon"));
            }
            return Fate::Done;
        }
        if m.get(tag::SENDER_COMP_ID) != Some(self.config.target_comp_id.as_bytes())
            || m.get(tag::TARGET_COMP_ID) != Some(self.config.sender_comp_id.as_bytes())
        {
            if let Some(seq) = m.seq_num() {
                self.reject(seq, Some(msg_type), Reject { reason: 9, tag: None, text: "CompID problem" });
            }
            self.logout(Some("CompID problem"));
            self.disconnect(Cause::CompId);
            return Fate::Done;
        }
        let Some(seq) = m.seq_num() else {
            self.logout(Some("MsgSeqNum missing"));
            self.disconnect(Cause::NoSeqNum);
            return Fate::Done;
        };
        if let Some(reject) = self.bad_time(m) {
            // SendingTime out of bounds (a replay, or a clock gone wrong): Reject, Logout.
            if seq == self.store.next_in() && msg_type != b"A" {
                self.advance();
            }
            self.reject(seq, Some(msg_type), reject);
            self.logout(Some(reject.text));
            return Fate::Done;
        }
        let gap_fill = m.get(tag::GAP_FILL_FLAG) == Some(b"Y");
        if msg_type == b"4" && !gap_fill {
            self.sequence_reset(m, seq);
            return Fate::Done;
        }
        if msg_type == b"A" && m.get(tag::RESET_SEQ_NUM_FLAG) == Some(b"Y") {
            // Their numbers start over at this Logon; ours do too unless our Logon did it.
            let ours = if self.reset_sent { Ok(()) } else { self.store.reset(self.wall()) };
            if let Err(e) = ours.and_then(|_| self.store.set_next_in(1)) {
                self.store_failed(e);
                return Fate::Done;
            }
        }
        let expected = self.store.next_in();
        if seq > expected {
            match msg_type {
                b"A" => self.logon(m),
                b"5" => {
                    self.logout_received(m);
                    return Fate::Done;
                }
                // Answered at once, as QuickFIX does: if both sides held each other's
                // ResendRequest until their own gap was filled, neither gap would ever be.
                // The counterparty's gap fill covers its number later.
                b"2" => self.resend(m),
                _ => {}
            }
            if self.resend_until.is_none() && self.state == State::Active {
                let _ = self.send(b"2", |b| {
                    b.uint(tag::BEGIN_SEQ_NO, expected).uint(tag::END_SEQ_NO, 0);
                });
            }
            self.resend_until = Some(self.resend_until.map_or(seq, |u| u.max(seq)));
            return if matches!(msg_type, b"A" | b"2") { Fate::Done } else { Fate::Hold(seq) };
        }
        if seq < expected {
            if m.poss_dup() && msg_type != b"4" && m.get(tag::ORIG_SENDING_TIME).is_none() {
                let reject =
                    Reject { reason: 1, tag: Some(tag::ORIG_SENDING_TIME), text: "Required tag missing" };
                self.reject(seq, Some(msg_type), reject);
            } else if !m.poss_dup() {
                let text = format!("MsgSeqNum too low, expecting {expected} but received {seq}");
                self.logout(Some(&text));
                self.disconnect(Cause::SeqTooLow { expected, received: seq });
            }
            return Fate::Done;
        }
        if self.resend_until.is_some_and(|until| seq >= until) {
            self.resend_until = None;
        }
        if m.poss_dup() && m.get(tag::ORIG_SENDING_TIME).is_none() && msg_type != b"4" {
            self.reject(
                seq,
                Some(msg_type),
                Reject { reason: 1, tag: Some(tag::ORIG_SENDING_TIME), text: "Required tag missing" },
            );
            self.advance();
            return Fate::Done;
        }
        match msg_type {
            b"0" => {
                if m.get(tag::TEST_REQ_ID).is_some() {
                    self.test_request = None;
                }
                self.advance();
            }
            b"1" => {
                self.advance();
                let id = m.get(tag::TEST_REQ_ID).unwrap_or_default().to_vec();
                let _ = self.send(b"0", |b| {
                    b.str(tag::TEST_REQ_ID, &id);
                });
            }
            b"2" => {
                self.advance();
                self.resend(m);
            }
            b"3" => {
                self.advance();
                let text = m.get(tag::TEXT).map(|t| String::from_utf8_lossy(t).into_owned());
                let (ref_seq_num, reason) =
                    (m.get_uint(tag::REF_SEQ_NUM), m.get_uint(tag::SESSION_REJECT_REASON));
                self.events.push_back(Event::Rejected { ref_seq_num, reason, text });
            }
            b"4" => self.gap_fill(m, seq),
            b"5" => {
                self.advance();
                self.logout_received(m);
            }
            b"A" => {
                self.advance();
                self.logon(m);
            }
            _ => {
                let checked = match &self.config.dictionary {
                    Some(dict) => self.config.validation.check(dict, m),
                    None => Ok(()),
                };
                if let Err(reject) = checked {
                    self.reject(seq, Some(msg_type), reject);
                    self.advance();
                    return Fate::Done;
                }
                self.advance();
                return Fate::Deliver;
            }
        }
        Fate::Done
    }

    fn logon(&mut self, m: &Message) {
        let opening = matches!(self.state, State::AwaitingLogon { .. } | State::LogonSent { .. });
        if opening && self.config.begin_string == "FIXT.1.1" {
            // FIXT 1.1: the Logon names the application version its messages default to.
            let Some(version) = m.get(tag::DEFAULT_APPL_VER_ID) else {
                self.logout(Some("DefaultApplVerID missing"));
                return self.disconnect(Cause::BadLogon("no DefaultApplVerID"));
            };
            self.their_appl_ver_id = Some(String::from_utf8_lossy(version).into_owned());
        }
        match self.state {
            State::AwaitingLogon { .. } => {
                let Some(heart_bt_int) = m.get_uint(tag::HEART_BT_INT) else {
                    self.logout(Some("HeartBtInt missing"));
                    self.disconnect(Cause::BadLogon("no HeartBtInt"));
                    return;
                };
                self.heart_bt_int = Duration::from_secs(heart_bt_int.max(1));
                let reset = m.get(tag::RESET_SEQ_NUM_FLAG) == Some(b"Y");
                self.state = State::Active;
                self.failures = 0;
                let _ = self.send_logon(reset);
                self.events.push_back(Event::LoggedOn);
            }
            State::LogonSent { .. } => {
                self.state = State::Active;
                self.failures = 0;
                self.failover = 0;
                self.reset_sent = false;
                self.events.push_back(Event::LoggedOn);
            }
            State::Active if m.get(tag::RESET_SEQ_NUM_FLAG) == Some(b"Y") => {
                // An in-session reset: both sides start over at 1.
                if let Err(e) = self.store.reset(self.wall()).and_then(|_| self.store.set_next_in(2)) {
                    return self.store_failed(e);
                }
                let _ = self.send_logon(true);
            }
            _ => {}
        }
    }

    /// A SendingTime further than `max_latency` from our clock, or a resend whose
    /// OrigSendingTime is after its SendingTime: SessionRejectReason 10.
    fn bad_time(&self, m: &Message) -> Option<Reject> {
        let sending = m.get(tag::SENDING_TIME).and_then(Timestamp::parse)?;
        let bad = Reject { reason: 10, tag: Some(tag::SENDING_TIME), text: "SendingTime accuracy problem" };
        if let Some(max) = self.config.max_latency {
            let (ours, max) = (self.wall().0, max.as_nanos() as u64);
            if sending.0.abs_diff(ours) > max {
                return Some(bad);
            }
        }
        let orig = m.get(tag::ORIG_SENDING_TIME).and_then(Timestamp::parse);
        orig.filter(|orig| m.poss_dup() && orig.0 > sending.0).map(|_| bad)
    }

    fn logout_received(&mut self, m: &Message) {
        let text = m.get(tag::TEXT).map(|t| String::from_utf8_lossy(t).into_owned());
        if !matches!(self.state, State::LogoutSent { .. }) {
            let _ = self.send(b"5", |_| {});
        }
        self.disconnect(Cause::LoggedOut(text));
    }

    /// SequenceReset-Reset: the counterparty's next number is NewSeqNo, whatever this one's.
    fn sequence_reset(&mut self, m: &Message, seq: u64) {
        let expected = self.store.next_in();
        match m.get_uint(tag::NEW_SEQ_NO) {
            Some(new) if new > expected => {
                if let Err(e) = self.store.set_next_in(new) {
                    self.store_failed(e);
                }
                self.resend_until = self.resend_until.filter(|&until| until >= new);
            }
            Some(new) if new == expected => {}
            _ => self.reject(
                seq,
                Some(b"4"),
                Reject {
                    reason: 5,
                    tag: Some(tag::NEW_SEQ_NO),
                    text: "Value is incorrect (out of range) for this tag",
                },
            ),
        }
    }

    /// SequenceReset-GapFill, in sequence: the numbers up to NewSeqNo are skipped.
    fn gap_fill(&mut self, m: &Message, seq: u64) {
        match m.get_uint(tag::NEW_SEQ_NO) {
            Some(new) if new > seq => {
                if let Err(e) = self.store.set_next_in(new) {
                    self.store_failed(e);
                }
                if self.resend_until.is_some_and(|until| new > until) {
                    self.resend_until = None;
                }
            }
            _ => {
                self.reject(
                    seq,
                    Some(b"4"),
                    Reject {
                        reason: 5,
                        tag: Some(tag::NEW_SEQ_NO),
                        text: "Value is incorrect (out of range) for this tag",
                    },
                );
                self.advance();
            }
        }
    }

    /// Answers a ResendRequest: stored application messages again (PossDupFlag, OrigSendingTime),
    /// runs of session messages and of what the filter declines as one SequenceReset-GapFill.
    fn resend(&mut self, m: &Message) {
        let last = self.store.next_out() - 1;
        let begin = m.get_uint(tag::BEGIN_SEQ_NO).unwrap_or(0);
        let end = match m.get_uint(tag::END_SEQ_NO) {
            Some(0) | None => last,
            Some(e) => e.min(last),
        };
        if begin == 0 || begin > last + 1 {
            let seq = m.seq_num().unwrap_or(0);
            self.reject(
                seq,
                Some(b"2"),
                Reject {
                    reason: 5,
                    tag: Some(tag::BEGIN_SEQ_NO),
                    text: "Value is incorrect (out of range) for this tag",
                },
            );
            return;
        }
        let mut stored = Vec::new();
        if let Err(e) = self.store.load(begin, end, &mut |seq, bytes| stored.push((seq, bytes.to_vec()))) {
            return self.store_failed(e);
        }
        let mut cursor = begin;
        let mut decoder = Decoder::default();
        for (seq, bytes) in stored {
            let Decoded::Message(old) = decoder.decode(&bytes) else { continue };
            let admin = matches!(old.msg_type(), b"0" | b"1" | b"2" | b"3" | b"4" | b"5" | b"A");
            let wanted = self.config.resend_filter.as_ref().is_none_or(|keep| keep(&old));
            if admin || !wanted {
                continue;
            }
            if cursor < seq {
                self.write_gap_fill(cursor, seq);
            }
            self.write_resent(&old, seq);
            cursor = seq + 1;
        }
        if cursor <= end {
            self.write_gap_fill(cursor, end + 1);
        }
        self.last_sent = self.now;
    }

    /// A SequenceReset-GapFill numbered `seq`, to `new` (it reuses a number: not stored).
    fn write_gap_fill(&mut self, seq: u64, new: u64) {
        let wall = self.wall();
        let config = &self.config;
        let mut b = Builder::new(&mut self.outbox, config.begin_string.as_bytes(), b"4");
        b.str(tag::SENDER_COMP_ID, config.sender_comp_id.as_bytes())
            .str(tag::TARGET_COMP_ID, config.target_comp_id.as_bytes())
            .uint(tag::MSG_SEQ_NUM, seq)
            .bool(tag::POSS_DUP_FLAG, true)
            .timestamp(tag::SENDING_TIME, wall, config.precision)
            .timestamp(tag::ORIG_SENDING_TIME, wall, config.precision)
            .bool(tag::GAP_FILL_FLAG, true)
            .uint(tag::NEW_SEQ_NO, new);
        b.finish();
    }

    /// `old` again with its number, PossDupFlag, a new SendingTime and the old one as
    /// OrigSendingTime.
    fn write_resent(&mut self, old: &Message, seq: u64) {
        const REWRITTEN: [u32; 9] = [8, 9, 10, 35, 34, 43, 52, 97, 122];
        let wall = self.wall();
        let config = &self.config;
        let mut b = Builder::new(&mut self.outbox, old.begin_string(), old.msg_type());
        b.str(tag::SENDER_COMP_ID, config.sender_comp_id.as_bytes())
            .str(tag::TARGET_COMP_ID, config.target_comp_id.as_bytes())
            .uint(tag::MSG_SEQ_NUM, seq)
            .bool(tag::POSS_DUP_FLAG, true)
            .timestamp(tag::SENDING_TIME, wall, config.precision);
        if let Some(orig) = old.get(tag::SENDING_TIME) {
            b.str(tag::ORIG_SENDING_TIME, orig);
        }
        for f in old.fields() {
            if !REWRITTEN.contains(&f.tag) && f.tag != tag::SENDER_COMP_ID && f.tag != tag::TARGET_COMP_ID {
                b.str(f.tag, old.value(f));
            }
        }
        b.finish();
    }
}
