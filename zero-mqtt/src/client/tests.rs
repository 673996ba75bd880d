//! Client machine tests: a scripted server, a simulated clock.

use std::time::{Duration, Instant};

use super::machine::*;
use crate::codec::{
    decode, Ack, ConnAck, Packet, Properties, Protocol, Publish, QoS, ReasonCode, ReasonCodes, SubAck,
    SubOptions,
};
use zero_core::machine::{Closed, Machine};
use zero_core::CloseReason;

struct T {
    c: Client,
    now: Instant,
}

impl T {
    fn new(config: ClientConfig) -> T {
        let now = Instant::now();
        T { c: Client::new(config, now), now }
    }

    fn v5() -> T {
        T::new(ClientConfig { client_id: "c".into(), ..ClientConfig::default() })
    }

    /// Opens the transport and answers CONNECT with CONNACK.
    fn up(&mut self, session_present: bool, properties: Properties<'_>) -> Vec<Packet<'static>> {
        assert!(self.c.wants_connect(self.now));
        self.c.handle_connected(self.now);
        assert!(matches!(self.sent()[0], Packet::Connect(_)));
        let ack = ConnAck { session_present, reason: ReasonCode::SUCCESS, properties };
        self.server(Packet::ConnAck(ack));
        self.sent()
    }

    fn server(&mut self, packet: Packet<'_>) {
        let mut bytes = Vec::new();
        packet.encode(Protocol::V5, &mut bytes);
        self.c.handle_input(self.now, &bytes);
    }

    /// Packets the client sent since the last call (leaked: tests are short).
    fn sent(&mut self) -> Vec<Packet<'static>> {
        let sent = self.c.poll_transmit().map(<[u8]>::to_vec).unwrap_or_default();
        let bytes: &'static [u8] = Box::leak(sent.into_boxed_slice());
        let mut rest = bytes;
        let mut out = Vec::new();
        while let Some((p, len)) = decode(rest, Protocol::V5, usize::MAX).unwrap() {
            out.push(p);
            rest = &rest[len..];
        }
        out
    }

    fn advance(&mut self, secs: f64) {
        self.now += Duration::from_secs_f64(secs);
        self.c.handle_timeout(self.now);
    }

    fn publish(&mut self, payload: &'static [u8], qos: QoS) -> u16 {
        let p = Publish {
            dup: false,
            qos,
            retain: false,
            topic: "t",
            packet_id: 0,
            properties: Properties::default(),
            payload,
        };
        self.c.publish(p, self.now).unwrap()
    }
}

#[test]
fn keep_alive_pings_and_a_silent_server_is_dropped() {
    let mut t = T::v5();
    t.up(false, Properties::default());
    t.advance(59.0);
    assert!(t.sent().is_empty());
    t.advance(1.0);
    assert_eq!(t.sent(), [Packet::PingReq]);
    t.server(Packet::PingResp);
    t.advance(60.0);
    assert_eq!(t.sent(), [Packet::PingReq]);
    t.advance(60.0);
    assert!(t.c.poll_close(), "no PINGRESP within keep-alive");
}

#[test]
fn reconnects_back_off_and_reset_after_success() {
    let mut t = T::v5();
    assert!(t.c.wants_connect(t.now));
    t.c.handle_connected(t.now);
    t.advance(10.0); // no CONNACK
    assert!(t.c.poll_close());
    t.c.handle_closed(t.now, Closed::Lost(CloseReason::Reset));
    for delay in [0.1, 0.2, 0.4] {
        assert!(!t.c.wants_connect(t.now));
        t.now += Duration::from_secs_f64(delay);
        assert!(t.c.wants_connect(t.now), "after {delay} s");
        t.c.handle_closed(t.now, Closed::Lost(CloseReason::Reset)); // refused at TCP level
    }
    t.now += Duration::from_secs_f64(0.8);
    t.up(false, Properties::default());
    t.c.handle_closed(t.now, Closed::Lost(CloseReason::Reset));
    t.now += Duration::from_secs_f64(0.1);
    assert!(t.c.wants_connect(t.now), "backoff starts over");
}

#[test]
fn window_follows_the_servers_receive_maximum_and_resends_with_dup() {
    let mut t = T::v5();
    t.up(false, Properties { receive_maximum: Some(2), ..Properties::default() });
    let ids: Vec<u16> = [&b"a"[..], b"b", b"c"].iter().map(|p| t.publish(p, QoS::AtLeastOnce)).collect();
    let sent = t.sent();
    assert_eq!(sent.len(), 2, "third waits for the window");
    t.server(Packet::PubAck(Ack::new(ids[0])));
    assert!(matches!(t.sent()[..], [Packet::Publish(p)] if p.payload == b"c"));
    let published = Event::Published { packet_id: ids[0], reason: ReasonCode::SUCCESS };
    assert!(std::iter::from_fn(|| t.c.poll_event()).any(|e| e == published));
    // Lost connection; the session resumes: both in flight go again, with DUP.
    t.c.handle_closed(t.now, Closed::Lost(CloseReason::Reset));
    t.now += Duration::from_secs(1);
    let again = t.up(true, Properties::default());
    let resent: Vec<_> = again
        .iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some((p.payload, p.dup, p.packet_id)),
            _ => None,
        })
        .collect();
    assert_eq!(resent, [(&b"b"[..], true, ids[1]), (&b"c"[..], true, ids[2])]);
}

