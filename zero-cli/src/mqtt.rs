//! `zero mqtt ...`: the MQTT broker and its password tool.

use std::io::{BufRead, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use zero_core::tls::ClientTls;
use zero_mqtt::broker::{Anonymous, BrokerConfig};
use zero_mqtt::client::blocking::BlockingClient;
use zero_mqtt::client::driver::Target;
use zero_mqtt::client::ClientConfig;
use zero_mqtt::codec::{Protocol, QoS, SubOptions};
use zero_mqtt::server::{self, Listeners};

/// MQTT commands.
#[derive(Subcommand)]
pub enum MqttCommand {
    /// Run the MQTT 3.1.1 / 5.0 broker until killed.
    Broker(BrokerArgs),
    /// Add or replace a user in a password file (PBKDF2-SHA512, mosquitto's format).
    Passwd(PasswdArgs),
    /// Publish messages (waits for the broker's acknowledgement at QoS 1 and 2).
    Pub(PubArgs),
    /// Subscribe and print the messages that arrive.
    Sub(SubArgs),
}

/// How `pub` and `sub` reach the broker.
#[derive(Args)]
pub struct ConnectArgs {
    /// Broker host name or address.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Broker port; default 1883, or 8883 with --tls.
    #[arg(short, long)]
    port: Option<u16>,
    /// Client identifier; default zero-<pid>.
    #[arg(short = 'i', long)]
    id: Option<String>,
    /// MQTT version: 5, 311 (3.1.1) or 31 (3.1).
    #[arg(short = 'V', long, default_value = "5", value_parser = ["5", "311", "31"])]
    protocol: String,
    /// User name.
    #[arg(short, long)]
    username: Option<String>,
    /// Password.
    #[arg(short = 'P', long)]
    password: Option<String>,
    /// Keep-alive, seconds.
    #[arg(short, long, default_value_t = 60)]
    keepalive: u16,
    /// Resume or keep a session (clean start off); MQTT 5 keeps it this many seconds
    /// after the connection ends.
    #[arg(short = 'x', long)]
    session_expiry: Option<u32>,
    /// Connect with TLS (mqtts), verifying the broker against --cafile or the system roots.
    #[arg(long)]
    tls: bool,
    /// CA bundle (PEM) for --tls.
    #[arg(long)]
    cafile: Option<PathBuf>,
}

/// `zero mqtt pub` options.
#[derive(Args)]
pub struct PubArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Topic name.
    #[arg(short, long)]
    topic: String,
    /// The message; with neither -m nor -l an empty message is sent.
    #[arg(short, long, conflicts_with = "lines")]
    message: Option<String>,
    /// Send each line of standard input as a message.
    #[arg(short, long)]
    lines: bool,
    /// QoS 0, 1 or 2.
    #[arg(short, long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    qos: u8,
    /// Retain the message.
    #[arg(short, long)]
    retain: bool,
}

/// `zero mqtt sub` options.
#[derive(Args)]
pub struct SubArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Topic filter; repeat for more.
    #[arg(short, long, required = true)]
    topic: Vec<String>,
    /// Subscription QoS 0, 1 or 2.
    #[arg(short, long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    qos: u8,
    /// Exit after this many messages.
    #[arg(short = 'C', long)]
    count: Option<usize>,
    /// Exit after this many seconds without a message.
    #[arg(short = 'W', long)]
    timeout: Option<u64>,
    /// Print the topic before each payload.
    #[arg(short, long)]
    verbose: bool,
}

