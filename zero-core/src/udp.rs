//! The state of one UDP socket: its multishot `recvmsg` header and a double-buffered queue of
//! outbound datagrams (one arena of bytes plus `(address, range)` records, reused every tick).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::{Duration, SystemTime};

use socket2::SockAddr;

use crate::id::ConnId;

/// Room for any socket address the kernel reports for a datagram.
pub(crate) const NAME_LEN: u32 = std::mem::size_of::<libc::sockaddr_storage>() as u32;

/// Room for one `SCM_TIMESTAMPNS` control message: a `cmsghdr` and a `timespec`, each
/// 8-byte aligned (`CMSG_SPACE(sizeof(struct timespec))`).
pub(crate) const STAMP_LEN: u32 = (std::mem::size_of::<libc::cmsghdr>() + 16) as u32;

/// The kernel's receive time among a datagram's control messages, if `SO_TIMESTAMPNS` put it
/// there. Read field by field (native endian, as the kernel wrote it), so a short or odd
/// control area is simply no timestamp.
pub(crate) fn receive_time(control: &[u8]) -> Option<SystemTime> {
    const HEADER: usize = std::mem::size_of::<libc::cmsghdr>();
    let word =
        |at: usize| control.get(at..at + 8).map(|b| u64::from_ne_bytes(b.try_into().expect("8 bytes")));
    let int = |at: usize| control.get(at..at + 4).map(|b| i32::from_ne_bytes(b.try_into().expect("4 bytes")));
    let mut at = 0;
    while at + HEADER <= control.len() {
        let len = word(at)? as usize;
        if len < HEADER || len > control.len() - at {
            return None;
        }
        if int(at + 8)? == libc::SOL_SOCKET && int(at + 12)? == libc::SCM_TIMESTAMPNS {
            let (secs, nanos) = (word(at + HEADER)?, word(at + HEADER + 8)?);
            let nanos = u32::try_from(nanos).ok().filter(|&n| n < 1_000_000_000)?;
            return SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos));
        }
        at += len.div_ceil(8) * 8;
    }
    None
}

/// One batch of datagrams: their bytes back to back, and where each goes.
#[derive(Default)]
pub(crate) struct Batch {
    pub bytes: Vec<u8>,
    pub datagrams: Vec<Datagram>,
    /// The `sendmsg` headers of the segmented datagrams, made when the batch takes flight;
    /// they point into `bytes`, `datagrams` and themselves, none of which changes until the
    /// batch's sends are done.
    pub headers: Vec<Gso>,
}

/// One datagram of a batch: `bytes[start..start + len]` to `to`. With a `segment` size the
/// kernel cuts it into datagrams of that size (UDP GSO: one send, one pass down the stack).
pub(crate) struct Datagram {
    pub to: SockAddr,
    pub start: usize,
    pub len: usize,
    pub segment: Option<u16>,
}

/// A `sendmsg` of a segmented datagram: the header, its one buffer and its `UDP_SEGMENT`
/// control message.
pub(crate) struct Gso {
    pub msg: libc::msghdr,
    iov: libc::iovec,
    /// `CMSG_SPACE(sizeof(u16))`, 8-byte aligned as a `cmsghdr` must be.
    control: [u64; 3],
}

/// `CMSG_LEN(sizeof(u16))`: the header and the segment size.
const SEGMENT_CMSG_LEN: u64 = std::mem::size_of::<libc::cmsghdr>() as u64 + 2;

impl Batch {
    fn clear(&mut self) {
        self.bytes.clear();
        self.datagrams.clear();
        self.headers.clear();
    }

    /// Makes the `sendmsg` headers of the segmented datagrams (in order) for the flight.
    fn make_headers(&mut self) {
        self.headers.clear();
        for d in self.datagrams.iter().filter(|d| d.segment.is_some()) {
            let mut kind = [0u8; 8];
            kind[..4].copy_from_slice(&libc::SOL_UDP.to_ne_bytes());
            kind[4..].copy_from_slice(&libc::UDP_SEGMENT.to_ne_bytes());
            let mut size = [0u8; 8];
            size[..2].copy_from_slice(&d.segment.unwrap_or(0).to_ne_bytes());
            self.headers.push(Gso {
                msg: libc::msghdr {
                    msg_name: d.to.as_ptr() as *mut libc::c_void,
                    msg_namelen: d.to.len(),
                    msg_iov: std::ptr::null_mut(),
                    msg_iovlen: 1,
                    msg_control: std::ptr::null_mut(),
                    msg_controllen: std::mem::size_of::<[u64; 3]>(),
                    msg_flags: 0,
                },
                iov: libc::iovec {
                    iov_base: self.bytes[d.start..].as_ptr() as *mut libc::c_void,
                    iov_len: d.len,
                },
                control: [SEGMENT_CMSG_LEN.to_ne_bytes(), kind, size].map(u64::from_ne_bytes),
            });
        }
        // The headers point at their own buffers only now that the vector is complete.
        for g in &mut self.headers {
            g.msg.msg_iov = &mut g.iov;
            g.msg.msg_control = g.control.as_mut_ptr().cast();
        }
    }
}

