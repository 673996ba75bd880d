//! `zero`: run zero's servers, clients and load generators from the command line.

mod bench;
mod bench_dns;
mod bench_echo;
mod bench_fix;
mod bench_mqtt;
mod bench_redis;
mod bench_sbe;
mod dns;
mod fix;
mod fix_send;
mod ftp;
mod ftp_client;
mod mdns;
mod mqtt;
mod ntp;
mod redis;
mod sbe;
mod serving;
mod smtp;
mod smtp_send;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// zero: application protocols on io_uring.
#[derive(Parser)]
#[command(name = "zero", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Servers: how long connections get to finish after SIGTERM or SIGINT (a second signal
    /// stops at once), in seconds.
    #[arg(long, global = true, default_value_t = 10.0, value_name = "SECS")]
    shutdown_grace: f64,
    /// How logs (on standard error, filtered by RUST_LOG) are written: `text` for people,
    /// `json` (one object per line) for log collectors.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// `--log-format`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Echo server.
    Echo {
        #[command(subcommand)]
        command: EchoCommand,
    },
    /// MQTT broker and tools.
    Mqtt {
        #[command(subcommand)]
        command: mqtt::MqttCommand,
    },
    /// Run one Redis command and print its reply (or, for SUBSCRIBE, the messages).
    Redis(redis::RedisArgs),
    /// SBE: decode messages with an XML message schema.
    Sbe {
        #[command(subcommand)]
        command: sbe::SbeCommand,
    },
    /// FTP: a server, and a client (ls, get, put, mirror).
    Ftp {
        #[command(subcommand)]
        command: ftp::FtpCommand,
    },
    /// SMTP: a server with a durable spool, and its queue.
    Smtp {
        #[command(subcommand)]
        command: smtp::SmtpCommand,
    },
    /// DNS lookups.
    Dns {
        #[command(subcommand)]
        command: dns::DnsCommand,
    },
    /// DNS-SD over multicast DNS: announce and browse services on a link.
    Mdns {
        #[command(subcommand)]
        command: mdns::MdnsCommand,
    },
    /// NTP queries (the clock is never set).
    Ntp {
        #[command(subcommand)]
        command: ntp::NtpCommand,
    },
    /// FIX sessions and tools.
    Fix {
        #[command(subcommand)]
        command: fix::FixCommand,
    },
    /// Load generators.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Ask a running zero server how it is (its --ops-socket), or tell it what to do.
    Status(serving::StatusArgs),
    /// Conformance suites: check any server against its protocol's normative statements.
    Conformance {
        #[command(subcommand)]
        command: ConformanceCommand,
    },
}

