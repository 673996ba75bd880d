//! The state of one stream connection (TCP or Unix): its receive arming, its bounded send
//! queue and where it is in its close.

use std::time::Duration;

use io_uring::types::Timespec;
use socket2::{SockAddr, Socket};

use crate::error::IoError;
use crate::id::{ListenerId, UdpId};
use crate::socks5::Handshake;
use crate::timer::TimerId;
use crate::tls::{Session, TlsError};

/// Why a connection closed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CloseReason {
    /// This side closed it (`close` or `close_now`).
    #[default]
    Local,
    /// The peer finished sending and the connection was closed in turn.
    PeerClosed,
    /// The peer ended a TLS connection with a bare TCP FIN, no `close_notify`: what it sent
    /// may have been cut short by someone in between (RFC 8446 6.1), so it is not a clean
    /// end (an FTPS upload does not count, RFC 4217 7).
    Truncated,
    /// The peer reset the connection (`ECONNRESET`, `EPIPE`).
    Reset,
    /// The send queue stayed full past the slow-consumer deadline.
    SlowConsumer,
    /// A graceful close did not finish (flush and peer FIN) within `Config::close_linger`.
    LingerExpired,
    /// Another socket error, as an errno value.
    Error(i32),
    /// The TLS session failed (a STARTTLS handshake, or a record that did not verify).
    Tls(TlsError),
    /// The WebSocket layer failed: a refused upgrade, or a frame that broke the protocol
    /// (the peer was sent the close code that says why).
    WebSocket(crate::ws::WsError),
}

impl CloseReason {
    pub(crate) fn from_errno(errno: i32) -> CloseReason {
        match errno {
            libc::ECONNRESET | libc::EPIPE | libc::ECONNABORTED => CloseReason::Reset,
            e => CloseReason::Error(e),
        }
    }
}

/// What a connection does when its peer does not read and its send queue fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlowConsumer {
    /// Stop reading from the peer and refuse sends (`IoError::SendQueueFull`) until the queue
    /// drains to half its limit; then `Event::Writable`.
    Pause,
    /// As `Pause`, and close the connection (`CloseReason::SlowConsumer`) if the queue has not
    /// drained within `after`.
    Disconnect {
        /// How long a connection may stay full.
        after: Duration,
    },
}

/// Outbound data: `pending` collects this tick's writes, `flight` is owned by the kernel while
/// a send is in flight. The two buffers trade places and keep their capacity, so steady-state
/// sends do not allocate. They live in one box made on the first write, so a connection that
/// never sends costs a pointer; `Config::free_idle_send_buffers` also frees the box whenever
/// the queue empties.
#[derive(Default)]
pub(crate) struct SendQueue(Option<Box<Buffers>>);

#[derive(Default)]
struct Buffers {
    pending: Vec<u8>,
    flight: Vec<u8>,
    /// Bytes of `flight` already sent.
    sent: usize,
    /// A send of `flight[sent..]` is in the kernel.
    busy: bool,
}

/// Capacity a drained buffer may keep; larger ones shrink back so one burst does not pin memory.
const KEEP_CAPACITY: usize = 256 * 1024;

impl SendQueue {
    /// Where this tick's writes go.
    pub fn pending(&mut self) -> &mut Vec<u8> {
        &mut self.0.get_or_insert_with(Box::default).pending
    }

    /// Bytes accepted but not yet sent.
    pub fn queued(&self) -> usize {
        self.0.as_ref().map_or(0, |b| b.pending.len() + b.flight.len() - b.sent)
    }

    /// Whether the queue has reached `limit`: no more sends until it drains.
    pub fn is_full(&self, limit: usize) -> bool {
        self.queued() >= limit
    }

    /// Whether a send is in the kernel.
    pub fn busy(&self) -> bool {
        self.0.as_ref().is_some_and(|b| b.busy)
    }

