//! Broker machine tests: packets in, packets out, on a simulated clock.

use std::collections::{HashMap, HashSet};

use super::*;
use crate::codec::{
    decode, Ack, Connect, Disconnect, Packet, Properties, Protocol, Publish, QoS, ReasonCode, RetainHandling,
    SubOptions, Subscribe, SubscriptionIds, Subscriptions, TopicFilters, Unsubscribe, Will,
};

#[derive(Default)]
struct Net {
    bufs: HashMap<u32, Vec<u8>>,
    closed: HashSet<u32>,
    full: HashSet<u32>,
}

impl Transmit<u32> for Net {
    fn buffer(&mut self, conn: u32) -> Option<&mut Vec<u8>> {
        if self.full.contains(&conn) || self.closed.contains(&conn) {
            return None;
        }
        Some(self.bufs.entry(conn).or_default())
    }
    fn close(&mut self, conn: u32) {
        self.closed.insert(conn);
    }
}

struct T {
    b: Broker<u32>,
    net: Net,
    now: Instant,
    protocols: HashMap<u32, Protocol>,
}

fn connect(id: &str, protocol: Protocol) -> Connect<'_> {
    Connect {
        protocol,
        clean_start: true,
        keep_alive: 0,
        properties: Properties::default(),
        client_id: id,
        will: None,
        username: None,
        password: None,
        bridge: false,
    }
}

fn publish<'a>(topic: &'a str, payload: &'a [u8], qos: QoS, packet_id: u16) -> Publish<'a> {
    Publish { dup: false, qos, retain: false, topic, packet_id, properties: Properties::default(), payload }
}

impl T {
    fn new() -> T {
        T::with(quiet())
    }

    fn with(config: BrokerConfig) -> T {
        let now = Instant::now();
        let b = Broker::new(config, now, std::time::SystemTime::now());
        T { b, net: Net::default(), now, protocols: HashMap::new() }
    }

    fn advance(&mut self, secs: f64) {
        self.now += Duration::from_secs_f64(secs);
        self.b.handle_timeout(self.now, &mut self.net);
    }

    fn input(&mut self, conn: u32, bytes: &[u8]) {
        self.b.handle_input(self.now, conn, bytes, &mut self.net);
    }

    fn send(&mut self, conn: u32, packet: Packet<'_>) {
        let mut bytes = Vec::new();
        packet.encode(self.protocols[&conn], &mut bytes);
        self.input(conn, &bytes);
    }

    /// Opens `conn` and connects; returns the CONNACK's session-present flag and reason.
    fn open(&mut self, conn: u32, c: Connect<'_>) -> (bool, ReasonCode) {
        self.protocols.insert(conn, c.protocol);
        let loopback: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        self.b.handle_accept(self.now, conn, Some(loopback), &mut self.net);
        self.send(conn, Packet::Connect(c));
        let frames = self.frames(conn);
        self.keep(conn, &frames[1..]);
        let Packet::ConnAck(ack) = decode(&frames[0], c.protocol, 1 << 24).unwrap().unwrap().0 else {
            panic!("expected CONNACK")
        };
        (ack.session_present, ack.reason)
    }

    fn subscribe(&mut self, conn: u32, filter: &str, options: SubOptions, id: Option<u32>) -> Vec<u8> {
        let subs = [(filter, options)];
        let ids: Vec<u32> = id.into_iter().collect();
        let properties =
            Properties { subscription_ids: SubscriptionIds::List(&ids), ..Properties::default() };
        let sub = Subscribe { packet_id: 1, properties, subscriptions: Subscriptions::List(&subs) };
        self.send(conn, Packet::Subscribe(sub));
        let frames = self.frames(conn);
        self.keep(conn, &frames[1..]);
        let Packet::SubAck(ack) = self.decode(conn, &frames[0]) else { panic!("expected SUBACK") };
        ack.reasons.0.to_vec()
    }

    /// Puts frames back, for the next `frames` call.
    fn keep(&mut self, conn: u32, frames: &[Vec<u8>]) {
        if !frames.is_empty() {
            self.net.bufs.insert(conn, frames.concat());
        }
    }

    /// Everything sent to `conn` since the last call, as whole packets.
    fn frames(&mut self, conn: u32) -> Vec<Vec<u8>> {
        let buf = self.net.bufs.remove(&conn).unwrap_or_default();
        let mut frames = Vec::new();
        let mut rest = &buf[..];
        while let Some(f) = codec::frame(rest, 1 << 24).unwrap() {
            frames.push(rest[..f.len].to_vec());
            rest = &rest[f.len..];
        }
        assert!(rest.is_empty());
        frames
    }

