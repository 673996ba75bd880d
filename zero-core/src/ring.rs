//! The kernel boundary: the io_uring instance, the operations zero-core submits to it, and the
//! few raw system calls (fd adoption, eventfd, `TCP_INFO`) that have no safe wrapper.
//!
//! This module and `pool` are the only places with `unsafe`. Every submission method here is
//! safe to call because of one crate-wide rule, stated once: memory handed to the kernel (a send
//! buffer, a socket address, a message header, the wake counter) is owned by a socket slot or
//! by [`Ring`] itself, is never moved or freed while the slot has operations in flight, and
//! slots are released only after their last completion (`Table::release` checks `inflight`).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use io_uring::{cqueue, opcode, squeue, types, IoUring, Probe};
use socket2::{SockAddr, Socket};

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
    /// More completions will follow for this (multishot) submission.
    pub fn more(&self) -> bool {
        cqueue::more(self.flags)
    }

    /// The provided buffer the kernel filled, if any.
    pub fn buffer(&self) -> Option<u16> {
        cqueue::buffer_select(self.flags)
    }
}

/// The io_uring instance of one shard.
pub(crate) struct Ring {
    uring: IoUring,
    /// Target of the eventfd read that wakes the shard; boxed so its address is stable.
    wake_buf: Box<u64>,
}

impl Ring {
    /// Creates the ring and checks that the kernel has every operation zero-core uses.
    pub fn new(entries: u32) -> Result<Ring> {
        let uring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_cqsize(entries.saturating_mul(4))
            .setup_clamp()
            .build(entries)
            .or_else(|_| IoUring::builder().setup_cqsize(entries.saturating_mul(4)).build(entries))
            .map_err(ring_setup_error)?;
        let mut probe = Probe::new();
        uring
            .submitter()
            .register_probe(&mut probe)
            .map_err(|e| IoError::sys("io_uring_register(PROBE)", e))?;
        let needed = [
            (opcode::AcceptMulti::CODE, "multishot accept"),
            (opcode::RecvMulti::CODE, "multishot receive"),
            (opcode::Send::CODE, "send"),
            (opcode::Connect::CODE, "connect"),
            (opcode::LinkTimeout::CODE, "linked timeouts"),
            (opcode::AsyncCancel::CODE, "cancel"),
            (opcode::RecvMsgMulti::CODE, "multishot recvmsg"),
            (opcode::Read::CODE, "read"),
            (opcode::Splice::CODE, "splice"),
        ];
        for (code, feature) in needed {
            if !probe.is_supported(code) {
                return Err(IoError::Unsupported { feature, kernel: kernel_release() });
            }
        }
        if !uring.params().is_feature_ext_arg() {
            return Err(IoError::Unsupported {
                feature: "IORING_FEAT_EXT_ARG (timed waits)",
                kernel: kernel_release(),
            });
        }
        Ok(Ring { uring, wake_buf: Box::new(0) })
    }

