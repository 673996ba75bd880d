//! The relay: the server's spool delivered onward, on the same shard.
//!
//! A [`Relay`] is the shard's handler: the [`Server`] accepts into the [`Spool`]; the
//! [`Queue`] schedules every recipient not yet dealt with; each destination domain is
//! resolved (a static [`Route`], or its MX records through zero-dns, the implicit MX when it
//! has none, and a null MX, RFC 7505, failing it for good) and its recipients go out on
//! [`Client`] connections (up to `per_destination` at once, each carrying up to
//! `per_connection` messages), the next address tried when one cannot be reached. Each
//! recipient's fate is written to the spool as it is learned (delivered, or failed for
//! good); transient failures are retried with backoff; a message that outlives its lifetime
//! gives up; a finished message with failures is bounced (a DSN, RFC 3464, queued like any
//! message, from the null sender); a late one gets a delay warning, once.

pub mod bounce;
pub mod control;
pub mod queue;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use zero_core::machine::{Driver, Machine};
use zero_core::{ConnId, Deadline, Event as IoEvent, Handler, ListenerId, Ops, Target};
use zero_dns::resolver::{Event as DnsEvent, LookupId, Resolver, ResolverDriver};
use zero_dns::{RecordType, ResolveError, ResolverConfig};

use crate::client::{self, Client, ClientConfig, Failure, Outgoing, SendId, TlsPolicy, To};
use crate::server::{Envelope, Peer, Recipient, Server};
use crate::spool::{MessageId, Spool};
pub use queue::{Queue, Schedule};

/// Where mail for a domain goes instead of its MX.
#[derive(Debug, Clone)]
pub struct Route {
    /// The domain (`example.com`), or `*` for every domain without a route of its own (a
    /// smarthost).
    pub domain: String,
    /// The hosts to try, in order.
    pub hosts: Vec<SocketAddr>,
    /// STARTTLS for this route.
    pub tls: TlsPolicy,
    /// AUTH as (user, password).
    pub auth: Option<(String, String)>,
    /// Deliver nowhere: each recipient counts as delivered at once (Postfix's `discard`
    /// transport; for sinks and benchmarks).
    pub discard: bool,
}

/// How the relay delivers.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The name in EHLO, trace headers and bounces.
    pub hostname: String,
    /// Static routes, tried before MX.
    pub routes: Vec<Route>,
    /// Retry timing, lifetime, warnings.
    pub schedule: Schedule,
    /// Connections to one destination at once.
    pub per_destination: usize,
    /// Messages one connection carries.
    pub per_connection: usize,
    /// The port MX hosts are reached on (25; tests change it).
    pub mx_port: u16,
    /// The resolver for MX and address lookups.
    pub dns: ResolverConfig,
}

impl RelayConfig {
    /// Defaults for `hostname`: no routes, the default schedule, 2 connections per
    /// destination, 100 messages per connection, port 25, `/etc/resolv.conf`'s servers (the
    /// caller passes the resolver configuration).
    pub fn new(hostname: &str, dns: ResolverConfig) -> RelayConfig {
        RelayConfig {
            hostname: hostname.to_string(),
            routes: Vec::new(),
            schedule: Schedule::default(),
            per_destination: 2,
            per_connection: 100,
            mx_port: 25,
            dns,
        }
    }

    fn route(&self, domain: &str) -> Option<&Route> {
        let exact = self.routes.iter().find(|r| r.domain.eq_ignore_ascii_case(domain));
        exact.or_else(|| self.routes.iter().find(|r| r.domain == "*"))
    }
}

/// Finding where a domain's mail goes.
#[derive(Debug)]
enum Lookup {
    /// Its MX records.
    Mx,
    /// The addresses of its mail hosts, in preference order (each host's lookups).
    Hosts { hosts: Vec<String>, answers: Vec<Option<Vec<IpAddr>>>, waiting: usize },
}

