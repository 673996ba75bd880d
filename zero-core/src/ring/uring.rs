//! The io_uring kernel: each operation one submission queue entry.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use io_uring::types::BufRingEntry;
use io_uring::{opcode, squeue, types, IoUring, Probe};
use socket2::SockAddr;

use super::{kernel_release, Completion, Op, Token};
use crate::error::{IoError, Result};

/// The io_uring instance of one shard.
pub(crate) struct Uring {
    uring: IoUring,
    /// An eventfd the kernel signals when completions (or deferred work) arrive, registered
    /// on first use (`notify_fd`).
    notify: Option<std::fs::File>,
    /// Target of the eventfd read that wakes the shard; boxed so its address is stable.
    wake_buf: Box<u64>,
}

impl Uring {
    /// Creates the ring and checks that the kernel has every operation zero-core uses.
    /// `defer`: completions are run only when the shard asks for them (DEFER_TASKRUN, the
    /// fastest for a shard that waits in the ring); without it the kernel posts them as they
    /// come, which a shard waiting in another event loop (on `notify_fd`) needs.
    pub fn new(entries: u32, defer: bool) -> Result<Uring> {
        let mut builder = IoUring::builder();
        builder.setup_single_issuer();
        if defer {
            builder.setup_defer_taskrun();
        } else {
            builder.setup_coop_taskrun();
        }
        let uring = builder
            .setup_cqsize(entries.saturating_mul(4))
            .setup_clamp()
            .build(entries)
            .or_else(|_| IoUring::builder().setup_cqsize(entries.saturating_mul(4)).build(entries))
            .map_err(setup_error)?;
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
        Ok(Uring { uring, notify: None, wake_buf: Box::new(0) })
    }

    /// An eventfd signalled when this ring has completions or deferred work to run.
    pub fn notify_fd(&mut self) -> Result<&std::fs::File> {
        if self.notify.is_none() {
            let fd = super::eventfd()?;
            self.uring
                .submitter()
                .register_eventfd(fd.as_raw_fd())
                .map_err(|e| IoError::sys("io_uring_register(EVENTFD)", e))?;
            self.notify = Some(fd.into());
        }
        Ok(self.notify.as_ref().expect("registered above"))
    }

    /// Resets the notification eventfd's counter (it is non-blocking: nothing to read is fine).
    pub fn ack_notify(&mut self) {
        if let Some(mut file) = self.notify.as_ref() {
            let _ = std::io::Read::read(&mut file, &mut [0; 8]);
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
        unsafe { self.uring.submitter().register_buf_ring_with_flags(base as u64, entries, group, 0) }
            .map_err(|e| {
                IoError::sys("io_uring_register(PBUF_RING): provided buffer rings need Linux 5.19+", e)
            })
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

    pub fn send_msg(&mut self, fd: RawFd, msg: &libc::msghdr, token: Token) -> Result<()> {
        let e = opcode::SendMsg::new(types::Fd(fd), msg).build();
        self.push(e.user_data(token.encode()))
    }

    /// Starts a connect to `addr` (owned by the slot) with a linked timeout.
    pub fn connect(
        &mut self,
        fd: RawFd,
        addr: &SockAddr,
        (_, timeout): (Duration, &types::Timespec),
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
    pub fn cancel(&mut self, _fd: RawFd, target: Token, token: Token) -> Result<()> {
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
        entered(res)
    }

    pub fn submit_and_wait_batched(
        &mut self,
        want: usize,
        timeout: Option<Duration>,
        window: Duration,
    ) -> Result<()> {
        if !self.uring.params().is_feature_min_timeout() {
            return self.submit_and_wait(1, timeout);
        }
        let ts = timeout.map(types::Timespec::from);
        let mut args =
            types::SubmitArgs::new().min_wait_usec(window.as_micros().clamp(1, u32::MAX as u128) as u32);
        if let Some(ts) = &ts {
            args = args.timespec(ts);
        }
        entered(self.uring.submitter().submit_with_args(want, &args))
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

/// What an `io_uring_enter` returned: a timeout, an interruption or a full completion queue
/// (`EBUSY`: reap, then enter again) are a normal end to a wait.
fn entered(res: io::Result<usize>) -> Result<()> {
    match res {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR | libc::EBUSY)) => Ok(()),
        Err(e) => Err(IoError::sys("io_uring_enter", e)),
    }
}

fn setup_error(cause: io::Error) -> IoError {
    let advice = match cause.raw_os_error() {
        Some(libc::EPERM) => {
            "io_uring is refused to this process, by a container's seccomp profile (Docker's \
             default refuses it) or by /proc/sys/kernel/io_uring_disabled (set it to 0, or to 1 \
             and add this user to kernel.io_uring_group); Backend::Auto runs on epoll instead"
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_rings_say_why_and_what_to_do() {
        let msg = |errno| setup_error(io::Error::from_raw_os_error(errno)).to_string();
        assert!(msg(libc::EPERM).contains("io_uring_disabled"), "{}", msg(libc::EPERM));
        assert!(msg(libc::ENOSYS).contains("seccomp"));
        assert!(msg(libc::ENOMEM).contains("RLIMIT_MEMLOCK"));
        assert!(msg(libc::EINVAL).contains("Linux 6.0"));
    }
}
