//! The client on a zero-core shard: a UDP socket per server (an ephemeral port each), the
//! wall clock read when a request leaves, the kernel's receive timestamp (`SO_TIMESTAMPNS`) of
//! each answer, one shard timer.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use zero_core::{Config, Deadline, Event as IoEvent, Handler, Io, Ops, UdpId};

use super::machine::{Client, ClientConfig};
use crate::packet::Timestamp;

/// A [`Client`] bound to a shard. Its owner passes each shard event to
/// [`ClientDriver::on_event`] and calls [`ClientDriver::pump`] after.
pub struct ClientDriver {
    client: Client,
    sockets: HashMap<usize, UdpId>,
    servers: HashMap<UdpId, usize>,
    deadline: Deadline,
}

impl ClientDriver {
    /// A driver for `client`; `token` marks its shard timer.
    pub fn new(client: Client, token: u64) -> ClientDriver {
        ClientDriver {
            client,
            sockets: HashMap::new(),
            servers: HashMap::new(),
            deadline: Deadline::new(token),
        }
    }

    /// The machine.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// Feeds one shard event; returns whether it was the client's.
    pub fn on_event(&mut self, ops: &mut Ops, event: &IoEvent<'_>) -> bool {
        match event {
            IoEvent::Datagram { udp, peer, received, data } if self.servers.contains_key(udp) => {
                // The kernel's receive time, when it gave one: the shard's own reading comes
                // later by however long the datagram waited in the ring and the batch.
                let wall = Timestamp::from_system(received.unwrap_or_else(SystemTime::now));
                self.client.handle_datagram(ops.now(), wall, *peer, data);
            }
            IoEvent::Timer { token, .. } if self.deadline.fired(*token) => {
                self.client.handle_timeout(ops.now())
            }
            _ => return false,
        }
        true
    }

    /// Sends the requests that are due and re-arms the timer.
    pub fn pump(&mut self, ops: &mut Ops) {
        let now = ops.now();
        while let Some(t) = self.client.poll_transmit(now, Timestamp::from_system(SystemTime::now())) {
            let udp = match self.sockets.get(&t.server) {
                Some(&udp) => Ok(udp),
                None => {
                    let any = if t.to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
                    ops.udp_bind(any.parse().expect("valid")).inspect(|&udp| {
                        if let Err(error) = ops.udp_timestamps(udp) {
                            tracing::debug!(%error, "no kernel receive timestamps; the shard's clock stands in");
                        }
                        self.sockets.insert(t.server, udp);
                        self.servers.insert(udp, t.server);
                    })
                }
            };
            if let Err(error) = udp.and_then(|udp| ops.send_to(udp, t.to, &t.bytes)) {
                tracing::debug!(%error, server = %t.to, "NTP request not sent");
            }
        }
        self.deadline.follow(ops, self.client.poll_timeout());
    }
}

/// Asks `config.servers` for `samples` answers each (or until `within` passes), on a shard of
/// its own, and returns the client to read its sources and selection from.
pub fn query_blocking(config: ClientConfig, samples: usize, within: Duration) -> Result<Client, String> {
    struct Query {
        driver: ClientDriver,
        samples: usize,
        until: Instant,
    }
    impl Handler for Query {
        fn on_event(&mut self, ops: &mut Ops, event: IoEvent<'_>) {
            self.driver.on_event(ops, &event);
        }
        fn on_batch_end(&mut self, ops: &mut Ops) {
            while self.driver.client().poll_event().is_some() {}
            let done = self.driver.client().sources().iter().all(|s| {
                s.reach.count_ones() as usize >= self.samples || s.standing != super::Standing::Active
            });
            if done || ops.now() >= self.until {
                ops.stop();
            }
            self.driver.pump(ops);
        }
    }
    let mut io = Io::new(Config::default()).map_err(|e| e.to_string())?;
    let now = Instant::now();
    let client = Client::new(config, now, rand::random());
    let mut q = Query { driver: ClientDriver::new(client, 0), samples, until: now + within };
    // Wakes the shard at the end even if nobody answers.
    io.timer(within, u64::MAX);
    q.on_batch_end(&mut io);
    io.run(&mut q).map_err(|e| e.to_string())?;
    Ok(q.driver.client)
}
