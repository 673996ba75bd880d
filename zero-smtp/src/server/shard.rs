//! The server on a zero-core shard: listeners, a [`Session`] [`Driver`] per accepted
//! connection, and the [`Store`] its messages go to, committed once per shard batch (group
//! commit: every session whose message ended in the batch shares one `fdatasync`, and none
//! hears `250` before it).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use zero_core::machine::{Driver, Machine};
use zero_core::tls::Listeners;
use zero_core::{ConnId, Event as IoEvent, Handler, ListenOptions, ListenerId, Ops, Target};

use super::verifier::Verifier;
use super::{Credentials, Envelope, Event, Peer, ServerConfig, Session};
use crate::codec::reply::Reply;
use crate::spool::{MessageId, Spool};
use zero_dns::ResolverConfig;

/// Where accepted messages go.
pub trait Store {
    /// A message's id (in the `250` and the trace header).
    type Id: std::fmt::Display;
    /// A new id.
    fn next_id(&mut self, now: SystemTime) -> Self::Id;
    /// Stages a message whose text is `text` joined (the trace header, then what the client
    /// sent), or refuses it with a reply. It is safe only after [`Store::commit`].
    fn stage(
        &mut self,
        id: &Self::Id,
        envelope: &Envelope,
        text: &[&[u8]],
        now: SystemTime,
    ) -> Result<(), Reply>;
    /// Makes what is staged durable, all at once. On an error every staged message is
    /// refused (`451 4.3.0`).
    fn commit(&mut self, now: Instant) -> io::Result<()>;
}

impl Store for Spool {
    type Id = MessageId;

    fn next_id(&mut self, now: SystemTime) -> MessageId {
        Spool::next_id(self, now)
    }

    fn stage(
        &mut self,
        id: &MessageId,
        envelope: &Envelope,
        text: &[&[u8]],
        now: SystemTime,
    ) -> Result<(), Reply> {
        Spool::stage(self, *id, envelope, text, now);
        Ok(())
    }

    fn commit(&mut self, now: Instant) -> io::Result<()> {
        Spool::commit(self, now)
    }
}

/// A store that keeps nothing: it accepts every message and forgets it (what Postfix's
/// `smtp-sink` does; the benchmark's no-disk ceiling, and a test peer).
#[derive(Debug, Default)]
pub struct Sink {
    /// Messages accepted.
    pub messages: u64,
}

impl Store for Sink {
    type Id = u64;

    fn next_id(&mut self, _now: SystemTime) -> u64 {
        self.messages += 1;
        self.messages
    }

    fn stage(
        &mut self,
        _id: &u64,
        _envelope: &Envelope,
        _text: &[&[u8]],
        _now: SystemTime,
    ) -> Result<(), Reply> {
        Ok(())
    }

    fn commit(&mut self, _now: Instant) -> io::Result<()> {
        Ok(())
    }
}

