//! The epoll kernel: io_uring's operations performed with readiness and plain system calls,
//! for where a ring cannot be set up (a container's seccomp profile, `kernel.io_uring_disabled`,
//! an old kernel).
//!
//! Writes (sends, splices, connects) are tried at once; receives, accepts and the wake read wait
//! on their descriptor (level-triggered) until epoll reports it ready. Each outcome is posted as
//! the completion io_uring would post: the same results and errnos, `MORE` on multishot
//! completions, receives filling the provided-buffer ring's slots in the order the kernel takes
//! them, `-ECANCELED` for what a cancel or a connect deadline ends. Everything above the ring
//! runs unchanged on either kernel.
//!
//! Descriptors must be non-blocking: `Ops::insert` makes every socket so on this kernel, and
//! splices pass `SPLICE_F_NONBLOCK` for the pipe side.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use io_uring::types::{BufRingEntry, Timespec};
use socket2::SockAddr;

use super::{Completion, Op, Token};
use crate::error::{IoError, Result};

/// At most this many connections accepted per readiness report of a listener.
const ACCEPT_BATCH: usize = 64;
/// At most this many slots filled per readiness report of a socket: fairness between sockets.
const RECV_BATCH: usize = 16;
const MORE: u32 = Completion::MORE;

/// An operation waiting for its descriptor.
struct Parked {
    token: Token,
    op: Wait,
}

/// What a parked operation does when its descriptor is ready.
enum Wait {
    Accept,
    Recv,
    RecvMsg { msg: *const libc::msghdr },
    Wake,
    Send { buf: *const u8, len: usize },
    SendTo { buf: *const u8, len: usize, addr: *const libc::sockaddr, addr_len: libc::socklen_t },
    SendMsg { msg: *const libc::msghdr },
    Splice { from: RawFd, offset: Option<u64>, len: u32 },
    Connect { addr: *const libc::sockaddr, addr_len: libc::socklen_t, deadline: Instant },
}

impl Wait {
    fn writes(&self) -> bool {
        matches!(
            self,
            Wait::Send { .. }
                | Wait::SendTo { .. }
                | Wait::SendMsg { .. }
                | Wait::Splice { .. }
                | Wait::Connect { .. }
        )
    }
}

/// One descriptor's parked operations and the interest registered for them.
#[derive(Default)]
struct Watch {
    parked: Vec<Parked>,
    registered: u32,
}

/// The provided-buffer ring, read the way the kernel reads it: entries from `head` up to the
/// tail the pool publishes.
struct Provided {
    base: *const BufRingEntry,
    mask: u16,
    head: u16,
    group: u16,
}

impl Provided {
    /// The next slot to receive into: (buffer id, address, length).
    fn peek(&self) -> Option<(u16, *mut u8, usize)> {
        // SAFETY: `base` points at the ring the pool registered, which outlives this kernel
        // (`register_buf_ring`'s contract); its first entry's reserved field is the tail.
        let tail = unsafe { &*(BufRingEntry::tail(self.base) as *const AtomicU16) }.load(Ordering::Acquire);
        if tail == self.head {
            return None;
        }
        // SAFETY: in bounds (masked), and between head and tail: published by the pool.
        let e = unsafe { &*self.base.add((self.head & self.mask) as usize) };
        Some((e.bid(), e.addr() as *mut u8, e.len() as usize))
    }
}