/// One connection's worth of delivery.
struct Delivery {
    domain: String,
    driver: Driver<Client>,
    /// Each message sent on it, and its recipients' indexes in the message.
    sends: HashMap<SendId, (MessageId, Vec<usize>)>,
    /// The addresses not tried yet, and the route's client settings, for a connection that
    /// cannot be made.
    rest: Vec<SocketAddr>,
    client: ClientConfig,
    token: u64,
}

/// Tokens: the queue's timer, the resolver's, then deliveries'.
const QUEUE_TOKEN: u64 = 1 << 40;
const DNS_TOKEN: u64 = QUEUE_TOKEN + 1;
const FIRST_DELIVERY: u64 = QUEUE_TOKEN + 2;

/// A relay on one shard (a zero-core [`Handler`]).
pub struct Relay {
    server: Server<Spool>,
    config: Arc<RelayConfig>,
    queue: Queue,
    timer: Deadline,
    resolver: ResolverDriver,
    /// Lookups in flight: for which domain, and what.
    lookups: HashMap<LookupId, (String, usize)>,
    resolving: HashMap<String, Lookup>,
    /// Recipients waiting for their domain's addresses.
    waiting: HashMap<String, Vec<(MessageId, Vec<usize>)>>,
    deliveries: HashMap<u64, Delivery>,
    by_conn: HashMap<ConnId, u64>,
    next_token: u64,
    /// The spool holds records not committed yet.
    dirty: bool,
    /// The control socket, and its connections' unanswered bytes.
    control: Option<ListenerId>,
    control_conns: HashMap<ConnId, Vec<u8>>,
}

impl Relay {
    /// A relay delivering what `server` accepts into its spool (and what the spool held
    /// from before).
    pub fn new(mut server: Server<Spool>, config: RelayConfig, now: Instant) -> Relay {
        let resolver = ResolverDriver::new(Resolver::new(config.dns.clone(), rand::random()), DNS_TOKEN);
        let mut queue = Queue::new(config.schedule);
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        for m in server.store().pending() {
            let age = Duration::from_secs(wall.saturating_sub(m.received));
            let arrived = now.checked_sub(age).unwrap_or(now);
            let to: Vec<String> = m.envelope.recipients.iter().map(|r| r.address.clone()).collect();
            queue.add(now, m.id, &m.envelope.from, &to, &m.done, arrived);
        }
        Relay {
            server,
            config: Arc::new(config),
            queue,
            timer: Deadline::new(QUEUE_TOKEN),
            resolver,
            lookups: HashMap::new(),
            resolving: HashMap::new(),
            waiting: HashMap::new(),
            deliveries: HashMap::new(),
            by_conn: HashMap::new(),
            next_token: FIRST_DELIVERY,
            dirty: false,
            control: None,
            control_conns: HashMap::new(),
        }
    }

    /// Arms the queue's timer: what the spool held from before is due at once. Call it when
    /// the shard is set up; without it those messages would wait for the shard's first
    /// event (a client connecting), however long that takes.
    pub fn start(&mut self, ops: &mut Ops) {
        self.timer.follow(ops, self.queue.poll_timeout());
    }

    /// Listens for operator commands ([`control`]) on the Unix socket `path` (a stale one
    /// left by a crash is replaced).
    pub fn listen_control(&mut self, ops: &mut Ops, path: &std::path::Path) -> zero_core::Result<()> {
        let _ = std::fs::remove_file(path);
        self.control = Some(ops.unix_listen(path)?);
        Ok(())
    }

    /// Takes a control connection's bytes; once a line is in, answers it and closes.
    fn on_control(&mut self, ops: &mut Ops, conn: ConnId, data: &[u8]) {
        let Some(pending) = self.control_conns.get_mut(&conn) else { return };
        pending.extend_from_slice(data);
        let Some(end) = pending.iter().position(|&b| b == b'\n') else {
            if pending.len() > 1024 {
                let _ = ops.close(conn);
            }
            return;
        };
        let line = String::from_utf8_lossy(&pending[..end]).into_owned();
        let reply = match control::Command::parse(&line) {
            Ok(control::Command::Flush) => format!("ok {} queued\n", self.queue.flush(ops.now())),
            Ok(control::Command::Delete(id)) => {
                if self.queue.remove(id) {
                    self.server.store().done(id);
                    self.dirty = true;
                    "ok deleted\n".to_string()
                } else {
                    format!("error no message {id} here\n")
                }
            }
            Err(e) => format!("error {e}\n"),
        };
        let _ = ops.send(conn, reply.as_bytes());
        let _ = ops.close(conn);
    }

