//! The kernel interface a shard runs on: `ZERO_BACKEND`, an explicit `Config::backend`, and
//! the fallback to epoll where io_uring is refused (as Docker's default seccomp profile does).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;

use common::echo_server;
use zero_core::{Backend, Config, Io, IoError};

/// Set in the copy of this test binary that runs under `scripts/no-io-uring`.
const REFUSED: &str = "ZERO_TEST_IO_URING_REFUSED";

fn echo_round_trip(config: Config) {
    let server = echo_server(config);
    let mut c = TcpStream::connect(server.addr).unwrap();
    for size in [1, 5000, 300_000] {
        let msg: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        c.write_all(&msg).unwrap();
        let mut back = vec![0; size];
        c.read_exact(&mut back).unwrap();
        assert!(back == msg, "{size} bytes came back changed");
    }
}

#[test]
fn the_default_backend_follows_zero_backend() {
    if std::env::var_os(REFUSED).is_some() {
        return;
    }
    let io = Io::new(Config::default()).unwrap();
    let expected = match std::env::var("ZERO_BACKEND").as_deref() {
        Ok("epoll") => Backend::Epoll,
        _ => Backend::IoUring, // this machine allows io_uring
    };
    assert_eq!(io.backend(), expected);
}

#[test]
fn an_explicit_backend_wins_over_zero_backend() {
    for backend in [Backend::Epoll, Backend::IoUring] {
        if std::env::var_os(REFUSED).is_some() && backend == Backend::IoUring {
            continue;
        }
        let mut config = Config::default();
        config.backend = backend;
        assert_eq!(Io::new(config.clone()).unwrap().backend(), backend);
        echo_round_trip(config);
    }
}

#[test]
fn a_shard_falls_back_to_epoll_where_io_uring_is_refused() {
    if std::env::var_os(REFUSED).is_some() {
        // The copy under seccomp: `Auto` falls back and serves; `IoUring` says why it cannot.
        let io = Io::new(Config::default()).expect("the fallback starts");
        assert_eq!(io.backend(), Backend::Epoll);
        echo_round_trip(Config::default());
        let mut config = Config::default();
        config.backend = Backend::IoUring;
        match Io::new(config) {
            Err(e @ IoError::RingUnavailable { .. }) => {
                assert!(e.to_string().contains("seccomp"), "{e}");
                println!("io_uring refused: {e}");
            }
            Err(e) => panic!("unexpected error: {e}"),
            Ok(_) => panic!("io_uring set up under a filter that refuses it"),
        }
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/no-io-uring");
    let out = Command::new(&script)
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "a_shard_falls_back_to_epoll_where_io_uring_is_refused", "--nocapture"])
        .env(REFUSED, "1")
        .env_remove("ZERO_BACKEND")
        .output()
        .expect("scripts/no-io-uring runs (it needs Debian's python3-seccomp)");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the test under seccomp failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("io_uring refused"), "the child did not run its checks:\n{stdout}\n{stderr}");
}

#[test]
fn an_unknown_zero_backend_is_a_clear_error() {
    if std::env::var_os(REFUSED).is_some() {
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "the_default_backend_follows_zero_backend"])
        .env("ZERO_BACKEND", "kqueue")
        .output()
        .unwrap();
    let all = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(all.contains("ZERO_BACKEND=kqueue: expected epoll, io_uring or auto"), "{all}");
}
