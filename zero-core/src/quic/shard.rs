//! The shard's QUIC state and the drive that connects quinn-proto to the rest of the shard.
//!
//! - A datagram received on an endpoint's socket goes into its `Endpoint` at once
//!   ([`Quic::on_datagram`]); the connection it belongs to is marked dirty.
//! - A connection's deadline is one shard timer (`TimerKind::Quic`); when it fires the
//!   connection handles its timeout and is marked dirty.
//! - Twice a tick (after the completions and timers, and after the handler, before the
//!   submissions) [`Ops::quic_drive`] walks the dirty connections in quinn's order: endpoint
//!   events, application events (turned into [`QuicRaw`] events), queued stream writes,
//!   transmits (into the socket's send batch), then the next deadline.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use quinn_proto::{
    ConnectionError, ConnectionHandle, DatagramEvent, Dir, Endpoint, EndpointConfig, ReadError,
    SendDatagramError, ServerConfig, StreamEvent, StreamId, VarInt, WriteError,
};
use slab::Slab;

use super::{QuicEvent, QuicId};
use crate::error::{IoError, Result};
use crate::event::{Payload, Raw};
use crate::id::UdpId;
use crate::ops::Ops;
use crate::table::Kind;
use crate::timer::{TimerId, TimerKind};

/// Datagrams per GSO send at most (quinn's own batch size; the kernel allows 64).
const GSO_SEGMENTS: usize = 10;

/// The socket buffers a QUIC endpoint asks for (the kernel caps them at `net.core.rmem_max`
/// and `wmem_max`).
const SOCKET_BUFFER: usize = 4 << 20;

/// A QUIC event as queued: payloads are owned `Bytes` until delivered.
pub(crate) enum QuicRaw {
    Accepted { conn: QuicId, endpoint: UdpId },
    Connected { conn: QuicId, zero_rtt: Option<bool> },
    ConnectFailed { conn: QuicId, reason: ConnectionError },
    StreamOpened { conn: QuicId, stream: StreamId },
    Data { conn: QuicId, stream: StreamId, bytes: Bytes },
    Finished { conn: QuicId, stream: StreamId },
    Reset { conn: QuicId, stream: StreamId, code: VarInt },
    Stopped { conn: QuicId, stream: StreamId, code: VarInt },
    Writable { conn: QuicId, stream: StreamId },
    StreamsAvailable { conn: QuicId, dir: Dir },
    Datagram { conn: QuicId, bytes: Bytes },
    Migrated { conn: QuicId, remote: SocketAddr },
    Closed { conn: QuicId, reason: ConnectionError },
}

impl QuicRaw {
    /// The event, its payload (if any) kept in `held` until the next event.
    pub(crate) fn into_event(self, held: &mut Bytes) -> QuicEvent<'_> {
        match self {
            QuicRaw::Accepted { conn, endpoint } => QuicEvent::Accepted { conn, endpoint },
            QuicRaw::Connected { conn, zero_rtt } => QuicEvent::Connected { conn, zero_rtt },
            QuicRaw::ConnectFailed { conn, reason } => QuicEvent::ConnectFailed { conn, reason },
            QuicRaw::StreamOpened { conn, stream } => QuicEvent::StreamOpened { conn, stream },
            QuicRaw::Data { conn, stream, bytes } => {
                *held = bytes;
                QuicEvent::Data { conn, stream, data: Payload::plain(held) }
            }
            QuicRaw::Finished { conn, stream } => QuicEvent::Finished { conn, stream },
            QuicRaw::Reset { conn, stream, code } => QuicEvent::Reset { conn, stream, code },
            QuicRaw::Stopped { conn, stream, code } => QuicEvent::Stopped { conn, stream, code },
            QuicRaw::Writable { conn, stream } => QuicEvent::Writable { conn, stream },
            QuicRaw::StreamsAvailable { conn, dir } => QuicEvent::StreamsAvailable { conn, dir },
            QuicRaw::Datagram { conn, bytes } => {
                *held = bytes;
                QuicEvent::Datagram { conn, data: Payload::plain(held) }
            }
            QuicRaw::Migrated { conn, remote } => QuicEvent::Migrated { conn, remote },
            QuicRaw::Closed { conn, reason } => QuicEvent::Closed { conn, reason },
        }
    }
}

