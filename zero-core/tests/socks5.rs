//! SOCKS5 through real proxies: dante (no auth, username auth, UDP ASSOCIATE) and microsocks;
//! a machine reaching its `Target` through dante on every runner.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::run_until;
use zero_core::machine::{Background, Closed, Driver, Machine, Service};
use zero_core::{
    Config, ConnId, Event, Handler, Io, IoError, Ops, Socks5Auth, Socks5Error, Socks5Target, Target, UdpId,
};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A proxy process, stopped with SIGTERM to its process group when dropped.
struct Proxy {
    child: Child,
    addr: SocketAddr,
    _dir: Option<common::pki::PemDir>,
}

impl Proxy {
    fn spawn(cmd: &mut Command, port: u16, dir: Option<common::pki::PemDir>) -> Proxy {
        let program = format!("{:?}", cmd.get_program());
        // Its own process group, so that stopping it stops its workers (dante keeps sessions
        // in worker processes that outlive the main one).
        let child =
            cmd.process_group(0).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap_or_else(|e| {
                panic!("{program} does not run ({e}): run scripts/test.sh, which installs the test peers")
            });
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "{program} did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Proxy { child, addr, _dir: dir }
    }

    /// danted with `socksmethod` (`none` or `username`), allowing clients and destinations in
    /// `to` (a loopback network).
    fn dante(method: &str, to: &str) -> Proxy {
        let port = free_port();
        let dir = common::pki::PemDir::new(&format!("dante-{port}"));
        let conf = dir.write(
            "danted.conf",
            &format!(
                "logoutput: stderr\ninternal: 127.0.0.1 port = {port}\nexternal: 127.0.0.1\n\
                 user.privileged: root\nuser.unprivileged: nobody\nclientmethod: none\nsocksmethod: {method}\n\
                 client pass {{\n    from: 127.0.0.0/8 to: 127.0.0.0/8\n}}\n\
                 socks pass {{\n    from: 127.0.0.0/8 to: {to}\n    command: connect udpassociate udpreply\n}}\n"
            ),
        );
        let pid = dir.0.join("danted.pid");
        Proxy::spawn(Command::new("danted").args(["-f", &conf, "-p"]).arg(pid), port, Some(dir))
    }

