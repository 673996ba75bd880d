//! `zero bench redis`: a load generator for any Redis server, built on zero-redis's client
//! machine inline on one zero-core shard (how a server built on zero uses it).
//!
//! - **get-set**: `--callers` logical callers share one connection; each has one command
//!   outstanding and alternates `SET k<i> <value>` and `GET k<i>`. Replies come in command
//!   order, so a queue of caller indices matches them; every reply issues that caller's next
//!   command, and everything issued in a tick leaves in one write (automatic pipelining).
//! - **pubsub**: `--subscribers` connections subscribe to one channel; one more connection
//!   publishes with `--callers` `PUBLISH`es outstanding, and at most `--backlog` deliveries
//!   outstanding end to end (published times subscribers, minus received), so the server's
//!   output buffers never grow without bound. The figure is messages received per second.
//! - **cached-get**: one caller of the blocking client `GET`s `--keys` keys in turn, first
//!   with the client-side cache off, then on (every read after the first of each key is a
//!   hit), for `--duration` each; it prints both and their ratio. This is the cache's
//!   latency win for a caller that waits on each read, not a throughput figure.
//!
//! The last line is machine-readable for `bench/redis.sh`: `RESULT client=zero ... ops=N
//! secs=S cpu=C`, with the client's CPU time (all its threads, from `/proc/self/task/*/
//! schedstat`) over the measured interval.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use zero_core::{Config, Event as IoEvent, Handler, Io, Ops};
use zero_redis::client::{Client, ClientConfig, ClientDriver, Event, SubKind, Target};

/// Options of `zero bench redis`.
#[derive(Args, Debug)]
pub struct RedisLoad {
    /// The server to drive.
    #[arg(long)]
    target: SocketAddr,
    /// What to do.
    #[arg(long, value_enum, default_value_t = Workload::GetSet)]
    workload: Workload,
    /// Commands outstanding on the connection (get-set: callers; pubsub: PUBLISHes).
    #[arg(long, default_value_t = 50)]
    callers: usize,
    /// Value (payload) bytes.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Keys read in turn (cached-get).
    #[arg(long, default_value_t = 100)]
    keys: usize,
    /// Subscribing connections (pubsub).
    #[arg(long, default_value_t = 10)]
    subscribers: usize,
    /// Deliveries outstanding end to end (pubsub).
    #[arg(long, default_value_t = 10_000)]
    backlog: u64,
    /// Seconds to measure (after `--warmup`).
    #[arg(long, default_value_t = 5)]
    duration: u64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 1)]
    warmup: u64,
}

/// The workloads.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// SET and GET, alternating, per caller.
    GetSet,
    /// One publisher, many subscribers on one channel.
    Pubsub,
    /// GETs by one waiting caller, without and with the client-side cache.
    CachedGet,
}

const CHANNEL: &str = "zero-bench";

struct Load {
    /// Driver 0 issues the commands (get-set) or publishes (pubsub); the rest subscribe.
    drivers: Vec<ClientDriver>,
    /// Caller indices in the order of their outstanding commands.
    queue: VecDeque<usize>,
    /// Per caller: whether its next command is a GET.
    reading: Vec<bool>,
    keys: Vec<Vec<u8>>,
    value: Vec<u8>,
    workload: Workload,
    /// PUBLISHes outstanding at most (pubsub).
    window: usize,
    /// Operations (replies, or messages received) so far.
    ops: u64,
    published: u64,
    subscribed: usize,
    backlog: u64,
    failed: Option<String>,
}

impl Load {
    fn next(&mut self, caller: usize, now: Instant) {
        let client = self.drivers[0].machine();
        let key = &self.keys[caller];
        if self.reading[caller] {
            client.send_args(&[&b"GET"[..], key], now);
        } else {
            client.send_args(&[&b"SET"[..], key, &self.value], now);
        }
        self.reading[caller] = !self.reading[caller];
        self.queue.push_back(caller);
    }

    /// Deliveries the publisher may still add.
    fn room(&self) -> bool {
        let subs = self.drivers.len() as u64 - 1;
        (self.published * subs).saturating_sub(self.ops) < self.backlog
    }

    /// Drains driver `d`'s events.
    fn events(&mut self, d: usize, now: Instant) {
        let mut replies = 0u64;
        let mut received = 0u64;
        while let Some(event) = self.drivers[d].machine().poll_event() {
            match event {
                Event::Reply { frame, .. } => {
                    if let zero_redis::codec::Frame::Error(e) = &frame {
                        self.failed = Some(format!("the server replied {}", String::from_utf8_lossy(e)));
                    }
                    if d == 0 {
                        replies += 1;
                    } else {
                        self.subscribed += 1;
                    }
                }
                Event::Message(_) => received += 1,
                Event::Failed { error, .. } => self.failed = Some(error.to_string()),
                Event::Disconnected { error } => self.failed = Some(error.to_string()),
                Event::Connected { .. } | Event::Push(_) => {}
            }
        }
        if self.workload == Workload::Pubsub {
            self.ops += received;
            return;
        }
        self.ops += replies;
        for _ in 0..replies {
            let caller = self.queue.pop_front().expect("a reply answers an outstanding command");
            self.next(caller, now);
        }
    }

    /// Keeps the publisher's window full (pubsub), once every subscriber is in.
    fn publish(&mut self, now: Instant) {
        if self.subscribed < self.drivers.len() - 1 {
            return;
        }
        while self.drivers[0].machine().in_flight() < self.window && self.room() {
            self.drivers[0].machine().send_args(&[b"PUBLISH", CHANNEL.as_bytes(), &self.value], now);
            self.published += 1;
        }
    }
}

