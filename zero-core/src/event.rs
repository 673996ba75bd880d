//! What a shard reports: [`Event`]s, their borrowed [`Payload`]s, and the [`Handler`] that
//! receives them.

use std::any::Any;
use std::net::SocketAddr;
use std::ops::Deref;

use crate::conn::CloseReason;
use crate::error::IoError;
use crate::id::{ConnId, ListenerId, UdpId};
use crate::ops::Ops;
use crate::pool::{DetachedBuf, Pool, PoolStats};
use crate::timer::TimerId;

/// A payload borrowed from the pool until the next [`Io::poll`]. Reads as `&[u8]`;
/// [`Payload::detach`] keeps it longer, on any thread, without a copy.
pub struct Payload<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) pool: &'a Pool,
    pub(crate) bid: u16,
    pub(crate) offset: usize,
}

impl Payload<'_> {
    /// Takes the payload out of the pool: the slot is not reused until the result is dropped.
    pub fn detach(&self) -> DetachedBuf {
        self.pool.detach(self.bid, self.offset, self.bytes.len())
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
    /// An outbound connect completed.
    Connected {
        /// The connection.
        conn: ConnId,
    },
    /// An outbound connect failed (refused, unreachable, timed out); the id is stale now.
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
    /// A datagram arrived.
    Datagram {
        /// The socket it arrived on.
        udp: UdpId,
        /// Who sent it.
        peer: SocketAddr,
        /// The bytes, borrowed from the pool.
        data: Payload<'a>,
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
    /// A message posted through [`IoHandle::post`].
    Message(Box<dyn Any + Send>),
}

/// An event as queued: payloads are slot references, materialized when delivered.
pub(crate) enum Raw {
    Accepted {
        conn: ConnId,
        listener: ListenerId,
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
        bid: u16,
        len: usize,
    },
    HalfClosed {
        conn: ConnId,
    },
    /// The peer's FIN without `Config::half_open`: close gracefully once the events before it
    /// (and the replies they cause) are through. Never shown to the handler.
    PeerFinished {
        conn: ConnId,
    },
    Closed {
        conn: ConnId,
        reason: CloseReason,
    },
    Writable {
        conn: ConnId,
    },
    Datagram {
        udp: UdpId,
        peer: SocketAddr,
        bid: u16,
        offset: usize,
        len: usize,
    },
    Timer {
        id: TimerId,
        token: u64,
    },
    PoolPressure {
        stats: PoolStats,
    },
    Message(Box<dyn Any + Send>),
}

impl Raw {
    pub(crate) fn slot(&self) -> Option<u16> {
        match self {
            Raw::Data { bid, .. } | Raw::Datagram { bid, .. } => Some(*bid),
            _ => None,
        }
    }
}

/// Handles a shard's events. The handler gets the submit side with each event, so it can reply
/// to borrowed data directly.
pub trait Handler {
    /// Called once per event, in order.
    fn on_event(&mut self, ops: &mut Ops, event: Event<'_>);
}
