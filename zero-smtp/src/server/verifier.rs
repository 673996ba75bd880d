//! Inbound checks on the shard: a message from outside waits while SPF's queries and its
//! DKIM key records are resolved (zero-dns, on the same shard), then gets an
//! Authentication-Results header (RFC 8601) and goes on to the store.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use zero_core::{ConnId, Event as IoEvent, Ops};
use zero_dns::resolver::{Event as DnsEvent, LookupId, Resolver, ResolverDriver};
use zero_dns::{RecordType, ResolveError, ResolverConfig};

use super::Envelope;
use crate::dkim::{self, KeyAnswer};
use crate::results::{self, SpfChecked};
use crate::spf::{self, Check, Poll, Query, QueryType};

/// A message waiting for its lookups.
struct Waiting {
    conn: ConnId,
    envelope: Box<Envelope>,
    body: Vec<u8>,
    keys: HashMap<String, KeyAnswer>,
    keys_left: usize,
    spf: Check,
    spf_done: Option<spf::Outcome>,
}

/// A message checked: its session, envelope, text, and the Authentication-Results field to
/// put in front of it.
pub(super) struct Verified {
    pub conn: ConnId,
    pub envelope: Box<Envelope>,
    pub body: Vec<u8>,
    pub results: String,
}

/// What a lookup is for.
enum For {
    Key(String),
    Spf(Query),
}

/// The shard's verifier.
pub(super) struct Verifier {
    authserv_id: String,
    driver: ResolverDriver,
    lookups: HashMap<LookupId, (u64, For)>,
    waiting: HashMap<u64, Waiting>,
    next: u64,
    done: Vec<Verified>,
}

impl Verifier {
    /// A verifier naming itself `authserv_id` in its results, resolving through `dns`; its
    /// resolver's timer is `token`.
    pub fn new(authserv_id: &str, dns: ResolverConfig, token: u64) -> Verifier {
        Verifier {
            authserv_id: authserv_id.to_string(),
            driver: ResolverDriver::new(Resolver::new(dns, rand::random()), token),
            lookups: HashMap::new(),
            waiting: HashMap::new(),
            next: 0,
            done: Vec::new(),
        }
    }

    /// Takes an event of its resolver's.
    pub fn on_event(&mut self, ops: &mut Ops, event: &IoEvent<'_>) -> bool {
        self.driver.on_event(ops, event)
    }

    /// Starts checking a message (results in [`Verifier::take_done`]). Any
    /// Authentication-Results field bearing our authserv-id is a forgery and is dropped
    /// first (RFC 8601 5).
    pub fn start(&mut self, ops: &mut Ops, conn: ConnId, envelope: Box<Envelope>, body: Vec<u8>) {
        let body = results::without_ours(&body, &self.authserv_id);
        let id = self.next;
        self.next += 1;
        let names = dkim::key_names(&body);
        for name in &names {
            let lookup = self.driver.resolver().lookup(ops.now(), name, RecordType::TXT);
            self.lookups.insert(lookup, (id, For::Key(name.clone())));
        }
        let spf = Check::new(envelope.peer.addr.ip(), &envelope.from, &envelope.helo);
        let keys_left = names.len();
        self.waiting.insert(
            id,
            Waiting { conn, envelope, body, keys: HashMap::new(), keys_left, spf, spf_done: None },
        );
        self.step_spf(ops, id);
    }

    /// Sends what the resolver has to send and takes its answers.
    pub fn pump(&mut self, ops: &mut Ops) {
        self.driver.pump(ops);
        while let Some(DnsEvent::Answer { lookup, result }) = self.driver.resolver().poll_event() {
            let Some((id, what)) = self.lookups.remove(&lookup) else { continue };
            let Some(w) = self.waiting.get_mut(&id) else { continue };
            match what {
                For::Key(name) => {
                    let answer = match result {
                        Ok(answer) => KeyAnswer::Records(answer.txt()),
                        Err(ResolveError::NxDomain { .. } | ResolveError::NoData { .. }) => {
                            KeyAnswer::NotFound
                        }
                        Err(_) => KeyAnswer::Unavailable,
                    };
                    w.keys.insert(name, answer);
                    w.keys_left -= 1;
                    self.finish_if_done(id);
                }
                For::Spf(query) => {
                    w.spf.answer(query.clone(), spf_answer(query.qtype, result));
                    self.step_spf(ops, id);
                }
            }
        }
        self.driver.pump(ops);
    }

    /// Asks SPF's next query, or takes its result.
    fn step_spf(&mut self, ops: &mut Ops, id: u64) {
        let Some(w) = self.waiting.get_mut(&id) else { return };
        match w.spf.poll() {
            Poll::Need(query) => {
                let rtype = match query.qtype {
                    QueryType::Txt => RecordType::TXT,
                    QueryType::A => RecordType::A,
                    QueryType::Aaaa => RecordType::AAAA,
                    QueryType::Mx => RecordType::MX,
                    QueryType::Ptr => RecordType::PTR,
                };
                // Absolute: a search domain must never be appended to an SPF name.
                let lookup = self.driver.resolver().lookup(ops.now(), &format!("{}.", query.name), rtype);
                self.lookups.insert(lookup, (id, For::Spf(query)));
            }
            Poll::Done(outcome) => {
                w.spf_done = Some(outcome);
                self.finish_if_done(id);
            }
        }
    }

    fn finish_if_done(&mut self, id: u64) {
        let ready = self.waiting.get(&id).is_some_and(|w| w.keys_left == 0 && w.spf_done.is_some());
        if !ready {
            return;
        }
        let Some(w) = self.waiting.remove(&id) else { return };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let outcomes = dkim::verify(&w.body, &w.keys, now);
        let spf = w.spf_done.map(|outcome| SpfChecked {
            outcome,
            identity: w.spf.sender().to_string(),
            helo: w.envelope.from.is_empty(),
        });
        let results = results::header(&self.authserv_id, spf.as_ref(), &outcomes);
        self.done.push(Verified { conn: w.conn, envelope: w.envelope, body: w.body, results });
    }

    /// The messages checked since the last call.
    pub fn take_done(&mut self) -> Vec<Verified> {
        std::mem::take(&mut self.done)
    }

    /// Forgets the messages of a session that is gone (nobody waits for their 250).
    pub fn forget(&mut self, conn: ConnId) {
        self.waiting.retain(|_, w| w.conn != conn);
        self.done.retain(|v| v.conn != conn);
    }
}

/// A zero-dns answer as SPF takes it.
fn spf_answer(qtype: QueryType, result: Result<zero_dns::resolver::Answer, ResolveError>) -> spf::Answer {
    let host = |name: String| name.trim_end_matches('.').to_string();
    match result {
        Ok(answer) => spf::Answer::Found(match qtype {
            QueryType::Txt => answer.txt(),
            QueryType::A | QueryType::Aaaa => answer.ips().iter().map(|ip| ip.to_string()).collect(),
            QueryType::Mx => answer.mx().into_iter().map(|(_, name)| host(name.to_ascii())).collect(),
            QueryType::Ptr => answer.ptr().into_iter().map(|name| host(name.to_ascii())).collect(),
        }),
        Err(ResolveError::NxDomain { .. } | ResolveError::NoData { .. }) => spf::Answer::Void,
        Err(_) => spf::Answer::Failed,
    }
}