#[derive(Subcommand)]
enum ConformanceCommand {
    /// Check a DNS server (recursive or authoritative) for what stub resolvers rely on: UDP
    /// and TCP, EDNS, the question's case, unknown types, NXDOMAIN with SOA, truncation.
    Dns {
        /// The server.
        #[arg(long)]
        target: SocketAddr,
        /// A name with an A record.
        #[arg(long, default_value = "www.zero.test.")]
        name: String,
        /// A name whose TXT answer is over 512 bytes.
        #[arg(long, default_value = "big.zero.test.")]
        big: String,
        /// The zone a missing name is asked under.
        #[arg(long, default_value = "zero.test.")]
        zone: String,
        /// Run only the checks whose name contains this.
        #[arg(long)]
        only: Option<String>,
    },
    /// Check an MQTT 3.1.1 / 5.0 broker (it must accept anonymous clients); prints a table and
    /// fails if any check fails.
    Mqtt {
        /// The broker.
        #[arg(long)]
        target: SocketAddr,
        /// Run only the checks whose name contains this.
        #[arg(long)]
        only: Option<String>,
    },
    /// Check a FIX acceptor's session layer (this suite plays the initiator, CLIENT to BROKER
    /// by default, logging on with ResetSeqNumFlag=Y); prints a table and fails if any check
    /// fails.
    Fix {
        #[command(flatten)]
        to: fix::Counterparty,
        /// Run only the checks whose name contains this.
        #[arg(long)]
        only: Option<String>,
    },
    /// Check an SMTP server: command order, limits, pipelining, BDAT, every smuggling
    /// variant, STARTTLS injection, AUTH flows; prints a table and fails if any check fails.
    Smtp {
        /// The server.
        #[arg(long)]
        target: SocketAddr,
        /// A domain it accepts mail for from this client.
        #[arg(long, default_value = "zero.test")]
        domain: String,
        /// The CA its STARTTLS certificate is checked against (PEM); the system's otherwise.
        #[arg(long)]
        tls_ca: Option<std::path::PathBuf>,
        /// The name its certificate carries.
        #[arg(long, default_value = "mx.zero.test")]
        tls_name: String,
        /// A user it accepts (for the good AUTH check).
        #[arg(long, requires = "password")]
        user: Option<String>,
        /// That user's password.
        #[arg(long)]
        password: Option<String>,
        /// Run only the checks whose name contains this.
        #[arg(long)]
        only: Option<String>,
    },
    /// Check an FTP server: the commands, path escapes, bounce attempts, a data connection
    /// stolen from another local address, REST, ABOR; prints a table and fails if any check
    /// fails.
    Ftp {
        /// The server.
        #[arg(long)]
        target: SocketAddr,
        /// A user it lets in.
        #[arg(long, default_value = "anonymous")]
        user: String,
        /// That user's password.
        #[arg(long, default_value = "zero@")]
        password: String,
        /// A file in the user's root.
        #[arg(long)]
        file: String,
        /// A local copy of that file (the downloads are compared with it).
        #[arg(long)]
        local: std::path::PathBuf,
        /// A large file in the root (a transfer of it is aborted).
        #[arg(long)]
        big: String,
        /// A directory in the root, where the write checks write.
        #[arg(long)]
        dir: String,
        /// The user may not write (the write checks then fail, saying so).
        #[arg(long)]
        read_only: bool,
        /// Another local address of this machine: a data connection from it must be refused.
        #[arg(long, default_value = "127.0.0.2")]
        thief: std::net::IpAddr,
        /// Run the FTPS checks too (AUTH TLS, PROT P, session reuse, close_notify), checking
        /// the server's certificate for this name.
        #[arg(long)]
        tls_name: Option<String>,
        /// The CA that certificate is checked against (PEM); the system's otherwise.
        #[arg(long, requires = "tls_name")]
        tls_ca: Option<std::path::PathBuf>,
        /// Run only the checks whose name contains this.
        #[arg(long)]
        only: Option<String>,
    },
    /// Check zero-redis's client against redis-server: started on a spare port, or the server
    /// at --target (which must allow DEBUG; the restart check is skipped there).
    Redis {
        /// A server to use instead of starting one.
        #[arg(long)]
        target: Option<SocketAddr>,
        /// Run only the checks whose name contains this.
        #[arg(long)]
        only: Option<String>,
    },
}

