//! The stub resolver machine (sans I/O, on the caller's clock).
//!
//! A **lookup** walks its candidate names (the search list, RFC 1535 / glibc `ndots` rules),
//! each answered from `/etc/hosts`, the cache or a **question** to the servers. Identical
//! questions in flight are asked once and answer every lookup waiting on them. A question
//! makes **attempts**: one query to one server, over UDP (its own socket, so its own random
//! source port) or over a **stream** (TCP or DNS over TLS). The servers are tried in order of measured round-trip time (or in
//! turn with `rotate`), a server that timed out is tried last for a while, and the whole list
//! is walked `attempts` times, each try given `timeout`. An earlier attempt stays open: a late
//! answer from a slow server still counts.
//!
//! A response is believed only if it comes from the attempt's server, carries its id and its
//! question (exact case under DNS 0x20); anything else is dropped and counted. A truncated UDP
//! answer is asked again over TCP, of the same server. SERVFAIL, REFUSED and the like move on
//! to the next server; NXDOMAIN moves on to the next candidate name; CNAMEs are followed (the
//! records of the chain are part of the answer) up to `max_cnames`.
//!
//! A stream is one connection to one server, reused and pipelined (RFC 7766 6.2.1, RFC 7858
//! 3.4): queries go out as they come, answers are matched by id in whatever order they
//! arrive, and the connection is closed after [`STREAM_IDLE`] without queries. A reused
//! connection the server closed under queries (its idle timeout) is reopened for them once,
//! without spending a try.
//!
//! The driver opens what [`Resolver::poll_transmit`] asks for (a UDP socket per attempt, a
//! connection per stream), feeds back what arrives on it, and closes what
//! [`Resolver::poll_close`] names.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::answer::Answer;
use crate::cache::{Cache, Cached};
use crate::config::ResolverConfig;
use crate::error::{ResolveError, Source};
use crate::wire;

/// How long a server that timed out is tried after the others.
const PENALTY: Duration = Duration::from_secs(30);
/// How long a stream with no query in flight stays open for the next (unbound's own
/// `tcp-idle-timeout` is 30 s; ours is shorter, so that we close first).
pub const STREAM_IDLE: Duration = Duration::from_secs(10);

/// A lookup's handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LookupId(pub u64);

/// One query to one server: over UDP, the driver's socket for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttemptId(pub u64);

/// A connection to one server (TCP, or TLS with [`ResolverConfig::tls`]), carrying many
/// attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamId(pub u64);

/// A query to send: over UDP, open a socket for `attempt` and send `bytes` to `server`; on a
/// stream, send `bytes` (framed already) on it, connecting it to `server` first if it is new.
#[derive(Debug, Clone)]
pub struct Transmit {
    /// The attempt.
    pub attempt: AttemptId,
    /// The server.
    pub server: SocketAddr,
    /// The stream it goes on; `None`: UDP.
    pub stream: Option<StreamId>,
    /// What to send.
    pub bytes: Vec<u8>,
}

/// What the driver should close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// A UDP attempt's socket.
    Attempt(AttemptId),
    /// A stream's connection.
    Stream(StreamId),
}

/// What the resolver tells its driver.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A lookup is done.
    Answer {
        /// Which.
        lookup: LookupId,
        /// Its answer or why there is none.
        result: Result<Answer, ResolveError>,
    },
}

/// Why a try failed, for the error if every try does.
#[derive(Debug, Clone)]
enum Failure {
    Rcode(ResponseCode),
    Connection(String),
}

/// What a question's server said.
enum Outcome {
    Records(Vec<Record>, Option<Box<Message>>, Source),
    NxDomain(Source),
    NoData(Source),
}

struct Lookup {
    /// What the caller asked, for errors.
    asked: String,
    rtype: RecordType,
    candidates: Vec<Name>,
    next: usize,
    /// CNAME records followed so far.
    chain: Vec<Record>,
    last_error: Option<ResolveError>,
}

struct Attempt {
    question: u64,
    server: usize,
    id: u16,
    /// The stream it went on; `None`: UDP.
    stream: Option<u64>,
    sent: Instant,
}

