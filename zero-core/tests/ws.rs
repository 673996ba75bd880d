//! WebSocket against an independent peer (python3-websockets, both roles), and zero's client
//! against zero's server over TLS (`wss`).

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::pki::Ca;
use common::{run_until, Server};
use zero_core::echo::Echo;
use zero_core::tls::{ClientTls, ServerTls};
use zero_core::ws::{WsClient, WsServer};
use zero_core::{Config, ConnId, Event, Handler, Io, ListenOptions, Ops};

const PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ws_peer.py");

fn python(args: &[&str]) -> Command {
    let found = Command::new("/usr/bin/python3").args(["-c", "import websockets"]).status().unwrap();
    assert!(found.success(), "python3-websockets is missing: run scripts/test.sh (it installs it)");
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(PEER).args(args).stdin(Stdio::null());
    cmd
}

fn echo_config() -> Arc<WsServer> {
    let mut ws = WsServer::default();
    ws.protocols = vec!["echo".into()];
    ws.origins = Some(vec!["https://app.example".into()]);
    Arc::new(ws)
}

#[test]
fn python_websockets_client_against_a_ws_listener() {
    let server = Server::spawn(Config::default(), |io| {
        let l = io
            .ws_listen("127.0.0.1:0".parse().unwrap(), &ListenOptions::default(), echo_config(), None)
            .unwrap();
        (Echo::default(), io.listener_addr(l).unwrap())
    });
    let out = python(&["client", &server.addr.port().to_string()]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for check in ["echo", "fragments", "ping", "close", "text refused", "origin refused", "allowed origin"] {
        assert!(stdout.contains(&format!("ok {check}")), "{check}: {stdout}");
    }
}

/// A client that sends `message` once connected and collects what comes back.
#[derive(Default)]
struct Talker {
    conn: Option<ConnId>,
    connected: bool,
    protocol: Option<String>,
    got: Vec<u8>,
    failed: Option<String>,
    message: Vec<u8>,
}

impl Handler for Talker {
    fn on_event(&mut self, ops: &mut Ops, event: Event<'_>) {
        match event {
            Event::Connected { conn } => {
                self.connected = true;
                self.protocol = ops.ws_protocol(conn).unwrap();
                ops.send(conn, &self.message).unwrap();
            }
            Event::Data { data, .. } => self.got.extend_from_slice(&data),
            Event::ConnectFailed { error, .. } => self.failed = Some(error.to_string()),
            _ => {}
        }
    }
}

fn talk(io: &mut Io, talker: &mut Talker) {
    let want = talker.message.len();
    run_until(io, talker, Duration::from_secs(10), |t| t.got.len() >= want || t.failed.is_some());
    assert_eq!(talker.failed, None);
    assert_eq!(talker.got, talker.message);
}

#[test]
fn zero_client_against_python_websockets_server() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut peer = python(&["server", &port.to_string()]).stdout(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(peer.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let mut io = Io::new(Config::default()).unwrap();
    let mut client = WsClient::new(&format!("127.0.0.1:{port}"), "/echo");
    client.protocols = vec!["echo".into()];
    let message: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let mut talker = Talker { message, ..Talker::default() };
    talker.conn =
        Some(io.ws_connect(format!("127.0.0.1:{port}").parse().unwrap(), Arc::new(client), None).unwrap());
    talk(&mut io, &mut talker);
    assert_eq!(talker.protocol.as_deref(), Some("echo"));
    let _ = peer.kill();
    let _ = peer.wait();
}

#[test]
fn zero_client_and_server_over_tls_and_a_refused_upgrade() {
    let ca = Ca::new("zero ws CA");
    let leaf = ca.server(&["localhost"]);
    let (tls, _) =
        ServerTls::from_pem(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes()).unwrap().build().unwrap();
    let server = Server::spawn(Config::default(), move |io| {
        let l = io
            .ws_listen("127.0.0.1:0".parse().unwrap(), &ListenOptions::default(), echo_config(), Some(tls))
            .unwrap();
        (Echo::default(), io.listener_addr(l).unwrap())
    });
    let client_tls = ClientTls::with_ca_pem(ca.pem().as_bytes()).unwrap().build().unwrap();
    let mut io = Io::new(Config::default()).unwrap();
    let mut config = WsClient::new("localhost", "/mqtt");
    config.protocols = vec!["echo".into()];
    let mut talker = Talker { message: b"over wss".to_vec(), ..Talker::default() };
    io.ws_connect(server.addr, Arc::new(config.clone()), Some(("localhost", client_tls.clone()))).unwrap();
    talk(&mut io, &mut talker);
    assert!(talker.connected);
    // An origin the server does not allow: the upgrade fails with the server's status.
    config.origin = Some("https://evil.example".into());
    let mut refused = Talker { message: b"x".to_vec(), ..Talker::default() };
    io.ws_connect(server.addr, Arc::new(config), Some(("localhost", client_tls))).unwrap();
    run_until(&mut io, &mut refused, Duration::from_secs(10), |t| t.failed.is_some());
    let failure = refused.failed.unwrap();
    assert!(failure.contains("403"), "{failure}");
}
