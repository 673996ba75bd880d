//! The checks, each written from a normative statement of MQTT 3.1.1 (OASIS 2014) or MQTT 5.0
//! (OASIS 2019); the statement's identifier is in the check's `rule`.

use std::time::Duration;

use zero_mqtt::codec::{
    Ack, Connect, Packet, Properties, Protocol, Publish, QoS, ReasonCode, RetainHandling, SubOptions,
};

use super::raw::{Got, Opts, Raw, Step, QUIET, WAIT};
use super::Ctx;

const V3: Protocol = Protocol::V311;
const V5: Protocol = Protocol::V5;
const Q0: QoS = QoS::AtMostOnce;
const Q1: QoS = QoS::AtLeastOnce;
const Q2: QoS = QoS::ExactlyOnce;

type Check = crate::Check<Ctx>;

/// Every check, in the order of the specification's chapters.
pub const CHECKS: &[Check] = &[
    Check { name: "connack-first", rule: "MQTT-3.2.0-1, MQTT-3.2.2-2", run: connack_first },
    Check { name: "second-connect", rule: "MQTT-3.1.0-2", run: second_connect },
    Check { name: "bad-protocol-level", rule: "MQTT-3.1.2-2", run: bad_protocol_level },
    Check { name: "assigned-client-id", rule: "MQTT-3.1.3-6, MQTT-3.2.2-16 (v5)", run: assigned_client_id },
    Check { name: "session-takeover", rule: "MQTT-3.1.4-3, v5 3.14.2.1 (0x8E)", run: session_takeover },
    Check { name: "session-resume", rule: "MQTT-3.2.2-3, MQTT-4.4.0-1", run: session_resume },
    Check { name: "session-expiry", rule: "MQTT-3.1.2-23 (v5 Session Expiry)", run: session_expiry },
    Check { name: "qos0", rule: "MQTT-4.3.1", run: qos0 },
    Check { name: "qos1", rule: "MQTT-4.3.2-1, MQTT-4.3.2-4", run: qos1 },
    Check { name: "qos2-once", rule: "MQTT-4.3.3-2, MQTT-4.3.3-9/10", run: qos2_once },
    Check { name: "qos-downgrade", rule: "MQTT-3.8.4-6 (3.1.1) / MQTT-3.8.4-8 (v5)", run: qos_downgrade },
    Check { name: "retained", rule: "MQTT-3.3.1-6, MQTT-3.3.1-9", run: retained },
    Check { name: "retained-clear", rule: "MQTT-3.3.1-10, MQTT-3.3.1-11", run: retained_clear },
    Check {
        name: "retain-handling-2",
        rule: "MQTT-3.3.1-11 (v5: Retain Handling 2)",
        run: retain_handling_2,
    },
    Check { name: "will-on-loss", rule: "MQTT-3.1.2-8", run: will_on_loss },
    Check { name: "no-will-on-disconnect", rule: "MQTT-3.1.2-10", run: no_will_on_disconnect },
    Check { name: "will-delay", rule: "MQTT-3.1.3-9 (v5 Will Delay Interval)", run: will_delay },
    Check {
        name: "will-at-session-end",
        rule: "MQTT-3.1.3-9 (delay or session end, first)",
        run: will_at_session_end,
    },
    Check { name: "keep-alive", rule: "MQTT-3.1.2-24", run: keep_alive },
    Check { name: "ping", rule: "MQTT-3.12.4-1", run: ping },
    Check { name: "topic-alias", rule: "v5 3.3.2.3.4, MQTT-3.3.2-12", run: topic_alias },
    Check { name: "topic-alias-invalid", rule: "MQTT-3.3.2-9/10 (0x94)", run: topic_alias_invalid },
    Check { name: "subscription-ids", rule: "MQTT-3.3.4-3, MQTT-3.3.4-4/5", run: subscription_ids },
    Check {
        name: "overlapping-qos",
        rule: "MQTT-3.3.4-2 (v5: maximum QoS of overlaps)",
        run: overlapping_qos,
    },
    Check { name: "unsubscribe", rule: "MQTT-3.10.4-1, MQTT-3.10.4-4", run: unsubscribe },
    Check { name: "dollar-topics", rule: "MQTT-4.7.2-1", run: dollar_topics },
    Check { name: "no-local", rule: "MQTT-3.8.3-3 (v5 No Local)", run: no_local },
    Check { name: "shared-subscription", rule: "v5 4.8.2, MQTT-4.8.2-2", run: shared_subscription },
    Check { name: "receive-maximum", rule: "MQTT-3.3.4-9 (v5 flow control)", run: receive_maximum },
    Check { name: "message-expiry", rule: "MQTT-3.3.2-5 (v5 Message Expiry)", run: message_expiry },
    Check {
        name: "maximum-packet-size",
        rule: "MQTT-3.1.2-25 (v5 client's Maximum Packet Size)",
        run: maximum_packet_size,
    },
    Check { name: "wildcard-in-topic-name", rule: "MQTT-3.3.2-2", run: wildcard_in_topic_name },
    Check { name: "reserved-flags", rule: "MQTT-2.2.2-2, MQTT-3.8.1-1", run: reserved_flags },
    Check { name: "invalid-utf8", rule: "MQTT-1.5.3-1", run: invalid_utf8 },
    Check {
        name: "bad-remaining-length",
        rule: "MQTT-1.5.5 (variable byte integer of 5 bytes)",
        run: bad_remaining_length,
    },
];

