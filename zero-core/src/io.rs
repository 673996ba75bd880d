//! The shard: [`Io`] owns the ring, the payload pool and the queue of events; [`Ops`] is the
//! submit side (sockets, sends, closes, timers) that a handler holds while it reads an event's
//! borrowed payload, so replying never needs a copy.
//!
//! One tick ([`Io::poll`]): return last tick's payload slots to the kernel, run commands from
//! [`IoHandle`]s, turn every touched socket's state into submissions (coalescing all of a
//! connection's writes of the tick into one send), wait for completions (bounded by the earliest
//! timer), and turn completions and due timers into events.

use std::any::Any;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_uring::types::{RecvMsgOut, Timespec};
use socket2::{Domain, Protocol, SockAddr, Socket, TcpKeepalive, Type};

use crate::conn::{CloseReason, Connecting, Phase, SlowConsumer, Stream};
use crate::error::{IoError, Result};
use crate::handle::{Command, IoHandle, Shared};
use crate::id::{ConnId, ListenerId, UdpId};
use crate::pool::{DetachedBuf, Pool, PoolStats};
use crate::ring::{self, Completion, Op, Ring, Token};
use crate::table::{Kind, Life, Slot, Table};
use crate::timer::{TimerId, TimerKind, Timers};
use crate::udp::{parse_sockaddr, Udp};

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

/// Statistics of one connection.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct ConnStats {
    /// Bytes accepted by `send` and not yet handed to the kernel.
    pub send_queued: usize,
    /// Reads are paused because the send queue is full.
    pub reads_paused: bool,
    /// Smoothed round-trip time (TCP only).
    pub rtt: Option<Duration>,
    /// Round-trip time variance (TCP only).
    pub rtt_var: Option<Duration>,
    /// Congestion window in segments (TCP only).
    pub cwnd: Option<u32>,
    /// Total retransmitted segments (TCP only).
    pub retransmits: Option<u32>,
}

