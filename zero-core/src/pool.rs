//! The payload pool: fixed-size slots in one page-aligned region, lent to the kernel through a
//! provided-buffer ring (`IORING_REGISTER_PBUF_RING`) so multishot receives pick a slot per
//! completion without a submission per read.
//!
//! A slot is, at any moment, in exactly one of three hands, and that is what makes the raw
//! memory access here sound:
//! - the kernel's, while its id sits in the buffer ring;
//! - the shard's, from the completion that filled it until the next `Io::poll`, while events
//!   borrow it ("lent");
//! - a [`DetachedBuf`]'s, after `detach`, until that value drops (on any thread) and the id is
//!   queued back to the shard.

use std::alloc::{self, Layout};
use std::cell::Cell;
use std::ops::Deref;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use io_uring::types::BufRingEntry;

use crate::error::{IoError, Result};
use crate::ring::Ring;

const PAGE: usize = 4096;

/// Page-aligned heap memory.
struct Region {
    ptr: *mut u8,
    layout: Layout,
}

// SAFETY: the region is plain bytes; access to each slot is partitioned by the ownership rule in
// the module docs, so sharing the pointer between threads cannot create a data race.
unsafe impl Send for Region {}
// SAFETY: as above.
unsafe impl Sync for Region {}

impl Region {
    fn new(len: usize) -> Result<Region> {
        let layout = Layout::from_size_align(len.max(PAGE), PAGE)
            .map_err(|_| IoError::Config(format!("pool of {len} bytes is too large")))?;
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc::alloc_zeroed(layout) };
        if ptr.is_null() {
            return Err(IoError::Config(format!("cannot allocate a pool of {len} bytes")));
        }
        Ok(Region { ptr, layout })
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: allocated in `Region::new` with this layout, freed once.
        unsafe { alloc::dealloc(self.ptr, self.layout) }
    }
}

/// The slot memory, shared with detached buffers so it outlives the shard if it must.
struct Slots {
    region: Region,
    slot_size: usize,
    /// Ids of detached slots dropped (possibly on other threads), waiting to go back.
    returned: Mutex<Vec<u16>>,
}

impl Slots {
    /// The bytes `[offset, offset + len)` of slot `bid`.
    ///
    /// # Safety
    /// The caller must own the slot (see the module docs) and stay within it.
    unsafe fn bytes(&self, bid: u16, offset: usize, len: usize) -> &[u8] {
        debug_assert!(offset + len <= self.slot_size);
        // SAFETY: in bounds of the region by the caller's contract; the kernel does not write
        // to a slot that is not in the buffer ring.
        unsafe {
            std::slice::from_raw_parts(self.region.ptr.add(bid as usize * self.slot_size + offset), len)
        }
    }
}

/// A snapshot of the pool's state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Slots in the pool.
    pub slots: usize,
    /// Bytes per slot.
    pub slot_size: usize,
    /// Slots the kernel can receive into right now.
    pub available: usize,
    /// Slots held by undelivered or current events.
    pub lent: usize,
    /// Slots held by [`DetachedBuf`]s.
    pub detached: usize,
    /// How many times receives found the pool empty (`ENOBUFS`).
    pub exhausted: u64,
}

/// The provided-buffer ring and its slots.
pub(crate) struct Pool {
    slots: Arc<Slots>,
    ring: Option<Region>,
    ring_base: *mut BufRingEntry,
    entries: u16,
    tail: u16,
    group: u16,
    available: usize,
    lent: Vec<u16>,
    detached: Box<[Cell<bool>]>,
    detached_count: Cell<usize>,
    exhausted: u64,
    under_pressure: bool,
}

