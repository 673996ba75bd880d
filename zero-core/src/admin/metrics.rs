//! Metrics: each shard's transport counters and gauges, and what its handler adds
//! ([`Handler::on_metrics`]), collected from every shard on request ([`Collector`]) and written
//! in Prometheus' text format ([`prometheus`]).

use std::fmt::Write as _;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::config::Backend;
use crate::event::Handler;
use crate::handle::IoHandle;
use crate::ops::Ops;
use crate::pool::PoolStats;
use crate::table::Kind;

/// Whether a metric only grows (a counter, named `..._total`) or goes up and down (a gauge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Only grows (since the process started).
    Counter,
    /// A level at the moment of collection.
    Gauge,
}

/// One metric of one shard.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The Prometheus name, e.g. `zero_connections`.
    pub name: &'static str,
    /// What it measures, in a sentence.
    pub help: &'static str,
    /// Counter or gauge.
    pub kind: MetricKind,
    /// Its value.
    pub value: f64,
}

/// One shard's metrics at a moment: zero-core's own (connections, bytes, queues, the pool)
/// and its handler's; with [`Collector::connections`], its connections too.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    samples: Vec<Sample>,
    connections: Vec<Connection>,
}

/// One open connection, as [`Collector::connections`] lists it.
#[derive(Debug, Clone)]
pub struct Connection {
    /// Its id on its shard (what `kill` takes, and what the logs print).
    pub id: crate::ConnId,
    /// The peer's address (`None` for Unix sockets).
    pub peer: Option<std::net::SocketAddr>,
    /// Bytes queued for it.
    pub queued: usize,
}

impl Metrics {
    /// Adds a counter (`name` should end in `_total`).
    pub fn counter(&mut self, name: &'static str, help: &'static str, value: u64) {
        self.samples.push(Sample { name, help, kind: MetricKind::Counter, value: value as f64 });
    }

    /// Adds a gauge.
    pub fn gauge(&mut self, name: &'static str, help: &'static str, value: f64) {
        self.samples.push(Sample { name, help, kind: MetricKind::Gauge, value });
    }

    /// Every sample, in the order added.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// The shard's connections, when they were asked for.
    pub fn connections(&self) -> &[Connection] {
        &self.connections
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.samples.iter().find(|s| s.name == name).map(|s| s.value)
    }
}

/// What a shard counts as it runs, for [`Metrics`].
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counters {
    pub accepted: u64,
    pub received: u64,
    pub sent: u64,
    /// The most sockets open at once since the last reset.
    pub sockets_peak: usize,
}

impl Ops {
    /// This shard's transport metrics.
    pub(crate) fn transport_metrics(&self, pool: PoolStats, detail: bool) -> Metrics {
        let (mut connections, mut listeners, mut udp, mut queued) = (0, 0, 0, 0);
        let mut list = Vec::new();
        for (index, gen) in self.table.ids() {
            let slot = self.table.live(index, gen);
            match slot.map(|s| &s.kind) {
                Some(Kind::Stream(s)) => {
                    connections += 1;
                    queued += s.send.queued();
                    if detail {
                        let peer = slot.and_then(|s| s.sock.peer_addr().ok()).and_then(|a| a.as_socket());
                        list.push(Connection {
                            id: crate::ConnId::new(index, gen),
                            peer,
                            queued: s.send.queued(),
                        });
                    }
                }
                Some(Kind::Listener { .. }) => listeners += 1,
                Some(Kind::Udp(_)) => udp += 1,
                None => {}
            }
        }
        let c = &self.counters;
        let mut m = Metrics { samples: Vec::new(), connections: list };
        m.gauge("zero_connections", "Open stream connections.", connections as f64);
        m.gauge("zero_listeners", "Listening sockets.", listeners as f64);
        m.gauge("zero_udp_sockets", "Bound UDP sockets.", udp as f64);
        m.gauge(
            "zero_quic_connections",
            "QUIC connections (handshaking, open or closing).",
            self.quic.len() as f64,
        );
        m.gauge(
            "zero_sockets_peak",
            "The most sockets open at once (since start or the last reset).",
            c.sockets_peak as f64,
        );
        m.counter("zero_accepted_total", "Connections accepted.", c.accepted);
        m.counter(
            "zero_received_bytes_total",
            "Bytes received on connections (TLS records included).",
            c.received,
        );
        m.counter("zero_sent_bytes_total", "Bytes sent on connections (TLS records included).", c.sent);
        m.gauge("zero_send_queue_bytes", "Bytes queued for sending, over all connections.", queued as f64);
        m.gauge("zero_pool_slots", "Receive slots in the payload pool.", pool.slots as f64);
        m.gauge("zero_pool_slots_available", "Receive slots free for the kernel.", pool.available as f64);
        m.gauge("zero_pool_slots_detached", "Receive slots held by detached buffers.", pool.detached as f64);
        m.counter("zero_pool_exhausted_total", "Receives that found the pool empty.", pool.exhausted);
        m.gauge("zero_timers", "Timers pending.", self.timers.len() as f64);
        m.counter(
            "zero_handle_drops_total",
            "Sends from other threads dropped (full queue or gone).",
            self.handle_drops,
        );
        m.gauge(
            "zero_draining",
            "1 while the shard drains for a shutdown.",
            f64::from(u8::from(self.is_draining())),
        );
        m.gauge(
            "zero_epoll",
            "1 on the epoll fallback, 0 on io_uring.",
            f64::from(u8::from(self.config.backend == Backend::Epoll)),
        );
        m
    }