impl Handler for Load {
    fn on_event(&mut self, ops: &mut Ops, event: IoEvent<'_>) {
        let now = ops.now();
        if let Some(d) = (0..self.drivers.len()).find(|&d| self.drivers[d].on_event(ops, &event)) {
            self.events(d, now);
        }
    }

    fn on_batch_end(&mut self, ops: &mut Ops) {
        let now = ops.now();
        if self.workload == Workload::Pubsub {
            self.publish(now);
        }
        for d in self.drivers.iter_mut() {
            d.pump(ops);
        }
    }
}

/// CPU time of all of this process's threads.
fn own_cpu() -> Duration {
    crate::bench::cpu_time(std::process::id()).unwrap_or_default()
}

/// Runs the load and prints the result.
pub fn run(load: RedisLoad) -> Result<(), String> {
    if load.workload == Workload::CachedGet {
        return cached_get(&load);
    }
    let mut io = Io::new(Config::default()).map_err(|e| e.to_string())?;
    let target = Target::tcp(load.target);
    let config = ClientConfig { command_timeout: None, ..ClientConfig::default() };
    let connections = match load.workload {
        Workload::Pubsub => 1 + load.subscribers,
        _ => 1,
    };
    let now = Instant::now();
    let mut drivers: Vec<ClientDriver> = (0..connections)
        .map(|i| ClientDriver::new(Client::new(config.clone(), now), target.clone(), i as u64))
        .collect();
    for d in drivers.iter_mut().skip(1) {
        d.machine().subscribe(SubKind::Channel, &[CHANNEL], now);
    }
    let callers = load.callers.max(1);
    let mut state = Load {
        drivers,
        queue: VecDeque::with_capacity(callers),
        reading: vec![false; callers],
        keys: (0..callers).map(|i| format!("zero-bench:{i}").into_bytes()).collect(),
        value: vec![b'x'; load.size],
        workload: load.workload,
        window: callers,
        ops: 0,
        published: 0,
        subscribed: 0,
        backlog: load.backlog,
        failed: None,
    };
    if load.workload == Workload::GetSet {
        for caller in 0..callers {
            state.next(caller, now);
        }
    }
    for d in state.drivers.iter_mut() {
        d.pump(&mut io);
    }
    let started = Instant::now();
    let measure_from = started + Duration::from_secs(load.warmup);
    let end = measure_from + Duration::from_secs(load.duration);
    let mut mark: Option<(Instant, u64, Duration)> = None;
    while Instant::now() < end {
        io.run_once(&mut state, Some(Duration::from_millis(10))).map_err(|e| e.to_string())?;
        if let Some(e) = state.failed.take() {
            return Err(format!("zero bench redis: {e}"));
        }
        if mark.is_none() && Instant::now() >= measure_from {
            mark = Some((Instant::now(), state.ops, own_cpu()));
        }
    }
    let (t0, ops0, cpu0) = mark.ok_or("the run ended before measuring began")?;
    let secs = t0.elapsed().as_secs_f64();
    let ops = state.ops - ops0;
    let cpu = (own_cpu() - cpu0).as_secs_f64();
    let workload = match load.workload {
        Workload::Pubsub => "pubsub",
        _ => "get-set",
    };
    println!(
        "zero-redis {workload}: {:.0} ops/s, {:.0} ops per client CPU-second ({} callers, {} B values)",
        ops as f64 / secs,
        ops as f64 / cpu.max(1e-9),
        callers,
        load.size
    );
    println!(
        "RESULT client=zero workload={workload} callers={callers} ops={ops} secs={secs:.3} cpu={cpu:.3}"
    );
    Ok(())
}

/// The cached-get workload: GETs per second by one waiting caller, cache off then on.
fn cached_get(load: &RedisLoad) -> Result<(), String> {
    use zero_redis::client::{BlockingClient, CacheConfig, Commands};
    let keys: Vec<String> = (0..load.keys.max(1)).map(|i| format!("zero-bench:cached:{i}")).collect();
    let mut rates = Vec::new();
    for cache in [None, Some(CacheConfig::default())] {
        let on = cache.is_some();
        let config = ClientConfig { cache, ..ClientConfig::default() };
        let client = BlockingClient::connect(Target::tcp(load.target), config)
            .map_err(|e| format!("zero bench redis: {e}"))?;
        for key in &keys {
            let _: () = client.set(key, &vec![b'x'; load.size][..]).map_err(|e| e.to_string())?;
        }
        let (mut ops, cpu0, t0) = (0u64, own_cpu(), Instant::now());
        let end = t0 + Duration::from_secs(load.duration);
        while Instant::now() < end {
            for key in &keys {
                let _: Vec<u8> = client.get(key).map_err(|e| e.to_string())?;
            }
            ops += keys.len() as u64;
        }
        let (secs, cpu) = (t0.elapsed().as_secs_f64(), (own_cpu() - cpu0).as_secs_f64());
        let hits = client.cache().map_or(0, |c| c.stats().hits);
        println!(
            "zero-redis cached-get, cache {}: {:.0} GETs/s ({:.2} us each), {:.0} per CPU-second, {hits} hits",
            if on { "on " } else { "off" },
            ops as f64 / secs,
            secs * 1e6 / ops as f64,
            ops as f64 / cpu.max(1e-9),
        );
        rates.push(ops as f64 / secs);
        client.close();
        if on {
            println!(
                "RESULT client=zero workload=cached-get callers=1 ops={ops} secs={secs:.3} cpu={cpu:.3}"
            );
        }
    }
    println!("ratio cache-on/cache-off: {:.0}", rates[1] / rates[0]);
    Ok(())
}
