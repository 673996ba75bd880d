//! [`IoHandle`]: how other threads reach a shard. Commands go into a mutex-guarded queue that
//! the shard swaps out once per tick; the first command after the shard last looked writes the
//! shard's eventfd, which completes an armed read in its ring and wakes it. Producers never
//! wait on the shard, only on the queue's lock for the length of a `Vec::push`.

use std::any::Any;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use crate::admin::Metrics;
use crate::error::{IoError, Result};
use crate::id::ConnId;

/// A request from another thread.
pub(crate) enum Command {
    Send(ConnId, Vec<u8>),
    Close(ConnId),
    CloseNow(ConnId),
    Post(Box<dyn Any + Send>),
    Drain(mpsc::Sender<usize>),
    Collect(mpsc::Sender<(usize, Metrics)>, bool),
    ResetPeaks,
    Stop,
}

/// The state a shard shares with its handles.
pub(crate) struct Shared {
    queue: Mutex<Vec<Command>>,
    wake: File,
    /// The eventfd has been written since the shard last drained its wake read.
    notified: AtomicBool,
    closed: AtomicBool,
}

impl Shared {
    pub fn new(eventfd: OwnedFd) -> Shared {
        Shared {
            queue: Mutex::new(Vec::new()),
            wake: File::from(eventfd),
            notified: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }
    }

    pub fn wake_fd(&self) -> RawFd {
        self.wake.as_raw_fd()
    }

    /// Swaps the queued commands into `out` (which must be empty); returns whether any came.
    pub fn take(&self, out: &mut Vec<Command>) -> bool {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if queue.is_empty() {
            return false;
        }
        std::mem::swap(&mut *queue, out);
        true
    }

    /// The shard consumed a wake-up; the next command must write the eventfd again.
    pub fn clear_notified(&self) {
        self.notified.store(false, Ordering::SeqCst);
    }

    /// The shard is going away; handles report `IoError::ShardGone` from now on.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    fn push(&self, cmd: Command) -> Result<()> {
        if self.is_closed() {
            return Err(IoError::ShardGone);
        }
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).push(cmd);
        self.wake();
        Ok(())
    }

    fn wake(&self) {
        if !self.notified.swap(true, Ordering::SeqCst) {
            // An eventfd write only fails if the counter would overflow, which needs 2^64
            // unread wake-ups; the shard is awake then anyway.
            let _ = (&self.wake).write(&1u64.to_ne_bytes());
        }
    }
}

/// A `Send + Sync + Clone` handle to a shard. Commands from one thread reach the shard in the
/// order they were made, so sends to one connection keep their order.
#[derive(Clone)]
pub struct IoHandle {
    shared: Arc<Shared>,
}

impl IoHandle {
    pub(crate) fn new(shared: Arc<Shared>) -> IoHandle {
        IoHandle { shared }
    }

    /// Queues `data` on connection `conn`. If the connection is gone or its send queue is full
    /// when the shard runs the command, the data is dropped and counted
    /// (`Ops::handle_drops`).
    pub fn send(&self, conn: ConnId, data: impl Into<Vec<u8>>) -> Result<()> {
        self.shared.push(Command::Send(conn, data.into()))
    }

    /// Closes `conn` gracefully (see `Ops::close`).
    pub fn close(&self, conn: ConnId) -> Result<()> {
        self.shared.push(Command::Close(conn))
    }

    /// Closes `conn` at once (see `Ops::close_now`).
    pub fn close_now(&self, conn: ConnId) -> Result<()> {
        self.shared.push(Command::CloseNow(conn))
    }

    /// Delivers `message` to the shard's handler as `Event::Message`.
    pub fn post(&self, message: impl Any + Send) -> Result<()> {
        self.shared.push(Command::Post(Box::new(message)))
    }

    /// Drains the shard (graceful shutdown): its listeners close, its handler's
    /// [`Handler::on_drain`](crate::Handler::on_drain) runs, and `done` gets the shard's index
    /// once no socket is left. The shard keeps running until stopped. A cluster drains all its
    /// shards with [`Stopper::shutdown`](crate::Stopper::shutdown).
    pub fn drain(&self, done: mpsc::Sender<usize>) -> Result<()> {
        self.shared.push(Command::Drain(done))
    }

    /// Asks for the shard's metrics (its own and its handler's; with `connections`, a list of
    /// its connections too), sent to `to` with the shard's index at the end of its next tick.
    /// [`crate::admin::Collector`] asks every shard.
    pub fn collect(&self, to: mpsc::Sender<(usize, Metrics)>, connections: bool) -> Result<()> {
        self.shared.push(Command::Collect(to, connections))
    }

    /// Starts the shard's peaks over from the current levels.
    pub fn reset_peaks(&self) -> Result<()> {
        self.shared.push(Command::ResetPeaks)
    }

    /// Makes `Io::run` return after its current tick.
    pub fn stop(&self) -> Result<()> {
        self.shared.push(Command::Stop)
    }

    /// Wakes the shard from its wait without a command.
    pub fn wake(&self) -> Result<()> {
        if self.shared.is_closed() {
            return Err(IoError::ShardGone);
        }
        self.shared.wake();
        Ok(())
    }
}

impl std::fmt::Debug for IoHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IoHandle").field("closed", &self.shared.is_closed()).finish()
    }
}
