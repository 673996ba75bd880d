//! The client machine: one Redis connection, multiplexed, sans-I/O.
//!
//! Commands are written into one send buffer as they are issued and stay there until their
//! replies arrive, so that replies (which Redis sends in command order) are matched by
//! position, and so that after a connection failure the commands that may be resent are
//! still at hand. Everything issued between two `poll_transmit` calls leaves in one write:
//! automatic pipelining. The driver runs it through zero-core's [`Machine`] contract.
//!
//! The connection's life: `Down` (waiting for the next attempt) -> `Opening` (the driver is
//! connecting) -> `Setup` (`HELLO 3`, or RESP2's `AUTH`/`CLIENT SETNAME`; then `SELECT` and
//! the subscriptions to restore) -> `Ready`. Commands issued before `Ready` wait in the buffer
//! and go out once it is reached. When a connection fails, commands that were written are
//! resent if the retry policy allows it (read-only commands, by default) and failed with
//! [`Error::ConnectionLost`] otherwise; commands never written are simply sent on the next
//! connection. Nothing is dropped without its caller being told, nothing is sent twice
//! unless it may be.
//!
//! With [`ClientConfig::cache`] set, the set-up also turns on `CLIENT TRACKING`, and reads
//! are answered from the client-side cache when they can be ([`super::cache`] has its rules).

use std::borrow::Cow;
use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use zero_core::machine::{Closed, Machine};

use super::cache::{CacheConfig, Lookup, SharedCache, Store};
use crate::cmd::{is_read_only, without_header, Args, Cmd, ToArg};
use crate::codec::{self, decode, encode_command, Frame, Limits, Scan};

/// What a subscribed RESP2 connection may still be sent (the Redis documentation of
/// SUBSCRIBE: "the client can't issue any other commands").
const SUBSCRIBED_RESP2: &[&[u8]] = &[
    b"SUBSCRIBE",
    b"UNSUBSCRIBE",
    b"PSUBSCRIBE",
    b"PUNSUBSCRIBE",
    b"SSUBSCRIBE",
    b"SUNSUBSCRIBE",
    b"PING",
    b"QUIT",
    b"RESET",
];

/// Buffered input from which frames are scanned before they are decoded.
const SCAN_FROM: usize = 64 << 10;
use crate::error::{Error, ServerError};

/// Which protocol the client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// RESP3 (`HELLO 3`), falling back to RESP2 when the server does not know it.
    Resp3,
    /// RESP2 only: no `HELLO`; pub/sub needs a connection of its own.
    Resp2,
}

/// Which written commands may be sent again after a connection failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryPolicy {
    /// None: every written command fails with [`Error::ConnectionLost`].
    Never,
    /// Read-only commands ([`crate::cmd::READ_ONLY`]) and those marked with
    /// [`Cmd::retry`]; subscriptions are always restored.
    ReadOnly,
}

/// How the client connects and behaves.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// RESP3 (with fallback) or RESP2.
    pub protocol: Protocol,
    /// The ACL user (`AUTH user password`); `None` with a password is the `default` user.
    pub username: Option<String>,
    /// The password, if the server wants one.
    pub password: Option<String>,
    /// The database to `SELECT`.
    pub database: u32,
    /// A name for `CLIENT SETNAME`.
    pub client_name: Option<String>,
    /// How long opening and setting up a connection may take.
    pub connect_timeout: Duration,
    /// How long a command may wait for its reply (including while the client reconnects);
    /// `None`: as long as it takes.
    pub command_timeout: Option<Duration>,
    /// Which written commands are resent after a connection failure.
    pub retry: RetryPolicy,
    /// How many connections one command may be sent on before it fails (a command that makes
    /// the server drop the connection is not resent forever).
    pub max_attempts: u8,
    /// The first reconnect delay; it doubles after each failed attempt, up to
    /// `reconnect_max`, and resets once a connection is ready. Each delay is drawn from the
    /// upper half of its value, so that clients dropped together do not return together.
    pub reconnect_min: Duration,
    /// The longest reconnect delay.
    pub reconnect_max: Duration,
    /// Bounds on what a reply may make the decoder do.
    pub limits: Limits,
    /// Client-side caching of reads, kept fresh by `CLIENT TRACKING` (RESP3 only; see
    /// [`super::cache`]); `None`: off.
    pub cache: Option<CacheConfig>,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            protocol: Protocol::Resp3,
            username: None,
            password: None,
            database: 0,
            client_name: None,
            connect_timeout: Duration::from_secs(5),
            command_timeout: Some(Duration::from_secs(30)),
            retry: RetryPolicy::ReadOnly,
            max_attempts: 3,
            reconnect_min: Duration::from_millis(50),
            reconnect_max: Duration::from_secs(2),
            limits: Limits::default(),
            cache: None,
        }
    }
}