/// An IP network, `127.0.0.0/8` or `::1/128`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Whether `ip` is in it.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for Network {
    type Err = String;

    fn from_str(s: &str) -> Result<Network, String> {
        let (addr, prefix) = s.split_once('/').unwrap_or((s, ""));
        let addr: IpAddr = addr.parse().map_err(|_| format!("{s}: not an IP network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix =
            if prefix.is_empty() { max } else { prefix.parse().map_err(|_| format!("{s}: bad prefix"))? };
        if prefix > max {
            return Err(format!("{s}: prefix over {max}"));
        }
        Ok(Network { addr, prefix })
    }
}

/// Checks a client's credentials.
pub type Authenticator = Box<dyn FnMut(&Credentials) -> bool>;

/// An SMTP server on one shard (a zero-core [`Handler`]).
pub struct Server<S: Store> {
    config: Arc<ServerConfig>,
    store: S,
    authenticator: Option<Authenticator>,
    trusted: Vec<Network>,
    /// Listeners, and whether each is TLS from the start.
    listeners: Listeners,
    sessions: HashMap<ConnId, Driver<Session>>,
    timers: HashMap<u64, ConnId>,
    next_token: u64,
    /// Sessions with a message staged in this batch, and its id.
    staged: Vec<(ConnId, String)>,
    /// Sessions that had events this batch.
    touched: Vec<ConnId>,
    verifier: Option<Verifier>,
}

/// Timer tokens of sessions start here (below are the owner's, but for the verifier's).
const FIRST_TOKEN: u64 = 1 << 32;
const VERIFIER_TOKEN: u64 = FIRST_TOKEN - 1;

impl<S: Store> Server<S> {
    /// A server under `config` storing into `store`.
    pub fn new(config: ServerConfig, store: S) -> Server<S> {
        Server {
            config: Arc::new(config),
            store,
            authenticator: None,
            trusted: Vec::new(),
            listeners: Listeners::default(),
            sessions: HashMap::new(),
            timers: HashMap::new(),
            next_token: FIRST_TOKEN,
            staged: Vec::new(),
            touched: Vec::new(),
            verifier: None,
        }
    }

    /// Checks AUTH credentials with `check` (without one, every AUTH fails).
    pub fn with_authenticator(mut self, check: Authenticator) -> Server<S> {
        self.authenticator = Some(check);
        self
    }

    /// Clients from `networks` may relay anywhere without authenticating.
    pub fn with_trusted(mut self, networks: Vec<Network>) -> Server<S> {
        self.trusted = networks;
        self
    }

    /// Listens on `addr` (STARTTLS offered if configured); returns the address bound.
    pub fn listen(
        &mut self,
        ops: &mut Ops,
        addr: SocketAddr,
        opts: &ListenOptions,
    ) -> zero_core::Result<SocketAddr> {
        self.listeners.listen(ops, addr, opts)
    }

    /// Listens on `addr` with TLS from the start (port 465, RFC 8314).
    pub fn listen_tls(
        &mut self,
        ops: &mut Ops,
        addr: SocketAddr,
        opts: &ListenOptions,
    ) -> zero_core::Result<SocketAddr> {
        self.listeners.listen_tls(ops, addr, opts, self.config.tls.clone())
    }

    /// The store.
    pub fn store(&mut self) -> &mut S {
        &mut self.store
    }

    /// Open sessions.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    fn accept(&mut self, ops: &mut Ops, conn: ConnId, listener: ListenerId) {
        let addr = ops.peer_addr(conn).unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let trusted = self.trusted.iter().any(|n| n.contains(addr.ip()));
        let tls = self.listeners.tls(listener).unwrap_or(false);
        let session = Session::new(self.config.clone(), Peer { addr, trusted, tls });
        let token = self.next_token;
        self.next_token += 1;
        // Server sessions never connect: the target is never used.
        let mut driver = Driver::new(session, Target::tcp(SocketAddr::from(([127, 0, 0, 1], 0))), token);
        driver.attach(ops, conn);
        self.sessions.insert(conn, driver);
        self.timers.insert(token, conn);
        self.touched.push(conn);
    }

    /// Checks mail from outside (neither trusted nor authenticated) with SPF and DKIM,
    /// resolving through `dns`: each such message gets an Authentication-Results header
    /// before it is stored.
    pub fn with_inbound_checks(mut self, dns: ResolverConfig) -> Server<S> {
        self.verifier = Some(Verifier::new(&self.config.hostname, dns, VERIFIER_TOKEN));
        self
    }

    /// Hands the session's events to the store (or the verifier first) and the
    /// authenticator.
    fn serve(&mut self, ops: &mut Ops, conn: ConnId) {
        let now = ops.now();
        loop {
            let Some(driver) = self.sessions.get_mut(&conn) else { return };
            let Some(event) = driver.machine().poll_event() else { return };
            match event {
                Event::Message { envelope, body } => {
                    let inbound = envelope.authenticated.is_none() && !envelope.peer.trusted;
                    match &mut self.verifier {
                        Some(verifier) if inbound => verifier.start(ops, conn, envelope, body),
                        _ => self.stage(now, conn, &envelope, &body, ""),
                    }
                }
                Event::Authenticate(c) => {
                    let ok = self.authenticator.as_mut().is_some_and(|check| check(&c));
                    driver.machine().authenticated(now, ok, &c.username);
                }
            }
        }
    }

    /// Stages a message in the store (with its trace header, `results`, and a DKIM
    /// signature when it is ours to sign), or refuses it.
    fn stage(&mut self, now: Instant, conn: ConnId, envelope: &Envelope, body: &[u8], results: &str) {
        let wall = SystemTime::now();
        let id = self.store.next_id(wall);
        let trace = super::trace::received(envelope, &self.config.hostname, &id.to_string(), wall);
        let signature = sign(&self.config, envelope, body, wall);
        let parts = [trace.as_bytes(), results.as_bytes(), signature.as_bytes(), body];
        match self.store.stage(&id, envelope, &parts, wall) {
            Ok(()) => self.staged.push((conn, id.to_string())),
            Err(reply) => {
                if let Some(driver) = self.sessions.get_mut(&conn) {
                    driver.machine().stored(now, Err(reply));
                }
            }
        }
    }

    fn forget(&mut self, conn: ConnId) {
        self.sessions.remove(&conn);
        self.timers.retain(|_, c| *c != conn);
        if let Some(verifier) = &mut self.verifier {
            verifier.forget(conn);
        }
    }

    /// Lets the verifier send its queries and take its answers, and stages what it has
    /// finished with; whether anything was staged.
    fn take_verified(&mut self, ops: &mut Ops) -> bool {
        let Some(verifier) = &mut self.verifier else { return false };
        verifier.pump(ops);
        let done = verifier.take_done();
        let before = self.staged.len();
        for v in done {
            if self.sessions.contains_key(&v.conn) {
                self.stage(ops.now(), v.conn, &v.envelope, &v.body, &v.results);
            }
        }
        self.staged.len() > before
    }
}

