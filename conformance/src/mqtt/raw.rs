//! A raw MQTT client for the checks: it sends exactly the packets (or bytes) a check says and
//! reports exactly what came back, owned, so a check can assert on any field. Blocking std
//! sockets: checks run one after another and timing is what they measure.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use zero_mqtt::codec::{
    self, Ack, Connect, Disconnect, Packet, PacketId, Properties, Protocol, Publish, QoS, ReasonCode,
    SubOptions, Subscribe, SubscriptionIds, Subscriptions, Will,
};

/// What the broker sent, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Got {
    /// CONNACK.
    ConnAck {
        /// Session Present.
        session_present: bool,
        /// Reason (3.1.1 return codes mapped to MQTT 5 codes).
        reason: ReasonCode,
        /// Assigned Client Identifier (MQTT 5).
        assigned_id: Option<String>,
        /// Topic Alias Maximum (MQTT 5).
        topic_alias_maximum: Option<u16>,
    },
    /// PUBLISH.
    Publish(Msg),
    /// PUBACK.
    PubAck(PacketId, ReasonCode),
    /// PUBREC.
    PubRec(PacketId, ReasonCode),
    /// PUBREL.
    PubRel(PacketId),
    /// PUBCOMP.
    PubComp(PacketId, ReasonCode),
    /// SUBACK.
    SubAck(PacketId, Vec<ReasonCode>),
    /// UNSUBACK.
    UnsubAck(PacketId),
    /// PINGRESP.
    PingResp,
    /// DISCONNECT (MQTT 5).
    Disconnect(ReasonCode),
    /// Anything else a broker should not send.
    Other(String),
}

/// A PUBLISH as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    /// Topic.
    pub topic: String,
    /// Payload.
    pub payload: Vec<u8>,
    /// QoS.
    pub qos: QoS,
    /// RETAIN flag.
    pub retain: bool,
    /// DUP flag.
    pub dup: bool,
    /// Packet identifier.
    pub packet_id: PacketId,
    /// Subscription identifiers (MQTT 5).
    pub subscription_ids: Vec<u32>,
}

impl Got {
    fn from(p: Packet<'_>) -> Got {
        match p {
            Packet::ConnAck(a) => Got::ConnAck {
                session_present: a.session_present,
                reason: a.reason,
                assigned_id: a.properties.assigned_client_identifier.map(str::to_string),
                topic_alias_maximum: a.properties.topic_alias_maximum,
            },
            Packet::Publish(p) => Got::Publish(Msg {
                topic: p.topic.to_string(),
                payload: p.payload.to_vec(),
                qos: p.qos,
                retain: p.retain,
                dup: p.dup,
                packet_id: p.packet_id,
                subscription_ids: p.properties.subscription_ids.iter().collect(),
            }),
            Packet::PubAck(a) => Got::PubAck(a.packet_id, a.reason),
            Packet::PubRec(a) => Got::PubRec(a.packet_id, a.reason),
            Packet::PubRel(a) => Got::PubRel(a.packet_id),
            Packet::PubComp(a) => Got::PubComp(a.packet_id, a.reason),
            Packet::SubAck(a) => Got::SubAck(a.packet_id, a.reasons.iter().collect()),
            Packet::UnsubAck(a) => Got::UnsubAck(a.packet_id),
            Packet::PingResp => Got::PingResp,
            Packet::Disconnect(d) => Got::Disconnect(d.reason),
            other => Got::Other(format!("{:?}", other.packet_type())),
        }
    }
}

/// The result of a check step: `Err` says what the broker did wrong.
pub type Step<T> = Result<T, String>;

/// How CONNECT is to be made.
#[derive(Debug, Clone)]
pub struct Opts {
    /// Protocol version.
    pub protocol: Protocol,
    /// Client id.
    pub id: String,
    /// Clean start / clean session.
    pub clean: bool,
    /// Keep alive, seconds.
    pub keep_alive: u16,
    /// Session Expiry Interval (MQTT 5).
    pub expiry: Option<u32>,
    /// Receive Maximum (MQTT 5).
    pub receive_maximum: Option<u16>,
    /// Will: topic, payload, delay (MQTT 5).
    pub will: Option<(String, Vec<u8>, u32)>,
}

