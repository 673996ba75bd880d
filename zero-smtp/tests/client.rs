//! zero-smtp's client against real servers: aiosmtpd (python, with and without required
//! STARTTLS; what it saved is compared byte for byte), Postfix's smtp-sink, and our own
//! server on a shard.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zero_core::Target;
use zero_smtp::client::{send_blocking, ClientConfig, Outgoing, TlsClient, TlsPolicy, To};

fn spare_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zero-smtp-client-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A child process killed on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn aiosmtpd(port: u16, dir: &std::path::Path, tls: Option<(&str, &str)>) -> Running {
    let found = Command::new("/usr/bin/python3").args(["-c", "import aiosmtpd"]).output().unwrap();
    assert!(found.status.success(), "python3-aiosmtpd is missing: run scripts/test.sh");
    let script = format!("{}/tests/peers/aiosmtpd_server.py", env!("CARGO_MANIFEST_DIR"));
    let mut c = Command::new("/usr/bin/python3");
    c.arg(script).arg(port.to_string()).arg(dir);
    if let Some((cert, key)) = tls {
        c.args(["tls", cert, key]);
    }
    let mut child = c.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    Running(child)
}

fn message(to: &[&str], text: &str) -> Outgoing {
    Outgoing {
        from: "a@client.test".into(),
        to: to.iter().map(|t| To::new(t)).collect(),
        text: Arc::from(text.as_bytes()),
        eight_bit: false,
        smtputf8: false,
        requiretls: false,
        ret: None,
        envid: None,
    }
}

fn target(port: u16) -> Target {
    Target::tcp(SocketAddr::from(([127, 0, 0, 1], port)))
}

#[test]
fn to_aiosmtpd_text_and_envelope_arrive_as_sent() {
    let dir = scratch("aiosmtpd");
    let port = spare_port();
    let _server = aiosmtpd(port, &dir, None);
    let texts = [
        "Subject: one\r\n\r\nfirst\r\n",
        "Subject: two\r\n\r\n.a line starting with a dot\r\n..two dots\r\n.\r\nlast\r\n",
        "Subject: three\r\n\r\nno final line end",
    ];
    let mut utf8 = message(&["δοκιμή@zero.test"], "Subject: utf8\r\n\r\nτεστ\r\n");
    (utf8.smtputf8, utf8.eight_bit) = (true, true);
    let mut messages: Vec<Outgoing> =
        texts.iter().map(|t| message(&["b@zero.test", "c@zero.test"], t)).collect();
    messages.push(utf8);
    let (outcomes, tls) =
        send_blocking(target(port), ClientConfig::new("client.test"), messages, Duration::from_secs(10))
            .unwrap();
    assert!(!tls);
    for (i, o) in outcomes.iter().enumerate() {
        assert!(
            o.iter().all(|r| r.as_ref().is_ok_and(|ok| ok.text() == format!("saved as {}", i + 1))),
            "{i}: {o:?}"
        );
    }
    for (i, text) in texts.iter().enumerate() {
        let saved = std::fs::read_to_string(dir.join(format!("{}.eml", i + 1))).unwrap();
        // aiosmtpd stores the text as received, minus the ending; a final line end is added
        // by the client where the text had none.
        let want = if text.ends_with("\r\n") { text.to_string() } else { format!("{text}\r\n") };
        assert_eq!(saved, want, "message {}", i + 1);
        let env = std::fs::read_to_string(dir.join(format!("{}.env", i + 1))).unwrap();
        assert!(env.starts_with("a@client.test\nb@zero.test c@zero.test\n"), "{env}");
    }
    let env = std::fs::read_to_string(dir.join("4.env")).unwrap();
    assert!(
        env.contains("δοκιμή@zero.test") && env.contains("SMTPUTF8") && env.contains("BODY=8BITMIME"),
        "{env}"
    );
}

