//! TCP and Unix stream sockets against real loopback peers.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::{echo_server, run_until, Server};
use sha2::{Digest, Sha256};
use zero_core::{CloseReason, Config, ConnId, Event, Handler, Io, IoError, Ops, SlowConsumer};

fn round_trip<S: Read + Write>(s: &mut S, msg: &[u8]) {
    s.write_all(msg).unwrap();
    let mut back = vec![0; msg.len()];
    s.read_exact(&mut back).unwrap();
    assert_eq!(back, msg);
}

#[test]
fn tcp_echo() {
    let server = echo_server(Config::default());
    let mut c = TcpStream::connect(server.addr).unwrap();
    for i in 0..100u32 {
        round_trip(&mut c, format!("message {i}").as_bytes());
    }
    drop(c);
    let echo = server.stop();
    assert_eq!(echo.accepted, 1);
}

#[test]
fn unix_echo() {
    let dir = std::env::temp_dir().join(format!("zero-uds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("echo.sock");
    let _ = std::fs::remove_file(&path);
    let p = path.clone();
    let server = Server::spawn(Config::default(), move |io| {
        io.unix_listen(&p).unwrap();
        (zero_core::echo::Echo::default(), "0.0.0.0:0".parse().unwrap())
    });
    let mut c = UnixStream::connect(&path).unwrap();
    round_trip(&mut c, b"over a unix socket");
    round_trip(&mut c, &vec![7u8; 100_000]);
    drop(c);
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A client shard: connects `n` times, sends one message per connection, expects it back.
struct Clients {
    expected: HashMap<ConnId, Vec<u8>>,
    got: HashMap<ConnId, Vec<u8>>,
    done: usize,
    failed: usize,
}

impl Handler for Clients {
    fn on_event(&mut self, ops: &mut Ops, event: Event<'_>) {
        match event {
            Event::Connected { conn } => {
                let msg = self.expected[&conn].clone();
                ops.send(conn, &msg).unwrap();
            }
            Event::Data { conn, data } => {
                let got = self.got.entry(conn).or_default();
                got.extend_from_slice(&data);
                if got.len() == self.expected[&conn].len() {
                    assert_eq!(got, &self.expected[&conn]);
                    self.done += 1;
                    ops.close(conn).unwrap();
                }
            }
            Event::ConnectFailed { .. } => self.failed += 1,
            _ => {}
        }
    }
}

#[test]
fn a_thousand_concurrent_connections() {
    let server = echo_server(Config::default());
    let mut io = Io::new(Config::default()).unwrap();
    let mut clients = Clients { expected: HashMap::new(), got: HashMap::new(), done: 0, failed: 0 };
    for i in 0..1000 {
        let conn = io.tcp_connect(server.addr).unwrap();
        clients
            .expected
            .insert(conn, format!("connection {i} says hello {}", "x".repeat(i % 200)).into_bytes());
    }
    run_until(&mut io, &mut clients, Duration::from_secs(60), |c| c.done + c.failed == 1000);
    assert_eq!(clients.failed, 0);
    drop(io);
    assert_eq!(server.stop().accepted, 1000);
}

#[test]
fn a_256_mib_transfer_survives_intact() {
    const TOTAL: usize = 256 << 20;
    let server = echo_server(Config::default());
    let c = TcpStream::connect(server.addr).unwrap();
    let mut w = c.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let mut hash = Sha256::new();
        let mut block = vec![0u8; 64 * 1024];
        let mut x = 0x9E37_79B9u32;
        for _ in 0..TOTAL / block.len() {
            for b in block.iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
            hash.update(&block);
            w.write_all(&block).unwrap();
        }
        w.shutdown(Shutdown::Write).unwrap();
        hash.finalize()
    });
    let mut r = c;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0;
    loop {
        let k = r.read(&mut buf).unwrap();
        if k == 0 {
            break;
        }
        hash.update(&buf[..k]);
        n += k;
    }
    assert_eq!(n, TOTAL);
    assert_eq!(hash.finalize(), writer.join().unwrap());
}

/// Records what happens to connections.
#[derive(Default)]
struct Recorder {
    accepted: Vec<ConnId>,
    closed: Vec<(ConnId, CloseReason)>,
    half_closed: Vec<ConnId>,
    data: Vec<u8>,
}

impl Handler for Recorder {
    fn on_event(&mut self, ops: &mut Ops, event: Event<'_>) {
        match event {
            Event::Accepted { conn, .. } => self.accepted.push(conn),
            Event::Closed { conn, reason } => self.closed.push((conn, reason)),
            Event::HalfClosed { conn } => {
                self.half_closed.push(conn);
                ops.send(conn, b"goodbye").unwrap();
                ops.close(conn).unwrap();
            }
            Event::Data { data, .. } => self.data.extend_from_slice(&data),
            _ => {}
        }
    }
}

fn listen(io: &mut Io) -> SocketAddr {
    let l = io.tcp_listen("127.0.0.1:0".parse().unwrap()).unwrap();
    io.listener_addr(l).unwrap()
}

#[test]
fn peer_reset_is_reported_as_reset() {
    let mut io = Io::new(Config::default()).unwrap();
    let addr = listen(&mut io);
    let mut rec = Recorder::default();
    let c = socket2::Socket::from(TcpStream::connect(addr).unwrap());
    run_until(&mut io, &mut rec, Duration::from_secs(5), |r| r.accepted.len() == 1);
    c.set_linger(Some(Duration::ZERO)).unwrap(); // close sends RST
    drop(c);
    run_until(&mut io, &mut rec, Duration::from_secs(5), |r| !r.closed.is_empty());
    assert_eq!(rec.closed, [(rec.accepted[0], CloseReason::Reset)]);
}

#[test]
fn peer_fin_closes_gracefully_by_default() {
    let mut io = Io::new(Config::default()).unwrap();
    let addr = listen(&mut io);
    let mut rec = Recorder::default();
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(b"last words").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    run_until(&mut io, &mut rec, Duration::from_secs(5), |r| !r.closed.is_empty());
    assert_eq!(rec.data, b"last words");
    assert_eq!(rec.closed[0].1, CloseReason::PeerClosed);
    let mut rest = vec![];
    c.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
}

/// Answers each message with "ack:" and the message.
struct Acker;

impl Handler for Acker {
    fn on_event(&mut self, ops: &mut Ops, event: Event<'_>) {
        if let Event::Data { conn, data } = event {
            ops.send(conn, b"ack:").unwrap();
            ops.send(conn, &data).unwrap();
        }
    }
}

#[test]
fn replies_to_data_that_arrived_with_the_peers_fin_are_delivered() {
    // Without half_open the shard closes on the peer's FIN, but only after the handler has
    // seen (and answered) everything that came before it.
    let server = Server::spawn(Config::default(), |io| (Acker, listen(io)));
    for _ in 0..50 {
        let mut c = TcpStream::connect(server.addr).unwrap();
        c.write_all(b"request").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut reply = vec![];
        c.read_to_end(&mut reply).unwrap();
        assert_eq!(reply, b"ack:request");
    }
}

#[test]
fn half_close_keeps_the_write_side_open() {
    let mut config = Config::default();
    config.half_open = true;
    let mut io = Io::new(config).unwrap();
    let addr = listen(&mut io);
    let mut rec = Recorder::default();
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(b"request").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    run_until(&mut io, &mut rec, Duration::from_secs(5), |r| !r.closed.is_empty());
    assert_eq!(rec.half_closed.len(), 1);
    assert_eq!(rec.data, b"request");
    let mut reply = vec![];
    c.read_to_end(&mut reply).unwrap();
    assert_eq!(reply, b"goodbye", "the reply sent after the peer's FIN arrives in full");
    assert_eq!(rec.closed[0].1, CloseReason::Local);
}

#[derive(Default)]
struct Connector {
    outcome: Option<Result<ConnId, String>>,
}

impl Handler for Connector {
    fn on_event(&mut self, _: &mut Ops, event: Event<'_>) {
        match event {
            Event::Connected { conn } => self.outcome = Some(Ok(conn)),
            Event::ConnectFailed { error, .. } => self.outcome = Some(Err(format!("{error:?}"))),
            _ => {}
        }
    }
}

#[test]
fn connect_refused_is_an_event() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap(); // now closed
    let mut io = Io::new(Config::default()).unwrap();
    let conn = io.tcp_connect(port).unwrap();
    let mut h = Connector::default();
    run_until(&mut io, &mut h, Duration::from_secs(5), |h| h.outcome.is_some());
    let err = h.outcome.unwrap().unwrap_err();
    assert!(err.contains("ConnectionRefused") || err.contains("111"), "{err}");
    assert!(matches!(io.send(conn, b"x"), Err(IoError::Stale(_))), "a failed connection's id is stale");
}

