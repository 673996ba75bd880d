//! The same workloads as `zero bench redis`, with redis-rs (multiplexed async connection),
//! fred, or zero-redis's Tokio client (`zero-tokio`), on one Tokio thread. Prints the same `RESULT` line for bench/redis.sh.
//!
//! Usage: redis-clients-bench <redis-rs|fred|zero-tokio> <get-set|pubsub> ADDR CALLERS SIZE SUBSCRIBERS
//!        BACKLOG WARMUP DURATION

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::Semaphore;

const CHANNEL: &str = "zero-bench";

struct Run {
    client: String,
    workload: String,
    addr: String,
    callers: usize,
    size: usize,
    subscribers: usize,
    backlog: usize,
    warmup: u64,
    duration: u64,
}

/// CPU time of all of this process's threads.
fn cpu_time() -> Duration {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        total += stat.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
    }
    Duration::from_nanos(total)
}

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    assert_eq!(
        a.len(),
        9,
        "usage: redis-clients-bench CLIENT WORKLOAD ADDR CALLERS SIZE SUBSCRIBERS BACKLOG WARMUP DURATION"
    );
    let run = Run {
        client: a[0].clone(),
        workload: a[1].clone(),
        addr: a[2].clone(),
        callers: a[3].parse().unwrap(),
        size: a[4].parse().unwrap(),
        subscribers: a[5].parse().unwrap(),
        backlog: a[6].parse().unwrap(),
        warmup: a[7].parse().unwrap(),
        duration: a[8].parse().unwrap(),
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let ops = Arc::new(AtomicU64::new(0));
        match (run.client.as_str(), run.workload.as_str()) {
            ("redis-rs", "get-set") => redis_rs::get_set(&run, ops.clone()).await,
            ("redis-rs", "pubsub") => redis_rs::pubsub(&run, ops.clone()).await,
            ("redis-rs", "cached-get") => redis_rs::cached_get(&run, ops.clone()).await,
            ("zero-tokio", "get-set") => zero::get_set(&run, ops.clone()).await,
            ("zero-tokio", "pubsub") => zero::pubsub(&run, ops.clone()).await,
            ("fred", "get-set") => fred_client::get_set(&run, ops.clone()).await,
            ("fred", "pubsub") => fred_client::pubsub(&run, ops.clone()).await,
            other => panic!("unknown client or workload {other:?}"),
        }
        tokio::time::sleep(Duration::from_secs(run.warmup)).await;
        let (t0, ops0, cpu0) = (Instant::now(), ops.load(Relaxed), cpu_time());
        tokio::time::sleep(Duration::from_secs(run.duration)).await;
        let secs = t0.elapsed().as_secs_f64();
        let n = ops.load(Relaxed) - ops0;
        let cpu = (cpu_time() - cpu0).as_secs_f64();
        println!(
            "{} {}: {:.0} ops/s, {:.0} ops per client CPU-second ({} callers, {} B values)",
            run.client,
            run.workload,
            n as f64 / secs,
            n as f64 / cpu.max(1e-9),
            run.callers,
            run.size
        );
        println!(
            "RESULT client={} workload={} callers={} ops={n} secs={secs:.3} cpu={cpu:.3}",
            run.client, run.workload, run.callers
        );
        std::process::exit(0);
    });
}

/// Publishing room: each PUBLISH takes one permit per subscriber, each message received
/// gives one back, so at most `backlog` deliveries are outstanding end to end.
fn gate(run: &Run) -> Arc<Semaphore> {
    Arc::new(Semaphore::new(run.backlog))
}

mod redis_rs {
    use super::*;

    pub async fn get_set(run: &Run, ops: Arc<AtomicU64>) {
        let client = redis::Client::open(format!("redis://{}/", run.addr)).unwrap();
        let con = client.get_multiplexed_async_connection().await.unwrap();
        let value = vec![b'x'; run.size];
        for i in 0..run.callers {
            let (mut con, ops, value) = (con.clone(), ops.clone(), value.clone());
            tokio::spawn(async move {
                let key = format!("zero-bench:{i}");
                loop {
                    let () = redis::cmd("SET").arg(&key).arg(&value).query_async(&mut con).await.unwrap();
                    let _: Option<Vec<u8>> = redis::cmd("GET").arg(&key).query_async(&mut con).await.unwrap();
                    ops.fetch_add(2, Relaxed);
                }
            });
        }
    }

    /// One task GETs 100 keys in turn through redis-rs's client-side cache (RESP3 tracking).
    pub async fn cached_get(run: &Run, ops: Arc<AtomicU64>) {
        let client = redis::Client::open(format!("redis://{}/?protocol=resp3", run.addr)).unwrap();
        let config = redis::AsyncConnectionConfig::new().set_cache_config(redis::caching::CacheConfig::new());
        let mut con = client.get_multiplexed_async_connection_with_config(&config).await.unwrap();
        let keys: Vec<String> = (0..100).map(|i| format!("zero-bench:cached:{i}")).collect();
        let value = vec![b'x'; run.size];
        for key in &keys {
            let () = redis::cmd("SET").arg(key).arg(&value).query_async(&mut con).await.unwrap();
        }
        tokio::spawn(async move {
            loop {
                for key in &keys {
                    let _: Vec<u8> = redis::cmd("GET").arg(key).query_async(&mut con).await.unwrap();
                }
                ops.fetch_add(keys.len() as u64, Relaxed);
                // Hits complete without waiting: let the timer that ends the run in.
                tokio::task::yield_now().await;
            }
        });
    }

