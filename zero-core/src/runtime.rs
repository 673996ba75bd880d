//! [`ZeroRuntime`]: shards driven from a Tokio application, in the mode its handlers need.
//!
//! - [`ZeroRuntime::run_sync`]: shards on threads of their own, handlers inline (zero-core's
//!   own way: no allocation, no thread hop per event). For handlers that never wait.
//! - [`ZeroRuntime::run_async`]: shards on threads of their own; each connection is served by a
//!   Tokio task on the application's runtime ([`Connection`]), for handlers that wait on other
//!   things (a database call). Bytes reach the task through a channel without a copy (the pool
//!   slot travels, see [`DetachedBuf`]); replies go back through the shard's handle.
//! - [`ZeroRuntime::run_per_core`]: per core, one thread running one shard and one
//!   current-thread runtime: connection tasks stay on the shard's core (and may be `!Send`).
//!   The shard is a task there, woken through a descriptor that becomes readable when its ring
//!   has work ([`Io::wait_fd`]).
//! - [`serve`]: a `tower::Service` behind a connection, for request/response protocols, in
//!   either async mode.
//!
//! What each costs, measured by `bench/bridge.sh`, is in the README.
//!
//! Backpressure: a task that reads slowly holds its payloads' pool slots; when the pool runs
//! low the shard stops receiving (on every connection) until slots come back.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::admin::Collector;
use crate::cluster::{ClusterConfig, IoCluster};
use crate::config::ListenOptions;
use crate::drain::Stopper;
use crate::error::{IoError, Result};
use crate::event::{Event, Handler};
use crate::handle::IoHandle;
use crate::id::ConnId;
use crate::io::Io;
use crate::ops::Ops;
use crate::pool::DetachedBuf;

/// Runs shards for a Tokio application (see the module docs for the modes).
#[derive(Debug, Clone)]
pub struct ZeroRuntime {
    config: ClusterConfig,
}

/// Shards started by a [`ZeroRuntime`].
pub struct Running {
    stopper: Stopper,
    collector: Collector,
    threads: Vec<JoinHandle<Result<()>>>,
}

impl Running {
    /// Stops (or drains) the shards from any thread or task.
    pub fn stopper(&self) -> Stopper {
        self.stopper.clone()
    }

    /// Collects the shards' metrics from any thread or task.
    pub fn collector(&self) -> Collector {
        self.collector.clone()
    }

    /// Waits, without blocking the runtime, until every shard has stopped; the first error.
    pub async fn join(self) -> Result<()> {
        let threads = self.threads;
        tokio::task::spawn_blocking(move || {
            let mut first = Ok(());
            for t in threads {
                let r = t.join().unwrap_or_else(|_| Err(IoError::Config("a shard thread panicked".into())));
                if first.is_ok() {
                    first = r;
                }
            }
            first
        })
        .await
        .unwrap_or_else(|e| Err(IoError::Config(format!("join task: {e}"))))
    }
}

impl ZeroRuntime {
    /// A runtime for `config`'s shards (its `shards` and `cpus` apply to every mode).
    pub fn new(config: ClusterConfig) -> ZeroRuntime {
        ZeroRuntime { config }
    }

    /// Shards on their own threads with inline handlers: `setup` as for
    /// [`IoCluster::start`].
    pub fn run_sync<H, F>(self, setup: F) -> Result<Running>
    where
        H: Handler,
        F: Fn(usize, &mut Io) -> Result<H> + Send + Sync + 'static,
    {
        let cluster = IoCluster::start(self.config, setup)?;
        let (stopper, collector) = (cluster.stopper(), cluster.collector());
        let thread = std::thread::Builder::new()
            .name("zero-cluster-join".into())
            .spawn(move || cluster.join())
            .map_err(|e| IoError::sys("spawn the cluster's join thread", e))?;
        Ok(Running { stopper, collector, threads: vec![thread] })
    }

