//! The mDNS responder (RFC 6762, sans I/O): it owns a host name and its addresses and the
//! services registered on it.
//!
//! A service is **probed** first (8.1): three queries for its instance name, 250 ms apart,
//! carrying the records it proposes. An answer for that name with other data is a conflict:
//! the instance is renamed `Name (2)`, `Name (3)`, ... and probed again (9). A simultaneous
//! probe is settled by comparing the proposed records (8.2): the lexicographically later set
//! wins, the loser waits a second and probes again. A service that survives probing is
//! **announced** twice, a second apart (8.3), then **answered** for: PTR for its type and for
//! `_services._dns-sd._udp.local.`, SRV and TXT for its instance, A and AAAA for the host,
//! with the instance's SRV, TXT and addresses as additional records (RFC 6763 12). Known
//! answers the querier lists with at least half their TTL left are not repeated (7.1); a
//! question with the QU bit, or a query from a port other than 5353 (a one-shot legacy
//! query, 6.7), is answered by unicast. Unregistering (and [`Responder::shutdown`]) sends
//! **goodbyes**: the records with TTL 0 (10.1).
//!
//! The host name is claimed the same way: its address records are probed, and a conflict
//! renames it `host-2`, `host-3`, ... (as avahi does); services are announced only once the
//! host's name is established, and announced again, pointing at the new name, after a host
//! rename. Fifteen conflicts within ten seconds slow probing to one attempt per five seconds
//! (8.1).

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::{A, AAAA, PTR, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::{instance_name, type_name, Endpoint, Service, Transmit, PORT};

/// TTL of records naming the host (RFC 6762 10: 120 s).
const HOST_TTL: u32 = 120;
/// TTL of the others (75 minutes).
const OTHER_TTL: u32 = 4500;
/// Between probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(250);
/// Conflicts within this window beyond [`CONFLICT_BURST`] slow probing (8.1).
const CONFLICT_WINDOW: Duration = Duration::from_secs(10);
/// How many conflicts within [`CONFLICT_WINDOW`] are tolerated at full speed.
const CONFLICT_BURST: usize = 15;
/// The wait before each probe attempt once conflicts come faster than that.
const SLOW_PROBE: Duration = Duration::from_secs(5);

/// A registered service's handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServiceId(pub usize);

/// What the responder tells its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The service survived probing and was announced under `name`.
    Registered {
        /// The service.
        id: ServiceId,
        /// Its instance name now.
        name: String,
    },
    /// The host name was taken: it is probed again as `to`, and the services are announced
    /// again pointing at it.
    HostRenamed {
        /// The old host name (`zero.local.`).
        from: String,
        /// The new one (`zero-2.local.`).
        to: String,
    },
    /// A conflict: the service is probed again under a new name.
    Renamed {
        /// The service.
        id: ServiceId,
        /// Its old instance name.
        from: String,
        /// Its new one.
        to: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Probing,
    Announcing,
    Live,
}

/// Where a claim on a unique name stands, and when its next step is due.
#[derive(Debug, Clone, Copy)]
struct Claim {
    state: State,
    /// Probes or announcements sent in this state.
    count: u8,
    next: Instant,
}

/// What a claim's turn calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Probe,
    Announce,
    /// The last announcement: the name is established.
    Established,
}

impl Claim {
    fn probing(at: Instant) -> Claim {
        Claim { state: State::Probing, count: 0, next: at }
    }

    /// Probed three times without a conflict: ready to be announced.
    fn probed(&self) -> bool {
        self.state == State::Probing && self.count >= 3
    }

    /// The step due at `now`, if any, with the claim moved past it.
    fn step(&mut self, now: Instant) -> Option<Step> {
        if self.state == State::Live || self.next > now {
            return None;
        }
        if self.probed() {
            // Three probes went unanswered: the name is ours (8.1); announce it now.
            (self.state, self.count) = (State::Announcing, 0);
        }
        self.count += 1;
        if self.state == State::Probing {
            self.next = now + PROBE_INTERVAL;
            return Some(Step::Probe);
        }
        // Two announcements, a second apart (8.3).
        self.next = now + Duration::from_secs(1);
        if self.count < 2 {
            return Some(Step::Announce);
        }
        self.state = State::Live;
        Some(Step::Established)
    }
}

