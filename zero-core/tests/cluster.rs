//! Two-shard clusters: one port shared through SO_REUSEPORT, and connections handed from
//! shard to shard.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;

use zero_core::{ClusterConfig, Event, Handler, IoCluster, ListenOptions, Ops};

/// Answers every message with the shard's index.
struct WhichShard(u8);

impl Handler for WhichShard {
    fn on_event(&mut self, ops: &mut Ops, event: Event<'_>) {
        if let Event::Data { conn, .. } = event {
            ops.send(conn, &[self.0]).unwrap();
        }
    }
}

#[test]
fn two_shards_both_serve_connections() {
    let port = Arc::new(AtomicU16::new(0));
    // Pick a free port, then let both shards bind it with SO_REUSEPORT.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    port.store(free, Ordering::SeqCst);
    let mut config = ClusterConfig::new(2);
    config.cpus = vec![0, 1];
    let p = port.clone();
    let cluster = IoCluster::start(config, move |shard, io| {
        let mut opts = ListenOptions::default();
        opts.reuse_port = true;
        io.tcp_listen_with(([127, 0, 0, 1], p.load(Ordering::SeqCst)).into(), &opts)?;
        Ok(WhichShard(shard as u8))
    })
    .unwrap();
    assert_eq!(cluster.handles().len(), 2);
    let mut served = [0usize; 2];
    for _ in 0..64 {
        let mut c = TcpStream::connect(("127.0.0.1", free)).unwrap();
        c.write_all(b"?").unwrap();
        let mut shard = [0u8; 1];
        c.read_exact(&mut shard).unwrap();
        served[shard[0] as usize] += 1;
    }
    cluster.stop().unwrap();
    assert!(served[0] > 0 && served[1] > 0, "both shards serve: {served:?}");
}

/// Answers every chunk with `[shard] + chunk`; a chunk starting with `move` hands the
/// connection (and the rest of the chunk) to the other shard, which carries on from there.
struct Mover {
    /// Connections being handed off, with the bytes that came after `move`.
    leaving: Vec<(zero_core::ConnId, Vec<u8>)>,
}

/// What one shard posts to the other.
struct Arrival(zero_core::DetachedStream, Vec<u8>);

impl Mover {
    fn answer(ops: &mut Ops, conn: zero_core::ConnId, data: &[u8]) {
        let mut reply = vec![ops.shard() as u8];
        reply.extend_from_slice(data);
        ops.send(conn, &reply).unwrap();
    }
}

impl Handler for Mover {
    fn on_event(&mut self, ops: &mut Ops, event: Event<'_>) {
        match event {
            Event::Data { conn, data } => {
                if let Some((_, rest)) = self.leaving.iter_mut().find(|(c, _)| *c == conn) {
                    rest.extend_from_slice(&data);
                } else if let Some(rest) = data.strip_prefix(b"move") {
                    ops.detach(conn).unwrap();
                    self.leaving.push((conn, rest.to_vec()));
                } else {
                    Mover::answer(ops, conn, &data);
                }
            }
            Event::Detached { conn, stream } => {
                let i = self.leaving.iter().position(|(c, _)| *c == conn).expect("known");
                let (_, rest) = self.leaving.swap_remove(i);
                let other = (ops.shard() + 1) % ops.peers().len();
                ops.peers()[other].post(Arrival(stream, rest)).unwrap();
            }
            Event::Message(m) => {
                let Arrival(stream, rest) = *m.downcast::<Arrival>().unwrap();
                let conn = ops.attach(stream).unwrap();
                Mover::answer(ops, conn, format!("arrived{}", String::from_utf8_lossy(&rest)).as_bytes());
            }
            _ => {}
        }
    }
}

/// Starts a two-shard [`Mover`] cluster on one port; `tls` makes its listeners TLS.
fn movers(tls: Option<Arc<zero_core::rustls::ServerConfig>>) -> (IoCluster, u16) {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cluster = IoCluster::start(ClusterConfig::new(2), move |_, io| {
        let mut opts = ListenOptions::default();
        opts.reuse_port = true;
        let addr = ([127, 0, 0, 1], free).into();
        match &tls {
            Some(config) => io.tls_listen_with(addr, &opts, config.clone())?,
            None => io.tcp_listen_with(addr, &opts)?,
        };
        Ok(Mover { leaving: Vec::new() })
    })
    .unwrap();
    (cluster, free)
}

/// Reads exactly `n` bytes.
fn read_n(s: &mut impl Read, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    s.read_exact(&mut buf).unwrap();
    buf
}

/// Sends `a`, moves (with `b` in the same write), sends `c`: each answer names the shard that
/// gave it, and nothing is lost or reordered on the way.
fn hand_over(s: &mut (impl Read + Write)) {
    s.write_all(b"a").unwrap();
    let first = read_n(s, 2);
    assert_eq!(first[1], b'a');
    s.write_all(b"moveb").unwrap();
    let arrived = read_n(s, 9);
    assert_eq!(&arrived[1..], b"arrivedb", "the bytes after `move` came along");
    assert_ne!(arrived[0], first[0], "the other shard answers now");
    s.write_all(b"c").unwrap();
    assert_eq!(read_n(s, 2), [arrived[0], b'c']);
}