impl Pool {
    /// Allocates `count` slots of `slot_size` bytes and registers them as buffer group `group`.
    pub fn new(ring: &mut Ring, count: u16, slot_size: usize, group: u16) -> Result<Pool> {
        if !count.is_power_of_two() || count > 32768 {
            return Err(IoError::Config(format!(
                "pool_slots must be a power of two up to 32768, got {count}"
            )));
        }
        if slot_size == 0 || slot_size > u32::MAX as usize {
            return Err(IoError::Config(format!("slot_size {slot_size} is out of range")));
        }
        let slots = Arc::new(Slots {
            region: Region::new(count as usize * slot_size)?,
            slot_size,
            returned: Mutex::new(Vec::new()),
        });
        let ring_mem = Region::new(count as usize * std::mem::size_of::<BufRingEntry>())?;
        // SAFETY: `ring_mem` is page aligned, sized for `count` entries, and lives in the Pool;
        // `Io` drops the ring (and with it the registration) before the Pool.
        unsafe { ring.register_buf_ring(ring_mem.ptr.cast(), count, group)? };
        let mut pool = Pool {
            slots,
            ring_base: ring_mem.ptr.cast(),
            ring: Some(ring_mem),
            entries: count,
            tail: 0,
            group,
            available: 0,
            lent: Vec::with_capacity(count as usize),
            detached: (0..count).map(|_| Cell::new(false)).collect(),
            detached_count: Cell::new(0),
            exhausted: 0,
            under_pressure: false,
        };
        for bid in 0..count {
            pool.push(bid);
        }
        pool.publish();
        Ok(pool)
    }

    /// The buffer group id to pass to receives.
    pub fn group(&self) -> u16 {
        self.group
    }

    /// Appends slot `bid` to the ring (visible to the kernel after `publish`).
    fn push(&mut self, bid: u16) {
        let index = (self.tail & (self.entries - 1)) as usize;
        // SAFETY: `index` < entries, within the ring region; the kernel only reads entries
        // between its head and the published tail, and this one is past the tail.
        let entry = unsafe { &mut *self.ring_base.add(index) };
        // SAFETY: slot `bid` is within the region.
        let addr = unsafe { self.slots.region.ptr.add(bid as usize * self.slots.slot_size) };
        entry.set_addr(addr as u64);
        entry.set_len(self.slots.slot_size as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
        self.available += 1;
    }

    /// Makes pushed slots visible to the kernel.
    fn publish(&mut self) {
        // SAFETY: the ring base is the first entry; its `resv` field is the shared tail, which
        // the kernel reads with acquire semantics.
        let tail = unsafe { &*(BufRingEntry::tail(self.ring_base) as *const AtomicU16) };
        tail.store(self.tail, Ordering::Release);
    }

    /// Records that the kernel filled slot `bid`; it stays lent until the next [`Pool::recycle`].
    pub fn take(&mut self, bid: u16) {
        self.available -= 1;
        self.lent.push(bid);
    }

    /// Records that a receive found the ring empty.
    pub fn note_exhausted(&mut self) {
        self.exhausted += 1;
    }

    /// Returns last tick's lent slots and any dropped detached slots to the kernel.
    /// `keep` lists slots still referenced by undelivered events.
    pub fn recycle(&mut self, keep: impl Fn(u16) -> bool) {
        let mut lent = std::mem::take(&mut self.lent);
        let mut changed = false;
        lent.retain(|&bid| {
            if self.detached[bid as usize].replace(false) {
                return false; // now owned by a DetachedBuf
            }
            if keep(bid) {
                return true;
            }
            changed = true;
            self.push(bid);
            false
        });
        self.lent = lent;
        let returned = std::mem::take(&mut *self.slots.returned.lock().unwrap_or_else(|p| p.into_inner()));
        for bid in returned {
            self.detached_count.set(self.detached_count.get() - 1);
            self.push(bid);
            changed = true;
        }
        if changed {
            self.publish();
        }
    }

    /// The received bytes of lent slot `bid`.
    pub fn bytes(&self, bid: u16, offset: usize, len: usize) -> &[u8] {
        assert!(offset + len <= self.slots.slot_size, "slot access out of bounds");
        // SAFETY: `bid` is lent to the shard (it came from a completion and has not been
        // recycled), and the range is inside the slot.
        unsafe { self.slots.bytes(bid, offset, len) }
    }

    /// Hands the lent slot `bid` to an owned buffer that returns it when dropped.
    pub fn detach(&self, bid: u16, offset: usize, len: usize) -> DetachedBuf {
        assert!(!self.detached[bid as usize].replace(true), "slot detached twice");
        self.detached_count.set(self.detached_count.get() + 1);
        DetachedBuf(Held::Slot { slots: self.slots.clone(), bid, offset, len })
    }

    /// Whether the kernel has a slot to receive into.
    pub fn has_free(&self) -> bool {
        self.available > 0
    }

    /// Reports pressure once when free slots fall below an eighth of the pool; reports again
    /// only after they have recovered to a quarter.
    pub fn pressure(&mut self) -> Option<PoolStats> {
        let slots = self.entries as usize;
        if self.under_pressure && self.available >= slots / 4 {
            self.under_pressure = false;
        }
        if self.under_pressure || self.available >= slots / 8 {
            return None;
        }
        self.under_pressure = true;
        Some(self.stats())
    }

    /// Bytes per slot.
    pub fn slot_size(&self) -> usize {
        self.slots.slot_size
    }

    /// Never frees the pool's memory: for a shutdown in which the kernel may still hold it.
    pub fn leak(&mut self) {
        std::mem::forget(self.ring.take());
        std::mem::forget(self.slots.clone());
    }

    /// A snapshot of the pool.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            slots: self.entries as usize,
            slot_size: self.slots.slot_size,
            available: self.available,
            lent: self.lent.len(),
            detached: self.detached_count.get(),
            exhausted: self.exhausted,
        }
    }
}