fn sub(q: QoS) -> SubOptions {
    SubOptions::qos(q)
}

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Step<()> {
    if ok {
        Ok(())
    } else {
        Err(what())
    }
}

fn connack_first(cx: &Ctx) -> Step<()> {
    for protocol in [V3, V5] {
        let (_, ack) = Raw::connect(cx.target, &Opts::new(protocol, &cx.id("first")))?;
        match ack {
            Got::ConnAck { session_present: false, reason: ReasonCode::SUCCESS, .. } => {}
            other => {
                return Err(format!(
                    "{protocol:?}: expected CONNACK success with Session Present 0, got {other:?}"
                ))
            }
        }
    }
    Ok(())
}

fn second_connect(cx: &Ctx) -> Step<()> {
    let mut c = Raw::connected(cx.target, &Opts::new(V3, &cx.id("twice")))?;
    let id = cx.id("twice");
    c.send(&Packet::Connect(Connect::new(V3, &id)))?;
    c.expect_closed().map(drop)
}

fn bad_protocol_level(cx: &Ctx) -> Step<()> {
    let mut c = Raw::open(cx.target, V3)?;
    // CONNECT "MQTT" level 9, clean session, keep-alive 60, client id "x".
    c.send_bytes(&[0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 9, 0x02, 0, 60, 0, 1, b'x'])?;
    match c.recv(WAIT) {
        // 3.1.1 return code 1 (or MQTT 5's 0x84) then close; closing at once is allowed too.
        Ok(Some(Got::ConnAck { reason, .. })) if reason == ReasonCode::UNSUPPORTED_PROTOCOL_VERSION => {
            c.expect_closed().map(drop)
        }
        Err(_) => Ok(()),
        other => Err(format!("expected CONNACK 0x01/0x84 or a close, got {other:?}")),
    }
}

fn assigned_client_id(cx: &Ctx) -> Step<()> {
    let (_, ack) = Raw::connect(cx.target, &Opts::new(V5, ""))?;
    match ack {
        Got::ConnAck { reason: ReasonCode::SUCCESS, assigned_id: Some(id), .. } if !id.is_empty() => Ok(()),
        other => Err(format!("expected an Assigned Client Identifier, got {other:?}")),
    }
}

