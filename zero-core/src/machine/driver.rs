//! [`Driver`]: a machine inline on a shard.

use crate::event::Event;
use crate::id::ConnId;
use crate::ops::Ops;
use crate::timer::Deadline;
use crate::tls::Target;

use super::{Closed, Machine, Upgrade};

/// A [`Machine`] bound to a shard: it opens (and reopens) the connection to its [`Target`]
/// (or to the failover target the machine picks, see [`Machine::target`]),
/// moves bytes both ways and keeps one shard timer on the machine's next deadline. A handler
/// that owns the shard (or shares it with other work) passes each event to
/// [`Driver::on_event`], works with [`Driver::machine`], and calls [`Driver::pump`] after.
#[derive(Debug)]
pub struct Driver<M> {
    machine: M,
    /// The primary target, then the failover ones.
    targets: Vec<Target>,
    conn: Option<ConnId>,
    /// The shard timer following the machine's next deadline.
    deadline: Deadline,
}

impl<M: Machine> Driver<M> {
    /// A driver for `machine`; `token` marks its shard timers (distinct from the owner's).
    pub fn new(machine: M, target: Target, token: u64) -> Driver<M> {
        Driver { machine, targets: vec![target], conn: None, deadline: Deadline::new(token) }
    }

    /// Adds failover targets, tried after the primary in order when [`Machine::target`]
    /// counts up.
    pub fn with_failover(mut self, targets: impl IntoIterator<Item = Target>) -> Driver<M> {
        self.targets.extend(targets);
        self
    }

    /// The machine: issue commands on it and drain its events.
    pub fn machine(&mut self) -> &mut M {
        &mut self.machine
    }

    /// Binds an accepted connection to the machine (a server-side machine, which does not
    /// connect by itself): it hears [`Machine::handle_connected`] now, and the connection's
    /// events from here on. A connection the driver had is closed first.
    pub fn attach(&mut self, ops: &mut Ops, conn: ConnId) {
        if let Some(old) = self.conn.replace(conn) {
            let _ = ops.close_now(old);
            self.machine.handle_closed(ops.now(), Closed::Requested);
        }
        self.machine.handle_connected(ops.now());
    }

    /// The machine, to read.
    pub fn machine_ref(&self) -> &M {
        &self.machine
    }

    /// The connection, if one is open or opening.
    pub fn conn(&self) -> Option<ConnId> {
        self.conn
    }

    /// Feeds one shard event; returns whether it was this machine's. Drain the machine's
    /// events, then call [`Driver::pump`] (a machine may decode input as its events are
    /// drained and queue output as it goes).
    pub fn on_event(&mut self, ops: &mut Ops, event: &Event<'_>) -> bool {
        let now = ops.now();
        let ours = |conn: &ConnId| Some(*conn) == self.conn;
        match event {
            Event::Connected { conn } if ours(conn) => self.machine.handle_connected(now),
            Event::Data { conn, data } if ours(conn) => self.machine.handle_input(now, data),
            Event::Upgraded { conn } if ours(conn) => self.machine.handle_upgraded(now),
            Event::ConnectFailed { conn, error } if ours(conn) => {
                self.conn = None;
                self.machine.handle_closed(now, Closed::ConnectFailed(error.to_string().into()));
            }
            Event::Closed { conn, reason } if ours(conn) => {
                self.conn = None;
                self.machine.handle_closed(now, Closed::Lost(reason.clone()));
            }
            Event::Timer { token, .. } if self.deadline.fired(*token) => self.machine.handle_timeout(now),
            _ => return false,
        }
        true
    }

    /// Does what the machine asks: closes (after sending what it queued), connects, sends,
    /// and re-arms the timer. A refused send closes the connection at once and is reported
    /// as [`Closed::SendFailed`].
    pub fn pump(&mut self, ops: &mut Ops) {
        let now = ops.now();
        if self.machine.poll_close() {
            if let Some(conn) = self.conn.take() {
                while let Some(bytes) = self.machine.poll_transmit() {
                    if ops.send(conn, bytes).is_err() {
                        break;
                    }
                }
                let _ = ops.close(conn);
                self.machine.handle_closed(now, Closed::Requested);
            }
        }
        if self.conn.is_none() && self.machine.wants_connect(now) {
            let target = &self.targets[self.machine.target() % self.targets.len()];
            match ops.connect_to(target) {
                Ok(conn) => self.conn = Some(conn),
                Err(error) => {
                    self.machine.handle_closed(now, Closed::ConnectFailed(error.to_string().into()))
                }
            }
        }
        if let Some(conn) = self.conn {
            let mut refused = None;
            while let Some(bytes) = self.machine.poll_transmit() {
                if let Err(error) = ops.send(conn, bytes) {
                    refused = Some(error);
                    break;
                }
            }
            if refused.is_none() {
                if let Some(upgrade) = self.machine.poll_upgrade() {
                    let started = match upgrade {
                        Upgrade::Server(config) => ops.tls_accept_upgrade(conn, config),
                        Upgrade::Client { server_name, config } => {
                            ops.tls_upgrade(conn, &server_name, config)
                        }
                    };
                    refused = started.err();
                }
            }
            if let Some(error) = refused {
                tracing::debug!(%conn, %error, "send refused; closing");
                self.conn = None;
                let _ = ops.close_now(conn);
                self.machine.handle_closed(now, Closed::SendFailed(error.to_string().into()));
            }
        }
        self.deadline.follow(ops, self.machine.poll_timeout());
    }
}
