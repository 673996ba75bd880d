//! The broker machine fed arbitrary bytes on two connections (split where the input says): it
//! must never panic, whatever a hostile client sends.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use zero_mqtt::broker::{Broker, BrokerConfig, Transmit};

#[derive(Default)]
struct Sink(Vec<u8>);

impl Transmit<u32> for Sink {
    fn buffer(&mut self, _conn: u32) -> Option<&mut Vec<u8>> {
        self.0.clear();
        Some(&mut self.0)
    }
    fn close(&mut self, _conn: u32) {}
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, data)) = data.split_first() else { return };
    let (a, b) = data.split_at(usize::from(split).min(data.len()));
    let mut now = Instant::now();
    let mut broker: Broker<u32> = Broker::new(BrokerConfig::default(), now, std::time::SystemTime::UNIX_EPOCH);
    let mut out = Sink::default();
    let peer = Some("127.0.0.1:1".parse().unwrap());
    broker.handle_accept(now, 1, peer, &mut out);
    broker.handle_accept(now, 2, peer, &mut out);
    for chunk in a.chunks(7).zip(b.chunks(5).map(Some).chain(std::iter::repeat(None))) {
        broker.handle_input(now, 1, chunk.0, &mut out);
        if let Some(c) = chunk.1 {
            broker.handle_input(now, 2, c, &mut out);
        }
        now += Duration::from_millis(250);
        broker.handle_timeout(now, &mut out);
    }
    broker.handle_closed(now, 1, &mut out);
    broker.handle_closed(now, 2, &mut out);
});
