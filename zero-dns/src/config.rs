//! The resolver's settings, and the two files a Unix resolver reads: `/etc/resolv.conf`
//! (`nameserver`, `search`/`domain`, `options ndots: timeout: attempts: rotate edns0`) and
//! `/etc/hosts`. Parsing is the driver's business (a machine reads no file); these functions
//! take the text.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use zero_core::rustls::ClientConfig;

/// How the resolver works.
#[derive(Debug, Clone)]
pub struct ResolverConfig {
    /// The name servers, in preference order.
    pub servers: Vec<SocketAddr>,
    /// Domains appended to names with fewer than `ndots` dots (`search`).
    pub search: Vec<String>,
    /// A name with at least this many dots is tried as is first (`options ndots:`, 1).
    pub ndots: usize,
    /// How long one query to one server may take (`options timeout:`, 5 s).
    pub timeout: Duration,
    /// Rounds over the servers before giving up (`options attempts:`, 2).
    pub attempts: u32,
    /// Spread queries over the servers instead of preferring the fastest (`options rotate`).
    pub rotate: bool,
    /// The UDP payload size offered with EDNS(0); 0: no EDNS. 1232 by default (the DNS flag
    /// day 2020 size that avoids IP fragmentation).
    pub edns_size: u16,
    /// Randomise the case of query names (DNS 0x20) and require it back unchanged.
    pub case_randomization: bool,
    /// Use TCP for every query.
    pub tcp_only: bool,
    /// DNS over TLS (RFC 7858): every query over TLS (port 853), the servers' certificates
    /// checked for this name.
    pub tls: Option<DnsTls>,
    /// Entries the cache keeps (0: no cache).
    pub cache_size: usize,
    /// The longest a negative answer is remembered (RFC 2308 leaves it to the resolver; 15
    /// minutes, as unbound's default does not exceed).
    pub max_negative_ttl: Duration,
    /// The longest a CNAME chain may be.
    pub max_cnames: usize,
    /// `/etc/hosts`.
    pub hosts: Hosts,
}

impl Default for ResolverConfig {
    fn default() -> ResolverConfig {
        ResolverConfig {
            servers: Vec::new(),
            search: Vec::new(),
            ndots: 1,
            timeout: Duration::from_secs(5),
            attempts: 2,
            rotate: false,
            edns_size: 1232,
            case_randomization: false,
            tcp_only: false,
            tls: None,
            cache_size: 4096,
            max_negative_ttl: Duration::from_secs(900),
            max_cnames: 8,
            hosts: Hosts::default(),
        }
    }
}

impl ResolverConfig {
    /// A configuration asking `servers` (port 53 unless given).
    pub fn with_servers(servers: &[SocketAddr]) -> ResolverConfig {
        ResolverConfig { servers: servers.to_vec(), ..ResolverConfig::default() }
    }

    /// Reads the text of a `resolv.conf` onto the defaults. Unknown lines and options are
    /// ignored, as glibc ignores them; at most three name servers are used, as glibc does.
    pub fn from_resolv_conf(text: &str) -> ResolverConfig {
        let mut config = ResolverConfig::default();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    if let Some(ip) = words.next().and_then(|w| w.split('%').next()?.parse::<IpAddr>().ok()) {
                        if config.servers.len() < 3 {
                            config.servers.push(SocketAddr::new(ip, 53));
                        }
                    }
                }
                // The last of `search` and `domain` wins.
                Some("search") => config.search = words.map(str::to_string).collect(),
                Some("domain") => config.search = words.take(1).map(str::to_string).collect(),
                Some("options") => {
                    for option in words {
                        let (key, value) = option.split_once(':').unwrap_or((option, ""));
                        let number = value.parse::<u64>().ok();
                        match (key, number) {
                            ("ndots", Some(n)) => config.ndots = n.min(15) as usize,
                            ("timeout", Some(n)) => config.timeout = Duration::from_secs(n.clamp(1, 30)),
                            ("attempts", Some(n)) => config.attempts = n.clamp(1, 5) as u32,
                            ("rotate", _) => config.rotate = true,
                            ("edns0", _) => config.edns_size = config.edns_size.max(1232),
                            ("use-vc", _) => config.tcp_only = true,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        config
    }
}

/// DNS over TLS: the name the servers' certificates must carry (sent as SNI), and the rustls
/// configuration (zero-core's `ClientTls`: system roots or a given CA).
#[derive(Clone)]
pub struct DnsTls {
    /// The servers' name.
    pub server_name: String,
    /// The client configuration.
    pub config: Arc<ClientConfig>,
}

impl std::fmt::Debug for DnsTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsTls").field("server_name", &self.server_name).finish_non_exhaustive()
    }
}

/// `/etc/hosts`: names to addresses and addresses to names.
#[derive(Debug, Clone, Default)]
pub struct Hosts {
    by_name: HashMap<String, Vec<IpAddr>>,
    by_addr: HashMap<IpAddr, String>,
}

impl Hosts {
    /// Reads the text of a hosts file (`ADDRESS NAME [ALIAS...]`, `#` comments).
    pub fn parse(text: &str) -> Hosts {
        let mut hosts = Hosts::default();
        for line in text.lines() {
            let mut words = line.split('#').next().unwrap_or("").split_whitespace();
            let Some(addr) = words.next().and_then(|w| w.split('%').next()?.parse::<IpAddr>().ok()) else {
                continue;
            };
            for (i, name) in words.enumerate() {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if i == 0 {
                    hosts.by_addr.entry(addr).or_insert_with(|| name.clone());
                }
                let addrs = hosts.by_name.entry(name).or_default();
                if !addrs.contains(&addr) {
                    addrs.push(addr);
                }
            }
        }
        hosts
    }

    /// The addresses of `name` (any case, with or without the final dot).
    pub fn addresses(&self, name: &str) -> &[IpAddr] {
        self.by_name.get(&name.trim_end_matches('.').to_ascii_lowercase()).map_or(&[], Vec::as_slice)
    }

    /// The name of `addr`.
    pub fn name_of(&self, addr: IpAddr) -> Option<&str> {
        self.by_addr.get(&addr).map(String::as_str)
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_as_glibc_reads_it() {
        let c = ResolverConfig::from_resolv_conf(
            "# comment\nnameserver 127.0.0.53\nnameserver ::1\nnameserver 10.0.0.1\nnameserver 10.0.0.2\n\
             domain example.com\nsearch a.test b.test ; trailing\noptions ndots:2 timeout:3 attempts:4 rotate\n",
        );
        let ips: Vec<String> = c.servers.iter().map(|s| s.to_string()).collect();
        assert_eq!(ips, ["127.0.0.53:53", "[::1]:53", "10.0.0.1:53"]);
        assert_eq!(c.search, ["a.test", "b.test"]);
        assert_eq!((c.ndots, c.timeout, c.attempts, c.rotate), (2, Duration::from_secs(3), 4, true));
    }

    #[test]
    fn hosts_both_ways() {
        let h = Hosts::parse(
            "127.0.0.1 localhost\n::1 localhost ip6-localhost # x\n10.1.1.1 Box.Lan box\nbad line\n",
        );
        assert_eq!(
            h.addresses("LOCALHOST."),
            ["127.0.0.1".parse::<IpAddr>().unwrap(), "::1".parse().unwrap()]
        );
        assert_eq!(h.addresses("box"), ["10.1.1.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(h.name_of("10.1.1.1".parse().unwrap()), Some("box.lan"));
        assert!(h.addresses("nowhere").is_empty());
    }
}
