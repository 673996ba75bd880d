//! UDP sockets closed by the thousand give their descriptors back. A binary of its own: it
//! counts the process's open descriptors, which other tests running beside it would change.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::Server;
use zero_core::{Config, Event, Handler, Ops};

/// Echoes every datagram back to its sender.
struct UdpEcho;

impl Handler for UdpEcho {
    fn on_event(&mut self, ops: &mut Ops, event: Event<'_>) {
        if let Event::Datagram { udp, peer, data, .. } = event {
            ops.send_to(udp, peer, &data).unwrap();
        }
    }
}

/// A socket per query, as a resolver has: each receives its answer and is closed, and its
/// descriptor is given back (the armed receive is cancelled), thousands of times over.
#[test]
fn closed_sockets_give_their_descriptors_back() {
    struct PerQuery {
        echo: SocketAddr,
        left: usize,
        current: Option<zero_core::UdpId>,
    }
    impl PerQuery {
        fn next(&mut self, ops: &mut Ops) {
            if self.left == 0 {
                return ops.stop();
            }
            self.left -= 1;
            let udp = ops.udp_bind("127.0.0.1:0".parse().unwrap()).unwrap();
            ops.send_to(udp, self.echo, b"query").unwrap();
            self.current = Some(udp);
        }
    }
    impl Handler for PerQuery {
        fn on_event(&mut self, ops: &mut Ops, event: Event<'_>) {
            if let Event::Datagram { udp, data, .. } = event {
                assert_eq!(&data[..], b"query");
                assert_eq!(Some(udp), self.current.take());
                ops.close_udp(udp).unwrap();
                self.next(ops);
            }
        }
    }
    let fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
    let server = Server::spawn(Config::default(), |io| {
        let u = io.udp_bind("127.0.0.1:0".parse().unwrap()).unwrap();
        (UdpEcho, io.udp_addr(u).unwrap())
    });
    let mut io = zero_core::Io::new(Config::default()).unwrap();
    let before = fds();
    let mut q = PerQuery { echo: server.addr, left: 3000, current: None };
    q.next(&mut io);
    io.run(&mut q).unwrap();
    // Let the last cancellations complete.
    io.run_once(&mut q, Some(Duration::from_millis(50))).unwrap();
    assert_eq!(fds(), before, "every closed socket's descriptor is back");
}
