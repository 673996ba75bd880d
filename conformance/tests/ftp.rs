//! The FTP suite against zero's server (every check must pass), vsftpd and pyftpdlib (where
//! they fail a check, `VSFTPD_FAILS` and `PYFTPDLIB_FAILS` say why). The tables are printed
//! (`cargo test -p zero-conformance --test ftp -- --nocapture` shows them).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zero_conformance::{ftp, print_table, Outcome};
use zero_core::tls::SelfSigned;
use zero_core::{ClusterConfig, IoCluster, ListenOptions};
use zero_ftp::client::{
    mirror, ClientConfig, Connection, Error as ClientError, Listing, Request, Security, TlsClient,
};
use zero_ftp::codec::list::Kind;
use zero_ftp::server::{Server, ServerConfig, Users};

/// Checks vsftpd 3.0.3 (Debian 12, anonymous with uploads) fails, and why.
const VSFTPD_FAILS: &[(&str, &str)] = &[
    ("mlsd", "vsftpd has no MLSD (500 Unknown command)"),
    ("mlst", "vsftpd has no MLST"),
    ("feat", "FEAT lists no MLST, for the same reason"),
];

/// Checks pyftpdlib (Debian 12's python3-pyftpdlib) fails, and why.
const PYFTPDLIB_FAILS: &[(&str, &str)] = &[];

/// FTPS checks vsftpd 3.0.3 fails (`require_ssl_reuse=YES`), and why.
const VSFTPD_TLS_FAILS: &[(&str, &str)] = &[("pbsz-prot", "vsftpd takes PROT P before any PBSZ (200)")];

/// FTPS checks pyftpdlib fails (TLS required on both connections), and why.
const PYFTPDLIB_TLS_FAILS: &[(&str, &str)] = &[
    (
        "auth-injection",
        "a FEAT sent in plain behind AUTH TLS is answered under TLS (CVE-2011-0411's pattern)",
    ),
    ("pbsz-prot", "PROT S is answered 521, a code RFC 2228 does not give PROT"),
    ("reuse-required", "data connections in a new TLS session are served: pyftpdlib does not require reuse"),
    ("stor-truncated", "an upload whose TLS ends without close_notify is never answered"),
];

const CONTENT: &[u8] = b"hello, conformance\n";

/// `openssl passwd -6 -salt abcdefgh secret`.
const SECRET: &str =
    "$6$abcdefgh$ltjgWl6579NluT/Vi1nwEvcil.G5Nbc4NiXZaNGStk8PSwGfQv72N2CKPPrVACtLtip/cZ/1GM/O6IND4WQhG.";

/// A root with the suite's files: `file.txt`, `big.bin` (20 MB), `dir/`, and an `up/`
/// directory the `ftp` user may write (vsftpd's anonymous uploads go there).
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zero-conformance-ftp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("root/dir")).unwrap();
    std::fs::write(dir.join("root/file.txt"), CONTENT).unwrap();
    std::fs::write(dir.join("root/big.bin"), vec![7u8; 20_000_000]).unwrap();
    dir
}

fn ctx(target: SocketAddr, user: &str, password: &str) -> ftp::Ctx {
    ftp::Ctx {
        target,
        user: user.into(),
        password: password.into(),
        file: ("file.txt".into(), CONTENT.to_vec()),
        big: "big.bin".into(),
        dir: "dir".into(),
        writable: true,
        thief: Some("127.0.0.2".parse().unwrap()),
        tls: None,
    }
}

/// The FTPS checks' settings for a server with `cert` (made for `localhost`).
fn with_tls(mut cx: ftp::Ctx, cert: &SelfSigned) -> ftp::Ctx {
    cx.tls = Some((cert.client().unwrap().build().unwrap(), "localhost".into()));
    cx
}