fn session_takeover(cx: &Ctx) -> Step<()> {
    let id = cx.id("taken");
    let mut first = Raw::connected(cx.target, &Opts::new(V5, &id))?;
    let _second = Raw::connected(cx.target, &Opts::new(V5, &id))?;
    match first.expect_closed()? {
        Some(ReasonCode::SESSION_TAKEN_OVER) | None => Ok(()),
        Some(other) => Err(format!("first connection got DISCONNECT {other:?}, not 0x8E")),
    }
}

fn session_resume(cx: &Ctx) -> Step<()> {
    let (id, topic) = (cx.id("resume"), cx.topic("resume"));
    let persistent = Opts { clean: false, expiry: Some(300), ..Opts::new(V5, &id) };
    let mut c = Raw::connected(cx.target, &Opts { clean: true, ..persistent.clone() })?;
    c.subscribe(&topic, sub(Q1), None)?;
    c.disconnect()?;
    std::thread::sleep(Duration::from_millis(100));
    let mut p = Raw::connected(cx.target, &Opts::new(V5, &cx.id("resume-pub")))?;
    p.publish(&topic, b"while away", Q1, false)?;
    let (mut c, ack) = Raw::connect(cx.target, &persistent)?;
    ensure(matches!(ack, Got::ConnAck { session_present: true, .. }), || {
        format!("expected Session Present 1, got {ack:?}")
    })?;
    let m = c.expect_publish()?;
    ensure(m.payload == b"while away" && m.qos == Q1, || format!("got {m:?}"))
}

fn qos0(cx: &Ctx) -> Step<()> {
    let topic = cx.topic("q0");
    let mut s = Raw::connected(cx.target, &Opts::new(V3, &cx.id("q0-sub")))?;
    s.subscribe(&topic, sub(Q0), None)?;
    let mut p = Raw::connected(cx.target, &Opts::new(V3, &cx.id("q0-pub")))?;
    p.publish(&topic, b"zero", Q0, false)?;
    let m = s.expect_publish()?;
    ensure(m.payload == b"zero" && m.qos == Q0 && m.packet_id == 0, || format!("got {m:?}"))
}

fn qos1(cx: &Ctx) -> Step<()> {
    let topic = cx.topic("q1");
    let mut s = Raw::connected(cx.target, &Opts::new(V3, &cx.id("q1-sub")))?;
    s.subscribe(&topic, sub(Q1), None)?;
    let mut p = Raw::connected(cx.target, &Opts::new(V3, &cx.id("q1-pub")))?;
    p.publish(&topic, b"one", Q1, false)?;
    let m = s.expect_publish()?;
    ensure(m.qos == Q1 && m.packet_id != 0, || format!("expected QoS 1 with a packet id, got {m:?}"))?;
    s.ack(&m)
}

fn qos2_once(cx: &Ctx) -> Step<()> {
    let topic = cx.topic("q2");
    let mut s = Raw::connected(cx.target, &Opts::new(V5, &cx.id("q2-sub")))?;
    s.subscribe(&topic, sub(Q2), None)?;
    let mut p = Raw::connected(cx.target, &Opts::new(V5, &cx.id("q2-pub")))?;
    let publish = Publish {
        dup: false,
        qos: Q2,
        retain: false,
        topic: &topic,
        packet_id: 77,
        properties: Properties::default(),
        payload: b"exactly",
    };
    p.send(&Packet::Publish(publish))?;
    ensure(matches!(p.expect("PUBREC")?, Got::PubRec(77, _)), || "no PUBREC 77".into())?;
    // The publisher did not see PUBREC (say) and sends again, DUP set: not a new message.
    p.send(&Packet::Publish(Publish { dup: true, ..publish }))?;
    ensure(matches!(p.expect("PUBREC")?, Got::PubRec(77, _)), || "no second PUBREC 77".into())?;
    p.send(&Packet::PubRel(Ack::new(77)))?;
    ensure(matches!(p.expect("PUBCOMP")?, Got::PubComp(77, _)), || "no PUBCOMP 77".into())?;
    let m = s.expect_publish()?;
    s.ack(&m)?;
    s.expect_quiet().map_err(|e| format!("delivered twice: {e}"))
}

