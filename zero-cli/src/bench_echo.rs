//! `zero bench echo`: a load generator for any TCP (or TLS, or QUIC) echo server, itself a
//! zero-core shard. Over QUIC each connection carries its messages on one bidirectional stream.
//! Closed loop: each connection keeps `pipeline` messages in flight. Open loop (`--rate`): a
//! fixed number of messages a second, spread over the connections whatever the replies do, to
//! compare servers' cost per message below saturation. Every message carries its send time in
//! its first 8 bytes, so latency is measured from the echoed bytes alone.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use hdrhistogram::Histogram;
use zero_core::quic::{Dir, QuicEvent, QuicId, StreamId};
use zero_core::{Config, ConnId, Event, Handler, Io, Ops};

use crate::bench;

/// Options of `zero bench echo`.
#[derive(Args, Debug)]
pub struct EchoLoad {
    /// The echo server to drive.
    #[arg(long)]
    target: SocketAddr,
    /// Concurrent connections.
    #[arg(long, default_value_t = 50)]
    conns: usize,
    /// Bytes per message (at least 8: the send timestamp).
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Seconds to measure (after a warm-up of one second).
    #[arg(long, default_value_t = 5)]
    duration: u64,
    /// Messages in flight per connection (closed loop).
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
    /// Offer this many messages a second in all, round-robin over the connections, instead of
    /// a closed loop (open loop: the latency includes any queueing at the server).
    #[arg(long)]
    rate: Option<u64>,
    /// Connect with TLS.
    #[arg(long, conflicts_with = "quic")]
    tls: bool,
    /// Connect over QUIC (TLS 1.3 on UDP): one bidirectional stream per connection.
    #[arg(long)]
    quic: bool,
    /// CA bundle (PEM) that vouches for the server with --tls or --quic; default: the system
    /// roots.
    #[arg(long)]
    tls_ca: Option<std::path::PathBuf>,
    /// Name to verify the server's certificate against with --tls or --quic; default: the
    /// target's IP.
    #[arg(long)]
    tls_name: Option<String>,
}

/// The TLS client configuration the options ask for, if any.
fn client_tls(opts: &EchoLoad) -> Result<Option<Arc<zero_core::rustls::ClientConfig>>, String> {
    use zero_core::tls::ClientTls;
    if !opts.tls && !opts.quic {
        return Ok(None);
    }
    let tls = match &opts.tls_ca {
        Some(ca) => ClientTls::with_ca_file(ca),
        None => ClientTls::system_roots(),
    };
    Ok(Some(tls.and_then(ClientTls::build).map_err(|e| e.to_string())?))
}

/// Where a connection's messages travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Stream(ConnId),
    Quic(QuicId, StreamId),
}

/// Per-connection receive progress.
#[derive(Default)]
struct Flow {
    /// Bytes of the current message received so far.
    offset: usize,
    /// Its timestamp, gathered from its first 8 bytes.
    stamp: [u8; 8],
}

struct Load {
    size: usize,
    pipeline: usize,
    epoch: Instant,
    flows: HashMap<Key, Flow>,
    message: Vec<u8>,
    connected: usize,
    errors: u64,
    measuring: bool,
    completed: u64,
    latency: Histogram<u64>,
    /// Open loop: messages a second, and the pacing state.
    rate: Option<u64>,
    paced: Pacing,
}

/// Where an open loop stands: from when it counts, what it sent, whose turn it is.
#[derive(Default)]
struct Pacing {
    since: Option<Instant>,
    sent: u64,
    turn: usize,
    conns: Vec<Key>,
}

impl Load {
    /// Open loop: sends what is due by `now` at the rate, a message per connection in turn.
    fn pace(&mut self, ops: &mut Ops, now: Instant) {
        let (Some(rate), false) = (self.rate, self.paced.conns.is_empty()) else { return };
        let since = *self.paced.since.get_or_insert(now);
        let due = (now.duration_since(since).as_secs_f64() * rate as f64) as u64;
        while self.paced.sent < due {
            let conn = self.paced.conns[self.paced.turn % self.paced.conns.len()];
            self.paced.turn += 1;
            self.paced.sent += 1;
            self.send_one(ops, conn);
        }
    }

    fn send_one(&mut self, ops: &mut Ops, key: Key) {
        let nanos = self.epoch.elapsed().as_nanos() as u64;
        self.message[..8].copy_from_slice(&nanos.to_le_bytes());
        let sent = match key {
            Key::Stream(conn) => ops.send(conn, &self.message),
            Key::Quic(conn, stream) => ops.quic_send(conn, stream, &self.message),
        };
        if sent.is_err() {
            self.errors += 1;
        }
    }

    /// A connection is up: it starts sending (closed loop) or joins the rotation (open loop).
    fn connected(&mut self, ops: &mut Ops, key: Key) {
        self.connected += 1;
        self.flows.insert(key, Flow::default());
        if self.rate.is_some() {
            self.paced.conns.push(key);
        } else {
            for _ in 0..self.pipeline {
                self.send_one(ops, key);
            }
        }
    }

    fn received(&mut self, ops: &mut Ops, conn: Key, mut data: &[u8]) {
        let now = self.epoch.elapsed().as_nanos() as u64;
        let mut done = 0;
        {
            let Some(flow) = self.flows.get_mut(&conn) else {
                return;
            };
            while !data.is_empty() {
                let take = (self.size - flow.offset).min(data.len());
                if flow.offset < 8 {
                    let n = (8 - flow.offset).min(take);
                    flow.stamp[flow.offset..flow.offset + n].copy_from_slice(&data[..n]);
                }
                flow.offset += take;
                data = &data[take..];
                if flow.offset == self.size {
                    flow.offset = 0;
                    done += 1;
                    if self.measuring {
                        let sent = u64::from_le_bytes(flow.stamp);
                        let _ = self.latency.record(now.saturating_sub(sent).max(1));
                    }
                }
            }
        }
        if self.measuring {
            self.completed += done;
        }
        if self.rate.is_none() {
            for _ in 0..done {
                self.send_one(ops, conn);
            }
        }
    }
}