    fn decode<'a>(&self, conn: u32, frame: &'a [u8]) -> Packet<'a> {
        decode(frame, self.protocols[&conn], 1 << 24).unwrap().unwrap().0
    }

    /// The PUBLISH packets sent to `conn`: (topic, payload, qos, packet id, retain, dup, ids).
    fn publishes(&mut self, conn: u32) -> Vec<Got> {
        let frames = self.frames(conn);
        frames
            .iter()
            .map(|f| match self.decode(conn, f) {
                Packet::Publish(p) => (
                    p.topic.to_string(),
                    p.payload.to_vec(),
                    p.qos,
                    p.packet_id,
                    p.retain,
                    p.dup,
                    p.properties.subscription_ids.iter().collect(),
                ),
                other => panic!("expected PUBLISH, got {other:?}"),
            })
            .collect()
    }

    fn close(&mut self, conn: u32) {
        self.b.handle_closed(self.now, conn, &mut self.net);
    }

    fn disconnect_reason(&mut self, conn: u32) -> Option<ReasonCode> {
        let frames = self.frames(conn);
        frames.iter().find_map(|f| match self.decode(conn, f) {
            Packet::Disconnect(d) => Some(d.reason),
            _ => None,
        })
    }
}

/// The default configuration without `$SYS` timers.
fn quiet() -> BrokerConfig {
    BrokerConfig { sys_interval: None, ..BrokerConfig::default() }
}

/// A received PUBLISH: (topic, payload, qos, packet id, retain, dup, subscription ids).
type Got = (String, Vec<u8>, QoS, u16, bool, bool, Vec<u32>);

const V5: Protocol = Protocol::V5;
const V311: Protocol = Protocol::V311;
const Q0: QoS = QoS::AtMostOnce;
const Q1: QoS = QoS::AtLeastOnce;
const Q2: QoS = QoS::ExactlyOnce;

#[test]
fn qos0_and_qos1_fan_out_with_acks() {
    let mut t = T::new();
    t.open(1, connect("sub", V311));
    t.open(2, connect("pub", V5));
    assert_eq!(t.subscribe(1, "a/+", SubOptions::qos(Q1), None), [1]);
    t.send(2, Packet::Publish(publish("a/b", b"zero", Q0, 0)));
    assert_eq!(t.publishes(1), [("a/b".into(), b"zero".to_vec(), Q0, 0, false, false, vec![])]);
    t.send(2, Packet::Publish(publish("a/c", b"one", Q1, 7)));
    let got = t.publishes(1);
    assert_eq!((got[0].2, got[0].3 > 0), (Q1, true));
    let frames = t.frames(2);
    assert!(
        matches!(t.decode(2, &frames[0]), Packet::PubAck(a) if a.packet_id == 7 && a.reason == ReasonCode::SUCCESS)
    );
    // Nobody subscribes to x: MQTT 5 says so in the PUBACK.
    t.send(2, Packet::Publish(publish("x", b"", Q1, 8)));
    let frames = t.frames(2);
    assert!(
        matches!(t.decode(2, &frames[0]), Packet::PubAck(a) if a.reason == ReasonCode::NO_MATCHING_SUBSCRIBERS)
    );
}

#[test]
fn qos2_both_directions_exactly_once() {
    let mut t = T::new();
    t.open(1, connect("sub", V5));
    t.open(2, connect("pub", V5));
    t.subscribe(1, "q2", SubOptions::qos(Q2), None);
    // The publisher sends the same packet id twice (a retransmission): routed once.
    t.send(2, Packet::Publish(publish("q2", b"m", Q2, 3)));
    t.send(2, Packet::Publish(Publish { dup: true, ..publish("q2", b"m", Q2, 3) }));
    let recs = t.frames(2);
    assert_eq!(recs.len(), 2);
    assert!(recs.iter().all(|f| matches!(t.decode(2, f), Packet::PubRec(a) if a.packet_id == 3)));
    let got = t.publishes(1);
    assert_eq!(got.len(), 1, "a QoS 2 retransmission is not delivered twice");
    let id = got[0].3;
    t.send(2, Packet::PubRel(Ack::new(3)));
    let f = t.frames(2);
    assert!(matches!(t.decode(2, &f[0]), Packet::PubComp(a) if a.reason == ReasonCode::SUCCESS));
    t.send(2, Packet::PubRel(Ack::new(3)));
    let f = t.frames(2);
    assert!(
        matches!(t.decode(2, &f[0]), Packet::PubComp(a) if a.reason == ReasonCode::PACKET_IDENTIFIER_NOT_FOUND)
    );
    // Outgoing: PUBREC -> PUBREL -> PUBCOMP.
    t.send(1, Packet::PubRec(Ack::new(id)));
    let f = t.frames(1);
    assert!(matches!(t.decode(1, &f[0]), Packet::PubRel(a) if a.packet_id == id));
    t.send(1, Packet::PubComp(Ack::new(id)));
    assert!(t.b.sessions.iter().all(|(_, s)| s.flows().inflight.is_empty()));
}

