//! [`IoCluster`]: N shards on N threads. Each shard builds its own handler and its own
//! listeners (with `ListenOptions::reuse_port`, so the kernel spreads connections across them);
//! shards share nothing and talk only through [`IoHandle`]s, which each shard finds in
//! [`Ops::peers`](crate::Ops::peers).

use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use crate::config::Config;
use crate::error::{IoError, Result};
use crate::event::Handler;
use crate::handle::IoHandle;
use crate::io::Io;
use crate::ring;

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
                            io.join_cluster(shard, peers);
                            io.run(&mut handler)
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

    /// Blocks until every shard stops (through a handle's `stop`, or an error).
    pub fn join(self) -> Result<()> {
        let mut result = Ok(());
        for t in self.threads {
            match t.join() {
                Ok(r) => result = result.and(r),
                Err(_) => result = result.and(Err(IoError::Config("a shard thread panicked".into()))),
            }
        }
        result
    }

    /// Stops every shard and waits for them.
    pub fn stop(self) -> Result<()> {
        for h in &self.handles {
            let _ = h.stop();
        }
        self.join()
    }
}
