//! The acceptor: many sessions on one port, each found by the CompIDs of the Logon that opens
//! its connection, each a zero-core [`Driver`] over its [`Session`] on the same shard, their
//! application called inline (the latency path: a reply leaves in the same batch as the
//! message it answers).
//!
//! A connection is held unbound until its first message is whole. It must be a Logon naming
//! a configured session (its SenderCompID is our TargetCompID and the other way round) that
//! is not connected already; otherwise the connection is closed without a word, as QuickFIX
//! does (nothing can be sent to an unknown counterparty).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use zero_core::machine::{Driver, Machine};
use zero_core::{ConnId, Deadline, Event as IoEvent, Handler, Ops, Target};

use crate::codec::{tag, Decoded, Decoder, Message};
use crate::dict::Dictionary;
use crate::session::{Cause, Event, MessageStore, SendError, Sender, Session};

/// How many bytes an unbound connection may send before its Logon is whole.
const MAX_PENDING: usize = 64 * 1024;

/// How long an accepted connection may take to send its Logon.
const LOGON_WAIT: Duration = Duration::from_secs(10);

/// What the acceptor's sessions tell the application, inline on the shard.
pub trait Application {
    /// `session` (index into [`Acceptor::sessions`]) logged on.
    fn on_logon(&mut self, session: usize) {
        let _ = session;
    }
    /// An application message of `session`, in sequence, exactly once; `reply` sends on it.
    fn on_message<S: MessageStore>(
        &mut self,
        now: Instant,
        session: usize,
        message: &Message<'_>,
        reply: &mut Sender<'_, S>,
    );
    /// `session` went down.
    fn on_logout(&mut self, session: usize, cause: &Cause) {
        let _ = (session, cause);
    }
}

/// A configured session and its driver.
struct Entry<S: MessageStore> {
    driver: Driver<Session<S>>,
}

/// An accepted connection whose Logon is not whole yet.
struct Pending {
    bytes: Vec<u8>,
    since: Instant,
}

/// Sessions served on one listening port (a zero-core [`Handler`]).
pub struct Acceptor<S: MessageStore, A: Application> {
    entries: Vec<Entry<S>>,
    /// (our SenderCompID, our TargetCompID) -> entry.
    by_comp_ids: HashMap<(String, String), usize>,
    pending: HashMap<ConnId, Pending>,
    /// The timer that closes pending connections whose Logon is overdue.
    logon_wait: Deadline,
    bound: HashMap<ConnId, usize>,
    /// Sessions that had events this batch: only they are pumped at its end.
    touched: Vec<usize>,
    app: A,
}

/// The token of [`Acceptor::logon_wait`]'s timer (sessions use their index).
const LOGON_WAIT_TOKEN: u64 = u64::MAX;

impl<S: MessageStore, A: Application> Acceptor<S, A> {
    /// An acceptor for `sessions` (acceptor sessions), calling `app`.
    pub fn new(sessions: Vec<Session<S>>, app: A) -> Acceptor<S, A> {
        let mut by_comp_ids = HashMap::new();
        let entries = sessions
            .into_iter()
            .enumerate()
            .map(|(i, session)| {
                let c = session.config();
                by_comp_ids.insert((c.sender_comp_id.clone(), c.target_comp_id.clone()), i);
                // Acceptor sessions never connect: the target is never used.
                let nowhere = Target::tcp(SocketAddr::from(([127, 0, 0, 1], 0)));
                Entry { driver: Driver::new(session, nowhere, i as u64) }
            })
            .collect();
        Acceptor {
            entries,
            by_comp_ids,
            pending: HashMap::new(),
            logon_wait: Deadline::new(LOGON_WAIT_TOKEN),
            bound: HashMap::new(),
            touched: Vec::new(),
            app,
        }
    }

    /// Listens on `addr`; returns the address bound (port 0 picks one).
    pub fn listen(&mut self, ops: &mut Ops, addr: SocketAddr) -> zero_core::Result<SocketAddr> {
        let listener = ops.tcp_listen(addr)?;
        ops.listener_addr(listener)
    }

