//! The MQTT suite: [`checks::CHECKS`] against a broker at a socket address.
//!
//! Each run tags its client ids and topics with a prefix of its own, so runs do not see each
//! other's sessions or retained messages. Checks need the broker to accept anonymous clients.

pub mod checks;
pub mod raw;

use std::net::SocketAddr;

use crate::Outcome;

/// What a check needs: the broker, and names unique to this run.
pub struct Ctx {
    /// The broker.
    pub target: SocketAddr,
    tag: String,
}

impl Ctx {
    /// A client id unique to this run.
    pub fn id(&self, name: &str) -> String {
        format!("{}-{name}", self.tag)
    }

    /// A topic unique to this run.
    pub fn topic(&self, name: &str) -> String {
        format!("{}/{name}", self.tag)
    }
}

/// Runs every check (those whose name contains `filter`, if given) against `target`, in order.
pub fn run(target: SocketAddr, filter: Option<&str>) -> Vec<Outcome> {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    let cx = Ctx { target, tag: format!("zc{:x}{nanos:x}", std::process::id()) };
    crate::run_checks(checks::CHECKS, &cx, filter)
}
