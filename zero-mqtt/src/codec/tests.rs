//! Codec tests: byte vectors from the specification's layouts, malformed packets mapped to
//! their reason codes, and property-based round trips.

use super::*;
use proptest::prelude::*;

const MAX: usize = 1 << 20;

fn roundtrip(packet: &Packet<'_>, protocol: Protocol) -> Vec<u8> {
    let mut out = Vec::new();
    packet.encode(protocol, &mut out);
    assert_eq!(out.len(), packet.encoded_len(protocol), "encoded_len of {packet:?}");
    let (decoded, used) = decode(&out, protocol, MAX).unwrap().expect("whole packet");
    assert_eq!(used, out.len());
    assert_eq!(&decoded, packet);
    // Every strict prefix asks for more bytes.
    for cut in 0..out.len() {
        assert_eq!(decode(&out[..cut], protocol, MAX).unwrap(), None, "prefix {cut}");
    }
    out
}

fn err(bytes: &[u8], protocol: Protocol) -> ReasonCode {
    decode(bytes, protocol, MAX).expect_err("must be refused").reason
}

#[test]
fn connect_v311_bytes() {
    // A CONNECT as mosquitto_pub -V mqttv311 -i c1 -k 60 -u u -P p sends it.
    let bytes = [
        0x10, 0x14, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0xc2, 0x00, 0x3c, 0x00, 0x02, b'c', b'1', 0x00,
        0x01, b'u', 0x00, 0x01, b'p',
    ];
    let (p, used) = decode(&bytes, Protocol::V311, MAX).unwrap().unwrap();
    assert_eq!(used, bytes.len());
    let Packet::Connect(c) = p else { panic!("{p:?}") };
    assert_eq!((c.protocol, c.clean_start, c.keep_alive, c.client_id), (Protocol::V311, true, 60, "c1"));
    assert_eq!((c.username, c.password), (Some("u"), Some(&b"p"[..])));
    assert_eq!(roundtrip(&p, Protocol::V311), bytes);
}

#[test]
fn connect_v5_with_will_and_properties() {
    let users = [("k", "v"), ("k", "w")];
    let connect = Connect {
        protocol: Protocol::V5,
        clean_start: false,
        keep_alive: 30,
        properties: Properties {
            session_expiry_interval: Some(3600),
            receive_maximum: Some(10),
            maximum_packet_size: Some(4096),
            topic_alias_maximum: Some(5),
            user_properties: UserProperties::List(&users),
            ..Properties::default()
        },
        client_id: "dev-1",
        will: Some(Will {
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: Properties {
                will_delay_interval: Some(5),
                message_expiry_interval: Some(60),
                content_type: Some("text/plain"),
                response_topic: Some("r/t"),
                correlation_data: Some(b"\x00\x01"),
                payload_format_indicator: Some(1),
                ..Properties::default()
            },
            topic: "dev/1/status",
            payload: b"offline",
        }),
        username: None,
        password: Some(b"token"),
        bridge: false,
    };
    let bytes = roundtrip(&Packet::Connect(connect), Protocol::V311);
    let Some((Packet::Connect(c), _)) = decode(&bytes, Protocol::V311, MAX).unwrap() else { panic!() };
    let pairs: Vec<_> = c.properties.user_properties.iter().collect();
    assert_eq!(pairs, users, "repeated user properties keep their order");
}

#[test]
fn connect_refusals() {
    let base = |name: &[u8], level: u8, flags: u8| {
        let mut body = Vec::new();
        wire::write_bytes(&mut body, name);
        body.extend_from_slice(&[level, flags, 0, 0]);
        if level == 5 {
            body.push(0);
        }
        wire::write_bytes(&mut body, b"id");
        let mut out = vec![0x10];
        wire::write_varint(&mut out, body.len() as u32);
        out.extend_from_slice(&body);
        out
    };
    assert_eq!(err(&base(b"MQTT", 6, 2), Protocol::V311), ReasonCode::UNSUPPORTED_PROTOCOL_VERSION);
    assert_eq!(err(&base(b"HTTP", 4, 2), Protocol::V311), ReasonCode::UNSUPPORTED_PROTOCOL_VERSION);
    assert_eq!(err(&base(b"MQTT", 4, 3), Protocol::V311), ReasonCode::MALFORMED_PACKET, "reserved flag");
    assert_eq!(err(&base(b"MQTT", 4, 0x1a), Protocol::V311), ReasonCode::MALFORMED_PACKET, "will QoS 3");
    assert_eq!(
        err(&base(b"MQTT", 4, 0x22), Protocol::V311),
        ReasonCode::MALFORMED_PACKET,
        "retain sans will"
    );
    assert_eq!(err(&base(b"MQTT", 4, 0x42), Protocol::V311), ReasonCode::MALFORMED_PACKET, "password only");
    assert!(decode(&base(b"MQIsdp", 3, 2), Protocol::V311, MAX).is_ok());
    let mut bad_fixed = base(b"MQTT", 4, 2);
    bad_fixed[0] = 0x11;
    assert_eq!(err(&bad_fixed, Protocol::V311), ReasonCode::MALFORMED_PACKET);
}

