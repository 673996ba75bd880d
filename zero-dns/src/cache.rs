//! Answers remembered for their TTL: positive ones with their records, negative ones
//! (NXDOMAIN, NODATA) for the SOA minimum of RFC 2308 5, bounded in entries (least recently
//! used first out).

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use hickory_proto::rr::{Record, RecordType};
use lru::LruCache;

/// What the cache knows about a question.
#[derive(Debug, Clone)]
pub enum Cached {
    /// The records (TTLs counted down to now).
    Records(Vec<Record>),
    /// The name does not exist.
    NxDomain,
    /// The name has no records of the type.
    NoData,
}

#[derive(Debug)]
struct Entry {
    what: Cached,
    stored: Instant,
    expires: Instant,
}

/// The cache, keyed by lower-case name and type.
#[derive(Debug)]
pub struct Cache {
    entries: Option<LruCache<(String, RecordType), Entry>>,
}

impl Cache {
    /// A cache of at most `size` entries (0: none).
    pub fn new(size: usize) -> Cache {
        Cache { entries: NonZeroUsize::new(size).map(LruCache::new) }
    }

    /// What is known about `name` `rtype` at `now`.
    pub fn get(&mut self, now: Instant, name: &str, rtype: RecordType) -> Option<Cached> {
        let entries = self.entries.as_mut()?;
        let key = (name.to_ascii_lowercase(), rtype);
        let entry = entries.get(&key)?;
        if now >= entry.expires {
            entries.pop(&key);
            return None;
        }
        let elapsed = now.duration_since(entry.stored).as_secs() as u32;
        Some(match &entry.what {
            Cached::Records(records) => Cached::Records(
                records
                    .iter()
                    .map(|r| {
                        let mut r = r.clone();
                        r.ttl = r.ttl.saturating_sub(elapsed);
                        r
                    })
                    .collect(),
            ),
            other => other.clone(),
        })
    }

    /// Remembers `what` about `name` `rtype` for `ttl`.
    pub fn put(&mut self, now: Instant, name: &str, rtype: RecordType, what: Cached, ttl: Duration) {
        let Some(entries) = self.entries.as_mut() else { return };
        if ttl.is_zero() {
            return;
        }
        entries.put((name.to_ascii_lowercase(), rtype), Entry { what, stored: now, expires: now + ttl });
    }

    /// Whether it keeps anything (a size of 0 turns it off; callers then skip building
    /// entries).
    pub fn is_enabled(&self) -> bool {
        self.entries.is_some()
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.as_ref().map_or(0, LruCache::len)
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
