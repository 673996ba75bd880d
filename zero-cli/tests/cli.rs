//! The `zero` command end to end: the echo server driven by the load generator.

use std::process::{Command, Output, Stdio};
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

/// Runs `zero echo serve --listen ADDR SERVE..` (it makes and names a development
/// certificate), then `zero bench echo` twice: trusting the certificate (`--tls-ca`, with
/// `TRUSTED..`) and not (`UNTRUSTED..`). Returns both runs' output.
fn with_a_dev_cert(serve: &[&str], trusted: &[&str], untrusted: &[&str]) -> (Output, Output) {
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let mut server =
        zero().args(["echo", "serve", "--listen", &addr]).args(serve).stderr(Stdio::piped()).spawn().unwrap();
    // The server names its development certificate before it listens.
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
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "server never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    let bench = |args: &[&str]| {
        zero().args(["bench", "echo", "--target", &addr, "--duration", "1"]).args(args).output().unwrap()
    };
    let out = bench(&[trusted, &["--tls-ca", &cert]].concat());
    let refused = bench(untrusted);
    server.kill().unwrap();
    server.wait().unwrap();
    let _ = std::fs::remove_file(&cert);
    (out, refused)
}

/// The last line of a successful load run, with no errors.
fn clean_result(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let result = stdout.lines().last().unwrap().to_owned();
    assert!(result.starts_with("result msgs_per_sec=") && result.ends_with(" errors=0"), "{stdout}");
    result
}

#[test]
fn bench_echo_tls_drives_echo_serve_tls() {
    let (out, untrusting) =
        with_a_dev_cert(&["--tls"], &["--conns", "4", "--size", "1024", "--tls"], &["--conns", "1", "--tls"]);
    clean_result(&out);
    // Without trusting the development certificate, nothing connects.
    assert!(!untrusting.status.success());
    let why = String::from_utf8_lossy(&untrusting.stderr);
    assert!(why.contains("unknown issuer"), "{why}");
}

#[test]
fn bench_echo_quic_drives_echo_serve_quic() {
    // Two shards, as users run it: TCP and QUIC on both.
    let (out, untrusting) = with_a_dev_cert(
        &["--quic", "--shards", "2"],
        &["--conns", "8", "--size", "200", "--pipeline", "4", "--quic"],
        &["--conns", "1", "--quic"],
    );
    let result = clean_result(&out);
    let rate: f64 = result.split_whitespace().nth(1).unwrap()["msgs_per_sec=".len()..].parse().unwrap();
    assert!(rate > 0.0, "{result}");
    // Without trusting the development certificate, no QUIC handshake completes.
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
