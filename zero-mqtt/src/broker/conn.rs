//! The broker's network connections. A large broker holds many idle ones, so each is kept
//! small: times are ticks (see the `timers` module), numbers have their wire widths, and the
//! connections live in a vector indexed by the driver's connection slot, not in a hash map.

use std::fmt::Debug;
use std::hash::Hash;
use std::num::NonZeroUsize;
use std::ops::{Index, IndexMut};
use std::sync::Arc;

use lru::LruCache;
use zero_core::machine::Unframed;

use super::message::TopicName;
use super::timers::TICKS_PER_SECOND;
use crate::codec::Protocol;

/// Topics shorter than this are sent by name: an alias (3 bytes of property) would save
/// nothing.
const MIN_ALIASED_TOPIC: usize = 4;

/// How the broker tells connections apart: an id that names a slot, small and dense because
/// the driver reuses the slots of closed connections (zero-core's `ConnId` does). The id
/// itself, kept with the connection, tells a stale id from the slot's current one.
pub trait ConnKey: Copy + Eq + Hash + Debug {
    /// The slot it names.
    fn slot(self) -> usize;
}

impl ConnKey for zero_core::ConnId {
    fn slot(self) -> usize {
        zero_core::ConnId::slot(self)
    }
}

/// Plain numbers name themselves (tests, other drivers).
impl ConnKey for u32 {
    fn slot(self) -> usize {
        self as usize
    }
}

/// One network connection.
#[derive(Debug)]
pub(super) struct Conn {
    /// The start of a packet not yet complete.
    pub partial: Unframed,
    /// Topic aliases the client set (index = alias - 1), grown as aliases are used so idle
    /// connections hold none.
    pub aliases: Vec<Option<Arc<str>>>,
    /// Topic aliases the broker assigned, made on the first aliased PUBLISH.
    aliases_out: Option<Box<LruCache<Arc<str>, u16>>>,
    /// The session's slab index, once CONNECT was accepted (32 bits: see `ClientIndex`).
    pub session: Option<u32>,
    /// The tick it was accepted in until CONNECT; then the tick of its last input.
    pub last_seen: u32,
    /// The tick of its live `Timer::Conn` entry, `u32::MAX` if none (other entries are stale).
    pub armed: u32,
    /// The client's Maximum Packet Size.
    pub max_packet_out: u32,
    /// Keep-alive in force, seconds; 0 for none (1.5 times this without input closes it).
    pub keep_alive: u16,
    /// The client's Receive Maximum (our outgoing in-flight window).
    pub window: u16,
    /// How many topic aliases the broker may assign (the lower of the client's Topic Alias
    /// Maximum and the broker's own bound); 0 for none.
    pub alias_limit: u16,
    pub protocol: Protocol,
    /// Accepted from a loopback address (for `Anonymous::LoopbackOnly`).
    pub loopback: bool,
    /// A bridge (CONNECT's protocol level had its top bit set): its subscriptions take No
    /// Local and Retain As Published.
    pub bridge: bool,
    /// The broker decided to close it: further input is ignored.
    pub closing: bool,
}

impl Conn {
    /// A connection accepted in tick `now`, before its CONNECT.
    pub fn new(now: u32, loopback: bool) -> Conn {
        Conn {
            partial: Unframed::default(),
            aliases: Vec::new(),
            aliases_out: None,
            session: None,
            last_seen: now,
            armed: u32::MAX,
            max_packet_out: u32::MAX,
            keep_alive: 0,
            window: 0,
            alias_limit: 0,
            protocol: Protocol::V5,
            loopback,
            bridge: false,
            closing: false,
        }
    }

    /// The tick it must be closed in unless input arrives: the CONNECT deadline (which input
    /// before CONNECT does not move), then keep-alive. One tick is added because `last_seen`
    /// is rounded down.
    pub fn deadline(&self, connect_ticks: u32) -> Option<u32> {
        match (self.session, self.keep_alive) {
            (None, _) => Some(self.last_seen + connect_ticks + 1),
            (Some(_), 0) => None,
            (Some(_), ka) => Some(self.last_seen + u32::from(ka) * TICKS_PER_SECOND * 3 / 2 + 1),
        }
    }

    /// Its session's slab index (it must be connected).
    pub fn index(&self) -> usize {
        self.session.expect("connected") as usize
    }

