//! The session on a simulated clock, its owner played by the test.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zero_core::machine::{Closed, Machine};

use super::*;
use crate::codec::list::{Entry, Kind};

/// `openssl passwd -6 -salt abcdefgh secret`.
const SECRET: &str =
    "$6$abcdefgh$ltjgWl6579NluT/Vi1nwEvcil.G5Nbc4NiXZaNGStk8PSwGfQv72N2CKPPrVACtLtip/cZ/1GM/O6IND4WQhG.";

struct T {
    s: Session,
    now: Instant,
}

impl T {
    fn new(anonymous: bool) -> T {
        let users =
            Users::parse(&format!("alice:{SECRET}:rwdm\nreader:{SECRET}:r"), Path::new("/srv")).unwrap();
        let config = ServerConfig {
            users,
            anonymous: anonymous.then(|| PathBuf::from("/pub")),
            ..ServerConfig::default()
        };
        let peer = Peer {
            remote: "127.0.0.1:40000".parse().unwrap(),
            local: "127.0.0.1:21".parse().unwrap(),
            tls: false,
        };
        let mut s = Session::new(Arc::new(config), peer);
        let now = Instant::now();
        s.handle_connected(now);
        let mut t = T { s, now };
        assert!(t.out().starts_with("220 "));
        t
    }

    fn logged_in() -> T {
        let mut t = T::new(false);
        t.send("USER alice");
        assert_eq!(t.send("PASS secret"), "230 Login successful.\r\n");
        assert!(matches!(t.s.poll_event(), Some(Event::LoggedIn { .. })));
        t
    }

    fn out(&mut self) -> String {
        let mut all = String::new();
        while let Some(b) = self.s.poll_transmit() {
            all.push_str(&String::from_utf8_lossy(b));
        }
        all
    }

    fn send(&mut self, line: &str) -> String {
        self.s.handle_input(self.now, format!("{line}\r\n").as_bytes());
        self.out()
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.s.poll_event()).collect()
    }
}

fn v(p: &str) -> VPath {
    VPath::root().join(p).unwrap()
}

#[test]
fn login_and_its_limits() {
    let mut t = T::new(false);
    assert_eq!(t.send("PWD"), "530 Please login with USER and PASS.\r\n");
    assert_eq!(t.send("PASS x"), "503 Login with USER first.\r\n");
    assert_eq!(t.send("SYST"), "215 UNIX Type: L8\r\n", "allowed before login");
    for _ in 0..2 {
        assert_eq!(t.send("USER alice"), "331 Please specify the password.\r\n");
        assert_eq!(t.send("PASS wrong"), "530 Login incorrect.\r\n");
    }
    assert!(!t.s.poll_close());
    t.send("USER nobody");
    assert_eq!(t.send("PASS secret"), "530 Login incorrect.\r\n");
    assert!(t.s.poll_close(), "the third failure closes the connection");
    assert_eq!(t.send("USER alice"), "", "nothing is read after");

    let mut t = T::logged_in();
    assert_eq!(t.send("USER reader"), "530 Can't change to another user.\r\n");
    assert_eq!(t.send("PWD"), "257 \"/\" is the current directory\r\n");
}

#[test]
fn anonymous_is_read_only() {
    let mut t = T::new(true);
    t.send("USER anonymous");
    assert_eq!(t.send("PASS guest@"), "230 Login successful.\r\n");
    let root = PathBuf::from("/pub");
    let logged_in = Event::LoggedIn { user: "anonymous".into(), root, perms: Perms::READ, anonymous: true };
    assert_eq!(t.events(), [logged_in]);
    for cmd in ["STOR f", "APPE f", "DELE f", "MKD d", "RMD d", "RNFR f"] {
        assert_eq!(t.send(cmd), "550 Permission denied.\r\n", "{cmd}");
    }
    assert!(t.events().is_empty(), "the owner is asked nothing");
    // Without anonymous access configured, the name is just an unknown user.
    let mut t = T::new(false);
    t.send("USER anonymous");
    assert_eq!(t.send("PASS guest@"), "530 Login incorrect.\r\n");
}

#[test]
fn no_bounce_and_no_privileged_ports() {
    let mut t = T::logged_in();
    assert_eq!(t.send("PORT 10,0,0,1,20,0"), "500 Illegal PORT command.\r\n", "another host");
    assert_eq!(t.send("PORT 127,0,0,1,0,80"), "500 Illegal PORT command.\r\n", "port 80");
    assert_eq!(t.send("EPRT |1|10.0.0.1|6000|"), "500 Illegal PORT command.\r\n");
    assert_eq!(t.send("PORT 127,0,0,1"), "501 Illegal PORT command.\r\n");
    assert_eq!(t.send("EPRT |2|::1|6000|"), "522 Network protocol not supported.\r\n");
    assert!(t.send("PORT 127,0,0,1,23,112").starts_with("200 PORT command successful"));
    assert_eq!(t.send("RETR a"), "");
    let events = t.events();
    let [Event::Transfer(tr)] = events.as_slice() else { panic!("{events:?}") };
    assert_eq!(tr.mode, DataMode::Active("127.0.0.1:6000".parse().unwrap()));
}

