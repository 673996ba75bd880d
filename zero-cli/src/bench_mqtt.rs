//! `zero bench mqtt`: a load generator for any MQTT 3.1.1 broker, itself one zero-core shard.
//!
//! - **Topology.** Publisher `i` publishes to `<run>/i`; every subscriber subscribes to
//!   `<run>/+`, so each PUBLISH is delivered once to every subscriber (`--pubs 1 --subs 10` is
//!   a fan-out, `--pubs 10 --subs 1` a fan-in). `<run>` is unique per run, so leftovers of
//!   earlier runs (retained or queued messages) never mix in.
//! - **Pre-encoded publishes.** Each publisher encodes its PUBLISH once; per message only the
//!   payload's first 16 bytes (send time in ns, publisher index, sequence number) and, at QoS 1,
//!   the packet identifier are patched. Subscribers read latency, loss, duplicates and order
//!   from those bytes alone.
//! - **Flow control.** At QoS 1 a publisher keeps at most `--window` PUBLISHes unacknowledged
//!   (MQTT's in-flight window). At either QoS at most `--backlog` deliveries are outstanding
//!   end to end (published times subscribers, minus delivered), so a broker is measured at the
//!   rate it delivers, not at the rate it can buffer or drop. `--rate` paces publishing for
//!   latency measurements below saturation.
//! - **Broker cost.** With `--broker-pid`, the broker's CPU time over the measured interval
//!   (all its threads, from `/proc/PID/task/*/schedstat`, in ns) gives deliveries per broker
//!   CPU-second, and `--idle N` reports its resident memory per idle connection.
//!
//! - **Transports and MQTT 5.** `--ws` connects over WebSocket (path `/mqtt`, subprotocol
//!   `mqtt`). `--aliases N` makes the subscribers MQTT 5 clients that allow N topic aliases,
//!   and `--topic-len` lengthens the topics; the bytes subscribers receive per delivery show
//!   what a broker's outbound aliases save.
//!
//! Keep-alive is 60 s (some brokers refuse 0) and runs are shorter, so no PINGREQ is sent.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Args;
use hdrhistogram::Histogram;
use zero_core::ws::WsClient;
use zero_core::{Config, ConnId, Event, Handler, Io, Ops};
use zero_mqtt::codec::{
    self, Connect, Packet, Properties, Protocol, Publish, QoS, SubOptions, Subscribe, Subscriptions,
};

use crate::bench;

/// Bytes at the start of every payload: send time (ns), publisher index, sequence number.
const STAMP: usize = 16;
/// Seconds to wait for outstanding deliveries after publishing stops.
const DRAIN: Duration = Duration::from_secs(3);
/// Connects in progress at once (`--idle`), below every broker's listen backlog.
const CONNECTS_AT_ONCE: usize = 32;

/// Options of `zero bench mqtt`.
#[derive(Args, Debug)]
pub struct MqttLoad {
    /// The broker to drive.
    #[arg(long)]
    target: SocketAddr,
    /// Publishing connections.
    #[arg(long, default_value_t = 1)]
    pubs: usize,
    /// Subscribing connections; each receives every message.
    #[arg(long, default_value_t = 1)]
    subs: usize,
    /// QoS of publishes and subscriptions: 0 or 1.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=1))]
    qos: u8,
    /// Payload bytes (at least 16).
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// QoS 1 PUBLISHes unacknowledged per publisher.
    #[arg(long, default_value_t = 100)]
    window: u32,
    /// Deliveries outstanding end to end, over all publishers.
    #[arg(long, default_value_t = 10_000)]
    backlog: u64,
    /// Publishes per second over all publishers; 0 = as fast as the windows allow.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Seconds to measure (after `--warmup`).
    #[arg(long, default_value_t = 5)]
    duration: u64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// The broker's process id: report its CPU time (and memory with --idle).
    #[arg(long)]
    broker_pid: Option<u32>,
    /// Instead of load: open this many idle connections, hold them `--duration` seconds and
    /// report the broker's resident memory per connection (needs --broker-pid).
    #[arg(long)]
    idle: Option<usize>,
    /// Connect over WebSocket (`ws://TARGET/mqtt`, subprotocol `mqtt`) instead of TCP.
    #[arg(long)]
    ws: bool,
    /// Subscribers speak MQTT 5 and allow this many topic aliases (0: MQTT 3.1.1 like the
    /// publishers).
    #[arg(long, default_value_t = 0)]
    aliases: u16,
    /// Pad each topic to this many bytes (a long-topic workload).
    #[arg(long, default_value_t = 0)]
    topic_len: usize,
}