    pub async fn pubsub(run: &Run, ops: Arc<AtomicU64>) {
        let client = redis::Client::open(format!("redis://{}/", run.addr)).unwrap();
        let gate = gate(run);
        for _ in 0..run.subscribers {
            let mut pubsub = client.get_async_pubsub().await.unwrap();
            pubsub.subscribe(CHANNEL).await.unwrap();
            let (ops, gate) = (ops.clone(), gate.clone());
            tokio::spawn(async move {
                let mut messages = pubsub.on_message();
                while let Some(m) = messages.next().await {
                    let _: &[u8] = m.get_payload_bytes();
                    ops.fetch_add(1, Relaxed);
                    gate.add_permits(1);
                }
            });
        }
        let con = client.get_multiplexed_async_connection().await.unwrap();
        let value = vec![b'x'; run.size];
        let subs = run.subscribers as u32;
        for _ in 0..run.callers {
            let (mut con, value, gate) = (con.clone(), value.clone(), gate.clone());
            tokio::spawn(async move {
                loop {
                    gate.acquire_many(subs).await.unwrap().forget();
                    let _: i64 =
                        redis::cmd("PUBLISH").arg(CHANNEL).arg(&value).query_async(&mut con).await.unwrap();
                }
            });
        }
    }
}

mod fred_client {
    use fred::prelude::*;

    use super::*;

    fn config(run: &Run) -> Config {
        Config::from_url(&format!("redis://{}", run.addr)).unwrap()
    }

    pub async fn get_set(run: &Run, ops: Arc<AtomicU64>) {
        let client = Builder::from_config(config(run)).build().unwrap();
        client.init().await.unwrap();
        // `Bytes`: cloning the value per command is a reference count, not a copy.
        let value = bytes::Bytes::from(vec![b'x'; run.size]);
        for i in 0..run.callers {
            let (client, ops, value) = (client.clone(), ops.clone(), value.clone());
            tokio::spawn(async move {
                let key = format!("zero-bench:{i}");
                loop {
                    let () = client.set(&key, value.clone(), None, None, false).await.unwrap();
                    let _: Option<Vec<u8>> = client.get(&key).await.unwrap();
                    ops.fetch_add(2, Relaxed);
                }
            });
        }
    }

    pub async fn pubsub(run: &Run, ops: Arc<AtomicU64>) {
        let gate = gate(run);
        for _ in 0..run.subscribers {
            // Room for a burst of messages before the reader task runs (default: 32).
            let sub = Builder::from_config(config(run))
                .with_performance_config(|p| p.broadcast_channel_capacity = 1 << 16)
                .build_subscriber_client()
                .unwrap();
            sub.init().await.unwrap();
            let mut rx = sub.message_rx();
            sub.subscribe(CHANNEL).await.unwrap();
            let (ops, gate) = (ops.clone(), gate.clone());
            tokio::spawn(async move {
                let _keep = sub;
                loop {
                    match rx.recv().await {
                        Ok(_message) => {
                            ops.fetch_add(1, Relaxed);
                            gate.add_permits(1);
                        }
                        // fred hands messages over a broadcast channel that drops the oldest
                        // when a reader lags; those are not counted, their room is given back.
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                            gate.add_permits(n as usize)
                        }
                        Err(_) => break,
                    }
                }
            });
        }
        let client = Builder::from_config(config(run)).build().unwrap();
        client.init().await.unwrap();
        let value = bytes::Bytes::from(vec![b'x'; run.size]);
        let subs = run.subscribers as u32;
        for _ in 0..run.callers {
            let (client, value, gate) = (client.clone(), value.clone(), gate.clone());
            tokio::spawn(async move {
                loop {
                    gate.acquire_many(subs).await.unwrap().forget();
                    let _: i64 = client.publish(CHANNEL, value.clone()).await.unwrap();
                }
            });
        }
    }
}

mod zero {
    use zero_redis::client::tokio::AsyncClient;
    use zero_redis::client::{AsyncCommands, ClientConfig, SubKind, Target};

    use super::*;

    async fn connect(run: &Run) -> AsyncClient {
        let target = Target::tcp(run.addr.parse().unwrap());
        AsyncClient::connect(target, ClientConfig::default()).await.unwrap()
    }

    pub async fn get_set(run: &Run, ops: Arc<AtomicU64>) {
        let client = connect(run).await;
        let value = vec![b'x'; run.size];
        for i in 0..run.callers {
            let (client, ops, value) = (client.clone(), ops.clone(), value.clone());
            tokio::spawn(async move {
                let key = format!("zero-bench:{i}");
                loop {
                    let () = client.set(key.as_str(), value.as_slice()).await.unwrap();
                    let _: Option<Vec<u8>> = client.get(key.as_str()).await.unwrap();
                    ops.fetch_add(2, Relaxed);
                }
            });
        }
    }

    pub async fn pubsub(run: &Run, ops: Arc<AtomicU64>) {
        let gate = gate(run);
        for _ in 0..run.subscribers {
            let sub = connect(run).await;
            sub.subscribe(SubKind::Channel, &[CHANNEL]).await.unwrap();
            let (ops, gate) = (ops.clone(), gate.clone());
            tokio::spawn(async move {
                while let Some(_m) = sub.recv().await {
                    ops.fetch_add(1, Relaxed);
                    gate.add_permits(1);
                }
            });
        }
        let client = connect(run).await;
        let value = vec![b'x'; run.size];
        let subs = run.subscribers as u32;
        for _ in 0..run.callers {
            let (client, value, gate) = (client.clone(), value.clone(), gate.clone());
            tokio::spawn(async move {
                loop {
                    gate.acquire_many(subs).await.unwrap().forget();
                    let _: i64 = client.publish(CHANNEL, value.as_slice()).await.unwrap();
                }
            });
        }
    }
}
