//! The queue manager's schedule (sans I/O): which recipients of which spooled messages are
//! due, grouped by destination domain; retries with exponential backoff after a transient
//! failure; giving up when a message outlives its lifetime; a delay warning, once, after
//! `warn_after`; and which messages are finished (every recipient delivered or failed for
//! good), with their failures, for the bounce.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::client::Failure;
use crate::spool::MessageId;

/// Retry timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// The wait after the first transient failure (Postfix's `minimal_backoff_time` is 5 min).
    pub first_retry: Duration,
    /// The longest wait between attempts (doubling up to it).
    pub max_retry: Duration,
    /// How long a message is tried before its remaining recipients fail (RFC 5321 4.5.4.1
    /// suggests at least 4-5 days).
    pub lifetime: Duration,
    /// When to warn the sender that delivery is delayed (once); `None`: never.
    pub warn_after: Option<Duration>,
}

impl Default for Schedule {
    fn default() -> Schedule {
        Schedule {
            first_retry: Duration::from_secs(300),
            max_retry: Duration::from_secs(4000),
            lifetime: Duration::from_secs(5 * 86_400),
            warn_after: Some(Duration::from_secs(4 * 3600)),
        }
    }
}

/// Where a recipient stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Pending,
    InFlight,
    Delivered,
    Failed(Failure),
}

#[derive(Debug)]
struct Entry {
    from: String,
    recipients: Vec<(String, State)>,
    arrived: Instant,
    attempts: u32,
    next_try: Instant,
    last_failure: Option<Failure>,
    warned: bool,
}

/// Recipients due for one destination: per message, the indexes of its recipients there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The destination domain (lowercase).
    pub domain: String,
    /// The messages and their recipients for it.
    pub messages: Vec<(MessageId, Vec<usize>)>,
}

/// A message every recipient of which is dealt with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The message.
    pub id: MessageId,
    /// Its sender (empty: a bounce, which is never bounced).
    pub from: String,
    /// The recipients that failed, and why.
    pub failed: Vec<(String, Failure)>,
}

/// A message whose delivery is late: the sender is told, once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delayed {
    /// The message.
    pub id: MessageId,
    /// Its sender.
    pub from: String,
    /// The recipients still waiting, and the last failure.
    pub waiting: Vec<String>,
    /// Why, as last heard.
    pub last: Option<Failure>,
}

/// The schedule of every message not yet done.
#[derive(Debug, Default)]
pub struct Queue {
    schedule: Schedule,
    entries: BTreeMap<MessageId, Entry>,
}

/// The domain of `address` (lowercase); `Postmaster` alone has none.
pub fn domain_of(address: &str) -> String {
    address.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default()
}

impl Queue {
    /// An empty queue with `schedule`.
    pub fn new(schedule: Schedule) -> Queue {
        Queue { schedule, entries: BTreeMap::new() }
    }

    /// Takes up message `id` from `from` to `recipients` (`done`: those already dealt
    /// with, from the spool), which arrived at `arrived`; it is due at once.
    pub fn add(
        &mut self,
        now: Instant,
        id: MessageId,
        from: &str,
        recipients: &[String],
        done: &[bool],
        arrived: Instant,
    ) {
        let recipients = recipients
            .iter()
            .enumerate()
            .map(|(i, r)| {
                (r.clone(), if done.get(i) == Some(&true) { State::Delivered } else { State::Pending })
            })
            .collect();
        let entry = Entry {
            from: from.to_string(),
            recipients,
            arrived,
            attempts: 0,
            next_try: now,
            last_failure: None,
            warned: false,
        };
        self.entries.insert(id, entry);
    }

