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

#[path = "../../echo_args.rs"]
mod echo_args;

use std::io;
use std::process::ExitCode;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Address listened on when `--listen` is not given.
const DEFAULT_LISTEN: &str = "127.0.0.1:7001";

/// Size of each connection's read buffer.
const BUF_SIZE: usize = 16 * 1024;

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
    let addr = match echo_args::listen("tokio-echo", DEFAULT_LISTEN) {
        Ok(addr) => addr,
        Err(msg) => {
            eprintln!("tokio-echo: {msg}");
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