fn qos_downgrade(cx: &Ctx) -> Step<()> {
    let topic = cx.topic("down");
    let mut s = Raw::connected(cx.target, &Opts::new(V3, &cx.id("down-sub")))?;
    s.subscribe(&topic, sub(Q0), None)?;
    let mut p = Raw::connected(cx.target, &Opts::new(V3, &cx.id("down-pub")))?;
    p.publish(&topic, b"m", Q2, false)?;
    let m = s.expect_publish()?;
    ensure(m.qos == Q0, || format!("delivered at {:?}, above the subscription's QoS 0", m.qos))
}

fn retained(cx: &Ctx) -> Step<()> {
    let topic = cx.topic("kept");
    let mut p = Raw::connected(cx.target, &Opts::new(V3, &cx.id("ret-pub")))?;
    p.publish(&topic, b"state", Q1, true)?;
    let mut s = Raw::connected(cx.target, &Opts::new(V3, &cx.id("ret-sub")))?;
    s.subscribe(&topic, sub(Q1), None)?;
    let m = s.expect_publish()?;
    ensure(m.retain && m.payload == b"state", || {
        format!("expected the retained message with RETAIN 1, got {m:?}")
    })?;
    s.ack(&m)?;
    // A live message to an existing subscription goes with RETAIN 0 (3.1.1).
    p.publish(&topic, b"live", Q1, true)?;
    let m = s.expect_publish()?;
    ensure(!m.retain, || format!("a live message kept RETAIN 1: {m:?}"))?;
    p.publish(&topic, b"", Q1, true)
}

fn retained_clear(cx: &Ctx) -> Step<()> {
    let topic = cx.topic("cleared");
    let mut p = Raw::connected(cx.target, &Opts::new(V3, &cx.id("clr-pub")))?;
    p.publish(&topic, b"state", Q1, true)?;
    p.publish(&topic, b"", Q1, true)?;
    let mut s = Raw::connected(cx.target, &Opts::new(V3, &cx.id("clr-sub")))?;
    s.subscribe(&topic, sub(Q1), None)?;
    s.expect_quiet().map_err(|e| format!("a cleared retained message came: {e}"))
}

fn retain_handling_2(cx: &Ctx) -> Step<()> {
    let topic = cx.topic("rh2");
    let mut p = Raw::connected(cx.target, &Opts::new(V5, &cx.id("rh-pub")))?;
    p.publish(&topic, b"state", Q1, true)?;
    let mut s = Raw::connected(cx.target, &Opts::new(V5, &cx.id("rh-sub")))?;
    s.subscribe(&topic, SubOptions { retain_handling: RetainHandling::DontSend, ..sub(Q1) }, None)?;
    let quiet = s.expect_quiet().map_err(|e| format!("Retain Handling 2 still sent it: {e}"));
    p.publish(&topic, b"", Q1, true)?;
    quiet
}

fn will_opts(cx: &Ctx, protocol: Protocol, name: &str, delay: u32) -> (Opts, String) {
    let topic = cx.topic(name);
    let will = Some((topic.clone(), b"gone".to_vec(), delay));
    (Opts { will, ..Opts::new(protocol, &cx.id(name)) }, topic)
}

fn will_on_loss(cx: &Ctx) -> Step<()> {
    let (opts, topic) = will_opts(cx, V3, "will", 0);
    let mut w = Raw::connected(cx.target, &Opts::new(V3, &cx.id("will-watch")))?;
    w.subscribe(&topic, sub(Q1), None)?;
    drop(Raw::connected(cx.target, &opts)?); // the connection just ends, no DISCONNECT
    let m = w.expect_publish()?;
    ensure(m.payload == b"gone", || format!("got {m:?}"))
}

