//! QUIC (RFC 9000) on the shard's UDP sockets, with `quinn-proto` as the protocol machine.
//!
//! quinn-proto is sans-I/O, so it sits in the shard the way rustls does: datagrams the ring
//! receives on an endpoint's socket go straight into its `Endpoint` and `Connection`s, what they
//! transmit joins the socket's send batch, their deadlines are shard timers, and what happens
//! comes out as [`Event::Quic`](crate::Event::Quic) events shaped like the TCP ones: a
//! connection is accepted or connected, its streams carry [`Payload`]s, it closes with a reason.
//!
//! ```text
//! ops.quic_bind(addr, Some(server))       -> UdpId (the endpoint)
//! ops.quic_connect(endpoint, peer, name, client) -> QuicId
//! QuicEvent::Accepted / Connected / StreamOpened / Data / Finished / Datagram / Closed ...
//! ops.quic_open(conn, Dir::Bi) / quic_send / quic_finish / quic_send_datagram / quic_close
//! ```
//!
//! - **Streams** are read as soon as they are readable (flow-control credit goes back at once),
//!   except while the stream's own unsent bytes are over half the send-queue limit: an echo of a
//!   fast sender then holds the sender back instead of growing without bound.
//! - **Sends** that the stream's flow-control window cannot take yet wait in a per-stream queue
//!   bounded by `Config::send_queue_limit`; beyond it `quic_send` fails with `SendQueueFull`, and
//!   [`QuicEvent::Writable`] says when the queue has drained.
//! - **0-RTT**: a server built with [`server_config`]`(.., true)` accepts early data; a client
//!   reusing one [`client_config`] resumes and sends its first streams in 0-RTT.
//!   [`QuicEvent::Connected::zero_rtt`] says whether the server took them.
//! - **Migration**: a peer's new address (NAT rebinding, a new network) is reported as
//!   [`QuicEvent::Migrated`].
//! - **Every shard**: [`QuicGroup`] binds one socket per shard on one port and steers each
//!   datagram to the shard its connection id names (a classic BPF program on the
//!   `SO_REUSEPORT` group), so connections spread over the cluster and stay put when they
//!   migrate.
//! - **GSO**: up to 10 datagrams to one peer leave in one send (`UDP_SEGMENT`). Sockets send
//!   unfragmented (`IP_PMTUDISC_PROBE`) so quinn-proto probes the path MTU. GRO is not
//!   asked for: a coalesced receive can be 64 KB, more than a pool slot usually holds.

#[doc(hidden)]
pub mod fuzzing;
mod group;
mod shard;

pub use group::QuicGroup;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

pub use quinn_proto as proto;
pub use quinn_proto::{ConnectionError, Dir, StreamId, VarInt};

pub(crate) use shard::{Quic, QuicRaw};

use crate::error::{IoError, Result};
use crate::event::Payload;
use crate::id::UdpId;

/// A QUIC connection on a shard. Ids are never reused: once its `Closed` (or `ConnectFailed`)
/// event is out, the id is stale for good.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QuicId {
    pub(crate) index: u32,
    pub(crate) gen: u32,
}

impl QuicId {
    /// A compact form, unique within the shard, e.g. for use as a map key.
    pub fn to_u64(self) -> u64 {
        (self.gen as u64) << 32 | self.index as u64
    }
}

impl fmt::Debug for QuicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "quic#{}.{}", self.index, self.gen)
    }
}