/// A payload borrowed from the pool until the next [`Io::poll`]. Reads as `&[u8]`;
/// [`Payload::detach`] keeps it longer, on any thread, without a copy.
pub struct Payload<'a> {
    bytes: &'a [u8],
    pool: &'a Pool,
    bid: u16,
    offset: usize,
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
enum Raw {
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
    fn slot(&self) -> Option<u16> {
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

/// The submit side of a shard: everything a handler can do while it holds an event.
pub struct Ops {
    table: Table,
    timers: Timers,
    events: VecDeque<Raw>,
    config: Config,
    now: Instant,
    stopped: bool,
    /// Sends from handles dropped because the connection's queue was full or it was gone.
    handle_drops: u64,
}

/// One io_uring shard. Single-threaded; use [`IoHandle`] from other threads.
pub struct Io {
    // Field order is drop order: the ring goes first, taking the buffer registration with it,
    // before the pool's memory is freed.
    ring: Ring,
    pool: Pool,
    ops: Ops,
    completions: Vec<Completion>,
    shared: Arc<Shared>,
    commands: Vec<Command>,
    wake_armed: bool,
    under_pressure: bool,
}

const BUFFER_GROUP: u16 = 0;

impl Io {
    /// Creates a shard: probes the kernel, sets up the ring and registers the payload pool.
    pub fn new(config: Config) -> Result<Io> {
        if config.send_queue_limit == 0 || config.events_per_poll == 0 || config.max_connections == 0 {
            return Err(IoError::Config(
                "send_queue_limit, events_per_poll and max_connections must be positive".into(),
            ));
        }
        let ring = Ring::new(config.ring_entries)?;
        let pool = Pool::new(&ring, config.pool_slots, config.slot_size, BUFFER_GROUP)?;
        let shared = Arc::new(Shared::new(ring::eventfd()?));
        Ok(Io {
            ring,
            pool,
            ops: Ops {
                table: Table::with_capacity(config.max_connections),
                timers: Timers::default(),
                events: VecDeque::with_capacity(config.events_per_poll),
                now: Instant::now(),
                stopped: false,
                handle_drops: 0,
                config,
            },
            completions: Vec::new(),
            shared,
            commands: Vec::new(),
            wake_armed: false,
            under_pressure: false,
        })
    }

    /// A handle for other threads: send, close, post and wake without blocking the shard.
    pub fn handle(&self) -> IoHandle {
        IoHandle::new(self.shared.clone())
    }

    /// One tick: submit what is pending, wait up to `timeout` (forever if `None`, bounded by the
    /// earliest timer) for completions, and queue their events. Returns the events queued.
    pub fn poll(&mut self, timeout: Option<Duration>) -> Result<usize> {
        self.recycle();
        self.run_commands();
        self.flush()?;
        self.ops.now = Instant::now();
        let wait = if self.ops.events.is_empty() {
            let until_timer =
                self.ops.timers.next_deadline().map(|d| d.saturating_duration_since(self.ops.now));
            match (timeout, until_timer) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        } else {
            Some(Duration::ZERO)
        };
        self.ring.submit_and_wait(1, wait)?;
        self.ops.now = Instant::now();
        self.reap();
        self.run_commands();
        self.fire_timers();
        Ok(self.ops.events.len())
    }

    /// The next queued event, with the submit side to act on it.
    pub fn next_event(&mut self) -> Option<(Event<'_>, &mut Ops)> {
        let raw = loop {
            match self.ops.events.pop_front()? {
                Raw::PeerFinished { conn } => self.ops.peer_finished(conn),
                raw => break raw,
            }
        };
        let pool = &self.pool;
        let event = match raw {
            Raw::Accepted { conn, listener } => Event::Accepted { conn, listener },
            Raw::Connected { conn } => Event::Connected { conn },
            Raw::ConnectFailed { conn, error } => Event::ConnectFailed { conn, error },
            Raw::Data { conn, bid, len } => {
                Event::Data { conn, data: Payload { bytes: pool.bytes(bid, 0, len), pool, bid, offset: 0 } }
            }
            Raw::HalfClosed { conn } => Event::HalfClosed { conn },
            Raw::PeerFinished { .. } => unreachable!("handled above"),
            Raw::Closed { conn, reason } => Event::Closed { conn, reason },
            Raw::Writable { conn } => Event::Writable { conn },
            Raw::Datagram { udp, peer, bid, offset, len } => Event::Datagram {
                udp,
                peer,
                data: Payload { bytes: pool.bytes(bid, offset, len), pool, bid, offset },
            },
            Raw::Timer { id, token } => Event::Timer { id, token },
            Raw::PoolPressure { stats } => Event::PoolPressure { stats },
            Raw::Message(m) => Event::Message(m),
        };
        Some((event, &mut self.ops))
    }

    /// Delivers every queued event to `handler`.
    pub fn dispatch<H: Handler + ?Sized>(&mut self, handler: &mut H) -> usize {
        let mut n = 0;
        while let Some((event, ops)) = self.next_event() {
            handler.on_event(ops, event);
            n += 1;
        }
        n
    }

    /// [`Io::poll`] then [`Io::dispatch`].
    pub fn run_once<H: Handler + ?Sized>(
        &mut self,
        handler: &mut H,
        timeout: Option<Duration>,
    ) -> Result<usize> {
        self.poll(timeout)?;
        Ok(self.dispatch(handler))
    }

    /// Runs `handler` until [`Ops::stop`] is called (by the handler or through a handle).
    pub fn run<H: Handler + ?Sized>(&mut self, handler: &mut H) -> Result<()> {
        while !self.ops.stopped {
            self.run_once(handler, None)?;
        }
        Ok(())
    }

    /// A snapshot of the payload pool.
    pub fn pool_stats(&self) -> PoolStats {
        self.pool.stats()
    }

    fn recycle(&mut self) {
        let events = &self.ops.events;
        if events.is_empty() {
            self.pool.recycle(|_| false);
        } else {
            let held: Vec<u16> = events.iter().filter_map(Raw::slot).collect();
            self.pool.recycle(|bid| held.contains(&bid));
        }
        let stats = self.pool.stats();
        if self.under_pressure && stats.available >= stats.slots / 4 {
            self.under_pressure = false;
        }
    }

    fn run_commands(&mut self) {
        if !self.shared.take(&mut self.commands) {
            return;
        }
        for cmd in self.commands.drain(..) {
            let ops = &mut self.ops;
            match cmd {
                Command::Send(conn, data) => {
                    if let Err(e) = ops.send(conn, &data) {
                        ops.handle_drops += 1;
                        tracing::warn!(%conn, error = %e, "send from a handle dropped");
                    }
                }
                Command::Close(conn) => drop(ops.close(conn)),
                Command::CloseNow(conn) => drop(ops.close_now(conn)),
                Command::Post(msg) => ops.events.push_back(Raw::Message(msg)),
                Command::Stop => ops.stopped = true,
            }
        }
    }

    /// Turns every touched socket's state into submissions.
    fn flush(&mut self) -> Result<()> {
        if !self.wake_armed && !self.shared.is_closed() {
            self.ring.read_wake(self.shared.wake_fd())?;
            self.wake_armed = true;
        }
        let mut touched = std::mem::take(&mut self.ops.table.touched);
        let mut result = Ok(());
        for &(index, gen) in &touched {
            if result.is_ok() {
                result = self.ops.flush_slot(&mut self.ring, &self.pool, index, gen);
            } else if let Some(slot) = self.ops.table.get_mut(index, gen) {
                slot.touched = false;
            }
        }
        touched.clear();
        // Slots that could not be served yet (starved receives) touched themselves again.
        touched.append(&mut self.ops.table.touched);
        self.ops.table.touched = touched;
        result
    }

    fn reap(&mut self) {
        let mut completions = std::mem::take(&mut self.completions);
        self.ring.reap(&mut completions, self.ops.config.events_per_poll);
        for c in completions.drain(..) {
            self.complete(c);
        }
        self.completions = completions;
        let stats = self.pool.stats();
        if !self.under_pressure && stats.available < stats.slots / 8 {
            self.under_pressure = true;
            self.ops.events.push_back(Raw::PoolPressure { stats });
        }
    }

    fn complete(&mut self, c: Completion) {
        let Token { op, index, gen } = c.token;
        if op == Op::Wake {
            self.wake_armed = false;
            self.shared.clear_notified();
            return;
        }
        if let Some(bid) = c.buffer() {
            self.pool.take(bid);
        }
        let ops = &mut self.ops;
        let Some((full_gen, slot)) = ops.table.by_index(index) else {
            return;
        };
        if full_gen & Token::GEN_MASK != gen {
            return;
        }
        if !c.more() {
            slot.inflight -= 1;
        }
        match op {
            Op::Accept => ops.on_accept(index, full_gen, &c),
            Op::Recv => ops.on_recv(index, full_gen, &c, &mut self.pool),
            Op::Send => ops.on_send(index, full_gen, &c),
            Op::Connect => ops.on_connect(index, full_gen, &c),
            Op::RecvMsg => ops.on_recvmsg(index, full_gen, &c, &mut self.pool),
            Op::SendTo => ops.on_send_to(index, full_gen, &c),
            Op::ConnectTimeout | Op::Cancel | Op::Wake => {}
        }
        ops.finish_if_released(index, full_gen);
    }

    fn fire_timers(&mut self) {
        let ops = &mut self.ops;
        while let Some((id, kind)) = ops.timers.pop_due(ops.now) {
            match kind {
                TimerKind::User(token) => ops.events.push_back(Raw::Timer { id, token }),
                TimerKind::Linger { index, gen } => ops.release(index, gen, CloseReason::LingerExpired),
                TimerKind::Stall { index, gen } => ops.release(index, gen, CloseReason::SlowConsumer),
            }
        }
    }
}

impl Deref for Io {
    type Target = Ops;
    fn deref(&self) -> &Ops {
        &self.ops
    }
}

impl DerefMut for Io {
    fn deref_mut(&mut self) -> &mut Ops {
        &mut self.ops
    }
}

impl Drop for Io {
    fn drop(&mut self) {
        self.shared.close();
        // Cancel everything in flight and wait (bounded) for the kernel to let go of the
        // memory it was given; if it does not, leak the pool rather than free memory the kernel
        // may still write to.
        let ids: Vec<(u32, u32)> = self.ops.table.ids().collect();
        for (index, gen) in ids {
            self.ops.release(index, gen, CloseReason::Local);
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        if self.wake_armed {
            let _ = self.ring.cancel(Token::new(Op::Wake, 0, 0), Token::new(Op::Cancel, u32::MAX, 0));
        }
        while (self.ops.table.len() > 0 || self.wake_armed) && Instant::now() < deadline {
            if self.flush().is_err() || self.ring.submit_and_wait(1, Some(Duration::from_millis(50))).is_err()
            {
                break;
            }
            self.reap();
        }
        if self.ops.table.len() > 0 || self.wake_armed {
            tracing::error!(
                sockets = self.ops.table.len(),
                "operations still in flight at shutdown; leaking the pool"
            );
            self.pool.leak();
            self.ring.leak_wake_buf();
        }
    }
}

/// Accessors shared by the public API: the live slot for an id, of the right kind.
macro_rules! stream_mut {
    ($ops:expr, $conn:expr) => {{
        let slot =
            $ops.table.live_mut($conn.index, $conn.gen).ok_or_else(|| IoError::Stale($conn.to_string()))?;
        match &mut slot.kind {
            Kind::Stream(s) => (s, &slot.sock),
            _ => return Err(IoError::WrongKind("not a stream connection")),
        }
    }};
}

impl Ops {
    /// The time this tick started (cached; cheaper than `Instant::now`).
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Asks [`Io::run`] to return after this tick.
    pub fn stop(&mut self) {
        self.stopped = true;
    }

    /// Open sockets in the table (connections, listeners, UDP sockets).
    pub fn sockets(&self) -> usize {
        self.table.len()
    }

    /// Timers pending on this shard.
    pub fn timers_pending(&self) -> usize {
        self.timers.len()
    }

    /// Sends from handles that were dropped (full queue or closed connection).
    pub fn handle_drops(&self) -> u64 {
        self.handle_drops
    }

    /// The shard's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn insert(&mut self, sock: Socket, kind: Kind, announce_close: bool) -> Result<(u32, u32)> {
        let slot = Slot { sock, kind, life: Life::Live, inflight: 0, touched: false, announce_close };
        let (index, gen) = self.table.insert(slot).ok_or(IoError::TableFull(self.config.max_connections))?;
        self.table.touch(index, gen);
        Ok((index, gen))
    }

    // ---- listeners -------------------------------------------------------------------------

    /// Listens for TCP connections on `addr` (port 0 picks one: see [`Ops::listener_addr`]).
    pub fn tcp_listen(&mut self, addr: SocketAddr) -> Result<ListenerId> {
        self.tcp_listen_with(addr, &ListenOptions::default())
    }

    /// [`Ops::tcp_listen`] with options.
    pub fn tcp_listen_with(&mut self, addr: SocketAddr, opts: &ListenOptions) -> Result<ListenerId> {
        let sock = Socket::new(Domain::for_address(addr), Type::STREAM.cloexec(), Some(Protocol::TCP))
            .map_err(|e| IoError::sys("socket(tcp)", e))?;
        sock.set_reuse_address(true).map_err(|e| IoError::sys("setsockopt(SO_REUSEADDR)", e))?;
        if opts.reuse_port {
            sock.set_reuse_port(true).map_err(|e| IoError::sys("setsockopt(SO_REUSEPORT)", e))?;
        }
        self.listen(sock, &SockAddr::from(addr), &addr.to_string(), opts.backlog, self.config.tcp_nodelay)
    }

    /// Listens for Unix stream connections at `path` (which must not exist).
    pub fn unix_listen(&mut self, path: impl AsRef<Path>) -> Result<ListenerId> {
        let path = path.as_ref();
        let addr =
            SockAddr::unix(path).map_err(|e| IoError::sys(format!("unix address {}", path.display()), e))?;
        let sock = Socket::new(Domain::UNIX, Type::STREAM.cloexec(), None)
            .map_err(|e| IoError::sys("socket(unix)", e))?;
        self.listen(sock, &addr, &path.display().to_string(), ListenOptions::default().backlog, false)
    }

    fn listen(
        &mut self,
        sock: Socket,
        addr: &SockAddr,
        name: &str,
        backlog: i32,
        nodelay: bool,
    ) -> Result<ListenerId> {
        sock.bind(addr).map_err(|e| IoError::sys(format!("bind {name}"), e))?;
        sock.listen(backlog).map_err(|e| IoError::sys(format!("listen {name}"), e))?;
        let (index, gen) = self.insert(sock, Kind::Listener { accept_armed: false, nodelay }, false)?;
        Ok(ListenerId::new(index, gen))
    }

    /// The address a listener is bound to.
    pub fn listener_addr(&self, listener: ListenerId) -> Result<SocketAddr> {
        let slot = self
            .table
            .live(listener.index, listener.gen)
            .ok_or_else(|| IoError::Stale(listener.to_string()))?;
        local_inet_addr(&slot.sock)
    }

    /// Stops listening; connections already accepted are unaffected.
    pub fn close_listener(&mut self, listener: ListenerId) -> Result<()> {
        self.table.live(listener.index, listener.gen).ok_or_else(|| IoError::Stale(listener.to_string()))?;
        self.release(listener.index, listener.gen, CloseReason::Local);
        Ok(())
    }

    // ---- connections -----------------------------------------------------------------------

    /// Connects to `addr` over TCP with the default deadline (`Config::connect_timeout`).
    /// The result arrives as `Event::Connected` or `Event::ConnectFailed`; data sent before
    /// then is queued.
    pub fn tcp_connect(&mut self, addr: SocketAddr) -> Result<ConnId> {
        self.tcp_connect_timeout(addr, self.config.connect_timeout)
    }

    /// [`Ops::tcp_connect`] with an explicit deadline.
    pub fn tcp_connect_timeout(&mut self, addr: SocketAddr, timeout: Duration) -> Result<ConnId> {
        let sock = Socket::new(Domain::for_address(addr), Type::STREAM.cloexec(), Some(Protocol::TCP))
            .map_err(|e| IoError::sys("socket(tcp)", e))?;
        if self.config.tcp_nodelay {
            sock.set_tcp_nodelay(true).map_err(|e| IoError::sys("setsockopt(TCP_NODELAY)", e))?;
        }
        self.connect(sock, SockAddr::from(addr), timeout)
    }

    /// Connects to the Unix stream socket at `path`.
    pub fn unix_connect(&mut self, path: impl AsRef<Path>) -> Result<ConnId> {
        let path = path.as_ref();
        let addr =
            SockAddr::unix(path).map_err(|e| IoError::sys(format!("unix address {}", path.display()), e))?;
        let sock = Socket::new(Domain::UNIX, Type::STREAM.cloexec(), None)
            .map_err(|e| IoError::sys("socket(unix)", e))?;
        self.connect(sock, addr, self.config.connect_timeout)
    }

    fn connect(&mut self, sock: Socket, addr: SockAddr, timeout: Duration) -> Result<ConnId> {
        let mut stream = Stream::new(Phase::Connecting, None, self.config.half_open);
        stream.connecting =
            Some(Box::new(Connecting { addr, timeout: Timespec::from(timeout), submitted: false }));
        let (index, gen) = self.insert(sock, Kind::Stream(stream), false)?;
        Ok(ConnId::new(index, gen))
    }

    /// Queues `data` for sending. All sends of a tick go out as one write.
    pub fn send(&mut self, conn: ConnId, data: &[u8]) -> Result<()> {
        self.send_buffer(conn)?.extend_from_slice(data);
        Ok(())
    }

    /// The connection's send queue, to encode into directly (no intermediate buffer).
    pub fn send_buffer(&mut self, conn: ConnId) -> Result<SendBuffer<'_>> {
        let limit = self.config.send_queue_limit;
        let (s, _) = stream_mut!(self, conn);
        if s.write_closed || matches!(s.phase, Phase::Closing) {
            return Err(IoError::Closing(conn.to_string()));
        }
        let queued = s.send.queued();
        if queued >= limit {
            return Err(IoError::SendQueueFull { conn: conn.to_string(), queued, limit });
        }
        self.table.touch(conn.index, conn.gen);
        let Some(Slot { kind: Kind::Stream(s), .. }) = self.table.get_mut(conn.index, conn.gen) else {
            unreachable!("checked above")
        };
        Ok(SendBuffer { buf: &mut s.send.pending })
    }

    /// Closes gracefully: sends what is queued, then FIN, then waits (at most
    /// `Config::close_linger`) for the peer's FIN. `Event::Closed` follows.
    pub fn close(&mut self, conn: ConnId) -> Result<()> {
        let linger = self.config.close_linger;
        let now = self.now;
        let (s, _) = stream_mut!(self, conn);
        match s.phase {
            Phase::Connecting => self.release(conn.index, conn.gen, CloseReason::Local),
            Phase::Closing => {}
            Phase::Open => {
                s.phase = Phase::Closing;
                s.close_reason = CloseReason::Local;
                s.linger = Some(
                    self.timers.insert(now + linger, TimerKind::Linger { index: conn.index, gen: conn.gen }),
                );
                self.table.touch(conn.index, conn.gen);
            }
        }
        Ok(())
    }

    /// Closes at once, dropping whatever is still queued. `Event::Closed` follows.
    pub fn close_now(&mut self, conn: ConnId) -> Result<()> {
        stream_mut!(self, conn);
        self.release(conn.index, conn.gen, CloseReason::Local);
        Ok(())
    }

    /// Half-closes: sends what is queued, then FIN; receiving goes on.
    pub fn shutdown_write(&mut self, conn: ConnId) -> Result<()> {
        let (s, _) = stream_mut!(self, conn);
        s.want_fin = true;
        self.table.touch(conn.index, conn.gen);
        Ok(())
    }

    /// Sets `TCP_NODELAY`.
    pub fn set_nodelay(&mut self, conn: ConnId, on: bool) -> Result<()> {
        let (_, sock) = stream_mut!(self, conn);
        sock.set_tcp_nodelay(on).map_err(|e| IoError::sys("setsockopt(TCP_NODELAY)", e))
    }

    /// Turns TCP keep-alive probes on (idle time before the first probe) or off.
    pub fn set_keepalive(&mut self, conn: ConnId, idle: Option<Duration>) -> Result<()> {
        let (_, sock) = stream_mut!(self, conn);
        match idle {
            Some(t) => sock.set_tcp_keepalive(&TcpKeepalive::new().with_time(t)),
            None => sock.set_keepalive(false),
        }
        .map_err(|e| IoError::sys("setsockopt(SO_KEEPALIVE)", e))
    }

    /// The peer's address (TCP only).
    pub fn peer_addr(&mut self, conn: ConnId) -> Result<SocketAddr> {
        let (_, sock) = stream_mut!(self, conn);
        let addr = sock.peer_addr().map_err(|e| IoError::sys("getpeername", e))?;
        addr.as_socket().ok_or(IoError::WrongKind("not an internet socket"))
    }

    /// The listener that accepted this connection, if any.
    pub fn listener_of(&mut self, conn: ConnId) -> Result<Option<ListenerId>> {
        let (s, _) = stream_mut!(self, conn);
        Ok(s.listener)
    }

    /// Queue state and, for TCP, the kernel's `TCP_INFO` (RTT, congestion window).
    pub fn conn_stats(&mut self, conn: ConnId) -> Result<ConnStats> {
        let (s, sock) = stream_mut!(self, conn);
        let mut stats =
            ConnStats { send_queued: s.send.queued(), reads_paused: s.paused, ..ConnStats::default() };
        if let Ok(info) = ring::tcp_info(sock) {
            stats.rtt = Some(Duration::from_micros(info.tcpi_rtt as u64));
            stats.rtt_var = Some(Duration::from_micros(info.tcpi_rttvar as u64));
            stats.cwnd = Some(info.tcpi_snd_cwnd);
            stats.retransmits = Some(info.tcpi_total_retrans);
        }
        Ok(stats)
    }

    // ---- UDP -------------------------------------------------------------------------------

    /// Binds a UDP socket (port 0 picks one: see [`Ops::udp_addr`]).
    pub fn udp_bind(&mut self, addr: SocketAddr) -> Result<UdpId> {
        let sock = Socket::new(Domain::for_address(addr), Type::DGRAM.cloexec(), Some(Protocol::UDP))
            .map_err(|e| IoError::sys("socket(udp)", e))?;
        sock.set_reuse_address(true).map_err(|e| IoError::sys("setsockopt(SO_REUSEADDR)", e))?;
        sock.bind(&SockAddr::from(addr)).map_err(|e| IoError::sys(format!("bind udp {addr}"), e))?;
        let (index, gen) = self.insert(sock, Kind::Udp(Udp::new()), false)?;
        Ok(UdpId::new(index, gen))
    }

    /// The address a UDP socket is bound to.
    pub fn udp_addr(&self, udp: UdpId) -> Result<SocketAddr> {
        let slot = self.table.live(udp.index, udp.gen).ok_or_else(|| IoError::Stale(udp.to_string()))?;
        local_inet_addr(&slot.sock)
    }

    /// Queues a datagram to `peer`. Datagrams beyond `Config::send_queue_limit` queued bytes
    /// are refused (UDP does not wait for slow receivers).
    pub fn send_to(&mut self, udp: UdpId, peer: SocketAddr, data: &[u8]) -> Result<()> {
        let limit = self.config.send_queue_limit;
        let (u, _) = self.udp_mut(udp)?;
        let queued = u.queued();
        if queued + data.len() > limit {
            u.dropped += 1;
            return Err(IoError::SendQueueFull { conn: udp.to_string(), queued, limit });
        }
        u.push(peer, data);
        self.table.touch(udp.index, udp.gen);
        Ok(())
    }

    /// Joins an any-source multicast group (IPv4: on the interface with address `interface`,
    /// or any; IPv6: on interface index `ifindex`, or any).
    pub fn udp_join(&mut self, udp: UdpId, group: std::net::IpAddr, interface: Interface) -> Result<()> {
        let (_, sock) = self.udp_mut(udp)?;
        match (group, interface) {
            (std::net::IpAddr::V4(g), Interface::V4(i)) => sock.join_multicast_v4(&g, &i),
            (std::net::IpAddr::V6(g), Interface::Index(i)) => sock.join_multicast_v6(&g, i),
            _ => return Err(IoError::WrongKind("multicast group and interface families differ")),
        }
        .map_err(|e| IoError::sys(format!("join multicast group {group}"), e))
    }

    /// Leaves an any-source multicast group.
    pub fn udp_leave(&mut self, udp: UdpId, group: std::net::IpAddr, interface: Interface) -> Result<()> {
        let (_, sock) = self.udp_mut(udp)?;
        match (group, interface) {
            (std::net::IpAddr::V4(g), Interface::V4(i)) => sock.leave_multicast_v4(&g, &i),
            (std::net::IpAddr::V6(g), Interface::Index(i)) => sock.leave_multicast_v6(&g, i),
            _ => return Err(IoError::WrongKind("multicast group and interface families differ")),
        }
        .map_err(|e| IoError::sys(format!("leave multicast group {group}"), e))
    }

    /// Joins a source-specific multicast group (IPv4, RFC 4607): only `source`'s datagrams.
    pub fn udp_join_ssm(
        &mut self,
        udp: UdpId,
        group: std::net::Ipv4Addr,
        source: std::net::Ipv4Addr,
        interface: std::net::Ipv4Addr,
    ) -> Result<()> {
        let (_, sock) = self.udp_mut(udp)?;
        sock.join_ssm_v4(&source, &group, &interface)
            .map_err(|e| IoError::sys(format!("join source-specific group {group} from {source}"), e))
    }

    /// Leaves a source-specific multicast group.
    pub fn udp_leave_ssm(
        &mut self,
        udp: UdpId,
        group: std::net::Ipv4Addr,
        source: std::net::Ipv4Addr,
        interface: std::net::Ipv4Addr,
    ) -> Result<()> {
        let (_, sock) = self.udp_mut(udp)?;
        sock.leave_ssm_v4(&source, &group, &interface)
            .map_err(|e| IoError::sys(format!("leave source-specific group {group} from {source}"), e))
    }

    /// Sets the interface and loopback of outgoing IPv4 multicast.
    pub fn udp_multicast_v4(
        &mut self,
        udp: UdpId,
        interface: std::net::Ipv4Addr,
        loopback: bool,
    ) -> Result<()> {
        let (_, sock) = self.udp_mut(udp)?;
        sock.set_multicast_if_v4(&interface).map_err(|e| IoError::sys("setsockopt(IP_MULTICAST_IF)", e))?;
        sock.set_multicast_loop_v4(loopback).map_err(|e| IoError::sys("setsockopt(IP_MULTICAST_LOOP)", e))
    }

    /// Closes a UDP socket.
    pub fn close_udp(&mut self, udp: UdpId) -> Result<()> {
        self.udp_mut(udp)?;
        self.release(udp.index, udp.gen, CloseReason::Local);
        Ok(())
    }

    fn udp_mut(&mut self, udp: UdpId) -> Result<(&mut Udp, &Socket)> {
        let slot = self.table.live_mut(udp.index, udp.gen).ok_or_else(|| IoError::Stale(udp.to_string()))?;
        match &mut slot.kind {
            Kind::Udp(u) => Ok((u, &slot.sock)),
            _ => Err(IoError::WrongKind("not a UDP socket")),
        }
    }

    // ---- timers ----------------------------------------------------------------------------

    /// Fires `Event::Timer { token }` once, `after` from now.
    pub fn timer(&mut self, after: Duration, token: u64) -> TimerId {
        self.timer_at(Instant::now() + after, token)
    }

    /// Fires `Event::Timer { token }` once, at `deadline`.
    pub fn timer_at(&mut self, deadline: Instant, token: u64) -> TimerId {
        self.timers.insert(deadline, TimerKind::User(token))
    }

    /// Cancels a timer; returns whether it was still pending.
    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        self.timers.cancel(id)
    }