fn wait_port(addr: SocketAddr, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn spare_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// A child process killed on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The failures are exactly the explained ones.
fn only_explained(server: &str, outcomes: &[Outcome], explained: &[(&str, &str)]) {
    let failed: Vec<&str> = outcomes.iter().filter(|o| o.failure.is_some()).map(|o| o.name).collect();
    let expected: Vec<&str> = explained.iter().map(|(n, _)| *n).collect();
    assert_eq!(failed, expected, "{server}: {outcomes:?}");
}

/// zero's server on two shards, for `alice` (all rights) in `dir/root`, FTPS with `tls`
/// (and implicit FTPS on the second address); returns the cluster and the addresses.
fn start_zero(dir: &Path, tls: Option<&SelfSigned>) -> (IoCluster, SocketAddr, SocketAddr) {
    let root = dir.join("root");
    let users = Users::parse(&format!("alice:{SECRET}:rwdm"), &root).unwrap();
    let mut config = ServerConfig { users, ..ServerConfig::default() };
    if let Some(t) = tls {
        std::fs::write(dir.join("cert.pem"), &t.cert_pem).unwrap();
        std::fs::write(dir.join("key.pem"), &t.key_pem).unwrap();
        config.tls = Some(zero_ftp::server::tls_config(&dir.join("cert.pem"), &dir.join("key.pem")).unwrap());
    }
    let (reserved, addr) = zero_core::reserve_port("127.0.0.1:0".parse().unwrap()).unwrap();
    let (reserved_tls, implicit) = zero_core::reserve_port("127.0.0.1:0".parse().unwrap()).unwrap();
    let cluster = IoCluster::start(ClusterConfig::new(2), move |_, io| {
        let tls = config.tls.is_some();
        let mut server = Server::new(config.clone());
        let mut opts = ListenOptions::default();
        opts.reuse_port = true;
        server.listen(io, addr, &opts)?;
        if tls {
            server.listen_tls(io, implicit, &opts)?;
        }
        Ok(server)
    })
    .unwrap();
    drop((reserved, reserved_tls));
    (cluster, addr, implicit)
}

#[test]
fn zero_passes_every_check() {
    let dir = scratch("zero");
    let cert = SelfSigned::generate(&["localhost"]).unwrap();
    let (cluster, addr, _) = start_zero(&dir, Some(&cert));
    let outcomes = ftp::run(&with_tls(ctx(addr, "alice", "secret"), &cert), None);
    assert_eq!(outcomes.len(), ftp::checks::CHECKS.len() + ftp::tls::CHECKS.len());
    let failed = print_table("zero ftp server (FTPS offered)", &outcomes);
    assert_eq!(
        failed,
        0,
        "zero fails: {:?}",
        outcomes.iter().filter(|o| o.failure.is_some()).collect::<Vec<_>>()
    );
    cluster.stop().expect("the server stops cleanly (no shard panicked)");
    let _ = std::fs::remove_dir_all(&dir);
}

/// vsftpd (anonymous, uploads to `up/`) on `addr`, serving `dir/root`; FTPS with `tls`
/// (`require_ssl_reuse`, its default: data connections must resume the control
/// connection's session). `None` when vsftpd is missing (and CI is not set).
fn start_vsftpd(dir: &Path, addr: SocketAddr, tls: Option<&SelfSigned>) -> Option<Running> {
    let found = Command::new("sh").args(["-c", "command -v vsftpd"]).output().unwrap();
    if !found.status.success() {
        assert!(std::env::var_os("CI").is_none(), "vsftpd is missing: run scripts/test.sh");
        eprintln!("vsftpd is missing: skipped");
        return None;
    }
    let root = dir.join("root");
    // vsftpd refuses a root its anonymous user may write: the root is read-only, and `up/`
    // (its uploads' directory) belongs to `ftp`.
    std::fs::create_dir_all(root.join("up")).unwrap();
    let chown = Command::new("chown").arg("ftp").arg(root.join("up")).status().unwrap();
    assert!(chown.success());
    let conf = dir.join("vsftpd.conf");
    std::fs::create_dir_all("/var/run/vsftpd/empty").unwrap();
    let mut text = format!(
        "listen=YES\nlisten_address={}\nlisten_port={}\nbackground=NO\nanonymous_enable=YES\n\
         no_anon_password=YES\nanon_root={}\nwrite_enable=YES\nanon_upload_enable=YES\n\
         anon_mkdir_write_enable=YES\nanon_other_write_enable=YES\nanon_umask=022\n\
         local_enable=NO\nseccomp_sandbox=NO\nsecure_chroot_dir=/var/run/vsftpd/empty\n\
         ftp_username=ftp\n",
        addr.ip(),
        addr.port(),
        root.display()
    );
    if let Some(t) = tls {
        std::fs::write(dir.join("vsftpd.pem"), format!("{}{}", t.cert_pem, t.key_pem)).unwrap();
        text += &format!(
            "ssl_enable=YES\nallow_anon_ssl=YES\nforce_anon_logins_ssl=YES\nforce_anon_data_ssl=YES\n\
             require_ssl_reuse=YES\nrsa_cert_file={0}\nrsa_private_key_file={0}\n",
            dir.join("vsftpd.pem").display()
        );
    }
    std::fs::write(&conf, text).unwrap();
    let server = Running(Command::new("vsftpd").arg(&conf).stderr(Stdio::null()).spawn().unwrap());
    wait_port(addr, "vsftpd");
    Some(server)
}

/// pyftpdlib on `addr` for `alice` (all rights) in `dir/root`; FTPS (explicit, required on
/// both connections) with `tls`. `None` when it is missing (and CI is not set).
fn start_pyftpdlib(dir: &Path, addr: SocketAddr, tls: Option<&SelfSigned>) -> Option<Running> {
    let found = Command::new("/usr/bin/python3").args(["-c", "import pyftpdlib, OpenSSL"]).output().unwrap();
    if !found.status.success() {
        assert!(std::env::var_os("CI").is_none(), "pyftpdlib is missing: run scripts/test.sh");
        eprintln!("pyftpdlib is missing: skipped");
        return None;
    }
    let (handler, extra) = match tls {
        Some(t) => {
            std::fs::write(dir.join("py.pem"), format!("{}{}", t.cert_pem, t.key_pem)).unwrap();
            let pem = dir.join("py.pem");
            let set = format!(
                "h.certfile = {pem:?}\nh.tls_control_required = True\nh.tls_data_required = True\n",
                pem = pem.display().to_string()
            );
            ("TLS_FTPHandler", set)
        }
        None => ("FTPHandler", String::new()),
    };
    let script = format!(
        "import logging\nlogging.disable(logging.CRITICAL)\n\
         from pyftpdlib.authorizers import DummyAuthorizer\n\
         from pyftpdlib.handlers import {handler} as h\nfrom pyftpdlib.servers import FTPServer\n\
         a = DummyAuthorizer()\na.add_user('alice', 'secret', {root:?}, perm='elradfmwMT')\n\
         h.authorizer = a\nh.passive_ports = range(31000, 32000)\n{extra}\
         FTPServer(('127.0.0.1', {port}), h).serve_forever()\n",
        root = dir.join("root").display().to_string(),
        port = addr.port()
    );
    let server = Running(
        Command::new("/usr/bin/python3")
            .args(["-c", &script])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_port(addr, "pyftpdlib");
    Some(server)
}

#[test]
fn vsftpd_fails_only_what_is_explained() {
    let dir = scratch("vsftpd");
    let addr = spare_addr();
    let Some(_server) = start_vsftpd(&dir, addr, None) else { return };
    let mut cx = ctx(addr, "anonymous", "x");
    cx.dir = "up".into();
    let outcomes = ftp::run(&cx, None);
    print_table("vsftpd 3.0.3 (anonymous, uploads to up/)", &outcomes);
    only_explained("vsftpd", &outcomes, VSFTPD_FAILS);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pyftpdlib_fails_only_what_is_explained() {
    let dir = scratch("pyftpdlib");
    let addr = spare_addr();
    let Some(_server) = start_pyftpdlib(&dir, addr, None) else { return };
    let outcomes = ftp::run(&ctx(addr, "alice", "secret"), None);
    print_table("pyftpdlib", &outcomes);
    only_explained("pyftpdlib", &outcomes, PYFTPDLIB_FAILS);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn vsftpd_ftps_fails_only_what_is_explained() {
    let dir = scratch("vsftpd-tls");
    let cert = SelfSigned::generate(&["localhost"]).unwrap();
    let addr = spare_addr();
    let Some(_server) = start_vsftpd(&dir, addr, Some(&cert)) else { return };
    let mut cx = with_tls(ctx(addr, "anonymous", "x"), &cert);
    cx.dir = "up".into();
    let outcomes = zero_conformance::run_checks(ftp::tls::CHECKS, &cx, None);
    print_table("vsftpd 3.0.3 FTPS (require_ssl_reuse)", &outcomes);
    only_explained("vsftpd FTPS", &outcomes, VSFTPD_TLS_FAILS);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pyftpdlib_ftps_fails_only_what_is_explained() {
    let dir = scratch("pyftpdlib-tls");
    let cert = SelfSigned::generate(&["localhost"]).unwrap();
    let addr = spare_addr();
    let Some(_server) = start_pyftpdlib(&dir, addr, Some(&cert)) else { return };
    let cx = with_tls(ctx(addr, "alice", "secret"), &cert);
    let outcomes = zero_conformance::run_checks(ftp::tls::CHECKS, &cx, None);
    print_table("pyftpdlib FTPS (TLS_FTPHandler)", &outcomes);
    only_explained("pyftpdlib FTPS", &outcomes, PYFTPDLIB_TLS_FAILS);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- zero's client against the three servers ----

/// A client configuration for a server: `alice`, or anonymous; FTPS (explicit or
/// implicit) trusting `tls`'s certificate; passive or active.
fn client_config(
    user: Option<(&str, &str)>,
    tls: Option<(&SelfSigned, bool)>,
    passive: bool,
) -> ClientConfig {
    let mut config = match user {
        Some((u, p)) => ClientConfig::new(u, p),
        None => ClientConfig::anonymous(),
    };
    if let Some((cert, implicit)) = tls {
        let client =
            TlsClient { server_name: "localhost".into(), config: cert.client().unwrap().build().unwrap() };
        config.security = if implicit { Security::Implicit(client) } else { Security::Explicit(client) };
    }
    config.passive = passive;
    config.command_timeout = Duration::from_secs(20);
    config.data_timeout = Duration::from_secs(20);
    config
}

fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Drives zero's client through every request against a server, in `writable` (a directory
/// of the server's root, at `on_disk` here): uploads (and one resumed), downloads (and one
/// resumed), listings of each kind, a mirror, renames and deletes, active mode, errors.
fn drive_client(addr: SocketAddr, config: &dyn Fn(bool) -> ClientConfig, writable: &str, on_disk: &Path) {
    let scratch =
        on_disk.parent().unwrap().parent().unwrap().join(format!("client-{}", writable.replace('/', "_")));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let content = random_bytes(3_000_000, addr.port().into());
    let local = scratch.join("c.bin");
    std::fs::write(&local, &content).unwrap();
    let mut c = Connection::open(addr, config(true)).expect("login");
    let home = c.pwd().unwrap();
    assert!(home.starts_with('/'), "{home}");
    c.cwd(writable).unwrap();
    assert!(c.pwd().unwrap().ends_with(writable));

    // Upload, with progress; its size, its date, the bytes on the server's disk.
    let mut reports = 0;
    let sent = c.put(&local, "c.bin", false, &mut |_| reports += 1).unwrap();
    assert_eq!(sent, content.len() as u64);
    assert!(reports > 0);
    assert_eq!(std::fs::read(on_disk.join("c.bin")).unwrap(), content, "the upload on the server's disk");
    assert_eq!(c.size("c.bin").unwrap(), content.len() as u64);
    assert!(c.mdtm("c.bin").unwrap() > 1_600_000_000);

    // Download, and a download resumed from a third.
    let got = scratch.join("got.bin");
    let mut last = None;
    c.get("c.bin", &got, false, &mut |p| last = Some(p)).unwrap();
    assert_eq!(std::fs::read(&got).unwrap(), content);
    assert_eq!(last.map(|p| (p.done, p.total)), Some((content.len() as u64, Some(content.len() as u64))));
    std::fs::write(&got, &content[..1_000_000]).unwrap();
    assert_eq!(c.get("c.bin", &got, true, &mut |_| {}).unwrap(), 2_000_000);
    assert_eq!(std::fs::read(&got).unwrap(), content, "resumed download");
    assert_eq!(c.get("c.bin", &got, true, &mut |_| {}).unwrap(), 0, "nothing left to resume");

    // An upload resumed: half is there, APPE sends the rest.
    let half = scratch.join("half.bin");
    std::fs::write(&half, &content[..1_500_000]).unwrap();
    c.put(&half, "d.bin", false, &mut |_| {}).unwrap();
    assert_eq!(c.put(&local, "d.bin", true, &mut |_| {}).unwrap(), 1_500_000);
    assert_eq!(std::fs::read(on_disk.join("d.bin")).unwrap(), content, "resumed upload");

    // Listings, each kind, and the entries parsed (MLSD where offered, LIST otherwise).
    let long = c.list(None, Listing::Long).unwrap();
    assert!(long.lines().any(|l| l.ends_with(" c.bin")), "{long}");
    let names = c.list(None, Listing::Names).unwrap();
    assert!(names.lines().any(|l| l == "c.bin" || l.ends_with("/c.bin")), "{names}");
    c.request(Request::MakeDir("sub".into())).unwrap();
    std::fs::write(scratch.join("x.txt"), b"x\n").unwrap();
    c.put(&scratch.join("x.txt"), "sub/x.txt", false, &mut |_| {}).unwrap();
    let entries = c.entries(None).unwrap();
    let find = |name: &str| entries.iter().find(|e| e.name == name).cloned();
    assert_eq!(
        find("c.bin").map(|e| (e.kind, e.size)),
        Some((Kind::File, content.len() as u64)),
        "{entries:?}"
    );
    assert_eq!(find("sub").map(|e| e.kind), Some(Kind::Dir));

    // A mirror of the directory, then again (nothing changed, nothing downloaded).
    let copy = scratch.join("mirror");
    let done = mirror(&mut c, ".", &copy, &mut |_, _| {}).unwrap();
    assert_eq!((done.files, done.dirs), (3, 2), "{done:?}");
    assert_eq!(std::fs::read(copy.join("d.bin")).unwrap(), content);
    assert_eq!(std::fs::read(copy.join("sub/x.txt")).unwrap(), b"x\n");
    let again = mirror(&mut c, ".", &copy, &mut |_, _| {}).unwrap();
    assert_eq!((again.files, again.unchanged), (0, 3), "{again:?}");

    // Errors: a missing file, a failed rename.
    let missing = c.get("nothing.here", &scratch.join("n"), false, &mut |_| {});
    assert!(matches!(missing, Err(ClientError::Refused(ref r)) if r.code == 550), "{missing:?}");
    assert!(c.request(Request::Rename { from: "nothing.here".into(), to: "x".into() }).is_err());

    // Rename and the deletes.
    c.request(Request::Rename { from: "c.bin".into(), to: "e.bin".into() }).unwrap();
    assert!(c.size("c.bin").is_err());
    for f in ["e.bin", "d.bin", "sub/x.txt"] {
        c.request(Request::Delete(f.into())).unwrap();
    }
    c.request(Request::RemoveDir("sub".into())).unwrap();
    c.quit().unwrap();

    // Active mode: the server connects to the client.
    let mut a = Connection::open(addr, config(false)).expect("login (active)");
    a.cwd(writable).unwrap();
    a.put(&local, "active.bin", false, &mut |_| {}).unwrap();
    a.get("active.bin", &got, false, &mut |_| {}).unwrap();
    assert_eq!(std::fs::read(&got).unwrap(), content, "active mode");
    assert!(a.list(None, Listing::Long).unwrap().contains("active.bin"));
    a.request(Request::Delete("active.bin".into())).unwrap();
    a.quit().unwrap();
    let _ = std::fs::remove_dir_all(&scratch);
}

#[test]
fn zero_client_against_zero_plain_and_ftps() {
    let dir = scratch("client-zero");
    let cert = SelfSigned::generate(&["localhost"]).unwrap();
    let (cluster, addr, implicit) = start_zero(&dir, Some(&cert));
    let user = Some(("alice", "secret"));
    let root = dir.join("root");
    drive_client(addr, &|passive| client_config(user, None, passive), "dir", &root.join("dir"));
    drive_client(
        addr,
        &|passive| client_config(user, Some((&cert, false)), passive),
        "dir",
        &root.join("dir"),
    );
    drive_client(
        implicit,
        &|passive| client_config(user, Some((&cert, true)), passive),
        "dir",
        &root.join("dir"),
    );
    // A wrong password, and a certificate nobody vouches for.
    let wrong = Connection::open(addr, client_config(Some(("alice", "wrong")), None, true));
    assert!(matches!(wrong, Err(ClientError::Login(ref r)) if r.code == 530), "{:?}", wrong.err());
    let other = SelfSigned::generate(&["localhost"]).unwrap();
    let untrusted = Connection::open(addr, client_config(user, Some((&other, false)), true));
    assert!(matches!(untrusted, Err(ClientError::Closed(_))), "{:?}", untrusted.err());
    cluster.stop().expect("the server stops cleanly (no shard panicked)");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn zero_client_against_vsftpd_plain_and_ftps() {
    for tls in [false, true] {
        let dir = scratch(if tls { "client-vsftpd-tls" } else { "client-vsftpd" });
        let cert = SelfSigned::generate(&["localhost"]).unwrap();
        let addr = spare_addr();
        let Some(_server) = start_vsftpd(&dir, addr, tls.then_some(&cert)) else { return };
        let on_disk = dir.join("root/up");
        let tls = tls.then_some((&cert, false));
        drive_client(addr, &|passive| client_config(None, tls, passive), "up", &on_disk);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn zero_client_against_pyftpdlib_plain_and_ftps() {
    for tls in [false, true] {
        let dir = scratch(if tls { "client-py-tls" } else { "client-py" });
        let cert = SelfSigned::generate(&["localhost"]).unwrap();
        let addr = spare_addr();
        let Some(_server) = start_pyftpdlib(&dir, addr, tls.then_some(&cert)) else { return };
        let user = Some(("alice", "secret"));
        let tls = tls.then_some((&cert, false));
        drive_client(addr, &|passive| client_config(user, tls, passive), "dir", &dir.join("root/dir"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