/// The DKIM-Signature for a message from an authenticated or trusted client whose author
/// domain has a signer; empty otherwise (mail from elsewhere is not ours to sign).
fn sign(config: &ServerConfig, envelope: &Envelope, body: &[u8], wall: SystemTime) -> String {
    if envelope.authenticated.is_none() && !envelope.peer.trusted {
        return String::new();
    }
    let Some(domain) = crate::dkim::author_domain(body) else { return String::new() };
    match config.dkim.iter().find(|s| s.domain() == domain) {
        Some(signer) => signer.sign(body, wall.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())),
        None => String::new(),
    }
}

impl<S: Store> Handler for Server<S> {
    fn on_event(&mut self, ops: &mut Ops, event: IoEvent<'_>) {
        if let Some(verifier) = &mut self.verifier {
            if verifier.on_event(ops, &event) {
                return;
            }
        }
        let conn = match &event {
            IoEvent::Accepted { conn, listener } if self.listeners.tls(*listener).is_some() => {
                return self.accept(ops, *conn, *listener);
            }
            IoEvent::Data { conn, .. } | IoEvent::Closed { conn, .. } | IoEvent::Upgraded { conn } => *conn,
            IoEvent::Timer { token, .. } => match self.timers.get(token) {
                Some(conn) => *conn,
                None => return,
            },
            _ => return,
        };
        let Some(driver) = self.sessions.get_mut(&conn) else { return };
        driver.on_event(ops, &event);
        if let IoEvent::Closed { .. } = event {
            // zero-core reuses no slot before its Closed event is handed out.
            self.forget(conn);
            return;
        }
        self.serve(ops, conn);
        self.touched.push(conn);
    }

    /// Every client is told `421` and closed; so are the verifier's lookups.
    fn on_drain(&mut self, ops: &mut Ops) {
        for driver in self.sessions.values_mut() {
            driver.machine().shut_down();
            driver.pump(ops);
        }
        ops.close_all();
    }

    fn on_batch_end(&mut self, ops: &mut Ops) {
        let now = ops.now();
        // Storing a message lets its session read on, which may end another message (and
        // the verifier may finish some, a cached key at once): commit until nothing is
        // staged.
        while self.take_verified(ops) || !self.staged.is_empty() {
            let committed = self.store.commit(now);
            if let Err(e) = &committed {
                tracing::error!(error = %e, "spool commit failed; refusing this batch's messages");
            }
            for (conn, id) in std::mem::take(&mut self.staged) {
                let Some(driver) = self.sessions.get_mut(&conn) else { continue };
                let result = match &committed {
                    Ok(()) => Ok(id),
                    Err(_) => Err(Reply::new(451, (4, 3, 0), "Spool write failed, try again later")),
                };
                driver.machine().stored(now, result);
                self.serve(ops, conn);
                self.touched.push(conn);
            }
        }
        self.touched.sort_unstable();
        self.touched.dedup();
        for conn in std::mem::take(&mut self.touched) {
            if let Some(driver) = self.sessions.get_mut(&conn) {
                driver.pump(ops);
                if driver.machine_ref().is_drained() && driver.conn().is_none() {
                    self.forget(conn);
                }
            }
        }
    }
}
