//! The MQTT client machine fed arbitrary server bytes, in arbitrary pieces, with publishes at
//! every QoS and a subscription outstanding: it must never panic, never buffer more than its
//! maximum packet size of a packet, and reconnect after whatever the bytes did.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use zero_core::machine::{Closed, Machine};
use zero_core::CloseReason;
use zero_mqtt::client::{Client, ClientConfig};
use zero_mqtt::codec::{Properties, Protocol, Publish, QoS, SubOptions};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else { return };
    let mut config = ClientConfig::default();
    config.protocol = if mode & 1 == 0 { Protocol::V5 } else { Protocol::V311 };
    config.client_id = "fuzz".into();
    config.clean_start = mode & 2 == 0;
    config.max_packet_size = 4096;
    let mut now = Instant::now();
    let mut client = Client::new(config, now);
    let _ = client.subscribe(&[("t/#", SubOptions::qos(QoS::ExactlyOnce))], None);
    assert!(client.wants_connect(now));
    client.handle_connected(now);
    for (i, chunk) in data.chunks(usize::from(mode >> 2 & 7) * 5 + 1).enumerate() {
        let qos = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce][i % 3];
        let p = Publish {
            dup: false,
            qos,
            retain: false,
            topic: "t/x",
            packet_id: 0,
            properties: Properties::default(),
            payload: chunk,
        };
        let _ = client.publish(p, now);
        client.handle_input(now, chunk);
        while client.poll_transmit().is_some() {}
        while client.poll_event().is_some() {}
        if client.poll_close() {
            client.handle_closed(now, Closed::Lost(CloseReason::Reset));
        }
        now += Duration::from_millis(700);
        client.handle_timeout(now);
        if client.wants_connect(now) {
            client.handle_connected(now);
        }
    }
    client.disconnect();
    while client.poll_event().is_some() {}
});
