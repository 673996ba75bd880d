//! zero-dns's resolver against unbound serving a local zone on loopback, each answer compared
//! with dig's from the same server: every record type the resolver names, NXDOMAIN, NODATA,
//! REFUSED, SERVFAIL, a truncated answer retried over TCP, a dead server skipped, CNAMEs followed. And
//! the DNS server suite (`zero conformance dns`) against unbound and dnsmasq.

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use zero_conformance::dns::{big_strings, Dnsmasq, Probe, Unbound};
use zero_dns::resolver::lookup_blocking;
use zero_dns::{RecordType, ResolveError, ResolverConfig, Source};

fn config(server: SocketAddr) -> ResolverConfig {
    let mut c = ResolverConfig::with_servers(&[server]);
    c.timeout = Duration::from_secs(2);
    c
}

/// dig's answer (`+short`), sorted.
fn dig(server: SocketAddr, name: &str, rtype: &str, extra: &[&str]) -> Vec<String> {
    let out = Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), "+short", "+time=2", "+tries=1", name, rtype])
        .args(extra)
        .output()
        .unwrap();
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with(';'))
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

/// Our answer in dig's `+short` form, sorted.
fn ours(config: ResolverConfig, name: &str, rtype: RecordType) -> Vec<String> {
    let answer = lookup_blocking(config, name, rtype).unwrap_or_else(|e| panic!("{name} {rtype}: {e}"));
    let mut lines: Vec<String> = answer.records.iter().map(|r| r.data.to_string()).collect();
    lines.sort();
    lines
}

#[test]
fn every_record_type_matches_dig() {
    let u = Unbound::start();
    for (name, rtype) in [
        ("www.zero.test.", RecordType::A),
        ("www.zero.test.", RecordType::AAAA),
        ("zero.test.", RecordType::MX),
        ("txt.zero.test.", RecordType::TXT),
        ("_sip._tcp.zero.test.", RecordType::SRV),
        ("1.0.0.10.in-addr.arpa.", RecordType::PTR),
        ("zero.test.", RecordType::CAA),
        ("zero.test.", RecordType::SOA),
    ] {
        same_as_dig(u.addr, name, rtype);
    }
    // unbound answers a CNAME of its local data alone; the resolver follows it, and the answer
    // is the chain and the target's records, as dig shows them asked one after the other.
    let mut want = dig(u.addr, "alias.zero.test.", "A", &[]);
    want.extend(dig(u.addr, "www.zero.test.", "A", &[]));
    want.sort();
    assert_eq!(ours(config(u.addr), "alias.zero.test.", RecordType::A), want);
}

/// Our answer to `name` `rtype` from `server` is dig's.
fn same_as_dig(server: SocketAddr, name: &str, rtype: RecordType) {
    let want = dig(server, name, &rtype.to_string(), &[]);
    assert!(!want.is_empty(), "dig got nothing for {name} {rtype}");
    let got = ours(config(server), name, rtype);
    // TXT: dig quotes each string; hickory prints it bare.
    let got: Vec<String> =
        if rtype == RecordType::TXT { got.iter().map(|t| format!("\"{t}\"")).collect() } else { got };
    assert_eq!(normalize(&got), normalize(&want), "{name} {rtype}");
}

/// The forms dig and hickory-proto print differently: CAA's flags and quoting, case.
fn normalize(lines: &[String]) -> Vec<String> {
    lines.iter().map(|l| l.to_ascii_lowercase().replace('"', "")).collect()
}

#[test]
fn negative_answers_say_what_they_are() {
    let u = Unbound::start();
    let nx = lookup_blocking(config(u.addr), "nothere.zero.test.", RecordType::A).unwrap_err();
    assert!(matches!(&nx, ResolveError::NxDomain { server: Source::Server(s), .. } if *s == u.addr), "{nx}");
    let nodata = lookup_blocking(config(u.addr), "txt.zero.test.", RecordType::AAAA).unwrap_err();
    assert!(matches!(nodata, ResolveError::NoData { .. }), "{nodata}");
    let refused = lookup_blocking(config(u.addr), "example.com.", RecordType::A).unwrap_err();
    assert!(
        matches!(&refused, ResolveError::ServerFailure { rcode, server, .. } if rcode.contains("Refused") && *server == u.addr),
        "{refused}"
    );
    assert_eq!(refused.to_string(), format!("example.com.: Query Refused from {}", u.addr));
    let failed = lookup_blocking(config(u.addr), "www.broken.test.", RecordType::A).unwrap_err();
    assert_eq!(failed.to_string(), format!("www.broken.test.: Server Failure from {}", u.addr));
    let port = u.addr.port().to_string();
    let digs = Command::new("dig")
        .args(["@127.0.0.1", "-p", &port, "+tries=1", "www.broken.test.", "A"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&digs.stdout).contains("status: SERVFAIL"), "dig disagrees");
}