impl Opts {
    /// Clean start, keep-alive 60, the given version and id.
    pub fn new(protocol: Protocol, id: &str) -> Opts {
        Opts {
            protocol,
            id: id.into(),
            clean: true,
            keep_alive: 60,
            expiry: None,
            receive_maximum: None,
            will: None,
        }
    }
}

/// One raw connection.
pub struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Its protocol version.
    pub protocol: Protocol,
    next_id: PacketId,
}

/// How long a check waits for something the broker must send.
pub const WAIT: Duration = Duration::from_secs(3);
/// How long a check waits to see that the broker sends nothing more.
pub const QUIET: Duration = Duration::from_millis(300);

impl Raw {
    /// Opens a TCP connection (no CONNECT yet).
    pub fn open(target: SocketAddr, protocol: Protocol) -> Step<Raw> {
        let stream =
            TcpStream::connect_timeout(&target, WAIT).map_err(|e| format!("connect to {target}: {e}"))?;
        stream.set_nodelay(true).ok();
        Ok(Raw { stream, buf: Vec::new(), protocol, next_id: 1 })
    }

    /// Opens and connects; returns the connection and its CONNACK.
    pub fn connect(target: SocketAddr, o: &Opts) -> Step<(Raw, Got)> {
        let mut raw = Raw::open(target, o.protocol)?;
        let will = o.will.as_ref().map(|(topic, payload, delay)| Will {
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Properties {
                will_delay_interval: (*delay > 0).then_some(*delay),
                ..Properties::default()
            },
            topic,
            payload,
        });
        let connect = Connect {
            protocol: o.protocol,
            clean_start: o.clean,
            keep_alive: o.keep_alive,
            properties: Properties {
                session_expiry_interval: o.expiry,
                receive_maximum: o.receive_maximum,
                ..Properties::default()
            },
            client_id: &o.id,
            will,
            username: None,
            password: None,
            bridge: false,
        };
        raw.send(&Packet::Connect(connect))?;
        let ack = raw.recv(WAIT)?.ok_or("no CONNACK")?;
        Ok((raw, ack))
    }

    /// Connects and requires success.
    pub fn connected(target: SocketAddr, o: &Opts) -> Step<Raw> {
        match Raw::connect(target, o)? {
            (raw, Got::ConnAck { reason: ReasonCode::SUCCESS, .. }) => Ok(raw),
            (_, other) => Err(format!("CONNECT refused: {other:?}")),
        }
    }

    /// A fresh packet identifier.
    pub fn next_id(&mut self) -> PacketId {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        id
    }

    /// Sends a packet.
    pub fn send(&mut self, packet: &Packet<'_>) -> Step<()> {
        let mut bytes = Vec::new();
        packet.encode(self.protocol, &mut bytes);
        self.send_bytes(&bytes)
    }

    /// Sends raw bytes.
    pub fn send_bytes(&mut self, bytes: &[u8]) -> Step<()> {
        self.stream.write_all(bytes).map_err(|e| format!("send: {e}"))
    }

    /// The next packet within `timeout`: `Ok(None)` if nothing came, `Err` if the broker closed
    /// the connection or sent something undecodable.
    pub fn recv(&mut self, timeout: Duration) -> Step<Option<Got>> {
        let deadline = Instant::now() + timeout;
        loop {
            match codec::decode(&self.buf, self.protocol, usize::MAX) {
                Ok(Some((packet, len))) => {
                    let got = Got::from(packet);
                    self.buf.drain(..len);
                    return Ok(Some(got));
                }
                Ok(None) => {}
                Err(e) => return Err(format!("undecodable packet from the broker: {e}")),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.stream.set_read_timeout(Some(left)).ok();
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err("connection closed by the broker".into()),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
                {
                    return Ok(None)
                }
                Err(e) => return Err(format!("connection reset: {e}")),
            }
        }
    }

    /// The next packet, which must arrive within [`WAIT`].
    pub fn expect(&mut self, what: &str) -> Step<Got> {
        self.recv(WAIT)?.ok_or_else(|| format!("no {what} within {WAIT:?}"))
    }

    /// The next PUBLISH (other packets are an error).
    pub fn expect_publish(&mut self) -> Step<Msg> {
        match self.expect("PUBLISH")? {
            Got::Publish(m) => Ok(m),
            other => Err(format!("expected PUBLISH, got {other:?}")),
        }
    }

