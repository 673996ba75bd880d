//! MQTT 5 properties (section 2.2.2): one struct for every property, decoded by borrowing from
//! the packet, with the packet types each property may appear in.

use super::wire::{varint_len, write_bytes, write_varint, Reader, VARINT_MAX};
use super::{DecodeError, ReasonCode};

/// The place a property block belongs to; each property is allowed in some of them only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyContext {
    /// CONNECT's variable header.
    Connect,
    /// The will properties in CONNECT's payload.
    Will,
    /// CONNACK.
    ConnAck,
    /// PUBLISH.
    Publish,
    /// PUBACK, PUBREC, PUBREL and PUBCOMP.
    Ack,
    /// SUBSCRIBE.
    Subscribe,
    /// SUBACK.
    SubAck,
    /// UNSUBSCRIBE.
    Unsubscribe,
    /// UNSUBACK.
    UnsubAck,
    /// DISCONNECT.
    Disconnect,
    /// AUTH.
    Auth,
}

impl PropertyContext {
    fn bit(self) -> u16 {
        1 << self as u16
    }
}

mod id {
    pub const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
    pub const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
    pub const CONTENT_TYPE: u8 = 0x03;
    pub const RESPONSE_TOPIC: u8 = 0x08;
    pub const CORRELATION_DATA: u8 = 0x09;
    pub const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
    pub const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
    pub const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
    pub const SERVER_KEEP_ALIVE: u8 = 0x13;
    pub const AUTHENTICATION_METHOD: u8 = 0x15;
    pub const AUTHENTICATION_DATA: u8 = 0x16;
    pub const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
    pub const WILL_DELAY_INTERVAL: u8 = 0x18;
    pub const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
    pub const RESPONSE_INFORMATION: u8 = 0x1A;
    pub const SERVER_REFERENCE: u8 = 0x1C;
    pub const REASON_STRING: u8 = 0x1F;
    pub const RECEIVE_MAXIMUM: u8 = 0x21;
    pub const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
    pub const TOPIC_ALIAS: u8 = 0x23;
    pub const MAXIMUM_QOS: u8 = 0x24;
    pub const RETAIN_AVAILABLE: u8 = 0x25;
    pub const USER_PROPERTY: u8 = 0x26;
    pub const MAXIMUM_PACKET_SIZE: u8 = 0x27;
    pub const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
    pub const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
    pub const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;
}

/// The contexts property `id` may appear in, as a bit set (`PropertyContext::bit`); 0 for an
/// unknown identifier.
fn allowed_in(id: u8) -> u16 {
    use PropertyContext::*;
    let set = |contexts: &[PropertyContext]| contexts.iter().fold(0, |acc, c| acc | c.bit());
    match id {
        id::PAYLOAD_FORMAT_INDICATOR
        | id::MESSAGE_EXPIRY_INTERVAL
        | id::CONTENT_TYPE
        | id::RESPONSE_TOPIC
        | id::CORRELATION_DATA => set(&[Publish, Will]),
        id::SUBSCRIPTION_IDENTIFIER => set(&[Publish, Subscribe]),
        id::SESSION_EXPIRY_INTERVAL => set(&[Connect, ConnAck, Disconnect]),
        id::ASSIGNED_CLIENT_IDENTIFIER
        | id::SERVER_KEEP_ALIVE
        | id::RESPONSE_INFORMATION
        | id::MAXIMUM_QOS
        | id::RETAIN_AVAILABLE
        | id::WILDCARD_SUBSCRIPTION_AVAILABLE
        | id::SUBSCRIPTION_IDENTIFIER_AVAILABLE
        | id::SHARED_SUBSCRIPTION_AVAILABLE => set(&[ConnAck]),
        id::AUTHENTICATION_METHOD | id::AUTHENTICATION_DATA => set(&[Connect, ConnAck, Auth]),
        id::REQUEST_PROBLEM_INFORMATION | id::REQUEST_RESPONSE_INFORMATION => set(&[Connect]),
        id::WILL_DELAY_INTERVAL => set(&[Will]),
        id::SERVER_REFERENCE => set(&[ConnAck, Disconnect]),
        id::REASON_STRING => set(&[ConnAck, Ack, SubAck, UnsubAck, Disconnect, Auth]),
        id::RECEIVE_MAXIMUM | id::TOPIC_ALIAS_MAXIMUM | id::MAXIMUM_PACKET_SIZE => set(&[Connect, ConnAck]),
        id::TOPIC_ALIAS => set(&[Publish]),
        id::USER_PROPERTY => u16::MAX,
        _ => 0,
    }
}