/// Every QUIC endpoint and connection of a shard.
#[derive(Default)]
pub(crate) struct Quic {
    endpoints: HashMap<UdpId, Side>,
    conns: Slab<Conn>,
    next_gen: u32,
    /// Connections with something to do at the next drive (slab keys).
    dirty: Vec<usize>,
    /// Datagrams an endpoint answered by itself (version negotiation, stateless resets,
    /// refusals), for the next drive to queue.
    responses: Vec<(UdpId, SocketAddr, Vec<u8>)>,
    /// quinn-proto's transmit buffer, reused.
    buf: Vec<u8>,
}

/// One endpoint: quinn's, and its connection handles' slab keys.
struct Side {
    proto: Endpoint,
    keys: HashMap<ConnectionHandle, usize>,
}

/// One connection.
struct Conn {
    gen: u32,
    endpoint: UdpId,
    handle: ConnectionHandle,
    proto: quinn_proto::Connection,
    client: bool,
    /// The handler has heard of it (`Accepted`, or the `quic_connect` that made it).
    announced: bool,
    /// Its handshake finished.
    connected: bool,
    /// Its `Closed`/`ConnectFailed` is out: the handler's id is stale.
    gone: bool,
    /// A 0-RTT attempt was made (client).
    early: bool,
    remote: SocketAddr,
    timer: Option<(Instant, TimerId)>,
    /// Streams with bytes waiting for flow-control credit, or reads paused behind them.
    outgoing: HashMap<StreamId, Outgoing>,
    dirty: bool,
}

/// A stream's sends waiting for the peer's window.
#[derive(Default)]
struct Outgoing {
    queued: Vec<u8>,
    /// Bytes of `queued` already taken by quinn.
    taken: usize,
    /// A send was refused for lack of room: report `Writable` once drained.
    refused: bool,
    /// Finish the stream once drained.
    finish: bool,
    /// Reads wait until the queue is back under its mark.
    reads_paused: bool,
}

impl Outgoing {
    fn len(&self) -> usize {
        self.queued.len() - self.taken
    }
}

impl Quic {
    /// `mtu_probes`: the socket sends unfragmented, so quinn may probe for a larger path MTU
    /// than the 1,200 bytes every path carries.
    pub(crate) fn add_endpoint(
        &mut self,
        udp: UdpId,
        server: Option<Arc<ServerConfig>>,
        config: EndpointConfig,
        mtu_probes: bool,
    ) {
        let proto = Endpoint::new(Arc::new(config), server, mtu_probes, None);
        self.endpoints.insert(udp, Side { proto, keys: HashMap::new() });
    }

    /// The endpoint's socket is gone: so are its connections (without a goodbye; close them
    /// first for one).
    pub(crate) fn remove_endpoint(&mut self, udp: UdpId, events: &mut std::collections::VecDeque<Raw>) {
        let Some(side) = self.endpoints.remove(&udp) else { return };
        for key in side.keys.into_values() {
            let c = self.conns.remove(key);
            if !c.gone && c.announced {
                let conn = QuicId { index: key as u32, gen: c.gen };
                events.push_back(Raw::Quic(QuicRaw::Closed { conn, reason: ConnectionError::LocallyClosed }));
            }
        }
    }

    fn insert(
        &mut self,
        endpoint: UdpId,
        handle: ConnectionHandle,
        proto: quinn_proto::Connection,
        client: bool,
    ) -> QuicId {
        self.next_gen = self.next_gen.wrapping_add(1);
        let remote = proto.remote_address();
        let early = client && proto.has_0rtt();
        let key = self.conns.insert(Conn {
            gen: self.next_gen,
            endpoint,
            handle,
            proto,
            client,
            announced: client,
            connected: false,
            gone: false,
            early,
            remote,
            timer: None,
            outgoing: HashMap::new(),
            dirty: false,
        });
        if let Some(side) = self.endpoints.get_mut(&endpoint) {
            side.keys.insert(handle, key);
        }
        self.mark(key);
        QuicId { index: key as u32, gen: self.next_gen }
    }

