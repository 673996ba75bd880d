//! `zero smtp serve` (an SMTP server spooling every accepted message to disk before its
//! 250, or a sink), `zero smtp relay` (the same, delivering onward, DKIM-signing what it
//! sends for its domains), `zero smtp dkim-record` and `zero smtp queue list` (what a spool
//! holds).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use serde::Deserialize;
use zero_core::journal::Fsync;
use zero_core::{ClusterConfig, IoCluster, ListenOptions};
use zero_dns::ResolverConfig;
use zero_smtp::client::{TlsClient, TlsPolicy};
use zero_smtp::codec::BareLineEnding;
use zero_smtp::dkim::{Signer, SigningKey};
use zero_smtp::relay::{Relay, RelayConfig, Route, Schedule};
use zero_smtp::server::{Network, Server, ServerConfig, Sink};
use zero_smtp::spool::Spool;

/// `zero smtp` commands.
#[derive(Subcommand, Debug)]
pub enum SmtpCommand {
    /// Accept mail: every message is in the spool (fsynced) before its 250; `--sink` keeps
    /// nothing.
    Serve(Box<ServeArgs>),
    /// Accept mail and deliver it onward (routes or MX), retrying, bouncing what fails:
    /// everything from a TOML file (see `zero-cli/tests/smtp/relay.toml`).
    Relay {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Send one message (built, or a file's text) and print each recipient's reply, like
    /// swaks.
    Send(Box<crate::smtp_send::SendArgs>),
    /// The DNS TXT record publishing a DKIM key's public half (for
    /// `SELECTOR._domainkey.DOMAIN`).
    DkimRecord {
        /// The private key (PEM: RSA in PKCS#8 or PKCS#1, Ed25519 in PKCS#8, as `openssl
        /// genpkey` writes them).
        #[arg(long)]
        key: PathBuf,
    },
    /// What a spool holds, and what to do with it.
    Queue {
        #[command(subcommand)]
        command: QueueCommand,
    },
}

/// A relay shard's control socket, in its spool directory.
const CONTROL: &str = "control.sock";

/// `zero smtp queue` commands.
#[derive(Subcommand, Debug)]
pub enum QueueCommand {
    /// Ask the running relay to try every queued message now.
    Flush {
        /// The spool directory.
        #[arg(long)]
        spool: PathBuf,
    },
    /// Delete messages without a bounce (through the running relay, or in the spool
    /// itself when nothing runs on it).
    Delete {
        /// The spool directory.
        #[arg(long)]
        spool: PathBuf,
        /// Queue ids, as `queue list` shows them.
        #[arg(required = true)]
        ids: Vec<String>,
    },
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
    #[command(flatten)]
    ops: crate::serving::OpsArgs,
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
        SmtpCommand::Relay { config } => relay(&config),
        SmtpCommand::Send(args) => crate::smtp_send::send(*args),
        SmtpCommand::DkimRecord { key } => {
            println!("{}", dkim_key(&key)?.dns_record());
            Ok(())
        }
        SmtpCommand::Queue { command: QueueCommand::List { spool, text } } => list(&spool, text),
        SmtpCommand::Queue { command: QueueCommand::Flush { spool } } => flush(&spool),
        SmtpCommand::Queue { command: QueueCommand::Delete { spool, ids } } => delete(&spool, &ids),
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
    let plan = Plan {
        server: config,
        tls: args.tls_cert.clone().zip(args.tls_key.clone()),
        users: args.users.clone(),
        trusted: args.trusted.clone(),
        listen: args.listen,
        listen_tls: args.listen_tls,
        spool: args.spool.clone(),
        fsync: !args.no_fsync,
        shards: args.shards,
        relay: None,
        check_inbound: None,
        ops: args.ops.clone(),
    };
    start(plan)
}

/// `zero smtp relay`'s file.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RelayFile {
    hostname: String,
    spool: PathBuf,
    listen: SocketAddr,
    listen_tls: Option<SocketAddr>,
    #[serde(default)]
    accept_domains: Vec<String>,
    #[serde(default = "loopback")]
    trusted: Vec<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    users: Option<PathBuf>,
    max_size: Option<usize>,
    shards: Option<usize>,
    /// Name servers for MX lookups (`/etc/resolv.conf`'s by default).
    dns: Option<Vec<SocketAddr>>,
    #[serde(default)]
    queue: QueueFile,
    #[serde(default, rename = "route")]
    routes: Vec<RouteFile>,
    #[serde(default)]
    dkim: Vec<DkimFile>,
    /// Check mail from outside with SPF and DKIM (an Authentication-Results header).
    #[serde(default)]
    check_inbound: bool,
}

/// A DKIM key: mail from trusted or authenticated clients with `From:` in `domain` is
/// signed with it.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct DkimFile {
    domain: String,
    selector: String,
    /// The private key (PEM).
    key: PathBuf,
}

