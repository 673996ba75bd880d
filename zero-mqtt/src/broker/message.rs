//! Application messages as the broker holds them, and their PUBLISH encoding per subscriber.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use crate::codec::wire::{varint_len, write_bytes, write_varint};
use crate::codec::{Properties, Protocol, Publish, QoS};

/// Property identifiers the broker writes itself when forwarding.
const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
const TOPIC_ALIAS: u8 = 0x23;

/// How a PUBLISH names its topic to one connection (MQTT 5 topic aliases, section
/// 3.3.2.3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicName {
    /// The topic name only.
    Full,
    /// The topic name and an alias the client is to remember for it.
    Assign(u16),
    /// An empty topic name and an alias the client already knows.
    Alias(u16),
}

impl TopicName {
    /// The alias it carries, if any.
    fn alias(self) -> Option<u16> {
        match self {
            TopicName::Full => None,
            TopicName::Assign(a) | TopicName::Alias(a) => Some(a),
        }
    }
}

/// A published message, shared by every subscriber it goes to.
#[derive(Debug)]
pub struct Message {
    /// The topic name.
    pub topic: Arc<str>,
    /// The payload (shared by the copies other shards make, see [`Message::for_journal`]).
    pub payload: Arc<[u8]>,
    /// The QoS it was published with.
    pub qos: QoS,
    /// Whether it was published retained.
    pub retain: bool,
    /// The properties forwarded unchanged (payload format, content type, response topic,
    /// correlation data, user properties), encoded as a property block without its length.
    pub properties: Box<[u8]>,
    /// When it expires (from Message Expiry Interval).
    pub expires: Option<Instant>,
    /// The session that published it (for No Local); `None` for wills of ended sessions
    /// and broker messages.
    pub origin: Option<u64>,
    /// Its id in the journal of the shard that made it, once its body is written there; 0
    /// before. Ids are per journal, so a shard never journals a message another shard made:
    /// it journals its own copy ([`Message::for_journal`]).
    pub journal_id: AtomicU64,
}

impl Message {
    /// The message a PUBLISH (or a will) carries. `topic` is the resolved name (after any
    /// topic alias).
    pub fn from_publish(p: &Publish<'_>, topic: Arc<str>, now: Instant, origin: Option<u64>) -> Message {
        Message::new(topic, p.payload, p.qos, p.retain, &p.properties, now, origin)
    }

    /// A message from its parts; only the forwarded properties of `props` are kept.
    pub fn new(
        topic: Arc<str>,
        payload: &[u8],
        qos: QoS,
        retain: bool,
        props: &Properties<'_>,
        now: Instant,
        origin: Option<u64>,
    ) -> Message {
        let forwarded = Properties {
            payload_format_indicator: props.payload_format_indicator,
            content_type: props.content_type,
            response_topic: props.response_topic,
            correlation_data: props.correlation_data,
            user_properties: props.user_properties,
            ..Properties::default()
        };
        let mut properties = Vec::new();
        forwarded.encode_entries(&mut properties);
        let expires =
            props.message_expiry_interval.map(|s| now + std::time::Duration::from_secs(u64::from(s)));
        Message {
            topic,
            payload: payload.into(),
            qos,
            retain,
            properties: properties.into(),
            expires,
            origin,
            journal_id: AtomicU64::new(0),
        }
    }

    /// A copy of a message another shard made, for this shard's journal to give its own id
    /// (the payload is shared, not copied).
    pub fn for_journal(&self) -> Message {
        Message {
            topic: self.topic.clone(),
            payload: self.payload.clone(),
            qos: self.qos,
            retain: self.retain,
            properties: self.properties.clone(),
            expires: self.expires,
            origin: self.origin,
            journal_id: AtomicU64::new(0),
        }
    }

    /// Whether the message expired by `now`.
    pub fn expired(&self, now: Instant) -> bool {
        self.expires.is_some_and(|e| e <= now)
    }

    /// The Message Expiry Interval left at `now`, in whole seconds (at least 1 while alive).
    fn expiry_left(&self, now: Instant) -> Option<u32> {
        self.expires.map(|e| {
            let left = e.saturating_duration_since(now);
            (left.as_secs() + u64::from(left.subsec_nanos() > 0)).clamp(1, u64::from(u32::MAX)) as u32
        })
    }
}

/// How one subscriber receives a message.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The message.
    pub message: Arc<Message>,
    /// The QoS it is delivered with (the lower of the message's and the subscription's).
    pub qos: QoS,
    /// The RETAIN flag to send.
    pub retain: bool,
    /// The subscription identifiers of the matching subscriptions (MQTT 5).
    pub subscription_ids: Vec<u32>,
    /// Its id in the journal (QoS 1/2 to a persistent session); 0 when not journaled.
    pub did: u64,
}

impl Delivery {
    /// Encoded length of the PUBLISH for `protocol`, its topic named as `name` (MQTT 5).
    pub fn encoded_len(&self, protocol: Protocol, name: TopicName) -> usize {
        let body = self.body_len(protocol, name);
        1 + varint_len(body as u32) + body
    }

    fn props_len(&self, name: TopicName) -> usize {
        let expiry = if self.message.expires.is_some() { 5 } else { 0 };
        let alias = if name == TopicName::Full { 0 } else { 3 };
        let ids: usize = self.subscription_ids.iter().map(|&id| 1 + varint_len(id)).sum();
        expiry + alias + ids + self.message.properties.len()
    }

