//! MQTT over WebSocket (two shards, as users run it): paho-mqtt's websocket transport, and a
//! real browser (headless Chromium) running MQTT.js from a page the test serves.

use std::net::SocketAddr;
use std::process::Command;

use zero_mqtt::broker::BrokerConfig;
use zero_mqtt::server::{start_cluster, BrokerCluster, Listeners};

mod common;

/// A two-shard broker listening on TCP and on WebSocket; returns it and both addresses.
fn broker() -> (BrokerCluster, SocketAddr, SocketAddr) {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let listeners = Listeners { tcp: vec![any], ws: vec![(any, None)], ..Listeners::default() };
    let b = start_cluster(BrokerConfig::default(), &listeners, 2, Vec::new()).expect("the broker starts");
    let (tcp, ws) = (b.addrs()[0], b.addrs()[1]);
    (b, tcp, ws)
}

#[test]
fn paho_over_websocket_both_ways_at_every_qos() {
    let (b, tcp, ws) = broker();
    let has_paho = Command::new("/usr/bin/python3").args(["-c", "import paho.mqtt"]).status().unwrap();
    assert!(has_paho.success(), "paho-mqtt is missing: run scripts/test.sh (it installs python3-paho-mqtt)");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/paho_ws.py");
    let out = Command::new("/usr/bin/python3")
        .arg(script)
        .args([tcp.port().to_string(), ws.port().to_string()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "paho over WebSocket failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("all scenarios passed"), "{stdout}");
    b.stop().expect("no shard panicked");
}
