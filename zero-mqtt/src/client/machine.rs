//! The MQTT client machine (sans-I/O): every client rule of MQTT 3.1.1 and 5.0 in one place.
//!
//! It is driven through zero-core's [`Machine`] contract (the driver opens a connection when
//! `wants_connect` says so, reports it with `handle_connected`, feeds `handle_input`,
//! `handle_timeout` and `handle_closed`, sends what `poll_transmit` yields and closes when
//! `poll_close` says so). The application calls [`Client::publish`], [`Client::subscribe`],
//! ... and reads [`Client::poll_event`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::codec::{
    self, Ack, Connect, Disconnect, Packet, PacketId, Properties, Protocol, Publish, QoS, ReasonCode,
    SubOptions, Subscribe, SubscriptionIds, Subscriptions, TopicFilters, Unsubscribe, Will,
};
use crate::topic;
use zero_core::machine::{Closed, Machine, Unframed};

/// A will message, set at CONNECT.
#[derive(Debug, Clone)]
pub struct LastWill {
    /// Topic name.
    pub topic: String,
    /// Payload.
    pub payload: Vec<u8>,
    /// QoS.
    pub qos: QoS,
    /// Retained.
    pub retain: bool,
    /// Will Delay Interval, seconds (MQTT 5).
    pub delay: u32,
}

/// How a client connects and reconnects.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Protocol version. Default MQTT 5.
    pub protocol: Protocol,
    /// Client identifier; empty asks the server for one (MQTT 5, or 3.1.1 with a clean session).
    pub client_id: String,
    /// Start a new session at the first connect. Reconnects always resume (clean start off).
    pub clean_start: bool,
    /// Keep Alive, seconds (0 turns it off). Default 60.
    pub keep_alive: u16,
    /// Session Expiry Interval, seconds (MQTT 5; 3.1.1 keeps the session while `clean_start`
    /// is off). Default 0.
    pub session_expiry: u32,
    /// User name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<Vec<u8>>,
    /// Will message.
    pub will: Option<LastWill>,
    /// Receive Maximum announced to the server (MQTT 5). Default 65,535.
    pub receive_maximum: u16,
    /// QoS 1/2 publishes in flight at most (also bounded by the server's Receive Maximum).
    pub max_inflight: u16,
    /// QoS 1/2 publishes held (queued or in flight); more are refused. Packet identifiers
    /// cap it below 65,535 whatever is set here.
    pub max_queued: usize,
    /// First reconnect delay, doubled per failed attempt up to `reconnect_max`.
    pub reconnect_min: Duration,
    /// Longest reconnect delay. `Duration::ZERO` turns reconnecting off.
    pub reconnect_max: Duration,
    /// How long CONNACK may take.
    pub connect_timeout: Duration,
    /// The largest packet accepted from the server, announced as Maximum Packet Size (MQTT 5);
    /// a larger one ends the connection with 0x95 as soon as its length is read, before its
    /// bytes are buffered. Default 1 MiB, as the broker's.
    pub max_packet_size: usize,
    /// Announce a bridge (MQTT 3.x: the protocol level's top bit, mosquitto's
    /// `try_private`): the server then sends back none of this client's own publishes and
    /// keeps RETAIN as published. MQTT 5 bridges use No Local instead. Default false.
    pub bridge: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            protocol: Protocol::V5,
            client_id: String::new(),
            clean_start: true,
            keep_alive: 60,
            session_expiry: 0,
            username: None,
            password: None,
            will: None,
            receive_maximum: u16::MAX,
            max_inflight: 1024,
            max_queued: 10_000,
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_packet_size: 1 << 20,
            bridge: false,
        }
    }
}

/// A message received from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Topic name.
    pub topic: String,
    /// Payload.
    pub payload: Vec<u8>,
    /// QoS it arrived with.
    pub qos: QoS,
    /// RETAIN flag as sent.
    pub retain: bool,
    /// Subscription identifiers of the matching subscriptions (MQTT 5).
    pub subscription_ids: Vec<u32>,
    /// Response Topic (MQTT 5).
    pub response_topic: Option<String>,
    /// Correlation Data (MQTT 5).
    pub correlation_data: Option<Vec<u8>>,
    /// Content Type (MQTT 5).
    pub content_type: Option<String>,
    /// User properties (MQTT 5).
    pub user_properties: Vec<(String, String)>,
}

