//! Where publishes go: the subscription trie (plain and shared subscriptions) and the retained
//! messages.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;

use super::message::Message;
use crate::codec::SubOptions;
use crate::topic::{self, TopicTree};

/// One subscription of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscription {
    /// Its options.
    pub options: SubOptions,
    /// Its subscription identifier (MQTT 5).
    pub id: Option<u32>,
}

/// The members of one shared subscription (`$share/group/filter`), served in turn.
#[derive(Debug, Default)]
pub struct SharedGroup {
    /// (session index, subscription), in joining order.
    members: Vec<(usize, Subscription)>,
    /// The member that gets the next message.
    next: Cell<usize>,
}

impl SharedGroup {
    /// Picks the member for the next message: in turn, preferring members `online` says are
    /// connected, so an offline member does not collect the group's messages.
    pub fn pick(&self, online: impl Fn(usize) -> bool) -> Option<(usize, Subscription)> {
        let n = self.members.len();
        let start = self.next.get();
        let chosen = (0..n).map(|k| (start + k) % n).find(|&i| online(self.members[i].0)).or(if n > 0 {
            Some(start % n)
        } else {
            None
        })?;
        self.next.set(chosen + 1);
        Some(self.members[chosen])
    }
}

/// Subscriptions and retained messages.
#[derive(Debug, Default)]
pub struct Router {
    /// Plain subscriptions, keyed by session index.
    plain: TopicTree<usize, Subscription>,
    /// Shared subscriptions, keyed by group name.
    shared: TopicTree<Arc<str>, SharedGroup>,
    /// Retained messages by topic.
    retained: HashMap<Arc<str>, Arc<Message>>,
}

impl Router {
    /// Adds or replaces a subscription; returns whether it existed. `filter` is as the client
    /// wrote it and already validated.
    pub fn subscribe(&mut self, session: usize, filter: &str, sub: Subscription) -> bool {
        match topic::parse_shared(filter) {
            Ok(Some(shared)) => {
                let group: Arc<str> = shared.group.into();
                if let Some(g) = self.shared.get_mut(shared.filter, &group) {
                    if let Some(m) = g.members.iter_mut().find(|m| m.0 == session) {
                        m.1 = sub;
                        return true;
                    }
                    g.members.push((session, sub));
                    return false;
                }
                let g = SharedGroup { members: vec![(session, sub)], next: Cell::new(0) };
                self.shared.insert(shared.filter, group, g);
                false
            }
            _ => self.plain.insert(filter, session, sub).is_some(),
        }
    }

    /// Removes a subscription; returns whether it existed.
    pub fn unsubscribe(&mut self, session: usize, filter: &str) -> bool {
        match topic::parse_shared(filter) {
            Ok(Some(shared)) => {
                let group: Arc<str> = shared.group.into();
                let Some(mut g) = self.shared.remove(shared.filter, &group) else { return false };
                let before = g.members.len();
                g.members.retain(|m| m.0 != session);
                let existed = g.members.len() != before;
                if !g.members.is_empty() {
                    self.shared.insert(shared.filter, group, g);
                }
                existed
            }
            _ => self.plain.remove(filter, &session).is_some(),
        }
    }

    /// Calls `f(session, subscription)` for each plain subscription matching `topic`.
    pub fn plain_matches(&self, topic: &str, f: impl FnMut(&usize, &Subscription)) {
        self.plain.for_each_match(topic, f);
    }

    /// Calls `f(group)` for each shared subscription group matching `topic`.
    pub fn shared_matches(&self, topic: &str, mut f: impl FnMut(&SharedGroup)) {
        self.shared.for_each_match(topic, |_, group| f(group));
    }

    /// Stores (or, for an empty payload, clears) the retained message of its topic.
    pub fn retain(&mut self, message: &Arc<Message>) {
        if message.payload.is_empty() {
            self.retained.remove(&message.topic);
        } else {
            self.retained.insert(message.topic.clone(), message.clone());
        }
    }

    /// The retained messages matching `filter` (a plain filter).
    pub fn retained_matching<'a>(&'a self, filter: &'a str) -> impl Iterator<Item = &'a Arc<Message>> + 'a {
        self.retained.values().filter(move |m| topic::matches(filter, &m.topic))
    }

    /// Drops retained messages that expired by `now`.
    pub fn expire_retained(&mut self, now: std::time::Instant) {
        self.retained.retain(|_, m| !m.expired(now));
    }

    /// Every retained message.
    pub fn retained(&self) -> impl Iterator<Item = &Arc<Message>> {
        self.retained.values()
    }

    /// How many retained messages are held.
    pub fn retained_count(&self) -> usize {
        self.retained.len()
    }

    /// How many subscriptions are held (shared groups count their members).
    pub fn subscription_count(&self) -> usize {
        let mut shared = 0;
        self.shared.for_each(|_, _, g| shared += g.members.len());
        self.plain.len() + shared
    }
}