/// A shard's epoll instance and the operations it stands in for.
pub(crate) struct Epoll {
    epfd: OwnedFd,
    /// Indexed by descriptor.
    watches: Vec<Watch>,
    done: VecDeque<Completion>,
    provided: Option<Provided>,
    events: Vec<libc::epoll_event>,
    /// Descriptors with a parked connect, whose deadlines are checked after each wait.
    connecting: Vec<RawFd>,
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

/// A system call's return as a completion result, or `None` to wait for readiness.
fn outcome(rc: isize) -> Option<i32> {
    match rc {
        n if n >= 0 => Some(n as i32),
        _ => match errno() {
            libc::EAGAIN | libc::EINTR => None,
            e => Some(-e),
        },
    }
}

impl Epoll {
    pub fn new() -> Result<Epoll> {
        // SAFETY: plain system call with no pointer arguments.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(IoError::sys("epoll_create1", io::Error::last_os_error()));
        }
        Ok(Epoll {
            // SAFETY: `fd` was just created and is owned by nobody else.
            epfd: unsafe { OwnedFd::from_raw_fd(fd) },
            watches: Vec::new(),
            done: VecDeque::new(),
            provided: None,
            events: Vec::with_capacity(256),
            connecting: Vec::new(),
        })
    }

    /// The epoll descriptor: readable while events wait.
    pub fn fd(&self) -> &OwnedFd {
        &self.epfd
    }

    /// # Safety
    /// `base` must point at `entries` entries that outlive this kernel.
    pub unsafe fn register_buf_ring(
        &mut self,
        base: *mut BufRingEntry,
        entries: u16,
        group: u16,
    ) -> Result<()> {
        if self.provided.is_some() {
            return Err(IoError::Config("the epoll fallback takes one buffer group".into()));
        }
        self.provided = Some(Provided { base, mask: entries - 1, head: 0, group });
        Ok(())
    }

    fn post(&mut self, token: Token, result: i32, flags: u32) {
        self.done.push_back(Completion { token, result, flags });
    }

    fn watch(&mut self, fd: RawFd) -> &mut Watch {
        let i = fd as usize;
        if self.watches.len() <= i {
            self.watches.resize_with(i + 1, Watch::default);
        }
        &mut self.watches[i]
    }

    /// Parks `op` on `fd` and registers the interest it needs.
    fn park(&mut self, fd: RawFd, token: Token, op: Wait) -> Result<()> {
        if matches!(op, Wait::Connect { .. }) {
            self.connecting.push(fd);
        }
        self.watch(fd).parked.push(Parked { token, op });
        self.register(fd)
    }

    /// Tries a write at once unless an earlier write on `fd` still waits (order is kept).
    fn write(&mut self, fd: RawFd, token: Token, mut op: Wait) -> Result<()> {
        if !self.watch(fd).parked.iter().any(|p| p.op.writes()) && self.attempt(fd, token, &mut op) {
            return Ok(());
        }
        self.park(fd, token, op)
    }

    /// Brings `fd`'s epoll registration in line with what its parked operations wait for.
    fn register(&mut self, fd: RawFd) -> Result<()> {
        let epfd = self.epfd.as_raw_fd();
        let w = self.watch(fd);
        let want = w
            .parked
            .iter()
            .fold(0, |acc, p| acc | if p.op.writes() { libc::EPOLLOUT } else { libc::EPOLLIN } as u32);
        if want == w.registered {
            return Ok(());
        }
        let mut ev = libc::epoll_event { events: want, u64: fd as u64 };
        let mut ctl = |op| {
            // SAFETY: `ev` is a valid epoll_event for the duration of the call.
            if unsafe { libc::epoll_ctl(epfd, op, fd, &mut ev) } < 0 {
                errno()
            } else {
                0
            }
        };
        let rc = match (w.registered, want) {
            (_, 0) => {
                // The descriptor may already be closed (and so gone from the set): fine.
                ctl(libc::EPOLL_CTL_DEL);
                0
            }
            (0, _) => match ctl(libc::EPOLL_CTL_ADD) {
                libc::EEXIST => ctl(libc::EPOLL_CTL_MOD),
                rc => rc,
            },
            // A descriptor closed and reused since it was registered is no longer in the set.
            _ => match ctl(libc::EPOLL_CTL_MOD) {
                libc::ENOENT => ctl(libc::EPOLL_CTL_ADD),
                rc => rc,
            },
        };
        w.registered = want;
        if rc != 0 {
            return Err(IoError::sys("epoll_ctl", io::Error::from_raw_os_error(rc)));
        }
        Ok(())
    }