    /// The ring's own fd, for registering buffer rings.
    pub fn submitter(&self) -> io_uring::Submitter<'_> {
        self.uring.submitter()
    }

    fn push(&mut self, entry: squeue::Entry) -> Result<()> {
        loop {
            // SAFETY: every entry built in this module points only at memory that outlives the
            // operation, by the module-level rule (slot-owned buffers released after their last
            // completion; `wake_buf` lives as long as the ring).
            if unsafe { self.uring.submission().push(&entry) }.is_ok() {
                return Ok(());
            }
            self.uring.submit().map_err(|e| IoError::sys("io_uring_enter(submit)", e))?;
        }
    }

    /// Arms a multishot accept on a listening socket.
    pub fn accept_multi(&mut self, fd: RawFd, token: Token) -> Result<()> {
        let e = opcode::AcceptMulti::new(types::Fd(fd)).flags(libc::SOCK_CLOEXEC).build();
        self.push(e.user_data(token.encode()))
    }

    /// Arms a multishot receive into the provided buffer group `group`.
    pub fn recv_multi(&mut self, fd: RawFd, group: u16, token: Token) -> Result<()> {
        let e = opcode::RecvMulti::new(types::Fd(fd), group).build();
        self.push(e.user_data(token.encode()))
    }

    /// Arms a multishot `recvmsg` (datagrams with their source address) into group `group`.
    /// `msg` must stay valid until the final completion (it is owned by the socket slot).
    pub fn recvmsg_multi(&mut self, fd: RawFd, msg: &libc::msghdr, group: u16, token: Token) -> Result<()> {
        let e = opcode::RecvMsgMulti::new(types::Fd(fd), msg, group).build();
        self.push(e.user_data(token.encode()))
    }

    /// Sends `buf`, which must stay valid until the completion (owned by the slot's send queue).
    pub fn send(&mut self, fd: RawFd, buf: &[u8], token: Token) -> Result<()> {
        let e = opcode::Send::new(types::Fd(fd), buf.as_ptr(), buf.len() as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build();
        self.push(e.user_data(token.encode()))
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
        let off_in = offset.map_or(-1, |o| o as i64);
        let e = opcode::Splice::new(types::Fd(from), off_in, types::Fd(to), -1, len).build();
        self.push(e.user_data(token.encode()))
    }

    /// Sends the datagram `buf` to `addr`; both must stay valid until the completion.
    pub fn send_to(&mut self, fd: RawFd, buf: &[u8], addr: &SockAddr, token: Token) -> Result<()> {
        let e = opcode::Send::new(types::Fd(fd), buf.as_ptr(), buf.len() as u32)
            .dest_addr(addr.as_ptr().cast())
            .dest_addr_len(addr.len())
            .build();
        self.push(e.user_data(token.encode()))
    }

    /// Starts a connect to `addr` (owned by the slot) with a linked timeout.
    pub fn connect(
        &mut self,
        fd: RawFd,
        addr: &SockAddr,
        timeout: &types::Timespec,
        index: u32,
        gen: u32,
    ) -> Result<()> {
        let connect = opcode::Connect::new(types::Fd(fd), addr.as_ptr().cast(), addr.len())
            .build()
            .flags(squeue::Flags::IO_LINK)
            .user_data(Token::new(Op::Connect, index, gen).encode());
        let timeout = opcode::LinkTimeout::new(timeout)
            .build()
            .user_data(Token::new(Op::ConnectTimeout, index, gen).encode());
        // Both entries must land in the same submission batch for the link to hold.
        let room = {
            let sq = self.uring.submission();
            sq.capacity() - sq.len()
        };
        if room < 2 {
            self.uring.submit().map_err(|e| IoError::sys("io_uring_enter(submit)", e))?;
        }
        self.push(connect)?;
        self.push(timeout)
    }

    /// Cancels every operation in flight on `fd`.
    pub fn cancel_fd(&mut self, fd: RawFd, token: Token) -> Result<()> {
        let e = opcode::AsyncCancel2::new(types::CancelBuilder::fd(types::Fd(fd)).all()).build();
        self.push(e.user_data(token.encode()))
    }

    /// Cancels the operation submitted with `target`.
    pub fn cancel(&mut self, target: Token, token: Token) -> Result<()> {
        let e = opcode::AsyncCancel::new(target.encode()).build();
        self.push(e.user_data(token.encode()))
    }

    /// Arms an 8-byte read of the wake eventfd into the ring's own counter.
    pub fn read_wake(&mut self, fd: RawFd) -> Result<()> {
        let buf: *mut u64 = &mut *self.wake_buf;
        let e = opcode::Read::new(types::Fd(fd), buf.cast(), 8).build();
        self.push(e.user_data(Token::new(Op::Wake, 0, 0).encode()))
    }

    /// Whether completions are waiting to be reaped.
    pub fn ready(&mut self) -> bool {
        !self.uring.completion().is_empty()
    }

    /// Submits what is queued and waits up to `timeout` for at least `want` completions.
    pub fn submit_and_wait(&mut self, want: usize, timeout: Option<Duration>) -> Result<()> {
        let res = match (want, timeout) {
            (0, _) => self.uring.submit(),
            (_, None) => self.uring.submit_and_wait(want),
            (_, Some(t)) => {
                let ts = types::Timespec::from(t);
                let args = types::SubmitArgs::new().timespec(&ts);
                self.uring.submitter().submit_with_args(want, &args)
            }
        };
        match res {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR | libc::EBUSY)) => Ok(()),
            Err(e) => Err(IoError::sys("io_uring_enter", e)),
        }
    }

    /// Moves up to `max` ready completions into `out`.
    pub fn reap(&mut self, out: &mut Vec<Completion>, max: usize) {
        for cqe in self.uring.completion().take(max) {
            if let Some(token) = Token::decode(cqe.user_data()) {
                out.push(Completion { token, result: cqe.result(), flags: cqe.flags() });
            }
        }
    }

    /// Never frees the wake counter: for a shutdown in which the kernel may still write to it.
    pub fn leak_wake_buf(&mut self) {
        std::mem::forget(std::mem::replace(&mut self.wake_buf, Box::new(0)));
    }
}

fn ring_setup_error(cause: io::Error) -> IoError {
    let advice = match cause.raw_os_error() {
        Some(libc::EPERM) => {
            "io_uring is disabled for this process: check /proc/sys/kernel/io_uring_disabled \
             (set it to 0, or to 1 and add this user to kernel.io_uring_group)"
        }
        Some(libc::ENOSYS) => {
            "the io_uring system calls are blocked, usually by a container's seccomp profile: \
             run the container with a profile that allows io_uring_setup/enter/register"
        }
        Some(libc::ENOMEM) => {
            "the kernel could not allocate the ring: lower Config::ring_entries or raise \
             RLIMIT_MEMLOCK"
        }
        Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) => {
            "the kernel rejected the ring parameters: zero-core needs Linux 6.0 or newer"
        }
        _ => "see io_uring_setup(2)",
    };
    IoError::RingUnavailable { cause, advice }
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
pub(crate) fn set_timestamps(sock: &Socket) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: `on` is a valid c_int for reads of the size given.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reads `TCP_INFO` for a connected TCP socket.
pub(crate) fn tcp_info(sock: &Socket) -> io::Result<libc::tcp_info> {
    // SAFETY: tcp_info is plain old data; all-zero is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` and `len` are valid for writes of the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(info)
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

    #[test]
    fn refused_rings_say_why_and_what_to_do() {
        let msg = |errno| ring_setup_error(io::Error::from_raw_os_error(errno)).to_string();
        assert!(msg(libc::EPERM).contains("io_uring_disabled"), "{}", msg(libc::EPERM));
        assert!(msg(libc::ENOSYS).contains("seccomp"));
        assert!(msg(libc::ENOMEM).contains("RLIMIT_MEMLOCK"));
        assert!(msg(libc::EINVAL).contains("Linux 6.0"));
    }
}
