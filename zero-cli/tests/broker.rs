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
