//! The kernel boundary: the operations zero-core asks of the kernel, behind one [`Ring`] with
//! two kernels, and the few raw system calls (fd adoption, eventfd, `TCP_INFO`) that have no
//! safe wrapper.
//!
//! - `uring`: io_uring, each operation one submission;
//! - `epoll`: the fallback where a ring cannot be set up, which performs the same operations
//!   with readiness and plain system calls and posts the completions io_uring would post.
//!
//! This module and `pool` are the only places with `unsafe`. Every submission method here is
//! safe to call because of one crate-wide rule, stated once: memory handed to the kernel (a send
//! buffer, a socket address, a message header, the wake counter) is owned by a socket slot or
//! by [`Ring`] itself, is never moved or freed while the slot has operations in flight, and
//! slots are released only after their last completion (`Table::release` checks `inflight`).

mod epoll;
mod uring;

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use io_uring::types::{BufRingEntry, Timespec};
use socket2::{SockAddr, Socket};

use crate::config::Backend;
use crate::error::{IoError, Result};

/// What a submitted operation was, carried in the top byte of its `user_data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Op {
    Accept = 1,
    Recv,
    Send,
    Connect,
    ConnectTimeout,
    Cancel,
    Wake,
    RecvMsg,
    SendTo,
    /// A file's bytes into a stream's pipe (`Ops::send_file`).
    SpliceIn,
    /// The pipe's bytes into the socket.
    SpliceOut,
}

impl Op {
    fn from_u8(v: u8) -> Option<Op> {
        Some(match v {
            1 => Op::Accept,
            2 => Op::Recv,
            3 => Op::Send,
            4 => Op::Connect,
            5 => Op::ConnectTimeout,
            6 => Op::Cancel,
            7 => Op::Wake,
            8 => Op::RecvMsg,
            9 => Op::SendTo,
            10 => Op::SpliceIn,
            11 => Op::SpliceOut,
            _ => return None,
        })
    }
}

/// The `user_data` of a submission: the operation, and the slot (index and generation) it
/// belongs to. The generation is truncated to 24 bits, enough to tell a late completion from a
/// slot's next occupant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    pub op: Op,
    pub index: u32,
    pub gen: u32,
}

impl Token {
    pub const GEN_MASK: u32 = 0xFF_FFFF;

    pub fn new(op: Op, index: u32, gen: u32) -> Token {
        Token { op, index, gen: gen & Self::GEN_MASK }
    }

    fn encode(self) -> u64 {
        (self.op as u64) << 56 | (self.gen as u64) << 32 | self.index as u64
    }

    fn decode(v: u64) -> Option<Token> {
        Some(Token {
            op: Op::from_u8((v >> 56) as u8)?,
            gen: ((v >> 32) as u32) & Self::GEN_MASK,
            index: v as u32,
        })
    }
}

/// One completion, decoded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Completion {
    pub token: Token,
    pub result: i32,
    pub flags: u32,
}

impl Completion {
    /// `IORING_CQE_F_BUFFER`: the upper 16 bits of the flags name the buffer filled.
    const BUFFER: u32 = 1 << 0;
    /// `IORING_CQE_F_MORE`: the multishot submission goes on.
    const MORE: u32 = 1 << 1;
    const BUFFER_SHIFT: u32 = 16;

    /// More completions will follow for this (multishot) submission.
    pub fn more(&self) -> bool {
        self.flags & Self::MORE != 0
    }

    /// The provided buffer the kernel filled, if any.
    pub fn buffer(&self) -> Option<u16> {
        (self.flags & Self::BUFFER != 0).then_some((self.flags >> Self::BUFFER_SHIFT) as u16)
    }
}

/// A shard's kernel interface: io_uring, or its epoll emulation.
pub(crate) enum Ring {
    Uring(uring::Uring),
    Epoll(epoll::Epoll),
}

/// Dispatches a call to whichever kernel the ring is.
macro_rules! each {
    ($self:ident . $call:ident ( $($arg:expr),* )) => {
        match $self {
            Ring::Uring(k) => k.$call($($arg),*),
            Ring::Epoll(k) => k.$call($($arg),*),
        }
    };
}

static FALLBACK_LOGGED: AtomicBool = AtomicBool::new(false);

