//! Real DNS servers on loopback, serving the test zone `zero.test.`: unbound (its
//! `local-data`) and dnsmasq (its host, TXT and SRV records). Each is killed on drop.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The zone's records in zone-file syntax: a SOA, two A and one AAAA for `www`, MX, TXT
/// (`txt`, and five 200-byte strings at `big`, over 512 bytes together), SRV, a CNAME
/// (`alias` to `www`), CAA.
pub const ZONE_DATA: &[&str] = &[
    "zero.test. 3600 IN SOA ns.zero.test. admin.zero.test. 1 3600 600 86400 60",
    "www.zero.test. 300 IN A 10.0.0.1",
    "www.zero.test. 300 IN A 10.0.0.2",
    "www.zero.test. 300 IN AAAA 2001:db8::1",
    "zero.test. 300 IN MX 10 mx1.zero.test.",
    "zero.test. 300 IN MX 5 mx0.zero.test.",
    "txt.zero.test. 300 IN TXT \"hello world\"",
    "_sip._tcp.zero.test. 300 IN SRV 10 60 5060 sip1.zero.test.",
    "alias.zero.test. 300 IN CNAME www.zero.test.",
    "zero.test. 300 IN CAA 0 issue \"letsencrypt.org\"",
];

/// The five strings of `big.zero.test.`'s TXT records.
pub fn big_strings() -> Vec<String> {
    (0..5).map(|i| format!("{i}{}", "x".repeat(199))).collect()
}

fn temp_dir(what: &str, port: u16) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zero-{what}-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
}

/// Waits until `child` answers DNS at `addr`: `false` if it exits first (another test took
/// its port between our probe and its bind; the caller starts it again on another).
fn answering(addr: SocketAddr, child: &mut Child, what: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    let name = zero_dns::Name::from_ascii("www.zero.test.").expect("valid");
    let query = zero_dns::wire::query(1, &name, zero_dns::RecordType::A, 0);
    let sock = UdpSocket::bind("127.0.0.1:0").expect("a UDP port");
    sock.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
    loop {
        if child.try_wait().ok().flatten().is_some() {
            return false;
        }
        let _ = sock.send_to(&query, addr);
        if sock.recv(&mut [0; 1024]).is_ok() {
            return true;
        }
        assert!(Instant::now() < deadline, "{what} never answered on {addr}");
    }
}

/// Where a server's standard error goes, in its directory.
const STDERR: &str = "stderr.log";

/// A file in `dir` for a server's standard error.
fn stderr_file(dir: &std::path::Path) -> Stdio {
    std::fs::File::create(dir.join(STDERR)).map_or_else(|_| Stdio::null(), Stdio::from)
}

/// Tries a server on spare ports a few times: `start` spawns it and says where it answers.
fn start_on_spare_ports(
    what: &str,
    mut start: impl FnMut() -> (Child, PathBuf, SocketAddr),
) -> (Running, SocketAddr) {
    let mut said = String::new();
    for _ in 0..5 {
        let (mut child, dir, addr) = start();
        if answering(addr, &mut child, what) {
            return (Running { child, dir }, addr);
        }
        // Why it exited: its own words, kept from the last attempt.
        said = std::fs::read_to_string(dir.join(STDERR)).unwrap_or_default();
        drop(Running { child, dir });
    }
    panic!("{what} exited at start five times; the last time it said:\n{said}");
}

/// A running server.
struct Running {
    child: Child,
    dir: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// unbound with `zero.test.` as a static local zone, `broken.test.` failing (SERVFAIL), refusing
/// everything else.
pub struct Unbound {
    /// Where it answers (UDP and TCP).
    pub addr: SocketAddr,
    /// DNS over TLS ([`Unbound::start_tls`]): where, and the PEM certificate (its own CA) it
    /// presents for `dns.zero.test`.
    pub tls: Option<(SocketAddr, String)>,
    _running: Running,
}

impl Unbound {
    /// Starts it on a spare port.
    pub fn start() -> Unbound {
        Unbound::run(false)
    }

    /// [`Unbound::start`], serving DNS over TLS too, on another spare port, with a
    /// self-signed certificate for `dns.zero.test`.
    pub fn start_tls() -> Unbound {
        Unbound::run(true)
    }

    fn run(tls: bool) -> Unbound {
        crate::require("unbound");
        let mut served = None;
        let (running, addr) = start_on_spare_ports("unbound", || {
            let (child, dir, addr, tls_served) = Unbound::spawn(tls);
            served = tls_served;
            (child, dir, addr)
        });
        Unbound { addr, tls: served, _running: running }
    }

