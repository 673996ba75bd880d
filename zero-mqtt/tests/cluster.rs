//! The broker on a two-shard cluster: sessions live on their client id's home shard wherever
//! the kernel accepted the connection, and publishes, retained messages, shared groups and
//! `$SYS` counters cross shards.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use zero_mqtt::broker::{home_shard, BrokerConfig};
use zero_mqtt::client::blocking::BlockingClient;
use zero_mqtt::client::driver::Target;
use zero_mqtt::client::ClientConfig;
use zero_mqtt::codec::{self, Connect, Packet, Properties, Protocol, QoS, ReasonCode, SubOptions};
use zero_mqtt::server::{start_cluster, BrokerCluster, Listeners};

const SHARDS: usize = 2;

fn broker(config: BrokerConfig) -> BrokerCluster {
    let listeners = Listeners { tcp: vec!["127.0.0.1:0".parse().unwrap()], ..Listeners::default() };
    start_cluster(config, &listeners, SHARDS, Vec::new()).expect("the cluster starts")
}

/// A client id starting with `prefix` whose session lives on `shard`.
fn id_on(shard: usize, prefix: &str) -> String {
    (0..).map(|i| format!("{prefix}-{i}")).find(|id| home_shard(id, SHARDS) == shard).unwrap()
}

fn client(addr: SocketAddr, id: &str) -> BlockingClient {
    let mut c = ClientConfig::default();
    c.client_id = id.into();
    c.protocol = Protocol::V5;
    BlockingClient::connect(Target::tcp(addr), c).expect("connects").0
}

fn recv(c: &BlockingClient) -> zero_mqtt::client::Message {
    c.recv(Some(Duration::from_secs(5))).expect("a message")
}

#[test]
fn publishes_cross_shards_in_order_at_every_qos_and_retained_ones_reach_every_shard() {
    let b = broker(BrokerConfig::default());
    let addr = b.addrs()[0];
    let sub = client(addr, &id_on(1, "sub"));
    sub.subscribe(&[("t/#", SubOptions::qos(QoS::ExactlyOnce))]).unwrap();
    let publisher = client(addr, &id_on(0, "pub"));
    for i in 0..90u32 {
        let qos = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce][i as usize % 3];
        publisher.publish("t/x", &i.to_be_bytes(), qos, false).unwrap();
    }
    for i in 0..90u32 {
        assert_eq!(recv(&sub).payload, i.to_be_bytes(), "in order, none lost");
    }
    publisher.publish("state/door", b"open", QoS::AtLeastOnce, true).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    for shard in 0..SHARDS {
        let late = client(addr, &id_on(shard, "late"));
        late.subscribe(&[("state/#", SubOptions::qos(QoS::AtLeastOnce))]).unwrap();
        let got = recv(&late);
        assert_eq!((got.payload.as_slice(), got.retain), (&b"open"[..], true), "shard {shard}");
    }
    assert!(sub.recv(Some(Duration::from_millis(200))).is_none(), "nothing twice");
    b.stop().unwrap();
}

/// A raw MQTT 5 connection with a persistent session, for watching a takeover from the side
/// that is taken over.
fn raw_connect(addr: SocketAddr, id: &str) -> (TcpStream, bool) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut connect = Connect::new(Protocol::V5, id);
    connect.clean_start = false;
    connect.properties = Properties { session_expiry_interval: Some(300), ..Properties::default() };
    let mut out = Vec::new();
    Packet::Connect(connect).encode(Protocol::V5, &mut out);
    s.write_all(&out).unwrap();
    let Packet::ConnAck(ack) = read_packet(&mut s).expect("CONNACK") else { panic!("not CONNACK") };
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    (s, ack.session_present)
}

