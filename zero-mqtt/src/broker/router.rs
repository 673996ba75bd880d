//! Where publishes go: this shard's subscriptions (plain and shared), what the other shards of
//! a cluster want, and the retained messages.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;

use super::cluster::{Interest, Place};
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

/// This shard's members of one shared subscription (`$share/group/filter`), served in turn.
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

/// A shared group across the cluster: how many members each shard has. The publishing shard
/// picks a shard in proportion (that shard then picks the member), so every member gets its
/// share wherever it is connected.
#[derive(Debug)]
struct GroupShards {
    /// The subscription as written (`$share/group/filter`): the group's name between shards.
    full: Arc<str>,
    /// (shard, members there), members > 0.
    weights: Vec<(usize, u32)>,
    /// Counts messages, to take the shards in turn by weight.
    next: Cell<u32>,
}

impl GroupShards {
    fn pick(&self) -> Option<usize> {
        let total: u32 = self.weights.iter().map(|w| w.1).sum();
        let n = self.next.get();
        self.next.set(n.wrapping_add(1));
        let mut k = n.checked_rem(total)?;
        for &(shard, w) in &self.weights {
            if k < w {
                return Some(shard);
            }
            k -= w;
        }
        None
    }
}

/// Where one publish goes beyond this shard.
#[derive(Debug, Default)]
pub struct Remote {
    /// The shards to forward it to, a bit each.
    pub shards: u64,
    /// The shared groups (as written) each of those shards serves for it.
    pub groups: Vec<(usize, Arc<str>)>,
}

/// Subscriptions, the cluster's interest, and retained messages.
#[derive(Debug, Default)]
pub struct Router {
    place: Place,
    /// Plain subscriptions, keyed by session index.
    plain: TopicTree<usize, Subscription>,
    /// Shared subscriptions' local members, by the filter as written.
    shared: HashMap<Arc<str>, SharedGroup>,
    /// Every shard's shared groups (this one's included), by group name at the inner filter:
    /// the one table publishes match shared subscriptions in.
    groups: TopicTree<Arc<str>, GroupShards>,
    /// The other shards' plain filters, keyed by shard.
    remote: TopicTree<usize, ()>,
    /// Changes of this shard's interest, for the other shards.
    announcements: Vec<Interest>,
    /// Retained messages by topic.
    retained: HashMap<Arc<str>, Arc<Message>>,
}

impl Router {
    /// A router for the shard at `place`.
    pub fn new(place: Place) -> Router {
        Router { place, ..Router::default() }
    }

    /// Adds or replaces a subscription; returns whether it existed. `filter` is as the client
    /// wrote it and already validated.
    pub fn subscribe(&mut self, session: usize, filter: &str, sub: Subscription) -> bool {
        match topic::parse_shared(filter) {
            Ok(Some(_)) => {
                let g = self.shared.entry(filter.into()).or_default();
                if let Some(m) = g.members.iter_mut().find(|m| m.0 == session) {
                    m.1 = sub;
                    return true;
                }
                g.members.push((session, sub));
                let weight = g.members.len() as u32;
                self.own_group_changed(filter, weight);
                false
            }
            _ => {
                let existed = self.plain.insert(filter, session, sub).is_some();
                if !existed && self.place.is_cluster() && self.plain.keys(filter) == 1 {
                    // The filter's first subscriber here.
                    self.announcements.push(Interest { filter: filter.into(), weight: 1 });
                }
                existed
            }
        }
    }

    /// Removes a subscription; returns whether it existed.
    pub fn unsubscribe(&mut self, session: usize, filter: &str) -> bool {
        match topic::parse_shared(filter) {
            Ok(Some(_)) => {
                let Some(g) = self.shared.get_mut(filter) else { return false };
                let before = g.members.len();
                g.members.retain(|m| m.0 != session);
                let weight = g.members.len();
                if weight == 0 {
                    self.shared.remove(filter);
                }
                if weight == before {
                    return false;
                }
                self.own_group_changed(filter, weight as u32);
                true
            }
            _ => {
                let existed = self.plain.remove(filter, &session).is_some();
                if existed && self.place.is_cluster() && self.plain.keys(filter) == 0 {
                    // Its last subscriber here left.
                    self.announcements.push(Interest { filter: filter.into(), weight: 0 });
                }
                existed
            }
        }
    }

    fn own_group_changed(&mut self, full: &str, weight: u32) {
        let interest = Interest { filter: full.into(), weight };
        self.apply(self.place.shard, &interest);
        if self.place.is_cluster() {
            self.announcements.push(interest);
        }
    }

    /// Takes the interest changes the other shards have not heard of yet.
    pub fn take_announcements(&mut self) -> Vec<Interest> {
        std::mem::take(&mut self.announcements)
    }

