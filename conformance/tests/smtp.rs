//! The SMTP suite against zero's server (every check must pass), aiosmtpd and Postfix (where
//! they fail a check, `AIOSMTPD_FAILS` and `POSTFIX_FAILS` say why). All three tables are
//! printed (`cargo test -p zero-conformance --test smtp -- --nocapture` shows them).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zero_conformance::{print_table, smtp, Outcome};
use zero_core::tls::{SelfSigned, ServerTls};
use zero_core::{ClusterConfig, IoCluster, ListenOptions};
use zero_smtp::server::{Server, ServerConfig, Sink};

/// Checks aiosmtpd 1.4.3 (Debian 12) fails, and why.
const AIOSMTPD_FAILS: &[(&str, &str)] = &[
    ("pipelining", "does not offer PIPELINING (it answers pipelined commands in order, but does not say so)"),
    ("bdat", "does not offer CHUNKING"),
    ("bdat-then-data", "does not offer CHUNKING"),
];

/// Checks Postfix 3.7 (Debian 12, its defaults but for the settings in `postfix()`) fails,
/// and why.
const POSTFIX_FAILS: &[(&str, &str)] = &[
    ("mail-syntax", "strict_rfc821_envelopes = no (the default) takes MAIL FROM:addr> as it is"),
    ("command-line-long", "takes a 10,006-octet NOOP (it reads long lines in line_length_limit pieces)"),
    (
        "smuggle-lf.lf",
        "smtpd_forbid_bare_newline defaults to no before Postfix 3.9: a bare LF ends lines, so LF.LF ends the data and the smuggled commands run (CVE-2023-51764)",
    ),
    ("smuggle-crlf.lf", "the same: CRLF.LF ends the data"),
    ("smuggle-lf.crlf", "the same: LF.CRLF ends the data"),
    ("starttls-resets", "smtpd_helo_required = no (the default): MAIL is taken with no EHLO at all, so a reset cannot be seen this way"),
    ("auth-wrong", "no SASL without Dovecot or Cyrus, so AUTH is not offered"),
    ("auth-cancel", "no SASL without Dovecot or Cyrus, so AUTH is not offered"),
    ("auth-mechanism", "no SASL without Dovecot or Cyrus, so AUTH is not offered"),
    ("auth-good", "no SASL without Dovecot or Cyrus, so AUTH is not offered"),
];

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zero-conformance-smtp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn wait_port(addr: SocketAddr, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn spare_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// The suite's settings for a server with `cert`, and alice:s3cret if it has AUTH.
fn ctx(target: SocketAddr, cert: &SelfSigned) -> smtp::Ctx {
    smtp::Ctx {
        target,
        domain: "zero.test".into(),
        tls: Some((
            zero_conformance::tls_config(Some(cert.cert_pem.as_bytes())).unwrap(),
            "mx.zero.test".into(),
        )),
        auth: Some(("alice".into(), "s3cret".into())),
    }
}

/// Fails unless exactly the checks `expected` lists fail.
fn only_explained(server: &str, outcomes: &[Outcome], expected: &[(&str, &str)]) {
    let failed: Vec<&str> = outcomes.iter().filter(|o| o.failure.is_some()).map(|o| o.name).collect();
    let explained: Vec<&str> = expected.iter().map(|(name, _)| *name).collect();
    assert_eq!(failed, explained, "{server}: the failures changed: {outcomes:#?}");
    for (name, why) in expected {
        eprintln!("{server} fails {name}: {why}");
    }
}

#[test]
fn zero_server_passes_every_check() {
    let cert = SelfSigned::generate(&["mx.zero.test"]).unwrap();
    let (reserved, addr) = zero_core::reserve_port("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut config = ServerConfig::new("mx.zero.test");
    config.accept_domains = vec!["zero.test".into()];
    config.auth = true;
    config.tls = Some(
        ServerTls::from_pem(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes()).unwrap().build().unwrap().0,
    );
    // Two shards, as users run it.
    let cluster = IoCluster::start(ClusterConfig::new(2), move |_, io| {
        let check =
            Box::new(|c: &zero_smtp::server::Credentials| c.username == "alice" && c.secret == "s3cret");
        let mut server = Server::new(config.clone(), Sink::default()).with_authenticator(check);
        let mut opts = ListenOptions::default();
        opts.reuse_port = true;
        server.listen(io, addr, &opts)?;
        Ok(server)
    })
    .unwrap();
    drop(reserved);
    let outcomes = smtp::run(&ctx(addr, &cert), None);
    let failed = print_table("zero smtp server", &outcomes);
    assert_eq!(
        failed,
        0,
        "zero's server fails checks: {:?}",
        outcomes.iter().filter(|o| o.failure.is_some()).collect::<Vec<_>>()
    );
    cluster.stop().expect("the server stops cleanly (no shard panicked)");
}

/// A child process killed on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn write_cert(dir: &Path, cert: &SelfSigned) -> (PathBuf, PathBuf) {
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, &cert.cert_pem).unwrap();
    std::fs::write(&k, &cert.key_pem).unwrap();
    (c, k)
}

