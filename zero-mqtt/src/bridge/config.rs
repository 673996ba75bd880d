//! A bridge's settings, in mosquitto's bridge keywords so existing configurations work:
//! `connection NAME` starts one, and the keywords after it (`address`, `topic`,
//! `bridge_protocol_version`, `cleansession`, `remote_clientid`, ...) set it up.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::codec::{Protocol, QoS};
use crate::topic;

/// Which way a bridged topic flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From this broker to the remote one.
    Out,
    /// From the remote broker to this one.
    In,
    /// Both ways (loops are prevented: see the `bridge` module).
    Both,
}

/// One `topic PATTERN [[[out|in|both] QOS] LOCAL_PREFIX REMOTE_PREFIX]` line: the topics
/// `LOCAL_PREFIX + PATTERN` here and `REMOTE_PREFIX + PATTERN` there are the same. An empty
/// pattern (`""`) maps the topic `LOCAL_PREFIX` to the topic `REMOTE_PREFIX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeTopic {
    /// The topic filter, without prefixes.
    pub pattern: String,
    /// Which way it flows. Default out.
    pub direction: Direction,
    /// The QoS it is subscribed and forwarded with (at most). Default 0.
    pub qos: QoS,
    /// Prefix of the topic on this broker.
    pub local_prefix: String,
    /// Prefix of the topic on the remote broker.
    pub remote_prefix: String,
}

/// Splits a value into words; `""` is an empty word, as mosquitto writes it.
fn words(value: &str) -> Vec<String> {
    value.split_whitespace().map(|w| if w == "\"\"" { String::new() } else { w.to_string() }).collect()
}

impl BridgeTopic {
    /// Parses the value of a `topic` line.
    pub fn parse(value: &str) -> Result<BridgeTopic, String> {
        let w = words(value);
        let mut t = BridgeTopic {
            pattern: w.first().cloned().ok_or("topic wants a pattern")?,
            direction: Direction::Out,
            qos: QoS::AtMostOnce,
            local_prefix: String::new(),
            remote_prefix: String::new(),
        };
        if let Some(d) = w.get(1) {
            t.direction = match d.as_str() {
                "out" => Direction::Out,
                "in" => Direction::In,
                "both" => Direction::Both,
                _ => return Err(format!("topic direction is out, in or both, not `{d}`")),
            };
        }
        if let Some(q) = w.get(2) {
            t.qos = q
                .parse()
                .ok()
                .and_then(QoS::from_bits)
                .ok_or(format!("topic QoS is 0, 1 or 2, not `{q}`"))?;
        }
        match w.len() {
            0..=3 => {}
            5 => (t.local_prefix, t.remote_prefix) = (w[3].clone(), w[4].clone()),
            _ => return Err("topic takes a pattern, a direction, a QoS and both prefixes or none".into()),
        }
        if t.pattern.is_empty() && (t.local_prefix.is_empty() || t.remote_prefix.is_empty()) {
            return Err("an empty topic pattern needs both prefixes (they are then the topics)".into());
        }
        for filter in [t.filter(&t.local_prefix), t.filter(&t.remote_prefix)] {
            if !topic::valid_topic_filter(&filter) {
                return Err(format!("`{filter}` is not a valid topic filter"));
            }
        }
        Ok(t)
    }

    fn filter(&self, prefix: &str) -> String {
        format!("{prefix}{}", self.pattern)
    }

    /// The filter subscribed to on this broker (out and both).
    pub fn local_filter(&self) -> String {
        self.filter(&self.local_prefix)
    }

    /// The filter subscribed to on the remote broker (in and both).
    pub fn remote_filter(&self) -> String {
        self.filter(&self.remote_prefix)
    }

    /// Whether it carries messages out (to the remote broker).
    pub fn outward(&self) -> bool {
        self.direction != Direction::In
    }

    /// Whether it carries messages in (from the remote broker).
    pub fn inward(&self) -> bool {
        self.direction != Direction::Out
    }

    /// `topic` under `from` as it is named under `to`, if this rule covers it.
    fn map(&self, topic: &str, from: &str, to: &str) -> Option<String> {
        let rest = topic.strip_prefix(from)?;
        let covered =
            if self.pattern.is_empty() { rest.is_empty() } else { topic::matches(&self.pattern, rest) };
        covered.then(|| format!("{to}{rest}"))
    }