    /// Runs `op` as far as `fd` allows, posting its completions; true once it is finished.
    fn attempt(&mut self, fd: RawFd, token: Token, op: &mut Wait) -> bool {
        match *op {
            Wait::Accept => {
                for _ in 0..ACCEPT_BATCH {
                    // SAFETY: no address is asked for; the new descriptor is adopted by the
                    // completion's handler.
                    let rc = unsafe {
                        libc::accept4(fd, std::ptr::null_mut(), std::ptr::null_mut(), libc::SOCK_CLOEXEC)
                    };
                    match outcome(rc as isize) {
                        None => return false,
                        Some(r) if r >= 0 => self.post(token, r, MORE),
                        // The connection was reset before it was taken: take the next.
                        Some(r) if r == -libc::ECONNABORTED => {}
                        Some(r) => {
                            self.post(token, r, 0);
                            return true;
                        }
                    }
                }
                false
            }
            Wait::Recv => {
                for _ in 0..RECV_BATCH {
                    let Some((bid, addr, len)) = self.provided.as_ref().and_then(Provided::peek) else {
                        self.post(token, -libc::ENOBUFS, 0);
                        return true;
                    };
                    // SAFETY: the slot is the kernel's (in the buffer ring past `head`), so
                    // nothing else reads or writes it; `len` is its size.
                    let rc = unsafe { libc::recv(fd, addr.cast(), len, libc::MSG_DONTWAIT) };
                    match outcome(rc) {
                        None => return false,
                        Some(n) if n > 0 => {
                            self.filled(token, n, bid);
                            if (n as usize) < len {
                                return false; // drained; epoll reports what comes next
                            }
                        }
                        Some(r) => {
                            self.post(token, r, 0);
                            return true;
                        }
                    }
                }
                false
            }
            Wait::RecvMsg { msg } => {
                for _ in 0..RECV_BATCH {
                    let Some((bid, addr, len)) = self.provided.as_ref().and_then(Provided::peek) else {
                        self.post(token, -libc::ENOBUFS, 0);
                        return true;
                    };
                    match recvmsg_into(fd, msg, addr, len) {
                        None => return false,
                        Some(n) if n > 0 => self.filled(token, n, bid),
                        Some(r) => {
                            self.post(token, r, 0);
                            return true;
                        }
                    }
                }
                false
            }
            Wait::Wake => {
                let mut counter = 0u64;
                // SAFETY: `counter` is valid for an 8-byte write.
                let rc = unsafe { libc::read(fd, (&mut counter as *mut u64).cast(), 8) };
                self.finish(token, outcome(rc))
            }
            Wait::Send { buf, len } => {
                // SAFETY: `buf` is valid for `len` bytes until the completion (the module rule).
                let rc = unsafe { libc::send(fd, buf.cast(), len, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) };
                self.finish(token, outcome(rc))
            }
            Wait::SendTo { buf, len, addr, addr_len } => {
                // SAFETY: `buf` and `addr` are valid until the completion (the module rule).
                let rc = unsafe {
                    libc::sendto(fd, buf.cast(), len, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT, addr, addr_len)
                };
                self.finish(token, outcome(rc))
            }
            Wait::SendMsg { msg } => {
                // SAFETY: `msg` and all it points to are valid until the completion (the
                // module rule).
                let rc = unsafe { libc::sendmsg(fd, msg, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) };
                self.finish(token, outcome(rc))
            }
            Wait::Splice { from, ref mut offset, len } => {
                let mut off = offset.map_or(0, |o| o as libc::loff_t);
                let off_in: *mut libc::loff_t =
                    if offset.is_some() { &mut off } else { std::ptr::null_mut() };
                let flags = libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MOVE;
                // SAFETY: `off_in` is null or points at `off`, valid for the call.
                let rc = unsafe { libc::splice(from, off_in, fd, std::ptr::null_mut(), len as usize, flags) };
                self.finish(token, outcome(rc))
            }
            Wait::Connect { addr, addr_len, deadline } => {
                let result =
                    match super::socket_error(fd).unwrap_or_else(|e| e.raw_os_error().unwrap_or(libc::EIO)) {
                        0 => {
                            // SAFETY: `addr` is valid until the completion (the module rule).
                            match unsafe { libc::connect(fd, addr, addr_len) } {
                                0 => Some(0),
                                _ => match errno() {
                                    libc::EISCONN => Some(0),
                                    libc::EINPROGRESS | libc::EALREADY | libc::EAGAIN | libc::EINTR => None,
                                    e => Some(-e),
                                },
                            }
                        }
                        e => Some(-e),
                    };
                match result {
                    Some(r) => {
                        self.end_connect(fd, token, r, -libc::ECANCELED);
                        true
                    }
                    None if Instant::now() >= deadline => {
                        // As io_uring's linked timeout: the connect is cancelled, the timeout fires.
                        self.end_connect(fd, token, -libc::ECANCELED, -libc::ETIME);
                        true
                    }
                    None => false,
                }
            }
        }
    }

