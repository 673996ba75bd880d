//! The resolver on a zero-core shard: a UDP socket per attempt (bound to port 0, so the
//! kernel picks a random source port for each query), a TCP or TLS connection per stream, one
//! shard timer on the machine's next deadline.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use hickory_proto::rr::RecordType;
use zero_core::{Config, ConnId, Deadline, Event as IoEvent, Handler, Io, Ops, Target, UdpId};

use super::answer::Answer;
use super::machine::{AttemptId, Close, Event, Resolver, StreamId};
use crate::config::ResolverConfig;
use crate::error::ResolveError;

/// A stream's connection, with what waits for it to connect.
#[derive(Debug)]
struct Connection {
    conn: ConnId,
    /// Queries sent before it connected; `None` once it has.
    waiting: Option<Vec<u8>>,
}

/// A [`Resolver`] bound to a shard. Its owner passes each shard event to
/// [`ResolverDriver::on_event`], starts lookups and drains answers on
/// [`ResolverDriver::resolver`], and calls [`ResolverDriver::pump`] after.
pub struct ResolverDriver {
    resolver: Resolver,
    udp: HashMap<UdpId, AttemptId>,
    sockets: HashMap<AttemptId, UdpId>,
    connections: HashMap<StreamId, Connection>,
    streams: HashMap<ConnId, StreamId>,
    opened: u64,
    deadline: Deadline,
}

impl ResolverDriver {
    /// A driver for `resolver`; `token` marks its shard timer.
    pub fn new(resolver: Resolver, token: u64) -> ResolverDriver {
        ResolverDriver {
            resolver,
            udp: HashMap::new(),
            sockets: HashMap::new(),
            connections: HashMap::new(),
            streams: HashMap::new(),
            opened: 0,
            deadline: Deadline::new(token),
        }
    }

    /// The machine: start lookups, drain answers.
    pub fn resolver(&mut self) -> &mut Resolver {
        &mut self.resolver
    }

    /// TCP and TLS connections opened so far (one per stream: reused, they stay few).
    pub fn connections_opened(&self) -> u64 {
        self.opened
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
                let Some(&stream) = self.streams.get(conn) else { return false };
                let waiting = self.connections.get_mut(&stream).and_then(|c| c.waiting.take());
                if let Err(e) = waiting.map_or(Ok(()), |bytes| ops.send(*conn, &bytes)) {
                    self.lost(ops, stream, Some(e.to_string()));
                }
            }
            IoEvent::Data { conn, data } => {
                let Some(&stream) = self.streams.get(conn) else { return false };
                self.resolver.handle_stream(now, stream, data);
            }
            IoEvent::ConnectFailed { conn, error } => {
                let Some(&stream) = self.streams.get(conn) else { return false };
                self.lost(ops, stream, Some(error.to_string()));
            }
            IoEvent::Closed { conn, .. } => {
                let Some(&stream) = self.streams.get(conn) else { return false };
                self.lost(ops, stream, None);
            }
            IoEvent::Timer { token, .. } if self.deadline.fired(*token) => self.resolver.handle_timeout(now),
            _ => return false,
        }
        true
    }

    fn lost(&mut self, ops: &mut Ops, stream: StreamId, why: Option<String>) {
        self.close(ops, Close::Stream(stream));
        self.resolver.handle_stream_closed(ops.now(), stream, why);
    }

    fn close(&mut self, ops: &mut Ops, what: Close) {
        match what {
            Close::Attempt(attempt) => {
                if let Some(udp) = self.sockets.remove(&attempt) {
                    self.udp.remove(&udp);
                    let _ = ops.close_udp(udp);
                }
            }
            Close::Stream(stream) => {
                if let Some(c) = self.connections.remove(&stream) {
                    self.streams.remove(&c.conn);
                    let _ = ops.close_now(c.conn);
                }
            }
        }
    }

    /// Does what the machine asks: closes what it is done with, opens and sends new
    /// queries, re-arms the timer.
    pub fn pump(&mut self, ops: &mut Ops) {
        loop {
            while let Some(what) = self.resolver.poll_close() {
                self.close(ops, what);
            }
            let Some(t) = self.resolver.poll_transmit() else { break };
            let sent = match t.stream {
                Some(stream) => self.send_stream(ops, &t.server, stream, &t.bytes),
                None => self.send_udp(ops, t.server, &t.bytes, t.attempt),
            };
            if let Err(error) = sent {
                tracing::debug!(%error, server = %t.server, "DNS query not sent");
                match t.stream {
                    Some(stream) => self.lost(ops, stream, Some(error.to_string())),
                    None => {
                        self.close(ops, Close::Attempt(t.attempt));
                        self.resolver.handle_closed(ops.now(), t.attempt, Some(error.to_string()));
                    }
                }
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
        self.sockets.insert(attempt, udp);
        self.udp.insert(udp, attempt);
        ops.send_to(udp, server, bytes)
    }

    /// Sends on `stream`'s connection, opening it first if it is new.
    fn send_stream(
        &mut self,
        ops: &mut Ops,
        server: &SocketAddr,
        stream: StreamId,
        bytes: &[u8],
    ) -> zero_core::Result<()> {
        match self.connections.get_mut(&stream) {
            Some(Connection { conn, waiting: None }) => ops.send(*conn, bytes),
            Some(Connection { waiting: Some(waiting), .. }) => {
                waiting.extend_from_slice(bytes);
                Ok(())
            }
            None => {
                let target = match &self.resolver.config().tls {
                    Some(tls) => Target::tls(*server, tls.server_name.clone(), tls.config.clone()),
                    None => Target::tcp(*server),
                };
                let conn = ops.connect_to(&target)?;
                self.opened += 1;
                self.connections.insert(stream, Connection { conn, waiting: Some(bytes.to_vec()) });
                self.streams.insert(conn, stream);
                Ok(())
            }
        }
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
