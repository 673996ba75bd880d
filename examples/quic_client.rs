//! A QUIC client on a zero-core shard: connect, open a bidirectional stream, send one line and
//! finish it, print what comes back until the server finishes its side; then one unreliable
//! datagram (RFC 9221) there and back.
//!
//! The peer is any QUIC server that echoes, e.g. zero's own (`--quic` serves QUIC on the
//! same port, with a self-signed certificate for `localhost` and `127.0.0.1` whose path it
//! prints):
//!
//! ```text
//! zero echo serve --quic --listen 127.0.0.1:7443     # "development certificate ... in PATH"
//! cargo run -p zero-examples --example quic_client -- 127.0.0.1:7443 localhost PATH
//! ```
//!
//! Arguments: `HOST:PORT SERVER_NAME CA_FILE`.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use zero_core::quic::{self, Dir, QuicEvent, QuicId, StreamId};
use zero_core::tls::ClientTls;
use zero_core::{Config, Event, Handler, Io, Ops};

#[derive(Default)]
struct Client {
    stream: Option<StreamId>,
    reply: Vec<u8>,
    finished: bool,
    datagram: Option<Vec<u8>>,
    failed: Option<String>,
}

impl Client {
    /// Sends the line on a new stream, finishes the stream, and sends a datagram.
    fn start(&mut self, ops: &mut Ops, conn: QuicId) -> zero_core::Result<()> {
        let stream = ops.quic_open(conn, Dir::Bi)?;
        ops.quic_send(conn, stream, b"hello over QUIC\n")?;
        ops.quic_finish(conn, stream)?; // our FIN: the echo finishes its side after the echo
        ops.quic_send_datagram(conn, b"a datagram")?;
        self.stream = Some(stream);
        Ok(())
    }
}

impl Handler for Client {
    fn on_event(&mut self, ops: &mut Ops, event: Event<'_>) {
        let Event::Quic(event) = event else { return };
        match event {
            // The handshake is done and the certificate checked out.
            QuicEvent::Connected { conn, .. } => {
                if let Err(e) = self.start(ops, conn) {
                    self.failed = Some(e.to_string());
                }
            }
            // Refused, unreachable (after the idle timeout), or the certificate failed.
            QuicEvent::ConnectFailed { reason, .. } => self.failed = Some(reason.to_string()),
            // Stream bytes arrive in order, possibly in several pieces.
            QuicEvent::Data { stream, data, .. } if Some(stream) == self.stream => {
                self.reply.extend_from_slice(&data)
            }
            QuicEvent::Finished { stream, .. } if Some(stream) == self.stream => self.finished = true,
            QuicEvent::Datagram { data, .. } => self.datagram = Some(data.to_vec()),
            QuicEvent::Closed { reason, .. } => self.failed = Some(format!("closed: {reason}")),
            _ => {}
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [target, name, ca_file] = args.as_slice() else {
        return Err("usage: quic_client HOST:PORT SERVER_NAME CA_FILE".into());
    };
    let addr: SocketAddr = target.to_socket_addrs()?.next().ok_or("HOST:PORT has no address")?;
    // QUIC takes a rustls configuration like TLS over TCP does (TLS 1.3 is used).
    let tls = ClientTls::with_ca_file(ca_file)?.build()?;

    let mut io = Io::new(Config::default())?;
    // An endpoint is a UDP socket quinn-proto runs on; it can hold many connections.
    let endpoint = io.quic_bind("0.0.0.0:0".parse()?, None)?;
    let conn = io.quic_connect(endpoint, addr, name, quic::client_config(&tls)?)?;
    let mut client = Client::default();
    let deadline = Instant::now() + Duration::from_secs(10);
    // Datagrams may be lost; a real client would send again. One try is enough on loopback.
    while !(client.finished && client.datagram.is_some()) && client.failed.is_none() {
        if Instant::now() > deadline {
            return Err("no echo within 10 s".into());
        }
        io.run_once(&mut client, Some(Duration::from_millis(100)))?;
    }
    if let Some(why) = client.failed {
        return Err(why.into());
    }
    io.quic_close(conn, 0u32.into(), b"done")?; // CONNECTION_CLOSE; the shard drains it
    io.run_once(&mut client, Some(Duration::from_millis(10)))?;
    println!("{}", String::from_utf8_lossy(&client.reply).trim_end());
    println!("{}", String::from_utf8_lossy(client.datagram.as_deref().unwrap_or_default()));
    Ok(())
}
