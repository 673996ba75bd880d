//! [`Ops`]: the submit side of a shard. Everything a handler can do while it holds an event:
//! open and close sockets, send, set options, start and cancel timers. Submissions themselves
//! happen at the next tick (`submit.rs`); completions come back through `complete.rs`.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_uring::types::Timespec;
use socket2::{Domain, Protocol, SockAddr, Socket, TcpKeepalive, Type};

use crate::admin::{Counters, Metrics};
use crate::config::{Backend, Config, ListenOptions};
use crate::conn::{CloseReason, Connecting, DetachedStream, FileSend, Owed, Phase, Stream};
use crate::drain::Drain;
use crate::error::{IoError, Result};
use crate::event::Raw;
use crate::handle::IoHandle;
use crate::id::{ConnId, ListenerId, UdpId};
use crate::quic::Quic;
use crate::ring;
use crate::table::{Kind, Life, Slot, Table};
use crate::timer::{TimerId, TimerKind, Timers};
use crate::udp::{Relay, Udp};

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
    /// Bytes of an [`Ops::send_file`] not yet in the socket's buffer.
    pub file_left: Option<u64>,
}

/// The submit side of a shard: everything a handler can do while it holds an event.
pub struct Ops {
    pub(crate) table: Table,
    pub(crate) timers: Timers,
    pub(crate) events: VecDeque<Raw>,
    pub(crate) config: Config,
    pub(crate) now: Instant,
    pub(crate) stopped: bool,
    pub(crate) drain: Drain,
    pub(crate) counters: Counters,
    /// Who asked for this shard's metrics this tick.
    pub(crate) collectors: Vec<(std::sync::mpsc::Sender<(usize, Metrics)>, bool)>,
    /// Sends from handles dropped because the connection's queue was full or it was gone.
    pub(crate) handle_drops: u64,
    /// This shard's index in its cluster (0 when standalone).
    pub(crate) shard: usize,
    /// Every shard of the cluster, in shard order (empty when standalone).
    pub(crate) peers: Arc<[IoHandle]>,
    /// TLS plaintext on its way to a WebSocket layer (kept for its capacity).
    pub(crate) scratch: Vec<u8>,
    /// QUIC endpoints and connections.
    pub(crate) quic: Quic,
}

