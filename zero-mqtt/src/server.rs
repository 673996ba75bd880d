//! The broker's driver on a zero-core shard: events in, the machine's packets straight into
//! the connections' send queues, one shard timer for the machine's next deadline. On an
//! [`IoCluster`] ([`start_cluster`]) it also carries the machine's [`ShardMessage`]s and moves
//! connections to their session's home shard (see the broker's `cluster` module).

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use zero_core::admin::Metrics;
use zero_core::rustls::ServerConfig;
use zero_core::ws::WsServer;
use zero_core::{
    ClusterConfig, ConnId, Deadline, DetachedStream, Event, Handler, Io, IoCluster, IoError, IoHandle,
    ListenOptions, Ops,
};

use crate::bridge::{Bridge, BridgeConfig};
use crate::broker::{Broker, BrokerConfig, Place, ShardMessage, Transmit, MAX_SHARDS};
use crate::store::{Journal, Record};
use crate::Error;

/// The shard's send side as the broker's [`Transmit`].
struct Queues<'a> {
    ops: &'a mut Ops,
    leaving: &'a mut HashMap<ConnId, Leaving>,
}

/// A connection on its way to its home shard, with what it sent so far.
struct Leaving {
    shard: usize,
    input: Vec<u8>,
}

/// A connection arriving from another shard, with what it sent so far.
struct Arrival {
    stream: DetachedStream,
    input: Vec<u8>,
}

impl Transmit<ConnId> for Queues<'_> {
    fn buffer(&mut self, conn: ConnId) -> Option<&mut Vec<u8>> {
        self.ops.send_buffer(conn).ok().map(|b| b.into_vec())
    }

    fn close(&mut self, conn: ConnId) {
        let _ = self.ops.close(conn);
    }

    fn hand_off(&mut self, conn: ConnId, shard: usize, input: &[u8]) {
        match self.ops.detach(conn) {
            Ok(()) => drop(self.leaving.insert(conn, Leaving { shard, input: input.to_vec() })),
            Err(error) => {
                tracing::debug!(%conn, %error, "connection not handed off; closed");
                let _ = self.ops.close(conn);
            }
        }
    }
}

/// Shard timer tokens.
const MACHINE_TIMER: u64 = 0;
const SYNC_TIMER: u64 = 1;

/// A [`Broker`] run by a shard as its [`Handler`], with its journal when persistence is on.
pub struct BrokerHandler {
    broker: Broker<ConnId>,
    /// Connections being handed to their home shard.
    leaving: HashMap<ConnId, Leaving>,
    journal: Option<Journal>,
    /// The shard timer following the machine's next deadline.
    deadline: Deadline,
    /// The shard timer following the journal's next group commit.
    sync: Deadline,
    /// Why the journal failed, which stopped the shard (and its cluster); shared by the
    /// shards of a cluster.
    failure: Arc<Mutex<Option<Error>>>,
    /// Draining (a graceful stop): nothing more is taken from clients, only other shards'
    /// messages are handled.
    quiescing: bool,
}

impl BrokerHandler {
    /// A handler for a new broker with `config`. With persistence on, the journal in
    /// `config.persistence_location` is opened (and locked), replayed and compacted first.
    pub fn new(config: BrokerConfig, now: Instant) -> Result<BrokerHandler, Error> {
        BrokerHandler::on_shard(config, now, Place::default())
    }

