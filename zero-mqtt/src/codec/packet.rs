//! The control packets of section 3, each with its decoder and encoder.

use super::property::{Properties, PropertyContext as Ctx};
use super::wire::{write_bytes, Reader};
use super::{DecodeError, PacketId, PacketType, Protocol, QoS, ReasonCode};

/// Reads a property block (length prefix included) when the connection speaks MQTT 5.
fn props<'a>(r: &mut Reader<'a>, v5: bool, ctx: Ctx) -> Result<Properties<'a>, DecodeError> {
    if !v5 {
        return Ok(Properties::default());
    }
    let len = r.varint("property length")?;
    Properties::decode(r.take(len as usize, "properties")?, ctx)
}

fn props_len(p: &Properties<'_>, v5: bool) -> usize {
    if v5 {
        p.wire_len()
    } else {
        0
    }
}

fn write_props(p: &Properties<'_>, v5: bool, out: &mut Vec<u8>) {
    if v5 {
        p.encode(out);
    }
}

fn packet_id(r: &mut Reader<'_>) -> Result<PacketId, DecodeError> {
    match r.u16("packet identifier")? {
        0 => Err(DecodeError::new(ReasonCode::MALFORMED_PACKET, "packet identifier", "is 0")),
        id => Ok(id),
    }
}

fn end(r: &Reader<'_>, what: &'static str) -> Result<(), DecodeError> {
    if !r.is_empty() {
        return Err(DecodeError::new(ReasonCode::MALFORMED_PACKET, what, "has trailing bytes"));
    }
    Ok(())
}

fn reason_in(code: u8, allowed: &[u8], what: &'static str) -> Result<ReasonCode, DecodeError> {
    if !allowed.contains(&code) {
        return Err(DecodeError::new(
            ReasonCode::MALFORMED_PACKET,
            what,
            "is not a reason code of this packet",
        ));
    }
    Ok(ReasonCode(code))
}

const CONNACK_CODES: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97, 0x99,
    0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
];
const PUBACK_CODES: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
const PUBREL_CODES: &[u8] = &[0x00, 0x92];
const SUBACK_CODES: &[u8] = &[0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2];
const UNSUBACK_CODES: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
const DISCONNECT_CODES: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95, 0x96,
    0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];
const AUTH_CODES: &[u8] = &[0x00, 0x18, 0x19];

/// CONNECT: a client opens a session.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Connect<'a> {
    /// The version the client speaks.
    pub protocol: Protocol,
    /// Clean Start (MQTT 5) / Clean Session (3.1.1).
    pub clean_start: bool,
    /// Keep-alive in seconds; 0 turns it off.
    pub keep_alive: u16,
    /// CONNECT properties (MQTT 5).
    pub properties: Properties<'a>,
    /// The client identifier; may be empty.
    pub client_id: &'a str,
    /// The will message.
    pub will: Option<Will<'a>>,
    /// The user name.
    pub username: Option<&'a str>,
    /// The password.
    pub password: Option<&'a [u8]>,
    /// The protocol level's top bit: the client is a bridge (mosquitto's `try_private`), so
    /// the server sends it no messages it published itself and keeps RETAIN as published.
    pub bridge: bool,
}

/// The will message a CONNECT carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Will<'a> {
    /// Its QoS.
    pub qos: QoS,
    /// Whether it is retained.
    pub retain: bool,
    /// Will properties (MQTT 5).
    pub properties: Properties<'a>,
    /// The topic it is published to.
    pub topic: &'a str,
    /// Its payload.
    pub payload: &'a [u8],
}