#[test]
fn connect_timeout_is_an_event() {
    // A listener that never accepts, with its accept queue full: further SYNs are dropped.
    let l = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    l.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).unwrap();
    l.listen(0).unwrap();
    let addr = l.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = vec![];
    for _ in 0..4 {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.set_nonblocking(true).unwrap();
        let _ = s.connect(&addr.into());
        fillers.push(s);
    }
    std::thread::sleep(Duration::from_millis(100));
    let mut io = Io::new(Config::default()).unwrap();
    io.tcp_connect_timeout(addr, Duration::from_millis(300)).unwrap();
    let mut h = Connector::default();
    let start = std::time::Instant::now();
    run_until(&mut io, &mut h, Duration::from_secs(10), |h| h.outcome.is_some());
    let err = h.outcome.unwrap().unwrap_err();
    assert!(err.contains("ConnectTimeout"), "{err}");
    assert!(start.elapsed() >= Duration::from_millis(250));
}

#[test]
fn a_stale_conn_id_is_refused() {
    let mut io = Io::new(Config::default()).unwrap();
    let addr = listen(&mut io);
    let mut rec = Recorder::default();
    let first = TcpStream::connect(addr).unwrap();
    run_until(&mut io, &mut rec, Duration::from_secs(5), |r| r.accepted.len() == 1);
    let old = rec.accepted[0];
    io.close_now(old).unwrap();
    run_until(&mut io, &mut rec, Duration::from_secs(5), |r| r.closed.len() == 1);
    drop(first);
    let mut second = TcpStream::connect(addr).unwrap();
    run_until(&mut io, &mut rec, Duration::from_secs(5), |r| r.accepted.len() == 2);
    let new = rec.accepted[1];
    assert_ne!(old, new);
    assert!(matches!(io.send(old, b"for the old one"), Err(IoError::Stale(_))));
    assert!(matches!(io.close(old), Err(IoError::Stale(_))));
    io.send(new, b"for the new one").unwrap();
    io.poll(Some(Duration::ZERO)).unwrap();
    let mut buf = [0u8; 15];
    second.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"for the new one");
}