/// `zero mqtt broker` options.
#[derive(Args)]
pub struct BrokerArgs {
    /// Plain MQTT listener; repeat for more.
    #[arg(long, default_values = ["127.0.0.1:1883"])]
    listen: Vec<SocketAddr>,
    /// MQTT over TLS listener (needs --cert and --key).
    #[arg(long, requires_all = ["cert", "key"])]
    tls_listen: Option<SocketAddr>,
    /// PEM certificate chain for --tls-listen.
    #[arg(long)]
    cert: Option<PathBuf>,
    /// PEM private key for --tls-listen.
    #[arg(long)]
    key: Option<PathBuf>,
    /// Configuration file (`name value` lines; see `BrokerConfig::load`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Persistence directory (the configuration's `persistence_location` wins).
    #[arg(long, default_value = "zero-data")]
    data: PathBuf,
    /// Keep nothing across restarts (the configuration's `persistence true` wins).
    #[arg(long)]
    no_persistence: bool,
    /// Shards (threads, one per core); default: one per available CPU. With persistence, keep
    /// the same count across restarts.
    #[arg(long)]
    shards: Option<usize>,
    /// Pin shard i to CPU cpus[i % len] (comma-separated); default: unpinned.
    #[arg(long, value_delimiter = ',')]
    cpus: Vec<usize>,
    /// MQTT over WebSocket listener (subprotocol `mqtt`); repeat for more.
    #[arg(long)]
    ws_listen: Vec<SocketAddr>,
    /// MQTT over secure WebSocket listener (needs --cert and --key); repeat for more.
    #[arg(long, requires_all = ["cert", "key"])]
    wss_listen: Vec<SocketAddr>,
    /// Fault injection for tests: a PUBLISH to this topic panics its shard.
    #[arg(long, hide = true)]
    fault_panic_topic: Option<String>,
    #[command(flatten)]
    ops: crate::serving::OpsArgs,
}

/// `zero mqtt passwd` options.
#[derive(Args)]
pub struct PasswdArgs {
    /// The password file (created if missing).
    file: PathBuf,
    /// The user name.
    user: String,
    /// The password; read from standard input when absent.
    #[arg(long)]
    password: Option<String>,
}

/// Runs an MQTT command.
pub fn run(command: MqttCommand) -> Result<(), String> {
    match command {
        MqttCommand::Broker(args) => broker(args).map_err(|e| e.to_string()),
        MqttCommand::Passwd(args) => passwd(args),
        MqttCommand::Pub(args) => publish(args).map_err(|e| e.to_string()),
        MqttCommand::Sub(args) => subscribe(args).map_err(|e| e.to_string()),
    }
}

fn qos(level: u8) -> QoS {
    QoS::from_bits(level).expect("clap checked the range")
}

/// Connects as `args` say.
fn connect(args: &ConnectArgs) -> Result<BlockingClient, zero_mqtt::Error> {
    let port = args.port.unwrap_or(if args.tls { 8883 } else { 1883 });
    let addr = (args.host.as_str(), port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| zero_mqtt::Error::Resolve(format!("{}:{port}", args.host)))?;
    let tls = if args.tls {
        let tls = match &args.cafile {
            Some(ca) => ClientTls::with_ca_file(ca)?,
            None => ClientTls::system_roots()?,
        };
        Some((args.host.clone(), tls.build()?))
    } else {
        None
    };
    let mut config = ClientConfig::default();
    config.protocol = match args.protocol.as_str() {
        "311" => Protocol::V311,
        "31" => Protocol::V31,
        _ => Protocol::V5,
    };
    config.client_id = args.id.clone().unwrap_or_else(|| format!("zero-{}", std::process::id()));
    config.username = args.username.clone();
    config.password = args.password.clone().map(String::into_bytes);
    config.keep_alive = args.keepalive;
    if let Some(expiry) = args.session_expiry {
        config.clean_start = false;
        config.session_expiry = expiry;
    }
    let (client, _) = BlockingClient::connect(Target { addr, tls, socks5: None }, config)?;
    Ok(client)
}

fn publish(args: PubArgs) -> Result<(), zero_mqtt::Error> {
    let client = connect(&args.connect)?;
    let (q, retain) = (qos(args.qos), args.retain);
    if args.lines {
        for line in std::io::stdin().lock().lines() {
            let line = line.map_err(|source| zero_mqtt::Error::Read { file: "stdin".into(), source })?;
            client.publish(&args.topic, line.as_bytes(), q, retain)?;
        }
    } else {
        client.publish(&args.topic, args.message.unwrap_or_default().as_bytes(), q, retain)?;
    }
    client.disconnect();
    Ok(())
}