#[test]
fn qos2_in_is_delivered_once_and_qos2_out_completes() {
    let mut t = T::v5();
    t.up(false, Properties::default());
    let p = Publish {
        dup: false,
        qos: QoS::ExactlyOnce,
        retain: false,
        topic: "in",
        packet_id: 9,
        properties: Properties::default(),
        payload: b"x",
    };
    t.server(Packet::Publish(p));
    t.server(Packet::Publish(Publish { dup: true, ..p }));
    let messages = std::iter::from_fn(|| t.c.poll_event()).filter(|e| matches!(e, Event::Message(_))).count();
    assert_eq!(messages, 1);
    t.server(Packet::PubRel(Ack::new(9)));
    assert!(
        matches!(t.sent()[..], [Packet::PubRec(_), Packet::PubRec(_), Packet::PubComp(a)] if a.reason == ReasonCode::SUCCESS)
    );
    let id = t.publish(b"y", QoS::ExactlyOnce);
    t.sent();
    t.server(Packet::PubRec(Ack::new(id)));
    assert!(matches!(t.sent()[..], [Packet::PubRel(a)] if a.packet_id == id));
    t.server(Packet::PubComp(Ack::new(id)));
    assert_eq!(t.c.pending(), 0);
}

#[test]
fn a_lost_session_is_subscribed_again_and_flows_restart() {
    let mut t = T::v5();
    t.up(false, Properties::default());
    let sub = t.c.subscribe(&[("a/#", SubOptions::qos(QoS::AtLeastOnce))], Some(4)).unwrap();
    t.server(Packet::SubAck(SubAck {
        packet_id: sub,
        properties: Properties::default(),
        reasons: ReasonCodes(&[1]),
    }));
    let id = t.publish(b"p", QoS::AtLeastOnce);
    t.sent();
    t.c.handle_closed(t.now, Closed::Lost(CloseReason::Reset));
    t.now += Duration::from_secs(1);
    let again = t.up(false, Properties::default());
    assert!(again.iter().any(|p| matches!(p, Packet::Subscribe(s)
        if s.subscriptions.iter().next().unwrap().0 == "a/#" && s.properties.subscription_ids.first() == Some(4))));
    assert!(again.iter().any(|p| matches!(p, Packet::Publish(p) if p.packet_id == id && !p.dup)));
}

#[test]
fn qos0_needs_a_connection_and_bad_topics_are_refused() {
    let mut t = T::v5();
    let p = Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "t",
        packet_id: 0,
        properties: Properties::default(),
        payload: b"",
    };
    assert_eq!(t.c.publish(p, t.now), Err(ClientError::NotConnected));
    assert!(matches!(t.c.publish(Publish { topic: "a/+", ..p }, t.now), Err(ClientError::TopicName(_))));
    assert!(matches!(
        t.c.subscribe(&[("a/#/b", SubOptions::default())], None),
        Err(ClientError::TopicFilter(_))
    ));
}

#[test]
fn packet_identifiers_run_out_with_an_error_not_a_hang() {
    let mut t =
        T::new(ClientConfig { client_id: "c".into(), max_queued: 100_000, ..ClientConfig::default() });
    for _ in 0..65_535 {
        t.publish(b"", QoS::AtLeastOnce); // queued: not connected yet
    }
    let p = Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "t",
        packet_id: 0,
        properties: Properties::default(),
        payload: b"",
    };
    assert_eq!(t.c.publish(p, t.now), Err(ClientError::QueueFull(65_535)));
    assert!(matches!(t.c.subscribe(&[("a", SubOptions::default())], None), Err(ClientError::QueueFull(_))));
}

#[test]
fn a_packet_over_the_maximum_ends_the_connection_before_it_is_buffered() {
    let mut t =
        T::new(ClientConfig { client_id: "c".into(), max_packet_size: 1024, ..ClientConfig::default() });
    assert!(t.c.wants_connect(t.now));
    t.c.handle_connected(t.now);
    let Packet::Connect(c) = t.sent()[0] else { panic!("CONNECT first") };
    assert_eq!(c.properties.maximum_packet_size, Some(1024), "announced to the server");
    let ack =
        ConnAck { session_present: false, reason: ReasonCode::SUCCESS, properties: Properties::default() };
    t.server(Packet::ConnAck(ack));
    t.sent();
    // A PUBLISH header that claims 256 MiB: refused on its length alone.
    t.c.handle_input(t.now, &[0x30, 0xFF, 0xFF, 0xFF, 0x7F]);
    assert!(t.c.poll_close());
    assert!(matches!(t.sent()[..], [Packet::Disconnect(d)] if d.reason == ReasonCode::PACKET_TOO_LARGE));
}