    fn mark(&mut self, key: usize) {
        if let Some(c) = self.conns.get_mut(key) {
            if !c.dirty {
                c.dirty = true;
                self.dirty.push(key);
            }
        }
    }

    /// A datagram for endpoint `udp`. A new connection is refused while `refuse` (draining).
    pub(crate) fn on_datagram(
        &mut self,
        now: Instant,
        udp: UdpId,
        peer: SocketAddr,
        data: &[u8],
        refuse: bool,
    ) {
        let Some(side) = self.endpoints.get_mut(&udp) else { return };
        self.buf.clear();
        let event = side.proto.handle(now, peer, None, None, BytesMut::from(data), &mut self.buf);
        match event {
            Some(DatagramEvent::ConnectionEvent(handle, event)) => {
                if let Some(&key) = side.keys.get(&handle) {
                    self.conns[key].proto.handle_event(event);
                    self.mark(key);
                }
            }
            Some(DatagramEvent::NewConnection(incoming)) if refuse => {
                let t = side.proto.refuse(incoming, &mut self.buf);
                self.responses.push((udp, t.destination, self.buf[..t.size].to_vec()));
            }
            Some(DatagramEvent::NewConnection(incoming)) => {
                match side.proto.accept(incoming, now, &mut self.buf, None) {
                    Ok((handle, proto)) => {
                        self.insert(udp, handle, proto, false);
                    }
                    Err(e) => {
                        tracing::debug!(%udp, %peer, error = %e.cause, "QUIC connection not accepted");
                        if let Some(t) = e.response {
                            self.responses.push((udp, t.destination, self.buf[..t.size].to_vec()));
                        }
                    }
                }
            }
            Some(DatagramEvent::Response(t)) => {
                self.responses.push((udp, t.destination, self.buf[..t.size].to_vec()));
            }
            None => {}
        }
    }

    /// Connection `index`'s timer fired.
    pub(crate) fn on_timer(&mut self, now: Instant, index: u32, gen: u32) {
        let key = index as usize;
        match self.conns.get_mut(key) {
            Some(c) if c.gen == gen => {
                c.timer = None;
                c.proto.handle_timeout(now);
                self.mark(key);
            }
            _ => {}
        }
    }

    fn live(&mut self, id: QuicId) -> Result<&mut Conn> {
        match self.conns.get_mut(id.index as usize) {
            Some(c) if c.gen == id.gen && !c.gone => Ok(c),
            _ => Err(IoError::Stale(id.to_string())),
        }
    }

    /// Connections, in any state.
    pub(crate) fn len(&self) -> usize {
        self.conns.len()
    }

    /// Whether endpoint `udp` still has connections.
    pub(crate) fn busy(&self, udp: UdpId) -> bool {
        self.endpoints.get(&udp).is_some_and(|side| !side.keys.is_empty())
    }

    fn ids(&self) -> Vec<QuicId> {
        self.conns
            .iter()
            .filter(|(_, c)| !c.gone)
            .map(|(k, c)| QuicId { index: k as u32, gen: c.gen })
            .collect()
    }
}

/// Reads what stream `id` has, unless its own send queue is over its mark.
fn read_stream(
    c: &mut Conn,
    conn: QuicId,
    id: StreamId,
    mark: usize,
    events: &mut std::collections::VecDeque<Raw>,
) {
    if let Some(out) = c.outgoing.get_mut(&id) {
        out.reads_paused = out.len() >= mark;
        if out.reads_paused {
            return;
        }
    }
    let mut stream = c.proto.recv_stream(id);
    let Ok(mut chunks) = stream.read(true) else { return };
    loop {
        match chunks.next(usize::MAX) {
            Ok(Some(chunk)) => {
                events.push_back(Raw::Quic(QuicRaw::Data { conn, stream: id, bytes: chunk.bytes }))
            }
            Ok(None) => {
                events.push_back(Raw::Quic(QuicRaw::Finished { conn, stream: id }));
                break;
            }
            Err(ReadError::Blocked) => break,
            Err(ReadError::Reset(code)) => {
                events.push_back(Raw::Quic(QuicRaw::Reset { conn, stream: id, code }));
                break;
            }
        }
    }
    // Whether credit must be sent: the transmit poll that follows sends it either way.
    let _ = chunks.finalize();
}