    // ---- internals: releasing --------------------------------------------------------------

    /// Closes the slot to the user; frees it once the kernel has finished with it.
    fn release(&mut self, index: u32, gen: u32, reason: CloseReason) {
        let Some(slot) = self.table.get_mut(index, gen) else {
            return;
        };
        if slot.life != Life::Live {
            return;
        }
        slot.life = Life::Releasing { cancel_sent: false };
        if let Kind::Stream(s) = &mut slot.kind {
            s.close_reason = reason;
            for t in [s.linger.take(), s.stall.take()].into_iter().flatten() {
                self.timers.cancel(t);
            }
        }
        if slot.inflight == 0 {
            self.finish(index);
        } else {
            self.table.touch(index, gen);
        }
    }

    fn finish_if_released(&mut self, index: u32, gen: u32) {
        if let Some(slot) = self.table.get_mut(index, gen) {
            if matches!(slot.life, Life::Releasing { .. }) && slot.inflight == 0 {
                self.finish(index);
            }
        }
    }

    fn finish(&mut self, index: u32) {
        let gen = self.table.by_index(index).map(|(g, _)| g).unwrap_or_default();
        if let Some(slot) = self.table.remove(index) {
            if let (true, Kind::Stream(s)) = (slot.announce_close, &slot.kind) {
                self.events.push_back(Raw::Closed { conn: ConnId::new(index, gen), reason: s.close_reason });
            }
            // Dropping the slot closes the socket; the kernel holds nothing of it any more.
        }
    }

