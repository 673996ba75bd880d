//! Graceful shutdown: a cluster drains (listeners close, connections close after what is
//! queued for them) and stops together, within its grace period.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};
use zero_core::{ClusterConfig, Event, Handler, IoCluster, ListenOptions, Ops, Reserved};

/// An echo cluster of two shards on one port.
fn echo_cluster(close_linger: Duration) -> (IoCluster, SocketAddr) {
    let mut reserved = Reserved::default();
    let addr = reserved.port("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut config = ClusterConfig::new(2);
    config.io = zero_core::echo::Echo::config();
    config.io.close_linger = close_linger;
    let cluster = IoCluster::start(config, move |_, io| {
        let mut opts = ListenOptions::default();
        opts.reuse_port = true;
        io.tcp_listen_with(addr, &opts)?;
        Ok(zero_core::echo::Echo::default())
    })
    .unwrap();
    (cluster, addr)
}

/// Answers each message with [`REPLY`] bytes.
struct Blast;

const REPLY: usize = 512 * 1024;

impl Handler for Blast {
    fn on_event(&mut self, ops: &mut Ops, event: Event<'_>) {
        if let Event::Data { conn, .. } = event {
            ops.send(conn, &vec![7u8; REPLY]).unwrap();
        }
    }
}

#[test]
fn a_drained_cluster_delivers_what_was_queued_then_closes_and_refuses_new_connections() {
    let mut reserved = Reserved::default();
    let addr = reserved.port("127.0.0.1:0".parse().unwrap()).unwrap();
    let cluster = IoCluster::start(ClusterConfig::new(2), move |_, io| {
        let mut opts = ListenOptions::default();
        opts.reuse_port = true;
        io.tcp_listen_with(addr, &opts)?;
        Ok(Blast)
    })
    .unwrap();
    // Small receive buffers: most of each reply waits in the server's send queue.
    let mut clients: Vec<TcpStream> = (0..8)
        .map(|_| {
            let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
            sock.set_recv_buffer_size(4096).unwrap();
            sock.connect(&addr.into()).unwrap();
            TcpStream::from(sock)
        })
        .collect();
    for c in &mut clients {
        c.write_all(b"go").unwrap();
        let mut first = [0; 1];
        c.read_exact(&mut first).unwrap(); // the reply is on its way
    }
    let stopper = cluster.stopper();
    let started = Instant::now();
    let shutdown = std::thread::spawn(move || stopper.shutdown(Duration::from_secs(10)));
    std::thread::sleep(Duration::from_millis(100)); // the drain has begun before we read on
                                                    // Every client gets its whole reply, then end of stream; closing its side ends the drain.
    for c in &mut clients {
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).unwrap();
        assert_eq!(rest.len() + 1, REPLY, "the reply was cut short by the drain");
        drop(c.shutdown(std::net::Shutdown::Both));
    }
    clients.clear();
    assert_eq!(shutdown.join().unwrap(), 2, "both shards drained in time");
    assert!(started.elapsed() < Duration::from_secs(5), "draining took {:?}", started.elapsed());
    cluster.join().unwrap();
    assert!(TcpStream::connect(addr).is_err(), "a stopped cluster still accepts");
}

#[test]
fn a_peer_that_never_closes_holds_the_drain_only_until_the_grace_period_ends() {
    let (cluster, addr) = echo_cluster(Duration::from_secs(30));
    let mut stuck = TcpStream::connect(addr).unwrap();
    stuck.write_all(b"hello").unwrap();
    let mut back = [0; 5];
    stuck.read_exact(&mut back).unwrap();
    let started = Instant::now();
    let in_time = cluster.stopper().shutdown(Duration::from_millis(500));
    let took = started.elapsed();
    assert_eq!(in_time, 1, "the shard without the connection drained; the other did not");
    assert!(took >= Duration::from_millis(500) && took < Duration::from_secs(3), "{took:?}");
    cluster.join().unwrap();
    let mut rest = Vec::new();
    assert!(matches!(stuck.read_to_end(&mut rest), Ok(0) | Err(_)), "the connection outlived its shard");
}