/// Hands quinn what stream `id` has queued; true if the queue drained after a refusal.
fn write_queued(c: &mut Conn, id: StreamId) -> bool {
    let Some(out) = c.outgoing.get_mut(&id) else { return false };
    let mut send = c.proto.send_stream(id);
    while out.len() > 0 {
        match send.write(&out.queued[out.taken..]) {
            Ok(0) | Err(WriteError::Blocked) => return false,
            Ok(n) => out.taken += n,
            Err(_) => {
                c.outgoing.remove(&id);
                return false;
            }
        }
    }
    out.queued.clear();
    out.taken = 0;
    if out.finish {
        let _ = send.finish();
    }
    let drained = std::mem::take(&mut out.refused);
    if !out.reads_paused {
        c.outgoing.remove(&id);
    }
    drained
}

impl Ops {
    /// Runs every dirty connection (see the module docs) and queues the endpoints' own
    /// answers.
    pub(crate) fn quic_drive(&mut self) {
        for (udp, to, bytes) in std::mem::take(&mut self.quic.responses) {
            self.quic_transmit(udp, to, &bytes);
        }
        while let Some(key) = self.quic.dirty.pop() {
            self.quic_drive_one(key);
        }
        if self.is_draining() {
            // Endpoints kept open for their connections' goodbyes close once those are done.
            let done: Vec<UdpId> = self
                .quic
                .endpoints
                .iter()
                .filter(|(_, side)| side.keys.is_empty())
                .map(|(&udp, _)| udp)
                .collect();
            for udp in done {
                self.release(udp.index, udp.gen, crate::conn::CloseReason::Local);
            }
        }
    }

    fn quic_transmit(&mut self, udp: UdpId, to: SocketAddr, bytes: &[u8]) {
        if let Some(slot) = self.table.live_mut(udp.index, udp.gen) {
            if let Kind::Udp(u) = &mut slot.kind {
                u.push(to, bytes);
                self.table.touch(udp.index, udp.gen);
            }
        }
    }