    /// The server (to listen).
    pub fn server(&mut self) -> &mut Server<Spool> {
        &mut self.server
    }

    /// Messages not yet dealt with.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Takes up newly accepted messages.
    fn take_new(&mut self, now: Instant) {
        for id in self.server.store().take_committed() {
            let Some(m) = self.server.store().get(id) else { continue };
            let to: Vec<String> = m.envelope.recipients.iter().map(|r| r.address.clone()).collect();
            let (from, done) = (m.envelope.from.clone(), m.done.clone());
            self.queue.add(now, id, &from, &to, &done, now);
        }
    }

    /// Sends what is due: resolves its domains, or hands it to a connection.
    fn dispatch(&mut self, ops: &mut Ops) {
        let now = ops.now();
        for delayed in self.queue.expire(now) {
            self.report(
                bounce::Report::Delayed,
                delayed.id,
                &delayed.from,
                delayed
                    .waiting
                    .iter()
                    .map(|w| {
                        (
                            w.clone(),
                            delayed.last.clone().unwrap_or_else(|| Failure::transient("not delivered yet")),
                        )
                    })
                    .collect(),
            );
        }
        for batch in self.queue.due(now) {
            let route = self.config.route(&batch.domain).cloned();
            match route {
                Some(route) if route.discard => {
                    for (id, indexes) in batch.messages {
                        for i in indexes {
                            self.queue.delivered(id, i);
                            self.server.store().recipient_done(id, i);
                        }
                    }
                    self.dirty = true;
                }
                Some(route) => {
                    let mut client = ClientConfig::new(&self.config.hostname);
                    client.tls = route.tls.clone();
                    client.auth = route.auth.clone();
                    self.deliver(ops, &batch.domain, route.hosts.clone(), client, batch.messages);
                }
                None => {
                    let waiting = self.waiting.entry(batch.domain.clone()).or_default();
                    waiting.extend(batch.messages);
                    if !self.resolving.contains_key(&batch.domain) {
                        let id = self.resolver.resolver().lookup(
                            now,
                            &format!("{}.", batch.domain),
                            RecordType::MX,
                        );
                        self.lookups.insert(id, (batch.domain.clone(), 0));
                        self.resolving.insert(batch.domain, Lookup::Mx);
                    }
                }
            }
        }
        self.finish(ops);
    }

    /// Hands `messages` to connections to `hosts`: first to open ones for the domain that
    /// have room (connection reuse), then to new ones, up to `per_destination`; what finds
    /// no room waits for the next round.
    fn deliver(
        &mut self,
        ops: &mut Ops,
        domain: &str,
        hosts: Vec<SocketAddr>,
        client: ClientConfig,
        messages: Vec<(MessageId, Vec<usize>)>,
    ) {
        let now = ops.now();
        if hosts.is_empty() {
            for (id, indexes) in messages {
                for i in indexes {
                    self.queue.failed(now, id, i, Failure::transient(&format!("no address for {domain}")));
                }
            }
            return;
        }
        let per_connection = self.config.per_connection;
        let mut messages = messages.into_iter().peekable();
        let open: Vec<u64> = (self.deliveries.iter())
            .filter(|(_, d)| d.domain == domain && d.driver.machine_ref().accepts_more())
            .map(|(&t, _)| t)
            .collect();
        for token in open {
            let d = self.deliveries.get_mut(&token).expect("listed");
            let room = per_connection.saturating_sub(d.driver.machine_ref().pending());
            let taken: Vec<_> = messages.by_ref().take(room).collect();
            for (id, indexes) in taken {
                let Some(outgoing) = self.outgoing(id, &indexes) else { continue };
                let d = self.deliveries.get_mut(&token).expect("listed");
                let send = d.driver.machine().send(now, outgoing);
                d.sends.insert(send, (id, indexes));
            }
            if let Some(d) = self.deliveries.get_mut(&token) {
                d.driver.pump(ops);
            }
        }
        let busy = self.deliveries.values().filter(|d| d.domain == domain).count();
        for _ in busy..self.config.per_destination {
            let chunk: Vec<_> = messages.by_ref().take(per_connection).collect();
            if chunk.is_empty() {
                break;
            }
            self.connect(ops, domain, hosts.clone(), client.clone(), chunk);
        }
        for (id, indexes) in messages {
            for i in indexes {
                self.queue.release(id, i);
            }
        }
    }