    /// [`BrokerHandler::new`] for the shard at `place` of a cluster.
    pub fn on_shard(config: BrokerConfig, now: Instant, place: Place) -> Result<BrokerHandler, Error> {
        let dir = config.persistence_location.clone();
        let failed = |source| Error::Journal { dir: dir.clone(), source };
        let opened = match config.persistence {
            true => Some(Journal::open(&dir, config.fsync, now, Record::is_valid).map_err(failed)?),
            false => None,
        };
        let mut broker = Broker::on_shard(config, now, SystemTime::now(), place);
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
            leaving: HashMap::new(),
            journal,
            deadline: Deadline::new(MACHINE_TIMER),
            sync: Deadline::new(SYNC_TIMER),
            failure: Arc::default(),
            quiescing: false,
        })
    }

    /// The broker machine.
    pub fn broker(&self) -> &Broker<ConnId> {
        &self.broker
    }

    /// Why the shard was stopped, if the journal failed (it stops the shard rather than
    /// acknowledge what it could not keep; the batch's replies were never sent).
    pub fn take_failure(&mut self) -> Option<Error> {
        self.failure.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// The journal failed: stop this shard and its cluster before anything more is
    /// acknowledged.
    fn fail(&mut self, ops: &mut Ops, source: std::io::Error) {
        tracing::error!(error = %source, "journal failed; stopping before this batch is acknowledged");
        let dir = self.broker.config().persistence_location.clone();
        self.failure.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(Error::Journal { dir, source });
        ops.stop();
        for peer in ops.peers() {
            let _ = peer.stop();
        }
    }

    /// Posts the machine's messages for other shards, one batch per shard.
    fn post_outbox(&mut self, ops: &Ops) {
        let outbox = self.broker.take_outbox();
        if outbox.is_empty() {
            return;
        }
        let mut batches: Vec<Vec<ShardMessage>> = ops.peers().iter().map(|_| Vec::new()).collect();
        for (shard, message) in outbox {
            batches[shard].push(message);
        }
        for (peer, batch) in ops.peers().iter().zip(batches).filter(|(_, b)| !b.is_empty()) {
            // Fails only while the cluster shuts down.
            let _ = peer.post(batch);
        }
    }

    /// A message from another shard: a connection arriving, or the broker's messages.
    fn on_message(&mut self, ops: &mut Ops, message: Box<dyn std::any::Any + Send>, now: Instant) {
        let message = match message.downcast::<Vec<ShardMessage>>() {
            Ok(batch) => {
                let out = &mut Queues { ops, leaving: &mut self.leaving };
                for m in *batch {
                    self.broker.handle_shard_message(now, m, out);
                }
                return;
            }
            Err(other) => other,
        };
        let Ok(arrival) = message.downcast::<Arrival>() else {
            tracing::warn!("unknown message from another shard ignored");
            return;
        };
        let Arrival { stream, input } = *arrival;
        if self.quiescing {
            return; // the connection closes as it drops; its client retries the next broker
        }
        let peer = stream.peer_addr();
        match ops.attach(stream) {
            Ok(conn) => {
                let out = &mut Queues { ops, leaving: &mut self.leaving };
                self.broker.handle_accept(now, conn, peer, out);
                self.broker.handle_input(now, conn, &input, out);
            }
            Err(error) => tracing::warn!(?peer, %error, "connection from another shard dropped"),
        }
    }

    /// Writes the batch's records ahead of its replies, syncs by policy, compacts when due.
    /// A journal that cannot be written stops the shard before any reply of the batch
    /// leaves: the broker goes down rather than acknowledge what it could not keep.
    fn write_ahead(&mut self, ops: &mut Ops) -> std::io::Result<()> {
        let Some(journal) = &mut self.journal else { return Ok(()) };
        let now = ops.now();
        journal.append(&self.broker.take_journal(), now)?;
        if journal.grown() {
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
            Event::Data { conn, data } if !self.leaving.is_empty() && self.leaving.contains_key(&conn) => {
                self.leaving.get_mut(&conn).expect("checked").input.extend_from_slice(&data);
            }
            Event::Detached { conn, stream } => {
                let Some(Leaving { shard, input }) = self.leaving.remove(&conn) else { return };
                if let Err(error) = ops.peers()[shard].post(Arrival { stream, input }) {
                    tracing::debug!(%conn, %error, "home shard gone; connection dropped");
                }
            }
            Event::Closed { conn, .. } if self.leaving.remove(&conn).is_some() => {}
            Event::Message(message) => self.on_message(ops, message, now),
            Event::Timer { token, .. } if self.sync.fired(token) => {
                if let Some(Err(error)) = self.journal.as_mut().map(|j| j.sync(now)) {
                    self.fail(ops, error);
                }
            }
            Event::HandshakeFailed { error, .. } => tracing::debug!(%error, "TLS handshake failed"),
            // Stopping: nothing more from clients is taken (nor acknowledged); what they sent
            // unacknowledged, they send again to the next broker.
            Event::Accepted { conn, .. } if self.quiescing => drop(ops.close_now(conn)),
            _ if self.quiescing => {}
            event => {
                let out = &mut Queues { ops, leaving: &mut self.leaving };
                match event {
                    Event::Accepted { conn, .. } => {
                        let peer = out.ops.peer_addr(conn).ok();
                        self.broker.handle_accept(now, conn, peer, out);
                    }
                    Event::Data { conn, data } => self.broker.handle_input(now, conn, &data, out),
                    Event::Closed { conn, reason } => {
                        tracing::trace!(%conn, ?reason, "closed");
                        self.broker.handle_closed(now, conn, out);
                    }
                    Event::Writable { conn } => self.broker.handle_writable(now, conn, out),
                    Event::Timer { token, .. } if self.deadline.fired(token) => {
                        self.broker.handle_timeout(now, out);
                    }
                    _ => {}
                }
            }
        }
        self.deadline.follow(ops, self.broker.poll_timeout());
    }

    fn on_batch_end(&mut self, ops: &mut Ops) {
        match self.write_ahead(ops) {
            Ok(()) => self.post_outbox(ops),
            Err(error) => self.fail(ops, error),
        }
    }

    /// The broker's counters (summed over its life) and levels, beside zero-core's.
    fn on_metrics(&mut self, _ops: &mut Ops, m: &mut Metrics) {
        let s = self.broker.stats();
        m.counter("mqtt_connects_total", "CONNECTs accepted.", s.connects);
        m.counter("mqtt_publish_received_total", "PUBLISH packets received from clients.", s.received);
        m.counter("mqtt_publish_sent_total", "PUBLISH packets sent to clients.", s.sent);
        m.counter(
            "mqtt_dropped_total",
            "Deliveries dropped: a full session queue, or QoS 0 to a full send queue.",
            s.dropped,
        );
        m.counter(
            "mqtt_oversize_total",
            "Deliveries discarded for exceeding a client's Maximum Packet Size.",
            s.oversize,
        );
        m.counter(
            "mqtt_protocol_errors_total",
            "Connections closed for malformed packets or protocol errors.",
            s.protocol_errors,
        );
        let g = self.broker.gauges();
        m.gauge("mqtt_clients_connected", "Connected clients.", g.clients_connected as f64);
        m.gauge("mqtt_sessions", "Sessions, connected or not.", g.sessions as f64);
        m.gauge("mqtt_subscriptions", "Subscriptions.", g.subscriptions as f64);
        m.gauge("mqtt_retained", "Retained messages (every shard holds them all).", g.retained as f64);
    }

    /// A graceful stop: nothing more is taken from clients (what they sent unacknowledged,
    /// they send again to the next broker), and each is told the server is shutting down and
    /// closed. This batch's records are journaled and its forwards posted at its end, and the
    /// shards stop only together ([`zero_core::Stopper`]), so each still journals what the
    /// others forward it meanwhile.
    fn on_drain(&mut self, ops: &mut Ops) {
        self.quiescing = true;
        let now = ops.now();
        let out = &mut Queues { ops, leaving: &mut self.leaving };
        self.broker.shutdown(now, out);
        for conn in std::mem::take(&mut self.leaving).into_keys() {
            let _ = ops.close_now(conn);
        }
        ops.close_all();
    }
}

