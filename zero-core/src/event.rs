//! What a shard reports: [`Event`]s, their borrowed [`Payload`]s, and the [`Handler`] that
//! receives them.

use std::any::Any;
use std::net::SocketAddr;
use std::ops::Deref;
use std::time::SystemTime;

use crate::conn::{CloseReason, DetachedStream};
use crate::error::IoError;
use crate::id::{ConnId, ListenerId, UdpId};
use crate::ops::Ops;
use crate::pool::{DetachedBuf, Pool, PoolStats};
use crate::quic::{QuicEvent, QuicRaw};
use crate::timer::TimerId;

/// A payload borrowed from the shard until the next [`Io::poll`](crate::Io::poll). Reads as `&[u8]`;
/// [`Payload::detach`] keeps it longer, on any thread.
pub struct Payload<'a> {
    bytes: &'a [u8],
    /// The pool slot it lies in; `None` for TLS plaintext, which lies in the shard's arena.
    slot: Option<(&'a Pool, u16, usize)>,
}

impl<'a> Payload<'a> {
    pub(crate) fn pooled(pool: &'a Pool, bid: u16, offset: usize, len: usize) -> Payload<'a> {
        Payload { bytes: pool.bytes(bid, offset, len), slot: Some((pool, bid, offset)) }
    }

    pub(crate) fn plain(bytes: &'a [u8]) -> Payload<'a> {
        Payload { bytes, slot: None }
    }

    /// Keeps the payload past the next poll. A received payload is taken out of the pool
    /// without a copy (its slot is not reused until the result is dropped); TLS plaintext is
    /// copied.
    pub fn detach(&self) -> DetachedBuf {
        match self.slot {
            Some((pool, bid, offset)) => pool.detach(bid, offset, self.bytes.len()),
            None => DetachedBuf::copy(self.bytes),
        }
    }
}

impl Deref for Payload<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.bytes
    }
}

impl std::fmt::Debug for Payload<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Payload({} bytes)", self.bytes.len())
    }
}

/// What happened on the shard.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A listener accepted a connection.
    Accepted {
        /// The new connection.
        conn: ConnId,
        /// The listener that accepted it.
        listener: ListenerId,
    },
    /// A TLS listener's connection failed its handshake (or was lost during it); the handler
    /// never saw it.
    HandshakeFailed {
        /// The listener that accepted it.
        listener: ListenerId,
        /// Why, e.g. `IoError::Tls(TlsError::CertificateRequired)`.
        error: IoError,
    },
    /// A STARTTLS upgrade (`Ops::tls_upgrade` / `Ops::tls_accept_upgrade`) finished its
    /// handshake. Its failure is `Event::Closed { reason: CloseReason::Tls(..) }`.
    Upgraded {
        /// The connection, now encrypted.
        conn: ConnId,
    },
    /// An outbound connect completed (with its SOCKS5 and TLS handshakes, if any).
    Connected {
        /// The connection.
        conn: ConnId,
    },
    /// An outbound connect failed (refused, unreachable, timed out, or its SOCKS5 or TLS
    /// handshake failed); the id is stale now.
    ConnectFailed {
        /// The connection that was being made.
        conn: ConnId,
        /// Why.
        error: IoError,
    },
    /// Bytes arrived on a connection.
    Data {
        /// The connection.
        conn: ConnId,
        /// The bytes, borrowed from the pool.
        data: Payload<'a>,
    },
    /// The peer finished sending (only with `Config::half_open`); sending still works.
    HalfClosed {
        /// The connection.
        conn: ConnId,
    },
    /// A connection is gone; its id is stale from now on.
    Closed {
        /// The connection.
        conn: ConnId,
        /// Why it closed.
        reason: CloseReason,
    },
    /// A connection's send queue drained after it was full: sending works again.
    Writable {
        /// The connection.
        conn: ConnId,
    },
    /// The file of [`Ops::send_file`](crate::Ops::send_file) is all in the kernel's socket
    /// buffer: sending works again.
    FileSent {
        /// The connection.
        conn: ConnId,
    },
    /// A datagram arrived.
    Datagram {
        /// The socket it arrived on.
        udp: UdpId,
        /// Who sent it.
        peer: SocketAddr,
        /// When the kernel received it (wall clock), for sockets that asked with
        /// [`Ops::udp_timestamps`](crate::Ops::udp_timestamps).
        received: Option<SystemTime>,
        /// The bytes, borrowed from the pool.
        data: Payload<'a>,
    },
    /// A SOCKS5 UDP endpoint (`Ops::udp_associate_socks5`) is ready: datagrams now travel
    /// through the proxy's relay.
    Associated {
        /// The endpoint.
        udp: UdpId,
        /// The proxy's relay address.
        relay: SocketAddr,
    },
    /// A SOCKS5 UDP endpoint's association was refused or ended; the id is stale now.
    AssociationFailed {
        /// The endpoint.
        udp: UdpId,
        /// Why.
        error: IoError,
    },
    /// A timer fired.
    Timer {
        /// The timer.
        id: TimerId,
        /// The token it was created with.
        token: u64,
    },
    /// The payload pool ran low or out: receives wait for slots. Release detached buffers, or
    /// configure more or larger slots.
    PoolPressure {
        /// The pool's state when it happened.
        stats: PoolStats,
    },
    /// A message posted through [`IoHandle::post`](crate::IoHandle::post).
    Message(Box<dyn Any + Send>),
    /// A connection given up with [`Ops::detach`] left this shard: its id is stale now, and
    /// the stream is ready for [`Ops::attach`] on any shard.
    Detached {
        /// The connection it was here.
        conn: ConnId,
        /// The connection itself.
        stream: DetachedStream,
    },
    /// Something happened on a QUIC connection ([`crate::quic`]).
    Quic(QuicEvent<'a>),
}

