//! The broker's driver on a zero-core shard: events in, the machine's packets straight into
//! the connections' send queues, one shard timer for the machine's next deadline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use zero_core::rustls::ServerConfig;
use zero_core::{ConnId, Deadline, Event, Handler, Io, Ops};

use crate::broker::{Broker, BrokerConfig, Transmit};
use crate::store::Journal;
use crate::Error;

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

/// Shard timer tokens.
const MACHINE_TIMER: u64 = 0;
const SYNC_TIMER: u64 = 1;

/// A [`Broker`] run by a shard as its [`Handler`], with its journal when persistence is on.
pub struct BrokerHandler {
    broker: Broker<ConnId>,
    journal: Option<Journal>,
    /// The shard timer following the machine's next deadline.
    deadline: Deadline,
    /// The shard timer following the journal's next group commit.
    sync: Deadline,
    /// Why the journal failed, which stopped the shard.
    failure: Option<std::io::Error>,
}

impl BrokerHandler {
    /// A handler for a new broker with `config`. With persistence on, the journal in
    /// `config.persistence_location` is opened (and locked), replayed and compacted first.
    pub fn new(config: BrokerConfig, now: Instant) -> Result<BrokerHandler, Error> {
        let dir = config.persistence_location.clone();
        let failed = |source| Error::Journal { dir: dir.clone(), source };
        let opened = match config.persistence {
            true => Some(Journal::open(&dir, config.fsync, now).map_err(failed)?),
            false => None,
        };
        let mut broker = Broker::new(config, now);
        let journal = match opened {
            Some((mut journal, records)) => {
                let sessions = broker.restore(&records, now);
                journal.compact(&broker.snapshot(), now).map_err(failed)?;
                tracing::info!(sessions, bytes = records.len(), "journal replayed");
                Some(journal)
            }
            None => None,
        };
        Ok(BrokerHandler {
            broker,
            journal,
            deadline: Deadline::new(MACHINE_TIMER),
            sync: Deadline::new(SYNC_TIMER),
            failure: None,
        })
    }

    /// The broker machine.
    pub fn broker(&self) -> &Broker<ConnId> {
        &self.broker
    }

    /// Why the shard was stopped, if the journal failed (it stops the shard rather than
    /// acknowledge what it could not keep; the batch's replies were never sent).
    pub fn take_failure(&mut self) -> Option<Error> {
        let dir = self.broker.config().persistence_location.clone();
        self.failure.take().map(|source| Error::Journal { dir, source })
    }

    /// Writes the batch's records ahead of its replies, syncs by policy, compacts when due.
    /// A journal that cannot be written stops the shard before any reply of the batch
    /// leaves: the broker goes down rather than acknowledge what it could not keep.
    fn write_ahead(&mut self, ops: &mut Ops) -> std::io::Result<()> {
        let Some(journal) = &mut self.journal else { return Ok(()) };
        let now = ops.now();
        journal.append(&self.broker.take_journal(), now)?;
        if journal.wants_compaction() {
            journal.compact(&self.broker.snapshot(), now)?;
        }
        self.sync.follow(ops, journal.sync_due());
        Ok(())
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
            Event::Timer { token, .. } if self.sync.fired(token) => {
                if let Some(journal) = &mut self.journal {
                    if let Err(error) = journal.sync(now) {
                        tracing::error!(%error, "journal sync failed; stopping");
                        self.failure = Some(error);
                        ops.stop();
                    }
                }
            }
            Event::Timer { token, .. } if self.deadline.fired(token) => {
                self.broker.handle_timeout(now, &mut Queues(ops));
            }
            Event::HandshakeFailed { error, .. } => tracing::debug!(%error, "TLS handshake failed"),
            _ => {}
        }
        self.deadline.follow(ops, self.broker.poll_timeout());
    }

    fn on_batch_end(&mut self, ops: &mut Ops) {
        if let Err(error) = self.write_ahead(ops) {
            tracing::error!(%error, "journal write failed; stopping before this batch is acknowledged");
            self.failure = Some(error);
            ops.stop();
        }
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
