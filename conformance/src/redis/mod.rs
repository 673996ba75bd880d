//! The Redis client suite: zero-redis against a real redis-server, one check per behaviour
//! the client promises (RESP3 types, RESP2, ACL authentication, pub/sub, invalidation pushes,
//! transactions, reconnects without loss or duplication, timeouts, the largest value).
//!
//! Here the client is under test and the server is the reference. [`run`] starts
//! redis-server itself (so it can restart it); [`run_against`] uses a server given by
//! address, skipping the restart check, and needs `DEBUG` allowed there for the timeout and
//! type checks.

mod checks;
mod server;

use std::net::SocketAddr;

pub use server::RedisServer;

use crate::Outcome;

/// The server the checks talk to.
pub struct Server {
    /// Its address.
    pub addr: SocketAddr,
    /// The suite's own server, which it may restart.
    pub managed: Option<RedisServer>,
}

/// Starts redis-server and runs every check (or those whose name contains `only`).
pub fn run(only: Option<&str>) -> Result<Vec<Outcome>, String> {
    let managed = RedisServer::start()?;
    let mut server = Server { addr: managed.addr, managed: Some(managed) };
    Ok(checks::run(&mut server, only))
}

/// Runs the checks against the server at `addr` (all but the restart check).
pub fn run_against(addr: SocketAddr, only: Option<&str>) -> Vec<Outcome> {
    checks::run(&mut Server { addr, managed: None }, only)
}