/// An event as queued: payloads are slot references, materialized when delivered.
pub(crate) enum Raw {
    Accepted {
        conn: ConnId,
        listener: ListenerId,
    },
    HandshakeFailed {
        listener: ListenerId,
        error: IoError,
    },
    Upgraded {
        conn: ConnId,
    },
    Connected {
        conn: ConnId,
    },
    ConnectFailed {
        conn: ConnId,
        error: IoError,
    },
    Data {
        conn: ConnId,
        chunk: Chunk,
    },
    HalfClosed {
        conn: ConnId,
    },
    /// The peer's FIN without `Config::half_open`: close gracefully once the events before it
    /// (and the replies they cause) are through. Never shown to the handler.
    PeerFinished {
        conn: ConnId,
        /// A TLS connection's FIN came without `close_notify`.
        truncated: bool,
    },
    Closed {
        conn: ConnId,
        reason: CloseReason,
    },
    Writable {
        conn: ConnId,
    },
    FileSent {
        conn: ConnId,
    },
    Datagram {
        udp: UdpId,
        peer: SocketAddr,
        received: Option<SystemTime>,
        bid: u16,
        offset: usize,
        len: usize,
    },
    Associated {
        udp: UdpId,
        relay: SocketAddr,
    },
    AssociationFailed {
        udp: UdpId,
        error: IoError,
    },
    Timer {
        id: TimerId,
        token: u64,
    },
    PoolPressure {
        stats: PoolStats,
    },
    Message(Box<dyn Any + Send>),
    Detached {
        conn: ConnId,
        stream: DetachedStream,
    },
    Quic(QuicRaw),
}

/// Where the bytes of a queued `Data` event lie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chunk {
    /// In a pool slot.
    Slot { bid: u16, offset: usize, len: usize },
    /// In the shard's plaintext arena (decrypted TLS).
    Plain { offset: usize, len: usize },
}

impl Raw {
    /// The pool slot the event's payload lies in.
    pub(crate) fn slot(&self) -> Option<u16> {
        match self {
            Raw::Data { chunk: Chunk::Slot { bid, .. }, .. } | Raw::Datagram { bid, .. } => Some(*bid),
            _ => None,
        }
    }

    /// Whether the event's payload lies in the plaintext arena.
    pub(crate) fn is_plain(&self) -> bool {
        matches!(self, Raw::Data { chunk: Chunk::Plain { .. }, .. })
    }
}

/// Handles a shard's events. The handler gets the submit side with each event, so it can reply
/// to borrowed data directly.
pub trait Handler {
    /// Called once per event, in order.
    fn on_event(&mut self, ops: &mut Ops, event: Event<'_>);

    /// Called after each batch of events, before the shard submits the sends they queued:
    /// the place to make a batch durable (write ahead) before its replies leave.
    fn on_batch_end(&mut self, _ops: &mut Ops) {}

    /// The shard is draining for a graceful shutdown ([`IoHandle::drain`](crate::IoHandle::drain)):
    /// its listeners are closed. Say goodbye in the protocol's way and close what should
    /// close; the shard reports drained once no socket is left and is stopped at the end of
    /// the grace period in any case. By default every socket is closed ([`Ops::close_all`]:
    /// connections gracefully, queued bytes first).
    fn on_drain(&mut self, ops: &mut Ops) {
        ops.close_all();
    }

    /// Adds the handler's own metrics (its protocol's counters) to the shard's, when they are
    /// collected ([`crate::admin::Collector`]).
    fn on_metrics(&mut self, _ops: &mut Ops, _metrics: &mut crate::admin::Metrics) {}
}