    /// The remote name of a local topic this rule sends out.
    pub fn to_remote(&self, local: &str) -> Option<String> {
        self.map(local, &self.local_prefix, &self.remote_prefix).filter(|_| self.outward())
    }

    /// The local name of a remote topic this rule brings in.
    pub fn to_local(&self, remote: &str) -> Option<String> {
        self.map(remote, &self.remote_prefix, &self.local_prefix).filter(|_| self.inward())
    }
}

/// One bridge: a connection to a remote broker and the topics it carries.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BridgeConfig {
    /// `connection NAME`.
    pub name: String,
    /// `address HOST[:PORT] ...` (port 1883 if absent); the first that connects is used,
    /// and the next after a failure.
    pub addresses: Vec<String>,
    /// `topic ...` lines.
    pub topics: Vec<BridgeTopic>,
    /// `bridge_protocol_version mqttv31|mqttv311|mqttv50`. Default MQTT 3.1.1.
    pub protocol: Protocol,
    /// `cleansession true|false`: start both sessions afresh at each connect. Default false
    /// (messages for the other side wait in the sessions while it is away).
    pub clean_session: bool,
    /// `remote_clientid`. Default `HOSTNAME.NAME`.
    pub remote_clientid: Option<String>,
    /// `local_clientid`: the bridge's client id on this broker. Default `local.HOSTNAME.NAME`.
    pub local_clientid: Option<String>,
    /// `remote_username`.
    pub remote_username: Option<String>,
    /// `remote_password`.
    pub remote_password: Option<String>,
    /// `keepalive_interval SECS`. Default 60.
    pub keep_alive: u16,
    /// `try_private true|false`: announce a bridge to an MQTT 3.x remote (the protocol
    /// level's top bit), so it does not send the bridge's own messages back. Default true.
    pub try_private: bool,
    /// `bridge_cafile PATH`: connect over TLS, trusting this CA (the server name is the
    /// address's host).
    pub cafile: Option<PathBuf>,
    /// `restart_timeout BASE [CAP]`: reconnect after BASE seconds, doubling up to CAP.
    /// Default 5 and 30.
    pub restart: (Duration, Duration),
}

/// mosquitto bridge keywords zero accepts but does not act on.
const IGNORED: &[&str] = &[
    "bridge_attempt_unsubscribe",
    "bridge_outgoing_retain",
    "idle_timeout",
    "notifications",
    "notifications_local_only",
    "notification_topic",
    "round_robin",
    "start_type",
    "threshold",
    "local_cleansession",
];

impl BridgeConfig {
    /// A bridge called `name`, not yet pointed anywhere.
    pub fn new(name: &str) -> BridgeConfig {
        BridgeConfig {
            name: name.into(),
            addresses: Vec::new(),
            topics: Vec::new(),
            protocol: Protocol::V311,
            clean_session: false,
            remote_clientid: None,
            local_clientid: None,
            remote_username: None,
            remote_password: None,
            keep_alive: 60,
            try_private: true,
            cafile: None,
            restart: (Duration::from_secs(5), Duration::from_secs(30)),
        }
    }