    /// The peer finished sending and the connection is not half-open: close it gracefully.
    fn peer_finished(&mut self, conn: ConnId) {
        let deadline = self.now + self.config.close_linger;
        let Some(Slot { kind: Kind::Stream(s), .. }) = self.table.live_mut(conn.index, conn.gen) else {
            return;
        };
        if s.phase == Phase::Open {
            s.phase = Phase::Closing;
            s.close_reason = CloseReason::PeerClosed;
            let linger = TimerKind::Linger { index: conn.index, gen: conn.gen };
            s.linger = Some(self.timers.insert(deadline, linger));
            self.table.touch(conn.index, conn.gen);
        }
    }

    // ---- internals: submissions ------------------------------------------------------------

    fn flush_slot(&mut self, ring: &mut Ring, pool: &Pool, index: u32, gen: u32) -> Result<()> {
        let Some(slot) = self.table.get_mut(index, gen) else {
            return Ok(());
        };
        slot.touched = false;
        let fd = slot.sock.as_raw_fd();
        let token = |op| Token::new(op, index, gen);
        if let Life::Releasing { cancel_sent } = &mut slot.life {
            if !*cancel_sent && slot.inflight > 0 {
                ring.cancel_fd(fd, token(Op::Cancel))?;
                *cancel_sent = true;
                slot.inflight += 1;
            }
            return Ok(());
        }
        let mut release = None;
        let mut retry = false;
        match &mut slot.kind {
            Kind::Listener { accept_armed, .. } => {
                if !*accept_armed {
                    ring.accept_multi(fd, token(Op::Accept))?;
                    *accept_armed = true;
                    slot.inflight += 1;
                }
            }
            Kind::Stream(s) => {
                if s.phase == Phase::Connecting {
                    if let Some(c) = s.connecting.as_mut().filter(|c| !c.submitted) {
                        ring.connect(fd, &c.addr, &c.timeout, index, gen)?;
                        c.submitted = true;
                        slot.inflight += 2;
                    }
                    return Ok(());
                }
                if s.starved && pool.stats().available > 0 {
                    s.starved = false;
                }
                retry = s.starved;
                // Slow consumer: stop reading while the queue is over its limit.
                let limit = self.config.send_queue_limit;
                if !s.blocked && s.send.queued() >= limit {
                    s.blocked = true;
                    s.paused = true;
                    if let SlowConsumer::Disconnect { after } = self.config.slow_consumer {
                        s.stall = Some(self.timers.insert(self.now + after, TimerKind::Stall { index, gen }));
                    }
                }
                if s.wants_recv() {
                    ring.recv_multi(fd, pool.group(), token(Op::Recv))?;
                    s.recv_armed = true;
                    s.recv_cancelled = false;
                    slot.inflight += 1;
                } else if s.paused && s.recv_armed && !s.recv_cancelled {
                    ring.cancel(token(Op::Recv), token(Op::Cancel))?;
                    s.recv_cancelled = true;
                    slot.inflight += 1;
                }
                if let Some(buf) = s.send.next_flight() {
                    ring.send(fd, buf, token(Op::Send))?;
                    slot.inflight += 1;
                }
                let fin_due = s.want_fin || s.phase == Phase::Closing;
                if fin_due && !s.write_closed && s.send.queued() == 0 {
                    // A failed shutdown means the peer is gone; the receive side reports it.
                    let _ = slot.sock.shutdown(std::net::Shutdown::Write);
                    s.write_closed = true;
                    if s.phase == Phase::Closing && s.read_closed {
                        release = Some(s.close_reason);
                    }
                }
            }
            Kind::Udp(u) => {
                if u.starved && pool.stats().available > 0 {
                    u.starved = false;
                }
                retry = u.starved;
                if !u.recv_armed && !u.starved {
                    ring.recvmsg_multi(fd, &u.msghdr, pool.group(), token(Op::RecvMsg))?;
                    u.recv_armed = true;
                    slot.inflight += 1;
                }
                if let Some(batch) = u.next_flight() {
                    for (addr, start, len) in &batch.datagrams {
                        ring.send_to(fd, &batch.bytes[*start..start + len], addr, token(Op::SendTo))?;
                    }
                    slot.inflight += batch.datagrams.len() as u32;
                }
            }
        }
        if let Some(reason) = release {
            self.release(index, gen, reason);
        } else if retry {
            self.table.touch(index, gen);
        }
        Ok(())
    }