    fn finish(&mut self, token: Token, result: Option<i32>) -> bool {
        match result {
            Some(r) => {
                self.post(token, r, 0);
                true
            }
            None => false,
        }
    }

    fn end_connect(&mut self, fd: RawFd, token: Token, connect: i32, timeout: i32) {
        self.connecting.retain(|&c| c != fd);
        self.post(token, connect, 0);
        self.post(Token::new(Op::ConnectTimeout, token.index, token.gen), timeout, 0);
    }

    /// A multishot receive filled `n` bytes of slot `bid`, the one at the ring's head: the
    /// kernel's completion for it, and the slot is taken.
    fn filled(&mut self, token: Token, n: i32, bid: u16) {
        if let Some(p) = &mut self.provided {
            p.head = p.head.wrapping_add(1);
        }
        self.post(token, n, MORE | Completion::BUFFER | u32::from(bid) << Completion::BUFFER_SHIFT);
    }

    /// Runs `fd`'s parked operations that its readiness `events` allow.
    fn on_ready(&mut self, fd: RawFd, events: u32) -> Result<()> {
        let failed = (libc::EPOLLERR | libc::EPOLLHUP) as u32;
        let readable = events & (libc::EPOLLIN as u32 | failed) != 0;
        let writable = events & (libc::EPOLLOUT as u32 | failed) != 0;
        let mut parked = std::mem::take(&mut self.watch(fd).parked);
        let mut write_waits = false;
        parked.retain_mut(|p| {
            let ready = if p.op.writes() { writable && !write_waits } else { readable };
            let finished = ready && self.attempt(fd, p.token, &mut p.op);
            write_waits |= p.op.writes() && !finished;
            !finished
        });
        let w = self.watch(fd);
        parked.append(&mut w.parked);
        w.parked = parked;
        self.register(fd)
    }

    /// Ends the connects whose deadline has passed.
    fn expire_connects(&mut self, now: Instant) -> Result<()> {
        let mut i = 0;
        while i < self.connecting.len() {
            let fd = self.connecting[i];
            let w = self.watch(fd);
            let due = w
                .parked
                .iter()
                .position(|p| matches!(p.op, Wait::Connect { deadline, .. } if deadline <= now));
            match due {
                Some(at) => {
                    let p = w.parked.remove(at);
                    self.end_connect(fd, p.token, -libc::ECANCELED, -libc::ETIME);
                    self.register(fd)?;
                }
                None => i += 1,
            }
        }
        Ok(())
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.connecting
            .iter()
            .flat_map(|&fd| &self.watches[fd as usize].parked)
            .filter_map(|p| match p.op {
                Wait::Connect { deadline, .. } => Some(deadline),
                _ => None,
            })
            .min()
    }