    /// How the next PUBLISH names `topic`: by the alias it has, by a new alias (the next
    /// free one, or the least recently used one's), or by name when aliases are off or the
    /// topic is too short to gain from one. [`Conn::named`] records the choice once the
    /// PUBLISH is queued.
    pub fn topic_name(&self, topic: &str) -> TopicName {
        if self.alias_limit == 0 || topic.len() < MIN_ALIASED_TOPIC {
            return TopicName::Full;
        }
        let Some(lru) = &self.aliases_out else { return TopicName::Assign(1) };
        match lru.peek(topic) {
            Some(&alias) => TopicName::Alias(alias),
            None if lru.len() < usize::from(self.alias_limit) => TopicName::Assign(lru.len() as u16 + 1),
            None => TopicName::Assign(*lru.peek_lru().expect("a full table").1),
        }
    }

    /// Records that a PUBLISH naming `topic` as `name` ([`Conn::topic_name`]) was queued:
    /// the alias is (re)assigned or marked used. Aliases last as long as the connection
    /// (section 3.3.2.3.4): a new one starts with none.
    pub fn named(&mut self, topic: &Arc<str>, name: TopicName) {
        let limit = NonZeroUsize::new(usize::from(self.alias_limit));
        match (name, limit) {
            (TopicName::Full, _) | (_, None) => {}
            (TopicName::Alias(_), Some(_)) => {
                if let Some(lru) = &mut self.aliases_out {
                    lru.promote(topic);
                }
            }
            (TopicName::Assign(alias), Some(limit)) => {
                let lru = self.aliases_out.get_or_insert_with(|| Box::new(LruCache::new(limit)));
                // Full: the least recently used topic gives up its alias (`push` evicts it).
                lru.push(topic.clone(), alias);
            }
        }
    }

    /// Whether `len` bytes may be sent to the client.
    pub fn fits(&self, len: usize) -> bool {
        len <= self.max_packet_out as usize
    }
}

/// The connections, by slot.
#[derive(Debug)]
pub(super) struct Conns<C> {
    slots: Vec<Option<(C, Conn)>>,
    len: usize,
}

impl<C: ConnKey> Conns<C> {
    /// Room for `capacity` connections, reserved at once: pages become resident only as
    /// slots are used, and the vector never moves while the broker stays within it.
    pub fn with_capacity(capacity: usize) -> Conns<C> {
        Conns { slots: Vec::with_capacity(capacity), len: 0 }
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The connection `id`.
    pub fn get(&self, id: &C) -> Option<&Conn> {
        match self.slots.get(id.slot()) {
            Some(Some((held, conn))) if held == id => Some(conn),
            _ => None,
        }
    }

    /// The connection `id`, to change.
    pub fn get_mut(&mut self, id: &C) -> Option<&mut Conn> {
        match self.slots.get_mut(id.slot()) {
            Some(Some((held, conn))) if held == id => Some(conn),
            _ => None,
        }
    }

    /// The connection holding `slot`, if any.
    pub fn holder(&self, slot: usize) -> Option<C> {
        self.slots.get(slot)?.as_ref().map(|(held, _)| *held)
    }

    /// Adds connection `id`; its slot must be free (see [`Conns::holder`]).
    pub fn insert(&mut self, id: C, conn: Conn) {
        let slot = id.slot();
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, || None);
        }
        let held = self.slots[slot].replace((id, conn));
        debug_assert!(held.is_none(), "slot {slot} was still held");
        if held.is_none() {
            self.len += 1;
        }
    }

    /// Removes connection `id`.
    pub fn remove(&mut self, id: &C) -> Option<Conn> {
        let slot = self.slots.get_mut(id.slot())?;
        if slot.as_ref().is_some_and(|(held, _)| held == id) {
            self.len -= 1;
            slot.take().map(|(_, conn)| conn)
        } else {
            None
        }
    }

    /// Every connection's id.
    pub fn ids(&self) -> impl Iterator<Item = C> + '_ {
        self.slots.iter().flatten().map(|(id, _)| *id)
    }

    /// Every connection.
    pub fn values(&self) -> impl Iterator<Item = &Conn> {
        self.slots.iter().flatten().map(|(_, conn)| conn)
    }
}

impl<C: ConnKey> Index<&C> for Conns<C> {
    type Output = Conn;

    fn index(&self, id: &C) -> &Conn {
        self.get(id).expect("a known connection")
    }
}

impl<C: ConnKey> IndexMut<&C> for Conns<C> {
    fn index_mut(&mut self, id: &C) -> &mut Conn {
        self.get_mut(id).expect("a known connection")
    }
}