#[test]
fn persistent_session_gets_what_it_missed_and_unacked_again() {
    let mut t = T::new();
    let persistent = Connect { clean_start: false, ..connect("dev", V311) };
    assert_eq!(t.open(1, persistent), (false, ReasonCode::SUCCESS));
    t.subscribe(1, "cmd/#", SubOptions::qos(Q1), None);
    t.open(2, connect("pub", V311));
    t.send(2, Packet::Publish(publish("cmd/1", b"a", Q1, 1)));
    let first = t.publishes(1);
    t.close(1); // lost before acknowledging
    t.send(2, Packet::Publish(publish("cmd/2", b"b", Q1, 2)));
    t.send(2, Packet::Publish(publish("cmd/3", b"c", Q0, 0))); // QoS 0 is not kept for offline sessions
    assert_eq!(t.open(3, persistent), (true, ReasonCode::SUCCESS));
    let again = t.publishes(3);
    assert_eq!(again.len(), 2);
    assert_eq!(
        (again[0].1.as_slice(), again[0].3, again[0].5),
        (&b"a"[..], first[0].3, true),
        "resent with DUP"
    );
    assert_eq!((again[1].1.as_slice(), again[1].5), (&b"b"[..], false));
    // A clean start drops the session.
    t.close(3);
    assert_eq!(t.open(4, connect("dev", V311)), (false, ReasonCode::SUCCESS));
}

#[test]
fn takeover_disconnects_the_first_connection() {
    let mut t = T::new();
    t.open(1, connect("same", V5));
    t.open(2, Connect { clean_start: false, ..connect("same", V5) });
    assert_eq!(t.disconnect_reason(1), Some(ReasonCode::SESSION_TAKEN_OVER));
    assert!(t.net.closed.contains(&1));
    t.close(1); // the old connection's close must not touch the new one's session
    t.open(3, connect("other", V5));
    t.subscribe(2, "t", SubOptions::qos(Q0), None);
    t.send(3, Packet::Publish(publish("t", b"x", Q0, 0)));
    assert_eq!(t.publishes(2).len(), 1);
}

#[test]
fn keep_alive_is_enforced_at_one_and_a_half() {
    let mut t = T::new();
    t.open(1, Connect { keep_alive: 10, ..connect("ka", V5) });
    assert_eq!(t.b.timers.len(), 1, "one timer entry per connection");
    t.advance(14.0);
    assert_eq!(t.b.timers.len(), 1);
    assert!(!t.net.closed.contains(&1));
    t.send(1, Packet::PingReq);
    assert!(matches!(t.frames(1).as_slice(), [f] if f == &[0xd0, 0]));
    t.advance(14.0);
    assert!(!t.net.closed.contains(&1), "the PINGREQ restarted the clock");
    t.advance(1.5);
    assert_eq!(t.disconnect_reason(1), Some(ReasonCode::KEEP_ALIVE_TIMEOUT));
    assert!(t.net.closed.contains(&1));
    // A connection that never sends CONNECT is closed after the connect timeout.
    // Deadlines are kept in 100 ms ticks and never fire early, so up to two ticks late.
    t.b.handle_accept(t.now, 9, None, &mut t.net);
    t.advance(9.9);
    assert!(!t.net.closed.contains(&9));
    t.advance(0.3);
    assert!(t.net.closed.contains(&9));
}

#[test]
fn retained_messages_and_retain_handling() {
    let mut t = T::new();
    t.open(1, connect("pub", V5));
    t.send(1, Packet::Publish(Publish { retain: true, ..publish("r/a", b"1", Q1, 1) }));
    t.send(1, Packet::Publish(Publish { retain: true, ..publish("r/b", b"2", Q0, 0) }));
    t.open(2, connect("sub", V5));
    t.subscribe(2, "r/+", SubOptions::qos(Q2), Some(5));
    let mut got = t.publishes(2);
    got.sort();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|p| p.4 && p.6 == [5]), "retained flag and subscription id: {got:?}");
    assert_eq!((got[0].2, got[1].2), (Q1, Q0), "delivered at the lower QoS");
    let rh = |h| SubOptions { retain_handling: h, ..SubOptions::qos(Q0) };
    t.subscribe(2, "r/+", rh(RetainHandling::SendIfNew), None);
    assert!(t.publishes(2).is_empty(), "not new: nothing sent");
    t.subscribe(2, "r/#", rh(RetainHandling::DontSend), None);
    assert!(t.publishes(2).is_empty());
    // An empty retained payload clears it; a forwarded message has RETAIN 0 unless RAP.
    t.send(1, Packet::Publish(Publish { retain: true, ..publish("r/a", b"", Q0, 0) }));
    let live = t.publishes(2);
    assert_eq!(live.len(), 1);
    assert!(!live[0].4);
    t.open(3, connect("late", V311));
    t.subscribe(3, "r/#", SubOptions::qos(Q0), None);
    assert_eq!(t.publishes(3).len(), 1);
    t.subscribe(3, "r/b", SubOptions { retain_as_published: true, ..SubOptions::qos(Q0) }, None);
    t.frames(3);
    t.send(1, Packet::Publish(Publish { retain: true, ..publish("r/b", b"3", Q0, 0) }));
    assert!(!t.publishes(3)[0].4, "3.1.1 has no Retain As Published");
}

