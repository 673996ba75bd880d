//! The broker's state to and from the journal: replay at start, snapshots for compaction.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::message::{Delivery, Message};
use super::router::Subscription;
use super::session::{Outbound, Session, Stage};
use super::Broker;
use crate::codec::{PacketId, QoS, SubOptions};
use crate::store::{Journaling, Record};

/// A session as the journal describes it.
#[derive(Default)]
struct Saved {
    expiry: u32,
    /// Which incarnation of the client id (a session ended and began again is another).
    generation: u64,
    subscriptions: HashMap<String, (u8, u32)>,
    awaiting_release: BTreeSet<PacketId>,
}

/// A delivery as the journal describes it.
struct SavedDelivery {
    client: String,
    generation: u64,
    mid: u64,
    qos: u8,
    retain: bool,
    ids: Vec<u32>,
    sent: Option<(PacketId, Stage)>,
}

impl<C: super::ConnKey> Broker<C> {
    /// The records written since the last call, for the driver to append to the journal
    /// before it sends this tick's packets. Empty when persistence is off.
    pub fn take_journal(&mut self) -> Vec<u8> {
        self.journal.as_mut().map(Journaling::take).unwrap_or_default()
    }

    /// Replays a journal (whole records, as [`crate::store::Journal::open`] returns them) into
    /// a new broker: sessions come back offline, with subscriptions, queued and in-flight
    /// deliveries and QoS 2 state, their expiry counted from `now`. Returns the sessions
    /// restored.
    pub fn restore(&mut self, journal: &[u8], now: Instant) -> usize {
        let Some(j) = &mut self.journal else { return 0 };
        let mut sessions: HashMap<String, Saved> = HashMap::new();
        let mut messages: HashMap<u64, Arc<Message>> = HashMap::new();
        let mut retained: HashMap<String, u64> = HashMap::new();
        let mut deliveries: BTreeMap<u64, SavedDelivery> = BTreeMap::new();
        let (mut max_mid, mut generation) = (0, 0);
        let mut at = 0;
        while let Some((record, len)) = Record::decode(&journal[at..]) {
            at += len;
            generation += 1;
            match record {
                Record::Session { client, expiry } => {
                    sessions
                        .entry(client.into())
                        .or_insert_with(|| Saved { generation, ..Saved::default() })
                        .expiry = expiry;
                }
                Record::SessionEnd { client } => {
                    sessions.remove(client);
                }
                Record::Subscribe { client, filter, options, id } => {
                    if let Some(s) = sessions.get_mut(client) {
                        s.subscriptions.insert(filter.into(), (options, id));
                    }
                }
                Record::Unsubscribe { client, filter } => {
                    if let Some(s) = sessions.get_mut(client) {
                        s.subscriptions.remove(filter);
                    }
                }
                Record::Message { mid, topic, qos, retain, expires_ms, properties, payload } => {
                    max_mid = max_mid.max(mid);
                    let message = Message {
                        topic: topic.into(),
                        payload: payload.into(),
                        qos: QoS::from_bits(qos).unwrap_or(QoS::AtLeastOnce),
                        retain,
                        properties: properties.into(),
                        expires: (expires_ms != 0).then(|| j.instant(expires_ms)),
                        origin: None,
                        journal_id: mid.into(),
                    };
                    messages.insert(mid, Arc::new(message));
                }
                Record::Retain { mid } => {
                    if let Some(m) = messages.get(&mid) {
                        retained.insert(m.topic.to_string(), mid);
                    }
                }
                Record::Unretain { topic } => {
                    retained.remove(topic);
                }
                Record::Enqueue { did, client, mid, qos, retain, ids } => {
                    let Some(s) = sessions.get(client) else { continue };
                    let ids =
                        ids.chunks_exact(4).map(|b| u32::from_be_bytes(b.try_into().expect("4"))).collect();
                    let generation = s.generation;
                    let (client, sent) = (client.into(), None);
                    deliveries.insert(did, SavedDelivery { client, generation, mid, qos, retain, ids, sent });
                }
                Record::Sent { did, packet_id } => {
                    if let Some(d) = deliveries.get_mut(&did) {
                        d.sent = Some((packet_id, Stage::Published));
                    }
                }
                Record::Released { did } => {
                    if let Some((_, stage)) = deliveries.get_mut(&did).and_then(|d| d.sent.as_mut()) {
                        *stage = Stage::Released;
                    }
                }
                Record::Done { did } => {
                    deliveries.remove(&did);
                }
                Record::AwaitRelease { client, packet_id } => {
                    if let Some(s) = sessions.get_mut(client) {
                        s.awaiting_release.insert(packet_id);
                    }
                }
                Record::ReleaseDone { client, packet_id } => {
                    if let Some(s) = sessions.get_mut(client) {
                        s.awaiting_release.remove(&packet_id);
                    }
                }
            }
        }
        j.skip_past(max_mid, deliveries.last_key_value().map_or(0, |(&did, _)| did));

        for mid in retained.into_values() {
            if let Some(m) = messages.get(&mid).filter(|m| !m.expired(now)) {
                self.router.retain(m);
            }
        }
        let restored = sessions.len();
        let mut index_of = HashMap::new();
        for (client, saved) in sessions {
            let uid = self.new_uid();
            let mut session = Session::new(uid, client.as_str().into());
            session.expiry = saved.expiry;
            session.journaled = true;
            if !saved.awaiting_release.is_empty() {
                session.flows_mut().awaiting_release = saved.awaiting_release;
            }
            let index = self.sessions.insert(session);
            for (filter, (options, id)) in saved.subscriptions {
                let Ok(options) = SubOptions::decode(options, true) else { continue };
                let subscription = Subscription { options, id: (id != 0).then_some(id) };
                self.router.subscribe(index, &filter, subscription);
                self.sessions[index].subscriptions.insert(filter.into(), subscription);
            }
            self.by_client.insert(&self.sessions, index);
            index_of.insert(client, (index, saved.generation));
            if saved.expiry != u32::MAX {
                self.end_later(index, now + Duration::from_secs(u64::from(saved.expiry)));
            }
        }
        for (did, d) in deliveries {
            let Some(&(index, generation)) = index_of.get(&d.client) else { continue };
            let Some(message) = messages.get(&d.mid).filter(|_| generation == d.generation) else { continue };
            let qos = QoS::from_bits(d.qos).unwrap_or(QoS::AtLeastOnce);
            let delivery =
                Delivery { message: message.clone(), qos, retain: d.retain, subscription_ids: d.ids, did };
            let s = &mut self.sessions[index];
            match d.sent {
                Some((packet_id, stage)) => {
                    s.flows_mut().inflight.push_back(Outbound { packet_id, delivery, stage })
                }
                None => s.flows_mut().queue.push_back(delivery),
            }
        }
        restored
    }