/// Reads one packet; `None` at end of stream. Leaks the buffer to hand out a borrowed packet.
fn read_packet(s: &mut TcpStream) -> Option<Packet<'static>> {
    let mut buf = Vec::new();
    let mut chunk = [0; 512];
    loop {
        if let Some((_, len)) = codec::decode(&buf, Protocol::V5, 1 << 20).unwrap() {
            let bytes: &'static [u8] = Vec::leak(buf[..len].to_vec());
            return Some(codec::decode(bytes, Protocol::V5, 1 << 20).unwrap().unwrap().0);
        }
        match s.read(&mut chunk).unwrap() {
            0 => return None,
            n => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

#[test]
fn a_session_is_taken_over_on_its_home_shard_whichever_shard_accepted() {
    let b = broker(BrokerConfig::default());
    let addr = b.addrs()[0];
    // Enough connections that both shards accept some and hand them home.
    for shard in 0..SHARDS {
        let id = id_on(shard, "roaming");
        let (mut first, present) = raw_connect(addr, &id);
        assert!(!present);
        for _ in 0..8 {
            let (next, present) = raw_connect(addr, &id);
            assert!(present, "the session carried over");
            match read_packet(&mut first) {
                Some(Packet::Disconnect(d)) => assert_eq!(d.reason, ReasonCode::SESSION_TAKEN_OVER),
                other => panic!("the old connection gets DISCONNECT 0x8E, not {other:?}"),
            }
            assert!(read_packet(&mut first).is_none(), "and is closed");
            first = next;
        }
    }
    b.stop().unwrap();
}

#[test]
fn a_shared_group_spread_over_shards_shares_fairly() {
    let b = broker(BrokerConfig::default());
    let addr = b.addrs()[0];
    let members: Vec<BlockingClient> =
        [0, 0, 1, 1].iter().enumerate().map(|(i, &s)| client(addr, &id_on(s, &format!("m{i}")))).collect();
    for m in &members {
        m.subscribe(&[("$share/g/jobs/+", SubOptions::qos(QoS::AtLeastOnce))]).unwrap();
    }
    std::thread::sleep(Duration::from_millis(100));
    let mut per_member = HashMap::new();
    for shard in 0..SHARDS {
        let publisher = client(addr, &id_on(shard, "producer"));
        for i in 0..200u32 {
            publisher
                .publish("jobs/a", &(shard as u32 * 1000 + i).to_be_bytes(), QoS::AtLeastOnce, false)
                .unwrap();
        }
    }
    let mut seen = Vec::new();
    for (k, m) in members.iter().enumerate() {
        while let Some(msg) = m.recv(Some(Duration::from_millis(500))) {
            *per_member.entry(k).or_insert(0) += 1;
            seen.push(msg.payload);
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 400, "every job once: {per_member:?}");
    for k in 0..members.len() {
        assert_eq!(per_member.get(&k), Some(&100), "a quarter each: {per_member:?}");
    }
    b.stop().unwrap();
}

#[test]
fn sys_counts_the_clients_of_every_shard() {
    let mut config = BrokerConfig::default();
    config.sys_interval = Some(Duration::from_millis(200));
    let b = broker(config);
    let addr = b.addrs()[0];
    let watcher = client(addr, &id_on(1, "watcher"));
    watcher.subscribe(&[("$SYS/broker/clients/total", SubOptions::qos(QoS::AtMostOnce))]).unwrap();
    let clients: Vec<BlockingClient> =
        (0..6).map(|i| client(addr, &id_on(i % SHARDS, &format!("counted{i}")))).collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = String::new();
    while Instant::now() < deadline && last != "7" {
        last = String::from_utf8(recv(&watcher).payload).unwrap();
    }
    assert_eq!(last, "7", "both shards' sessions are counted (the watcher's too)");
    drop(clients);
    b.stop().unwrap();
}

#[test]
fn each_shard_restores_its_journal_and_the_shard_count_is_kept() {
    let dir = std::env::temp_dir().join(format!("zero-cluster-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = BrokerConfig::default();
    config.persistence = true;
    config.persistence_location = dir.clone();
    let persistent = |addr, id: &str| {
        let mut c = ClientConfig::default();
        c.client_id = id.into();
        c.protocol = Protocol::V5;
        c.clean_start = false;
        c.session_expiry = 3600;
        BlockingClient::connect(Target::tcp(addr), c).expect("connects")
    };
    let sub_id = id_on(1, "durable");
    let b = broker(config.clone());
    let (sub, _) = persistent(b.addrs()[0], &sub_id);
    sub.subscribe(&[("orders/#", SubOptions::qos(QoS::AtLeastOnce))]).unwrap();
    sub.disconnect();
    b.stop().unwrap();

    let b = broker(config.clone());
    let addr = b.addrs()[0];
    // The restored subscription on shard 1 was announced to shard 0, where this publisher is.
    let publisher = client(addr, &id_on(0, "shop"));
    std::thread::sleep(Duration::from_millis(100));
    publisher.publish("orders/1", b"paid", QoS::AtLeastOnce, false).unwrap();
    let (sub, present) = persistent(addr, &sub_id);
    assert!(present, "the session came back from shard 1's journal");
    assert_eq!(recv(&sub).payload, b"paid", "queued for it while it was away");
    sub.disconnect();
    b.stop().unwrap();

    let listeners = Listeners { tcp: vec!["127.0.0.1:0".parse().unwrap()], ..Listeners::default() };
    let refused = start_cluster(config, &listeners, 1, Vec::new()).err().expect("another count is refused");
    assert!(refused.to_string().contains("2 shards"), "{refused}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_panic_on_one_shard_stops_every_shard_and_join_says_why() {
    let mut config = BrokerConfig::default();
    config.panic_on_topic = Some("fault/boom".into());
    let b = broker(config);
    let addr = b.addrs()[0];
    let bystander = client(addr, &id_on(0, "bystander"));
    let victim = client(addr, &id_on(1, "victim"));
    // QoS 0: the shard dies before it could acknowledge anything.
    victim.publish("fault/boom", b"!", QoS::AtMostOnce, false).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(b.join()));
    let joined = rx.recv_timeout(Duration::from_secs(10)).expect("the whole broker stops");
    let error = joined.expect_err("join reports the panic").to_string();
    assert!(error.contains("shard 1 panicked") && error.contains("fault injected"), "{error}");
    // Nothing is left listening to accept connections that nobody would serve.
    for _ in 0..8 {
        assert!(TcpStream::connect(addr).is_err(), "a connection was accepted after the broker stopped");
    }
    drop((bystander, victim));
}

/// A graceful stop in the middle of a stream of QoS 1 publishes loses none that was
/// acknowledged, though each crosses shards (publisher on shard 1, subscriber's session on
/// shard 0, which the stop reaches first): shards stop taking input before any of them stops, so every forward in a shard's
/// queue is handled and journaled first.
#[test]
fn a_graceful_stop_mid_stream_keeps_every_acknowledged_cross_shard_publish() {
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    let dir = std::env::temp_dir().join(format!("zero-cluster-stop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = BrokerConfig::default();
    config.persistence = true;
    config.persistence_location = dir.clone();
    let keeper = |addr, id: &str| {
        let mut c = ClientConfig::default();
        c.client_id = id.into();
        c.protocol = Protocol::V5;
        c.clean_start = false;
        c.session_expiry = 3600;
        BlockingClient::connect(Target::tcp(addr), c).expect("connects").0
    };
    let sub_id = id_on(0, "keeper");
    for round in 0..5 {
        let b = broker(config.clone());
        let addr = b.addrs()[0];
        if round == 0 {
            let sub = keeper(addr, &sub_id);
            sub.subscribe(&[("burst/#", SubOptions::qos(QoS::AtLeastOnce))]).unwrap();
            sub.disconnect();
        }
        let (stream, _) = raw_connect(addr, &id_on(1, "stream"));
        let acked = Arc::new(AtomicU64::new(0));
        let mut reader = stream.try_clone().unwrap();
        let count = acked.clone();
        let reading = std::thread::spawn(move || {
            let mut ids = BTreeSet::new();
            while let Some(Packet::PubAck(ack)) = read_packet_or_end(&mut reader) {
                ids.insert(ack.packet_id);
                count.fetch_add(1, Ordering::SeqCst);
            }
            count.store(u64::MAX / 2, Ordering::SeqCst); // the writer stops waiting
            ids
        });
        let mut writer = stream;
        let sent = acked.clone();
        let writing = std::thread::spawn(move || {
            for id in 1..=5000u16 {
                // At most 8 in flight (under the broker's Receive Maximum).
                loop {
                    match sent.load(Ordering::SeqCst) {
                        n if n >= u64::MAX / 2 => return,
                        n if u64::from(id) > n + 8 => std::thread::yield_now(),
                        _ => break,
                    }
                }
                let payload = format!("{round}-{id}");
                let publish = codec::Publish {
                    dup: false,
                    qos: QoS::AtLeastOnce,
                    retain: false,
                    topic: "burst/x",
                    packet_id: id,
                    properties: Properties::default(),
                    payload: payload.as_bytes(),
                };
                let mut out = Vec::new();
                Packet::Publish(publish).encode(Protocol::V5, &mut out);
                if writer.write_all(&out).is_err() {
                    return;
                }
            }
        });
        while acked.load(Ordering::SeqCst) < 300 {
            std::thread::sleep(Duration::from_millis(1));
        }
        b.stop().expect("stops cleanly");
        writing.join().unwrap();
        let ids = reading.join().unwrap();
        assert!(ids.len() >= 300);

        let b = broker(config.clone());
        let sub = keeper(b.addrs()[0], &sub_id);
        let mut got = BTreeSet::new();
        while let Some(m) = sub.recv(Some(Duration::from_millis(1500))) {
            got.insert(String::from_utf8(m.payload).unwrap());
        }
        let lost: Vec<_> =
            ids.iter().map(|id| format!("{round}-{id}")).filter(|p| !got.contains(p)).collect();
        assert!(lost.is_empty(), "round {round}: {} acknowledged, lost {lost:?}", ids.len());
        sub.disconnect();
        b.stop().unwrap();
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// [`read_packet`], or `None` when the connection ends in any way.
fn read_packet_or_end(s: &mut TcpStream) -> Option<Packet<'static>> {
    let mut buf = Vec::new();
    let mut chunk = [0; 512];
    loop {
        if let Ok(Some((_, len))) = codec::decode(&buf, Protocol::V5, 1 << 20) {
            let bytes: &'static [u8] = Vec::leak(buf[..len].to_vec());
            return codec::decode(bytes, Protocol::V5, 1 << 20).ok().flatten().map(|(p, _)| p);
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}