    fn connect(
        &mut self,
        ops: &mut Ops,
        domain: &str,
        mut hosts: Vec<SocketAddr>,
        client: ClientConfig,
        messages: Vec<(MessageId, Vec<usize>)>,
    ) {
        let now = ops.now();
        let addr = hosts.remove(0);
        let mut machine = Client::new(client.clone());
        let mut sends = HashMap::new();
        for (id, indexes) in messages {
            let Some(outgoing) = self.outgoing(id, &indexes) else { continue };
            sends.insert(machine.send(now, outgoing), (id, indexes));
        }
        let token = self.next_token;
        self.next_token += 1;
        let mut driver = Driver::new(machine, Target::tcp(addr), token);
        driver.pump(ops);
        if let Some(conn) = driver.conn() {
            self.by_conn.insert(conn, token);
        }
        self.deliveries.insert(
            token,
            Delivery { domain: domain.to_string(), driver, sends, rest: hosts, client, token },
        );
        self.settle(ops, token);
    }

    /// The outgoing form of spooled message `id` for its recipients `indexes`.
    fn outgoing(&mut self, id: MessageId, indexes: &[usize]) -> Option<Outgoing> {
        let text = self.server.store().text(id).ok()?;
        let m = self.server.store().get(id)?;
        let e = &m.envelope;
        Some(Outgoing {
            from: e.from.clone(),
            to: indexes
                .iter()
                .filter_map(|&i| e.recipients.get(i))
                .map(|r| To { address: r.address.clone(), notify: r.notify.clone(), orcpt: r.orcpt.clone() })
                .collect(),
            eight_bit: text.iter().any(|&b| b >= 0x80),
            text: text.into(),
            smtputf8: e.smtputf8,
            requiretls: e.requiretls,
            ret: e.ret.map(|r| match r {
                crate::codec::command::Ret::Full => "FULL",
                crate::codec::command::Ret::Hdrs => "HDRS",
            }),
            envid: e.envid.clone(),
        })
    }

    /// Takes a delivery's outcomes; when its connection is over, tries the next address for
    /// what could not be sent, or lets it go.
    fn settle(&mut self, ops: &mut Ops, token: u64) {
        let now = ops.now();
        let Some(d) = self.deliveries.get_mut(&token) else { return };
        let mut unreached = Vec::new();
        while let Some(event) = d.driver.machine().poll_event() {
            let client::Event::Outcome { id: send, recipients } = event else { continue };
            let Some((id, indexes)) = d.sends.remove(&send) else { continue };
            let mut retry_here = Vec::new();
            for (&i, result) in indexes.iter().zip(recipients) {
                match result {
                    Ok(_) => {
                        self.queue.delivered(id, i);
                        self.server.store().recipient_done(id, i);
                        self.dirty = true;
                    }
                    // No reply at all: the connection, not the recipient; another address may do.
                    Err(f) if f.reply.is_none() && !f.permanent && !d.rest.is_empty() => retry_here.push(i),
                    Err(f) => {
                        if f.permanent {
                            self.server.store().recipient_done(id, i);
                            self.dirty = true;
                        }
                        self.queue.failed(now, id, i, f);
                    }
                }
            }
            if !retry_here.is_empty() {
                unreached.push((id, retry_here));
            }
        }
        let d = self.deliveries.get_mut(&token).expect("present");
        if d.driver.machine().pending() == 0 {
            d.driver.machine().quit(now);
        }
        d.driver.pump(ops);
        if let Some(conn) = d.driver.conn() {
            self.by_conn.insert(conn, token);
        }
        let over = d.driver.machine_ref().is_drained();
        if over {
            let d = self.deliveries.remove(&token).expect("present");
            self.by_conn.retain(|_, t| *t != d.token);
            if !unreached.is_empty() {
                self.connect(ops, &d.domain, d.rest, d.client, unreached);
            }
        } else if !unreached.is_empty() {
            let (domain, rest, client) = (d.domain.clone(), d.rest.clone(), d.client.clone());
            self.connect(ops, &domain, rest, client, unreached);
        }
    }