#[test]
fn passive_modes_and_epsv_all() {
    let mut t = T::logged_in();
    assert_eq!(t.send("RETR a"), "425 Use PORT or PASV first.\r\n");
    assert_eq!(t.send("PASV"), "");
    assert_eq!(t.events(), [Event::Passive { tls: false }]);
    t.s.passive_done(t.now, Some("127.0.0.1:30001".parse().unwrap()));
    assert_eq!(t.out(), "227 Entering Passive Mode (127,0,0,1,117,49).\r\n");
    // A second PASV drops the first listener.
    t.send("EPSV");
    assert_eq!(t.events(), [Event::DropData, Event::Passive { tls: false }]);
    t.s.passive_done(t.now, Some("127.0.0.1:30002".parse().unwrap()));
    assert_eq!(t.out(), "229 Entering Extended Passive Mode (|||30002|)\r\n");
    assert_eq!(t.send("EPSV 2"), "522 Network protocol not supported, use (1)\r\n");
    assert_eq!(t.send("EPSV ALL"), "200 EPSV ALL ok.\r\n");
    assert_eq!(t.send("PASV"), "503 EPSV ALL is in force: use EPSV.\r\n");
    assert_eq!(t.send("PORT 127,0,0,1,23,112"), "503 EPSV ALL is in force: use EPSV.\r\n");
    t.send("EPSV");
    t.s.passive_done(t.now, None);
    assert_eq!(t.out(), "425 Could not open a passive listener.\r\n");
}

fn passive(t: &mut T) {
    t.send("PASV");
    t.s.passive_done(t.now, Some("127.0.0.1:30001".parse().unwrap()));
    t.out();
    t.events();
}

#[test]
fn rest_counts_for_the_next_command_only() {
    let mut t = T::logged_in();
    passive(&mut t);
    assert_eq!(t.send("REST 100"), "350 Restart position accepted (100).\r\n");
    t.send("RETR dir/f");
    let expect =
        Transfer { kind: TransferKind::Retrieve(v("dir/f"), 100), mode: DataMode::Passive, tls: false };
    assert_eq!(t.events(), [Event::Transfer(expect)]);
    t.s.transfer_done(t.now, TransferEnd::Complete(5));
    assert_eq!(t.out(), "226 Transfer complete.\r\n");
    assert_eq!(t.send("RETR f"), "425 Use PORT or PASV first.\r\n", "one transfer per PASV");
    passive(&mut t);
    t.send("REST 7");
    t.send("NOOP");
    t.send("STOR up");
    let expect =
        Transfer { kind: TransferKind::Store(v("up"), Write::Truncate), mode: DataMode::Passive, tls: false };
    assert_eq!(t.events(), [Event::Transfer(expect)]);
    t.s.transfer_done(t.now, TransferEnd::Complete(0));
    passive(&mut t);
    t.send("REST 7");
    t.send("STOR up");
    assert!(matches!(
        &t.events()[..],
        [Event::Transfer(Transfer { kind: TransferKind::Store(_, Write::At(7)), .. })]
    ));
}

#[test]
fn abor_during_a_transfer_and_commands_held_till_it_ends() {
    let mut t = T::logged_in();
    passive(&mut t);
    t.send("RETR big");
    t.events();
    t.s.transfer_opened(t.now);
    assert_eq!(t.out(), "150 Opening BINARY mode data connection for /big.\r\n");
    assert_eq!(t.send("NOOP"), "", "held while the transfer runs");
    // ftp(1)'s abort (Telnet IP and DM, then ABOR) behind the held NOOP waits its turn too:
    // commands are read in order.
    t.s.handle_input(t.now, b"\xff\xf4\xff\xf2ABOR\r\n");
    assert!(t.events().is_empty());
    t.s.transfer_done(t.now, TransferEnd::Complete(10));
    assert_eq!(t.out(), "226 Transfer complete.\r\n200 NOOP ok.\r\n225 No transfer to ABOR.\r\n");

    passive(&mut t);
    t.send("RETR big");
    t.events();
    t.s.transfer_opened(t.now);
    t.out();
    assert_eq!(t.send("STAT"), "213 Status: a transfer is in progress.\r\n");
    t.send("ABOR");
    assert_eq!(t.events(), [Event::Abort]);
    t.s.transfer_done(t.now, TransferEnd::Broken);
    assert_eq!(t.out(), "426 Failure writing network stream.\r\n226 ABOR successful.\r\n");
    assert_eq!(t.send("NOOP"), "200 NOOP ok.\r\n");
}

