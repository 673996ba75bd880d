//! mDNS on a zero-core shard: the sockets (port 5353, IPv4 and IPv6, the group joined on one
//! interface, outgoing multicast from it with loopback on, so endpoints on the same host hear
//! each other) and a driver for any [`Endpoint`].

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

use zero_core::{Deadline, Event as IoEvent, Interface, Ops, UdpId};

use super::{Endpoint, GROUP_V4, GROUP_V6, PORT};

/// An mDNS socket: port 5353, joined to its family's group on one interface.
#[derive(Debug, Clone, Copy)]
pub struct MdnsSocket {
    udp: UdpId,
    /// Where "to the group" goes: 224.0.0.251:5353, or [ff02::fb%interface]:5353.
    group: SocketAddr,
}

impl MdnsSocket {
    /// IPv4 on the interface with address `interface` (`127.0.0.1` inside a test's network
    /// namespace).
    pub fn open(ops: &mut Ops, interface: Ipv4Addr) -> zero_core::Result<MdnsSocket> {
        let udp = ops.udp_bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, PORT)))?;
        ops.udp_join(udp, GROUP_V4.into(), Interface::V4(interface))?;
        ops.udp_multicast_v4(udp, interface, true)?;
        Ok(MdnsSocket { udp, group: SocketAddr::from((GROUP_V4, PORT)) })
    }

    /// IPv6 on the interface with index `ifindex` (`/sys/class/net/NAME/ifindex`). The
    /// group is link-local, so the interface is also the destination's scope.
    pub fn open_v6(ops: &mut Ops, ifindex: u32) -> zero_core::Result<MdnsSocket> {
        let udp = ops.udp_bind(SocketAddr::from((Ipv6Addr::UNSPECIFIED, PORT)))?;
        ops.udp_join(udp, GROUP_V6.into(), Interface::Index(ifindex))?;
        ops.udp_multicast_v6(udp, ifindex, true)?;
        Ok(MdnsSocket { udp, group: SocketAddrV6::new(GROUP_V6, PORT, 0, ifindex).into() })
    }
}

/// An mDNS [`Endpoint`] (responder or browser) bound to a shard's mDNS sockets: one machine
/// for the link, whichever family a datagram came by. What it sends to the group goes out on
/// every socket; a unicast answer on the socket of its destination's family.
pub struct MdnsDriver<E> {
    endpoint: E,
    sockets: Vec<MdnsSocket>,
    deadline: Deadline,
}

impl<E: Endpoint> MdnsDriver<E> {
    /// A driver for `endpoint` on `sockets` ([`MdnsSocket::open`], [`MdnsSocket::open_v6`]);
    /// `token` marks its timer.
    pub fn new(endpoint: E, sockets: &[MdnsSocket], token: u64) -> MdnsDriver<E> {
        MdnsDriver { endpoint, sockets: sockets.to_vec(), deadline: Deadline::new(token) }
    }

    /// The machine.
    pub fn endpoint(&mut self) -> &mut E {
        &mut self.endpoint
    }

    /// Feeds one shard event; returns whether it was this endpoint's.
    pub fn on_event(&mut self, ops: &mut Ops, event: &IoEvent<'_>) -> bool {
        match event {
            IoEvent::Datagram { udp, peer, data, .. } if self.sockets.iter().any(|s| s.udp == *udp) => {
                self.endpoint.handle_datagram(ops.now(), *peer, data)
            }
            IoEvent::Timer { token, .. } if self.deadline.fired(*token) => {
                self.endpoint.handle_timeout(ops.now())
            }
            _ => return false,
        }
        true
    }

    /// Sends what the machine queued and re-arms the timer.
    pub fn pump(&mut self, ops: &mut Ops) {
        while let Some(t) = self.endpoint.poll_transmit() {
            for socket in &self.sockets {
                let to = match t.to {
                    None => socket.group,
                    Some(to) if to.is_ipv4() == socket.group.is_ipv4() => to,
                    Some(_) => continue,
                };
                if let Err(error) = ops.send_to(socket.udp, to, &t.bytes) {
                    tracing::debug!(%error, %to, "mDNS datagram not sent");
                }
            }
        }
        self.deadline.follow(ops, self.endpoint.poll_timeout());
    }
}