    /// The live state as journal records: what compaction writes in place of the journal.
    pub fn snapshot(&self) -> Vec<u8> {
        let Some(j) = &self.journal else { return Vec::new() };
        let mut out = j.scratch();
        let mut written = HashSet::new();
        let mut message = |out: &mut Journaling, m: &Message| {
            let mid = m.journal_id.load(Relaxed);
            if written.insert(mid) {
                out.write_message(mid, m);
            }
            mid
        };
        for m in self.router.retained().filter(|m| !m.topic.starts_with('$')) {
            let mid = message(&mut out, m);
            out.record(Record::Retain { mid });
        }
        for (_, s) in self.sessions.iter().filter(|(_, s)| s.journaled) {
            let client = &*s.client_id;
            out.record(Record::Session { client, expiry: s.expiry });
            for (filter, sub) in &s.subscriptions {
                let (options, id) = (sub.options.encode(true), sub.id.unwrap_or(0));
                out.record(Record::Subscribe { client, filter, options, id });
            }
            for &packet_id in &s.flows().awaiting_release {
                out.record(Record::AwaitRelease { client, packet_id });
            }
            let f = s.flows();
            let inflight = f.inflight.iter().map(|o| (&o.delivery, Some((o.packet_id, o.stage))));
            for (d, sent) in inflight.chain(f.queue.iter().map(|d| (d, None))).filter(|(d, _)| d.did != 0) {
                let mid = message(&mut out, &d.message);
                out.write_enqueue(client, mid, d);
                if let Some((packet_id, stage)) = sent {
                    out.record(Record::Sent { did: d.did, packet_id });
                    if stage == Stage::Released {
                        out.record(Record::Released { did: d.did });
                    }
                }
            }
        }
        out.take()
    }
}