/// Names a command issued on the machine; its [`Event::Reply`] or [`Event::Failed`] carries
/// the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// The three kinds of subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubKind {
    /// `SUBSCRIBE` to channels.
    Channel,
    /// `PSUBSCRIBE` to glob patterns.
    Pattern,
    /// `SSUBSCRIBE` to shard channels.
    Shard,
}

impl SubKind {
    const ALL: [SubKind; 3] = [SubKind::Channel, SubKind::Pattern, SubKind::Shard];

    /// The command that subscribes (or unsubscribes), and the push that confirms each
    /// channel: `SUBSCRIBE` / `subscribe`, `PUNSUBSCRIBE` / `punsubscribe`, ...
    fn verbs(self, subscribe: bool) -> (&'static str, &'static str) {
        match (self, subscribe) {
            (SubKind::Channel, true) => ("SUBSCRIBE", "subscribe"),
            (SubKind::Pattern, true) => ("PSUBSCRIBE", "psubscribe"),
            (SubKind::Shard, true) => ("SSUBSCRIBE", "ssubscribe"),
            (SubKind::Channel, false) => ("UNSUBSCRIBE", "unsubscribe"),
            (SubKind::Pattern, false) => ("PUNSUBSCRIBE", "punsubscribe"),
            (SubKind::Shard, false) => ("SUNSUBSCRIBE", "sunsubscribe"),
        }
    }

    /// The push that carries a message: `message`, `pmessage`, `smessage`.
    fn message_verb(self) -> &'static str {
        match self {
            SubKind::Channel => "message",
            SubKind::Pattern => "pmessage",
            SubKind::Shard => "smessage",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A message on a subscription, borrowed from the receive buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    /// Which kind of subscription it came through.
    pub kind: SubKind,
    /// The channel it was published to.
    pub channel: Cow<'a, [u8]>,
    /// The pattern that matched (`PSUBSCRIBE` only).
    pub pattern: Option<Cow<'a, [u8]>>,
    /// The payload.
    pub payload: Cow<'a, [u8]>,
}

impl Message<'_> {
    /// A copy that owns its bytes.
    pub fn into_owned(self) -> Message<'static> {
        Message {
            kind: self.kind,
            channel: Cow::Owned(self.channel.into_owned()),
            pattern: self.pattern.map(|p| Cow::Owned(p.into_owned())),
            payload: Cow::Owned(self.payload.into_owned()),
        }
    }
}

/// What the machine has to say.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<'a> {
    /// The reply to a command, error replies included (see [`crate::FromValue`]); for a
    /// subscribe or unsubscribe, the last confirmation.
    Reply {
        /// The command's id.
        id: RequestId,
        /// The reply, borrowed from the receive buffer.
        frame: Frame<'a>,
    },
    /// A command that will get no reply.
    Failed {
        /// The command's id.
        id: RequestId,
        /// Why.
        error: Error,
    },
    /// A message on one of the subscriptions.
    Message(Message<'a>),
    /// Another out-of-band frame (e.g. a `CLIENT TRACKING` invalidation).
    Push(Frame<'a>),
    /// A connection is ready, with the protocol it speaks.
    Connected {
        /// RESP3, or RESP2 (asked for, or the server's fallback).
        protocol: Protocol,
    },
    /// The connection failed or could not be set up; the machine will try again.
    Disconnected {
        /// Why.
        error: Error,
    },
}

/// Where the connection is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Link {
    /// No connection; the next attempt is due at `retry_at`.
    Down { retry_at: Instant },
    /// The driver is opening one; it must be ready by `deadline`.
    Opening { deadline: Instant },
    /// Connected; the set-up commands are out, and must be answered by `deadline`.
    Setup { deadline: Instant },
    /// Commands flow.
    Ready,
    /// Closed for good by [`Client::close`].
    Closed,
}

/// What a written command waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// One reply for the caller; `cached`: it may come from the client-side cache.
    Reply { retry: bool, cached: bool },
    /// `left` push confirmations named `verb` (`subscribe`, `punsubscribe`, ...). `caller`:
    /// a caller waits for them; otherwise they restore subscriptions after a reconnect.
    Confirm { verb: &'static str, left: u32, caller: bool },
    /// The reply to `HELLO 3`.
    Hello,
    /// The `OK` to a set-up command (`AUTH`, `CLIENT SETNAME`, `SELECT`).
    Setup,
    /// The answer to `CLIENT TRACKING ON`: if refused (an ACL user without `CLIENT`), the
    /// connection works on without the cache.
    Tracking,
}

