//! `zero mqtt broker` as users run it: its own process, several shards, persistence on.

use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A bug that panics a shard ends the process with a non-zero status and a message saying
/// so, instead of leaving it running with a dead shard that accepts and never answers.
#[test]
fn a_shard_panic_ends_the_broker_process_with_an_error() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let data = std::env::temp_dir().join(format!("zero-cli-panic-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let mut broker = Command::new(env!("CARGO_BIN_EXE_zero"))
        .args(["mqtt", "broker", "--listen", &format!("127.0.0.1:{port}"), "--shards", "2"])
        .args(["--fault-panic-topic", "fault/boom", "--data"])
        .arg(&data)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("zero starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the broker never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    let published = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-t", "fault/boom", "-m", "!"])
        .status()
        .expect("mosquitto_pub runs (scripts/test.sh installs mosquitto-clients)");
    assert!(published.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = broker.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = broker.kill();
            panic!("the broker kept running after a shard panicked");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut broker.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "exit status {status}");
    assert!(stderr.contains("panicked") && stderr.contains("every shard was stopped"), "{stderr}");
    let _ = std::fs::remove_dir_all(&data);
}

/// Kills the child when the test ends, however it ends.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `zero mqtt broker` on two shards with persistence, as users run it.
fn broker(port: u16, data: &std::path::Path) -> Reaped {
    let child = Command::new(env!("CARGO_BIN_EXE_zero"))
        .args(["mqtt", "broker", "--listen", &format!("127.0.0.1:{port}"), "--shards", "2", "--data"])
        .arg(data)
        .args(["--shutdown-grace", "10"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("zero starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the broker never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    Reaped(child)
}

/// A paho client of `mqtt_drain.py`, its output lines sent to `lines` as they come.
fn paho(mode: &str, port: u16, id: &str, lines: std::sync::mpsc::Sender<String>) -> Reaped {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mqtt_drain.py");
    let mut child = Command::new("/usr/bin/python3")
        .args([script, mode, &port.to_string(), id, "drain/load"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 runs (scripts/test.sh installs python3-paho-mqtt)");
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    Reaped(child)
}

/// SIGTERM under load loses nothing: a publisher (paho, MQTT 5, QoS 1) floods a topic that a
/// persistent subscriber (paho, 3.1.1, QoS 1) on the other shard reads. SIGTERM mid-flood:
/// the publisher is told "Server shutting down", the broker exits 0 well within its grace
/// period, and after a restart on the same data the subscriber, reconnecting by itself, has
/// every message the broker acknowledged.
#[test]
fn sigterm_under_load_drains_and_loses_no_acknowledged_message() {
    use std::collections::BTreeSet;
    use std::sync::mpsc;
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let data = std::env::temp_dir().join(format!("zero-cli-drain-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    // The subscriber's session and the publisher's live on different shards, so every message
    // crosses between shards: the hop a shutdown could lose.
    let sub_id = "drain-sub";
    let pub_id = (0..)
        .map(|i| format!("drain-pub-{i}"))
        .find(|id| zero_mqtt::broker::home_shard(id, 2) != zero_mqtt::broker::home_shard(sub_id, 2))
        .unwrap();
    let mut first = broker(port, &data);
    let (sub_tx, sub_rx) = mpsc::channel();
    let _sub = paho("sub", port, sub_id, sub_tx);
    assert_eq!(sub_rx.recv_timeout(Duration::from_secs(10)).unwrap(), "subscribing");
    std::thread::sleep(Duration::from_millis(500)); // its SUBACK, and the interest reaching the other shard
    let (pub_tx, pub_rx) = mpsc::channel();
    let _publisher = paho("pub", port, &pub_id, pub_tx);
    assert_eq!(pub_rx.recv_timeout(Duration::from_secs(10)).unwrap(), "publishing");
    std::thread::sleep(Duration::from_millis(1500));

    let signalled = Instant::now();
    assert!(Command::new("kill").args(["-TERM", &first.0.id().to_string()]).status().unwrap().success());
    let status = loop {
        if let Some(status) = first.0.try_wait().unwrap() {
            break status;
        }
        assert!(signalled.elapsed() < Duration::from_secs(15), "the broker did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = signalled.elapsed();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut first.0.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "exit status {status} after SIGTERM:\n{stderr}");
    assert!(stderr.contains("SIGTERM received: draining"), "{stderr}");
    assert!(stderr.contains("2 of 2 shard(s) drained in time"), "{stderr}");
    assert!(took < Duration::from_secs(8), "draining took {took:?}");

    let mut acked = BTreeSet::new();
    let mut reason = String::new();
    while let Ok(line) = pub_rx.recv_timeout(Duration::from_secs(20)) {
        if let Some(list) = line.strip_prefix("acked") {
            acked.extend(list.split_whitespace().map(|n| n.parse::<u64>().unwrap()));
        } else if let Some(r) = line.strip_prefix("disconnect ") {
            reason = r.to_string();
            break;
        }
    }
    assert_eq!(reason, "139", "the publisher was not told \"Server shutting down\" (0x8B)");
    assert!(
        acked.len() >= 100,
        "only {} messages were acknowledged: too little load to prove anything",
        acked.len()
    );

    let _second = broker(port, &data);
    let mut received = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !acked.is_subset(&received) && Instant::now() < deadline {
        if let Ok(line) = sub_rx.recv_timeout(Duration::from_millis(200)) {
            if let Ok(n) = line.parse::<u64>() {
                received.insert(n);
            }
        }
    }
    let lost: Vec<&u64> = acked.difference(&received).take(10).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged messages lost, the first {lost:?}",
        acked.difference(&received).count()
    );
    eprintln!("{} acknowledged before SIGTERM ({took:?} to drain), all received", acked.len());
    drop(_second);
    let _ = std::fs::remove_dir_all(&data);
}