/// Where a broker listens.
#[derive(Debug, Clone, Default)]
pub struct Listeners {
    /// Plain MQTT listeners.
    pub tcp: Vec<SocketAddr>,
    /// MQTT over TLS (`mqtts`) listeners, with the server's TLS configuration.
    pub tls: Vec<(SocketAddr, Arc<ServerConfig>)>,
    /// MQTT over WebSocket listeners (`ws`; `wss` with a TLS configuration).
    pub ws: Vec<(SocketAddr, Option<Arc<ServerConfig>>)>,
    /// The WebSocket listeners' settings; `None`: [`websocket_defaults`].
    pub websocket: Option<Arc<WsServer>>,
}

/// What MQTT over WebSocket serves by default (MQTT 5 section 6): the subprotocol `mqtt`
/// (and `mqttv3.1`, which MQTT 3.1 clients ask for), any path, any origin.
pub fn websocket_defaults() -> WsServer {
    let mut ws = WsServer::default();
    ws.protocols = vec!["mqtt".into(), "mqttv3.1".into()];
    ws
}

/// Opens `listeners` on `io` and returns their bound addresses (plain, then TLS, then
/// WebSocket).
pub fn listen(io: &mut Io, listeners: &Listeners) -> zero_core::Result<Vec<SocketAddr>> {
    listen_with(io, listeners, &ListenOptions::default())
}

fn listen_with(
    io: &mut Io,
    listeners: &Listeners,
    opts: &ListenOptions,
) -> zero_core::Result<Vec<SocketAddr>> {
    let mut bound = Vec::new();
    for &addr in &listeners.tcp {
        let id = io.tcp_listen_with(addr, opts)?;
        bound.push(io.listener_addr(id)?);
    }
    for (addr, tls) in &listeners.tls {
        let id = io.tls_listen_with(*addr, opts, tls.clone())?;
        bound.push(io.listener_addr(id)?);
    }
    if !listeners.ws.is_empty() {
        let ws = listeners.websocket.clone().unwrap_or_else(|| Arc::new(websocket_defaults()));
        for (addr, tls) in &listeners.ws {
            let id = io.ws_listen(*addr, opts, ws.clone(), tls.clone())?;
            bound.push(io.listener_addr(id)?);
        }
    }
    Ok(bound)
}