    /// [`Acceptor::listen`] over TLS (FIX over TLS, as QuickFIX's SSL acceptor serves it):
    /// sessions see plain bytes, the shard does the TLS.
    pub fn listen_tls(
        &mut self,
        ops: &mut Ops,
        addr: SocketAddr,
        tls: Arc<zero_core::rustls::ServerConfig>,
    ) -> zero_core::Result<SocketAddr> {
        let listener = ops.tls_listen(addr, tls)?;
        ops.listener_addr(listener)
    }

    /// The sessions, by index.
    pub fn sessions(&self) -> impl Iterator<Item = &Session<S>> {
        self.entries.iter().map(|e| e.driver.machine_ref())
    }

    /// The application.
    pub fn app(&mut self) -> &mut A {
        &mut self.app
    }

    /// Binds a pending connection whose first message is whole, or closes it.
    fn bind(&mut self, ops: &mut Ops, conn: ConnId) {
        let Some(p) = self.pending.get(&conn) else { return };
        let mut decoder = Decoder::default();
        let found = match decoder.decode(&p.bytes) {
            Decoded::Partial if p.bytes.len() < MAX_PENDING => return,
            Decoded::Message(m) if m.msg_type() == b"A" => {
                let field = |t| m.get(t).map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default();
                self.by_comp_ids.get(&(field(tag::TARGET_COMP_ID), field(tag::SENDER_COMP_ID))).copied()
            }
            _ => None,
        };
        let p = self.pending.remove(&conn).expect("checked above");
        match found {
            Some(i) if self.entries[i].driver.conn().is_none() => {
                tracing::debug!(%conn, session = i, "a Logon binds the connection to its session");
                let driver = &mut self.entries[i].driver;
                driver.attach(ops, conn);
                driver.machine().handle_input(ops.now(), &p.bytes);
                self.bound.insert(conn, i);
                self.touched.push(i);
            }
            other => {
                tracing::info!(%conn, session = ?other, "closing a connection that is not a Logon of a free session");
                let _ = ops.close_now(conn);
            }
        }
    }

    /// Hands session `i`'s events to the application and does what its machine asks.
    fn pump(&mut self, ops: &mut Ops, i: usize) {
        let now = ops.now();
        let Entry { driver } = &mut self.entries[i];
        while let Some((event, mut sender)) = driver.machine().poll_event_replying() {
            match event {
                Event::LoggedOn => self.app.on_logon(i),
                Event::Application(m) => self.app.on_message(now, i, &m, &mut sender),
                Event::Disconnected(cause) => self.app.on_logout(i, &cause),
                _ => {}
            }
        }
        driver.pump(ops);
    }
}

impl<S: MessageStore, A: Application> Handler for Acceptor<S, A> {
    fn on_event(&mut self, ops: &mut Ops, event: IoEvent<'_>) {
        match &event {
            IoEvent::Accepted { conn, .. } => {
                tracing::debug!(%conn, "accepted");
                self.pending.insert(*conn, Pending { bytes: Vec::new(), since: ops.now() });
                return;
            }
            IoEvent::Data { conn, data } if self.pending.contains_key(conn) => {
                self.pending.get_mut(conn).expect("checked").bytes.extend_from_slice(data);
                return self.bind(ops, *conn);
            }
            IoEvent::Closed { conn, .. } if self.pending.remove(conn).is_some() => return,
            _ => {}
        }
        let i = match &event {
            // A bound connection's end: the mapping goes with it (zero-core reuses no slot
            // before its Closed event is handed out).
            IoEvent::Closed { conn, .. } => self.bound.remove(conn),
            IoEvent::Data { conn, .. }
            | IoEvent::Connected { conn }
            | IoEvent::ConnectFailed { conn, .. } => self.bound.get(conn).copied(),
            IoEvent::Timer { token, .. } if self.logon_wait.fired(*token) => {
                let now = ops.now();
                let stale: Vec<ConnId> = self
                    .pending
                    .iter()
                    .filter(|(_, p)| now >= p.since + LOGON_WAIT)
                    .map(|(c, _)| *c)
                    .collect();
                for conn in stale {
                    tracing::debug!(%conn, "no Logon in time; closing");
                    self.pending.remove(&conn);
                    let _ = ops.close_now(conn);
                }
                None
            }
            IoEvent::Timer { token, .. } => usize::try_from(*token).ok().filter(|&t| t < self.entries.len()),
            _ => None,
        };
        if let Some(i) = i {
            self.entries[i].driver.on_event(ops, &event);
            self.touched.push(i);
        }
    }

