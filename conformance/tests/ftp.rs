//! The FTP suite against zero's server (every check must pass), vsftpd and pyftpdlib (where
//! they fail a check, `VSFTPD_FAILS` and `PYFTPDLIB_FAILS` say why). The tables are printed
//! (`cargo test -p zero-conformance --test ftp -- --nocapture` shows them).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zero_conformance::{ftp, print_table, Outcome};
use zero_core::{ClusterConfig, IoCluster, ListenOptions};
use zero_ftp::server::{Server, ServerConfig, Users};

/// Checks vsftpd 3.0.3 (Debian 12, anonymous with uploads) fails, and why.
const VSFTPD_FAILS: &[(&str, &str)] = &[
    ("mlsd", "vsftpd has no MLSD (500 Unknown command)"),
    ("mlst", "vsftpd has no MLST"),
    ("feat", "FEAT lists no MLST, for the same reason"),
];

/// Checks pyftpdlib (Debian 12's python3-pyftpdlib) fails, and why.
const PYFTPDLIB_FAILS: &[(&str, &str)] = &[];

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
    }
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

#[test]
fn zero_passes_every_check() {
    let dir = scratch("zero");
    let root = dir.join("root");
    let users = Users::parse(&format!("alice:{SECRET}:rwdm"), &root).unwrap();
    let config = ServerConfig { users, ..ServerConfig::default() };
    let (reserved, addr) = zero_core::reserve_port("127.0.0.1:0".parse().unwrap()).unwrap();
    let cluster = IoCluster::start(ClusterConfig::new(2), move |_, io| {
        let mut server = Server::new(config.clone());
        let mut opts = ListenOptions::default();
        opts.reuse_port = true;
        server.listen(io, addr, &opts)?;
        Ok(server)
    })
    .unwrap();
    drop(reserved);
    let outcomes = ftp::run(&ctx(addr, "alice", "secret"), None);
    let failed = print_table("zero ftp server", &outcomes);
    assert_eq!(
        failed,
        0,
        "zero fails: {:?}",
        outcomes.iter().filter(|o| o.failure.is_some()).collect::<Vec<_>>()
    );
    cluster.stop().expect("the server stops cleanly (no shard panicked)");
    let _ = std::fs::remove_dir_all(&dir);
}

fn vsftpd_conf(dir: &Path, addr: SocketAddr) -> PathBuf {
    let root = dir.join("root");
    // vsftpd refuses a root its anonymous user may write: the root is read-only, and `up/`
    // (its uploads' directory) belongs to `ftp`.
    std::fs::create_dir_all(root.join("up")).unwrap();
    let chown = Command::new("chown").arg("ftp").arg(root.join("up")).status().unwrap();
    assert!(chown.success());
    let conf = dir.join("vsftpd.conf");
    std::fs::create_dir_all("/var/run/vsftpd/empty").unwrap();
    std::fs::write(
        &conf,
        format!(
            "listen=YES\nlisten_address={}\nlisten_port={}\nbackground=NO\nanonymous_enable=YES\n\
             no_anon_password=YES\nanon_root={}\nwrite_enable=YES\nanon_upload_enable=YES\n\
             anon_mkdir_write_enable=YES\nanon_other_write_enable=YES\nanon_umask=022\n\
             local_enable=NO\nseccomp_sandbox=NO\nsecure_chroot_dir=/var/run/vsftpd/empty\n\
             ftp_username=ftp\n",
            addr.ip(),
            addr.port(),
            root.display()
        ),
    )
    .unwrap();
    conf
}

#[test]
fn vsftpd_fails_only_what_is_explained() {
    let found = Command::new("sh").args(["-c", "command -v vsftpd"]).output().unwrap();
    if !found.status.success() {
        assert!(std::env::var_os("CI").is_none(), "vsftpd is missing: run scripts/test.sh");
        eprintln!("vsftpd is missing: skipped");
        return;
    }
    let dir = scratch("vsftpd");
    let addr = spare_addr();
    let conf = vsftpd_conf(&dir, addr);
    let _server = Running(Command::new("vsftpd").arg(&conf).stderr(Stdio::null()).spawn().unwrap());
    wait_port(addr, "vsftpd");
    let mut cx = ctx(addr, "anonymous", "x");
    cx.dir = "up".into();
    let outcomes = ftp::run(&cx, None);
    print_table("vsftpd 3.0.3 (anonymous, uploads to up/)", &outcomes);
    only_explained("vsftpd", &outcomes, VSFTPD_FAILS);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pyftpdlib_fails_only_what_is_explained() {
    let found = Command::new("/usr/bin/python3").args(["-c", "import pyftpdlib"]).output().unwrap();
    if !found.status.success() {
        assert!(std::env::var_os("CI").is_none(), "pyftpdlib is missing: run scripts/test.sh");
        eprintln!("pyftpdlib is missing: skipped");
        return;
    }
    let dir = scratch("pyftpdlib");
    let addr = spare_addr();
    let _server = Running(
        Command::new("/usr/bin/python3")
            .args(["-m", "pyftpdlib", "-i", "127.0.0.1", "-p", &addr.port().to_string(), "-w", "-d"])
            .arg(dir.join("root"))
            .args(["-u", "alice", "-P", "secret", "-r", "31000-31999"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_port(addr, "pyftpdlib");
    let outcomes = ftp::run(&ctx(addr, "alice", "secret"), None);
    print_table("pyftpdlib", &outcomes);
    only_explained("pyftpdlib", &outcomes, PYFTPDLIB_FAILS);
    let _ = std::fs::remove_dir_all(&dir);
}
