//! The command line of the TLS and QUIC echo peers under `bench/`: `--listen ADDR --cert
//! CHAIN.pem --key KEY.pem`, all required. Included by each (`#[path]`), like `echo_args.rs`.

use std::net::SocketAddr;

/// What the command line gave.
pub struct Args {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The PEM certificate chain.
    pub cert: String,
    /// The PEM private key.
    pub key: String,
}

/// Parses the command line.
pub fn parse() -> Result<Args, String> {
    let (mut listen, mut cert, mut key) = (None, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let slot = match arg.as_str() {
            "--listen" => &mut listen,
            "--cert" => &mut cert,
            "--key" => &mut key,
            other => return Err(format!("unexpected argument `{other}`")),
        };
        *slot = Some(args.next().ok_or_else(|| format!("{arg} needs a value"))?);
    }
    let listen = listen.ok_or("--listen is required")?;
    Ok(Args {
        listen: listen.parse().map_err(|e| format!("invalid --listen address `{listen}`: {e}"))?,
        cert: cert.ok_or("--cert is required")?,
        key: key.ok_or("--key is required")?,
    })
}