/// A broker running on an [`IoCluster`], one shard per thread.
pub struct BrokerCluster {
    cluster: IoCluster,
    addrs: Vec<SocketAddr>,
    failure: Arc<Mutex<Option<Error>>>,
    /// The bridges' shard threads.
    bridges: Vec<(IoHandle, JoinHandle<()>)>,
}

impl BrokerCluster {
    /// The bound listener addresses (plain, then TLS, then WebSocket).
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Waits until the broker stops: through [`BrokerCluster::stop`], or because a shard's
    /// journal failed or a bridge stopped (that error is returned). Its bridges stop with it.
    pub fn join(self) -> Result<(), Error> {
        let joined = self.cluster.join();
        for (handle, thread) in self.bridges {
            let _ = handle.stop();
            let _ = thread.join();
        }
        joined?;
        self.failure.lock().unwrap_or_else(|p| p.into_inner()).take().map_or(Ok(()), Err)
    }

    /// Stops the broker gracefully from any thread (a signal handler's): every shard stops
    /// taking client input, tells its clients the server is shutting down and closes them,
    /// and journals what it accepted; the shards stop together once all have drained (or the
    /// grace period is over), so each handles and journals every message forwarded to it:
    /// nothing acknowledged is lost in a shard's queue. [`BrokerCluster::join`] then returns.
    pub fn stopper(&self) -> zero_core::Stopper {
        self.cluster.stopper()
    }

    /// Collects every shard's metrics (zero-core's and the broker's `mqtt_*`) from any thread.
    pub fn collector(&self) -> zero_core::admin::Collector {
        self.cluster.collector()
    }

    /// [`BrokerCluster::stopper`]'s shutdown with a 5 s grace period, then
    /// [`BrokerCluster::join`].
    pub fn stop(self) -> Result<(), Error> {
        self.stopper().shutdown(Duration::from_secs(5));
        self.join()
    }
}

/// Starts a broker on `shards` shards (at most [`MAX_SHARDS`]), pinned to `cpus` if any. All
/// shards listen on the same addresses (`SO_REUSEPORT`; a port 0 is picked once for all). With
/// persistence, shard `i` keeps its journal in `persistence_location/shard-i`, and the
/// directory remembers the shard count: starting with another count is refused, since the
/// count decides which shard each session lives on.
pub fn start_cluster(
    config: BrokerConfig,
    listeners: &Listeners,
    shards: usize,
    cpus: Vec<usize>,
) -> Result<BrokerCluster, Error> {
    if shards == 0 || shards > MAX_SHARDS {
        return Err(
            IoError::Config(format!("a broker runs on 1 to {MAX_SHARDS} shards, not {shards}")).into()
        );
    }
    if config.persistence {
        claim_shard_count(&config.persistence_location, shards)?;
    }
    let bridges = config.bridges.clone();
    // Reserve each port-0 address's port (bound, not listening, so it takes no connections)
    // until every shard listens on it.
    let mut reserved = Vec::new();
    let mut fixed = listeners.clone();
    let ws = fixed.ws.iter_mut().map(|(a, _)| a);
    for addr in fixed.tcp.iter_mut().chain(fixed.tls.iter_mut().map(|(a, _)| a)).chain(ws) {
        if addr.port() == 0 {
            let (sock, bound) = zero_core::reserve_port(*addr)?;
            *addr = bound;
            reserved.push(sock);
        }
    }
    let failure: Arc<Mutex<Option<Error>>> = Arc::default();
    let (shared, addrs) = (failure.clone(), Arc::new(Mutex::new(Vec::new())));
    let bound = addrs.clone();
    let mut cluster_config = ClusterConfig::new(shards);
    cluster_config.cpus = cpus;
    // Most of a broker's connections are idle most of the time.
    cluster_config.io.free_idle_send_buffers = true;
    let now = Instant::now();
    let cluster = IoCluster::start(cluster_config, move |shard, io| {
        let mut opts = ListenOptions::default();
        opts.reuse_port = true;
        let here = listen_with(io, &fixed, &opts)?;
        if shard == 0 {
            *bound.lock().unwrap_or_else(|p| p.into_inner()) = here;
        }
        let mut config = config.clone();
        if shards > 1 {
            config.persistence_location = config.persistence_location.join(format!("shard-{shard}"));
        }
        let mut handler = BrokerHandler::on_shard(config, now, Place { shard, shards })
            .map_err(|e| IoError::Config(format!("shard {shard}: {e}")))?;
        handler.failure = shared.clone();
        Ok(handler)
    })?;
    drop(reserved);
    // A shard restored from its journal has interest to announce before any event arrives.
    for h in cluster.handles() {
        let _ = h.wake();
    }
    let addrs = std::mem::take(&mut *addrs.lock().unwrap_or_else(|p| p.into_inner()));
    let mut broker = BrokerCluster { cluster, addrs, failure, bridges: Vec::new() };
    if !bridges.is_empty() {
        // Each bridge reaches this broker through its first plain listener.
        let Some(mut local) = listeners.tcp.first().map(|_| broker.addrs[0]) else {
            let _ = broker.stop();
            return Err(Error::Bridge("a bridge needs a plain TCP listener to reach this broker".into()));
        };
        if local.ip().is_unspecified() {
            local.set_ip(if local.is_ipv4() {
                Ipv4Addr::LOCALHOST.into()
            } else {
                Ipv6Addr::LOCALHOST.into()
            });
        }
        let shards: Vec<IoHandle> = broker.cluster.handles().to_vec();
        for config in bridges {
            match spawn_bridge(config, local, shards.clone(), broker.failure.clone()) {
                Ok(bridge) => broker.bridges.push(bridge),
                Err(e) => {
                    let _ = broker.stop();
                    return Err(e);
                }
            }
        }
    }
    Ok(broker)
}