    /// How many messages are queued.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The recipients due at `now`, grouped by destination, marked in flight.
    pub fn due(&mut self, now: Instant) -> Vec<Batch> {
        let mut by_domain: BTreeMap<String, Vec<(MessageId, Vec<usize>)>> = BTreeMap::new();
        for (&id, e) in self.entries.iter_mut().filter(|(_, e)| e.next_try <= now) {
            let mut per_domain: BTreeMap<String, Vec<usize>> = BTreeMap::new();
            for (i, (address, state)) in e.recipients.iter_mut().enumerate() {
                if *state == State::Pending {
                    *state = State::InFlight;
                    per_domain.entry(domain_of(address)).or_default().push(i);
                }
            }
            for (domain, indexes) in per_domain {
                by_domain.entry(domain).or_default().push((id, indexes));
            }
        }
        by_domain.into_iter().map(|(domain, messages)| Batch { domain, messages }).collect()
    }

    /// Recipient `index` of `id` was delivered.
    pub fn delivered(&mut self, id: MessageId, index: usize) {
        if let Some((_, state)) = self.entries.get_mut(&id).and_then(|e| e.recipients.get_mut(index)) {
            *state = State::Delivered;
        }
    }

    /// Recipient `index` of `id` was not tried after all (no connection free): due again at
    /// once.
    pub fn release(&mut self, id: MessageId, index: usize) {
        if let Some((_, state)) = self.entries.get_mut(&id).and_then(|e| e.recipients.get_mut(index)) {
            *state = State::Pending;
        }
    }

    /// Recipient `index` of `id` failed: for good if `failure.permanent`, else it is tried
    /// again after the backoff (the message's next try moves; its attempts count up once per
    /// failed attempt, however many recipients it had).
    pub fn failed(&mut self, now: Instant, id: MessageId, index: usize, failure: Failure) {
        let Some(e) = self.entries.get_mut(&id) else { return };
        let Some((_, state)) = e.recipients.get_mut(index) else { return };
        if failure.permanent {
            *state = State::Failed(failure);
            return;
        }
        *state = State::Pending;
        if e.next_try <= now {
            let backoff = self
                .schedule
                .first_retry
                .saturating_mul(1 << e.attempts.min(20))
                .min(self.schedule.max_retry);
            e.attempts += 1;
            e.next_try = now + backoff;
        }
        e.last_failure = Some(failure);
    }

    /// Makes every message due now (an operator's flush); how many there are.
    pub fn flush(&mut self, now: Instant) -> usize {
        for e in self.entries.values_mut() {
            e.next_try = e.next_try.min(now);
        }
        self.entries.len()
    }

    /// Forgets a message (an operator deleted it): nothing more is tried or reported for
    /// it; a delivery in flight finishes unheeded.
    pub fn remove(&mut self, id: MessageId) -> bool {
        self.entries.remove(&id).is_some()
    }

    /// Gives up on recipients whose message outlived its lifetime (they fail for good), and
    /// returns the messages late enough for a delay warning (each once).
    pub fn expire(&mut self, now: Instant) -> Vec<Delayed> {
        let mut delayed = Vec::new();
        for (&id, e) in self.entries.iter_mut() {
            let age = now.saturating_duration_since(e.arrived);
            if age >= self.schedule.lifetime {
                let why = e
                    .last_failure
                    .as_ref()
                    .map(|f| f.why.clone())
                    .unwrap_or_else(|| "no attempt succeeded".into());
                let days = self.schedule.lifetime.as_secs_f64() / 86_400.0;
                for (_, state) in e.recipients.iter_mut().filter(|(_, s)| *s == State::Pending) {
                    *state =
                        State::Failed(Failure::permanent(&format!("gave up after {days:.1} days: {why}")));
                }
            } else if !e.warned
                && self.schedule.warn_after.is_some_and(|w| age >= w)
                && e.last_failure.is_some()
            {
                e.warned = true;
                let waiting = e
                    .recipients
                    .iter()
                    .filter(|(_, s)| *s == State::Pending)
                    .map(|(a, _)| a.clone())
                    .collect();
                delayed.push(Delayed { id, from: e.from.clone(), waiting, last: e.last_failure.clone() });
            }
        }
        delayed
    }