    fn body_len(&self, protocol: Protocol, name: TopicName) -> usize {
        let id = if self.qos == QoS::AtMostOnce { 0 } else { 2 };
        let props = if protocol.is_v5() {
            let len = self.props_len(name);
            varint_len(len as u32) + len
        } else {
            0
        };
        let topic = if matches!(name, TopicName::Alias(_)) { 0 } else { self.message.topic.len() };
        2 + topic + id + props + self.message.payload.len()
    }

    /// Appends the PUBLISH for this delivery, its topic named as `name` (anything but
    /// [`TopicName::Full`] needs MQTT 5): the stored property block is copied as is, with
    /// the remaining expiry, the topic alias and the subscription identifiers added.
    pub fn encode(
        &self,
        protocol: Protocol,
        name: TopicName,
        packet_id: u16,
        dup: bool,
        now: Instant,
        out: &mut Vec<u8>,
    ) {
        let m = &self.message;
        out.push(0x30 | u8::from(dup) << 3 | (self.qos as u8) << 1 | u8::from(self.retain));
        write_varint(out, self.body_len(protocol, name) as u32);
        match name {
            TopicName::Alias(_) => write_bytes(out, b""),
            _ => write_bytes(out, m.topic.as_bytes()),
        }
        if self.qos != QoS::AtMostOnce {
            out.extend_from_slice(&packet_id.to_be_bytes());
        }
        if protocol.is_v5() {
            write_varint(out, self.props_len(name) as u32);
            if let Some(left) = m.expiry_left(now) {
                out.push(MESSAGE_EXPIRY_INTERVAL);
                out.extend_from_slice(&left.to_be_bytes());
            }
            if let Some(alias) = name.alias() {
                out.push(TOPIC_ALIAS);
                out.extend_from_slice(&alias.to_be_bytes());
            }
            out.extend_from_slice(&m.properties);
            for &id in &self.subscription_ids {
                out.push(SUBSCRIPTION_IDENTIFIER);
                write_varint(out, id);
            }
        }
        out.extend_from_slice(&m.payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode, Packet, UserProperties};

    #[test]
    fn forwarded_publish_keeps_properties_and_adds_ids() {
        let now = Instant::now();
        let users = [("a", "1")];
        let props = Properties {
            message_expiry_interval: Some(30),
            content_type: Some("json"),
            response_topic: Some("reply/to"),
            correlation_data: Some(b"c"),
            user_properties: UserProperties::List(&users),
            topic_alias: Some(3),
            ..Properties::default()
        };
        let m = Message::new("t/1".into(), b"hi", QoS::ExactlyOnce, true, &props, now, Some(1));
        let d = Delivery {
            message: Arc::new(m),
            qos: QoS::AtLeastOnce,
            retain: false,
            subscription_ids: vec![7, 500],
            did: 0,
        };
        let mut out = Vec::new();
        d.encode(
            Protocol::V5,
            TopicName::Full,
            12,
            true,
            now + std::time::Duration::from_millis(10_500),
            &mut out,
        );
        assert_eq!(out.len(), d.encoded_len(Protocol::V5, TopicName::Full));
        let (Packet::Publish(p), used) = decode(&out, Protocol::V5, 1 << 20).unwrap().unwrap() else {
            panic!()
        };
        assert_eq!(used, out.len());
        assert_eq!(
            (p.topic, p.packet_id, p.dup, p.qos, p.retain, p.payload),
            ("t/1", 12, true, QoS::AtLeastOnce, false, &b"hi"[..])
        );
        assert_eq!(p.properties.message_expiry_interval, Some(20), "19.5 s left rounds up");
        assert_eq!(p.properties.content_type, Some("json"));
        assert_eq!(p.properties.response_topic, Some("reply/to"));
        assert_eq!(p.properties.topic_alias, None, "aliases are per connection");
        assert_eq!(p.properties.subscription_ids.iter().collect::<Vec<_>>(), [7, 500]);
        assert_eq!(p.properties.user_properties.iter().collect::<Vec<_>>(), users);
        let mut v3 = Vec::new();
        d.encode(Protocol::V311, TopicName::Full, 12, false, now, &mut v3);
        assert_eq!(v3.len(), 2 + 2 + 3 + 2 + 2);
    }

    #[test]
    fn a_topic_alias_is_assigned_with_the_name_then_used_without_it() {
        let now = Instant::now();
        let m =
            Message::new("sensors/a".into(), b"1", QoS::AtMostOnce, false, &Properties::default(), now, None);
        let d = Delivery {
            message: Arc::new(m),
            qos: QoS::AtMostOnce,
            retain: false,
            subscription_ids: vec![],
            did: 0,
        };
        for (name, topic) in [(TopicName::Assign(7), "sensors/a"), (TopicName::Alias(7), "")] {
            let mut out = Vec::new();
            d.encode(Protocol::V5, name, 0, false, now, &mut out);
            assert_eq!(out.len(), d.encoded_len(Protocol::V5, name));
            let (Packet::Publish(p), _) = decode(&out, Protocol::V5, 1 << 20).unwrap().unwrap() else {
                panic!()
            };
            assert_eq!((p.topic, p.properties.topic_alias, p.payload), (topic, Some(7), &b"1"[..]));
        }
    }
}