    /// Records a failed (or cancelled) send.
    pub fn failed(&mut self) {
        if let Some(b) = &mut self.0 {
            b.busy = false;
        }
    }

    /// Moves pending bytes into flight if nothing is in flight; returns what to send next.
    pub fn next_flight(&mut self) -> Option<&[u8]> {
        let b = self.0.as_mut()?;
        if b.busy {
            return None;
        }
        if b.sent == b.flight.len() {
            b.flight.clear();
            b.sent = 0;
            if b.pending.is_empty() {
                return None;
            }
            std::mem::swap(&mut b.pending, &mut b.flight);
        }
        b.busy = true;
        Some(&b.flight[b.sent..])
    }

    /// Records a completed send of `n` bytes; `free_idle`: free the buffers if nothing is left.
    pub fn sent(&mut self, n: usize, free_idle: bool) {
        let Some(b) = &mut self.0 else { return };
        b.busy = false;
        b.sent += n;
        if b.sent == b.flight.len() {
            if free_idle && b.pending.is_empty() {
                self.0 = None;
                return;
            }
            b.sent = 0;
            b.flight.clear();
            b.flight.shrink_to(KEEP_CAPACITY);
        }
    }
}

/// An outbound connect in progress; boxed in the slot so the kernel's pointers stay valid.
pub(crate) struct Connecting {
    pub addr: SockAddr,
    pub timeout: Duration,
    /// `timeout` as io_uring's linked timeout reads it, kept here until the submission.
    pub timespec: Timespec,
    pub submitted: bool,
}

/// What the handler is owed once a connection's handshakes (SOCKS5, TLS) end: the event that
/// introduces it, or on failure `ConnectFailed` / `HandshakeFailed` / `Closed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owed {
    /// `Event::Accepted` (a TLS listener's connection).
    Accepted(ListenerId),
    /// `Event::Connected`.
    Connected,
    /// `Event::Upgraded` (STARTTLS).
    Upgraded,
}

/// Where a stream is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Connecting,
    Open,
    /// Flushing, then FIN, then waiting for the peer's FIN (bounded by the linger timer).
    Closing,
}

/// One stream connection.
pub(crate) struct Stream {
    pub phase: Phase,
    pub listener: Option<ListenerId>,
    pub send: SendQueue,
    pub recv_armed: bool,
    pub recv_cancelled: bool,
    /// Reads stopped because the send queue is full.
    pub paused: bool,
    /// Reads stopped by the handler (`Ops::hold_reads`: a rate limit, say).
    pub held: bool,
    /// The last receive ended for lack of pool slots; re-arm when slots return.
    pub starved: bool,
    pub read_closed: bool,
    pub write_closed: bool,
    /// Send FIN once the queue is empty (half-close or close).
    pub want_fin: bool,
    /// The send queue hit its limit; `Event::Writable` is owed when it drains.
    pub blocked: bool,
    /// The announcement still due (see [`Owed`]); `None` once the handler has it.
    pub owed: Option<Owed>,
    /// The TLS layer, if any.
    pub tls: Option<Box<Session>>,
    /// The WebSocket layer (over TLS if both), if any.
    pub ws: Option<Box<crate::ws::Session>>,
    /// Being handed to another shard (`Ops::detach`): receives stop, sends drain.
    pub detaching: bool,
    /// What only connecting, closing, stalled, failed or proxied connections need.
    pub rare: Option<Box<Rare>>,
}

/// The part of a stream's state that an open, healthy connection does not need. Boxed and
/// made on first use, so the many idle connections of a server do not carry it.
#[derive(Default)]
pub(crate) struct Rare {
    /// The outbound connect (boxed on its own: the kernel reads its address).
    pub connecting: Option<Box<Connecting>>,
    /// The SOCKS5 handshake while it runs.
    pub socks: Option<Box<Handshake>>,
    /// The graceful close's deadline.
    pub linger: Option<TimerId>,
    /// The slow-consumer deadline.
    pub stall: Option<TimerId>,
    /// Why the connection is closing, reported in `Event::Closed`.
    pub close_reason: CloseReason,
    /// Why a connection the handler does not know yet failed (reported by `finish`).
    pub failure: Option<IoError>,
    /// The UDP endpoint whose SOCKS5 association this connection holds open.
    pub relay_for: Option<UdpId>,
    /// A file being sent (`Ops::send_file`).
    pub file: Option<Box<FileSend>>,
}

