//! The broker (two shards) against independent clients: mosquitto_pub / mosquitto_sub
//! (MQTT 3.1.1 and 5) and paho-mqtt (Python, MQTT 5). They are installed by scripts/test.sh;
//! a missing one fails the test.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zero_mqtt::broker::BrokerConfig;
use zero_mqtt::server::{self, BrokerCluster, Listeners};

mod common;
use common::tool;

/// A broker as users run it: two shards (sessions move to their home shard).
struct Broker {
    addr: SocketAddr,
    cluster: Option<BrokerCluster>,
}

impl Broker {
    fn start() -> Broker {
        let listeners = Listeners { tcp: vec!["127.0.0.1:0".parse().unwrap()], ..Listeners::default() };
        let cluster =
            server::start_cluster(BrokerConfig::default(), &listeners, 2, Vec::new()).expect("broker up");
        Broker { addr: cluster.addrs()[0], cluster: Some(cluster) }
    }

    fn port(&self) -> String {
        self.addr.port().to_string()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(cluster) = self.cluster.take() {
            let stopped = cluster.stop();
            if !std::thread::panicking() {
                stopped.expect("the broker stops cleanly (no shard panicked)");
            }
        }
    }
}

/// A running `mosquitto_sub -d` and the lines it printed.
struct Sub {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

/// Starts `mosquitto_sub -d` and waits for its "Subscribed" line, so publishes that follow
/// find the subscription in place.
fn subscriber(b: &Broker, args: &[&str]) -> Sub {
    tool("mosquitto_sub");
    // Line-buffered: its output goes to a pipe, and the "Subscribed" line must arrive now.
    let mut child = tool("stdbuf")
        .args(["-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", &b.port(), "-d"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in stdout.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    loop {
        match lines.recv_timeout(Duration::from_secs(5)) {
            Ok(line) if line.starts_with("Subscribed (mid") => return Sub { child, lines },
            Ok(_) => {}
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("mosquitto_sub did not subscribe: {e}");
            }
        }
    }
}

fn publish(b: &Broker, args: &[&str]) {
    let out = tool("mosquitto_pub").args(["-h", "127.0.0.1", "-p", &b.port()]).args(args).output().unwrap();
    assert!(out.status.success(), "mosquitto_pub {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The message lines of a `mosquitto_sub -d -v` run (debug lines dropped), once it exits
/// (or after 10 s).
fn messages(mut sub: Sub) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while sub.child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = sub.child.kill();
    let _ = sub.child.wait();
    let mut out = Vec::new();
    while let Ok(line) = sub.lines.recv_timeout(Duration::from_millis(200)) {
        if !line.starts_with("Client ") && !line.starts_with("Subscribed") && !line.is_empty() {
            out.push(line);
        }
    }
    out
}

#[test]
fn mosquitto_clients_every_qos_and_version() {
    let b = Broker::start();
    for (sub_version, pub_version) in [("mqttv311", "mqttv5"), ("mqttv5", "mqttv311"), ("mqttv31", "mqttv5")]
    {
        let sub = subscriber(&b, &["-V", sub_version, "-t", "q/#", "-q", "2", "-v", "-C", "3"]);
        for qos in ["0", "1", "2"] {
            publish(
                &b,
                &["-V", pub_version, "-t", &format!("q/{qos}"), "-m", &format!("at qos {qos}"), "-q", qos],
            );
        }
        assert_eq!(
            messages(sub),
            ["q/0 at qos 0", "q/1 at qos 1", "q/2 at qos 2"],
            "{sub_version} <- {pub_version}"
        );
    }
}

#[test]
fn mosquitto_retained_and_cleared() {
    let b = Broker::start();
    publish(&b, &["-t", "state/door", "-m", "open", "-r", "-q", "1"]);
    publish(&b, &["-t", "state/light", "-m", "on", "-r"]);
    let sub = subscriber(&b, &["-t", "state/+", "-v", "-C", "2", "-V", "mqttv5"]);
    let mut got = messages(sub);
    got.sort();
    assert_eq!(got, ["state/door open", "state/light on"]);
    publish(&b, &["-t", "state/door", "-r", "-n"]); // empty retained payload clears
    let sub = subscriber(&b, &["-t", "state/+", "-v", "-C", "1", "-W", "2"]);
    assert_eq!(messages(sub), ["state/light on"]);
    // $SYS is retained from the start and not matched by '#'.
    let sub = subscriber(&b, &["-t", "$SYS/broker/version", "-C", "1", "-W", "3"]);
    assert!(messages(sub)[0].starts_with("zero-mqtt"));
}

#[test]
fn will_of_a_killed_client_is_published() {
    let b = Broker::start();
    let watcher = subscriber(&b, &["-t", "dev/+/status", "-v", "-C", "1", "-V", "mqttv5"]);
    let mut doomed = subscriber(
        &b,
        &[
            "-t",
            "nothing",
            "--will-topic",
            "dev/7/status",
            "--will-payload",
            "offline",
            "--will-qos",
            "1",
            "-i",
            "dev7",
        ],
    );
    doomed.child.kill().unwrap(); // SIGKILL: no DISCONNECT
    doomed.child.wait().unwrap();
    assert_eq!(messages(watcher), ["dev/7/status offline"]);
}

#[test]
fn garbage_closes_one_connection_only() {
    let b = Broker::start();
    let sub = subscriber(&b, &["-t", "ok", "-C", "1", "-V", "mqttv5"]);
    let mut raw = TcpStream::connect(b.addr).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    raw.write_all(b"\x10\xff\xff\xff\xff\x0f").unwrap(); // remaining length over 4 bytes
    let mut buf = [0u8; 64];
    assert_eq!(raw.read(&mut buf).unwrap_or(0), 0, "closed without an answer");
    publish(&b, &["-t", "ok", "-m", "still serving"]);
    assert_eq!(messages(sub), ["still serving"]);
}

/// paho-mqtt (MQTT 5) runs the scenario in `tests/paho_v5.py` against the broker.
#[test]
fn paho_mqtt_v5_scenarios() {
    let b = Broker::start();
    let has_paho = Command::new("/usr/bin/python3").args(["-c", "import paho.mqtt"]).status().unwrap();
    assert!(has_paho.success(), "paho-mqtt is missing: run scripts/test.sh (it installs python3-paho-mqtt)");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/paho_v5.py");
    let out = Command::new("/usr/bin/python3").arg(script).arg(b.port()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "paho scenarios failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("all scenarios passed"), "{stdout}");
}