    /// Applies one configuration line of this bridge; `Ok(false)` if `name` is not a bridge
    /// keyword. Relative paths are taken from `dir`.
    pub fn set(&mut self, name: &str, value: &str, dir: &Path) -> Result<bool, String> {
        let flag = || match value {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(format!("{name} wants true or false, not `{value}`")),
        };
        match name {
            "address" | "addresses" => self.addresses.extend(words(value)),
            "topic" => self.topics.push(BridgeTopic::parse(value)?),
            "bridge_protocol_version" => {
                self.protocol = match value {
                    "mqttv31" => Protocol::V31,
                    "mqttv311" => Protocol::V311,
                    "mqttv50" => Protocol::V5,
                    _ => {
                        return Err(format!(
                            "bridge_protocol_version is mqttv31, mqttv311 or mqttv50, not `{value}`"
                        ))
                    }
                }
            }
            "cleansession" => self.clean_session = flag()?,
            "remote_clientid" | "clientid" => self.remote_clientid = Some(value.into()),
            "local_clientid" => self.local_clientid = Some(value.into()),
            "remote_username" | "username" => self.remote_username = Some(value.into()),
            "remote_password" | "password" => self.remote_password = Some(value.into()),
            "keepalive_interval" => {
                self.keep_alive =
                    value.parse().map_err(|_| format!("keepalive_interval wants seconds, not `{value}`"))?
            }
            "try_private" => self.try_private = flag()?,
            "bridge_cafile" => self.cafile = Some(dir.join(value)),
            "bridge_insecure" if value == "true" => {
                return Err("bridge_insecure: zero never skips certificate checks; give bridge_cafile".into())
            }
            "restart_timeout" => {
                let secs: Vec<u64> = value
                    .split_whitespace()
                    .map(|s| s.parse().map_err(|_| format!("restart_timeout wants seconds, not `{value}`")))
                    .collect::<Result<_, _>>()?;
                self.restart = match secs[..] {
                    [base] => (Duration::from_secs(base), Duration::from_secs(base)),
                    [base, cap] => (Duration::from_secs(base), Duration::from_secs(cap.max(base))),
                    _ => return Err("restart_timeout takes a base and an optional cap, in seconds".into()),
                };
            }
            _ if name.starts_with("bridge_") && !IGNORED.contains(&name) => {
                return Err(format!("bridge setting `{name}` is not supported"))
            }
            _ if IGNORED.contains(&name) => {
                tracing::warn!(bridge = %self.name, setting = name, "bridge setting ignored")
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Checks that the bridge can run.
    pub fn validate(&self) -> Result<(), String> {
        if self.addresses.is_empty() {
            return Err(format!("bridge {} has no address", self.name));
        }
        if self.topics.is_empty() {
            return Err(format!("bridge {} has no topic", self.name));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_lines_as_mosquitto_reads_them() {
        let t = BridgeTopic::parse("sensors/# both 1 local/ remote/").unwrap();
        assert_eq!((t.direction, t.qos), (Direction::Both, QoS::AtLeastOnce));
        assert_eq!(
            (t.local_filter(), t.remote_filter()),
            ("local/sensors/#".into(), "remote/sensors/#".into())
        );
        assert_eq!(t.to_remote("local/sensors/a/temp").as_deref(), Some("remote/sensors/a/temp"));
        assert_eq!(t.to_local("remote/sensors/b").as_deref(), Some("local/sensors/b"));
        assert_eq!(t.to_remote("other/sensors/a"), None);
        let out = BridgeTopic::parse("#").unwrap();
        assert_eq!(
            (out.direction, out.qos, out.local_filter()),
            (Direction::Out, QoS::AtMostOnce, "#".into())
        );
        assert_eq!(out.to_local("x"), None, "out only");
        let remap = BridgeTopic::parse("\"\" in 2 here/status there/state").unwrap();
        assert_eq!(remap.to_local("there/state").as_deref(), Some("here/status"));
        assert_eq!(remap.to_local("there/state/x"), None);
        assert!(BridgeTopic::parse("a sideways 1").is_err());
        assert!(BridgeTopic::parse("a out 3").is_err());
        assert!(BridgeTopic::parse("a/#/b").is_err());
        assert!(BridgeTopic::parse("\"\" out 1").is_err());
    }

    #[test]
    fn bridge_keywords() {
        let mut b = BridgeConfig::new("up");
        let dir = Path::new("/etc/zero");
        for (k, v) in [
            ("address", "broker.example:8883 backup.example"),
            ("topic", "a/# out 1"),
            ("bridge_protocol_version", "mqttv50"),
            ("cleansession", "true"),
            ("remote_clientid", "edge-7"),
            ("restart_timeout", "1 10"),
            ("bridge_cafile", "ca.pem"),
            ("notifications", "false"),
        ] {
            assert!(b.set(k, v, dir).unwrap(), "{k}");
        }
        assert_eq!(b.addresses, ["broker.example:8883", "backup.example"]);
        assert_eq!(
            (b.protocol, b.clean_session, b.remote_clientid.as_deref()),
            (Protocol::V5, true, Some("edge-7"))
        );
        assert_eq!(b.restart, (Duration::from_secs(1), Duration::from_secs(10)));
        assert_eq!(b.cafile.as_deref(), Some(Path::new("/etc/zero/ca.pem")));
        assert!(!b.set("max_packet_size", "10", dir).unwrap(), "not a bridge keyword");
        assert!(b.set("bridge_insecure", "true", dir).is_err());
        assert!(b.set("bridge_psk", "x", dir).is_err());
        assert!(b.validate().is_ok());
        assert!(BridgeConfig::new("empty").validate().is_err());
    }
}