#[test]
fn publish_rules() {
    // QoS 3, DUP at QoS 0, wildcard in topic, packet id 0, empty topic without alias.
    assert_eq!(err(&[0x36, 0x05, 0, 1, b'a', 0, 1], Protocol::V311), ReasonCode::MALFORMED_PACKET);
    assert_eq!(err(&[0x38, 0x03, 0, 1, b'a'], Protocol::V311), ReasonCode::MALFORMED_PACKET);
    assert_eq!(err(&[0x30, 0x03, 0, 1, b'#'], Protocol::V311), ReasonCode::TOPIC_NAME_INVALID);
    assert_eq!(err(&[0x32, 0x05, 0, 1, b'a', 0, 0], Protocol::V311), ReasonCode::MALFORMED_PACKET);
    assert_eq!(err(&[0x30, 0x03, 0, 0, 0], Protocol::V5), ReasonCode::PROTOCOL_ERROR);
    // An empty topic with a topic alias is fine in MQTT 5.
    let p = decode(&[0x30, 0x06, 0, 0, 3, 0x23, 0, 7], Protocol::V5, MAX).unwrap().unwrap().0;
    let Packet::Publish(p) = p else { panic!() };
    assert_eq!(p.properties.topic_alias, Some(7));
    // Topic alias 0 and a repeated property are protocol errors.
    assert_eq!(err(&[0x30, 0x06, 0, 1, b'a', 3, 0x23, 0, 0], Protocol::V5), ReasonCode::MALFORMED_PACKET);
    assert_eq!(err(&[0x30, 0x07, 0, 1, b'a', 3, 0x23, 0, 0], Protocol::V5), ReasonCode::PROTOCOL_ERROR);
    assert_eq!(
        err(&[0x30, 0x0a, 0, 1, b'a', 6, 0x23, 0, 1, 0x23, 0, 2], Protocol::V5),
        ReasonCode::PROTOCOL_ERROR
    );
    // A property that does not belong in PUBLISH is malformed.
    assert_eq!(err(&[0x30, 0x07, 0, 1, b'a', 3, 0x21, 0, 1], Protocol::V5), ReasonCode::MALFORMED_PACKET);
    // Payload format indicator 2 is a protocol error.
    assert_eq!(err(&[0x30, 0x06, 0, 1, b'a', 2, 0x01, 2], Protocol::V5), ReasonCode::PROTOCOL_ERROR);
}

#[test]
fn publish_carries_many_subscription_ids() {
    let ids = [1, 300, 268_435_455];
    let p = Publish {
        dup: true,
        qos: QoS::ExactlyOnce,
        retain: false,
        topic: "a/b",
        packet_id: 9,
        properties: Properties { subscription_ids: SubscriptionIds::List(&ids), ..Properties::default() },
        payload: b"x",
    };
    let bytes = roundtrip(&Packet::Publish(p), Protocol::V5);
    let Some((Packet::Publish(d), _)) = decode(&bytes, Protocol::V5, MAX).unwrap() else { panic!() };
    assert_eq!(d.properties.subscription_ids.iter().collect::<Vec<_>>(), ids);
    // One subscription identifier only in SUBSCRIBE; 0 is a protocol error.
    let two = [0x82, 0x0b, 0, 1, 4, 0x0b, 1, 0x0b, 2, 0, 1, b'a', 0];
    assert_eq!(err(&two, Protocol::V5), ReasonCode::PROTOCOL_ERROR);
    let zero = [0x82, 0x08, 0, 1, 2, 0x0b, 0, 0, 1, b'a', 0];
    assert_eq!(err(&zero, Protocol::V5), ReasonCode::PROTOCOL_ERROR);
}

