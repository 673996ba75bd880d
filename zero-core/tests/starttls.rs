//! STARTTLS both ways, and the CVE-2011-0411 rule: plaintext that follows the command that starts
//! the upgrade never reaches the TLS session or the protocol.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::openssl::s_client;
use common::pki::{Ca, Leaf};
use common::{run_until, Server};
use zero_core::rustls::{self, ServerConfig};
use zero_core::tls::{ClientTls, ServerTls};
use zero_core::{Config, ConnId, Event, Handler, Io, Ops};

/// What a STARTTLS server saw: plaintext commands, then what arrived inside TLS.
#[derive(Default, Debug)]
struct Seen {
    commands: Vec<String>,
    secure: Vec<u8>,
    upgraded: bool,
}

/// An SMTP-shaped server: greets, answers EHLO offering STARTTLS, upgrades on STARTTLS (dropping
/// the rest of its input buffer, as a protocol must), then echoes inside TLS.
struct StartTlsServer {
    config: Arc<ServerConfig>,
    input: Vec<u8>,
    seen: Arc<Mutex<Seen>>,
}

impl StartTlsServer {
    fn plaintext(&mut self, ops: &mut Ops, conn: ConnId) {
        while let Some(end) = self.input.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&self.input[..end]).into_owned();
            self.input.drain(..end + 2);
            self.seen.lock().unwrap().commands.push(line.clone());
            if line.eq_ignore_ascii_case("STARTTLS") {
                ops.send(conn, b"220 2.0.0 Ready to start TLS\r\n").unwrap();
                ops.tls_accept_upgrade(conn, self.config.clone()).unwrap();
                self.input.clear();
                return;
            } else if line.to_ascii_uppercase().starts_with("EHLO") {
                ops.send(conn, b"250-zero.test\r\n250 STARTTLS\r\n").unwrap();
            } else {
                ops.send(conn, b"250 2.0.0 ok\r\n").unwrap();
            }
        }
    }
}

impl Handler for StartTlsServer {
    fn on_event(&mut self, ops: &mut Ops, event: Event<'_>) {
        match event {
            Event::Accepted { conn, .. } => ops.send(conn, b"220 zero.test ESMTP\r\n").unwrap(),
            Event::Upgraded { .. } => self.seen.lock().unwrap().upgraded = true,
            Event::Data { conn, data } => {
                if ops.tls_info(conn).unwrap().is_some() {
                    self.seen.lock().unwrap().secure.extend_from_slice(&data);
                    let _ = ops.send(conn, &data);
                } else {
                    self.input.extend_from_slice(&data);
                    self.plaintext(ops, conn);
                }
            }
            _ => {}
        }
    }
}

fn starttls_server(leaf: &Leaf, slot_size: usize) -> (Server<StartTlsServer>, Arc<Mutex<Seen>>) {
    let (config, _) =
        ServerTls::from_pem(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes()).unwrap().build().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s = seen.clone();
    let mut shard = Config::default();
    shard.slot_size = slot_size;
    let server = Server::spawn(shard, move |io| {
        let l = io.tcp_listen("127.0.0.1:0".parse().unwrap()).unwrap();
        (StartTlsServer { config, input: Vec::new(), seen: s }, io.listener_addr(l).unwrap())
    });
    (server, seen)
}

fn read_line(r: &mut impl BufRead) -> String {
    let mut l = String::new();
    r.read_line(&mut l).unwrap();
    l
}

#[test]
fn openssl_s_client_starttls_smtp() {
    let ca = Ca::new("zero test CA");
    let leaf = ca.server(&["localhost"]);
    let (server, seen) = starttls_server(&leaf, 16 * 1024);
    let dir = common::pki::PemDir::new("starttls");
    let ca_file = dir.write("ca.pem", &ca.pem());
    let args = [
        "-starttls",
        "smtp",
        "-servername",
        "localhost",
        "-CAfile",
        &ca_file,
        "-verify_return_error",
        "-crlf",
    ];
    let out = s_client(server.addr, &args, "secret inside tls");
    assert!(out.lines().any(|l| l.ends_with("secret inside tls")), "no echo inside TLS:\n{out}");
    let seen = seen.lock().unwrap();
    assert!(seen.upgraded);
    assert_eq!(seen.secure, b"secret inside tls\r\n");
    assert_eq!(seen.commands.last().map(String::as_str), Some("STARTTLS"), "{:?}", seen.commands);
}

/// A rustls client over `sock`, which has already spoken plaintext.
fn tls_over(sock: TcpStream, ca: &Ca) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let config = ClientTls::with_ca_pem(ca.pem().as_bytes()).unwrap().build().unwrap();
    let conn = rustls::ClientConnection::new(config, "localhost".try_into().unwrap()).unwrap();
    rustls::StreamOwned::new(conn, sock)
}

