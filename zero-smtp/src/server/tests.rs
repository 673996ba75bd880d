//! The server session on a simulated clock: whole transactions pipelined and byte by byte,
//! the 250 held until the message is stored, command order, relay control, the smuggling
//! variants, STARTTLS injection, AUTH flows, BDAT, limits, the error budget, timeouts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use zero_core::machine::{Machine, Upgrade};

use super::*;
use crate::codec::reply::Reply;

fn peer(trusted: bool) -> Peer {
    Peer { addr: "192.0.2.7:40000".parse().unwrap(), trusted, tls: false }
}

fn config() -> ServerConfig {
    let mut c = ServerConfig::new("mx.zero.test");
    c.accept_domains = vec!["zero.test".into()];
    c
}

/// A session and what it said, with its messages stored as they come (unless `hold`).
struct Client {
    s: Session,
    now: Instant,
    said: Vec<u8>,
    stored: Vec<(Envelope, Vec<u8>)>,
    hold: bool,
    held: usize,
    /// The password that authenticates.
    password: &'static str,
}

impl Client {
    fn new(config: ServerConfig, peer: Peer) -> Client {
        let mut c = Client {
            s: Session::new(Arc::new(config), peer),
            now: Instant::now(),
            said: Vec::new(),
            stored: Vec::new(),
            hold: false,
            held: 0,
            password: "s3cret",
        };
        c.s.handle_connected(c.now);
        c.pump();
        c
    }

