//! One broker over several shards (an `IoCluster`, one shard per core), with no lock on the
//! publish path. Each shard runs its own [`Broker`](super::Broker) machine and they talk only
//! in [`ShardMessage`]s, posted in one batch per shard and tick:
//!
//! - **Sessions have a home.** A client id belongs to one shard ([`home_shard`], a hash), so
//!   a session, its takeover, its will and its expiry are always one machine's business. A
//!   connection accepted elsewhere (the kernel spreads connections with `SO_REUSEPORT`) is
//!   handed to the home shard right after its CONNECT, bytes read so far included (zero-core's
//!   `Ops::detach` / `Ops::attach`); ids the broker assigns are picked to be at home where
//!   they are made.
//! - **Interest is replicated, messages are forwarded.** A shard announces the plain filters
//!   it has subscribers for (when the first arrives and the last leaves) and how many members
//!   it has in each shared group. A publish is routed locally and forwarded (one `Arc`, no
//!   copy) only to the shards whose interest matches, each of which delivers it to its own
//!   sessions. Messages of one publisher travel one queue, so their order holds.
//! - **Shared groups** are served in proportion to their members on each shard: the
//!   publishing shard picks the shard, that shard picks the member.
//! - **Retained messages** go to every shard, and every shard keeps (and journals) the full
//!   set, so a SUBSCRIBE is answered locally and a restart restores it on each.
//! - **`$SYS`**: each shard reports its counters to shard 0, which publishes the sums.
//!
//! What it costs: a subscription takes effect on other shards one hop (a shard wake-up) after
//! its SUBACK is queued, and an acknowledged publish is journaled by the shards it was
//! forwarded to one hop after the publisher's own. A graceful stop waits for that hop (the
//! shards quiesce first); a crash within it loses the forwarded copies, as a crash of
//! mosquitto loses what it took since its last autosave. Persistence keeps one journal per shard;
//! the shard count must stay the same across restarts, since it decides where sessions live.

use std::sync::Arc;

use super::message::Message;
use super::sys::{Gauges, Stats};

/// A shard's position in its cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    /// This shard's index.
    pub shard: usize,
    /// How many shards there are (at most [`MAX_SHARDS`]).
    pub shards: usize,
}

/// The most shards a broker runs on (forwarding targets are a 64-bit set).
pub const MAX_SHARDS: usize = 64;

impl Default for Place {
    fn default() -> Place {
        Place { shard: 0, shards: 1 }
    }
}

impl Place {
    /// Whether there are other shards.
    pub fn is_cluster(&self) -> bool {
        self.shards > 1
    }

    /// The other shards, a bit each.
    pub fn others(&self) -> u64 {
        (u64::MAX >> (64 - self.shards)) & !(1 << self.shard)
    }
}

/// The shard a client id's session lives on, out of `shards`: stable across restarts and
/// platforms (CRC-32C of the id).
pub fn home_shard(client_id: &str, shards: usize) -> usize {
    crc32c::crc32c(client_id.as_bytes()) as usize % shards.max(1)
}

/// What a shard wants: a filter as a client wrote it, with weight 1 (a plain filter with
/// subscribers) or 0 (none any more), or a shared group's member count on the shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interest {
    /// The filter (`$share/group/filter` for a shared group).
    pub filter: Arc<str>,
    /// 0 or 1 for a plain filter; members for a shared group.
    pub weight: u32,
}

/// What one shard tells another.
#[derive(Debug)]
#[non_exhaustive]
pub enum ShardMessage {
    /// `shard`'s interest changed.
    Interest {
        /// The shard whose interest it is.
        shard: usize,
        /// What it wants now.
        interest: Interest,
    },
    /// A publish for the receiver's subscribers (and, if retained, its retained set).
    Forward {
        /// The message.
        message: Arc<Message>,
        /// The shared groups (as written) the receiver serves this message to.
        groups: Vec<Arc<str>>,
    },
    /// A shard's counters, for shard 0's `$SYS` topics.
    Sys {
        /// The reporting shard.
        shard: usize,
        /// Its counters.
        stats: Box<Stats>,
        /// Its gauges.
        gauges: Gauges,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_shards_are_stable_and_spread() {
        assert_eq!(home_shard("sensor-1", 1), 0);
        let homes: Vec<usize> = (0..1000).map(|i| home_shard(&format!("c{i}"), 4)).collect();
        for shard in 0..4 {
            let n = homes.iter().filter(|&&h| h == shard).count();
            assert!((180..320).contains(&n), "shard {shard} is home to {n} of 1000");
        }
        assert_eq!(homes, (0..1000).map(|i| home_shard(&format!("c{i}"), 4)).collect::<Vec<_>>());
    }
}