#[test]
fn quit_during_a_transfer_ends_it_then_the_session() {
    let mut t = T::logged_in();
    passive(&mut t);
    t.send("STOR x");
    t.events();
    t.s.transfer_opened(t.now);
    t.out();
    t.send("QUIT");
    assert_eq!(t.events(), [Event::Abort]);
    t.s.transfer_done(t.now, TransferEnd::Broken);
    assert_eq!(t.out(), "426 Failure writing network stream.\r\n221 Goodbye.\r\n");
    assert!(t.s.poll_close());
}

#[test]
fn file_system_requests_wait_for_the_owner_and_pipelining_keeps_order() {
    let mut t = T::logged_in();
    // Three commands in one read: each waits for the one before.
    t.s.handle_input(t.now, b"CWD sub\r\nPWD\r\nMKD ../new\r\n");
    assert_eq!(t.out(), "");
    assert_eq!(t.events(), [Event::Fs(Fs::ChangeDir(v("sub")))]);
    t.s.fs_done(t.now, Ok(FsDone::Ok));
    assert_eq!(t.out(), "250 Directory successfully changed.\r\n257 \"/sub\" is the current directory\r\n");
    assert_eq!(t.events(), [Event::Fs(Fs::MakeDir(v("new")))]);
    t.s.fs_done(t.now, Err(FsError::Exists));
    assert_eq!(t.out(), "550 Create directory operation failed.\r\n");
    // `..` never leaves the root.
    t.send("CWD ../../../..");
    assert_eq!(t.events(), [Event::Fs(Fs::ChangeDir(VPath::root()))]);
    t.s.fs_done(t.now, Err(FsError::NotFound));
    assert_eq!(t.out(), "550 Failed to change directory.\r\n");
    assert_eq!(t.s.cwd(), &v("sub"), "a failed CWD stays where it was");
    assert_eq!(t.send("RNTO b"), "503 RNFR required first.\r\n");
    t.send("RNFR a");
    t.s.fs_done(t.now, Ok(FsDone::Ok));
    assert_eq!(t.out(), "350 Ready for RNTO.\r\n");
    t.send("RNTO /b");
    assert_eq!(
        t.events(),
        [Event::Fs(Fs::RenameFrom(v("sub/a"))), Event::Fs(Fs::Rename(v("sub/a"), v("b")))]
    );
}

#[test]
fn size_mdtm_and_mlst() {
    let mut t = T::logged_in();
    let file = Entry {
        name: "f".into(),
        kind: Kind::File,
        size: 42,
        modified: 1_796_639_400,
        mode: 0o644,
        links: 1,
    };
    t.send("SIZE f");
    t.s.fs_done(t.now, Ok(FsDone::Stat(file.clone())));
    assert_eq!(t.out(), "213 42\r\n");
    t.send("MDTM f");
    t.s.fs_done(t.now, Ok(FsDone::Stat(file.clone())));
    assert_eq!(t.out(), "213 20261207103000\r\n");
    t.send("MLST f");
    t.s.fs_done(t.now, Ok(FsDone::Stat(file)));
    assert_eq!(
        t.out(),
        "250-Listing\r\n type=file;size=42;modify=20261207103000;perm=rwadf;UNIX.mode=0644; f\r\n250 End\r\n"
    );
    t.send("SIZE d");
    let dir = Entry { name: "d".into(), kind: Kind::Dir, size: 4096, modified: 0, mode: 0o755, links: 2 };
    t.s.fs_done(t.now, Ok(FsDone::Stat(dir)));
    assert_eq!(t.out(), "550 Could not get file size.\r\n");
}

#[test]
fn stou_tries_another_name_when_one_is_taken() {
    let mut t = T::logged_in();
    passive(&mut t);
    t.send("STOU report");
    assert!(
        matches!(&t.events()[..], [Event::Transfer(Transfer { kind: TransferKind::Store(p, Write::New), .. })] if *p == v("report"))
    );
    t.s.transfer_done(t.now, TransferEnd::Fs(FsError::Exists));
    assert!(
        matches!(&t.events()[..], [Event::Transfer(Transfer { kind: TransferKind::Store(p, Write::New), .. })] if *p == v("report.1"))
    );
    t.s.transfer_opened(t.now);
    assert_eq!(t.out(), "150 FILE: report.1\r\n");
}