    /// Bounces (or finishes) the messages every recipient of which is dealt with.
    fn finish(&mut self, ops: &mut Ops) {
        for f in self.queue.finished() {
            if !f.failed.is_empty() && !f.from.is_empty() {
                self.report(bounce::Report::Failed, f.id, &f.from, f.failed);
            }
            self.server.store().done(f.id);
            self.dirty = true;
        }
        let _ = ops;
    }

    /// Queues a report to `sender` about message `id`.
    fn report(
        &mut self,
        kind: bounce::Report,
        id: MessageId,
        sender: &str,
        recipients: Vec<(String, Failure)>,
    ) {
        let wall = SystemTime::now();
        let spool = self.server.store();
        let Ok(original) = spool.text(id) else { return };
        let full = spool.get(id).is_some_and(|m| m.envelope.ret == Some(crate::codec::command::Ret::Full));
        let queue_id = id.to_string();
        let notice = bounce::Notice {
            kind,
            host: &self.config.hostname,
            queue_id: &queue_id,
            sender,
            recipients: &recipients,
            original: &original,
            full,
        };
        let Ok(text) = bounce::report(&notice, wall) else {
            tracing::warn!(%id, sender, "cannot write a report to this sender");
            return;
        };
        let envelope = Envelope {
            peer: Peer { addr: SocketAddr::from(([127, 0, 0, 1], 0)), trusted: true, tls: false },
            helo: self.config.hostname.clone(),
            esmtp: true,
            tls: false,
            authenticated: None,
            from: String::new(),
            recipients: vec![Recipient { address: sender.to_string(), notify: None, orcpt: None }],
            body: None,
            smtputf8: !sender.is_ascii(),
            requiretls: false,
            ret: None,
            envid: None,
        };
        let bounce_id = spool.next_id(wall);
        spool.stage(bounce_id, &envelope, &[&text], wall);
        self.dirty = true;
        tracing::info!(%id, %bounce_id, sender, ?kind, "delivery status report queued");
    }

    /// The addresses of a domain's mail hosts arrived (or the lookup failed).
    fn on_dns(
        &mut self,
        ops: &mut Ops,
        lookup: LookupId,
        result: Result<zero_dns::resolver::Answer, ResolveError>,
    ) {
        let now = ops.now();
        let Some((domain, host_index)) = self.lookups.remove(&lookup) else { return };
        match self.resolving.remove(&domain) {
            Some(Lookup::Mx) => {
                let hosts: Vec<String> = match &result {
                    Ok(answer) => answer.mx().into_iter().map(|(_, host)| host.to_ascii()).collect(),
                    // No MX: the domain itself is the implicit MX (RFC 5321 5.1).
                    Err(ResolveError::NoData { .. }) => vec![format!("{domain}.")],
                    Err(e) => return self.unresolved(now, &domain, e),
                };
                if hosts.len() == 1 && hosts[0] == "." {
                    // A null MX (RFC 7505): the domain takes no mail.
                    let failure =
                        Failure::permanent(&format!("{domain} accepts no mail (null MX, RFC 7505)"));
                    for (id, indexes) in self.waiting.remove(&domain).unwrap_or_default() {
                        for i in indexes {
                            self.queue.failed(now, id, i, failure.clone());
                            self.server.store().recipient_done(id, i);
                        }
                    }
                    self.dirty = true;
                    return self.finish(ops);
                }
                let answers = vec![None; hosts.len()];
                for (i, host) in hosts.iter().enumerate() {
                    let id = self.resolver.resolver().lookup(now, host, RecordType::A);
                    self.lookups.insert(id, (domain.clone(), i));
                }
                let waiting = hosts.len();
                self.resolving.insert(domain, Lookup::Hosts { hosts, answers, waiting });
            }
            Some(Lookup::Hosts { hosts, mut answers, waiting }) => {
                answers[host_index] = Some(result.map(|a| a.ips()).unwrap_or_default());
                if waiting > 1 {
                    self.resolving.insert(domain, Lookup::Hosts { hosts, answers, waiting: waiting - 1 });
                    return;
                }
                let port = self.config.mx_port;
                let addrs: Vec<SocketAddr> =
                    answers.into_iter().flatten().flatten().map(|ip| SocketAddr::new(ip, port)).collect();
                let messages = self.waiting.remove(&domain).unwrap_or_default();
                let client = ClientConfig::new(&self.config.hostname);
                self.deliver(ops, &domain, addrs, client, messages);
            }
            None => {}
        }
    }