/// What happened, for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// CONNACK accepted the connection.
    Connected {
        /// Whether the server resumed a session.
        session_present: bool,
    },
    /// The server refused the connection; no reconnect follows unless the reason is
    /// temporary (server unavailable or busy).
    Refused(ReasonCode),
    /// A message arrived.
    Message(Message),
    /// A QoS 1/2 publish completed (PUBACK, or PUBCOMP); a reason of 0x80 or above is the
    /// server's refusal.
    Published {
        /// Its packet identifier.
        packet_id: PacketId,
        /// The server's reason code.
        reason: ReasonCode,
    },
    /// SUBACK: one reason code per filter, in order (a granted QoS, or a failure).
    Subscribed {
        /// The SUBSCRIBE's packet identifier.
        packet_id: PacketId,
        /// The reason codes.
        reasons: Vec<ReasonCode>,
    },
    /// UNSUBACK.
    Unsubscribed {
        /// The UNSUBSCRIBE's packet identifier.
        packet_id: PacketId,
    },
    /// The connection ended; `reason` is the server's DISCONNECT reason when it sent one.
    Disconnected {
        /// The server's reason code, if any.
        reason: Option<ReasonCode>,
    },
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The topic name is not valid for publishing.
    #[error("`{0}` is not a valid topic name (no wildcards, not empty, at most 65,535 bytes)")]
    TopicName(String),
    /// A topic filter is not valid.
    #[error("`{0}` is not a valid topic filter")]
    TopicFilter(String),
    /// QoS 0 needs a connection; QoS 1/2 are held while disconnected.
    #[error("not connected: a QoS 0 message is not held while disconnected; use QoS 1 or 2")]
    NotConnected,
    /// The queue of publishes waiting is full.
    #[error("{0} publishes are already waiting; slow down or raise max_queued")]
    QueueFull(usize),
    /// The packet exceeds the server's Maximum Packet Size.
    #[error("the packet has {len} bytes; the server accepts at most {max}")]
    TooLarge {
        /// The packet's length.
        len: usize,
        /// The server's maximum.
        max: usize,
    },
    /// The client was closed with [`Client::disconnect`].
    #[error("the client is closed")]
    Closed,
}

/// Where the link to the server stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// No connection; the next attempt is due at the instant (or never).
    Down(Option<Instant>),
    /// The driver is opening a connection.
    Opening,
    /// CONNECT sent; CONNACK due by the instant.
    Connecting(Instant),
    /// CONNACK accepted.
    Up,
    /// DISCONNECT sent by the application: no reconnect.
    Closed,
}

/// Where an in-flight QoS 1/2 publish stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// PUBLISH sent; PUBACK / PUBREC due.
    Published,
    /// PUBREL sent; PUBCOMP due.
    Released,
}

/// Packet identifiers a client can have in use at once (0 is not one).
const PACKET_IDS: usize = 65_535;

/// An outgoing QoS 1/2 publish, encoded once.
#[derive(Debug)]
struct Outgoing {
    packet_id: PacketId,
    qos: QoS,
    /// The PUBLISH as encoded (DUP clear).
    packet: Vec<u8>,
    /// How far its flow got (meaningful in flight; a queued publish starts at PUBLISH).
    stage: Stage,
}

/// A SUBSCRIBE or UNSUBSCRIBE awaiting its acknowledgement (resent after a reconnect).
#[derive(Debug)]
struct Request {
    packet_id: PacketId,
    packet: Vec<u8>,
}

