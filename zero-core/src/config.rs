//! Shard settings.

use std::time::Duration;

use crate::conn::SlowConsumer;

/// Shard settings. Every field has a default that works; change what you need:
///
/// ```
/// let mut config = zero_core::Config::default();
/// config.max_connections = 50_000;
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Submission queue entries (the completion queue gets four times as many).
    pub ring_entries: u32,
    /// Receive slots in the payload pool; a power of two, at most 32768.
    pub pool_slots: u16,
    /// Bytes per receive slot: the most one `Event::Data` carries.
    pub slot_size: usize,
    /// Most sockets (connections, listeners, UDP sockets) open at once.
    pub max_connections: usize,
    /// Most completions turned into events per poll; the rest wait for the next poll.
    pub events_per_poll: usize,
    /// Bytes a connection may have queued for sending before it counts as a slow consumer.
    pub send_queue_limit: usize,
    /// What to do with a slow consumer.
    pub slow_consumer: SlowConsumer,
    /// How long a graceful close may take (flush, FIN, peer's FIN) before the socket is dropped.
    pub close_linger: Duration,
    /// Default deadline for outbound connects.
    pub connect_timeout: Duration,
    /// Set `TCP_NODELAY` on new TCP connections.
    pub tcp_nodelay: bool,
    /// Deliver `Event::HalfClosed` when the peer finishes sending, and keep the connection open
    /// for writing. When false, a peer's FIN closes the connection gracefully.
    pub half_open: bool,
    /// How long a TLS handshake may take before the connection is dropped.
    pub tls_handshake_timeout: Duration,
    /// Free a connection's send buffers once everything queued is sent, so an idle connection
    /// holds none, at the cost of an allocation when a quiet connection sends again. Off by
    /// default, so that steady traffic allocates nothing; for servers that hold many mostly
    /// idle connections (an MQTT broker).
    pub free_idle_send_buffers: bool,
    /// Spin (asking the ring for completions without sleeping) for up to this long before
    /// sleeping in the kernel: the latency path's option. A sleeping shard is woken in tens
    /// of microseconds (about 100 across this machine's two vCPUs); a spinning one sees its
    /// completion within a microsecond or two, at the price of its core while it waits.
    /// `None` (the default): sleep at once.
    pub busy_poll: Option<Duration>,
    /// Once a completion is ready, wait up to this much longer for more before the tick
    /// starts (io_uring's `min_wait`, where the kernel offers `IORING_FEAT_MIN_TIMEOUT`): the
    /// throughput path's option. Under a steady stream of small messages the shard then wakes once per batch instead of once per
    /// message, which cuts the CPU each message costs, at the price of up to this much added
    /// latency. `None` (the default): start the tick at the first completion. Ignored on
    /// epoll and on kernels without the feature.
    pub batch_wait: Option<Duration>,
    /// The kernel interface: io_uring, or epoll where io_uring cannot run. The default,
    /// [`Backend::Auto`], honours `ZERO_BACKEND` (`epoll`, `io_uring`) and otherwise uses
    /// io_uring, falling back to epoll (the reason logged once) when the ring cannot be set up.
    pub backend: Backend,
    /// The shard waits in another event loop (`zero_core::runtime::ZeroRuntime::run_per_core`)
    /// rather than in its ring: the kernel must post completions as they come.
    pub(crate) driven_externally: bool,
}

/// Which kernel interface a shard runs on ([`Config::backend`]; [`crate::Io::backend`] says
/// which one it got).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// `ZERO_BACKEND` if set, else io_uring with the epoll fallback.
    #[default]
    Auto,
    /// io_uring only: setting up a shard fails where the ring is refused.
    IoUring,
    /// epoll: readiness and plain system calls, for kernels or sandboxes without io_uring.
    /// Everything works the same; a request costs more system calls.
    Epoll,
}

impl Backend {
    /// `Auto` with `ZERO_BACKEND` applied; other values as they are.
    pub(crate) fn resolve(self) -> Result<Backend, String> {
        if self != Backend::Auto {
            return Ok(self);
        }
        match std::env::var("ZERO_BACKEND").as_deref() {
            Err(_) | Ok("" | "auto") => Ok(Backend::Auto),
            Ok("epoll") => Ok(Backend::Epoll),
            Ok("io_uring" | "io-uring" | "uring") => Ok(Backend::IoUring),
            Ok(other) => Err(format!("ZERO_BACKEND={other}: expected epoll, io_uring or auto")),
        }
    }

    /// The name used in logs and `ZERO_BACKEND`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::IoUring => "io_uring",
            Backend::Epoll => "epoll",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            ring_entries: 1024,
            pool_slots: 1024,
            slot_size: 16 * 1024,
            max_connections: 16 * 1024,
            events_per_poll: 4096,
            send_queue_limit: 1024 * 1024,
            slow_consumer: SlowConsumer::Pause,
            close_linger: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
            tcp_nodelay: true,
            half_open: false,
            tls_handshake_timeout: Duration::from_secs(10),
            free_idle_send_buffers: false,
            busy_poll: None,
            batch_wait: None,
            backend: Backend::Auto,
            driven_externally: false,
        }
    }
}

/// Options for a listening socket.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ListenOptions {
    /// The `listen(2)` backlog.
    pub backlog: i32,
    /// Set `SO_REUSEPORT`, so several shards can listen on one address.
    pub reuse_port: bool,
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions { backlog: 1024, reuse_port: false }
    }
}
