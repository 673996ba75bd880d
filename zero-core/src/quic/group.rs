//! QUIC on every shard of a cluster. Each shard binds its own UDP socket on the shared port
//! (`SO_REUSEPORT`), and a datagram must reach the shard that holds its connection, whatever
//! the peer's address (QUIC connections migrate). So every connection id a shard issues
//! carries the shard's index in its first byte, and a classic BPF program on the port's group
//! steers each datagram by the first byte of its destination connection id:
//!
//! - a short header (`0b0.......`): the id starts at byte 1;
//! - a long header (`0b1.......`, handshakes and 0-RTT): flags, a 4-byte version and the id's
//!   length byte, so it starts at byte 6. A client's first Initial carries an id of its own
//!   choosing; its first byte picks a shard, which accepts, and from then on the client
//!   addresses that shard's ids.
//!
//! The group's sockets are numbered in the order they were bound, so [`QuicGroup::bind`] binds
//! them in shard order.

use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use quinn_proto::{ConnectionId, ConnectionIdGenerator, ServerConfig};
use ring::rand::SecureRandom;

use crate::error::{IoError, Result};
use crate::id::UdpId;
use crate::ops::Ops;

/// The length of the connection ids a shard issues (quinn's default).
const CID_LEN: usize = 8;

/// Connection ids whose first byte is the shard's index, the rest random.
pub(crate) struct ShardCids {
    shard: u8,
    random: ring::rand::SystemRandom,
}

impl ShardCids {
    pub(crate) fn new(shard: u8) -> ShardCids {
        ShardCids { shard, random: ring::rand::SystemRandom::new() }
    }
}

impl ConnectionIdGenerator for ShardCids {
    fn generate_cid(&mut self) -> ConnectionId {
        let mut id = [0u8; CID_LEN];
        id[0] = self.shard;
        // The system's random source does not fail on Linux once booted; a zero tail still
        // routes correctly, it is only guessable.
        let _ = self.random.fill(&mut id[1..]);
        ConnectionId::new(&id)
    }

    fn cid_len(&self) -> usize {
        CID_LEN
    }

    fn cid_lifetime(&self) -> Option<Duration> {
        None
    }
}

/// The classic BPF program that steers a datagram to shard `dcid[0] % shards` (see the module
/// docs). A datagram too short to have an id is read as 0 by the kernel: shard 0 drops it.
fn steering(shards: u8) -> Vec<libc::sock_filter> {
    const LD_B_ABS: u16 = (libc::BPF_LD | libc::BPF_B | libc::BPF_ABS) as u16;
    const JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
    const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
    const MOD_K: u16 = (libc::BPF_ALU | libc::BPF_MOD | libc::BPF_K) as u16;
    const RET_A: u16 = (libc::BPF_RET | libc::BPF_A) as u16;
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    vec![
        op(LD_B_ABS, 0, 0, 0),              // A = first byte
        op(JSET_K, 0, 2, 0x80),             // long header? else to the short one
        op(LD_B_ABS, 0, 0, 6),              // long: A = dcid[0]
        op(JA, 0, 0, 1),                    //
        op(LD_B_ABS, 0, 0, 1),              // short: A = dcid[0]
        op(MOD_K, 0, 0, u32::from(shards)), // A %= shards
        op(RET_A, 0, 0, 0),                 // the group's socket A
    ]
}

/// One QUIC port served by every shard of a cluster: make it before the cluster starts, and
/// call [`QuicGroup::bind`] in each shard's setup.
///
/// ```no_run
/// # use std::sync::Arc;
/// # fn demo(server: Arc<zero_core::quic::proto::ServerConfig>) -> zero_core::Result<()> {
/// let shards = 2;
/// let group = zero_core::quic::QuicGroup::new("0.0.0.0:4433".parse().unwrap(), shards)?;
/// let cluster = zero_core::IoCluster::start(zero_core::ClusterConfig::new(shards), move |shard, io| {
///     group.bind(shard, io, Some(server.clone()))?;
///     Ok(zero_core::echo::Echo::default())
/// })?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct QuicGroup {
    shards: u8,
    /// The next shard to bind, and the address bound (its port fixed once the first bound).
    turn: Mutex<(usize, SocketAddr)>,
    bound: Condvar,
}

impl QuicGroup {
    /// A group for `shards` shards (at most 255) on `addr` (port 0: the first shard picks one).
    pub fn new(addr: SocketAddr, shards: usize) -> Result<Arc<QuicGroup>> {
        let shards = u8::try_from(shards)
            .ok()
            .filter(|&n| n > 0 && n < u8::MAX)
            .ok_or_else(|| IoError::Config(format!("a QUIC group takes 1 to 254 shards, not {shards}")))?;
        Ok(Arc::new(QuicGroup { shards, turn: Mutex::new((0, addr)), bound: Condvar::new() }))
    }

    /// Binds shard `shard`'s endpoint (a server if `server` is given), after the shards before
    /// it have bound theirs: the group steers by bind order. Waits up to 10 s for them.
    pub fn bind(&self, shard: usize, ops: &mut Ops, server: Option<Arc<ServerConfig>>) -> Result<UdpId> {
        let index = u8::try_from(shard).ok().filter(|&i| i < self.shards).ok_or_else(|| {
            IoError::Config(format!("shard {shard} is not in a QUIC group of {} shards", self.shards))
        })?;
        let turn = self.turn.lock().map_err(|_| IoError::Config("a QUIC group's shard panicked".into()))?;
        let (mut turn, timeout) = self
            .bound
            .wait_timeout_while(turn, Duration::from_secs(10), |(next, _)| *next != shard)
            .map_err(|_| IoError::Config("a QUIC group's shard panicked".into()))?;
        if timeout.timed_out() {
            return Err(IoError::Config(format!(
                "QUIC group: shard {shard} waited 10 s for shard {} to bind (did its setup fail?)",
                turn.0
            )));
        }
        let udp = ops.quic_bind_with(turn.1, server, Some(index))?;
        if shard == 0 {
            let slot = ops.table.live(udp.index, udp.gen).ok_or_else(|| IoError::Stale(udp.to_string()))?;
            crate::ring::attach_reuseport_cbpf(&slot.sock, &steering(self.shards))
                .map_err(|e| IoError::sys("setsockopt(SO_ATTACH_REUSEPORT_CBPF)", e))?;
            turn.1 = ops.udp_addr(udp)?;
        }
        turn.0 += 1;
        self.bound.notify_all();
        Ok(udp)
    }
}