#[test]
fn aiosmtpd_fails_only_what_is_explained() {
    let found = Command::new("/usr/bin/python3").args(["-c", "import aiosmtpd"]).output().unwrap();
    assert!(found.status.success(), "python3-aiosmtpd is missing: run scripts/test.sh");
    let dir = scratch("aiosmtpd");
    let cert = SelfSigned::generate(&["mx.zero.test"]).unwrap();
    let (c, k) = write_cert(&dir, &cert);
    let addr = spare_addr();
    let script = format!("{}/../zero-smtp/tests/peers/aiosmtpd_server.py", env!("CARGO_MANIFEST_DIR"));
    let _server = Running(
        Command::new("/usr/bin/python3")
            .arg(script)
            .arg(addr.port().to_string())
            .arg(&dir)
            .arg("open")
            .args([&c, &k])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_port(addr, "aiosmtpd");
    let outcomes = smtp::run(&ctx(addr, &cert), None);
    print_table("aiosmtpd 1.4", &outcomes);
    only_explained("aiosmtpd", &outcomes, AIOSMTPD_FAILS);
}

/// Postfix stopped on drop.
struct Postfix(PathBuf);

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("postfix").arg("-c").arg(&self.0).arg("stop").output();
    }
}

/// A Postfix instance of the test's own: its smtpd on `addr` with STARTTLS, taking mail for
/// zero.test from loopback and discarding it.
fn postfix(dir: &Path, addr: SocketAddr, cert: &SelfSigned) -> Postfix {
    let found = Command::new("sh")
        .args(["-c", "command -v postfix && test -x /usr/lib/postfix/sbin/master"])
        .output()
        .unwrap();
    assert!(found.status.success(), "postfix is missing: run scripts/test.sh");
    let conf = dir.join("conf");
    let (queue, data) = (dir.join("queue"), dir.join("data"));
    for d in [&conf, &queue, &data] {
        std::fs::create_dir_all(d).unwrap();
    }
    // Postfix's own processes must reach everything under it.
    let _ = Command::new("chmod").args(["755"]).arg(dir).status();
    let _ = Command::new("chown").arg("postfix").arg(&data).status();
    let (c, k) = write_cert(dir, cert);
    let main = format!(
        "compatibility_level = 3.6\nqueue_directory = {q}\ndata_directory = {d}\nmeta_directory = /etc/postfix\n\
         mail_owner = postfix\nmyhostname = mx.zero.test\nmydestination =\ninet_interfaces = 127.0.0.1\n\
         inet_protocols = ipv4\nmynetworks = 127.0.0.0/8\nrelay_domains = zero.test\ndefault_transport = discard\n\
         relay_transport = discard\nsmtpd_tls_cert_file = {c}\nsmtpd_tls_key_file = {k}\n\
         smtpd_tls_security_level = may\nsmtpd_error_sleep_time = 0s\nmaillog_file_prefixes = {dir}\n\
         maillog_file = {dir}/postfix.log\n",
        q = queue.display(),
        d = data.display(),
        c = c.display(),
        k = k.display(),
        dir = dir.display(),
    );
    std::fs::write(conf.join("main.cf"), main).unwrap();
    // The stock master.cf, with the smtpd service on our address, nothing chrooted.
    let stock = std::fs::read_to_string("/etc/postfix/master.cf").unwrap();
    let master: String = stock
        .lines()
        .map(|line| {
            if line.starts_with("smtp      inet") {
                format!("{addr} inet n - n - - smtpd")
            } else {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() >= 8 && !line.starts_with(['#', ' ', '\t']) && f[4] == "y" {
                    let mut f = f;
                    f[4] = "n";
                    f.join(" ")
                } else {
                    line.to_string()
                }
            }
        })
        .map(|l| l + "\n")
        .collect();
    std::fs::write(conf.join("master.cf"), master).unwrap();
    let _ = Command::new("postfix").arg("-c").arg(&conf).arg("set-permissions").output();
    let started = Command::new("postfix").arg("-c").arg(&conf).arg("start").output().unwrap();
    assert!(started.status.success(), "postfix start: {}", String::from_utf8_lossy(&started.stderr));
    let running = Postfix(conf);
    wait_port(addr, "postfix");
    running
}

#[test]
fn postfix_fails_only_what_is_explained() {
    let dir = scratch("postfix");
    let cert = SelfSigned::generate(&["mx.zero.test"]).unwrap();
    let addr = spare_addr();
    let _postfix = postfix(&dir, addr, &cert);
    let outcomes = smtp::run(&ctx(addr, &cert), None);
    print_table("Postfix 3.7", &outcomes);
    only_explained("postfix", &outcomes, POSTFIX_FAILS);
}
