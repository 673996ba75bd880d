//! UDP sockets: echo with peer addresses, and multicast membership.

mod common;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, SystemTime};

use common::Server;
use zero_core::{Config, Event, Handler, Interface, Ops};

/// Echoes every datagram back to its sender.
#[derive(Default)]
struct UdpEcho {
    datagrams: usize,
}

impl Handler for UdpEcho {
    fn on_event(&mut self, ops: &mut Ops, event: Event<'_>) {
        if let Event::Datagram { udp, peer, data, .. } = event {
            self.datagrams += 1;
            ops.send_to(udp, peer, &data).unwrap();
        }
    }
}

fn udp_echo_server(bind: &'static str) -> Server<UdpEcho> {
    Server::spawn(Config::default(), move |io| {
        let u = io.udp_bind(bind.parse().unwrap()).unwrap();
        (UdpEcho::default(), io.udp_addr(u).unwrap())
    })
}

fn check_echo(server: SocketAddr, client_bind: &str) {
    let c = UdpSocket::bind(client_bind).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for i in 0..200u32 {
        let msg = format!("datagram {i} {}", "y".repeat((i as usize * 7) % 1200));
        c.send_to(msg.as_bytes(), server).unwrap();
        let mut buf = [0u8; 2048];
        let (n, from) = c.recv_from(&mut buf).unwrap();
        assert_eq!(from, server);
        assert_eq!(&buf[..n], msg.as_bytes());
    }
}

#[test]
fn udp_echo_ipv4() {
    let server = udp_echo_server("127.0.0.1:0");
    check_echo(server.addr, "127.0.0.1:0");
    assert_eq!(server.stop().datagrams, 200);
}

#[test]
fn udp_echo_ipv6() {
    let server = udp_echo_server("[::1]:0");
    check_echo(server.addr, "[::1]:0");
}

#[test]
fn udp_bursts_keep_every_datagram_within_the_socket_buffer() {
    let server = udp_echo_server("127.0.0.1:0");
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for i in 0..64u32 {
        c.send_to(&i.to_be_bytes(), server.addr).unwrap();
    }
    let mut seen = [false; 64];
    for _ in 0..64 {
        let mut buf = [0u8; 4];
        let (n, _) = c.recv_from(&mut buf).unwrap();
        assert_eq!(n, 4);
        seen[u32::from_be_bytes(buf) as usize] = true;
    }
    assert!(seen.iter().all(|s| *s));
}

/// Notes when each datagram arrived by the kernel's stamp and by the handler's clock, echoes it,
/// and stalls on the first so that the next waits in the kernel meanwhile.
#[derive(Default)]
struct Stamps {
    seen: Vec<(Option<SystemTime>, SystemTime)>,
}

impl Handler for Stamps {
    fn on_event(&mut self, ops: &mut Ops, event: Event<'_>) {
        if let Event::Datagram { udp, peer, received, data } = event {
            self.seen.push((received, SystemTime::now()));
            ops.send_to(udp, peer, &data).unwrap();
            if self.seen.len() == 1 {
                std::thread::sleep(Duration::from_millis(300));
            }
        }
    }
}

#[test]
fn kernel_receive_timestamps_are_when_a_datagram_arrived_not_when_it_was_handled() {
    let stamped = Server::spawn(Config::default(), |io| {
        let u = io.udp_bind("127.0.0.1:0".parse().unwrap()).unwrap();
        io.udp_timestamps(u).unwrap();
        (Stamps::default(), io.udp_addr(u).unwrap())
    });
    let plain = Server::spawn(Config::default(), |io| {
        let u = io.udp_bind("127.0.0.1:0".parse().unwrap()).unwrap();
        (Stamps::default(), io.udp_addr(u).unwrap())
    });
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let before = SystemTime::now();
    for server in [stamped.addr, plain.addr] {
        c.send_to(b"first", server).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        c.send_to(b"second", server).unwrap();
    }
    for _ in 0..4 {
        c.recv_from(&mut [0u8; 16]).unwrap();
    }
    let seen = stamped.stop().seen;
    assert_eq!(seen.len(), 2);
    for &(received, handled) in &seen {
        let received = received.expect("a kernel timestamp");
        assert!(before <= received && received <= handled, "{before:?} {received:?} {handled:?}");
    }
    let (second, handled) = seen[1];
    let waited = handled.duration_since(second.unwrap()).unwrap();
    assert!(
        waited >= Duration::from_millis(200),
        "the second datagram waited {waited:?} behind the stalled first"
    );
    assert!(plain.stop().seen.iter().all(|(received, _)| received.is_none()));
}