#[test]
fn wills_and_will_delay() {
    let mut t = T::new();
    t.open(9, connect("watcher", V5));
    t.subscribe(9, "will/#", SubOptions::qos(Q1), None);
    let will = |topic, delay| Will {
        qos: Q1,
        retain: false,
        properties: Properties { will_delay_interval: delay, ..Properties::default() },
        topic,
        payload: b"gone",
    };
    // Lost connection: the will goes out.
    t.open(1, Connect { will: Some(will("will/1", None)), ..connect("a", V5) });
    t.close(1);
    assert_eq!(t.publishes(9)[0].0, "will/1");
    // Normal DISCONNECT: no will; DISCONNECT with will (0x04): will.
    t.open(2, Connect { will: Some(will("will/2", None)), ..connect("b", V5) });
    t.send(2, Packet::Disconnect(Disconnect::new(ReasonCode::SUCCESS)));
    t.close(2);
    assert!(t.publishes(9).is_empty());
    t.open(3, Connect { will: Some(will("will/3", None)), ..connect("c", V5) });
    t.send(3, Packet::Disconnect(Disconnect::new(ReasonCode::DISCONNECT_WITH_WILL)));
    t.close(3);
    assert_eq!(t.publishes(9)[0].0, "will/3");
    // Will delay 5 s with a session that lives 60 s: a reconnect within 5 s cancels it.
    let long = Properties { session_expiry_interval: Some(60), ..Properties::default() };
    let c = Connect {
        clean_start: false,
        properties: long,
        will: Some(will("will/4", Some(5))),
        ..connect("d", V5)
    };
    t.open(4, c);
    t.close(4);
    t.advance(3.0);
    t.open(5, Connect { will: None, ..c });
    t.advance(10.0);
    assert!(t.publishes(9).is_empty(), "reconnected within the delay");
    // Delay passes: published. Session expiry shorter than the delay: published at expiry.
    t.open(6, c);
    t.close(6);
    t.advance(4.0);
    assert!(t.publishes(9).is_empty());
    t.advance(1.5);
    assert_eq!(t.publishes(9)[0].0, "will/4");
    let short = Properties { session_expiry_interval: Some(2), ..Properties::default() };
    t.open(7, Connect { properties: short, will: Some(will("will/7", Some(30))), ..connect("e", V5) });
    t.close(7);
    t.advance(2.5);
    assert_eq!(t.publishes(9)[0].0, "will/7");
    assert!(t.b.by_client.get(&t.b.sessions, "e").is_none(), "the session ended");
}

#[test]
fn overlapping_subscriptions_make_one_publish_with_every_id() {
    let mut t = T::new();
    t.open(1, connect("sub", V5));
    t.subscribe(1, "a/#", SubOptions::qos(Q0), Some(1));
    t.subscribe(1, "a/+", SubOptions::qos(Q1), Some(2));
    t.subscribe(1, "a/b", SubOptions::qos(Q2), None);
    t.open(2, connect("pub", V5));
    t.send(2, Packet::Publish(publish("a/b", b"x", Q2, 1)));
    let got = t.publishes(1);
    assert_eq!(got.len(), 1);
    let mut ids = got[0].6.clone();
    ids.sort();
    assert_eq!((got[0].2, ids), (Q2, vec![1, 2]));
}

#[test]
fn no_local_and_dollar_topics() {
    let mut t = T::new();
    t.open(1, connect("me", V5));
    t.subscribe(1, "chat", SubOptions { no_local: true, ..SubOptions::qos(Q0) }, None);
    t.subscribe(1, "#", SubOptions::qos(Q0), None);
    t.send(1, Packet::Publish(publish("chat", b"mine", Q0, 0)));
    assert_eq!(t.publishes(1).len(), 1, "only through '#', which has no No Local");
    t.send(1, Packet::Publish(publish("$SYS/fake", b"x", Q1, 4)));
    let f = t.frames(1);
    assert!(matches!(t.decode(1, &f[0]), Packet::PubAck(a) if a.reason == ReasonCode::NOT_AUTHORIZED));
    t.b.publish_sys(t.now, &mut t.net);
    assert!(t.publishes(1).is_empty(), "'#' does not match $SYS");
    t.subscribe(1, "$SYS/broker/clients/connected", SubOptions::qos(Q0), None);
    assert_eq!(t.publishes(1)[0].1, b"1");
}