struct Stream {
    server: usize,
    /// Bytes not framed yet.
    rx: Vec<u8>,
    /// Attempts in flight on it.
    attempts: Vec<AttemptId>,
    /// Answers it has carried: a stream that has is a reused one.
    answered: u64,
    /// Since when nothing is in flight.
    idle_since: Option<Instant>,
}

struct Question {
    /// The name as sent (its case randomised under 0x20).
    name: Name,
    rtype: RecordType,
    key: (String, RecordType),
    waiting: Vec<LookupId>,
    attempts: Vec<AttemptId>,
    /// The servers to try, in order, every round.
    order: Vec<usize>,
    next_try: usize,
    deadline: Instant,
    last_failure: Option<(Failure, SocketAddr)>,
}

#[derive(Debug, Clone)]
struct Server {
    addr: SocketAddr,
    /// Smoothed round-trip time.
    srtt: Option<Duration>,
    /// Timed out recently: tried after the others until then.
    penalized_until: Option<Instant>,
}

/// The stub resolver.
pub struct Resolver {
    config: ResolverConfig,
    servers: Vec<Server>,
    cache: Cache,
    rng: StdRng,
    next_id: u64,
    lookups: HashMap<u64, Lookup>,
    questions: HashMap<u64, Question>,
    asking: HashMap<(String, RecordType), u64>,
    attempts: HashMap<u64, Attempt>,
    streams: HashMap<u64, Stream>,
    /// Each server's open stream.
    stream_to: HashMap<usize, u64>,
    transmits: VecDeque<Transmit>,
    closes: VecDeque<Close>,
    events: VecDeque<Event>,
    rotation: usize,
    dropped: u64,
}

impl Resolver {
    /// A resolver with `config`; `seed` seeds its query ids and 0x20 case (a driver passes a
    /// random one; tests a fixed one).
    pub fn new(config: ResolverConfig, seed: u64) -> Resolver {
        let servers =
            config.servers.iter().map(|&addr| Server { addr, srtt: None, penalized_until: None }).collect();
        Resolver {
            cache: Cache::new(config.cache_size),
            config,
            servers,
            rng: StdRng::seed_from_u64(seed),
            next_id: 0,
            lookups: HashMap::new(),
            questions: HashMap::new(),
            asking: HashMap::new(),
            attempts: HashMap::new(),
            streams: HashMap::new(),
            stream_to: HashMap::new(),
            transmits: VecDeque::new(),
            closes: VecDeque::new(),
            events: VecDeque::new(),
            rotation: 0,
            dropped: 0,
        }
    }

    /// Starts a lookup of `name` `rtype`; its answer comes as an [`Event::Answer`].
    pub fn lookup(&mut self, now: Instant, name: &str, rtype: RecordType) -> LookupId {
        let id = LookupId(self.fresh());
        let candidates = match self.candidates(name) {
            Ok(c) => c,
            Err(e) => {
                self.events.push_back(Event::Answer { lookup: id, result: Err(e) });
                return id;
            }
        };
        if let Some(answer) = self.hosts_answer(&candidates, rtype) {
            self.events.push_back(Event::Answer { lookup: id, result: Ok(answer) });
            return id;
        }
        if self.servers.is_empty() {
            self.events.push_back(Event::Answer { lookup: id, result: Err(ResolveError::NoServers) });
            return id;
        }
        let lookup = Lookup {
            asked: name.to_string(),
            rtype,
            candidates,
            next: 0,
            chain: Vec::new(),
            last_error: None,
        };
        self.lookups.insert(id.0, lookup);
        self.advance(now, id);
        id
    }

    /// Starts lookups of `name`'s A and AAAA records together (what Happy Eyeballs, RFC 8305,
    /// wants: both in flight at once, each answered as it comes).
    pub fn lookup_addresses(&mut self, now: Instant, name: &str) -> [LookupId; 2] {
        [self.lookup(now, name, RecordType::AAAA), self.lookup(now, name, RecordType::A)]
    }

    /// The next query to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next socket or connection the driver should close.
    pub fn poll_close(&mut self) -> Option<Close> {
        self.closes.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Resolver::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let idle = self.streams.values().filter_map(|s| s.idle_since).map(|t| t + STREAM_IDLE);
        self.questions.values().map(|q| q.deadline).chain(idle).min()
    }

