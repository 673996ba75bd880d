//! The resolver against unbound serving a local zone on loopback, each answer compared with
//! dig's from the same server: every record type the resolver names, NXDOMAIN, NODATA,
//! REFUSED, a truncated answer retried over TCP, a dead server skipped, CNAMEs followed.

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zero_dns::resolver::lookup_blocking;
use zero_dns::{RecordType, ResolveError, ResolverConfig, Source};

/// unbound on a spare loopback port with the zone `zero.test.`, killed on drop.
struct Unbound {
    child: Child,
    addr: SocketAddr,
    dir: std::path::PathBuf,
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn tool(name: &str) {
    let found = Command::new("sh").arg("-c").arg(format!("command -v {name}")).output().unwrap();
    assert!(
        found.status.success(),
        "{name} is missing: run scripts/test.sh (it installs unbound and bind9-dnsutils)"
    );
}

/// A TXT string of 200 bytes: five of them make an answer no 512-byte datagram holds.
fn long_text(i: usize) -> String {
    format!("{i}{}", "x".repeat(199))
}

impl Unbound {
    fn start() -> Unbound {
        tool("unbound");
        let port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = std::env::temp_dir().join(format!("zero-dns-unbound-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut data = vec![
            "zero.test. 3600 IN SOA ns.zero.test. admin.zero.test. 1 3600 600 86400 60".to_string(),
            "www.zero.test. 300 IN A 10.0.0.1".into(),
            "www.zero.test. 300 IN A 10.0.0.2".into(),
            "www.zero.test. 300 IN AAAA 2001:db8::1".into(),
            "zero.test. 300 IN MX 10 mx1.zero.test.".into(),
            "zero.test. 300 IN MX 5 mx0.zero.test.".into(),
            "txt.zero.test. 300 IN TXT \"hello world\"".into(),
            "_sip._tcp.zero.test. 300 IN SRV 10 60 5060 sip1.zero.test.".into(),
            "alias.zero.test. 300 IN CNAME www.zero.test.".into(),
            "zero.test. 300 IN CAA 0 issue \"letsencrypt.org\"".into(),
        ];
        data.extend((0..5).map(|i| format!("big.zero.test. 300 IN TXT \"{}\"", long_text(i))));
        let local_data: String = data.iter().map(|d| format!("  local-data: '{d}'\n")).collect();
        let conf = format!(
            "server:\n  interface: 127.0.0.1\n  port: {port}\n  do-daemonize: no\n  chroot: \"\"\n  username: \"\"\n\
             \x20 use-syslog: no\n  logfile: \"\"\n  do-ip6: no\n  access-control: 127.0.0.0/8 allow\n\
             \x20 module-config: \"iterator\"\n  pidfile: \"\"\n  local-zone: \".\" refuse\n\
             \x20 local-zone: \"zero.test.\" static\n{local_data}  local-data-ptr: \"10.0.0.1 www.zero.test.\"\n"
        );
        let path = dir.join("unbound.conf");
        std::fs::write(&path, conf).unwrap();
        let child = Command::new("unbound")
            .arg("-d")
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let u = Unbound { child, addr, dir };
        // Up when it answers.
        let deadline = Instant::now() + Duration::from_secs(10);
        while dig(addr, "www.zero.test", "A", &[]).is_empty() {
            assert!(Instant::now() < deadline, "unbound never answered on {addr}");
            std::thread::sleep(Duration::from_millis(50));
        }
        u
    }

    fn config(&self) -> ResolverConfig {
        let mut c = ResolverConfig::with_servers(&[self.addr]);
        c.timeout = Duration::from_secs(2);
        c
    }
}

/// dig's answer (`+short`), sorted.
fn dig(server: SocketAddr, name: &str, rtype: &str, extra: &[&str]) -> Vec<String> {
    tool("dig");
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
        let want = dig(u.addr, name, &rtype.to_string(), &[]);
        assert!(!want.is_empty(), "dig got nothing for {name} {rtype}");
        let got = ours(u.config(), name, rtype);
        // TXT: dig quotes each string; hickory prints it bare.
        let got: Vec<String> =
            if rtype == RecordType::TXT { got.iter().map(|t| format!("\"{t}\"")).collect() } else { got };
        assert_eq!(normalize(&got), normalize(&want), "{name} {rtype}");
    }
    // unbound answers a CNAME of its local data alone; the resolver follows it, and the answer
    // is the chain and the target's records, as dig shows them asked one after the other.
    let mut want = dig(u.addr, "alias.zero.test.", "A", &[]);
    want.extend(dig(u.addr, "www.zero.test.", "A", &[]));
    want.sort();
    assert_eq!(ours(u.config(), "alias.zero.test.", RecordType::A), want);
}

/// The forms dig and hickory-proto print differently: CAA's flags and quoting, case.
fn normalize(lines: &[String]) -> Vec<String> {
    lines.iter().map(|l| l.to_ascii_lowercase().replace('"', "")).collect()
}

#[test]
fn negative_answers_say_what_they_are() {
    let u = Unbound::start();
    let nx = lookup_blocking(u.config(), "nothere.zero.test.", RecordType::A).unwrap_err();
    assert!(matches!(&nx, ResolveError::NxDomain { server: Source::Server(s), .. } if *s == u.addr), "{nx}");
    let nodata = lookup_blocking(u.config(), "txt.zero.test.", RecordType::AAAA).unwrap_err();
    assert!(matches!(nodata, ResolveError::NoData { .. }), "{nodata}");
    let refused = lookup_blocking(u.config(), "example.com.", RecordType::A).unwrap_err();
    assert!(
        matches!(&refused, ResolveError::ServerFailure { rcode, server, .. } if rcode.contains("Refused") && *server == u.addr),
        "{refused}"
    );
    assert_eq!(refused.to_string(), format!("example.com.: Query Refused from {}", u.addr));
}

#[test]
fn a_truncated_answer_is_fetched_over_tcp_whole() {
    let u = Unbound::start();
    let mut config = u.config();
    config.edns_size = 0; // 512-byte datagrams: the five long TXT strings do not fit
    let got = ours(config, "big.zero.test.", RecordType::TXT);
    assert_eq!(got.len(), 5);
    let want: Vec<String> = (0..5).map(long_text).collect();
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
