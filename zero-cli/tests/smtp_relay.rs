//! `zero smtp relay` delivering to aiosmtpd: what it accepts arrives once, a refused
//! recipient comes back to the sender as a delivery status report, a transient refusal is
//! retried, and `kill -9` during bursts loses nothing (and delivers twice only what was in
//! flight).

use std::io::{BufRead, BufReader};
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
    let dir = std::env::temp_dir().join(format!("zero-relay-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Running(Child);

impl Running {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// aiosmtpd saving what it accepts into `dir` (`N.eml`, `N.env`).
fn destination(dir: &Path) -> (Running, u16) {
    destination_on(dir, spare_port())
}

/// [`destination`] on `port`.
fn destination_on(dir: &Path, port: u16) -> (Running, u16) {
    let found = Command::new("/usr/bin/python3").args(["-c", "import aiosmtpd"]).output().unwrap();
    assert!(found.status.success(), "python3-aiosmtpd is missing: run scripts/test.sh");
    let script = format!("{}/../zero-smtp/tests/peers/aiosmtpd_server.py", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new("/usr/bin/python3")
        .arg(script)
        .arg(port.to_string())
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    (Running(child), port)
}

/// `zero smtp relay` on a spare port, everything routed to `to`.
fn relay(dir: &Path, to: u16) -> (Running, u16) {
    relay_with(dir, to, "", 1)
}

/// `zero smtp relay` as [`relay`], with `more` in its file (top-level keys first) and its
/// first retry after `first_retry_secs`.
fn relay_with(dir: &Path, to: u16, more: &str, first_retry_secs: u64) -> (Running, u16) {
    let port = spare_port();
    let config = format!(
        "hostname = \"relay.zero.test\"\nspool = \"{}\"\nlisten = \"127.0.0.1:{port}\"\naccept_domains = [\"zero.test\"]\n\
         shards = 2\n{more}[queue]\nfirst_retry_secs = {first_retry_secs}\n[[route]]\ndomain = \"*\"\nhosts = [\"127.0.0.1:{to}\"]\n",
        dir.join("spool").display()
    );
    std::fs::write(dir.join("relay.toml"), config).unwrap();
    let child = zero()
        .args(["smtp", "relay", "--config"])
        .arg(dir.join("relay.toml"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_port(port);
    (Running(child), port)
}

/// swaks sends one message from `from` to b@zero.test through the relay on `port`, with
/// `Subject: subject` (the relay must answer 250).
fn send(port: u16, from: &str, subject: &str) {
    let out = Command::new("swaks")
        .args(["--server", &format!("127.0.0.1:{port}"), "--from", from, "--to", "b@zero.test"])
        .args(["--header", &format!("Subject: {subject}")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

/// The files aiosmtpd saved: (envelope, text) each.
fn saved(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for n in 1.. {
        let Ok(text) = std::fs::read_to_string(dir.join(format!("{n}.eml"))) else { break };
        out.push((std::fs::read_to_string(dir.join(format!("{n}.env"))).unwrap_or_default(), text));
    }
    out
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn delivered_retried_and_bounced() {
    let dir = scratch("bounce");
    let dest_dir = dir.join("dest");
    std::fs::create_dir_all(&dest_dir).unwrap();
    let (_dest, dest_port) = destination(&dest_dir);
    let (_relay, port) = relay(&dir, dest_port);
    let out = Command::new("swaks")
        .args(["--server", &format!("127.0.0.1:{port}"), "--from", "sender@client.test"])
        .args([
            "--to",
            "b@zero.test,reject@zero.test,later@zero.test",
            "--header",
            "Subject: three recipients",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    // b at once; later@ after its 451 and a retry; the bounce for reject@ to the sender.
    wait_for("three deliveries", || saved(&dest_dir).len() >= 3);
    std::thread::sleep(Duration::from_millis(300));
    let saved = saved(&dest_dir);
    assert_eq!(saved.len(), 3, "{saved:#?}");
    let to_b = saved.iter().filter(|(env, _)| env.lines().nth(1) == Some("b@zero.test")).count();
    let to_later = saved.iter().filter(|(env, _)| env.lines().nth(1) == Some("later@zero.test")).count();
    assert_eq!((to_b, to_later), (1, 1), "{saved:#?}");
    let (env, report) = saved
        .iter()
        .find(|(env, _)| env.starts_with("\n") || env.starts_with("<>"))
        .expect("a report from the null sender");
    assert_eq!(env.lines().nth(1), Some("sender@client.test"), "{env}");
    assert!(
        report.contains("Final-Recipient: rfc822; reject@zero.test\r\nAction: failed\r\nStatus: 5.1.1"),
        "{report}"
    );
    assert!(report.contains("Subject: three recipients"), "the original's headers: {report}");
    // Nothing left in the spool.
    let list = zero().args(["smtp", "queue", "list", "--spool"]).arg(dir.join("spool")).output().unwrap();
    assert!(
        String::from_utf8_lossy(&list.stderr).contains("0 messages"),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
}

/// The relay signs mail from its clients for its DKIM domains (one Ed25519 key, one RSA
/// key, from openssl): dkimpy verifies what arrives, with the records `zero smtp
/// dkim-record` prints; mail for other domains goes unsigned.
#[test]
fn outbound_mail_is_dkim_signed() {
    let dir = scratch("dkim");
    let dest_dir = dir.join("dest");
    std::fs::create_dir_all(&dest_dir).unwrap();
    let mut more = String::new();
    let mut records = Vec::new();
    for (domain, alg) in [("ed.test", "ed25519"), ("rsa.test", "RSA")] {
        let key = dir.join(format!("{domain}.pem"));
        let made =
            Command::new("openssl").args(["genpkey", "-algorithm", alg, "-out"]).arg(&key).output().unwrap();
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
        more.push_str(&format!(
            "[[dkim]]\ndomain = \"{domain}\"\nselector = \"s1\"\nkey = \"{}\"\n",
            key.display()
        ));
        let record = zero().args(["smtp", "dkim-record", "--key"]).arg(&key).output().unwrap();
        assert!(record.status.success(), "{}", String::from_utf8_lossy(&record.stderr));
        let record = String::from_utf8(record.stdout).unwrap();
        records.push(format!("\"s1._domainkey.{domain}\": \"{}\"", record.trim()));
    }
    let records_file = dir.join("records.json");
    std::fs::write(&records_file, format!("{{{}}}", records.join(", "))).unwrap();
    let (_dest, dest_port) = destination(&dest_dir);
    let (_relay, port) = relay_with(&dir, dest_port, &more, 1);
    for from in ["joe@ed.test", "joe@rsa.test", "joe@other.test"] {
        send(port, from, &format!("signed by {from}"));
    }
    wait_for("three deliveries", || saved(&dest_dir).len() >= 3);
    let script = format!("{}/../zero-smtp/tests/peers/dkimpy_peer.py", env!("CARGO_MANIFEST_DIR"));
    for (_, text) in saved(&dest_dir) {
        let mut child = Command::new("/usr/bin/python3")
            .args([script.as_str(), "verify", records_file.to_str().unwrap()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(
            &mut child.stdin.take().unwrap(),
            text.replace("\r\n", "\n").replace('\n', "\r\n").as_bytes(),
        )
        .unwrap();
        let verdicts = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
        if text.contains("signed by joe@other.test") {
            assert_eq!(verdicts, "", "{text}");
        } else {
            assert_eq!(verdicts, "pass\n", "{text}");
        }
    }
}

/// Mail from outside is checked on arrival (SPF records and DKIM keys served by dnsmasq):
/// a good dkimpy signature passes, an altered message fails, an unsigned one is `none`, a
/// forged Authentication-Results in our name is dropped; SPF passes loopback for one
/// domain and fails it for another.
#[test]
fn inbound_mail_gets_authentication_results() {
    let dir = scratch("verify");
    let dest_dir = dir.join("dest");
    std::fs::create_dir_all(&dest_dir).unwrap();
    // An Ed25519 key: its record from `zero smtp dkim-record`, its seed for dkimpy.
    let key = dir.join("key.pem");
    let made = Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(made.status.success());
    // The seed is the last 32 bytes of the PKCS#8 DER.
    let seed = Command::new("sh")
        .arg("-c")
        .arg(format!("openssl pkey -outform DER -in {} | tail -c 32 | base64", key.display()))
        .output()
        .unwrap()
        .stdout;
    std::fs::write(dir.join("seed"), seed).unwrap();
    let record =
        String::from_utf8(zero().args(["smtp", "dkim-record", "--key"]).arg(&key).output().unwrap().stdout)
            .unwrap();
    let dns_port = spare_port();
    let _dns = Running(
        Command::new("dnsmasq")
            .args([
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
            ])
            .arg(format!("--port={dns_port}"))
            .arg("--user=root")
            .arg(format!("--pid-file={}", dir.join("dnsmasq.pid").display()))
            .arg("--local=/signed.test/")
            .arg(format!("--txt-record=s1._domainkey.signed.test,{}", record.trim()))
            .arg("--local=/strict.test/")
            .arg("--txt-record=signed.test,v=spf1 ip4:127.0.0.0/8 -all")
            .arg("--txt-record=strict.test,v=spf1 -all")
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq: run scripts/test.sh"),
    );
    let (_dest, dest_port) = destination(&dest_dir);
    // Loopback is not trusted here: every client is from outside.
    let more = format!("check_inbound = true\ndns = [\"127.0.0.1:{dns_port}\"]\ntrusted = []\n");
    let (_relay, port) = relay_with(&dir, dest_port, &more, 1);

    let script = format!("{}/../zero-smtp/tests/peers/dkimpy_peer.py", env!("CARGO_MANIFEST_DIR"));
    let text = |subject: &str| {
        format!("From: joe@signed.test\r\nTo: b@zero.test\r\nSubject: {subject}\r\nDate: Mon, 7 Dec 2026 08:00:00 +0000\r\nMessage-ID: <{subject}@signed.test>\r\n\r\nHello.\r\n")
    };
    let sign = |message: &str| {
        let mut child = Command::new("/usr/bin/python3")
            .args([script.as_str(), "sign", "s1", "signed.test"])
            .arg(dir.join("seed"))
            .args(["ed25519-sha256", "relaxed/relaxed"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), message.as_bytes()).unwrap();
        let field = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
        format!("{}{message}", field.replace("\r\n", "\n").replace('\n', "\r\n"))
    };
    let good = sign(&text("good"));
    let altered = sign(&text("altered")).replace("Hello.", "Goodbye.");
    let forged = format!(
        "Authentication-Results: relay.zero.test; dkim=pass header.d=signed.test\r\n{}",
        text("forged")
    );
    // (message, MAIL FROM, SPF's verdict, DKIM's)
    let sent = [
        (
            good,
            "joe@signed.test",
            "spf=pass smtp.mailfrom=joe@signed.test",
            "dkim=pass header.d=signed.test header.s=s1 header.a=ed25519-sha256",
        ),
        (altered, "joe@signed.test", "spf=pass", "dkim=fail (the body hash did not verify)"),
        (forged, "joe@strict.test", "spf=fail smtp.mailfrom=joe@strict.test", "dkim=none"),
    ];
    for (i, (message, from, ..)) in sent.iter().enumerate() {
        let file = dir.join(format!("m{i}.eml"));
        std::fs::write(&file, message).unwrap();
        let out = Command::new("swaks")
            .args(["--server", &format!("127.0.0.1:{port}"), "--from", from, "--to", "b@zero.test", "--data"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    }
    wait_for("three deliveries", || saved(&dest_dir).len() >= 3);
    let saved = saved(&dest_dir);
    for (message, _, spf, dkim) in &sent {
        let subject = message.lines().find(|l| l.starts_with("Subject:")).unwrap();
        let (_, arrived) = saved
            .iter()
            .find(|(_, t)| t.contains(subject))
            .unwrap_or_else(|| panic!("{subject}: {saved:#?}"));
        let results: Vec<&str> = arrived
            .split("\n")
            .filter(|l| {
                l.starts_with("Authentication-Results:")
                    || l.starts_with("\tdkim=")
                    || l.starts_with("\tspf=")
            })
            .collect();
        assert_eq!(results.len(), 3, "{subject}: one header of ours, nothing forged: {arrived}");
        assert!(results[1].contains(spf), "{subject}: {results:?}");
        assert!(results[2].contains(dkim), "{subject}: {results:?}");
    }
}

/// `zero smtp queue flush` and `delete` on a running relay: three messages wait (the
/// destination is down, the next retry an hour away); one is deleted, the destination comes
/// up, a flush delivers the other two at once; no bounce for the deleted one.
#[test]
fn queue_flush_and_delete() {
    let dir = scratch("flush");
    let dest_dir = dir.join("dest");
    std::fs::create_dir_all(&dest_dir).unwrap();
    let dest_port = spare_port();
    let (_relay, port) = relay_with(&dir, dest_port, "", 3600);
    for n in 0..3 {
        send(port, "joe@client.test", &format!("queued {n}"));
    }
    let spool = dir.join("spool");
    let list = || {
        let out = zero().args(["smtp", "queue", "list", "--spool"]).arg(&spool).output().unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| l.split(' ').next().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    wait_for("three queued", || list().len() == 3);
    let ids = list();
    let deleted =
        zero().args(["smtp", "queue", "delete", "--spool"]).arg(&spool).arg(&ids[0]).output().unwrap();
    assert!(deleted.status.success(), "{}", String::from_utf8_lossy(&deleted.stderr));
    let again =
        zero().args(["smtp", "queue", "delete", "--spool"]).arg(&spool).arg(&ids[0]).output().unwrap();
    assert!(!again.status.success(), "a second delete finds nothing");
    assert_eq!(list().len(), 2);
    let (_dest, _) = destination_on(&dest_dir, dest_port);
    std::thread::sleep(Duration::from_millis(500));
    assert!(saved(&dest_dir).is_empty(), "nothing is due before the flush");
    let flushed = zero().args(["smtp", "queue", "flush", "--spool"]).arg(&spool).output().unwrap();
    assert!(flushed.status.success(), "{}", String::from_utf8_lossy(&flushed.stderr));
    wait_for("two deliveries", || saved(&dest_dir).len() >= 2);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(saved(&dest_dir).len(), 2, "the deleted message is neither delivered nor bounced");
    wait_for("an empty queue", || list().is_empty());
}

/// Queue ids in the Received headers the relay wrote, as delivered.
fn delivered_ids(dest: &Path) -> Vec<String> {
    saved(dest)
        .iter()
        .filter_map(|(_, text)| {
            text.split(" id ")
                .nth(1)
                .map(|rest| rest.split(|c: char| !c.is_ascii_hexdigit()).next().unwrap_or("").to_string())
        })
        .collect()
}

/// Four clients sending to the relay while it is killed with SIGKILL ten times and started
/// again on the same spool: every message a client saw acknowledged reaches the
/// destination. A message can arrive twice only when a kill falls between the end of its
/// text and the destination's reply (RFC 1047: no SMTP client can know then whether it was
/// taken), so at most the messages in flight at each kill: one per connection, of which
/// there are at most `per_destination` (2) per shard (2).
#[test]
fn kill_9_during_bursts_loses_nothing() {
    let dir = scratch("crash");
    let dest_dir = dir.join("dest");
    std::fs::create_dir_all(&dest_dir).unwrap();
    let (_dest, dest_port) = destination(&dest_dir);
    let script = format!("{}/tests/smtp/smtplib_client.py", env!("CARGO_MANIFEST_DIR"));
    let mut acked: Vec<String> = Vec::new();
    let mut port = 0;
    // Ten kills here; ZERO_SMTP_KILLS=50 for the fifty (about two minutes).
    let kills: u64 = std::env::var("ZERO_SMTP_KILLS").ok().and_then(|k| k.parse().ok()).unwrap_or(10);
    for round in 0..kills {
        let (mut r, p) = relay(&dir, dest_port);
        port = p;
        let clients: Vec<Child> = (0..4)
            .map(|_| {
                Command::new("/usr/bin/python3")
                    .args([&script, &port.to_string(), "many"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100 + 40 * (round % 10)));
        r.kill();
        for c in clients {
            let out = c.wait_with_output().unwrap();
            acked.extend(
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter_map(|l| l.strip_prefix("queued ").map(str::to_string)),
            );
        }
    }
    // A last start delivers what the kills left in the spool.
    let (_r, _) = relay(&dir, dest_port);
    let _ = port;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ids = delivered_ids(&dest_dir);
        let missing: Vec<&String> = acked.iter().filter(|a| !ids.contains(a)).collect();
        if missing.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            let list =
                zero().args(["smtp", "queue", "list", "--spool"]).arg(dir.join("spool")).output().unwrap();
            panic!(
                "acknowledged but not delivered: {missing:?}\nthe spool holds:\n{}{}",
                String::from_utf8_lossy(&list.stdout),
                String::from_utf8_lossy(&list.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let ids = delivered_ids(&dest_dir);
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    let twice = ids.len() - unique.len();
    assert!(twice as u64 <= kills * 2 * 2, "{twice} delivered twice: more than were in flight at the kills");
    assert!(acked.len() as u64 >= kills, "the bursts got messages through: {}", acked.len());
    eprintln!(
        "{} acknowledged, {} delivered ({twice} twice), across {kills} kills",
        acked.len(),
        unique.len()
    );
}

/// Messages a relay left in its spool go out as soon as it starts again, on every shard,
/// with no client connecting to wake it: eight messages queued for a destination that was
/// down, the relay stopped, the destination up, the relay started and never connected to.
#[test]
fn a_restarted_relay_delivers_without_being_woken() {
    let dir = scratch("wake");
    let dest_dir = dir.join("dest");
    std::fs::create_dir_all(&dest_dir).unwrap();
    let dest_port = spare_port();
    let (mut first, port) = relay_with(&dir, dest_port, "", 3600);
    for n in 0..8 {
        send(port, "joe@client.test", &format!("waiting {n}"));
    }
    first.kill();
    let (_dest, _) = destination_on(&dest_dir, dest_port);
    // Started again on the same file, told apart from a client only by its own stderr line.
    let mut again = zero()
        .args(["smtp", "relay", "--config"])
        .arg(dir.join("relay.toml"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(again.stderr.take().unwrap()).read_line(&mut line).unwrap();
    let _running = Running(again);
    wait_for("the eight waiting messages", || saved(&dest_dir).len() >= 8);
}
