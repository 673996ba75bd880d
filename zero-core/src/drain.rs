//! Graceful shutdown. A shard **drains** ([`IoHandle::drain`]): its listeners close at once,
//! its handler says goodbye in its protocol's way ([`Handler::on_drain`]; by default every
//! connection is closed gracefully, queued bytes first), and it reports once no socket is
//! left. A cluster **shuts down** ([`Stopper::shutdown`], what a server does on SIGTERM): every
//! shard drains, and when all have reported, or the grace period is over, all stop together,
//! so what shards post each other while draining is still handled.

use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::conn::CloseReason;
use crate::event::Handler;
use crate::handle::IoHandle;
use crate::id::{ConnId, UdpId};
use crate::ops::Ops;
use crate::table::Kind;

/// Where a shard is in a drain.
#[derive(Debug, Default)]
pub(crate) enum Drain {
    #[default]
    No,
    /// Asked for: the handler's `on_drain` runs before the next events.
    Asked(mpsc::Sender<usize>),
    /// Under way: reported once the table is empty.
    Running(mpsc::Sender<usize>),
    Reported,
}

impl Ops {
    /// Whether the shard is draining (see [`IoHandle::drain`]): handlers stop starting work.
    pub fn is_draining(&self) -> bool {
        !matches!(self.drain, Drain::No)
    }

    /// Every open stream connection.
    pub fn connections(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.table.ids().filter_map(|(index, gen)| {
            let slot = self.table.live(index, gen)?;
            matches!(slot.kind, Kind::Stream(_)).then_some(ConnId::new(index, gen))
        })
    }

    /// Closes every socket: connections gracefully (queued bytes sent, then FIN), listeners and
    /// UDP sockets at once. What [`Handler::on_drain`] does by default.
    pub fn close_all(&mut self) {
        self.quic_close_all();
        let ids: Vec<(u32, u32)> = self.table.ids().collect();
        for (index, gen) in ids {
            match self.table.live(index, gen).map(|slot| matches!(slot.kind, Kind::Stream(_))) {
                Some(true) => drop(self.close(ConnId::new(index, gen))),
                // A QUIC endpoint stays until its connections have said goodbye (`quic_drive`).
                Some(false) if self.quic.busy(UdpId::new(index, gen)) => {}
                Some(false) => self.release(index, gen, CloseReason::Local),
                None => {}
            }
        }
    }

    /// A drain was asked for: no more connections are accepted.
    pub(crate) fn begin_drain(&mut self, done: mpsc::Sender<usize>) {
        let listeners: Vec<(u32, u32)> = self
            .table
            .ids()
            .filter(|&(i, g)| self.table.live(i, g).is_some_and(|s| matches!(s.kind, Kind::Listener { .. })))
            .collect();
        for (index, gen) in listeners {
            self.release(index, gen, CloseReason::Local);
        }
        self.drain = match self.drain {
            Drain::Reported => {
                let _ = done.send(self.shard);
                Drain::Reported
            }
            _ => Drain::Asked(done),
        };
    }

    /// Runs the handler's goodbye if a drain was just asked for.
    pub(crate) fn start_drain<H: Handler + ?Sized>(&mut self, handler: &mut H) {
        if !matches!(self.drain, Drain::Asked(_)) {
            return;
        }
        if let Drain::Asked(done) = std::mem::take(&mut self.drain) {
            self.drain = Drain::Running(done);
            handler.on_drain(self);
        }
    }

    /// Reports a running drain once no socket is left.
    pub(crate) fn report_if_drained(&mut self) {
        if matches!(self.drain, Drain::Running(_)) && self.table.len() == 0 {
            if let Drain::Running(done) = std::mem::replace(&mut self.drain, Drain::Reported) {
                let _ = done.send(self.shard);
            }
        }
    }
}

/// Shuts a cluster down gracefully from any thread ([`crate::IoCluster::stopper`]).
#[derive(Debug, Clone)]
pub struct Stopper {
    handles: Arc<[IoHandle]>,
}

impl Stopper {
    /// A stopper for the shards `handles` reach (a standalone [`crate::Io`]'s handle, or a
    /// cluster's: [`crate::IoCluster::stopper`]).
    pub fn new(handles: impl Into<Arc<[IoHandle]>>) -> Stopper {
        Stopper { handles: handles.into() }
    }

    /// Shard `shard`'s handle.
    pub fn handle(&self, shard: usize) -> Option<&IoHandle> {
        self.handles.get(shard)
    }

    /// How many shards it stops.
    pub fn shards(&self) -> usize {
        self.handles.len()
    }

    /// Drains every shard, waits until all have (or `grace` is over), then stops them all.
    /// Returns how many shards drained in time; the others are stopped with their sockets
    /// still open, which the shard then drops.
    pub fn shutdown(&self, grace: Duration) -> usize {
        let in_time = self.drain(grace);
        self.stop();
        in_time
    }

    /// The first half of [`Stopper::shutdown`]: drains every shard and waits until all have
    /// (or `grace` is over), leaving them running; returns how many drained in time.
    pub fn drain(&self, grace: Duration) -> usize {
        let (done, drained) = mpsc::channel();
        let asked = self.handles.iter().filter(|h| h.drain(done.clone()).is_ok()).count();
        drop(done);
        let deadline = Instant::now() + grace;
        let mut in_time = 0;
        while in_time < asked {
            match drained.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(_) => in_time += 1,
                Err(_) => break, // the grace period is over, or a shard is gone
            }
        }
        if in_time < asked {
            tracing::warn!(in_time, shards = asked, ?grace, "not every shard drained in time");
        }
        in_time
    }

    /// Stops every shard at once.
    pub fn stop(&self) {
        for h in self.handles.iter() {
            let _ = h.stop();
        }
    }
}
