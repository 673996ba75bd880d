//! The client machine inline on a zero-core shard: a handler that owns a shard (or shares
//! one with other work) passes its events to [`ClientDriver::on_event`], issues commands on
//! [`ClientDriver::client`] and calls [`ClientDriver::pump`] after them.

pub use zero_core::Target;
use zero_core::{ConnId, Deadline, Event, Ops};

use super::machine::Client;

/// A [`Client`] bound to a shard: it opens (and reopens) the connection, moves bytes and keeps
/// one shard timer for the machine's next deadline.
pub struct ClientDriver {
    client: Client,
    target: Target,
    conn: Option<ConnId>,
    /// The shard timer following the machine's next deadline; its token is distinct from the
    /// owner's other timers.
    deadline: Deadline,
}

impl ClientDriver {
    /// A driver for `client`; `token` marks its shard timers.
    pub fn new(client: Client, target: Target, token: u64) -> ClientDriver {
        ClientDriver { client, target, conn: None, deadline: Deadline::new(token) }
    }

    /// The machine, for commands (publish, subscribe, ...) and its events.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// The current connection, if one is open or opening.
    pub fn conn(&self) -> Option<ConnId> {
        self.conn
    }

    /// Feeds one shard event; returns whether it was this client's. Call [`Self::pump`] after.
    pub fn on_event(&mut self, ops: &mut Ops, event: &Event<'_>) -> bool {
        let now = ops.now();
        match event {
            Event::Connected { conn } if Some(*conn) == self.conn => self.client.connected(now),
            Event::Data { conn, data } if Some(*conn) == self.conn => self.client.handle_input(data, now),
            Event::ConnectFailed { conn, error } if Some(*conn) == self.conn => {
                tracing::debug!(%error, addr = %self.target.addr, "MQTT connect failed");
                self.conn = None;
                self.client.handle_closed(now);
            }
            Event::Closed { conn, .. } if Some(*conn) == self.conn => {
                self.conn = None;
                self.client.handle_closed(now);
            }
            Event::Timer { token, .. } if self.deadline.fired(*token) => self.client.handle_timeout(now),
            _ => return false,
        }
        true
    }

    /// Does what the machine asks: sends its bytes, closes, opens a connection, re-arms the
    /// timer.
    pub fn pump(&mut self, ops: &mut Ops) {
        let now = ops.now();
        if self.client.wants_close() {
            if let Some(conn) = self.conn.take() {
                let _ = ops.send(conn, &self.client.take_transmit());
                let _ = ops.close(conn);
                self.client.handle_closed(now);
            }
        }
        if self.conn.is_none() && self.client.wants_connect(now) {
            match ops.connect_to(&self.target) {
                Ok(conn) => self.conn = Some(conn),
                Err(error) => {
                    tracing::debug!(%error, "MQTT connect failed");
                    self.client.handle_closed(now);
                }
            }
        }
        let bytes = self.client.take_transmit();
        if let (Some(conn), false) = (self.conn, bytes.is_empty()) {
            if let Err(error) = ops.send(conn, &bytes) {
                tracing::debug!(%error, "MQTT send failed; closing");
                let _ = ops.close_now(conn);
            }
        }
        self.deadline.follow(ops, self.client.poll_timeout());
    }
}
