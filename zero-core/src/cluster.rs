//! [`IoCluster`]: N shards on N threads. Each shard builds its own handler and its own
//! listeners (with `ListenOptions::reuse_port`, so the kernel spreads connections across them);
//! shards share nothing and talk only through [`IoHandle`]s, which each shard finds in
//! [`Ops::peers`](crate::Ops::peers).
//!
//! **A panic stops the cluster.** A shard whose handler panics stops every other shard and
//! closes its own sockets (listeners first, so the kernel sends no more connections its
//! way); [`IoCluster::join`] then returns [`IoError::ShardPanicked`]. A cluster with one
//! shard dead would accept connections on that shard's listeners that nobody serves, and a
//! panicked handler's state cannot be trusted to be rebuilt in place, so the whole cluster
//! stops and its process can exit non-zero for a supervisor to restart it.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use crate::config::Config;
use crate::drain::Stopper;
use crate::error::{IoError, Result};
use crate::event::Handler;
use crate::handle::IoHandle;
use crate::io::Io;
use crate::ring;

/// Ports reserved for a cluster's listeners, held until every shard listens (then dropped).
#[derive(Debug, Default)]
pub struct Reserved(Vec<socket2::Socket>);

impl Reserved {
    /// `addr` as every shard can listen on it: a port-0 address is given its port now
    /// ([`reserve_port`]); another is taken as it is.
    pub fn port(&mut self, addr: std::net::SocketAddr) -> Result<std::net::SocketAddr> {
        if addr.port() != 0 {
            return Ok(addr);
        }
        let (sock, bound) = reserve_port(addr)?;
        self.0.push(sock);
        Ok(bound)
    }
}

/// Binds (without listening, so it takes no connections) a socket with `SO_REUSEPORT` at
/// `addr`, port 0 picking one: a cluster's shards then all listen on the port it got. Keep
/// the socket until every shard listens.
pub fn reserve_port(addr: std::net::SocketAddr) -> Result<(socket2::Socket, std::net::SocketAddr)> {
    use socket2::{Domain, Socket, Type};
    let fail = |e| IoError::sys(format!("reserve a port on {addr}"), e);
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None).map_err(fail)?;
    sock.set_reuse_port(true).map_err(fail)?;
    sock.bind(&addr.into()).map_err(fail)?;
    let bound = sock
        .local_addr()
        .map_err(fail)?
        .as_socket()
        .ok_or_else(|| IoError::Config(format!("{addr}: not an internet address")))?;
    Ok((sock, bound))
}

/// How to run a cluster.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClusterConfig {
    /// Number of shards (threads).
    pub shards: usize,
    /// Pin shard `i` to CPU `cpus[i % cpus.len()]`; empty: no pinning.
    pub cpus: Vec<usize>,
    /// Settings of every shard.
    pub io: Config,
}

impl ClusterConfig {
    /// `shards` shards with default settings, unpinned.
    pub fn new(shards: usize) -> ClusterConfig {
        ClusterConfig { shards, cpus: Vec::new(), io: Config::default() }
    }
}

/// Running shards.
pub struct IoCluster {
    threads: Vec<JoinHandle<Result<()>>>,
    handles: Vec<IoHandle>,
}

