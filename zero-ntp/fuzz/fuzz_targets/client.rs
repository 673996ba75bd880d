//! The client fed arbitrary datagrams from its servers and strangers, with time passing and
//! requests going out: nothing panics, offsets and delays are finite, a refused server is
//! never asked again, and the selection (when there is one) names usable servers only.
//! With the first byte's top bit set, each piece is spliced into a server answer that echoes
//! the nonce of the request in flight, so the sample, kiss and selection paths see
//! well-formed packets of every stratum, leap and timestamp.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use zero_ntp::client::{Client, ClientConfig, Event, Standing, Transmit};
use zero_ntp::packet::{Packet, Timestamp};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else { return };
    let servers: Vec<SocketAddr> = (0..3).map(|i| SocketAddr::from(([127, 0, 0, 1], 12300 + i))).collect();
    let mut config = ClientConfig::new(&servers);
    config.min_poll = 0;
    config.max_poll = 3;
    let mut now = Instant::now();
    let mut wall = Timestamp(0xeb00_0000_0000_0000);
    let mut client = Client::new(config, now, u64::from(mode));
    let mut in_flight: Vec<Transmit> = Vec::new();
    for chunk in data.chunks(usize::from(mode & 0x3f).max(1) + 47).take(100) {
        while let Some(t) = client.poll_transmit(now, wall) {
            let refused = client.sources()[t.server].standing != Standing::Active;
            assert!(!refused, "a refused server was asked");
            in_flight.push(t);
        }
        let pick = usize::from(chunk[0]);
        let (to, bytes) = match in_flight.get(pick % in_flight.len().max(1)) {
            Some(t) if mode & 0x80 != 0 => {
                let mut b = chunk.to_vec();
                b.resize(48, 0);
                let nonce = Packet::decode(&t.bytes).expect("our request").transmit;
                b[24..32].copy_from_slice(&nonce.0.to_be_bytes());
                (t.to, b)
            }
            Some(t) => (t.to, chunk.to_vec()),
            None => (servers[pick % 3], chunk.to_vec()),
        };
        let from = if chunk[0] & 7 == 0 { SocketAddr::from(([127, 0, 0, 2], 123)) } else { to };
        client.handle_datagram(now, wall.shifted(f64::from(chunk[0]) / 1000.0), from, &bytes);
        while let Some(e) = client.poll_event() {
            if let Event::Sample { offset, delay, .. } = e {
                assert!(offset.is_finite() && delay.is_finite());
            }
        }
        if let Some(s) = client.selection(now) {
            assert!(!s.truechimers.is_empty() && s.truechimers.contains(&s.peer));
            assert!(s.offset.is_finite());
        }
        let step = Duration::from_millis(u64::from(chunk[chunk.len() - 1]) * 10);
        now += step;
        wall = wall.shifted(step.as_secs_f64());
        client.handle_timeout(now);
    }
});
