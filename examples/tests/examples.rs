//! The quick examples, run as a user runs them (the built binaries, with arguments) against
//! real peers: zero's own servers in this process, microsocks, mosquitto-free MQTT (the
//! embedded broker example), redis-server, unbound and chrony. The others (a FIX order, a
//! DKIM-signed mail, a capture replay) are built by `cargo test` and documented in their
//! files.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use zero_core::tls::SelfSigned;
use zero_core::{ClusterConfig, IoCluster, ListenOptions};

/// An example's binary (`cargo test` builds them into `target/debug/examples`).
fn example(name: &str) -> Command {
    let deps = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    let path: PathBuf = deps.parent().unwrap().join("examples").join(name);
    assert!(path.exists(), "{} is not built", path.display());
    Command::new(path)
}

/// Runs an example to its end (at most 30 s); its output, checked for success.
fn run(name: &str, args: &[&str]) -> String {
    let mut child = example(name).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{name} {args:?} did not finish in 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let Output { status, stdout, stderr } = child.wait_with_output().unwrap();
    let (out, err) = (String::from_utf8_lossy(&stdout), String::from_utf8_lossy(&stderr));
    assert!(status.success(), "{name} {args:?} failed: {out}{err}");
    out.into_owned()
}

/// A child killed on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts an example that prints `... on ADDR` first; the child and that address.
fn serve(name: &str, args: &[&str]) -> (Running, SocketAddr) {
    let mut child = example(name).args(args).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    // The rest is read and dropped: a closed pipe would fail the example's next print.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let addr = line.trim().rsplit(' ').next().and_then(|a| a.parse().ok());
    (Running(child), addr.unwrap_or_else(|| panic!("{name}: {line:?}")))
}

fn spare_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_port(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn echo_server_and_socks5_client() {
    let (_echo, addr) = serve("echo_server", &["127.0.0.1:0"]);
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.write_all(b"hello\n").unwrap();
    let mut back = [0u8; 6];
    tcp.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"hello\n");
    // Through microsocks to the echo server.
    let proxy = SocketAddr::from(([127, 0, 0, 1], spare_port()));
    let socks = Command::new("microsocks").args(["-i", "127.0.0.1", "-p", &proxy.port().to_string()]).spawn();
    let _socks = Running(socks.expect("microsocks is missing: run scripts/test.sh"));
    wait_port(proxy);
    let out = run("socks5_client", &[&proxy.to_string(), &addr.to_string()]);
    assert_eq!(out.trim(), "hello through SOCKS5");
}

#[test]
fn tls_client_against_a_zero_tls_echo() {
    let cert = SelfSigned::generate(&["localhost"]).unwrap();
    let dir = std::env::temp_dir().join(format!("zero-examples-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ca.pem"), &cert.cert_pem).unwrap();
    let (config, _) = cert.server().unwrap().build().unwrap();
    let (reserved, addr) = zero_core::reserve_port("127.0.0.1:0".parse().unwrap()).unwrap();
    let cluster = IoCluster::start(ClusterConfig::new(1), move |_, io| {
        let mut opts = ListenOptions::default();
        opts.reuse_port = true;
        io.tls_listen_with(addr, &opts, config.clone())?;
        Ok(zero_core::echo::Echo::default())
    })
    .unwrap();
    drop(reserved);
    let ca = dir.join("ca.pem").to_string_lossy().into_owned();
    let out = run("tls_client", &[&addr.to_string(), "localhost", &ca]);
    assert_eq!(out.trim(), "hello over TLS");
    cluster.stop().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn quic_client_against_a_zero_quic_echo() {
    let cert = SelfSigned::generate(&["localhost"]).unwrap();
    let dir = std::env::temp_dir().join(format!("zero-examples-quic-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ca.pem"), &cert.cert_pem).unwrap();
    let (tls, _) = cert.server().unwrap().build().unwrap();
    let server = zero_core::quic::server_config(&tls, false).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let cluster = IoCluster::start(ClusterConfig::new(1), move |_, io| {
        let udp = io.quic_bind("127.0.0.1:0".parse().unwrap(), Some(server.clone()))?;
        tx.send(io.udp_addr(udp)?).unwrap();
        Ok(zero_core::echo::Echo::default())
    })
    .unwrap();
    let addr = rx.recv().unwrap();
    let ca = dir.join("ca.pem").to_string_lossy().into_owned();
    let out = run("quic_client", &[&addr.to_string(), "localhost", &ca]);
    assert_eq!(out.trim(), "hello over QUIC\na datagram");
    cluster.stop().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn embedded_broker_and_tokio_client() {
    let (mut broker, addr) = serve("mqtt_broker_embedded", &["127.0.0.1:0", "3"]);
    let out = run("mqtt_client_tokio", &[&addr.to_string(), "t/x"]);
    assert_eq!(out.trim(), "t/x hello from zero-mqtt on Tokio");
    assert!(broker.0.wait().unwrap().success(), "the broker example stops cleanly");
}

#[test]
fn redis_pubsub_against_redis_server() {
    let port = spare_port();
    let server = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--save", ""])
        .stdout(Stdio::null())
        .spawn();
    let _server = Running(server.expect("redis-server is missing: run scripts/test.sh"));
    wait_port(SocketAddr::from(([127, 0, 0, 1], port)));
    let out = run("redis_pubsub", &[&format!("redis://127.0.0.1:{port}"), "news", "1"]);
    assert_eq!(out.trim(), "news hello from zero-redis");
}

#[test]
fn ftp_download_from_zero_ftp() {
    let dir = std::env::temp_dir().join(format!("zero-examples-ftp-{}", std::process::id()));
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(root.join("big.bin"), &bytes).unwrap();
    let config = zero_ftp::server::ServerConfig { anonymous: Some(root), ..Default::default() };
    let (reserved, addr) = zero_core::reserve_port("127.0.0.1:0".parse().unwrap()).unwrap();
    let cluster = IoCluster::start(ClusterConfig::new(1), move |_, io| {
        let mut server = zero_ftp::server::Server::new(config.clone());
        let mut opts = ListenOptions::default();
        opts.reuse_port = true;
        server.listen(io, addr, &opts)?;
        Ok(server)
    })
    .unwrap();
    drop(reserved);
    let local = dir.join("copy.bin").to_string_lossy().into_owned();
    let out = run("ftp_download", &[&format!("ftp://{addr}/big.bin"), &local]);
    assert!(out.contains("3000000 bytes written"), "{out}");
    assert!(std::fs::read(&local).unwrap() == bytes);
    cluster.stop().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dns_lookup_against_unbound() {
    let unbound = zero_conformance::dns::Unbound::start();
    let out = run("dns_lookup", &["www.zero.test", &unbound.addr.to_string()]);
    assert!(out.contains("10.0.0.1") && out.contains("2001:db8::1"), "{out}");
}

#[test]
fn ntp_query_against_chrony() {
    let chrony = zero_conformance::ntp::Chrony::start();
    let out = run("ntp_query", &[&chrony.addr.to_string()]);
    assert!(out.contains("stratum") && out.contains("offset") && out.contains("delay"), "{out}");
}
