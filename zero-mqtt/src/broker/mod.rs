//! The broker machine: every rule of an MQTT 3.1.1 / 5.0 server, without I/O or a clock.
//!
//! The driver feeds it connections ([`Broker::handle_accept`]), bytes
//! ([`Broker::handle_input`]), closes, writability and time ([`Broker::handle_timeout`] at
//! [`Broker::poll_timeout`]). It writes packets through [`Transmit`], straight into each
//! connection's send queue: a publish fanned out to a thousand subscribers is encoded a
//! thousand times into their queues and never copied again. A full send queue refuses the
//! write; the broker then keeps QoS 1/2 deliveries in the session's bounded queue and drops
//! QoS 0 ones (counted in `$SYS`), so a slow subscriber never slows a publisher or grows
//! memory without bound.

mod cluster;
mod config;
mod conn;
mod message;
mod persist;
mod router;
mod session;
mod sys;
mod timers;

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use compact_str::CompactString;
use slab::Slab;

pub use cluster::{home_shard, Interest, Place, ShardMessage, MAX_SHARDS};
pub use config::{Anonymous, BrokerConfig};
pub use conn::ConnKey;
pub use message::{Delivery, Message, TopicName};
pub use sys::{Gauges, Stats};

use crate::auth::Access;
use crate::codec::{
    self, Ack, ConnAck, Connect, Disconnect, Packet, Properties, Protocol, Publish, QoS, ReasonCode,
    ReasonCodes, RetainHandling, SubAck, Subscribe, UnsubAck, Unsubscribe,
};
use crate::store::{Journaling, Record};
use crate::topic;
use conn::{Conn, Conns};
use router::{Remote, Router, Subscription};
use session::{ClientIndex, Outbound, PendingWill, Session, Stage};
use timers::{Timer, Timers};

/// Where the broker writes: the driver's send queues.
pub trait Transmit<C> {
    /// The send queue of `conn` to append encoded packets to, or `None` when it is full (or
    /// the connection is gone).
    fn buffer(&mut self, conn: C) -> Option<&mut Vec<u8>>;
    /// Closes `conn` after what is queued is sent.
    fn close(&mut self, conn: C);
    /// Hands `conn` to the home shard of the client id in its CONNECT (in a cluster only);
    /// `input` is everything it sent from that CONNECT on, for that shard to read first. The
    /// broker has forgotten the connection; bytes that still arrive belong after `input`.
    fn hand_off(&mut self, conn: C, shard: usize, input: &[u8]) {
        let _ = (shard, input);
        self.close(conn);
    }
}

/// An MQTT broker (or one shard of it: see the `cluster` module).
pub struct Broker<C> {
    config: BrokerConfig,
    place: Place,
    conns: Conns<C>,
    sessions: Slab<Session<C>>,
    by_client: ClientIndex,
    router: Router,
    timers: Timers<C>,
    next_uid: u64,
    stats: Stats,
    /// The matches of the publish being routed (kept to reuse its allocation).
    matches: Vec<(usize, Subscription)>,
    /// Where the publish being routed goes beyond this shard (kept likewise).
    remote: Remote,
    /// Messages for the other shards, posted by the driver.
    outbox: Vec<(usize, ShardMessage)>,
    /// The other shards' last `$SYS` reports (on shard 0), by shard.
    reports: Vec<Option<(Box<Stats>, Gauges)>>,
    /// Records for the journal, when persistence is on.
    journal: Option<Journaling>,
}

/// Why a packet ends the connection: the reason code of the DISCONNECT (MQTT 5).
type Violation = ReasonCode;

impl<C: ConnKey> Broker<C> {
    /// A broker with `config`, started at `now`, which is `wall` on the wall clock (the
    /// journal stores message expiry as Unix time; the machine reads no clock itself).
    pub fn new(config: BrokerConfig, now: Instant, wall: SystemTime) -> Broker<C> {
        Broker::on_shard(config, now, wall, Place::default())
    }

    /// The shard at `place` of a broker with `config`, started at `now` (`wall`).
    pub fn on_shard(config: BrokerConfig, now: Instant, wall: SystemTime, place: Place) -> Broker<C> {
        assert!(place.shard < place.shards && place.shards <= MAX_SHARDS, "bad place {place:?}");
        let mut broker = Broker {
            place,
            conns: Conns::with_capacity(config.max_connections),
            sessions: Slab::with_capacity(config.max_connections),
            by_client: ClientIndex::default(),
            router: Router::new(place),
            timers: Timers::new(now),
            // Session uids are unique across the cluster: each shard takes every `shards`-th.
            next_uid: place.shard as u64 + 1,
            stats: Stats::new(now),
            matches: Vec::new(),
            remote: Remote::default(),
            outbox: Vec::new(),
            reports: (0..place.shards).map(|_| None).collect(),
            journal: config.persistence.then(|| Journaling::new(now, wall)),
            config,
        };
        if broker.config.sys_interval.is_some() {
            // At once, so `$SYS` topics are retained from the start.
            broker.timers.schedule_at(now, Timer::Sys);
        }
        broker
    }

    /// The configuration.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// The counters `$SYS` publishes.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Where this shard stands in its cluster.
    pub fn place(&self) -> Place {
        self.place
    }

    /// How many sessions exist (connected or not).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// When [`Broker::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// A session uid, unique across the cluster.
    fn new_uid(&mut self) -> u64 {
        let uid = self.next_uid;
        self.next_uid += self.place.shards as u64;
        uid
    }

    /// A connection was accepted from `peer`. It must send CONNECT within
    /// `BrokerConfig::connect_timeout`.
    pub fn handle_accept(
        &mut self,
        now: Instant,
        conn: C,
        peer: Option<SocketAddr>,
        out: &mut impl Transmit<C>,
    ) {
        if self.conns.len() >= self.config.max_connections {
            tracing::warn!(
                ?peer,
                limit = self.config.max_connections,
                "connection refused: too many connections"
            );
            out.close(conn);
            return;
        }
        tracing::trace!(?conn, ?peer, "accepted");
        if let Some(stale) = self.conns.holder(conn.slot()).filter(|&held| held != conn) {
            // The driver reused a slot before reporting its connection closed (zero-core
            // never does): that connection is gone, so its session must learn it first.
            tracing::warn!(?stale, ?conn, "a new connection in the slot of one not reported closed");
            self.handle_closed(now, stale, out);
        }
        let loopback = peer.is_some_and(|p| p.ip().is_loopback());
        self.conns.insert(conn, Conn::new(self.timers.tick(now), loopback));
        self.arm(conn);
    }