/// A command whose bytes are in the send buffer and whose reply has not arrived.
#[derive(Debug, Clone)]
struct Pending {
    id: RequestId,
    /// Its length in the send buffer.
    len: usize,
    expect: Expect,
    /// When it times out.
    deadline: Option<Instant>,
    /// How many failed connections it was written to.
    attempts: u8,
    /// It timed out after it was written: its reply is read and dropped.
    abandoned: bool,
    /// Its reply may go into the cache.
    fill: bool,
}

impl Pending {
    /// Whether the set-up of a connection made it (so it is made afresh for the next).
    fn is_setup(&self) -> bool {
        matches!(
            self.expect,
            Expect::Hello | Expect::Setup | Expect::Tracking | Expect::Confirm { caller: false, .. }
        )
    }
}

/// The client machine for one connection. See the module docs.
#[derive(Debug)]
pub struct Client<S: Store = SharedCache> {
    /// Received bytes; `rx_pos` is where the next frame starts. Not a zero-core `Unframed`
    /// (which frames as bytes arrive): replies are decoded as events are polled and borrow
    /// these bytes until the next poll, so the position moves apart from the bytes.
    rx: Vec<u8>,
    rx_pos: usize,
    /// How far a large frame that has not all arrived has been scanned.
    scan: Scan,
    core: Core<S>,
}

/// Everything but the receive buffer, so a frame borrowed from it can be routed.
#[derive(Debug)]
struct Core<S: Store> {
    config: ClientConfig,
    link: Link,
    /// The protocol the current (or last) connection speaks.
    protocol: Protocol,
    /// Failed connection attempts in a row, for the backoff.
    failures: u32,
    /// The state of the backoff's jitter (xorshift64).
    jitter: u64,
    /// The encoded commands of `pending`, in order, from `head`; `sent` bytes of it are out.
    out: Vec<u8>,
    head: usize,
    sent: usize,
    /// Where the set-up commands end in `out` while the link is in `Setup`.
    setup_end: usize,
    pending: VecDeque<Pending>,
    next_id: u64,
    /// The earliest command deadline, or earlier (a stale one costs one idle scan).
    next_check: Option<Instant>,
    /// Subscriptions to restore on a new connection, per [`SubKind`].
    subscriptions: [BTreeSet<Vec<u8>>; 3],
    events: VecDeque<Event<'static>>,
    /// The driver should close the connection.
    close_requested: bool,
    /// The receive buffer holds bytes of a dead connection.
    discard_input: bool,
    /// Replies to reads, and whether the server agreed to track this connection (so
    /// replies may be kept).
    cache: Option<S>,
    tracking: bool,
    now: Instant,
}

/// The Redis client under zero-core's machine contract. A close the machine asks for
/// (`poll_close`: a failure it has already handled, or [`Client::close`]) needs no report:
/// `handle_closed` with [`Closed::Requested`] changes nothing.
impl<S: Store> Machine for Client<S> {
    fn wants_connect(&mut self, now: Instant) -> bool {
        match self.core.link {
            Link::Down { retry_at } if now >= retry_at => {
                self.core.link = Link::Opening { deadline: now + self.core.config.connect_timeout };
                true
            }
            _ => false,
        }
    }

    fn handle_connected(&mut self, now: Instant) {
        self.core.now = now;
        if let Link::Opening { deadline } = self.core.link {
            self.rx.clear();
            self.rx_pos = 0;
            self.core.discard_input = false;
            self.core.link = Link::Setup { deadline };
            self.core.protocol = self.core.config.protocol;
            self.core.begin_setup();
        }
    }

    fn handle_input(&mut self, now: Instant, data: &[u8]) {
        self.core.now = now;
        self.compact();
        if !self.core.discard_input {
            self.rx.extend_from_slice(data);
        }
    }

    fn handle_closed(&mut self, now: Instant, cause: Closed) {
        if cause == Closed::Requested {
            return; // the machine moved on when it asked
        }
        self.core.now = now;
        self.rx.clear();
        self.rx_pos = 0;
        self.core.discard_input = false;
        self.core.lose(Error::Connection(cause));
        self.core.close_requested = false;
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.core.now = now;
        match self.core.link {
            Link::Opening { deadline } | Link::Setup { deadline } if now >= deadline => {
                self.core.lose(Error::ConnectTimeout(self.core.config.connect_timeout));
            }
            _ => {}
        }
        if self.core.next_check.is_some_and(|at| now >= at) {
            self.core.expire(now);
        }
    }