impl Ring {
    /// Sets up the kernel `backend` names (`Auto` must be resolved by the caller).
    /// `defer`: see `Uring::new` (io_uring only).
    pub fn new(backend: Backend, entries: u32, defer: bool) -> Result<Ring> {
        match backend {
            Backend::Epoll => Ok(Ring::Epoll(epoll::Epoll::new()?)),
            _ => Ok(Ring::Uring(uring::Uring::new(entries, defer)?)),
        }
    }

    /// Logs, once per process, why a shard runs on epoll instead of io_uring.
    pub fn log_fallback(reason: &IoError) {
        if !FALLBACK_LOGGED.swap(true, Ordering::Relaxed) {
            tracing::warn!(error = %reason, "io_uring is unavailable; shards run on the epoll fallback");
        }
    }

    /// Which kernel this is.
    pub fn backend(&self) -> Backend {
        match self {
            Ring::Uring(_) => Backend::IoUring,
            Ring::Epoll(_) => Backend::Epoll,
        }
    }

    /// Lends the kernel the provided-buffer ring at `base` as buffer group `group`.
    ///
    /// # Safety
    /// `base` must point at `entries` page-aligned entries that outlive this ring.
    pub unsafe fn register_buf_ring(
        &mut self,
        base: *mut BufRingEntry,
        entries: u16,
        group: u16,
    ) -> Result<()> {
        // SAFETY: forwarded from the caller.
        unsafe { each!(self.register_buf_ring(base, entries, group)) }
    }

    /// Arms a multishot accept on a listening socket.
    pub fn accept_multi(&mut self, fd: RawFd, token: Token) -> Result<()> {
        each!(self.accept_multi(fd, token))
    }

    /// Arms a multishot receive into the provided buffer group `group`.
    pub fn recv_multi(&mut self, fd: RawFd, group: u16, token: Token) -> Result<()> {
        each!(self.recv_multi(fd, group, token))
    }

    /// Arms a multishot `recvmsg` (datagrams with their source address) into group `group`.
    /// `msg` must stay valid until the final completion (it is owned by the socket slot).
    pub fn recvmsg_multi(&mut self, fd: RawFd, msg: &libc::msghdr, group: u16, token: Token) -> Result<()> {
        each!(self.recvmsg_multi(fd, msg, group, token))
    }

    /// Sends `buf`, which must stay valid until the completion (owned by the slot's send queue).
    pub fn send(&mut self, fd: RawFd, buf: &[u8], token: Token) -> Result<()> {
        each!(self.send(fd, buf, token))
    }

    /// Moves up to `len` bytes from `from` (at `offset`, or the pipe's own position when
    /// `None`) to `to`, through the kernel: no copy in user space. Both descriptors are owned
    /// by the slot until the completion.
    pub fn splice(
        &mut self,
        from: RawFd,
        offset: Option<u64>,
        to: RawFd,
        len: u32,
        token: Token,
    ) -> Result<()> {
        each!(self.splice(from, offset, to, len, token))
    }

    /// Sends the datagram `buf` to `addr`; both must stay valid until the completion.
    pub fn send_to(&mut self, fd: RawFd, buf: &[u8], addr: &SockAddr, token: Token) -> Result<()> {
        each!(self.send_to(fd, buf, addr, token))
    }

    /// Sends the message `msg` describes (a UDP datagram with control messages: GSO); `msg`
    /// and everything it points to must stay valid until the completion, which comes as
    /// `Op::SendTo`'s does.
    pub fn send_msg(&mut self, fd: RawFd, msg: &libc::msghdr, token: Token) -> Result<()> {
        each!(self.send_msg(fd, msg, token))
    }

    /// Starts a connect to `addr` (owned by the slot), given up after `timeout` (the same
    /// deadline as `timespec`, which the slot keeps for io_uring's linked timeout): completes
    /// as `Op::Connect` and `Op::ConnectTimeout`, one of them `-ECANCELED`.
    pub fn connect(
        &mut self,
        fd: RawFd,
        addr: &SockAddr,
        timeout: (Duration, &Timespec),
        index: u32,
        gen: u32,
    ) -> Result<()> {
        each!(self.connect(fd, addr, timeout, index, gen))
    }