#[test]
fn long_lines_garbage_and_the_idle_timeout() {
    let mut t = T::logged_in();
    let long = "X".repeat(10_000);
    assert_eq!(t.send(&format!("NOOP {long}")), "500 Command line too long.\r\n");
    assert_eq!(t.send("NOOP"), "200 NOOP ok.\r\n");
    assert_eq!(t.send("BOGUS"), "500 Unknown command.\r\n");
    t.s.handle_input(t.now, b"NO\xffOP\r\n");
    assert_eq!(t.out(), "500 Unknown command.\r\n");
    assert!(t.send("FEAT").contains(" MLST type*;size*;modify*;perm*;UNIX.mode*;\r\n"));
    let at = t.s.poll_timeout().unwrap();
    assert_eq!(at, t.now + Duration::from_secs(300));
    t.s.handle_timeout(at);
    assert_eq!(t.out(), "421 Timeout.\r\n");
    assert!(t.s.poll_close());
}

#[test]
fn a_closed_connection_stops_its_transfer() {
    let mut t = T::logged_in();
    passive(&mut t);
    t.send("RETR f");
    t.events();
    t.s.handle_closed(t.now, Closed::Requested);
    assert_eq!(t.events(), [Event::Abort, Event::DropData]);
    assert!(t.s.is_drained());
}

#[test]
fn auth_tls_pbsz_prot_and_required_tls() {
    let mut t = T::new(false);
    assert_eq!(t.send("AUTH TLS"), "502 TLS is not configured on this server.\r\n");
    // A server with TLS, required.
    let tls = tls_config();
    let users = Users::parse(&format!("alice:{SECRET}:rwdm"), Path::new("/srv")).unwrap();
    let config = ServerConfig { users, tls: Some(tls), require_tls: true, ..ServerConfig::default() };
    let peer = Peer {
        remote: "127.0.0.1:40000".parse().unwrap(),
        local: "127.0.0.1:21".parse().unwrap(),
        tls: false,
    };
    let mut t = T { s: Session::new(Arc::new(config), peer), now: Instant::now() };
    t.s.handle_connected(t.now);
    assert!(t.out().starts_with("220 "));
    assert!(t.send("FEAT").contains(" AUTH TLS\r\n PBSZ\r\n PROT\r\n"));
    assert_eq!(t.send("USER alice"), "530 Non-anonymous sessions must use encryption.\r\n");
    assert_eq!(t.send("PBSZ 0"), "503 PBSZ needs a TLS session: AUTH TLS first.\r\n");
    assert_eq!(t.send("AUTH KERBEROS"), "504 Unknown AUTH type.\r\n");
    // What follows AUTH in the same read is dropped (CVE-2011-0411), and nothing is read
    // until the handshake is done.
    t.s.handle_input(t.now, b"AUTH TLS\r\nUSER injected\r\n");
    assert_eq!(t.out(), "234 Proceed with negotiation.\r\n");
    assert!(matches!(t.s.poll_upgrade(), Some(zero_core::machine::Upgrade::Server(_))));
    assert_eq!(t.send("NOOP"), "", "nothing is read while upgrading");
    t.s.handle_upgraded(t.now);
    assert_eq!(t.out(), "", "the plaintext that followed AUTH is gone");
    assert_eq!(t.send("USER alice"), "331 Please specify the password.\r\n");
    t.send("PASS secret");
    t.events();
    assert_eq!(t.send("AUTH TLS"), "503 Already using TLS.\r\n");
    assert_eq!(t.send("PROT P"), "503 PBSZ first.\r\n");
    assert_eq!(t.send("PBSZ 0"), "200 PBSZ=0\r\n");
    assert_eq!(t.send("PROT S"), "536 PROT level not supported.\r\n");
    passive(&mut t);
    assert_eq!(t.send("RETR f"), "521 Data connections must be encrypted: PROT P.\r\n");
    assert_eq!(t.send("PROT P"), "200 PROT now Private.\r\n");
    t.send("PASV");
    assert_eq!(t.events(), [Event::DropData, Event::Passive { tls: true }]);
    t.s.passive_done(t.now, Some("127.0.0.1:30001".parse().unwrap()));
    t.out();
    t.send("RETR f");
    let expect = Transfer { kind: TransferKind::Retrieve(v("f"), 0), mode: DataMode::Passive, tls: true };
    assert_eq!(t.events(), [Event::Transfer(expect)]);
    t.s.transfer_done(t.now, TransferEnd::NoSessionReuse);
    assert_eq!(t.out(), "522 SSL connection failed: session reuse required.\r\n");
}

/// A throwaway TLS configuration (the machine never uses it: the driver does).
fn tls_config() -> Arc<rustls::ServerConfig> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert = rcgen_self_signed();
    let config =
        rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(cert.0, cert.1).unwrap();
    Arc::new(config)
}

fn rcgen_self_signed(
) -> (Vec<rustls::pki_types::CertificateDer<'static>>, rustls::pki_types::PrivateKeyDer<'static>) {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(c.key_pair.serialize_der()).unwrap();
    (vec![c.cert.der().clone()], key)
}
