//! Inbound DKIM verification on the shard: a message from outside waits while its key
//! records are resolved (zero-dns, on the same shard), then gets an Authentication-Results
//! header (RFC 8601) and goes on to the store.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use zero_core::{ConnId, Event as IoEvent, Ops};
use zero_dns::resolver::{Event as DnsEvent, LookupId, Resolver, ResolverDriver};
use zero_dns::{RecordType, ResolveError, ResolverConfig};

use super::Envelope;
use crate::dkim::{self, KeyAnswer};

/// A message waiting for its key records.
struct Waiting {
    conn: ConnId,
    envelope: Box<Envelope>,
    body: Vec<u8>,
    keys: HashMap<String, KeyAnswer>,
    left: usize,
}

/// A message verified: its session, envelope, text, and the Authentication-Results field to
/// put in front of it.
pub(super) struct Verified {
    pub conn: ConnId,
    pub envelope: Box<Envelope>,
    pub body: Vec<u8>,
    pub results: String,
}

/// The shard's verifier.
pub(super) struct Verifier {
    authserv_id: String,
    driver: ResolverDriver,
    lookups: HashMap<LookupId, (u64, String)>,
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

    /// Starts verifying a message: at once if it has no signature, else once its keys are
    /// resolved ([`Verifier::take_done`]). Any Authentication-Results field bearing our
    /// authserv-id is a forgery and is dropped first (RFC 8601 5).
    pub fn start(&mut self, ops: &mut Ops, conn: ConnId, envelope: Box<Envelope>, body: Vec<u8>) {
        let body = dkim::without_results(&body, &self.authserv_id);
        let names = dkim::key_names(&body);
        let id = self.next;
        self.next += 1;
        for name in &names {
            let lookup = self.driver.resolver().lookup(ops.now(), name, RecordType::TXT);
            self.lookups.insert(lookup, (id, name.clone()));
        }
        let left = names.len();
        self.waiting.insert(id, Waiting { conn, envelope, body, keys: HashMap::new(), left });
        if left == 0 {
            self.finish(id);
        }
    }

    /// Sends what the resolver has to send and takes its answers.
    pub fn pump(&mut self, ops: &mut Ops) {
        self.driver.pump(ops);
        while let Some(DnsEvent::Answer { lookup, result }) = self.driver.resolver().poll_event() {
            let Some((id, name)) = self.lookups.remove(&lookup) else { continue };
            let answer = match result {
                Ok(answer) => KeyAnswer::Records(answer.txt()),
                Err(ResolveError::NxDomain { .. } | ResolveError::NoData { .. }) => KeyAnswer::NotFound,
                Err(_) => KeyAnswer::Unavailable,
            };
            let Some(w) = self.waiting.get_mut(&id) else { continue };
            w.keys.insert(name, answer);
            w.left -= 1;
            if w.left == 0 {
                self.finish(id);
            }
        }
        self.driver.pump(ops);
    }

    fn finish(&mut self, id: u64) {
        let Some(w) = self.waiting.remove(&id) else { return };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let outcomes = dkim::verify(&w.body, &w.keys, now);
        let results = dkim::authentication_results(&self.authserv_id, &outcomes);
        self.done.push(Verified { conn: w.conn, envelope: w.envelope, body: w.body, results });
    }

    /// The messages verified since the last call.
    pub fn take_done(&mut self) -> Vec<Verified> {
        std::mem::take(&mut self.done)
    }

    /// Forgets the messages of a session that is gone (nobody waits for their 250).
    pub fn forget(&mut self, conn: ConnId) {
        self.waiting.retain(|_, w| w.conn != conn);
        self.done.retain(|v| v.conn != conn);
    }
}
