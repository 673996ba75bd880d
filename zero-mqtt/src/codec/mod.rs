//! The MQTT codec: bytes to packets and back, for MQTT 3.1, 3.1.1 and 5.0. No I/O, no clock,
//! no allocation: decoded packets borrow from the input, encoders append to a `Vec<u8>` (such
//! as a zero-core send buffer).
//!
//! Decoding is two steps. [`frame`] finds one whole packet at the start of a buffer (or says
//! how much is missing) and enforces the maximum packet size as soon as the length is known;
//! [`Packet::decode`] turns the frame into a [`Packet`]. Every way a packet can be wrong maps
//! to the reason code the specification names ([`DecodeError::reason`]): 0x81 Malformed
//! Packet, 0x82 Protocol Error, 0x84 Unsupported Protocol Version, 0x95 Packet too large.

/// `PartialEq` and `Debug` by content for the lists that are either borrowed wire bytes or a
/// slice to encode (`Wire` / `List`), so a decoded packet equals the one it was encoded from.
macro_rules! wire_list_traits {
    ($t:ident) => {
        impl PartialEq for $t<'_> {
            fn eq(&self, other: &Self) -> bool {
                self.iter().eq(other.iter())
            }
        }

        impl std::fmt::Debug for $t<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_list().entries(self.iter()).finish()
            }
        }
    };
}

mod packet;
mod property;
mod reason;
pub mod wire;

pub use packet::{
    Ack, Auth, ConnAck, Connect, Disconnect, Publish, ReasonCodes, RetainHandling, SubAck, SubOptions,
    Subscribe, Subscriptions, TopicFilters, UnsubAck, Unsubscribe, Will,
};
pub use property::{Properties, PropertyContext, SubscriptionIds, UserProperties};
pub use reason::ReasonCode;

/// Why bytes are not a valid packet: the reason code to answer with, and what was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{what} {why} ({reason})")]
pub struct DecodeError {
    /// The reason code the specification assigns to this fault.
    pub reason: ReasonCode,
    /// The part of the packet at fault.
    pub what: &'static str,
    /// What is wrong with it.
    pub why: &'static str,
}

impl DecodeError {
    /// An error with `reason`.
    pub fn new(reason: ReasonCode, what: &'static str, why: &'static str) -> DecodeError {
        DecodeError { reason, what, why }
    }

    /// A malformed packet (0x81) because `what` ends early or is out of shape.
    pub fn malformed(what: &'static str) -> DecodeError {
        DecodeError::new(ReasonCode::MALFORMED_PACKET, what, "is truncated or malformed")
    }

    /// A protocol error (0x82).
    pub fn protocol(what: &'static str, why: &'static str) -> DecodeError {
        DecodeError::new(ReasonCode::PROTOCOL_ERROR, what, why)
    }
}

/// The protocol version a connection speaks, from its CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// MQTT 3.1 (protocol name `MQIsdp`, level 3): 3.1.1's packets.
    V31,
    /// MQTT 3.1.1 (level 4).
    V311,
    /// MQTT 5.0 (level 5).
    V5,
}

impl Protocol {
    /// The protocol level byte of CONNECT.
    pub fn level(self) -> u8 {
        match self {
            Protocol::V31 => 3,
            Protocol::V311 => 4,
            Protocol::V5 => 5,
        }
    }

    /// Whether packets carry MQTT 5 properties and reason codes.
    pub fn is_v5(self) -> bool {
        self == Protocol::V5
    }
}

/// A quality-of-service level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum QoS {
    /// At most once: no acknowledgement.
    #[default]
    AtMostOnce = 0,
    /// At least once: PUBACK.
    AtLeastOnce = 1,
    /// Exactly once: PUBREC, PUBREL, PUBCOMP.
    ExactlyOnce = 2,
}