impl<'a> Connect<'a> {
    /// A CONNECT for `client_id` with clean start, keep-alive 60 s, no will and no credentials.
    pub fn new(protocol: Protocol, client_id: &'a str) -> Connect<'a> {
        Connect {
            protocol,
            clean_start: true,
            keep_alive: 60,
            properties: Properties::default(),
            client_id,
            will: None,
            username: None,
            password: None,
            bridge: false,
        }
    }

    pub(super) fn decode(body: &'a [u8]) -> Result<Connect<'a>, DecodeError> {
        let mut r = Reader::new(body);
        let name = r.binary("protocol name")?;
        let level = r.u8("protocol level")?;
        let (bridge, level) = (level & 0x80 != 0, level & 0x7F);
        let protocol = match (name, level) {
            (b"MQTT", 4) => Protocol::V311,
            (b"MQTT", 5) => Protocol::V5,
            (b"MQIsdp", 3) => Protocol::V31,
            (b"MQTT", _) | (b"MQIsdp", _) => {
                return Err(DecodeError::new(
                    ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
                    "protocol level",
                    "is not 3, 4 or 5",
                ))
            }
            _ => {
                return Err(DecodeError::new(
                    ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
                    "protocol name",
                    "is not MQTT",
                ))
            }
        };
        let v5 = protocol.is_v5();
        let flags = r.u8("connect flags")?;
        if flags & 0x01 != 0 {
            return Err(DecodeError::new(
                ReasonCode::MALFORMED_PACKET,
                "connect flags",
                "set the reserved bit",
            ));
        }
        let will_flag = flags & 0x04 != 0;
        let will_qos = QoS::from_bits((flags >> 3) & 0x03).ok_or(DecodeError::new(
            ReasonCode::MALFORMED_PACKET,
            "will QoS",
            "is 3",
        ))?;
        let will_retain = flags & 0x20 != 0;
        if !will_flag && (will_qos != QoS::AtMostOnce || will_retain) {
            return Err(DecodeError::new(
                ReasonCode::MALFORMED_PACKET,
                "connect flags",
                "set will QoS or retain without a will",
            ));
        }
        let has_password = flags & 0x40 != 0;
        let has_username = flags & 0x80 != 0;
        if has_password && !has_username && !v5 {
            return Err(DecodeError::new(
                ReasonCode::MALFORMED_PACKET,
                "connect flags",
                "set a password without a user name",
            ));
        }
        let keep_alive = r.u16("keep alive")?;
        let properties = props(&mut r, v5, Ctx::Connect)?;
        let client_id = r.str("client identifier")?;
        let will = if will_flag {
            let properties = props(&mut r, v5, Ctx::Will)?;
            let topic = r.str("will topic")?;
            let payload = r.binary("will payload")?;
            Some(Will { qos: will_qos, retain: will_retain, properties, topic, payload })
        } else {
            None
        };
        let username = if has_username { Some(r.str("user name")?) } else { None };
        let password = if has_password { Some(r.binary("password")?) } else { None };
        end(&r, "CONNECT")?;
        Ok(Connect {
            protocol,
            clean_start: flags & 0x02 != 0,
            keep_alive,
            properties,
            client_id,
            will,
            username,
            password,
            bridge,
        })
    }

    fn flags(&self) -> u8 {
        let mut flags = u8::from(self.clean_start) << 1;
        if let Some(w) = &self.will {
            flags |= 0x04 | (w.qos as u8) << 3 | u8::from(w.retain) << 5;
        }
        flags | u8::from(self.password.is_some()) << 6 | u8::from(self.username.is_some()) << 7
    }

    fn name(&self) -> &'static [u8] {
        if self.protocol == Protocol::V31 {
            b"MQIsdp"
        } else {
            b"MQTT"
        }
    }

    pub(super) fn body_len(&self) -> usize {
        let v5 = self.protocol.is_v5();
        let mut len = 2 + self.name().len() + 1 + 1 + 2 + props_len(&self.properties, v5);
        len += 2 + self.client_id.len();
        if let Some(w) = &self.will {
            len += props_len(&w.properties, v5) + 2 + w.topic.len() + 2 + w.payload.len();
        }
        len += self.username.map_or(0, |u| 2 + u.len());
        len + self.password.map_or(0, |p| 2 + p.len())
    }

    pub(super) fn write_body(&self, out: &mut Vec<u8>) {
        let v5 = self.protocol.is_v5();
        write_bytes(out, self.name());
        out.push(self.protocol.level() | u8::from(self.bridge) << 7);
        out.push(self.flags());
        out.extend_from_slice(&self.keep_alive.to_be_bytes());
        write_props(&self.properties, v5, out);
        write_bytes(out, self.client_id.as_bytes());
        if let Some(w) = &self.will {
            write_props(&w.properties, v5, out);
            write_bytes(out, w.topic.as_bytes());
            write_bytes(out, w.payload);
        }
        if let Some(u) = self.username {
            write_bytes(out, u.as_bytes());
        }
        if let Some(p) = self.password {
            write_bytes(out, p);
        }
    }
}

/// CONNACK: the server's answer to CONNECT.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnAck<'a> {
    /// Whether the server resumed a session.
    pub session_present: bool,
    /// Success, or why the connection is refused (3.1.1 return codes are mapped).
    pub reason: ReasonCode,
    /// CONNACK properties (MQTT 5).
    pub properties: Properties<'a>,
}

