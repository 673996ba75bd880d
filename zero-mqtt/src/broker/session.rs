//! A session: the state MQTT keeps for a client id across connections (section 4.1): its
//! subscriptions, its QoS 1 and 2 flows in both directions, the messages queued for it, and
//! its will.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Instant;

use compact_str::CompactString;
use hashbrown::HashTable;
use slab::Slab;

use super::message::{Delivery, Message};
use super::router::Subscription;
use crate::codec::{PacketId, QoS};

/// Where an outgoing QoS 1 or 2 flow stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// PUBLISH sent; waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    Published,
    /// PUBREL sent; waiting for PUBCOMP (QoS 2).
    Released,
}

/// An outgoing QoS 1 or 2 message that is not yet acknowledged.
#[derive(Debug)]
pub struct Outbound {
    /// Its packet identifier on this session.
    pub packet_id: PacketId,
    /// What was sent.
    pub delivery: Delivery,
    /// How far the flow got.
    pub stage: Stage,
}

/// A will message waiting for its connection to end badly.
#[derive(Debug)]
pub struct PendingWill {
    /// The message to publish (its expiry is set when it is published).
    pub message: Message,
    /// Message Expiry Interval of the will, seconds.
    pub expiry: Option<u32>,
    /// Will Delay Interval, seconds.
    pub delay: u32,
    /// When it is due, once the connection is gone and the will is delayed.
    pub at: Option<Instant>,
}

/// A session's QoS 1/2 flows and its queue. Made on first use and kept while the session is
/// connected (so a busy session does not allocate per message), then freed when the
/// connection ends with all of them empty ([`Session::tidy`]): a session that never
/// exchanged QoS 1/2 messages, or an offline one with nothing pending, holds none.
#[derive(Debug, Default)]
pub struct Flows {
    /// Outgoing QoS 1/2 messages in flight, oldest first.
    pub inflight: VecDeque<Outbound>,
    /// Deliveries waiting for the in-flight window or a connection, oldest first.
    pub queue: VecDeque<Delivery>,
    /// Incoming QoS 2 packet ids with PUBREC sent and PUBREL not yet received.
    pub awaiting_release: BTreeSet<PacketId>,
}

/// What a session without flows reads.
static NO_FLOWS: Flows =
    Flows { inflight: VecDeque::new(), queue: VecDeque::new(), awaiting_release: BTreeSet::new() };

/// What the broker knows about one client id. Its collections are ones that take no memory
/// while empty and little inline (trees rather than hash tables), since most of a large
/// broker's sessions hold few subscriptions and nothing in flight.
#[derive(Debug)]
pub struct Session<C> {
    /// Unique for the broker's lifetime; survives slab index reuse (No Local, timers).
    pub uid: u64,
    /// The client identifier (inline up to 24 bytes, as most are).
    pub client_id: CompactString,
    /// The connection bound to it, if any.
    pub conn: Option<C>,
    /// Session Expiry Interval in seconds; 0 ends the session with its connection,
    /// `u32::MAX` never ends it.
    pub expiry: u32,
    /// The subscriptions, by filter as the client wrote it (`$share/...` included).
    pub subscriptions: BTreeMap<Box<str>, Subscription>,
    /// Its flows, if it has any (see [`Session::flows`]).
    flows: Option<Box<Flows>>,
    /// The will of the current (or last) connection.
    pub will: Option<Box<PendingWill>>,
    /// The tick the session ends in, once its connection is gone.
    pub ends_at: Option<NonZeroU32>,
    /// The user name it authenticated with (for ACL checks on delivery).
    pub username: Option<Arc<str>>,
    /// Whether the journal holds it (it is persistent and persistence is on): its changes
    /// are journaled while this holds.
    pub journaled: bool,
    next_packet_id: PacketId,
}

impl<C> Session<C> {
    /// A new, empty session.
    pub fn new(uid: u64, client_id: CompactString) -> Session<C> {
        Session {
            uid,
            client_id,
            conn: None,
            expiry: 0,
            subscriptions: BTreeMap::new(),
            flows: None,
            will: None,
            ends_at: None,
            username: None,
            journaled: false,
            next_packet_id: 1,
        }
    }