    /// Cancels every operation in flight on `fd`.
    pub fn cancel_fd(&mut self, fd: RawFd, token: Token) -> Result<()> {
        each!(self.cancel_fd(fd, token))
    }

    /// Cancels the operation submitted on `fd` with `target`.
    pub fn cancel(&mut self, fd: RawFd, target: Token, token: Token) -> Result<()> {
        each!(self.cancel(fd, target, token))
    }

    /// Arms an 8-byte read of the wake eventfd into the ring's own counter.
    pub fn read_wake(&mut self, fd: RawFd) -> Result<()> {
        each!(self.read_wake(fd))
    }

    /// Whether completions are waiting to be reaped.
    pub fn ready(&mut self) -> bool {
        each!(self.ready())
    }

    /// Submits what is queued and waits up to `timeout` for a completion, then up to `window`
    /// more for `want` (where the kernel has `min_wait`; otherwise as `submit_and_wait(1, ..)`).
    pub fn submit_and_wait_batched(
        &mut self,
        want: usize,
        timeout: Option<Duration>,
        window: Duration,
    ) -> Result<()> {
        match self {
            Ring::Uring(r) => r.submit_and_wait_batched(want, timeout, window),
            Ring::Epoll(r) => r.submit_and_wait(1, timeout),
        }
    }

    /// Submits what is queued and waits up to `timeout` for at least `want` completions.
    pub fn submit_and_wait(&mut self, want: usize, timeout: Option<Duration>) -> Result<()> {
        each!(self.submit_and_wait(want, timeout))
    }

    /// Moves up to `max` ready completions into `out`.
    pub fn reap(&mut self, out: &mut Vec<Completion>, max: usize) {
        each!(self.reap(out, max))
    }

    /// A descriptor readable when the kernel has work for this ring (see `Io::wait_fd`).
    /// (A duplicate, owned by the caller.)
    pub fn notify_fd(&mut self) -> Result<OwnedFd> {
        let dup = match self {
            Ring::Uring(k) => k.notify_fd()?.try_clone().map(OwnedFd::from),
            Ring::Epoll(k) => k.fd().try_clone(),
        };
        dup.map_err(|e| IoError::sys("dup", e))
    }

    /// Clears the notification descriptor's readiness (io_uring's eventfd; epoll's clears by
    /// itself as events are taken).
    pub fn ack_notify(&mut self) {
        if let Ring::Uring(k) = self {
            k.ack_notify()
        }
    }

    /// Never frees the wake counter: for a shutdown in which the kernel may still write to it.
    pub fn leak_wake_buf(&mut self) {
        if let Ring::Uring(k) = self {
            k.leak_wake_buf()
        }
    }
}

/// The running kernel's release, for error messages.
pub(crate) fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Takes ownership of a descriptor the kernel returned in a completion (an accepted socket).
pub(crate) fn adopt_socket(fd: i32) -> Socket {
    // SAFETY: `fd` comes from a successful accept completion; nobody else owns it.
    unsafe { Socket::from_raw_fd(fd) }
}

/// Creates a non-blocking, close-on-exec eventfd.
/// A pipe for splicing a file into a socket, grown to `size` bytes where the system allows
/// (`F_SETPIPE_SZ`; the default is 64 KiB); returns (read end, write end, its size).
pub(crate) fn splice_pipe(size: usize) -> Result<(OwnedFd, OwnedFd, usize)> {
    let (r, w) = io::pipe().map_err(|e| IoError::sys("pipe", e))?;
    let (r, w): (OwnedFd, OwnedFd) = (r.into(), w.into());
    // SAFETY: fcntl on a descriptor this function owns, with integer arguments only.
    let got = unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, size as libc::c_int) };
    // SAFETY: as above.
    let now = if got > 0 { got } else { unsafe { libc::fcntl(w.as_raw_fd(), libc::F_GETPIPE_SZ) } };
    Ok((r, w, usize::try_from(now).unwrap_or(65_536).max(4096)))
}

pub(crate) fn eventfd() -> Result<OwnedFd> {
    // SAFETY: plain system call with no pointer arguments.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(IoError::sys("eventfd", io::Error::last_os_error()));
    }
    // SAFETY: `fd` was just created and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Pins the calling thread to one CPU.
