//! Client-side caching: replies to reads kept on the client and answered from there until
//! the server says their key changed.
//!
//! With [`CacheConfig`] set, every RESP3 connection starts with `CLIENT TRACKING ON`: the
//! server remembers the keys the connection reads and sends an `invalidate` push on that
//! same connection when one is written, expires or is evicted (a null list after
//! `FLUSHALL`/`FLUSHDB`). Over RESP2 (asked for, or the server's fallback) nothing is cached.
//!
//! What keeps a cached reply from being stale:
//! - Only the reads in [`CACHEABLE`] are kept: commands whose first argument is their only
//!   key and whose reply depends on nothing but that key's value (no clock, no chance).
//! - A read whose key is invalidated, or written by this client, while the read is in
//!   flight is not kept: it may have read the value from before.
//! - A command of this client that may write evicts every key among its arguments when it is
//!   issued, so the client's own later reads cannot see the value from before it (Redis
//!   sends the invalidation for a client's own write after the write's reply).
//! - `FLUSHALL`, `FLUSHDB`, `SWAPDB` and `SELECT` empty the cache, and so does a lost
//!   connection: invalidations may have been missed while it was down.
//! - Inside `MULTI` nothing is answered from the cache or kept (Redis answers `QUEUED`).
//!
//! A read built with [`Cmd::cached`]`(false)` always reaches the server (and its reply
//! refreshes the entry).
//!
//! The blocking and Tokio clients give their machines a [`SharedCache`]: the machine fills
//! and empties it, and the clients answer single reads from it on the caller's own thread (a
//! hit costs a lock and a copy, not a trip to the machine and back). A machine driven inline
//! can keep a [`Cache`] of its own instead, without a lock ([`Store`]). The rules above hold there too: a
//! caller's write is issued (so has evicted its keys) before its reply returns, and so before
//! that caller's next read.
//!
//! The limit: a script that writes a key it is not given as an argument (which Redis
//! discourages) leaves that key's entry in place until its invalidation arrives, just after
//! the script's reply.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use lru::LruCache;

use crate::cmd::{is_listed, is_read_only, without_header, Args, Cmd};
use crate::codec::Frame;
use crate::value::Value;

/// The reads whose replies may be cached, upper case and sorted: one key, their first
/// argument, and a reply that only that key's value decides. `TTL` (the clock) and
/// `SRANDMEMBER` (chance) are not among them.
pub const CACHEABLE: &[&str] = &[
    "BITCOUNT",
    "BITPOS",
    "GET",
    "GETBIT",
    "GETRANGE",
    "HEXISTS",
    "HGET",
    "HGETALL",
    "HKEYS",
    "HLEN",
    "HMGET",
    "HSTRLEN",
    "HVALS",
    "LINDEX",
    "LLEN",
    "LPOS",
    "LRANGE",
    "SCARD",
    "SISMEMBER",
    "SMEMBERS",
    "SMISMEMBER",
    "STRLEN",
    "TYPE",
    "XLEN",
    "XRANGE",
    "XREVRANGE",
    "ZCARD",
    "ZCOUNT",
    "ZLEXCOUNT",
    "ZMSCORE",
    "ZRANGE",
    "ZRANGEBYLEX",
    "ZRANGEBYSCORE",
    "ZRANK",
    "ZREVRANGE",
    "ZREVRANGEBYLEX",
    "ZREVRANGEBYSCORE",
    "ZREVRANK",
    "ZSCORE",
];

/// Commands after which no cached reply can be trusted (sorted).
const EMPTIES: &[&str] = &["FLUSHALL", "FLUSHDB", "SELECT", "SWAPDB"];

/// How much the client may cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// The most replies kept; past it, the least recently used key's replies go.
    pub max_entries: usize,
    /// The most payload bytes kept (about: bytes of strings, plus 16 per element); past it,
    /// the least recently used key's replies go. A reply larger than an eighth of it is not
    /// kept at all.
    pub max_bytes: usize,
    /// How long a reply may be answered from the cache at most (`None`: until it is
    /// invalidated). A bound for keys with an expiry: Redis invalidates an expired key when
    /// it deletes it, which can be a little after the moment it expired.
    pub max_age: Option<Duration>,
}

impl Default for CacheConfig {
    fn default() -> CacheConfig {
        CacheConfig { max_entries: 10_000, max_bytes: 64 << 20, max_age: None }
    }
}

/// What the cache has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Reads answered from the cache.
    pub hits: u64,
    /// Cacheable reads sent to the server.
    pub misses: u64,
    /// Keys the server invalidated.
    pub invalidations: u64,
    /// Replies in the cache now.
    pub entries: usize,
}

/// What the cache says of a command being issued.
pub(super) enum Lookup {
    /// Its reply, from the cache.
    Hit(Value),
    /// It goes to the server; `fill`: its reply may be kept ([`Cache::fill`] or
    /// [`Cache::forget`] must follow).
    Miss { fill: bool },
}

