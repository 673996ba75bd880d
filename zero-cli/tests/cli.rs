//! The `zero` command end to end: the echo server driven by the load generator.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn zero() -> Command {
    Command::new(env!("CARGO_BIN_EXE_zero"))
}

#[test]
fn bench_echo_drives_echo_serve() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let mut server = zero()
        .args(["echo", "serve", "--listen", &addr, "--shards", "2"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "server never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = zero()
        .args(["bench", "echo", "--target", &addr, "--conns", "8", "--size", "128", "--duration", "1"])
        .args(["--pipeline", "4"])
        .output()
        .unwrap();
    server.kill().unwrap();
    server.wait().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let result = stdout.lines().last().unwrap();
    assert!(result.starts_with("result msgs_per_sec="), "{result}");
    assert!(result.ends_with(" errors=0"), "{result}");
    let rate: f64 = result.split_whitespace().nth(1).unwrap()["msgs_per_sec=".len()..].parse().unwrap();
    assert!(rate > 0.0, "{result}");
}

#[test]
fn bench_echo_offers_a_fixed_rate_in_an_open_loop() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let mut server = zero().args(["echo", "serve", "--listen", &addr]).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "server never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = zero()
        .args(["bench", "echo", "--target", &addr, "--conns", "4", "--duration", "2", "--rate", "3000"])
        .output()
        .unwrap();
    server.kill().unwrap();
    server.wait().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let result = stdout.lines().last().unwrap();
    let rate: f64 = result.split_whitespace().nth(1).unwrap()["msgs_per_sec=".len()..].parse().unwrap();
    // The offered rate, not the server's capacity (a closed loop here does tens of thousands).
    assert!((2850.0..3150.0).contains(&rate), "{result}");
}

#[test]
fn bench_echo_tls_drives_echo_serve_tls() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let mut server =
        zero().args(["echo", "serve", "--listen", &addr, "--tls"]).stderr(Stdio::piped()).spawn().unwrap();
    let cert = dev_cert(&mut server);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "server never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = zero()
        .args(["bench", "echo", "--target", &addr, "--conns", "4", "--size", "1024", "--duration", "1"])
        .args(["--tls", "--tls-ca", &cert])
        .output()
        .unwrap();
    // Without trusting the development certificate, nothing connects.
    let untrusting = zero()
        .args(["bench", "echo", "--target", &addr, "--conns", "1", "--duration", "1", "--tls"])
        .output()
        .unwrap();
    server.kill().unwrap();
    server.wait().unwrap();
    let _ = std::fs::remove_file(&cert);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.lines().last().unwrap().ends_with(" errors=0"), "{stdout}");
    assert!(!untrusting.status.success());
    let why = String::from_utf8_lossy(&untrusting.stderr);
    assert!(why.contains("unknown issuer"), "{why}");
}

/// The development certificate a server started with `--tls` or `--quic` names on stderr
/// before it listens.
fn dev_cert(server: &mut std::process::Child) -> String {
    let mut stderr = std::io::BufReader::new(server.stderr.take().unwrap());
    let mut line = String::new();
    let cert = loop {
        line.clear();
        assert!(std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() > 0, "server exited");
        if let Some(path) = line.trim_end().split(" in ").nth(1).filter(|_| line.contains("certificate")) {
            break path.to_owned();
        }
    };
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    cert
}

#[test]
fn bench_echo_quic_drives_echo_serve_quic() {
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    // Two shards, as users run it: TCP and QUIC on both.
    let mut server = zero()
        .args(["echo", "serve", "--listen", &addr, "--quic", "--shards", "2"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let cert = dev_cert(&mut server);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "server never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = zero()
        .args(["bench", "echo", "--target", &addr, "--conns", "8", "--size", "200", "--duration", "1"])
        .args(["--pipeline", "4", "--quic", "--tls-ca", &cert])
        .output()
        .unwrap();
    // Without trusting the development certificate, no QUIC handshake completes.
    let untrusting = zero()
        .args(["bench", "echo", "--target", &addr, "--conns", "1", "--duration", "1", "--quic"])
        .output()
        .unwrap();
    server.kill().unwrap();
    server.wait().unwrap();
    let _ = std::fs::remove_file(&cert);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let result = stdout.lines().last().unwrap();
    assert!(result.ends_with(" errors=0"), "{stdout}");
    let rate: f64 = result.split_whitespace().nth(1).unwrap()["msgs_per_sec=".len()..].parse().unwrap();
    assert!(rate > 0.0, "{result}");
    assert!(!untrusting.status.success());
    let why = String::from_utf8_lossy(&untrusting.stderr);
    assert!(why.contains("UnknownIssuer") || why.contains("unknown issuer"), "{why}");
}

#[test]
fn bad_arguments_get_a_clear_error() {
    let out = zero().args(["bench", "echo", "--target", "127.0.0.1:9", "--size", "4"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--size must be at least 8"));
}

#[test]
fn redis_runs_commands_and_subscribes() {
    let server = zero_conformance::redis::RedisServer::start().unwrap();
    let url = format!("redis://{}", server.addr);
    let redis = |args: &[&str]| {
        let out = zero().args(["redis", "--url", &url]).args(args).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    assert_eq!(redis(&["SET", "greeting", "hello world"]), (true, "OK\n".into()));
    assert_eq!(redis(&["GET", "greeting"]), (true, "\"hello world\"\n".into()));
    assert_eq!(redis(&["RPUSH", "l", "a", "b"]), (true, "(integer) 2\n".into()));
    assert_eq!(redis(&["LRANGE", "l", "0", "-1"]), (true, "1) \"a\"\n2) \"b\"\n".into()));
    let (ok, out) = redis(&["INCR", "greeting"]);
    assert!(!ok && out.starts_with("(error) ERR value is not an integer"), "{out}");

    let mut sub = zero()
        .args(["redis", "--url", &url, "SUBSCRIBE", "news"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(sub.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
    assert!(line.contains("subscribed to news"), "{line}");
    assert_eq!(redis(&["PUBLISH", "news", "extra"]), (true, "(integer) 1\n".into()));
    let mut stdout = std::io::BufReader::new(sub.stdout.take().unwrap());
    line.clear();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    sub.kill().unwrap();
    sub.wait().unwrap();
    assert_eq!(line, "news extra\n");
}
