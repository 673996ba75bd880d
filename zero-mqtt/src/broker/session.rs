//! A session: the state MQTT keeps for a client id across connections (section 4.1): its
//! subscriptions, its QoS 1 and 2 flows in both directions, the messages queued for it, and
//! its will.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

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
}

/// What the broker knows about one client id.
#[derive(Debug)]
pub struct Session<C> {
    /// Unique for the broker's lifetime; survives slab index reuse (No Local, timers).
    pub uid: u64,
    /// The client identifier.
    pub client_id: Arc<str>,
    /// The connection bound to it, if any.
    pub conn: Option<C>,
    /// Session Expiry Interval in seconds; 0 ends the session with its connection,
    /// `u32::MAX` never ends it.
    pub expiry: u32,
    /// The subscriptions, by filter as the client wrote it (`$share/...` included).
    pub subscriptions: HashMap<Box<str>, Subscription>,
    /// Outgoing QoS 1/2 messages in flight, oldest first.
    pub inflight: VecDeque<Outbound>,
    /// Deliveries waiting for the in-flight window or a connection, oldest first.
    pub queue: VecDeque<Delivery>,
    /// Incoming QoS 2 packet ids with PUBREC sent and PUBREL not yet received.
    pub awaiting_release: HashSet<PacketId>,
    /// The will of the current (or last) connection.
    pub will: Option<Box<PendingWill>>,
    /// When the will is due, once the connection is gone and the will is delayed.
    pub will_at: Option<Instant>,
    /// When the session ends, once its connection is gone.
    pub ends_at: Option<Instant>,
    /// The user name it authenticated with (for ACL checks on delivery).
    pub username: Option<Arc<str>>,
    /// Whether the journal holds it (it is persistent and persistence is on): its changes
    /// are journaled while this holds.
    pub journaled: bool,
    next_packet_id: PacketId,
}

impl<C> Session<C> {
    /// A new, empty session.
    pub fn new(uid: u64, client_id: Arc<str>) -> Session<C> {
        Session {
            uid,
            client_id,
            conn: None,
            expiry: 0,
            subscriptions: HashMap::new(),
            inflight: VecDeque::new(),
            queue: VecDeque::new(),
            awaiting_release: HashSet::new(),
            will: None,
            will_at: None,
            ends_at: None,
            username: None,
            journaled: false,
            next_packet_id: 1,
        }
    }

    /// The next packet id not in flight. The in-flight window is at most 65,535, so one is
    /// always free when the caller checked the window.
    pub fn allocate_packet_id(&mut self) -> PacketId {
        loop {
            let id = self.next_packet_id;
            self.next_packet_id = self.next_packet_id.checked_add(1).unwrap_or(1);
            if !self.inflight.iter().any(|o| o.packet_id == id) {
                return id;
            }
        }
    }

    /// The in-flight entry for `packet_id`.
    pub fn inflight_position(&self, packet_id: PacketId) -> Option<usize> {
        self.inflight.iter().position(|o| o.packet_id == packet_id)
    }

    /// Queues a delivery, keeping at most `limit`: when full, a QoS 0 message makes room
    /// first (the oldest one queued, or the new one itself); otherwise the new message is
    /// dropped. Returns the delivery dropped, if any.
    pub fn enqueue(&mut self, delivery: Delivery, limit: usize) -> Option<Delivery> {
        if self.queue.len() < limit {
            self.queue.push_back(delivery);
            return None;
        }
        if delivery.qos != QoS::AtMostOnce {
            if let Some(i) = self.queue.iter().position(|d| d.qos == QoS::AtMostOnce) {
                let dropped = self.queue.remove(i);
                self.queue.push_back(delivery);
                return dropped;
            }
        }
        Some(delivery)
    }
}
