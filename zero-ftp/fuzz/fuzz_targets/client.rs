//! The client machine driven by arbitrary server bytes: the input is cut into reads, and
//! between them the owner's reports (data connections up, TLS done, closed clean or not,
//! listeners, timeouts) and new requests are chosen by the input too. The client must never
//! panic, must connect data connections only to the server it talks to, must never send a
//! line the request did not hold, and every request must end in exactly one `Done`.
#![no_main]

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use zero_core::machine::{Closed, Machine};
use zero_ftp::client::{Client, ClientConfig, Event, Listing, Request};

fuzz_target!(|data: &[u8]| {
    let server: IpAddr = "10.0.0.1".parse().unwrap();
    let mut config = ClientConfig::new("bob", "pw");
    config.passive = data.first().is_none_or(|b| b % 4 != 0);
    let mut c = Client::new(config, server);
    let mut now = Instant::now();
    let _ = c.wants_connect(now);
    c.handle_connected(now);
    let mut asked = HashSet::new();
    let mut done = HashSet::new();
    let mut at = 1;
    while at < data.len() {
        let pick = data[at];
        let n = usize::from(pick % 64) + 1;
        let chunk = &data[at + 1..(at + 1 + n).min(data.len())];
        at += 1 + n;
        match pick % 16 {
            0 => {
                asked.insert(c.request(now, Request::Retrieve { path: "f".into(), offset: u64::from(pick) }));
            }
            1 => {
                asked.insert(c.request(now, Request::Store { path: "g".into(), append: pick % 2 == 0 }));
            }
            2 => {
                asked.insert(c.request(now, Request::List { path: None, format: Listing::Facts }));
            }
            3 => {
                asked.insert(c.request(now, Request::Rename { from: "a".into(), to: "b".into() }));
            }
            4 => {
                asked.insert(c.request(now, Request::Size("f".into())));
            }
            5 => c.data_connected(now),
            6 => c.data_opened(now),
            7 => c.data_closed(now, pick % 2 == 0),
            8 => c.listening(now, Ok("10.0.0.2:40000".parse().unwrap())),
            9 => {
                now += Duration::from_secs(u64::from(pick));
                c.handle_timeout(now);
            }
            10 => c.data_progress(now),
            _ => {}
        };
        c.handle_input(now, chunk);
        while let Some(event) = c.poll_event() {
            match event {
                Event::Connect { addr, .. } => assert_eq!(addr.ip(), server, "a data connection elsewhere"),
                Event::Done { id, .. } => assert!(done.insert(id), "a request ended twice"),
                _ => {}
            }
        }
        while let Some(bytes) = c.poll_transmit() {
            let text = String::from_utf8_lossy(bytes);
            for line in text.split_terminator("\r\n") {
                assert!(!line.contains(['\r', '\n']), "a line was split");
                let verb = line.split(' ').next().unwrap_or("");
                let known = ["USER", "PASS", "FEAT", "OPTS", "TYPE", "EPSV", "PASV", "PORT", "EPRT", "REST",
                    "RETR", "STOR", "APPE", "MLSD", "RNFR", "RNTO", "SIZE", "QUIT"];
                assert!(known.contains(&verb), "an unexpected command {line:?}");
            }
        }
        let _ = c.poll_close();
        let _ = c.poll_upgrade();
    }
    c.handle_closed(now, Closed::Requested);
    while let Some(event) = c.poll_event() {
        if let Event::Done { id, .. } = event {
            assert!(done.insert(id), "a request ended twice");
        }
    }
    assert_eq!(asked, done, "every request ends once");
});