/// Accessors shared by the public API: the live slot for an id, of the right kind.
/// The pipe a file send goes through: the most Linux gives an unprivileged pipe by default
/// (`/proc/sys/fs/pipe-max-size`), so each splice moves up to this much.
const FILE_PIPE: usize = 1024 * 1024;

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

    /// Asks [`Io::run`](crate::Io::run) to return after this tick.
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

    /// This shard's index in its [`IoCluster`](crate::IoCluster); 0 for a standalone [`Io`](crate::Io).
    pub fn shard(&self) -> usize {
        self.shard
    }

    /// Handles to every shard of the cluster, in shard order (this one included); empty for a
    /// standalone [`Io`](crate::Io). Set before the first event, so a handler can always
    /// reach its siblings.
    pub fn peers(&self) -> &[IoHandle] {
        &self.peers
    }

    pub(crate) fn insert(&mut self, sock: Socket, kind: Kind) -> Result<(u32, u32)> {
        if self.config.backend == Backend::Epoll {
            // epoll's sends, connects and splices must never block the shard.
            sock.set_nonblocking(true).map_err(|e| IoError::sys("fcntl(O_NONBLOCK)", e))?;
        }
        let slot = Slot { sock, kind, life: Life::Live, inflight: 0, touched: false };
        let (index, gen) = self.table.insert(slot).ok_or(IoError::TableFull(self.config.max_connections))?;
        self.note_sockets();
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
        let (index, gen) =
            self.insert(sock, Kind::Listener { accept_armed: false, nodelay, tls: None, ws: None })?;
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
        let mut stream = Stream::new(Phase::Connecting, None);
        stream.owed = Some(Owed::Connected);
        stream.rare().connecting =
            Some(Box::new(Connecting { addr, timeout, timespec: Timespec::from(timeout), submitted: false }));
        let (index, gen) = self.insert(sock, Kind::Stream(stream))?;
        Ok(ConnId::new(index, gen))
    }

    /// Queues `data` for sending. All sends of a tick go out as one write (on TLS connections,
    /// as shared records). Refused while a SOCKS5 handshake runs (`IoError::NotReady`).
    pub fn send(&mut self, conn: ConnId, data: &[u8]) -> Result<()> {
        self.send_buffer(conn)?.extend_from_slice(data);
        Ok(())
    }

    /// Sends `len` bytes of `file` from `offset`, after what is queued, without copying them
    /// through user space: the kernel splices them from the page cache through a pipe into
    /// the socket. `Event::FileSent` says when they are all in the socket's buffer; until
    /// then nothing else may be sent (`IoError::NotReady`), so that bytes keep their order.
    /// Plain TCP and Unix streams only (TLS and WebSocket frame their bytes in user space:
    /// `IoError::WrongKind`). A file shorter than `offset + len` closes the connection
    /// (`CloseReason::Error(EIO)`): the peer would otherwise wait for bytes that never come.
    pub fn send_file(&mut self, conn: ConnId, file: &std::fs::File, offset: u64, len: u64) -> Result<()> {
        let (s, _) = stream_mut!(self, conn);
        if s.tls.is_some() || s.ws.is_some() {
            return Err(IoError::WrongKind("send_file needs a plain stream (no TLS, no WebSocket)"));
        }
        if s.write_closed || s.phase == Phase::Closing {
            return Err(IoError::Closing(conn.to_string()));
        }
        if s.sending_file() || s.in_socks() || s.relay_for().is_some() {
            return Err(IoError::NotReady("a file is already being sent: wait for Event::FileSent"));
        }
        if len == 0 {
            self.events.push_back(Raw::FileSent { conn });
            return Ok(());
        }
        let file = file.try_clone().map_err(|e| IoError::sys("dup", e))?.into();
        let (pipe_r, pipe_w, pipe_size) = crate::ring::splice_pipe(FILE_PIPE)?;
        let (s, _) = stream_mut!(self, conn);
        s.rare().file = Some(Box::new(FileSend {
            file,
            offset,
            left: len,
            pipe_r,
            pipe_w,
            pipe_size,
            in_pipe: 0,
            busy: false,
        }));
        self.table.touch(conn.index, conn.gen);
        Ok(())
    }

    /// The connection's send queue, to encode into directly (no intermediate buffer).
    pub fn send_buffer(&mut self, conn: ConnId) -> Result<SendBuffer<'_>> {
        let limit = self.config.send_queue_limit;
        let slot =
            self.table.touch_live(conn.index, conn.gen).ok_or_else(|| IoError::Stale(conn.to_string()))?;
        let Kind::Stream(s) = &mut slot.kind else {
            return Err(IoError::WrongKind("not a stream connection"));
        };
        if s.write_closed || s.phase == Phase::Closing {
            return Err(IoError::Closing(conn.to_string()));
        }
        if s.in_socks() || s.relay_for().is_some() {
            return Err(IoError::NotReady(
                "a SOCKS5 handshake owns this connection: wait for Event::Connected",
            ));
        }
        if s.sending_file() {
            return Err(IoError::NotReady("a file is being sent: wait for Event::FileSent"));
        }
        let queued = s.queued();
        if queued >= limit {
            return Err(IoError::SendQueueFull { conn: conn.to_string(), queued, limit });
        }
        let buf = match (&mut s.ws, &mut s.tls) {
            (Some(ws), _) => &mut ws.staged,
            (None, Some(tls)) => &mut tls.staged,
            (None, None) => s.send.pending(),
        };
        Ok(SendBuffer { buf })
    }

    /// Closes gracefully: sends what is queued, then FIN, then waits (at most
    /// `Config::close_linger`) for the peer's FIN. `Event::Closed` follows.
    pub fn close(&mut self, conn: ConnId) -> Result<()> {
        let (s, _) = stream_mut!(self, conn);
        match s.phase {
            Phase::Connecting => self.release(conn.index, conn.gen, CloseReason::Local),
            Phase::Closing => {}
            Phase::Open => self.begin_close(conn, CloseReason::Local),
        }
        Ok(())
    }

    /// Closes at once, dropping whatever is still queued. `Event::Closed` follows.
    pub fn close_now(&mut self, conn: ConnId) -> Result<()> {
        stream_mut!(self, conn);
        self.release(conn.index, conn.gen, CloseReason::Local);
        Ok(())
    }

    /// Starts handing an open connection to another shard: receiving stops, what is queued is
    /// sent, and then `Event::Detached` gives the stream (with its TLS session) to pass to
    /// [`Ops::attach`] there. Bytes that arrive before receiving stops still come as
    /// `Event::Data` first; what arrives after waits in the socket for the new shard. If the
    /// peer closes meanwhile, `Event::Closed` comes instead. Refused during a SOCKS5 or TLS
    /// handshake (`IoError::NotReady`).
    pub fn detach(&mut self, conn: ConnId) -> Result<()> {
        let (s, _) = stream_mut!(self, conn);
        let handshaking = s.tls.as_ref().is_some_and(|t| !t.is_established())
            || s.ws.as_ref().is_some_and(|w| !w.is_established());
        if s.in_socks() || s.relay_for().is_some() || handshaking || s.owed.is_some() {
            return Err(IoError::NotReady("a handshake owns this connection"));
        }
        if s.phase != Phase::Open {
            return Err(IoError::Closing(conn.to_string()));
        }
        s.detaching = true;
        self.table.touch(conn.index, conn.gen);
        Ok(())
    }

    /// Adopts a stream detached from another shard (`Event::Detached`) as an open connection of
    /// this one; receiving starts at the next tick. No `Event::Accepted` follows: the returned
    /// id is the announcement.
    pub fn attach(&mut self, stream: DetachedStream) -> Result<ConnId> {
        let mut s = Stream::new(Phase::Open, None);
        s.tls = stream.tls;
        s.ws = stream.ws;
        let (index, gen) = self.insert(stream.sock, Kind::Stream(s))?;
        Ok(ConnId::new(index, gen))
    }

    /// Half-closes: sends what is queued, then FIN; receiving goes on.
    pub fn shutdown_write(&mut self, conn: ConnId) -> Result<()> {
        let (s, _) = stream_mut!(self, conn);
        if let Some(tls) = &mut s.tls {
            tls.close_notify(s.send.pending());
        }
        s.want_fin = true;
        self.table.touch(conn.index, conn.gen);
        Ok(())
    }

    /// The open stream behind `conn`.
    pub(crate) fn stream(&mut self, conn: ConnId) -> Result<&mut Stream> {
        let (s, _) = stream_mut!(self, conn);
        Ok(s)
    }

    /// Sets `TCP_NODELAY`.
    pub fn set_nodelay(&mut self, conn: ConnId, on: bool) -> Result<()> {
        let (_, sock) = stream_mut!(self, conn);
        sock.set_tcp_nodelay(on).map_err(|e| IoError::sys("setsockopt(TCP_NODELAY)", e))
    }

    /// Sets `SO_OOBINLINE`: urgent data stays in the byte stream. An FTP client's `ABOR`
    /// line is sent urgent (RFC 959 4.1.3), and without it the line's last byte would be
    /// taken out of the stream.
    pub fn set_oob_inline(&mut self, conn: ConnId, on: bool) -> Result<()> {
        let (_, sock) = stream_mut!(self, conn);
        sock.set_out_of_band_inline(on).map_err(|e| IoError::sys("setsockopt(SO_OOBINLINE)", e))
    }

    /// Stops reading from `conn` (`hold`) or starts again: what the peer sends waits in the
    /// kernel, and TCP's window slows the peer down (a rate limit on uploads). Bytes already
    /// on their way from the kernel may still arrive.
    pub fn hold_reads(&mut self, conn: ConnId, hold: bool) -> Result<()> {
        let (s, _) = stream_mut!(self, conn);
        s.held = hold;
        self.table.touch(conn.index, conn.gen);
        Ok(())
    }

    /// Sets `SO_RCVBUF` (the kernel doubles it): how much a peer may send ahead of what the
    /// handler reads, and so the largest burst a paused reader ([`Ops::hold_reads`]) sees
    /// when it reads again. Set it early; it also stops the kernel's autotuning.
    pub fn set_recv_buffer(&mut self, conn: ConnId, bytes: usize) -> Result<()> {
        let (_, sock) = stream_mut!(self, conn);
        sock.set_recv_buffer_size(bytes).map_err(|e| IoError::sys("setsockopt(SO_RCVBUF)", e))
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

    /// The connection's own address (the one a client reached, for a server: an FTP server
    /// opens its passive listeners there).
    pub fn local_addr(&mut self, conn: ConnId) -> Result<SocketAddr> {
        let (_, sock) = stream_mut!(self, conn);
        let addr = sock.local_addr().map_err(|e| IoError::sys("getsockname", e))?;
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
        let file_left = s.rare.as_ref().and_then(|r| r.file.as_ref()).map(|f| f.left + f.in_pipe as u64);
        let mut stats =
            ConnStats { send_queued: s.queued(), reads_paused: s.paused, file_left, ..ConnStats::default() };
        if let Ok(info) = ring::tcp_info(sock) {
            stats.rtt = Some(Duration::from_micros(info.tcpi_rtt as u64));
            stats.rtt_var = Some(Duration::from_micros(info.tcpi_rttvar as u64));
            stats.cwnd = Some(info.tcpi_snd_cwnd);
            stats.retransmits = Some(info.tcpi_total_retrans);
        }
        Ok(stats)
    }

    // ---- UDP -------------------------------------------------------------------------------

    /// Binds a UDP socket (port 0 picks one: see [`Ops::udp_addr`]). A given port is bound
    /// with `SO_REUSEADDR` (so that several sockets can share a multicast group's port); port
    /// 0 is not, or the kernel could hand two sockets the same ephemeral port and deliver one's
    /// replies to the other. An IPv6 socket is IPv6 only (`IPV6_V6ONLY`), so `[::]` and
    /// `0.0.0.0` can share a port, each with its own family's traffic.
    pub fn udp_bind(&mut self, addr: SocketAddr) -> Result<UdpId> {
        self.udp_bind_shared(addr, false)
    }

    /// [`Ops::udp_bind`], optionally into a `SO_REUSEPORT` group (one socket per shard on one
    /// port).
    pub(crate) fn udp_bind_shared(&mut self, addr: SocketAddr, reuse_port: bool) -> Result<UdpId> {
        let sock = Socket::new(Domain::for_address(addr), Type::DGRAM.cloexec(), Some(Protocol::UDP))
            .map_err(|e| IoError::sys("socket(udp)", e))?;
        if addr.is_ipv6() {
            sock.set_only_v6(true).map_err(|e| IoError::sys("setsockopt(IPV6_V6ONLY)", e))?;
        }
        if addr.port() != 0 && !reuse_port {
            sock.set_reuse_address(true).map_err(|e| IoError::sys("setsockopt(SO_REUSEADDR)", e))?;
        }
        if reuse_port {
            sock.set_reuse_port(true).map_err(|e| IoError::sys("setsockopt(SO_REUSEPORT)", e))?;
        }
        sock.bind(&SockAddr::from(addr)).map_err(|e| IoError::sys(format!("bind udp {addr}"), e))?;
        let (index, gen) = self.insert(sock, Kind::Udp(Box::new(Udp::new())))?;
        Ok(UdpId::new(index, gen))
    }

    /// Asks the kernel to stamp each datagram the socket receives with its arrival time
    /// (`SO_TIMESTAMPNS`), reported as `Event::Datagram::received`: the moment it reached the
    /// host, not when the shard got round to it. Call it in the same handler call as
    /// [`Ops::udp_bind`], before the socket's first receive is armed.
    pub fn udp_timestamps(&mut self, udp: UdpId) -> Result<()> {
        let (u, sock) = self.udp_mut(udp)?;
        if u.recv_armed {
            return Err(IoError::NotReady(
                "receives are armed already: ask for timestamps right after udp_bind",
            ));
        }
        ring::set_timestamps(sock).map_err(|e| IoError::sys("setsockopt(SO_TIMESTAMPNS)", e))?;
        u.msghdr.msg_controllen = crate::udp::STAMP_LEN as usize;
        Ok(())
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
        match &u.relay {
            None => u.push(peer, data),
            Some(Relay { addr: Some(relay), .. }) => {
                let relay = *relay;
                u.push_relayed(relay, peer, data);
            }
            Some(_) => {
                return Err(IoError::NotReady("the SOCKS5 association is not up: wait for Event::Associated"))
            }
        }
        self.table.touch(udp.index, udp.gen);
        Ok(())
    }

    /// Joins an any-source multicast group (IPv4: on the interface with address `interface`,
    /// or any; IPv6: on interface index `ifindex`, or any).
    pub fn udp_join(&mut self, udp: UdpId, group: IpAddr, interface: Interface) -> Result<()> {
        self.membership(udp, group, interface, true)
    }

    /// Leaves an any-source multicast group.
    pub fn udp_leave(&mut self, udp: UdpId, group: IpAddr, interface: Interface) -> Result<()> {
        self.membership(udp, group, interface, false)
    }

    fn membership(&mut self, udp: UdpId, group: IpAddr, interface: Interface, join: bool) -> Result<()> {
        let (_, sock) = self.udp_mut(udp)?;
        match (group, interface, join) {
            (IpAddr::V4(g), Interface::V4(i), true) => sock.join_multicast_v4(&g, &i),
            (IpAddr::V4(g), Interface::V4(i), false) => sock.leave_multicast_v4(&g, &i),
            (IpAddr::V6(g), Interface::Index(i), true) => sock.join_multicast_v6(&g, i),
            (IpAddr::V6(g), Interface::Index(i), false) => sock.leave_multicast_v6(&g, i),
            _ => return Err(IoError::WrongKind("multicast group and interface families differ")),
        }
        .map_err(|e| {
            IoError::sys(format!("{} multicast group {group}", if join { "join" } else { "leave" }), e)
        })
    }

    /// Joins a source-specific multicast group (IPv4, RFC 4607): only `source`'s datagrams.
    pub fn udp_join_ssm(
        &mut self,
        udp: UdpId,
        group: Ipv4Addr,
        source: Ipv4Addr,
        interface: Ipv4Addr,
    ) -> Result<()> {
        self.ssm_membership(udp, group, source, interface, true)
    }

    /// Leaves a source-specific multicast group.
    pub fn udp_leave_ssm(
        &mut self,
        udp: UdpId,
        group: Ipv4Addr,
        source: Ipv4Addr,
        interface: Ipv4Addr,
    ) -> Result<()> {
        self.ssm_membership(udp, group, source, interface, false)
    }

    fn ssm_membership(
        &mut self,
        udp: UdpId,
        group: Ipv4Addr,
        source: Ipv4Addr,
        interface: Ipv4Addr,
        join: bool,
    ) -> Result<()> {
        let (_, sock) = self.udp_mut(udp)?;
        let r = if join {
            sock.join_ssm_v4(&source, &group, &interface)
        } else {
            sock.leave_ssm_v4(&source, &group, &interface)
        };
        r.map_err(|e| {
            let verb = if join { "join" } else { "leave" };
            IoError::sys(format!("{verb} source-specific group {group} from {source}"), e)
        })
    }

    /// Sets the interface and loopback of outgoing IPv4 multicast.
    pub fn udp_multicast_v4(&mut self, udp: UdpId, interface: Ipv4Addr, loopback: bool) -> Result<()> {
        let (_, sock) = self.udp_mut(udp)?;
        sock.set_multicast_if_v4(&interface).map_err(|e| IoError::sys("setsockopt(IP_MULTICAST_IF)", e))?;
        sock.set_multicast_loop_v4(loopback).map_err(|e| IoError::sys("setsockopt(IP_MULTICAST_LOOP)", e))
    }

    /// Sets the interface (by index) and loopback of outgoing IPv6 multicast.
    pub fn udp_multicast_v6(&mut self, udp: UdpId, ifindex: u32, loopback: bool) -> Result<()> {
        let (_, sock) = self.udp_mut(udp)?;
        sock.set_multicast_if_v6(ifindex).map_err(|e| IoError::sys("setsockopt(IPV6_MULTICAST_IF)", e))?;
        sock.set_multicast_loop_v6(loopback).map_err(|e| IoError::sys("setsockopt(IPV6_MULTICAST_LOOP)", e))
    }

    /// Closes a UDP socket.
    pub fn close_udp(&mut self, udp: UdpId) -> Result<()> {
        let control = self.udp_mut(udp)?.0.relay.as_ref().map(|r| r.control);
        self.release(udp.index, udp.gen, CloseReason::Local);
        if let Some(control) = control {
            self.release(control.index, control.gen, CloseReason::Local);
        }
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
    pub(crate) fn release(&mut self, index: u32, gen: u32, reason: CloseReason) {
        let Some(slot) = self.table.get_mut(index, gen) else {
            return;
        };
        if slot.life != Life::Live {
            return;
        }
        slot.life = Life::Releasing { cancel_sent: false };
        if let Kind::Stream(s) = &mut slot.kind {
            for t in s.take_deadlines() {
                self.timers.cancel(t);
            }
            s.rare().close_reason = reason;
        }
        if slot.inflight == 0 {
            self.finish(index);
        } else {
            self.table.touch(index, gen);
        }
    }

    /// Frees a released slot, or hands out a detaching stream, once the kernel holds nothing
    /// of it (one lookup per completion).
    pub(crate) fn finish_if_done(&mut self, index: u32, gen: u32) {
        let Some(slot) = self.table.get_mut(index, gen).filter(|s| s.inflight == 0) else { return };
        match (&slot.life, &slot.kind) {
            (Life::Releasing { .. }, _) => self.finish(index),
            (Life::Live, Kind::Stream(s)) if s.detach_ready() => self.finish_detach(index),
            _ => {}
        }
    }

    pub(crate) fn finish(&mut self, index: u32) {
        let Some((gen, slot)) = self.table.remove(index) else {
            return;
        };
        // Dropping the slot closes the socket; the kernel holds nothing of it any more.
        let Kind::Stream(mut s) = slot.kind else {
            if matches!(&slot.kind, Kind::Udp(u) if u.quic) {
                self.quic.remove_endpoint(UdpId::new(index, gen), &mut self.events);
            }
            return;
        };
        let conn = ConnId::new(index, gen);
        let rare = s.take_rare();
        if let Some(udp) = rare.relay_for {
            let error = rare.failure.unwrap_or_else(|| {
                IoError::HandshakeLost(
                    "the SOCKS5 proxy closed the connection holding the association".into(),
                )
            });
            self.association_lost(udp, error);
            return;
        }
        let raw = match s.owed {
            Some(owed @ (Owed::Connected | Owed::Accepted(_))) => {
                if rare.failure.is_none() && rare.close_reason == CloseReason::Local {
                    return; // the handler closed it itself
                }
                let error = rare
                    .failure
                    .unwrap_or_else(|| IoError::HandshakeLost(format!("{:?}", rare.close_reason)));
                match owed {
                    Owed::Accepted(listener) => Raw::HandshakeFailed { listener, error },
                    _ => Raw::ConnectFailed { conn, error },
                }
            }
            // Known to the handler (an upgrade may still be owed).
            _ => Raw::Closed { conn, reason: rare.close_reason },
        };
        self.events.push_back(raw);
    }

    /// Takes a detaching stream out of the table (the caller checked it is ready).
    fn finish_detach(&mut self, index: u32) {
        let Some((gen, Slot { sock, kind: Kind::Stream(mut s), .. })) = self.table.remove(index) else {
            return;
        };
        for t in s.take_deadlines() {
            self.timers.cancel(t);
        }
        let stream = DetachedStream { sock, tls: s.tls.take(), ws: s.ws.take() };
        self.events.push_back(Raw::Detached { conn: ConnId::new(index, gen), stream });
    }

    /// The handshakes are done: cancel the TLS deadline and make the announcement owed.
    pub(crate) fn settle(&mut self, conn: ConnId) {
        let Some(slot) = self.table.live_mut(conn.index, conn.gen) else {
            return;
        };
        let Kind::Stream(s) = &mut slot.kind else {
            return;
        };
        // Announced once every layer's handshake is done (TLS, then WebSocket).
        if !s.tls.as_ref().is_none_or(|t| t.is_established())
            || !s.ws.as_ref().is_none_or(|w| w.is_established())
        {
            return;
        }
        let deadlines =
            [s.tls.as_mut().and_then(|t| t.deadline.take()), s.ws.as_mut().and_then(|w| w.deadline.take())];
        for t in deadlines.into_iter().flatten() {
            self.timers.cancel(t);
        }
        let raw = match s.owed.take() {
            Some(Owed::Accepted(listener)) => Raw::Accepted { conn, listener },
            Some(Owed::Connected) => Raw::Connected { conn },
            Some(Owed::Upgraded) => Raw::Upgraded { conn },
            None => return,
        };
        self.events.push_back(raw);
    }

    /// The peer finished sending and the connection is not half-open: close it gracefully.
    pub(crate) fn peer_finished(&mut self, conn: ConnId, truncated: bool) {
        let reason = if truncated { CloseReason::Truncated } else { CloseReason::PeerClosed };
        self.begin_close(conn, reason);
    }

    /// Starts a graceful close of an open stream: flush, FIN, then wait for the peer's FIN
    /// until the linger deadline (`submit.rs` finishes it).
    pub(crate) fn begin_close(&mut self, conn: ConnId, reason: CloseReason) {
        let deadline = self.now + self.config.close_linger;
        let Some(Slot { kind: Kind::Stream(s), .. }) = self.table.touch_live(conn.index, conn.gen) else {
            return;
        };
        if s.phase == Phase::Open {
            s.phase = Phase::Closing;
            if let CloseReason::Local | CloseReason::PeerClosed = &reason {
                s.ws_transmit(Some(crate::ws::NORMAL_CLOSURE));
                if let Some(tls) = &mut s.tls {
                    tls.close_notify(s.send.pending());
                }
            }
            let linger = self.timers.insert(deadline, TimerKind::Linger { index: conn.index, gen: conn.gen });
            let rare = s.rare();
            rare.close_reason = reason;
            rare.linger = Some(linger);
        }
    }
}

/// The interface for a multicast membership.
#[derive(Debug, Clone, Copy)]
pub enum Interface {
    /// IPv4: the interface with this address (`0.0.0.0` for the default).
    V4(Ipv4Addr),
    /// IPv6: the interface with this index (0 for the default).
    Index(u32),
}

/// A connection's send queue opened for direct encoding: bytes appended here are sent at the
/// end of the tick with everything else queued for the connection.
pub struct SendBuffer<'a> {
    buf: &'a mut Vec<u8>,
}

impl<'a> SendBuffer<'a> {
    /// The queue itself, for encoders that write into a `&mut Vec<u8>`.
    pub fn into_vec(self) -> &'a mut Vec<u8> {
        self.buf
    }
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