#[test]
fn acks_short_forms() {
    // MQTT 5 PUBACK with success and no properties is 2 bytes; with a reason code 3.
    let ok = Packet::PubAck(Ack::new(7));
    assert_eq!(roundtrip(&ok, Protocol::V5), [0x40, 2, 0, 7]);
    let no_match = Packet::PubAck(Ack { reason: ReasonCode::NO_MATCHING_SUBSCRIBERS, ..Ack::new(7) });
    assert_eq!(roundtrip(&no_match, Protocol::V5), [0x40, 3, 0, 7, 0x10]);
    assert_eq!(roundtrip(&Packet::PubRel(Ack::new(1)), Protocol::V311), [0x62, 2, 0, 1]);
    // PUBREL needs flags 0b0010; PUBACK refuses PUBREL's codes.
    assert_eq!(err(&[0x60, 2, 0, 1], Protocol::V311), ReasonCode::MALFORMED_PACKET);
    assert_eq!(err(&[0x40, 3, 0, 1, 0x92], Protocol::V5), ReasonCode::MALFORMED_PACKET);
    // 3.1.1 acks have exactly two bytes.
    assert_eq!(err(&[0x40, 3, 0, 1, 0], Protocol::V311), ReasonCode::MALFORMED_PACKET);
    let reason = Properties { reason_string: Some("quota"), ..Properties::default() };
    let full = Packet::PubRec(Ack { packet_id: 3, reason: ReasonCode::QUOTA_EXCEEDED, properties: reason });
    roundtrip(&full, Protocol::V5);
}

#[test]
fn connack_maps_v3_return_codes() {
    let refuse = |reason| {
        Packet::ConnAck(ConnAck { session_present: false, reason, properties: Properties::default() })
    };
    assert_eq!(roundtrip(&refuse(ReasonCode::NOT_AUTHORIZED), Protocol::V311), [0x20, 2, 0, 5]);
    assert_eq!(roundtrip(&refuse(ReasonCode::BAD_USER_NAME_OR_PASSWORD), Protocol::V311), [0x20, 2, 0, 4]);
    let mut out = Vec::new();
    refuse(ReasonCode::BANNED).encode(Protocol::V311, &mut out);
    assert_eq!(out, [0x20, 2, 0, 5]);
    assert_eq!(err(&[0x20, 2, 0, 6], Protocol::V311), ReasonCode::MALFORMED_PACKET);
    assert_eq!(err(&[0x20, 2, 2, 0], Protocol::V311), ReasonCode::MALFORMED_PACKET, "reserved flag bits");
    let ack = ConnAck {
        session_present: true,
        reason: ReasonCode::SUCCESS,
        properties: Properties {
            assigned_client_identifier: Some("auto-1"),
            server_keep_alive: Some(20),
            maximum_qos: Some(1),
            retain_available: Some(1),
            wildcard_subscription_available: Some(1),
            subscription_identifier_available: Some(1),
            shared_subscription_available: Some(0),
            topic_alias_maximum: Some(10),
            receive_maximum: Some(100),
            maximum_packet_size: Some(1 << 20),
            ..Properties::default()
        },
    };
    roundtrip(&Packet::ConnAck(ack), Protocol::V5);
}

#[test]
fn subscribe_options_and_acks() {
    let subs = [
        ("a/+", SubOptions::qos(QoS::AtLeastOnce)),
        (
            "$share/g/b/#",
            SubOptions {
                qos: QoS::ExactlyOnce,
                no_local: true,
                retain_as_published: true,
                retain_handling: RetainHandling::DontSend,
            },
        ),
    ];
    let sub = Subscribe {
        packet_id: 4,
        properties: Properties { subscription_ids: SubscriptionIds::List(&[42]), ..Properties::default() },
        subscriptions: Subscriptions::List(&subs),
    };
    roundtrip(&Packet::Subscribe(sub), Protocol::V5);
    let v3 = Subscribe {
        properties: Properties::default(),
        subscriptions: Subscriptions::List(&subs[..1]),
        ..sub
    };
    assert_eq!(roundtrip(&Packet::Subscribe(v3), Protocol::V311), [0x82, 8, 0, 4, 0, 3, b'a', b'/', b'+', 1]);
    // 3.1.1 has only QoS bits; Retain Handling 3 is a protocol error; no filter at all too.
    assert_eq!(err(&[0x82, 6, 0, 1, 0, 1, b'a', 4], Protocol::V311), ReasonCode::MALFORMED_PACKET);
    assert_eq!(err(&[0x82, 7, 0, 1, 0, 0, 1, b'a', 0x30], Protocol::V5), ReasonCode::PROTOCOL_ERROR);
    assert_eq!(err(&[0x82, 3, 0, 1, 0], Protocol::V5), ReasonCode::PROTOCOL_ERROR);
    assert_eq!(err(&[0x80, 6, 0, 1, 0, 1, b'a', 0], Protocol::V311), ReasonCode::MALFORMED_PACKET, "flags");
    let ack = SubAck { packet_id: 4, properties: Properties::default(), reasons: ReasonCodes(&[1, 0x8f]) };
    let mut out = Vec::new();
    Packet::SubAck(ack).encode(Protocol::V311, &mut out);
    assert_eq!(out, [0x90, 4, 0, 4, 1, 0x80], "3.1.1 failures are 0x80");
    roundtrip(&Packet::SubAck(ack), Protocol::V5);
    let unsub = Unsubscribe {
        packet_id: 5,
        properties: Properties::default(),
        filters: TopicFilters::List(&["a", "b/#"]),
    };
    roundtrip(&Packet::Unsubscribe(unsub), Protocol::V311);
    let unsuback =
        UnsubAck { packet_id: 5, properties: Properties::default(), reasons: ReasonCodes(&[0, 0x11]) };
    roundtrip(&Packet::UnsubAck(unsuback), Protocol::V5);
    assert_eq!(
        roundtrip(&Packet::UnsubAck(UnsubAck { reasons: ReasonCodes(&[]), ..unsuback }), Protocol::V311),
        [0xb0, 2, 0, 5]
    );
}

