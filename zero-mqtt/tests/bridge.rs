//! Bridges against mosquitto, both ways: zero bridging to mosquitto (configured from a file
//! with mosquitto's bridge keywords), and mosquitto bridging to zero (zero as the remote of a
//! `try_private` bridge). Topics flow out and in with their prefixes, `both` topics do not
//! loop, and QoS 1 messages survive the remote broker's restart mid-stream.

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zero_mqtt::broker::BrokerConfig;
use zero_mqtt::client::blocking::BlockingClient;
use zero_mqtt::client::driver::Target;
use zero_mqtt::client::{ClientConfig, Message};
use zero_mqtt::codec::{Protocol, QoS, SubOptions};
use zero_mqtt::server::{start_cluster, BrokerCluster, Listeners};

mod common;

fn spare_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for_port(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// mosquitto with `extra` configuration, persistence in `dir`; restartable on its port.
struct Mosquitto {
    child: Option<Child>,
    addr: SocketAddr,
    conf: PathBuf,
}

impl Mosquitto {
    fn start(dir: &Path, extra: &str) -> Mosquitto {
        common::tool("mosquitto");
        let port = spare_port();
        let conf = dir.join("mosquitto.conf");
        let text = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\n{extra}\n",
            dir.display()
        );
        std::fs::write(&conf, text).unwrap();
        let mut m = Mosquitto { child: None, addr: format!("127.0.0.1:{port}").parse().unwrap(), conf };
        m.run();
        m
    }

    fn run(&mut self) {
        let mut command = Command::new("mosquitto");
        command.arg("-c").arg(&self.conf).stdout(Stdio::null()).stderr(Stdio::null());
        self.child = Some(command.spawn().unwrap());
        wait_for_port(self.addr);
    }

    /// SIGTERM (mosquitto saves its database), then waits for it to go.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A client with a persistent session (so a restarted broker gives it what it missed).
fn client(addr: SocketAddr, id: &str) -> BlockingClient {
    let mut c = ClientConfig::default();
    c.client_id = id.into();
    c.protocol = Protocol::V311;
    c.clean_start = false;
    c.reconnect_max = Duration::from_millis(300);
    BlockingClient::connect(Target::tcp(addr), c).expect("connects").0
}

/// [`client`], subscribed to `filters` at QoS 1.
fn subscriber(addr: SocketAddr, id: &str, filters: &[&str]) -> BlockingClient {
    let c = client(addr, id);
    let list: Vec<_> = filters.iter().map(|&f| (f, SubOptions::qos(QoS::AtLeastOnce))).collect();
    c.subscribe(&list).unwrap();
    c
}

fn recv(c: &BlockingClient, what: &str) -> Message {
    c.recv(Some(Duration::from_secs(15))).unwrap_or_else(|| panic!("no {what}"))
}

/// Publishes `probe` on `from` until `to` receives it: the bridge is up and subscribed.
fn until_bridged(from: &BlockingClient, topic: &str, to: &BlockingClient) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        from.publish(topic, b"probe", QoS::AtLeastOnce, false).unwrap();
        if let Some(m) = to.recv(Some(Duration::from_millis(300))) {
            assert_eq!(m.payload, b"probe");
            while to.recv(Some(Duration::from_millis(200))).is_some() {}
            return;
        }
        assert!(Instant::now() < deadline, "the bridge never carried {topic}");
    }
}

/// Nothing more arrives at `c` for a while.
fn quiet(c: &BlockingClient, what: &str) {
    if let Some(m) = c.recv(Some(Duration::from_millis(500))) {
        panic!("{what}: unexpected {} {:?}", m.topic, String::from_utf8_lossy(&m.payload));
    }
}

/// A message published on each side of a `both` topic under `prefix` reaches both sides
/// once: the bridge sends nothing back where it came from.
fn one_copy_each_side(here: &BlockingClient, there: &BlockingClient, prefix: &str) {
    here.publish(&format!("{prefix}/z"), b"from zero", QoS::AtLeastOnce, false).unwrap();
    there.publish(&format!("{prefix}/m"), b"from mosquitto", QoS::AtLeastOnce, false).unwrap();
    for c in [here, there] {
        let mut got: Vec<_> = (0..2).map(|_| recv(c, "a message of a both topic").payload).collect();
        got.sort();
        assert_eq!(got, [b"from mosquitto".to_vec(), b"from zero".to_vec()]);
        quiet(c, "a bridged message looped");
    }
}

