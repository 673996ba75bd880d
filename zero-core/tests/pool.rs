//! The payload pool: exhausting it is survived, and detached buffers come back.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use zero_core::{Config, ConnId, DetachedBuf, Event, Handler, Io, Ops};

/// Holds payloads while `hoarding` (starving the pool), otherwise echoes them.
#[derive(Default)]
struct Hoarder {
    held: Vec<(ConnId, DetachedBuf)>,
    pressure: usize,
    hoarding: bool,
    echoed: usize,
}

impl Hoarder {
    fn release(&mut self, ops: &mut Ops) {
        self.hoarding = false;
        for (conn, buf) in self.held.drain(..) {
            ops.send(conn, &buf).unwrap();
            self.echoed += buf.len();
        }
    }
}

impl Handler for Hoarder {
    fn on_event(&mut self, ops: &mut Ops, event: Event<'_>) {
        match event {
            Event::Data { conn, data } if self.hoarding => self.held.push((conn, data.detach())),
            Event::Data { conn, data } => {
                ops.send(conn, &data).unwrap();
                self.echoed += data.len();
            }
            Event::PoolPressure { .. } => self.pressure += 1,
            _ => {}
        }
    }
}

#[test]
fn pool_exhaustion_is_survived_without_loss() {
    const TOTAL: usize = 2 << 20;
    let mut config = Config::default();
    config.pool_slots = 8;
    config.slot_size = 1024;
    let mut io = Io::new(config).unwrap();
    let l = io.tcp_listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = io.listener_addr(l).unwrap();
    let client = TcpStream::connect(addr).unwrap();
    let mut w = client.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        for i in 0..TOTAL / 256 {
            w.write_all(&[(i % 251) as u8; 256]).unwrap();
        }
    });
    let reader = std::thread::spawn(move || {
        let mut c = client;
        let mut buf = vec![0u8; TOTAL];
        c.read_exact(&mut buf).unwrap();
        for (i, chunk) in buf.chunks(256).enumerate() {
            assert!(chunk.iter().all(|b| *b == (i % 251) as u8), "chunk {i} corrupted or reordered");
        }
    });
    let mut h = Hoarder { hoarding: true, ..Hoarder::default() };
    // Hold every slot: the receive must then run out of buffers.
    common::run_until(&mut io, &mut h, Duration::from_secs(10), |h| h.held.len() == 8);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while io.pool_stats().exhausted == 0 {
        assert!(std::time::Instant::now() < deadline, "the receive never found the pool empty");
        io.run_once(&mut h, Some(Duration::from_millis(10))).unwrap();
    }
    assert!(h.pressure >= 1, "the pool ran dry and said so");
    assert_eq!(io.pool_stats().detached, 8);
    h.release(&mut io);
    // The receive is re-armed once slots return; everything arrives, in order.
    common::run_until(&mut io, &mut h, Duration::from_secs(30), |h| h.echoed == TOTAL);
    for _ in 0..5 {
        io.poll(Some(Duration::from_millis(5))).unwrap();
        io.dispatch(&mut h);
    }
    writer.join().unwrap();
    reader.join().unwrap();
    let stats = io.pool_stats();
    assert_eq!(stats.detached, 0, "every detached slot came back");
    assert_eq!(stats.available, stats.slots);
}

#[test]
fn detached_buffers_can_cross_threads_and_return() {
    let mut io = Io::new(Config::default()).unwrap();
    let l = io.tcp_listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut c = TcpStream::connect(io.listener_addr(l).unwrap()).unwrap();
    c.write_all(b"take me elsewhere").unwrap();
    struct Take(Option<DetachedBuf>);
    impl Handler for Take {
        fn on_event(&mut self, _: &mut Ops, event: Event<'_>) {
            if let Event::Data { data, .. } = event {
                self.0 = Some(data.detach());
            }
        }
    }
    let mut t = Take(None);
    common::run_until(&mut io, &mut t, Duration::from_secs(5), |t| t.0.is_some());
    let buf = t.0.take().unwrap();
    io.poll(Some(Duration::ZERO)).unwrap();
    assert_eq!(io.pool_stats().detached, 1);
    let text = std::thread::spawn(move || String::from_utf8(buf.to_vec()).unwrap()).join().unwrap();
    assert_eq!(text, "take me elsewhere");
    io.poll(Some(Duration::ZERO)).unwrap();
    assert_eq!(io.pool_stats().detached, 0);
}
