//! A session for callers outside a shard, on zero-core's runner kit: [`BlockingSession`] runs
//! the session machine on a shard of its own thread (`Background`), [`AsyncSession`] in a
//! task of the caller's Tokio runtime (`Task`, feature `tokio`). Both serve the same callers'
//! half (a zero-core `Service`); they differ only in how they wait. (The latency path is the session inline on
//! the application's shard: a `Driver`, as the acceptor does.)

use std::sync::mpsc;
use std::time::{Duration, Instant};

use zero_core::machine::{Background, Service};
use zero_core::Target;

use crate::session::{Cause, Event, MessageStore, SendError, Session};

/// What a caller hears from the session.
#[derive(Debug)]
#[non_exhaustive]
pub enum Incoming {
    /// Logged on.
    LoggedOn,
    /// An application message, whole, as received (decode it with a `Decoder`).
    Message(Vec<u8>),
    /// The counterparty rejected one of ours (its number, the reason).
    Rejected(Option<u64>, Option<u64>),
    /// The session went down.
    Disconnected(Cause),
}

/// Where a send's outcome goes.
pub(crate) type Reply = Box<dyn FnOnce(Result<u64, SendError>) + Send>;

/// A message to send: its MsgType and its fields after the header, and who hears its number.
pub(crate) struct Outgoing {
    /// MsgType.
    pub(crate) msg_type: Vec<u8>,
    /// The fields after the standard header.
    pub(crate) fields: Vec<(u32, Vec<u8>)>,
    /// Told the number it was sent with, or why it was not.
    pub(crate) reply: Reply,
}

/// The callers' half of a session (a zero-core [`Service`]): it sends what they ask and hands
/// them the session's events.
struct Callers<S> {
    incoming: Box<dyn FnMut(Incoming) + Send>,
    store: std::marker::PhantomData<fn(S)>,
}

impl<S> Callers<S> {
    fn new(incoming: impl FnMut(Incoming) + Send + 'static) -> Callers<S> {
        Callers { incoming: Box::new(incoming), store: std::marker::PhantomData }
    }
}

impl<S: MessageStore + Send + 'static> Service for Callers<S> {
    type Machine = Session<S>;
    type Command = Outgoing;

    fn command(&mut self, session: &mut Session<S>, now: Instant, out: Outgoing) {
        let sent = session.send(now, &out.msg_type, |b| {
            for (tag, value) in &out.fields {
                b.str(*tag, value);
            }
        });
        (out.reply)(sent);
    }

    fn serve(&mut self, session: &mut Session<S>) {
        while let Some(event) = session.poll_event() {
            let incoming = match event {
                Event::LoggedOn => Incoming::LoggedOn,
                Event::Application(m) => Incoming::Message(m.bytes().to_vec()),
                Event::Rejected { ref_seq_num, reason, .. } => Incoming::Rejected(ref_seq_num, reason),
                Event::Disconnected(cause) => Incoming::Disconnected(cause),
                _ => continue,
            };
            (self.incoming)(incoming);
        }
    }

    fn close(&mut self, session: &mut Session<S>) {
        // A runner's caller, not the machine, reads the clock.
        session.close(Instant::now());
    }
}

/// A FIX session whose calls block: it runs on a zero-core shard of its own thread, and
/// reconnects (an initiator) by itself.
pub struct BlockingSession {
    runner: Background<Outgoing>,
    incoming: mpsc::Receiver<Incoming>,
}

impl BlockingSession {
    /// Starts `session` against `target`.
    pub fn start<S: MessageStore + Send + 'static>(
        session: Session<S>,
        target: Target,
    ) -> zero_core::Result<BlockingSession> {
        let (tx, incoming) = mpsc::channel();
        let callers = Callers::<S>::new(move |e| drop(tx.send(e)));
        let runner = Background::spawn("zero-fix-session", session, target, callers)?;
        Ok(BlockingSession { runner, incoming })
    }

    /// Sends an application message; returns its sequence number.
    pub fn send(&self, msg_type: &[u8], fields: Vec<(u32, Vec<u8>)>) -> Result<u64, SendError> {
        let (tx, rx) = mpsc::channel();
        let out =
            Outgoing { msg_type: msg_type.to_vec(), fields, reply: Box::new(move |r| drop(tx.send(r))) };
        self.runner.post(out).map_err(|_| SendError::NotLoggedOn)?;
        rx.recv().unwrap_or(Err(SendError::NotLoggedOn))
    }

    /// The next event, waiting up to `timeout`.
    pub fn recv(&self, timeout: Duration) -> Option<Incoming> {
        self.incoming.recv_timeout(timeout).ok()
    }

    /// Logs out (if logged on) and ends the session, waiting up to `wait`.
    pub fn close(self, wait: Duration) {
        self.runner.close(wait);
    }
}

#[cfg(feature = "tokio")]
pub use self::tokio::AsyncSession;

#[cfg(feature = "tokio")]
mod tokio {
    use std::time::Duration;

    use tokio::sync::{mpsc, oneshot};
    use zero_core::machine::Task;
    use zero_core::Target;

    use super::{Callers, Incoming, Outgoing};
    use crate::session::{MessageStore, SendError, Session};

    /// A FIX session for Tokio: the machine in a task of the caller's runtime.
    pub struct AsyncSession {
        task: Task<Outgoing>,
        incoming: mpsc::UnboundedReceiver<Incoming>,
    }

    impl AsyncSession {
        /// Starts `session` against `target` on the current runtime.
        pub fn start<S: MessageStore + Send + 'static>(session: Session<S>, target: Target) -> AsyncSession {
            let (tx, incoming) = mpsc::unbounded_channel();
            let callers = Callers::<S>::new(move |e| drop(tx.send(e)));
            AsyncSession { task: Task::spawn(session, target, callers), incoming }
        }

        /// Sends an application message; returns its sequence number.
        pub async fn send(&self, msg_type: &[u8], fields: Vec<(u32, Vec<u8>)>) -> Result<u64, SendError> {
            let (tx, rx) = oneshot::channel();
            let out =
                Outgoing { msg_type: msg_type.to_vec(), fields, reply: Box::new(move |r| drop(tx.send(r))) };
            self.task.post(out).map_err(|_| SendError::NotLoggedOn)?;
            rx.await.unwrap_or(Err(SendError::NotLoggedOn))
        }

        /// The next event (`None` once the session ended).
        pub async fn recv(&mut self) -> Option<Incoming> {
            self.incoming.recv().await
        }

        /// Logs out (if logged on) and ends the session, waiting up to `wait`.
        pub async fn close(&self, wait: Duration) {
            self.task.close(wait).await;
        }
    }
}