/// An MQTT client: session state, flows and reconnection, without I/O.
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    link: Link,
    /// Reconnect delay for the next failure.
    backoff: Duration,
    /// Bytes for the driver to send.
    transmit: Vec<u8>,
    /// What `poll_transmit` handed out last (its buffer is reused).
    sending: Vec<u8>,
    close: bool,
    events: VecDeque<Event>,
    /// Bytes of a partial packet.
    input: Unframed,
    next_packet_id: PacketId,
    /// QoS 1/2 publishes sent and not completed, oldest first.
    inflight: VecDeque<Outgoing>,
    /// QoS 1/2 publishes waiting for the window (or a connection), oldest first.
    queued: VecDeque<Outgoing>,
    /// Packet identifiers held by publishes and requests.
    ids_in_use: HashSet<PacketId>,
    /// Incoming QoS 2 packet ids delivered and awaiting PUBREL (not delivered twice).
    incoming: HashSet<PacketId>,
    requests: VecDeque<Request>,
    /// Subscriptions made, to restore when a reconnect finds no session.
    subscriptions: HashMap<String, (SubOptions, Option<u32>)>,
    /// The server's Receive Maximum and Maximum Packet Size (MQTT 5 CONNACK).
    server_receive_maximum: u16,
    server_max_packet: usize,
    /// Topic aliases the server set (MQTT 5).
    aliases: HashMap<u16, String>,
    keep_alive: Option<Duration>,
    last_sent: Instant,
    /// PINGREQ sent; PINGRESP due by then.
    ping_due: Option<Instant>,
    /// Connected at least once (later connects resume the session).
    was_up: bool,
}

