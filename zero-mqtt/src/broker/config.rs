//! What a broker allows and how much it holds.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::auth::{AclFile, PasswordFile};
use crate::store::Fsync;
use crate::Error;

/// Who may connect without a user name checked against the password file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anonymous {
    /// Anyone.
    Allow,
    /// No one: every client needs a user name and password from the password file.
    Deny,
    /// Clients connecting from a loopback address only.
    LoopbackOnly,
}

/// Broker settings. Defaults follow what the MQTT reference brokers do where the
/// specification leaves a choice.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BrokerConfig {
    /// The largest packet accepted (and announced as Maximum Packet Size); larger ones close
    /// the connection with 0x95. Default 1 MiB.
    pub max_packet_size: usize,
    /// Incoming QoS 2 flows a client may have open (announced as Receive Maximum; QoS 1
    /// publishes are acknowledged at once). Default 1024.
    pub receive_maximum: u16,
    /// The most QoS 1/2 messages in flight to one client (less if its Receive Maximum is
    /// less). Default 1024.
    pub max_inflight: u16,
    /// Deliveries a session may have waiting (while offline, or beyond its window); past it,
    /// QoS 0 ones make room first, then new messages are dropped and counted. Default 10,000.
    pub max_queued: usize,
    /// Topic aliases a client may use (announced as Topic Alias Maximum). Default 64.
    pub topic_alias_maximum: u16,
    /// Topic aliases the broker assigns to the topics it sends one MQTT 5 client (fewer if
    /// the client's Topic Alias Maximum is lower; the least recently used topic's alias is
    /// reassigned when they run out); 0 sends every topic by name. Default 64.
    pub topic_aliases_out: u16,
    /// The longest keep-alive allowed; a client asking for more (or for none) gets this as
    /// Server Keep Alive (MQTT 5) or has it enforced (3.1.1). `None` accepts any. Default
    /// `None`.
    pub max_keep_alive: Option<u16>,
    /// The longest Session Expiry Interval granted, seconds. Default: no limit.
    pub max_session_expiry: u32,
    /// How long a new connection may take to send CONNECT. Default 10 s.
    pub connect_timeout: Duration,
    /// How often `$SYS` topics are published; `None` turns them off. Default 10 s.
    pub sys_interval: Option<Duration>,
    /// The most connections at once; more are closed at once. Default 100,000.
    pub max_connections: usize,
    /// Whether retained messages are supported. Default true.
    pub retain_available: bool,
    /// Who may connect without a password-file user. Default [`Anonymous::LoopbackOnly`].
    pub anonymous: Anonymous,
    /// Users and their password hashes; `None` checks no passwords.
    pub passwords: Option<PasswordFile>,
    /// Topic access rules; `None` allows every topic.
    pub acl: Option<AclFile>,
    /// Keep sessions, subscriptions, QoS 1/2 flows and retained messages across restarts
    /// (see [`crate::store`]). Default off for the library; `zero mqtt broker` turns it on.
    pub persistence: bool,
    /// The directory of the journal. Default `zero-data`.
    pub persistence_location: PathBuf,
    /// When the journal reaches stable storage. Default [`Fsync::Always`].
    pub fsync: Fsync,
    /// MQTT over WebSocket listeners from the configuration file (`ws_listener ADDR`); the
    /// driver's [`Listeners`](crate::server::Listeners) says where a broker really listens,
    /// and `zero mqtt broker` adds these to it.
    pub ws_listeners: Vec<std::net::SocketAddr>,
    /// MQTT over secure WebSocket listeners from the configuration file (`wss_listener
    /// ADDR`), with the certificate given to `zero mqtt broker`.
    pub wss_listeners: Vec<std::net::SocketAddr>,
    /// Origins browsers may connect from over WebSocket (`ws_origins ORIGIN ...`); `None`
    /// allows any.
    pub ws_origins: Option<Vec<String>>,
    /// Bridges to other brokers (`connection NAME` and mosquitto's bridge keywords after it),
    /// started by [`start_cluster`](crate::server::start_cluster).
    pub bridges: Vec<crate::bridge::BridgeConfig>,
    /// Fault injection for tests of what a bug does: a PUBLISH to this topic panics the
    /// shard that receives it. Default `None`.
    #[doc(hidden)]
    pub panic_on_topic: Option<String>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            max_packet_size: 1 << 20,
            receive_maximum: 1024,
            max_inflight: 1024,
            max_queued: 10_000,
            topic_alias_maximum: 64,
            topic_aliases_out: 64,
            max_keep_alive: None,
            max_session_expiry: u32::MAX,
            connect_timeout: Duration::from_secs(10),
            sys_interval: Some(Duration::from_secs(10)),
            max_connections: 100_000,
            retain_available: true,
            anonymous: Anonymous::LoopbackOnly,
            passwords: None,
            acl: None,
            persistence: false,
            persistence_location: PathBuf::from("zero-data"),
            fsync: Fsync::Always,
            ws_listeners: Vec::new(),
            wss_listeners: Vec::new(),
            ws_origins: None,
            bridges: Vec::new(),
            panic_on_topic: None,
        }
    }
}