/// A file going out through a pipe: spliced in from the file, then out to the socket, a pipe
/// at a time, one operation in flight.
pub(crate) struct FileSend {
    pub file: std::os::fd::OwnedFd,
    pub offset: u64,
    /// Bytes of the file still to splice in.
    pub left: u64,
    pub pipe_r: std::os::fd::OwnedFd,
    pub pipe_w: std::os::fd::OwnedFd,
    pub pipe_size: usize,
    /// Bytes in the pipe, still to splice out.
    pub in_pipe: usize,
    pub busy: bool,
}

/// An open connection taken out of one shard (`Event::Detached`) to be adopted by another
/// (`Ops::attach`), with its TLS session: how a connection moves to the shard that owns its
/// state.
pub struct DetachedStream {
    pub(crate) sock: Socket,
    pub(crate) tls: Option<Box<Session>>,
    pub(crate) ws: Option<Box<crate::ws::Session>>,
}

impl DetachedStream {
    /// The peer's address (TCP only).
    pub fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        self.sock.peer_addr().ok().and_then(|a| a.as_socket())
    }
}

impl std::fmt::Debug for DetachedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DetachedStream")
            .field("peer", &self.peer_addr())
            .field("tls", &self.tls.is_some())
            .field("ws", &self.ws.is_some())
            .finish()
    }
}

impl Stream {
    pub fn new(phase: Phase, listener: Option<ListenerId>) -> Stream {
        Stream {
            phase,
            listener,
            send: SendQueue::default(),
            recv_armed: false,
            recv_cancelled: false,
            paused: false,
            held: false,
            starved: false,
            read_closed: false,
            write_closed: false,
            want_fin: false,
            blocked: false,
            owed: None,
            tls: None,
            ws: None,
            detaching: false,
            rare: None,
        }
    }

