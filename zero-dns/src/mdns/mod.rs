//! Multicast DNS and DNS-SD (RFC 6762, RFC 6763): a [`responder::Responder`] that announces
//! services on the link and defends their names, a [`browser::Browser`] that finds them, and
//! their driver on a zero-core shard (UDP sockets on port 5353, joined to 224.0.0.251 and
//! ff02::fb on an interface the caller names).

pub mod browser;
pub mod responder;
mod shard;
#[cfg(test)]
mod tests;

pub use shard::{MdnsDriver, MdnsSocket};

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use hickory_proto::rr::domain::Label;
use hickory_proto::rr::Name;

/// The mDNS IPv4 group.
pub const GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);
/// The mDNS IPv6 group (link-local scope).
pub const GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xfb);
/// The mDNS port.
pub const PORT: u16 = 5353;

/// A datagram to send: to the group (`to: None`) or to one querier.
#[derive(Debug, Clone)]
pub struct Transmit {
    /// `None`: the multicast group; else a unicast answer's destination.
    pub to: Option<SocketAddr>,
    /// The message.
    pub bytes: Vec<u8>,
}

/// What an mDNS machine offers its driver.
pub trait Endpoint {
    /// A datagram arrived from `from`.
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]);
    /// Time passed.
    fn handle_timeout(&mut self, now: Instant);
    /// The next datagram to send.
    fn poll_transmit(&mut self) -> Option<Transmit>;
    /// When [`Endpoint::handle_timeout`] is next due.
    fn poll_timeout(&self) -> Option<Instant>;
}

/// A DNS-SD service instance (RFC 6763 4.1): `Instance Name._service._proto.local.`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The instance's user-visible name (any UTF-8, spaces and dots included).
    pub instance: String,
    /// The service type, `_http._tcp`.
    pub service_type: String,
    /// The port.
    pub port: u16,
    /// TXT strings, `key=value`.
    pub txt: Vec<String>,
}

/// `_service._proto.local.`
pub fn type_name(service_type: &str) -> Option<Name> {
    Name::from_ascii(format!("{}.local.", service_type.trim_end_matches('.'))).ok()
}

/// `Instance._service._proto.local.`: the instance is one label, taken as it is.
pub fn instance_name(instance: &str, service_type: &str) -> Option<Name> {
    let label = Label::from_raw_bytes(instance.as_bytes()).ok()?;
    Name::from_labels([label]).ok()?.append_name(&type_name(service_type)?).ok()
}

/// The instance label of `name` (its first), as text.
pub fn instance_of(name: &Name) -> String {
    name.iter().next().map(|l| String::from_utf8_lossy(l).into_owned()).unwrap_or_default()
}