impl BrokerConfig {
    /// Reads settings from a configuration file over the current ones. The file has one
    /// `name value` per line (lines starting with `#` are comments), with mosquitto's names where mosquitto
    /// has the setting: `allow_anonymous true|false|loopback`, `password_file PATH`,
    /// `acl_file PATH`, `max_packet_size BYTES`, `max_inflight_messages N`,
    /// `max_queued_messages N`, `max_connections N`, `max_keepalive SECS`,
    /// `sys_interval SECS` (0 turns `$SYS` off), `retain_available true|false`,
    /// `receive_maximum N`, `topic_alias_maximum N`, zero's `topic_aliases_out N`, `persistence true|false`,
    /// `persistence_location DIR`, and zero's `persistence_fsync always|never|MILLISECONDS`,
    /// `ws_listener IP:PORT`, `wss_listener IP:PORT` and `ws_origins ORIGIN...`; and bridges:
    /// `connection NAME` followed by mosquitto's bridge keywords (see
    /// [`BridgeConfig`](crate::bridge::BridgeConfig)).
    /// Relative paths are taken from the file's directory.
    pub fn load(&mut self, file: &Path) -> Result<(), Error> {
        let text =
            std::fs::read_to_string(file).map_err(|source| Error::Read { file: file.into(), source })?;
        let dir = file.parent().unwrap_or(Path::new("."));
        for (i, line) in text.lines().enumerate() {
            let bad = |reason: String| Error::Config { file: file.into(), line: i + 1, reason };
            // As in mosquitto, a comment is a line that starts with `#` (a `#` later on a line
            // is a topic wildcard: `topic sensors/# out 1`).
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, value) =
                line.split_once(char::is_whitespace).ok_or_else(|| bad(format!("`{line}` has no value")))?;
            let value = value.trim();
            let number = |what: &str| -> Result<u64, Error> {
                value.parse().map_err(|_| bad(format!("{what} wants a number, not `{value}`")))
            };
            let flag = || match value {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(bad(format!("{name} wants true or false, not `{value}`"))),
            };
            if name == "connection" {
                self.bridges.push(crate::bridge::BridgeConfig::new(value));
                continue;
            }
            if let Some(bridge) = self.bridges.last_mut() {
                if bridge.set(name, value, dir).map_err(bad)? {
                    continue;
                }
            }
            let small = |n: u64, max: u64| -> Result<u64, Error> {
                if n > max {
                    return Err(bad(format!("{name} is at most {max}")));
                }
                Ok(n)
            };
            match name {
                "allow_anonymous" => {
                    self.anonymous = match value {
                        "true" => Anonymous::Allow,
                        "false" => Anonymous::Deny,
                        "loopback" => Anonymous::LoopbackOnly,
                        _ => {
                            return Err(bad(format!(
                                "allow_anonymous wants true, false or loopback, not `{value}`"
                            )))
                        }
                    }
                }
                "password_file" => self.passwords = Some(PasswordFile::load(&dir.join(value))?),
                "acl_file" => self.acl = Some(AclFile::load(&dir.join(value))?),
                "max_packet_size" => self.max_packet_size = small(number(name)?, 268_435_460)? as usize,
                "max_inflight_messages" => self.max_inflight = small(number(name)?, 65_535)?.max(1) as u16,
                "receive_maximum" => self.receive_maximum = small(number(name)?, 65_535)?.max(1) as u16,
                "topic_alias_maximum" => self.topic_alias_maximum = small(number(name)?, 65_535)? as u16,
                "topic_aliases_out" => self.topic_aliases_out = small(number(name)?, 65_535)? as u16,
                "max_queued_messages" => self.max_queued = number(name)? as usize,
                "max_connections" => self.max_connections = number(name)? as usize,
                "max_keepalive" => self.max_keep_alive = Some(small(number(name)?, 65_535)? as u16),
                "sys_interval" => {
                    let secs = number(name)?;
                    self.sys_interval = (secs > 0).then(|| Duration::from_secs(secs));
                }
                "retain_available" => self.retain_available = flag()?,
                "persistence" => self.persistence = flag()?,
                "persistence_location" => self.persistence_location = dir.join(value),
                "persistence_fsync" => {
                    self.fsync = match value {
                        "always" => Fsync::Always,
                        "never" => Fsync::Never,
                        _ => Fsync::Every(Duration::from_millis(number(
                            "persistence_fsync (always, never or milliseconds)",
                        )?)),
                    }
                }
                "ws_listener" | "wss_listener" => {
                    let addr =
                        value.parse().map_err(|_| bad(format!("{name} wants IP:PORT, not `{value}`")))?;
                    match name {
                        "ws_listener" => self.ws_listeners.push(addr),
                        _ => self.wss_listeners.push(addr),
                    }
                }
                "ws_origins" => {
                    self.ws_origins = Some(value.split_whitespace().map(str::to_string).collect())
                }
                _ => return Err(bad(format!("unknown setting `{name}`"))),
            }
        }
        Ok(())
    }
}
