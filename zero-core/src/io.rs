//! The shard: [`Io`] owns the ring, the payload pool and the queue of events; [`Ops`] (in
//! `ops.rs`) is the submit side that a handler holds while it reads an event's borrowed payload,
//! so replying never needs a copy.
//!
//! One tick ([`Io::poll`]): return last tick's payload slots to the kernel, run commands from
//! [`IoHandle`]s, turn every touched socket's state into submissions (coalescing all of a
//! connection's writes of the tick into one send), wait for completions (bounded by the earliest
//! timer), and turn the commands that came meanwhile, the completions and the due timers into
//! events, in that order.

use bytes::Bytes;
use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::admin::Counters;
use crate::config::{Backend, Config};
use crate::conn::CloseReason;
use crate::drain::Drain;
use crate::error::{IoError, Result};
use crate::event::{Chunk, Event, Handler, Payload, Raw};
use crate::handle::{Command, IoHandle, Shared};
use crate::ops::Ops;
use crate::pool::{Pool, PoolStats};
use crate::quic::Quic;
use crate::ring::{self, Completion, Op, Ring, Token};
use crate::table::Table;
use crate::timer::{TimerKind, Timers};

/// One io_uring shard. Single-threaded; use [`IoHandle`] from other threads.
pub struct Io {
    // Field order is drop order: the ring goes first, taking the buffer registration with it,
    // before the pool's memory is freed.
    ring: Ring,
    pool: Pool,
    /// Decrypted TLS payloads of this tick, borrowed by `Event::Data` like pool slots.
    plain: Vec<u8>,
    /// The payload of the QUIC event last handed out.
    held: Bytes,
    ops: Ops,
    completions: Vec<Completion>,
    shared: Arc<Shared>,
    commands: Vec<Command>,
    wake_armed: bool,
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
        let mut config = config;
        let (ring, pool) = match config.backend.resolve().map_err(IoError::Config)? {
            Backend::Auto => Self::kernel(Backend::IoUring, &config).or_else(|e| match e {
                IoError::Config(_) => Err(e),
                e => {
                    Ring::log_fallback(&e);
                    Self::kernel(Backend::Epoll, &config)
                }
            })?,
            backend => Self::kernel(backend, &config)?,
        };
        config.backend = ring.backend();
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
                drain: Drain::No,
                counters: Counters::default(),
                collectors: Vec::new(),
                handle_drops: 0,
                shard: 0,
                peers: Arc::from([]),
                scratch: Vec::new(),
                quic: Quic::default(),
                config,
            },
            plain: Vec::new(),
            held: Bytes::new(),
            completions: Vec::new(),
            shared,
            commands: Vec::new(),
            wake_armed: false,
        })
    }

    /// The ring and the pool registered with it, on `backend`'s kernel.
    fn kernel(backend: Backend, config: &Config) -> Result<(Ring, Pool)> {
        let mut ring = Ring::new(backend, config.ring_entries, !config.driven_externally)?;
        let pool = Pool::new(&mut ring, config.pool_slots, config.slot_size, BUFFER_GROUP)?;
        Ok((ring, pool))
    }

    /// The kernel interface this shard runs on: [`Backend::IoUring`] or [`Backend::Epoll`].
    pub fn backend(&self) -> Backend {
        self.ops.config.backend
    }

    /// Makes this shard number `shard` of a cluster whose shards `peers` reaches.
    pub(crate) fn join_cluster(&mut self, shard: usize, peers: Arc<[IoHandle]>) {
        self.ops.shard = shard;
        self.ops.peers = peers;
    }

    /// A handle for other threads: send, close, post and wake without blocking the shard.
    pub fn handle(&self) -> IoHandle {
        IoHandle::new(self.shared.clone())
    }

    /// One tick: submit what is pending, wait up to `timeout` (forever if `None`, bounded by the
    /// earliest timer) for completions, and queue their events. Returns the events queued.
    pub fn poll(&mut self, timeout: Option<Duration>) -> Result<usize> {
        if self.ops.events.is_empty() {
            // Every socket's last event has been handed out: its slot may serve a new one.
            self.ops.table.reuse_retired();
        }
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
        if let Some(spin) = self.ops.config.busy_poll.filter(|_| wait != Some(Duration::ZERO)) {
            // A zero timeout runs the ring's deferred work and returns: completions arrive
            // without the shard ever sleeping, until the spin's budget (or the wait) runs out.
            let until = self.ops.now + wait.map_or(spin, |w| w.min(spin));
            while !self.ring.ready() && Instant::now() < until {
                self.ring.submit_and_wait(1, Some(Duration::ZERO))?;
                std::hint::spin_loop();
            }
        }
        match self.ops.config.batch_wait.filter(|_| wait != Some(Duration::ZERO)) {
            Some(window) => {
                self.ring.submit_and_wait_batched(self.ops.config.events_per_poll, wait, window)?
            }
            None => self.ring.submit_and_wait(1, wait)?,
        }
        self.ops.now = Instant::now();
        self.reap();
        self.fire_timers();
        self.ops.quic_drive();
        Ok(self.ops.events.len())
    }

    /// The next queued event, with the submit side to act on it.
    pub fn next_event(&mut self) -> Option<(Event<'_>, &mut Ops)> {
        let raw = loop {
            match self.ops.events.pop_front()? {
                Raw::PeerFinished { conn, truncated } => self.ops.peer_finished(conn, truncated),
                raw => break raw,
            }
        };
        let pool = &self.pool;
        let event = match raw {
            Raw::Accepted { conn, listener } => Event::Accepted { conn, listener },
            Raw::Connected { conn } => Event::Connected { conn },
            Raw::ConnectFailed { conn, error } => Event::ConnectFailed { conn, error },
            Raw::Data { conn, chunk: Chunk::Slot { bid, offset, len } } => {
                Event::Data { conn, data: Payload::pooled(pool, bid, offset, len) }
            }
            Raw::Data { conn, chunk: Chunk::Plain { offset, len } } => {
                Event::Data { conn, data: Payload::plain(&self.plain[offset..offset + len]) }
            }
            Raw::HandshakeFailed { listener, error } => Event::HandshakeFailed { listener, error },
            Raw::Upgraded { conn } => Event::Upgraded { conn },
            Raw::Associated { udp, relay } => Event::Associated { udp, relay },
            Raw::AssociationFailed { udp, error } => Event::AssociationFailed { udp, error },
            Raw::HalfClosed { conn } => Event::HalfClosed { conn },
            Raw::PeerFinished { .. } => unreachable!("handled above"),
            Raw::Closed { conn, reason } => Event::Closed { conn, reason },
            Raw::Writable { conn } => Event::Writable { conn },
            Raw::FileSent { conn } => Event::FileSent { conn },
            Raw::Datagram { udp, peer, received, bid, offset, len } => {
                Event::Datagram { udp, peer, received, data: Payload::pooled(pool, bid, offset, len) }
            }
            Raw::Timer { id, token } => Event::Timer { id, token },
            Raw::PoolPressure { stats } => Event::PoolPressure { stats },
            Raw::Message(m) => Event::Message(m),
            Raw::Detached { conn, stream } => Event::Detached { conn, stream },
            Raw::Quic(quic) => Event::Quic(quic.into_event(&mut self.held)),
        };
        Some((event, &mut self.ops))
    }

    /// Delivers every queued event to `handler`.
    pub fn dispatch<H: Handler + ?Sized>(&mut self, handler: &mut H) -> usize {
        self.ops.start_drain(handler);
        let mut n = 0;
        while let Some((event, ops)) = self.next_event() {
            handler.on_event(ops, event);
            n += 1;
        }
        handler.on_batch_end(&mut self.ops);
        if !self.ops.collectors.is_empty() {
            self.ops.answer_collectors(handler, self.pool.stats());
        }
        self.ops.report_if_drained();
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

    /// A descriptor that becomes readable when the shard has work (completions, a command
    /// from a handle), for running the shard from another event loop: after a tick with a
    /// zero timeout, [`Io::prepare_wait`]; then wait for it (or [`Io::next_deadline`]), call
    /// [`Io::ack_wait`] and tick again. `zero_core::runtime` does this on Tokio.
    pub fn wait_fd(&mut self) -> Result<std::os::fd::OwnedFd> {
        self.ring.notify_fd()
    }

    /// Hands the kernel what the last tick's handler queued and arms the wake-up for handles,
    /// so that [`Io::wait_fd`] signals the next work. Returns true if work is already waiting:
    /// tick again rather than wait.
    pub fn prepare_wait(&mut self) -> Result<bool> {
        self.flush()?;
        self.ring.submit_and_wait(0, None)?;
        Ok(self.ring.ready() || !self.ops.events.is_empty())
    }

    /// Clears [`Io::wait_fd`]'s readiness before the tick that takes the work.
    pub fn ack_wait(&mut self) {
        self.ring.ack_notify();
    }

    /// When the earliest timer is due, if any.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        self.ops.timers.next_deadline()
    }

    /// Whether the shard was asked to stop (by its handler or a handle).
    pub fn is_stopped(&self) -> bool {
        self.ops.stopped
    }

    /// A snapshot of the payload pool.
    pub fn pool_stats(&self) -> PoolStats {
        self.pool.stats()
    }

    fn recycle(&mut self) {
        let events = &self.ops.events;
        if !events.iter().any(Raw::is_plain) {
            self.plain.clear();
        }
        if events.is_empty() {
            self.pool.recycle(|_| false);
        } else {
            let held: Vec<u16> = events.iter().filter_map(Raw::slot).collect();
            self.pool.recycle(|bid| held.contains(&bid));
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
                Command::Drain(done) => ops.begin_drain(done),
                Command::Collect(to, connections) => ops.collectors.push((to, connections)),
                Command::ResetPeaks => ops.counters.sockets_peak = ops.table.len(),
                Command::Stop => ops.stopped = true,
            }
        }
    }

    /// Turns every touched socket's state into submissions.
    fn flush(&mut self) -> Result<()> {
        self.ops.quic_drive();
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
        // Commands are taken after the completions are collected and handled before them: a
        // command is never seen after a completion it caused (a shard posts here, its peer
        // reacts, the peer's bytes arrive here).
        self.run_commands();
        for c in completions.drain(..) {
            self.complete(c);
        }
        self.completions = completions;
        if let Some(stats) = self.pool.pressure() {
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
            Op::Recv => ops.on_recv(index, full_gen, &c, &mut self.pool, &mut self.plain),
            Op::Send => ops.on_send(index, full_gen, &c),
            Op::Connect => ops.on_connect(index, full_gen, &c),
            Op::RecvMsg => ops.on_recvmsg(index, full_gen, &c, &mut self.pool),
            Op::SendTo => ops.on_send_to(index, full_gen, &c),
            Op::SpliceIn | Op::SpliceOut => ops.on_splice(index, full_gen, op, &c),
            Op::ConnectTimeout | Op::Cancel | Op::Wake => {}
        }
        ops.finish_if_done(index, full_gen);
    }

    fn fire_timers(&mut self) {
        let ops = &mut self.ops;
        while let Some((id, kind)) = ops.timers.pop_due(ops.now) {
            match kind {
                TimerKind::User(token) => ops.events.push_back(Raw::Timer { id, token }),
                TimerKind::Linger { index, gen } => ops.release(index, gen, CloseReason::LingerExpired),
                TimerKind::Stall { index, gen } => ops.release(index, gen, CloseReason::SlowConsumer),
                TimerKind::Rearm { index, gen } => ops.table.touch(index, gen),
                TimerKind::Handshake { index, gen } => ops.handshake_expired(index, gen),
                TimerKind::Quic { index, gen } => ops.quic.on_timer(ops.now, index, gen),
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
            let (wake, cancel) = (Token::new(Op::Wake, 0, 0), Token::new(Op::Cancel, u32::MAX, 0));
            let _ = self.ring.cancel(self.shared.wake_fd(), wake, cancel);
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