/// A publishing connection and its pre-encoded PUBLISH.
struct Publisher {
    conn: ConnId,
    packet: Vec<u8>,
    /// Offset of the payload (the stamp) in `packet`.
    payload_at: usize,
    seq: u32,
    next_pid: u16,
    unacked: u32,
}

impl Publisher {
    /// Stamps the next message and queues it.
    fn send(&mut self, ops: &mut Ops, now_ns: u64, qos1: bool) -> bool {
        let at = self.payload_at;
        self.packet[at..at + 8].copy_from_slice(&now_ns.to_le_bytes());
        self.packet[at + 12..at + 16].copy_from_slice(&self.seq.to_le_bytes());
        if qos1 {
            self.next_pid = self.next_pid.checked_add(1).unwrap_or(1);
            self.packet[at - 2..at].copy_from_slice(&self.next_pid.to_be_bytes());
        }
        if ops.send(self.conn, &self.packet).is_err() {
            return false;
        }
        self.seq += 1;
        self.unacked += u32::from(qos1);
        true
    }
}

/// What a connection is to the load.
#[derive(Clone, Copy)]
enum Role {
    Publisher(usize),
    Subscriber(usize),
    Idle(usize),
}

/// A connection's role, the MQTT version it speaks and its partial input.
struct Peer {
    role: Role,
    protocol: Protocol,
    input: Vec<u8>,
}

/// Delivery counters; a snapshot at the start of the measured interval is subtracted at its end.
#[derive(Clone, Copy, Default)]
struct Counts {
    published: u64,
    delivered: u64,
    lost: u64,
    duplicates: u64,
}

struct Load {
    qos1: bool,
    epoch: Instant,
    peers: HashMap<ConnId, Peer>,
    pubs: Vec<Publisher>,
    /// Per subscriber, the next sequence number expected from each publisher.
    expected: Vec<Vec<u32>>,
    /// Connections past CONNACK (and SUBACK for subscribers).
    ready: usize,
    /// Connections that failed or closed.
    failed: usize,
    counts: Counts,
    measuring: bool,
    latency: Histogram<u64>,
    subscribe: Vec<u8>,
    /// Topic aliases the subscribers allow (MQTT 5 when positive).
    aliases: u16,
    /// Bytes subscribers received while measuring.
    sub_bytes: u64,
    cursor: usize,
    /// Unique to this run: the client ids' prefix and the topics' first level.
    tag: String,
}

impl Load {
    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Deliveries neither made nor known lost.
    fn outstanding(&self) -> u64 {
        let c = &self.counts;
        (c.published * self.expected.len() as u64).saturating_sub(c.delivered + c.lost)
    }

    /// Publishes up to `budget` messages round-robin over the publishers that have room.
    fn publish(&mut self, ops: &mut Ops, budget: u64, window: u32, backlog: u64) {
        let fanout = self.expected.len() as u64;
        let now = self.now_ns();
        let mut sent = 0;
        let mut idle_turns = 0;
        while sent < budget && self.outstanding() + fanout <= backlog && idle_turns < self.pubs.len() {
            let i = self.cursor;
            self.cursor = (i + 1) % self.pubs.len();
            let p = &mut self.pubs[i];
            if (self.qos1 && p.unacked >= window) || !p.send(ops, now, self.qos1) {
                idle_turns += 1;
                continue;
            }
            idle_turns = 0;
            sent += 1;
            self.counts.published += 1;
        }
    }

    fn received(&mut self, ops: &mut Ops, conn: ConnId, data: &[u8]) {
        let Some(peer) = self.peers.get_mut(&conn) else { return };
        let (role, protocol) = (peer.role, peer.protocol);
        if self.measuring && matches!(role, Role::Subscriber(_)) {
            self.sub_bytes += data.len() as u64;
        }
        let mut input = std::mem::take(&mut peer.input);
        let buf: &[u8] = if input.is_empty() {
            data
        } else {
            input.extend_from_slice(data);
            &input
        };
        let mut at = 0;
        loop {
            match codec::decode(&buf[at..], protocol, usize::MAX) {
                Ok(Some((packet, len))) => {
                    at += len;
                    self.on_packet(ops, conn, role, packet);
                }
                Ok(None) => break,
                Err(e) => {
                    eprintln!("zero bench mqtt: {conn}: undecodable packet from the broker: {e}");
                    let _ = ops.close(conn);
                    return;
                }
            }
        }
        // Keep only the partial packet, in the buffer's own allocation.
        if input.is_empty() {
            input.extend_from_slice(&data[at..]);
        } else {
            input.drain(..at);
        }
        if let Some(peer) = self.peers.get_mut(&conn) {
            peer.input = input;
        }
    }