impl<'a> ConnAck<'a> {
    pub(super) fn decode(body: &'a [u8], v5: bool) -> Result<ConnAck<'a>, DecodeError> {
        let mut r = Reader::new(body);
        let flags = r.u8("connack flags")?;
        if flags & 0xfe != 0 {
            return Err(DecodeError::new(ReasonCode::MALFORMED_PACKET, "connack flags", "set reserved bits"));
        }
        let code = r.u8("connect reason code")?;
        let reason = if v5 {
            reason_in(code, CONNACK_CODES, "CONNACK reason code")?
        } else {
            ReasonCode::from_v3_connack(code).ok_or(DecodeError::new(
                ReasonCode::MALFORMED_PACKET,
                "CONNACK return code",
                "is above 5",
            ))?
        };
        let properties = props(&mut r, v5, Ctx::ConnAck)?;
        end(&r, "CONNACK")?;
        Ok(ConnAck { session_present: flags & 1 != 0, reason, properties })
    }

    pub(super) fn body_len(&self, v5: bool) -> usize {
        2 + props_len(&self.properties, v5)
    }

    pub(super) fn write_body(&self, v5: bool, out: &mut Vec<u8>) {
        out.push(u8::from(self.session_present));
        out.push(if v5 { self.reason.0 } else { self.reason.to_v3_connack() });
        write_props(&self.properties, v5, out);
    }
}

/// PUBLISH: an application message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Publish<'a> {
    /// Whether this is a redelivery.
    pub dup: bool,
    /// Its QoS.
    pub qos: QoS,
    /// Whether it is (or was, when forwarded with Retain As Published) retained.
    pub retain: bool,
    /// The topic name; empty when an MQTT 5 topic alias stands for it.
    pub topic: &'a str,
    /// The packet identifier; 0 at QoS 0.
    pub packet_id: PacketId,
    /// PUBLISH properties (MQTT 5).
    pub properties: Properties<'a>,
    /// The payload.
    pub payload: &'a [u8],
}

impl<'a> Publish<'a> {
    pub(super) fn decode(flags: u8, body: &'a [u8], v5: bool) -> Result<Publish<'a>, DecodeError> {
        let qos = QoS::from_bits((flags >> 1) & 0x03).ok_or(DecodeError::new(
            ReasonCode::MALFORMED_PACKET,
            "PUBLISH QoS",
            "is 3",
        ))?;
        let dup = flags & 0x08 != 0;
        if dup && qos == QoS::AtMostOnce {
            return Err(DecodeError::new(
                ReasonCode::MALFORMED_PACKET,
                "PUBLISH DUP flag",
                "is set at QoS 0",
            ));
        }
        let mut r = Reader::new(body);
        let topic = r.str("topic name")?;
        if topic.contains(['+', '#']) {
            return Err(DecodeError::new(
                ReasonCode::TOPIC_NAME_INVALID,
                "topic name",
                "contains a wildcard",
            ));
        }
        let packet_id = if qos == QoS::AtMostOnce { 0 } else { packet_id(&mut r)? };
        let properties = props(&mut r, v5, Ctx::Publish)?;
        if topic.is_empty() && properties.topic_alias.is_none() {
            return Err(DecodeError::protocol("topic name", "is empty without a topic alias"));
        }
        Ok(Publish {
            dup,
            qos,
            retain: flags & 0x01 != 0,
            topic,
            packet_id,
            properties,
            payload: r.take_rest(),
        })
    }

    pub(super) fn flags(&self) -> u8 {
        u8::from(self.dup) << 3 | (self.qos as u8) << 1 | u8::from(self.retain)
    }

    pub(super) fn body_len(&self, v5: bool) -> usize {
        let id = if self.qos == QoS::AtMostOnce { 0 } else { 2 };
        2 + self.topic.len() + id + props_len(&self.properties, v5) + self.payload.len()
    }

    pub(super) fn write_body(&self, v5: bool, out: &mut Vec<u8>) {
        write_bytes(out, self.topic.as_bytes());
        if self.qos != QoS::AtMostOnce {
            out.extend_from_slice(&self.packet_id.to_be_bytes());
        }
        write_props(&self.properties, v5, out);
        out.extend_from_slice(self.payload);
    }
}

/// PUBACK, PUBREC, PUBREL or PUBCOMP: a step of a QoS 1 or 2 flow.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ack<'a> {
    /// The packet identifier of the flow.
    pub packet_id: PacketId,
    /// How the step went (MQTT 5; success in 3.1.1).
    pub reason: ReasonCode,
    /// Properties (MQTT 5).
    pub properties: Properties<'a>,
}