    fn microsocks(auth: Option<(&str, &str)>) -> Proxy {
        let port = free_port();
        let mut cmd = Command::new("microsocks");
        cmd.args(["-i", "127.0.0.1", "-p", &port.to_string()]);
        if let Some((u, p)) = auth {
            cmd.args(["-u", u, "-P", p]);
        }
        Proxy::spawn(&mut cmd, port, None)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// The user dante checks username authentication against (made by scripts/test.sh).
const USER: (&str, &str) = ("zerosocks", "zeropass");

fn dante_user_exists() {
    let ok = Command::new("id").arg(USER.0).output().is_ok_and(|o| o.status.success());
    assert!(ok, "system user {} missing: run scripts/test.sh (it creates it for dante)", USER.0);
}

/// A destination that greets first, then echoes.
fn greeting_echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for sock in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut sock = sock;
                sock.write_all(b"hello from the destination\n").unwrap();
                let mut buf = [0; 4096];
                while let Ok(n) = sock.read(&mut buf) {
                    if n == 0 || sock.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

const GREETING: &[u8] = b"hello from the destination\n";

/// Connects through a proxy, sends one message and collects what comes back.
#[derive(Default)]
struct Client {
    got: Vec<u8>,
    failed: Option<IoError>,
    connected: bool,
}

impl Handler for Client {
    fn on_event(&mut self, ops: &mut Ops, event: Event<'_>) {
        match event {
            Event::Connected { conn } => {
                self.connected = true;
                ops.send(conn, b"through the proxy\n").unwrap();
            }
            Event::ConnectFailed { error, .. } => self.failed = Some(error),
            Event::Data { data, .. } => self.got.extend_from_slice(&data),
            _ => {}
        }
    }
}

fn connect(proxy: SocketAddr, target: Socks5Target, auth: Socks5Auth) -> Client {
    let mut io = Io::new(Config::default()).unwrap();
    let mut client = Client::default();
    let conn: ConnId = io.tcp_connect_socks5(proxy, target, auth).unwrap();
    // Nothing may be mixed into the handshake.
    assert!(matches!(io.send(conn, b"too early"), Err(IoError::NotReady(_))));
    let want = GREETING.len() + b"through the proxy\n".len();
    run_until(&mut io, &mut client, Duration::from_secs(10), |c| c.failed.is_some() || c.got.len() >= want);
    client
}

fn assert_relayed(client: &Client) {
    assert!(client.connected, "{:?}", client.failed);
    assert_eq!(client.got, [GREETING, b"through the proxy\n"].concat());
}

fn user_pass(user: &str, password: &str) -> Socks5Auth {
    Socks5Auth::UserPass { user: user.into(), password: password.into() }
}

fn refusal(client: Client) -> Socks5Error {
    match client.failed {
        Some(IoError::Socks5(e)) => e,
        other => panic!("expected a SOCKS5 refusal, got {other:?} (connected: {})", client.connected),
    }
}

#[test]
fn dante_connect_without_auth() {
    let dest = greeting_echo_server();
    let dante = Proxy::dante("none", "127.0.0.0/8");
    assert_relayed(&connect(dante.addr, dest.into(), Socks5Auth::None));
    // A domain name, resolved by the proxy.
    assert_relayed(&connect(
        dante.addr,
        Socks5Target::Domain("localhost".into(), dest.port()),
        Socks5Auth::None,
    ));
    // Refused, unresolvable: each with its own error.
    let closed: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    assert_eq!(refusal(connect(dante.addr, closed.into(), Socks5Auth::None)), Socks5Error::ConnectionRefused);
    let nowhere = Socks5Target::Domain("nonexistent.invalid".into(), 80);
    assert_eq!(refusal(connect(dante.addr, nowhere, Socks5Auth::None)), Socks5Error::HostUnreachable);
    // Credentials offered to a proxy that wants none are not accepted as a downgrade: the proxy
    // must pick username/password or refuse.
    let e = refusal(connect(dante.addr, dest.into(), user_pass("u", "p")));
    assert_eq!(e, Socks5Error::NoAcceptableMethod);
}

#[test]
fn dante_refuses_what_its_rules_forbid() {
    let dest = greeting_echo_server();
    let dante = Proxy::dante("none", "127.0.0.1/32");
    let elsewhere: SocketAddr = format!("127.0.0.2:{}", dest.port()).parse().unwrap();
    assert_eq!(refusal(connect(dante.addr, elsewhere.into(), Socks5Auth::None)), Socks5Error::NotAllowed);
}

#[test]
fn dante_connect_with_username_auth() {
    dante_user_exists();
    let dest = greeting_echo_server();
    let dante = Proxy::dante("username", "127.0.0.0/8");
    assert_relayed(&connect(dante.addr, dest.into(), user_pass(USER.0, USER.1)));
    assert_eq!(
        refusal(connect(dante.addr, dest.into(), user_pass(USER.0, "wrong"))),
        Socks5Error::AuthFailed
    );
    assert_eq!(refusal(connect(dante.addr, dest.into(), Socks5Auth::None)), Socks5Error::NoAcceptableMethod);
}

#[test]
fn microsocks_connect() {
    let dest = greeting_echo_server();
    let open = Proxy::microsocks(None);
    assert_relayed(&connect(open.addr, dest.into(), Socks5Auth::None));
    let closed: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    assert_eq!(refusal(connect(open.addr, closed.into(), Socks5Auth::None)), Socks5Error::ConnectionRefused);
    let guarded = Proxy::microsocks(Some(("zerouser", "zeropass")));
    assert_relayed(&connect(guarded.addr, dest.into(), user_pass("zerouser", "zeropass")));
    assert_eq!(
        refusal(connect(guarded.addr, dest.into(), user_pass("zerouser", "nope"))),
        Socks5Error::AuthFailed
    );
}

/// Sends datagrams through a UDP association and collects the echoes.
#[derive(Default)]
struct Relayed {
    udp: Option<UdpId>,
    relay: Option<SocketAddr>,
    to: Option<SocketAddr>,
    echoes: Vec<(SocketAddr, Vec<u8>)>,
    failed: Option<IoError>,
}

impl Handler for Relayed {
    fn on_event(&mut self, ops: &mut Ops, event: Event<'_>) {
        match event {
            Event::Associated { udp, relay } => {
                self.relay = Some(relay);
                for i in 0..3 {
                    ops.send_to(udp, self.to.unwrap(), format!("datagram {i}").as_bytes()).unwrap();
                }
            }
            Event::AssociationFailed { error, .. } => self.failed = Some(error),
            Event::Datagram { peer, data, .. } => self.echoes.push((peer, data.to_vec())),
            _ => {}
        }
    }
}

#[test]
fn dante_udp_associate_relays_datagrams() {
    let echo = UdpSocket::bind("127.0.0.1:0").unwrap();
    let echo_addr = echo.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0; 2048];
        while let Ok((n, from)) = echo.recv_from(&mut buf) {
            let _ = echo.send_to(&buf[..n], from);
        }
    });
    let dante = Proxy::dante("none", "127.0.0.0/8");
    let mut io = Io::new(Config::default()).unwrap();
    let mut h = Relayed { to: Some(echo_addr), ..Relayed::default() };
    let udp = io.udp_associate_socks5(dante.addr, Socks5Auth::None).unwrap();
    h.udp = Some(udp);
    // Before the proxy has answered, there is nowhere to send.
    assert!(matches!(io.send_to(udp, echo_addr, b"early"), Err(IoError::NotReady(_))));
    run_until(&mut io, &mut h, Duration::from_secs(10), |h| h.failed.is_some() || h.echoes.len() == 3);
    assert!(h.failed.is_none(), "{:?}", h.failed);
    assert_ne!(h.relay, Some(dante.addr), "the relay is its own port");
    let mut got: Vec<_> =
        h.echoes.iter().map(|(from, d)| (*from, String::from_utf8_lossy(d).into_owned())).collect();
    got.sort();
    let want: Vec<_> = (0..3).map(|i| (echo_addr, format!("datagram {i}"))).collect();
    assert_eq!(got, want, "echoes carry the original sender, header stripped");
    // The proxy going away ends the association, and the handler hears of it.
    drop(dante);
    run_until(&mut io, &mut h, Duration::from_secs(10), |h| h.failed.is_some());
    assert!(matches!(io.send_to(udp, echo_addr, b"late"), Err(IoError::Stale(_))));
}

