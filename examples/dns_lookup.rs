//! The A and AAAA records of a name, through zero-dns's stub resolver (UDP, TCP when an
//! answer is truncated, CNAME chains followed).
//!
//! It asks the servers of `/etc/resolv.conf` (and reads `/etc/hosts`), or the one server
//! given, e.g. a local unbound:
//!
//! ```text
//! cargo run -p zero-examples --example dns_lookup -- example.com
//! cargo run -p zero-examples --example dns_lookup -- www.zero.test 127.0.0.1:5353
//! ```
//!
//! Arguments: `NAME [SERVER[:PORT]]` (port 53 by default).

use std::net::{IpAddr, SocketAddr};

use zero_dns::resolver::lookup_blocking;
use zero_dns::{Hosts, RecordType, ResolveError, ResolverConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let name = args.next().ok_or("usage: dns_lookup NAME [SERVER[:PORT]]")?;
    let config = match args.next() {
        // One server: `192.0.2.53`, `192.0.2.53:5353`, `::1` or `[::1]:5353`.
        Some(server) => {
            let addr = server
                .parse::<SocketAddr>()
                .or_else(|_| server.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))?;
            ResolverConfig::with_servers(&[addr])
        }
        // The system's settings: nameservers, search list, ndots, timeouts; and /etc/hosts.
        None => {
            let mut config = ResolverConfig::from_resolv_conf(&std::fs::read_to_string("/etc/resolv.conf")?);
            config.hosts = Hosts::parse(&std::fs::read_to_string("/etc/hosts").unwrap_or_default());
            config
        }
    };

    let mut found = 0;
    for rtype in [RecordType::A, RecordType::AAAA] {
        // One lookup on a shard of its own, blocking until answered (or failed for good).
        match lookup_blocking(config.clone(), &name, rtype) {
            Ok(answer) => {
                // The records: the CNAME chain first, then those of the type asked for.
                for r in &answer.records {
                    println!("{}\t{}\t{}\t{}", r.name, r.ttl, r.record_type(), r.data);
                }
                found += answer.ips().len();
                println!(";; {} {rtype}: {:?} (from {})", answer.name, answer.ips(), answer.source);
            }
            // "No such name" and "no records of this type" are answers, not failures.
            Err(e @ (ResolveError::NxDomain { .. } | ResolveError::NoData { .. })) => println!(";; {e}"),
            Err(e) => return Err(e.into()),
        }
    }
    println!(";; {found} address(es)");
    Ok(())
}