impl<'a> Ack<'a> {
    /// A successful acknowledgement of `packet_id`.
    pub fn new(packet_id: PacketId) -> Ack<'a> {
        Ack { packet_id, reason: ReasonCode::SUCCESS, properties: Properties::default() }
    }

    pub(super) fn decode(body: &'a [u8], v5: bool, kind: PacketType) -> Result<Ack<'a>, DecodeError> {
        let mut r = Reader::new(body);
        let packet_id = packet_id(&mut r)?;
        let mut ack = Ack::new(packet_id);
        if v5 && !r.is_empty() {
            let codes = match kind {
                PacketType::PubAck | PacketType::PubRec => PUBACK_CODES,
                _ => PUBREL_CODES,
            };
            ack.reason = reason_in(r.u8("reason code")?, codes, "acknowledgement reason code")?;
            if !r.is_empty() {
                ack.properties = props(&mut r, v5, Ctx::Ack)?;
            }
        }
        end(&r, "acknowledgement")?;
        Ok(ack)
    }

    fn short(&self) -> bool {
        self.properties.is_empty()
    }

    pub(super) fn body_len(&self, v5: bool) -> usize {
        match (v5, self.short(), self.reason) {
            (false, ..) | (true, true, ReasonCode::SUCCESS) => 2,
            (true, true, _) => 3,
            (true, false, _) => 3 + self.properties.wire_len(),
        }
    }

    pub(super) fn write_body(&self, v5: bool, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.packet_id.to_be_bytes());
        let len = self.body_len(v5);
        if len > 2 {
            out.push(self.reason.0);
        }
        if len > 3 {
            self.properties.encode(out);
        }
    }
}

/// How retained messages are sent when a subscription is made (MQTT 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RetainHandling {
    /// Always send them.
    #[default]
    SendAlways = 0,
    /// Send them only if the subscription did not exist.
    SendIfNew = 1,
    /// Never send them.
    DontSend = 2,
}

/// The options of one subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SubOptions {
    /// The maximum QoS to deliver with.
    pub qos: QoS,
    /// Do not deliver the subscriber's own publishes (MQTT 5).
    pub no_local: bool,
    /// Keep the RETAIN flag of forwarded messages (MQTT 5).
    pub retain_as_published: bool,
    /// When retained messages are sent (MQTT 5).
    pub retain_handling: RetainHandling,
}

impl SubOptions {
    /// The options at `qos`, others default.
    pub fn qos(qos: QoS) -> SubOptions {
        SubOptions { qos, ..SubOptions::default() }
    }

    /// The options from their byte in a SUBSCRIBE of MQTT 5 (`v5`) or 3.1.1.
    pub fn decode(byte: u8, v5: bool) -> Result<SubOptions, DecodeError> {
        let reserved = if v5 { 0xc0 } else { 0xfc };
        if byte & reserved != 0 {
            return Err(DecodeError::new(
                ReasonCode::MALFORMED_PACKET,
                "subscription options",
                "set reserved bits",
            ));
        }
        let qos = QoS::from_bits(byte & 0x03).ok_or(DecodeError::new(
            ReasonCode::MALFORMED_PACKET,
            "subscription QoS",
            "is 3",
        ))?;
        let retain_handling = match (byte >> 4) & 0x03 {
            0 => RetainHandling::SendAlways,
            1 => RetainHandling::SendIfNew,
            2 => RetainHandling::DontSend,
            _ => return Err(DecodeError::protocol("Retain Handling", "is 3")),
        };
        Ok(SubOptions {
            qos,
            no_local: byte & 0x04 != 0,
            retain_as_published: byte & 0x08 != 0,
            retain_handling,
        })
    }