impl Handler for Load {
    fn on_event(&mut self, ops: &mut Ops, event: Event<'_>) {
        match event {
            Event::Connected { conn } => self.connected(ops, Key::Stream(conn)),
            Event::Data { conn, data } => self.received(ops, Key::Stream(conn), &data),
            Event::Quic(QuicEvent::Connected { conn, .. }) => match ops.quic_open(conn, Dir::Bi) {
                Ok(stream) => self.connected(ops, Key::Quic(conn, stream)),
                Err(e) => {
                    self.errors += 1;
                    eprintln!("zero bench echo: {conn}: {e}");
                }
            },
            Event::Quic(QuicEvent::Data { conn, stream, data }) => {
                self.received(ops, Key::Quic(conn, stream), &data)
            }
            Event::Quic(QuicEvent::ConnectFailed { reason, .. }) => {
                self.errors += 1;
                eprintln!("zero bench echo: {reason}");
            }
            Event::Quic(QuicEvent::Closed { conn, reason }) => {
                self.flows.retain(|key, _| !matches!(key, Key::Quic(c, _) if *c == conn));
                self.errors += 1;
                eprintln!("zero bench echo: {conn} closed: {reason}");
            }
            Event::ConnectFailed { error, .. } => {
                self.errors += 1;
                eprintln!("zero bench echo: {error}");
            }
            Event::Closed { conn, reason } if self.flows.remove(&Key::Stream(conn)).is_some() => {
                self.errors += 1;
                eprintln!("zero bench echo: {conn} closed by the server: {reason:?}");
            }
            _ => {}
        }
    }
}

/// Runs the load and prints the summary; the last line is machine-readable:
/// `result msgs_per_sec=.. p50_us=.. p99_us=.. p999_us=.. errors=..`.
pub fn run(opts: EchoLoad) -> Result<(), String> {
    if opts.size < 8 {
        return Err("--size must be at least 8 bytes (the timestamp)".into());
    }
    if opts.conns == 0 || opts.pipeline == 0 {
        return Err("--conns and --pipeline must be positive".into());
    }
    let mut config = Config::default();
    config.max_connections = opts.conns + 16;
    let mut io = Io::new(config).map_err(|e| e.to_string())?;
    let mut load = Load {
        size: opts.size,
        pipeline: opts.pipeline,
        epoch: Instant::now(),
        flows: HashMap::with_capacity(opts.conns),
        message: vec![0x2A; opts.size],
        connected: 0,
        errors: 0,
        measuring: false,
        completed: 0,
        latency: Histogram::new_with_bounds(1, 60_000_000_000, 3).map_err(|e| e.to_string())?,
        rate: opts.rate.filter(|&r| r > 0),
        paced: Pacing::default(),
    };
    let tls = client_tls(&opts)?;
    let name = opts.tls_name.clone().unwrap_or_else(|| opts.target.ip().to_string());
    match &tls {
        Some(tls) if opts.quic => {
            let config = zero_core::quic::client_config(tls).map_err(|e| e.to_string())?;
            let any = if opts.target.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
            let endpoint = io.quic_bind(any.parse().expect("an address"), None).map_err(|e| e.to_string())?;
            for _ in 0..opts.conns {
                io.quic_connect(endpoint, opts.target, &name, config.clone()).map_err(|e| e.to_string())?;
            }
        }
        Some(tls) => {
            for _ in 0..opts.conns {
                io.tls_connect(opts.target, &name, tls.clone()).map_err(|e| e.to_string())?;
            }
        }
        None => {
            for _ in 0..opts.conns {
                io.tcp_connect(opts.target).map_err(|e| e.to_string())?;
            }
        }
    }
    let connect_deadline = Instant::now() + Duration::from_secs(10);
    while load.connected + (load.errors as usize) < opts.conns {
        if Instant::now() > connect_deadline {
            return Err(format!("only {} of {} connections came up in 10 s", load.connected, opts.conns));
        }
        io.run_once(&mut load, Some(Duration::from_millis(100))).map_err(|e| e.to_string())?;
    }
    if load.connected == 0 {
        return Err(format!("could not connect to {}", opts.target));
    }
    // An open loop ticks every 100 µs to pace its sends; a closed loop sends on replies.
    let tick = Some(if load.rate.is_some() { Duration::from_micros(100) } else { Duration::from_millis(10) });
    let warm_until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < warm_until {
        load.pace(&mut io, Instant::now());
        io.run_once(&mut load, tick).map_err(|e| e.to_string())?;
    }
    load.measuring = true;
    let start = Instant::now();
    let end = start + Duration::from_secs(opts.duration);
    while Instant::now() < end {
        load.pace(&mut io, Instant::now());
        io.run_once(&mut load, tick).map_err(|e| e.to_string())?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    load.measuring = false;
    let rate = load.completed as f64 / elapsed;
    let us = |q: f64| bench::micros(&load.latency, q);
    println!(
        "target {}  conns {}  size {}  pipeline {}  {:.1} s",
        opts.target, load.connected, opts.size, opts.pipeline, elapsed
    );
    println!("messages      {}", load.completed);
    println!("messages/s    {rate:.0}");
    bench::print_latency(&load.latency);
    println!(
        "result msgs_per_sec={rate:.1} p50_us={:.1} p99_us={:.1} p999_us={:.1} errors={}",
        us(0.5),
        us(0.99),
        us(0.999),
        load.errors
    );
    Ok(())
}