    /// Notes the socket count, for the peak.
    pub(crate) fn note_sockets(&mut self) {
        self.counters.sockets_peak = self.counters.sockets_peak.max(self.table.len());
    }

    /// Answers the metric requests that came this tick: transport metrics, then the handler's.
    pub(crate) fn answer_collectors<H: Handler + ?Sized>(&mut self, handler: &mut H, pool: PoolStats) {
        for (collector, detail) in std::mem::take(&mut self.collectors) {
            let mut m = self.transport_metrics(pool, detail);
            handler.on_metrics(self, &mut m);
            let _ = collector.send((self.shard, m));
        }
    }
}

/// Collects metrics from the shards it reaches, from any thread.
#[derive(Debug, Clone)]
pub struct Collector {
    handles: Arc<[IoHandle]>,
}

impl Collector {
    /// A collector for the shards `handles` reach ([`crate::IoCluster::collector`] for a
    /// cluster's).
    pub fn new(handles: impl Into<Arc<[IoHandle]>>) -> Collector {
        Collector { handles: handles.into() }
    }

    /// Every shard's metrics, in shard order; `None` for a shard that did not answer within
    /// `timeout` (stopped, or stuck: a liveness signal in itself).
    pub fn collect(&self, timeout: Duration) -> Vec<Option<Metrics>> {
        self.gather(timeout, false)
    }

    /// [`Collector::collect`] with each shard's connections listed ([`Metrics::connections`]).
    pub fn connections(&self, timeout: Duration) -> Vec<Option<Metrics>> {
        self.gather(timeout, true)
    }

    fn gather(&self, timeout: Duration, detail: bool) -> Vec<Option<Metrics>> {
        let (tx, rx) = mpsc::channel();
        let mut out: Vec<Option<Metrics>> = vec![None; self.handles.len()];
        let asked = self.handles.iter().filter(|h| h.collect(tx.clone(), detail).is_ok()).count();
        drop(tx);
        let deadline = Instant::now() + timeout;
        for _ in 0..asked {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok((shard, m)) if shard < out.len() => out[shard] = Some(m),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        out
    }

    /// Every shard's metrics in Prometheus' text format; shards that did not answer are
    /// counted in `zero_shards_unresponsive`.
    pub fn prometheus(&self, timeout: Duration) -> String {
        let collected = self.collect(timeout);
        let missing = collected.iter().filter(|m| m.is_none()).count();
        let mut text = prometheus(&collected);
        text.push_str("# HELP zero_shards_unresponsive Shards that did not answer this scrape in time.\n");
        text.push_str("# TYPE zero_shards_unresponsive gauge\n");
        let _ = writeln!(text, "zero_shards_unresponsive {missing}");
        text
    }

    /// Asks every shard to start its peaks over from the current levels.
    pub fn reset_peaks(&self) -> usize {
        self.handles.iter().filter(|h| h.reset_peaks().is_ok()).count()
    }
}

/// Shards' metrics (shard `i`'s at `shards[i]`) in Prometheus' text exposition format (0.0.4):
/// each metric's `HELP` and `TYPE` once, then a sample per shard labelled `shard`.
pub fn prometheus(shards: &[Option<Metrics>]) -> String {
    let mut names: Vec<&Sample> = Vec::new();
    for m in shards.iter().flatten() {
        for s in &m.samples {
            if !names.iter().any(|n| n.name == s.name) {
                names.push(s);
            }
        }
    }
    let mut text = String::new();
    for metric in names {
        let kind = match metric.kind {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
        };
        let _ = writeln!(text, "# HELP {} {}", metric.name, metric.help);
        let _ = writeln!(text, "# TYPE {} {kind}", metric.name);
        for (shard, m) in shards.iter().enumerate() {
            if let Some(value) = m.as_ref().and_then(|m| m.get(metric.name)) {
                let _ = writeln!(text, "{}{{shard=\"{shard}\"}} {value}", metric.name);
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_names_each_metric_once_and_labels_each_shard() {
        let mut a = Metrics::default();
        a.counter("x_total", "Xs.", 3);
        a.gauge("y", "Y now.", 1.5);
        let mut b = Metrics::default();
        b.counter("x_total", "Xs.", 4);
        let text = prometheus(&[Some(a), None, Some(b)]);
        assert_eq!(
            text,
            "# HELP x_total Xs.\n# TYPE x_total counter\nx_total{shard=\"0\"} 3\nx_total{shard=\"2\"} 4\n\
             # HELP y Y now.\n# TYPE y gauge\ny{shard=\"0\"} 1.5\n"
        );
    }
}
