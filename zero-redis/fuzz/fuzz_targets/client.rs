//! The client machine fed arbitrary server bytes, in arbitrary pieces, with commands and
//! subscriptions outstanding: it must never panic, and every command must end with a reply,
//! a failure, or still be outstanding. With the client-side cache on, reads are issued
//! throughout, so entries are filled, hit and invalidated by whatever the bytes say.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use zero_core::machine::Machine;
use zero_redis::client::{CacheConfig, Client, ClientConfig, Event, Protocol, SubKind};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else { return };
    let protocol = if mode & 1 == 0 { Protocol::Resp3 } else { Protocol::Resp2 };
    let config = ClientConfig {
        protocol,
        password: (mode & 2 != 0).then(|| "pw".into()),
        database: u32::from(mode >> 4 & 7),
        cache: (mode & 0x80 != 0).then(|| CacheConfig { max_entries: 2, max_bytes: 1024, max_age: None }),
        ..ClientConfig::default()
    };
    let mut now = Instant::now();
    let mut client = Client::new(config, now);
    client.send_args(&["GET", "k"], now);
    client.subscribe(SubKind::Channel, &["a", "b"], now);
    client.send_args(&["SET", "k", "v"], now);
    assert!(client.wants_connect(now));
    client.handle_connected(now);
    for chunk in data.chunks(usize::from(mode >> 2 & 3) * 7 + 1) {
        client.send_args(&["GET", if chunk[0] & 1 == 0 { "k" } else { "j" }], now);
        while client.poll_transmit().is_some() {}
        client.handle_input(now, chunk);
        while let Some(event) = client.poll_event() {
            if let Event::Disconnected { .. } = event {
                now += Duration::from_secs(3);
            }
        }
        client.poll_close();
        client.handle_timeout(now);
        if client.wants_connect(now) {
            client.handle_connected(now);
        }
    }
    client.close();
    while client.poll_event().is_some() {}
    assert_eq!(client.in_flight(), 0);
    assert!(client.cache().is_none_or(|c| c.stats().entries == 0));
});
