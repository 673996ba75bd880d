//! The broker's driver on a zero-core shard: events in, the machine's packets straight into
//! the connections' send queues, one shard timer for the machine's next deadline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use zero_core::rustls::ServerConfig;
use zero_core::{ConnId, Event, Handler, Io, Ops, TimerId};

use crate::broker::{Broker, BrokerConfig, Transmit};

/// The shard's send side as the broker's [`Transmit`].
struct Queues<'a>(&'a mut Ops);

impl Transmit<ConnId> for Queues<'_> {
    fn buffer(&mut self, conn: ConnId) -> Option<&mut Vec<u8>> {
        self.0.send_buffer(conn).ok().map(|b| b.into_vec())
    }

    fn close(&mut self, conn: ConnId) {
        let _ = self.0.close(conn);
    }
}

/// A [`Broker`] run by a shard as its [`Handler`].
pub struct BrokerHandler {
    broker: Broker<ConnId>,
    /// The shard timer armed for the machine's next deadline.
    armed: Option<(Instant, TimerId)>,
}

impl BrokerHandler {
    /// A handler for a new broker with `config`.
    pub fn new(config: BrokerConfig, now: Instant) -> BrokerHandler {
        BrokerHandler { broker: Broker::new(config, now), armed: None }
    }

    /// The broker machine.
    pub fn broker(&self) -> &Broker<ConnId> {
        &self.broker
    }

    /// Arms the shard timer for the machine's next deadline if it moved earlier.
    fn rearm(&mut self, ops: &mut Ops) {
        let Some(next) = self.broker.poll_timeout() else { return };
        if let Some((at, id)) = self.armed {
            if at <= next {
                return;
            }
            ops.cancel_timer(id);
        }
        self.armed = Some((next, ops.timer_at(next, 0)));
    }
}

impl Handler for BrokerHandler {
    fn on_event(&mut self, ops: &mut Ops, event: Event<'_>) {
        let now = ops.now();
        match event {
            Event::Accepted { conn, .. } => {
                let peer = ops.peer_addr(conn).ok();
                self.broker.handle_accept(conn, peer, now, &mut Queues(ops));
            }
            Event::Data { conn, data } => self.broker.handle_input(conn, &data, now, &mut Queues(ops)),
            Event::Closed { conn, reason } => {
                tracing::trace!(%conn, ?reason, "closed");
                self.broker.handle_closed(conn, now, &mut Queues(ops));
            }
            Event::Writable { conn } => self.broker.handle_writable(conn, now, &mut Queues(ops)),
            Event::Timer { .. } => {
                self.armed = None;
                self.broker.handle_timeout(now, &mut Queues(ops));
            }
            Event::HandshakeFailed { error, .. } => tracing::debug!(%error, "TLS handshake failed"),
            _ => {}
        }
        self.rearm(ops);
    }
}

/// Where a broker listens.
#[derive(Debug, Clone, Default)]
pub struct Listeners {
    /// Plain MQTT listeners.
    pub tcp: Vec<SocketAddr>,
    /// MQTT over TLS (`mqtts`) listeners, with the server's TLS configuration.
    pub tls: Vec<(SocketAddr, Arc<ServerConfig>)>,
}

/// Opens `listeners` on `io` and returns their bound addresses (plain first, then TLS).
pub fn listen(io: &mut Io, listeners: &Listeners) -> zero_core::Result<Vec<SocketAddr>> {
    let mut bound = Vec::new();
    for &addr in &listeners.tcp {
        let id = io.tcp_listen(addr)?;
        bound.push(io.listener_addr(id)?);
    }
    for (addr, tls) in &listeners.tls {
        let id = io.tls_listen(*addr, tls.clone())?;
        bound.push(io.listener_addr(id)?);
    }
    Ok(bound)
}
