//! Graceful shutdown: a cluster drains (listeners close, connections close after what is
//! queued for them) and stops together, within its grace period.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use zero_core::{ClusterConfig, IoCluster, ListenOptions, Reserved};

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

#[test]
fn a_drained_cluster_delivers_what_was_queued_then_closes_and_refuses_new_connections() {
    let (cluster, addr) = echo_cluster(Duration::from_secs(5));
    let mut clients: Vec<TcpStream> = (0..8).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let msg = vec![b'x'; 200_000];
    for c in &mut clients {
        c.write_all(b"warm").unwrap();
        let mut back = [0; 4];
        c.read_exact(&mut back).unwrap(); // served: the connection is on its shard
        c.write_all(&msg).unwrap();
    }
    let stopper = cluster.stopper();
    let started = Instant::now();
    let shutdown = std::thread::spawn(move || stopper.shutdown(Duration::from_secs(10)));
    // Every client gets what it sent back, then end of stream; closing its side ends the drain.
    for c in &mut clients {
        let mut back = Vec::new();
        c.read_to_end(&mut back).unwrap();
        assert_eq!(back.len(), msg.len(), "the echo was cut short by the drain");
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