/// Receives until `n` distinct payloads arrived on `c` (QoS 1 may repeat some).
fn distinct(c: &BlockingClient, n: usize, what: &str) -> BTreeSet<Vec<u8>> {
    let mut got = BTreeSet::new();
    while got.len() < n {
        got.insert(recv(c, what).payload);
    }
    got
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zero-bridge-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn zero(config: BrokerConfig, port: u16) -> BrokerCluster {
    let listeners =
        Listeners { tcp: vec![format!("127.0.0.1:{port}").parse().unwrap()], ..Listeners::default() };
    start_cluster(config, &listeners, 2, Vec::new()).expect("zero starts")
}

#[test]
fn zero_bridges_to_mosquitto_both_ways_without_loops_through_its_restart() {
    let dir = temp_dir("out");
    let mut remote = Mosquitto::start(&dir, "");
    let conf = dir.join("zero.conf");
    std::fs::write(
        &conf,
        format!(
            "connection site\naddress {}\ntopic sensors/# out 1 zero/ site/\ntopic cmd/# in 1 zero/ site/\n\
             topic chat/# both 1 \"\" \"\"\nrestart_timeout 1\nremote_clientid zero-edge\n",
            remote.addr
        ),
    )
    .unwrap();
    let mut config = BrokerConfig::default();
    config.load(&conf).expect("mosquitto's bridge keywords load");
    let b = zero(config, spare_port());
    let here = subscriber(b.addrs()[0], "here", &["zero/#", "chat/#"]);
    let there = subscriber(remote.addr, "there", &["site/#", "chat/#"]);
    until_bridged(&here, "zero/sensors/probe", &there);
    while here.recv(Some(Duration::from_millis(200))).is_some() {} // its own probes

    // Out, renamed, in order.
    for i in 0..20u8 {
        here.publish("zero/sensors/t", &[i], QoS::AtLeastOnce, false).unwrap();
    }
    for i in 0..20u8 {
        let m = recv(&there, "a sensor reading");
        assert_eq!((m.topic.as_str(), m.payload.as_slice()), ("site/sensors/t", &[i][..]));
        assert_eq!(recv(&here, "the local copy").payload, [i]);
    }
    // In, renamed.
    there.publish("site/cmd/reboot", b"now", QoS::AtLeastOnce, false).unwrap();
    let m = recv(&here, "the command");
    assert_eq!((m.topic.as_str(), m.payload.as_slice()), ("zero/cmd/reboot", &b"now"[..]));
    assert_eq!(recv(&there, "mosquitto's own copy").topic, "site/cmd/reboot");
    // Both ways, and no message comes back around.
    one_copy_each_side(&here, &there, "chat");

    // The remote restarts mid-stream: nothing acknowledged to zero's publisher is lost.
    let total = 100u32;
    for i in 0..total {
        if i == total / 2 {
            remote.stop();
            std::thread::sleep(Duration::from_millis(300));
            remote.run();
        }
        here.publish("zero/sensors/burst", &i.to_be_bytes(), QoS::AtLeastOnce, false).unwrap();
    }
    let got = distinct(&there, total as usize, "every burst message after the restart");
    assert_eq!(got, (0..total).map(|i| i.to_be_bytes().to_vec()).collect());
    b.stop().expect("no shard or bridge failed");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bridge_over_tls_checks_the_remote_certificate() {
    let remote = common::Mosquitto::start_tls();
    let dir = temp_dir("tls");
    let conf = dir.join("zero.conf");
    let ca = remote.ca_file.clone().unwrap();
    let address = format!("localhost:{}", remote.addr.port());
    std::fs::write(
        &conf,
        format!(
            "connection secure\naddress {address}\ntopic t/# out 1\nbridge_cafile {}\nrestart_timeout 1\n",
            ca.display()
        ),
    )
    .unwrap();
    let mut config = BrokerConfig::default();
    config.load(&conf).unwrap();
    let b = zero(config, spare_port());
    let here = client(b.addrs()[0], "tls-here");
    let mut c = ClientConfig::default();
    c.client_id = "tls-there".into();
    let there = BlockingClient::connect(remote.target(), c).expect("connects over TLS").0;
    there.subscribe(&[("t/#", SubOptions::qos(QoS::AtLeastOnce))]).unwrap();
    until_bridged(&here, "t/probe", &there);
    here.publish("t/secret", b"sealed", QoS::AtLeastOnce, false).unwrap();
    assert_eq!(recv(&there, "the message over the TLS bridge").payload, b"sealed");
    b.stop().expect("no shard or bridge failed");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn mosquitto_bridges_to_zero_through_zeros_restart() {
    let dir = temp_dir("in");
    let port = spare_port();
    let mut config = BrokerConfig::default();
    config.persistence = true;
    config.persistence_location = dir.join("zero-data");
    let b = zero(config.clone(), port);
    let zero_addr = b.addrs()[0];
    // mosquitto's defaults: MQTT 3.1.1 and try_private, so zero serves a bridge.
    let mosquitto = Mosquitto::start(
        &dir,
        &format!(
            "connection zero\naddress {zero_addr}\ntopic up/# out 1\ntopic down/# in 1\ntopic both/# both 1\n\
             restart_timeout 1\ncleansession false\n"
        ),
    );
    let here = subscriber(zero_addr, "zero-side", &["up/#", "both/#"]);
    let there = subscriber(mosquitto.addr, "mosquitto-side", &["down/#", "both/#"]);
    until_bridged(&there, "up/probe", &here);
    until_bridged(&here, "down/probe", &there);
    while there.recv(Some(Duration::from_millis(200))).is_some() {}
    // zero sends a bridge none of its own messages back: one copy each side.
    one_copy_each_side(&here, &there, "both");
    // zero restarts mid-stream (persistence on): every QoS 1 message arrives.
    let total = 100u32;
    let mut b = Some(b);
    for i in 0..total {
        if i == total / 2 {
            b.take().unwrap().stop().expect("zero stops cleanly");
            b = Some(zero(config.clone(), port));
        }
        there.publish("up/burst", &i.to_be_bytes(), QoS::AtLeastOnce, false).unwrap();
    }
    let got = distinct(&here, total as usize, "every burst message after zero's restart");
    assert_eq!(got, (0..total).map(|i| i.to_be_bytes().to_vec()).collect());
    drop((here, there));
    b.unwrap().stop().expect("no shard failed");
    let _ = std::fs::remove_dir_all(&dir);
}
