//! `zero smtp send`: one message (built with lettre, or a file's text) to a server, like
//! swaks: STARTTLS or TLS from the start, AUTH, BDAT, a DKIM signature, several copies on
//! one connection; every recipient's reply printed.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::Mailbox;
use lettre::Message;
use zero_core::Target;
use zero_smtp::client::{send_blocking, ClientConfig, Outgoing, TlsClient, TlsPolicy, To};
use zero_smtp::dkim::Signer;

/// Options of `zero smtp send`.
#[derive(Args, Debug)]
pub struct SendArgs {
    /// The server (`host:port`).
    #[arg(long, default_value = "127.0.0.1:25")]
    server: String,
    /// The reverse-path (`MAIL FROM`), and the From: of a built message.
    #[arg(long)]
    from: String,
    /// A recipient (repeat, or separate with commas).
    #[arg(long, required = true, value_delimiter = ',')]
    to: Vec<String>,
    /// The Subject: of a built message.
    #[arg(long, default_value = "zero smtp send")]
    subject: String,
    /// The body of a built message.
    #[arg(long, default_value = "This is a test message sent by zero smtp send.")]
    body: String,
    /// A header field for a built message (`Name: value`, repeat).
    #[arg(long = "header")]
    headers: Vec<String>,
    /// Send this file's text as it is (`-` for standard input) instead of building one.
    #[arg(long, conflicts_with_all = ["subject", "body", "headers"])]
    data: Option<PathBuf>,
    /// The name in EHLO.
    #[arg(long, default_value = "localhost")]
    helo: String,
    /// STARTTLS: `none`, `opportunistic` or `required`.
    #[arg(long, default_value = "none")]
    starttls: String,
    /// TLS from the start (port 465).
    #[arg(long, conflicts_with = "starttls")]
    tls: bool,
    /// The CA to check the server's certificate against (PEM); the system's otherwise.
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// The name the server's certificate must carry (the host of `--server` by default).
    #[arg(long)]
    server_name: Option<String>,
    /// AUTH as `user:password`.
    #[arg(long)]
    auth: Option<String>,
    /// Never use BDAT, even when offered.
    #[arg(long)]
    no_chunking: bool,
    /// Sign with this DKIM key (PEM), for `--dkim-domain` and `--dkim-selector`.
    #[arg(long, requires_all = ["dkim_domain", "dkim_selector"])]
    dkim_key: Option<PathBuf>,
    /// The DKIM signing domain.
    #[arg(long)]
    dkim_domain: Option<String>,
    /// The DKIM selector.
    #[arg(long)]
    dkim_selector: Option<String>,
    /// Send this many copies on the one connection.
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

/// Runs `zero smtp send`: `Ok` when every recipient of every copy was accepted.
pub fn send(args: SendArgs) -> Result<(), String> {
    let addr: SocketAddr = args
        .server
        .to_socket_addrs()
        .map_err(|e| format!("{}: {e}", args.server))?
        .next()
        .ok_or_else(|| format!("{}: no address", args.server))?;
    let host = args.server.rsplit_once(':').map_or(args.server.as_str(), |(h, _)| h);
    let name = args.server_name.clone().unwrap_or_else(|| host.trim_matches(['[', ']']).to_string());
    let tls_config = || -> Result<Arc<zero_core::rustls::ClientConfig>, String> {
        let tls = match &args.tls_ca {
            Some(ca) => zero_core::tls::ClientTls::with_ca_pem(
                &std::fs::read(ca).map_err(|e| format!("{}: {e}", ca.display()))?,
            ),
            None => zero_core::tls::ClientTls::system_roots(),
        };
        tls.and_then(|t| t.build()).map_err(|e| e.to_string())
    };
    let mut config = ClientConfig::new(&args.helo);
    config.chunking = !args.no_chunking;
    config.auth = match &args.auth {
        Some(a) => Some(
            a.split_once(':')
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .ok_or("--auth is user:password")?,
        ),
        None => None,
    };
    config.tls = match args.starttls.as_str() {
        _ if args.tls => TlsPolicy::Never,
        "none" => TlsPolicy::Never,
        "opportunistic" => {
            TlsPolicy::Opportunistic(TlsClient { server_name: name.clone(), config: tls_config()? })
        }
        "required" => TlsPolicy::Required(TlsClient { server_name: name.clone(), config: tls_config()? }),
        other => return Err(format!("--starttls is none, opportunistic or required, not {other}")),
    };
    let target = if args.tls { Target::tls(addr, name, tls_config()?) } else { Target::tcp(addr) };

    let mut text = match &args.data {
        Some(path) => crlf(&read(path)?),
        None => build(&args)?,
    };
    if let Some(key) = &args.dkim_key {
        let pem = std::fs::read_to_string(key).map_err(|e| format!("{}: {e}", key.display()))?;
        let key = zero_smtp::dkim::SigningKey::from_pem(&pem).map_err(|e| e.to_string())?;
        let signer = Signer::new(
            args.dkim_domain.as_deref().unwrap_or(""),
            args.dkim_selector.as_deref().unwrap_or(""),
            key,
        );
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        text = [signer.sign(&text, now).into_bytes(), text].concat();
    }
    let eight_bit = text.iter().any(|&b| b >= 0x80);
    let smtputf8 = !args.from.is_ascii() || args.to.iter().any(|t| !t.is_ascii());
    let text: Arc<[u8]> = text.into();
    let message = Outgoing {
        from: args.from.clone(),
        to: args.to.iter().map(|t| To::new(t.trim())).collect(),
        text,
        eight_bit,
        smtputf8,
        requiretls: false,
        ret: None,
        envid: None,
    };
    let (outcomes, tls) =
        send_blocking(target, config, vec![message; args.count.max(1)], Duration::from_secs(args.timeout))?;
    let mut refused = 0;
    for (copy, recipients) in outcomes.iter().enumerate() {
        for (to, outcome) in args.to.iter().zip(recipients) {
            let prefix = if args.count > 1 { format!("#{} ", copy + 1) } else { String::new() };
            match outcome {
                Ok(reply) => println!("{prefix}<{}>: {}", to.trim(), one_line(&reply.to_string())),
                Err(failure) => {
                    refused += 1;
                    println!("{prefix}<{}>: not delivered: {}", to.trim(), failure.why);
                }
            }
        }
    }
    eprintln!(
        "zero smtp send: {} accepted, {refused} not{}",
        outcomes.iter().map(Vec::len).sum::<usize>() - refused,
        if tls { " (TLS)" } else { "" }
    );
    if refused > 0 {
        return Err(format!("{refused} recipient(s) not accepted"));
    }
    Ok(())
}

/// A message from the options, with lettre: From, To, Subject, Date, Message-ID, the
/// extra headers, a plain-text body.
fn build(args: &SendArgs) -> Result<Vec<u8>, String> {
    let from: Mailbox = args.from.parse().map_err(|e| format!("--from {}: {e}", args.from))?;
    let mut builder = Message::builder().from(from).subject(&args.subject).date_now();
    for to in &args.to {
        builder = builder.to(to.trim().parse().map_err(|e| format!("--to {to}: {e}"))?);
    }
    for header in &args.headers {
        let (name, value) =
            header.split_once(':').ok_or_else(|| format!("--header {header}: not Name: value"))?;
        let name = HeaderName::new_from_ascii(name.trim().to_string())
            .map_err(|e| format!("--header {header}: {e}"))?;
        builder = builder.raw_header(HeaderValue::new(name, value.trim().to_string()));
    }
    let message = builder.body(args.body.clone()).map_err(|e| e.to_string())?;
    Ok(message.formatted())
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, String> {
    if path.as_os_str() == "-" {
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut text).map_err(|e| e.to_string())?;
        Ok(text)
    } else {
        std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// Bare LF line ends made CRLF (files written on Unix), a final CRLF added.
fn crlf(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + text.len() / 40);
    for (i, &b) in text.iter().enumerate() {
        if b == b'\n' && (i == 0 || text[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn one_line(s: &str) -> String {
    s.trim_end().replace("\r\n", " / ")
}