fn no_will_on_disconnect(cx: &Ctx) -> Step<()> {
    let (opts, topic) = will_opts(cx, V3, "nowill", 0);
    let mut w = Raw::connected(cx.target, &Opts::new(V3, &cx.id("nowill-watch")))?;
    w.subscribe(&topic, sub(Q1), None)?;
    Raw::connected(cx.target, &opts)?.disconnect()?;
    w.expect_quiet().map_err(|e| format!("will published after a normal DISCONNECT: {e}"))
}

fn will_delay(cx: &Ctx) -> Step<()> {
    let (mut opts, topic) = will_opts(cx, V5, "delayed", 2);
    opts.clean = false;
    opts.expiry = Some(60);
    let mut w = Raw::connected(cx.target, &Opts::new(V5, &cx.id("delayed-watch")))?;
    w.subscribe(&topic, sub(Q1), None)?;
    drop(Raw::connected(cx.target, &opts)?);
    // Back within the delay: the will must not go out.
    let back = Raw::connected(cx.target, &Opts { will: None, ..opts.clone() })?;
    std::thread::sleep(Duration::from_millis(2500));
    w.expect_quiet().map_err(|e| format!("will sent although the client came back in time: {e}"))?;
    back.disconnect()
}

fn keep_alive(cx: &Ctx) -> Step<()> {
    let mut c = Raw::connected(cx.target, &Opts { keep_alive: 1, ..Opts::new(V3, &cx.id("silent")) })?;
    // Silent for 1.5 x keep-alive: closed. Allow 2.5 s for timer granularity.
    let start = std::time::Instant::now();
    c.expect_closed()?;
    let took = start.elapsed();
    ensure(took >= Duration::from_millis(1000) && took <= Duration::from_millis(2500), || {
        format!("closed after {took:?}, not about 1.5 s")
    })
}

fn ping(cx: &Ctx) -> Step<()> {
    let mut c = Raw::connected(cx.target, &Opts::new(V3, &cx.id("ping")))?;
    c.send(&Packet::PingReq)?;
    ensure(c.expect("PINGRESP")? == Got::PingResp, || "no PINGRESP".into())
}

fn topic_alias(cx: &Ctx) -> Step<()> {
    let topic = cx.topic("alias");
    let mut s = Raw::connected(cx.target, &Opts::new(V5, &cx.id("alias-sub")))?;
    s.subscribe(&topic, sub(Q0), None)?;
    let (mut p, ack) = Raw::connect(cx.target, &Opts::new(V5, &cx.id("alias-pub")))?;
    let max = match ack {
        Got::ConnAck { topic_alias_maximum, .. } => topic_alias_maximum.unwrap_or(0),
        other => return Err(format!("got {other:?}")),
    };
    if max == 0 {
        return Err("the broker accepts no topic aliases (Topic Alias Maximum 0)".into());
    }
    let alias = Properties { topic_alias: Some(1), ..Properties::default() };
    p.publish_with(&topic, b"first", Q0, false, alias)?;
    p.publish_with("", b"second", Q0, false, alias)?;
    for want in [&b"first"[..], b"second"] {
        let m = s.expect_publish()?;
        ensure(m.topic == topic && m.payload == want, || format!("got {m:?}"))?;
    }
    Ok(())
}

fn topic_alias_invalid(cx: &Ctx) -> Step<()> {
    let (mut p, ack) = Raw::connect(cx.target, &Opts::new(V5, &cx.id("alias-bad")))?;
    let max = match ack {
        Got::ConnAck { topic_alias_maximum, .. } => topic_alias_maximum.unwrap_or(0),
        other => return Err(format!("got {other:?}")),
    };
    let alias = Properties { topic_alias: Some(max.saturating_add(1)), ..Properties::default() };
    p.publish_with(&cx.topic("alias-bad"), b"x", Q0, false, alias)?;
    match p.expect_closed()? {
        Some(ReasonCode::TOPIC_ALIAS_INVALID) => Ok(()),
        other => Err(format!("expected DISCONNECT 0x94, got {other:?}")),
    }
}