/// The cached replies of one key, by the command's encoded arguments (name included).
type Replies = HashMap<Box<[u8]>, Entry>;

/// One cached reply.
#[derive(Debug)]
struct Entry {
    value: Value,
    /// When it was kept.
    at: Instant,
    /// What it counts against `max_bytes` ([`weight`]).
    bytes: usize,
}

/// Where a client machine keeps its cached replies: a [`Cache`] of its own (inline on a
/// shard, where nothing else reads it: no lock), or a [`SharedCache`] that callers on other
/// threads answer reads from too (what the blocking and Tokio clients give their machines;
/// locked for each use). The machine's driver chooses ([`super::Client`]'s type parameter);
/// the machine itself takes no lock.
pub trait Store: Send + 'static + sealed::Sealed {
    /// A store for `config`.
    fn open(config: CacheConfig) -> Self;
    /// Runs `f` on the cache.
    fn with<R>(&mut self, f: impl FnOnce(&mut Cache) -> R) -> R;
}

mod sealed {
    /// Only this module's stores are stores.
    pub trait Sealed {}
    impl Sealed for super::Cache {}
    impl Sealed for super::SharedCache {}
}

impl Store for Cache {
    fn open(config: CacheConfig) -> Cache {
        Cache::new(config)
    }

    fn with<R>(&mut self, f: impl FnOnce(&mut Cache) -> R) -> R {
        f(self)
    }
}

impl Store for SharedCache {
    fn open(config: CacheConfig) -> SharedCache {
        SharedCache(Arc::new(Mutex::new(Cache::new(config))))
    }

    fn with<R>(&mut self, f: impl FnOnce(&mut Cache) -> R) -> R {
        f(&mut self.lock())
    }
}

/// The client-side cache, shared by a machine and the threads that call it. See the module
/// docs.
#[derive(Debug, Clone)]
pub struct SharedCache(Arc<Mutex<Cache>>);

impl SharedCache {
    fn lock(&self) -> MutexGuard<'_, Cache> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The reply to `cmd` if the cache holds it (a hit) and `cmd` may be answered from it;
    /// `None`: send it to the client.
    pub fn get(&self, cmd: &Cmd) -> Option<Value> {
        if !cmd.caches() {
            return None;
        }
        let mut cache = self.lock();
        let key = cache.read_key(cmd.encoded_args())?;
        cache.hit(key, cmd.encoded_args(), Instant::now)
    }

    /// What the cache has done so far.
    pub fn stats(&self) -> CacheStats {
        self.lock().stats()
    }
}

/// A client machine's cached replies and what keeps them from going stale (a machine's own,
/// or behind [`SharedCache`]'s lock).
#[derive(Debug)]
pub struct Cache {
    config: CacheConfig,
    keys: LruCache<Box<[u8]>, Replies>,
    /// Replies over all keys, and their [`weight`].
    entries: usize,
    bytes: usize,
    /// Reads in flight whose replies may be kept.
    reads: usize,
    /// Keys invalidated or written while reads were in flight: their replies are not kept.
    doubted: HashSet<Box<[u8]>>,
    /// Everything was invalidated while reads were in flight.
    doubt_all: bool,
    /// Between `MULTI` and `EXEC`/`DISCARD`.
    in_multi: bool,
    stats: CacheStats,
}

