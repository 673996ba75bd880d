//! zero's MQTT client against mosquitto (a real, independent broker, installed by
//! scripts/test.sh): every QoS, retained messages, a will, and reconnect with session resume
//! and retransmission. The shard-driver tests run the shard in the test's own thread so they
//! can cut the connection at will.

use std::time::{Duration, Instant};

use zero_core::{Config, Event as IoEvent, Handler, Io, Ops};
use zero_mqtt::client::blocking::BlockingClient;
use zero_mqtt::client::driver::ClientDriver;
use zero_mqtt::client::{Client, ClientConfig, Event, LastWill};
use zero_mqtt::codec::{Properties, Protocol, Publish, QoS, SubOptions};

mod common;
use common::Mosquitto;

fn config(id: &str, protocol: Protocol) -> ClientConfig {
    let mut c = ClientConfig::default();
    c.client_id = id.into();
    c.protocol = protocol;
    c
}

fn blocking(m: &Mosquitto, config: ClientConfig) -> BlockingClient {
    BlockingClient::connect(m.target(), config).expect("connects to mosquitto").0
}

#[test]
fn every_qos_both_ways_in_3_1_1_and_5() {
    let m = Mosquitto::start();
    for protocol in [Protocol::V311, Protocol::V5] {
        let sub = blocking(&m, config("sub", protocol));
        let granted = sub.subscribe(&[("q/#", SubOptions::qos(QoS::ExactlyOnce))]).unwrap();
        assert_eq!(granted[0].0, 2);
        let publisher = blocking(&m, config("pub", protocol));
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            publisher.publish(&format!("q/{}", qos as u8), b"hello", qos, false).unwrap();
        }
        let mut got: Vec<_> = (0..3)
            .map(|_| sub.recv(Some(Duration::from_secs(5))).expect("a message"))
            .map(|m| (m.topic, m.qos))
            .collect();
        got.sort_by_key(|(t, _)| t.clone());
        let want = [("q/0", QoS::AtMostOnce), ("q/1", QoS::AtLeastOnce), ("q/2", QoS::ExactlyOnce)];
        assert_eq!(got, want.map(|(t, q)| (t.to_string(), q)), "{protocol:?}");
        assert!(sub.recv(Some(Duration::from_millis(300))).is_none(), "nothing twice");
    }
}

#[test]
fn retained_message_reaches_a_late_subscriber() {
    let m = Mosquitto::start();
    let publisher = blocking(&m, config("pub", Protocol::V5));
    publisher.publish("state/door", b"open", QoS::AtLeastOnce, true).unwrap();
    let late = blocking(&m, config("late", Protocol::V5));
    late.subscribe(&[("state/#", SubOptions::qos(QoS::AtLeastOnce))]).unwrap();
    let got = late.recv(Some(Duration::from_secs(5))).expect("the retained message");
    assert_eq!((got.topic.as_str(), got.payload.as_slice(), got.retain), ("state/door", &b"open"[..], true));
}

/// A shard in the test's thread running one client, recording its events.
struct Shard {
    io: Io,
    h: H,
}

struct H {
    driver: ClientDriver,
    events: Vec<Event>,
}

impl Handler for H {
    fn on_event(&mut self, ops: &mut Ops, event: IoEvent<'_>) {
        self.driver.on_event(ops, &event);
        self.driver.pump(ops);
        while let Some(e) = self.driver.machine().poll_event() {
            self.events.push(e);
        }
    }
}

impl Shard {
    fn new(m: &Mosquitto, config: ClientConfig) -> Shard {
        let mut io = Io::new(Config::default()).unwrap();
        let client = Client::new(config, Instant::now());
        let mut h = H { driver: ClientDriver::new(client, m.target(), 7), events: Vec::new() };
        h.driver.pump(&mut io);
        Shard { io, h }
    }

    /// Runs the shard until `done` holds (5 s at most).
    fn until(&mut self, what: &str, done: impl Fn(&[Event]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !done(&self.h.events) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {:?}", self.h.events);
            self.io.run_once(&mut self.h, Some(Duration::from_millis(10))).unwrap();
        }
    }

    /// Cuts the connection without DISCONNECT, as a network failure would.
    fn cut(&mut self) {
        let conn = self.h.driver.conn().expect("connected");
        self.io.close_now(conn).unwrap();
    }

    fn publish(&mut self, topic: &str, payload: &[u8], qos: QoS) {
        let now = self.io.now();
        let p = Publish {
            dup: false,
            qos,
            retain: false,
            topic,
            packet_id: 0,
            properties: Properties::default(),
            payload,
        };
        self.h.driver.machine().publish(p, now).unwrap();
        self.h.driver.pump(&mut self.io);
    }
}

fn connected(events: &[Event]) -> usize {
    events.iter().filter(|e| matches!(e, Event::Connected { .. })).count()
}