#[test]
fn a_truncated_answer_is_fetched_over_tcp_whole() {
    let u = Unbound::start();
    let mut config = config(u.addr);
    config.edns_size = 0; // 512-byte datagrams: the five long TXT strings do not fit
    let got = ours(config, "big.zero.test.", RecordType::TXT);
    assert_eq!(got.len(), 5);
    let want = big_strings();
    assert_eq!(got, want);
    // dig says the same over TCP.
    assert_eq!(dig(u.addr, "big.zero.test.", "TXT", &["+tcp"]).len(), 5);
}

#[test]
fn a_dead_server_is_skipped_and_tcp_only_works() {
    let u = Unbound::start();
    // Nothing listens on the first address (a bound, silent socket).
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut config = ResolverConfig::with_servers(&[silent.local_addr().unwrap(), u.addr]);
    config.timeout = Duration::from_millis(300);
    let started = Instant::now();
    let answer = lookup_blocking(config.clone(), "www.zero.test.", RecordType::A).unwrap();
    assert_eq!(answer.source, Source::Server(u.addr));
    assert!(started.elapsed() >= Duration::from_millis(300), "waited for the first server's timeout");
    config.tcp_only = true;
    config.servers = vec![u.addr];
    assert_eq!(ours(config, "www.zero.test.", RecordType::A), ["10.0.0.1", "10.0.0.2"]);
}

/// The server suite passes against unbound; against dnsmasq all but what dnsmasq does not do.
#[test]
fn the_server_suite_against_unbound_and_dnsmasq() {
    let u = Unbound::start();
    let outcomes = zero_conformance::dns::run(u.addr, &Probe::default(), None);
    let failed: Vec<_> = outcomes.iter().filter(|o| o.failure.is_some()).collect();
    assert!(failed.is_empty(), "unbound: {failed:?}");
    assert_eq!(outcomes.len(), 7);
    let d = Dnsmasq::start();
    let outcomes = zero_conformance::dns::run(d.addr, &Probe::default(), None);
    let failed: Vec<&str> = outcomes.iter().filter(|o| o.failure.is_some()).map(|o| o.name).collect();
    // dnsmasq answers NXDOMAIN for its --local domain without a SOA (it is no authority for
    // it), so a resolver cannot tell how long to remember it: zero's then does not (RFC 2308
    // 5). Everything else passes.
    assert_eq!(failed, ["nxdomain-soa"], "dnsmasq: {outcomes:?}");
}

/// DNS over TLS to unbound's TLS port: the certificate is checked for the configured name,
/// and a name it does not carry fails with the TLS error, not a timeout.
#[test]
fn dns_over_tls_checks_the_servers_name() {
    let u = Unbound::start_tls();
    let (tls_addr, ca) = u.tls.clone().unwrap();
    let tls_config = zero_core::tls::ClientTls::with_ca_pem(ca.as_bytes()).unwrap().build().unwrap();
    let mut c = config(tls_addr);
    c.tls = Some(zero_dns::DnsTls { server_name: "dns.zero.test".into(), config: tls_config.clone() });
    assert_eq!(ours(c.clone(), "www.zero.test.", RecordType::A), ["10.0.0.1", "10.0.0.2"]);
    c.tls = Some(zero_dns::DnsTls { server_name: "other.zero.test".into(), config: tls_config });
    c.attempts = 1;
    let e = lookup_blocking(c, "www.zero.test.", RecordType::A).unwrap_err();
    assert!(matches!(&e, ResolveError::Connection { why, .. } if why.contains("certificate")), "{e}");
}

/// An answer's records (sorted: servers rotate them) or its error, as text.
fn shown(result: Result<zero_dns::resolver::Answer, ResolveError>) -> String {
    match result {
        Ok(a) => {
            let mut records: Vec<String> =
                a.records.iter().map(|r| format!("{} {}", r.name, r.data)).collect();
            records.sort();
            records.join(" | ")
        }
        Err(e) => format!("error: {e}"),
    }
}

