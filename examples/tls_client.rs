//! A TLS client on a zero-core shard: connect, verify the server's certificate, send one
//! line, print the reply (up to its first newline, or until the server closes).
//!
//! The peer is any TLS server that answers a line, e.g. zero's own TLS echo server, which
//! makes a self-signed certificate for `localhost` and `127.0.0.1` and prints its path:
//!
//! ```text
//! zero echo serve --tls --listen 127.0.0.1:7443      # "development certificate ... in PATH"
//! cargo run -p zero-examples --example tls_client -- 127.0.0.1:7443 localhost PATH
//! ```
//!
//! Arguments: `HOST:PORT [SERVER_NAME] [CA_FILE]`. `SERVER_NAME` (SNI, and the name the
//! certificate must carry) defaults to `HOST`; without `CA_FILE` the system's roots are
//! trusted (`example.com:443` then works, given internet access).

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use zero_core::tls::ClientTls;
use zero_core::{Config, Event, Handler, Io, IoError, Ops};

#[derive(Default)]
struct Client {
    reply: Vec<u8>,
    failed: Option<IoError>,
    closed: bool,
}

impl Handler for Client {
    fn on_event(&mut self, ops: &mut Ops, event: Event<'_>) {
        match event {
            // `Connected` comes after the TLS handshake: the certificate checked out.
            Event::Connected { conn } => {
                if let Ok(Some(info)) = ops.tls_info(conn) {
                    eprintln!("connected: {:?}, {:?}", info.version, info.cipher_suite);
                }
                self.failed = ops.send(conn, b"hello over TLS\n").err();
            }
            // Refused, unreachable, or the handshake failed (e.g. `TlsError::UnknownIssuer`).
            Event::ConnectFailed { error, .. } => self.failed = Some(error),
            // Decrypted bytes; a reply may come in several pieces.
            Event::Data { conn, data } => {
                self.reply.extend_from_slice(&data);
                if self.reply.contains(&b'\n') {
                    let _ = ops.close(conn); // graceful: close_notify, FIN, wait for the peer's
                }
            }
            // `Local` after our close; `Tls(..)` or `Truncated` if the session broke.
            Event::Closed { reason, .. } => {
                eprintln!("closed: {reason:?}");
                self.closed = true;
            }
            _ => {}
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let target = args.first().map_or("example.com:443", String::as_str);
    // zero-core connects to socket addresses: resolve the host name once, here.
    let addr: SocketAddr = target.to_socket_addrs()?.next().ok_or("HOST:PORT has no address")?;
    let host = target.rsplit_once(':').map_or(target, |(host, _)| host);
    let name = args.get(1).map_or(host, String::as_str);
    let trust = match args.get(2) {
        Some(ca_file) => ClientTls::with_ca_file(ca_file)?,
        None => ClientTls::system_roots()?,
    };

    let mut io = Io::new(Config::default())?;
    io.tls_connect(addr, name, trust.build()?)?;
    let mut client = Client::default();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !client.closed && client.failed.is_none() {
        if Instant::now() > deadline {
            return Err("no reply within 10 s".into());
        }
        // One tick: wait up to 100 ms for completions, then hand the events to `client`.
        io.run_once(&mut client, Some(Duration::from_millis(100)))?;
    }
    if let Some(error) = client.failed {
        return Err(error.into());
    }
    println!("{}", String::from_utf8_lossy(&client.reply).trim_end());
    Ok(())
}
