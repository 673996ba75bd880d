//! A logged-on acceptor session fed arbitrary input, in arbitrary pieces, with time passing:
//! nothing panics, sequence numbers never go backwards, and nothing is delivered twice.
//! With the first byte's top bit set, each piece is a body wrapped in a correct frame with the
//! counterparty's header and the next number (sometimes skipped or repeated), so the session
//! rules see well-formed messages of every kind, not only garbled ones.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use zero_core::machine::{Closed, Machine};
use zero_fix::codec::{Builder, Timestamp};
use zero_fix::session::{Event, MemoryStore, Role, Session, SessionConfig};

fn frame(seq: u64, msg_type: &[u8], body: &[u8], out: &mut Vec<u8>) {
    let mut b = Builder::new(out, b"FIX.4.4", msg_type);
    b.str(49, b"CLIENT").str(56, b"BROKER").uint(34, seq).str(52, b"20261207-09:30:00.000");
    for field in body.split(|&c| c == 1).filter(|f| !f.is_empty()) {
        if let Some(eq) = field.iter().position(|&c| c == b'=') {
            if let Ok(tag) = std::str::from_utf8(&field[..eq]).unwrap_or("x").parse::<u32>() {
                if tag > 0 && eq + 1 < field.len() {
                    b.str(tag, &field[eq + 1..]);
                }
            }
        }
    }
    b.finish();
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else { return };
    let mut now = Instant::now();
    let mut config = SessionConfig::new(Role::Acceptor, "BROKER", "CLIENT");
    // The clock runs ahead of the fixed SendingTime; checked, it would end every run early.
    config.max_latency = None;
    let mut s = Session::new(config, MemoryStore::new(64), now, Timestamp(1_796_635_800_000_000_000));
    s.handle_connected(now);
    let mut logon = Vec::new();
    frame(1, b"A", b"98=0\x01108=30\x01", &mut logon);
    s.handle_input(now, &logon);
    let mut seq: u64 = 2;
    let mut delivered = Vec::new();
    let piece = usize::from(mode & 0x3f).max(1);
    for chunk in data.chunks(piece) {
        if mode & 0x80 != 0 {
            let (kind, body) = chunk.split_first().unwrap_or((&b'D', &[]));
            let msg_type: &[u8] = match kind % 8 {
                0 => b"0",
                1 => b"1",
                2 => b"2",
                3 => b"4",
                4 => b"5",
                5 => b"A",
                _ => b"D",
            };
            seq = match kind / 64 {
                0 => seq + 1,
                1 => seq + 2,
                2 => seq.saturating_sub(1).max(1),
                _ => seq,
            };
            let mut m = Vec::new();
            frame(seq, msg_type, body, &mut m);
            s.handle_input(now, &m);
        } else {
            s.handle_input(now, chunk);
        }
        let before = s.next_in();
        while let Some(e) = s.poll_event() {
            if let Event::Application(m) = e {
                let n = m.seq_num().expect("a delivered message has a number");
                assert!(!delivered.contains(&n), "message {n} delivered twice");
                delivered.push(n);
            }
        }
        assert!(s.next_in() >= before || s.next_in() == 1, "next_in went back without a reset");
        while s.poll_transmit().is_some() {}
        if s.poll_close() {
            s.handle_closed(now, Closed::Requested);
            return;
        }
        now += Duration::from_millis(u64::from(chunk.len() as u8) * 100);
        if s.poll_timeout().is_some_and(|t| t <= now) {
            s.handle_timeout(now);
        }
    }
});