#[test]
fn shared_subscriptions_take_turns() {
    let mut t = T::new();
    for conn in 1..=3 {
        t.open(conn, connect(&format!("w{conn}"), V5));
        assert_eq!(t.subscribe(conn, "$share/g/jobs/+", SubOptions::qos(Q1), None), [1]);
    }
    t.open(9, connect("pub", V5));
    for i in 0..9u16 {
        t.send(9, Packet::Publish(publish("jobs/x", b"j", Q1, i + 1)));
    }
    for conn in 1..=3 {
        assert_eq!(t.publishes(conn).len(), 3, "worker {conn}");
    }
    // No Local on a shared subscription is a protocol error.
    let subs = [("$share/g/x", SubOptions { no_local: true, ..SubOptions::qos(Q0) })];
    t.send(
        1,
        Packet::Subscribe(Subscribe {
            packet_id: 2,
            properties: Properties::default(),
            subscriptions: Subscriptions::List(&subs),
        }),
    );
    assert_eq!(t.disconnect_reason(1), Some(ReasonCode::PROTOCOL_ERROR));
    assert_eq!(t.subscribe(2, "$share//x", SubOptions::qos(Q0), None), [ReasonCode::TOPIC_FILTER_INVALID.0]);
    assert_eq!(t.subscribe(2, "a/#/b", SubOptions::qos(Q0), None), [ReasonCode::TOPIC_FILTER_INVALID.0]);
}

#[test]
fn topic_aliases_from_the_client() {
    let mut t = T::new();
    t.open(1, connect("sub", V5));
    t.subscribe(1, "long/topic/name", SubOptions::qos(Q0), None);
    t.open(2, connect("pub", V5));
    let alias = |n| Properties { topic_alias: Some(n), ..Properties::default() };
    t.send(2, Packet::Publish(Publish { properties: alias(3), ..publish("long/topic/name", b"1", Q0, 0) }));
    t.send(2, Packet::Publish(Publish { properties: alias(3), ..publish("", b"2", Q0, 0) }));
    assert_eq!(t.publishes(1).iter().map(|p| p.0.as_str()).collect::<Vec<_>>(), ["long/topic/name"; 2]);
    t.send(2, Packet::Publish(Publish { properties: alias(65), ..publish("t", b"3", Q0, 0) }));
    assert_eq!(t.disconnect_reason(2), Some(ReasonCode::TOPIC_ALIAS_INVALID));
    t.open(3, connect("pub2", V5));
    t.send(3, Packet::Publish(Publish { properties: alias(4), ..publish("", b"2", Q0, 0) }));
    assert_eq!(t.disconnect_reason(3), Some(ReasonCode::PROTOCOL_ERROR), "alias never set");
}

#[test]
fn bad_packets_close_only_their_connection() {
    let config = BrokerConfig { max_packet_size: 64, ..quiet() };
    let mut t = T::with(config);
    t.open(1, connect("ok", V5));
    t.subscribe(1, "t", SubOptions::qos(Q0), None);
    t.open(2, connect("bad", V5));
    t.input(2, &[0x30, 0x03, 0, 1, b'#']); // wildcard in a topic name
    assert_eq!(t.disconnect_reason(2), Some(ReasonCode::TOPIC_NAME_INVALID));
    t.open(3, connect("big", V5));
    t.input(3, &[0x30, 0x80, 0x01]); // 128 bytes announced, limit 64
    assert_eq!(t.disconnect_reason(3), Some(ReasonCode::PACKET_TOO_LARGE));
    t.open(4, connect("v3", V311));
    t.input(4, &[0x62, 0x02, 0x00]); // half a PUBREL
    t.input(4, &[0x01, 0x00, 0x00]); // its end, then a packet of reserved type 0
    assert!(t.net.closed.contains(&4));
    // Not MQTT at all before CONNECT: closed, no answer.
    t.b.handle_accept(t.now, 5, None, &mut t.net);
    t.input(5, b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert!(t.net.closed.contains(&5));
    t.open(6, connect("pub", V5));
    t.send(6, Packet::Publish(publish("t", b"still fine", Q0, 0)));
    assert_eq!(t.publishes(1).len(), 1);
    assert_eq!(t.b.stats().protocol_errors, 4, "'G' is a PUBACK with reserved flags");
}

#[test]
fn unsupported_version_and_identifier_rejected() {
    let mut t = T::new();
    t.b.handle_accept(t.now, 1, None, &mut t.net);
    t.input(1, &[0x10, 0x0c, 0, 4, b'M', b'Q', b'T', b'T', 9, 2, 0, 0, 0, 0]);
    assert_eq!(t.net.bufs[&1], [0x20, 2, 0, 1], "3.1.1 return code 1");
    let persistent_empty = Connect { clean_start: false, ..connect("", V311) };
    assert_eq!(t.open(2, persistent_empty), (false, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID));
    // MQTT 5 with an empty id: the broker assigns one and says which.
    t.protocols.insert(3, V5);
    t.b.handle_accept(t.now, 3, Some("127.0.0.1:1".parse().unwrap()), &mut t.net);
    t.send(3, Packet::Connect(connect("", V5)));
    let f = t.frames(3);
    let Packet::ConnAck(ack) = t.decode(3, &f[0]) else { panic!() };
    assert!(ack.properties.assigned_client_identifier.is_some_and(|id| id.starts_with("zero-")));
}

#[test]
fn anonymous_policy_and_passwords() {
    let mut config = quiet();
    let hash = crate::auth::hash_password(b"s3cret", 1000);
    config.passwords = Some(crate::auth::PasswordFile::parse(&format!("alice:{hash}\n")).unwrap());
    let mut t = T::with(config);
    let remote = |t: &mut T, conn, c: Connect<'_>| {
        t.protocols.insert(conn, c.protocol);
        t.b.handle_accept(t.now, conn, Some("192.0.2.1:4000".parse().unwrap()), &mut t.net);
        t.send(conn, Packet::Connect(c));
        let f = t.frames(conn);
        let Packet::ConnAck(ack) = t.decode(conn, &f[0]) else { panic!() };
        ack.reason
    };
    assert_eq!(remote(&mut t, 1, connect("anon", V5)), ReasonCode::NOT_AUTHORIZED, "anonymous from afar");
    assert_eq!(t.open(2, connect("local", V5)).1, ReasonCode::SUCCESS, "anonymous on loopback");
    let alice = |pw| Connect { username: Some("alice"), password: Some(pw), ..connect("a", V5) };
    assert_eq!(remote(&mut t, 3, alice(b"s3cret")), ReasonCode::SUCCESS);
    assert_eq!(remote(&mut t, 4, alice(b"wrong")), ReasonCode::BAD_USER_NAME_OR_PASSWORD);
}

