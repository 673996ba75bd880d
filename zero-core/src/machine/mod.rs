//! The one contract of a connection-oriented protocol machine, and the runners every machine
//! shares.
//!
//! A machine is sans I/O (the shape of quinn-proto's `Connection`): it takes time and input
//! (`handle_*`, time first) and yields output (`poll_*`); it reads no clock, no socket and
//! takes no lock. [`Machine`] names that interface once for client machines (the MQTT and
//! Redis clients implement it); [`Unframed`] keeps the bytes of a frame not yet whole.
//!
//! The runners, each reaching a [`Target`](crate::Target) (TCP or TLS, directly or through
//! SOCKS5):
//! - [`Driver`]: inline on a shard the owner runs (its handler feeds the driver events);
//! - [`Background`]: a shard on a thread of its own, serving callers on other threads;
//! - `Task` (feature `tokio`): a task of the caller's Tokio runtime over Tokio's sockets.
//!
//! The last two serve callers through the protocol crate's [`Service`]. All run a machine the
//! same way: drain its events, send what it queued (closing, after sending, when it asks),
//! reconnect when it wants, and keep one timer on its next deadline. The crate docs say how
//! a protocol crate is built on them.

use std::sync::Arc;
use std::time::Instant;

use crate::conn::CloseReason;

mod background;
mod driver;
#[cfg(feature = "tokio")]
mod task;

pub use background::{Background, Service};
pub use driver::Driver;
#[cfg(feature = "tokio")]
pub use task::{Task, LINGER};

/// How a machine's connection ended, as its driver tells it (typed, never prose).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Closed {
    /// It could not be opened (connect, TLS or SOCKS5 handshake); what the shard said.
    ConnectFailed(Arc<str>),
    /// It was open and ended: the peer closed it, reset it, or it failed.
    Lost(CloseReason),
    /// A write was refused (the connection was gone or its queue full); what the shard said.
    SendFailed(Arc<str>),
    /// The machine asked for the close ([`Machine::poll_close`]); the driver closed it after
    /// sending what the machine had queued.
    Requested,
}

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Closed::ConnectFailed(e) => write!(f, "connecting failed: {e}"),
            Closed::Lost(reason) => write!(f, "the connection closed: {reason:?}"),
            Closed::SendFailed(e) => write!(f, "writing failed: {e}"),
            Closed::Requested => write!(f, "closed as asked"),
        }
    }
}

/// A TLS upgrade on an open plaintext connection (STARTTLS), which a machine asks of its driver
/// once its go-ahead is queued ([`Machine::poll_upgrade`]).
#[derive(Clone)]
pub enum Upgrade {
    /// Become the TLS server of the connection (an SMTP server after its `220`).
    Server(Arc<rustls::ServerConfig>),
    /// Become the TLS client, checking the certificate for `server_name` (an SMTP client
    /// after the server's `220`).
    Client {
        /// The name the certificate must carry (and SNI).
        server_name: String,
        /// The client configuration.
        config: Arc<rustls::ClientConfig>,
    },
}

impl std::fmt::Debug for Upgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Upgrade::Server(_) => f.write_str("Upgrade::Server"),
            Upgrade::Client { server_name, .. } => write!(f, "Upgrade::Client({server_name})"),
        }
    }
}

/// A connection-oriented client machine, sans I/O. The driver asks [`Machine::wants_connect`]
/// when it has no connection, opens one, and then reports: [`Machine::handle_connected`] (or
/// [`Machine::handle_closed`] if it failed), every input, every close, and the machine's
/// timeouts. After each, it sends what [`Machine::poll_transmit`] yields, closes when
/// [`Machine::poll_close`] says so (and reports that close as [`Closed::Requested`]), and
/// arms a timer for [`Machine::poll_timeout`].
pub trait Machine {
    /// Whether a connection should be opened now (the machine then waits for it).
    fn wants_connect(&mut self, now: Instant) -> bool;
    /// The connection is open.
    fn handle_connected(&mut self, now: Instant);
    /// Bytes arrived.
    fn handle_input(&mut self, now: Instant, data: &[u8]);
    /// The connection is gone (or could not be opened), and why.
    fn handle_closed(&mut self, now: Instant, cause: Closed);
    /// [`Machine::poll_timeout`]'s moment has come.
    fn handle_timeout(&mut self, now: Instant);
    /// The next bytes to send, if any.
    fn poll_transmit(&mut self) -> Option<&[u8]>;
    /// Whether the connection should be closed now (once).
    fn poll_close(&mut self) -> bool;
    /// When [`Machine::handle_timeout`] is next due.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Whether the machine was closed for good and wants nothing more of its driver (no
    /// connection, no timer): a runner that owns it may stop.
    fn is_drained(&self) -> bool;
    /// Which of the driver's targets (primary first) the connection asked for goes to, taken
    /// modulo their number: a machine that fails over counts up. The primary by default.
    fn target(&self) -> usize {
        0
    }
    /// A TLS upgrade to start once what is queued so far is sent (STARTTLS). The machine
    /// must ignore whatever plaintext followed its command (CVE-2011-0411); the driver drops
    /// what the shard still held. Never, by default.
    fn poll_upgrade(&mut self) -> Option<Upgrade> {
        None
    }
    /// The upgrade's handshake finished: input from here on came through TLS. (A failed
    /// handshake closes the connection: [`Machine::handle_closed`].)
    fn handle_upgraded(&mut self, now: Instant) {
        let _ = now;
    }
}

