//! `zero smtp serve` (an SMTP server spooling every accepted message to disk before its
//! 250, or a sink) and `zero smtp queue list` (what a spool holds).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use clap::{Args, Subcommand};
use zero_core::journal::Fsync;
use zero_core::{ClusterConfig, IoCluster, ListenOptions};
use zero_smtp::codec::BareLineEnding;
use zero_smtp::server::{Network, Server, ServerConfig, Sink};
use zero_smtp::spool::Spool;

/// `zero smtp` commands.
#[derive(Subcommand, Debug)]
pub enum SmtpCommand {
    /// Accept mail: every message is in the spool (fsynced) before its 250; `--sink` keeps
    /// nothing.
    Serve(Box<ServeArgs>),
    /// What a spool holds.
    Queue {
        #[command(subcommand)]
        command: QueueCommand,
    },
}

/// `zero smtp queue` commands.
#[derive(Subcommand, Debug)]
pub enum QueueCommand {
    /// List the messages not yet delivered: id, size, sender, recipients.
    List {
        /// The spool directory (as given to `serve`).
        #[arg(long)]
        spool: PathBuf,
        /// Print each message's text too.
        #[arg(long)]
        text: bool,
    },
}

/// Options of `zero smtp serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Where to listen (STARTTLS offered with `--tls-cert`).
    #[arg(long, default_value = "127.0.0.1:2525")]
    listen: SocketAddr,
    /// Also listen with TLS from the start (port 465's way).
    #[arg(long)]
    listen_tls: Option<SocketAddr>,
    /// The spool directory (one subdirectory per shard).
    #[arg(long, required_unless_present = "sink")]
    spool: Option<PathBuf>,
    /// Keep nothing: accept and forget every message (like Postfix's smtp-sink).
    #[arg(long, conflicts_with = "spool")]
    sink: bool,
    /// Never fsync the spool (a power loss can lose accepted mail; a crash of the process
    /// cannot).
    #[arg(long)]
    no_fsync: bool,
    /// The name in the greeting and the trace headers.
    #[arg(long, default_value = "localhost")]
    hostname: String,
    /// A domain accepted from anyone (repeat); others only from trusted or authenticated
    /// clients.
    #[arg(long = "accept-domain")]
    accept_domains: Vec<String>,
    /// A network whose clients may relay anywhere (repeat).
    #[arg(long = "trusted", default_values = ["127.0.0.0/8", "::1"])]
    trusted: Vec<String>,
    /// The TLS certificate chain (PEM), for STARTTLS and `--listen-tls`.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// A file of `user:password` lines: AUTH PLAIN and LOGIN are offered (over TLS only,
    /// unless `--auth-without-tls`).
    #[arg(long)]
    users: Option<PathBuf>,
    /// Offer AUTH before TLS too.
    #[arg(long)]
    auth_without_tls: bool,
    /// The largest message, in octets.
    #[arg(long, default_value_t = 35 << 20)]
    max_size: usize,
    /// Accept bare CR or LF in message text, rewritten as CRLF (refused by default).
    #[arg(long)]
    normalize_bare_line_endings: bool,
    /// Shards (threads); one per CPU by default.
    #[arg(long)]
    shards: Option<usize>,
}

/// Runs a `zero smtp` command.
pub fn run(command: SmtpCommand) -> Result<(), String> {
    match command {
        SmtpCommand::Serve(args) => serve(*args),
        SmtpCommand::Queue { command: QueueCommand::List { spool, text } } => list(&spool, text),
    }
}