#[test]
fn required_starttls_to_aiosmtpd_and_no_downgrade_without_it() {
    let dir = scratch("aiosmtpd-tls");
    let cert = zero_core::tls::SelfSigned::generate(&["mx.zero.test"]).unwrap();
    std::fs::write(dir.join("cert.pem"), &cert.cert_pem).unwrap();
    std::fs::write(dir.join("key.pem"), &cert.key_pem).unwrap();
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    let port = spare_port();
    let _server = aiosmtpd(port, &dir, Some((c.to_str().unwrap(), k.to_str().unwrap())));
    let tls_client = TlsClient {
        server_name: "mx.zero.test".into(),
        config: zero_core::tls::ClientTls::with_ca_pem(cert.cert_pem.as_bytes()).unwrap().build().unwrap(),
    };
    let mut config = ClientConfig::new("client.test");
    config.tls = TlsPolicy::Required(tls_client.clone());
    let (outcomes, tls) = send_blocking(
        target(port),
        config.clone(),
        vec![message(&["b@zero.test"], "Subject: s\r\n\r\nsecret\r\n")],
        Duration::from_secs(10),
    )
    .unwrap();
    assert!(tls && outcomes[0][0].is_ok(), "{outcomes:?}");
    assert!(std::fs::read_to_string(dir.join("1.env")).unwrap().contains("tls=True"));
    // A certificate for another name: the handshake fails, nothing is sent in plaintext.
    config.tls = TlsPolicy::Required(TlsClient { server_name: "other.test".into(), ..tls_client });
    let (outcomes, _) = send_blocking(
        target(port),
        config.clone(),
        vec![message(&["b@zero.test"], "x\r\n")],
        Duration::from_secs(10),
    )
    .unwrap();
    assert!(matches!(&outcomes[0][0], Err(f) if !f.permanent), "{outcomes:?}");
    // A server without STARTTLS: required TLS sends nothing.
    let plain_dir = scratch("aiosmtpd-plain");
    let plain_port = spare_port();
    let _plain = aiosmtpd(plain_port, &plain_dir, None);
    let (outcomes, _) = send_blocking(
        target(plain_port),
        config,
        vec![message(&["b@zero.test"], "x\r\n")],
        Duration::from_secs(10),
    )
    .unwrap();
    assert!(matches!(&outcomes[0][0], Err(f) if f.why.contains("does not offer STARTTLS")), "{outcomes:?}");
    assert!(!plain_dir.join("1.eml").exists());
}

#[test]
fn to_postfix_smtp_sink_many_messages_over_one_connection() {
    let found = Command::new("sh").args(["-c", "command -v smtp-sink"]).output().unwrap();
    assert!(found.status.success(), "smtp-sink (postfix) is missing: run scripts/test.sh");
    let port = spare_port();
    let _sink = Running(
        Command::new("smtp-sink")
            .args(["-u", "postfix", "-c", &format!("127.0.0.1:{port}"), "100"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_port(port);
    let messages: Vec<Outgoing> =
        (0..50).map(|i| message(&["b@zero.test"], &format!("Subject: {i}\r\n\r\n.{i}\r\n"))).collect();
    let (outcomes, _) =
        send_blocking(target(port), ClientConfig::new("client.test"), messages, Duration::from_secs(20))
            .unwrap();
    assert_eq!(outcomes.len(), 50);
    assert!(outcomes.iter().all(|o| o[0].as_ref().is_ok_and(|r| r.code == 250)), "{outcomes:?}");
}

#[test]
fn to_our_own_server_over_bdat_and_data() {
    use zero_core::{ListenOptions, Ops};
    use zero_smtp::server::{Server, ServerConfig, Sink};
    let (tx, rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<zero_core::IoHandle>();
    let thread = std::thread::spawn(move || {
        let mut io = zero_core::Io::new(zero_core::Config::default()).unwrap();
        let mut config = ServerConfig::new("mx.zero.test");
        config.accept_domains = vec!["zero.test".into()];
        let mut server = Server::new(config, Sink::default());
        let ops: &mut Ops = &mut io;
        let addr = server.listen(ops, "127.0.0.1:0".parse().unwrap(), &ListenOptions::default()).unwrap();
        tx.send(addr).unwrap();
        stop_tx.send(io.handle()).unwrap();
        io.run(&mut server).unwrap();
        server.store().messages
    });
    let addr = rx.recv().unwrap();
    let handle = stop_rx.recv().unwrap();
    for chunking in [true, false] {
        let mut config = ClientConfig::new("client.test");
        config.chunking = chunking;
        let messages: Vec<Outgoing> =
            (0..10).map(|i| message(&["b@zero.test"], &format!("Subject: {i}\r\n\r\nbody\r\n"))).collect();
        let (outcomes, _) =
            send_blocking(Target::tcp(addr), config, messages, Duration::from_secs(10)).unwrap();
        assert!(
            outcomes.iter().all(|o| o[0].as_ref().is_ok_and(|r| r.text().starts_with("Ok: queued as "))),
            "{outcomes:?}"
        );
    }
    handle.stop().unwrap();
    assert_eq!(thread.join().unwrap(), 20);
}
