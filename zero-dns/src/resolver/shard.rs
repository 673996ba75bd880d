//! The resolver on a zero-core shard: a UDP socket per attempt (bound to port 0, so the
//! kernel picks a random source port for each query), a TCP connection per TCP attempt, one
//! shard timer on the machine's next deadline.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use hickory_proto::rr::RecordType;
use zero_core::{Config, ConnId, Deadline, Event as IoEvent, Handler, Io, Ops, Target, UdpId};

use super::answer::Answer;
use super::machine::{AttemptId, Event, Resolver};
use crate::config::ResolverConfig;
use crate::error::ResolveError;

/// What carries an attempt.
#[derive(Debug)]
enum Carrier {
    Udp(UdpId),
    /// A TCP connection, with the query until it is connected.
    Tcp(ConnId, Option<Vec<u8>>),
}

/// A [`Resolver`] bound to a shard. Its owner passes each shard event to
/// [`ResolverDriver::on_event`], starts lookups and drains answers on
/// [`ResolverDriver::resolver`], and calls [`ResolverDriver::pump`] after.
pub struct ResolverDriver {
    resolver: Resolver,
    carriers: HashMap<AttemptId, Carrier>,
    udp: HashMap<UdpId, AttemptId>,
    tcp: HashMap<ConnId, AttemptId>,
    deadline: Deadline,
}

impl ResolverDriver {
    /// A driver for `resolver`; `token` marks its shard timer.
    pub fn new(resolver: Resolver, token: u64) -> ResolverDriver {
        ResolverDriver {
            resolver,
            carriers: HashMap::new(),
            udp: HashMap::new(),
            tcp: HashMap::new(),
            deadline: Deadline::new(token),
        }
    }

    /// The machine: start lookups, drain answers.
    pub fn resolver(&mut self) -> &mut Resolver {
        &mut self.resolver
    }

    /// Feeds one shard event; returns whether it was the resolver's.
    pub fn on_event(&mut self, ops: &mut Ops, event: &IoEvent<'_>) -> bool {
        let now = ops.now();
        match event {
            IoEvent::Datagram { udp, peer, data, .. } => {
                let Some(&attempt) = self.udp.get(udp) else { return false };
                self.resolver.handle_datagram(now, attempt, *peer, data);
            }
            IoEvent::Connected { conn } => {
                let Some(&attempt) = self.tcp.get(conn) else { return false };
                if let Some(Carrier::Tcp(_, query)) = self.carriers.get_mut(&attempt) {
                    if let Some(bytes) = query.take() {
                        if let Err(e) = ops.send(*conn, &bytes) {
                            self.lost(ops, attempt, Some(e.to_string()));
                        }
                    }
                }
            }
            IoEvent::Data { conn, data } => {
                let Some(&attempt) = self.tcp.get(conn) else { return false };
                self.resolver.handle_stream(now, attempt, data);
            }
            IoEvent::ConnectFailed { conn, error } => {
                let Some(&attempt) = self.tcp.get(conn) else { return false };
                self.lost(ops, attempt, Some(error.to_string()));
            }
            IoEvent::Closed { conn, .. } => {
                let Some(&attempt) = self.tcp.get(conn) else { return false };
                self.lost(ops, attempt, None);
            }
            IoEvent::Timer { token, .. } if self.deadline.fired(*token) => self.resolver.handle_timeout(now),
            _ => return false,
        }
        true
    }

    fn lost(&mut self, ops: &mut Ops, attempt: AttemptId, why: Option<String>) {
        self.forget(ops, attempt);
        self.resolver.handle_closed(ops.now(), attempt, why);
    }

    fn forget(&mut self, ops: &mut Ops, attempt: AttemptId) {
        match self.carriers.remove(&attempt) {
            Some(Carrier::Udp(udp)) => {
                self.udp.remove(&udp);
                let _ = ops.close_udp(udp);
            }
            Some(Carrier::Tcp(conn, _)) => {
                self.tcp.remove(&conn);
                let _ = ops.close_now(conn);
            }
            None => {}
        }
    }

    /// Does what the machine asks: closes finished attempts, opens and sends new ones,
    /// re-arms the timer.
    pub fn pump(&mut self, ops: &mut Ops) {
        loop {
            while let Some(attempt) = self.resolver.poll_close() {
                self.forget(ops, attempt);
            }
            let Some(t) = self.resolver.poll_transmit() else { break };
            let opened = if t.tcp {
                self.open_tcp(ops, &t.server, t.bytes, t.attempt)
            } else {
                self.send_udp(ops, t.server, &t.bytes, t.attempt)
            };
            if let Err(error) = opened {
                tracing::debug!(%error, server = %t.server, "DNS query not sent");
                self.lost(ops, t.attempt, Some(error.to_string()));
            }
        }
        self.deadline.follow(ops, self.resolver.poll_timeout());
    }

    fn send_udp(
        &mut self,
        ops: &mut Ops,
        server: SocketAddr,
        bytes: &[u8],
        attempt: AttemptId,
    ) -> zero_core::Result<()> {
        let any: SocketAddr = if server.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().expect("valid");
        let udp = ops.udp_bind(any)?;
        self.carriers.insert(attempt, Carrier::Udp(udp));
        self.udp.insert(udp, attempt);
        ops.send_to(udp, server, bytes)
    }

    fn open_tcp(
        &mut self,
        ops: &mut Ops,
        server: &SocketAddr,
        bytes: Vec<u8>,
        attempt: AttemptId,
    ) -> zero_core::Result<()> {
        let target = match &self.resolver.config().tls {
            Some(tls) => Target::tls(*server, tls.server_name.clone(), tls.config.clone()),
            None => Target::tcp(*server),
        };
        let conn = ops.connect_to(&target)?;
        self.carriers.insert(attempt, Carrier::Tcp(conn, Some(bytes)));
        self.tcp.insert(conn, attempt);
        Ok(())
    }
}

/// One lookup on a shard of its own, blocking until it is answered (what `zero dns query`
/// does).
pub fn lookup_blocking(
    config: ResolverConfig,
    name: &str,
    rtype: RecordType,
) -> Result<Answer, ResolveError> {
    struct One {
        driver: ResolverDriver,
        answer: Option<Result<Answer, ResolveError>>,
    }
    impl Handler for One {
        fn on_event(&mut self, ops: &mut Ops, event: IoEvent<'_>) {
            self.driver.on_event(ops, &event);
        }
        fn on_batch_end(&mut self, ops: &mut Ops) {
            while let Some(Event::Answer { result, .. }) = self.driver.resolver().poll_event() {
                self.answer = Some(result);
                ops.stop();
            }
            self.driver.pump(ops);
        }
    }
    let mut io = Io::new(Config::default()).map_err(|_| ResolveError::Stopped)?;
    let mut one = One { driver: ResolverDriver::new(Resolver::new(config, rand::random()), 0), answer: None };
    one.driver.resolver().lookup(Instant::now(), name, rtype);
    one.on_batch_end(&mut io);
    while one.answer.is_none() {
        io.run_once(&mut one, None).map_err(|_| ResolveError::Stopped)?;
    }
    one.answer.unwrap_or(Err(ResolveError::Stopped))
}