#[test]
fn microsocks_refuses_udp_associate() {
    let open = Proxy::microsocks(None);
    let mut io = Io::new(Config::default()).unwrap();
    let mut h = Relayed::default();
    io.udp_associate_socks5(open.addr, Socks5Auth::None).unwrap();
    run_until(&mut io, &mut h, Duration::from_secs(10), |h| h.failed.is_some());
    assert!(matches!(h.failed, Some(IoError::Socks5(Socks5Error::CommandNotSupported))), "{:?}", h.failed);
}

/// A machine that sends one line once connected and keeps what comes back: the smallest
/// client of the machine contract, to run on every runner.
#[derive(Default)]
struct Echo {
    asked: bool,
    outbox: Vec<u8>,
    sending: Vec<u8>,
    got: Vec<u8>,
    close: bool,
    closed: bool,
}

impl Machine for Echo {
    fn wants_connect(&mut self, _: Instant) -> bool {
        !std::mem::replace(&mut self.asked, true)
    }
    fn handle_connected(&mut self, _: Instant) {
        self.outbox.extend_from_slice(b"through the proxy\n");
    }
    fn handle_input(&mut self, _: Instant, data: &[u8]) {
        self.got.extend_from_slice(data);
    }
    fn handle_closed(&mut self, _: Instant, cause: Closed) {
        assert_eq!(cause, Closed::Requested, "the connection ended unasked");
        self.closed = true;
    }
    fn handle_timeout(&mut self, _: Instant) {}
    fn poll_transmit(&mut self) -> Option<&[u8]> {
        self.sending = std::mem::take(&mut self.outbox);
        (!self.sending.is_empty()).then_some(&self.sending[..])
    }
    fn poll_close(&mut self) -> bool {
        std::mem::take(&mut self.close)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    fn is_drained(&self) -> bool {
        self.closed
    }
}

/// A caller's question: "tell me what came back, once it all has".
type Ask = Box<dyn FnOnce(Vec<u8>) + Send>;

/// The callers of an [`Echo`].
#[derive(Default)]
struct Askers(Vec<Ask>);

impl Service for Askers {
    type Machine = Echo;
    type Command = Ask;
    fn command(&mut self, _: &mut Echo, _: Instant, ask: Ask) {
        self.0.push(ask);
    }
    fn serve(&mut self, echo: &mut Echo) {
        if echo.got.len() >= GREETING.len() + b"through the proxy\n".len() {
            self.0.drain(..).for_each(|ask| ask(echo.got.clone()));
        }
    }
    fn close(&mut self, echo: &mut Echo) {
        echo.close = true;
    }
}

/// An [`Echo`] inline on the test's shard.
struct Inline(Driver<Echo>);

impl Handler for Inline {
    fn on_event(&mut self, ops: &mut Ops, event: Event<'_>) {
        self.0.on_event(ops, &event);
    }
    fn on_batch_end(&mut self, ops: &mut Ops) {
        self.0.pump(ops);
    }
}

#[test]
fn a_machine_reaches_its_target_through_dante_on_every_runner() {
    let dest = greeting_echo_server();
    let dante = Proxy::dante("none", "127.0.0.0/8");
    let target = Target::tcp(dest).via_socks5(dante.addr, Socks5Auth::None);
    let want = [GREETING, b"through the proxy\n"].concat();

    let mut io = Io::new(Config::default()).unwrap();
    let mut inline = Inline(Driver::new(Echo::default(), target.clone(), 0));
    inline.0.pump(&mut io);
    run_until(&mut io, &mut inline, Duration::from_secs(10), |i| i.0.machine_ref().got.len() >= want.len());
    assert_eq!(inline.0.machine_ref().got, want, "inline on a shard");

    let background = Background::spawn("echo", Echo::default(), target.clone(), Askers::default()).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    background.post(Box::new(move |got| drop(tx.send(got)))).unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), want, "on a background shard");
    let started = Instant::now();
    background.close(Duration::from_secs(5));
    assert!(started.elapsed() < Duration::from_secs(1), "closed when drained, not at the deadline");

    #[cfg(feature = "tokio")]
    {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let got = rt.block_on(async {
            let task = zero_core::machine::Task::spawn(Echo::default(), target, Askers::default());
            let (tx, rx) = tokio::sync::oneshot::channel();
            task.post(Box::new(move |got| drop(tx.send(got)))).unwrap();
            let got = tokio::time::timeout(Duration::from_secs(10), rx).await.unwrap().unwrap();
            let started = Instant::now();
            task.close(Duration::from_secs(5)).await;
            assert!(started.elapsed() < Duration::from_secs(1), "closed when drained, not at the deadline");
            got
        });
        assert_eq!(got, want, "in a Tokio task");
    }
}
