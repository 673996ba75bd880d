//! `tokio-tls-echo`: an idiomatic Tokio + tokio-rustls TLS echo server, the baseline that
//! `bench/tls-echo.sh` compares zero's TLS echo server against.
//!
//! Written the way a competent Tokio user would: a `current_thread` runtime, one accept loop,
//! one task per connection (`TCP_NODELAY`, handshake through `TlsAcceptor`, a reusable 16 KiB
//! buffer, each `read` echoed with `write_all` + `flush`). rustls with the same `ring` provider
//! and defaults as zero-core, so both negotiate the same version and cipher suite.
//!
//! Usage: `tokio-tls-echo --listen ADDR --cert CHAIN.pem --key KEY.pem`.

#[path = "../../tls_args.rs"]
mod tls_args;

use std::io;
use std::process::ExitCode;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

const USAGE: &str = "usage: tokio-tls-echo --listen ADDR --cert CHAIN.pem --key KEY.pem";

/// Size of each connection's read buffer.
const BUF_SIZE: usize = 16 * 1024;

fn tls_config(cert: &str, key: &str) -> Result<Arc<rustls::ServerConfig>, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{cert}: {e}"))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{key}: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(config))
}

/// Completes the handshake, then echoes everything read back until EOF or an error.
async fn echo(acceptor: TlsAcceptor, stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut stream = acceptor.accept(stream).await?;
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return stream.shutdown().await;
        }
        stream.write_all(&buf[..n]).await?;
        stream.flush().await?;
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match tls_args::parse() {
        Ok(args) => args,
        Err(msg) => {
            eprintln!("tokio-tls-echo: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let acceptor = match tls_config(&args.cert, &args.key) {
        Ok(config) => TlsAcceptor::from(config),
        Err(e) => {
            eprintln!("tokio-tls-echo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("tokio-tls-echo: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    eprintln!("tokio-tls-echo: listening on {}", args.listen);
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // Resets and failed handshakes end the connection either way.
                    let _ = echo(acceptor, stream).await;
                });
            }
            Err(e) => {
                eprintln!("tokio-tls-echo: accept failed: {e}");
                tokio::task::yield_now().await;
            }
        }
    }
}