/// The start of a frame that has not fully arrived: a machine frames what is complete and
/// keeps the tail here, until more bytes complete it. Input is framed where it lies whenever
/// nothing is held (the common case: no copy), and a large tail's memory is given back once
/// it is consumed. How large a frame may grow is the codec's to refuse (as soon as it reads a
/// length), so this holds at most one frame's worth.
#[derive(Debug, Default)]
pub struct Unframed {
    held: Vec<u8>,
}

/// Capacity kept once the held bytes are consumed; larger buffers are freed.
const KEEP: usize = 16 * 1024;

impl Unframed {
    /// Frames `input` after what is held: `frame` is given the bytes and returns how many of
    /// them it consumed (its whole frames); the rest is held for the next call.
    ///
    /// A machine keeps an `Unframed` in its state and takes it out for the call, so that
    /// `frame` may borrow the machine: `let mut tail = take(&mut self.tail); tail.feed(..);
    /// self.tail = tail;`.
    pub fn feed(&mut self, input: &[u8], frame: impl FnOnce(&[u8]) -> usize) {
        if self.held.is_empty() {
            let used = frame(input);
            self.held.extend_from_slice(&input[used.min(input.len())..]);
        } else {
            self.held.extend_from_slice(input);
            let used = frame(&self.held).min(self.held.len());
            self.held.drain(..used);
            if self.held.is_empty() && self.held.capacity() > KEEP {
                self.held = Vec::new();
            }
        }
    }

    /// How many bytes are held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Drops what is held, and its memory (a connection ended).
    pub fn clear(&mut self) {
        self.held = Vec::new();
    }
}

/// What a machine has queued to send, and what its last `poll_transmit` lent the driver: two
/// buffers swapped on each poll, so the lent bytes stay put while new ones are queued, and
/// neither is reallocated once warm. It derefs to the queue (a `Vec<u8>` to write into).
#[derive(Debug, Default)]
pub struct Outbox {
    queued: Vec<u8>,
    lent: Vec<u8>,
}

impl Outbox {
    /// What `poll_transmit` returns: everything queued, or `None` when nothing is.
    pub fn poll(&mut self) -> Option<&[u8]> {
        if self.queued.is_empty() {
            return None;
        }
        std::mem::swap(&mut self.queued, &mut self.lent);
        self.queued.clear();
        Some(&self.lent)
    }
}

impl std::ops::Deref for Outbox {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.queued
    }
}

impl std::ops::DerefMut for Outbox {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.queued
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames of the form `[len, bytes...]`; returns the frames and what they consumed.
    fn frames(bytes: &[u8], out: &mut Vec<Vec<u8>>) -> usize {
        let mut at = 0;
        while let Some(&len) = bytes.get(at) {
            let Some(frame) = bytes.get(at + 1..at + 1 + usize::from(len)) else { break };
            out.push(frame.to_vec());
            at += 1 + usize::from(len);
        }
        at
    }

    #[test]
    fn frames_come_out_whole_at_every_cut() {
        let stream = [3, b'a', b'b', b'c', 0, 2, b'x', b'y', 1, b'z'];
        for cut in 0..=stream.len() {
            let mut u = Unframed::default();
            let mut got = Vec::new();
            u.feed(&stream[..cut], |b| frames(b, &mut got));
            u.feed(&stream[cut..], |b| frames(b, &mut got));
            assert_eq!(got, [&b"abc"[..], b"", b"xy", b"z"], "cut at {cut}");
            assert!(u.is_empty());
        }
    }

    #[test]
    fn a_large_tail_gives_its_memory_back_once_consumed() {
        let mut u = Unframed::default();
        u.feed(&[255; 100], |_| 0);
        u.feed(&[0; 100_000], |b| b.len());
        assert!(u.is_empty() && u.held.capacity() == 0);
    }
}