    // ---- internals: completions ------------------------------------------------------------

    fn on_accept(&mut self, index: u32, gen: u32, c: &Completion) {
        let Some(slot) = self.table.get_mut(index, gen) else {
            return;
        };
        let Kind::Listener { accept_armed, nodelay } = &mut slot.kind else {
            return;
        };
        let nodelay = *nodelay;
        if !c.more() {
            *accept_armed = false;
            if slot.life == Life::Live {
                self.table.touch(index, gen);
            }
        }
        if c.result < 0 {
            if c.result != -libc::ECANCELED {
                let e = std::io::Error::from_raw_os_error(-c.result);
                tracing::warn!(listener = %ListenerId::new(index, gen), error = %e, "accept failed");
            }
            return;
        }
        let sock = ring::adopt_socket(c.result);
        if nodelay {
            let _ = sock.set_tcp_nodelay(true);
        }
        let listener = ListenerId::new(index, gen);
        let stream = Stream::new(Phase::Open, Some(listener), self.config.half_open);
        match self.insert(sock, Kind::Stream(stream), true) {
            Ok((i, g)) => self.events.push_back(Raw::Accepted { conn: ConnId::new(i, g), listener }),
            Err(e) => tracing::warn!(%listener, error = %e, "accepted connection dropped"),
        }
    }

