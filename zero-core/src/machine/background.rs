//! [`Background`]: a machine on a shard of its own thread, serving callers on other threads.

use std::marker::PhantomData;
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::error::{IoError, Result};
use crate::event::{Event, Handler};
use crate::handle::IoHandle;
use crate::io::Io;
use crate::ops::Ops;
use crate::tls::Target;

use super::{Driver, Machine};

/// The callers' half of a machine that runs apart from them ([`Background`], or
/// [`Task`](super::Task) on Tokio): it issues what callers ask on the machine and hands the
/// machine's events to whoever waits for them. It holds no I/O; the runner owns the
/// connection and calls it.
pub trait Service: Send + 'static {
    /// The machine it serves.
    type Machine: Machine + Send + 'static;
    /// What a caller asks.
    type Command: Send + 'static;
    /// Issues a caller's command on the machine (and notes who waits for its outcome).
    fn command(&mut self, machine: &mut Self::Machine, now: Instant, command: Self::Command);
    /// Hands the machine's events to whoever waits for them: before the runner sends what the
    /// machine queued, and again after.
    fn serve(&mut self, machine: &mut Self::Machine);
    /// The owner closes: end the machine gracefully (the runner stops once it is drained).
    fn close(&mut self, machine: &mut Self::Machine);
}

/// What crosses to the shard thread.
enum Control<C> {
    Command(C),
    Close,
}

/// A [`Service`] and its machine on a zero-core shard of their own thread. Callers on any
/// thread [`Background::post`] commands; those posted between two ticks are issued in the
/// same tick and leave in one write. The thread ends when the machine is drained, or at
/// [`Background::close`] or drop.
pub struct Background<C> {
    handle: IoHandle,
    /// Hangs up when the thread's run ends.
    ended: Mutex<mpsc::Receiver<()>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    commands: PhantomData<fn(C)>,
}

impl<C: Send + 'static> Background<C> {
    /// Starts a thread named `name` with a shard that runs `machine` against `target`
    /// (opening its first connection at once) for `service`.
    pub fn spawn<S>(name: &str, machine: S::Machine, target: Target, service: S) -> Result<Background<C>>
    where
        S: Service<Command = C>,
    {
        let (handle_tx, handle_rx) = mpsc::channel();
        let (ended_tx, ended) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let _ended = ended_tx;
                let mut io = match Io::new(Config::default()) {
                    Ok(io) => io,
                    Err(e) => return drop(handle_tx.send(Err(e))),
                };
                let _ = handle_tx.send(Ok(io.handle()));
                let mut runner = Runner { driver: Driver::new(machine, target, 0), service };
                runner.on_batch_end(&mut io);
                if let Err(error) = io.run(&mut runner) {
                    tracing::error!(%error, "background shard failed");
                }
            })
            .map_err(|cause| IoError::Syscall { op: "spawning a background shard".into(), cause })?;
        let handle = handle_rx.recv().map_err(|_| IoError::ShardGone)??;
        Ok(Background {
            handle,
            ended: Mutex::new(ended),
            thread: Mutex::new(Some(thread)),
            commands: PhantomData,
        })
    }

    /// Hands `command` to the service (an error once the shard has stopped).
    pub fn post(&self, command: C) -> Result<()> {
        self.handle.post(Control::Command(command))
    }

    /// Closes gracefully: the service ends its machine ([`Service::close`]) and the thread
    /// ends once the machine is drained; after `wait` it is stopped where it stands. Returns
    /// once the thread is gone.
    pub fn close(&self, wait: Duration) {
        if self.handle.post(Control::<C>::Close).is_ok() {
            let _ = self.ended.lock().unwrap_or_else(|e| e.into_inner()).recv_timeout(wait);
        }
        self.stop();
    }

    /// Stops the shard where it stands and joins its thread.
    pub fn stop(&self) {
        let _ = self.handle.stop();
        if let Some(thread) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = thread.join();
        }
    }
}

impl<C> std::fmt::Debug for Background<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Background").finish_non_exhaustive()
    }
}

impl<C> Drop for Background<C> {
    fn drop(&mut self) {
        let _ = self.handle.stop();
        if let Some(thread) = self.thread.get_mut().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = thread.join();
        }
    }
}

/// The shard's handler: the driver and the service.
struct Runner<S: Service> {
    driver: Driver<S::Machine>,
    service: S,
}

impl<S: Service> Handler for Runner<S> {
    fn on_event(&mut self, ops: &mut Ops, event: Event<'_>) {
        match event {
            Event::Message(message) => match message.downcast::<Control<S::Command>>().map(|c| *c) {
                Ok(Control::Command(command)) => {
                    self.service.command(self.driver.machine(), ops.now(), command)
                }
                Ok(Control::Close) => self.service.close(self.driver.machine()),
                Err(_) => {}
            },
            other => {
                self.driver.on_event(ops, &other);
            }
        }
    }

    /// The callers hear what came (a machine may decode input only as its events are
    /// drained, queueing output as it goes), everything issued in the batch leaves in one
    /// write, and what that caused (a refused send, a close) is heard too.
    fn on_batch_end(&mut self, ops: &mut Ops) {
        self.service.serve(self.driver.machine());
        self.driver.pump(ops);
        self.service.serve(self.driver.machine());
        if self.driver.conn().is_none() && self.driver.machine().is_drained() {
            ops.stop();
        }
    }
}
