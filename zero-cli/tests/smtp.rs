//! `zero smtp serve` against real clients: python's smtplib and swaks (plain, pipelined,
//! SMTPUTF8, STARTTLS, AUTH), a raw client trying every SMTP smuggling variant, and
//! `kill -9` during bursts (every message that got its 250 is in the spool after).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn zero() -> Command {
    Command::new(env!("CARGO_BIN_EXE_zero"))
}

fn spare_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zero-smtp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `zero smtp serve` on a spare port, killed on drop.
struct Served {
    child: Child,
    port: u16,
}

impl Served {
    fn start(spool: &Path, extra: &[&str]) -> Served {
        let port = spare_port();
        let child = zero()
            .args(["smtp", "serve", "--listen", &format!("127.0.0.1:{port}"), "--accept-domain", "zero.test"])
            .arg("--spool")
            .arg(spool)
            .args(extra)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "zero smtp serve did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Served { child, port }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The ids `zero smtp queue list` shows.
fn queued(spool: &Path) -> Vec<String> {
    let out = zero().args(["smtp", "queue", "list", "--spool"]).arg(spool).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(' ').next().map(str::to_string))
        .collect()
}

fn queue_text(spool: &Path) -> String {
    let out = zero().args(["smtp", "queue", "list", "--text", "--spool"]).arg(spool).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn smtplib(port: u16, mode: &str) -> Vec<String> {
    let script = format!("{}/tests/smtp/smtplib_client.py", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("/usr/bin/python3").arg(script).arg(port.to_string()).arg(mode).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "smtplib {mode}: {text}{}", String::from_utf8_lossy(&out.stderr));
    text.lines().map(str::to_string).collect()
}

fn swaks(port: u16, args: &[&str]) -> String {
    let found = Command::new("sh").args(["-c", "command -v swaks"]).output().unwrap();
    assert!(found.status.success(), "swaks is missing: run scripts/test.sh");
    let out = Command::new("swaks")
        .args(["--server", &format!("127.0.0.1:{port}"), "--from", "a@client.test", "--helo", "client.test"])
        .args(args)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "swaks {args:?}: {text}");
    text
}

/// The queue id in swaks' transcript.
fn swaks_id(transcript: &str) -> String {
    transcript
        .lines()
        .find_map(|l| l.split("queued as ").nth(1))
        .expect("a 250 with an id")
        .trim()
        .to_string()
}

#[test]
fn smtplib_and_swaks_mail_lands_in_the_spool() {
    let spool = scratch("clients");
    let s = Served::start(&spool, &["--shards", "2"]);
    let mut sent: Vec<String> = smtplib(s.port, "plain");
    sent.extend(smtplib(s.port, "many"));
    sent.extend(smtplib(s.port, "utf8"));
    let pipelined = swaks(s.port, &["--to", "b@zero.test", "--pipeline"]);
    assert!(pipelined.contains("PIPELINING"), "{pipelined}");
    sent.push(format!("queued {}", swaks_id(&pipelined)));
    let mut sent: Vec<String> = sent.iter().map(|l| l.trim_start_matches("queued ").to_string()).collect();
    sent.sort();
    let mut have = queued(&spool);
    have.sort();
    assert_eq!(have, sent);
    let text = queue_text(&spool);
    assert!(text.contains("<用户@client.test> -> δοκιμή@zero.test"), "SMTPUTF8 kept: {text}");
    assert!(text.contains("\n.leading dot"), "dot-unstuffed: {text}");
    assert!(text.contains("Received: from client.test ([127.0.0.1])"), "{text}");
    // No open relay for strangers' domains: swaks from a non-trusted network cannot be
    // simulated on loopback, so the server trusts nobody here.
    let strict = Served::start(&scratch("strict"), &["--trusted", "192.0.2.0/24", "--shards", "1"]);
    let out = Command::new("swaks")
        .args([
            "--server",
            &format!("127.0.0.1:{}", strict.port),
            "--from",
            "a@client.test",
            "--to",
            "x@elsewhere.test",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("554 5.7.1 Relay access denied"));
}

#[test]
fn starttls_and_auth_with_smtplib_and_swaks() {
    let dir = scratch("tls");
    let cert = zero_core::tls::SelfSigned::generate(&["mx.zero.test"]).unwrap();
    std::fs::write(dir.join("cert.pem"), &cert.cert_pem).unwrap();
    std::fs::write(dir.join("key.pem"), &cert.key_pem).unwrap();
    std::fs::write(dir.join("users"), "alice:s3cret\n").unwrap();
    let spool = dir.join("spool");
    let tls_port = spare_port();
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    let users_path = dir.join("users");
    let s = Served::start(
        &spool,
        &[
            "--trusted",
            "192.0.2.0/24",
            "--tls-cert",
            cert_path.to_str().unwrap(),
            "--tls-key",
            key_path.to_str().unwrap(),
            "--users",
            users_path.to_str().unwrap(),
            "--listen-tls",
            &format!("127.0.0.1:{tls_port}"),
        ],
    );
    let lines = smtplib(s.port, "tls-auth");
    assert_eq!(lines[0], "refused 535");
    let mut sent = vec![lines[1].trim_start_matches("queued ").to_string()];
    let auth =
        ["--auth", "PLAIN", "--auth-user", "alice", "--auth-password", "s3cret", "--to", "x@elsewhere.test"];
    let starttls = swaks(s.port, &[&["--tls"][..], &auth].concat());
    assert!(starttls.contains("TLS started") && starttls.contains("235 2.7.0"), "{starttls}");
    sent.push(swaks_id(&starttls));
    let login = swaks(s.port, &[&["--tls", "--auth", "LOGIN"][..], &auth[2..]].concat());
    sent.push(swaks_id(&login));
    let implicit = swaks(tls_port, &[&["--tlsc"][..], &auth].concat());
    sent.push(swaks_id(&implicit));
    // Without TLS, AUTH is not offered, and relaying is refused.
    let out = Command::new("swaks")
        .args(["--server", &format!("127.0.0.1:{}", s.port), "--from", "a@client.test"])
        .args(auth)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && !text.contains("235"), "swaks {}:\n{text}", out.status);
    sent.sort();
    let mut have = queued(&spool);
    have.sort();
    assert_eq!(have, sent);
    assert!(queue_text(&spool).contains("with ESMTPSA id"), "the trace header says TLS and AUTH");
}

/// `zero smtp send` against our server: a built message three times on one connection
/// (headers as asked), STARTTLS required with AUTH and a DKIM signature, TLS from the
/// start; a refused recipient makes it fail and say so.
#[test]
fn zero_smtp_send() {
    let dir = scratch("send");
    let cert = zero_core::tls::SelfSigned::generate(&["mx.zero.test"]).unwrap();
    std::fs::write(dir.join("cert.pem"), &cert.cert_pem).unwrap();
    std::fs::write(dir.join("key.pem"), &cert.key_pem).unwrap();
    std::fs::write(dir.join("users"), "alice:s3cret\n").unwrap();
    let made = Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(dir.join("dkim.pem"))
        .output()
        .unwrap();
    assert!(made.status.success());
    let spool = dir.join("spool");
    let tls_port = spare_port();
    let path = |f: &str| dir.join(f).to_str().unwrap().to_string();
    let s = Served::start(
        &spool,
        &[
            "--trusted",
            "192.0.2.0/24",
            "--tls-cert",
            &path("cert.pem"),
            "--tls-key",
            &path("key.pem"),
            "--users",
            &path("users"),
            "--listen-tls",
            &format!("127.0.0.1:{tls_port}"),
        ],
    );
    let send = |args: &[&str]| {
        let out = zero().args(["smtp", "send", "--from", "joe@client.test"]).args(args).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let server = format!("127.0.0.1:{}", s.port);
    let (ok, said) = send(&[
        "--server",
        &server,
        "--to",
        "a@zero.test,b@zero.test",
        "--count",
        "3",
        "--subject",
        "hello there",
        "--header",
        "X-Test: yes",
    ]);
    assert!(ok, "{said}");
    assert_eq!(said.matches(": 250 ").count(), 6, "{said}");
    let ca = path("cert.pem");
    let secure = [
        "--starttls",
        "required",
        "--tls-ca",
        &ca,
        "--server-name",
        "mx.zero.test",
        "--auth",
        "alice:s3cret",
    ];
    let dkim = ["--dkim-key", &path("dkim.pem"), "--dkim-domain", "client.test", "--dkim-selector", "s1"];
    let (ok, said) = send(&[&["--server", &server, "--to", "x@elsewhere.test"][..], &secure, &dkim].concat());
    assert!(ok, "{said}");
    let implicit = format!("127.0.0.1:{tls_port}");
    let (ok, said) = send(&[
        "--server",
        &implicit,
        "--tls",
        "--tls-ca",
        &ca,
        "--server-name",
        "mx.zero.test",
        "--to",
        "c@zero.test",
    ]);
    assert!(ok, "{said}");
    assert_eq!(queued(&spool).len(), 5);
    let text = queue_text(&spool);
    assert_eq!(text.matches("Subject: hello there").count(), 3, "{text}");
    assert_eq!(text.matches("X-Test: yes").count(), 3, "{text}");
    assert!(
        text.contains("DKIM-Signature: v=1; a=ed25519-sha256") && text.contains("with ESMTPSA id"),
        "{text}"
    );
    // Relaying for a stranger is refused: the command fails and says which recipient.
    let (ok, said) = send(&["--server", &server, "--to", "a@zero.test,x@elsewhere.test"]);
    assert!(
        !ok && said.contains("<x@elsewhere.test>: not delivered") && said.contains("<a@zero.test>: 250"),
        "{said}"
    );
    // With the server stopped, `queue delete` changes the spool itself.
    drop(s);
    let first = queued(&spool)[0].clone();
    let out = zero().args(["smtp", "queue", "delete", "--spool"]).arg(&spool).arg(&first).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(queued(&spool).len(), 5, "six sent, one deleted");
    assert!(!queued(&spool).contains(&first));
}

/// Reads replies until one whose code line ends (a space after the code).
fn reply(r: &mut BufReader<TcpStream>) -> String {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap() == 0 {
            return all;
        }
        all += &line;
        if line.as_bytes().get(3) == Some(&b' ') {
            return all;
        }
    }
}

/// Sends a transaction whose text hides a second one behind a bare line ending; returns
/// the reply to the text.
fn smuggle(port: u16, hidden: &[u8]) -> String {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    reply(&mut r);
    w.write_all(b"EHLO client.test\r\n").unwrap();
    reply(&mut r);
    for line in [&b"MAIL FROM:<a@client.test>\r\n"[..], b"RCPT TO:<b@zero.test>\r\n", b"DATA\r\n"] {
        w.write_all(line).unwrap();
        reply(&mut r);
    }
    let text = [
        b"Subject: outer\r\n\r\nouter text",
        hidden,
        b"MAIL FROM:<ceo@zero.test>\r\nRCPT TO:<b@zero.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nspoof\r\n.\r\n",
    ]
    .concat();
    w.write_all(&text).unwrap();
    let answer = reply(&mut r);
    w.write_all(b"QUIT\r\n").unwrap();
    let mut rest = String::new();
    let _ = r.read_to_string(&mut rest);
    format!("{answer}{rest}")
}

#[test]
fn smuggling_variants_never_split_a_message() {
    let variants: [&[u8]; 6] = [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r\n.\r", b"\r.\r\n"];
    let strict_spool = scratch("smuggle");
    let strict = Served::start(&strict_spool, &["--shards", "1"]);
    for hidden in variants {
        let said = smuggle(strict.port, hidden);
        assert!(said.starts_with("554 5.6.0"), "{hidden:?}: {said}");
        assert!(said.ends_with("221 2.0.0 localhost Bye\r\n"), "{hidden:?}: one reply, then QUIT's: {said}");
    }
    assert!(queued(&strict_spool).is_empty());
    let lenient_spool = scratch("smuggle-normalize");
    let lenient = Served::start(&lenient_spool, &["--shards", "1", "--normalize-bare-line-endings"]);
    for hidden in variants {
        let said = smuggle(lenient.port, hidden);
        assert!(said.starts_with("250 2.0.0 Ok: queued"), "{hidden:?}: {said}");
    }
    assert_eq!(queued(&lenient_spool).len(), variants.len(), "one message each, the smuggled one inside it");
    let text = queue_text(&lenient_spool);
    assert_eq!(text.matches("MAIL FROM:<ceo@zero.test>\r\n").count(), variants.len(), "{text}");
    assert!(!text.contains("\n.\n") && !text.replace("\r\n", "").contains('\r'), "CRLF only: {text:?}");
}

/// Four clients sending as fast as they can; the server is killed with SIGKILL mid-burst,
/// five times over. Every id a client saw in a 250 is in the spool afterwards.
#[test]
fn every_acknowledged_message_survives_kill_9() {
    let spool = scratch("crash");
    let script = format!("{}/tests/smtp/smtplib_client.py", env!("CARGO_MANIFEST_DIR"));
    let mut acked: Vec<String> = Vec::new();
    for round in 0..5 {
        let mut s = Served::start(&spool, &["--shards", "2"]);
        let clients: Vec<Child> = (0..4)
            .map(|_| {
                Command::new("/usr/bin/python3")
                    .args([&script, &s.port.to_string(), "many"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        std::thread::sleep(Duration::from_millis(150 + 70 * round));
        s.kill();
        for c in clients {
            let out = c.wait_with_output().unwrap();
            acked.extend(
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter_map(|l| l.strip_prefix("queued ").map(str::to_string)),
            );
        }
    }
    assert!(acked.len() >= 5, "the bursts got some messages through: {}", acked.len());
    let have = queued(&spool);
    let lost: Vec<&String> = acked.iter().filter(|id| !have.contains(id)).collect();
    assert!(lost.is_empty(), "acknowledged and lost: {lost:?}");
    // And the spool opens again after all that.
    let s = Served::start(&spool, &["--shards", "2"]);
    smtplib(s.port, "plain");
    eprintln!("{} messages acknowledged across five kills, none lost", acked.len());
}
