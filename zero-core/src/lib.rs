//! # zero-core
//!
//! The io_uring transport core of zero. A shard ([`Io`]) owns one ring, a payload pool of
//! fixed slots fed to the kernel as a provided-buffer ring (multishot receives pick a slot per
//! completion), a table of sockets with generational ids, timers and a per-tick event queue.
//!
//! ```no_run
//! use zero_core::{Config, Event, Io};
//!
//! let mut io = Io::new(Config::default())?;
//! io.tcp_listen("127.0.0.1:7000".parse().unwrap())?;
//! loop {
//!     io.poll(None)?;
//!     while let Some((event, ops)) = io.next_event() {
//!         if let Event::Data { conn, data } = event {
//!             let _ = ops.send(conn, &data); // reply straight from the borrowed payload
//!         }
//!     }
//! }
//! # Ok::<(), zero_core::IoError>(())
//! ```
//!
//! Events borrow the pool until the next [`Io::poll`]; [`Payload::detach`] keeps a payload
//! longer. Other threads use an [`IoHandle`]; [`IoCluster`] runs one shard per core.
//!
//! QUIC runs on the shard's UDP sockets too ([`quic`]: quinn-proto in the shard, events shaped
//! like the TCP ones: [`Event::Quic`]).
//!
//! Servers built on it get a graceful shutdown ([`Stopper`], [`Handler::on_drain`]), metrics and
//! an ops socket ([`admin`]), and Tokio applications can drive shards (`runtime`, feature
//! `tokio`).
//!
//! Where io_uring is refused (a container's default seccomp profile, `kernel.io_uring_disabled`,
//! an old kernel) a shard runs on epoll instead, with the same API and events, and logs why
//! once; `ZERO_BACKEND=epoll` or [`Config::backend`] chooses it outright ([`Backend`]).
//!
//! ## Protocols on top: the machine contract
//! Every protocol crate splits the same way, and [`machine`] holds what they share:
//! - a **codec**: bytes to frames and back, borrowing, no I/O, each refusal a typed error;
//! - a **machine**: the protocol's rules, sans I/O. It takes time and input (`handle_*`, `now`
//!   first) and yields output (`poll_*`); it reads no clock, no socket and takes no lock.
//!   A connection-oriented client implements [`machine::Machine`]: `wants_connect`,
//!   `handle_connected`, `handle_input`, `handle_closed` (with a typed [`machine::Closed`]),
//!   `handle_timeout`, `poll_transmit`, `poll_close`, `poll_timeout`, `is_drained`, plus its
//!   own `poll_event`. Frames that arrive in pieces wait in a [`machine::Unframed`];
//! - **runners** from [`machine`], never written again per crate: [`machine::Driver`] inline on
//!   a shard (the owner's handler feeds it events), [`machine::Background`] (a shard on a
//!   thread of its own, for blocking callers) and `machine::Task` (a Tokio task over Tokio's
//!   sockets, feature `tokio`). The last two serve callers through the crate's
//!   [`machine::Service`]: commands in, events out to whoever waits. All three reach a
//!   [`Target`] (TCP or TLS, directly or through SOCKS5) and run the machine the same way:
//!   drain its events, send what it queued (closing after a requested close), reconnect when
//!   it asks, keep one timer on its deadline.
//!
//! How to add a protocol crate (FIX, SMTP, FTP, DNS follow this):
//! 1. `codec/`: frames in the protocol's vocabulary, with property tests (encode, decode,
//!    every cut of the input) and a fuzz target.
//! 2. `machine.rs` (or `client/machine.rs` and `server/...`): implement [`machine::Machine`]
//!    for a client; a server machine takes `now` (and wall-clock time when it records it) from
//!    its driver the same way. Unit-test it on a simulated clock; give it a fuzz target that
//!    feeds arbitrary bytes in arbitrary pieces.
//! 3. A [`machine::Service`] for the callers' side, then the blocking client over
//!    [`machine::Background`] and the Tokio client over `machine::Task`: each only waits.
//! 4. Tests against a real peer (`conformance/`), and a benchmark against the best
//!    competitors in one run (`bench/`).
//!
//! Workspace lints hold the rest: `unsafe` is forbidden outside this crate's `ring` and
//! `pool`, libraries do not print, and every public item has its doc comment.
//!
//! ## Dependencies, and why
//! - `io-uring`: the maintained, complete binding of the ring interface (tokio-rs).
//! - `socket2`: socket creation and options without hand-written `setsockopt` calls.
//! - `libc`: constants and the few calls `socket2` lacks (`eventfd`, `TCP_INFO`, affinity).
//! - `slab`: the timer set's storage.
//! - `thiserror`, `tracing`: the house error and logging conventions.
//! - `rustls` (with `ring`), `rustls-native-certs`, `rcgen`: TLS ([`tls`]).
//! - `httparse`: the HTTP/1.1 head of a WebSocket upgrade ([`ws`]): zero-copy, no
//!   allocation, the parser tungstenite and hyper use. `ring` (SHA-1) and `base64` make its
//!   accept key; `ring` is already rustls' provider.
//! - `crc32c`: the journal's record checksums ([`journal`]), hardware-accelerated.
//! - `tokio`, `tokio-rustls` (feature `tokio` only): `machine::Task`, for Tokio users; the
//!   same rustls configuration as the shard's; and `runtime`, shards driven from Tokio.
//! - `tower-service` (feature `tokio` only): the `Service` trait alone (no dependencies), so
//!   `runtime::serve` takes any tower service.
//! - `quinn-proto`: QUIC ([`quic`]). The protocol is large (loss recovery, congestion
//!   control, stream and connection flow control, migration, 0-RTT) and quinn-proto is the
//!   maintained, sans-I/O implementation of it: it takes datagrams and time and yields
//!   datagrams and events, so it runs inside the shard with no runtime of its own, on the
//!   rustls and ring already here. `bytes` is the buffer type of its API. (`quinn`, its Tokio
//!   endpoint, is a test-only dependency: the independent peer.)
//! - `ring` also signs and checks the ops socket's commands (HMAC-SHA256, [`admin`]), and
//!   `httparse` reads the metrics endpoint's requests.
//!
//! `unsafe` lives only in the `ring` (kernel boundary) and `pool` (shared slot memory)
//! modules, each block with its `SAFETY` argument.