    /// Removes the parked operations on `fd` that `which` selects, each completing
    /// `-ECANCELED`; returns how many.
    fn cancel_where(&mut self, fd: RawFd, which: impl Fn(&Parked) -> bool) -> Result<i32> {
        let parked = std::mem::take(&mut self.watch(fd).parked);
        let (gone, kept): (Vec<Parked>, Vec<Parked>) = parked.into_iter().partition(which);
        self.watch(fd).parked = kept;
        for p in &gone {
            if matches!(p.op, Wait::Connect { .. }) {
                self.end_connect(fd, p.token, -libc::ECANCELED, -libc::ECANCELED);
            } else {
                self.post(p.token, -libc::ECANCELED, 0);
            }
        }
        self.register(fd)?;
        Ok(gone.len() as i32)
    }

    pub fn accept_multi(&mut self, fd: RawFd, token: Token) -> Result<()> {
        self.park(fd, token, Wait::Accept)
    }

    pub fn recv_multi(&mut self, fd: RawFd, group: u16, token: Token) -> Result<()> {
        self.check_group(group)?;
        self.park(fd, token, Wait::Recv)
    }

    pub fn recvmsg_multi(&mut self, fd: RawFd, msg: &libc::msghdr, group: u16, token: Token) -> Result<()> {
        self.check_group(group)?;
        self.park(fd, token, Wait::RecvMsg { msg })
    }

    fn check_group(&self, group: u16) -> Result<()> {
        match &self.provided {
            Some(p) if p.group == group => Ok(()),
            _ => Err(IoError::Config(format!("buffer group {group} is not registered"))),
        }
    }

    pub fn send(&mut self, fd: RawFd, buf: &[u8], token: Token) -> Result<()> {
        self.write(fd, token, Wait::Send { buf: buf.as_ptr(), len: buf.len() })
    }

    pub fn send_to(&mut self, fd: RawFd, buf: &[u8], addr: &SockAddr, token: Token) -> Result<()> {
        let op = Wait::SendTo {
            buf: buf.as_ptr(),
            len: buf.len(),
            addr: addr.as_ptr().cast(),
            addr_len: addr.len(),
        };
        self.write(fd, token, op)
    }

    pub fn send_msg(&mut self, fd: RawFd, msg: &libc::msghdr, token: Token) -> Result<()> {
        self.write(fd, token, Wait::SendMsg { msg })
    }

    pub fn splice(
        &mut self,
        from: RawFd,
        offset: Option<u64>,
        to: RawFd,
        len: u32,
        token: Token,
    ) -> Result<()> {
        self.write(to, token, Wait::Splice { from, offset, len })
    }

    pub fn connect(
        &mut self,
        fd: RawFd,
        addr: &SockAddr,
        (timeout, _): (Duration, &Timespec),
        index: u32,
        gen: u32,
    ) -> Result<()> {
        let token = Token::new(Op::Connect, index, gen);
        let (addr, addr_len) = (addr.as_ptr().cast(), addr.len());
        // SAFETY: `addr` is valid until the completion (the module rule).
        let connect = match unsafe { libc::connect(fd, addr, addr_len) } {
            0 => Some(0),
            _ => match errno() {
                libc::EINPROGRESS | libc::EAGAIN | libc::EINTR => None,
                e => Some(-e),
            },
        };
        match connect {
            Some(r) => {
                self.end_connect(fd, token, r, -libc::ECANCELED);
                Ok(())
            }
            None => {
                self.park(fd, token, Wait::Connect { addr, addr_len, deadline: Instant::now() + timeout })
            }
        }
    }

    pub fn cancel_fd(&mut self, fd: RawFd, token: Token) -> Result<()> {
        let n = self.cancel_where(fd, |_| true)?;
        self.post(token, n, 0);
        Ok(())
    }

    pub fn cancel(&mut self, fd: RawFd, target: Token, token: Token) -> Result<()> {
        let n = self.cancel_where(fd, |p| p.token == target)?;
        self.post(token, if n > 0 { 0 } else { -libc::ENOENT }, 0);
        Ok(())
    }

    pub fn read_wake(&mut self, fd: RawFd) -> Result<()> {
        self.park(fd, Token::new(Op::Wake, 0, 0), Wait::Wake)
    }

