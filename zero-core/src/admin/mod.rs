//! Operating a running server from outside it:
//! - **metrics** ([`Metrics`], [`Collector`]): each shard's transport counters and gauges plus
//!   its handler's ([`crate::Handler::on_metrics`]), in Prometheus' text format, on an HTTP
//!   listener ([`serve_metrics`]: `/metrics`, `/healthz`, `/readyz`);
//! - **the ops socket** ([`OpsSocket`]): a Unix socket (mode 0600, the peer's uid checked)
//!   answering read-only commands (`healthz`, `readyz`, `stats`, `snapshot`) and, signed with
//!   an HMAC-SHA256 over a fresh nonce, privileged ones (`drain`, `kill`, `reload-certs`,
//!   `reset-peaks`), each logged to an audit log. `zero status` is its client ([`request`],
//!   [`sign`]).
//!
//! Both run on threads of their own and reach the shards only through their handles, so a
//! busy shard shows as slow to answer, never as a blocked admin thread.

mod http;
mod metrics;
mod socket;

use std::fmt;
use std::time::Duration;

pub use http::serve_metrics;
pub(crate) use metrics::Counters;
pub use metrics::{prometheus, Collector, Connection, MetricKind, Metrics, Sample};
pub use socket::{request, sign, OpsSocket, Reload};

/// A server's health as `healthz` / `readyz` report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Every shard answered (and, for readiness, none is draining).
    Ok,
    /// Shard `n` did not answer in time: stuck, or stopped.
    Unresponsive(usize),
    /// Shard `n` is draining for a shutdown: alive, but not to be sent new work.
    Draining(usize),
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Health::Ok => f.write_str("ok"),
            Health::Unresponsive(n) => write!(f, "shard {n} did not answer within 1 s"),
            Health::Draining(n) => write!(f, "shard {n} is draining"),
        }
    }
}

/// Liveness (every shard answers within a second) or, with `ready`, readiness (and none is
/// draining).
pub(crate) fn health(collector: &Collector, ready: bool) -> Health {
    for (shard, m) in collector.collect(Duration::from_secs(1)).into_iter().enumerate() {
        match m {
            None => return Health::Unresponsive(shard),
            Some(m) if ready && m.get("zero_draining").unwrap_or(0.0) > 0.0 => {
                return Health::Draining(shard)
            }
            Some(_) => {}
        }
    }
    Health::Ok
}