impl Client {
    /// A client that wants to connect at once.
    pub fn new(config: ClientConfig, now: Instant) -> Client {
        Client {
            backoff: config.reconnect_min,
            keep_alive: (config.keep_alive > 0).then(|| Duration::from_secs(u64::from(config.keep_alive))),
            config,
            link: Link::Down(Some(now)),
            transmit: Vec::new(),
            sending: Vec::new(),
            close: false,
            events: VecDeque::new(),
            input: Unframed::default(),
            next_packet_id: 1,
            inflight: VecDeque::new(),
            queued: VecDeque::new(),
            ids_in_use: HashSet::new(),
            incoming: HashSet::new(),
            requests: VecDeque::new(),
            subscriptions: HashMap::new(),
            server_receive_maximum: u16::MAX,
            server_max_packet: usize::MAX,
            aliases: HashMap::new(),
            last_sent: now,
            ping_due: None,
            was_up: false,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Whether CONNACK accepted the current connection.
    pub fn is_connected(&self) -> bool {
        self.link == Link::Up
    }

    /// QoS 1/2 publishes not completed yet (queued or in flight).
    pub fn pending(&self) -> usize {
        self.inflight.len() + self.queued.len()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn schedule_reconnect(&mut self, now: Instant) {
        if self.link == Link::Closed {
            return;
        }
        if self.config.reconnect_max.is_zero() {
            self.link = Link::Down(None);
            return;
        }
        self.link = Link::Down(Some(now + self.backoff));
        self.backoff = (self.backoff * 2).min(self.config.reconnect_max);
    }

    /// The server broke the protocol: DISCONNECT (MQTT 5) and close.
    fn violation(&mut self, reason: ReasonCode) {
        if self.config.protocol.is_v5() {
            self.send(&Packet::Disconnect(Disconnect::new(reason)));
        }
        self.close = true;
    }

    fn send(&mut self, packet: &Packet<'_>) {
        packet.encode(self.config.protocol, &mut self.transmit);
    }

    fn on_packet(&mut self, packet: Packet<'_>, now: Instant) {
        match (self.link, packet) {
            (Link::Connecting(_), Packet::ConnAck(ack)) => {
                if ack.reason.is_error() {
                    self.events.push_back(Event::Refused(ack.reason));
                    let temporary =
                        matches!(ack.reason, ReasonCode::SERVER_UNAVAILABLE | ReasonCode::SERVER_BUSY);
                    self.close = true;
                    if temporary {
                        self.schedule_reconnect(now);
                    } else {
                        self.link = Link::Down(None);
                    }
                    return;
                }
                let p = &ack.properties;
                self.server_receive_maximum = p.receive_maximum.unwrap_or(u16::MAX);
                self.server_max_packet = p.maximum_packet_size.map_or(usize::MAX, |m| m as usize);
                if let Some(k) = p.server_keep_alive {
                    self.keep_alive = (k > 0).then(|| Duration::from_secs(u64::from(k)));
                }
                if let Some(id) = p.assigned_client_identifier {
                    self.config.client_id = id.to_string();
                }
                self.link = Link::Up;
                self.was_up = true;
                self.backoff = self.config.reconnect_min;
                self.events.push_back(Event::Connected { session_present: ack.session_present });
                self.resume(ack.session_present, now);
            }
            (Link::Up, Packet::Publish(p)) => self.on_publish(p, now),
            (Link::Up, Packet::PubAck(a)) => self.on_ack(a, Stage::Published, QoS::AtLeastOnce, now),
            (Link::Up, Packet::PubRec(a)) => self.on_pubrec(a, now),
            (Link::Up, Packet::PubComp(a)) => self.on_ack(a, Stage::Released, QoS::ExactlyOnce, now),
            (Link::Up, Packet::PubRel(a)) => {
                let reason = if self.incoming.remove(&a.packet_id) {
                    ReasonCode::SUCCESS
                } else {
                    ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
                };
                self.send(&Packet::PubComp(Ack { reason, ..Ack::new(a.packet_id) }));
            }
            (Link::Up, Packet::SubAck(a)) => {
                if self.finish_request(a.packet_id) {
                    let reasons = a.reasons.iter().collect();
                    self.events.push_back(Event::Subscribed { packet_id: a.packet_id, reasons });
                }
            }
            (Link::Up, Packet::UnsubAck(a)) => {
                if self.finish_request(a.packet_id) {
                    self.events.push_back(Event::Unsubscribed { packet_id: a.packet_id });
                }
            }
            (Link::Up, Packet::PingResp) => {}
            (_, Packet::Disconnect(d)) => {
                self.events.push_back(Event::Disconnected { reason: Some(d.reason) });
                self.close = true;
                self.schedule_reconnect(now);
            }
            (_, other) => {
                tracing::debug!(packet = ?other.packet_type(), "unexpected packet from the server");
                self.violation(ReasonCode::PROTOCOL_ERROR);
            }
        }
    }

    /// After CONNACK: restore subscriptions if the session is new, resend what was in flight,
    /// send what waited.
    fn resume(&mut self, session_present: bool, now: Instant) {
        for r in &self.requests {
            self.transmit.extend_from_slice(&r.packet);
        }
        if !session_present {
            // The server has no state: its QoS 2 ids are gone, flows start afresh (as new
            // publishes, so nothing is lost), and the subscriptions are made again.
            self.incoming.clear();
            while let Some(o) = self.inflight.pop_back() {
                self.queued.push_front(o);
            }
            let subs: Vec<_> = self.subscriptions.iter().map(|(f, &(o, id))| (f.clone(), o, id)).collect();
            for (filter, options, id) in subs {
                let Ok(packet_id) = self.allocate_packet_id() else {
                    tracing::warn!("every packet identifier is in use: subscriptions not restored");
                    break;
                };
                let packet =
                    subscribe_packet(self.config.protocol, packet_id, &[(filter.as_str(), options)], id);
                self.request(packet_id, packet);
            }
        }
        for o in &self.inflight {
            match o.stage {
                Stage::Published => {
                    let start = self.transmit.len();
                    self.transmit.extend_from_slice(&o.packet);
                    self.transmit[start] |= 0x08; // DUP
                }
                Stage::Released => {
                    Packet::PubRel(Ack::new(o.packet_id)).encode(self.config.protocol, &mut self.transmit)
                }
            }
        }
        self.flush(now);
    }

    /// Sends queued publishes while the window allows.
    fn flush(&mut self, now: Instant) {
        if self.link != Link::Up {
            return;
        }
        let window = usize::from(self.config.max_inflight.min(self.server_receive_maximum));
        while self.inflight.len() < window {
            let Some(o) = self.queued.pop_front() else { break };
            self.transmit.extend_from_slice(&o.packet);
            self.inflight.push_back(Outgoing { stage: Stage::Published, ..o });
        }
        self.last_sent = now;
    }

    fn on_publish(&mut self, p: Publish<'_>, now: Instant) {
        let topic = match p.properties.topic_alias {
            Some(alias) if p.topic.is_empty() => match self.aliases.get(&alias) {
                Some(t) => t.clone(),
                None => return self.violation(ReasonCode::TOPIC_ALIAS_INVALID),
            },
            Some(alias) => {
                self.aliases.insert(alias, p.topic.to_string());
                p.topic.to_string()
            }
            None => p.topic.to_string(),
        };
        let deliver = match p.qos {
            QoS::AtMostOnce => true,
            QoS::AtLeastOnce => {
                self.send(&Packet::PubAck(Ack::new(p.packet_id)));
                true
            }
            QoS::ExactlyOnce => {
                self.send(&Packet::PubRec(Ack::new(p.packet_id)));
                self.incoming.insert(p.packet_id)
            }
        };
        self.last_sent = now;
        if deliver {
            let props = &p.properties;
            self.events.push_back(Event::Message(Message {
                topic,
                payload: p.payload.to_vec(),
                qos: p.qos,
                retain: p.retain,
                subscription_ids: props.subscription_ids.iter().collect(),
                response_topic: props.response_topic.map(str::to_string),
                correlation_data: props.correlation_data.map(<[u8]>::to_vec),
                content_type: props.content_type.map(str::to_string),
                user_properties: props.user_properties.iter().map(|(k, v)| (k.into(), v.into())).collect(),
            }));
        }
    }

    fn on_ack(&mut self, a: Ack<'_>, stage: Stage, qos: QoS, now: Instant) {
        let found =
            self.inflight.iter().position(|o| o.packet_id == a.packet_id && o.stage == stage && o.qos == qos);
        if let Some(i) = found {
            self.inflight.remove(i);
            self.ids_in_use.remove(&a.packet_id);
            self.events.push_back(Event::Published { packet_id: a.packet_id, reason: a.reason });
            self.flush(now);
        }
    }

    fn on_pubrec(&mut self, a: Ack<'_>, now: Instant) {
        let found =
            self.inflight.iter().position(|o| o.packet_id == a.packet_id && o.qos == QoS::ExactlyOnce);
        match found {
            Some(i) if a.reason.is_error() => {
                self.inflight.remove(i);
                self.ids_in_use.remove(&a.packet_id);
                self.events.push_back(Event::Published { packet_id: a.packet_id, reason: a.reason });
                self.flush(now);
            }
            Some(i) => {
                self.inflight[i].stage = Stage::Released;
                self.send(&Packet::PubRel(Ack::new(a.packet_id)));
            }
            None => {
                let reason = ReasonCode::PACKET_IDENTIFIER_NOT_FOUND;
                self.send(&Packet::PubRel(Ack { reason, ..Ack::new(a.packet_id) }));
            }
        }
    }

    /// Publishes a message. QoS 0 needs a connection; QoS 1/2 are held (bounded) until they
    /// complete, across reconnects. Returns the packet identifier (0 for QoS 0).
    pub fn publish(&mut self, p: Publish<'_>, now: Instant) -> Result<PacketId, ClientError> {
        if self.link == Link::Closed {
            return Err(ClientError::Closed);
        }
        if !topic::valid_topic_name(p.topic) {
            return Err(ClientError::TopicName(p.topic.into()));
        }
        if p.qos == QoS::AtMostOnce && self.link != Link::Up {
            return Err(ClientError::NotConnected);
        }
        if p.qos != QoS::AtMostOnce && self.pending() >= self.config.max_queued {
            return Err(ClientError::QueueFull(self.pending()));
        }
        let packet_id = if p.qos == QoS::AtMostOnce { 0 } else { self.allocate_packet_id()? };
        let packet = Packet::Publish(Publish { dup: false, packet_id, ..p });
        let len = packet.encoded_len(self.config.protocol);
        if len > self.server_max_packet {
            return Err(ClientError::TooLarge { len, max: self.server_max_packet });
        }
        if p.qos == QoS::AtMostOnce {
            self.send(&packet);
            self.last_sent = now;
        } else {
            let mut bytes = Vec::with_capacity(len);
            packet.encode(self.config.protocol, &mut bytes);
            self.queued.push_back(Outgoing { packet_id, qos: p.qos, packet: bytes, stage: Stage::Published });
            self.flush(now);
        }
        Ok(packet_id)
    }

    /// Subscribes to `filters` (with an optional MQTT 5 subscription identifier); the
    /// subscriptions are restored by reconnects that find no session. Returns the packet id.
    pub fn subscribe(
        &mut self,
        filters: &[(&str, SubOptions)],
        id: Option<u32>,
    ) -> Result<PacketId, ClientError> {
        if self.link == Link::Closed {
            return Err(ClientError::Closed);
        }
        if let Some((filter, _)) = filters.iter().find(|(f, _)| topic::subscription_filter(f).is_none()) {
            return Err(ClientError::TopicFilter(filter.to_string()));
        }
        for &(filter, options) in filters {
            self.subscriptions.insert(filter.into(), (options, id));
        }
        let packet_id = self.allocate_packet_id()?;
        self.request(packet_id, subscribe_packet(self.config.protocol, packet_id, filters, id));
        Ok(packet_id)
    }

    /// Unsubscribes from `filters`. Returns the packet id.
    pub fn unsubscribe(&mut self, filters: &[&str]) -> Result<PacketId, ClientError> {
        if self.link == Link::Closed {
            return Err(ClientError::Closed);
        }
        for filter in filters {
            self.subscriptions.remove(*filter);
        }
        let packet_id = self.allocate_packet_id()?;
        let unsub = Unsubscribe {
            packet_id,
            properties: Properties::default(),
            filters: TopicFilters::List(filters),
        };
        let mut packet = Vec::new();
        Packet::Unsubscribe(unsub).encode(self.config.protocol, &mut packet);
        self.request(packet_id, packet);
        Ok(packet_id)
    }

    /// Ends the session politely: DISCONNECT (normal, so no will), then close; no reconnect.
    pub fn disconnect(&mut self) {
        if self.link == Link::Up {
            self.send(&Packet::Disconnect(Disconnect::new(ReasonCode::SUCCESS)));
        }
        self.close = self.link != Link::Closed && !matches!(self.link, Link::Down(_));
        self.link = Link::Closed;
    }

    /// Keeps an encoded SUBSCRIBE or UNSUBSCRIBE until acknowledged; sends it if connected.
    fn request(&mut self, packet_id: PacketId, packet: Vec<u8>) {
        if self.link == Link::Up {
            self.transmit.extend_from_slice(&packet);
        }
        self.requests.push_back(Request { packet_id, packet });
    }

    fn finish_request(&mut self, packet_id: PacketId) -> bool {
        let found = self.requests.iter().position(|r| r.packet_id == packet_id);
        self.ids_in_use.remove(&packet_id);
        found.map(|i| self.requests.remove(i)).is_some()
    }

    /// The next packet id not in use by a publish or request.
    /// The next free packet identifier; all 65,535 in use is [`ClientError::QueueFull`].
    fn allocate_packet_id(&mut self) -> Result<PacketId, ClientError> {
        if self.ids_in_use.len() >= PACKET_IDS {
            return Err(ClientError::QueueFull(self.pending()));
        }
        loop {
            let id = self.next_packet_id;
            self.next_packet_id = self.next_packet_id.checked_add(1).unwrap_or(1);
            if self.ids_in_use.insert(id) {
                return Ok(id);
            }
        }
    }
}

/// The MQTT client under zero-core's machine contract. A close it asks for (keep-alive or
/// CONNACK timeout, a protocol violation, [`Client::disconnect`]) is reported back like any
/// other; the cause does not change what follows (a reconnect with backoff, unless closed).
impl Machine for Client {
    fn wants_connect(&mut self, now: Instant) -> bool {
        match self.link {
            Link::Down(Some(at)) if at <= now => {
                self.link = Link::Opening;
                true
            }
            _ => false,
        }
    }

    fn handle_connected(&mut self, now: Instant) {
        if self.link != Link::Opening {
            return;
        }
        // Nothing queued for the old connection belongs on the new one before CONNECT.
        self.transmit.clear();
        self.input.clear();
        self.aliases.clear();
        self.ping_due = None;
        let c = &self.config;
        let will = c.will.as_ref().map(|w| Will {
            qos: w.qos,
            retain: w.retain,
            properties: Properties {
                will_delay_interval: (w.delay > 0).then_some(w.delay),
                ..Properties::default()
            },
            topic: &w.topic,
            payload: &w.payload,
        });
        let v5 = c.protocol.is_v5();
        let properties = Properties {
            session_expiry_interval: (v5 && c.session_expiry > 0).then_some(c.session_expiry),
            receive_maximum: (v5 && c.receive_maximum < u16::MAX).then_some(c.receive_maximum),
            maximum_packet_size: v5.then(|| c.max_packet_size.min(u32::MAX as usize) as u32),
            ..Properties::default()
        };
        let connect = Connect {
            protocol: c.protocol,
            clean_start: c.clean_start && !self.was_up,
            keep_alive: c.keep_alive,
            properties,
            client_id: &c.client_id,
            will,
            username: c.username.as_deref(),
            password: c.password.as_deref(),
            bridge: c.bridge && !v5,
        };
        Packet::Connect(connect).encode(c.protocol, &mut self.transmit);
        self.last_sent = now;
        self.link = Link::Connecting(now + c.connect_timeout);
    }

    fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        let mut input = std::mem::take(&mut self.input);
        input.feed(bytes, |buf| {
            let mut at = 0;
            while !self.close {
                match codec::decode(&buf[at..], self.config.protocol, self.config.max_packet_size) {
                    Ok(Some((packet, len))) => {
                        at += len;
                        self.ping_due = None;
                        self.on_packet(packet, now);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!(%e, "malformed packet from the server");
                        self.violation(e.reason);
                        break;
                    }
                }
            }
            at
        });
        // A connection being closed keeps nothing.
        if !self.close {
            self.input = input;
        }
    }

    fn handle_closed(&mut self, now: Instant, _cause: Closed) {
        match self.link {
            // Already handled: the server's DISCONNECT or CONNACK refusal, or our own close.
            Link::Down(_) | Link::Closed => {}
            Link::Up => {
                self.events.push_back(Event::Disconnected { reason: None });
                self.schedule_reconnect(now);
            }
            Link::Opening | Link::Connecting(_) => self.schedule_reconnect(now),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        match self.link {
            Link::Connecting(due) if due <= now => {
                tracing::debug!("no CONNACK in time");
                self.close = true;
            }
            Link::Up => {
                if self.ping_due.is_some_and(|due| due <= now) {
                    tracing::debug!("no PINGRESP in time");
                    self.close = true;
                } else if let Some(k) = self.keep_alive.filter(|&k| self.last_sent + k <= now) {
                    self.send(&Packet::PingReq);
                    self.last_sent = now;
                    self.ping_due.get_or_insert(now + k);
                }
            }
            _ => {}
        }
    }

    fn poll_transmit(&mut self) -> Option<&[u8]> {
        if self.transmit.is_empty() {
            return None;
        }
        // The two buffers trade places, so steady traffic allocates nothing.
        std::mem::swap(&mut self.transmit, &mut self.sending);
        self.transmit.clear();
        Some(&self.sending)
    }

    fn poll_close(&mut self) -> bool {
        std::mem::take(&mut self.close)
    }

    fn is_drained(&self) -> bool {
        self.link == Link::Closed && !self.close
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let ping = self.keep_alive.filter(|_| self.link == Link::Up).map(|k| self.last_sent + k);
        let link = match self.link {
            Link::Down(at) => at,
            Link::Connecting(due) => Some(due),
            _ => None,
        };
        [ping, self.ping_due, link].into_iter().flatten().min()
    }
}

/// A SUBSCRIBE, encoded for `protocol`.
fn subscribe_packet(
    protocol: Protocol,
    packet_id: PacketId,
    list: &[(&str, SubOptions)],
    id: Option<u32>,
) -> Vec<u8> {
    let ids: Vec<u32> = id.into_iter().collect();
    let properties = Properties { subscription_ids: SubscriptionIds::List(&ids), ..Properties::default() };
    let subscribe = Subscribe { packet_id, properties, subscriptions: Subscriptions::List(list) };
    let mut bytes = Vec::new();
    Packet::Subscribe(subscribe).encode(protocol, &mut bytes);
    bytes
}
