//! Bridges: this broker connected as a client to another broker (mosquitto, EMQX, another
//! zero), carrying topics out, in or both ways, configured with mosquitto's bridge keywords
//! ([`BridgeConfig`]).
//!
//! A bridge is two MQTT client machines on a shard thread of its own: one connected to this
//! broker (over loopback, MQTT 5, so its session lives on its home shard like any client's),
//! one to the remote broker. A message either receives is renamed by the first matching
//! `topic` rule ([`BridgeTopic`]) and published by the other, with its QoS (at most the
//! rule's) and RETAIN flag. Both machines reconnect with backoff (`restart_timeout`) and
//! resume their sessions (`cleansession false`, the default), so QoS 1/2 messages wait in
//! the session of the side that is away and are resent when it returns.
//!
//! **Loops.** A message a bridge brings in must not go back out, nor come back in: the
//! local subscriptions use No Local and Retain As Published (MQTT 5), and so do the remote
//! ones when the remote speaks MQTT 5; an MQTT 3.x remote is told it serves a bridge
//! (`try_private`, the protocol level's top bit, which mosquitto and zero honour the same
//! way).
//!
//! **What it does not do.** A QoS 1/2 message is acknowledged to the broker it came from
//! when the bridge has it, before the other broker has it: it waits in the bridge's memory
//! (bounded by the client's `max_queued`) while the other side is away, and is lost if this
//! process dies meanwhile. Only the first `address` is used. mosquitto's `notifications`
//! (publishing to `$SYS`), `start_type`, `round_robin` and `threshold` are read and
//! ignored.

mod config;

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Instant;

pub use config::{BridgeConfig, BridgeTopic, Direction};
use zero_core::{Event as ShardEvent, Handler, Ops, Target};

use crate::client::driver::ClientDriver;
use crate::client::{Client, ClientConfig, Event, Message};
use crate::codec::{Properties, Protocol, Publish, SubOptions, UserProperties};
use crate::Error;

/// Shard timer tokens of the two clients.
const LOCAL_TIMER: u64 = 1;
const REMOTE_TIMER: u64 = 2;

/// What a bridge has carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BridgeCounts {
    /// Messages sent to the remote broker.
    pub sent_out: u64,
    /// Messages brought in from the remote broker.
    pub brought_in: u64,
    /// Messages dropped: QoS 0 while the other side was away, or its queue full.
    pub dropped: u64,
}

/// A running bridge: a [`Handler`] for the shard it runs on.
pub struct Bridge {
    config: BridgeConfig,
    local: ClientDriver,
    remote: ClientDriver,
    counts: BridgeCounts,
}

/// This host's name, for the default client ids (as mosquitto makes them).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "zero".into(), |h| h.trim().to_string())
}

/// Resolves `HOST[:PORT]` (port 1883 if absent); returns the address and the host name.
fn resolve(address: &str) -> Result<(SocketAddr, String), Error> {
    let with_port = if address.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
        address.to_string()
    } else {
        format!("{address}:1883")
    };
    let host = with_port.rsplit_once(':').map_or("", |(h, _)| h).trim_matches(['[', ']']).to_string();
    let addr = with_port
        .to_socket_addrs()
        .map_err(|e| Error::Bridge(format!("address {address}: {e}")))?
        .next()
        .ok_or_else(|| Error::Bridge(format!("address {address} resolves to nothing")))?;
    Ok((addr, host))
}