    fn quic_drive_one(&mut self, key: usize) {
        let now = self.now;
        let mark = self.config.send_queue_limit / 2;
        let quic = &mut self.quic;
        let Some(c) = quic.conns.get_mut(key) else { return };
        c.dirty = false;
        let conn = QuicId { index: key as u32, gen: c.gen };
        let Some(side) = quic.endpoints.get_mut(&c.endpoint) else { return };
        while let Some(event) = c.proto.poll_endpoint_events() {
            if let Some(event) = side.proto.handle_event(c.handle, event) {
                c.proto.handle_event(event);
            }
        }
        let events = &mut self.events;
        let push = |events: &mut std::collections::VecDeque<Raw>, raw| events.push_back(Raw::Quic(raw));
        while let Some(event) = c.proto.poll() {
            if c.gone {
                continue;
            }
            if !c.announced && !matches!(event, quinn_proto::Event::ConnectionLost { .. }) {
                c.announced = true;
                push(events, QuicRaw::Accepted { conn, endpoint: c.endpoint });
            }
            match event {
                quinn_proto::Event::Connected => {
                    c.connected = true;
                    if c.client {
                        let zero_rtt = c.early.then(|| c.proto.accepted_0rtt());
                        push(events, QuicRaw::Connected { conn, zero_rtt });
                    }
                }
                quinn_proto::Event::ConnectionLost { reason } => {
                    c.gone = true;
                    if c.client && !c.connected {
                        push(events, QuicRaw::ConnectFailed { conn, reason });
                    } else if c.announced {
                        push(events, QuicRaw::Closed { conn, reason });
                    } else {
                        tracing::debug!(%conn, %reason, "QUIC handshake failed");
                    }
                }
                quinn_proto::Event::Stream(StreamEvent::Opened { dir }) => {
                    while let Some(stream) = c.proto.streams().accept(dir) {
                        push(events, QuicRaw::StreamOpened { conn, stream });
                        read_stream(c, conn, stream, mark, events);
                    }
                }
                quinn_proto::Event::Stream(StreamEvent::Readable { id }) => {
                    read_stream(c, conn, id, mark, events)
                }
                quinn_proto::Event::Stream(StreamEvent::Writable { id }) => {
                    let paused = c.outgoing.get(&id).is_some_and(|o| o.reads_paused);
                    if write_queued(c, id) {
                        push(events, QuicRaw::Writable { conn, stream: id });
                    }
                    if paused && c.outgoing.get(&id).is_none_or(|o| o.len() < mark) {
                        c.outgoing.remove(&id);
                        read_stream(c, conn, id, mark, events);
                    }
                }
                quinn_proto::Event::Stream(StreamEvent::Stopped { id, error_code }) => {
                    c.outgoing.remove(&id);
                    push(events, QuicRaw::Stopped { conn, stream: id, code: error_code });
                }
                quinn_proto::Event::Stream(StreamEvent::Available { dir }) => {
                    push(events, QuicRaw::StreamsAvailable { conn, dir })
                }
                quinn_proto::Event::DatagramReceived => {
                    while let Some(bytes) = c.proto.datagrams().recv() {
                        push(events, QuicRaw::Datagram { conn, bytes });
                    }
                }
                quinn_proto::Event::Stream(StreamEvent::Finished { .. })
                | quinn_proto::Event::HandshakeDataReady
                | quinn_proto::Event::DatagramsUnblocked => {}
            }
        }
        let remote = c.proto.remote_address();
        if remote != c.remote {
            c.remote = remote;
            if c.announced && !c.gone {
                push(events, QuicRaw::Migrated { conn, remote });
            }
        }
        let endpoint = c.endpoint;
        if let Some(Kind::Udp(u)) =
            self.table.live_mut(endpoint.index, endpoint.gen).map(|slot| &mut slot.kind)
        {
            // Several datagrams to one peer leave as one GSO send where the kernel takes them.
            let batch = if u.gso_refused { 1 } else { GSO_SEGMENTS };
            let mut queued = false;
            loop {
                quic.buf.clear();
                let Some(t) = c.proto.poll_transmit(now, batch, &mut quic.buf) else { break };
                let segment = t.segment_size.and_then(|s| u16::try_from(s).ok());
                u.push_segmented(t.destination, &quic.buf[..t.size], segment);
                queued = true;
            }
            if queued {
                self.table.touch(endpoint.index, endpoint.gen);
            }
        }
        // quinn's deadline moves with nearly every packet. The timer is re-armed only when it
        // moved earlier: one that fires early costs a `handle_timeout` that finds nothing due,
        // far less than a cancel and an insert per packet.
        if let Some(at) = c.proto.poll_timeout() {
            if c.timer.is_none_or(|(armed, _)| at < armed) {
                if let Some((_, id)) = c.timer.take() {
                    self.timers.cancel(id);
                }
                let kind = TimerKind::Quic { index: conn.index, gen: conn.gen };
                c.timer = Some((at, self.timers.insert(at, kind)));
            }
        }
        if c.proto.is_drained() {
            if let Some((_, id)) = c.timer.take() {
                self.timers.cancel(id);
            }
            side.keys.remove(&c.handle);
            quic.conns.remove(key);
        }
    }

    /// Makes `addr` a QUIC endpoint: a UDP socket whose datagrams quinn-proto handles. With a
    /// `server` configuration ([`crate::quic::server_config`]) it accepts connections
    /// ([`QuicEvent::Accepted`]); with or without, it can [`Ops::quic_connect`].
    pub fn quic_bind(&mut self, addr: SocketAddr, server: Option<Arc<ServerConfig>>) -> Result<UdpId> {
        self.quic_bind_with(addr, server, None)
    }

