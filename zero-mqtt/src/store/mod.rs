//! Persistence: the broker's durable state as a journal of [`Record`]s.
//!
//! - **What is kept.** Persistent sessions (Session Expiry Interval above 0, or a 3.1.1
//!   session without clean session) with their subscriptions, their queued and in-flight
//!   QoS 1/2 deliveries (with packet identifiers and QoS 2 stage, so a resumed flow continues
//!   where it stopped), their incoming QoS 2 packet identifiers awaiting PUBREL (so a
//!   retransmitted PUBLISH is not routed twice), and retained messages. Not kept: clean
//!   sessions, QoS 0 deliveries, wills (a broker crash does not publish them later), `$SYS`.
//! - **How.** The broker machine appends records to an in-memory batch as its state changes
//!   ([`Journaling`], sans-I/O); the driver writes each tick's batch to the [`Journal`] file
//!   before that tick's replies are sent, so an acknowledged message is on disk first. The
//!   [`Fsync`] policy decides when the file reaches stable storage.
//! - **Recovery.** At start the journal is replayed into the broker (`Broker::restore`), a
//!   torn tail cut off, and the journal rewritten as a snapshot of the live state; it is
//!   compacted again whenever it grows past four times its last snapshot (and 64 MiB).
//!   Message bodies are written once and shared by the deliveries that reference them.
//! - **Trade-offs.** The journal write and sync run on the shard (a busy tick with
//!   `Fsync::Always` waits for the disk); compaction writes the whole live state at once.
//!   Restored sessions start their expiry countdown afresh at restart.

mod record;

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use record::Record;
pub use zero_core::journal::{Fsync, Journal};

use crate::broker::{Delivery, Message};

/// The machine's side of persistence: identifiers for journaled messages and deliveries, and
/// the records of the current tick, waiting for the driver.
#[derive(Debug)]
pub struct Journaling {
    batch: Vec<u8>,
    next_mid: u64,
    next_did: u64,
    /// One moment as an instant and as Unix milliseconds, to store expiry times.
    base: (Instant, u64),
}

impl Journaling {
    /// Starts journaling at `now`, which is `wall` on the wall clock (the driver reads it;
    /// message expiry is stored as Unix time).
    pub fn new(now: Instant, wall: SystemTime) -> Journaling {
        let wall = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
        Journaling { batch: Vec::new(), next_mid: 1, next_did: 1, base: (now, wall.as_millis() as u64) }
    }

    /// An empty batch with the same clock and ids (for writing a snapshot beside the
    /// journal's batch).
    pub fn scratch(&self) -> Journaling {
        Journaling { batch: Vec::new(), ..*self }
    }

    /// Appends a record to the batch.
    pub fn record(&mut self, record: Record<'_>) {
        record.encode(&mut self.batch);
    }

    /// The batch so far, leaving it empty.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.batch)
    }

    /// The journal id of `message`, writing its body the first time.
    pub fn message(&mut self, message: &Message) -> u64 {
        let id = message.journal_id.load(Relaxed);
        if id != 0 {
            return id;
        }
        let mid = self.next_mid;
        self.next_mid += 1;
        message.journal_id.store(mid, Relaxed);
        self.write_message(mid, message);
        mid
    }

    /// Writes `message`'s body under `mid` (snapshots write each body once themselves).
    pub fn write_message(&mut self, mid: u64, m: &Message) {
        let expires_ms = m.expires.map_or(0, |e| self.unix_ms(e));
        self.record(Record::Message {
            mid,
            topic: &m.topic,
            qos: m.qos as u8,
            retain: m.retain,
            expires_ms,
            properties: &m.properties,
            payload: &m.payload,
        });
    }

    /// Journals a new QoS 1/2 delivery to `client`, giving it its id.
    pub fn enqueue(&mut self, client: &str, delivery: &mut Delivery) {
        let mid = self.message(&delivery.message);
        delivery.did = self.next_did;
        self.next_did += 1;
        self.write_enqueue(client, mid, delivery);
    }

    /// Writes the Enqueue record of a delivery that has its id.
    pub fn write_enqueue(&mut self, client: &str, mid: u64, d: &Delivery) {
        let ids: Vec<u8> = d.subscription_ids.iter().flat_map(|id| id.to_be_bytes()).collect();
        self.record(Record::Enqueue {
            did: d.did,
            client,
            mid,
            qos: d.qos as u8,
            retain: d.retain,
            ids: &ids,
        });
    }

    /// Journals the end of a delivery, if it was journaled.
    pub fn done(&mut self, delivery: &Delivery) {
        if delivery.did != 0 {
            self.record(Record::Done { did: delivery.did });
        }
    }

    /// Ids restored from a journal are not handed out again.
    pub fn skip_past(&mut self, mid: u64, did: u64) {
        self.next_mid = self.next_mid.max(mid + 1);
        self.next_did = self.next_did.max(did + 1);
    }

    /// `at` as Unix milliseconds.
    pub fn unix_ms(&self, at: Instant) -> u64 {
        let (base, ms) = self.base;
        match at.checked_duration_since(base) {
            Some(after) => ms + after.as_millis() as u64,
            None => ms.saturating_sub(base.duration_since(at).as_millis() as u64),
        }
    }

    /// Unix milliseconds as an instant (one in the past if that time has passed).
    pub fn instant(&self, unix_ms: u64) -> Instant {
        let (base, ms) = self.base;
        match unix_ms.checked_sub(ms) {
            Some(after) => base + Duration::from_millis(after),
            None => base.checked_sub(Duration::from_millis(ms - unix_ms)).unwrap_or(base),
        }
    }
}