    /// The options as their byte in a SUBSCRIBE of MQTT 5 (`v5`) or 3.1.1.
    pub fn encode(&self, v5: bool) -> u8 {
        let byte = self.qos as u8;
        if !v5 {
            return byte;
        }
        byte | u8::from(self.no_local) << 2
            | u8::from(self.retain_as_published) << 3
            | (self.retain_handling as u8) << 4
    }
}

/// The (filter, options) list of a SUBSCRIBE.
#[derive(Clone, Copy)]
pub enum Subscriptions<'a> {
    /// As decoded: the validated payload and its version.
    Wire(&'a [u8], bool),
    /// A list to encode.
    List(&'a [(&'a str, SubOptions)]),
}

impl<'a> Subscriptions<'a> {
    /// The (filter, options) pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, SubOptions)> + 'a {
        let (wire, list) = match *self {
            Subscriptions::Wire(buf, v5) => {
                let mut r = Reader::new(buf);
                let it = std::iter::from_fn(move || {
                    if r.is_empty() {
                        return None;
                    }
                    let filter = r.str("topic filter").ok()?;
                    let options = SubOptions::decode(r.u8("subscription options").ok()?, v5).ok()?;
                    Some((filter, options))
                });
                (Some(it), None)
            }
            Subscriptions::List(list) => (None, Some(list.iter().copied())),
        };
        wire.into_iter().flatten().chain(list.into_iter().flatten())
    }
}

wire_list_traits!(Subscriptions);

/// SUBSCRIBE: a client asks for messages matching topic filters. Filters are checked as
/// UTF-8 here; their wildcard syntax is the broker's to judge (it answers per filter).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Subscribe<'a> {
    /// The packet identifier.
    pub packet_id: PacketId,
    /// SUBSCRIBE properties (MQTT 5): a subscription identifier, user properties.
    pub properties: Properties<'a>,
    /// The subscriptions.
    pub subscriptions: Subscriptions<'a>,
}

impl<'a> Subscribe<'a> {
    pub(super) fn decode(body: &'a [u8], v5: bool) -> Result<Subscribe<'a>, DecodeError> {
        let mut r = Reader::new(body);
        let packet_id = packet_id(&mut r)?;
        let properties = props(&mut r, v5, Ctx::Subscribe)?;
        let payload = r.rest();
        if payload.is_empty() {
            return Err(DecodeError::protocol("SUBSCRIBE", "has no topic filter"));
        }
        while !r.is_empty() {
            r.str("topic filter")?;
            SubOptions::decode(r.u8("subscription options")?, v5)?;
        }
        Ok(Subscribe { packet_id, properties, subscriptions: Subscriptions::Wire(payload, v5) })
    }

    pub(super) fn body_len(&self, v5: bool) -> usize {
        2 + props_len(&self.properties, v5)
            + self.subscriptions.iter().map(|(f, _)| 3 + f.len()).sum::<usize>()
    }

    pub(super) fn write_body(&self, v5: bool, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.packet_id.to_be_bytes());
        write_props(&self.properties, v5, out);
        for (filter, options) in self.subscriptions.iter() {
            write_bytes(out, filter.as_bytes());
            out.push(options.encode(v5));
        }
    }
}

/// Reason codes, one per topic filter of a SUBSCRIBE or UNSUBSCRIBE, as bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReasonCodes<'a>(pub &'a [u8]);

impl<'a> ReasonCodes<'a> {
    /// The codes, in filter order.
    pub fn iter(&self) -> impl Iterator<Item = ReasonCode> + 'a {
        self.0.iter().map(|&b| ReasonCode(b))
    }
}

/// SUBACK: the outcome of each filter of a SUBSCRIBE.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SubAck<'a> {
    /// The SUBSCRIBE's packet identifier.
    pub packet_id: PacketId,
    /// Properties (MQTT 5).
    pub properties: Properties<'a>,
    /// Granted QoS or failure, per filter (3.1.1 encodes every failure as 0x80).
    pub reasons: ReasonCodes<'a>,
}

