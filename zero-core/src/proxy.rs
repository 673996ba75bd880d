//! SOCKS5 in the shard (RFC 1928, RFC 1929): streams connected through a proxy, and UDP
//! endpoints whose datagrams go through a proxy's relay. The handshake itself is the sans-I/O
//! machine in `socks5.rs`; this file feeds it the connection's bytes and announces the result.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::conn::CloseReason;
use crate::error::{IoError, Result};
use crate::event::{Chunk, Raw};
use crate::id::{ConnId, UdpId};
use crate::ops::Ops;
use crate::pool::Pool;
use crate::socks5::{Handshake, Progress, Socks5Auth, Socks5Command, Socks5Target};
use crate::table::Kind;
use crate::udp::Relay;

impl Ops {
    /// Connects to `target` through the SOCKS5 proxy at `proxy`. A domain name is resolved by
    /// the proxy. `Event::Connected` follows the proxy's success reply (sending before then is
    /// refused with `IoError::NotReady`); `Event::ConnectFailed` carries the proxy's refusal as
    /// `IoError::Socks5`.
    pub fn tcp_connect_socks5(
        &mut self,
        proxy: SocketAddr,
        target: impl Into<Socks5Target>,
        auth: Socks5Auth,
    ) -> Result<ConnId> {
        let handshake = Handshake::new(Socks5Command::Connect, target.into(), auth)?;
        let conn = self.tcp_connect(proxy)?;
        self.stream(conn)?.rare().socks = Some(Box::new(handshake));
        Ok(conn)
    }

    /// A UDP endpoint whose datagrams travel through the SOCKS5 proxy at `proxy` (UDP
    /// ASSOCIATE). Use it as any UDP socket once `Event::Associated` has arrived: `send_to`
    /// wraps each datagram in the RFC 1928 header, and `Event::Datagram` reports the original
    /// sender. `Event::AssociationFailed` ends it (refusal, or the proxy closing the control
    /// connection, which holds the association open).
    pub fn udp_associate_socks5(&mut self, proxy: SocketAddr, auth: Socks5Auth) -> Result<UdpId> {
        // Bind where the proxy will see us come from (loopback for a loopback proxy), so the
        // request can name our address and the proxy can hold the relay to it.
        let local = match proxy.ip() {
            ip if ip.is_loopback() => ip,
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let udp = self.udp_bind(SocketAddr::new(local, 0))?;
        let started = self.udp_addr(udp).and_then(|from| {
            let handshake = Handshake::new(Socks5Command::UdpAssociate, from.into(), auth)?;
            let control = self.tcp_connect(proxy)?;
            let s = self.stream(control)?;
            s.rare().socks = Some(Box::new(handshake));
            s.owed = None;
            s.rare().relay_for = Some(udp);
            Ok(control)
        });
        match started {
            Ok(control) => {
                if let Some(Kind::Udp(u)) = self.table.live_mut(udp.index, udp.gen).map(|slot| &mut slot.kind)
                {
                    u.relay = Some(Relay { control, proxy, addr: None });
                }
                Ok(udp)
            }
            Err(e) => {
                self.release(udp.index, udp.gen, CloseReason::Local);
                Err(e)
            }
        }
    }

    /// The TCP connection to the proxy is up: send the greeting.
    pub(crate) fn socks_start(&mut self, conn: ConnId) {
        if let Some(Kind::Stream(s)) = self.table.touch_live(conn.index, conn.gen).map(|slot| &mut slot.kind)
        {
            if let Some(h) = s.rare.as_mut().and_then(|r| r.socks.as_mut()) {
                h.poll_transmit(s.send.pending());
            }
        }
    }

    /// Bytes from the proxy during the handshake (in slot `bid`).
    pub(crate) fn socks_receive(&mut self, conn: ConnId, bid: u16, len: usize, pool: &Pool) {
        let Some(Kind::Stream(s)) = self.table.touch_live(conn.index, conn.gen).map(|slot| &mut slot.kind)
        else {
            return;
        };
        let Some(h) = s.rare.as_mut().and_then(|r| r.socks.as_mut()) else {
            return;
        };
        match h.handle_input(pool.bytes(bid, 0, len)) {
            Ok(Progress::Pending) => h.poll_transmit(s.send.pending()),
            Ok(Progress::Done { bound, consumed }) => {
                s.rare().socks = None;
                if let Some(udp) = s.relay_for() {
                    self.associated(udp, bound);
                } else if s.tls.is_some() {
                    self.start_handshake(conn.index, conn.gen);
                } else {
                    self.settle(conn);
                    if consumed < len {
                        // The destination spoke first (a greeting) in the same segment.
                        let chunk = Chunk::Slot { bid, offset: consumed, len: len - consumed };
                        self.events.push_back(Raw::Data { conn, chunk });
                    }
                }
            }
            Err(e) => {
                tracing::debug!(%conn, error = %e, "SOCKS5 handshake failed");
                s.fail(IoError::Socks5(e));
                self.release(conn.index, conn.gen, CloseReason::Local);
            }
        }
    }

    /// The proxy granted a UDP association: datagrams go to `bound` from now on.
    fn associated(&mut self, udp: UdpId, bound: Socks5Target) {
        let Some(Kind::Udp(u)) = self.table.live_mut(udp.index, udp.gen).map(|slot| &mut slot.kind) else {
            return;
        };
        let Some(relay) = u.relay.as_mut() else {
            return;
        };
        // A proxy that answers 0.0.0.0 means "my own address" (RFC 1928 leaves it open).
        let addr = match bound {
            Socks5Target::Ip(a) if a.ip().is_unspecified() => SocketAddr::new(relay.proxy.ip(), a.port()),
            Socks5Target::Ip(a) => a,
            Socks5Target::Domain(_, port) => SocketAddr::new(relay.proxy.ip(), port),
        };
        relay.addr = Some(addr);
        self.events.push_back(Raw::Associated { udp, relay: addr });
    }

    /// The control connection of `udp`'s association is gone: so is the association.
    pub(crate) fn association_lost(&mut self, udp: UdpId, error: IoError) {
        if self.table.live(udp.index, udp.gen).is_some() {
            self.release(udp.index, udp.gen, CloseReason::Local);
            self.events.push_back(Raw::AssociationFailed { udp, error });
        }
    }

    /// The proxy hung up mid-handshake: fail the connection (reported by `finish`).
    pub(crate) fn handshake_lost(&mut self, conn: ConnId, why: &str) {
        if let Ok(s) = self.stream(conn) {
            s.fail(IoError::HandshakeLost(why.to_owned()));
        }
        self.release(conn.index, conn.gen, CloseReason::PeerClosed);
    }
}

/// A datagram that arrived on a SOCKS5 endpoint: its original sender and header length, or
/// `None` (dropped) unless it came from the relay with a well-formed header for an IP sender.
pub(crate) fn relayed(relay: &Relay, from: SocketAddr, datagram: &[u8]) -> Option<(SocketAddr, usize)> {
    if relay.addr != Some(from) {
        tracing::debug!(%from, "datagram on a SOCKS5 endpoint not from its relay; dropped");
        return None;
    }
    match crate::socks5::decode_udp_header(datagram) {
        Ok((Socks5Target::Ip(sender), header)) => Some((sender, header)),
        Ok((sender, _)) => {
            tracing::debug!(%sender, "relayed datagram from a named sender; dropped");
            None
        }
        Err(e) => {
            tracing::debug!(error = %e, "malformed relayed datagram; dropped");
            None
        }
    }
}
