//! `compio-echo`: an idiomatic compio TCP echo server (io_uring driver, one thread), a peer
//! for `bench/echo.sh`.
//!
//! Written the way compio's examples are: one accept loop, a spawned (detached) task per
//! connection with `TCP_NODELAY` set and one owned 16 KiB buffer passed to each read and write
//! (compio's `BufResult` model), echoing each read with `write_all` until EOF or an error.
//!
//! Usage: `compio-echo [--listen ADDR]` (default `127.0.0.1:7004`).

#[path = "../../echo_args.rs"]
mod echo_args;

use std::process::ExitCode;

use compio::buf::BufResult;
use compio::io::{AsyncRead, AsyncWriteExt};
use compio::net::{TcpListener, TcpStream};

/// Size of each connection's buffer.
const BUF_SIZE: usize = 16 * 1024;

async fn echo(mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(BUF_SIZE);
    loop {
        let BufResult(read, b) = stream.read(buf).await;
        if read? == 0 {
            return Ok(());
        }
        let BufResult(written, b) = stream.write_all(b).await;
        written?;
        buf = b;
        buf.clear();
    }
}

#[compio::main]
async fn main() -> ExitCode {
    let addr = match echo_args::listen("compio-echo", "127.0.0.1:7004") {
        Ok(addr) => addr,
        Err(msg) => {
            eprintln!("compio-echo: {msg}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("compio-echo: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("compio-echo: listening on {addr}");
    loop {
        match listener.accept().await {
            Ok((stream, _)) => compio::runtime::spawn(async move {
                let _ = echo(stream).await;
            })
            .detach(),
            Err(e) => eprintln!("compio-echo: accept failed: {e}"),
        }
    }
}