/// One UDP socket.
pub(crate) struct Udp {
    /// The header multishot `recvmsg` reads its name and control lengths from.
    pub msghdr: Box<libc::msghdr>,
    pub recv_armed: bool,
    pub starved: bool,
    pub pending: Batch,
    pub flight: Batch,
    /// Sends of `flight` still in the kernel.
    pub flight_left: usize,
    /// Datagrams dropped because the queue was full.
    pub dropped: u64,
    /// The SOCKS5 relay datagrams go through, for `Ops::udp_associate_socks5` endpoints.
    pub relay: Option<Relay>,
    /// The kernel refused a segmented send (GSO) on this socket: send datagrams one by one.
    pub gso_refused: bool,
    /// A QUIC endpoint's socket: its datagrams go to `Ops::quic`, not to the handler.
    pub quic: bool,
}

/// A SOCKS5 UDP association.
pub(crate) struct Relay {
    /// The TCP connection that holds the association open.
    pub control: ConnId,
    /// The proxy.
    pub proxy: SocketAddr,
    /// The relay's address, once the proxy has granted the association.
    pub addr: Option<SocketAddr>,
}

impl Udp {
    pub fn new() -> Udp {
        Udp {
            msghdr: Box::new(libc::msghdr {
                msg_name: std::ptr::null_mut(),
                msg_namelen: NAME_LEN,
                msg_iov: std::ptr::null_mut(),
                msg_iovlen: 0,
                msg_control: std::ptr::null_mut(),
                msg_controllen: 0,
                msg_flags: 0,
            }),
            recv_armed: false,
            starved: false,
            pending: Batch::default(),
            flight: Batch::default(),
            flight_left: 0,
            dropped: 0,
            relay: None,
            gso_refused: false,
            quic: false,
        }
    }

    /// Bytes waiting to be sent.
    pub fn queued(&self) -> usize {
        self.pending.bytes.len() + self.flight.bytes.len()
    }

    /// Queues a datagram.
    pub fn push(&mut self, to: SocketAddr, data: &[u8]) {
        self.push_segmented(to, data, None);
    }

    /// Queues `data` for `to` as datagrams of `segment` bytes each (the last may be shorter),
    /// sent at once with UDP GSO.
    pub fn push_segmented(&mut self, to: SocketAddr, data: &[u8], segment: Option<u16>) {
        let start = self.pending.bytes.len();
        self.pending.bytes.extend_from_slice(data);
        let segment = segment.filter(|&s| s > 0 && data.len() > usize::from(s));
        self.pending.datagrams.push(Datagram { to: SockAddr::from(to), start, len: data.len(), segment });
    }

    /// Queues a datagram for `to` through the SOCKS5 relay at `relay`, behind its RFC 1928
    /// header.
    pub fn push_relayed(&mut self, relay: SocketAddr, to: SocketAddr, data: &[u8]) {
        let start = self.pending.bytes.len();
        crate::socks5::encode_udp_header(&to, &mut self.pending.bytes);
        self.pending.bytes.extend_from_slice(data);
        let len = self.pending.bytes.len() - start;
        self.pending.datagrams.push(Datagram { to: SockAddr::from(relay), start, len, segment: None });
    }

    /// Promotes the pending batch to flight if the previous batch is done.
    pub fn next_flight(&mut self) -> Option<&Batch> {
        if self.flight_left > 0 || self.pending.datagrams.is_empty() {
            return None;
        }
        self.flight.clear();
        std::mem::swap(&mut self.pending, &mut self.flight);
        self.flight.make_headers();
        self.flight_left = self.flight.datagrams.len();
        Some(&self.flight)
    }
}