impl fmt::Display for QuicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// What happened on a QUIC connection.
#[derive(Debug)]
#[non_exhaustive]
pub enum QuicEvent<'a> {
    /// A server endpoint has a new connection. It comes once the handshake is done, or
    /// earlier when the client's 0-RTT streams arrive first.
    Accepted {
        /// The new connection.
        conn: QuicId,
        /// The endpoint that accepted it.
        endpoint: UdpId,
    },
    /// An outbound connection's handshake is done.
    Connected {
        /// The connection.
        conn: QuicId,
        /// `Some(accepted)` if 0-RTT data was sent: when the server refused it, the streams
        /// opened before this event were reset and their data must be sent again.
        zero_rtt: Option<bool>,
    },
    /// An outbound connection failed before its handshake was done; the id is stale now.
    ConnectFailed {
        /// The connection.
        conn: QuicId,
        /// Why.
        reason: ConnectionError,
    },
    /// The peer opened a stream.
    StreamOpened {
        /// The connection.
        conn: QuicId,
        /// The stream (`stream.dir()` says whether we may send on it).
        stream: StreamId,
    },
    /// Bytes arrived on a stream, in order.
    Data {
        /// The connection.
        conn: QuicId,
        /// The stream.
        stream: StreamId,
        /// The bytes.
        data: Payload<'a>,
    },
    /// The peer finished its side of a stream (all its data came before this).
    Finished {
        /// The connection.
        conn: QuicId,
        /// The stream.
        stream: StreamId,
    },
    /// The peer abandoned its side of a stream (`RESET_STREAM`).
    Reset {
        /// The connection.
        conn: QuicId,
        /// The stream.
        stream: StreamId,
        /// The peer's application error code.
        code: VarInt,
    },
    /// The peer asked us to stop sending on a stream (`STOP_SENDING`); its queued bytes are
    /// dropped.
    Stopped {
        /// The connection.
        conn: QuicId,
        /// The stream.
        stream: StreamId,
        /// The peer's application error code.
        code: VarInt,
    },
    /// A stream whose send queue was full has drained: sending works again.
    Writable {
        /// The connection.
        conn: QuicId,
        /// The stream.
        stream: StreamId,
    },
    /// The peer's stream limit went up: [`Ops::quic_open`](crate::Ops::quic_open) may succeed
    /// again for `dir`.
    StreamsAvailable {
        /// The connection.
        conn: QuicId,
        /// Which kind of stream.
        dir: Dir,
    },
    /// An unreliable datagram arrived (RFC 9221).
    Datagram {
        /// The connection.
        conn: QuicId,
        /// The bytes.
        data: Payload<'a>,
    },
    /// The peer now talks from another address (RFC 9000 section 9): migration or NAT
    /// rebinding. quinn-proto validated the path.
    Migrated {
        /// The connection.
        conn: QuicId,
        /// Its new address.
        remote: SocketAddr,
    },
    /// A connection is gone; its id is stale from now on.
    Closed {
        /// The connection.
        conn: QuicId,
        /// Why: `LocallyClosed` after [`Ops::quic_close`](crate::Ops::quic_close).
        reason: ConnectionError,
    },
}

/// A QUIC server configuration from a rustls one (e.g. [`crate::tls::ServerTls::build`]):
/// TLS 1.3 only, as QUIC requires, with 0-RTT accepted if `zero_rtt`.
pub fn server_config(tls: &rustls::ServerConfig, zero_rtt: bool) -> Result<Arc<proto::ServerConfig>> {
    let mut tls = tls.clone();
    tls.max_early_data_size = if zero_rtt { u32::MAX } else { 0 };
    let crypto = proto::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| IoError::Config(format!("QUIC server: {e}")))?;
    Ok(Arc::new(proto::ServerConfig::with_crypto(Arc::new(crypto))))
}

/// A QUIC client configuration from a rustls one (e.g. [`crate::tls::ClientTls::build`]).
/// Early data is enabled: connections made with clones of the result resume earlier sessions
/// and send 0-RTT when the server allows it.
pub fn client_config(tls: &rustls::ClientConfig) -> Result<proto::ClientConfig> {
    let mut tls = tls.clone();
    tls.enable_early_data = true;
    let crypto = proto::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| IoError::Config(format!("QUIC client: {e}")))?;
    Ok(proto::ClientConfig::new(Arc::new(crypto)))
}
