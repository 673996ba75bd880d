//! The SMTP suite: [`checks::CHECKS`] against a server at a socket address, this suite playing
//! the client with exactly the bytes each check needs (pipelined, malformed, smuggled).
//!
//! The server must accept mail from the suite's address for recipients at `domain`
//! (`user@domain`); for the TLS checks it needs a certificate the suite can check (`tls`),
//! for the AUTH checks to offer AUTH (and `auth` for a good login). A check needing what the
//! server does not offer fails saying so.

pub mod checks;
pub mod raw;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::Outcome;

/// What the checks need.
pub struct Ctx {
    /// The server.
    pub target: SocketAddr,
    /// A domain it takes mail for.
    pub domain: String,
    /// The TLS client configuration and the name the server's certificate carries.
    pub tls: Option<(Arc<zero_core::rustls::ClientConfig>, String)>,
    /// A user and password it accepts.
    pub auth: Option<(String, String)>,
}

impl Ctx {
    /// `RCPT TO:<local@domain>`.
    pub fn rcpt(&self, local: &str) -> String {
        format!("RCPT TO:<{local}@{}>", self.domain)
    }
}

/// Runs every check (those whose name contains `filter`, if given), in order.
pub fn run(cx: &Ctx, filter: Option<&str>) -> Vec<Outcome> {
    crate::run_checks(checks::CHECKS, cx, filter)
}
