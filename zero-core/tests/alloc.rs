//! Steady-state echo allocates nothing: no heap allocation per message, measured with a
//! counting global allocator while a shard and a client run on this one thread.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use zero_core::echo::Echo;
use zero_core::{Config, Io};

fn exchange(io: &mut Io, echo: &mut Echo, client: &mut TcpStream, msg: &[u8; 64], back: &mut [u8; 64]) {
    client.write_all(msg).unwrap();
    let mut got = 0;
    while got < back.len() {
        // Receive the message and queue the reply, then submit it and read what arrived.
        io.run_once(echo, Some(Duration::from_millis(1))).unwrap();
        io.poll(Some(Duration::ZERO)).unwrap();
        io.dispatch(echo);
        if let Ok(n) = client.read(&mut back[got..]) {
            got += n;
        }
    }
}

#[test]
fn echo_allocates_nothing_per_message_in_steady_state() {
    let mut io = Io::new(Config::default()).unwrap();
    let l = io.tcp_listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut client = TcpStream::connect(io.listener_addr(l).unwrap()).unwrap();
    client.set_nodelay(true).unwrap();
    client.set_nonblocking(true).unwrap();
    let mut echo = Echo::default();
    let (msg, mut back) = ([0xA5u8; 64], [0u8; 64]);
    // Warm up: accept, arm receives, let buffers reach their working capacity.
    for _ in 0..1_000 {
        exchange(&mut io, &mut echo, &mut client, &msg, &mut back);
    }
    let before = echo.bytes;
    let info = allocation_counter::measure(|| {
        for _ in 0..10_000 {
            exchange(&mut io, &mut echo, &mut client, &msg, &mut back);
        }
    });
    assert_eq!(echo.bytes - before, 10_000 * 64, "every message echoed");
    assert_eq!(back, msg);
    assert_eq!(info.count_total, 0, "{} allocations over 10,000 messages", info.count_total);
}
