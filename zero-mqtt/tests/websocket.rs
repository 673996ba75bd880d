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

/// Where MQTT.js (npm `mqtt`) was installed by scripts/test.sh, or `ZERO_MQTTJS`.
fn mqtt_js() -> std::path::PathBuf {
    let path = std::env::var_os("ZERO_MQTTJS").map(Into::into).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").unwrap_or_default();
        std::path::Path::new(&home).join(".cache/zero-npm/node_modules/mqtt/dist/mqtt.min.js")
    });
    assert!(
        path.exists(),
        "MQTT.js is missing at {}: run scripts/test.sh (it installs npm mqtt)",
        path.display()
    );
    path
}

/// Kills a child process when dropped.
struct Reaper(std::process::Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_browser_running_mqtt_js_receives_over_websocket_what_tcp_publishes() {
    use std::time::{Duration, Instant};
    use zero_mqtt::client::blocking::BlockingClient;
    use zero_mqtt::client::driver::Target;
    use zero_mqtt::client::ClientConfig;
    use zero_mqtt::codec::{QoS, SubOptions};

    let chromium = Command::new("sh").args(["-c", "command -v chromium"]).output().unwrap();
    assert!(chromium.status.success(), "chromium is missing: run scripts/test.sh (it installs it)");
    let (b, tcp, ws) = broker();
    // The page and MQTT.js, served by a plain HTTP server on loopback.
    let site = std::env::temp_dir().join(format!("zero-browser-{}", std::process::id()));
    std::fs::create_dir_all(&site).unwrap();
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/index.html"), site.join("index.html"))
        .unwrap();
    std::fs::copy(mqtt_js(), site.join("mqtt.min.js")).unwrap();
    let http_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _http = Reaper(
        Command::new("/usr/bin/python3")
            .args(["-m", "http.server", &http_port.to_string(), "--bind", "127.0.0.1", "--directory"])
            .arg(&site)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut config = ClientConfig::default();
    config.client_id = "tcp-side".into();
    let (tcp_client, _) = BlockingClient::connect(Target::tcp(tcp), config).expect("connects");
    tcp_client.subscribe(&[("browser/#", SubOptions::qos(QoS::AtLeastOnce))]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", http_port)).is_err() {
        assert!(Instant::now() < deadline, "the page server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let profile = site.join("profile");
    let url = format!("http://127.0.0.1:{http_port}/index.html?ws={}", ws.port());
    let _browser = Reaper(
        Command::new("chromium")
            .args(["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
            .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(&url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let next = |what: &str| {
        let m = tcp_client
            .recv(Some(Duration::from_secs(30)))
            .unwrap_or_else(|| panic!("no {what} from the browser"));
        (m.topic.to_string(), String::from_utf8_lossy(&m.payload).into_owned())
    };
    assert_eq!(next("ready"), ("browser/ready".into(), "subscribed".into()));
    tcp_client.publish("browser/in", b"hello from TCP", QoS::AtLeastOnce, false).unwrap();
    // The message itself comes back too (the TCP side subscribes to browser/#).
    let mut answers = [next("echo"), next("answer")];
    answers.sort();
    assert_eq!(answers[0], ("browser/in".into(), "hello from TCP".into()));
    assert_eq!(answers[1], ("browser/out".into(), "browser got: hello from TCP".into()));
    let _ = std::fs::remove_dir_all(&site);
    b.stop().expect("no shard panicked");
}
