//! TLS against independent peers: rustls clients and servers on plain blocking sockets, and
//! `openssl s_client` / `s_server`.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::openssl::{openssl, s_client};
use common::pki::{Ca, Leaf, PemDir};
use common::{run_until, Server};
use zero_core::echo::Echo;
use zero_core::rustls::{self, ClientConfig, ServerConfig};
use zero_core::tls::{CertReloadHandle, ClientTls, ServerTls, TlsInfo, TlsVersions};
use zero_core::{CloseReason, Config, ConnId, Event, Handler, Io, IoError, Ops, TlsError};

const LOCAL: &str = "127.0.0.1:0";

/// Echo over TLS, recording the handshake failures the listener reports.
#[derive(Default)]
struct TlsEcho {
    echo: Echo,
    failures: Arc<Mutex<Vec<IoError>>>,
}

impl Handler for TlsEcho {
    fn on_event(&mut self, ops: &mut Ops, event: Event<'_>) {
        match event {
            Event::HandshakeFailed { error, .. } => self.failures.lock().unwrap().push(error),
            event => self.echo.on_event(ops, event),
        }
    }
}

fn tls_echo_server(config: Arc<ServerConfig>, shard: Config) -> (Server<TlsEcho>, Arc<Mutex<Vec<IoError>>>) {
    let failures = Arc::new(Mutex::new(Vec::new()));
    let f = failures.clone();
    let mut shard = shard;
    shard.half_open = true;
    let server = Server::spawn(shard, move |io| {
        let l = io.tls_listen(LOCAL.parse().unwrap(), config).unwrap();
        (TlsEcho { echo: Echo::default(), failures: f }, io.listener_addr(l).unwrap())
    });
    (server, failures)
}

fn server_config(leaf: &Leaf) -> ServerTls {
    ServerTls::from_pem(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes()).unwrap()
}

/// A blocking rustls client (an independent TLS stack driving a std socket).
fn rustls_client(
    addr: SocketAddr,
    name: &str,
    config: Arc<ClientConfig>,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let conn = rustls::ClientConnection::new(config, name.to_owned().try_into().unwrap()).unwrap();
    rustls::StreamOwned::new(conn, sock)
}