fn subscription_ids(cx: &Ctx) -> Step<()> {
    let base = cx.topic("ids");
    let mut s = Raw::connected(cx.target, &Opts::new(V5, &cx.id("ids-sub")))?;
    s.subscribe(&format!("{base}/+"), sub(Q1), Some(7))?;
    s.subscribe(&format!("{base}/#"), sub(Q1), Some(42))?;
    let mut p = Raw::connected(cx.target, &Opts::new(V5, &cx.id("ids-pub")))?;
    p.publish(&format!("{base}/a"), b"both", Q1, false)?;
    // One copy with both identifiers, or one copy per subscription with its own.
    let mut ids = Vec::new();
    let first = s.expect_publish()?;
    s.ack(&first)?;
    ids.extend(first.subscription_ids.clone());
    if ids.len() < 2 {
        if let Some(Got::Publish(second)) = s.recv(Duration::from_millis(500))? {
            s.ack(&second)?;
            ids.extend(second.subscription_ids);
        }
    }
    ids.sort();
    ensure(ids == [7, 42], || format!("subscription identifiers received: {ids:?}, want [7, 42]"))
}

fn no_local(cx: &Ctx) -> Step<()> {
    let topic = cx.topic("local");
    let mut c = Raw::connected(cx.target, &Opts::new(V5, &cx.id("local")))?;
    c.subscribe(&topic, SubOptions { no_local: true, ..sub(Q0) }, None)?;
    c.publish(&topic, b"mine", Q0, false)?;
    c.expect_quiet().map_err(|e| format!("No Local: own message came back: {e}"))
}

fn shared_subscription(cx: &Ctx) -> Step<()> {
    let topic = cx.topic("jobs");
    let filter = format!("$share/workers/{topic}");
    let mut a = Raw::connected(cx.target, &Opts::new(V5, &cx.id("worker-a")))?;
    let mut b = Raw::connected(cx.target, &Opts::new(V5, &cx.id("worker-b")))?;
    a.subscribe(&filter, sub(Q1), None)?;
    b.subscribe(&filter, sub(Q1), None)?;
    let mut p = Raw::connected(cx.target, &Opts::new(V5, &cx.id("boss")))?;
    for i in 0..10 {
        p.publish(&topic, format!("job-{i}").as_bytes(), Q1, false)?;
    }
    let mut got = Vec::new();
    for worker in [&mut a, &mut b] {
        while let Some(Got::Publish(m)) = worker.recv(Duration::from_millis(500))? {
            worker.ack(&m)?;
            got.push(m.payload);
        }
    }
    got.sort();
    ensure(got.len() == 10 && got.windows(2).all(|w| w[0] != w[1]), || {
        format!("each job to exactly one worker: got {} deliveries", got.len())
    })
}

fn receive_maximum(cx: &Ctx) -> Step<()> {
    let topic = cx.topic("window");
    let mut s =
        Raw::connected(cx.target, &Opts { receive_maximum: Some(2), ..Opts::new(V5, &cx.id("slow")) })?;
    s.subscribe(&topic, sub(Q1), None)?;
    let mut p = Raw::connected(cx.target, &Opts::new(V5, &cx.id("fast")))?;
    for i in 0..5 {
        p.publish(&topic, format!("m{i}").as_bytes(), Q1, false)?;
    }
    let first = [s.expect_publish()?, s.expect_publish()?];
    s.expect_quiet().map_err(|e| format!("more than Receive Maximum 2 unacknowledged: {e}"))?;
    s.ack(&first[0])?;
    let third = s.expect_publish()?;
    ensure(third.payload == b"m2", || format!("got {third:?}"))
}