pub(crate) fn pin_to_cpu(cpu: usize) -> Result<()> {
    // SAFETY: cpu_set_t is plain old data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET bounds-checks `cpu` against the set's size.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size given; pid 0 is the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc < 0 {
        return Err(IoError::sys(format!("sched_setaffinity(cpu {cpu})"), io::Error::last_os_error()));
    }
    Ok(())
}

/// Turns on `SO_TIMESTAMPNS`: the kernel stamps each datagram with the wall-clock time it
/// arrived, in a control message.
/// Attaches a classic BPF program that picks, for each datagram, the socket of `sock`'s
/// `SO_REUSEPORT` group that receives it (`SO_ATTACH_REUSEPORT_CBPF`; the program sees the
/// UDP payload and returns an index into the group, in the order its sockets were bound).
pub(crate) fn attach_reuseport_cbpf(sock: &Socket, program: &[libc::sock_filter]) -> io::Result<()> {
    let prog =
        libc::sock_fprog { len: program.len() as u16, filter: program.as_ptr() as *mut libc::sock_filter };
    // SAFETY: `prog` points at `program`, valid for its length; the kernel copies it.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_REUSEPORT_CBPF,
            (&prog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub(crate) fn set_timestamps(sock: &Socket) -> io::Result<()> {
    set_int(sock, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)
}

/// Path MTU discovery by probing (`IP_PMTUDISC_PROBE`): datagrams are sent unfragmented, with
/// the don't-fragment bit, whatever the kernel's idea of the path MTU; QUIC finds it itself.
pub(crate) fn set_mtu_probe(sock: &Socket, ipv6: bool) -> io::Result<()> {
    match ipv6 {
        false => set_int(sock, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, libc::IP_PMTUDISC_PROBE),
        true => set_int(sock, libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER, libc::IPV6_PMTUDISC_PROBE),
    }
}

/// Sets an integer socket option.
fn set_int(sock: &Socket, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: `value` is a valid c_int for reads of the size given.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A socket option's value, for the plain-old-data types the kernel fills (a `c_int`,
/// `ucred`, `tcp_info`: all-zero is a valid value of each).
trait SockOpt: Copy {}
impl SockOpt for libc::c_int {}
impl SockOpt for libc::ucred {}
impl SockOpt for libc::tcp_info {}

/// Reads socket option `name` at `level`.
fn getsockopt<T: SockOpt>(fd: RawFd, level: libc::c_int, name: libc::c_int) -> io::Result<T> {
    // SAFETY: `SockOpt` types are plain old data; all-zero is a valid value.
    let mut value: T = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid for writes of the sizes given.
    let rc = unsafe { libc::getsockopt(fd, level, name, (&mut value as *mut T).cast(), &mut len) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value)
}

/// The process and user at the other end of a Unix socket (`SO_PEERCRED`): (pid, uid).
pub(crate) fn peer_credentials(fd: RawFd) -> io::Result<(i32, u32)> {
    let cred: libc::ucred = getsockopt(fd, libc::SOL_SOCKET, libc::SO_PEERCRED)?;
    Ok((cred.pid, cred.uid))
}

/// `SO_ERROR`: a socket's pending error (0 for none).
pub(crate) fn socket_error(fd: RawFd) -> io::Result<libc::c_int> {
    getsockopt(fd, libc::SOL_SOCKET, libc::SO_ERROR)
}

/// Registers `fd` (owned from here on) with the current Tokio reactor, for readability.
#[cfg(feature = "tokio")]
pub(crate) fn tokio_watch(fd: OwnedFd) -> io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: the AsyncFd owns `fd`, so it stays open and names the same file description for
    // the AsyncFd's whole life.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(io::Error::from)
}

/// Reads `TCP_INFO` for a connected TCP socket.
pub(crate) fn tcp_info(sock: &Socket) -> io::Result<libc::tcp_info> {
    getsockopt(sock.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_INFO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trips() {
        let t = Token::new(Op::SendTo, 0xDEAD_BEEF, 0x1234_5678);
        let d = Token::decode(t.encode()).unwrap();
        assert_eq!(d.op, Op::SendTo);
        assert_eq!(d.index, 0xDEAD_BEEF);
        assert_eq!(d.gen, 0x34_5678);
        assert!(Token::decode(0).is_none());
    }
}
