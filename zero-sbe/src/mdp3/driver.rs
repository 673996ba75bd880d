//! The channel on a zero-core shard: feeds A and B as multicast UDP sockets (source-specific
//! when the exchange's source is given), the snapshot loops' sockets (by price, and by order)
//! opened when recovery asks for them and closed when it ends, the instrument definition loop
//! when given, the arbiter's gap wait on the shard's timer.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

use zero_core::{Deadline, Event as IoEvent, Interface, Ops, UdpId};

use super::arbiter::Feed;
use super::channel::{Channel, Event};

/// Where a channel's feeds are.
#[derive(Debug, Clone, Copy)]
pub struct Feeds {
    /// Incremental feed A (group and port).
    pub a: SocketAddrV4,
    /// Incremental feed B.
    pub b: SocketAddrV4,
    /// The snapshot loop (books by price).
    pub snapshot: SocketAddrV4,
    /// The order snapshot loop (books by order), for a channel that keeps them.
    pub order_snapshot: Option<SocketAddrV4>,
    /// The instrument definition loop: read all along (its definitions set books' depths;
    /// it is a slow loop).
    pub definitions: Option<SocketAddrV4>,
    /// The exchange's source address, for source-specific joins (RFC 4607); any source
    /// without it.
    pub source: Option<Ipv4Addr>,
    /// The interface (its address) to join on; `0.0.0.0` for the default.
    pub interface: Ipv4Addr,
}

/// One of a driver's sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Socket {
    /// Incremental feed A.
    A,
    /// Incremental feed B.
    B,
    /// The snapshot loop.
    Snapshot,
    /// The order snapshot loop.
    OrderSnapshot,
    /// The instrument definition loop.
    Definitions,
}

/// A [`Channel`] driven by multicast sockets on a shard.
pub struct ChannelDriver {
    channel: Channel,
    feeds: Feeds,
    a: Option<UdpId>,
    b: Option<UdpId>,
    snapshot: Option<UdpId>,
    order_snapshot: Option<UdpId>,
    definitions: Option<UdpId>,
    timer: Deadline,
    events: VecDeque<Event>,
}

impl ChannelDriver {
    /// A driver for `channel` on `feeds`; `token` is its timer's.
    pub fn new(channel: Channel, feeds: Feeds, token: u64) -> ChannelDriver {
        ChannelDriver {
            channel,
            feeds,
            a: None,
            b: None,
            snapshot: None,
            order_snapshot: None,
            definitions: None,
            timer: Deadline::new(token),
            events: VecDeque::new(),
        }
    }

    /// Opens and joins feeds A and B and the definition loop (and the snapshot loops, as a
    /// new channel recovers).
    pub fn start(&mut self, ops: &mut Ops) -> zero_core::Result<()> {
        self.a = Some(self.open(ops, self.feeds.a)?);
        self.b = Some(self.open(ops, self.feeds.b)?);
        if let Some(group) = self.feeds.definitions {
            self.definitions = Some(self.open(ops, group)?);
        }
        self.pump(ops)
    }

    fn open(&self, ops: &mut Ops, group: SocketAddrV4) -> zero_core::Result<UdpId> {
        // Bound to the group's address: only its datagrams, whatever else shares the port.
        let udp = ops.udp_bind(SocketAddr::V4(group))?;
        match self.feeds.source {
            Some(source) => ops.udp_join_ssm(udp, *group.ip(), source, self.feeds.interface)?,
            None => ops.udp_join(udp, IpAddr::V4(*group.ip()), Interface::V4(self.feeds.interface))?,
        }
        Ok(udp)
    }

    /// Which of its sockets `udp` is.
    pub fn socket(&self, udp: UdpId) -> Option<Socket> {
        [
            (self.a, Socket::A),
            (self.b, Socket::B),
            (self.snapshot, Socket::Snapshot),
            (self.order_snapshot, Socket::OrderSnapshot),
            (self.definitions, Socket::Definitions),
        ]
        .into_iter()
        .find_map(|(id, s)| (id == Some(udp)).then_some(s))
    }

    /// The channel (its books, state and counters).
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// The next event (all of them but the snapshot joins and leaves, which the driver acts
    /// on itself).
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Hands each event (as [`ChannelDriver::poll_event`] would) to `f`, inline on the shard,
    /// with the channel.
    pub fn for_each_event(&mut self, mut f: impl FnMut(&Channel, Event)) {
        while let Some(e) = self.events.pop_front() {
            f(&self.channel, e);
        }
    }

    /// Takes an event of its sockets or timer; whether it was one.
    pub fn on_event(&mut self, ops: &mut Ops, event: &IoEvent<'_>) -> bool {
        let now = ops.now();
        match event {
            IoEvent::Datagram { udp, data, .. } => match self.socket(*udp) {
                Some(Socket::A) => self.channel.incremental(now, Feed::A, data),
                Some(Socket::B) => self.channel.incremental(now, Feed::B, data),
                Some(Socket::Snapshot | Socket::OrderSnapshot) => self.channel.snapshot(data),
                Some(Socket::Definitions) => self.channel.definitions(data),
                None => return false,
            },
            IoEvent::Timer { token, .. } if self.timer.fired(*token) => self.channel.handle_timeout(now),
            _ => return false,
        }
        true
    }

    /// Acts on the channel's snapshot joins and leaves, queues its other events, and arms the
    /// timer. Call it at the end of each batch.
    pub fn pump(&mut self, ops: &mut Ops) -> zero_core::Result<()> {
        while let Some(event) = self.channel.poll_event() {
            match event {
                Event::JoinSnapshots => {
                    if self.snapshot.is_none() {
                        self.snapshot = Some(self.open(ops, self.feeds.snapshot)?);
                    }
                    if let (None, Some(group)) = (self.order_snapshot, self.feeds.order_snapshot) {
                        self.order_snapshot = Some(self.open(ops, group)?);
                    }
                }
                Event::LeaveSnapshots => {
                    for udp in [self.snapshot.take(), self.order_snapshot.take()].into_iter().flatten() {
                        ops.close_udp(udp)?;
                    }
                }
                other => self.events.push_back(other),
            }
        }
        self.timer.follow(ops, self.channel.poll_timeout());
        Ok(())
    }
}
