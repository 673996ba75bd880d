//! Journal records: what the broker writes ahead of acknowledging, and their framing.
//!
//! A record on disk is `[body length u32][crc32c of body u32][body]`, big-endian like MQTT; the body
//! is a kind byte and the record's fields. Strings carry a u16 length, payloads a u32 length.
//! A torn or corrupt tail (a crash mid-write) fails its length or checksum: replay stops
//! there and the journal is cut back to the last whole record.

use crate::codec::wire::Reader;
use crate::codec::{DecodeError, PacketId};

/// Sessions, subscriptions, messages and flows, as changes to replay in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Record<'a> {
    /// A persistent session exists (or its expiry interval changed).
    Session {
        /// The client identifier.
        client: &'a str,
        /// Session Expiry Interval, seconds (`u32::MAX`: never).
        expiry: u32,
    },
    /// The session ended: its subscriptions, deliveries and QoS 2 state go with it.
    SessionEnd {
        /// The client identifier.
        client: &'a str,
    },
    /// The session subscribed (or replaced a subscription).
    Subscribe {
        /// The client identifier.
        client: &'a str,
        /// The filter as the client wrote it (`$share/...` included).
        filter: &'a str,
        /// Subscription options, as the MQTT 5 options byte.
        options: u8,
        /// Subscription identifier; 0 for none.
        id: u32,
    },
    /// The session unsubscribed.
    Unsubscribe {
        /// The client identifier.
        client: &'a str,
        /// The filter.
        filter: &'a str,
    },
    /// A message body, referenced by later records through `mid`.
    Message {
        /// Its journal identifier.
        mid: u64,
        /// Topic name.
        topic: &'a str,
        /// QoS it was published with.
        qos: u8,
        /// Whether it was published retained.
        retain: bool,
        /// When it expires, Unix milliseconds; 0 for never.
        expires_ms: u64,
        /// Forwarded properties (a property block without its length).
        properties: &'a [u8],
        /// Payload.
        payload: &'a [u8],
    },
    /// A retained message was set.
    Retain {
        /// The message.
        mid: u64,
    },
    /// A topic's retained message was cleared.
    Unretain {
        /// The topic name.
        topic: &'a str,
    },
    /// A QoS 1/2 delivery was queued for a session.
    Enqueue {
        /// Its journal identifier.
        did: u64,
        /// The client identifier.
        client: &'a str,
        /// The message.
        mid: u64,
        /// QoS it is delivered with.
        qos: u8,
        /// RETAIN flag to send.
        retain: bool,
        /// Subscription identifiers, as big-endian u32s.
        ids: &'a [u8],
    },
    /// The delivery was sent under a packet identifier (it is in flight).
    Sent {
        /// The delivery.
        did: u64,
        /// Its packet identifier.
        packet_id: PacketId,
    },
    /// PUBREC arrived for the QoS 2 delivery: PUBREL is what is resent now.
    Released {
        /// The delivery.
        did: u64,
    },
    /// The delivery is finished (acknowledged, expired, refused or dropped).
    Done {
        /// The delivery.
        did: u64,
    },
    /// An incoming QoS 2 PUBLISH was routed and PUBREC sent; PUBREL is awaited.
    AwaitRelease {
        /// The client identifier.
        client: &'a str,
        /// The publisher's packet identifier.
        packet_id: PacketId,
    },
    /// PUBREL arrived for the incoming QoS 2 flow.
    ReleaseDone {
        /// The client identifier.
        client: &'a str,
        /// The packet identifier.
        packet_id: PacketId,
    },
}