/// User properties (name, value pairs, in order, repeats allowed).
#[derive(Clone, Copy)]
pub enum UserProperties<'a> {
    /// Inside a decoded property block (the whole block; other properties are skipped).
    Wire(&'a [u8]),
    /// A list to encode.
    List(&'a [(&'a str, &'a str)]),
}

impl<'a> UserProperties<'a> {
    /// The pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let (wire, list) = match *self {
            UserProperties::Wire(block) => (Some(entries(block)), None),
            UserProperties::List(list) => (None, Some(list.iter().copied())),
        };
        wire.into_iter()
            .flatten()
            .filter_map(|(id, value)| match value {
                Value::Pair(k, v) if id == id::USER_PROPERTY => Some((k, v)),
                _ => None,
            })
            .chain(list.into_iter().flatten())
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

impl Default for UserProperties<'_> {
    fn default() -> Self {
        UserProperties::List(&[])
    }
}

wire_list_traits!(UserProperties);

/// Subscription identifiers: one in SUBSCRIBE, one per matching subscription in PUBLISH.
#[derive(Clone, Copy)]
pub enum SubscriptionIds<'a> {
    /// Inside a decoded property block.
    Wire(&'a [u8]),
    /// A list to encode.
    List(&'a [u32]),
}

impl<'a> SubscriptionIds<'a> {
    /// The identifiers, in order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + 'a {
        let (wire, list) = match *self {
            SubscriptionIds::Wire(block) => (Some(entries(block)), None),
            SubscriptionIds::List(list) => (None, Some(list.iter().copied())),
        };
        wire.into_iter()
            .flatten()
            .filter_map(|(id, value)| match value {
                Value::Varint(v) if id == id::SUBSCRIPTION_IDENTIFIER => Some(v),
                _ => None,
            })
            .chain(list.into_iter().flatten())
    }

    /// The first identifier (SUBSCRIBE carries at most one).
    pub fn first(&self) -> Option<u32> {
        self.iter().next()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.first().is_none()
    }
}

impl Default for SubscriptionIds<'_> {
    fn default() -> Self {
        SubscriptionIds::List(&[])
    }
}

wire_list_traits!(SubscriptionIds);

/// Every MQTT 5 property; `None` (or empty) when absent. Which ones a packet may carry is
/// checked on decoding ([`PropertyContext`]).
#[allow(missing_docs)] // each field is the property of the same name in section 3
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Properties<'a> {
    pub payload_format_indicator: Option<u8>,
    pub message_expiry_interval: Option<u32>,
    pub content_type: Option<&'a str>,
    pub response_topic: Option<&'a str>,
    pub correlation_data: Option<&'a [u8]>,
    pub subscription_ids: SubscriptionIds<'a>,
    pub session_expiry_interval: Option<u32>,
    pub assigned_client_identifier: Option<&'a str>,
    pub server_keep_alive: Option<u16>,
    pub authentication_method: Option<&'a str>,
    pub authentication_data: Option<&'a [u8]>,
    pub request_problem_information: Option<u8>,
    pub will_delay_interval: Option<u32>,
    pub request_response_information: Option<u8>,
    pub response_information: Option<&'a str>,
    pub server_reference: Option<&'a str>,
    pub reason_string: Option<&'a str>,
    pub receive_maximum: Option<u16>,
    pub topic_alias_maximum: Option<u16>,
    pub topic_alias: Option<u16>,
    pub maximum_qos: Option<u8>,
    pub retain_available: Option<u8>,
    pub user_properties: UserProperties<'a>,
    pub maximum_packet_size: Option<u32>,
    pub wildcard_subscription_available: Option<u8>,
    pub subscription_identifier_available: Option<u8>,
    pub shared_subscription_available: Option<u8>,
}

