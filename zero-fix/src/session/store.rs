//! Where a session keeps what it must not lose: both sequence numbers and every message it
//! sent (to resend). The session calls its store before the bytes leave, so a store that
//! writes ahead (the write-ahead log) makes the session crash-safe.

use std::collections::BTreeMap;
use std::io;
use std::time::Instant;

use crate::codec::Timestamp;

/// A session's durable state. Calls that change it may fail (a full disk): the session then
/// stops sending rather than lose a number.
pub trait MessageStore {
    /// The sequence number of the next message to send.
    fn next_out(&self) -> u64;
    /// The sequence number expected next from the counterparty.
    fn next_in(&self) -> u64;
    /// Records a message about to be sent with `seq` (and that the next one is `seq + 1`).
    fn save(&mut self, seq: u64, message: &[u8]) -> io::Result<()>;
    /// Records the next outgoing number without a message (a reset, a gap fill).
    fn set_next_out(&mut self, next: u64) -> io::Result<()>;
    /// Records the next expected incoming number.
    fn set_next_in(&mut self, next: u64) -> io::Result<()>;
    /// Calls `each` with every stored message with a number in `begin..=end`, in order.
    fn load(&self, begin: u64, end: u64, each: &mut dyn FnMut(u64, &[u8])) -> io::Result<()>;
    /// Starts over at `at`: both numbers back to 1, the messages forgotten.
    fn reset(&mut self, at: Timestamp) -> io::Result<()>;
    /// When the numbers last started over (`None`: never recorded). A scheduled session
    /// starts over when this is before its current window.
    fn created(&self) -> Option<Timestamp>;
    /// Makes everything recorded so far durable as the store's policy says; the session calls
    /// it before its output leaves. An error stops the session.
    fn flush(&mut self, now: Instant) -> io::Result<()> {
        let _ = now;
        Ok(())
    }
}

/// A store in memory: for tests and for sessions that reset every day and may lose their
/// state with the process. It keeps at most `capacity` messages (the oldest are dropped and
/// gap-filled if asked for), so it cannot grow without bound.
#[derive(Debug)]
pub struct MemoryStore {
    next_out: u64,
    next_in: u64,
    messages: BTreeMap<u64, Vec<u8>>,
    capacity: usize,
    created: Option<Timestamp>,
}

impl Default for MemoryStore {
    fn default() -> MemoryStore {
        MemoryStore::new(100_000)
    }
}

impl MemoryStore {
    /// A store keeping at most `capacity` sent messages.
    pub fn new(capacity: usize) -> MemoryStore {
        MemoryStore { next_out: 1, next_in: 1, messages: BTreeMap::new(), capacity, created: None }
    }
}

impl MessageStore for MemoryStore {
    fn next_out(&self) -> u64 {
        self.next_out
    }

    fn next_in(&self) -> u64 {
        self.next_in
    }

    fn save(&mut self, seq: u64, message: &[u8]) -> io::Result<()> {
        self.messages.insert(seq, message.to_vec());
        while self.messages.len() > self.capacity {
            self.messages.pop_first();
        }
        self.next_out = seq + 1;
        Ok(())
    }

    fn set_next_out(&mut self, next: u64) -> io::Result<()> {
        self.next_out = next;
        Ok(())
    }

    fn set_next_in(&mut self, next: u64) -> io::Result<()> {
        self.next_in = next;
        Ok(())
    }

    fn load(&self, begin: u64, end: u64, each: &mut dyn FnMut(u64, &[u8])) -> io::Result<()> {
        for (&seq, message) in self.messages.range(begin..=end) {
            each(seq, message);
        }
        Ok(())
    }

    fn reset(&mut self, at: Timestamp) -> io::Result<()> {
        *self = MemoryStore::new(self.capacity);
        self.created = Some(at);
        Ok(())
    }

    fn created(&self) -> Option<Timestamp> {
        self.created
    }
}