fn message_expiry(cx: &Ctx) -> Step<()> {
    let (id, topic) = (cx.id("expiry"), cx.topic("expiry"));
    let persistent = Opts { clean: false, expiry: Some(300), ..Opts::new(V5, &id) };
    let mut c = Raw::connected(cx.target, &Opts { clean: true, ..persistent.clone() })?;
    c.subscribe(&topic, sub(Q1), None)?;
    c.disconnect()?;
    std::thread::sleep(Duration::from_millis(100));
    let mut p = Raw::connected(cx.target, &Opts::new(V5, &cx.id("expiry-pub")))?;
    let expiry = Properties { message_expiry_interval: Some(1), ..Properties::default() };
    p.publish_with(&topic, b"stale", Q1, false, expiry)?;
    p.publish(&topic, b"fresh", Q1, false)?;
    std::thread::sleep(Duration::from_millis(2100));
    let mut c = Raw::connected(cx.target, &persistent)?;
    let m = c.expect_publish()?;
    ensure(m.payload == b"fresh", || format!("an expired message was delivered: {m:?}"))
}

fn wildcard_in_topic_name(cx: &Ctx) -> Step<()> {
    let mut c = Raw::connected(cx.target, &Opts::new(V3, &cx.id("wild")))?;
    // PUBLISH QoS 0 to "a/+" (built by hand: the codec refuses to make it).
    c.send_bytes(&[0x30, 6, 0, 3, b'a', b'/', b'+', b'x'])?;
    c.expect_closed().map(drop)
}

fn reserved_flags(cx: &Ctx) -> Step<()> {
    let mut c = Raw::connected(cx.target, &Opts::new(V3, &cx.id("flags")))?;
    // SUBSCRIBE with fixed-header flags 0000 instead of 0010.
    c.send_bytes(&[0x80, 6, 0, 1, 0, 1, b'a', 0])?;
    c.expect_closed().map(drop)
}

fn invalid_utf8(cx: &Ctx) -> Step<()> {
    let mut c = Raw::connected(cx.target, &Opts::new(V3, &cx.id("utf8")))?;
    // PUBLISH QoS 0 to a topic holding the bytes C3 28 (an invalid UTF-8 sequence).
    c.send_bytes(&[0x30, 5, 0, 2, 0xC3, 0x28, b'x'])?;
    c.expect_closed().map(drop)
}

fn bad_remaining_length(cx: &Ctx) -> Step<()> {
    let mut c = Raw::connected(cx.target, &Opts::new(V3, &cx.id("varint")))?;
    c.send_bytes(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F])?;
    c.expect_closed().map(drop)
}

fn session_expiry(cx: &Ctx) -> Step<()> {
    let opts = Opts { clean: false, expiry: Some(1), ..Opts::new(V5, &cx.id("short")) };
    let mut c = Raw::connected(cx.target, &Opts { clean: true, ..opts.clone() })?;
    c.subscribe(&cx.topic("short"), sub(Q1), None)?;
    c.disconnect()?;
    std::thread::sleep(Duration::from_millis(2100));
    match Raw::connect(cx.target, &opts)?.1 {
        Got::ConnAck { session_present: false, .. } => Ok(()),
        other => Err(format!("the session outlived its 1 s expiry: {other:?}")),
    }
}

fn will_at_session_end(cx: &Ctx) -> Step<()> {
    let (mut opts, topic) = will_opts(cx, V5, "early", 30);
    opts.clean = true;
    opts.expiry = Some(1);
    let mut w = Raw::connected(cx.target, &Opts::new(V5, &cx.id("early-watch")))?;
    w.subscribe(&topic, sub(Q1), None)?;
    drop(Raw::connected(cx.target, &opts)?);
    // The session ends after 1 s, long before the 30 s will delay: the will goes out then.
    match w.recv(Duration::from_millis(3000))? {
        Some(Got::Publish(m)) if m.payload == b"gone" => Ok(()),
        other => Err(format!("no will when the session ended (1 s) before the will delay (30 s): {other:?}")),
    }
}