pub mod admin;
mod cluster;
mod complete;
mod config;
mod conn;
mod drain;
pub mod echo;
mod error;
mod event;
mod handle;
mod id;
mod io;
pub mod journal;
pub mod machine;
mod ops;
#[allow(unsafe_code)] // shared slot memory; each block says why it is sound
mod pool;
mod proxy;
pub mod quic;
#[allow(unsafe_code)] // the kernel boundary; each block says why it is sound
mod ring;
#[cfg(feature = "tokio")]
pub mod runtime;
pub mod socks5;
mod submit;
mod table;
mod timer;
pub mod tls;
mod udp;
pub mod ws;

pub use cluster::{reserve_port, ClusterConfig, IoCluster, Reserved};
pub use config::{Backend, Config, ListenOptions};
pub use conn::{CloseReason, DetachedStream, SlowConsumer};
pub use drain::Stopper;
pub use error::{IoError, Result};
pub use event::{Event, Handler, Payload};
pub use handle::IoHandle;
pub use id::{ConnId, ListenerId, UdpId};
pub use io::Io;
pub use ops::{ConnStats, Interface, Ops, SendBuffer};
pub use pool::{DetachedBuf, PoolStats};
pub use quic::{QuicEvent, QuicId};
pub use socks5::{Socks5Auth, Socks5Error, Socks5Target};
pub use timer::{Deadline, TimerId};
pub use tls::{Target, TlsError};

/// The TLS library zero-core builds on, for its configuration types.
pub use rustls;