    fn on_recv(&mut self, index: u32, gen: u32, c: &Completion, pool: &mut Pool) {
        let conn = ConnId::new(index, gen);
        let Some(slot) = self.table.get_mut(index, gen) else {
            return;
        };
        let live = slot.life == Life::Live;
        let Kind::Stream(s) = &mut slot.kind else {
            return;
        };
        if !c.more() {
            s.recv_armed = false;
        }
        let mut touch = !c.more() && live;
        match c.result {
            n if n > 0 => {
                if let (true, Phase::Open, Some(bid)) = (live, s.phase, c.buffer()) {
                    self.events.push_back(Raw::Data { conn, bid, len: n as usize });
                }
            }
            0 => {
                s.read_closed = true;
                touch = live;
                if live && s.phase == Phase::Open {
                    let fin = if s.half_open { Raw::HalfClosed { conn } } else { Raw::PeerFinished { conn } };
                    self.events.push_back(fin);
                } else if live && s.phase == Phase::Closing && s.write_closed {
                    let reason = s.close_reason;
                    self.release(index, gen, reason);
                    return;
                }
            }
            e if e == -libc::ENOBUFS => {
                s.starved = true;
                pool.note_exhausted();
            }
            e if e == -libc::ECANCELED => {}
            e => {
                if live {
                    self.release(index, gen, CloseReason::from_errno(-e));
                }
                return;
            }
        }
        if touch {
            self.table.touch(index, gen);
        }
    }

