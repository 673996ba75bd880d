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
fn bad_arguments_get_a_clear_error() {
    let out = zero().args(["bench", "echo", "--target", "127.0.0.1:9", "--size", "4"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--size must be at least 8"));
}
