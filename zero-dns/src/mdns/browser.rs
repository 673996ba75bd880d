//! The DNS-SD browser (RFC 6762 5.2, RFC 6763 4-6; sans I/O): it asks for a service type's
//! PTR records continuously, at 1 s, 2 s, 4 s, ... up to an hour apart, listing the instances
//! it knows with enough TTL left (known-answer suppression, 7.1). It keeps what it hears in a
//! cache by TTL and asks again for a record at 80%, 85%, 90% and 95% of its life, each plus
//! 0-2% (5.2); a goodbye (TTL 0) ends a record after one second (10.1). An instance is resolved (its SRV, TXT and the host's
//! addresses) and reported as added, updated when its data change, and removed when its PTR
//! goes.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::{instance_of, type_name, Endpoint, Transmit};

/// The longest wait between two PTR queries.
const MAX_INTERVAL: Duration = Duration::from_secs(3600);

/// A resolved service instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Its instance name (the first label).
    pub name: String,
    /// The host it runs on.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// Its TXT strings.
    pub txt: Vec<String>,
    /// The host's addresses.
    pub addresses: Vec<IpAddr>,
}

/// What the browser tells its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A new instance, resolved.
    Added(Instance),
    /// An instance's data changed.
    Updated(Instance),
    /// An instance went (goodbye, or its PTR expired).
    Removed(String),
}

struct Cached {
    record: Record,
    stored: Instant,
    expires: Instant,
    /// Refresh queries sent for it (at most four).
    refreshes: u32,
    /// Its share of the 0-2% random variation of refresh times, in 1/1000ths of its life.
    jitter: u32,
}

impl Cached {
    /// When to ask for it again (RFC 6762 5.2: at 80%, 85%, 90% and 95% of its life, each
    /// plus 0-2%), or `None` once four queries went out.
    fn refresh_at(&self) -> Option<Instant> {
        (self.refreshes < 4 && self.record.ttl > 0).then(|| {
            let life = self.expires.duration_since(self.stored);
            self.stored + life * (800 + 50 * self.refreshes + self.jitter) / 1000
        })
    }
}

