//! Every `zero` server answers `zero status` on its ops socket, and on SIGTERM drains (each
//! client hears the protocol's goodbye, then the close), exits 0 and says so. The MQTT
//! broker's SIGTERM test under load is in `broker.rs`, its metrics and privileged commands in
//! `ops.rs`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use zero_core::machine::Machine;
use zero_fix::session::{Event, MemoryStore, Role, Session, SessionConfig};

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spare_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `zero ARGS` (with an ops socket), checks `zero status` against it, and connects
/// to it on `port`.
fn start(args: &[&str], port: u16) -> (Server, TcpStream) {
    let socket = std::env::temp_dir().join(format!("zero-cli-ops-{}-{port}.sock", std::process::id()));
    let child = Command::new(env!("CARGO_BIN_EXE_zero"))
        .args(args)
        .args(["--shutdown-grace", "5", "--ops-socket"])
        .arg(&socket)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("zero starts");
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // The ops socket comes up just after the listeners.
        if let (true, Ok(c)) = (socket.exists(), TcpStream::connect(("127.0.0.1", port))) {
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let status = Command::new(env!("CARGO_BIN_EXE_zero"))
                .arg("status")
                .arg("--socket")
                .arg(&socket)
                .output()
                .unwrap();
            let said = String::from_utf8_lossy(&status.stdout);
            assert!(
                status.status.success(),
                "zero status against zero {args:?}: {said}{}",
                String::from_utf8_lossy(&status.stderr)
            );
            assert!(said.starts_with("healthz: ok\nreadyz: ok\nstats: ok\nshard 0: "), "{said}");
            return (server, c);
        }
        assert!(Instant::now() < deadline, "zero {args:?} never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends SIGTERM; returns the client's bytes until the close, and the server's stderr once it
/// exited 0.
fn terminate(mut server: Server, client: TcpStream) -> (String, String) {
    let mut reader = BufReader::new(client);
    let pid = server.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let mut said = String::new();
    reader.read_to_string(&mut said).expect("the server closes the connection");
    drop(reader); // our close lets the drain finish
    let deadline = Instant::now() + Duration::from_secs(8);
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the server did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    server.0.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(status.success(), "exit status {status}:\n{stderr}");
    assert!(stderr.contains("SIGTERM received: draining"), "{stderr}");
    assert!(stderr.contains("drained in time; stopped") && !stderr.contains(" 0 of "), "{stderr}");
    (said, stderr)
}

#[test]
fn the_echo_server_drains_on_sigterm() {
    let port = spare_port();
    let (server, mut c) =
        start(&["echo", "serve", "--listen", &format!("127.0.0.1:{port}"), "--shards", "2"], port);
    c.write_all(b"ping").unwrap();
    let mut back = [0; 4];
    c.read_exact(&mut back).unwrap();
    let (said, _) = terminate(server, c);
    assert_eq!(said, "", "the echo server says nothing more: it closes");
}

#[test]
fn the_ftp_server_says_421_on_sigterm() {
    let port = spare_port();
    let root = std::env::temp_dir().join(format!("zero-cli-ftp-drain-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    let listen = format!("127.0.0.1:{port}");
    let args = [
        "ftp",
        "serve",
        "--anonymous",
        "--listen",
        &listen,
        "--shards",
        "2",
        "--root",
        root.to_str().unwrap(),
    ];
    let (server, c) = start(&args, port);
    let mut greeting = String::new();
    BufReader::new(c.try_clone().unwrap()).read_line(&mut greeting).unwrap();
    assert!(greeting.starts_with("220"), "{greeting}");
    let (said, _) = terminate(server, c);
    assert_eq!(said, "421 Service shutting down, closing control connection.\r\n");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn the_smtp_server_says_421_on_sigterm() {
    let port = spare_port();
    let spool = std::env::temp_dir().join(format!("zero-cli-smtp-drain-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&spool);
    let listen = format!("127.0.0.1:{port}");
    let args = [
        "smtp",
        "serve",
        "--listen",
        &listen,
        "--accept-domain",
        "zero.test",
        "--spool",
        spool.to_str().unwrap(),
    ];
    let (server, mut c) = start(&args, port);
    let mut reader = BufReader::new(c.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("220"), "{line}");
    c.write_all(b"EHLO drain.test\r\n").unwrap();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line.starts_with("250 ") {
            break;
        }
    }
    drop(reader);
    let (said, _) = terminate(server, c);
    assert!(said.starts_with("421 4.3.2 ") && said.contains("Service shutting down"), "{said:?}");
    let _ = std::fs::remove_dir_all(&spool);
}

/// A logged-on FIX session is logged out (Logout, "Server shutting down") before the close.
#[test]
fn the_fix_acceptor_logs_sessions_out_on_sigterm() {
    let port = spare_port();
    let dir = std::env::temp_dir().join(format!("zero-cli-fix-drain-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("acceptor.toml");
    let settings = format!(
        "listen = \"127.0.0.1:{port}\"\nstore = \"{}\"\n\n[[session]]\nbegin_string = \"FIX.4.4\"\n\
         sender_comp_id = \"BROKER\"\ntarget_comp_id = \"CLIENT\"\n",
        dir.join("store").display()
    );
    std::fs::write(&config, settings).unwrap();
    let (server, c) = start(&["fix", "acceptor", "--config", config.to_str().unwrap()], port);
    drop(c);
    // A counterparty logged on (a zero-fix initiator over a plain socket).
    let mut session = Session::new(
        SessionConfig::new(Role::Initiator, "CLIENT", "BROKER"),
        MemoryStore::default(),
        Instant::now(),
        SystemTime::now().into(),
    );
    assert!(session.wants_connect(Instant::now() + Duration::from_secs(3600)));
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    session.handle_connected(Instant::now());
    let mut signalled = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    let cause = 'session: loop {
        assert!(Instant::now() < deadline, "the session never ended");
        while let Some(bytes) = session.poll_transmit() {
            tcp.write_all(bytes).unwrap();
        }
        let mut buf = [0u8; 4096];
        match tcp.read(&mut buf) {
            Ok(0) => break 'session None,
            Ok(n) => session.handle_input(Instant::now(), &buf[..n]),
            Err(_) => {}
        }
        while let Some(event) = session.poll_event() {
            if let Event::Disconnected(cause) = event {
                break 'session Some(format!("{cause:?}"));
            }
        }
        if session.is_logged_on() && !signalled {
            assert!(Command::new("kill")
                .args(["-TERM", &server.0.id().to_string()])
                .status()
                .unwrap()
                .success());
            signalled = true;
        }
    };
    // The acceptor logged out first, saying why; our session answered it.
    assert_eq!(cause.as_deref(), Some("LoggedOut(Some(\"Server shutting down\"))"));
    while let Some(bytes) = session.poll_transmit() {
        let _ = tcp.write_all(bytes);
    }
    drop(tcp);
    let mut server = server;
    let deadline = Instant::now() + Duration::from_secs(8);
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the acceptor did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    server.0.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(status.success() && stderr.contains("1 of 1 shard(s) drained in time"), "{status}: {stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn log_format_json_writes_one_object_per_line() {
    let port = spare_port();
    let mut server = Server(
        Command::new(env!("CARGO_BIN_EXE_zero"))
            .args(["--log-format", "json", "echo", "serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("zero starts"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "zero echo serve never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(Command::new("kill").args(["-TERM", &server.0.id().to_string()]).status().unwrap().success());
    assert!(server.0.wait().unwrap().success());
    let mut stderr = String::new();
    server.0.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    // Log records are JSON; the few lines printed for people ("zero echo: ...") are not logs.
    let records: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| !l.starts_with("zero "))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        records.iter().any(|r| r["level"] == "INFO" && r["fields"]["message"] == "echo server running"),
        "{stderr}"
    );
}