struct Entry {
    service: Service,
    claim: Claim,
}

/// The responder.
pub struct Responder {
    host: Name,
    host_claim: Claim,
    addresses: Vec<IpAddr>,
    entries: Vec<Option<Entry>>,
    /// When recent conflicts happened (for the 8.1 rate limit).
    conflicts: VecDeque<Instant>,
    /// Probing is slowed by too many conflicts.
    slow: bool,
    out: VecDeque<Transmit>,
    events: VecDeque<Event>,
    rng: StdRng,
}

impl Responder {
    /// A responder for host `host` (`zerobox`: it answers for `zerobox.local.`) at
    /// `addresses`, claiming the host name from `now`; `seed` seeds its probe delays.
    pub fn new(now: Instant, host: &str, addresses: &[IpAddr], seed: u64) -> Responder {
        let host =
            Name::from_ascii(format!("{}.local.", host.trim_end_matches(".local").trim_end_matches('.')))
                .unwrap_or_else(|_| Name::from_ascii("zero.local.").expect("valid"));
        let mut rng = StdRng::seed_from_u64(seed);
        let mut host_claim = Claim::probing(now + Duration::from_millis(rng.random_range(0..250)));
        if addresses.is_empty() {
            // No address records: nothing to claim.
            host_claim.state = State::Live;
        }
        Responder {
            host,
            host_claim,
            addresses: addresses.to_vec(),
            entries: Vec::new(),
            conflicts: VecDeque::new(),
            slow: false,
            out: VecDeque::new(),
            events: VecDeque::new(),
            rng,
        }
    }

    /// The host name as claimed now (`zero.local.`, or `zero-2.local.` after a conflict).
    pub fn host(&self) -> String {
        self.host.to_ascii()
    }

    /// Registers `service`: it is probed (after a random 0-250 ms, 8.1), then announced.
    pub fn register(&mut self, now: Instant, service: Service) -> ServiceId {
        let delay = Duration::from_millis(self.rng.random_range(0..250));
        self.entries.push(Some(Entry { service, claim: Claim::probing(now + delay) }));
        ServiceId(self.entries.len() - 1)
    }

    /// Unregisters a service, sending its goodbye if it was announced.
    pub fn unregister(&mut self, _now: Instant, id: ServiceId) {
        if let Some(entry) = self.entries.get_mut(id.0).and_then(Option::take) {
            if entry.claim.state != State::Probing {
                let records = self.records(&entry.service, true, true);
                self.send(None, MessageType::Response, 0, Vec::new(), records, Vec::new(), Vec::new());
            }
        }
    }