#[test]
fn commands_pipelined_after_starttls_never_reach_tls_or_the_protocol() {
    let ca = Ca::new("zero test CA");
    let leaf = ca.server(&["localhost"]);
    // With 10-byte slots the injected command arrives as its own queued event; with large ones
    // it shares the STARTTLS payload. Both must be dropped.
    for slot_size in [10, 16 * 1024] {
        let (server, seen) = starttls_server(&leaf, slot_size);
        let mut sock = TcpStream::connect(server.addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut r = BufReader::new(sock.try_clone().unwrap());
        assert!(read_line(&mut r).starts_with("220 "));
        sock.write_all(b"STARTTLS\r\nRCPT TO:<victim@x>\r\n").unwrap();
        assert!(read_line(&mut r).starts_with("220 2.0.0"));
        let mut tls = tls_over(sock, &ca);
        tls.write_all(b"HELLO\r\n").unwrap();
        let mut back = [0; 7];
        tls.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"HELLO\r\n");
        drop(tls);
        drop(server);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.commands, ["STARTTLS"], "slot size {slot_size}");
        assert_eq!(seen.secure, b"HELLO\r\n", "slot size {slot_size}");
    }
}

/// A STARTTLS client: says STARTTLS, upgrades on `220`, then sends HELLO inside TLS.
#[derive(Default)]
struct StartTlsClient {
    config: Option<Arc<rustls::ClientConfig>>,
    input: Vec<u8>,
    upgraded: bool,
    plaintext_after_upgrade: Vec<u8>,
    secure: Vec<u8>,
    closed: bool,
}

impl Handler for StartTlsClient {
    fn on_event(&mut self, ops: &mut Ops, event: Event<'_>) {
        match event {
            Event::Connected { conn } => ops.send(conn, b"STARTTLS\r\n").unwrap(),
            Event::Upgraded { conn } => {
                self.upgraded = true;
                ops.send(conn, b"HELLO\r\n").unwrap();
            }
            Event::Data { data, .. } if self.upgraded => self.secure.extend_from_slice(&data),
            Event::Data { conn, data } => {
                if ops.tls_info(conn).unwrap().is_some() {
                    self.plaintext_after_upgrade.extend_from_slice(&data);
                    return;
                }
                self.input.extend_from_slice(&data);
                if self.input.starts_with(b"220 ") && self.input.windows(2).any(|w| w == b"\r\n") {
                    ops.tls_upgrade(conn, "localhost", self.config.clone().unwrap()).unwrap();
                    self.input.clear();
                }
            }
            Event::Closed { .. } => self.closed = true,
            _ => {}
        }
    }
}

#[test]
fn client_upgrade_drops_what_the_server_injected_after_its_go_ahead() {
    let ca = Ca::new("zero test CA");
    let leaf = ca.server(&["localhost"]);
    for slot_size in [8, 16 * 1024] {
        // The server: a plain socket that answers STARTTLS with its go-ahead plus an injected
        // line, then speaks TLS (rustls) and greets inside it.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let leaf = leaf.clone();
        let peer = std::thread::spawn(move || {
            let (sock, _) = listener.accept().unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut r = BufReader::new(sock.try_clone().unwrap());
            assert_eq!(read_line(&mut r), "STARTTLS\r\n");
            (&sock).write_all(b"220 go\r\n250 INJECTED\r\n").unwrap();
            let (config, _) = ServerTls::from_pem(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes())
                .unwrap()
                .build()
                .unwrap();
            let mut tls = rustls::StreamOwned::new(rustls::ServerConnection::new(config).unwrap(), sock);
            let mut hello = [0; 7];
            tls.read_exact(&mut hello).unwrap();
            assert_eq!(&hello, b"HELLO\r\n");
            tls.write_all(b"WELCOME\r\n").unwrap();
            tls.flush().unwrap();
            std::thread::sleep(Duration::from_millis(200));
        });
        let mut shard = Config::default();
        shard.slot_size = slot_size;
        let mut io = Io::new(shard).unwrap();
        let mut client = StartTlsClient {
            config: Some(ClientTls::with_ca_pem(ca.pem().as_bytes()).unwrap().build().unwrap()),
            ..StartTlsClient::default()
        };
        io.tcp_connect(addr).unwrap();
        run_until(&mut io, &mut client, Duration::from_secs(10), |c| c.secure.len() >= 9 || c.closed);
        peer.join().unwrap();
        assert!(client.upgraded, "slot size {slot_size}");
        assert_eq!(client.secure, b"WELCOME\r\n", "slot size {slot_size}");
        assert!(client.plaintext_after_upgrade.is_empty(), "slot size {slot_size}");
    }
}
