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
use crate::quic::{Dir, QuicEvent, QuicId, StreamId};

/// Where echoed bytes go: a TCP (or Unix, TLS) connection, or a QUIC stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Flow {
    Stream(ConnId),
    Quic(QuicId, StreamId),
}

/// An echo handler. Run it with `Config::half_open` set, so that a peer's FIN waits for the
/// echo of everything before it (see [`Echo::config`]).
///
/// On a QUIC endpoint ([`Ops::quic_bind`]) it echoes each bidirectional stream on itself, each
/// unidirectional stream on a unidirectional stream of its own, and each datagram as a
/// datagram; a stream's FIN is echoed after its bytes.
#[derive(Default)]
pub struct Echo {
    held: HashMap<Flow, VecDeque<DetachedBuf>>,
    /// Flows whose peer has finished: finish once their held data is out.
    finished: HashSet<Flow>,
    /// The stream each of a peer's unidirectional streams is echoed on.
    replies: HashMap<(QuicId, StreamId), StreamId>,
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

    /// Finishes `flow` once what is held for it is echoed.
    fn finish(&mut self, ops: &mut Ops, flow: Flow) {
        if self.held.contains_key(&flow) {
            self.finished.insert(flow);
        } else {
            close(ops, flow);
        }
    }

    /// Sends `data` or, if the queue is full, holds it; returns false if it had to hold it.
    fn echo(&mut self, ops: &mut Ops, flow: Flow, data: &[u8]) -> bool {
        let sent = match flow {
            Flow::Stream(conn) => ops.send(conn, data),
            Flow::Quic(conn, stream) => ops.quic_send(conn, stream, data),
        };
        match sent {
            Ok(()) => {
                self.bytes += data.len() as u64;
                true
            }
            Err(IoError::SendQueueFull { .. }) => false,
            Err(e) => {
                tracing::debug!(?flow, error = %e, "echo dropped: connection is going away");
                true
            }
        }
    }

    /// Echoes `data` on `flow` in order behind what is held for it.
    fn data(&mut self, ops: &mut Ops, flow: Flow, data: &crate::Payload<'_>) {
        // Nothing is held almost always: skip the hash lookup then.
        let held = if self.held.is_empty() { None } else { self.held.get_mut(&flow) };
        if let Some(q) = held {
            q.push_back(data.detach());
        } else if !self.echo(ops, flow, data) {
            self.held.entry(flow).or_default().push_back(data.detach());
        }
    }

    /// Replays what is held for `flow` now that it can take more.
    fn writable(&mut self, ops: &mut Ops, flow: Flow) {
        let Some(mut q) = self.held.remove(&flow) else {
            return;
        };
        while let Some(buf) = q.pop_front() {
            if !self.echo(ops, flow, &buf) {
                q.push_front(buf);
                self.held.insert(flow, q);
                return;
            }
        }
        if self.finished.remove(&flow) {
            close(ops, flow);
        }
    }

    /// Drops what is held for `flow`.
    fn forget(&mut self, flow: Flow) {
        self.held.remove(&flow);
        self.finished.remove(&flow);
    }

    /// The flow a QUIC stream's bytes are echoed on (a peer's unidirectional stream gets one
    /// of ours, opened on its first use).
    fn quic_flow(&mut self, ops: &mut Ops, conn: QuicId, stream: StreamId) -> Option<Flow> {
        if stream.dir() == Dir::Bi {
            return Some(Flow::Quic(conn, stream));
        }
        if let Some(&reply) = self.replies.get(&(conn, stream)) {
            return Some(Flow::Quic(conn, reply));
        }
        match ops.quic_open(conn, Dir::Uni) {
            Ok(reply) => {
                self.replies.insert((conn, stream), reply);
                Some(Flow::Quic(conn, reply))
            }
            Err(e) => {
                tracing::debug!(%conn, error = %e, "no stream to echo a unidirectional stream on");
                None
            }
        }
    }

    fn on_quic(&mut self, ops: &mut Ops, event: QuicEvent<'_>) {
        match event {
            QuicEvent::Accepted { .. } => self.accepted += 1,
            QuicEvent::Data { conn, stream, data } => {
                if let Some(flow) = self.quic_flow(ops, conn, stream) {
                    self.data(ops, flow, &data);
                }
            }
            QuicEvent::Finished { conn, stream } => {
                if let Some(flow) = self.quic_flow(ops, conn, stream) {
                    self.replies.remove(&(conn, stream));
                    self.finish(ops, flow);
                }
            }
            QuicEvent::Writable { conn, stream } => self.writable(ops, Flow::Quic(conn, stream)),
            // The peer abandoned what it was sending: abandon its echo the same way.
            QuicEvent::Reset { conn, stream, code } => {
                let reply =
                    if stream.dir() == Dir::Bi { Some(stream) } else { self.replies.remove(&(conn, stream)) };
                if let Some(reply) = reply {
                    self.forget(Flow::Quic(conn, reply));
                    let _ = ops.quic_reset(conn, reply, code);
                }
            }
            // The peer wants no more of a stream's echo: the shard dropped what was queued.
            QuicEvent::Stopped { conn, stream, .. } => self.forget(Flow::Quic(conn, stream)),
            QuicEvent::Datagram { conn, data } if ops.quic_send_datagram(conn, &data).is_ok() => {
                self.bytes += data.len() as u64;
            }
            QuicEvent::Closed { conn, .. } => {
                self.held.retain(|flow, _| !matches!(flow, Flow::Quic(c, _) if *c == conn));
                self.finished.retain(|flow| !matches!(flow, Flow::Quic(c, _) if *c == conn));
                self.replies.retain(|(c, _), _| *c != conn);
            }
            _ => {}
        }
    }
}

/// Ends a flow: closes a connection, finishes a QUIC stream.
fn close(ops: &mut Ops, flow: Flow) {
    let _ = match flow {
        Flow::Stream(conn) => ops.close(conn),
        Flow::Quic(conn, stream) => ops.quic_finish(conn, stream),
    };
}

impl Handler for Echo {
    fn on_event(&mut self, ops: &mut Ops, event: Event<'_>) {
        match event {
            Event::Accepted { .. } => self.accepted += 1,
            Event::Data { conn, data } => self.data(ops, Flow::Stream(conn), &data),
            Event::Writable { conn } => self.writable(ops, Flow::Stream(conn)),
            Event::HalfClosed { conn } => self.finish(ops, Flow::Stream(conn)),
            Event::Closed { conn, .. } => self.forget(Flow::Stream(conn)),
            Event::Quic(event) => self.on_quic(ops, event),
            _ => {}
        }
    }

    /// A shutdown: each connection closes once what it sent so far is echoed (QUIC
    /// connections are closed at once).
    fn on_drain(&mut self, ops: &mut Ops) {
        let conns: Vec<ConnId> = ops.connections().collect();
        for conn in conns {
            self.finish(ops, Flow::Stream(conn));
        }
        ops.quic_close_all();
    }
}
