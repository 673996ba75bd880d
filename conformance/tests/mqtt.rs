//! The MQTT suite against zero's broker (every check must pass) and against mosquitto (the
//! reference broker; where it fails a check, `MOSQUITTO_FAILS` says why). Both tables are
//! printed (`cargo test -p zero-conformance -- --nocapture` shows them).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use zero_conformance::{mqtt, print_table};
use zero_mqtt::broker::BrokerConfig;
use zero_mqtt::server::{self, Listeners};

/// Checks mosquitto 2.0 (Debian 12) fails, and why.
const MOSQUITTO_FAILS: &[(&str, &str)] = &[(
    "keep-alive",
    // Measured with a raw client: keep-alive 1 s -> closed after 5.5 s, 2 s -> 6.0 s,
    // 5 s -> 11.9 s. mosquitto 2.0.11 checks keep-alives on a coarse periodic sweep, so a
    // silent client lives up to ~5 s past the 1.5x the rule allows.
    "closes silent clients up to ~5 s after 1.5x keep-alive (periodic sweep)",
)];

#[test]
fn zero_broker_passes_every_check() {
    // Two shards, as users run it.
    let listeners = Listeners { tcp: vec!["127.0.0.1:0".parse().unwrap()], ..Listeners::default() };
    let broker =
        server::start_cluster(BrokerConfig::default(), &listeners, 2, Vec::new()).expect("broker up");
    let addr = broker.addrs()[0];
    let outcomes = mqtt::run(addr, None);
    let failed = print_table("zero mqtt broker", &outcomes);
    assert_eq!(
        failed,
        0,
        "zero's broker fails checks: {:?}",
        outcomes.iter().filter(|o| o.failure.is_some()).collect::<Vec<_>>()
    );
    broker.stop().expect("the broker stops cleanly (no shard panicked)");
}

#[test]
fn mosquitto_fails_only_what_is_explained() {
    let found = Command::new("sh").args(["-c", "command -v mosquitto"]).output().unwrap();
    assert!(found.status.success(), "mosquitto is missing: run scripts/test.sh (it installs it)");
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let conf = std::env::temp_dir().join(format!("zero-conformance-mosquitto-{}.conf", std::process::id()));
    std::fs::write(&conf, format!("listener {port} 127.0.0.1\nallow_anonymous true\n")).unwrap();
    let mut child = Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "mosquitto did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let outcomes = mqtt::run(addr, None);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&conf);
    print_table("mosquitto", &outcomes);
    let unexplained: Vec<_> = outcomes
        .iter()
        .filter(|o| o.failure.is_some() && !MOSQUITTO_FAILS.iter().any(|(name, _)| *name == o.name))
        .collect();
    assert!(
        unexplained.is_empty(),
        "mosquitto fails checks nobody explained (a wrong check?): {unexplained:?}"
    );
}
