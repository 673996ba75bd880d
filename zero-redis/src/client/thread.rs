//! The shard driver on a thread of its own, for the blocking and Tokio clients. Callers post
//! [`Command`]s through the shard's handle; each call names a callback that gets its replies.
//! Calls posted between two ticks are issued in the same tick and leave in one write. Over
//! RESP2, subscriptions get a connection (and machine) of their own. It holds no protocol
//! logic; the machines do.

use std::collections::BTreeMap;
use std::thread::JoinHandle;
use std::time::Instant;

use zero_core::{Config, Event as IoEvent, Handler, Io, IoHandle, Ops};

use super::cache::SharedCache;
use super::driver::{ClientDriver, Target};
use super::machine::{Client, ClientConfig, Event, Message, Protocol, RequestId, SubKind};
use crate::cmd::Cmd;
use crate::error::Error;
use crate::value::{FromValue, Value};

/// Where a call's replies go, one per command, in order.
pub(crate) type Done = Box<dyn FnOnce(Vec<Result<Value, Error>>) + Send>;

/// Where subscription messages and other pushes go.
pub(crate) type Sink = Box<dyn FnMut(Delivery) + Send>;

/// What arrives out of band.
pub(crate) enum Delivery {
    /// A message on a subscription.
    Message(Message<'static>),
    /// Another push (a `CLIENT TRACKING` invalidation, ...).
    Push(Value),
}

/// Told once: the first connection is ready (with its protocol), or it failed.
pub(crate) type Ready = Box<dyn FnOnce(Result<Protocol, Error>) + Send>;

/// What a caller asks of the shard thread.
pub(crate) enum Command {
    /// Commands to send together.
    Query(Vec<Cmd>, Done),
    /// (Un)subscribe.
    Subscribe { kind: SubKind, channels: Vec<Vec<u8>>, on: bool, done: Done },
    /// Close the client; the callback runs once it is closed.
    Close(Box<dyn FnOnce() + Send>),
}

/// The replies to one call, as they arrive.
struct Call {
    results: Vec<Option<Result<Value, Error>>>,
    left: usize,
    done: Done,
}

/// One connection's driver and the calls waiting on it (by their first request id; a call's
/// ids are consecutive).
struct Conn {
    driver: ClientDriver,
    calls: BTreeMap<u64, Call>,
}

impl Conn {
    fn new(client: Client, target: Target, token: u64) -> Conn {
        Conn { driver: ClientDriver::new(client, target, token), calls: BTreeMap::new() }
    }

    /// Files a reply (or failure) under its call; runs the call's callback once complete.
    fn settle(&mut self, id: RequestId, result: Result<Value, Error>) {
        let Some((&first, call)) = self.calls.range_mut(..=id.0).next_back() else { return };
        let Some(slot) = call.results.get_mut((id.0 - first) as usize) else { return };
        *slot = Some(result);
        call.left -= 1;
        if call.left == 0 {
            let call = self.calls.remove(&first).expect("found above");
            (call.done)(call.results.into_iter().map(|r| r.expect("every reply arrived")).collect());
        }
    }
}

struct Runner {
    /// The command connection, and over RESP2 the subscriber connection (opened on the first
    /// subscription: a RESP2 connection in pub/sub mode takes no other commands).
    conns: Vec<Conn>,
    target: Target,
    config: ClientConfig,
    sink: Sink,
    ready: Option<Ready>,
    closing: Option<Box<dyn FnOnce() + Send>>,
}

impl Runner {
    fn command(&mut self, ops: &mut Ops, command: Command) {
        let now = ops.now();
        let (conn, first, count, done) = match command {
            Command::Query(cmds, done) => {
                let client = self.conns[0].driver.machine();
                let ids: Vec<_> = cmds.iter().map(|c| client.send(c, now)).collect();
                (0, ids.first().map(|id| id.0), ids.len(), done)
            }
            Command::Subscribe { kind, channels, on, done } => {
                let conn = self.subscriber(now);
                let client = self.conns[conn].driver.machine();
                let id = match on {
                    true => client.subscribe(kind, &channels, now),
                    false => client.unsubscribe(kind, &channels, now),
                };
                (conn, Some(id.0), 1, done)
            }
            Command::Close(then) => {
                for conn in &mut self.conns {
                    conn.driver.machine().close();
                }
                self.closing = Some(then);
                return;
            }
        };
        match first {
            Some(first) => {
                let call = Call { results: (0..count).map(|_| None).collect(), left: count, done };
                self.conns[conn].calls.insert(first, call);
            }
            None => done(Vec::new()),
        }
    }

