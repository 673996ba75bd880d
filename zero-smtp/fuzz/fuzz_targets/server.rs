//! The server session fed arbitrary input in arbitrary pieces, with commands spliced in so
//! that every state is reached (DATA, BDAT, AUTH, STARTTLS), time passing, and the owner
//! storing, refusing, authenticating at random. Nothing panics; replies are always whole
//! reply lines; a message handed over never holds a bare CR or LF (the default policy
//! refuses them) nor a line of over 1000 octets.
#![no_main]

use std::sync::Arc;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use zero_core::machine::Machine;
use zero_smtp::codec::reply::Reply;
use zero_smtp::server::{Event, Peer, ServerConfig, Session};

const SPLICES: &[&[u8]] = &[
    b"EHLO fuzz\r\n",
    b"MAIL FROM:<a@b.test>\r\n",
    b"RCPT TO:<c@zero.test>\r\n",
    b"DATA\r\n",
    b"\r\n.\r\n",
    b"BDAT 5\r\n",
    b"BDAT 3 LAST\r\n",
    b"AUTH PLAIN\r\n",
    b"AUTH LOGIN\r\n",
    b"STARTTLS\r\n",
    b"RSET\r\n",
    b"\n.\n",
];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else { return };
    let mut config = ServerConfig::new("fuzz.test");
    config.accept_domains = vec!["zero.test".into()];
    config.auth = mode & 1 != 0;
    config.auth_without_tls = mode & 2 != 0;
    config.max_size = 64 + usize::from(mode) * 16;
    config.max_errors = 1000;
    let peer = Peer { addr: "192.0.2.1:1".parse().unwrap(), trusted: mode & 4 != 0, tls: mode & 8 != 0 };
    let mut s = Session::new(Arc::new(config), peer);
    let mut now = Instant::now();
    s.handle_connected(now);
    let mut out = Vec::new();
    for chunk in data.chunks(usize::from(mode >> 4).max(1) * 3).take(300) {
        let input: &[u8] = if chunk[0] % 5 == 0 { SPLICES[usize::from(chunk[0] / 5) % SPLICES.len()] } else { chunk };
        s.handle_input(now, input);
        while let Some(event) = s.poll_event() {
            match event {
                Event::Message { body, .. } => {
                    assert!(!body.windows(2).any(|w| w[0] == b'\r' && w[1] != b'\n'), "a bare CR was stored");
                    assert!(!body.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'), "a bare LF was stored");
                    assert!(!body.starts_with(b"\n"));
                    assert!(body.split(|&b| b == b'\n').all(|line| line.len() <= 999), "a long line was stored");
                    let result = if chunk[0] & 1 == 0 { Ok("id".into()) } else { Err(Reply::new(451, (4, 3, 0), "no")) };
                    s.stored(now, result);
                }
                Event::Authenticate(c) => s.authenticated(now, chunk[0] & 2 == 0, &c.username),
                _ => {}
            }
        }
        while let Some(bytes) = s.poll_transmit() {
            out.extend_from_slice(bytes);
        }
        let _ = s.poll_upgrade();
        if chunk[0] & 0x40 != 0 {
            s.handle_upgraded(now);
        }
        now += Duration::from_secs(u64::from(chunk[0] % 8) * 60);
        if s.poll_timeout().is_some_and(|t| t <= now) {
            s.handle_timeout(now);
        }
        if s.poll_close() {
            break;
        }
    }
    while let Some(bytes) = s.poll_transmit() {
        out.extend_from_slice(bytes);
    }
    // Whatever was said parses as whole replies.
    let mut at = 0;
    while at < out.len() {
        match Reply::parse(&out[at..]) {
            Ok(Some((_, used))) => at += used,
            other => panic!("the server said something that is not a reply: {other:?} in {:?}", String::from_utf8_lossy(&out[at..])),
        }
    }
});