    /// The rare state, made on first use.
    pub fn rare(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    /// Whether a file is being sent (`Ops::send_file`).
    pub fn sending_file(&self) -> bool {
        self.rare.as_ref().is_some_and(|r| r.file.is_some())
    }

    /// Takes the rare state (for a stream leaving the table).
    pub fn take_rare(&mut self) -> Rare {
        self.rare.take().map_or_else(Rare::default, |r| *r)
    }

    /// Why the connection is closing.
    pub fn close_reason(&self) -> CloseReason {
        self.rare.as_ref().map_or(CloseReason::Local, |r| r.close_reason.clone())
    }

    /// Whether a SOCKS5 handshake owns the connection.
    pub fn in_socks(&self) -> bool {
        self.rare.as_ref().is_some_and(|r| r.socks.is_some())
    }

    /// The UDP endpoint whose SOCKS5 association this connection holds open.
    pub fn relay_for(&self) -> Option<UdpId> {
        self.rare.as_ref().and_then(|r| r.relay_for)
    }

    /// Records why a connection the handler does not know yet failed.
    pub fn fail(&mut self, error: IoError) {
        self.rare().failure = Some(error);
    }

    /// Takes the slow-consumer deadline, for cancelling.
    pub fn take_stall(&mut self) -> Option<TimerId> {
        self.rare.as_mut().and_then(|r| r.stall.take())
    }

    /// Takes the linger and stall deadlines, for cancelling.
    pub fn take_deadlines(&mut self) -> impl Iterator<Item = TimerId> {
        let r = self.rare.as_mut();
        let (linger, stall) = r.map_or((None, None), |r| (r.linger.take(), r.stall.take()));
        linger.into_iter().chain(stall)
    }

    /// Moves what the WebSocket layer has to send into the layer below it (TLS, else the
    /// send queue); with `close`, the staged data and then a close frame with that code.
    pub fn ws_transmit(&mut self, close: Option<u16>) {
        let Some(ws) = &mut self.ws else { return };
        let out = match &mut self.tls {
            Some(tls) => &mut tls.staged,
            None => self.send.pending(),
        };
        match close {
            Some(code) => ws.close(code, out),
            None => ws.transmit(out),
        }
    }

    /// Bytes accepted by `send` and not yet handed to the kernel (TLS plaintext included).
    pub fn queued(&self) -> usize {
        self.send.queued()
            + self.tls.as_ref().map_or(0, |t| t.staged.len())
            + self.ws.as_ref().map_or(0, |w| w.staged.len())
    }

    /// Marks the stream blocked (reads paused) once its queue is full; true if it just became so.
    pub fn block_if_full(&mut self, limit: usize) -> bool {
        if self.blocked || !self.send.is_full(limit) {
            return false;
        }
        self.blocked = true;
        self.paused = true;
        true
    }

    /// Unblocks the stream once its queue has drained to half the limit; true if it just did
    /// (then `Event::Writable` is owed).
    pub fn unblock_if_drained(&mut self, limit: usize) -> bool {
        if !self.blocked || self.send.queued() > limit / 2 {
            return false;
        }
        self.blocked = false;
        self.paused = false;
        true
    }

    /// Whether a detaching stream is ready to leave: nothing in the kernel's hands on its
    /// side (receive stopped, everything sent).
    pub fn detach_ready(&self) -> bool {
        self.detaching
            && self.phase == Phase::Open
            && !self.recv_armed
            && !self.send.busy()
            && self.queued() == 0
    }

    /// Whether a graceful close is complete: FIN sent and the peer's FIN received.
    pub fn close_complete(&self) -> bool {
        self.phase == Phase::Closing && self.write_closed && self.read_closed
    }

    /// Whether a multishot receive should be armed now.
    pub fn wants_recv(&self) -> bool {
        !self.recv_armed
            && !self.paused
            && !self.held
            && !self.detaching
            && !self.starved
            && !self.read_closed
            && matches!(self.phase, Phase::Open | Phase::Closing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_queue_double_buffers_and_keeps_order() {
        let mut q = SendQueue::default();
        q.pending().extend_from_slice(b"hello ");
        assert_eq!(q.next_flight(), Some(&b"hello "[..]));
        assert_eq!(q.next_flight(), None, "one send in flight at a time");
        q.pending().extend_from_slice(b"world");
        assert_eq!(q.queued(), 11);
        q.sent(3, false); // partial send
        assert_eq!(q.queued(), 8);
        assert_eq!(q.next_flight(), Some(&b"lo "[..]));
        q.sent(3, false);
        assert_eq!(q.next_flight(), Some(&b"world"[..]));
        q.sent(5, false);
        assert_eq!(q.queued(), 0);
        assert_eq!(q.next_flight(), None);
    }

    #[test]
    fn drained_buffers_shrink() {
        let mut q = SendQueue::default();
        q.pending().resize(4 * KEEP_CAPACITY, 0);
        let n = q.next_flight().unwrap().len();
        q.sent(n, false);
        assert!(q.0.unwrap().flight.capacity() <= KEEP_CAPACITY);
    }

    #[test]
    fn idle_queue_frees_its_buffers_when_asked() {
        let mut q = SendQueue::default();
        q.pending().extend_from_slice(b"hello");
        let n = q.next_flight().unwrap().len();
        q.sent(n, false);
        assert!(q.0.as_ref().is_some_and(|b| b.flight.capacity() > 0), "kept for the next send");
        q.pending().extend_from_slice(b"hello");
        let n = q.next_flight().unwrap().len();
        q.sent(n, true);
        assert!(q.0.is_none());
    }
}