#[test]
fn slow_subscriber_drops_qos0_first_and_keeps_qos1_in_a_bounded_queue() {
    let config = BrokerConfig { max_queued: 3, ..quiet() };
    let mut t = T::with(config);
    t.open(1, connect("slow", V5));
    t.subscribe(1, "#", SubOptions::qos(Q1), None);
    t.open(2, connect("pub", V5));
    t.net.full.insert(1); // its send queue is full
    t.send(2, Packet::Publish(publish("t", b"q0", Q0, 0)));
    for i in 1..=4u16 {
        t.send(2, Packet::Publish(publish("t", &[b'0' + i as u8], Q1, i)));
    }
    // Queue of 3: q0, 1, 2; then 3 replaces q0; 4 finds no QoS 0 to replace and is dropped.
    assert_eq!(t.b.stats().dropped, 2, "the QoS 0 message and the fourth QoS 1 one");
    t.net.full.remove(&1);
    t.b.handle_writable(t.now, 1, &mut t.net);
    let got: Vec<_> = t.publishes(1).into_iter().map(|p| p.1).collect();
    assert_eq!(got, [b"1".to_vec(), b"2".to_vec(), b"3".to_vec()]);
    // QoS 0 waits in the queue too while the send queue is full, and keeps its order.
    t.net.full.insert(1);
    t.send(2, Packet::Publish(publish("t", b"a", Q0, 0)));
    t.send(2, Packet::Publish(publish("t", b"b", Q1, 9)));
    t.net.full.remove(&1);
    t.b.handle_writable(t.now, 1, &mut t.net);
    let got: Vec<_> = t.publishes(1).into_iter().map(|p| (p.1, p.2)).collect();
    assert_eq!(got, [(b"a".to_vec(), Q0), (b"b".to_vec(), Q1)]);
}

#[test]
fn receive_maximum_window_on_delivery() {
    let mut t = T::new();
    let small = Properties { receive_maximum: Some(2), ..Properties::default() };
    t.open(1, Connect { properties: small, ..connect("sub", V5) });
    t.subscribe(1, "t", SubOptions::qos(Q1), None);
    t.open(2, connect("pub", V5));
    for i in 1..=5u16 {
        t.send(2, Packet::Publish(publish("t", b"m", Q1, i)));
    }
    let first = t.publishes(1);
    assert_eq!(first.len(), 2, "window of 2");
    t.send(1, Packet::PubAck(Ack::new(first[0].3)));
    assert_eq!(t.publishes(1).len(), 1, "one ack, one more");
}

#[test]
fn unsubscribe_reports_what_existed() {
    let mut t = T::new();
    t.open(1, connect("s", V5));
    t.subscribe(1, "a", SubOptions::qos(Q0), None);
    let filters = ["a", "b"];
    t.send(
        1,
        Packet::Unsubscribe(Unsubscribe {
            packet_id: 2,
            properties: Properties::default(),
            filters: TopicFilters::List(&filters),
        }),
    );
    let f = t.frames(1);
    let Packet::UnsubAck(ack) = t.decode(1, &f[0]) else { panic!() };
    assert_eq!(ack.reasons.0, [0x00, 0x11]);
    t.open(2, connect("p", V5));
    t.send(2, Packet::Publish(publish("a", b"x", Q0, 0)));
    assert!(t.publishes(1).is_empty());
}