impl<'a> Record<'a> {
    /// Appends the framed record to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        zero_core::journal::frame(out, |out| self.encode_body(out));
    }

    fn encode_body(&self, out: &mut Vec<u8>) {
        match *self {
            Record::Session { client, expiry } => {
                out.push(1);
                str16(out, client);
                out.extend_from_slice(&expiry.to_be_bytes());
            }
            Record::SessionEnd { client } => {
                out.push(2);
                str16(out, client);
            }
            Record::Subscribe { client, filter, options, id } => {
                out.push(3);
                str16(out, client);
                str16(out, filter);
                out.push(options);
                out.extend_from_slice(&id.to_be_bytes());
            }
            Record::Unsubscribe { client, filter } => {
                out.push(4);
                str16(out, client);
                str16(out, filter);
            }
            Record::Message { mid, topic, qos, retain, expires_ms, properties, payload } => {
                out.push(5);
                out.extend_from_slice(&mid.to_be_bytes());
                str16(out, topic);
                out.push(qos | u8::from(retain) << 4);
                out.extend_from_slice(&expires_ms.to_be_bytes());
                bytes32(out, properties);
                bytes32(out, payload);
            }
            Record::Retain { mid } => {
                out.push(6);
                out.extend_from_slice(&mid.to_be_bytes());
            }
            Record::Unretain { topic } => {
                out.push(7);
                str16(out, topic);
            }
            Record::Enqueue { did, client, mid, qos, retain, ids } => {
                out.push(8);
                out.extend_from_slice(&did.to_be_bytes());
                str16(out, client);
                out.extend_from_slice(&mid.to_be_bytes());
                out.push(qos | u8::from(retain) << 4);
                bytes32(out, ids);
            }
            Record::Sent { did, packet_id } => {
                out.push(9);
                out.extend_from_slice(&did.to_be_bytes());
                out.extend_from_slice(&packet_id.to_be_bytes());
            }
            Record::Released { did } => {
                out.push(10);
                out.extend_from_slice(&did.to_be_bytes());
            }
            Record::Done { did } => {
                out.push(11);
                out.extend_from_slice(&did.to_be_bytes());
            }
            Record::AwaitRelease { client, packet_id } => {
                out.push(12);
                str16(out, client);
                out.extend_from_slice(&packet_id.to_be_bytes());
            }
            Record::ReleaseDone { client, packet_id } => {
                out.push(13);
                str16(out, client);
                out.extend_from_slice(&packet_id.to_be_bytes());
            }
        }
    }

    /// The record at the start of `buf` and its framed length; `None` if `buf` does not start
    /// with a whole, intact record (a torn or corrupt tail).
    pub fn decode(buf: &'a [u8]) -> Option<(Record<'a>, usize)> {
        let (body, len) = zero_core::journal::next_record(buf)?;
        Some((Record::decode_body(body).ok()?, len))
    }

    /// Whether `body` is a record this version reads (the journal cuts a tail that is not).
    pub fn is_valid(body: &[u8]) -> bool {
        Record::decode_body(body).is_ok()
    }

    fn decode_body(body: &'a [u8]) -> Result<Record<'a>, DecodeError> {
        let mut r = Reader::new(body);
        let record = match r.u8("kind")? {
            1 => Record::Session { client: r.str("client")?, expiry: r.u32("journal field")? },
            2 => Record::SessionEnd { client: r.str("client")? },
            3 => Record::Subscribe {
                client: r.str("client")?,
                filter: r.str("filter")?,
                options: r.u8("options")?,
                id: r.u32("journal field")?,
            },
            4 => Record::Unsubscribe { client: r.str("client")?, filter: r.str("filter")? },
            5 => {
                let mid = u64be(&mut r)?;
                let topic = r.str("topic")?;
                let flags = r.u8("flags")?;
                Record::Message {
                    mid,
                    topic,
                    qos: flags & 3,
                    retain: flags & 0x10 != 0,
                    expires_ms: u64be(&mut r)?,
                    properties: bytes32_read(&mut r)?,
                    payload: bytes32_read(&mut r)?,
                }
            }
            6 => Record::Retain { mid: u64be(&mut r)? },
            7 => Record::Unretain { topic: r.str("topic")? },
            8 => {
                let did = u64be(&mut r)?;
                let client = r.str("client")?;
                let mid = u64be(&mut r)?;
                let flags = r.u8("flags")?;
                let ids = bytes32_read(&mut r)?;
                Record::Enqueue { did, client, mid, qos: flags & 3, retain: flags & 0x10 != 0, ids }
            }
            9 => Record::Sent { did: u64be(&mut r)?, packet_id: r.u16("packet id")? },
            10 => Record::Released { did: u64be(&mut r)? },
            11 => Record::Done { did: u64be(&mut r)? },
            12 => Record::AwaitRelease { client: r.str("client")?, packet_id: r.u16("packet id")? },
            13 => Record::ReleaseDone { client: r.str("client")?, packet_id: r.u16("packet id")? },
            _ => return Err(DecodeError::malformed("journal record kind")),
        };
        if !r.is_empty() {
            return Err(DecodeError::malformed("journal record length"));
        }
        Ok(record)
    }
}

fn str16(out: &mut Vec<u8>, s: &str) {
    crate::codec::wire::write_bytes(out, s.as_bytes());
}

fn bytes32(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

fn u64be(r: &mut Reader<'_>) -> Result<u64, DecodeError> {
    Ok(u64::from_be_bytes(r.take(8, "journal field")?.try_into().expect("took 8 bytes")))
}

fn bytes32_read<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], DecodeError> {
    let len = r.u32("journal length")? as usize;
    r.take(len, "journal bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Record<'static>> {
        vec![
            Record::Session { client: "c1", expiry: u32::MAX },
            Record::SessionEnd { client: "c1" },
            Record::Subscribe { client: "c1", filter: "$share/g/a/+", options: 0x29, id: 7 },
            Record::Unsubscribe { client: "c1", filter: "a/#" },
            Record::Message {
                mid: 9,
                topic: "a/b",
                qos: 2,
                retain: true,
                expires_ms: 1_700_000_000_000,
                properties: &[3, 0, 1, b'x'],
                payload: b"hello",
            },
            Record::Retain { mid: 9 },
            Record::Unretain { topic: "a/b" },
            Record::Enqueue { did: 3, client: "c1", mid: 9, qos: 1, retain: false, ids: &[0, 0, 0, 7] },
            Record::Sent { did: 3, packet_id: 65535 },
            Record::Released { did: 3 },
            Record::Done { did: 3 },
            Record::AwaitRelease { client: "c2", packet_id: 1 },
            Record::ReleaseDone { client: "c2", packet_id: 1 },
        ]
    }

    #[test]
    fn every_record_round_trips_back_to_back() {
        let mut buf = Vec::new();
        for r in samples() {
            r.encode(&mut buf);
        }
        let mut at = 0;
        for want in samples() {
            let (got, len) = Record::decode(&buf[at..]).expect("whole record");
            assert_eq!(got, want);
            at += len;
        }
        assert_eq!(at, buf.len());
    }

    #[test]
    fn a_torn_or_flipped_tail_is_refused() {
        let mut buf = Vec::new();
        Record::Subscribe { client: "c1", filter: "a/+", options: 1, id: 0 }.encode(&mut buf);
        for cut in 0..buf.len() {
            assert!(Record::decode(&buf[..cut]).is_none(), "cut at {cut}");
        }
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x40;
            assert!(Record::decode(&bad).is_none(), "flip at {i}");
        }
    }
}
