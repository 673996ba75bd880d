//! `zero mqtt ...`: the MQTT broker and its password tool.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Subcommand};
use zero_mqtt::broker::{Anonymous, BrokerConfig};
use zero_mqtt::server::{self, BrokerHandler, Listeners};

/// MQTT commands.
#[derive(Subcommand)]
pub enum MqttCommand {
    /// Run the MQTT 3.1.1 / 5.0 broker until killed.
    Broker(BrokerArgs),
    /// Add or replace a user in a password file (PBKDF2-SHA512, mosquitto's format).
    Passwd(PasswdArgs),
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
    }
}

fn broker(args: BrokerArgs) -> Result<(), zero_mqtt::Error> {
    let mut config = BrokerConfig::default();
    config.persistence = !args.no_persistence;
    config.persistence_location = args.data.clone();
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
    let mut listeners = Listeners { tcp: args.listen.clone(), tls: Vec::new() };
    if let (Some(addr), Some(cert), Some(key)) = (args.tls_listen, &args.cert, &args.key) {
        let (tls, _reload) = zero_core::tls::ServerTls::from_pem_files(cert, key)?.build()?;
        listeners.tls.push((addr, tls));
    }
    let remote =
        listeners.tcp.iter().chain(listeners.tls.iter().map(|(a, _)| a)).any(|a| !a.ip().is_loopback());
    if remote && config.anonymous == Anonymous::LoopbackOnly && config.passwords.is_none() {
        tracing::warn!("listening beyond loopback without a password_file: remote clients will be refused (anonymous clients are accepted on loopback only; set password_file or allow_anonymous)");
        eprintln!("zero mqtt: warning: anonymous clients are accepted from loopback only; remote clients need a password_file user (or allow_anonymous true)");
    }
    let mut io = zero_core::Io::new(zero_core::Config::default())?;
    let bound = server::listen(&mut io, &listeners)?;
    eprintln!(
        "zero mqtt: broker listening on {}",
        bound.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ")
    );
    let mut handler = BrokerHandler::new(config, Instant::now())?;
    io.run(&mut handler)?;
    handler.take_failure().map_or(Ok(()), Err)
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