/// An event payload taken out of the pool: owned, `Send`, readable on any thread. Its slot
/// returns to the pool when it is dropped. While detached buffers are alive the shard has fewer
/// slots to receive into, so hold them briefly.
pub struct DetachedBuf(Held);

enum Held {
    /// A pool slot, owned by this value until it drops.
    Slot { slots: Arc<Slots>, bid: u16, offset: usize, len: usize },
    /// A copy (of TLS plaintext, which does not live in the pool).
    Copy(Box<[u8]>),
}

impl DetachedBuf {
    pub(crate) fn copy(bytes: &[u8]) -> DetachedBuf {
        DetachedBuf(Held::Copy(bytes.into()))
    }
}

impl Deref for DetachedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.0 {
            // SAFETY: this value owns slot `bid` until it drops (module docs), and the range was
            // checked against the slot when it was detached.
            Held::Slot { slots, bid, offset, len } => unsafe { slots.bytes(*bid, *offset, *len) },
            Held::Copy(bytes) => bytes,
        }
    }
}

impl std::fmt::Debug for DetachedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Held::Slot { bid, len, .. } => {
                f.debug_struct("DetachedBuf").field("slot", bid).field("len", len).finish()
            }
            Held::Copy(bytes) => f.debug_struct("DetachedBuf").field("len", &bytes.len()).finish(),
        }
    }
}

impl Drop for DetachedBuf {
    fn drop(&mut self) {
        if let Held::Slot { slots, bid, .. } = &self.0 {
            slots.returned.lock().unwrap_or_else(|p| p.into_inner()).push(*bid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Backend;

    fn pool(slots: u16) -> (Ring, Pool) {
        let mut ring = Ring::new(Backend::IoUring, 8, true).unwrap();
        let pool = Pool::new(&mut ring, slots, 64, 0).unwrap();
        (ring, pool)
    }

    #[test]
    fn slot_counts_must_be_powers_of_two() {
        let mut ring = Ring::new(Backend::IoUring, 8, true).unwrap();
        assert!(matches!(Pool::new(&mut ring, 6, 64, 0), Err(IoError::Config(_))));
        assert!(matches!(Pool::new(&mut ring, 8, 0, 0), Err(IoError::Config(_))));
    }

    #[test]
    fn lent_slots_return_on_recycle_unless_held() {
        let (_ring, mut p) = pool(4);
        assert_eq!(p.stats().available, 4);
        p.take(1);
        p.take(2);
        assert_eq!((p.stats().available, p.stats().lent), (2, 2));
        p.recycle(|bid| bid == 2); // slot 2 is still referenced by an undelivered event
        assert_eq!((p.stats().available, p.stats().lent), (3, 1));
        p.recycle(|_| false);
        assert_eq!((p.stats().available, p.stats().lent), (4, 0));
    }

    #[test]
    fn detached_slots_come_back_when_dropped_on_any_thread() {
        let (_ring, mut p) = pool(4);
        p.take(3);
        let buf = p.detach(3, 8, 16);
        assert_eq!(buf.len(), 16);
        p.recycle(|_| false);
        assert_eq!((p.stats().available, p.stats().detached), (3, 1), "a detached slot is not recycled");
        std::thread::spawn(move || drop(buf)).join().unwrap();
        p.recycle(|_| false);
        assert_eq!((p.stats().available, p.stats().detached), (4, 0));
    }
}