    fn on_send(&mut self, index: u32, gen: u32, c: &Completion) {
        let conn = ConnId::new(index, gen);
        let limit = self.config.send_queue_limit;
        let Some(slot) = self.table.get_mut(index, gen) else {
            return;
        };
        let live = slot.life == Life::Live;
        let Kind::Stream(s) = &mut slot.kind else {
            return;
        };
        if c.result < 0 {
            s.send.busy = false;
            if live && c.result != -libc::ECANCELED {
                self.release(index, gen, CloseReason::from_errno(-c.result));
            }
            return;
        }
        s.send.sent(c.result as usize);
        if s.blocked && s.send.queued() <= limit / 2 {
            s.blocked = false;
            s.paused = false;
            if let Some(t) = s.stall.take() {
                self.timers.cancel(t);
            }
            if live {
                self.events.push_back(Raw::Writable { conn });
            }
        }
        if live {
            self.table.touch(index, gen);
        }
    }

    fn on_connect(&mut self, index: u32, gen: u32, c: &Completion) {
        let conn = ConnId::new(index, gen);
        let Some(slot) = self.table.get_mut(index, gen) else {
            return;
        };
        if slot.life != Life::Live {
            return;
        }
        let Kind::Stream(s) = &mut slot.kind else {
            return;
        };
        if c.result == 0 {
            s.phase = Phase::Open;
            slot.announce_close = true;
            self.events.push_back(Raw::Connected { conn });
            self.table.touch(index, gen);
            return;
        }
        let peer = s
            .connecting
            .as_ref()
            .and_then(|c| {
                c.addr
                    .as_socket()
                    .map(|a| a.to_string())
                    .or_else(|| c.addr.as_pathname().map(|p| p.display().to_string()))
            })
            .unwrap_or_default();
        let error = if c.result == -libc::ECANCELED {
            IoError::ConnectTimeout(peer)
        } else {
            IoError::sys(format!("connect {peer}"), std::io::Error::from_raw_os_error(-c.result))
        };
        self.events.push_back(Raw::ConnectFailed { conn, error });
        self.release(index, gen, CloseReason::Error(-c.result));
    }