#[test]
fn an_ipv6_socket_leaves_its_port_free_for_ipv4() {
    let v6 = Server::spawn(Config::default(), |io| {
        let u = io.udp_bind("[::]:0".parse().unwrap()).unwrap();
        (UdpEcho::default(), io.udp_addr(u).unwrap())
    });
    // A dual-stack socket would hold the IPv4 port too, and this bind would fail.
    let v4 = UdpSocket::bind(("127.0.0.1", v6.addr.port())).expect("the IPv4 port is free");
    drop(v4);
    check_echo(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, v6.addr.port())), "[::1]:0");
}

/// Joins a group on loopback and counts datagrams sent to it.
#[derive(Default)]
struct Member {
    got: Vec<Vec<u8>>,
}

impl Handler for Member {
    fn on_event(&mut self, _: &mut Ops, event: Event<'_>) {
        if let Event::Datagram { data, .. } = event {
            self.got.push(data.to_vec());
        }
    }
}

#[test]
fn multicast_join_and_leave_on_loopback() {
    // Multicast over `lo` needs a route for the group; the main namespace of this machine may
    // lack one, so the test sends with IP_MULTICAST_IF = 127.0.0.1 and loopback on.
    let group = Ipv4Addr::new(239, 255, 77, 1);
    let mut io = zero_core::Io::new(Config::default()).unwrap();
    let u = io.udp_bind("0.0.0.0:0".parse().unwrap()).unwrap();
    let port = io.udp_addr(u).unwrap().port();
    io.udp_join(u, group.into(), Interface::V4(Ipv4Addr::LOCALHOST)).unwrap();
    let sender = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    sender.set_multicast_if_v4(&Ipv4Addr::LOCALHOST).unwrap();
    sender.set_multicast_loop_v4(true).unwrap();
    let to: SocketAddr = (group, port).into();
    let mut m = Member::default();
    for _ in 0..50 {
        sender.send_to(b"to the group", &to.into()).unwrap();
        io.run_once(&mut m, Some(Duration::from_millis(20))).unwrap();
        if !m.got.is_empty() {
            break;
        }
    }
    assert_eq!(m.got.first().map(Vec::as_slice), Some(&b"to the group"[..]));
    io.udp_leave(u, group.into(), Interface::V4(Ipv4Addr::LOCALHOST)).unwrap();
    for _ in 0..5 {
        io.run_once(&mut m, Some(Duration::from_millis(10))).unwrap();
    }
    let before = m.got.len();
    sender.send_to(b"after leaving", &to.into()).unwrap();
    for _ in 0..10 {
        io.run_once(&mut m, Some(Duration::from_millis(20))).unwrap();
    }
    assert_eq!(m.got.len(), before, "no datagrams after leaving the group");
    // Source-specific membership: from 127.0.0.1 only.
    io.udp_join_ssm(u, Ipv4Addr::new(232, 1, 2, 3), Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST).unwrap();
    io.udp_leave_ssm(u, Ipv4Addr::new(232, 1, 2, 3), Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST).unwrap();
}

/// Sockets bound to port 0 at the same time never share a port (with `SO_REUSEADDR` on them
/// the kernel may hand two the same ephemeral port and deliver one's datagrams to the other:
/// a resolver then saw answers under the wrong query id).
#[test]
fn ephemeral_ports_are_never_shared() {
    let mut io = zero_core::Io::new(zero_core::Config::default()).unwrap();
    let mut ports = std::collections::HashSet::new();
    for _ in 0..2000 {
        let udp = io.udp_bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = io.udp_addr(udp).unwrap().port();
        assert!(ports.insert(port), "port {port} handed out twice");
    }
}
