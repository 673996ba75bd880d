//! The client fed arbitrary server bytes in pieces, with well-formed replies spliced in so
//! that it gets deep into sessions (EHLO offers, 354, STARTTLS, AUTH), time passing, and
//! the connection lost at the end. Nothing panics, and every message given ends in exactly
//! one outcome with a result for each of its recipients.
#![no_main]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use zero_core::machine::{Closed, Machine};
use zero_smtp::client::{Client, ClientConfig, Event, Outgoing, To};

const SPLICES: &[&[u8]] = &[
    b"220 hi\r\n",
    b"250-mx\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-SIZE 100\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n",
    b"250 ok\r\n",
    b"354 go\r\n",
    b"550 5.1.1 no\r\n",
    b"451 4.3.0 later\r\n",
    b"334 VXNlcm5hbWU6\r\n",
    b"235 ok\r\n",
    b"220 go ahead\r\n",
    b"421 bye\r\n",
];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else { return };
    let mut config = ClientConfig::new("fuzz");
    config.chunking = mode & 1 != 0;
    if mode & 2 != 0 {
        config.auth = Some(("u".into(), "p".into()));
    }
    let mut c = Client::new(config);
    let mut now = Instant::now();
    let mut expected = HashMap::new();
    for i in 0..(mode % 4 + 1) {
        let to: Vec<To> = (0..=i).map(|j| To::new(&format!("r{j}@x.test"))).collect();
        let n = to.len();
        let m = Outgoing {
            from: "a@x.test".into(),
            to,
            text: Arc::from(&b"Subject: x\r\n\r\n.body\r\n"[..]),
            eight_bit: mode & 4 != 0,
            smtputf8: mode & 8 != 0,
            requiretls: false,
            ret: None,
            envid: None,
        };
        expected.insert(c.send(now, m), n);
    }
    c.handle_connected(now);
    let mut check = |c: &mut Client| {
        while let Some(e) = c.poll_event() {
            if let Event::Outcome { id, recipients } = e {
                let n = expected.remove(&id).expect("one outcome per message");
                assert_eq!(n, recipients.len());
            }
        }
    };
    for chunk in data.chunks(usize::from(mode >> 4).max(1) * 2).take(200) {
        let input = if chunk[0] % 3 == 0 { SPLICES[usize::from(chunk[0] / 3) % SPLICES.len()] } else { chunk };
        c.handle_input(now, input);
        while c.poll_transmit().is_some() {}
        if c.poll_upgrade().is_some() {
            c.handle_upgraded(now);
        }
        check(&mut c);
        now += Duration::from_secs(u64::from(chunk[0] % 4) * 100);
        if c.poll_timeout().is_some_and(|t| t <= now) {
            c.handle_timeout(now);
        }
        if c.poll_close() {
            break;
        }
    }
    c.handle_closed(now, Closed::Requested);
    check(&mut c);
    assert!(expected.is_empty(), "messages without an outcome: {expected:?}");
    assert!(c.is_drained());
});
