//! A two-shard cluster sharing one port through SO_REUSEPORT.

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