fn overlapping_qos(cx: &Ctx) -> Step<()> {
    let base = cx.topic("overlap");
    let mut s = Raw::connected(cx.target, &Opts::new(V5, &cx.id("overlap-sub")))?;
    s.subscribe(&format!("{base}/+"), sub(Q0), Some(1))?;
    s.subscribe(&format!("{base}/#"), sub(Q1), Some(2))?;
    let mut p = Raw::connected(cx.target, &Opts::new(V5, &cx.id("overlap-pub")))?;
    p.publish(&format!("{base}/a"), b"m", Q1, false)?;
    let mut copies = Vec::new();
    while let Some(Got::Publish(m)) = s.recv(if copies.is_empty() { WAIT } else { QUIET })? {
        s.ack(&m)?;
        copies.push(m);
    }
    let ok = match &copies[..] {
        // One copy: the highest QoS and both identifiers.
        [one] => {
            one.qos == Q1 && {
                let mut ids = one.subscription_ids.clone();
                ids.sort();
                ids == [1, 2]
            }
        }
        // A copy per subscription: each with its own QoS and identifier.
        [a, b] => {
            let mut pairs = [(a.subscription_ids.clone(), a.qos), (b.subscription_ids.clone(), b.qos)];
            pairs.sort_by_key(|p| p.0.clone());
            pairs == [(vec![1], Q0), (vec![2], Q1)]
        }
        _ => false,
    };
    let seen: Vec<_> = copies.iter().map(|m| (m.qos, m.subscription_ids.clone())).collect();
    ensure(ok, || format!("copies (QoS, ids): {seen:?}"))
}

fn unsubscribe(cx: &Ctx) -> Step<()> {
    let topic = cx.topic("unsub");
    let mut s = Raw::connected(cx.target, &Opts::new(V3, &cx.id("unsub")))?;
    s.subscribe(&topic, sub(Q0), None)?;
    let packet_id = s.next_id();
    let filters = [topic.as_str()];
    s.send(&Packet::Unsubscribe(zero_mqtt::codec::Unsubscribe {
        packet_id,
        properties: Properties::default(),
        filters: zero_mqtt::codec::TopicFilters::List(&filters),
    }))?;
    match s.expect("UNSUBACK")? {
        Got::UnsubAck(id) if id == packet_id => {}
        other => return Err(format!("expected UNSUBACK {packet_id}, got {other:?}")),
    }
    let mut p = Raw::connected(cx.target, &Opts::new(V3, &cx.id("unsub-pub")))?;
    p.publish(&topic, b"after", Q0, false)?;
    s.expect_quiet().map_err(|e| format!("delivered after UNSUBSCRIBE: {e}"))
}

fn dollar_topics(cx: &Ctx) -> Step<()> {
    let mut s = Raw::connected(cx.target, &Opts::new(V3, &cx.id("dollar")))?;
    s.subscribe("#", sub(Q0), None)?;
    s.subscribe("+/broker/#", sub(Q0), None)?;
    // Retained messages of every topic arrive now; none may be a `$` topic.
    while let Some(got) = s.recv(QUIET)? {
        if let Got::Publish(m) = got {
            if m.topic.starts_with('$') {
                return Err(format!("a wildcard at the first level matched {}", m.topic));
            }
        }
    }
    Ok(())
}

fn maximum_packet_size(cx: &Ctx) -> Step<()> {
    let topic = cx.topic("small");
    let mut s = Raw::open(cx.target, V5)?;
    let id = cx.id("small");
    let properties = Properties { maximum_packet_size: Some(128), ..Properties::default() };
    s.send(&Packet::Connect(Connect { properties, ..Connect::new(V5, &id) }))?;
    ensure(matches!(s.expect("CONNACK")?, Got::ConnAck { reason: ReasonCode::SUCCESS, .. }), || {
        "refused".into()
    })?;
    s.subscribe(&topic, sub(Q0), None)?;
    let mut p = Raw::connected(cx.target, &Opts::new(V5, &cx.id("big")))?;
    p.publish(&topic, &[b'x'; 300], Q0, false)?;
    p.publish(&topic, b"fits", Q0, false)?;
    let m = s.expect_publish()?;
    ensure(m.payload == b"fits", || {
        format!("a packet above the client's Maximum Packet Size was sent ({} bytes)", m.payload.len())
    })
}