    /// Keeps one timer entry per connection, at its current deadline (or earlier: an entry
    /// that fires early re-arms for the deadline then in force).
    fn arm(&mut self, conn: C) {
        let Some(c) = self.conns.get_mut(&conn) else { return };
        let Some(deadline) = c.deadline(timers::ticks(self.config.connect_timeout)) else { return };
        if c.armed <= deadline {
            return;
        }
        c.armed = deadline;
        self.timers.schedule(deadline, Timer::Conn(conn));
    }

    /// Bytes arrived on `conn`.
    pub fn handle_input(&mut self, now: Instant, conn: C, bytes: &[u8], out: &mut impl Transmit<C>) {
        let Some(c) = self.conns.get_mut(&conn) else { return };
        if c.closing {
            return;
        }
        if c.session.is_some() {
            c.last_seen = self.timers.tick(now);
        }
        let mut partial = std::mem::take(&mut c.partial);
        partial.feed(bytes, |bytes| self.process(conn, bytes, now, out));
        // A connection that closed (or moved to another shard) keeps nothing.
        if let Some(c) = self.conns.get_mut(&conn).filter(|c| !c.closing) {
            c.partial = partial;
        }
    }

    /// Handles the whole packets at the start of `bytes`; returns how many bytes they took.
    fn process(&mut self, conn: C, bytes: &[u8], now: Instant, out: &mut impl Transmit<C>) -> usize {
        let mut used = 0;
        while let Some(c) = self.conns.get(&conn).filter(|c| !c.closing) {
            let start = used;
            let (protocol, connected) = (c.protocol, c.session.is_some());
            let frame = match codec::frame(&bytes[used..], self.config.max_packet_size) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    self.bad_input(conn, e, now, out);
                    break;
                }
            };
            used += frame.len;
            let result = match Packet::decode(frame, protocol) {
                Ok(Packet::Connect(connect)) if !connected => {
                    if let Some(home) = self.home_elsewhere(&connect) {
                        tracing::trace!(?conn, home, "handed to the session's home shard");
                        self.conns.remove(&conn);
                        out.hand_off(conn, home, &bytes[start..]);
                        return bytes.len();
                    }
                    self.on_connect(conn, connect, now, out);
                    Ok(())
                }
                Ok(_) if !connected => {
                    tracing::debug!(?conn, "first packet is not CONNECT");
                    self.close(conn, now, out);
                    Ok(())
                }
                Ok(packet) => self.on_packet(conn, packet, now, out),
                Err(e) => {
                    self.bad_input(conn, e, now, out);
                    Ok(())
                }
            };
            if let Err(reason) = result {
                tracing::debug!(?conn, %reason, "protocol violation");
                self.stats.protocol_errors += 1;
                self.disconnect(conn, reason, now, out);
            }
        }
        used
    }

    /// Answers a packet that could not be decoded: after CONNECT with DISCONNECT (MQTT 5);
    /// before it, an unsupported version gets CONNACK 0x84 (return code 1 in 3.1.1's form,
    /// which every client reads) and anything else is closed without a word.
    fn bad_input(&mut self, conn: C, e: codec::DecodeError, now: Instant, out: &mut impl Transmit<C>) {
        let Some(c) = self.conns.get_mut(&conn) else { return };
        tracing::debug!(?conn, error = %e, "bad packet");
        self.stats.protocol_errors += 1;
        if c.session.is_some() {
            self.disconnect(conn, e.reason, now, out);
        } else if e.reason == ReasonCode::UNSUPPORTED_PROTOCOL_VERSION {
            c.protocol = Protocol::V311;
            self.reject_connect(conn, e.reason, e, now, out);
        } else {
            self.close(conn, now, out);
        }
    }

    /// Refuses a CONNECT with a CONNACK carrying `reason`, then closes.
    fn reject_connect(
        &mut self,
        conn: C,
        reason: ReasonCode,
        why: impl std::fmt::Display,
        now: Instant,
        out: &mut impl Transmit<C>,
    ) {
        let Some(c) = self.conns.get(&conn) else { return };
        tracing::debug!(?conn, %why, %reason, "CONNECT refused");
        let ack = ConnAck { session_present: false, reason, properties: Properties::default() };
        send(out, conn, c.protocol, &Packet::ConnAck(ack));
        self.close(conn, now, out);
    }

    /// The server is shutting down: every connection gets DISCONNECT "Server shutting down"
    /// (MQTT 5; 3.1.1 has no server DISCONNECT, so its clients see the close) and is closed
    /// after what is queued for it. Sessions go offline as on any close the client did not
    /// ask for (wills are published, persistent sessions keep their messages).
    pub fn shutdown(&mut self, now: Instant, out: &mut impl Transmit<C>) {
        let conns: Vec<C> = self.conns.ids().collect();
        for conn in conns {
            self.disconnect(conn, ReasonCode::SERVER_SHUTTING_DOWN, now, out);
        }
    }

    /// Sends DISCONNECT with `reason` (MQTT 5 only) and closes.
    fn disconnect(&mut self, conn: C, reason: ReasonCode, now: Instant, out: &mut impl Transmit<C>) {
        let Some(c) = self.conns.get(&conn) else { return };
        if c.closing {
            return;
        }
        if c.protocol.is_v5() {
            let mut packet = Disconnect::new(reason);
            // The reason in words as well: clients log it, and some (paho 1.6) read a
            // DISCONNECT's reason code only when properties follow it. Left out where it could
            // pass the client's Maximum Packet Size (every reason's name fits in 64 bytes).
            packet.properties.reason_string = reason.name().filter(|_| c.fits(64));
            send(out, conn, c.protocol, &Packet::Disconnect(packet));
        }
        self.close(conn, now, out);
    }

    /// Closes `conn` after what is queued for it is sent. Its session (if any) is offline
    /// from now on, not from when the driver reports the close: nothing more is sent to a
    /// connection the broker is done with (a QoS 0 message is not kept for it, QoS 1/2 ones
    /// wait in the session), and the will and expiry run from the decision.
    fn close(&mut self, conn: C, now: Instant, out: &mut impl Transmit<C>) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.closing = true;
            c.partial.clear();
        }
        out.close(conn);
        if let Some(index) = self.unlink(conn) {
            self.connection_lost(index, now, out);
        }
    }

    fn on_packet(
        &mut self,
        conn: C,
        packet: Packet<'_>,
        now: Instant,
        out: &mut impl Transmit<C>,
    ) -> Result<(), Violation> {
        match packet {
            Packet::Publish(p) => self.on_publish(conn, &p, now, out),
            Packet::PubAck(a) => {
                self.on_ack(conn, a, Stage::Published, QoS::AtLeastOnce, now, out);
                Ok(())
            }
            Packet::PubRec(a) => {
                self.on_pubrec(conn, a, now, out);
                Ok(())
            }
            Packet::PubComp(a) => {
                self.on_ack(conn, a, Stage::Released, QoS::ExactlyOnce, now, out);
                Ok(())
            }
            Packet::PubRel(a) => {
                self.on_pubrel(conn, a, out);
                Ok(())
            }
            Packet::Subscribe(s) => self.on_subscribe(conn, &s, now, out),
            Packet::Unsubscribe(u) => {
                self.on_unsubscribe(conn, &u, out);
                Ok(())
            }
            Packet::PingReq => {
                send(out, conn, self.conns[&conn].protocol, &Packet::PingResp);
                Ok(())
            }
            Packet::Disconnect(d) => self.on_disconnect(conn, &d, now, out),
            // A second CONNECT, packets only a server sends, or AUTH without an
            // authentication method in CONNECT.
            _ => Err(ReasonCode::PROTOCOL_ERROR),
        }
    }

    fn on_connect(&mut self, conn: C, connect: Connect<'_>, now: Instant, out: &mut impl Transmit<C>) {
        let v5 = connect.protocol.is_v5();
        let c = self.conns.get_mut(&conn).expect("caller checked");
        c.protocol = connect.protocol;
        c.bridge = connect.bridge;
        let loopback = c.loopback;
        if connect.properties.authentication_method.is_some() {
            // Enhanced authentication (AUTH exchanges) is not offered.
            return self.reject_connect(
                conn,
                ReasonCode::BAD_AUTHENTICATION_METHOD,
                "enhanced authentication",
                now,
                out,
            );
        }
        let assigned = connect.client_id.is_empty();
        if assigned && !v5 && !connect.clean_start {
            return self.reject_connect(
                conn,
                ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
                "empty client id with a persistent session",
                now,
                out,
            );
        }
        if let Err(reason) = self.authenticate(&connect, loopback) {
            return self.reject_connect(conn, reason, "authentication failed", now, out);
        }
        let client_id: CompactString =
            if assigned { self.assign_client_id().into() } else { connect.client_id.into() };
        let username: Option<Arc<str>> = connect.username.map(Into::into);
        let will = match &connect.will {
            Some(w) if !topic::valid_topic_name(w.topic) || !client_may_publish(w.topic, connect.bridge) => {
                return self.reject_connect(conn, ReasonCode::TOPIC_NAME_INVALID, "will topic", now, out);
            }
            Some(w) if !self.allowed(&client_id, username.as_deref(), w.topic, Access::Write) => {
                return self.reject_connect(
                    conn,
                    ReasonCode::NOT_AUTHORIZED,
                    "will topic not allowed",
                    now,
                    out,
                );
            }
            Some(w) if w.retain && !self.config.retain_available => {
                return self.reject_connect(
                    conn,
                    ReasonCode::RETAIN_NOT_SUPPORTED,
                    "retained will",
                    now,
                    out,
                );
            }
            Some(w) => Some(Box::new(PendingWill {
                message: Message::new(w.topic.into(), w.payload, w.qos, w.retain, &w.properties, now, None),
                expiry: w.properties.message_expiry_interval,
                delay: w.properties.will_delay_interval.unwrap_or(0),
                at: None,
            })),
            None => None,
        };

        // Session takeover and clean start.
        let mut existing = self.by_client.get(&self.sessions, &client_id);
        if let Some(index) = existing {
            if let Some(old) = self.sessions[index].conn {
                tracing::debug!(client_id = %client_id, ?old, "session taken over");
                self.disconnect(old, ReasonCode::SESSION_TAKEN_OVER, now, out);
                existing = self.sessions.contains(index).then_some(index);
            }
        }
        if let (Some(index), true) = (existing, connect.clean_start) {
            self.end_session(index, now, out);
            existing = None;
        }
        let session_present = existing.is_some();
        let index = existing.unwrap_or_else(|| {
            let uid = self.new_uid();
            let index = self.sessions.insert(Session::new(uid, client_id.clone()));
            self.by_client.insert(&self.sessions, index);
            index
        });

        // Bind the session to this connection.
        let requested_expiry = if v5 {
            connect.properties.session_expiry_interval.unwrap_or(0)
        } else if connect.clean_start {
            0
        } else {
            u32::MAX
        };
        let expiry = requested_expiry.min(self.config.max_session_expiry);
        self.link(conn, index);
        let s = &mut self.sessions[index];
        s.expiry = expiry;
        s.will = will;
        s.ends_at = None;
        s.username = username;
        if let Some(j) = &mut self.journal {
            if expiry > 0 {
                j.record(Record::Session { client: &client_id, expiry });
            } else if s.journaled {
                // Resumed with expiry 0: the session no longer outlives its connection.
                j.record(Record::SessionEnd { client: &client_id });
            }
            s.journaled = expiry > 0;
        }

        let mut keep_alive = connect.keep_alive;
        let server_keep_alive = match self.config.max_keep_alive {
            Some(max) if keep_alive == 0 || keep_alive > max => {
                keep_alive = max;
                Some(max)
            }
            _ => None,
        };
        let c = self.conns.get_mut(&conn).expect("caller checked");
        c.last_seen = self.timers.tick(now);
        c.keep_alive = keep_alive;
        c.max_packet_out = connect.properties.maximum_packet_size.unwrap_or(u32::MAX);
        let receive_maximum =
            if v5 { connect.properties.receive_maximum.unwrap_or(u16::MAX) } else { u16::MAX };
        c.window = receive_maximum.min(self.config.max_inflight);
        c.alias_limit = if v5 {
            connect.properties.topic_alias_maximum.unwrap_or(0).min(self.config.topic_aliases_out)
        } else {
            0
        };
        self.arm(conn);

        let properties = Properties {
            assigned_client_identifier: assigned.then_some(&*client_id),
            server_keep_alive: server_keep_alive.filter(|_| v5),
            session_expiry_interval: (v5 && expiry != requested_expiry).then_some(expiry),
            receive_maximum: Some(self.config.receive_maximum),
            maximum_packet_size: Some(self.config.max_packet_size as u32),
            topic_alias_maximum: Some(self.config.topic_alias_maximum),
            retain_available: (!self.config.retain_available).then_some(0),
            ..Properties::default()
        };
        let ack = ConnAck { session_present, reason: ReasonCode::SUCCESS, properties };
        send(out, conn, connect.protocol, &Packet::ConnAck(ack));
        self.stats.connects += 1;
        tracing::debug!(?conn, client_id = %client_id, session_present, protocol = ?connect.protocol, "connected");

        if session_present {
            self.resend_inflight(index, conn, now, out);
        }
        self.flush_queue(index, now, out);
    }

    /// The other shard a CONNECT's session lives on, if it is not this one.
    fn home_elsewhere(&self, connect: &Connect<'_>) -> Option<usize> {
        if !self.place.is_cluster() || connect.client_id.is_empty() {
            return None; // assigned ids are made at home
        }
        Some(home_shard(connect.client_id, self.place.shards)).filter(|&home| home != self.place.shard)
    }

    /// Checks the user name and password, or the anonymous policy.
    fn authenticate(&self, connect: &Connect<'_>, loopback: bool) -> Result<(), ReasonCode> {
        match (&self.config.passwords, connect.username) {
            (Some(passwords), Some(user)) => {
                let password = connect.password.unwrap_or_default();
                if passwords.verify(user, password) {
                    Ok(())
                } else {
                    Err(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
                }
            }
            _ => {
                let allowed = match self.config.anonymous {
                    Anonymous::Allow => true,
                    Anonymous::Deny => false,
                    Anonymous::LoopbackOnly => loopback,
                };
                if allowed {
                    Ok(())
                } else {
                    Err(ReasonCode::NOT_AUTHORIZED)
                }
            }
        }
    }

    fn allowed(&self, client_id: &str, username: Option<&str>, topic: &str, access: Access) -> bool {
        self.config.acl.as_ref().is_none_or(|acl| acl.check(client_id, username, topic, access))
    }

    fn assign_client_id(&mut self) -> String {
        loop {
            let id = format!(
                "zero-{:016x}",
                self.new_uid().wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ self.stats.connects
            );
            let home = home_shard(&id, self.place.shards) == self.place.shard;
            if home && self.by_client.get(&self.sessions, &id).is_none() {
                return id;
            }
        }
    }

    fn on_publish(
        &mut self,
        conn: C,
        p: &Publish<'_>,
        now: Instant,
        out: &mut impl Transmit<C>,
    ) -> Result<(), Violation> {
        self.stats.received += 1;
        let c = self.conns.get_mut(&conn).expect("caller checked");
        let index = c.index();
        let topic: Arc<str> = match p.properties.topic_alias {
            Some(alias) => {
                let i = usize::from(alias)
                    .checked_sub(1)
                    .filter(|&i| i < usize::from(self.config.topic_alias_maximum))
                    .ok_or(ReasonCode::TOPIC_ALIAS_INVALID)?;
                if c.aliases.len() <= i {
                    c.aliases.resize(i + 1, None);
                }
                let slot = &mut c.aliases[i];
                if p.topic.is_empty() {
                    slot.clone().ok_or(ReasonCode::PROTOCOL_ERROR)?
                } else {
                    let topic: Arc<str> = p.topic.into();
                    *slot = Some(topic.clone());
                    topic
                }
            }
            None => p.topic.into(),
        };
        if self.config.panic_on_topic.as_deref() == Some(&*topic) {
            panic!("fault injected: a PUBLISH to {topic}");
        }
        if p.retain && !self.config.retain_available {
            return Err(ReasonCode::RETAIN_NOT_SUPPORTED);
        }
        let (protocol, bridge) = (c.protocol, c.bridge);
        let s = &self.sessions[index];
        // A retransmitted QoS 2 publish (its id still awaits PUBREL) was routed the first time.
        let awaiting = &s.flows().awaiting_release;
        let resent = p.qos == QoS::ExactlyOnce && awaiting.contains(&p.packet_id);
        if p.qos == QoS::ExactlyOnce && !resent && awaiting.len() >= usize::from(self.config.receive_maximum)
        {
            return Err(ReasonCode::RECEIVE_MAXIMUM_EXCEEDED);
        }
        let allowed = client_may_publish(&topic, bridge)
            && self.allowed(&s.client_id, s.username.as_deref(), &topic, Access::Write);
        let route = allowed && !resent;
        let matched = if route {
            let message = Arc::new(Message::from_publish(p, topic, now, Some(s.uid)));
            self.publish(message, now, out)
        } else {
            0
        };
        let reason = if !allowed {
            ReasonCode::NOT_AUTHORIZED
        } else if matched == 0 && route {
            ReasonCode::NO_MATCHING_SUBSCRIBERS
        } else {
            ReasonCode::SUCCESS
        };
        match p.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => {
                send(out, conn, protocol, &Packet::PubAck(Ack { reason, ..Ack::new(p.packet_id) }));
            }
            QoS::ExactlyOnce => {
                let s = &mut self.sessions[index];
                if !reason.is_error() && s.flows_mut().awaiting_release.insert(p.packet_id) && s.journaled {
                    if let Some(j) = &mut self.journal {
                        j.record(Record::AwaitRelease { client: &s.client_id, packet_id: p.packet_id });
                    }
                }
                send(out, conn, protocol, &Packet::PubRec(Ack { reason, ..Ack::new(p.packet_id) }));
            }
        }
        Ok(())
    }

    /// Routes a message to every matching subscription, here and (forwarded) on the other
    /// shards, and stores it if retained. Returns how many sessions here and shards elsewhere
    /// it went to.
    pub fn publish(&mut self, message: Arc<Message>, now: Instant, out: &mut impl Transmit<C>) -> usize {
        self.keep_retained(&message);
        let mut matches = std::mem::take(&mut self.matches);
        let mut remote = std::mem::take(&mut self.remote);
        let sessions = &self.sessions;
        self.router.route(&message.topic, |s| sessions[s].conn.is_some(), &mut matches, &mut remote);
        let elsewhere = remote.shards.count_ones() as usize;
        if message.retain {
            remote.shards |= self.place.others();
        }
        self.forward(&message, &mut remote);
        self.remote = remote;
        elsewhere + self.deliver_matches(message, matches, now, out)
    }

    /// Stores (or clears) a retained message, and journals it: every shard keeps the full set.
    fn keep_retained(&mut self, message: &Arc<Message>) {
        if !message.retain {
            return;
        }
        self.router.retain(message);
        if let (Some(j), false) = (&mut self.journal, message.topic.starts_with('$')) {
            if message.payload.is_empty() {
                j.record(Record::Unretain { topic: &message.topic });
            } else {
                let mid = j.message(message);
                j.record(Record::Retain { mid });
            }
        }
    }

    /// Queues the message for the shards in `remote` (which is left empty).
    fn forward(&mut self, message: &Arc<Message>, remote: &mut Remote) {
        while remote.shards != 0 {
            let shard = remote.shards.trailing_zeros() as usize;
            remote.shards &= remote.shards - 1;
            let groups = remote.groups.iter().filter(|g| g.0 == shard).map(|g| g.1.clone()).collect();
            self.outbox.push((shard, ShardMessage::Forward { message: message.clone(), groups }));
        }
        remote.groups.clear();
    }

    /// Delivers a message to the sessions in `matches` (one delivery per session, with the
    /// highest QoS and every subscription identifier of its matching subscriptions). Returns
    /// how many sessions it went to.
    fn deliver_matches(
        &mut self,
        message: Arc<Message>,
        mut matches: Vec<(usize, Subscription)>,
        now: Instant,
        out: &mut impl Transmit<C>,
    ) -> usize {
        if matches.len() > 1 {
            matches.sort_unstable_by_key(|m| m.0);
        }
        let mut delivered = 0;
        let mut i = 0;
        while i < matches.len() {
            let index = matches[i].0;
            let uid = self.sessions[index].uid;
            let mut qos = None;
            let mut retain = false;
            let mut ids = Vec::new();
            while let Some(&(_, sub)) = matches.get(i).filter(|m| m.0 == index) {
                i += 1;
                if sub.options.no_local && message.origin == Some(uid) {
                    continue;
                }
                qos = qos.max(Some(sub.options.qos.min(message.qos)));
                retain |= sub.options.retain_as_published && message.retain;
                ids.extend(sub.id);
            }
            let Some(qos) = qos else { continue };
            let s = &self.sessions[index];
            if !self.allowed(&s.client_id, s.username.as_deref(), &message.topic, Access::Read) {
                continue;
            }
            delivered += 1;
            let delivery = Delivery { message: message.clone(), qos, retain, subscription_ids: ids, did: 0 };
            self.deliver(index, delivery, now, out);
        }
        matches.clear();
        self.matches = matches;
        delivered
    }

    /// A message from another shard of the cluster.
    pub fn handle_shard_message(&mut self, now: Instant, message: ShardMessage, out: &mut impl Transmit<C>) {
        match message {
            ShardMessage::Interest { shard, interest } => self.router.apply(shard, &interest),
            ShardMessage::Forward { mut message, groups } => {
                // Journal ids are per shard (the sender may be journaling this one too), so a
                // message this shard may journal (QoS 1/2 deliveries, retained) is its own copy.
                if self.journal.is_some() && (message.qos != QoS::AtMostOnce || message.retain) {
                    message = Arc::new(message.for_journal());
                }
                self.keep_retained(&message);
                let mut matches = std::mem::take(&mut self.matches);
                let sessions = &self.sessions;
                let online = |s: usize| sessions[s].conn.is_some();
                self.router.route_forwarded(&message.topic, &groups, online, &mut matches);
                self.deliver_matches(message, matches, now, out);
            }
            ShardMessage::Sys { shard, stats, gauges } => {
                if let Some(report) = self.reports.get_mut(shard) {
                    *report = Some((stats, gauges));
                }
            }
        }
    }

    /// Takes the messages for other shards, as (shard, message) in the order they must be
    /// posted: interest changes first, then forwarded publishes and reports.
    pub fn take_outbox(&mut self) -> Vec<(usize, ShardMessage)> {
        let announcements = self.router.take_announcements();
        if announcements.is_empty() {
            return std::mem::take(&mut self.outbox);
        }
        let mut all = Vec::with_capacity(announcements.len() * self.place.shards + self.outbox.len());
        for interest in announcements {
            for shard in (0..self.place.shards).filter(|&s| s != self.place.shard) {
                let interest = interest.clone();
                all.push((shard, ShardMessage::Interest { shard: self.place.shard, interest }));
            }
        }
        all.append(&mut self.outbox);
        all
    }

    /// Sends a delivery now if the session is connected and its window and send queue allow,
    /// else queues it (bounded). An offline session queues QoS 1/2 only. QoS 1/2 to a
    /// journaled session is journaled first.
    fn deliver(&mut self, index: usize, mut delivery: Delivery, now: Instant, out: &mut impl Transmit<C>) {
        let s = &mut self.sessions[index];
        if let (Some(j), true) = (&mut self.journal, s.journaled && delivery.qos != QoS::AtMostOnce) {
            j.enqueue(&s.client_id, &mut delivery);
        }
        let limit = self.config.max_queued;
        let dropped = match s.conn {
            None if delivery.qos == QoS::AtMostOnce => None,
            None => s.enqueue(delivery, limit),
            Some(conn) => {
                let c = &mut self.conns[&conn];
                if delivery.qos == QoS::AtMostOnce && s.flows().queue.is_empty() {
                    // A full send queue parks it in the session's bounded queue until Writable.
                    match transmit(out, conn, c, &delivery, 0, false, now, &mut self.stats) {
                        Sent::Full => s.enqueue(delivery, limit),
                        _ => None,
                    }
                } else if delivery.qos != QoS::AtMostOnce
                    && s.flows().queue.is_empty()
                    && s.flows().inflight.len() < usize::from(c.window)
                {
                    let stats = &mut self.stats;
                    if let Err(delivery) =
                        send_inflight(s, c, conn, delivery, now, out, stats, &mut self.journal)
                    {
                        s.flows_mut().queue.push_front(delivery);
                    }
                    None
                } else {
                    s.enqueue(delivery, limit)
                }
            }
        };
        if let Some(dropped) = dropped {
            self.stats.dropped += 1;
            if let Some(j) = &mut self.journal {
                j.done(&dropped);
            }
        }
    }

    /// Sends queued deliveries while the in-flight window and the send queue allow.
    fn flush_queue(&mut self, index: usize, now: Instant, out: &mut impl Transmit<C>) {
        let s = &mut self.sessions[index];
        let Some(conn) = s.conn else { return };
        let c = &mut self.conns[&conn];
        while s.flows().inflight.len() < usize::from(c.window) {
            let Some(delivery) = s.pop_queued() else { break };
            if delivery.message.expired(now) {
                if let Some(j) = &mut self.journal {
                    j.done(&delivery);
                }
                continue;
            }
            if delivery.qos == QoS::AtMostOnce {
                if transmit(out, conn, c, &delivery, 0, false, now, &mut self.stats) == Sent::Full {
                    s.flows_mut().queue.push_front(delivery);
                    break;
                }
                continue;
            }
            if let Err(delivery) =
                send_inflight(s, c, conn, delivery, now, out, &mut self.stats, &mut self.journal)
            {
                s.flows_mut().queue.push_front(delivery);
                break;
            }
        }
    }

    /// Sends again, in order, what a resumed session had in flight (PUBLISH with DUP, or
    /// PUBREL).
    fn resend_inflight(&mut self, index: usize, conn: C, now: Instant, out: &mut impl Transmit<C>) {
        let s = &mut self.sessions[index];
        let c = &mut self.conns[&conn];
        for o in &s.flows().inflight {
            match o.stage {
                Stage::Published => {
                    transmit(out, conn, c, &o.delivery, o.packet_id, true, now, &mut self.stats);
                }
                Stage::Released => send(out, conn, c.protocol, &Packet::PubRel(Ack::new(o.packet_id))),
            }
        }
    }

    fn on_ack(
        &mut self,
        conn: C,
        ack: Ack<'_>,
        stage: Stage,
        qos: QoS,
        now: Instant,
        out: &mut impl Transmit<C>,
    ) {
        let index = self.conns[&conn].index();
        let s = &mut self.sessions[index];
        if let Some(i) = s.inflight_position(ack.packet_id) {
            let o = &s.flows().inflight[i];
            if o.stage == stage && o.delivery.qos == qos {
                if let (Some(j), Some(o)) = (&mut self.journal, s.flows_mut().inflight.remove(i)) {
                    j.done(&o.delivery);
                }
                self.flush_queue(index, now, out);
            }
        }
    }

    fn on_pubrec(&mut self, conn: C, ack: Ack<'_>, now: Instant, out: &mut impl Transmit<C>) {
        let c = &self.conns[&conn];
        let (protocol, index) = (c.protocol, c.index());
        let s = &mut self.sessions[index];
        let found = s
            .inflight_position(ack.packet_id)
            .filter(|&i| s.flows().inflight[i].delivery.qos == QoS::ExactlyOnce);
        let reason = match found {
            Some(i) if ack.reason.is_error() => {
                // The receiver refused the message: the flow ends here.
                if let (Some(j), Some(o)) = (&mut self.journal, s.flows_mut().inflight.remove(i)) {
                    j.done(&o.delivery);
                }
                self.flush_queue(index, now, out);
                return;
            }
            Some(i) => {
                let o = &mut s.flows_mut().inflight[i];
                if let (Some(j), true) =
                    (&mut self.journal, o.stage == Stage::Published && o.delivery.did != 0)
                {
                    j.record(Record::Released { did: o.delivery.did });
                }
                o.stage = Stage::Released;
                ReasonCode::SUCCESS
            }
            None => ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
        };
        send(out, conn, protocol, &Packet::PubRel(Ack { reason, ..Ack::new(ack.packet_id) }));
    }

    fn on_pubrel(&mut self, conn: C, ack: Ack<'_>, out: &mut impl Transmit<C>) {
        let c = &self.conns[&conn];
        let s = &mut self.sessions[c.index()];
        let reason = if s.release(ack.packet_id) {
            if let (Some(j), true) = (&mut self.journal, s.journaled) {
                j.record(Record::ReleaseDone { client: &s.client_id, packet_id: ack.packet_id });
            }
            ReasonCode::SUCCESS
        } else {
            ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
        };
        send(out, conn, c.protocol, &Packet::PubComp(Ack { reason, ..Ack::new(ack.packet_id) }));
    }

    fn on_subscribe(
        &mut self,
        conn: C,
        sub: &Subscribe<'_>,
        now: Instant,
        out: &mut impl Transmit<C>,
    ) -> Result<(), Violation> {
        let c = &self.conns[&conn];
        let (protocol, index, bridge) = (c.protocol, c.index(), c.bridge);
        let id = sub.properties.subscription_ids.first();
        let mut codes = Vec::new();
        let mut retained = Vec::new();
        for (filter, mut options) in sub.subscriptions.iter() {
            let Some((plain, shared)) = topic::subscription_filter(filter) else {
                codes.push(ReasonCode::TOPIC_FILTER_INVALID.0);
                continue;
            };
            if bridge && !shared {
                // A bridge must not get its own messages back, and forwards RETAIN as it was.
                options.no_local = true;
                options.retain_as_published = true;
            }
            if shared && options.no_local {
                return Err(ReasonCode::PROTOCOL_ERROR);
            }
            let s = &self.sessions[index];
            let permitted = self
                .config
                .acl
                .as_ref()
                .is_none_or(|acl| acl.check_subscribe(&s.client_id, s.username.as_deref(), plain));
            if !permitted {
                codes.push(ReasonCode::NOT_AUTHORIZED.0);
                continue;
            }
            let subscription = Subscription { options, id };
            let existed = self.router.subscribe(index, filter, subscription);
            let s = &mut self.sessions[index];
            s.subscriptions.insert(filter.into(), subscription);
            if let (Some(j), true) = (&mut self.journal, s.journaled) {
                let (options, id) = (options.encode(true), id.unwrap_or(0));
                j.record(Record::Subscribe { client: &s.client_id, filter, options, id });
            }
            codes.push(options.qos as u8);
            let send_retained = match options.retain_handling {
                RetainHandling::SendAlways => true,
                RetainHandling::SendIfNew => !existed,
                RetainHandling::DontSend => false,
            };
            if send_retained && !shared {
                retained.extend(self.router.retained_matching(plain).filter(|m| !m.expired(now)).map(|m| {
                    Delivery {
                        message: m.clone(),
                        qos: m.qos.min(options.qos),
                        retain: true,
                        subscription_ids: id.into_iter().collect(),
                        did: 0,
                    }
                }));
            }
        }
        let ack = SubAck {
            packet_id: sub.packet_id,
            properties: Properties::default(),
            reasons: ReasonCodes(&codes),
        };
        tracing::trace!(?conn, filters = ?sub.subscriptions.iter().map(|f| f.0).collect::<Vec<_>>(), ?codes, "SUBSCRIBE");
        send(out, conn, protocol, &Packet::SubAck(ack));
        for delivery in retained {
            let s = &self.sessions[index];
            if self.allowed(&s.client_id, s.username.as_deref(), &delivery.message.topic, Access::Read) {
                self.deliver(index, delivery, now, out);
            }
        }
        Ok(())
    }

    fn on_unsubscribe(&mut self, conn: C, unsub: &Unsubscribe<'_>, out: &mut impl Transmit<C>) {
        let c = &self.conns[&conn];
        let (protocol, index) = (c.protocol, c.index());
        let mut codes = Vec::new();
        for filter in unsub.filters.iter() {
            let s = &mut self.sessions[index];
            let existed = s.subscriptions.remove(filter).is_some();
            if existed {
                self.router.unsubscribe(index, filter);
                if let (Some(j), true) = (&mut self.journal, s.journaled) {
                    j.record(Record::Unsubscribe { client: &s.client_id, filter });
                }
            }
            codes.push(if existed { ReasonCode::SUCCESS.0 } else { ReasonCode::NO_SUBSCRIPTION_EXISTED.0 });
        }
        let ack = UnsubAck {
            packet_id: unsub.packet_id,
            properties: Properties::default(),
            reasons: ReasonCodes(&codes),
        };
        send(out, conn, protocol, &Packet::UnsubAck(ack));
    }

    fn on_disconnect(
        &mut self,
        conn: C,
        d: &Disconnect<'_>,
        now: Instant,
        out: &mut impl Transmit<C>,
    ) -> Result<(), Violation> {
        let index = self.conns[&conn].index();
        let s = &mut self.sessions[index];
        if let Some(expiry) = d.properties.session_expiry_interval {
            if s.expiry == 0 && expiry != 0 {
                return Err(ReasonCode::PROTOCOL_ERROR);
            }
            s.expiry = expiry.min(self.config.max_session_expiry);
            if let (Some(j), true) = (&mut self.journal, s.journaled && s.expiry > 0) {
                j.record(Record::Session { client: &s.client_id, expiry: s.expiry });
            }
        }
        if d.reason != ReasonCode::DISCONNECT_WITH_WILL {
            s.will = None;
        }
        self.close(conn, now, out);
        Ok(())
    }

    /// A connection is gone (closed by either side, or failed).
    pub fn handle_closed(&mut self, now: Instant, conn: C, out: &mut impl Transmit<C>) {
        let session = self.unlink(conn);
        self.conns.remove(&conn);
        if let Some(index) = session {
            self.connection_lost(index, now, out);
        }
    }

    /// Binds session `index` to connection `conn`, both of which are unbound.
    ///
    /// The link between sessions and connections is kept here and in [`Broker::unlink`] and
    /// nowhere else, so its two halves always agree: `sessions[i].conn == Some(c)` exactly
    /// when `conns[c].session == Some(i)`, and only while `c` is open. Everything that sends
    /// to a session relies on it (a session that names a connection finds it in `conns`, not
    /// closing), which is why a connection is unlinked as soon as the broker closes it or
    /// the driver reports it closed, and a slot the driver hands out again evicts its old
    /// holder through `handle_closed` first.
    fn link(&mut self, conn: C, index: usize) {
        let (s, c) = (&mut self.sessions[index], self.conns.get_mut(&conn).expect("a connection to link"));
        debug_assert!(s.conn.is_none() && c.session.is_none(), "linking a linked session or connection");
        s.conn = Some(conn);
        c.session = Some(index as u32);
    }

    /// Unbinds `conn` from its session, if it has one, and returns the session's index.
    fn unlink(&mut self, conn: C) -> Option<usize> {
        let index = self.conns.get_mut(&conn)?.session.take()? as usize;
        let s = &mut self.sessions[index];
        debug_assert_eq!(s.conn, Some(conn), "a session linked to another connection");
        s.conn = None;
        Some(index)
    }

    /// The session's connection ended (and was unlinked): its will is published (now or
    /// after its delay) and the session ends now or when its expiry interval passes.
    fn connection_lost(&mut self, index: usize, now: Instant, out: &mut impl Transmit<C>) {
        let s = &mut self.sessions[index];
        s.tidy();
        let uid = s.uid;
        if let Some(will) = &s.will {
            let delay = will.delay.min(s.expiry);
            if delay == 0 {
                self.publish_will(index, now, out);
            } else {
                let at = now + Duration::from_secs(u64::from(delay));
                if let Some(will) = &mut self.sessions[index].will {
                    will.at = Some(at);
                }
                self.timers.schedule_at(at, Timer::Will { session: index as u32, uid });
            }
        }
        match self.sessions[index].expiry {
            0 => self.end_session(index, now, out),
            u32::MAX => {}
            secs => self.end_later(index, now + Duration::from_secs(u64::from(secs))),
        }
    }

    /// Ends the session at `index` at `at`, unless a connection takes it up before.
    fn end_later(&mut self, index: usize, at: Instant) {
        let tick = self.timers.tick_after(at).max(1);
        let s = &mut self.sessions[index];
        s.ends_at = NonZeroU32::new(tick);
        self.timers.schedule(tick, Timer::Expiry { session: index as u32, uid: s.uid });
    }

    fn publish_will(&mut self, index: usize, now: Instant, out: &mut impl Transmit<C>) {
        let s = &mut self.sessions[index];
        let Some(will) = s.will.take() else { return };
        let mut message = will.message;
        message.origin = Some(s.uid);
        message.expires = will.expiry.map(|secs| now + Duration::from_secs(u64::from(secs)));
        tracing::debug!(client_id = %s.client_id, topic = %message.topic, "publishing will");
        self.publish(Arc::new(message), now, out);
    }

    /// Ends a session without a connection: its pending will goes out, its subscriptions go.
    fn end_session(&mut self, index: usize, now: Instant, out: &mut impl Transmit<C>) {
        debug_assert!(self.sessions[index].conn.is_none(), "ending a connected session");
        if self.sessions[index].will_due().is_some() {
            self.publish_will(index, now, out);
        }
        let s = self.sessions.remove(index);
        for filter in s.subscriptions.keys() {
            self.router.unsubscribe(index, filter);
        }
        if let (Some(j), true) = (&mut self.journal, s.journaled) {
            j.record(Record::SessionEnd { client: &s.client_id });
        }
        self.by_client.remove(&s.client_id, index);
        tracing::debug!(client_id = %s.client_id, "session ended");
    }

    /// A connection's send queue drained after it was full: queued deliveries go out.
    pub fn handle_writable(&mut self, now: Instant, conn: C, out: &mut impl Transmit<C>) {
        if let Some(index) = self.conns.get(&conn).and_then(|c| c.session).map(|i| i as usize) {
            self.flush_queue(index, now, out);
        }
    }

    /// Runs what is due at `now`: CONNECT and keep-alive deadlines, delayed wills, session
    /// expiry, `$SYS`.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut impl Transmit<C>) {
        while let Some((tick, due)) = self.timers.pop_due(now) {
            for timer in due {
                self.run_timer(timer, tick, now, out);
            }
        }
    }

    /// Runs one timer of the bucket for `tick`.
    fn run_timer(&mut self, timer: Timer<C>, tick: u32, now: Instant, out: &mut impl Transmit<C>) {
        match timer {
            Timer::Conn(conn) => {
                let Some(c) = self.conns.get_mut(&conn).filter(|c| !c.closing && c.armed == tick) else {
                    return; // gone, closing, or a stale entry
                };
                c.armed = u32::MAX;
                match c.deadline(timers::ticks(self.config.connect_timeout)) {
                    Some(deadline) if deadline <= self.timers.tick(now) => {
                        tracing::debug!(?conn, "keep-alive or CONNECT timeout");
                        self.disconnect(conn, ReasonCode::KEEP_ALIVE_TIMEOUT, now, out);
                    }
                    _ => self.arm(conn),
                }
            }
            Timer::Will { session, uid } => {
                let session = session as usize;
                let due = self
                    .sessions
                    .get(session)
                    .is_some_and(|s| s.uid == uid && s.will_due().is_some_and(|at| at <= now));
                if due {
                    self.publish_will(session, now, out);
                }
            }
            Timer::Expiry { session, uid } => {
                let session = session as usize;
                let tick = self.timers.tick(now);
                let due = self.sessions.get(session).is_some_and(|s| {
                    s.uid == uid && s.conn.is_none() && s.ends_at.is_some_and(|at| at.get() <= tick)
                });
                if due {
                    self.end_session(session, now, out);
                }
            }
            Timer::Sys => {
                self.router.expire_retained(now);
                if self.place.shard == 0 {
                    self.publish_sys(now, out);
                } else {
                    let (stats, gauges) = (Box::new(self.stats.clone()), self.gauges());
                    let shard = self.place.shard;
                    self.outbox.push((0, ShardMessage::Sys { shard, stats, gauges }));
                }
                if let Some(every) = self.config.sys_interval {
                    self.timers.schedule_at(now + every, Timer::Sys);
                }
            }
        }
    }

    /// What this shard holds now.
    /// What the broker holds now.
    pub fn gauges(&self) -> Gauges {
        Gauges {
            clients_connected: self.conns.values().filter(|c| c.session.is_some()).count(),
            sessions: self.sessions.len(),
            subscriptions: self.router.subscription_count(),
            retained: self.router.retained_count(),
        }
    }

    /// Publishes the `$SYS/broker/...` statistics topics, retained: in a cluster, the sums of
    /// every shard's last report.
    pub fn publish_sys(&mut self, now: Instant, out: &mut impl Transmit<C>) {
        let (mut stats, mut gauges) = (self.stats.clone(), self.gauges());
        for (s, g) in self.reports.iter().flatten() {
            stats.add(s);
            gauges.add(g);
        }
        for (topic, value) in stats.topics(now, gauges) {
            let message = Message::new(
                topic.into(),
                value.as_bytes(),
                QoS::AtMostOnce,
                true,
                &Properties::default(),
                now,
                None,
            );
            self.publish(Arc::new(message), now, out);
        }
    }
}

