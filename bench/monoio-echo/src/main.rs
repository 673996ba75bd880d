//! `monoio-echo`: an idiomatic monoio TCP echo server (io_uring driver, one thread), a peer
//! for `bench/echo.sh`.
//!
//! Written the way monoio's own echo example is: one accept loop, a `monoio::spawn`ed task per
//! connection with `TCP_NODELAY` set and one owned 16 KiB buffer passed to each read and write
//! (monoio's rent model), echoing each read with `write_all` until EOF or an error.
//!
//! Usage: `monoio-echo [--listen ADDR]` (default `127.0.0.1:7003`).

#[path = "../../echo_args.rs"]
mod echo_args;

use std::process::ExitCode;

use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::{TcpListener, TcpStream};

/// Size of each connection's buffer.
const BUF_SIZE: usize = 16 * 1024;

async fn echo(mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(BUF_SIZE);
    loop {
        let (read, b) = stream.read(buf).await;
        if read? == 0 {
            return Ok(());
        }
        let (written, b) = stream.write_all(b).await;
        written?;
        buf = b;
        buf.clear();
    }
}

#[monoio::main(driver = "io_uring")]
async fn main() -> ExitCode {
    let addr = match echo_args::listen("monoio-echo", "127.0.0.1:7003") {
        Ok(addr) => addr,
        Err(msg) => {
            eprintln!("monoio-echo: {msg}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("monoio-echo: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("monoio-echo: listening on {addr}");
    loop {
        match listener.accept().await {
            Ok((stream, _)) => drop(monoio::spawn(async move {
                let _ = echo(stream).await;
            })),
            Err(e) => eprintln!("monoio-echo: accept failed: {e}"),
        }
    }
}
