//! `tokio-echo`: an idiomatic Tokio TCP echo server, the baseline that
//! `bench/echo.sh` compares zero's echo server against.
//!
//! It is deliberately plain, written the way a competent Tokio user would:
//! a single-threaded (`current_thread`) runtime, one accept loop, one
//! `tokio::spawn`ed task per connection with `TCP_NODELAY` set and a reusable
//! 16 KiB buffer, echoing each `read` back with `write_all` until EOF or an
//! error. No tuning tricks, no handicaps.
//!
//! Usage: `tokio-echo [--listen ADDR]` (default `127.0.0.1:7001`).

use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Address listened on when `--listen` is not given.
const DEFAULT_LISTEN: &str = "127.0.0.1:7001";

/// Size of each connection's read buffer.
const BUF_SIZE: usize = 16 * 1024;

const USAGE: &str = "usage: tokio-echo [--listen ADDR]   (default 127.0.0.1:7001)";

/// Parses the command line: `--listen ADDR` or `--listen=ADDR`.
fn parse_args() -> Result<SocketAddr, String> {
    let mut listen = DEFAULT_LISTEN.to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => {
                listen = args.next().ok_or_else(|| "--listen needs a value".to_owned())?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
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

/// Echoes everything read from `stream` back to it until EOF or an error.
async fn echo(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n]).await?;
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let addr = match parse_args() {
        Ok(addr) => addr,
        Err(msg) => {
            eprintln!("tokio-echo: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("tokio-echo: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = listener.local_addr().unwrap_or(addr);
    eprintln!("tokio-echo: listening on {local}");

    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                tokio::spawn(async move {
                    // Resets and broken pipes are routine when load generators
                    // hang up; the connection is simply over either way.
                    let _ = echo(stream).await;
                });
            }
            Err(e) => {
                // E.g. EMFILE: report it and let other tasks run before retrying.
                eprintln!("tokio-echo: accept failed: {e}");
                tokio::task::yield_now().await;
            }
        }
    }
}