#[test]
fn session_expiry_ends_sessions() {
    let mut t = T::new();
    let expiry = Properties { session_expiry_interval: Some(30), ..Properties::default() };
    t.open(1, Connect { clean_start: false, properties: expiry, ..connect("x", V5) });
    t.subscribe(1, "t", SubOptions::qos(Q1), None);
    t.close(1);
    t.advance(29.0);
    assert!(t.open(2, Connect { clean_start: false, properties: expiry, ..connect("x", V5) }).0, "resumed");
    t.close(2);
    t.advance(31.0);
    assert_eq!(t.b.session_count(), 0);
    assert_eq!(t.b.router.subscription_count(), 0);
}

/// Restarts the broker from `t`'s journal: everything written so far, replayed into a new one.
fn restart(t: &mut T) -> T {
    let journal = t.b.take_journal();
    let mut next = T::with(BrokerConfig { persistence: true, ..quiet() });
    next.now = t.now;
    next.b.restore(&journal, next.now);
    // A snapshot replays to the same state: restore once more from it.
    let snapshot = next.b.snapshot();
    let mut again = T::with(BrokerConfig { persistence: true, ..quiet() });
    again.now = t.now;
    assert_eq!(again.b.restore(&snapshot, again.now), next.b.session_count());
    assert_eq!(again.b.snapshot().len(), snapshot.len());
    again
}

#[test]
fn journal_brings_back_sessions_flows_and_retained_messages() {
    let mut t = T::with(BrokerConfig { persistence: true, ..quiet() });
    let dev = Connect { clean_start: false, ..connect("dev", V311) };
    let publisher = Connect { clean_start: false, ..connect("pub", V311) };
    t.open(1, dev);
    t.subscribe(1, "cmd/#", SubOptions::qos(Q2), None);
    t.open(2, publisher);
    // QoS 2 in: routed, PUBREC sent, PUBREL never arrives before the crash.
    t.send(2, Packet::Publish(publish("cmd/1", b"exactly", Q2, 5)));
    let got = t.publishes(1);
    let id = got[0].3;
    // QoS 2 out: the subscriber's PUBREC moves the flow to PUBREL.
    t.send(1, Packet::PubRec(Ack::new(id)));
    t.frames(1);
    t.close(1);
    // Missed while offline, QoS 1; and a retained message.
    t.send(2, Packet::Publish(publish("cmd/2", b"missed", Q1, 6)));
    t.send(2, Packet::Publish(Publish { retain: true, ..publish("state", b"on", Q1, 7) }));
    // A clean session leaves nothing behind.
    t.open(3, connect("passing", V311));
    t.subscribe(3, "cmd/#", SubOptions::qos(Q1), None);

    let mut t = restart(&mut t);
    assert_eq!(t.b.session_count(), 2, "dev and pub, not the clean session");
    // The publisher resends its QoS 2 PUBLISH: not routed again, and PUBREL completes it.
    assert_eq!(t.open(2, publisher), (true, ReasonCode::SUCCESS));
    t.send(2, Packet::Publish(Publish { dup: true, ..publish("cmd/1", b"exactly", Q2, 5) }));
    t.send(2, Packet::PubRel(Ack::new(5)));
    let acks = t.frames(2);
    assert!(matches!(t.decode(2, &acks[0]), Packet::PubRec(a) if a.packet_id == 5));
    assert!(matches!(t.decode(2, &acks[1]), Packet::PubComp(a) if a.reason == ReasonCode::SUCCESS));
    // The subscriber resumes: PUBREL for the flow in progress, then what it missed, once.
    assert_eq!(t.open(1, dev), (true, ReasonCode::SUCCESS));
    let frames = t.frames(1);
    assert_eq!(frames.len(), 2, "no second copy of cmd/1");
    assert!(matches!(t.decode(1, &frames[0]), Packet::PubRel(a) if a.packet_id == id));
    assert!(matches!(t.decode(1, &frames[1]), Packet::Publish(p) if p.payload == b"missed" && p.qos == Q1));
    // Retained survived.
    t.open(4, connect("late", V311));
    t.subscribe(4, "state", SubOptions::qos(Q1), None);
    assert_eq!(t.publishes(4)[0].1, b"on");
    // Finished flows stay finished across another restart.
    t.send(1, Packet::PubComp(Ack::new(id)));
    let Packet::Publish(p) = t.decode(1, &frames[1]) else { unreachable!() };
    t.send(1, Packet::PubAck(Ack::new(p.packet_id)));
    t.close(1);
    let mut t = restart(&mut t);
    assert_eq!(t.open(1, dev), (true, ReasonCode::SUCCESS));
    assert!(t.frames(1).is_empty(), "nothing left to resend");
}

