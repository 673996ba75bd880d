//! # zero-dns
//!
//! DNS for zero, in the codec / machine / driver split of zero-core:
//!
//! - [`wire`]: queries and the checks a response must pass (id, question, case), through
//!   hickory-proto; TCP framing.
//! - [`resolver`]: the stub resolver, a sans-I/O machine ([`resolver::Resolver`]): several
//!   name servers tried by measured round-trip time, per-try timeouts and retries, TCP when
//!   an answer is truncated, the search list and `ndots`, `/etc/hosts`, a cache with negative
//!   entries (RFC 2308) and one question in flight per name and type, CNAME chains followed.
//!   Its driver runs it on a zero-core shard, a UDP socket (a random source port) per query,
//!   and one TCP or TLS connection per server, reused and pipelined. No DNS over HTTPS: it
//!   needs an HTTP/2 client, which zero-core does not have yet.
//! - [`mdns`]: multicast DNS and DNS-SD (RFC 6762/6763): a responder that announces services
//!   and defends their names and its host's, a browser that finds them, and their shard
//!   driver over IPv4 and IPv6.
//! - [`config`]: `/etc/resolv.conf` and `/etc/hosts`.
//!
//! Why the machines here do not implement zero-core's `Machine`: that contract is one
//! connection-oriented client (one connection, its bytes, its timer). The resolver owns many
//! sockets at once (a fresh UDP socket per query, a stream per server) and the mDNS and NTP
//! machines speak datagrams to several peers, so each has a driver of its own over zero-core's
//! `Ops` (the same sans-I/O shape: input in, transmits, closes and a deadline out). Blocking
//! callers use [`resolver::lookup_blocking`] (a shard for one lookup); a long-lived blocking or
//! Tokio resolver is not built.
//! - [`cache`]: answers for their TTL.
//!
//! ## Dependencies, and why
//! - `zero-core`: the shard, UDP and TCP.
//! - `hickory-proto`: the DNS wire format, every record type, name compression and EDNS, from
//!   the maintained successor of trust-dns-proto; writing our own would be a second copy of
//!   a hard codec. Without default features it brings no runtime. What it costs: about 0.4 us
//!   to encode a query and 0.6 us to decode a two-record answer on this machine
//!   (`dns-hickory-bench codec`, run by bench/dns.sh), some 6% of the 18 us of CPU a lookup
//!   takes end to end (`zero bench dns`: 56,000 lookups per CPU-second); the kernel's UDP path
//!   and a socket per query (a random source port each) take 71%.
//! - `rand`: query ids and DNS 0x20 case (hickory-proto's own choice and version).
//! - `lru`: the cache's bound.
//! - `thiserror`, `tracing`: the house error and logging conventions.

pub mod cache;
pub mod config;
pub mod error;
pub mod mdns;
pub mod resolver;
pub mod wire;

pub use config::{DnsTls, Hosts, ResolverConfig};
pub use error::{ResolveError, Source};
pub use hickory_proto as proto;
pub use hickory_proto::rr::{Name, RData, Record, RecordType};