#[derive(Subcommand)]
enum EchoCommand {
    /// Serve TCP echo on zero-core shards until killed.
    Serve(ServeArgs),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Drive any TCP echo server and report messages/s and latency.
    Echo(bench_echo::EchoLoad),
    /// Drive any MQTT 3.1.1 broker: deliveries/s, loss, latency, broker CPU and memory.
    Mqtt(bench_mqtt::MqttLoad),
    /// Drive any Redis server with zero-redis: operations/s and per client CPU-second.
    Redis(bench_redis::RedisLoad),
    /// Round trips NewOrderSingle -> ExecutionReport against a FIX acceptor: p50/p99/p99.9.
    Fix(bench_fix::FixLoad),
    /// Lookups of distinct names against any DNS server: queries/s, per CPU-second, latency.
    Dns(bench_dns::DnsLoad),
    /// An MDP 3.0 A/B stream through zero-sbe's channel and a naive decoder: ns per packet.
    Sbe(bench_sbe::SbeLoad),
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7000")]
    listen: SocketAddr,
    /// Shards (threads, one ring each) sharing the port through SO_REUSEPORT.
    #[arg(long, default_value_t = 1)]
    shards: usize,
    /// Pin shard i to CPU i (modulo the CPU count).
    #[arg(long)]
    pin: bool,
    /// Serve TLS. Without --tls-cert/--tls-key a self-signed development certificate for
    /// localhost and 127.0.0.1 is generated and its path printed (trust it explicitly).
    #[arg(long)]
    tls: bool,
    /// Once a completion is ready, wait up to this many microseconds for more before
    /// handling them (`Config::batch_wait`): fewer wake-ups, less CPU per message under a
    /// steady load, up to this much added latency.
    #[arg(long, value_name = "MICROS")]
    batch_wait_us: Option<u64>,
    /// Serve QUIC too, on the same port over UDP: each bidirectional stream is echoed on
    /// itself, each datagram as a datagram. Every shard serves it (datagrams are steered to
    /// their connection's shard by connection id). Uses the --tls-cert certificate, or a
    /// development one.
    #[arg(long)]
    quic: bool,
    /// PEM certificate chain (leaf first) for --tls.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// PEM private key for --tls.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// How the echo runs: `inline` (a zero-core handler on the shard), `async` (a Tokio task
    /// per connection on the main thread's runtime: `ZeroRuntime::run_async`) or `per-core`
    /// (a task per connection on its shard's thread: `ZeroRuntime::run_per_core`). The last
    /// two measure the Tokio bridge (bench/bridge.sh); they serve plain TCP only.
    #[arg(long, value_enum, default_value_t = EchoMode::Inline)]
    mode: EchoMode,
    #[command(flatten)]
    ops: serving::OpsArgs,
}

/// `zero echo serve --mode`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum EchoMode {
    Inline,
    Async,
    PerCore,
}

/// A TLS configuration, and what reloads its certificate from its files.
type ServerTlsParts = (Arc<zero_core::rustls::ServerConfig>, Option<zero_core::admin::Reload>);

/// The TLS server configuration `serve` asked for, if any.
fn server_tls(args: &ServeArgs) -> Result<Option<ServerTlsParts>, zero_core::IoError> {
    use zero_core::tls::{SelfSigned, ServerTls};
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => ServerTls::from_pem_files(cert, key)?,
        _ if args.tls || args.quic => {
            let dev = SelfSigned::generate(&["localhost", "127.0.0.1"])?;
            let path = std::env::temp_dir().join(format!("zero-dev-cert-{}.pem", std::process::id()));
            std::fs::write(&path, &dev.cert_pem).map_err(|e| zero_core::IoError::Config(e.to_string()))?;
            eprintln!("zero echo: development certificate (self-signed) in {}", path.display());
            dev.server()?
        }
        _ => return Ok(None),
    };
    let (config, handle) = tls.build()?;
    let reload = match (args.tls_cert.clone(), args.tls_key.clone()) {
        (Some(cert), Some(key)) => Some(Box::new(move || {
            handle.reload_files(&cert, &key).map_err(|e| e.to_string())?;
            Ok(format!("certificate reloaded from {}", cert.display()))
        }) as zero_core::admin::Reload),
        _ => None,
    };
    Ok(Some((config, reload)))
}

/// One connection's echo as a Tokio task.
async fn echo_task(mut conn: zero_core::runtime::Connection) {
    while let Some(bytes) = conn.recv().await {
        if conn.send(&bytes[..]).is_err() {
            return;
        }
    }
}