    fn poll_transmit(&mut self) -> Option<&[u8]> {
        let core = &mut self.core;
        let limit = match core.link {
            Link::Ready => core.out.len(),
            Link::Setup { .. } => core.setup_end,
            _ => return None,
        };
        if core.sent >= limit {
            return None;
        }
        let from = std::mem::replace(&mut core.sent, limit);
        Some(&core.out[from..limit])
    }

    fn poll_close(&mut self) -> bool {
        std::mem::take(&mut self.core.close_requested)
    }

    fn is_drained(&self) -> bool {
        matches!(self.core.link, Link::Closed) && !self.core.close_requested
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let link = match self.core.link {
            Link::Down { retry_at } => Some(retry_at),
            Link::Opening { deadline } | Link::Setup { deadline } => Some(deadline),
            Link::Ready | Link::Closed => None,
        };
        [link, self.core.next_check].into_iter().flatten().min()
    }
}

impl Client {
    /// A machine that will connect as soon as its driver asks `wants_connect`, with its cache
    /// (if on) a [`SharedCache`].
    pub fn new(config: ClientConfig, now: Instant) -> Client {
        Client::with_store(config, now)
    }
}

impl<S: Store> Client<S> {
    /// [`Client::new`] with the cache (if on) in a store of the caller's choice: a
    /// [`Cache`](super::cache::Cache) of the machine's own needs no lock.
    pub fn with_store(config: ClientConfig, now: Instant) -> Client<S> {
        let protocol = config.protocol;
        let cache = config.cache.clone().map(S::open);
        Client {
            rx: Vec::new(),
            rx_pos: 0,
            scan: Scan::default(),
            core: Core {
                config,
                link: Link::Down { retry_at: now },
                protocol,
                failures: 0,
                jitter: seed(),
                out: Vec::new(),
                head: 0,
                sent: 0,
                setup_end: 0,
                pending: VecDeque::new(),
                next_id: 1,
                next_check: None,
                subscriptions: Default::default(),
                events: VecDeque::new(),
                close_requested: false,
                discard_input: false,
                cache,
                tracking: false,
                now,
            },
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.core.config
    }

    /// Whether a connection is ready for commands.
    pub fn is_ready(&self) -> bool {
        self.core.link == Link::Ready
    }

    /// The protocol the connection speaks (or will ask for).
    pub fn protocol(&self) -> Protocol {
        self.core.protocol
    }

    /// Commands waiting for a reply (or to be written).
    pub fn in_flight(&self) -> usize {
        self.core.pending.len()
    }

    /// The client-side cache, if it is on (a [`SharedCache`]: other threads may answer reads
    /// from it).
    pub fn cache(&self) -> Option<&S> {
        self.core.cache.as_ref()
    }

    /// Issues `cmd`; its reply comes as an [`Event::Reply`] with the returned id. With the
    /// cache on, a cached reply is an event at once: drain [`Client::poll_event`] after
    /// issuing, not only after input.
    pub fn send(&mut self, cmd: &Cmd, now: Instant) -> RequestId {
        let retry = cmd.retries();
        let timeout = cmd.own_timeout().unwrap_or(self.core.config.command_timeout);
        let expect = Expect::Reply { retry, cached: cmd.caches() };
        self.core.issue_with(now, expect, timeout, |out| cmd.write(out))
    }

    /// Issues the command `args` (name first) without building a [`Cmd`]: the shortest path
    /// for code on the shard.
    pub fn send_args<A: AsRef<[u8]>>(&mut self, args: &[A], now: Instant) -> RequestId {
        let retry = args.first().is_some_and(|name| is_read_only(name.as_ref()));
        self.core.issue(now, Expect::Reply { retry, cached: true }, |out| encode_command(out, args))
    }

    /// Subscribes to `channels` (at least one); the subscriptions are restored on every new
    /// connection until unsubscribed. Messages come as [`Event::Message`]. Over RESP2 the
    /// connection then only takes subscription commands: use one for pub/sub alone.
    pub fn subscribe<C: AsRef<[u8]>>(&mut self, kind: SubKind, channels: &[C], now: Instant) -> RequestId {
        self.core.subscription(kind, channels, true, now)
    }

    /// Unsubscribes from `channels` (at least one).
    pub fn unsubscribe<C: AsRef<[u8]>>(&mut self, kind: SubKind, channels: &[C], now: Instant) -> RequestId {
        self.core.subscription(kind, channels, false, now)
    }

    /// Closes the client for good: every outstanding command fails with [`Error::Closed`].
    pub fn close(&mut self) {
        let core = &mut self.core;
        let failed: Vec<_> = core.pending.drain(..).filter(|p| !p.is_setup() && !p.abandoned).collect();
        for p in failed {
            core.events.push_back(Event::Failed { id: p.id, error: Error::Closed });
        }
        core.out.clear();
        (core.head, core.sent, core.setup_end) = (0, 0, 0);
        if let Some(cache) = &mut core.cache {
            cache.with(|c| c.reset());
        }
        core.close_requested = !matches!(core.link, Link::Down { .. } | Link::Closed);
        core.link = Link::Closed;
    }

    /// The next event. Replies and messages borrow the receive buffer until the next call.
    pub fn poll_event(&mut self) -> Option<Event<'_>> {
        if let Some(event) = self.core.events.pop_front() {
            return Some(event);
        }
        self.compact();
        let Client { rx, rx_pos, scan, core } = self;
        while !core.discard_input && *rx_pos < rx.len() {
            let input = &rx[*rx_pos..];
            // A large frame is scanned on from where the last read left it, and decoded once
            // it is all there: re-decoding it from its start on every read would be quadratic.
            if scan.is_active() || input.len() >= SCAN_FROM {
                match codec::scan(input, &core.config.limits, scan) {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(error) => {
                        core.lose(Error::Protocol(error));
                        break;
                    }
                }
            }
            match decode(input, &core.config.limits) {
                Ok(Some((frame, used))) => {
                    *rx_pos += used;
                    if let Some(event) = core.route(frame) {
                        return Some(event);
                    }
                    if let Some(event) = core.events.pop_front() {
                        return Some(event);
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    core.lose(Error::Protocol(error));
                    break;
                }
            }
        }
        core.events.pop_front()
    }

    /// Drops consumed input, or all of it when it belongs to a dead connection.
    fn compact(&mut self) {
        if self.core.discard_input || self.rx_pos == self.rx.len() {
            self.rx.clear();
            self.rx_pos = 0;
            self.scan = Scan::default();
            if self.rx.capacity() > RX_KEEP {
                // A large reply is gone: so is its memory.
                self.rx = Vec::new();
            }
        } else if self.rx_pos >= 64 << 10 && self.rx_pos * 2 >= self.rx.len() {
            self.rx.drain(..self.rx_pos);
            self.rx_pos = 0;
        }
    }
}

/// Receive capacity kept once every received byte is consumed; larger buffers are freed.
const RX_KEEP: usize = 64 << 10;

impl<S: Store> Core<S> {
    /// Appends a command written by `write` and returns its id.
    fn issue(&mut self, now: Instant, expect: Expect, write: impl FnOnce(&mut Vec<u8>)) -> RequestId {
        self.issue_with(now, expect, self.config.command_timeout, write)
    }

