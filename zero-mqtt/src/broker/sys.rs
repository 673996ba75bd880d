//! The broker's counters and the `$SYS/broker/...` topics that publish them.

use std::time::Instant;

/// What the broker counted since it started.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Stats {
    /// When the broker started.
    pub started: Instant,
    /// CONNECTs accepted.
    pub connects: u64,
    /// PUBLISH packets received from clients.
    pub received: u64,
    /// PUBLISH packets sent to clients.
    pub sent: u64,
    /// Deliveries dropped: a full session queue, or a QoS 0 message to a full send queue.
    pub dropped: u64,
    /// Deliveries discarded for exceeding a client's Maximum Packet Size.
    pub oversize: u64,
    /// Connections closed for malformed packets or protocol errors.
    pub protocol_errors: u64,
}

/// What the broker holds at a moment, reported beside the counters.
#[derive(Debug, Clone, Copy)]
pub struct Gauges {
    /// Connected clients.
    pub clients_connected: usize,
    /// Sessions, connected or not.
    pub sessions: usize,
    /// Subscriptions.
    pub subscriptions: usize,
    /// Retained messages.
    pub retained: usize,
}

impl Gauges {
    /// Adds another shard's gauges; retained messages are not summed (every shard holds them
    /// all).
    pub(crate) fn add(&mut self, o: &Gauges) {
        self.clients_connected += o.clients_connected;
        self.sessions += o.sessions;
        self.subscriptions += o.subscriptions;
    }
}

impl Stats {
    pub(crate) fn new(now: Instant) -> Stats {
        Stats { started: now, connects: 0, received: 0, sent: 0, dropped: 0, oversize: 0, protocol_errors: 0 }
    }

    /// Adds another shard's counters.
    pub(crate) fn add(&mut self, o: &Stats) {
        self.connects += o.connects;
        self.received += o.received;
        self.sent += o.sent;
        self.dropped += o.dropped;
        self.oversize += o.oversize;
        self.protocol_errors += o.protocol_errors;
    }

    /// The `$SYS` topics and their values at `now` (names follow mosquitto's where one exists).
    pub fn topics(&self, now: Instant, g: Gauges) -> [(&'static str, String); 11] {
        [
            ("$SYS/broker/version", format!("zero-mqtt {}", env!("CARGO_PKG_VERSION"))),
            ("$SYS/broker/uptime", format!("{} seconds", now.duration_since(self.started).as_secs())),
            ("$SYS/broker/clients/connected", g.clients_connected.to_string()),
            ("$SYS/broker/clients/total", g.sessions.to_string()),
            ("$SYS/broker/messages/received", self.received.to_string()),
            ("$SYS/broker/messages/sent", self.sent.to_string()),
            ("$SYS/broker/messages/dropped", self.dropped.to_string()),
            ("$SYS/broker/messages/oversize", self.oversize.to_string()),
            ("$SYS/broker/subscriptions/count", g.subscriptions.to_string()),
            ("$SYS/broker/retained messages/count", g.retained.to_string()),
            ("$SYS/broker/connections/protocol errors", self.protocol_errors.to_string()),
        ]
    }
}