/// The browser of one service type.
pub struct Browser {
    service: Name,
    /// Cached records by (lower-case owner name, type).
    cache: HashMap<(String, RecordType), Vec<Cached>>,
    /// Instances reported, by name.
    known: BTreeMap<String, Instance>,
    next_query: Instant,
    interval: Duration,
    out: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

fn key(name: &Name, rtype: RecordType) -> (String, RecordType) {
    (name.to_ascii().to_ascii_lowercase(), rtype)
}

impl Browser {
    /// A browser of `service_type` (`_http._tcp`), asking at once.
    pub fn new(service_type: &str, now: Instant) -> Option<Browser> {
        Some(Browser {
            service: type_name(service_type)?,
            cache: HashMap::new(),
            known: BTreeMap::new(),
            next_query: now,
            interval: Duration::from_secs(1),
            out: VecDeque::new(),
            events: VecDeque::new(),
        })
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The instances known now.
    pub fn instances(&self) -> impl Iterator<Item = &Instance> {
        self.known.values()
    }

    fn records(&self, name: &Name, rtype: RecordType) -> impl Iterator<Item = &Record> {
        self.cache.get(&key(name, rtype)).into_iter().flatten().map(|c| &c.record)
    }

    fn query(&mut self, now: Instant, questions: Vec<(Name, RecordType)>, known: bool) {
        let mut m = Message::new(0, MessageType::Query, OpCode::Query);
        for (name, rtype) in questions {
            m.add_query(Query::query(name, rtype));
        }
        if known {
            // Known answers with more than half their TTL left (7.1).
            m.answers = self
                .cache
                .get(&key(&self.service, RecordType::PTR))
                .into_iter()
                .flatten()
                .filter(|c| c.expires.saturating_duration_since(now) * 2 > c.expires.duration_since(c.stored))
                .map(|c| {
                    let mut r = c.record.clone();
                    r.ttl = c.expires.saturating_duration_since(now).as_secs() as u32;
                    r
                })
                .collect();
        }
        if let Ok(bytes) = m.to_vec() {
            self.out.push_back(Transmit { to: None, bytes });
        }
    }

    fn store(&mut self, now: Instant, r: &Record) {
        let entries = self.cache.entry(key(&r.name, r.record_type())).or_default();
        if r.mdns_cache_flush && r.ttl > 0 {
            // 10.2: a unique record replaces what was cached for its name and type (after a
            // second, in the RFC; at once here, as one answer carries the whole set).
            entries.retain(|c| now.duration_since(c.stored) < Duration::from_secs(1));
        }
        entries.retain(|c| c.record.data != r.data);
        // A goodbye: gone in a second.
        let life = if r.ttl == 0 { Duration::from_secs(1) } else { Duration::from_secs(u64::from(r.ttl)) };
        let jitter = rand::random::<u32>() % 21;
        entries.push(Cached { record: r.clone(), stored: now, expires: now + life, refreshes: 0, jitter });
    }

    /// Re-derives the instances from the cache and reports what changed.
    fn update(&mut self, now: Instant) {
        let mut seen = BTreeMap::new();
        let pointers: Vec<Name> = self
            .records(&self.service, RecordType::PTR)
            .filter(|r| r.ttl > 0)
            .filter_map(|r| match &r.data {
                RData::PTR(p) => Some(p.0.clone()),
                _ => None,
            })
            .collect();
        let mut missing = Vec::new();
        for instance in pointers {
            let srv = self.records(&instance, RecordType::SRV).find_map(|r| match &r.data {
                RData::SRV(s) => Some((s.target.clone(), s.port)),
                _ => None,
            });
            let txt: Vec<String> = self
                .records(&instance, RecordType::TXT)
                .flat_map(|r| match &r.data {
                    RData::TXT(t) => {
                        t.txt_data.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect()
                    }
                    _ => Vec::new(),
                })
                .filter(|s| !s.is_empty())
                .collect();
            let Some((host, port)) = srv else {
                missing.push((instance.clone(), RecordType::SRV));
                missing.push((instance, RecordType::TXT));
                continue;
            };
            let addresses: Vec<IpAddr> = self
                .records(&host, RecordType::A)
                .chain(self.records(&host, RecordType::AAAA))
                .filter_map(|r| match &r.data {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                    _ => None,
                })
                .collect();
            if addresses.is_empty() {
                missing.push((host.clone(), RecordType::A));
                continue;
            }
            let name = instance_of(&instance);
            seen.insert(name.clone(), Instance { name, host: host.to_ascii(), port, txt, addresses });
        }
        for (name, instance) in &seen {
            match self.known.get(name) {
                None => self.events.push_back(Event::Added(instance.clone())),
                Some(old) if old != instance => self.events.push_back(Event::Updated(instance.clone())),
                Some(_) => {}
            }
        }
        for name in self.known.keys().filter(|n| !seen.contains_key(*n)) {
            self.events.push_back(Event::Removed(name.clone()));
        }
        self.known = seen;
        if !missing.is_empty() {
            self.query(now, missing, false);
        }
    }
}

impl Endpoint for Browser {
    fn handle_datagram(&mut self, now: Instant, _from: SocketAddr, bytes: &[u8]) {
        let Ok(m) = Message::from_vec(bytes) else { return };
        if m.metadata.message_type != MessageType::Response {
            return;
        }
        for r in m.answers.iter().chain(&m.additionals) {
            if matches!(
                r.record_type(),
                RecordType::PTR | RecordType::SRV | RecordType::TXT | RecordType::A | RecordType::AAAA
            ) {
                self.store(now, r);
            }
        }
        self.update(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        let mut expired = false;
        let mut refresh = Vec::new();
        for ((_, rtype), entries) in self.cache.iter_mut() {
            let before = entries.len();
            entries.retain(|c| c.expires > now);
            expired |= entries.len() != before;
            for c in entries.iter_mut() {
                if c.refresh_at().is_some_and(|at| now >= at) {
                    c.refreshes += 1;
                    refresh.push((c.record.name.clone(), *rtype));
                }
            }
        }
        if expired {
            self.update(now);
        }
        if !refresh.is_empty() {
            refresh.dedup();
            self.query(now, refresh, false);
        }
        if now >= self.next_query {
            let service = self.service.clone();
            self.query(now, vec![(service, RecordType::PTR)], true);
            self.next_query = now + self.interval;
            self.interval = (self.interval * 2).min(MAX_INTERVAL);
        }
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let records = self.cache.values().flatten().flat_map(|c| [Some(c.expires), c.refresh_at()]);
        records.flatten().chain([self.next_query]).min()
    }
}