impl<'a> SubAck<'a> {
    pub(super) fn decode(body: &'a [u8], v5: bool) -> Result<SubAck<'a>, DecodeError> {
        let mut r = Reader::new(body);
        let packet_id = packet_id(&mut r)?;
        let properties = props(&mut r, v5, Ctx::SubAck)?;
        let reasons = r.take_rest();
        let allowed: &[u8] = if v5 { SUBACK_CODES } else { &[0, 1, 2, 0x80] };
        for &code in reasons {
            reason_in(code, allowed, "SUBACK reason code")?;
        }
        if reasons.is_empty() {
            return Err(DecodeError::protocol("SUBACK", "has no reason code"));
        }
        Ok(SubAck { packet_id, properties, reasons: ReasonCodes(reasons) })
    }

    pub(super) fn body_len(&self, v5: bool) -> usize {
        2 + props_len(&self.properties, v5) + self.reasons.0.len()
    }

    pub(super) fn write_body(&self, v5: bool, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.packet_id.to_be_bytes());
        write_props(&self.properties, v5, out);
        if v5 {
            out.extend_from_slice(self.reasons.0);
        } else {
            out.extend(self.reasons.iter().map(ReasonCode::to_v3_suback));
        }
    }
}

/// The topic filters of an UNSUBSCRIBE.
#[derive(Clone, Copy)]
pub enum TopicFilters<'a> {
    /// As decoded: the validated payload.
    Wire(&'a [u8]),
    /// A list to encode.
    List(&'a [&'a str]),
}

impl<'a> TopicFilters<'a> {
    /// The filters, in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        let (wire, list) = match *self {
            TopicFilters::Wire(buf) => {
                let mut r = Reader::new(buf);
                (Some(std::iter::from_fn(move || r.str("topic filter").ok())), None)
            }
            TopicFilters::List(list) => (None, Some(list.iter().copied())),
        };
        wire.into_iter().flatten().chain(list.into_iter().flatten())
    }
}

wire_list_traits!(TopicFilters);

/// UNSUBSCRIBE: a client drops subscriptions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Unsubscribe<'a> {
    /// The packet identifier.
    pub packet_id: PacketId,
    /// Properties (MQTT 5).
    pub properties: Properties<'a>,
    /// The filters to drop.
    pub filters: TopicFilters<'a>,
}

impl<'a> Unsubscribe<'a> {
    pub(super) fn decode(body: &'a [u8], v5: bool) -> Result<Unsubscribe<'a>, DecodeError> {
        let mut r = Reader::new(body);
        let packet_id = packet_id(&mut r)?;
        let properties = props(&mut r, v5, Ctx::Unsubscribe)?;
        let payload = r.rest();
        if payload.is_empty() {
            return Err(DecodeError::protocol("UNSUBSCRIBE", "has no topic filter"));
        }
        while !r.is_empty() {
            r.str("topic filter")?;
        }
        Ok(Unsubscribe { packet_id, properties, filters: TopicFilters::Wire(payload) })
    }

    pub(super) fn body_len(&self, v5: bool) -> usize {
        2 + props_len(&self.properties, v5) + self.filters.iter().map(|f| 2 + f.len()).sum::<usize>()
    }

    pub(super) fn write_body(&self, v5: bool, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.packet_id.to_be_bytes());
        write_props(&self.properties, v5, out);
        for filter in self.filters.iter() {
            write_bytes(out, filter.as_bytes());
        }
    }
}

/// UNSUBACK: the outcome of each filter of an UNSUBSCRIBE (MQTT 5; empty in 3.1.1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UnsubAck<'a> {
    /// The UNSUBSCRIBE's packet identifier.
    pub packet_id: PacketId,
    /// Properties (MQTT 5).
    pub properties: Properties<'a>,
    /// One reason code per filter (MQTT 5).
    pub reasons: ReasonCodes<'a>,
}

