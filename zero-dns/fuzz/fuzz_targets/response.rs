//! The resolver's response path fed arbitrary bytes: datagrams on attempts and bytes on
//! streams in flight, from the right and the wrong address, with time passing. Nothing panics or
//! hangs, every lookup ends with exactly one answer, and the attempts it opened are closed.
//! With the first byte's top bit set, the input's pieces are spliced into a well-formed
//! response to the query actually sent (its id and question), so the answer handling sees
//! every rcode, flag and section, not only malformed bytes.
#![no_main]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use zero_dns::resolver::{Close, Event, Resolver, Transmit};
use zero_dns::{wire, RecordType, ResolverConfig};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else { return };
    let servers: [SocketAddr; 2] = ["127.0.0.1:5301".parse().unwrap(), "127.0.0.1:5302".parse().unwrap()];
    let mut config = ResolverConfig::with_servers(&servers);
    config.case_randomization = mode & 1 != 0;
    config.edns_size = if mode & 2 != 0 { 0 } else { 1232 };
    let mut r = Resolver::new(config, u64::from(mode));
    let mut now = Instant::now();
    let names = ["a.zero.test", "b.zero.test.", "c", "a.zero.test"];
    let types = [RecordType::A, RecordType::AAAA, RecordType::MX, RecordType::TXT];
    let lookups: Vec<_> = (0..4).map(|i| r.lookup(now, names[i], types[i])).collect();
    let mut answered = HashSet::new();
    let mut open: Vec<Transmit> = Vec::new();
    let piece = usize::from(mode >> 2 & 0x1f).max(1);
    for chunk in data.chunks(piece).take(200) {
        while let Some(t) = r.poll_transmit() {
            open.push(t);
        }
        while let Some(closed) = r.poll_close() {
            match closed {
                Close::Attempt(a) => open.retain(|t| t.attempt != a),
                Close::Stream(s) => open.retain(|t| t.stream != Some(s)),
            }
        }
        if let Some(t) = open.get(usize::from(chunk[0]) % open.len().max(1)).cloned() {
            let bytes = if mode & 0x80 != 0 { splice(&t, chunk) } else { chunk.to_vec() };
            match (t.stream, chunk[0] & 3) {
                (Some(stream), 0) => r.handle_stream_closed(now, stream, None),
                (Some(stream), _) => r.handle_stream(now, stream, &wire::tcp_frame(&bytes)),
                (None, 0) => r.handle_datagram(now, t.attempt, "127.0.0.1:9".parse().unwrap(), &bytes),
                (None, _) => r.handle_datagram(now, t.attempt, t.server, &bytes),
            }
        }
        while let Some(Event::Answer { lookup, .. }) = r.poll_event() {
            assert!(lookups.contains(&lookup), "an answer to a lookup nobody made");
            assert!(answered.insert(lookup), "a lookup answered twice");
        }
        now += Duration::from_millis(u64::from(chunk[0]) * 20);
        if r.poll_timeout().is_some_and(|t| t <= now) {
            r.handle_timeout(now);
        }
    }
    // Let every try time out: each lookup ends with one answer.
    for _ in 0..100 {
        while r.poll_transmit().is_some() {}
        while let Some(Event::Answer { lookup, .. }) = r.poll_event() {
            assert!(answered.insert(lookup), "a lookup answered twice");
        }
        if r.pending() == 0 {
            break;
        }
        now += Duration::from_secs(6);
        r.handle_timeout(now);
    }
    assert_eq!(r.pending(), 0, "a lookup never ended");
    assert_eq!(answered.len(), lookups.len());
});

/// The query `t` sent, turned into a response whose header flags, rcode and trailing bytes
/// come from `chunk`.
fn splice(t: &Transmit, chunk: &[u8]) -> Vec<u8> {
    let query = if t.stream.is_some() {
        wire::tcp_unframe(&t.bytes).map_or(&t.bytes[..], |(m, _)| m)
    } else {
        &t.bytes[..]
    };
    let mut out = query.to_vec();
    if out.len() < 12 {
        return out;
    }
    out[2] = 0x80 | (chunk[0] & 0x7f); // QR, then opcode/AA/TC/RD from the input
    out[3] = chunk.get(1).copied().unwrap_or(0); // RA/Z/rcode
    if let Some(&n) = chunk.get(2) {
        out[7] = n & 0x0f; // ANCOUNT
    }
    out.extend_from_slice(chunk.get(3..).unwrap_or(&[]));
    out
}
