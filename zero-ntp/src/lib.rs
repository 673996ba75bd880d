//! # zero-ntp
//!
//! An NTP client (RFC 5905; SNTP, RFC 4330, is its one-server case) in the codec / machine /
//! driver split of zero-core. It asks several servers, filters their samples, selects the
//! servers that agree (rejecting falsetickers by intersection), adapts its poll interval and
//! obeys Kiss-o'-Death codes. It never sets the system clock: it reports offset, delay,
//! jitter, stratum, reference id and the chosen server.
//!
//! - [`packet`]: the 48-byte header and NTP timestamps.
//! - [`client`]: the [`client::Client`] machine and its driver on a zero-core shard.
//!
//! NTS (RFC 8915) is out of scope for now. Receive times are the kernel's (`SO_TIMESTAMPNS`,
//! zero-core's `Ops::udp_timestamps`), so a busy shard's delay in handling a reply does not
//! count as network delay; the driver's clock is the fallback when none comes.
//!
//! ## Dependencies, and why
//! - `zero-core`: the shard and UDP.
//! - `rand`: the random transmit timestamps (nonces) of requests.
//! - `thiserror`, `tracing`: the house error and logging conventions.

pub mod client;
pub mod packet;