/// A property's value as it lies on the wire.
#[derive(Clone, Copy)]
enum Value<'a> {
    Byte(u8),
    U16(u16),
    U32(u32),
    Varint(u32),
    Str(&'a str),
    Binary(&'a [u8]),
    Pair(&'a str, &'a str),
}

fn read_value<'a>(r: &mut Reader<'a>, id: u8) -> Result<Value<'a>, DecodeError> {
    const W: &str = "property value";
    Ok(match id {
        id::PAYLOAD_FORMAT_INDICATOR
        | id::REQUEST_PROBLEM_INFORMATION
        | id::REQUEST_RESPONSE_INFORMATION
        | id::MAXIMUM_QOS
        | id::RETAIN_AVAILABLE
        | id::WILDCARD_SUBSCRIPTION_AVAILABLE
        | id::SUBSCRIPTION_IDENTIFIER_AVAILABLE
        | id::SHARED_SUBSCRIPTION_AVAILABLE => Value::Byte(r.u8(W)?),
        id::SERVER_KEEP_ALIVE | id::RECEIVE_MAXIMUM | id::TOPIC_ALIAS_MAXIMUM | id::TOPIC_ALIAS => {
            Value::U16(r.u16(W)?)
        }
        id::MESSAGE_EXPIRY_INTERVAL
        | id::SESSION_EXPIRY_INTERVAL
        | id::WILL_DELAY_INTERVAL
        | id::MAXIMUM_PACKET_SIZE => Value::U32(r.u32(W)?),
        id::SUBSCRIPTION_IDENTIFIER => Value::Varint(r.varint(W)?),
        id::CORRELATION_DATA | id::AUTHENTICATION_DATA => Value::Binary(r.binary(W)?),
        id::USER_PROPERTY => Value::Pair(r.str("user property name")?, r.str("user property value")?),
        _ => Value::Str(r.str(W)?),
    })
}

/// The (identifier, value) entries of a property block; stops at the first malformed entry
/// (blocks are validated when decoded, so that only happens for a hand-made `Wire` block).
fn entries(block: &[u8]) -> impl Iterator<Item = (u8, Value<'_>)> {
    let mut r = Reader::new(block);
    std::iter::from_fn(move || {
        let id = r.varint("property identifier").ok()?;
        let id = u8::try_from(id).ok().filter(|&id| allowed_in(id) != 0)?;
        read_value(&mut r, id).ok().map(|v| (id, v))
    })
}