    /// [`Ops::quic_bind`]; with a `shard` (index, count) the socket joins the port's
    /// `SO_REUSEPORT` group and the endpoint's connection ids name the shard ([`super::group`]).
    pub(crate) fn quic_bind_with(
        &mut self,
        addr: SocketAddr,
        server: Option<Arc<ServerConfig>>,
        shard: Option<u8>,
    ) -> Result<UdpId> {
        let udp = self.udp_bind_shared(addr, shard.is_some())?;
        let mut config = EndpointConfig::default();
        if let Some(shard) = shard {
            config.cid_generator(move || Box::new(super::group::ShardCids::new(shard)));
        }
        let mut mtu_probes = false;
        if let Some(slot) = self.table.live_mut(udp.index, udp.gen) {
            if let Kind::Udp(u) = &mut slot.kind {
                u.quic = true;
            }
            mtu_probes = crate::ring::set_mtu_probe(&slot.sock, addr.is_ipv6()).is_ok();
            // A congestion window's worth of datagrams arrives in bursts (GSO sends them so):
            // room for them, up to what net.core.[rw]mem_max allows, so bursts are not lost to
            // a full socket buffer. Best effort: the defaults work, only slower.
            let _ = slot.sock.set_recv_buffer_size(SOCKET_BUFFER);
            let _ = slot.sock.set_send_buffer_size(SOCKET_BUFFER);
        }
        self.quic.add_endpoint(udp, server, config, mtu_probes);
        Ok(udp)
    }

    /// Connects from `endpoint` to `remote`, verifying its certificate for `server_name`
    /// ([`crate::quic::client_config`] builds `config`). Streams may be opened at once: they go
    /// out as 0-RTT when resuming, or after the handshake. [`QuicEvent::Connected`] or
    /// [`QuicEvent::ConnectFailed`] follows.
    pub fn quic_connect(
        &mut self,
        endpoint: UdpId,
        remote: SocketAddr,
        server_name: &str,
        config: quinn_proto::ClientConfig,
    ) -> Result<QuicId> {
        let now = self.now;
        let side = self.quic.endpoints.get_mut(&endpoint).ok_or(IoError::WrongKind("not a QUIC endpoint"))?;
        let (handle, proto) = side
            .proto
            .connect(now, config, remote, server_name)
            .map_err(|e| IoError::Config(format!("QUIC connect to {remote} ({server_name}): {e}")))?;
        Ok(self.quic.insert(endpoint, handle, proto, true))
    }

    /// Opens a stream: `Dir::Bi` both ways, `Dir::Uni` ours to send on. Fails with `NotReady`
    /// at the peer's stream limit; [`QuicEvent::StreamsAvailable`] says when to try again.
    pub fn quic_open(&mut self, conn: QuicId, dir: Dir) -> Result<StreamId> {
        let c = self.quic.live(conn)?;
        let stream = c.proto.streams().open(dir).ok_or(IoError::NotReady(
            "the peer's stream limit is reached: wait for QuicEvent::StreamsAvailable",
        ))?;
        Ok(stream)
    }

    /// Sends `data` on a stream, in order. What the peer's window cannot take yet is queued;
    /// past `Config::send_queue_limit` queued bytes the send is refused whole
    /// (`SendQueueFull`) and [`QuicEvent::Writable`] follows once the queue drains.
    pub fn quic_send(&mut self, conn: QuicId, stream: StreamId, data: &[u8]) -> Result<()> {
        let limit = self.config.send_queue_limit;
        let c = self.quic.live(conn)?;
        // The stream's queue is looked up, not made: most sends go straight to quinn.
        let queued = c.outgoing.get(&stream).map_or(0, Outgoing::len);
        if queued + data.len() > limit {
            c.outgoing.entry(stream).or_default().refused = true;
            return Err(IoError::SendQueueFull { conn: format!("{conn} {stream}"), queued, limit });
        }
        let mut taken = 0;
        // Write until quinn says `Blocked`: only a refused write puts the stream on its list
        // for `Writable` (a partial one does not), and the queued rest waits for that event.
        while queued == 0 && taken < data.len() {
            match c.proto.send_stream(stream).write(&data[taken..]) {
                Ok(0) | Err(WriteError::Blocked) => break,
                Ok(n) => taken += n,
                Err(e) => return Err(IoError::Closing(format!("{conn} {stream}: {e}"))),
            }
        }
        if taken < data.len() {
            c.outgoing.entry(stream).or_default().queued.extend_from_slice(&data[taken..]);
        }
        self.quic.mark(conn.index as usize);
        Ok(())
    }