impl QoS {
    /// The level for bits `0..=2`, `None` for 3.
    pub fn from_bits(bits: u8) -> Option<QoS> {
        match bits {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}

/// A packet identifier (non-zero for packets that carry one).
pub type PacketId = u16;

/// The control packet types (the high nibble of the first byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum PacketType {
    Connect = 1,
    ConnAck = 2,
    Publish = 3,
    PubAck = 4,
    PubRec = 5,
    PubRel = 6,
    PubComp = 7,
    Subscribe = 8,
    SubAck = 9,
    Unsubscribe = 10,
    UnsubAck = 11,
    PingReq = 12,
    PingResp = 13,
    Disconnect = 14,
    Auth = 15,
}

/// One control packet, borrowing from the bytes it was decoded from.
#[derive(Debug, Clone, Copy, PartialEq)]
#[allow(missing_docs)]
// CONNECT (two property blocks) is the large one; boxing it would allocate per packet, and
// packets live briefly on the stack between decoding and the machine.
#[allow(clippy::large_enum_variant)]
pub enum Packet<'a> {
    Connect(Connect<'a>),
    ConnAck(ConnAck<'a>),
    Publish(Publish<'a>),
    PubAck(Ack<'a>),
    PubRec(Ack<'a>),
    PubRel(Ack<'a>),
    PubComp(Ack<'a>),
    Subscribe(Subscribe<'a>),
    SubAck(SubAck<'a>),
    Unsubscribe(Unsubscribe<'a>),
    UnsubAck(UnsubAck<'a>),
    PingReq,
    PingResp,
    Disconnect(Disconnect<'a>),
    Auth(Auth<'a>),
}

/// One whole packet found at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The first byte: packet type and flags.
    pub header: u8,
    /// The bytes after the remaining length.
    pub body: &'a [u8],
    /// The packet's whole length, header included.
    pub len: usize,
}

/// Finds the packet at the start of `buf`. `Ok(None)` means more bytes are needed. A packet
/// longer than `max_packet_size` (whole length, as MQTT 5 counts it) is refused with 0x95 as
/// soon as its length is read, before its bytes arrive.
pub fn frame(buf: &[u8], max_packet_size: usize) -> Result<Option<Frame<'_>>, DecodeError> {
    let Some(&header) = buf.first() else { return Ok(None) };
    let Some((remaining, used)) = wire::read_varint(&buf[1..])? else { return Ok(None) };
    let len = 1 + used + remaining as usize;
    if len > max_packet_size {
        return Err(DecodeError::new(
            ReasonCode::PACKET_TOO_LARGE,
            "packet",
            "exceeds the maximum packet size",
        ));
    }
    if buf.len() < len {
        return Ok(None);
    }
    Ok(Some(Frame { header, body: &buf[1 + used..len], len }))
}

/// The fixed-header flags packet type `kind` must carry (section 2.1.3); `None` for PUBLISH,
/// whose flags are its DUP, QoS and RETAIN.
fn required_flags(kind: u8) -> Option<u8> {
    match kind {
        3 => None,
        6 | 8 | 10 => Some(2),
        _ => Some(0),
    }
}

/// Decodes the packet at the start of `buf` (see [`frame`] and [`Packet::decode`]): the
/// packet and its length, or `Ok(None)` if more bytes are needed.
pub fn decode(
    buf: &[u8],
    protocol: Protocol,
    max_packet_size: usize,
) -> Result<Option<(Packet<'_>, usize)>, DecodeError> {
    match frame(buf, max_packet_size)? {
        Some(f) => Ok(Some((Packet::decode(f, protocol)?, f.len))),
        None => Ok(None),
    }
}

impl<'a> Packet<'a> {
    /// Decodes a frame. `protocol` is the connection's version (ignored for CONNECT, which
    /// names its own).
    pub fn decode(frame: Frame<'a>, protocol: Protocol) -> Result<Packet<'a>, DecodeError> {
        let (kind, flags, body) = (frame.header >> 4, frame.header & 0x0f, frame.body);
        if required_flags(kind).is_some_and(|want| flags != want) {
            return Err(DecodeError::new(
                ReasonCode::MALFORMED_PACKET,
                "fixed header flags",
                "are reserved values",
            ));
        }
        let v5 = protocol.is_v5();
        let empty = |p: Packet<'a>| {
            if !body.is_empty() {
                return Err(DecodeError::malformed("packet without a body"));
            }
            Ok(p)
        };
        Ok(match kind {
            1 => Packet::Connect(Connect::decode(body)?),
            2 => Packet::ConnAck(ConnAck::decode(body, v5)?),
            3 => Packet::Publish(Publish::decode(flags, body, v5)?),
            4 => Packet::PubAck(Ack::decode(body, v5, PacketType::PubAck)?),
            5 => Packet::PubRec(Ack::decode(body, v5, PacketType::PubRec)?),
            6 => Packet::PubRel(Ack::decode(body, v5, PacketType::PubRel)?),
            7 => Packet::PubComp(Ack::decode(body, v5, PacketType::PubComp)?),
            8 => Packet::Subscribe(Subscribe::decode(body, v5)?),
            9 => Packet::SubAck(SubAck::decode(body, v5)?),
            10 => Packet::Unsubscribe(Unsubscribe::decode(body, v5)?),
            11 => Packet::UnsubAck(UnsubAck::decode(body, v5)?),
            12 => empty(Packet::PingReq)?,
            13 => empty(Packet::PingResp)?,
            14 => Packet::Disconnect(Disconnect::decode(body, v5)?),
            15 if v5 => Packet::Auth(Auth::decode(body)?),
            _ => return Err(DecodeError::new(ReasonCode::MALFORMED_PACKET, "packet type", "is reserved")),
        })
    }

    /// The packet's type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Connect(_) => PacketType::Connect,
            Packet::ConnAck(_) => PacketType::ConnAck,
            Packet::Publish(_) => PacketType::Publish,
            Packet::PubAck(_) => PacketType::PubAck,
            Packet::PubRec(_) => PacketType::PubRec,
            Packet::PubRel(_) => PacketType::PubRel,
            Packet::PubComp(_) => PacketType::PubComp,
            Packet::Subscribe(_) => PacketType::Subscribe,
            Packet::SubAck(_) => PacketType::SubAck,
            Packet::Unsubscribe(_) => PacketType::Unsubscribe,
            Packet::UnsubAck(_) => PacketType::UnsubAck,
            Packet::PingReq => PacketType::PingReq,
            Packet::PingResp => PacketType::PingResp,
            Packet::Disconnect(_) => PacketType::Disconnect,
            Packet::Auth(_) => PacketType::Auth,
        }
    }

    /// The first byte of the encoded packet.
    fn header(&self) -> u8 {
        let kind = self.packet_type() as u8;
        let flags = match self {
            Packet::Publish(p) => p.flags(),
            _ => required_flags(kind).unwrap_or(0),
        };
        kind << 4 | flags
    }

    fn body_len(&self, protocol: Protocol) -> usize {
        let v5 = protocol.is_v5();
        match self {
            Packet::Connect(p) => p.body_len(),
            Packet::ConnAck(p) => p.body_len(v5),
            Packet::Publish(p) => p.body_len(v5),
            Packet::PubAck(p) | Packet::PubRec(p) | Packet::PubRel(p) | Packet::PubComp(p) => p.body_len(v5),
            Packet::Subscribe(p) => p.body_len(v5),
            Packet::SubAck(p) => p.body_len(v5),
            Packet::Unsubscribe(p) => p.body_len(v5),
            Packet::UnsubAck(p) => p.body_len(v5),
            Packet::PingReq | Packet::PingResp => 0,
            Packet::Disconnect(p) => p.body_len(v5),
            Packet::Auth(p) => p.body_len(),
        }
    }

    /// The encoded length in `protocol`, for checking against a peer's maximum packet size.
    pub fn encoded_len(&self, protocol: Protocol) -> usize {
        let body = self.body_len(protocol);
        1 + wire::varint_len(body as u32) + body
    }

    /// Appends the packet, encoded for `protocol` (a CONNECT uses its own version). MQTT 5
    /// reason codes become the nearest 3.1.1 return codes; 3.1.1 drops properties.
    pub fn encode(&self, protocol: Protocol, out: &mut Vec<u8>) {
        let protocol = match self {
            Packet::Connect(c) => c.protocol,
            _ => protocol,
        };
        let v5 = protocol.is_v5();
        out.push(self.header());
        wire::write_varint(out, self.body_len(protocol) as u32);
        match self {
            Packet::Connect(p) => p.write_body(out),
            Packet::ConnAck(p) => p.write_body(v5, out),
            Packet::Publish(p) => p.write_body(v5, out),
            Packet::PubAck(p) | Packet::PubRec(p) | Packet::PubRel(p) | Packet::PubComp(p) => {
                p.write_body(v5, out)
            }
            Packet::Subscribe(p) => p.write_body(v5, out),
            Packet::SubAck(p) => p.write_body(v5, out),
            Packet::Unsubscribe(p) => p.write_body(v5, out),
            Packet::UnsubAck(p) => p.write_body(v5, out),
            Packet::PingReq | Packet::PingResp => {}
            Packet::Disconnect(p) => p.write_body(v5, out),
            Packet::Auth(p) => p.write_body(out),
        }
    }
}

#[cfg(test)]
mod tests;