fn subscribe(args: SubArgs) -> Result<(), zero_mqtt::Error> {
    let client = connect(&args.connect)?;
    let filters: Vec<(&str, SubOptions)> =
        args.topic.iter().map(|t| (t.as_str(), SubOptions::qos(qos(args.qos)))).collect();
    for (reason, (filter, _)) in client.subscribe(&filters)?.into_iter().zip(&filters) {
        if reason.is_error() {
            eprintln!("zero mqtt: subscription to {filter} refused: {reason}");
        }
    }
    let mut out = std::io::stdout().lock();
    let mut received = 0;
    while args.count.is_none_or(|c| received < c) {
        let Some(m) = client.recv(args.timeout.map(Duration::from_secs)) else { break };
        received += 1;
        let payload = String::from_utf8_lossy(&m.payload);
        let line = if args.verbose { format!("{} {payload}", m.topic) } else { payload.into_owned() };
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            break; // the reader went away
        }
    }
    client.disconnect();
    Ok(())
}

fn broker(args: BrokerArgs) -> Result<(), zero_mqtt::Error> {
    let mut config = BrokerConfig::default();
    config.persistence = !args.no_persistence;
    config.persistence_location = args.data.clone();
    config.panic_on_topic = args.fault_panic_topic.clone();
    if let Some(file) = &args.config {
        config.load(file)?;
    }
    if config.persistence {
        eprintln!(
            "zero mqtt: persistence in {} (fsync {:?})",
            config.persistence_location.display(),
            config.fsync
        );
    }
    let mut listeners = Listeners { tcp: args.listen.clone(), ..Listeners::default() };
    let (tls, reload) = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => {
            let (config, handle) = zero_core::tls::ServerTls::from_pem_files(cert, key)?.build()?;
            let (cert, key) = (cert.clone(), key.clone());
            let reload: zero_core::admin::Reload = Box::new(move || {
                handle.reload_files(&cert, &key).map_err(|e| e.to_string())?;
                Ok(format!("certificate reloaded from {}", cert.display()))
            });
            (Some(config), Some(reload))
        }
        _ => (None, None),
    };
    if let (Some(addr), Some(tls)) = (args.tls_listen, &tls) {
        listeners.tls.push((addr, tls.clone()));
    }
    listeners.ws.extend(args.ws_listen.iter().chain(&config.ws_listeners).map(|&a| (a, None)));
    for &addr in args.wss_listen.iter().chain(&config.wss_listeners) {
        let Some(tls) = &tls else {
            return Err(zero_mqtt::Error::Io(zero_core::IoError::Config(format!(
                "wss listener {addr} needs a certificate: give --cert and --key"
            ))));
        };
        listeners.ws.push((addr, Some(tls.clone())));
    }
    if let Some(origins) = &config.ws_origins {
        let mut ws = server::websocket_defaults();
        ws.origins = Some(origins.clone());
        listeners.websocket = Some(std::sync::Arc::new(ws));
    }
    let remote = (listeners.tcp.iter())
        .chain(listeners.tls.iter().map(|(a, _)| a))
        .chain(listeners.ws.iter().map(|(a, _)| a))
        .any(|a| !a.ip().is_loopback());
    if remote && config.anonymous == Anonymous::LoopbackOnly && config.passwords.is_none() {
        tracing::warn!("listening beyond loopback without a password_file: remote clients will be refused (anonymous clients are accepted on loopback only; set password_file or allow_anonymous)");
        eprintln!("zero mqtt: warning: anonymous clients are accepted from loopback only; remote clients need a password_file user (or allow_anonymous true)");
    }
    let shards = args.shards.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    crate::serving::catch_signals().map_err(zero_core::IoError::Config)?;
    let broker = server::start_cluster(config, &listeners, shards, args.cpus)?;
    crate::serving::start("mqtt", &args.ops, broker.collector(), broker.stopper(), reload)
        .map_err(zero_core::IoError::Config)?;
    eprintln!(
        "zero mqtt: broker listening on {} ({shards} shard{})",
        broker.addrs().iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", "),
        if shards == 1 { "" } else { "s" }
    );
    broker.join()
}

fn passwd(args: PasswdArgs) -> Result<(), String> {
    let password = match args.password {
        Some(p) => p,
        None => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map_err(|e| format!("reading the password: {e}"))?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    let old = std::fs::read_to_string(&args.file).unwrap_or_default();
    let new = zero_mqtt::auth::set_password(
        &old,
        &args.user,
        password.as_bytes(),
        zero_mqtt::auth::DEFAULT_ITERATIONS,
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(&args.file, new).map_err(|e| format!("writing {}: {e}", args.file.display()))
}
