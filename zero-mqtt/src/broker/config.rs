//! What a broker allows and how much it holds.

use std::time::Duration;

use crate::auth::{AclFile, PasswordFile};

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
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            max_packet_size: 1 << 20,
            receive_maximum: 1024,
            max_inflight: 1024,
            max_queued: 10_000,
            topic_alias_maximum: 64,
            max_keep_alive: None,
            max_session_expiry: u32::MAX,
            connect_timeout: Duration::from_secs(10),
            sys_interval: Some(Duration::from_secs(10)),
            max_connections: 100_000,
            retain_available: true,
            anonymous: Anonymous::LoopbackOnly,
            passwords: None,
            acl: None,
        }
    }
}