/// Whether a client may publish to `topic`: never to `$` topics (`$SYS` is the broker's),
/// except a bridge to its own state under `$SYS/broker/connection/`, which mosquitto's
/// bridges announce (and set as their will) by default.
fn client_may_publish(topic: &str, bridge: bool) -> bool {
    !topic.starts_with('$') || (bridge && topic.starts_with("$SYS/broker/connection/"))
}

/// Encodes `packet` into `conn`'s send queue; dropped if the queue is full.
fn send<C: Copy>(out: &mut impl Transmit<C>, conn: C, protocol: Protocol, packet: &Packet<'_>) {
    match out.buffer(conn) {
        Some(buf) => packet.encode(protocol, buf),
        None => tracing::debug!(packet = ?packet.packet_type(), "send queue full: control packet dropped"),
    }
}

/// What became of a PUBLISH handed to [`transmit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    /// It is in the send queue.
    Queued,
    /// It exceeds the client's Maximum Packet Size: discarded as if sent (section 3.1.2.11.4).
    Discarded,
    /// The send queue is full.
    Full,
}

/// Encodes a PUBLISH for `delivery` into `conn`'s send queue.
#[allow(clippy::too_many_arguments)]
fn transmit<C: Copy>(
    out: &mut impl Transmit<C>,
    conn: C,
    c: &mut Conn,
    delivery: &Delivery,
    packet_id: u16,
    dup: bool,
    now: Instant,
    stats: &mut Stats,
) -> Sent {
    let topic = &delivery.message.topic;
    let mut name = c.topic_name(topic);
    if !c.fits(delivery.encoded_len(c.protocol, name)) {
        // The alias may be what makes it too long (when its name alone would fit).
        name = TopicName::Full;
        if !c.fits(delivery.encoded_len(c.protocol, name)) {
            stats.oversize += 1;
            return Sent::Discarded;
        }
    }
    match out.buffer(conn) {
        Some(buf) => {
            delivery.encode(c.protocol, name, packet_id, dup, now, buf);
            c.named(topic, name);
            stats.sent += 1;
            Sent::Queued
        }
        None => Sent::Full,
    }
}

/// Sends a QoS 1/2 delivery under a new packet id and records it in flight (a delivery too
/// large for the client is discarded as sent). Gives the delivery back if the send queue is
/// full.
#[allow(clippy::too_many_arguments)]
fn send_inflight<C: Copy>(
    s: &mut Session<C>,
    c: &mut Conn,
    conn: C,
    delivery: Delivery,
    now: Instant,
    out: &mut impl Transmit<C>,
    stats: &mut Stats,
    journal: &mut Option<Journaling>,
) -> Result<(), Delivery> {
    let packet_id = s.allocate_packet_id();
    match transmit(out, conn, c, &delivery, packet_id, false, now, stats) {
        Sent::Queued => {
            if let (Some(j), true) = (journal, delivery.did != 0) {
                j.record(Record::Sent { did: delivery.did, packet_id });
            }
            s.flows_mut().inflight.push_back(Outbound { packet_id, delivery, stage: Stage::Published });
            Ok(())
        }
        Sent::Discarded => {
            if let Some(j) = journal {
                j.done(&delivery);
            }
            Ok(())
        }
        Sent::Full => Err(delivery),
    }
}

#[cfg(test)]
mod tests;