    fn on_packet(&mut self, ops: &mut Ops, conn: ConnId, role: Role, packet: Packet<'_>) {
        match (packet, role) {
            (Packet::ConnAck(ack), _) if ack.reason.0 != 0 => {
                eprintln!("zero bench mqtt: {conn}: CONNECT refused with {:#04x}", ack.reason.0);
                self.failed += 1;
            }
            (Packet::ConnAck(_), Role::Subscriber(_)) => {
                let _ = ops.send(conn, &self.subscribe);
            }
            (Packet::ConnAck(_), _) => self.ready += 1,
            (Packet::SubAck(ack), _) => match ack.reasons.iter().next() {
                Some(code) if code.0 < 0x80 => self.ready += 1,
                code => {
                    eprintln!("zero bench mqtt: {conn}: SUBSCRIBE refused: {code:?}");
                    self.failed += 1;
                }
            },
            (Packet::PubAck(_), Role::Publisher(i)) => {
                let p = &mut self.pubs[i];
                p.unacked = p.unacked.saturating_sub(1);
            }
            (Packet::Publish(p), Role::Subscriber(s)) => {
                if p.qos == QoS::AtLeastOnce {
                    let [hi, lo] = p.packet_id.to_be_bytes();
                    let _ = ops.send(conn, &[0x40, 2, hi, lo]);
                }
                self.delivered(s, p.payload);
            }
            _ => {}
        }
    }

    /// Accounts one delivery to subscriber `sub`.
    fn delivered(&mut self, sub: usize, payload: &[u8]) {
        let Some(stamp) = payload.get(..STAMP) else { return };
        let field =
            |r: std::ops::Range<usize>| stamp[r].iter().rev().fold(0u64, |a, &b| a << 8 | u64::from(b));
        let (sent, publisher, seq) = (field(0..8), field(8..12) as usize, field(12..16) as u32);
        let Some(next) = self.expected[sub].get_mut(publisher) else { return };
        if seq < *next {
            self.counts.duplicates += 1;
            return;
        }
        self.counts.lost += u64::from(seq - *next);
        *next = seq + 1;
        self.counts.delivered += 1;
        if self.measuring {
            let _ = self.latency.record(self.now_ns().saturating_sub(sent).max(1));
        }
    }
}

impl Handler for Load {
    fn on_event(&mut self, ops: &mut Ops, event: Event<'_>) {
        match event {
            Event::Connected { conn } => {
                let Some(peer) = self.peers.get(&conn) else { return };
                let id = match peer.role {
                    Role::Publisher(i) => format!("{}-p{i}", self.tag),
                    Role::Subscriber(i) => format!("{}-s{i}", self.tag),
                    Role::Idle(i) => format!("{}-i{i}", self.tag),
                };
                let mut out = Vec::new();
                let mut connect = Connect::new(peer.protocol, &id);
                if peer.protocol.is_v5() {
                    connect.properties.topic_alias_maximum = Some(self.aliases);
                }
                Packet::Connect(connect).encode(peer.protocol, &mut out);
                let _ = ops.send(conn, &out);
            }
            Event::Data { conn, data } => self.received(ops, conn, &data),
            Event::ConnectFailed { error, .. } => {
                self.failed += 1;
                eprintln!("zero bench mqtt: connect failed: {error}");
            }
            Event::Closed { conn, reason } if self.peers.remove(&conn).is_some() => {
                self.failed += 1;
                eprintln!("zero bench mqtt: {conn} closed by the broker: {reason:?}");
            }
            _ => {}
        }
    }
}

/// Opens a connection to the broker, over WebSocket with `--ws`.
fn connect(io: &mut Io, opts: &MqttLoad) -> zero_core::Result<ConnId> {
    if !opts.ws {
        return io.tcp_connect(opts.target);
    }
    let mut ws = WsClient::new(&opts.target.to_string(), "/mqtt");
    ws.protocols = vec!["mqtt".into()];
    io.ws_connect(opts.target, std::sync::Arc::new(ws), None)
}