/// Decodes a `sockaddr_in`/`sockaddr_in6` as the kernel wrote it into a receive buffer.
pub(crate) fn parse_sockaddr(name: &[u8]) -> Option<SocketAddr> {
    let family = u16::from_ne_bytes(name.get(0..2)?.try_into().ok()?) as i32;
    let port = u16::from_be_bytes(name.get(2..4)?.try_into().ok()?);
    match family {
        libc::AF_INET => {
            let ip: [u8; 4] = name.get(4..8)?.try_into().ok()?;
            Some(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port)))
        }
        libc::AF_INET6 => {
            let flow = u32::from_be_bytes(name.get(4..8)?.try_into().ok()?);
            let ip: [u8; 16] = name.get(8..24)?.try_into().ok()?;
            let scope = u32::from_ne_bytes(name.get(24..28)?.try_into().ok()?);
            Some(SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(ip), port, flow, scope)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lays out a socket address the way the kernel does (`sockaddr_in`/`sockaddr_in6`).
    fn kernel_bytes(a: SocketAddr) -> Vec<u8> {
        let mut b = Vec::new();
        match a {
            SocketAddr::V4(v) => {
                b.extend((libc::AF_INET as u16).to_ne_bytes());
                b.extend(v.port().to_be_bytes());
                b.extend(v.ip().octets());
                b.extend([0; 8]);
            }
            SocketAddr::V6(v) => {
                b.extend((libc::AF_INET6 as u16).to_ne_bytes());
                b.extend(v.port().to_be_bytes());
                b.extend(v.flowinfo().to_be_bytes());
                b.extend(v.ip().octets());
                b.extend(v.scope_id().to_ne_bytes());
            }
        }
        b
    }

    #[test]
    fn parses_kernel_socket_addresses() {
        for addr in ["127.0.0.1:5353", "[::1]:853", "[fe80::1%2]:9"] {
            let a: SocketAddr = addr.parse().unwrap();
            assert_eq!(parse_sockaddr(&kernel_bytes(a)), Some(a));
        }
        assert_eq!(parse_sockaddr(&[0; 3]), None);
        assert_eq!(parse_sockaddr(&kernel_bytes("1.2.3.4:5".parse().unwrap())[..6]), None);
    }

    #[test]
    fn batches_alternate_without_losing_order() {
        let mut u = Udp::new();
        let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
        u.push(to, b"a");
        u.push(to, b"bc");
        let b = u.next_flight().unwrap();
        assert_eq!(b.datagrams.len(), 2);
        assert_eq!(&b.bytes, b"abc");
        u.push(to, b"d");
        assert!(u.next_flight().is_none(), "previous batch still in flight");
        u.flight_left = 0;
        assert_eq!(&u.next_flight().unwrap().bytes, b"d");
    }

    /// A segmented datagram leaves as one send and arrives as datagrams of the segment size,
    /// on both kernels, among whole ones.
    #[test]
    fn segmented_datagrams_arrive_cut_to_their_segment_size() {
        for backend in [crate::Backend::IoUring, crate::Backend::Epoll] {
            let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut io = crate::Io::new(crate::Config { backend, ..crate::Config::default() }).unwrap();
            let udp = io.udp_bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let data: Vec<u8> = (0..2500u32).map(|i| i as u8).collect();
            let to = peer.local_addr().unwrap();
            let slot = io.table.live_mut(udp.index, udp.gen).unwrap();
            let crate::table::Kind::Udp(u) = &mut slot.kind else { panic!("a UDP socket") };
            // Whole and segmented datagrams mixed, in a batch that leaves at once.
            u.push_segmented(to, b"first", Some(1000));
            u.push_segmented(to, &data, Some(1000));
            u.push_segmented(to, b"between", None);
            u.push_segmented(to, &data[..1500], Some(700));
            io.table.touch(udp.index, udp.gen);
            io.poll(Some(Duration::ZERO)).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            for want in [5, 1000, 1000, 500, 7, 700, 700, 100] {
                let (n, _) = peer.recv_from(&mut buf).expect("a datagram");
                assert_eq!(n, want, "{backend:?}");
                got.extend_from_slice(&buf[..n]);
            }
            let mut sent = b"first".to_vec();
            sent.extend_from_slice(&data);
            sent.extend_from_slice(b"between");
            sent.extend_from_slice(&data[..1500]);
            assert!(got == sent, "{backend:?}: the bytes arrive as sent, in order");
        }
    }

    fn cmsg(level: i32, kind: i32, data: &[u8]) -> Vec<u8> {
        let mut m = ((16 + data.len()) as u64).to_ne_bytes().to_vec();
        m.extend(level.to_ne_bytes());
        m.extend(kind.to_ne_bytes());
        m.extend(data);
        m.resize(m.len().div_ceil(8) * 8, 0);
        m
    }

    #[test]
    fn the_receive_time_is_found_among_control_messages_and_garbage_is_none() {
        let stamp: Vec<u8> = [1_700_000_000u64, 5].iter().flat_map(|w| w.to_ne_bytes()).collect();
        let mut control = cmsg(libc::SOL_IP, libc::IP_TOS, &[0]);
        control.extend(cmsg(libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS, &stamp));
        assert_eq!(receive_time(&control), Some(SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 5)));
        assert_eq!(receive_time(&control[..control.len() - 1]), None);
        assert_eq!(receive_time(&[]), None);
        assert_eq!(receive_time(&[0xff; 40]), None);
        let bad_nanos: Vec<u8> = [1u64, 2_000_000_000].iter().flat_map(|w| w.to_ne_bytes()).collect();
        assert_eq!(receive_time(&cmsg(libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS, &bad_nanos)), None);
        let mut zero_len = cmsg(libc::SOL_IP, libc::IP_TOS, &[0]);
        zero_len[..8].copy_from_slice(&0u64.to_ne_bytes());
        assert_eq!(receive_time(&zero_len), None);
    }
}
