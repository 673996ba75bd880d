//! The command line every echo peer under `bench/` takes: `--listen ADDR` (or `--listen=ADDR`).
//! Included by each (`#[path]`), so the peers stay plain binaries without a shared crate.

use std::net::SocketAddr;

/// Parses `--listen ADDR` (default `default`); `name` is the binary's, for `--help`.
pub fn listen(name: &str, default: &str) -> Result<SocketAddr, String> {
    let mut listen = default.to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().ok_or_else(|| "--listen needs a value".to_owned())?,
            "-h" | "--help" => {
                println!("usage: {name} [--listen ADDR]   (default {default})");
                std::process::exit(0);
            }
            other => match other.strip_prefix("--listen=") {
                Some(value) => listen = value.to_owned(),
                None => return Err(format!("unexpected argument `{other}`")),
            },
        }
    }
    listen.parse().map_err(|e| format!("invalid --listen address `{listen}`: {e}"))
}