#[test]
fn a_connection_moves_between_shards_with_its_pending_bytes() {
    let (cluster, port) = movers(None);
    for _ in 0..8 {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
        hand_over(&mut c);
    }
    cluster.stop().unwrap();
}

#[test]
fn a_tls_connection_moves_with_its_session() {
    let ca = common::pki::Ca::new("zero test CA");
    let leaf = ca.server(&["localhost"]);
    let (server, _) = zero_core::tls::ServerTls::from_pem(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes())
        .unwrap()
        .build()
        .unwrap();
    let client = zero_core::tls::ClientTls::with_ca_pem(ca.pem().as_bytes()).unwrap().build().unwrap();
    let (cluster, port) = movers(Some(server));
    for _ in 0..4 {
        let sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
        sock.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
        let conn = zero_core::rustls::ClientConnection::new(client.clone(), "localhost".try_into().unwrap())
            .unwrap();
        hand_over(&mut zero_core::rustls::StreamOwned::new(conn, sock));
    }
    cluster.stop().unwrap();
}

/// Moves every connection to the other shard on its first bytes, like [`Mover`], and checks
/// what a handler indexing its connections by slot relies on: no new connection (accepted or
/// attached) gets a slot whose last connection's `Closed` it has not seen yet.
struct SlotWatch {
    held: std::collections::HashMap<usize, zero_core::ConnId>,
    leaving: Vec<zero_core::ConnId>,
    clashes: Arc<std::sync::atomic::AtomicUsize>,
}

impl SlotWatch {
    fn hold(&mut self, conn: zero_core::ConnId) {
        if let Some(old) = self.held.insert(conn.slot(), conn) {
            eprintln!("{conn:?} got the slot of {old:?}, whose close was not reported yet");
            self.clashes.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Handler for SlotWatch {
    fn on_event(&mut self, ops: &mut Ops, event: Event<'_>) {
        match event {
            Event::Accepted { conn, .. } => self.hold(conn),
            Event::Data { conn, .. } if !self.leaving.contains(&conn) && ops.detach(conn).is_ok() => {
                self.leaving.push(conn);
            }
            Event::Detached { conn, stream } => {
                self.leaving.retain(|&c| c != conn);
                self.held.remove(&conn.slot());
                let other = (ops.shard() + 1) % ops.peers().len();
                let _ = ops.peers()[other].post(Arrival(stream, Vec::new()));
            }
            Event::Message(m) => {
                let Arrival(stream, _) = *m.downcast::<Arrival>().unwrap();
                if let Ok(conn) = ops.attach(stream) {
                    self.hold(conn);
                    let _ = ops.send(conn, b"!");
                }
            }
            Event::Closed { conn, .. } => {
                self.leaving.retain(|&c| c != conn);
                if self.held.get(&conn.slot()) == Some(&conn) {
                    self.held.remove(&conn.slot());
                }
            }
            _ => {}
        }
    }
}

#[test]
fn a_slot_is_reused_only_after_its_last_connection_was_reported_closed() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let clashes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = clashes.clone();
    let cluster = IoCluster::start(ClusterConfig::new(2), move |_, io| {
        let mut opts = ListenOptions::default();
        opts.reuse_port = true;
        io.tcp_listen_with(([127, 0, 0, 1], free).into(), &opts)?;
        Ok(SlotWatch { held: Default::default(), leaving: Vec::new(), clashes: seen.clone() })
    })
    .unwrap();
    // Connections that move and vanish at once, from several threads, so that closes and
    // arrivals meet in the same ticks.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(2);
    let threads: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                let mut n = 0u32;
                while std::time::Instant::now() < until {
                    n += 1;
                    let Ok(mut c) = TcpStream::connect(("127.0.0.1", free)) else { continue };
                    let _ = c.write_all(b"x");
                    if (n + i).is_multiple_of(3) {
                        let _ = c.set_read_timeout(Some(std::time::Duration::from_millis(20)));
                        let _ = c.read(&mut [0u8; 1]);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    cluster.stop().unwrap();
    assert_eq!(clashes.load(Ordering::SeqCst), 0, "slots were reused before their close was reported");
}

/// Panics when another thread posts it anything.
struct Fragile;

impl Handler for Fragile {
    fn on_event(&mut self, _: &mut Ops, event: Event<'_>) {
        if let Event::Message(_) = event {
            panic!("a bug in the handler");
        }
    }
}

#[test]
fn a_panic_on_one_shard_stops_them_all_and_closes_their_listeners() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cluster = IoCluster::start(ClusterConfig::new(2), move |_, io| {
        let mut opts = ListenOptions::default();
        opts.reuse_port = true;
        io.tcp_listen_with(([127, 0, 0, 1], free).into(), &opts)?;
        Ok(Fragile)
    })
    .unwrap();
    cluster.handles()[1].post(()).unwrap();
    let error = cluster.join().expect_err("the panic is reported");
    assert!(
        matches!(&error, zero_core::IoError::ShardPanicked { shard: 1, message } if message == "a bug in the handler"),
        "{error}"
    );
    assert!(TcpStream::connect(("127.0.0.1", free)).is_err(), "nothing listens any more");
}