    /// Responses dropped: from the wrong address, with the wrong id or question, malformed.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Lookups not answered yet.
    pub fn pending(&self) -> usize {
        self.lookups.len()
    }

    /// A datagram arrived on `attempt`'s socket from `from`.
    pub fn handle_datagram(&mut self, now: Instant, attempt: AttemptId, from: SocketAddr, bytes: &[u8]) {
        let Some(a) = self.attempts.get(&attempt.0) else { return };
        if a.stream.is_some() || from != self.servers[a.server].addr {
            self.dropped += 1;
            return;
        }
        self.handle_message(now, attempt, bytes);
    }

    /// Bytes arrived on `stream`: each whole message goes to the attempt with its id.
    pub fn handle_stream(&mut self, now: Instant, stream: StreamId, bytes: &[u8]) {
        let Some(st) = self.streams.get_mut(&stream.0) else { return };
        st.rx.extend_from_slice(bytes);
        let rx = std::mem::take(&mut st.rx);
        let mut at = 0;
        while let Some((message, used)) = wire::tcp_unframe(&rx[at..]) {
            at += used;
            let id = message.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
            let st = self.streams.get(&stream.0).expect("present");
            let attempt = st
                .attempts
                .iter()
                .copied()
                .find(|a| self.attempts.get(&a.0).is_some_and(|a| Some(a.id) == id));
            match attempt {
                Some(attempt) => self.handle_message(now, attempt, message),
                None => self.dropped += 1,
            }
        }
        if let Some(st) = self.streams.get_mut(&stream.0) {
            st.rx = rx[at..].to_vec();
        }
    }

    /// A UDP attempt's socket failed (`why`).
    pub fn handle_closed(&mut self, _now: Instant, attempt: AttemptId, why: Option<String>) {
        let Some(a) = self.attempts.remove(&attempt.0) else { return };
        if let Some(q) = self.questions.get_mut(&a.question) {
            q.attempts.retain(|&x| x != attempt);
            if let Some(why) = why {
                q.last_failure = Some((Failure::Connection(why), self.servers[a.server].addr));
            }
        }
    }