/// Writes as fast as it is allowed to a peer that never reads.
#[derive(Default)]
struct Flood {
    conn: Option<ConnId>,
    accepted_bytes: usize,
    refused: usize,
    writable: usize,
    closed: Option<CloseReason>,
    max_queued: usize,
}

const GIB: usize = 1 << 30;

impl Flood {
    fn pump(&mut self, ops: &mut Ops, conn: ConnId) {
        let chunk = [0x5Au8; 64 * 1024];
        while self.accepted_bytes < GIB {
            match ops.send(conn, &chunk) {
                Ok(()) => self.accepted_bytes += chunk.len(),
                Err(IoError::SendQueueFull { queued, .. }) => {
                    self.refused += 1;
                    self.max_queued = self.max_queued.max(queued);
                    return;
                }
                Err(e) => panic!("{e}"),
            }
        }
    }
}

impl Handler for Flood {
    fn on_event(&mut self, ops: &mut Ops, event: Event<'_>) {
        match event {
            Event::Accepted { conn, .. } => {
                self.conn = Some(conn);
                self.pump(ops, conn);
            }
            Event::Writable { conn } => {
                self.writable += 1;
                self.pump(ops, conn);
            }
            Event::Closed { reason, .. } => self.closed = Some(reason),
            _ => {}
        }
    }
}

fn rss_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_reader_that_never_reads_cannot_grow_the_server() {
    let mut config = Config::default();
    config.send_queue_limit = 4 << 20;
    let limit = config.send_queue_limit;
    let mut io = Io::new(config).unwrap();
    let addr = listen(&mut io);
    let mut flood = Flood::default();
    let _client = TcpStream::connect(addr).unwrap(); // never reads
    let before = rss_kib();
    run_until(&mut io, &mut flood, Duration::from_secs(10), |f| f.refused > 0);
    // Keep trying for a while: the queue must stay at its limit, not grow.
    for _ in 0..20 {
        io.run_once(&mut flood, Some(Duration::from_millis(10))).unwrap();
        let conn = flood.conn.unwrap();
        flood.pump(&mut io, conn);
    }
    let stats = io.conn_stats(flood.conn.unwrap()).unwrap();
    assert!(stats.reads_paused, "reads pause while the queue is full");
    assert!(stats.send_queued <= limit + 64 * 1024, "queued {} > limit {limit}", stats.send_queued);
    assert!(flood.accepted_bytes < GIB / 8, "the kernel cannot have taken {} bytes", flood.accepted_bytes);
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 64 * 1024, "server grew by {grown} KiB");
    assert_eq!(flood.closed, None, "Pause never disconnects");
}

#[test]
fn the_disconnect_policy_drops_a_slow_consumer() {
    let mut config = Config::default();
    config.send_queue_limit = 1 << 20;
    config.slow_consumer = SlowConsumer::Disconnect { after: Duration::from_millis(200) };
    let mut io = Io::new(config).unwrap();
    let addr = listen(&mut io);
    let mut flood = Flood::default();
    let _client = TcpStream::connect(addr).unwrap(); // never reads
    run_until(&mut io, &mut flood, Duration::from_secs(10), |f| f.closed.is_some());
    assert_eq!(flood.closed, Some(CloseReason::SlowConsumer));
    assert!(flood.accepted_bytes < GIB / 8);
}

#[test]
fn a_slow_reader_gets_everything_once_it_reads() {
    let mut config = Config::default();
    config.send_queue_limit = 256 * 1024;
    let server = echo_server(config);
    let mut c = TcpStream::connect(server.addr).unwrap();
    // Write 32 MiB without reading: the server must pause, hold, and resume without loss.
    let mut w = c.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        for i in 0..512u32 {
            w.write_all(&[i as u8; 64 * 1024]).unwrap();
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    while got < 512 * 64 * 1024 {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0);
        for (k, b) in buf[..n].iter().enumerate() {
            assert_eq!(*b, ((got + k) / (64 * 1024)) as u8, "byte {} out of order", got + k);
        }
        got += n;
    }
    writer.join().unwrap();
}