fn dkim_key(path: &std::path::Path) -> Result<SigningKey, String> {
    let pem = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    SigningKey::from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))
}

fn loopback() -> Vec<String> {
    vec!["127.0.0.0/8".into(), "::1".into()]
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct QueueFile {
    first_retry_secs: Option<u64>,
    max_retry_secs: Option<u64>,
    lifetime_secs: Option<u64>,
    warn_after_secs: Option<u64>,
    per_destination: Option<usize>,
    per_connection: Option<usize>,
    mx_port: Option<u16>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RouteFile {
    domain: String,
    #[serde(default)]
    hosts: Vec<SocketAddr>,
    /// Deliver nowhere (every recipient counts as delivered).
    #[serde(default)]
    discard: bool,
    /// `none`, `opportunistic` or `required`.
    #[serde(default = "no_tls")]
    tls: String,
    /// The CA the hosts' certificates are checked against (PEM).
    tls_ca: Option<PathBuf>,
    /// The name their certificates must carry.
    server_name: Option<String>,
    auth_user: Option<String>,
    auth_password: Option<String>,
}

fn no_tls() -> String {
    "none".into()
}

fn relay(path: &std::path::Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file: RelayFile = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut server = ServerConfig::new(&file.hostname);
    server.accept_domains = file.accept_domains.clone();
    if let Some(max) = file.max_size {
        server.max_size = max;
    }
    for d in &file.dkim {
        server.dkim.push(Signer::new(&d.domain, &d.selector, dkim_key(&d.key)?));
    }
    let dns = match &file.dns {
        Some(servers) => ResolverConfig::with_servers(servers),
        None => {
            ResolverConfig::from_resolv_conf(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default())
        }
    };
    let check_inbound = file.check_inbound.then(|| dns.clone());
    let mut relay = RelayConfig::new(&file.hostname, dns);
    let q = &file.queue;
    let secs = |v: Option<u64>, d: Duration| v.map_or(d, Duration::from_secs);
    relay.schedule = Schedule {
        first_retry: secs(q.first_retry_secs, relay.schedule.first_retry),
        max_retry: secs(q.max_retry_secs, relay.schedule.max_retry),
        lifetime: secs(q.lifetime_secs, relay.schedule.lifetime),
        warn_after: q.warn_after_secs.map(Duration::from_secs).or(relay.schedule.warn_after),
    };
    relay.per_destination = q.per_destination.unwrap_or(relay.per_destination);
    relay.per_connection = q.per_connection.unwrap_or(relay.per_connection);
    relay.mx_port = q.mx_port.unwrap_or(relay.mx_port);
    for r in &file.routes {
        let tls_client = || -> Result<TlsClient, String> {
            let name =
                r.server_name.clone().ok_or_else(|| format!("route {}: TLS needs server_name", r.domain))?;
            let tls = match &r.tls_ca {
                Some(ca) => {
                    let pem = std::fs::read(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
                    zero_core::tls::ClientTls::with_ca_pem(&pem)
                }
                None => zero_core::tls::ClientTls::system_roots(),
            };
            let config = tls.and_then(|t| t.build()).map_err(|e| format!("route {}: {e}", r.domain))?;
            Ok(TlsClient { server_name: name, config })
        };
        let tls = match r.tls.as_str() {
            "none" => TlsPolicy::Never,
            "opportunistic" => TlsPolicy::Opportunistic(tls_client()?),
            "required" => TlsPolicy::Required(tls_client()?),
            other => {
                return Err(format!(
                    "route {}: tls is none, opportunistic or required, not {other}",
                    r.domain
                ))
            }
        };
        let auth = r.auth_user.clone().zip(r.auth_password.clone());
        if r.hosts.is_empty() != r.discard {
            return Err(format!("route {}: give hosts, or discard = true", r.domain));
        }
        relay.routes.push(Route {
            domain: r.domain.clone(),
            hosts: r.hosts.clone(),
            tls,
            auth,
            discard: r.discard,
        });
    }
    let plan = Plan {
        server,
        tls: file.tls_cert.clone().zip(file.tls_key.clone()),
        users: file.users.clone(),
        trusted: file.trusted.clone(),
        listen: file.listen,
        listen_tls: file.listen_tls,
        spool: Some(file.spool.clone()),
        fsync: true,
        shards: file.shards,
        relay: Some(relay),
        check_inbound,
        ops: crate::serving::OpsArgs::default(),
    };
    start(plan)
}

/// What to run on the cluster.
struct Plan {
    server: ServerConfig,
    tls: Option<(PathBuf, PathBuf)>,
    users: Option<PathBuf>,
    trusted: Vec<String>,
    listen: SocketAddr,
    listen_tls: Option<SocketAddr>,
    spool: Option<PathBuf>,
    fsync: bool,
    shards: Option<usize>,
    relay: Option<RelayConfig>,
    /// Check inbound mail with SPF and DKIM, resolving through this.
    check_inbound: Option<ResolverConfig>,
    /// Metrics and the ops socket.
    ops: crate::serving::OpsArgs,
}

fn start(plan: Plan) -> Result<(), String> {
    let mut config = plan.server;
    if let Some((cert, key)) = &plan.tls {
        let tls = zero_core::tls::ServerTls::from_pem_files(cert, key)
            .and_then(|t| t.build())
            .map_err(|e| e.to_string())?;
        config.tls = Some(tls.0);
    }
    let users: Arc<HashMap<String, String>> = Arc::new(match &plan.users {
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
    config.auth = plan.users.is_some();
    let trusted: Vec<Network> = plan.trusted.iter().map(|t| t.parse()).collect::<Result<_, _>>()?;
    let shards = plan.shards.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // Every shard listens on the same port: a port-0 address is given one first.
    let mut reserved = zero_core::Reserved::default();
    let listen = reserved.port(plan.listen).map_err(|e| e.to_string())?;
    let listen_tls = plan.listen_tls.map(|a| reserved.port(a)).transpose().map_err(|e| e.to_string())?;
    if listen_tls.is_some() && config.tls.is_none() {
        return Err("a TLS listener needs a certificate and key".into());
    }
    let (spool, fsync, relay, check_inbound) =
        (plan.spool.clone(), plan.fsync, plan.relay, plan.check_inbound);
    let relay_note = relay.is_some();
    let failure: Arc<Mutex<Option<String>>> = Arc::default();
    let failed = failure.clone();
    crate::serving::catch_signals()?;
    let started = IoCluster::start(ClusterConfig::new(shards), move |shard, io| {
        let mut opts = ListenOptions::default();
        opts.reuse_port = true;
        let fsync = if fsync { Fsync::Always } else { Fsync::Never };
        let check_users = users.clone();
        let authenticator = Box::new(move |c: &zero_smtp::server::Credentials| {
            check_users.get(&c.username).is_some_and(|p| *p == c.secret)
        });
        let fail = |what: String| {
            *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(what.clone());
            zero_core::IoError::Config(what)
        };
        let handler = match &spool {
            Some(dir) => {
                let dir = dir.join(format!("shard-{shard}"));
                let spool = Spool::open(&dir, fsync, Instant::now())
                    .map_err(|e| fail(format!("spool {}: {e}", dir.display())))?;
                if !spool.is_empty() {
                    tracing::info!(shard, messages = spool.len(), "spool holds messages from before");
                }
                let mut server = Server::new(config.clone(), spool)
                    .with_trusted(trusted.clone())
                    .with_authenticator(authenticator);
                if let Some(dns) = &check_inbound {
                    server = server.with_inbound_checks(dns.clone());
                }
                match &relay {
                    Some(r) => {
                        let mut relay = Box::new(Relay::new(server, r.clone(), Instant::now()));
                        relay.start(io);
                        let control = dir.join(CONTROL);
                        relay
                            .listen_control(io, &control)
                            .map_err(|e| fail(format!("control socket {}: {e}", control.display())))?;
                        Either::Relay(relay)
                    }
                    None => Either::Spool(server),
                }
            }
            None => Either::Sink(
                Server::new(config.clone(), Sink::default())
                    .with_trusted(trusted.clone())
                    .with_authenticator(authenticator),
            ),
        };
        let mut handler = handler;
        handler.listen(io, listen, listen_tls, &opts)?;
        Ok(handler)
    });
    let cluster = started
        .map_err(|e| failure.lock().unwrap_or_else(|p| p.into_inner()).take().unwrap_or(e.to_string()))?;
    drop(reserved);
    crate::serving::start("smtp", &plan.ops, cluster.collector(), cluster.stopper(), None)?;
    let tls_note = listen_tls.map(|a| format!(", TLS on {a}")).unwrap_or_default();
    eprintln!(
        "zero smtp: listening on {listen}{tls_note} ({shards} shard{}, {})",
        if shards == 1 { "" } else { "s" },
        match (&plan.spool, relay_note) {
            (Some(dir), true) => format!("relaying, spool {}", dir.display()),
            (Some(dir), false) => format!("spool {}", dir.display()),
            (None, _) => "sink".into(),
        }
    );
    cluster.join().map_err(|e| e.to_string())
}

/// A spooling, sink or relaying server: one handler type for the cluster.
enum Either {
    Spool(Server<Spool>),
    Sink(Server<Sink>),
    Relay(Box<Relay>),
}

impl Either {
    fn listen(
        &mut self,
        io: &mut zero_core::Ops,
        addr: SocketAddr,
        tls: Option<SocketAddr>,
        opts: &ListenOptions,
    ) -> zero_core::Result<()> {
        macro_rules! on {
            ($s:expr) => {{
                $s.listen(io, addr, opts)?;
                if let Some(tls) = tls {
                    $s.listen_tls(io, tls, opts)?;
                }
            }};
        }
        match self {
            Either::Spool(s) => on!(s),
            Either::Sink(s) => on!(s),
            Either::Relay(r) => on!(r.server()),
        }
        Ok(())
    }
}

impl zero_core::Handler for Either {
    fn on_event(&mut self, ops: &mut zero_core::Ops, event: zero_core::Event<'_>) {
        match self {
            Either::Spool(s) => s.on_event(ops, event),
            Either::Sink(s) => s.on_event(ops, event),
            Either::Relay(r) => r.on_event(ops, event),
        }
    }

    fn on_batch_end(&mut self, ops: &mut zero_core::Ops) {
        match self {
            Either::Spool(s) => s.on_batch_end(ops),
            Either::Sink(s) => s.on_batch_end(ops),
            Either::Relay(r) => r.on_batch_end(ops),
        }
    }

    fn on_drain(&mut self, ops: &mut zero_core::Ops) {
        match self {
            Either::Spool(s) => s.on_drain(ops),
            Either::Sink(s) => s.on_drain(ops),
            Either::Relay(r) => r.on_drain(ops),
        }
    }
}

/// The shard directories of a spool.
fn shards(dir: &std::path::Path) -> Result<Vec<PathBuf>, String> {
    let mut shards: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("shard-")))
        .collect();
    shards.sort();
    Ok(shards)
}

/// Sends `command` to a shard's relay: its reply, or `None` when no relay listens there.
fn control(shard: &std::path::Path, command: &str) -> Result<Option<String>, String> {
    use std::io::{BufRead, Write};
    let Ok(mut stream) = std::os::unix::net::UnixStream::connect(shard.join(CONTROL)) else {
        return Ok(None);
    };
    let said = |e: std::io::Error| format!("{}: {e}", shard.display());
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(said)?;
    stream.write_all(format!("{command}\n").as_bytes()).map_err(said)?;
    let mut reply = String::new();
    std::io::BufReader::new(stream).read_line(&mut reply).map_err(said)?;
    Ok(Some(reply.trim_end().to_string()))
}

fn flush(dir: &std::path::Path) -> Result<(), String> {
    let mut reached = 0;
    for shard in shards(dir)? {
        if let Some(reply) = control(&shard, "flush")? {
            reached += 1;
            eprintln!("{}: {reply}", shard.display());
        }
    }
    if reached == 0 {
        return Err(format!("no relay is running on {}", dir.display()));
    }
    Ok(())
}

fn delete(dir: &std::path::Path, ids: &[String]) -> Result<(), String> {
    let shards = shards(dir)?;
    'ids: for id in ids {
        for shard in &shards {
            let reply = match control(shard, &format!("delete {id}"))? {
                Some(reply) => reply,
                // Nothing runs on this shard: the spool is ours to change.
                None => delete_offline(shard, id)?,
            };
            if reply.starts_with("ok") {
                eprintln!("{id}: deleted");
                continue 'ids;
            }
        }
        return Err(format!("{id}: no such message in {}", dir.display()));
    }
    Ok(())
}

/// Deletes `id` from a shard's spool directly (no relay holds it).
fn delete_offline(shard: &std::path::Path, id: &str) -> Result<String, String> {
    let Ok(n) = u64::from_str_radix(id, 16) else { return Err(format!("{id} is not a queue id")) };
    let mut spool =
        Spool::open(shard, Fsync::Always, Instant::now()).map_err(|e| format!("{}: {e}", shard.display()))?;
    let id = zero_smtp::spool::MessageId(n);
    if spool.get(id).is_none() {
        return Ok("error not here".into());
    }
    spool.done(id);
    spool.commit(Instant::now()).map_err(|e| format!("{}: {e}", shard.display()))?;
    Ok("ok deleted".into())
}

fn list(dir: &std::path::Path, with_text: bool) -> Result<(), String> {
    let shards = shards(dir)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The example the help points at stays a valid file, every key in it known.
    #[test]
    fn the_example_relay_file_reads() {
        let file: RelayFile =
            toml::from_str(include_str!("../tests/smtp/relay.toml")).expect("the example reads");
        assert_eq!(file.routes.len(), 2);
        assert_eq!(file.dkim.len(), 1);
        assert!(file.check_inbound && file.routes[1].discard);
    }
}