#[test]
fn disconnect_auth_ping() {
    assert_eq!(roundtrip(&Packet::PingReq, Protocol::V311), [0xc0, 0]);
    assert_eq!(roundtrip(&Packet::PingResp, Protocol::V5), [0xd0, 0]);
    assert_eq!(err(&[0xc0, 1, 0], Protocol::V311), ReasonCode::MALFORMED_PACKET);
    assert_eq!(roundtrip(&Packet::Disconnect(Disconnect::new(ReasonCode::SUCCESS)), Protocol::V5), [0xe0, 0]);
    let taken = Disconnect::new(ReasonCode::SESSION_TAKEN_OVER);
    assert_eq!(roundtrip(&Packet::Disconnect(taken), Protocol::V5), [0xe0, 1, 0x8e]);
    let expiry = Disconnect {
        reason: ReasonCode::DISCONNECT_WITH_WILL,
        properties: Properties { session_expiry_interval: Some(0), ..Properties::default() },
    };
    roundtrip(&Packet::Disconnect(expiry), Protocol::V5);
    let auth = Auth {
        reason: ReasonCode::CONTINUE_AUTHENTICATION,
        properties: Properties {
            authentication_method: Some("SCRAM-SHA-256"),
            authentication_data: Some(b"n,,n=user,r=abc"),
            ..Properties::default()
        },
    };
    roundtrip(&Packet::Auth(auth), Protocol::V5);
    assert_eq!(err(&[0xf0, 0], Protocol::V311), ReasonCode::MALFORMED_PACKET, "AUTH is MQTT 5 only");
    assert_eq!(err(&[0x00, 0], Protocol::V5), ReasonCode::MALFORMED_PACKET, "type 0 is reserved");
}

#[test]
fn packet_too_large_is_refused_from_the_header() {
    // Only the header has arrived: the size is already known to be too big.
    let e = decode(&[0x30, 0xff, 0xff, 0x03], Protocol::V311, 1024).unwrap_err();
    assert_eq!(e.reason, ReasonCode::PACKET_TOO_LARGE);
    assert_eq!(decode(&[0x30, 0x80, 0x07], Protocol::V311, 1024).unwrap(), None);
    assert_eq!(err(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01], Protocol::V311), ReasonCode::MALFORMED_PACKET);
}

fn string() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9/ é€😀_-]{0,24}"
}

fn topic() -> impl Strategy<Value = String> {
    "[a-z0-9/$ é]{1,24}"
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![Just(QoS::AtMostOnce), Just(QoS::AtLeastOnce), Just(QoS::ExactlyOnce)]
}