    /// Its flows (empty ones if it has none).
    pub fn flows(&self) -> &Flows {
        self.flows.as_deref().unwrap_or(&NO_FLOWS)
    }

    /// Its flows, made if it has none.
    pub fn flows_mut(&mut self) -> &mut Flows {
        self.flows.get_or_insert_with(Box::default)
    }

    /// Frees its flows if they are all empty.
    pub fn tidy(&mut self) {
        let f = self.flows();
        if f.inflight.is_empty() && f.queue.is_empty() && f.awaiting_release.is_empty() {
            self.flows = None;
        }
    }

    /// The next queued delivery, if any.
    pub fn pop_queued(&mut self) -> Option<Delivery> {
        self.flows.as_mut()?.queue.pop_front()
    }

    /// Ends the QoS 2 flow of an incoming `packet_id` (PUBREL); false if none awaited it.
    pub fn release(&mut self, packet_id: PacketId) -> bool {
        self.flows.as_mut().is_some_and(|f| f.awaiting_release.remove(&packet_id))
    }

    /// When its delayed will is due, once the connection is gone.
    pub fn will_due(&self) -> Option<Instant> {
        self.will.as_ref().and_then(|w| w.at)
    }

    /// The next packet id not in flight. The in-flight window is at most 65,535, so one is
    /// always free when the caller checked the window.
    pub fn allocate_packet_id(&mut self) -> PacketId {
        loop {
            let id = self.next_packet_id;
            self.next_packet_id = self.next_packet_id.checked_add(1).unwrap_or(1);
            if !self.flows().inflight.iter().any(|o| o.packet_id == id) {
                return id;
            }
        }
    }

    /// The in-flight entry for `packet_id`.
    pub fn inflight_position(&self, packet_id: PacketId) -> Option<usize> {
        self.flows().inflight.iter().position(|o| o.packet_id == packet_id)
    }

    /// Queues a delivery, keeping at most `limit`: when full, a QoS 0 message makes room
    /// first (the oldest one queued, or the new one itself); otherwise the new message is
    /// dropped. Returns the delivery dropped, if any.
    pub fn enqueue(&mut self, delivery: Delivery, limit: usize) -> Option<Delivery> {
        let queue = &mut self.flows_mut().queue;
        if queue.len() < limit {
            queue.push_back(delivery);
            return None;
        }
        if delivery.qos != QoS::AtMostOnce {
            if let Some(i) = queue.iter().position(|d| d.qos == QoS::AtMostOnce) {
                let dropped = queue.remove(i);
                queue.push_back(delivery);
                return dropped;
            }
        }
        Some(delivery)
    }
}

/// The sessions by client id: a hash table of slab indices, 4 bytes a session, the ids
/// themselves living in the sessions (a map keyed by the id took 24 bytes a session and
/// another copy of the id).
#[derive(Debug, Default)]
pub struct ClientIndex {
    table: HashTable<u32>,
    hasher: RandomState,
}

impl ClientIndex {
    /// The session of `client_id`.
    pub fn get<C>(&self, sessions: &Slab<Session<C>>, client_id: &str) -> Option<usize> {
        let hash = self.hasher.hash_one(client_id);
        let found = self.table.find(hash, |&i| &*sessions[i as usize].client_id == client_id);
        found.map(|&i| i as usize)
    }

    /// Lists the session at `index` (its client id must not be listed yet).
    pub fn insert<C>(&mut self, sessions: &Slab<Session<C>>, index: usize) {
        let ClientIndex { table, hasher } = self;
        let hash = hasher.hash_one(&*sessions[index].client_id);
        let index = u32::try_from(index).expect("fewer than 2^32 sessions");
        table.insert_unique(hash, index, |&i| hasher.hash_one(&*sessions[i as usize].client_id));
    }

    /// Unlists the session at `index`, whose client id is `client_id`.
    pub fn remove(&mut self, client_id: &str, index: usize) {
        let hash = self.hasher.hash_one(client_id);
        if let Ok(entry) = self.table.find_entry(hash, |&i| i as usize == index) {
            entry.remove();
        }
    }
}