    /// [`Core::issue`] with a timeout of its own.
    fn issue_with(
        &mut self,
        now: Instant,
        expect: Expect,
        timeout: Option<Duration>,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> RequestId {
        self.now = now;
        if self.link == Link::Closed {
            return self.refuse(Error::Closed);
        }
        let start = self.out.len();
        write(&mut self.out);
        if matches!(expect, Expect::Reply { .. }) && self.resp2_subscribed() {
            let name = Args(Some(without_header(&self.out[start..]))).next().unwrap_or_default();
            if !SUBSCRIBED_RESP2.iter().any(|allowed| allowed.eq_ignore_ascii_case(name)) {
                self.out.truncate(start);
                return self.refuse(Error::Usage(
                    "a RESP2 connection with subscriptions takes only (UN)SUBSCRIBE commands, PING, QUIT \
                     and RESET: issue other commands on another connection",
                ));
            }
        }
        let id = RequestId(self.next_id);
        self.next_id += 1;
        let mut fill = false;
        if let (Expect::Reply { cached, .. }, Some(cache)) = (expect, &mut self.cache) {
            let lookup = cache.with(|c| c.issue(&self.out[start..], cached, now));
            match lookup {
                Lookup::Hit(frame) => {
                    self.out.truncate(start);
                    self.events.push_back(Event::Reply { id, frame });
                    return id;
                }
                Lookup::Miss { fill: f } => fill = f,
            }
        }
        let deadline = timeout.map(|t| now + t);
        if let Some(d) = deadline {
            self.next_check = Some(self.next_check.map_or(d, |c| c.min(d)));
        }
        let len = self.out.len() - start;
        self.pending.push_back(Pending { id, len, expect, deadline, attempts: 0, abandoned: false, fill });
        id
    }

    /// A command that fails at once.
    fn refuse(&mut self, error: Error) -> RequestId {
        let id = RequestId(self.next_id);
        self.next_id += 1;
        self.events.push_back(Event::Failed { id, error });
        id
    }

    fn subscription<C: AsRef<[u8]>>(
        &mut self,
        kind: SubKind,
        channels: &[C],
        on: bool,
        now: Instant,
    ) -> RequestId {
        let set = &mut self.subscriptions[kind.index()];
        for c in channels {
            if on {
                set.insert(c.as_ref().to_vec());
            } else {
                set.remove(c.as_ref());
            }
        }
        if channels.is_empty() {
            return self.refuse(Error::Usage("(un)subscribing needs at least one channel"));
        }
        let (command, verb) = kind.verbs(on);
        let left = channels.len() as u32;
        self.issue(now, Expect::Confirm { verb, left, caller: true }, |out| {
            crate::codec::encode::header(out, b'*', channels.len() + 1);
            command.write_args(out);
            for c in channels {
                c.as_ref().write_args(out);
            }
        })
    }

    /// The first set-up stage: `HELLO 3` (RESP3) or the RESP2 commands.
    fn begin_setup(&mut self) {
        let mut stage = Vec::new();
        match self.protocol {
            Protocol::Resp3 => {
                let mut hello = crate::cmd::cmd("HELLO").arg("3");
                if let Some(password) = &self.config.password {
                    hello = hello
                        .arg("AUTH")
                        .arg(self.config.username.as_deref().unwrap_or("default"))
                        .arg(password);
                }
                if let Some(name) = &self.config.client_name {
                    hello = hello.arg("SETNAME").arg(name);
                }
                stage.push((hello, Expect::Hello));
            }
            Protocol::Resp2 => self.resp2_setup(&mut stage),
        }
        self.after_hello(&mut stage);
        self.insert_setup(stage);
    }

    /// RESP2's `AUTH` and `CLIENT SETNAME` (what `HELLO` does in RESP3).
    fn resp2_setup(&self, stage: &mut Vec<(Cmd, Expect)>) {
        if let Some(password) = &self.config.password {
            let auth = match &self.config.username {
                Some(user) => crate::cmd::cmd("AUTH").arg(user).arg(password),
                None => crate::cmd::cmd("AUTH").arg(password),
            };
            stage.push((auth, Expect::Setup));
        }
        if let Some(name) = &self.config.client_name {
            stage.push((crate::cmd::cmd("CLIENT").arg("SETNAME").arg(name), Expect::Setup));
        }
    }

    /// `SELECT` and the subscriptions to restore, which follow the authentication. Behind a
    /// `HELLO` they wait for its answer (which may send the client back to RESP2).
    fn after_hello(&self, stage: &mut Vec<(Cmd, Expect)>) {
        if stage.iter().any(|(_, e)| *e == Expect::Hello) {
            return;
        }
        if self.cache.is_some() && self.protocol == Protocol::Resp3 {
            stage.push((crate::cmd::cmd("CLIENT").arg("TRACKING").arg("ON"), Expect::Tracking));
        }
        if self.config.database != 0 {
            stage.push((crate::cmd::cmd("SELECT").arg(self.config.database), Expect::Setup));
        }
        for kind in SubKind::ALL {
            let set = &self.subscriptions[kind.index()];
            if !set.is_empty() {
                let (command, verb) = kind.verbs(true);
                let mut c = crate::cmd::cmd(command);
                for channel in set {
                    c.push(&channel[..]);
                }
                stage.push((c, Expect::Confirm { verb, left: set.len() as u32, caller: false }));
            }
        }
    }

    /// Puts a set-up stage in front of the waiting commands (the previous stage has been
    /// answered, so `head == sent`), or declares the connection ready if it is empty.
    fn insert_setup(&mut self, stage: Vec<(Cmd, Expect)>) {
        if stage.is_empty() {
            return self.ready();
        }
        let mut bytes = Vec::new();
        let mut entries = Vec::new();
        for (cmd, expect) in stage {
            let start = bytes.len();
            cmd.write(&mut bytes);
            let len = bytes.len() - start;
            entries.push(Pending {
                id: RequestId(0),
                len,
                expect,
                deadline: None,
                attempts: 0,
                abandoned: false,
                fill: false,
            });
        }
        self.setup_end = self.head + bytes.len();
        self.out.splice(self.head..self.head, bytes);
        for p in entries.into_iter().rev() {
            self.pending.push_front(p);
        }
    }

    fn ready(&mut self) {
        self.link = Link::Ready;
        self.failures = 0;
        self.events.push_back(Event::Connected { protocol: self.protocol });
    }

    /// The connection is gone (or must go): written commands are kept for the next one or
    /// failed, the set-up is forgotten, and the next attempt is scheduled.
    fn lose(&mut self, error: Error) {
        if matches!(self.link, Link::Down { .. } | Link::Closed) {
            return;
        }
        self.close_requested = true;
        self.discard_input = true;
        self.tracking = false;
        if let Some(cache) = &mut self.cache {
            cache.with(|c| c.invalidate_all());
        }
        let delay = self.backoff();
        self.failures += 1;
        self.link = Link::Down { retry_at: self.now + delay };
        let (policy, max) = (self.config.retry, self.config.max_attempts);
        let mut failed = Vec::new();
        self.rebuild(|p, sent| {
            if p.is_setup() || (sent && p.abandoned) {
                return false;
            }
            let retry = match p.expect {
                Expect::Reply { retry, .. } => retry && policy == RetryPolicy::ReadOnly,
                _ => true,
            };
            if sent {
                p.attempts += 1;
                if !retry || p.attempts >= max {
                    failed.push(p.id);
                    return false;
                }
            }
            true
        });
        for id in failed {
            self.events.push_back(Event::Failed { id, error: Error::ConnectionLost { sent: true } });
        }
        self.sent = 0;
        self.events.push_back(Event::Disconnected { error });
    }

    /// The delay before the next connection attempt: none right after a working connection,
    /// then `reconnect_min` doubling up to `reconnect_max`, each from the upper half of its
    /// value.
    fn backoff(&mut self) -> Duration {
        let Some(n) = self.failures.checked_sub(1) else { return Duration::ZERO };
        let full = self.config.reconnect_min.saturating_mul(1 << n.min(16)).min(self.config.reconnect_max);
        self.jitter ^= self.jitter << 13;
        self.jitter ^= self.jitter >> 7;
        self.jitter ^= self.jitter << 17;
        let fraction = (self.jitter >> 11) as f64 / (1u64 << 53) as f64;
        full / 2 + (full / 2).mul_f64(fraction)
    }

    /// Keeps the pending commands `keep` says yes to (given whether each was written), with
    /// their bytes, and drops the rest.
    fn rebuild(&mut self, mut keep: impl FnMut(&mut Pending, bool) -> bool) {
        let mut out = Vec::with_capacity(self.out.len() - self.head);
        let (mut at, mut sent) = (self.head, 0);
        let cache = &mut self.cache;
        self.pending.retain_mut(|p| {
            let written = at < self.sent;
            let kept = keep(p, written);
            if kept {
                out.extend_from_slice(&self.out[at..at + p.len]);
                if written {
                    sent += p.len;
                }
            } else if let (true, Some(cache)) = (p.fill, cache.as_mut()) {
                cache.with(|c| c.forget());
            }
            at += p.len;
            kept
        });
        self.out = out;
        self.head = 0;
        self.sent = sent;
        self.setup_end = 0;
    }

    /// Fails the commands past their deadline: written ones are abandoned (their replies
    /// will be dropped), unwritten ones removed.
    fn expire(&mut self, now: Instant) {
        let due = |p: &Pending| !p.abandoned && p.deadline.is_some_and(|d| now >= d);
        if !self.pending.iter().any(due) {
            self.next_check = self.pending.iter().filter(|p| !p.abandoned).filter_map(|p| p.deadline).min();
            return;
        }
        let mut expired = Vec::new();
        self.rebuild(|p, sent| {
            if !due(p) {
                return true;
            }
            expired.push((p.id, sent));
            p.abandoned = true;
            sent
        });
        if matches!(self.link, Link::Setup { .. }) {
            self.setup_end = self.pending.iter().take_while(|p| p.is_setup()).map(|p| p.len).sum();
        }
        for (id, sent) in expired {
            self.events.push_back(Event::Failed { id, error: Error::Timeout { sent } });
        }
        self.next_check = self.pending.iter().filter(|p| !p.abandoned).filter_map(|p| p.deadline).min();
    }

    /// Whether RESP2 arrays may be pub/sub messages (the connection is subscribed).
    fn resp2_subscribed(&self) -> bool {
        self.protocol == Protocol::Resp2
            && (self.subscriptions.iter().any(|s| !s.is_empty())
                || self.pending.front().is_some_and(|p| matches!(p.expect, Expect::Confirm { .. })))
    }

    /// What a frame from the server means.
    fn route<'a>(&mut self, frame: Frame<'a>) -> Option<Event<'a>> {
        let push = match frame {
            Frame::Push(items) => items,
            Frame::Array(items) if self.resp2_subscribed() && is_pubsub(&items) => items,
            reply => return self.reply(reply),
        };
        if self.cache.as_mut().is_some_and(|cache| cache.with(|c| c.on_push(&push))) {
            return None;
        }
        let verb = push.first().and_then(Frame::as_bytes).unwrap_or_default();
        if let Some(kind) = SubKind::ALL.into_iter().find(|k| k.message_verb().as_bytes() == verb) {
            return message(kind, push).map(Event::Message);
        }
        let front = self.pending.front_mut();
        match front {
            Some(Pending { expect: Expect::Confirm { verb: want, left, .. }, .. })
                if want.as_bytes() == verb =>
            {
                *left -= 1;
                if *left == 0 {
                    return self.reply(Frame::Push(push));
                }
                None
            }
            _ => Some(Event::Push(Frame::Push(push))),
        }
    }