    /// Finishes our side of a stream once its queued bytes are sent (a FIN).
    pub fn quic_finish(&mut self, conn: QuicId, stream: StreamId) -> Result<()> {
        let c = self.quic.live(conn)?;
        match c.outgoing.get_mut(&stream) {
            Some(out) if out.len() > 0 => out.finish = true,
            _ => c
                .proto
                .send_stream(stream)
                .finish()
                .map_err(|e| IoError::Closing(format!("{conn} {stream}: {e}")))?,
        }
        self.quic.mark(conn.index as usize);
        Ok(())
    }

    /// Abandons our side of a stream (`RESET_STREAM` with `code`); queued bytes are dropped.
    pub fn quic_reset(&mut self, conn: QuicId, stream: StreamId, code: VarInt) -> Result<()> {
        let c = self.quic.live(conn)?;
        c.outgoing.remove(&stream);
        c.proto
            .send_stream(stream)
            .reset(code)
            .map_err(|e| IoError::Closing(format!("{conn} {stream}: {e}")))?;
        self.quic.mark(conn.index as usize);
        Ok(())
    }

    /// Asks the peer to stop sending on a stream (`STOP_SENDING` with `code`).
    pub fn quic_stop(&mut self, conn: QuicId, stream: StreamId, code: VarInt) -> Result<()> {
        let c = self.quic.live(conn)?;
        c.proto
            .recv_stream(stream)
            .stop(code)
            .map_err(|e| IoError::Closing(format!("{conn} {stream}: {e}")))?;
        self.quic.mark(conn.index as usize);
        Ok(())
    }

    /// Sends an unreliable datagram (RFC 9221). When quinn's datagram queue is full the oldest
    /// queued one is dropped; a datagram over [`Ops::quic_max_datagram`] is refused.
    pub fn quic_send_datagram(&mut self, conn: QuicId, data: &[u8]) -> Result<()> {
        let c = self.quic.live(conn)?;
        match c.proto.datagrams().send(Bytes::copy_from_slice(data), true) {
            Ok(()) => {}
            Err(SendDatagramError::Blocked(_)) => unreachable!("drop = true never blocks"),
            Err(e) => return Err(IoError::Closing(format!("{conn} datagram of {} bytes: {e}", data.len()))),
        }
        self.quic.mark(conn.index as usize);
        Ok(())
    }

    /// The largest datagram the connection can send now, if the peer takes datagrams at all.
    pub fn quic_max_datagram(&mut self, conn: QuicId) -> Result<Option<usize>> {
        Ok(self.quic.live(conn)?.proto.datagrams().max_size())
    }

    /// Closes a connection at once with an application `code` and `reason` (`CONNECTION_CLOSE`);
    /// unsent stream data is dropped. [`QuicEvent::Closed`] (`LocallyClosed`) follows.
    pub fn quic_close(&mut self, conn: QuicId, code: VarInt, reason: &[u8]) -> Result<()> {
        let now = self.now;
        let c = self.quic.live(conn)?;
        c.proto.close(now, code, Bytes::copy_from_slice(reason));
        c.gone = true;
        c.outgoing.clear();
        self.events.push_back(Raw::Quic(QuicRaw::Closed { conn, reason: ConnectionError::LocallyClosed }));
        self.quic.mark(conn.index as usize);
        Ok(())
    }

    /// Closes every QUIC connection of the shard (`code` 0, "shutting down"), as
    /// [`Ops::close_all`] does; a draining shard then closes its endpoints once their
    /// connections' goodbyes are done.
    pub fn quic_close_all(&mut self) {
        for conn in self.quic.ids() {
            let _ = self.quic_close(conn, VarInt::from_u32(0), b"shutting down");
        }
    }

    /// The peer's address now (it changes with migration).
    pub fn quic_remote(&mut self, conn: QuicId) -> Result<SocketAddr> {
        Ok(self.quic.live(conn)?.proto.remote_address())
    }

    /// quinn-proto's statistics of a connection: RTT, congestion window, packets, frames.
    pub fn quic_stats(&mut self, conn: QuicId) -> Result<quinn_proto::ConnectionStats> {
        Ok(self.quic.live(conn)?.proto.stats())
    }
}