    fn on_recvmsg(&mut self, index: u32, gen: u32, c: &Completion, pool: &mut Pool) {
        let udp = UdpId::new(index, gen);
        let Some(slot) = self.table.get_mut(index, gen) else {
            return;
        };
        let live = slot.life == Life::Live;
        let Kind::Udp(u) = &mut slot.kind else { return };
        if !c.more() {
            u.recv_armed = false;
        }
        match (c.result, c.buffer()) {
            (n, Some(bid)) if n > 0 && live => {
                let bytes = pool.bytes(bid, 0, n as usize);
                match RecvMsgOut::parse(bytes, &u.msghdr) {
                    Ok(out) => {
                        let payload = out.payload_data();
                        let offset = payload.as_ptr() as usize - bytes.as_ptr() as usize;
                        if out.is_payload_truncated() {
                            tracing::warn!(%udp, slot_size = pool.slot_size(), "datagram truncated to the pool's slot size");
                        }
                        match parse_sockaddr(out.name_data()) {
                            Some(peer) => self.events.push_back(Raw::Datagram {
                                udp,
                                peer,
                                bid,
                                offset,
                                len: payload.len(),
                            }),
                            None => {
                                tracing::warn!(%udp, "datagram from an address family zero-core does not handle")
                            }
                        }
                    }
                    Err(()) => tracing::warn!(%udp, "malformed recvmsg completion"),
                }
            }
            (e, _) if e == -libc::ENOBUFS => {
                u.starved = true;
                pool.note_exhausted();
            }
            (e, _) if e < 0 && e != -libc::ECANCELED => {
                tracing::warn!(%udp, error = %std::io::Error::from_raw_os_error(-e), "datagram receive failed");
            }
            _ => {}
        }
        if !c.more() && live {
            self.table.touch(index, gen);
        }
    }

    fn on_send_to(&mut self, index: u32, gen: u32, c: &Completion) {
        let Some(slot) = self.table.get_mut(index, gen) else {
            return;
        };
        let Kind::Udp(u) = &mut slot.kind else { return };
        u.flight_left -= 1;
        if c.result < 0 && c.result != -libc::ECANCELED {
            u.dropped += 1;
            tracing::debug!(error = %std::io::Error::from_raw_os_error(-c.result), "datagram send failed");
        }
        if u.flight_left == 0 && slot.life == Life::Live {
            self.table.touch(index, gen);
        }
    }
}

/// The interface for a multicast membership.
#[derive(Debug, Clone, Copy)]
pub enum Interface {
    /// IPv4: the interface with this address (`0.0.0.0` for the default).
    V4(std::net::Ipv4Addr),
    /// IPv6: the interface with this index (0 for the default).
    Index(u32),
}

/// A connection's send queue opened for direct encoding: bytes appended here are sent at the
/// end of the tick with everything else queued for the connection.
pub struct SendBuffer<'a> {
    buf: &'a mut Vec<u8>,
}

impl Deref for SendBuffer<'_> {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        self.buf
    }
}

impl DerefMut for SendBuffer<'_> {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        self.buf
    }
}

impl std::io::Write for SendBuffer<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn local_inet_addr(sock: &Socket) -> Result<SocketAddr> {
    let addr = sock.local_addr().map_err(|e| IoError::sys("getsockname", e))?;
    addr.as_socket().ok_or(IoError::WrongKind("not an internet socket"))
}