fn round_trip(s: &mut impl ReadWrite, msg: &[u8]) {
    s.write_all(msg).unwrap();
    let mut back = vec![0; msg.len()];
    s.read_exact(&mut back).unwrap();
    assert!(back == msg, "echo differs");
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

#[test]
fn rustls_client_echo_over_tls12_and_tls13_with_alpn() {
    let ca = Ca::new("zero test CA");
    let leaf = ca.server(&["localhost", "127.0.0.1"]);
    let (config, _) = server_config(&leaf).alpn(&[b"zero", b"other"]).build().unwrap();
    let (server, failures) = tls_echo_server(config, Config::default());
    for (versions, expect) in [
        (TlsVersions::Only12, rustls::ProtocolVersion::TLSv1_2),
        (TlsVersions::Only13, rustls::ProtocolVersion::TLSv1_3),
    ] {
        let client = ClientTls::with_ca_pem(ca.pem().as_bytes())
            .unwrap()
            .versions(versions)
            .alpn(&[b"zero"])
            .build()
            .unwrap();
        let mut s = rustls_client(server.addr, "localhost", client);
        round_trip(&mut s, b"hello over TLS");
        assert_eq!(s.conn.protocol_version(), Some(expect));
        assert_eq!(s.conn.alpn_protocol(), Some(&b"zero"[..]));
        // Large transfers cross many records and receive slots.
        let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        round_trip(&mut s, &big);
        s.conn.send_close_notify();
        s.flush().unwrap();
    }
    assert!(failures.lock().unwrap().is_empty());
    assert_eq!(server.stop().echo.accepted, 2);
}

#[test]
fn alpn_mismatch_is_refused() {
    let ca = Ca::new("zero test CA");
    let (config, _) = server_config(&ca.server(&["localhost"])).alpn(&[b"mqtt"]).build().unwrap();
    let (server, failures) = tls_echo_server(config, Config::default());
    let client = ClientTls::with_ca_pem(ca.pem().as_bytes()).unwrap().alpn(&[b"h2"]).build().unwrap();
    let mut s = rustls_client(server.addr, "localhost", client);
    let err =
        s.write_all(b"x").and_then(|_| s.flush()).and_then(|_| s.read(&mut [0; 8]).map(|_| ())).unwrap_err();
    assert!(err.to_string().contains("NoApplicationProtocol"), "{err}");
    // A client closes after a fatal alert; the server's close (and its report) waited for that,
    // up to its 5 s linger, which raced this test's own 5 s wait.
    drop(s);
    wait_for(|| !failures.lock().unwrap().is_empty());
    assert!(matches!(failures.lock().unwrap()[0], IoError::Tls(TlsError::NoApplicationProtocol)));
}

/// Polls `cond` for up to five seconds.
fn wait_for(mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "condition not met in 5 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A zero-core TLS client: connects, sends `msg`, collects `want` bytes back.
struct Client {
    conn: Option<ConnId>,
    msg: Vec<u8>,
    want: usize,
    got: Vec<u8>,
    info: Option<TlsInfo>,
    outcome: Option<Result<(), IoError>>,
    closed: Option<CloseReason>,
}

impl Client {
    fn new(msg: &[u8], want: usize) -> Client {
        Client {
            conn: None,
            msg: msg.to_vec(),
            want,
            got: Vec::new(),
            info: None,
            outcome: None,
            closed: None,
        }
    }

    fn done(&self) -> bool {
        matches!(self.outcome, Some(Err(_))) || self.got.len() >= self.want || self.closed.is_some()
    }
}

impl Handler for Client {
    fn on_event(&mut self, ops: &mut Ops, event: Event<'_>) {
        match event {
            Event::Connected { conn } => {
                self.info = ops.tls_info(conn).unwrap();
                ops.send(conn, &self.msg).unwrap();
                self.outcome = Some(Ok(()));
            }
            Event::ConnectFailed { error, .. } => self.outcome = Some(Err(error)),
            Event::Data { data, .. } => self.got.extend_from_slice(&data),
            Event::Closed { reason, .. } => self.closed = Some(reason),
            _ => {}
        }
    }
}

fn zero_client(addr: SocketAddr, name: &str, config: Arc<ClientConfig>, msg: &[u8], want: usize) -> Client {
    let mut io = Io::new(Config::default()).unwrap();
    let mut client = Client::new(msg, want);
    client.conn = Some(io.tls_connect(addr, name, config).unwrap());
    run_until(&mut io, &mut client, Duration::from_secs(10), Client::done);
    client
}

#[test]
fn zero_client_names_certificate_problems() {
    let ca = Ca::new("zero test CA");
    let good = ca.server(&["localhost", "127.0.0.1"]);
    let expired = ca.expired_server(&["localhost"]);
    let stranger = Ca::new("someone else").server(&["localhost"]);
    let trust = || ClientTls::with_ca_pem(ca.pem().as_bytes()).unwrap().build().unwrap();
    type Expect = fn(&TlsError) -> bool;
    let cases: [(&Leaf, &str, Expect); 4] = [
        (&good, "localhost", |_| false),
        (&good, "wrong.example", |e| matches!(e, TlsError::NameMismatch(_))),
        (&expired, "localhost", |e| matches!(e, TlsError::Expired)),
        (&stranger, "localhost", |e| matches!(e, TlsError::UnknownIssuer)),
    ];
    for (leaf, name, expected) in cases {
        let (config, _) = server_config(leaf).build().unwrap();
        let (server, _) = tls_echo_server(config, Config::default());
        let client = zero_client(server.addr, name, trust(), b"ping", 4);
        match client.outcome {
            Some(Ok(())) => {
                assert_eq!(name, "localhost");
                assert_eq!(client.got, b"ping");
                assert_eq!(client.info.unwrap().version.as_deref(), Some("TLSv1_3"));
            }
            Some(Err(IoError::Tls(e))) => assert!(expected(&e), "{name}: unexpected {e}"),
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn mutual_tls_requires_a_client_certificate_from_the_ca() {
    let ca = Ca::new("zero test CA");
    let (config, _) = server_config(&ca.server(&["localhost"]))
        .client_auth(ca.pem().as_bytes(), true)
        .unwrap()
        .build()
        .unwrap();
    let (server, failures) = tls_echo_server(config, Config::default());
    let trust = || ClientTls::with_ca_pem(ca.pem().as_bytes()).unwrap();
    // With a certificate from the CA: served.
    let me = ca.client("alice");
    let with_cert =
        trust().client_cert(me.cert_pem.as_bytes(), me.key_pem.as_bytes()).unwrap().build().unwrap();
    let client = zero_client(server.addr, "localhost", with_cert, b"mtls", 4);
    assert_eq!(client.got, b"mtls");
    // Without one: the server names the cause, the client learns it was refused.
    let client = zero_client(server.addr, "localhost", trust().build().unwrap(), b"mtls", 4);
    assert!(client.got.is_empty());
    wait_for(|| !failures.lock().unwrap().is_empty());
    assert!(
        matches!(failures.lock().unwrap()[0], IoError::Tls(TlsError::CertificateRequired)),
        "{:?}",
        failures
    );
    // With a certificate from another CA: refused as unknown.
    let other = Ca::new("other").client("mallory");
    let wrong =
        trust().client_cert(other.cert_pem.as_bytes(), other.key_pem.as_bytes()).unwrap().build().unwrap();
    let client = zero_client(server.addr, "localhost", wrong, b"mtls", 4);
    assert!(client.got.is_empty());
    wait_for(|| failures.lock().unwrap().len() == 2);
    assert!(matches!(failures.lock().unwrap()[1], IoError::Tls(TlsError::UnknownIssuer)), "{:?}", failures);
}

#[test]
fn hot_reload_is_seen_by_new_clients_and_spares_live_sessions() {
    let (old_ca, new_ca) = (Ca::new("old CA"), Ca::new("new CA"));
    let (config, reload): (_, CertReloadHandle) =
        server_config(&old_ca.server(&["localhost"])).build().unwrap();
    let (server, _) = tls_echo_server(config, Config::default());
    let trust = |ca: &Ca| ClientTls::with_ca_pem(ca.pem().as_bytes()).unwrap().build().unwrap();
    let mut live = rustls_client(server.addr, "localhost", trust(&old_ca));
    round_trip(&mut live, b"before");
    let fresh = new_ca.server(&["localhost"]);
    reload.reload_pem(fresh.cert_pem.as_bytes(), fresh.key_pem.as_bytes()).unwrap();
    // A bad reload changes nothing.
    assert!(reload.reload_pem(b"not pem", fresh.key_pem.as_bytes()).is_err());
    let mut new = rustls_client(server.addr, "localhost", trust(&new_ca));
    round_trip(&mut new, b"after");
    let stale = zero_client(server.addr, "localhost", trust(&old_ca), b"x", 1);
    assert!(matches!(stale.outcome, Some(Err(IoError::Tls(TlsError::UnknownIssuer)))), "{:?}", stale.outcome);
    round_trip(&mut live, b"still here");
}

#[test]
fn silent_and_plaintext_clients_fail_the_handshake_cleanly() {
    let ca = Ca::new("zero test CA");
    let (config, _) = server_config(&ca.server(&["localhost"])).build().unwrap();
    let mut shard = Config::default();
    shard.tls_handshake_timeout = Duration::from_millis(200);
    // A failed handshake's close waits for the client's FIN at most this long (the default,
    // 5 s, made the test wait as long as its own deadlines, and fail under load).
    shard.close_linger = Duration::from_millis(200);
    let (server, failures) = tls_echo_server(config, shard);
    // Says nothing: dropped at the deadline.
    let mut silent = TcpStream::connect(server.addr).unwrap();
    silent.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(silent.read(&mut [0; 16]).unwrap_or(0), 0, "closed after the handshake timeout");
    // Sends application data before any handshake: gets an alert, then the connection closes.
    let mut plain = TcpStream::connect(server.addr).unwrap();
    plain.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    plain.write_all(b"\x17\x03\x03\x00\x05hello").unwrap();
    let mut reply = Vec::new();
    let _ = plain.read_to_end(&mut reply);
    assert_eq!(reply.first(), Some(&0x15), "a TLS alert record");
    wait_for(|| failures.lock().unwrap().len() == 2);
    let failures = failures.lock().unwrap();
    assert!(
        failures.iter().any(|e| matches!(e, IoError::Tls(TlsError::HandshakeTimeout(_)))),
        "{failures:?}"
    );
    assert!(failures.iter().any(|e| matches!(e, IoError::Tls(TlsError::Protocol(_)))), "{failures:?}");
    // The listener still serves.
    let client = ClientTls::with_ca_pem(ca.pem().as_bytes()).unwrap().build().unwrap();
    round_trip(&mut rustls_client(server.addr, "localhost", client), b"still serving");
}

#[test]
fn openssl_s_client_against_zero_server() {
    let ca = Ca::new("zero test CA");
    let pem = PemDir::new("s-client");
    let ca_file = pem.write("ca.pem", &ca.pem());
    let me = ca.client("alice");
    let (cert, key) = (pem.write("client.pem", &me.cert_pem), pem.write("client.key", &me.key_pem));
    let (config, _) = server_config(&ca.server(&["localhost"]))
        .alpn(&[b"zero"])
        .client_auth(ca.pem().as_bytes(), false)
        .unwrap()
        .build()
        .unwrap();
    let (server, failures) = tls_echo_server(config, Config::default());
    for version in ["-tls1_2", "-tls1_3"] {
        let common =
            ["-servername", "localhost", "-CAfile", &ca_file, "-verify_return_error", "-alpn", "zero"];
        let out = s_client(server.addr, &[&common[..], &[version]].concat(), "hello zero");
        assert!(out.lines().any(|l| l.ends_with("hello zero")), "no echo:\n{out}");
        assert!(out.contains("ALPN protocol: zero"), "{out}");
        assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
        let expected = if version == "-tls1_2" { "TLSv1.2" } else { "TLSv1.3" };
        assert!(out.contains(&format!("New, {expected}")), "{out}");
        // Mutual TLS with a certificate from the CA.
        let out =
            s_client(server.addr, &[&common[..], &[version, "-cert", &cert, "-key", &key]].concat(), "mtls");
        assert!(out.lines().any(|l| l.ends_with("mtls")), "no echo with a client certificate:\n{out}");
    }
    assert!(failures.lock().unwrap().is_empty(), "{:?}", failures);
    assert_eq!(server.stop().echo.accepted, 4);
}

/// `openssl s_server -rev` (it answers each line reversed) on a free port.
struct SServer {
    child: std::process::Child,
    addr: SocketAddr,
}

impl SServer {
    fn start(cert: &str, key: &str, args: &[&str]) -> SServer {
        use std::io::BufRead;
        use std::process::Stdio;
        let port = std::net::TcpListener::bind(LOCAL).unwrap().local_addr().unwrap().port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut child = openssl()
            .args(["s_server", "-accept", &addr.to_string(), "-cert", cert, "-key", key, "-rev"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while line.trim_end() != "ACCEPT" {
            line.clear();
            assert!(out.read_line(&mut line).unwrap() > 0, "s_server exited before listening");
        }
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        SServer { child, addr }
    }
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn zero_client_against_openssl_s_server() {
    let ca = Ca::new("zero test CA");
    let pem = PemDir::new("s-server");
    let leaf = ca.server(&["localhost", "127.0.0.1"]);
    let (cert, key) = (pem.write("server.pem", &leaf.cert_pem), pem.write("server.key", &leaf.key_pem));
    let ca_file = pem.write("ca.pem", &ca.pem());
    let trust = || ClientTls::with_ca_pem(ca.pem().as_bytes()).unwrap().alpn(&[b"zero"]);
    for (flag, version) in [("-tls1_2", "TLSv1_2"), ("-tls1_3", "TLSv1_3")] {
        let server = SServer::start(&cert, &key, &[flag, "-alpn", "zero"]);
        let client = zero_client(server.addr, "localhost", trust().build().unwrap(), b"hello world\n", 12);
        assert_eq!(client.got, b"dlrow olleh\n", "{:?}", client.outcome);
        let info = client.info.unwrap();
        assert_eq!(info.version.as_deref(), Some(version));
        assert_eq!(info.alpn.as_deref(), Some(&b"zero"[..]));
    }
    // Mutual TLS: s_server demands a certificate from the CA.
    let me = ca.client("alice");
    let mtls = ["-Verify", "1", "-CAfile", ca_file.as_str()];
    let server = SServer::start(&cert, &key, &mtls);
    let with_cert =
        trust().client_cert(me.cert_pem.as_bytes(), me.key_pem.as_bytes()).unwrap().build().unwrap();
    let client = zero_client(server.addr, "localhost", with_cert, b"abc\n", 4);
    assert_eq!(client.got, b"cba\n", "{:?}", client.outcome);
    drop(server);
    // Without one, the server's refusal is named (TLS 1.3 reports it after the handshake, as a
    // close with the peer's alert).
    let server = SServer::start(&cert, &key, &mtls);
    let client = zero_client(server.addr, "localhost", trust().build().unwrap(), b"abc\n", 4);
    assert!(client.got.is_empty());
    let refused = match (&client.outcome, &client.closed) {
        (Some(Err(IoError::Tls(e))), _) | (_, Some(CloseReason::Tls(e))) => e.clone(),
        other => panic!("no TLS error: {other:?}"),
    };
    assert!(matches!(&refused, TlsError::AlertReceived(a) if a.contains("certificate")), "{refused}");
    // A wrong name, and a certificate nobody vouches for.
    let server = SServer::start(&cert, &key, &[]);
    let client = zero_client(server.addr, "wrong.example", trust().build().unwrap(), b"x\n", 2);
    assert!(
        matches!(client.outcome, Some(Err(IoError::Tls(TlsError::NameMismatch(_))))),
        "{:?}",
        client.outcome
    );
    let stranger = ClientTls::with_ca_pem(Ca::new("other").pem().as_bytes()).unwrap().build().unwrap();
    let client = zero_client(server.addr, "localhost", stranger, b"x\n", 2);
    assert!(
        matches!(client.outcome, Some(Err(IoError::Tls(TlsError::UnknownIssuer)))),
        "{:?}",
        client.outcome
    );
}
