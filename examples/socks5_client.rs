//! A TCP connection through a SOCKS5 proxy (RFC 1928; username/password of RFC 1929 if
//! given) on a zero-core shard: send one line, print the reply (up to its first newline, or
//! until the destination closes).
//!
//! It needs a SOCKS5 proxy and, behind it, a destination that answers a line, e.g.
//! microsocks and the `echo_server` example:
//!
//! ```text
//! microsocks -i 127.0.0.1 -p 1080 &
//! cargo run -p zero-examples --example echo_server -- 127.0.0.1:7000 &
//! cargo run -p zero-examples --example socks5_client -- 127.0.0.1:1080 127.0.0.1:7000
//! ```
//!
//! Arguments: `PROXY_ADDR TARGET [USER PASSWORD]`; `TARGET` is `IP:PORT` or `NAME:PORT` (the
//! proxy resolves names). TLS through the proxy: `Ops::connect_to(&Target::tls(..).via_socks5(..))`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use zero_core::{Config, Event, Handler, Io, IoError, Ops, Socks5Auth, Socks5Target};

#[derive(Default)]
struct Client {
    reply: Vec<u8>,
    failed: Option<IoError>,
    closed: bool,
}

impl Handler for Client {
    fn on_event(&mut self, ops: &mut Ops, event: Event<'_>) {
        match event {
            // After the proxy's success reply: from here on, bytes go to the destination.
            Event::Connected { conn } => {
                self.failed = ops.send(conn, b"hello through SOCKS5\n").err();
            }
            // A proxy refusal arrives as `IoError::Socks5(..)`, naming its RFC 1928 reply.
            Event::ConnectFailed { error, .. } => self.failed = Some(error),
            Event::Data { conn, data } => {
                self.reply.extend_from_slice(&data);
                if self.reply.contains(&b'\n') {
                    let _ = ops.close(conn);
                }
            }
            Event::Closed { .. } => self.closed = true,
            _ => {}
        }
    }
}

/// `IP:PORT` as an address, anything else as `NAME:PORT` for the proxy to resolve.
fn parse_target(s: &str) -> Result<Socks5Target, Box<dyn std::error::Error>> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(Socks5Target::Ip(addr));
    }
    let (name, port) = s.rsplit_once(':').ok_or("TARGET must be HOST:PORT")?;
    Ok(Socks5Target::Domain(name.to_string(), port.parse()?))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: socks5_client PROXY_ADDR TARGET [USER PASSWORD]";
    let proxy: SocketAddr = args.first().ok_or(usage)?.parse()?;
    let target = parse_target(args.get(1).ok_or(usage)?)?;
    let auth = match (args.get(2), args.get(3)) {
        (Some(user), Some(password)) => {
            Socks5Auth::UserPass { user: user.clone(), password: password.clone() }
        }
        _ => Socks5Auth::None,
    };

    let mut io = Io::new(Config::default())?;
    // Connects to the proxy, runs the SOCKS5 handshake, then reports `Connected`.
    io.tcp_connect_socks5(proxy, target, auth)?;
    let mut client = Client::default();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !client.closed && client.failed.is_none() {
        if Instant::now() > deadline {
            return Err("no reply within 10 s".into());
        }
        io.run_once(&mut client, Some(Duration::from_millis(100)))?;
    }
    if let Some(error) = client.failed {
        return Err(error.into());
    }
    println!("{}", String::from_utf8_lossy(&client.reply).trim_end());
    Ok(())
}