/// Runs a bridge on a shard thread of its own. A bridge that stops by itself (its shard
/// failed, or a bug panicked it) stops the broker too, as a shard's panic does, with the
/// reason in `failure`.
fn spawn_bridge(
    config: BridgeConfig,
    local: SocketAddr,
    shards: Vec<IoHandle>,
    failure: Arc<Mutex<Option<Error>>>,
) -> Result<(IoHandle, JoinHandle<()>), Error> {
    let (name, thread_name) = (config.name.clone(), format!("zero-bridge-{}", config.name));
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name(thread_name)
        .spawn(move || {
            let name = config.name.clone();
            let set_up = Io::new(zero_core::Config::default())
                .map_err(Error::from)
                .and_then(|io| Ok((io, Bridge::new(config, local, Instant::now())?)));
            let (mut io, mut bridge) = match set_up {
                Ok(ready) => ready,
                Err(e) => return drop(tx.send(Err(e))),
            };
            let _ = tx.send(Ok(io.handle()));
            bridge.start(&mut io);
            let error = match std::panic::catch_unwind(AssertUnwindSafe(|| io.run(&mut bridge))) {
                Ok(Ok(())) => return,
                Ok(Err(e)) => Error::Bridge(format!("bridge {name} stopped: {e}")),
                Err(panic) => {
                    let what = panic.downcast_ref::<&str>().map(|s| s.to_string());
                    let what = what.or_else(|| panic.downcast_ref::<String>().cloned()).unwrap_or_default();
                    Error::Bridge(format!("bridge {name} panicked ({what}); the broker was stopped"))
                }
            };
            tracing::error!(%error, "bridge down; stopping the broker");
            failure.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(error);
            for h in &shards {
                let _ = h.stop();
            }
        })
        .map_err(|cause| IoError::Syscall { op: "spawn bridge thread".into(), cause })?;
    match rx.recv() {
        Ok(Ok(handle)) => Ok((handle, thread)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(Error::Bridge(format!("bridge {name} failed to start"))),
    }
}

/// Records the shard count in the persistence directory, or refuses a different one.
fn claim_shard_count(dir: &Path, shards: usize) -> Result<(), Error> {
    let file = dir.join("shards");
    let journal = |source| Error::Journal { dir: dir.to_path_buf(), source };
    let found = match std::fs::read_to_string(&file) {
        Ok(text) => text.trim().parse::<usize>().ok(),
        // A directory written by a one-shard broker before counts were recorded.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => dir.join("journal").exists().then_some(1),
        Err(e) => return Err(journal(e)),
    };
    match found {
        Some(n) if n != shards => Err(journal(std::io::Error::other(format!(
            "written by a broker on {n} shards; start it with {n} shards (sessions live on the shard their client id hashes to)"
        )))),
        Some(_) => Ok(()),
        None => {
            std::fs::create_dir_all(dir).map_err(journal)?;
            std::fs::write(&file, format!("{shards}\n")).map_err(journal)
        }
    }
}
