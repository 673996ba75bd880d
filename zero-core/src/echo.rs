//! [`Echo`]: the reference handler, an echo server that loses nothing. It is what
//! `zero echo serve` runs and what the tests and benchmarks measure, and it shows the pattern
//! for any handler whose output follows its input: when a connection's send queue is full, hold
//! the payloads (detached, no copy) and replay them on `Event::Writable`; the shard has paused
//! reads meanwhile, so what is held stays bounded.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::config::Config;
use crate::error::IoError;
use crate::event::{Event, Handler};
use crate::id::ConnId;
use crate::ops::Ops;
use crate::pool::DetachedBuf;

/// An echo handler. Run it with `Config::half_open` set, so that a peer's FIN waits for the
/// echo of everything before it (see [`Echo::config`]).
#[derive(Default)]
pub struct Echo {
    held: HashMap<ConnId, VecDeque<DetachedBuf>>,
    /// Connections whose peer has finished: close once their held data is out.
    finished: HashSet<ConnId>,
    /// Connections accepted so far.
    pub accepted: u64,
    /// Bytes echoed so far.
    pub bytes: u64,
}

impl Echo {
    /// The shard configuration Echo is meant for: defaults, with `half_open` set.
    pub fn config() -> Config {
        Config { half_open: true, ..Config::default() }
    }

    /// Closes `conn` once what is held for it is echoed.
    fn finish(&mut self, ops: &mut Ops, conn: ConnId) {
        if self.held.contains_key(&conn) {
            self.finished.insert(conn);
        } else {
            let _ = ops.close(conn);
        }
    }

    /// Sends `data` or, if the queue is full, holds it; returns false if it had to hold it.
    fn echo(&mut self, ops: &mut Ops, conn: ConnId, data: &[u8]) -> bool {
        match ops.send(conn, data) {
            Ok(()) => {
                self.bytes += data.len() as u64;
                true
            }
            Err(IoError::SendQueueFull { .. }) => false,
            Err(e) => {
                tracing::debug!(%conn, error = %e, "echo dropped: connection is going away");
                true
            }
        }
    }
}

impl Handler for Echo {
    fn on_event(&mut self, ops: &mut Ops, event: Event<'_>) {
        match event {
            Event::Accepted { .. } => self.accepted += 1,
            Event::Data { conn, data } => {
                // Nothing is held almost always: skip the hash lookup then.
                let held = if self.held.is_empty() { None } else { self.held.get_mut(&conn) };
                if let Some(q) = held {
                    q.push_back(data.detach());
                } else if !self.echo(ops, conn, &data) {
                    self.held.entry(conn).or_default().push_back(data.detach());
                }
            }
            Event::Writable { conn } => {
                let Some(mut q) = self.held.remove(&conn) else {
                    return;
                };
                while let Some(buf) = q.pop_front() {
                    if !self.echo(ops, conn, &buf) {
                        q.push_front(buf);
                        self.held.insert(conn, q);
                        return;
                    }
                }
                if self.finished.remove(&conn) {
                    let _ = ops.close(conn);
                }
            }
            Event::HalfClosed { conn } => self.finish(ops, conn),
            Event::Closed { conn, .. } => {
                self.held.remove(&conn);
                self.finished.remove(&conn);
            }
            _ => {}
        }
    }

    /// A shutdown: each connection closes once what it sent so far is echoed.
    fn on_drain(&mut self, ops: &mut Ops) {
        let conns: Vec<ConnId> = ops.connections().collect();
        for conn in conns {
            self.finish(ops, conn);
        }
    }
}