    /// Shards on their own threads accepting on `listen`; every connection is served by
    /// `serve(connection)` as a task on the current Tokio runtime.
    pub fn run_async<S, Fut>(self, listen: SocketAddr, serve: S) -> Result<Running>
    where
        S: Fn(Connection) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let tokio = tokio::runtime::Handle::try_current()
            .map_err(|_| IoError::Config("run_async must be called within a Tokio runtime".into()))?;
        let serve = Arc::new(serve);
        self.run_sync(move |_, io| {
            listen_on(io, listen)?;
            let (serve, tokio) = (serve.clone(), tokio.clone());
            Ok(Bridge::new(io.handle(), move |conn| drop(tokio.spawn(serve(conn)))))
        })
    }

    /// Per core, a thread with one shard and one current-thread runtime accepting on `listen`;
    /// every connection is served by `serve(connection)` as a local task on its shard's thread.
    pub fn run_per_core<S, Fut>(self, listen: SocketAddr, serve: S) -> Result<Running>
    where
        S: Fn(Connection) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let serve = Arc::new(serve);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let mut threads = Vec::new();
        for shard in 0..self.config.shards {
            let (serve, ready, mut io_config) = (serve.clone(), ready_tx.clone(), self.config.io.clone());
            io_config.driven_externally = true;
            let cpu =
                (!self.config.cpus.is_empty()).then(|| self.config.cpus[shard % self.config.cpus.len()]);
            let thread = std::thread::Builder::new()
                .name(format!("zero-core-{shard}"))
                .spawn(move || -> Result<()> {
                    if let Some(cpu) = cpu {
                        crate::ring::pin_to_cpu(cpu)?;
                    }
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| IoError::sys("a current-thread Tokio runtime", e))?;
                    let local = tokio::task::LocalSet::new();
                    local.block_on(&rt, async move {
                        let started =
                            Io::new(io_config).and_then(|mut io| listen_on(&mut io, listen).map(|()| io));
                        let mut io = match started {
                            Ok(io) => io,
                            Err(e) => {
                                let _ = ready.send(Err(IoError::Config(e.to_string())));
                                return Err(e);
                            }
                        };
                        let _ = ready.send(Ok(io.handle()));
                        let serve = serve.clone();
                        let bridge =
                            Bridge::new(io.handle(), move |conn| drop(tokio::task::spawn_local(serve(conn))));
                        drive(&mut io, bridge).await
                    })
                })
                .map_err(|e| IoError::sys("spawn a shard thread", e))?;
            threads.push(thread);
        }
        drop(ready_tx);
        let mut handles = Vec::new();
        for _ in 0..self.config.shards {
            match ready_rx.recv() {
                Ok(Ok(h)) => handles.push(h),
                Ok(Err(e)) => {
                    for h in &handles {
                        let _ = h.stop();
                    }
                    return Err(e);
                }
                Err(_) => return Err(IoError::Config("a shard thread ended before it started".into())),
            }
        }
        Ok(Running { stopper: Stopper::new(handles.clone()), collector: Collector::new(handles), threads })
    }
}

/// Runs `io` as a task: a tick without waiting, then wait (letting other tasks run) for the
/// ring to have work or the next timer.
async fn drive<H: Handler>(io: &mut Io, mut handler: H) -> Result<()> {
    let fd = crate::ring::tokio_watch(io.wait_fd()?)
        .map_err(|e| IoError::sys("register the shard with Tokio", e))?;
    loop {
        io.run_once(&mut handler, Some(Duration::ZERO))?;
        if io.is_stopped() {
            return Ok(());
        }
        if io.prepare_wait()? {
            tokio::task::yield_now().await; // let the connection tasks run meanwhile
            continue;
        }
        let deadline = io.next_deadline().unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            ready = fd.readable() => {
                let mut guard = ready.map_err(|e| IoError::sys("wait for the shard's ring", e))?;
                io.ack_wait();
                guard.clear_ready();
            }
            () = tokio::time::sleep_until(deadline.into()) => {}
        }
    }
}

fn listen_on(io: &mut Io, listen: SocketAddr) -> Result<()> {
    let opts = ListenOptions { reuse_port: true, ..ListenOptions::default() };
    io.tcp_listen_with(listen, &opts).map(drop)
}