/// `zero echo serve --mode async|per-core`: the echo through the Tokio bridge.
fn serve_bridged(args: ServeArgs) -> Result<(), zero_core::IoError> {
    use zero_core::runtime::ZeroRuntime;
    if args.tls || args.tls_cert.is_some() || args.quic {
        return Err(zero_core::IoError::Config("--mode async and per-core serve plain TCP only".into()));
    }
    let mut config = zero_core::ClusterConfig::new(args.shards);
    if args.pin {
        config.cpus = (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect();
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| zero_core::IoError::Config(format!("a Tokio runtime: {e}")))?;
    rt.block_on(async {
        let runtime = ZeroRuntime::new(config);
        let running = match args.mode {
            EchoMode::PerCore => runtime.run_per_core(args.listen, echo_task)?,
            _ => runtime.run_async(args.listen, echo_task)?,
        };
        serving::start("echo", &args.ops, running.collector(), running.stopper(), None)
            .map_err(zero_core::IoError::Config)?;
        eprintln!(
            "zero echo: listening (TCP, {} mode) on {} with {} shard(s)",
            if args.mode == EchoMode::PerCore { "per-core" } else { "async" },
            args.listen,
            args.shards
        );
        running.join().await
    })
}

fn serve(args: ServeArgs) -> Result<(), zero_core::IoError> {
    serving::catch_signals().map_err(zero_core::IoError::Config)?;
    if args.mode != EchoMode::Inline {
        return serve_bridged(args);
    }
    let (tls, reload) = match server_tls(&args)? {
        Some((config, reload)) => (Some(config), reload),
        None => (None, None),
    };
    let quic = match (&tls, args.quic) {
        (Some(tls), true) => Some((
            zero_core::quic::server_config(tls, true)?,
            zero_core::quic::QuicGroup::new(args.listen, args.shards)?,
        )),
        _ => None,
    };
    let tcp_tls = args.tls || args.tls_cert.is_some();
    let tls = tls.filter(|_| tcp_tls);
    let mut config = zero_core::ClusterConfig::new(args.shards);
    config.io = zero_core::echo::Echo::config();
    config.io.batch_wait = args.batch_wait_us.map(Duration::from_micros);
    if args.pin {
        config.cpus = (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect();
    }
    let listen = args.listen;
    let cluster = zero_core::IoCluster::start(config, move |shard, io| {
        if let Some((server, group)) = &quic {
            group.bind(shard, io, Some(server.clone()))?;
        }
        let mut opts = zero_core::ListenOptions::default();
        opts.reuse_port = true;
        match &tls {
            Some(tls) => io.tls_listen_with(listen, &opts, tls.clone())?,
            None => io.tcp_listen_with(listen, &opts)?,
        };
        Ok(zero_core::echo::Echo::default())
    })?;
    serving::start("echo", &args.ops, cluster.collector(), cluster.stopper(), reload)
        .map_err(zero_core::IoError::Config)?;
    tracing::info!(%listen, shards = args.shards, "echo server running");
    let kind = match (tcp_tls, args.quic) {
        (true, true) => "TLS, and QUIC",
        (true, false) => "TLS",
        (false, true) => "TCP, and QUIC",
        (false, false) => "TCP",
    };
    eprintln!("zero echo: listening ({kind}) on {listen} with {} shard(s)", args.shards);
    cluster.join()
}

/// A seed for a machine's randomness (query ids, probe delays), different in every process.
pub(crate) fn random_seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::process::id())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    match Duration::try_from_secs_f64(cli.shutdown_grace) {
        Ok(grace) => serving::set_grace(grace),
        Err(_) => {
            eprintln!("zero: --shutdown-grace must be a number of seconds, not {}", cli.shutdown_grace);
            return ExitCode::from(2);
        }
    }
    let result = match cli.command {
        Command::Echo { command: EchoCommand::Serve(args) } => serve(args).map_err(|e| e.to_string()),
        Command::Mqtt { command } => mqtt::run(command),
        Command::Status(args) => serving::status(args),
        Command::Redis(args) => redis::run(args),
        Command::Smtp { command } => smtp::run(command),
        Command::Ftp { command } => ftp::run(command),
        Command::Sbe { command } => sbe::run(command),
        Command::Fix { command } => fix::run(command),
        // dig's exit codes: 0 for any answer (NXDOMAIN included), 9 for no reply.
        Command::Dns { command } => match dns::run(command) {
            Ok(code) => return code,
            Err(e) => Err(e),
        },
        Command::Mdns { command } => mdns::run(command),
        Command::Ntp { command } => match ntp::run(command) {
            Ok(code) => return code,
            Err(e) => Err(e),
        },
        Command::Bench { command: BenchCommand::Echo(load) } => bench_echo::run(load),
        Command::Bench { command: BenchCommand::Mqtt(load) } => bench_mqtt::run(load),
        Command::Bench { command: BenchCommand::Redis(load) } => bench_redis::run(load),
        Command::Bench { command: BenchCommand::Fix(load) } => bench_fix::run(load),
        Command::Bench { command: BenchCommand::Dns(load) } => bench_dns::run(load),
        Command::Bench { command: BenchCommand::Sbe(load) } => bench_sbe::run(load),
        Command::Conformance { command: ConformanceCommand::Redis { target, only } } => {
            let outcomes = match target {
                Some(addr) => Ok(zero_conformance::redis::run_against(addr, only.as_deref())),
                None => zero_conformance::redis::run(only.as_deref()),
            };
            outcomes.and_then(|outcomes| {
                let title = match target {
                    Some(addr) => format!("zero-redis against {addr}"),
                    None => "zero-redis against redis-server (started by the suite)".to_string(),
                };
                match zero_conformance::print_table(&title, &outcomes) {
                    0 => Ok(()),
                    n => Err(format!("{n} check(s) failed")),
                }
            })
        }
        Command::Conformance { command: ConformanceCommand::Fix { to, only } } => {
            let ids = zero_conformance::fix::Ids {
                begin_string: to.begin_string,
                sender: to.sender,
                target: to.target_comp_id,
            };
            let outcomes = zero_conformance::fix::run(to.target, &ids, only.as_deref());
            match zero_conformance::print_table(
                &format!("FIX session conformance of {}", to.target),
                &outcomes,
            ) {
                0 => Ok(()),
                n => Err(format!("{n} check(s) failed")),
            }
        }
        Command::Conformance { command: ConformanceCommand::Dns { target, name, big, zone, only } } => {
            let probe = zero_conformance::dns::Probe { name, big, zone };
            let outcomes = zero_conformance::dns::run(target, &probe, only.as_deref());
            match zero_conformance::print_table(&format!("DNS server conformance of {target}"), &outcomes) {
                0 => Ok(()),
                n => Err(format!("{n} check(s) failed")),
            }
        }
        Command::Conformance {
            command: ConformanceCommand::Smtp { target, domain, tls_ca, tls_name, user, password, only },
        } => (|| {
            let ca =
                tls_ca.map(|p| std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))).transpose()?;
            let tls = zero_conformance::tls_config(ca.as_deref())?;
            let cx = zero_conformance::smtp::Ctx {
                target,
                domain,
                tls: Some((tls, tls_name)),
                auth: user.zip(password),
            };
            let outcomes = zero_conformance::smtp::run(&cx, only.as_deref());
            match zero_conformance::print_table(&format!("SMTP conformance of {target}"), &outcomes) {
                0 => Ok(()),
                n => Err(format!("{n} check(s) failed")),
            }
        })(),
        Command::Conformance {
            command:
                ConformanceCommand::Ftp {
                    target,
                    user,
                    password,
                    file,
                    local,
                    big,
                    dir,
                    read_only,
                    thief,
                    tls_name,
                    tls_ca,
                    only,
                },
        } => (|| {
            let content = std::fs::read(&local).map_err(|e| format!("{}: {e}", local.display()))?;
            let ca =
                tls_ca.map(|p| std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))).transpose()?;
            let tls = match tls_name {
                Some(name) => Some((zero_conformance::tls_config(ca.as_deref())?, name)),
                None => None,
            };
            let cx = zero_conformance::ftp::Ctx {
                target,
                user,
                password,
                file: (file, content),
                big,
                dir,
                writable: !read_only,
                thief: Some(thief),
                tls,
            };
            let outcomes = zero_conformance::ftp::run(&cx, only.as_deref());
            match zero_conformance::print_table(&format!("FTP conformance of {target}"), &outcomes) {
                0 => Ok(()),
                n => Err(format!("{n} check(s) failed")),
            }
        })(),
        Command::Conformance { command: ConformanceCommand::Mqtt { target, only } } => {
            let outcomes = zero_conformance::mqtt::run(target, only.as_deref());
            match zero_conformance::print_table(&format!("MQTT conformance of {target}"), &outcomes) {
                0 => Ok(()),
                n => Err(format!("{n} check(s) failed")),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zero: {e}");
            ExitCode::FAILURE
        }
    }
}