    pub fn ready(&mut self) -> bool {
        !self.done.is_empty()
    }

    pub fn submit_and_wait(&mut self, want: usize, timeout: Option<Duration>) -> Result<()> {
        if want == 0 {
            return Ok(()); // submissions were performed as they came
        }
        let now = Instant::now();
        let mut wait = if self.done.is_empty() { timeout } else { Some(Duration::ZERO) };
        if let Some(deadline) = self.next_deadline() {
            let left = deadline.saturating_duration_since(now);
            wait = Some(wait.map_or(left, |w| w.min(left)));
        }
        // Rounded up: a timer 300 µs away must not make a zero-timeout spin.
        let ms = wait.map_or(-1, |w| w.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32);
        self.events.clear();
        // SAFETY: `events` has room for `capacity` entries, which the kernel fills.
        let n = unsafe {
            libc::epoll_wait(
                self.epfd.as_raw_fd(),
                self.events.as_mut_ptr(),
                self.events.capacity() as i32,
                ms,
            )
        };
        if n < 0 {
            return match errno() {
                libc::EINTR => Ok(()),
                e => Err(IoError::sys("epoll_wait", io::Error::from_raw_os_error(e))),
            };
        }
        // SAFETY: the kernel initialised the first `n` entries.
        unsafe { self.events.set_len(n as usize) };
        let events = std::mem::take(&mut self.events);
        let mut result = Ok(());
        for ev in &events {
            if result.is_ok() {
                result = self.on_ready(ev.u64 as RawFd, ev.events);
            }
        }
        self.events = events;
        result?;
        if !self.connecting.is_empty() {
            self.expire_connects(Instant::now())?;
        }
        Ok(())
    }

    pub fn reap(&mut self, out: &mut Vec<Completion>, max: usize) {
        let n = max.min(self.done.len());
        out.extend(self.done.drain(..n));
    }
}

/// Receives one datagram into the slot at `buf` in multishot `recvmsg`'s layout: an
/// `io_uring_recvmsg_out` header, the source address field, the control field, the payload.
/// Returns the bytes of the slot used, a negative errno, or `None` when nothing is waiting.
fn recvmsg_into(fd: RawFd, msg: *const libc::msghdr, buf: *mut u8, len: usize) -> Option<i32> {
    const HEADER: usize = 16; // namelen, controllen, payloadlen, flags: four u32
                              // SAFETY: `msg` is the slot's header, valid until the completion (the module rule).
    let (name_len, control_len) = unsafe { ((*msg).msg_namelen as usize, (*msg).msg_controllen) };
    let payload_at = HEADER + name_len + control_len;
    if payload_at >= len {
        return Some(-libc::EFAULT);
    }
    // SAFETY: every pointer below stays inside the slot (`payload_at < len`), which is the
    // kernel's to write (in the buffer ring past `head`).
    unsafe {
        let mut iov = libc::iovec { iov_base: buf.add(payload_at).cast(), iov_len: len - payload_at };
        let mut hdr: libc::msghdr = std::mem::zeroed();
        hdr.msg_name = buf.add(HEADER).cast();
        hdr.msg_namelen = name_len as libc::socklen_t;
        hdr.msg_control =
            if control_len > 0 { buf.add(HEADER + name_len).cast() } else { std::ptr::null_mut() };
        hdr.msg_controllen = control_len;
        hdr.msg_iov = &mut iov;
        hdr.msg_iovlen = 1;
        let n = match outcome(libc::recvmsg(fd, &mut hdr, libc::MSG_DONTWAIT))? {
            n if n < 0 => return Some(n),
            n => n as u32,
        };
        let out = [hdr.msg_namelen, hdr.msg_controllen as u32, n, hdr.msg_flags as u32];
        std::ptr::copy_nonoverlapping(out.as_ptr().cast::<u8>(), buf, HEADER);
        Some((payload_at as u32 + n) as i32)
    }
}