impl<'a> Properties<'a> {
    /// Decodes a property block (without its length prefix) found in `context`. Unknown or
    /// misplaced properties are a malformed packet; a repeated one, or a value out of range,
    /// a protocol error.
    pub fn decode(block: &'a [u8], context: PropertyContext) -> Result<Properties<'a>, DecodeError> {
        let mut p = Properties::default();
        let mut seen = 0u64;
        let mut r = Reader::new(block);
        while !r.is_empty() {
            let raw = r.varint("property identifier")?;
            let id = u8::try_from(raw).unwrap_or(0);
            if allowed_in(id) & context.bit() == 0 {
                return Err(DecodeError::new(
                    ReasonCode::MALFORMED_PACKET,
                    "property identifier",
                    "is unknown or not allowed in this packet",
                ));
            }
            let repeatable = id == id::USER_PROPERTY
                || (id == id::SUBSCRIPTION_IDENTIFIER && context == PropertyContext::Publish);
            if !repeatable && seen & (1 << id) != 0 {
                return Err(DecodeError::protocol("property", "appears more than once"));
            }
            seen |= 1 << id;
            let value = read_value(&mut r, id)?;
            p.set(id, value)?;
        }
        if seen & (1 << id::USER_PROPERTY) != 0 {
            p.user_properties = UserProperties::Wire(block);
        }
        if seen & (1 << id::SUBSCRIPTION_IDENTIFIER) != 0 {
            p.subscription_ids = SubscriptionIds::Wire(block);
        }
        Ok(p)
    }

    fn set(&mut self, id: u8, value: Value<'a>) -> Result<(), DecodeError> {
        fn flag(v: u8, what: &'static str) -> Result<u8, DecodeError> {
            if v > 1 {
                return Err(DecodeError::protocol(what, "must be 0 or 1"));
            }
            Ok(v)
        }
        fn nonzero<T: Default + PartialEq>(v: T, what: &'static str) -> Result<T, DecodeError> {
            if v == T::default() {
                return Err(DecodeError::protocol(what, "must not be 0"));
            }
            Ok(v)
        }
        match (id, value) {
            (id::PAYLOAD_FORMAT_INDICATOR, Value::Byte(v)) => {
                self.payload_format_indicator = Some(flag(v, "Payload Format Indicator")?)
            }
            (id::MESSAGE_EXPIRY_INTERVAL, Value::U32(v)) => self.message_expiry_interval = Some(v),
            (id::CONTENT_TYPE, Value::Str(v)) => self.content_type = Some(v),
            (id::RESPONSE_TOPIC, Value::Str(v)) => self.response_topic = Some(v),
            (id::CORRELATION_DATA, Value::Binary(v)) => self.correlation_data = Some(v),
            (id::SUBSCRIPTION_IDENTIFIER, Value::Varint(v)) => {
                nonzero(v, "Subscription Identifier")?;
            }
            (id::SESSION_EXPIRY_INTERVAL, Value::U32(v)) => self.session_expiry_interval = Some(v),
            (id::ASSIGNED_CLIENT_IDENTIFIER, Value::Str(v)) => self.assigned_client_identifier = Some(v),
            (id::SERVER_KEEP_ALIVE, Value::U16(v)) => self.server_keep_alive = Some(v),
            (id::AUTHENTICATION_METHOD, Value::Str(v)) => self.authentication_method = Some(v),
            (id::AUTHENTICATION_DATA, Value::Binary(v)) => self.authentication_data = Some(v),
            (id::REQUEST_PROBLEM_INFORMATION, Value::Byte(v)) => {
                self.request_problem_information = Some(flag(v, "Request Problem Information")?)
            }
            (id::WILL_DELAY_INTERVAL, Value::U32(v)) => self.will_delay_interval = Some(v),
            (id::REQUEST_RESPONSE_INFORMATION, Value::Byte(v)) => {
                self.request_response_information = Some(flag(v, "Request Response Information")?)
            }
            (id::RESPONSE_INFORMATION, Value::Str(v)) => self.response_information = Some(v),
            (id::SERVER_REFERENCE, Value::Str(v)) => self.server_reference = Some(v),
            (id::REASON_STRING, Value::Str(v)) => self.reason_string = Some(v),
            (id::RECEIVE_MAXIMUM, Value::U16(v)) => {
                self.receive_maximum = Some(nonzero(v, "Receive Maximum")?)
            }
            (id::TOPIC_ALIAS_MAXIMUM, Value::U16(v)) => self.topic_alias_maximum = Some(v),
            (id::TOPIC_ALIAS, Value::U16(v)) => self.topic_alias = Some(nonzero(v, "Topic Alias")?),
            (id::MAXIMUM_QOS, Value::Byte(v)) => self.maximum_qos = Some(flag(v, "Maximum QoS")?),
            (id::RETAIN_AVAILABLE, Value::Byte(v)) => {
                self.retain_available = Some(flag(v, "Retain Available")?)
            }
            (id::USER_PROPERTY, Value::Pair(..)) => {}
            (id::MAXIMUM_PACKET_SIZE, Value::U32(v)) => {
                self.maximum_packet_size = Some(nonzero(v, "Maximum Packet Size")?)
            }
            (id::WILDCARD_SUBSCRIPTION_AVAILABLE, Value::Byte(v)) => {
                self.wildcard_subscription_available = Some(flag(v, "Wildcard Subscription Available")?)
            }
            (id::SUBSCRIPTION_IDENTIFIER_AVAILABLE, Value::Byte(v)) => {
                self.subscription_identifier_available = Some(flag(v, "Subscription Identifier Available")?)
            }
            (id::SHARED_SUBSCRIPTION_AVAILABLE, Value::Byte(v)) => {
                self.shared_subscription_available = Some(flag(v, "Shared Subscription Available")?)
            }
            _ => unreachable!("read_value returns the value type of each identifier"),
        }
        Ok(())
    }

    /// Calls `f` with every present property, in identifier order (user properties and
    /// subscription identifiers in their own order).
    fn each(&self, mut f: impl FnMut(u8, Value<'a>)) {
        let byte = |f: &mut dyn FnMut(u8, Value<'a>), id, v: Option<u8>| v.map(|v| f(id, Value::Byte(v)));
        byte(&mut f, id::PAYLOAD_FORMAT_INDICATOR, self.payload_format_indicator);
        if let Some(v) = self.message_expiry_interval {
            f(id::MESSAGE_EXPIRY_INTERVAL, Value::U32(v));
        }
        if let Some(v) = self.content_type {
            f(id::CONTENT_TYPE, Value::Str(v));
        }
        if let Some(v) = self.response_topic {
            f(id::RESPONSE_TOPIC, Value::Str(v));
        }
        if let Some(v) = self.correlation_data {
            f(id::CORRELATION_DATA, Value::Binary(v));
        }
        for v in self.subscription_ids.iter() {
            f(id::SUBSCRIPTION_IDENTIFIER, Value::Varint(v));
        }
        if let Some(v) = self.session_expiry_interval {
            f(id::SESSION_EXPIRY_INTERVAL, Value::U32(v));
        }
        if let Some(v) = self.assigned_client_identifier {
            f(id::ASSIGNED_CLIENT_IDENTIFIER, Value::Str(v));
        }
        if let Some(v) = self.server_keep_alive {
            f(id::SERVER_KEEP_ALIVE, Value::U16(v));
        }
        if let Some(v) = self.authentication_method {
            f(id::AUTHENTICATION_METHOD, Value::Str(v));
        }
        if let Some(v) = self.authentication_data {
            f(id::AUTHENTICATION_DATA, Value::Binary(v));
        }
        byte(&mut f, id::REQUEST_PROBLEM_INFORMATION, self.request_problem_information);
        if let Some(v) = self.will_delay_interval {
            f(id::WILL_DELAY_INTERVAL, Value::U32(v));
        }
        byte(&mut f, id::REQUEST_RESPONSE_INFORMATION, self.request_response_information);
        if let Some(v) = self.response_information {
            f(id::RESPONSE_INFORMATION, Value::Str(v));
        }
        if let Some(v) = self.server_reference {
            f(id::SERVER_REFERENCE, Value::Str(v));
        }
        if let Some(v) = self.reason_string {
            f(id::REASON_STRING, Value::Str(v));
        }
        if let Some(v) = self.receive_maximum {
            f(id::RECEIVE_MAXIMUM, Value::U16(v));
        }
        if let Some(v) = self.topic_alias_maximum {
            f(id::TOPIC_ALIAS_MAXIMUM, Value::U16(v));
        }
        if let Some(v) = self.topic_alias {
            f(id::TOPIC_ALIAS, Value::U16(v));
        }
        byte(&mut f, id::MAXIMUM_QOS, self.maximum_qos);
        byte(&mut f, id::RETAIN_AVAILABLE, self.retain_available);
        for (k, v) in self.user_properties.iter() {
            f(id::USER_PROPERTY, Value::Pair(k, v));
        }
        if let Some(v) = self.maximum_packet_size {
            f(id::MAXIMUM_PACKET_SIZE, Value::U32(v));
        }
        byte(&mut f, id::WILDCARD_SUBSCRIPTION_AVAILABLE, self.wildcard_subscription_available);
        byte(&mut f, id::SUBSCRIPTION_IDENTIFIER_AVAILABLE, self.subscription_identifier_available);
        byte(&mut f, id::SHARED_SUBSCRIPTION_AVAILABLE, self.shared_subscription_available);
    }

    /// The encoded length of the block, without its length prefix.
    pub fn len(&self) -> usize {
        let mut len = 0;
        self.each(|_, v| {
            len += 1 + match v {
                Value::Byte(_) => 1,
                Value::U16(_) => 2,
                Value::U32(_) => 4,
                Value::Varint(v) => varint_len(v),
                Value::Str(s) => 2 + s.len(),
                Value::Binary(b) => 2 + b.len(),
                Value::Pair(k, v) => 4 + k.len() + v.len(),
            }
        });
        len
    }

    /// Whether no property is present.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The encoded length with the length prefix.
    pub fn wire_len(&self) -> usize {
        let len = self.len();
        varint_len(len as u32) + len
    }

    /// Appends the block with its length prefix.
    pub fn encode(&self, out: &mut Vec<u8>) {
        write_varint(out, self.len() as u32);
        self.encode_entries(out);
    }

    /// Appends the properties without the length prefix (a block to splice into another).
    pub fn encode_entries(&self, out: &mut Vec<u8>) {
        self.each(|id, v| {
            out.push(id);
            match v {
                Value::Byte(b) => out.push(b),
                Value::U16(v) => out.extend_from_slice(&v.to_be_bytes()),
                Value::U32(v) => out.extend_from_slice(&v.to_be_bytes()),
                Value::Varint(v) => write_varint(out, v.min(VARINT_MAX)),
                Value::Str(s) => write_bytes(out, s.as_bytes()),
                Value::Binary(b) => write_bytes(out, b),
                Value::Pair(k, v) => {
                    write_bytes(out, k.as_bytes());
                    write_bytes(out, v.as_bytes());
                }
            }
        });
    }
}