    fn pump(&mut self) {
        loop {
            while let Some(bytes) = self.s.poll_transmit() {
                self.said.extend_from_slice(bytes);
            }
            let Some(event) = self.s.poll_event() else { break };
            match event {
                Event::Message { envelope, body } => {
                    self.stored.push((*envelope, body));
                    if self.hold {
                        self.held += 1;
                    } else {
                        let id = format!("Q{}", self.stored.len());
                        self.s.stored(self.now, Ok(id));
                    }
                }
                Event::Authenticate(c) => {
                    let ok = c.secret == self.password;
                    self.s.authenticated(self.now, ok, &c.username);
                }
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) -> String {
        let before = self.said.len();
        self.s.handle_input(self.now, bytes);
        self.pump();
        String::from_utf8_lossy(&self.said[before..]).into_owned()
    }

    /// The reply codes said so far, in order.
    fn codes(&self) -> Vec<u16> {
        let mut at = 0;
        let mut codes = Vec::new();
        while let Ok(Some((r, used))) = Reply::parse(&self.said[at..]) {
            codes.push(r.code);
            at += used;
        }
        codes
    }
}

const TRANSACTION: &[u8] =
    b"EHLO client.test\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<b@zero.test>\r\nRCPT TO:<c@zero.test>\r\nDATA\r\n";

#[test]
fn a_pipelined_transaction_waits_for_the_store_before_its_250() {
    let mut c = Client::new(config(), peer(false));
    c.hold = true;
    c.send(TRANSACTION);
    assert_eq!(c.codes(), [220, 250, 250, 250, 250, 354]);
    // The text, the next transaction and QUIT in one write: nothing after the text is
    // answered until the message is stored.
    c.send(b"Subject: hi\r\n\r\n..dot\r\n.\r\nMAIL FROM:<a@client.test>\r\nQUIT\r\n");
    assert_eq!(c.codes().len(), 6);
    assert_eq!(c.stored.len(), 1);
    let (envelope, body) = &c.stored[0];
    assert_eq!(body, b"Subject: hi\r\n\r\n.dot\r\n");
    assert_eq!(envelope.from, "a@client.test");
    let to: Vec<&str> = envelope.recipients.iter().map(|r| r.address.as_str()).collect();
    assert_eq!(to, ["b@zero.test", "c@zero.test"]);
    assert_eq!((envelope.helo.as_str(), envelope.esmtp, envelope.tls), ("client.test", true, false));
    c.s.stored(c.now, Ok("Q1".into()));
    c.pump();
    assert_eq!(c.codes(), [220, 250, 250, 250, 250, 354, 250, 250, 221]);
    assert!(String::from_utf8_lossy(&c.said).contains("250 2.0.0 Ok: queued as Q1\r\n"));
    assert!(c.s.poll_close());
}

#[test]
fn byte_by_byte_is_the_same_as_all_at_once() {
    let whole: &[u8] = b"EHLO c\r\nMAIL FROM:<a@c.test>\r\nRCPT TO:<b@zero.test>\r\nDATA\r\nx\r\n.\r\nBDAT_NOT\r\nRSET\r\nMAIL FROM:<a@c.test>\r\nRCPT TO:<b@zero.test>\r\nBDAT 5\r\nhelloBDAT 2 LAST\r\n\r\nQUIT\r\n";
    let mut once = Client::new(config(), peer(false));
    once.send(whole);
    let mut bytes = Client::new(config(), peer(false));
    for b in whole {
        bytes.send(&[*b]);
    }
    assert_eq!(String::from_utf8_lossy(&bytes.said), String::from_utf8_lossy(&once.said));
    assert_eq!(once.codes(), [220, 250, 250, 250, 354, 250, 500, 250, 250, 250, 250, 250, 221]);
    assert_eq!(once.stored[1].1, b"hello\r\n");
}

#[test]
fn commands_out_of_order_are_refused() {
    let mut c = Client::new(config(), peer(false));
    assert!(c.send(b"MAIL FROM:<a@c.test>\r\n").starts_with("503 5.5.1"));
    c.send(b"HELO c\r\n");
    assert!(c.send(b"RCPT TO:<b@zero.test>\r\n").starts_with("503 5.5.1"));
    assert!(c.send(b"DATA\r\n").starts_with("503 5.5.1"));
    assert!(c.send(b"MAIL FROM:<a@c.test> SIZE=10\r\n").starts_with("555 5.5.4"), "parameters need EHLO");
    c.send(b"MAIL FROM:<a@c.test>\r\n");
    assert!(c.send(b"MAIL FROM:<a@c.test>\r\n").starts_with("503 5.5.1"));
    assert!(c.send(b"DATA\r\n").starts_with("554 5.5.1"));
    assert!(c.send(b"EXPN list\r\n").starts_with("502 5.5.1"));
    assert!(c.send(b"WHAT\r\n").starts_with("500 5.5.2"));
    assert!(c.send(b"VRFY someone\r\n").starts_with("252 2.5.0"));
    assert!(c.send(b"NOOP\r\n").starts_with("250 2.0.0"));
}

#[test]
fn no_open_relay() {
    let mut c = Client::new(config(), peer(false));
    c.send(b"EHLO c\r\nMAIL FROM:<a@c.test>\r\n");
    assert!(c.send(b"RCPT TO:<x@elsewhere.test>\r\n").starts_with("554 5.7.1"));
    assert!(c.send(b"RCPT TO:<x@ZERO.test>\r\n").starts_with("250 2.1.5"));
    assert!(c.send(b"RCPT TO:<postmaster>\r\n").starts_with("250 2.1.5"));
    let mut trusted = Client::new(config(), peer(true));
    trusted.send(b"EHLO c\r\nMAIL FROM:<a@c.test>\r\n");
    assert!(trusted.send(b"RCPT TO:<x@elsewhere.test>\r\n").starts_with("250"));
}

/// Every smuggling variant: one message, refused; the smuggled MAIL is message text.
#[test]
fn smuggled_commands_stay_message_text() {
    for smuggle in [&b"\n.\n"[..], b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r\n.\r", b"\r.\r\n"] {
        let mut c = Client::new(config(), peer(false));
        c.send(TRANSACTION);
        let text = [
            b"Subject: x\r\n\r\nhi",
            smuggle,
            b"MAIL FROM:<spoof@zero.test>\r\nRCPT TO:<b@zero.test>\r\nDATA\r\nspoofed\r\n.\r\n",
        ]
        .concat();
        let said = c.send(&text);
        assert!(said.starts_with("554 5.6.0"), "{smuggle:?}: {said}");
        assert_eq!(c.codes().len(), 7, "{smuggle:?}: one reply for all of it: {said}");
        assert!(c.stored.is_empty());
    }
    let mut lenient = config();
    lenient.bare_line_endings = crate::codec::BareLineEnding::Normalize;
    let mut c = Client::new(lenient, peer(false));
    c.send(TRANSACTION);
    c.send(b"hi\n.\nMAIL FROM:<spoof@zero.test>\r\n.\r\n");
    assert_eq!(c.stored.len(), 1);
    assert_eq!(c.stored[0].1, b"hi\r\n.\r\nMAIL FROM:<spoof@zero.test>\r\n");
}

fn tls_config() -> ServerConfig {
    let cert = zero_core::tls::SelfSigned::generate(&["mx.zero.test"]).unwrap();
    let mut c = config();
    c.tls = Some(
        zero_core::tls::ServerTls::from_pem(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes())
            .unwrap()
            .build()
            .unwrap()
            .0,
    );
    c.auth = true;
    c
}

#[test]
fn starttls_drops_what_followed_and_the_client_starts_over() {
    let mut c = Client::new(tls_config(), peer(false));
    let ehlo = c.send(b"EHLO c\r\n");
    assert!(ehlo.contains("STARTTLS\r\n") && !ehlo.contains("AUTH"), "no AUTH before TLS: {ehlo}");
    assert!(c.send(b"AUTH PLAIN AGEAYg==\r\n").starts_with("538 5.7.11"));
    // The injection: a command after STARTTLS in the same packet.
    let said = c.send(b"STARTTLS\r\nMAIL FROM:<injected@c.test>\r\n");
    assert_eq!(said, "220 2.0.0 Ready to start TLS\r\n");
    assert!(matches!(c.s.poll_upgrade(), Some(Upgrade::Server(_))));
    assert_eq!(c.send(b"NOOP\r\n"), "", "nothing is read during the handshake");
    c.s.handle_upgraded(c.now);
    assert!(c.s.is_tls());
    assert!(c.send(b"MAIL FROM:<a@c.test>\r\n").starts_with("503 5.5.1"), "EHLO again first");
    let ehlo = c.send(b"EHLO c\r\n");
    assert!(
        ehlo.contains("AUTH PLAIN LOGIN") && ehlo.contains("REQUIRETLS") && !ehlo.contains("STARTTLS"),
        "{ehlo}"
    );
    assert!(c.send(b"STARTTLS\r\n").starts_with("503 5.5.1"));
    assert!(c.send(b"MAIL FROM:<a@c.test> REQUIRETLS\r\n").starts_with("250"));
}

#[test]
fn auth_plain_login_and_the_xoauth2_error_flow() {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut cfg = tls_config();
    cfg.xoauth2 = true;
    cfg.auth_required = true;
    let mut c = Client::new(cfg.clone(), Peer { tls: true, ..peer(false) });
    c.send(b"EHLO c\r\n");
    assert!(c.send(b"MAIL FROM:<a@c.test>\r\n").starts_with("530 5.7.0"));
    assert!(c.send(format!("AUTH PLAIN {}\r\n", b64("\0alice\0wrong")).as_bytes()).starts_with("535 5.7.8"));
    assert_eq!(c.send(b"AUTH PLAIN\r\n"), "334 \r\n");
    assert!(c.send(b"*\r\n").starts_with("501 5.0.0"));
    assert!(c.send(format!("AUTH PLAIN {}\r\n", b64("\0alice\0s3cret")).as_bytes()).starts_with("235 2.7.0"));
    assert!(c.send(b"AUTH PLAIN\r\n").starts_with("503 5.5.1"));
    c.send(b"MAIL FROM:<a@c.test>\r\n");
    assert!(c.send(b"RCPT TO:<anyone@elsewhere.test>\r\n").starts_with("250"), "authenticated clients relay");

    let mut login = Client::new(cfg.clone(), Peer { tls: true, ..peer(false) });
    login.send(b"EHLO c\r\n");
    assert_eq!(login.send(b"AUTH LOGIN\r\n"), format!("334 {}\r\n", b64("Username:")));
    assert_eq!(login.send(format!("{}\r\n", b64("bob")).as_bytes()), format!("334 {}\r\n", b64("Password:")));
    assert!(login.send(format!("{}\r\n", b64("s3cret")).as_bytes()).starts_with("235"));

    let mut oauth = Client::new(cfg, Peer { tls: true, ..peer(false) });
    oauth.send(b"EHLO c\r\n");
    let token = b64("user=bob\u{1}auth=Bearer expired\u{1}\u{1}");
    let challenge = oauth.send(format!("AUTH XOAUTH2 {token}\r\n").as_bytes());
    assert!(challenge.starts_with("334 ey"), "the JSON error, in base64: {challenge}");
    assert!(oauth.send(b"\r\n").starts_with("535 5.7.8"));
    assert!(oauth.send(b"AUTH CRAM-MD5\r\n").starts_with("504 5.5.4"));
}

#[test]
fn bdat_chunks_refused_chunks_and_the_size_limit() {
    let mut cfg = config();
    cfg.max_size = 10;
    let mut c = Client::new(cfg, peer(false));
    c.send(b"EHLO c\r\n");
    // Refused (no MAIL), but its 4 octets are read, not taken as commands.
    assert!(c.send(b"BDAT 4\r\nNOOP").starts_with("503 5.5.1"));
    assert!(c.send(b"MAIL FROM:<a@c.test> SIZE=11\r\n").starts_with("552 5.3.4"));
    c.send(b"MAIL FROM:<a@c.test>\r\nRCPT TO:<b@zero.test>\r\n");
    assert!(c.send(b"BDAT 6\r\n012345").starts_with("250 2.0.0 6 octets"));
    assert!(c.send(b"DATA\r\n").starts_with("503 5.5.1"), "BDAT and DATA do not mix");
    assert!(c.send(b"BDAT 6 LAST\r\n6789ab").starts_with("552 5.3.4"));
    assert!(c.stored.is_empty());
    c.send(b"MAIL FROM:<a@c.test>\r\nRCPT TO:<b@zero.test>\r\n");
    assert!(c.send(b"BDAT 0 LAST\r\n").starts_with("250 2.0.0 Ok: queued"));
    assert_eq!(c.stored[0].1, b"");
    c.send(b"MAIL FROM:<a@c.test>\r\nRCPT TO:<b@zero.test>\r\nDATA\r\n");
    assert!(c.send(b"0123456789ABCDEF\r\n.\r\n").starts_with("552 5.3.4"));
}

#[test]
fn limits_on_lines_and_recipients() {
    let mut c = Client::new(config(), peer(false));
    c.send(b"EHLO c\r\n");
    let long = [&b"NOOP "[..], &vec![b'x'; 5000], b"\r\nNOOP\r\n"].concat();
    let said = c.send(&long);
    assert!(said.starts_with("500 5.5.2 Line too long") && said.ends_with("250 2.0.0 OK\r\n"), "{said}");
    c.send(b"MAIL FROM:<a@c.test>\r\n");
    for i in 0..100 {
        assert!(c.send(format!("RCPT TO:<r{i}@zero.test>\r\n").as_bytes()).starts_with("250"));
    }
    assert!(c.send(b"RCPT TO:<r100@zero.test>\r\n").starts_with("452 4.5.3"));
    let mut text = Vec::new();
    text.extend_from_slice(b"DATA\r\n");
    text.extend_from_slice(&[b'y'; 1001]);
    text.extend_from_slice(b"\r\n.\r\n");
    assert!(c.send(&text).ends_with("554 5.6.0 Message has a line over 1000 octets\r\n"));
}

#[test]
fn an_abusive_client_is_cut_off_after_its_error_budget() {
    let mut c = Client::new(config(), peer(false));
    for _ in 0..9 {
        assert!(c.send(b"BOGUS\r\n").starts_with("500"));
    }
    let said = c.send(b"BOGUS\r\nNOOP\r\n");
    assert!(said.ends_with("421 4.7.0 mx.zero.test Too many errors, closing\r\n"), "{said}");
    assert!(c.s.poll_close());
    assert_eq!(c.send(b"NOOP\r\n"), "");
}

#[test]
fn silence_times_out() {
    let mut c = Client::new(config(), peer(false));
    c.send(TRANSACTION);
    // In DATA: three minutes.
    let due = c.s.poll_timeout().unwrap();
    assert_eq!(due, c.now + Duration::from_secs(180));
    c.now = due;
    c.s.handle_timeout(c.now);
    c.pump();
    assert!(String::from_utf8_lossy(&c.said).ends_with("421 4.4.2 mx.zero.test Timeout, closing\r\n"));
    assert!(c.s.poll_close());
    // Waiting for the store: no timeout of ours.
    let mut w = Client::new(config(), peer(false));
    w.hold = true;
    w.send(TRANSACTION);
    w.send(b"x\r\n.\r\n");
    assert_eq!(w.s.poll_timeout(), None);
    w.s.stored(w.now, Err(Reply::new(451, (4, 3, 0), "Spool write failed")));
    w.pump();
    assert!(String::from_utf8_lossy(&w.said).ends_with("451 4.3.0 Spool write failed\r\n"));
    assert_eq!(w.s.poll_timeout(), Some(w.now + Duration::from_secs(300)));
}

#[test]
fn utf8_addresses_need_smtputf8() {
    let mut c = Client::new(config(), peer(true));
    c.send(b"EHLO c\r\n");
    assert!(c.send("MAIL FROM:<用户@例子.广告>\r\n".as_bytes()).starts_with("553 5.6.7"));
    assert!(c.send("MAIL FROM:<用户@例子.广告> SMTPUTF8\r\n".as_bytes()).starts_with("250"));
    assert!(c.send("RCPT TO:<δοκιμή@παράδειγμα.δοκιμή>\r\n".as_bytes()).starts_with("250"));
}