    /// The connection subscriptions go on: the command connection over RESP3, a dedicated
    /// one over RESP2.
    fn subscriber(&mut self, now: Instant) -> usize {
        if self.conns[0].driver.machine().protocol() == Protocol::Resp3 {
            return 0;
        }
        if self.conns.len() == 1 {
            let config = ClientConfig { protocol: Protocol::Resp2, cache: None, ..self.config.clone() };
            self.conns.push(Conn::new(Client::new(config, now), self.target.clone(), 1));
        }
        1
    }

    /// Hands the machines' events to whoever waits for them.
    fn events(&mut self, ops: &mut Ops) {
        for c in 0..self.conns.len() {
            while let Some(event) = self.conns[c].driver.machine().poll_event() {
                let (id, result) = match event {
                    Event::Reply { id, frame } => (id, Ok(frame.into_owned())),
                    Event::Failed { id, error } => (id, Err(error)),
                    Event::Message(m) => {
                        (self.sink)(Delivery::Message(m.into_owned()));
                        continue;
                    }
                    Event::Push(frame) => {
                        (self.sink)(Delivery::Push(frame.into_owned()));
                        continue;
                    }
                    Event::Connected { protocol } => {
                        if let Some(ready) = self.ready.take() {
                            ready(Ok(protocol));
                        }
                        continue;
                    }
                    Event::Disconnected { error } => {
                        tracing::debug!(%error, "Redis connection lost");
                        if let Some(ready) = self.ready.take() {
                            ready(Err(error));
                            self.conns[c].driver.machine().close();
                            ops.stop();
                        }
                        continue;
                    }
                };
                self.conns[c].settle(id, result);
            }
        }
    }
}

impl Handler for Runner {
    fn on_event(&mut self, ops: &mut Ops, event: IoEvent<'_>) {
        match event {
            IoEvent::Message(m) => {
                if let Ok(command) = m.downcast::<Command>() {
                    self.command(ops, *command);
                }
            }
            other => {
                let _ = self.conns.iter_mut().any(|c| c.driver.on_event(ops, &other));
            }
        }
        self.events(ops);
    }

    fn on_batch_end(&mut self, ops: &mut Ops) {
        for conn in &mut self.conns {
            conn.driver.pump(ops);
        }
        self.events(ops);
        if self.closing.is_some() && self.conns.iter().all(|c| c.driver.conn().is_none()) {
            (self.closing.take().expect("checked"))();
            ops.stop();
        }
    }
}

/// What [`spawn`] gives the client: the shard's handle, its thread, and the client-side cache
/// (if on), which callers answer reads from on their own threads.
pub(crate) type Spawned = (IoHandle, JoinHandle<()>, Option<SharedCache>);

/// Starts the shard thread; `ready` hears about the first connection.
pub(crate) fn spawn(
    target: Target,
    config: ClientConfig,
    sink: Sink,
    ready: Ready,
) -> Result<Spawned, Error> {
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("zero-redis".into())
        .spawn(move || {
            let mut io = match Io::new(Config::default()) {
                Ok(io) => io,
                Err(e) => return drop(handle_tx.send(Err(Error::Start(format!("its shard: {e}"))))),
            };
            let client = Client::new(config.clone(), Instant::now());
            let _ = handle_tx.send(Ok((io.handle(), client.cache().cloned())));
            let conns = vec![Conn::new(client, target.clone(), 0)];
            let mut runner = Runner { conns, target, config, sink, ready: Some(ready), closing: None };
            runner.conns[0].driver.pump(&mut io);
            if let Err(e) = io.run(&mut runner) {
                tracing::error!(%e, "Redis client shard failed");
            }
        })
        .map_err(|e| Error::Start(format!("its thread: {e}")))?;
    let (handle, cache) = handle_rx.recv().map_err(|_| Error::Closed)??;
    Ok((handle, thread, cache))
}

/// A call's replies as the caller's type: one command's reply, or a pipeline's replies as an
/// array (a transaction's: `EXEC`'s reply). A failed command fails the call.
pub(crate) fn convert<T: FromValue>(
    results: Vec<Result<Value, Error>>,
    atomic: bool,
    single: bool,
) -> Result<T, Error> {
    let mut values = results.into_iter().collect::<Result<Vec<_>, Error>>()?;
    if single || atomic {
        return T::from_value(values.pop().ok_or(Error::Closed)?);
    }
    T::from_value(Value::Array(values))
}