    /// Starts it on spare ports: the child, its directory, where it answers, and DoT's address
    /// and certificate.
    fn spawn(tls: bool) -> (Child, PathBuf, SocketAddr, Option<(SocketAddr, String)>) {
        let port = crate::spare_udp_port();
        // `broken.test.` is forwarded to a port nobody answers on, so unbound fails it itself
        // (SERVFAIL, after one try: `outbound-msg-retry`).
        let dead = crate::spare_udp_port();
        let dir = temp_dir("unbound", port);
        let mut listen = format!("  interface: 127.0.0.1@{port}\n");
        let mut served = None;
        if tls {
            let tls_port = crate::spare_udp_port();
            let cert = zero_core::tls::SelfSigned::generate(&["dns.zero.test"]).expect("a certificate");
            std::fs::write(dir.join("cert.pem"), &cert.cert_pem).expect("cert.pem written");
            std::fs::write(dir.join("key.pem"), &cert.key_pem).expect("key.pem written");
            listen += &format!(
                "  interface: 127.0.0.1@{tls_port}\n  tls-port: {tls_port}\n  tls-service-key: \"{}\"\n  \
                 tls-service-pem: \"{}\"\n",
                dir.join("key.pem").display(),
                dir.join("cert.pem").display()
            );
            served = Some((SocketAddr::from(([127, 0, 0, 1], tls_port)), cert.cert_pem));
        }
        let mut data: Vec<String> = ZONE_DATA.iter().map(|d| d.to_string()).collect();
        data.extend(big_strings().iter().map(|s| format!("big.zero.test. 300 IN TXT \"{s}\"")));
        let local: String = data.iter().map(|d| format!("  local-data: '{d}'\n")).collect();
        let conf = format!(
            "server:\n{listen}  port: {port}\n  do-daemonize: no\n  chroot: \"\"\n  username: \"\"\n  \
             use-syslog: no\n  logfile: \"\"\n  pidfile: \"\"\n  do-ip6: no\n  access-control: 127.0.0.0/8 allow\n  \
             module-config: \"iterator\"\n  local-zone: \".\" refuse\n  local-zone: \"zero.test.\" static\n{local}  \
             local-data-ptr: \"10.0.0.1 www.zero.test.\"\n  do-not-query-localhost: no\n  outbound-msg-retry: 1\n  \
             local-zone: \"broken.test.\" transparent\nforward-zone:\n  name: \"broken.test.\"\n  \
             forward-addr: 127.0.0.1@{dead}\n"
        );
        let path = dir.join("unbound.conf");
        std::fs::write(&path, conf).expect("unbound.conf written");
        let child = Command::new("unbound")
            .arg("-d")
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(stderr_file(&dir))
            .spawn()
            .expect("unbound starts");
        (child, dir, SocketAddr::from(([127, 0, 0, 1], port)), served)
    }
}

/// dnsmasq answering `zero.test.` from its own records (no upstream, no hosts file).
pub struct Dnsmasq {
    /// Where it answers (UDP and TCP).
    pub addr: SocketAddr,
    _running: Running,
}

impl Dnsmasq {
    /// Starts it on a spare port.
    pub fn start() -> Dnsmasq {
        crate::require("dnsmasq");
        let (running, addr) = start_on_spare_ports("dnsmasq", Dnsmasq::spawn);
        Dnsmasq { addr, _running: running }
    }

    fn spawn() -> (Child, PathBuf, SocketAddr) {
        let port = crate::spare_udp_port();
        let dir = temp_dir("dnsmasq", port);
        let mut args = vec![
            "--keep-in-foreground".to_string(),
            "--no-resolv".into(),
            "--no-hosts".into(),
            "--no-daemon".into(),
            "--bind-interfaces".into(),
            "--listen-address=127.0.0.1".into(),
            format!("--port={port}"),
            "--user=root".into(),
            format!("--pid-file={}", dir.join("pid").display()),
            "--local=/zero.test/".into(),
            "--host-record=www.zero.test,10.0.0.1".into(),
            "--txt-record=txt.zero.test,hello world".into(),
            "--srv-host=_sip._tcp.zero.test,sip1.zero.test,5060,10,60".into(),
            "--mx-host=zero.test,mx1.zero.test,10".into(),
            "--cname=alias.zero.test,www.zero.test".into(),
        ];
        args.extend(big_strings().iter().map(|s| format!("--txt-record=big.zero.test,{s}")));
        let child = Command::new("dnsmasq")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(stderr_file(&dir))
            .spawn()
            .expect("dnsmasq starts");
        (child, dir, SocketAddr::from(([127, 0, 0, 1], port)))
    }
}