/// Lookups through one resolver driver on a shard of the test's own: `rounds` times, every
/// question at once. Returns the answers (`Ok` as dig's `+short`, `Err` as the error's text),
/// in question order per round, and the connections the driver opened.
fn pipelined(config: ResolverConfig, questions: &[(&str, RecordType)], rounds: usize) -> (Vec<String>, u64) {
    use zero_core::{Config, Event as IoEvent, Handler, Io, Ops};
    use zero_dns::resolver::{Event, LookupId, Resolver, ResolverDriver};
    struct Run<'a> {
        driver: ResolverDriver,
        questions: &'a [(&'a str, RecordType)],
        rounds: usize,
        asked: Vec<LookupId>,
        got: Vec<(LookupId, String)>,
        out: Vec<String>,
    }
    impl Handler for Run<'_> {
        fn on_event(&mut self, ops: &mut Ops, event: IoEvent<'_>) {
            self.driver.on_event(ops, &event);
        }
        fn on_batch_end(&mut self, ops: &mut Ops) {
            while let Some(Event::Answer { lookup, result }) = self.driver.resolver().poll_event() {
                self.got.push((lookup, shown(result)));
            }
            if self.got.len() == self.asked.len() {
                for id in &self.asked {
                    let (_, text) = self.got.iter().find(|(l, _)| l == id).expect("answered");
                    self.out.push(text.clone());
                }
                (self.asked, self.got) = (Vec::new(), Vec::new());
                if self.rounds == 0 {
                    return ops.stop();
                }
                self.rounds -= 1;
                let now = ops.now();
                for (name, rtype) in self.questions {
                    let id = self.driver.resolver().lookup(now, name, *rtype);
                    self.asked.push(id);
                }
            }
            self.driver.pump(ops);
        }
    }
    let mut io = Io::new(Config::default()).unwrap();
    let driver = ResolverDriver::new(Resolver::new(config, 1), 0);
    let mut run = Run { driver, questions, rounds, asked: Vec::new(), got: Vec::new(), out: Vec::new() };
    io.timer(Duration::from_secs(20), u64::MAX);
    run.on_batch_end(&mut io);
    io.run(&mut run).unwrap();
    let opened = run.driver.connections_opened();
    (run.out, opened)
}

/// Over TLS (and over TCP to dnsmasq), one connection carries every query: nine questions
/// pipelined at once, three rounds, each answer what the server answers alone.
#[test]
fn one_connection_carries_pipelined_queries() {
    let questions = [
        ("www.zero.test.", RecordType::A),
        ("www.zero.test.", RecordType::AAAA),
        ("zero.test.", RecordType::MX),
        ("txt.zero.test.", RecordType::TXT),
        ("_sip._tcp.zero.test.", RecordType::SRV),
        ("alias.zero.test.", RecordType::A),
        ("nothere.zero.test.", RecordType::A),
        ("big.zero.test.", RecordType::TXT),
        ("zero.test.", RecordType::CAA),
    ];
    // What each server answers to each question alone, over UDP.
    let alone = |server: SocketAddr, questions: &[(&str, RecordType)]| -> Vec<String> {
        questions.iter().map(|&(name, rtype)| shown(lookup_blocking(config(server), name, rtype))).collect()
    };
    let u = Unbound::start_tls();
    let expected = alone(u.addr, &questions);
    let (tls_addr, ca) = u.tls.clone().unwrap();
    let tls_config = zero_core::tls::ClientTls::with_ca_pem(ca.as_bytes()).unwrap().build().unwrap();
    let mut c = config(tls_addr);
    c.cache_size = 0;
    c.tls = Some(zero_dns::DnsTls { server_name: "dns.zero.test".into(), config: tls_config });
    let (answers, opened) = pipelined(c, &questions, 3);
    let answers: Vec<String> =
        answers.iter().map(|t| t.replace(&tls_addr.to_string(), &u.addr.to_string())).collect();
    assert_eq!(answers, [&expected[..], &expected, &expected].concat());
    assert_eq!(opened, 1, "one TLS connection for 27 queries");

    let d = Dnsmasq::start();
    let expected = alone(d.addr, &questions);
    let mut c = config(d.addr);
    (c.cache_size, c.tcp_only) = (0, true);
    let (answers, opened) = pipelined(c, &questions, 2);
    assert_eq!(answers, [&expected[..], &expected].concat());
    assert_eq!(opened, 1, "one TCP connection to dnsmasq");
}

/// The same comparison with dnsmasq as the server (its own records of the zone).
#[test]
fn answers_from_dnsmasq_match_dig() {
    let d = Dnsmasq::start();
    for (name, rtype) in [
        ("www.zero.test.", RecordType::A),
        ("txt.zero.test.", RecordType::TXT),
        ("_sip._tcp.zero.test.", RecordType::SRV),
        ("zero.test.", RecordType::MX),
        ("alias.zero.test.", RecordType::A),
    ] {
        same_as_dig(d.addr, name, rtype);
    }
    let nx = lookup_blocking(config(d.addr), "nothere.zero.test.", RecordType::A).unwrap_err();
    assert!(matches!(nx, ResolveError::NxDomain { .. }), "{nx}");
}