    /// `stream`'s connection failed (`why`) or closed. Its questions move on to the next
    /// server at once; if it had carried answers already (the server closed a reused
    /// connection, as servers do when idle), they are asked again on a new one first.
    pub fn handle_stream_closed(&mut self, now: Instant, stream: StreamId, why: Option<String>) {
        let Some(st) = self.streams.remove(&stream.0) else { return };
        if self.stream_to.get(&st.server) == Some(&stream.0) {
            self.stream_to.remove(&st.server);
        }
        let addr = self.servers[st.server].addr;
        for attempt in st.attempts {
            let Some(a) = self.attempts.remove(&attempt.0) else { continue };
            let Some(q) = self.questions.get_mut(&a.question) else { continue };
            q.attempts.retain(|&x| x != attempt);
            if st.answered > 0 {
                self.send_attempt(now, a.question, a.server, true);
                continue;
            }
            let why = why.clone().unwrap_or_else(|| "the server closed the connection".into());
            q.last_failure = Some((Failure::Connection(why), addr));
            self.try_next(now, a.question);
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ResolverConfig {
        &self.config
    }

    /// Time passed: questions whose try ran out move on to the next server; streams idle
    /// for [`STREAM_IDLE`] are closed.
    pub fn handle_timeout(&mut self, now: Instant) {
        let idle: Vec<u64> = (self.streams.iter())
            .filter(|(_, st)| st.idle_since.is_some_and(|t| t + STREAM_IDLE <= now))
            .map(|(&id, _)| id)
            .collect();
        for id in idle {
            let st = self.streams.remove(&id).expect("present");
            if self.stream_to.get(&st.server) == Some(&id) {
                self.stream_to.remove(&st.server);
            }
            self.closes.push_back(Close::Stream(StreamId(id)));
        }
        let due: Vec<u64> =
            self.questions.iter().filter(|(_, q)| q.deadline <= now).map(|(&id, _)| id).collect();
        for qid in due {
            if let Some(q) = self.questions.get(&qid) {
                if let Some(&server) = q.next_try.checked_sub(1).and_then(|i| q.order.get(i)) {
                    tracing::debug!(name = %q.name, server = %self.servers[server].addr, "DNS try timed out");
                    self.servers[server].penalized_until = Some(now + PENALTY);
                }
            }
            self.try_next(now, qid);
        }
    }

    fn fresh(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The names to try for `name`, in order: as is first if it has `ndots` dots or more
    /// (or ends with a dot, then only as is), else after the search list.
    fn candidates(&self, name: &str) -> Result<Vec<Name>, ResolveError> {
        let bad = |e: &dyn std::fmt::Display| ResolveError::BadName(name.to_string(), e.to_string());
        if name.is_empty() {
            return Err(bad(&"empty"));
        }
        let fqdn = |text: &str| {
            let mut n = Name::from_str(text).map_err(|e| bad(&e))?;
            n.set_fqdn(true);
            Ok::<Name, ResolveError>(n)
        };
        if name.ends_with('.') {
            return Ok(vec![fqdn(name)?]);
        }
        let searched = self.config.search.iter().map(|domain| fqdn(&format!("{name}.{domain}")));
        let dots = name.matches('.').count();
        let mut out = Vec::new();
        if dots >= self.config.ndots {
            out.push(fqdn(name)?);
            out.extend(searched.filter_map(Result::ok));
        } else {
            out.extend(searched.filter_map(Result::ok));
            out.push(fqdn(name)?);
        }
        Ok(out)
    }

    fn hosts_answer(&self, candidates: &[Name], rtype: RecordType) -> Option<Answer> {
        let hosts = &self.config.hosts;
        if hosts.is_empty() || !matches!(rtype, RecordType::A | RecordType::AAAA) {
            return None;
        }
        candidates.iter().find_map(|name| {
            let records: Vec<Record> = hosts
                .addresses(&name.to_ascii())
                .iter()
                .filter_map(|ip| match (ip, rtype) {
                    (IpAddr::V4(a), RecordType::A) => Some(RData::A((*a).into())),
                    (IpAddr::V6(a), RecordType::AAAA) => Some(RData::AAAA((*a).into())),
                    _ => None,
                })
                .map(|data| Record::from_rdata(name.clone(), 0, data))
                .collect();
            (!records.is_empty()).then(|| Answer {
                name: name.clone(),
                rtype,
                records,
                source: Source::Hosts,
                response: None,
            })
        })
    }

    /// Works on the lookup's current candidate: the cache, or a question.
    fn advance(&mut self, now: Instant, lid: LookupId) {
        loop {
            let Some(l) = self.lookups.get(&lid.0) else { return };
            let Some(name) = l.candidates.get(l.next).cloned() else {
                let l = self.lookups.remove(&lid.0).expect("present");
                let error =
                    l.last_error.unwrap_or(ResolveError::NxDomain { name: l.asked, server: Source::Cache });
                self.events.push_back(Event::Answer { lookup: lid, result: Err(error) });
                return;
            };
            let rtype = l.rtype;
            match self.cache.get(now, &name.to_ascii(), rtype) {
                Some(Cached::Records(records)) => {
                    return self.conclude(now, lid, &name, Outcome::Records(records, None, Source::Cache))
                }
                Some(Cached::NxDomain) => {
                    let l = self.lookups.get_mut(&lid.0).expect("present");
                    if !l.chain.is_empty() {
                        return self.conclude(now, lid, &name, Outcome::NxDomain(Source::Cache));
                    }
                    l.last_error =
                        Some(ResolveError::NxDomain { name: name.to_ascii(), server: Source::Cache });
                    l.next += 1;
                }
                Some(Cached::NoData) => {
                    return self.conclude(now, lid, &name, Outcome::NoData(Source::Cache))
                }
                None => return self.ask(now, lid, name, rtype),
            }
        }
    }

    /// Asks the servers about `name` `rtype` for `lid`, or joins the same question in flight.
    fn ask(&mut self, now: Instant, lid: LookupId, name: Name, rtype: RecordType) {
        let key = (name.to_ascii().to_ascii_lowercase(), rtype);
        if let Some(qid) = self.asking.get(&key) {
            self.questions.get_mut(qid).expect("asking names a question").waiting.push(lid);
            return;
        }
        let sent_name = if self.config.case_randomization { self.mix_case(&name) } else { name };
        let order = self.server_order(now);
        let qid = self.fresh();
        self.asking.insert(key.clone(), qid);
        let question = Question {
            name: sent_name,
            rtype,
            key,
            waiting: vec![lid],
            attempts: Vec::new(),
            order,
            next_try: 0,
            deadline: now,
            last_failure: None,
        };
        self.questions.insert(qid, question);
        self.try_next(now, qid);
    }

    /// The servers in the order to try them, `attempts` rounds over.
    fn server_order(&mut self, now: Instant) -> Vec<usize> {
        let n = self.servers.len();
        let mut round: Vec<usize> = (0..n).collect();
        if self.config.rotate {
            round.rotate_left(self.rotation % n);
            self.rotation += 1;
        } else {
            round.sort_by_key(|&i| self.servers[i].srtt.unwrap_or(Duration::ZERO));
        }
        // Servers that timed out lately go last (stable: the order above holds among them).
        round.sort_by_key(|&i| self.servers[i].penalized_until.is_some_and(|t| t > now));
        (0..self.config.attempts.max(1)).flat_map(|_| round.iter().copied()).collect()
    }

    /// DNS 0x20: each letter of `name` in a random case.
    fn mix_case(&mut self, name: &Name) -> Name {
        let text: String = name
            .to_ascii()
            .chars()
            .map(|c| if self.rng.random::<bool>() { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
            .collect();
        Name::from_ascii(&text).unwrap_or_else(|_| name.clone())
    }

    /// Sends the question to its next server, or gives up.
    fn try_next(&mut self, now: Instant, qid: u64) {
        let Some(q) = self.questions.get_mut(&qid) else { return };
        let Some(&server) = q.order.get(q.next_try) else {
            let error = match q.last_failure.clone() {
                Some((Failure::Rcode(rcode), server)) => ResolveError::ServerFailure {
                    name: q.name.to_ascii().to_ascii_lowercase(),
                    rcode: rcode.to_string(),
                    server,
                },
                Some((Failure::Connection(why), server)) => {
                    ResolveError::Connection { name: q.name.to_ascii().to_ascii_lowercase(), why, server }
                }
                None => ResolveError::Timeout {
                    name: q.name.to_ascii().to_ascii_lowercase(),
                    tries: q.next_try as u32,
                    servers: self.servers.len(),
                },
            };
            return self.fail_question(now, qid, error);
        };
        q.next_try += 1;
        q.deadline = now + self.config.timeout;
        let tcp = self.config.tcp_only || self.config.tls.is_some();
        self.send_attempt(now, qid, server, tcp);
    }

    fn send_attempt(&mut self, now: Instant, qid: u64, server: usize, tcp: bool) {
        let stream = tcp.then(|| self.stream_to(server));
        let id = loop {
            // Unique among the stream's attempts: the id is how its answers are told apart.
            let id = self.rng.random::<u16>();
            let taken = stream.and_then(|s| self.streams.get(&s)).is_some_and(|st| {
                st.attempts.iter().any(|a| self.attempts.get(&a.0).is_some_and(|a| a.id == id))
            });
            if !taken {
                break id;
            }
        };
        let attempt = AttemptId(self.fresh());
        let q = self.questions.get_mut(&qid).expect("present");
        // Over TCP there is no size limit to offer; EDNS still says we speak it.
        let bytes = wire::query(id, &q.name, q.rtype, self.config.edns_size);
        q.attempts.push(attempt);
        let bytes = if tcp { wire::tcp_frame(&bytes) } else { bytes };
        let addr = self.servers[server].addr;
        if let Some(st) = stream.and_then(|s| self.streams.get_mut(&s)) {
            st.attempts.push(attempt);
            st.idle_since = None;
        }
        self.attempts.insert(attempt.0, Attempt { question: qid, server, id, stream, sent: now });
        self.transmits.push_back(Transmit { attempt, server: addr, stream: stream.map(StreamId), bytes });
    }

    /// `server`'s open stream, or a new one.
    fn stream_to(&mut self, server: usize) -> u64 {
        if let Some(&id) = self.stream_to.get(&server) {
            return id;
        }
        let id = self.fresh();
        let st = Stream { server, rx: Vec::new(), attempts: Vec::new(), answered: 0, idle_since: None };
        self.streams.insert(id, st);
        self.stream_to.insert(server, id);
        id
    }

    fn handle_message(&mut self, now: Instant, attempt: AttemptId, bytes: &[u8]) {
        let Some(a) = self.attempts.get(&attempt.0) else { return };
        let Some(q) = self.questions.get(&a.question) else { return };
        let exact = self.config.case_randomization;
        let message = match wire::response(bytes, a.id, &q.name, q.rtype, exact) {
            Ok(m) => m,
            Err(mismatch) => {
                tracing::debug!(%mismatch, server = %self.servers[a.server].addr, "DNS response dropped");
                self.dropped += 1;
                return;
            }
        };
        let (qid, server, tcp) = (a.question, a.server, a.stream.is_some());
        if let Some(st) = a.stream.and_then(|s| self.streams.get_mut(&s)) {
            st.answered += 1;
        }
        let rtt = now.saturating_duration_since(a.sent);
        let s = &mut self.servers[server];
        s.srtt = Some(s.srtt.map_or(rtt, |old| (old * 7 + rtt) / 8));
        s.penalized_until = None;
        let addr = s.addr;
        if message.metadata.truncation && !tcp {
            // RFC 7766 / 1035: the whole answer, over TCP, from the same server.
            self.send_attempt(now, qid, server, true);
            return;
        }
        let source = Source::Server(addr);
        match message.metadata.response_code {
            ResponseCode::NoError => {
                let name = self.questions[&qid].name.clone();
                let rtype = self.questions[&qid].rtype;
                let outcome = if message.answers.iter().any(|r| useful(r, &name, rtype)) {
                    if self.cache.is_enabled() {
                        let ttl = message.answers.iter().map(|r| r.ttl).min().unwrap_or(0);
                        let records = Cached::Records(message.answers.clone());
                        self.cache.put(now, &name.to_ascii(), rtype, records, secs(ttl));
                    }
                    Outcome::Records(message.answers.clone(), Some(Box::new(message)), source)
                } else {
                    self.remember_negative(now, &name, rtype, &message, Cached::NoData);
                    Outcome::NoData(source)
                };
                self.answer_question(now, qid, outcome);
            }
            ResponseCode::NXDomain => {
                let (name, rtype) = (self.questions[&qid].name.clone(), self.questions[&qid].rtype);
                self.remember_negative(now, &name, rtype, &message, Cached::NxDomain);
                self.answer_question(now, qid, Outcome::NxDomain(source));
            }
            rcode => {
                let q = self.questions.get_mut(&qid).expect("present");
                q.last_failure = Some((Failure::Rcode(rcode), addr));
                self.try_next(now, qid);
            }
        }
    }

    /// RFC 2308 5: a negative answer lives for the SOA's MINIMUM (capped by its own TTL and
    /// ours); without a SOA it is not cached.
    fn remember_negative(&mut self, now: Instant, name: &Name, rtype: RecordType, m: &Message, what: Cached) {
        let soa = m.authorities.iter().find_map(|r| match &r.data {
            RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
            _ => None,
        });
        if let Some(ttl) = soa {
            let ttl = secs(ttl).min(self.config.max_negative_ttl);
            self.cache.put(now, &name.to_ascii(), rtype, what, ttl);
        }
    }

    /// Ends a question's attempts: UDP sockets are closed; streams stay open for the next
    /// queries.
    fn close_attempts(&mut self, now: Instant, q: &Question) {
        for &attempt in &q.attempts {
            let Some(a) = self.attempts.remove(&attempt.0) else { continue };
            match a.stream.and_then(|s| self.streams.get_mut(&s)) {
                Some(st) => {
                    st.attempts.retain(|&x| x != attempt);
                    if st.attempts.is_empty() {
                        st.idle_since = Some(now);
                    }
                }
                None if a.stream.is_none() => self.closes.push_back(Close::Attempt(attempt)),
                None => {}
            }
        }
    }

    fn answer_question(&mut self, now: Instant, qid: u64, outcome: Outcome) {
        let q = self.questions.remove(&qid).expect("present");
        self.asking.remove(&q.key);
        self.close_attempts(now, &q);
        let last = q.waiting.len() - 1;
        let mut outcome = Some(outcome);
        for (i, lid) in q.waiting.iter().enumerate() {
            let this = if i == last {
                outcome.take().expect("once")
            } else {
                outcome.as_ref().expect("kept").copy()
            };
            self.conclude(now, *lid, &q.name, this);
        }
    }

    fn fail_question(&mut self, now: Instant, qid: u64, error: ResolveError) {
        let q = self.questions.remove(&qid).expect("present");
        self.asking.remove(&q.key);
        self.close_attempts(now, &q);
        for lid in q.waiting {
            if self.lookups.remove(&lid.0).is_some() {
                self.events.push_back(Event::Answer { lookup: lid, result: Err(error.clone()) });
            }
        }
    }

    /// What an outcome about `name` means for lookup `lid`: its answer, a CNAME to follow,
    /// or the next candidate name.
    fn conclude(&mut self, now: Instant, lid: LookupId, name: &Name, outcome: Outcome) {
        let Some(l) = self.lookups.get_mut(&lid.0) else { return };
        let rtype = l.rtype;
        match outcome {
            Outcome::Records(records, response, source) => {
                // Follow the chain the server gave from `name`.
                let mut at = name.clone();
                let mut chain = Vec::new();
                for _ in 0..=self.config.max_cnames {
                    match records.iter().find(|r| r.name == at && r.record_type() == RecordType::CNAME) {
                        Some(r) if rtype != RecordType::CNAME => {
                            chain.push(r.clone());
                            if let RData::CNAME(target) = &r.data {
                                at = target.0.clone();
                            }
                        }
                        _ => break,
                    }
                }
                let found: Vec<Record> = records.into_iter().filter(|r| answers(r, &at, rtype)).collect();
                l.chain.extend(chain);
                if l.chain.len() > self.config.max_cnames {
                    let l = self.lookups.remove(&lid.0).expect("present");
                    let error = ResolveError::CnameLoop { name: l.asked };
                    return self.events.push_back(Event::Answer { lookup: lid, result: Err(error) });
                }
                if found.is_empty() {
                    // A CNAME to a name the server did not answer for: ask about it.
                    return self.ask(now, lid, at, rtype);
                }
                let l = self.lookups.remove(&lid.0).expect("present");
                let mut records = l.chain;
                records.extend(found);
                let answer = Answer { name: at, rtype, records, source, response };
                self.events.push_back(Event::Answer { lookup: lid, result: Ok(answer) });
            }
            Outcome::NxDomain(source) if l.chain.is_empty() => {
                l.last_error = Some(ResolveError::NxDomain { name: name.to_ascii(), server: source });
                l.next += 1;
                self.advance(now, lid);
            }
            Outcome::NxDomain(source) => {
                let error = ResolveError::NxDomain { name: name.to_ascii(), server: source };
                self.lookups.remove(&lid.0);
                self.events.push_back(Event::Answer { lookup: lid, result: Err(error) });
            }
            Outcome::NoData(source) => {
                let error =
                    ResolveError::NoData { name: name.to_ascii(), rtype: rtype.to_string(), server: source };
                self.lookups.remove(&lid.0);
                self.events.push_back(Event::Answer { lookup: lid, result: Err(error) });
            }
        }
    }
}

impl Outcome {
    fn copy(&self) -> Outcome {
        match self {
            Outcome::Records(r, m, s) => Outcome::Records(r.clone(), m.clone(), *s),
            Outcome::NxDomain(s) => Outcome::NxDomain(*s),
            Outcome::NoData(s) => Outcome::NoData(*s),
        }
    }
}

/// Whether `r` is a record of `name` `rtype`.
fn answers(r: &Record, name: &Name, rtype: RecordType) -> bool {
    r.name == *name && (rtype == RecordType::ANY || r.record_type() == rtype)
}

/// Whether `r` answers `name` `rtype`, or starts a CNAME chain from it.
fn useful(r: &Record, name: &Name, rtype: RecordType) -> bool {
    answers(r, name, rtype) || (r.name == *name && r.record_type() == RecordType::CNAME)
}

fn secs(ttl: u32) -> Duration {
    Duration::from_secs(u64::from(ttl))
}
