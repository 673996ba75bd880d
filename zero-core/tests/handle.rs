//! Cross-thread handles: many threads sending to a shard's connections.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

use common::Server;
use zero_core::{Config, ConnId, Event, Handler, Ops};

/// Reports every accepted connection to the test.
struct Announce(mpsc::Sender<ConnId>);

impl Handler for Announce {
    fn on_event(&mut self, _: &mut Ops, event: Event<'_>) {
        if let Event::Accepted { conn, .. } = event {
            self.0.send(conn).unwrap();
        }
    }
}

#[test]
fn eight_threads_send_ten_thousand_each_in_order_and_none_lost() {
    const THREADS: usize = 8;
    const SENDS: u32 = 10_000;
    let (tx, rx) = mpsc::channel();
    let server = Server::spawn(Config::default(), move |io| {
        let l = io.tcp_listen("127.0.0.1:0".parse().unwrap()).unwrap();
        (Announce(tx), io.listener_addr(l).unwrap())
    });
    let clients: Vec<TcpStream> = (0..THREADS).map(|_| TcpStream::connect(server.addr).unwrap()).collect();
    let conns: Vec<ConnId> = (0..THREADS).map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap()).collect();
    // Each client learns which connection id it has from the first message.
    let senders: Vec<_> = conns
        .into_iter()
        .map(|conn| {
            let h = server.handle.clone();
            std::thread::spawn(move || {
                for seq in 0..SENDS {
                    let mut msg = conn.to_u64().to_be_bytes().to_vec();
                    msg.extend_from_slice(&seq.to_be_bytes());
                    h.send(conn, msg).unwrap();
                }
            })
        })
        .collect();
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            std::thread::spawn(move || {
                c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                let mut first_conn = None;
                for expect in 0..SENDS {
                    let mut msg = [0u8; 12];
                    c.read_exact(&mut msg).unwrap();
                    let conn = u64::from_be_bytes(msg[..8].try_into().unwrap());
                    assert_eq!(*first_conn.get_or_insert(conn), conn, "another connection's data");
                    assert_eq!(u32::from_be_bytes(msg[8..].try_into().unwrap()), expect, "out of order");
                }
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    for r in readers {
        r.join().unwrap();
    }
}

#[test]
fn posted_messages_reach_the_handler() {
    struct Inbox(mpsc::Sender<String>);
    impl Handler for Inbox {
        fn on_event(&mut self, _: &mut Ops, event: Event<'_>) {
            if let Event::Message(m) = event {
                self.0.send(*m.downcast::<String>().unwrap()).unwrap();
            }
        }
    }
    let (tx, rx) = mpsc::channel();
    let server = Server::spawn(Config::default(), move |_| (Inbox(tx), "0.0.0.0:0".parse().unwrap()));
    server.handle.post("hello shard".to_string()).unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), "hello shard");
}