impl<'a> UnsubAck<'a> {
    pub(super) fn decode(body: &'a [u8], v5: bool) -> Result<UnsubAck<'a>, DecodeError> {
        let mut r = Reader::new(body);
        let packet_id = packet_id(&mut r)?;
        let properties = props(&mut r, v5, Ctx::UnsubAck)?;
        let reasons = r.take_rest();
        if !v5 && !reasons.is_empty() {
            return Err(DecodeError::malformed("UNSUBACK"));
        }
        for &code in reasons {
            reason_in(code, UNSUBACK_CODES, "UNSUBACK reason code")?;
        }
        Ok(UnsubAck { packet_id, properties, reasons: ReasonCodes(reasons) })
    }

    pub(super) fn body_len(&self, v5: bool) -> usize {
        2 + if v5 { self.properties.wire_len() + self.reasons.0.len() } else { 0 }
    }

    pub(super) fn write_body(&self, v5: bool, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.packet_id.to_be_bytes());
        if v5 {
            self.properties.encode(out);
            out.extend_from_slice(self.reasons.0);
        }
    }
}

/// DISCONNECT: either side ends the connection, with a reason (MQTT 5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Disconnect<'a> {
    /// Why (MQTT 5; normal disconnection in 3.1.1).
    pub reason: ReasonCode,
    /// Properties (MQTT 5): session expiry, reason string, server reference.
    pub properties: Properties<'a>,
}

impl<'a> Disconnect<'a> {
    /// A DISCONNECT with `reason` and no properties.
    pub fn new(reason: ReasonCode) -> Disconnect<'a> {
        Disconnect { reason, properties: Properties::default() }
    }

    pub(super) fn decode(body: &'a [u8], v5: bool) -> Result<Disconnect<'a>, DecodeError> {
        let (reason, properties) = reason_and_props(body, v5, DISCONNECT_CODES, Ctx::Disconnect)?;
        Ok(Disconnect { reason, properties })
    }

    pub(super) fn body_len(&self, v5: bool) -> usize {
        reason_and_props_len(v5, self.reason, &self.properties)
    }

    pub(super) fn write_body(&self, v5: bool, out: &mut Vec<u8>) {
        write_reason_and_props(v5, self.reason, &self.properties, out)
    }
}

/// AUTH: a step of an MQTT 5 enhanced authentication exchange.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Auth<'a> {
    /// Success, continue or re-authenticate.
    pub reason: ReasonCode,
    /// Properties: authentication method and data.
    pub properties: Properties<'a>,
}

impl<'a> Auth<'a> {
    pub(super) fn decode(body: &'a [u8]) -> Result<Auth<'a>, DecodeError> {
        let (reason, properties) = reason_and_props(body, true, AUTH_CODES, Ctx::Auth)?;
        Ok(Auth { reason, properties })
    }

    pub(super) fn body_len(&self) -> usize {
        reason_and_props_len(true, self.reason, &self.properties)
    }

    pub(super) fn write_body(&self, out: &mut Vec<u8>) {
        write_reason_and_props(true, self.reason, &self.properties, out)
    }
}

/// DISCONNECT and AUTH: an optional reason code, then optional properties.
fn reason_and_props<'a>(
    body: &'a [u8],
    v5: bool,
    codes: &[u8],
    ctx: Ctx,
) -> Result<(ReasonCode, Properties<'a>), DecodeError> {
    let mut r = Reader::new(body);
    let mut reason = ReasonCode::SUCCESS;
    let mut properties = Properties::default();
    if v5 && !r.is_empty() {
        reason = reason_in(r.u8("reason code")?, codes, "reason code")?;
        if !r.is_empty() {
            properties = props(&mut r, v5, ctx)?;
        }
    }
    end(&r, "packet")?;
    Ok((reason, properties))
}

fn reason_and_props_len(v5: bool, reason: ReasonCode, p: &Properties<'_>) -> usize {
    match (v5, p.is_empty(), reason) {
        (false, ..) | (true, true, ReasonCode::SUCCESS) => 0,
        (true, true, _) => 1,
        (true, false, _) => 1 + p.wire_len(),
    }
}

fn write_reason_and_props(v5: bool, reason: ReasonCode, p: &Properties<'_>, out: &mut Vec<u8>) {
    let len = reason_and_props_len(v5, reason, p);
    if len > 0 {
        out.push(reason.0);
    }
    if len > 1 {
        p.encode(out);
    }
}
