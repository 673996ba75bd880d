//! `quinn-echo`: an idiomatic quinn QUIC echo server, the peer `bench/quic-echo.sh` compares
//! zero's QUIC echo (`zero echo serve --quic`) against.
//!
//! Written the way a competent quinn user would: a `current_thread` Tokio runtime, one accept
//! loop, a task per connection and one per bidirectional stream, each chunk read echoed with
//! `write_all`, the stream finished after the peer's; datagrams echoed as datagrams. rustls
//! with the same `ring` provider as zero-core, quinn's default transport configuration (as
//! zero's, which is quinn-proto's).
//!
//! Usage: `quinn-echo --listen ADDR --cert CHAIN.pem --key KEY.pem`.

#[path = "../../tls_args.rs"]
mod tls_args;

use std::process::ExitCode;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

const USAGE: &str = "usage: quinn-echo --listen ADDR --cert CHAIN.pem --key KEY.pem";

fn server_config(cert: &str, key: &str) -> Result<quinn::ServerConfig, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{cert}: {e}"))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{key}: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|e| e.to_string())?;
    tls.max_early_data_size = u32::MAX;
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(|e| e.to_string())?;
    Ok(quinn::ServerConfig::with_crypto(Arc::new(crypto)))
}

/// Echoes one bidirectional stream on itself, then finishes it.
async fn echo_stream(mut send: quinn::SendStream, mut recv: quinn::RecvStream) {
    while let Ok(Some(chunk)) = recv.read_chunk(usize::MAX, true).await {
        if send.write_all(&chunk.bytes).await.is_err() {
            return;
        }
    }
    let _ = send.finish();
}

/// Serves one connection: its streams and datagrams, until it closes.
async fn serve(incoming: quinn::Incoming) {
    let Ok(conn) = incoming.await else { return };
    loop {
        tokio::select! {
            stream = conn.accept_bi() => match stream {
                Ok((send, recv)) => drop(tokio::spawn(echo_stream(send, recv))),
                Err(_) => return,
            },
            datagram = conn.read_datagram() => match datagram {
                Ok(datagram) => drop(conn.send_datagram(datagram)),
                Err(_) => return,
            },
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match tls_args::parse() {
        Ok(args) => args,
        Err(msg) => {
            eprintln!("quinn-echo: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = match server_config(&args.cert, &args.key) {
        Ok(config) => config,
        Err(msg) => {
            eprintln!("quinn-echo: {msg}");
            return ExitCode::FAILURE;
        }
    };
    let endpoint = match quinn::Endpoint::server(config, args.listen) {
        Ok(endpoint) => endpoint,
        Err(e) => {
            eprintln!("quinn-echo: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    eprintln!("quinn-echo: listening on {}", endpoint.local_addr().map_or(args.listen, |a| a));
    while let Some(incoming) = endpoint.accept().await {
        tokio::spawn(serve(incoming));
    }
    ExitCode::SUCCESS
}