impl Cache {
    /// What the cache has done so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats { entries: self.entries, ..self.stats }
    }

    fn new(config: CacheConfig) -> Cache {
        Cache {
            config,
            keys: LruCache::unbounded(),
            entries: 0,
            bytes: 0,
            reads: 0,
            doubted: HashSet::new(),
            doubt_all: false,
            in_multi: false,
            stats: CacheStats::default(),
        }
    }

    /// A command (as encoded, array header included) is being issued; `cached`: it may be
    /// answered from the cache (its reply may be kept either way).
    pub(super) fn issue(&mut self, command: &[u8], cached: bool, now: Instant) -> Lookup {
        let command = without_header(command);
        if let Some(key) = self.read_key(command) {
            if let Some(value) = cached.then(|| self.hit(key, command, || now)).flatten() {
                return Lookup::Hit(value);
            }
            self.stats.misses += 1;
            self.reads += 1;
            return Lookup::Miss { fill: true };
        }
        let mut args = Args(Some(command));
        let Some(name) = args.next() else { return Lookup::Miss { fill: false } };
        if is_listed(&["MULTI"], name) {
            self.in_multi = true;
        } else if is_listed(&["DISCARD", "EXEC"], name) {
            self.in_multi = false;
        } else if is_listed(EMPTIES, name) {
            self.invalidate_all();
        } else if !is_read_only(name) {
            for key in args {
                self.invalidate(key);
            }
        }
        Lookup::Miss { fill: false }
    }

    /// The key of `command` (encoded arguments) if it is a read whose reply may be cached
    /// (one of [`CACHEABLE`], outside `MULTI`).
    fn read_key<'c>(&self, command: &'c [u8]) -> Option<&'c [u8]> {
        let mut args = Args(Some(command));
        let cacheable = is_listed(CACHEABLE, args.next()?);
        (cacheable && !self.in_multi).then(|| args.next()).flatten()
    }

    /// The cached reply to `command` (encoded arguments; its [`Cache::read_key`] is `key`),
    /// counted as a hit; `now` is read only if entries have a maximum age.
    fn hit(&mut self, key: &[u8], command: &[u8], now: impl FnOnce() -> Instant) -> Option<Value> {
        let replies = self.keys.get_mut(key)?;
        let entry = replies.get(command)?;
        if self.config.max_age.is_some_and(|age| now().duration_since(entry.at) >= age) {
            let bytes = entry.bytes;
            replies.remove(command);
            if replies.is_empty() {
                self.keys.pop(key);
            }
            self.entries -= 1;
            self.bytes -= bytes;
            return None;
        }
        self.stats.hits += 1;
        Some(entry.value.clone())
    }

    /// The reply to a read that [`Cache::issue`] said may be kept; `trusted`: the
    /// connection it came on is tracked.
    pub(super) fn fill(&mut self, command: &[u8], reply: &Frame<'_>, trusted: bool, now: Instant) {
        let command = without_header(command);
        let key = Args(Some(command)).nth(1).unwrap_or_default();
        let refused = matches!(reply, Frame::Error(_) | Frame::BulkError(_));
        let keep = trusted && !refused && !self.doubt_all && !self.doubted.contains(key);
        if let Some(bytes) = keep.then(|| weight(reply)).filter(|&b| b <= self.config.max_bytes / 8) {
            let entry = Entry { value: reply.clone().into_owned(), at: now, bytes };
            let replies = self.keys.get_or_insert_mut(key.into(), Replies::new);
            (self.entries, self.bytes) = (self.entries + 1, self.bytes + bytes);
            if let Some(old) = replies.insert(command.into(), entry) {
                (self.entries, self.bytes) = (self.entries - 1, self.bytes - old.bytes);
            }
            while self.entries > self.config.max_entries || self.bytes > self.config.max_bytes {
                let Some((_, replies)) = self.keys.pop_lru() else { break };
                self.drop_replies(&replies);
            }
        }
        self.forget();
    }

    /// A read that [`Cache::issue`] said may be kept will get no reply.
    pub(super) fn forget(&mut self) {
        self.reads -= 1;
        if self.reads == 0 {
            self.doubted.clear();
            self.doubt_all = false;
        }
    }

    /// Takes a key's replies off the counts.
    fn drop_replies(&mut self, replies: &Replies) {
        self.entries -= replies.len();
        self.bytes -= replies.values().map(|e| e.bytes).sum::<usize>();
    }

    /// `key` changed (or may have).
    pub(super) fn invalidate(&mut self, key: &[u8]) {
        if let Some(replies) = self.keys.pop(key) {
            self.drop_replies(&replies);
        }
        if self.reads > 0 {
            self.doubted.insert(key.into());
        }
    }

    /// Every key changed (or may have).
    pub(super) fn invalidate_all(&mut self) {
        self.keys.clear();
        (self.entries, self.bytes) = (0, 0);
        self.doubt_all = self.reads > 0;
    }

    /// A push from the server: `invalidate` with a list of keys, or null for all of them.
    /// Returns whether it was one.
    pub(super) fn on_push(&mut self, push: &[Frame<'_>]) -> bool {
        if push.first().and_then(Frame::as_bytes) != Some(b"invalidate") {
            return false;
        }
        match push.get(1) {
            Some(Frame::Array(keys) | Frame::Set(keys)) => {
                for key in keys.iter().filter_map(Frame::as_bytes) {
                    self.stats.invalidations += 1;
                    self.invalidate(key);
                }
            }
            _ => self.invalidate_all(),
        }
        true
    }

    /// The client closed: no read is in flight any more.
    pub(super) fn reset(&mut self) {
        self.invalidate_all();
        self.reads = 0;
        self.doubted.clear();
        self.doubt_all = false;
        self.in_multi = false;
    }
}

/// What a reply counts against `max_bytes`: its strings' bytes, plus 16 per element.
fn weight(frame: &Frame<'_>) -> usize {
    16 + match frame {
        Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => items.iter().map(weight).sum(),
        Frame::Map(pairs) => pairs.iter().map(|(k, v)| weight(k) + weight(v)).sum(),
        Frame::Attribute { attributes, value } => {
            attributes.iter().map(|(k, v)| weight(k) + weight(v)).sum::<usize>() + weight(value)
        }
        other => other.as_bytes().map_or(0, <[u8]>::len),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lists_are_sorted_and_cacheable_reads_are_reads() {
        for list in [CACHEABLE, EMPTIES] {
            assert!(list.windows(2).all(|w| w[0] < w[1]), "{list:?} must stay sorted");
        }
        assert!(CACHEABLE.iter().all(|c| is_read_only(c.as_bytes())));
    }
}