impl Bridge {
    /// A bridge for `config`, whose local side connects to this broker at `local`.
    pub fn new(config: BridgeConfig, local: SocketAddr, now: Instant) -> Result<Bridge, Error> {
        config.validate().map_err(Error::Bridge)?;
        let (addr, host) = resolve(&config.addresses[0])?;
        let tls = match &config.cafile {
            Some(file) => {
                let pem = std::fs::read(file).map_err(|source| Error::Read { file: file.clone(), source })?;
                Some((host, zero_core::tls::ClientTls::with_ca_pem(&pem)?.build()?))
            }
            None => None,
        };
        let name = &config.name;
        let persistent = !config.clean_session;
        let session_expiry = if persistent { u32::MAX } else { 0 };
        let remote = ClientConfig {
            protocol: config.protocol,
            client_id: config.remote_clientid.clone().unwrap_or_else(|| format!("{}.{name}", hostname())),
            clean_start: !persistent,
            session_expiry,
            keep_alive: config.keep_alive,
            username: config.remote_username.clone(),
            password: config.remote_password.clone().map(String::into_bytes),
            bridge: config.try_private,
            reconnect_min: config.restart.0,
            reconnect_max: config.restart.1,
            ..ClientConfig::default()
        };
        let local_config = ClientConfig {
            protocol: Protocol::V5,
            client_id: config
                .local_clientid
                .clone()
                .unwrap_or_else(|| format!("local.{}.{name}", hostname())),
            clean_start: !persistent,
            session_expiry,
            reconnect_max: std::time::Duration::from_secs(1),
            ..ClientConfig::default()
        };
        let mut local = ClientDriver::new(Client::new(local_config, now), Target::tcp(local), LOCAL_TIMER);
        let mut remote =
            ClientDriver::new(Client::new(remote, now), Target { addr, tls, socks5: None }, REMOTE_TIMER);
        // Subscribed once; the client machines restore subscriptions a reconnect finds gone.
        let v5 = config.protocol.is_v5();
        for t in &config.topics {
            let options =
                |qos| SubOptions { no_local: true, retain_as_published: true, ..SubOptions::qos(qos) };
            if t.outward() {
                let filter = t.local_filter();
                local
                    .machine()
                    .subscribe(&[(&filter, options(t.qos))], None)
                    .map_err(|e| Error::Bridge(e.to_string()))?;
            }
            if t.inward() {
                let filter = t.remote_filter();
                let o = if v5 { options(t.qos) } else { SubOptions::qos(t.qos) };
                remote
                    .machine()
                    .subscribe(&[(&filter, o)], None)
                    .map_err(|e| Error::Bridge(e.to_string()))?;
            }
        }
        tracing::info!(bridge = %config.name, remote = %addr, "bridge configured");
        Ok(Bridge { config, local, remote, counts: BridgeCounts::default() })
    }

    /// What it has carried so far.
    pub fn counts(&self) -> BridgeCounts {
        self.counts
    }

    /// Opens both connections (call once on the bridge's shard before running it).
    pub fn start(&mut self, ops: &mut Ops) {
        self.local.pump(ops);
        self.remote.pump(ops);
    }

    /// Moves what each side received to the other.
    fn carry(&mut self, now: Instant) {
        while let Some(event) = self.local.machine().poll_event() {
            self.on_event(event, true, now);
        }
        while let Some(event) = self.remote.machine().poll_event() {
            self.on_event(event, false, now);
        }
    }

    fn on_event(&mut self, event: Event, from_local: bool, now: Instant) {
        let side = if from_local { "local" } else { "remote" };
        let m = match event {
            Event::Message(m) => m,
            Event::Connected { session_present } => {
                tracing::info!(bridge = %self.config.name, side, session_present, "bridge connected");
                return;
            }
            Event::Refused(reason) => {
                tracing::warn!(bridge = %self.config.name, side, %reason, "bridge connection refused");
                return;
            }
            Event::Disconnected { reason } => {
                tracing::info!(bridge = %self.config.name, side, ?reason, "bridge connection lost");
                return;
            }
            _ => return,
        };
        let rules = &self.config.topics;
        let renamed = if from_local {
            rules.iter().find_map(|t| t.to_remote(&m.topic))
        } else {
            rules.iter().find_map(|t| t.to_local(&m.topic))
        };
        let Some(topic) = renamed else {
            tracing::debug!(bridge = %self.config.name, topic = %m.topic, side, "no topic rule covers it");
            return;
        };
        let to = if from_local { &mut self.remote } else { &mut self.local };
        match forward(to.machine(), &m, &topic, now) {
            Ok(()) if from_local => self.counts.sent_out += 1,
            Ok(()) => self.counts.brought_in += 1,
            Err(error) => {
                self.counts.dropped += 1;
                tracing::debug!(bridge = %self.config.name, %topic, %error, "bridged message dropped");
            }
        }
    }
}

/// Publishes `m` as `topic` on `client`, with its QoS, RETAIN and MQTT 5 properties.
fn forward(
    client: &mut Client,
    m: &Message,
    topic: &str,
    now: Instant,
) -> Result<(), crate::client::ClientError> {
    let users: Vec<(&str, &str)> = m.user_properties.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let properties = Properties {
        response_topic: m.response_topic.as_deref(),
        correlation_data: m.correlation_data.as_deref(),
        content_type: m.content_type.as_deref(),
        user_properties: UserProperties::List(&users),
        ..Properties::default()
    };
    let p = Publish {
        dup: false,
        qos: m.qos,
        retain: m.retain,
        topic,
        packet_id: 0,
        properties,
        payload: &m.payload,
    };
    client.publish(p, now).map(|_| ())
}

impl Handler for Bridge {
    fn on_event(&mut self, ops: &mut Ops, event: ShardEvent<'_>) {
        if !self.local.on_event(ops, &event) {
            self.remote.on_event(ops, &event);
        }
        self.carry(ops.now());
        self.local.pump(ops);
        self.remote.pump(ops);
    }
}
