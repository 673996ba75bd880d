//! mDNS on a zero-core shard: the socket (port 5353, the group joined on one interface,
//! outgoing multicast from it with loopback on, so endpoints on the same host hear each
//! other) and a driver for any [`Endpoint`].

use std::net::{Ipv4Addr, SocketAddr};

use zero_core::{Deadline, Event as IoEvent, Interface, Ops, UdpId};

use super::{Endpoint, GROUP_V4, PORT};

/// The mDNS socket.
pub struct MdnsSocket;

impl MdnsSocket {
    /// Opens it on the interface with address `interface` (IPv4; `127.0.0.1` inside a test's
    /// network namespace).
    pub fn open(ops: &mut Ops, interface: Ipv4Addr) -> zero_core::Result<UdpId> {
        let udp = ops.udp_bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, PORT)))?;
        ops.udp_join(udp, GROUP_V4.into(), Interface::V4(interface))?;
        ops.udp_multicast_v4(udp, interface, true)?;
        Ok(udp)
    }
}

/// An mDNS [`Endpoint`] (responder or browser) bound to a shard's mDNS socket.
pub struct MdnsDriver<E> {
    endpoint: E,
    udp: UdpId,
    deadline: Deadline,
}

impl<E: Endpoint> MdnsDriver<E> {
    /// A driver for `endpoint` on `udp` ([`MdnsSocket::open`]); `token` marks its timer.
    pub fn new(endpoint: E, udp: UdpId, token: u64) -> MdnsDriver<E> {
        MdnsDriver { endpoint, udp, deadline: Deadline::new(token) }
    }

    /// The machine.
    pub fn endpoint(&mut self) -> &mut E {
        &mut self.endpoint
    }

    /// Feeds one shard event; returns whether it was this endpoint's.
    pub fn on_event(&mut self, ops: &mut Ops, event: &IoEvent<'_>) -> bool {
        match event {
            IoEvent::Datagram { udp, peer, data, .. } if *udp == self.udp => {
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
            let to = t.to.unwrap_or(SocketAddr::from((GROUP_V4, PORT)));
            if let Err(error) = ops.send_to(self.udp, to, &t.bytes) {
                tracing::debug!(%error, %to, "mDNS datagram not sent");
            }
        }
        self.deadline.follow(ops, self.endpoint.poll_timeout());
    }
}