#[test]
fn topics_sent_to_a_v5_client_get_aliases_within_its_maximum_least_recently_used_replaced() {
    let mut t = T::new();
    let mut sub = connect("sub", V5);
    sub.properties.topic_alias_maximum = Some(2);
    t.open(1, sub);
    t.open(2, connect("pub", V5));
    t.subscribe(1, "#", SubOptions::qos(Q1), None);
    let named = |t: &mut T, topic: &str| {
        t.send(2, Packet::Publish(publish(topic, b"x", Q0, 0)));
        t.frames(2);
        let frames = t.frames(1);
        let Packet::Publish(p) = t.decode(1, &frames[0]) else { panic!("expected PUBLISH") };
        (p.topic.to_string(), p.properties.topic_alias)
    };
    let assigned = |topic: &str, alias| (topic.to_string(), Some(alias));
    let used = |alias| (String::new(), Some(alias));
    assert_eq!(named(&mut t, "plant/a/temp"), assigned("plant/a/temp", 1));
    assert_eq!(named(&mut t, "plant/a/temp"), used(1));
    assert_eq!(named(&mut t, "plant/b/temp"), assigned("plant/b/temp", 2));
    assert_eq!(named(&mut t, "ab"), ("ab".to_string(), None), "too short to gain from an alias");
    // Both aliases taken: the least recently used topic (a) gives its alias up.
    assert_eq!(named(&mut t, "plant/c/temp"), assigned("plant/c/temp", 1));
    assert_eq!(named(&mut t, "plant/b/temp"), used(2));
    assert_eq!(named(&mut t, "plant/a/temp"), assigned("plant/a/temp", 1), "c was used less recently than b");
    // Aliases belong to the connection: a new one starts afresh.
    t.send(1, Packet::Disconnect(Disconnect::new(ReasonCode::SUCCESS)));
    t.close(1);
    let mut again = connect("sub", V5);
    again.properties.topic_alias_maximum = Some(2);
    again.clean_start = false;
    again.properties.session_expiry_interval = Some(0);
    t.open(3, again);
    t.subscribe(3, "#", SubOptions::qos(Q1), None);
    t.send(2, Packet::Publish(publish("plant/b/temp", b"x", Q0, 0)));
    let frames = t.frames(3);
    let Packet::Publish(p) = t.decode(3, &frames[0]) else { panic!("expected PUBLISH") };
    assert_eq!((p.topic, p.properties.topic_alias), ("plant/b/temp", Some(1)));
}

#[test]
fn no_topic_aliases_without_a_client_maximum_or_in_3_1_1() {
    for (protocol, maximum) in [(V5, None), (V5, Some(0)), (V311, None)] {
        let mut t = T::new();
        let mut sub = connect("sub", protocol);
        sub.properties.topic_alias_maximum = maximum;
        t.open(1, sub);
        t.open(2, connect("pub", V5));
        t.subscribe(1, "#", SubOptions::qos(Q0), None);
        for _ in 0..2 {
            t.send(2, Packet::Publish(publish("plant/a/temp", b"x", Q0, 0)));
            let frames = t.frames(1);
            let Packet::Publish(p) = t.decode(1, &frames[0]) else { panic!("expected PUBLISH") };
            assert_eq!(
                (p.topic, p.properties.topic_alias),
                ("plant/a/temp", None),
                "{protocol:?} {maximum:?}"
            );
        }
    }
}

#[test]
fn a_bridge_gets_none_of_its_own_messages_back_and_retain_as_published() {
    let mut t = T::new();
    // mosquitto's try_private: MQTT 3.1.1 with the protocol level's top bit set.
    let (_, reason) = t.open(1, Connect { bridge: true, ..connect("edge.bridge", V311) });
    assert_eq!(reason, ReasonCode::SUCCESS);
    t.open(2, connect("local", V311));
    t.subscribe(1, "#", SubOptions::qos(Q1), None);
    t.send(1, Packet::Publish(publish("a/b", b"from the bridge", Q0, 0)));
    assert_eq!(t.publishes(1), [], "No Local for a bridge");
    let retained = Publish { retain: true, ..publish("a/c", b"kept", Q0, 0) };
    t.send(2, Packet::Publish(retained));
    let got = t.publishes(1);
    assert_eq!((got[0].0.as_str(), got[0].4), ("a/c", true), "RETAIN as published");
    // Its state topic under $SYS/broker/connection/ is the one `$` topic it may use.
    t.send(1, Packet::Publish(publish("$SYS/broker/connection/edge/state", b"1", Q0, 0)));
    assert!(!t.net.closed.contains(&1));
}