    /// Requires that nothing arrives for [`QUIET`].
    pub fn expect_quiet(&mut self) -> Step<()> {
        match self.recv(QUIET)? {
            None => Ok(()),
            Some(got) => Err(format!("expected nothing, got {got:?}")),
        }
    }

    /// Requires that the broker closes the connection (optionally after a DISCONNECT);
    /// returns the DISCONNECT's reason if one came.
    pub fn expect_closed(&mut self) -> Step<Option<ReasonCode>> {
        let mut reason = None;
        loop {
            match self.recv(WAIT) {
                Err(_) => return Ok(reason),
                Ok(Some(Got::Disconnect(r))) => reason = Some(r),
                Ok(Some(_)) => {}
                Ok(None) => return Err(format!("the broker kept the connection open for {WAIT:?}")),
            }
        }
    }

    /// Subscribes to one filter; returns the SUBACK's reason code.
    pub fn subscribe(&mut self, filter: &str, options: SubOptions, id: Option<u32>) -> Step<ReasonCode> {
        let packet_id = self.next_id();
        let ids: Vec<u32> = id.into_iter().collect();
        let list = [(filter, options)];
        let properties =
            Properties { subscription_ids: SubscriptionIds::List(&ids), ..Properties::default() };
        self.send(&Packet::Subscribe(Subscribe {
            packet_id,
            properties,
            subscriptions: Subscriptions::List(&list),
        }))?;
        match self.expect("SUBACK")? {
            Got::SubAck(id, reasons) if id == packet_id && reasons.len() == 1 => Ok(reasons[0]),
            other => Err(format!("expected SUBACK {packet_id}, got {other:?}")),
        }
    }

    /// Publishes and completes the QoS flow (PUBACK, or PUBREC/PUBREL/PUBCOMP).
    pub fn publish(&mut self, topic: &str, payload: &[u8], qos: QoS, retain: bool) -> Step<()> {
        self.publish_with(topic, payload, qos, retain, Properties::default())
    }

    /// [`Raw::publish`] with MQTT 5 properties.
    pub fn publish_with(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
        properties: Properties<'_>,
    ) -> Step<()> {
        let packet_id = if qos == QoS::AtMostOnce { 0 } else { self.next_id() };
        let p = Publish { dup: false, qos, retain, topic, packet_id, properties, payload };
        self.send(&Packet::Publish(p))?;
        match qos {
            QoS::AtMostOnce => Ok(()),
            QoS::AtLeastOnce => match self.expect("PUBACK")? {
                Got::PubAck(id, r) if id == packet_id && !r.is_error() => Ok(()),
                other => Err(format!("expected PUBACK {packet_id}, got {other:?}")),
            },
            QoS::ExactlyOnce => {
                match self.expect("PUBREC")? {
                    Got::PubRec(id, r) if id == packet_id && !r.is_error() => {}
                    other => return Err(format!("expected PUBREC {packet_id}, got {other:?}")),
                }
                self.send(&Packet::PubRel(Ack::new(packet_id)))?;
                match self.expect("PUBCOMP")? {
                    Got::PubComp(id, _) if id == packet_id => Ok(()),
                    other => Err(format!("expected PUBCOMP {packet_id}, got {other:?}")),
                }
            }
        }
    }

    /// Acknowledges a received PUBLISH as its QoS requires (the whole QoS 2 flow).
    pub fn ack(&mut self, m: &Msg) -> Step<()> {
        match m.qos {
            QoS::AtMostOnce => Ok(()),
            QoS::AtLeastOnce => self.send(&Packet::PubAck(Ack::new(m.packet_id))),
            QoS::ExactlyOnce => {
                self.send(&Packet::PubRec(Ack::new(m.packet_id)))?;
                match self.expect("PUBREL")? {
                    Got::PubRel(id) if id == m.packet_id => {}
                    other => return Err(format!("expected PUBREL {}, got {other:?}", m.packet_id)),
                }
                self.send(&Packet::PubComp(Ack::new(m.packet_id)))
            }
        }
    }

    /// A normal DISCONNECT, then close.
    pub fn disconnect(mut self) -> Step<()> {
        self.send(&Packet::Disconnect(Disconnect::new(ReasonCode::SUCCESS)))
    }
}