    /// Takes the messages every recipient of which is dealt with.
    pub fn finished(&mut self) -> Vec<Finished> {
        let done: Vec<MessageId> = (self.entries.iter())
            .filter(|(_, e)| {
                e.recipients.iter().all(|(_, s)| matches!(s, State::Delivered | State::Failed(_)))
            })
            .map(|(&id, _)| id)
            .collect();
        done.into_iter()
            .map(|id| {
                let e = self.entries.remove(&id).expect("listed above");
                let failed = (e.recipients.into_iter())
                    .filter_map(|(a, s)| match s {
                        State::Failed(f) => Some((a, f)),
                        _ => None,
                    })
                    .collect();
                Finished { id, from: e.from, failed }
            })
            .collect()
    }

    /// When something is next due (a retry, an expiry, a warning).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let retries = self
            .entries
            .values()
            .filter(|e| e.recipients.iter().any(|(_, s)| *s == State::Pending))
            .map(|e| e.next_try);
        let expiries = self.entries.values().map(|e| e.arrived + self.schedule.lifetime);
        let warnings = (self.entries.values())
            .filter(|e| !e.warned)
            .filter_map(|e| self.schedule.warn_after.map(|w| e.arrived + w));
        retries.chain(expiries).chain(warnings).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn recipients_are_grouped_by_domain_and_retried_with_backoff() {
        let now = Instant::now();
        let mut q = Queue::new(Schedule::default());
        q.add(now, MessageId(1), "a@src.test", &addrs(&["x@one.test", "y@TWO.test", "z@one.test"]), &[], now);
        q.add(now, MessageId(2), "a@src.test", &addrs(&["w@two.test", "done@two.test"]), &[false, true], now);
        let due = q.due(now);
        assert_eq!(
            due,
            [
                Batch { domain: "one.test".into(), messages: vec![(MessageId(1), vec![0, 2])] },
                Batch {
                    domain: "two.test".into(),
                    messages: vec![(MessageId(1), vec![1]), (MessageId(2), vec![0])]
                },
            ]
        );
        assert!(q.due(now).is_empty(), "in flight: not due twice");
        q.delivered(MessageId(1), 0);
        q.delivered(MessageId(1), 2);
        q.failed(now, MessageId(1), 1, Failure::transient("451 later"));
        q.failed(now, MessageId(2), 0, Failure::permanent("550 no"));
        let finished = q.finished();
        assert_eq!(finished.len(), 1);
        assert_eq!((finished[0].id, finished[0].failed[0].0.as_str()), (MessageId(2), "w@two.test"));
        // Retried after 5 minutes, then 10, then 20...
        assert_eq!(q.poll_timeout(), Some(now + Duration::from_secs(300)));
        assert!(q.due(now + Duration::from_secs(299)).is_empty());
        let later = now + Duration::from_secs(300);
        assert_eq!(q.due(later).len(), 1);
        q.failed(later, MessageId(1), 1, Failure::transient("451 later"));
        assert_eq!(q.poll_timeout(), Some(later + Duration::from_secs(600)));
    }

    #[test]
    fn a_warning_once_then_giving_up_at_the_lifetime() {
        let now = Instant::now();
        let schedule = Schedule {
            warn_after: Some(Duration::from_secs(3600)),
            lifetime: Duration::from_secs(7200),
            ..Schedule::default()
        };
        let mut q = Queue::new(schedule);
        q.add(now, MessageId(7), "a@src.test", &addrs(&["x@slow.test"]), &[], now);
        q.due(now);
        q.failed(now, MessageId(7), 0, Failure::transient("connection refused"));
        assert!(q.expire(now + Duration::from_secs(3599)).is_empty());
        let warned = q.expire(now + Duration::from_secs(3600));
        assert_eq!(warned.len(), 1);
        assert_eq!(warned[0].waiting, ["x@slow.test"]);
        assert!(q.expire(now + Duration::from_secs(3700)).is_empty(), "once");
        q.expire(now + Duration::from_secs(7200));
        let finished = q.finished();
        assert!(finished[0].failed[0].1.permanent);
        assert!(
            finished[0].failed[0].1.why.contains("gave up after")
                && finished[0].failed[0].1.why.contains("connection refused")
        );
        assert!(q.is_empty());
    }
}
