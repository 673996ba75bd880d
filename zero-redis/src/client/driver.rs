//! The client machine inline on a zero-core shard: a handler that owns a shard (or shares it
//! with other work) passes its events to [`ClientDriver::on_event`], drains the machine's
//! events from [`ClientDriver::client`], issues commands there, and calls
//! [`ClientDriver::pump`] once per batch (`Handler::on_batch_end`), so that everything issued
//! in a tick leaves in one write.

pub use zero_core::Target;
use zero_core::{ConnId, Deadline, Event, Ops};

use super::machine::Client;

/// A [`Client`] bound to a shard: it opens (and reopens) the connection, moves bytes and
/// keeps one shard timer on the machine's next deadline.
#[derive(Debug)]
pub struct ClientDriver {
    client: Client,
    target: Target,
    conn: Option<ConnId>,
    deadline: Deadline,
}

impl ClientDriver {
    /// A driver for `client`; `token` marks its shard timers (distinct from the owner's).
    pub fn new(client: Client, target: Target, token: u64) -> ClientDriver {
        ClientDriver { client, target, conn: None, deadline: Deadline::new(token) }
    }

    /// The machine: issue commands on it and drain its events.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// The connection, if one is open or opening.
    pub fn conn(&self) -> Option<ConnId> {
        self.conn
    }

    /// Feeds one shard event; returns whether it was this client's. Drain the machine's
    /// events after it, and [`Self::pump`] before the shard polls again.
    pub fn on_event(&mut self, ops: &mut Ops, event: &Event<'_>) -> bool {
        let now = ops.now();
        match event {
            Event::Connected { conn } if Some(*conn) == self.conn => self.client.connected(now),
            Event::Data { conn, data } if Some(*conn) == self.conn => self.client.handle_input(data, now),
            Event::ConnectFailed { conn, error } if Some(*conn) == self.conn => {
                self.conn = None;
                self.client
                    .handle_closed(now, &format!("connecting to {} failed: {error}", self.target.addr));
            }
            Event::Closed { conn, reason } if Some(*conn) == self.conn => {
                self.conn = None;
                self.client.handle_closed(
                    now,
                    &format!("the connection to {} closed: {reason:?}", self.target.addr),
                );
            }
            Event::Timer { token, .. } if self.deadline.fired(*token) => self.client.handle_timeout(now),
            _ => return false,
        }
        true
    }

    /// Does what the machine asks: closes, connects, writes, re-arms the timer.
    pub fn pump(&mut self, ops: &mut Ops) {
        let now = ops.now();
        if self.client.take_close() {
            if let Some(conn) = self.conn.take() {
                let _ = ops.close_now(conn);
            }
        }
        if self.conn.is_none() && self.client.wants_connect(now) {
            match ops.connect_to(&self.target) {
                Ok(conn) => self.conn = Some(conn),
                Err(error) => self
                    .client
                    .handle_closed(now, &format!("connecting to {} failed: {error}", self.target.addr)),
            }
        }
        if let Some(conn) = self.conn {
            while let Some(bytes) = self.client.poll_transmit() {
                if let Err(error) = ops.send(conn, bytes) {
                    self.conn = None;
                    let _ = ops.close_now(conn);
                    self.client
                        .handle_closed(now, &format!("writing to {} failed: {error}", self.target.addr));
                    break;
                }
            }
        }
        self.deadline.follow(ops, self.client.poll_timeout());
    }
}