    /// Unregisters every service (goodbyes for all).
    pub fn shutdown(&mut self, now: Instant) {
        for id in 0..self.entries.len() {
            self.unregister(now, ServiceId(id));
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The instance name service `id` has now.
    pub fn name_of(&self, id: ServiceId) -> Option<&str> {
        Some(self.entries.get(id.0)?.as_ref()?.service.instance.as_str())
    }

    /// The service's records: PTRs (shared), SRV and TXT (unique), and the host's addresses
    /// (unique) when `with_host`; with TTL 0 for a goodbye.
    fn records(&self, s: &Service, with_host: bool, goodbye: bool) -> Vec<Record> {
        let (Some(instance), Some(kind)) =
            (instance_name(&s.instance, &s.service_type), type_name(&s.service_type))
        else {
            return Vec::new();
        };
        let pick = |normal: u32| if goodbye { 0 } else { normal };
        let mut out =
            vec![Record::from_rdata(kind.clone(), pick(OTHER_TTL), RData::PTR(PTR(instance.clone())))];
        if let Ok(services) = Name::from_ascii("_services._dns-sd._udp.local.") {
            out.push(Record::from_rdata(services, pick(OTHER_TTL), RData::PTR(PTR(kind))));
        }
        let txt = if s.txt.is_empty() { vec![String::new()] } else { s.txt.clone() };
        let srv = RData::SRV(SRV::new(0, 0, s.port, self.host.clone()));
        out.push(unique(Record::from_rdata(instance.clone(), pick(HOST_TTL), srv)));
        out.push(unique(Record::from_rdata(instance, pick(OTHER_TTL), RData::TXT(TXT::new(txt)))));
        if with_host {
            out.extend(self.address_records(pick(HOST_TTL)));
        }
        out
    }

    fn address_records(&self, ttl: u32) -> Vec<Record> {
        self.addresses
            .iter()
            .map(|ip| match ip {
                IpAddr::V4(a) => RData::A(A(*a)),
                IpAddr::V6(a) => RData::AAAA(AAAA(*a)),
            })
            .map(|data| unique(Record::from_rdata(self.host.clone(), ttl, data)))
            .collect()
    }

    #[allow(clippy::too_many_arguments)]
    fn send(
        &mut self,
        to: Option<SocketAddr>,
        kind: MessageType,
        id: u16,
        queries: Vec<Query>,
        answers: Vec<Record>,
        authorities: Vec<Record>,
        additionals: Vec<Record>,
    ) {
        let mut m = Message::new(id, kind, OpCode::Query);
        m.metadata.authoritative = kind == MessageType::Response;
        m.queries = queries;
        m.answers = answers;
        m.authorities = authorities;
        m.additionals = additionals;
        if let Ok(bytes) = m.to_vec() {
            self.out.push_back(Transmit { to, bytes });
        }
    }

    /// A probe for `name` (its first asks for a unicast answer), proposing `records` in the
    /// authority section (8.2), without the cache-flush bit.
    fn probe(&mut self, name: Name, first: bool, records: Vec<Record>) {
        let mut q = Query::query(name.clone(), RecordType::ANY);
        q.set_mdns_unicast_response(first);
        let proposed: Vec<Record> = records
            .into_iter()
            .filter(|r| r.name == name)
            .map(|mut r| {
                r.mdns_cache_flush = false;
                r
            })
            .collect();
        self.send(None, MessageType::Query, 0, vec![q], Vec::new(), proposed, Vec::new());
    }

    /// The wait before probing again after a conflict at `now`: the usual interval, or five
    /// seconds once conflicts came faster than fifteen in ten seconds (8.1), until ten quiet
    /// seconds pass between two conflicts.
    fn after_conflict(&mut self, now: Instant) -> Duration {
        if self.conflicts.back().is_some_and(|&t| now.duration_since(t) > CONFLICT_WINDOW) {
            self.slow = false;
        }
        self.conflicts.push_back(now);
        while self.conflicts.front().is_some_and(|&t| now.duration_since(t) > CONFLICT_WINDOW) {
            self.conflicts.pop_front();
        }
        self.slow |= self.conflicts.len() > CONFLICT_BURST;
        if self.slow {
            SLOW_PROBE
        } else {
            PROBE_INTERVAL
        }
    }

    /// Service `i` lost its name: the next one, probed from the start.
    fn conflict(&mut self, now: Instant, i: usize) {
        let delay = self.after_conflict(now);
        let Some(entry) = self.entries[i].as_mut() else { return };
        let from = entry.service.instance.clone();
        entry.service.instance = next_name(&from);
        entry.claim = Claim::probing(now + delay);
        let to = entry.service.instance.clone();
        tracing::info!(%from, %to, "mDNS name conflict; renamed");
        self.events.push_back(Event::Renamed { id: ServiceId(i), from, to });
    }

    /// The host lost its name: the next one, probed from the start; announced services wait
    /// for it and are announced again.
    fn host_conflict(&mut self, now: Instant) {
        let delay = self.after_conflict(now);
        let from = self.host.to_ascii();
        let label = from.trim_end_matches(".local.");
        self.host = Name::from_ascii(format!("{}.local.", next_host_name(label)))
            .unwrap_or_else(|_| self.host.clone());
        self.host_claim = Claim::probing(now + delay);
        for entry in self.entries.iter_mut().flatten().filter(|e| e.claim.state != State::Probing) {
            // Probed already (its name stands); it is announced once the host is.
            entry.claim = Claim { state: State::Probing, count: 3, next: now };
        }
        let to = self.host.to_ascii();
        tracing::info!(%from, %to, "mDNS host name conflict; renamed");
        self.events.push_back(Event::HostRenamed { from, to });
    }

    /// Whether `theirs` (records for one of our unique names) hold data other than `ours`:
    /// our own packets come back over the loop, and the same data is no conflict.
    fn differs(theirs: &[&Record], ours: &[Record], types: &[RecordType]) -> bool {
        theirs.iter().any(|t| {
            types.contains(&t.record_type())
                && t.ttl > 0
                && !ours.iter().any(|o| o.record_type() == t.record_type() && o.data == t.data)
        })
    }

    /// 8.2: simultaneous probes; whether theirs wins (the lexicographically later proposal).
    fn loses_tiebreak(ours: &[Record], name: &Name, theirs: &[&Record]) -> bool {
        let mut ours: Vec<Vec<u8>> = ours.iter().filter(|r| r.name == *name).map(rdata_bytes).collect();
        let mut theirs: Vec<Vec<u8>> = theirs.iter().map(|r| rdata_bytes(r)).collect();
        ours.sort();
        theirs.sort();
        theirs > ours
    }

    /// Our answers to `question` from live services, less the querier's known answers.
    fn answers_to(&self, q: &Query, known: &[Record]) -> (Vec<Record>, Vec<Record>) {
        let (mut answers, mut additionals) = (Vec::new(), Vec::new());
        let wanted = |r: &Record| {
            r.name == *q.name() && (q.query_type() == RecordType::ANY || q.query_type() == r.record_type())
        };
        for entry in self.entries.iter().flatten().filter(|e| e.claim.state != State::Probing) {
            let records = self.records(&entry.service, false, false);
            for r in records.iter().filter(|r| wanted(r)) {
                let known_already =
                    known.iter().any(|k| k.name == r.name && k.data == r.data && k.ttl >= r.ttl / 2);
                if !known_already && !answers.contains(r) {
                    answers.push(r.clone());
                }
            }
            // A PTR to the instance brings its SRV, TXT and the host's addresses (RFC 6763 12.1).
            if answers.iter().any(|r| matches!(&r.data, RData::PTR(p) if records.iter().any(|x| x.name == p.0 && x.record_type() == RecordType::SRV))) {
                additionals.extend(records.into_iter().filter(|r| matches!(r.record_type(), RecordType::SRV | RecordType::TXT)));
                additionals.extend(self.address_records(HOST_TTL));
            }
        }
        if q.name() == &self.host && self.host_claim.state != State::Probing {
            answers.extend(self.address_records(HOST_TTL).into_iter().filter(|r| wanted(r)));
        }
        additionals.retain(|r| !answers.contains(r));
        (answers, additionals)
    }

    fn answer(&mut self, from: SocketAddr, m: &Message) {
        let legacy = from.port() != PORT;
        for q in &m.queries {
            let (mut answers, mut additionals) = self.answers_to(q, &m.answers);
            if answers.is_empty() {
                continue;
            }
            if legacy {
                // RFC 6762 6.7: the query's id and question back, short TTLs, no cache-flush bits.
                for r in answers.iter_mut().chain(additionals.iter_mut()) {
                    r.ttl = r.ttl.min(10);
                    r.mdns_cache_flush = false;
                }
                let id = m.metadata.id;
                self.send(
                    Some(from),
                    MessageType::Response,
                    id,
                    vec![q.clone()],
                    answers,
                    Vec::new(),
                    additionals,
                );
            } else {
                let to = q.mdns_unicast_response.then_some(from);
                self.send(to, MessageType::Response, 0, Vec::new(), answers, Vec::new(), additionals);
            }
        }
    }
}

impl Endpoint for Responder {
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        let Ok(m) = Message::from_vec(bytes) else { return };
        if m.metadata.op_code != OpCode::Query
            || m.metadata.response_code != hickory_proto::op::ResponseCode::NoError
        {
            return;
        }
        let is_response = m.metadata.message_type == MessageType::Response;
        // Another's records for `name`: answers to us, or the proposals of their probe.
        let theirs = |name: &Name| -> Vec<&Record> {
            if is_response {
                m.answers.iter().chain(&m.additionals).filter(|r| r.name == *name).collect()
            } else {
                m.authorities.iter().filter(|r| r.name == *name).collect()
            }
        };
        let host_theirs = theirs(&self.host);
        let host_ours = self.address_records(HOST_TTL);
        if Self::differs(&host_theirs, &host_ours, &[RecordType::A, RecordType::AAAA]) {
            if is_response {
                self.host_conflict(now);
            } else if self.host_claim.state == State::Probing
                && Self::loses_tiebreak(&host_ours, &self.host, &host_theirs)
            {
                (self.host_claim.count, self.host_claim.next) = (0, now + Duration::from_secs(1));
            }
        }
        for i in 0..self.entries.len() {
            let Some(entry) = &self.entries[i] else { continue };
            let Some(name) = instance_name(&entry.service.instance, &entry.service.service_type) else {
                continue;
            };
            let ours = self.records(&entry.service, false, false);
            let theirs = theirs(&name);
            if !Self::differs(&theirs, &ours, &[RecordType::SRV, RecordType::TXT]) {
                continue;
            }
            if is_response {
                // RFC 6762 9: a response with other data for our unique name.
                self.conflict(now, i);
            } else if entry.claim.state == State::Probing && Self::loses_tiebreak(&ours, &name, &theirs) {
                let claim = &mut self.entries[i].as_mut().expect("present").claim;
                (claim.count, claim.next) = (0, now + Duration::from_secs(1));
            }
        }
        if !is_response {
            self.answer(from, &m);
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        match self.host_claim.step(now) {
            Some(Step::Probe) => {
                let records = self.address_records(HOST_TTL);
                self.probe(self.host.clone(), self.host_claim.count == 1, records);
            }
            Some(Step::Announce | Step::Established) => {
                let records = self.address_records(HOST_TTL);
                self.send(None, MessageType::Response, 0, Vec::new(), records, Vec::new(), Vec::new());
            }
            None => {}
        }
        let host_pending = self.host_claim.state == State::Probing;
        for i in 0..self.entries.len() {
            let Some(entry) = self.entries[i].as_mut() else { continue };
            if host_pending && entry.claim.probed() {
                // Its name is ours, but the host's is not yet: announce after it.
                entry.claim.next = entry.claim.next.max(self.host_claim.next);
                continue;
            }
            let Some(step) = entry.claim.step(now) else { continue };
            let (first, service) = (entry.claim.count == 1, entry.service.clone());
            match step {
                Step::Probe => {
                    let Some(name) = instance_name(&service.instance, &service.service_type) else {
                        continue;
                    };
                    let records = self.records(&service, false, false);
                    self.probe(name, first, records);
                }
                Step::Announce | Step::Established => {
                    let records = self.records(&service, true, false);
                    self.send(None, MessageType::Response, 0, Vec::new(), records, Vec::new(), Vec::new());
                    if step == Step::Established {
                        self.events.push_back(Event::Registered { id: ServiceId(i), name: service.instance });
                    }
                }
            }
        }
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let claims = self.entries.iter().flatten().map(|e| &e.claim).chain([&self.host_claim]);
        claims.filter(|c| c.state != State::Live).map(|c| c.next).min()
    }
}

/// A unique record (RFC 6762 10.2: the cache-flush bit set).
fn unique(mut r: Record) -> Record {
    r.mdns_cache_flush = true;
    r
}

/// A record's type and data, for the probe tiebreak's comparison.
fn rdata_bytes(r: &Record) -> Vec<u8> {
    format!("{} {}", u16::from(r.record_type()), r.data).into_bytes()
}

/// `host` -> `host-2` -> `host-3` (avahi's style for host names).
pub fn next_host_name(host: &str) -> String {
    match host.rsplit_once('-') {
        Some((base, n)) if n.parse::<u32>().is_ok_and(|n| n >= 2) => {
            format!("{base}-{}", n.parse::<u32>().expect("checked") + 1)
        }
        _ => format!("{host}-2"),
    }
}

/// `Name` -> `Name (2)` -> `Name (3)` (RFC 6763 appendix D's style).
pub fn next_name(name: &str) -> String {
    if let Some(stripped) = name.strip_suffix(')') {
        if let Some((base, n)) = stripped.rsplit_once(" (") {
            if let Ok(n) = n.parse::<u32>() {
                return format!("{base} ({})", n + 1);
            }
        }
    }
    format!("{name} (2)")
}