fn protocol() -> impl Strategy<Value = Protocol> {
    prop_oneof![Just(Protocol::V31), Just(Protocol::V311), Just(Protocol::V5)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn publish_roundtrip(
        topic in topic(), payload in proptest::collection::vec(any::<u8>(), 0..300), qos in qos(),
        dup in any::<bool>(), retain in any::<bool>(), id in 1u16.., v5 in any::<bool>(),
        expiry in proptest::option::of(any::<u32>()), ctype in proptest::option::of(string()),
        corr in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
        users in proptest::collection::vec((string(), string()), 0..4), alias in proptest::option::of(1u16..),
    ) {
        let users: Vec<(&str, &str)> = users.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let properties = if v5 {
            Properties {
                message_expiry_interval: expiry,
                content_type: ctype.as_deref(),
                correlation_data: corr.as_deref(),
                user_properties: UserProperties::List(&users),
                topic_alias: alias,
                ..Properties::default()
            }
        } else {
            Properties::default()
        };
        let dup = dup && qos != QoS::AtMostOnce;
        let packet_id = if qos == QoS::AtMostOnce { 0 } else { id };
        let p = Publish { dup, qos, retain, topic: &topic, packet_id, properties, payload: &payload };
        roundtrip(&Packet::Publish(p), if v5 { Protocol::V5 } else { Protocol::V311 });
    }

    #[test]
    fn connect_roundtrip(
        protocol in protocol(), clean in any::<bool>(), keep_alive in any::<u16>(), id in string(),
        will in proptest::option::of((qos(), any::<bool>(), topic(), proptest::collection::vec(any::<u8>(), 0..50))),
        username in proptest::option::of(string()), password in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
        expiry in proptest::option::of(any::<u32>()), receive in proptest::option::of(1u16..),
    ) {
        let v5 = protocol.is_v5();
        let properties = if v5 {
            Properties { session_expiry_interval: expiry, receive_maximum: receive, ..Properties::default() }
        } else {
            Properties::default()
        };
        let will = will.as_ref().map(|(qos, retain, topic, payload)| Will {
            qos: *qos, retain: *retain, properties: Properties::default(), topic, payload,
        });
        let password = if !v5 && username.is_none() { None } else { password.as_deref() };
        let c = Connect {
            protocol, clean_start: clean, keep_alive, properties, client_id: &id, will,
            username: username.as_deref(), password, bridge: clean && keep_alive % 2 == 0,
        };
        roundtrip(&Packet::Connect(c), Protocol::V311);
    }

    #[test]
    fn subscribe_roundtrip(
        v5 in any::<bool>(), id in 1u16..,
        subs in proptest::collection::vec((topic(), qos(), any::<bool>(), any::<bool>(), 0u8..3), 1..6),
        sub_id in proptest::option::of(1u32..=wire::VARINT_MAX),
    ) {
        let subs: Vec<(&str, SubOptions)> = subs.iter().map(|(f, qos, nl, rap, rh)| {
            let options = if v5 {
                SubOptions {
                    qos: *qos, no_local: *nl, retain_as_published: *rap,
                    retain_handling: [RetainHandling::SendAlways, RetainHandling::SendIfNew, RetainHandling::DontSend][*rh as usize],
                }
            } else {
                SubOptions::qos(*qos)
            };
            (f.as_str(), options)
        }).collect();
        let ids: Vec<u32> = sub_id.into_iter().collect();
        let properties = if v5 {
            Properties { subscription_ids: SubscriptionIds::List(&ids), ..Properties::default() }
        } else {
            Properties::default()
        };
        let s = Subscribe { packet_id: id, properties, subscriptions: Subscriptions::List(&subs) };
        roundtrip(&Packet::Subscribe(s), if v5 { Protocol::V5 } else { Protocol::V311 });
    }

    #[test]
    fn acks_roundtrip(id in 1u16.., code in prop::sample::select(vec![0u8, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99]),
                      reason in proptest::option::of(string()), kind in 0u8..2) {
        let properties = Properties { reason_string: reason.as_deref(), ..Properties::default() };
        let ack = Ack { packet_id: id, reason: ReasonCode(code), properties };
        let p = if kind == 0 { Packet::PubAck(ack) } else { Packet::PubRec(ack) };
        roundtrip(&p, Protocol::V5);
    }

    /// Whatever arrives, decoding returns a packet, asks for more, or names a reason code;
    /// it never panics, and a decoded packet re-encodes to a packet that decodes the same.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), protocol in protocol()) {
        if let Ok(Some((packet, used))) = decode(&bytes, protocol, MAX) {
            prop_assert!(used <= bytes.len());
            let mut out = Vec::new();
            packet.encode(protocol, &mut out);
            let again = decode(&out, protocol, MAX).unwrap().unwrap().0;
            prop_assert_eq!(again, packet);
        }
    }

    /// Packets that start from a valid encoding and get one byte flipped.
    #[test]
    fn flipped_bytes_never_panic(id in 1u16.., flip in any::<prop::sample::Index>(), value in any::<u8>()) {
        let users = [("a", "b")];
        let p = Publish {
            dup: false, qos: QoS::AtLeastOnce, retain: true, topic: "t/x", packet_id: id,
            properties: Properties { user_properties: UserProperties::List(&users), response_topic: Some("r"), ..Properties::default() },
            payload: b"hello",
        };
        let mut out = Vec::new();
        Packet::Publish(p).encode(Protocol::V5, &mut out);
        let i = flip.index(out.len());
        out[i] = value;
        let _ = decode(&out, Protocol::V5, MAX);
    }
}
