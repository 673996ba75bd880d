//! The socket table of a shard: slots with generations, so ids of closed sockets go stale.

use std::sync::Arc;

use rustls::ServerConfig;
use socket2::Socket;

use crate::conn::Stream;
use crate::udp::Udp;
use crate::ws::WsServer;

/// What a slot holds.
pub(crate) enum Kind {
    Listener {
        accept_armed: bool,
        nodelay: bool,
        tls: Option<Arc<ServerConfig>>,
        ws: Option<Arc<WsServer>>,
    },
    Stream(Stream),
    /// Boxed: UDP sockets are few, and their state is larger than a stream's.
    Udp(Box<Udp>),
}

/// A slot's life: in use, or waiting for its last operations to finish before it is freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Life {
    Live,
    /// Closed to the user; operations in flight are being cancelled.
    Releasing {
        cancel_sent: bool,
    },
}

/// One socket and its state.
pub(crate) struct Slot {
    pub sock: Socket,
    pub kind: Kind,
    pub life: Life,
    /// Submitted operations whose final completion has not arrived.
    pub inflight: u32,
    /// Listed in `Table::touched` for the next flush.
    pub touched: bool,
}

struct Entry {
    gen: u32,
    slot: Option<Slot>,
}

/// The slots, a free list, and the slots that need submissions at the next flush.
#[derive(Default)]
pub(crate) struct Table {
    entries: Vec<Entry>,
    free: Vec<u32>,
    /// Slots freed since the events were last drained: the event that ends each one's
    /// socket may still wait in the queue, so they are not reused until it was handed out
    /// ([`Table::reuse_retired`]). Otherwise a handler that opens or attaches a socket
    /// while handling an earlier event of the same tick would get a slot its own tables
    /// still hold for a socket whose `Closed` it has not seen.
    retired: Vec<u32>,
    live: usize,
    capacity: usize,
    /// Slots (index, generation) whose state needs submissions.
    pub touched: Vec<(u32, u32)>,
}

impl Table {
    /// A table for `capacity` sockets. The slots are reserved at once: the pages of a large
    /// allocation become resident only as slots are used, and the table then never moves
    /// (growing by doubling would copy it and leave the old copy's pages behind) unless it
    /// is full while slots wait to be reused.
    pub fn with_capacity(capacity: usize) -> Table {
        Table { capacity, entries: Vec::with_capacity(capacity), ..Table::default() }
    }

    /// Inserts a slot; returns its (index, generation), or `None` when the table is full.
    pub fn insert(&mut self, slot: Slot) -> Option<(u32, u32)> {
        if self.live >= self.capacity {
            return None;
        }
        self.live += 1;
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.entries.push(Entry { gen: 0, slot: None });
                (self.entries.len() - 1) as u32
            }
        };
        let e = &mut self.entries[index as usize];
        e.slot = Some(slot);
        Some((index, e.gen))
    }

    /// The slot at `index` if its generation matches (in any life).
    pub fn get_mut(&mut self, index: u32, gen: u32) -> Option<&mut Slot> {
        let e = self.entries.get_mut(index as usize)?;
        if e.gen != gen {
            return None;
        }
        e.slot.as_mut()
    }

    /// The slot for a user id: generation matches and the slot is live.
    pub fn live(&self, index: u32, gen: u32) -> Option<&Slot> {
        let e = self.entries.get(index as usize)?;
        e.slot.as_ref().filter(|s| e.gen == gen && s.life == Life::Live)
    }

    /// Mutable [`Table::live`].
    pub fn live_mut(&mut self, index: u32, gen: u32) -> Option<&mut Slot> {
        let e = self.entries.get_mut(index as usize)?;
        e.slot.as_mut().filter(|s| e.gen == gen && s.life == Life::Live)
    }

    /// The slot at `index` whatever its generation, with that generation (for completions,
    /// whose tokens carry only 24 bits of it).
    pub fn by_index(&mut self, index: u32) -> Option<(u32, &mut Slot)> {
        let e = self.entries.get_mut(index as usize)?;
        let gen = e.gen;
        e.slot.as_mut().map(|s| (gen, s))
    }

    /// Frees the slot and returns it with the generation it had; the generation moves on so
    /// old ids go stale.
    pub fn remove(&mut self, index: u32) -> Option<(u32, Slot)> {
        let e = self.entries.get_mut(index as usize)?;
        let slot = e.slot.take()?;
        let gen = e.gen;
        e.gen = e.gen.wrapping_add(1);
        self.retired.push(index);
        self.live -= 1;
        Some((gen, slot))
    }

    /// Makes the slots freed so far reusable; call only when every event queued before
    /// now has been handed out.
    pub fn reuse_retired(&mut self) {
        self.free.append(&mut self.retired);
    }

    /// Queues the slot for the next flush (once).
    pub fn touch(&mut self, index: u32, gen: u32) {
        if let Some(e) = self.entries.get_mut(index as usize).filter(|e| e.gen == gen) {
            if let Some(s) = e.slot.as_mut() {
                mark(s, &mut self.touched, index, gen);
            }
        }
    }

    /// [`Table::touch`] and [`Table::live_mut`] in one lookup.
    pub fn touch_live(&mut self, index: u32, gen: u32) -> Option<&mut Slot> {
        let e = self.entries.get_mut(index as usize)?;
        let s = e.slot.as_mut().filter(|s| e.gen == gen && s.life == Life::Live)?;
        mark(s, &mut self.touched, index, gen);
        Some(s)
    }

    /// Sockets in the table.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Every (index, generation) in use.
    pub fn ids(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.entries.iter().enumerate().filter(|(_, e)| e.slot.is_some()).map(|(i, e)| (i as u32, e.gen))
    }
}

/// Lists the slot in `touched` unless it already is.
fn mark(slot: &mut Slot, touched: &mut Vec<(u32, u32)>, index: u32, gen: u32) {
    if !slot.touched {
        slot.touched = true;
        touched.push((index, gen));
    }
}
