//! Operating `zero mqtt broker` from outside: Prometheus metrics scraped over HTTP, and the ops
//! socket's privileged commands (signed, replay-proof, audited, this user only).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the broker when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn zero() -> Command {
    Command::new(env!("CARGO_BIN_EXE_zero"))
}

fn spare_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `zero status --socket SOCKET ARGS`: (succeeded, stdout and stderr).
fn status(socket: &Path, args: &[&str]) -> (bool, String) {
    let out = zero().arg("status").arg("--socket").arg(socket).args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// One raw line to the ops socket, and its answer.
fn raw(socket: &Path, line: &str) -> String {
    let mut s = UnixStream::connect(socket).unwrap();
    s.write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer
}

/// GET `path` from the metrics listener: (status line, body).
fn get(port: u16, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

/// The sum over shards of a metric in Prometheus text.
fn sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

#[test]
fn metrics_are_scraped_and_privileged_commands_are_signed_fresh_audited_and_ours() {
    let dir: PathBuf = std::env::temp_dir().join(format!("zero-cli-ops-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (key, wrong_key, socket, audit) =
        (dir.join("key"), dir.join("wrong"), dir.join("ops.sock"), dir.join("audit.log"));
    std::fs::write(&key, "a secret of at least sixteen bytes\n").unwrap();
    std::fs::write(&wrong_key, "another secret, just as long\n").unwrap();
    let (port, metrics) = (spare_port(), spare_port());
    let mut broker = Server(
        zero()
            .args(["mqtt", "broker", "--no-persistence", "--shards", "2"])
            .args(["--listen", &format!("127.0.0.1:{port}"), "--metrics", &format!("127.0.0.1:{metrics}")])
            .arg("--ops-socket")
            .arg(&socket)
            .arg("--ops-key")
            .arg(&key)
            .arg("--audit-log")
            .arg(&audit)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() || TcpStream::connect(("127.0.0.1", metrics)).is_err() {
        assert!(Instant::now() < deadline, "the broker never came up");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777, 0o600);

    // Load: a subscriber that stays, and three QoS 1 messages to it.
    let mut sub = Command::new("mosquitto_sub")
        .args(["-p", &port.to_string(), "-t", "ops/#", "-q", "1", "-C", "3"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("mosquitto_sub runs (scripts/test.sh installs mosquitto-clients)");
    let mut first = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while sum(&get(metrics, "/metrics").1, "mqtt_subscriptions") < 1.0 {
        assert!(Instant::now() < deadline, "the subscription never showed in the metrics");
        std::thread::sleep(Duration::from_millis(20));
    }
    for i in 0..3 {
        let ok = Command::new("mosquitto_pub")
            .args(["-p", &port.to_string(), "-t", "ops/x", "-q", "1", "-m", &format!("m{i}")])
            .status()
            .unwrap();
        assert!(ok.success());
    }
    BufReader::new(sub.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert_eq!(first, "m0\n");
    assert!(sub.wait().unwrap().success());

    // Scraped as Prometheus does.
    let (status_line, text) = get(metrics, "/metrics");
    assert_eq!(status_line, "HTTP/1.1 200 OK");
    assert!(text.contains("# TYPE zero_connections gauge\n"), "{text}");
    assert!(text.contains("zero_connections{shard=\"1\"}"), "{text}");
    assert_eq!(sum(&text, "mqtt_publish_received_total"), 3.0, "{text}");
    assert_eq!(sum(&text, "mqtt_publish_sent_total"), 3.0, "{text}");
    assert!(sum(&text, "zero_accepted_total") >= 4.0, "{text}");
    assert!(sum(&text, "zero_received_bytes_total") > 0.0 && sum(&text, "zero_sent_bytes_total") > 0.0);
    assert_eq!(sum(&text, "zero_pool_slots"), 2048.0);
    assert!(text.contains("zero_shards_unresponsive 0\n"), "{text}");
    assert_eq!(get(metrics, "/healthz"), ("HTTP/1.1 200 OK".into(), "ok\n".into()));
    assert_eq!(get(metrics, "/readyz").0, "HTTP/1.1 200 OK");
    assert_eq!(get(metrics, "/nothing").0, "HTTP/1.1 404 Not Found");

    // Read-only commands need no key; privileged ones do, and the right one.
    let (ok, said) = status(&socket, &["snapshot"]);
    assert!(ok && said.contains("mqtt_sessions{shard="), "{said}");
    let (ok, said) = status(&socket, &["reset-peaks"]);
    assert!(!ok && said.contains("give the server's --key FILE"), "{said}");
    let (ok, said) = status(&socket, &["--key", wrong_key.to_str().unwrap(), "reset-peaks"]);
    assert!(!ok && said.contains("bad signature"), "{said}");
    assert!(raw(&socket, "reset-peaks").starts_with("error: unknown command"));
    let (ok, said) = status(&socket, &["--key", key.to_str().unwrap(), "reset-peaks"]);
    assert!(ok && said.contains("ok: 2 shard(s) reset"), "{said}");

    // A signed line sent twice: the second is a replay.
    let signed = zero_core::admin::sign(b"a secret of at least sixteen bytes", "reset-peaks");
    assert!(raw(&socket, &signed).starts_with("ok"));
    assert!(raw(&socket, &signed).contains("replay refused"));
    let stale = "reset-peaks nonce=1000-00 mac=00";
    assert!(raw(&socket, stale).starts_with("error"), "{}", raw(&socket, stale));

    // connections lists it; kill, with the id it shows, closes it.
    let mut idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let me = idle.local_addr().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        let (ok, said) = status(&socket, &["connections"]);
        assert!(ok, "{said}");
        if let Some(line) = said.lines().find(|l| l.contains(&me)) {
            break line.to_string();
        }
        assert!(Instant::now() < deadline, "the connection from {me} is not listed: {said}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let words: Vec<&str> = line.split_whitespace().collect();
    let (ok, said) = status(&socket, &["--key", key.to_str().unwrap(), "kill", words[0], words[1]]);
    assert!(ok, "{said}");
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert!(matches!(idle.read(&mut [0; 1]), Ok(0) | Err(_)), "kill did not close {me}");

    // Another user is refused even where the file mode would let it in.
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    // (A small Python client: this user cannot reach our binary under /root. It only reads:
    // the refusal comes before any command.)
    let probe = format!(
        "import socket; s = socket.socket(socket.AF_UNIX); s.connect({:?}); print(s.recv(200).decode())",
        socket.to_str().unwrap()
    );
    let other = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", &probe])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&other.stdout).to_string() + &String::from_utf8_lossy(&other.stderr);
    assert!(said.contains("error: not the server's user"), "{said}");

    // drain: the broker stops by itself, exit status 0.
    let (ok, said) = status(&socket, &["--key", key.to_str().unwrap(), "drain"]);
    assert!(ok && said.contains("draining"), "{said}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(s) = broker.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "drain did not stop the broker");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit}");

    let log = std::fs::read_to_string(&audit).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.iter().any(|l| l.contains("refused \"reset-peaks\": error: bad signature")), "{log}");
    assert!(lines.iter().any(|l| l.contains("accepted \"reset-peaks\"")), "{log}");
    assert!(lines.iter().any(|l| l.contains("replay refused")), "{log}");
    assert!(lines.iter().any(|l| l.contains("accepted \"drain\"")), "{log}");
    assert!(lines.iter().all(|l| l.contains(" uid=0 ") || l.contains(" uid=")), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}