/// A connection served by a Tokio task.
pub struct Connection {
    id: ConnId,
    peer: Option<SocketAddr>,
    input: mpsc::UnboundedReceiver<DetachedBuf>,
    handle: IoHandle,
}

impl Connection {
    /// The next bytes the peer sent; `None` once the connection is closed.
    pub async fn recv(&mut self) -> Option<DetachedBuf> {
        self.input.recv().await
    }

    /// Queues `bytes` on the connection (dropped if it is gone; see [`IoHandle::send`]).
    pub fn send(&self, bytes: impl Into<Vec<u8>>) -> Result<()> {
        self.handle.send(self.id, bytes)
    }

    /// Closes the connection after what is queued.
    pub fn close(&self) -> Result<()> {
        self.handle.close(self.id)
    }

    /// Its id on its shard.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// The peer's address.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }
}

/// The shard side of the async modes: a channel per connection, a task spawned per accept.
struct Bridge<F> {
    conns: HashMap<ConnId, mpsc::UnboundedSender<DetachedBuf>>,
    handle: IoHandle,
    spawn: F,
}

impl<F: FnMut(Connection)> Bridge<F> {
    fn new(handle: IoHandle, spawn: F) -> Bridge<F> {
        Bridge { conns: HashMap::new(), handle, spawn }
    }
}

impl<F: FnMut(Connection)> Handler for Bridge<F> {
    fn on_event(&mut self, ops: &mut Ops, event: Event<'_>) {
        match event {
            Event::Accepted { conn, .. } => {
                let (tx, input) = mpsc::unbounded_channel();
                self.conns.insert(conn, tx);
                let peer = ops.peer_addr(conn).ok();
                (self.spawn)(Connection { id: conn, peer, input, handle: self.handle.clone() });
            }
            Event::Data { conn, data } => {
                if let Some(tx) = self.conns.get(&conn) {
                    if tx.send(data.detach()).is_err() {
                        // The task is done with the connection.
                        self.conns.remove(&conn);
                        let _ = ops.close(conn);
                    }
                }
            }
            Event::Closed { conn, .. } => drop(self.conns.remove(&conn)),
            _ => {}
        }
    }
}

/// Frames for [`serve`]: requests cut out of a connection's bytes, responses written.
pub trait Framing {
    /// A request.
    type Request;
    /// Its response.
    type Response;
    /// Takes the first whole request off the front of `buf`, if there is one; an error closes
    /// the connection.
    fn decode(&mut self, buf: &mut Vec<u8>) -> std::result::Result<Option<Self::Request>, String>;
    /// Appends `response` to `out`.
    fn encode(&mut self, response: Self::Response, out: &mut Vec<u8>);
}

/// Serves `conn` with a `tower::Service`: requests are decoded in order, each response sent
/// before the next request is called (pipelined requests keep their order). Returns when the
/// connection closes, the framing fails, or the service does.
pub async fn serve<F, S>(mut conn: Connection, mut framing: F, mut service: S)
where
    F: Framing,
    S: tower_service::Service<F::Request, Response = F::Response>,
    S::Error: std::fmt::Display,
{
    let mut buf = Vec::new();
    let mut out = Vec::new();
    while let Some(bytes) = conn.recv().await {
        buf.extend_from_slice(&bytes);
        drop(bytes);
        loop {
            let request = match framing.decode(&mut buf) {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(conn = %conn.id, error = %e, "bad request; closing");
                    let _ = conn.close();
                    return;
                }
            };
            let ready = std::future::poll_fn(|cx| service.poll_ready(cx)).await;
            let response = match ready {
                Ok(()) => service.call(request).await,
                Err(e) => Err(e),
            };
            match response {
                Ok(response) => framing.encode(response, &mut out),
                Err(e) => {
                    tracing::debug!(conn = %conn.id, error = %e, "service failed; closing");
                    let _ = conn.close();
                    return;
                }
            }
        }
        if !out.is_empty() && conn.send(std::mem::take(&mut out)).is_err() {
            return;
        }
    }
}
