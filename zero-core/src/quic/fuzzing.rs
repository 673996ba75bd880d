//! A fuzz entry point: arbitrary datagrams from two peers into a QUIC server endpoint on a
//! real shard, its events through [`crate::echo::Echo`]. Nothing may panic, and the shard must
//! keep serving.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::Duration;

use crate::echo::Echo;
use crate::id::UdpId;
use crate::io::Io;

thread_local! {
    static SHARD: RefCell<Option<(Io, UdpId, Echo)>> = const { RefCell::new(None) };
}

/// Each record is one datagram: a byte whose top bit picks the peer and whose low 7 bits
/// times 16 give the length, then that many bytes (fewer at the end of the input).
pub fn feed(data: &[u8]) {
    SHARD.with(|shard| {
        let mut shard = shard.borrow_mut();
        let (io, endpoint, echo) = shard.get_or_insert_with(|| {
            let pki = crate::tls::SelfSigned::generate(&["localhost"]).expect("a certificate");
            let (tls, _) = pki.server().and_then(|s| s.build()).expect("a TLS configuration");
            let server = super::server_config(&tls, true).expect("a QUIC configuration");
            let mut io = Io::new(Echo::config()).expect("a shard");
            let endpoint =
                io.quic_bind("127.0.0.1:0".parse().expect("an address"), Some(server)).expect("bind");
            (io, endpoint, Echo::default())
        });
        let peers: [SocketAddr; 2] =
            ["127.0.0.1:9".parse().expect("an address"), "[::1]:9".parse().expect("an address")];
        let mut input = data;
        while let Some((&head, rest)) = input.split_first() {
            let len = (usize::from(head & 0x7f) * 16).min(rest.len());
            let (datagram, rest) = rest.split_at(len);
            input = rest;
            let now = std::time::Instant::now();
            io.quic.on_datagram(now, *endpoint, peers[usize::from(head >> 7)], datagram, false);
            io.quic_drive();
        }
        io.run_once(echo, Some(Duration::ZERO)).expect("the shard runs");
    });
}