    /// A reply (or the last confirmation): for the command at the front.
    fn reply<'a>(&mut self, frame: Frame<'a>) -> Option<Event<'a>> {
        let Some(p) = self.pending.pop_front() else {
            self.lose(Error::UnexpectedReply);
            return None;
        };
        if let (true, Some(cache)) = (p.fill, &mut self.cache) {
            let (command, tracking, now) = (&self.out[self.head..self.head + p.len], self.tracking, self.now);
            cache.with(|c| c.fill(command, &frame, tracking, now));
        }
        self.head += p.len;
        if self.head == self.out.len() {
            self.out.clear();
            (self.head, self.sent) = (0, 0);
        } else if self.head >= 1 << 20 && self.head * 2 >= self.out.len() {
            self.out.drain(..self.head);
            self.sent -= self.head;
            self.setup_end = self.setup_end.saturating_sub(self.head);
            self.head = 0;
        }
        let refused = match &frame {
            Frame::Error(e) | Frame::BulkError(e) => Some(String::from_utf8_lossy(e).into_owned()),
            _ => None,
        };
        match p.expect {
            Expect::Reply { .. } | Expect::Confirm { caller: true, .. } => {
                (!p.abandoned).then_some(Event::Reply { id: p.id, frame })
            }
            Expect::Hello => {
                match refused {
                    Some(e) if e.starts_with("NOPROTO") || e.starts_with("ERR unknown command") => {
                        self.protocol = Protocol::Resp2;
                        let mut stage = Vec::new();
                        self.resp2_setup(&mut stage);
                        self.after_hello(&mut stage);
                        self.insert_setup(stage);
                    }
                    Some(e) => self.lose(Error::SetupRefused { step: "HELLO", reply: ServerError(e) }),
                    None => {
                        let mut stage = Vec::new();
                        self.after_hello(&mut stage);
                        self.insert_setup(stage);
                    }
                }
                None
            }
            Expect::Setup | Expect::Tracking | Expect::Confirm { caller: false, .. } => {
                if p.expect == Expect::Tracking {
                    self.tracking = refused.is_none();
                    if let Some(e) = &refused {
                        tracing::warn!(error = %e, "CLIENT TRACKING refused: this connection caches nothing");
                    }
                }
                if let (Some(e), false) = (refused, p.expect == Expect::Tracking) {
                    self.lose(Error::SetupRefused { step: "set-up", reply: ServerError(e) });
                } else if !self.pending.front().is_some_and(Pending::is_setup) {
                    self.ready();
                }
                None
            }
        }
    }
}

/// A seed for the jitter that differs between clients: the standard library's per-process,
/// per-instance hash keys (never zero, which would stick xorshift at zero).
fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new().build_hasher().finish() | 1
}

/// Whether a RESP2 array on a subscribed connection is a message or a confirmation.
fn is_pubsub(items: &[Frame<'_>]) -> bool {
    let Some(verb) = items.first().and_then(Frame::as_bytes) else { return false };
    SubKind::ALL
        .into_iter()
        .any(|k| [k.message_verb(), k.verbs(true).1, k.verbs(false).1].iter().any(|v| v.as_bytes() == verb))
}

/// `message channel payload`, `pmessage pattern channel payload`, `smessage channel payload`.
fn message(kind: SubKind, push: Vec<Frame<'_>>) -> Option<Message<'_>> {
    let mut parts = push.into_iter().skip(1).map(|f| match f {
        Frame::Bulk(b) | Frame::Simple(b) => Some(b),
        _ => None,
    });
    let pattern = if kind == SubKind::Pattern { Some(parts.next()??) } else { None };
    let channel = parts.next()??;
    let payload = parts.next()??;
    Some(Message { kind, channel, pattern, payload })
}
