//! # zero-mqtt
//!
//! MQTT 3.1, 3.1.1 and 5.0 for zero, in the three rooms of the house: a sans-I/O [`codec`]
//! (bytes to packets, borrowing, never allocating), machines that hold the protocol's rules,
//! and drivers on the zero-core shard.
//!
//! - [`codec`]: every control packet, property and reason code; malformed input maps to the
//!   reason code the specification names.
//! - [`topic`]: topic name and filter rules, shared-subscription filters and the subscription
//!   trie the broker matches publishes with.
//! - [`auth`]: users from a file of salted PBKDF2 hashes and per-user ACLs, in mosquitto's
//!   file formats so existing `mosquitto_passwd` files and ACL files work unchanged.
//! - [`broker`]: the broker machine, every server rule of MQTT 3.1.1 and 5.0, on a simulated
//!   clock in its tests.
//! - [`store`]: persistence, a journal of the broker's durable state written ahead of its
//!   acknowledgements, with an explicit fsync policy.
//! - [`server`]: the broker's driver on a zero-core shard, and [`server::start_cluster`], the
//!   broker on one shard per core (the design is in the `broker::cluster` module's docs).
//! - [`bridge`]: bridges to other brokers, configured with mosquitto's bridge keywords.
//! - [`client`]: the client machine (QoS flows, session resume, reconnect with backoff) and
//!   its drivers: inline on a shard, blocking, and on Tokio (feature `tokio`).
//!
//! ## When a bug fires
//! Bad input never panics: it costs its connection, with the reason code the specification
//! names. A panic is therefore a bug, and the broker does not try to run on past it: a
//! shard that panics stops every shard of the cluster (zero-core's `IoCluster` policy),
//! [`server::BrokerCluster::join`] returns the panic, and `zero mqtt broker` exits with
//! status 1 and a message naming the shard. The alternatives are worse: a process running
//! with one shard dead accepts (through that shard's `SO_REUSEPORT` listener) connections
//! nobody answers, and rebuilding a shard in place would trust state its own panic left
//! half changed. Run the broker under a supervisor (`Restart=on-failure`): with persistence
//! on, the restarted broker replays each shard's journal, so nothing acknowledged is lost.
//! The tests `a_panic_on_one_shard_stops_every_shard_and_join_says_why` and
//! `a_shard_panic_ends_the_broker_process_with_an_error` fire one (`panic_on_topic`, a
//! fault-injection setting for tests) and check both.
//!
//! ## Dependencies, and why
//! - `zero-core`: the io_uring shard the broker and client run on.
//! - `ring`: PBKDF2-HMAC-SHA512 and secure random salts for the password file; it is already
//!   in the tree as rustls' crypto provider, so it costs no extra build.
//! - `base64`: the salt and hash fields of mosquitto's password format.
//! - `crc32c`: the hash that gives each client id its home shard (hardware-accelerated; the
//!   journal, zero-core's, checksums its records with it too).
//! - `slab`: sessions by index, so timers and the subscription trie name a session in a word.
//! - `hashbrown`: its `HashTable` finds a session by client id through a table of slab indices
//!   (4 bytes a session, the id living only in the session); std's maps have no such API.
//! - `compact_str`: client ids inline up to 24 bytes, so most sessions hold no separate
//!   allocation for theirs (memory per idle connection is one of the broker's targets).
//! - `socket2`: reserving one port for every shard of a cluster (`SO_REUSEPORT` before bind).
//! - `lru`: the topic aliases the broker assigns per connection, reassigned least recently
//!   used first (already in the workspace for zero-redis's client-side cache).
//! - `tokio`, `tokio-rustls` (feature `tokio`): the Tokio driver and its TLS, with the same
//!   rustls configuration the other drivers take.
//! - `thiserror`, `tracing`: the house error and logging conventions.

pub mod auth;
pub mod bridge;
pub mod broker;
pub mod client;
pub mod codec;
mod error;
pub mod server;
pub mod store;
pub mod topic;

pub use error::Error;