#[test]
fn will_is_published_when_the_connection_is_cut() {
    let m = Mosquitto::start();
    let watcher = blocking(&m, config("watcher", Protocol::V5));
    watcher.subscribe(&[("will/#", SubOptions::qos(QoS::AtLeastOnce))]).unwrap();
    let mut c = config("doomed", Protocol::V5);
    c.will = Some(LastWill {
        topic: "will/doomed".into(),
        payload: b"gone".to_vec(),
        qos: QoS::AtLeastOnce,
        retain: false,
        delay: 0,
    });
    c.reconnect_max = Duration::ZERO;
    let mut shard = Shard::new(&m, c);
    shard.until("CONNACK", |e| connected(e) == 1);
    shard.cut();
    shard.until("the cut", |e| e.iter().any(|e| matches!(e, Event::Disconnected { .. })));
    let got = watcher.recv(Some(Duration::from_secs(5))).expect("the will");
    assert_eq!((got.topic.as_str(), got.payload.as_slice()), ("will/doomed", &b"gone"[..]));
}

#[test]
fn reconnect_resumes_the_session_and_retransmits() {
    let m = Mosquitto::start();
    let observer = blocking(&m, config("observer", Protocol::V5));
    observer.subscribe(&[("out/#", SubOptions::qos(QoS::AtLeastOnce))]).unwrap();
    let mut c = config("device", Protocol::V5);
    c.clean_start = false;
    c.session_expiry = 300;
    c.reconnect_min = Duration::from_millis(500);
    let mut shard = Shard::new(&m, c);
    shard.until("CONNACK", |e| connected(e) == 1);
    shard.h.driver.machine().subscribe(&[("in/#", SubOptions::qos(QoS::ExactlyOnce))], None).unwrap();
    shard.h.driver.pump(&mut shard.io);
    shard.until("SUBACK", |e| e.iter().any(|e| matches!(e, Event::Subscribed { .. })));

    // The network fails. While the device is away, the broker queues for its session and the
    // device queues its own publishes.
    shard.cut();
    shard.until("the loss to be noticed", |e| e.iter().any(|e| matches!(e, Event::Disconnected { .. })));
    let feeder = blocking(&m, config("feeder", Protocol::V5));
    for i in 0..3 {
        feeder.publish("in/cmd", format!("cmd-{i}").as_bytes(), QoS::ExactlyOnce, false).unwrap();
    }
    for i in 0..3 {
        shard.publish("out/data", format!("data-{i}").as_bytes(), QoS::AtLeastOnce);
    }

    // It comes back by itself, resumes the session, and both directions catch up once.
    shard.until("the resumed session's messages", |e| {
        e.iter().filter(|e| matches!(e, Event::Message(_))).count() >= 3
            && e.iter().filter(|e| matches!(e, Event::Published { .. })).count() >= 3
    });
    assert!(shard.h.events.contains(&Event::Connected { session_present: true }));
    let got: Vec<_> = shard
        .h
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(String::from_utf8(m.payload.clone()).unwrap()),
            _ => None,
        })
        .collect();
    assert_eq!(got, ["cmd-0", "cmd-1", "cmd-2"]);
    let seen: Vec<_> = (0..3)
        .map(|_| observer.recv(Some(Duration::from_secs(5))).expect("retransmitted publish"))
        .map(|m| String::from_utf8(m.payload).unwrap())
        .collect();
    assert_eq!(seen, ["data-0", "data-1", "data-2"]);
}

/// The Tokio driver: the same machine, awaited, over TCP and over TLS.
#[cfg(feature = "tokio")]
#[test]
fn tokio_client_publishes_and_receives_over_tcp_and_tls() {
    use zero_mqtt::client::tokio::AsyncClient;
    for m in [Mosquitto::start(), Mosquitto::start_tls()] {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let (mut sub, _) =
                AsyncClient::connect(m.target(), config("tokio-sub", Protocol::V5)).await.unwrap();
            sub.subscribe(&[("tk/#", SubOptions::qos(QoS::ExactlyOnce))]).await.unwrap();
            let (publisher, _) =
                AsyncClient::connect(m.target(), config("tokio-pub", Protocol::V311)).await.unwrap();
            for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
                publisher.publish("tk/x", &[qos as u8], qos, false).await.unwrap();
            }
            for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
                let got = tokio::time::timeout(Duration::from_secs(5), sub.recv()).await.unwrap().unwrap();
                assert_eq!((got.qos, got.payload), (qos, vec![qos as u8]), "tls: {}", m.tls.is_some());
            }
            publisher.disconnect().await;
            sub.disconnect().await;
        });
    }
}

/// The shard driver (through the blocking one) over TLS to mosquitto.
#[test]
fn blocking_client_over_tls() {
    let m = Mosquitto::start_tls();
    let sub = blocking(&m, config("tls-sub", Protocol::V5));
    sub.subscribe(&[("tls/#", SubOptions::qos(QoS::AtLeastOnce))]).unwrap();
    let publisher = blocking(&m, config("tls-pub", Protocol::V311));
    publisher.publish("tls/x", b"sealed", QoS::AtLeastOnce, false).unwrap();
    assert_eq!(sub.recv(Some(Duration::from_secs(5))).expect("a message").payload, b"sealed");
}