fn serve(args: ServeArgs) -> Result<(), String> {
    let mut config = ServerConfig::new(&args.hostname);
    config.max_size = args.max_size;
    config.accept_domains = args.accept_domains.clone();
    config.auth_without_tls = args.auth_without_tls;
    if args.normalize_bare_line_endings {
        config.bare_line_endings = BareLineEnding::Normalize;
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let tls = zero_core::tls::ServerTls::from_pem_files(cert, key)
            .and_then(|t| t.build())
            .map_err(|e| e.to_string())?;
        config.tls = Some(tls.0);
    }
    let users: Arc<HashMap<String, String>> = Arc::new(match &args.users {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            text.lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                .map(|l| l.split_once(':').map(|(u, p)| (u.to_string(), p.to_string())))
                .collect::<Option<_>>()
                .ok_or_else(|| format!("{}: lines are user:password", path.display()))?
        }
        None => HashMap::new(),
    });
    config.auth = args.users.is_some();
    let trusted: Vec<Network> = args.trusted.iter().map(|t| t.parse()).collect::<Result<_, _>>()?;
    let shards = args.shards.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // Every shard listens on the same port: a port-0 address is given one first.
    let mut reserved = Vec::new();
    let mut reserve = |addr: SocketAddr| -> Result<SocketAddr, String> {
        if addr.port() != 0 {
            return Ok(addr);
        }
        let (sock, bound) = zero_core::reserve_port(addr).map_err(|e| e.to_string())?;
        reserved.push(sock);
        Ok(bound)
    };
    let listen = reserve(args.listen)?;
    let listen_tls = args.listen_tls.map(&mut reserve).transpose()?;
    if listen_tls.is_some() && config.tls.is_none() {
        return Err("--listen-tls needs --tls-cert and --tls-key".into());
    }
    let spool = args.spool.clone();
    let no_fsync = args.no_fsync;
    let failure: Arc<Mutex<Option<String>>> = Arc::default();
    let failed = failure.clone();
    let started = IoCluster::start(ClusterConfig::new(shards), move |shard, io| {
        let mut opts = ListenOptions::default();
        opts.reuse_port = true;
        let fsync = if no_fsync { Fsync::Never } else { Fsync::Always };
        let check_users = users.clone();
        let authenticator = Box::new(move |c: &zero_smtp::server::Credentials| {
            check_users.get(&c.username).is_some_and(|p| *p == c.secret)
        });
        macro_rules! up {
            ($store:expr) => {{
                let mut server = Server::new(config.clone(), $store)
                    .with_trusted(trusted.clone())
                    .with_authenticator(authenticator);
                server.listen(io, listen, &opts)?;
                if let Some(addr) = listen_tls {
                    server.listen_tls(io, addr, &opts)?;
                }
                Ok(Either::from(server))
            }};
        }
        match &spool {
            Some(dir) => {
                let dir = dir.join(format!("shard-{shard}"));
                match Spool::open(&dir, fsync, Instant::now()) {
                    Ok(spool) => {
                        if !spool.is_empty() {
                            tracing::info!(shard, messages = spool.len(), "spool holds messages from before");
                        }
                        up!(spool)
                    }
                    Err(e) => {
                        *failed.lock().unwrap_or_else(|p| p.into_inner()) =
                            Some(format!("spool {}: {e}", dir.display()));
                        Err(zero_core::IoError::Config(format!("spool {}: {e}", dir.display())))
                    }
                }
            }
            None => up!(Sink::default()),
        }
    });
    let cluster = started
        .map_err(|e| failure.lock().unwrap_or_else(|p| p.into_inner()).take().unwrap_or(e.to_string()))?;
    drop(reserved);
    let tls_note = listen_tls.map(|a| format!(", TLS on {a}")).unwrap_or_default();
    eprintln!(
        "zero smtp: listening on {listen}{tls_note} ({shards} shard{}, {})",
        if shards == 1 { "" } else { "s" },
        match &args.spool {
            Some(dir) => format!("spool {}", dir.display()),
            None => "sink".into(),
        }
    );
    cluster.join().map_err(|e| e.to_string())
}

/// A spooling or a sink server: one handler type for the cluster.
enum Either {
    Spool(Server<Spool>),
    Sink(Server<Sink>),
}

impl From<Server<Spool>> for Either {
    fn from(s: Server<Spool>) -> Either {
        Either::Spool(s)
    }
}

impl From<Server<Sink>> for Either {
    fn from(s: Server<Sink>) -> Either {
        Either::Sink(s)
    }
}

impl zero_core::Handler for Either {
    fn on_event(&mut self, ops: &mut zero_core::Ops, event: zero_core::Event<'_>) {
        match self {
            Either::Spool(s) => s.on_event(ops, event),
            Either::Sink(s) => s.on_event(ops, event),
        }
    }

    fn on_batch_end(&mut self, ops: &mut zero_core::Ops) {
        match self {
            Either::Spool(s) => s.on_batch_end(ops),
            Either::Sink(s) => s.on_batch_end(ops),
        }
    }
}

fn list(dir: &std::path::Path, with_text: bool) -> Result<(), String> {
    let mut shards: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("shard-")))
        .collect();
    shards.sort();
    let mut count = 0;
    for shard in shards {
        for (m, text) in Spool::inspect(&shard).map_err(|e| format!("{}: {e}", shard.display()))? {
            count += 1;
            let to: Vec<&str> = m.envelope.recipients.iter().map(|r| r.address.as_str()).collect();
            println!("{} {:>8} <{}> -> {}", m.id, text.len(), m.envelope.from, to.join(", "));
            if with_text {
                println!("{}", String::from_utf8_lossy(&text));
            }
        }
    }
    eprintln!("{count} message{}", if count == 1 { "" } else { "s" });
    Ok(())
}