    /// Records what `shard` wants now: a plain filter (weight 1) or not (0), or how many
    /// members it has in a shared group.
    pub fn apply(&mut self, shard: usize, interest: &Interest) {
        let Ok(Some(shared)) = topic::parse_shared(&interest.filter) else {
            match interest.weight {
                0 => drop(self.remote.remove(&interest.filter, &shard)),
                _ => drop(self.remote.insert(&interest.filter, shard, ())),
            }
            return;
        };
        let group: Arc<str> = shared.group.into();
        let g = match self.groups.get_mut(shared.filter, &group) {
            Some(g) => g,
            None if interest.weight == 0 => return,
            None => {
                let g =
                    GroupShards { full: interest.filter.clone(), weights: Vec::new(), next: Cell::new(0) };
                self.groups.insert(shared.filter, group.clone(), g);
                self.groups.get_mut(shared.filter, &group).expect("just inserted")
            }
        };
        g.weights.retain(|w| w.0 != shard);
        if interest.weight > 0 {
            g.weights.push((shard, interest.weight));
        } else if g.weights.is_empty() {
            self.groups.remove(shared.filter, &group);
        }
    }

    /// Finds where a publish to `topic` goes: this shard's subscriptions into `local`
    /// (session, subscription), the other shards into `remote`. Each matching shared group
    /// gets one member: here (preferring members `online` says are connected) or on the shard
    /// picked for it.
    pub fn route(
        &self,
        topic: &str,
        online: impl Fn(usize) -> bool,
        local: &mut Vec<(usize, Subscription)>,
        remote: &mut Remote,
    ) {
        self.plain.for_each_match(topic, |&s, sub| local.push((s, *sub)));
        self.remote.for_each_match(topic, |&shard, ()| remote.shards |= 1 << shard);
        self.groups.for_each_match(topic, |_, g| match g.pick() {
            Some(shard) if shard == self.place.shard => local.extend(self.pick_member(&g.full, &online)),
            Some(shard) => {
                remote.shards |= 1 << shard;
                remote.groups.push((shard, g.full.clone()));
            }
            None => {}
        });
    }

    /// [`Router::route`] for a publish another shard forwarded: plain subscriptions here, and
    /// a member of each shared group it assigned to this shard.
    pub fn route_forwarded(
        &self,
        topic: &str,
        groups: &[Arc<str>],
        online: impl Fn(usize) -> bool,
        local: &mut Vec<(usize, Subscription)>,
    ) {
        self.plain.for_each_match(topic, |&s, sub| local.push((s, *sub)));
        local.extend(groups.iter().filter_map(|full| self.pick_member(full, &online)));
    }

    fn pick_member(&self, full: &str, online: impl Fn(usize) -> bool) -> Option<(usize, Subscription)> {
        self.shared.get(full).and_then(|g| g.pick(online))
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

    /// How many subscriptions this shard holds (shared groups count their members).
    pub fn subscription_count(&self) -> usize {
        self.plain.len() + self.shared.values().map(|g| g.members.len()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::QoS;

    fn sub() -> Subscription {
        Subscription { options: SubOptions::qos(QoS::AtMostOnce), id: None }
    }

    fn route(r: &Router, topic: &str) -> (Vec<usize>, Remote) {
        let (mut local, mut remote) = (Vec::new(), Remote::default());
        r.route(topic, |_| true, &mut local, &mut remote);
        (local.into_iter().map(|m| m.0).collect(), remote)
    }

    #[test]
    fn interest_is_announced_once_per_filter_and_routes_to_the_shards_that_want_it() {
        let mut a = Router::new(Place { shard: 0, shards: 3 });
        a.subscribe(1, "s/+", sub());
        a.subscribe(2, "s/+", sub());
        let said: Vec<_> = a.take_announcements().into_iter().map(|i| (i.filter, i.weight)).collect();
        assert_eq!(said, [("s/+".into(), 1)], "the first subscriber announces the filter");
        a.unsubscribe(1, "s/+");
        assert!(a.take_announcements().is_empty());
        a.unsubscribe(2, "s/+");
        assert_eq!(a.take_announcements()[0].weight, 0, "the last one withdraws it");

        let mut b = Router::new(Place { shard: 1, shards: 3 });
        b.apply(2, &Interest { filter: "s/#".into(), weight: 1 });
        b.apply(0, &Interest { filter: "other".into(), weight: 1 });
        let (local, remote) = route(&b, "s/x");
        assert!(local.is_empty());
        assert_eq!(remote.shards, 1 << 2);
        b.apply(2, &Interest { filter: "s/#".into(), weight: 0 });
        assert_eq!(route(&b, "s/x").1.shards, 0);
    }

    #[test]
    fn shared_groups_are_served_across_shards_in_proportion_to_their_members() {
        let mut r = Router::new(Place { shard: 0, shards: 2 });
        r.subscribe(7, "$share/g/job/+", sub());
        r.apply(1, &Interest { filter: "$share/g/job/+".into(), weight: 3 });
        let (mut here, mut there) = (0, 0);
        for _ in 0..400 {
            let (local, remote) = route(&r, "job/1");
            match (local.as_slice(), remote.groups.as_slice()) {
                ([7], []) => here += 1,
                ([], [(1, full)]) if &**full == "$share/g/job/+" => there += 1,
                other => panic!("one member per message: {other:?}"),
            }
        }
        assert_eq!((here, there), (100, 300));
        let mut local = Vec::new();
        r.route_forwarded("job/1", &["$share/g/job/+".into()], |_| true, &mut local);
        assert_eq!(local.iter().map(|m| m.0).collect::<Vec<_>>(), [7], "a forwarded group is served here");
    }
}