impl IoCluster {
    /// Starts the shards. `setup(shard_index, &mut io)` runs on each shard's thread, opens its
    /// sockets and returns its handler; the shard then runs until stopped. Returns once every
    /// shard is set up, or with the first setup error.
    pub fn start<H, F>(config: ClusterConfig, setup: F) -> Result<IoCluster>
    where
        H: Handler,
        F: Fn(usize, &mut Io) -> Result<H> + Send + Sync + 'static,
    {
        if config.shards == 0 {
            return Err(IoError::Config("a cluster needs at least one shard".into()));
        }
        let setup = Arc::new(setup);
        let (ready_tx, ready_rx) = mpsc::channel::<(usize, Result<IoHandle>)>();
        let mut threads = Vec::with_capacity(config.shards);
        let mut peer_txs = Vec::with_capacity(config.shards);
        for shard in 0..config.shards {
            let (setup, ready, io_config) = (setup.clone(), ready_tx.clone(), config.io.clone());
            // Every shard learns its siblings' handles before its first event.
            let (peers_tx, peers_rx) = mpsc::channel::<Arc<[IoHandle]>>();
            peer_txs.push(peers_tx);
            let cpu = (!config.cpus.is_empty()).then(|| config.cpus[shard % config.cpus.len()]);
            let thread = std::thread::Builder::new()
                .name(format!("zero-shard-{shard}"))
                .spawn(move || -> Result<()> {
                    let started = (|| {
                        if let Some(cpu) = cpu {
                            ring::pin_to_cpu(cpu)?;
                        }
                        let mut io = Io::new(io_config)?;
                        let handler = setup(shard, &mut io)?;
                        Ok((io, handler))
                    })();
                    match started {
                        Ok((mut io, mut handler)) => {
                            let _ = ready.send((shard, Ok(io.handle())));
                            // No peers: another shard failed its setup and the cluster stops.
                            let Ok(peers) = peers_rx.recv() else { return Ok(()) };
                            io.join_cluster(shard, peers.clone());
                            let run = std::panic::catch_unwind(AssertUnwindSafe(|| io.run(&mut handler)));
                            run.unwrap_or_else(|panic| {
                                for (i, peer) in peers.iter().enumerate().filter(|&(i, _)| i != shard) {
                                    if peer.stop().is_err() {
                                        tracing::debug!(shard = i, "already stopped");
                                    }
                                }
                                drop((io, handler));
                                Err(IoError::ShardPanicked { shard, message: panic_message(&*panic) })
                            })
                        }
                        Err(e) => {
                            let _ = ready.send((shard, Err(e)));
                            Ok(())
                        }
                    }
                })
                .map_err(|e| IoError::sys("spawn shard thread", e))?;
            threads.push(thread);
        }
        drop(ready_tx);
        let mut handles: Vec<Option<IoHandle>> = vec![None; config.shards];
        let mut first_error = None;
        for (shard, result) in ready_rx.iter().take(config.shards) {
            match result {
                Ok(h) => handles[shard] = Some(h),
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        let handles: Vec<IoHandle> = handles.into_iter().flatten().collect();
        if first_error.is_none() {
            let peers: Arc<[IoHandle]> = handles.clone().into();
            for tx in &peer_txs {
                let _ = tx.send(peers.clone());
            }
        }
        drop(peer_txs);
        let cluster = IoCluster { threads, handles };
        match first_error {
            Some(e) => {
                let _ = cluster.stop();
                Err(e)
            }
            None => Ok(cluster),
        }
    }

    /// One handle per shard, in shard order.
    pub fn handles(&self) -> &[IoHandle] {
        &self.handles
    }

    /// Blocks until every shard stops (through a handle's `stop`, an error, or a panic, which
    /// stops them all); returns the first shard's error, a panic's before any other.
    pub fn join(self) -> Result<()> {
        let mut errors: Vec<IoError> = Vec::new();
        for (shard, t) in self.threads.into_iter().enumerate() {
            let r = t.join().unwrap_or_else(|panic| {
                Err(IoError::ShardPanicked { shard, message: panic_message(&*panic) })
            });
            errors.extend(r.err());
        }
        match errors.iter().position(|e| matches!(e, IoError::ShardPanicked { .. })) {
            Some(i) => Err(errors.swap_remove(i)),
            None => errors.into_iter().next().map_or(Ok(()), Err),
        }
    }

    /// A handle that shuts the cluster down gracefully from any thread (a signal handler's):
    /// see [`Stopper::shutdown`].
    pub fn stopper(&self) -> Stopper {
        Stopper::new(self.handles.clone())
    }

    /// A handle that collects every shard's metrics from any thread.
    pub fn collector(&self) -> crate::admin::Collector {
        crate::admin::Collector::new(self.handles.clone())
    }

    /// Drains every shard (see [`Stopper::shutdown`]), stops them and waits for them.
    pub fn shutdown(self, grace: std::time::Duration) -> Result<()> {
        self.stopper().shutdown(grace);
        self.join()
    }

    /// Stops every shard at once and waits for them.
    pub fn stop(self) -> Result<()> {
        for h in &self.handles {
            let _ = h.stop();
        }
        self.join()
    }
}

/// What a panic said, if it said it with a string.
fn panic_message(panic: &(dyn Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(s), _) => (*s).to_string(),
        (_, Some(s)) => s.clone(),
        _ => "a non-string panic payload".to_string(),
    }
}