    /// A domain could not be resolved: its recipients wait (NXDOMAIN fails them for good).
    fn unresolved(&mut self, now: Instant, domain: &str, e: &ResolveError) {
        let permanent = matches!(e, ResolveError::NxDomain { .. });
        let why = format!("looking up {domain}: {e}");
        let failure = if permanent { Failure::permanent(&why) } else { Failure::transient(&why) };
        for (id, indexes) in self.waiting.remove(domain).unwrap_or_default() {
            for i in indexes {
                self.queue.failed(now, id, i, failure.clone());
                if permanent {
                    self.server.store().recipient_done(id, i);
                    self.dirty = true;
                }
            }
        }
    }
}

impl Handler for Relay {
    fn on_event(&mut self, ops: &mut Ops, event: IoEvent<'_>) {
        if self.resolver.on_event(ops, &event) {
            return;
        }
        match &event {
            IoEvent::Accepted { conn, listener } if Some(*listener) == self.control => {
                self.control_conns.insert(*conn, Vec::new());
                return;
            }
            IoEvent::Data { conn, data } if self.control_conns.contains_key(conn) => {
                return self.on_control(ops, *conn, data);
            }
            IoEvent::Closed { conn, .. } if self.control_conns.remove(conn).is_some() => return,
            _ => {}
        }
        let token = match &event {
            IoEvent::Timer { token, .. } if self.timer.fired(*token) => return,
            IoEvent::Timer { token, .. } if self.deliveries.contains_key(token) => Some(*token),
            IoEvent::Connected { conn }
            | IoEvent::ConnectFailed { conn, .. }
            | IoEvent::Data { conn, .. }
            | IoEvent::Upgraded { conn }
            | IoEvent::Closed { conn, .. } => self.by_conn.get(conn).copied(),
            _ => None,
        };
        match token {
            Some(token) => {
                if let Some(d) = self.deliveries.get_mut(&token) {
                    d.driver.on_event(ops, &event);
                }
                self.settle(ops, token);
            }
            None => self.server.on_event(ops, event),
        }
    }

    /// The server's clients are told `421`; deliveries in progress are cut, their messages
    /// stay in the spool for the next start.
    fn on_drain(&mut self, ops: &mut Ops) {
        self.server.on_drain(ops);
    }

    fn on_batch_end(&mut self, ops: &mut Ops) {
        self.server.on_batch_end(ops);
        let now = ops.now();
        self.take_new(now);
        while let Some(DnsEvent::Answer { lookup, result }) = self.resolver.resolver().poll_event() {
            self.on_dns(ops, lookup, result);
        }
        self.dispatch(ops);
        if self.dirty {
            self.dirty = false;
            if let Err(e) = self.server.store().commit(now) {
                tracing::error!(error = %e, "spool commit failed");
            }
            // Reports just committed are messages like any other.
            self.take_new(now);
            self.dispatch(ops);
            if self.dirty {
                self.dirty = false;
                let _ = self.server.store().commit(now);
            }
        }
        self.resolver.pump(ops);
        self.timer.follow(ops, self.queue.poll_timeout());
    }
}
