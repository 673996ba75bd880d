//! Persistence across `kill -9`: a broker process with a journal, mosquitto clients, a hard
//! kill, a restart on the same directory, and every acknowledged message delivered once.
//!
//! The broker runs in a child process (this test binary again, in `child_broker`), so it can
//! be killed without ceremony.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use zero_mqtt::broker::BrokerConfig;
use zero_mqtt::server::{self, Listeners};

mod common;
use common::tool;

const CHILD_DIR: &str = "ZERO_MQTT_CHILD_BROKER_DIR";

/// Not a test: the broker process the test below starts (and kills). Without its
/// environment variable it returns at once.
#[test]
fn child_broker() {
    let Ok(dir) = std::env::var(CHILD_DIR) else { return };
    let listeners = Listeners { tcp: vec!["127.0.0.1:0".parse().unwrap()], ..Listeners::default() };
    let mut config = BrokerConfig::default();
    config.persistence = true;
    config.persistence_location = dir.into();
    // Two shards, as users run it: each keeps its own journal.
    let broker = server::start_cluster(config, &listeners, 2, Vec::new()).expect("journals open");
    println!("port {}", broker.addrs()[0].port());
    std::io::stdout().flush().unwrap();
    broker.join().expect("broker runs");
}

/// Starts the broker process on `dir`; returns it and its port.
fn start(dir: &Path) -> (Child, String) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_broker", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port = loop {
        let line = lines.next().expect("the broker prints its port").unwrap();
        // After the harness's "test child_broker ... " on the same line.
        if let Some((_, port)) = line.rsplit_once("port ") {
            break port.trim().to_string();
        }
    };
    (child, port)
}

/// Publishes every line of `lines` as one message with `mosquitto_pub -l`; it exits once the
/// broker acknowledged all of them.
fn publish_lines(port: &str, args: &[&str], lines: &[String]) {
    let mut child = tool("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", port, "-l"])
        .args(args)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(lines.join("\n").as_bytes()).unwrap();
    assert!(child.wait().unwrap().success(), "mosquitto_pub {args:?}");
}

/// The payloads `mosquitto_sub ARGS` prints before it exits.
fn receive(port: &str, args: &[&str]) -> Vec<String> {
    let out = tool("mosquitto_sub").args(["-h", "127.0.0.1", "-p", port]).args(args).output().unwrap();
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect()
}

#[test]
fn kill_9_loses_no_acknowledged_message_and_duplicates_no_qos2() {
    let dir = std::env::temp_dir().join(format!("zero-mqtt-persist-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (mut broker, port) = start(&dir);
    // A persistent session subscribes and goes away (-E: exit once subscribed).
    let session = ["-c", "-i", "dev", "-q", "2", "-t", "p/#"];
    receive(&port, &[&session[..], &["-E"]].concat());
    let q1: Vec<String> = (0..100).map(|i| format!("q1-{i}")).collect();
    let q2: Vec<String> = (0..100).map(|i| format!("q2-{i}")).collect();
    publish_lines(&port, &["-q", "1", "-t", "p/1"], &q1);
    publish_lines(&port, &["-q", "2", "-t", "p/2"], &q2);
    publish_lines(&port, &["-q", "1", "-r", "-t", "keep"], &["kept".to_string()]);

    broker.kill().unwrap(); // SIGKILL
    broker.wait().unwrap();
    let (mut broker, port) = start(&dir);

    // Everything comes back once; waiting past the 200th shows there is no 201st.
    let mut got = receive(&port, &[&session[..], &["-C", "201", "-W", "4"]].concat());
    let mut want: Vec<String> = q1.iter().chain(&q2).cloned().collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "every acknowledged message, once");
    assert_eq!(receive(&port, &["-t", "keep", "-C", "1", "-W", "4"]), ["kept"]);

    // Delivered and acknowledged before this kill: nothing is delivered again.
    broker.kill().unwrap();
    broker.wait().unwrap();
    let (mut broker, port) = start(&dir);
    assert!(receive(&port, &[&session[..], &["-C", "1", "-W", "2"]].concat()).is_empty());
    broker.kill().unwrap();
    broker.wait().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
