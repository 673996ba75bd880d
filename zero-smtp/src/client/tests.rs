//! The client on a simulated clock: against scripted servers (each flow's replies), and
//! wired to our own server session in memory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use zero_core::machine::{Closed, Machine, Upgrade};

use super::*;
use crate::server::{self, Peer, ServerConfig, Session};

fn message(to: &[&str]) -> Outgoing {
    Outgoing {
        from: "a@client.test".into(),
        to: to.iter().map(|t| To::new(t)).collect(),
        text: Arc::from(&b"Subject: hi\r\n\r\n.dot\r\nbody\r\n"[..]),
        eight_bit: false,
        smtputf8: false,
        requiretls: false,
        ret: None,
        envid: None,
    }
}

/// A client connected to a scripted server: `said()` is what the client sent since the
/// last call, `reply()` feeds the server's words.
struct Scripted {
    c: Client,
    now: Instant,
}

impl Scripted {
    fn new(config: ClientConfig, messages: &[Outgoing]) -> Scripted {
        let now = Instant::now();
        let mut c = Client::new(config);
        for m in messages {
            c.send(now, m.clone());
        }
        assert!(c.wants_connect(now));
        c.handle_connected(now);
        Scripted { c, now }
    }

    fn said(&mut self) -> String {
        let mut out = Vec::new();
        while let Some(b) = self.c.poll_transmit() {
            out.extend_from_slice(b);
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    fn reply(&mut self, text: &str) -> String {
        self.c.handle_input(self.now, text.as_bytes());
        self.said()
    }

    fn outcomes(&mut self) -> Vec<Vec<Result<u16, bool>>> {
        let mut all = Vec::new();
        while let Some(e) = self.c.poll_event() {
            if let Event::Outcome { recipients, .. } = e {
                all.push(
                    recipients
                        .iter()
                        .map(|r| r.as_ref().map(|ok| ok.code).map_err(|f| f.permanent))
                        .collect(),
                );
            }
        }
        all
    }
}

const EHLO_PIPELINING: &str = "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME\r\n";

#[test]
fn pipelined_mail_rcpt_data_then_the_text() {
    let mut s =
        Scripted::new(ClientConfig::new("client.test"), &[message(&["b@x.test", "c@x.test", "d@x.test"])]);
    assert_eq!(s.reply("220 mx.test ESMTP\r\n"), "EHLO client.test\r\n");
    let batch = s.reply(EHLO_PIPELINING);
    assert_eq!(
        batch,
        "MAIL FROM:<a@client.test> SIZE=27\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nRCPT TO:<d@x.test>\r\nDATA\r\n"
    );
    let text = s.reply("250 ok\r\n250 ok\r\n550 5.1.1 no such user\r\n250 ok\r\n354 go\r\n");
    assert_eq!(text, "Subject: hi\r\n\r\n..dot\r\nbody\r\n.\r\n");
    assert_eq!(s.reply("250 2.0.0 queued\r\n"), "");
    assert_eq!(s.outcomes(), [vec![Ok(250), Err(true), Ok(250)]]);
    s.c.quit(s.now);
    assert_eq!(s.said(), "QUIT\r\n");
    s.reply("221 bye\r\n");
    assert!(s.c.poll_close());
}

#[test]
fn without_pipelining_one_command_at_a_time_and_no_data_for_nobody() {
    let mut s =
        Scripted::new(ClientConfig::new("c"), &[message(&["b@x.test", "c@x.test"]), message(&["e@x.test"])]);
    s.reply("220 hi\r\n");
    assert_eq!(s.reply("250 mx.test\r\n"), "MAIL FROM:<a@client.test>\r\n");
    assert_eq!(s.reply("250 ok\r\n"), "RCPT TO:<b@x.test>\r\n");
    assert_eq!(s.reply("450 4.2.1 busy\r\n"), "RCPT TO:<c@x.test>\r\n");
    // Nobody accepted: no DATA; RSET, then the next message.
    assert_eq!(s.reply("550 5.1.1 unknown\r\n"), "RSET\r\n");
    assert_eq!(s.outcomes(), [vec![Err(false), Err(true)]]);
    assert_eq!(s.reply("250 ok\r\n"), "MAIL FROM:<a@client.test>\r\n");
    s.reply("250 ok\r\n");
    assert_eq!(s.reply("250 ok\r\n"), "DATA\r\n");
    assert!(s.reply("354 go\r\n").ends_with("\r\n.\r\n"));
    s.reply("554 5.7.1 spam\r\n");
    assert_eq!(s.outcomes(), [vec![Err(true)]]);
}

#[test]
fn a_354_with_no_recipient_accepted_gets_a_lone_dot() {
    let mut s = Scripted::new(ClientConfig::new("c"), &[message(&["b@x.test"])]);
    s.reply("220 hi\r\n");
    s.reply(EHLO_PIPELINING);
    assert_eq!(s.reply("250 ok\r\n550 no\r\n354 go\r\n"), ".\r\n");
    assert_eq!(s.reply("554 no valid recipients\r\n"), "RSET\r\n");
    assert_eq!(s.outcomes(), [vec![Err(true)]]);
}

#[test]
fn bdat_when_chunking_is_offered() {
    let mut s = Scripted::new(ClientConfig::new("c"), &[message(&["b@x.test"])]);
    s.reply("220 hi\r\n");
    let batch = s.reply("250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n");
    assert_eq!(batch, "MAIL FROM:<a@client.test>\r\nRCPT TO:<b@x.test>\r\nBDAT 27 LAST\r\nSubject: hi\r\n\r\n.dot\r\nbody\r\n");
    s.reply("250 ok\r\n250 ok\r\n250 2.0.0 queued\r\n");
    assert_eq!(s.outcomes(), [vec![Ok(250)]]);
}

fn tls() -> TlsClient {
    let cert = zero_core::tls::SelfSigned::generate(&["mx.test"]).unwrap();
    let config = zero_core::tls::ClientTls::with_ca_pem(cert.cert_pem.as_bytes()).unwrap().build().unwrap();
    TlsClient { server_name: "mx.test".into(), config }
}

#[test]
fn required_tls_is_never_downgraded() {
    let mut cfg = ClientConfig::new("c");
    cfg.tls = TlsPolicy::Required(tls());
    let mut s = Scripted::new(cfg.clone(), &[message(&["b@x.test"])]);
    s.reply("220 hi\r\n");
    assert_eq!(s.reply(EHLO_PIPELINING), "QUIT\r\n", "no STARTTLS offered: nothing is sent");
    let out = s.outcomes();
    assert_eq!(out, [vec![Err(false)]]);
    let mut refused = Scripted::new(cfg.clone(), &[message(&["b@x.test"])]);
    refused.reply("220 hi\r\n");
    assert_eq!(refused.reply("250-mx\r\n250 STARTTLS\r\n"), "STARTTLS\r\n");
    assert_eq!(refused.reply("454 4.7.0 TLS not available\r\n"), "QUIT\r\n");
    // Offered and accepted: the upgrade, then EHLO again inside TLS.
    let mut ok = Scripted::new(cfg, &[message(&["b@x.test"])]);
    ok.reply("220 hi\r\n");
    ok.reply("250-mx\r\n250 STARTTLS\r\n");
    assert_eq!(ok.reply("220 go ahead\r\nMAIL FROM:<injected@x>\r\n"), "");
    assert!(
        matches!(ok.c.poll_upgrade(), Some(Upgrade::Client { server_name, .. }) if server_name == "mx.test")
    );
    ok.c.handle_upgraded(ok.now);
    assert_eq!(ok.said(), "EHLO c\r\n");
    assert!(ok.c.is_tls());
}

#[test]
fn opportunistic_tls_carries_on_in_plaintext_when_refused() {
    let mut cfg = ClientConfig::new("c");
    cfg.tls = TlsPolicy::Opportunistic(tls());
    let mut s = Scripted::new(cfg, &[message(&["b@x.test"])]);
    s.reply("220 hi\r\n");
    s.reply("250-mx\r\n250 STARTTLS\r\n");
    assert_eq!(s.reply("454 no\r\n"), "MAIL FROM:<a@client.test>\r\n");
}

#[test]
fn auth_login_and_plain_and_helo_fallback() {
    let mut cfg = ClientConfig::new("c");
    cfg.auth = Some(("alice".into(), "s3cret".into()));
    let mut login = Scripted::new(cfg.clone(), &[message(&["b@x.test"])]);
    login.reply("220 hi\r\n");
    assert_eq!(login.reply("250-mx\r\n250 AUTH LOGIN\r\n"), "AUTH LOGIN\r\n");
    assert_eq!(login.reply("334 VXNlcm5hbWU6\r\n"), "YWxpY2U=\r\n");
    assert_eq!(login.reply("334 UGFzc3dvcmQ6\r\n"), "czNjcmV0\r\n");
    assert_eq!(login.reply("235 ok\r\n"), "MAIL FROM:<a@client.test>\r\n");
    let mut plain = Scripted::new(cfg.clone(), &[message(&["b@x.test"])]);
    plain.reply("220 hi\r\n");
    assert_eq!(plain.reply("250-mx\r\n250 AUTH PLAIN LOGIN\r\n"), "AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n");
    assert_eq!(plain.reply("535 5.7.8 no\r\n"), "QUIT\r\n");
    assert_eq!(plain.outcomes(), [vec![Err(false)]]);
    let mut helo = Scripted::new(ClientConfig::new("c"), &[message(&["b@x.test"])]);
    helo.reply("220 hi\r\n");
    assert_eq!(helo.reply("502 5.5.1 no EHLO here\r\n"), "HELO c\r\n");
    assert_eq!(helo.reply("250 mx\r\n"), "MAIL FROM:<a@client.test>\r\n");
}

#[test]
fn limits_the_server_states_are_kept_before_sending() {
    let mut big = message(&["b@x.test"]);
    big.text = Arc::from(vec![b'x'; 2000]);
    let mut utf8 = message(&["δοκιμή@x.test"]);
    utf8.smtputf8 = true;
    let mut s = Scripted::new(ClientConfig::new("c"), &[big, utf8, message(&["ok@x.test"])]);
    s.reply("220 hi\r\n");
    let batch = s.reply(EHLO_PIPELINING);
    assert!(batch.starts_with("MAIL FROM:<a@client.test> SIZE=27\r\nRCPT TO:<ok@x.test>"), "{batch}");
    assert_eq!(s.outcomes(), [vec![Err(true)], vec![Err(true)]]);
}

#[test]
fn a_lost_connection_or_silence_fails_every_message_as_transient() {
    let mut s = Scripted::new(ClientConfig::new("c"), &[message(&["b@x.test"]), message(&["c@x.test"])]);
    s.reply("220 hi\r\n");
    s.reply(EHLO_PIPELINING);
    s.reply("250 ok\r\n250 ok\r\n354 go\r\n");
    s.c.handle_closed(s.now, Closed::Lost(zero_core::CloseReason::PeerClosed));
    assert_eq!(s.outcomes(), [vec![Err(false)], vec![Err(false)]]);
    assert!(s.c.is_drained());
    let mut quiet = Scripted::new(ClientConfig::new("c"), &[message(&["b@x.test"])]);
    assert_eq!(quiet.c.poll_timeout(), Some(quiet.now + Duration::from_secs(300)));
    quiet.now += Duration::from_secs(300);
    quiet.c.handle_timeout(quiet.now);
    assert_eq!(quiet.outcomes(), [vec![Err(false)]]);
}

/// Our client and our server, wired in memory: three messages over one connection, the
/// server storing each, with pipelining and BDAT as offered.
#[test]
fn our_client_delivers_to_our_server() {
    let now = Instant::now();
    let mut config = ServerConfig::new("mx.zero.test");
    config.accept_domains = vec!["zero.test".into()];
    let mut server = Session::new(
        Arc::new(config),
        Peer { addr: "192.0.2.9:1".parse().unwrap(), trusted: false, tls: false },
    );
    let mut client = Client::new(ClientConfig::new("client.test"));
    let mut texts = Vec::new();
    for i in 0..3 {
        let mut m = message(&["b@zero.test", "nobody@elsewhere.test"]);
        m.text = Arc::from(format!("Subject: {i}\r\n\r\n.line\r\n").as_bytes());
        texts.push(m.text.to_vec());
        client.send(now, m);
    }
    client.handle_connected(now);
    server.handle_connected(now);
    let mut stored = Vec::new();
    let mut outcomes = Vec::new();
    for _ in 0..50 {
        while let Some(b) = server.poll_transmit() {
            let b = b.to_vec();
            client.handle_input(now, &b);
        }
        while let Some(b) = client.poll_transmit() {
            let b = b.to_vec();
            server.handle_input(now, &b);
        }
        while let Some(e) = server.poll_event() {
            if let server::Event::Message { body, .. } = e {
                stored.push(body);
                server.stored(now, Ok(format!("Q{}", stored.len())));
            }
        }
        while let Some(e) = client.poll_event() {
            if let Event::Outcome { recipients, .. } = e {
                outcomes.push(
                    recipients
                        .iter()
                        .map(|r| r.as_ref().map(|ok| ok.text()).map_err(|f| f.permanent))
                        .collect::<Vec<_>>(),
                );
            }
        }
    }
    assert_eq!(stored, texts);
    assert_eq!(outcomes.len(), 3);
    assert_eq!(outcomes[0], vec![Ok("Ok: queued as Q1".to_string()), Err(true)]);
    assert_eq!(outcomes[2][0], Ok("Ok: queued as Q3".to_string()));
}