/// A process's resident memory in bytes.
fn resident(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

/// Runs the shard until `done` holds or `deadline` passes; `step` runs after every tick.
fn run_until(
    io: &mut Io,
    load: &mut Load,
    deadline: Instant,
    mut step: impl FnMut(&mut Io, &mut Load) -> bool,
) -> Result<bool, String> {
    while Instant::now() < deadline {
        io.run_once(load, Some(Duration::from_millis(1))).map_err(|e| e.to_string())?;
        if step(io, load) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Runs the load (or the idle test) and prints the summary; the last line is machine-readable.
pub fn run(opts: MqttLoad) -> Result<(), String> {
    if opts.size < STAMP {
        return Err(format!("--size must be at least {STAMP} bytes (the stamp)"));
    }
    let idle = opts.idle.unwrap_or(0);
    if idle == 0 && (opts.pubs == 0 || opts.subs == 0 || opts.window == 0) {
        return Err("--pubs, --subs and --window must be positive".into());
    }
    let conns = if idle > 0 { idle } else { opts.pubs + opts.subs };
    let sub_protocol = if opts.aliases > 0 { Protocol::V5 } else { Protocol::V311 };
    let mut config = Config::default();
    config.max_connections = conns + 16;
    let mut io = Io::new(config).map_err(|e| e.to_string())?;
    let run_tag = format!("zb-{:x}", std::process::id());
    let filter = format!("{run_tag}/+");
    let qos = if opts.qos == 1 { QoS::AtLeastOnce } else { QoS::AtMostOnce };
    let mut subscribe = Vec::new();
    let list = [(filter.as_str(), SubOptions::qos(qos))];
    Packet::Subscribe(Subscribe {
        packet_id: 1,
        properties: Properties::default(),
        subscriptions: Subscriptions::List(&list),
    })
    .encode(sub_protocol, &mut subscribe);
    let mut load = Load {
        qos1: opts.qos == 1,
        epoch: Instant::now(),
        peers: HashMap::with_capacity(conns),
        pubs: Vec::new(),
        expected: Vec::new(),
        ready: 0,
        failed: 0,
        counts: Counts::default(),
        measuring: false,
        latency: Histogram::new_with_bounds(1, 60_000_000_000, 3).map_err(|e| e.to_string())?,
        subscribe,
        aliases: opts.aliases,
        sub_bytes: 0,
        cursor: 0,
        tag: run_tag.clone(),
    };
    if idle > 0 {
        return run_idle(&mut io, &mut load, &opts, idle);
    }
    let payload = vec![0x2A; opts.size];
    for i in 0..opts.pubs {
        let conn = connect(&mut io, &opts).map_err(|e| e.to_string())?;
        load.peers
            .insert(conn, Peer { role: Role::Publisher(i), protocol: Protocol::V311, input: Vec::new() });
        let mut topic = format!("{run_tag}/{i}");
        if topic.len() < opts.topic_len {
            topic.push('-');
            topic.extend(std::iter::repeat_n('t', opts.topic_len - topic.len()));
        }
        let mut packet = Vec::new();
        Packet::Publish(Publish {
            dup: false,
            qos,
            retain: false,
            topic: &topic,
            packet_id: 1,
            properties: Properties::default(),
            payload: &payload,
        })
        .encode(Protocol::V311, &mut packet);
        let payload_at = packet.len() - payload.len();
        packet[payload_at + 8..payload_at + 12].copy_from_slice(&(i as u32).to_le_bytes());
        load.pubs.push(Publisher { conn, packet, payload_at, seq: 0, next_pid: 0, unacked: 0 });
    }
    for s in 0..opts.subs {
        let conn = connect(&mut io, &opts).map_err(|e| e.to_string())?;
        load.peers
            .insert(conn, Peer { role: Role::Subscriber(s), protocol: sub_protocol, input: Vec::new() });
        load.expected.push(vec![0; opts.pubs]);
    }
    let up = run_until(&mut io, &mut load, Instant::now() + Duration::from_secs(10), |_, l| {
        l.ready + l.failed >= conns
    })?;
    if !up || load.failed > 0 {
        return Err(format!("only {} of {conns} clients connected and subscribed in 10 s", load.ready));
    }

    let rate_start = Instant::now();
    let mut pump = |io: &mut Io, l: &mut Load| {
        let due = (rate_start.elapsed().as_secs_f64() * opts.rate as f64) as u64;
        let budget = if opts.rate == 0 { u64::MAX } else { due.saturating_sub(l.counts.published) };
        l.publish(io, budget, opts.window, opts.backlog);
        false
    };
    run_until(&mut io, &mut load, rate_start + Duration::from_secs(opts.warmup), &mut pump)?;

    let (start, before) = (Instant::now(), load.counts);
    let cpu_before = opts.broker_pid.and_then(bench::cpu_time);
    load.measuring = true;
    run_until(&mut io, &mut load, start + Duration::from_secs(opts.duration), &mut pump)?;
    load.measuring = false;
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = match (cpu_before, opts.broker_pid.and_then(bench::cpu_time)) {
        (Some(a), Some(b)) => Some((b - a).as_secs_f64()),
        _ => None,
    };
    let measured = load.counts;

    let drained = run_until(&mut io, &mut load, Instant::now() + DRAIN, |_, l| {
        l.outstanding() == 0 && l.pubs.iter().all(|p| p.unacked == 0)
    })?;
    let stranded = load.outstanding();
    let c = load.counts;

    let delivered = measured.delivered - before.delivered;
    let rate = delivered as f64 / elapsed;
    let us = |q: f64| bench::micros(&load.latency, q);
    let offered = if opts.rate == 0 { "max".to_string() } else { opts.rate.to_string() };
    println!(
        "target {}  pubs {}  subs {}  qos {}  size {}  window {}  backlog {}  rate {offered}  {elapsed:.1} s",
        opts.target, opts.pubs, opts.subs, opts.qos, opts.size, opts.window, opts.backlog
    );
    println!(
        "whole run     published {}  delivered {}  lost {}  duplicates {}  undelivered after {} s: {}",
        c.published,
        c.delivered,
        c.lost,
        c.duplicates,
        DRAIN.as_secs(),
        if drained { 0 } else { stranded }
    );
    println!(
        "delivered/s   {rate:.0}  (published/s {:.0})",
        (measured.published - before.published) as f64 / elapsed
    );
    let per_cpu = cpu.map(|s| delivered as f64 / s);
    if let (Some(s), Some(per)) = (cpu, per_cpu) {
        println!(
            "broker cpu    {s:.2} s ({:.0}% of a core)  deliveries per broker CPU-second {per:.0}",
            100.0 * s / elapsed
        );
    }
    bench::print_latency(&load.latency);
    let bytes_per_delivery = load.sub_bytes as f64 / delivered.max(1) as f64;
    println!("subscribers   {bytes_per_delivery:.1} bytes received per delivery");
    println!(
        "result delivered_per_sec={rate:.1} per_cpu_sec={:.1} p50_us={:.1} p99_us={:.1} lost={} duplicates={} undelivered={} errors={} bytes_per_delivery={bytes_per_delivery:.1}",
        per_cpu.unwrap_or(0.0),
        us(0.5),
        us(0.99),
        c.lost,
        c.duplicates,
        if drained { 0 } else { stranded },
        load.failed
    );
    Ok(())
}

/// `--idle N`: connects N clients a few hundred at a time, holds them, and reports the broker's
/// resident memory growth per connection.
fn run_idle(io: &mut Io, load: &mut Load, opts: &MqttLoad, n: usize) -> Result<(), String> {
    let rss_before = opts.broker_pid.and_then(resident);
    let mut opened = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    let up = run_until(io, load, deadline, |io, l| {
        while opened < n && opened < l.ready + l.failed + CONNECTS_AT_ONCE {
            match connect(io, opts) {
                Ok(conn) => {
                    l.peers.insert(
                        conn,
                        Peer { role: Role::Idle(opened), protocol: Protocol::V311, input: Vec::new() },
                    );
                }
                Err(e) => {
                    eprintln!("zero bench mqtt: connect: {e}");
                    l.failed += 1;
                }
            }
            opened += 1;
        }
        l.ready + l.failed >= n
    })?;
    if !up || load.failed > 0 {
        return Err(format!(
            "only {} of {n} idle clients connected in 60 s ({} failed)",
            load.ready, load.failed
        ));
    }
    run_until(io, load, Instant::now() + Duration::from_secs(opts.duration), |_, _| false)?;
    let rss_after = opts.broker_pid.and_then(resident);
    let held = load.peers.len();
    println!("target {}  idle connections {held} of {n} held {} s", opts.target, opts.duration);
    match (rss_before, rss_after) {
        (Some(a), Some(b)) => {
            let per = b.saturating_sub(a) as f64 / n as f64;
            println!("broker rss    {} KiB -> {} KiB  ({per:.0} bytes per connection)", a / 1024, b / 1024);
            println!(
                "result idle_conns={held} rss_before_kib={} rss_after_kib={} bytes_per_conn={per:.0}",
                a / 1024,
                b / 1024
            );
        }
        _ => println!("result idle_conns={held}"),
    }
    if held < n {
        return Err(format!("the broker closed {} of the idle connections", n - held));
    }
    Ok(())
}