    /// A shutdown: each logged-on session sends Logout ("Server shutting down") and closes
    /// once the counterparty answers it (or its logout timeout passes), as FIX asks; a
    /// connection whose Logon has not come yet closes at once.
    fn on_drain(&mut self, ops: &mut Ops) {
        for conn in std::mem::take(&mut self.pending).into_keys() {
            let _ = ops.close_now(conn);
        }
        let now = ops.now();
        for i in 0..self.entries.len() {
            if self.entries[i].driver.conn().is_some() {
                self.entries[i].driver.machine().logout(now, Some("Server shutting down"));
                self.pump(ops, i);
            }
        }
    }

    fn on_batch_end(&mut self, ops: &mut Ops) {
        let mut touched = std::mem::take(&mut self.touched);
        touched.sort_unstable();
        touched.dedup();
        for &i in &touched {
            self.pump(ops, i);
        }
        touched.clear();
        self.touched = touched;
        let overdue = self.pending.values().map(|p| p.since + LOGON_WAIT).min();
        self.logon_wait.follow(ops, overdue);
    }
}

/// The built-in counterparty: each application message the dictionary defines is sent back
/// unchanged (its body after the standard header); any other is refused with a
/// BusinessMessageReject, reason 3 "Unsupported Message Type".
#[derive(Debug)]
pub struct Echo {
    dictionary: Arc<Dictionary>,
    /// The standard header's tags: not echoed (the session writes its own header).
    header: Vec<u32>,
}

impl Echo {
    /// An echo for messages of `dictionary`.
    pub fn new(dictionary: Arc<Dictionary>) -> Echo {
        let header = dictionary.header().iter().map(crate::dict::member_tag).collect();
        Echo { dictionary, header }
    }
}

impl Application for Echo {
    fn on_message<S: MessageStore>(
        &mut self,
        now: Instant,
        _: usize,
        m: &Message<'_>,
        reply: &mut Sender<'_, S>,
    ) {
        let header = &self.header;
        let supported = self.dictionary.message(m.msg_type()).is_some_and(|def| !def.admin);
        let sent = if supported {
            reply.send(now, m.msg_type(), |b| {
                for f in m.fields()[1..].iter().filter(|f| !header.contains(&f.tag)) {
                    b.str(f.tag, m.value(f));
                }
            })
        } else {
            unsupported(now, m, reply)
        };
        if let Err(e) = sent {
            tracing::warn!(error = %e, "echo could not answer");
        }
    }
}

/// A BusinessMessageReject of `m`, reason 3 "Unsupported Message Type".
fn unsupported<S: MessageStore>(
    now: Instant,
    m: &Message<'_>,
    reply: &mut Sender<'_, S>,
) -> Result<u64, SendError> {
    reply.send(now, b"j", |b| {
        b.uint(tag::REF_SEQ_NUM, m.seq_num().unwrap_or(0))
            .str(tag::REF_MSG_TYPE, m.msg_type())
            .uint(tag::BUSINESS_REJECT_REASON, 3)
            .str(tag::TEXT, b"Unsupported Message Type");
    })
}

/// A minimal exchange for round trips: each NewOrderSingle is acknowledged with an
/// ExecutionReport (ExecType and OrdStatus New, nothing filled); any other application message
/// is refused with a BusinessMessageReject.
#[derive(Debug, Default)]
pub struct Exec {
    next_id: u64,
}

impl Application for Exec {
    fn on_message<S: MessageStore>(
        &mut self,
        now: Instant,
        _: usize,
        m: &Message<'_>,
        reply: &mut Sender<'_, S>,
    ) {
        let sent = if m.msg_type() == b"D" {
            self.next_id += 1;
            let mut id = [0u8; 20];
            let id = crate::codec::builder::uint_text(self.next_id, &mut id);
            reply.send(now, b"8", |b| {
                b.str(37, id).str(17, id).char(150, b'0').char(39, b'0');
                for t in [11, 55, 54] {
                    if let Some(v) = m.get(t) {
                        b.str(t, v);
                    }
                }
                b.str(151, m.get(38).unwrap_or(b"0")).char(14, b'0').char(6, b'0');
            })
        } else {
            unsupported(now, m, reply)
        };
        if let Err(e) = sent {
            tracing::warn!(error = %e, "exec could not answer");
        }
    }
}
