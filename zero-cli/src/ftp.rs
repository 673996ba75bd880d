//! `zero ftp serve`: the FTP server on a cluster of shards (one per CPU by default); the
//! client's commands are in `ftp_client`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;
use zero_core::{ClusterConfig, IoCluster, ListenOptions};
use zero_ftp::server::{Server, ServerConfig, Users};

use crate::ftp_client;

/// `zero ftp` commands.
#[derive(Subcommand, Debug)]
pub enum FtpCommand {
    /// Serve files under --root: users from --users (`name:hash:perms[:root[:quota]]`, hashes as
    /// `openssl passwd -6` makes them), read-only anonymous access with --anonymous.
    Serve {
        /// The directory served (each user's root is it, or a directory in it).
        #[arg(long)]
        root: PathBuf,
        /// The users file.
        #[arg(long)]
        users: Option<PathBuf>,
        /// Let `anonymous` (or `ftp`) in, read-only, rooted at --root.
        #[arg(long)]
        anonymous: bool,
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:2121")]
        listen: SocketAddr,
        /// Passive ports, `FIRST-LAST` (any free port without).
        #[arg(long)]
        passive_ports: Option<String>,
        /// The address PASV advertises (behind NAT).
        #[arg(long)]
        advertise: Option<std::net::Ipv4Addr>,
        /// Shards (one per CPU by default).
        #[arg(long)]
        shards: Option<usize>,
        /// The certificate chain (PEM) for FTPS: AUTH TLS is offered with it.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// Its private key (PEM).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Also listen here for implicit FTPS (TLS from the first byte).
        #[arg(long, requires = "tls_cert")]
        implicit: Option<SocketAddr>,
        /// Users (but anonymous) must log in and transfer under TLS.
        #[arg(long, requires = "tls_cert")]
        require_tls: bool,
        /// Log each transfer to this file, in the xferlog format.
        #[arg(long)]
        xferlog: Option<PathBuf>,
        /// Seconds a client may stay silent between commands.
        #[arg(long, default_value_t = 300)]
        idle_timeout: u64,
        /// Seconds a transfer waits for its data connection.
        #[arg(long, default_value_t = 60)]
        accept_timeout: u64,
        /// Seconds a transfer may move nothing before it is broken off.
        #[arg(long, default_value_t = 300)]
        data_timeout: u64,
        /// Bytes a second a transfer may move at most (vsftpd's local_max_rate).
        #[arg(long)]
        max_rate: Option<u64>,
        /// Bytes a second all transfers together may move at most (each shard takes its
        /// share).
        #[arg(long)]
        max_total_rate: Option<u64>,
        #[command(flatten)]
        ops: Box<crate::serving::OpsArgs>,
    },
    /// List a directory: `ftp://[user[:password]@]host[:port]/path` (`ftps://` for
    /// implicit FTPS).
    Ls {
        /// The directory.
        url: String,
        /// How: `long` (LIST), `names` (NLST) or `facts` (MLSD).
        #[arg(long, default_value = "long")]
        format: String,
        #[command(flatten)]
        login: ftp_client::Login,
    },
    /// Download a file.
    Get {
        /// The file.
        url: String,
        /// Where to write it (its name, in the working directory, by default).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Continue a partial download from where the local file ends.
        #[arg(short = 'c', long = "continue")]
        resume: bool,
        #[command(flatten)]
        login: ftp_client::Login,
    },
    /// Upload a file (to the URL's path; into it, under the file's own name, when it ends
    /// with `/`).
    Put {
        /// The local file.
        file: PathBuf,
        /// Where it goes.
        url: String,
        /// Continue a partial upload from where the remote file ends (APPE).
        #[arg(short = 'c', long = "continue")]
        resume: bool,
        #[command(flatten)]
        login: ftp_client::Login,
    },
    /// Copy a remote directory tree down: missing and changed files downloaded.
    Mirror {
        /// The remote directory.
        url: String,
        /// The local directory.
        dir: PathBuf,
        #[command(flatten)]
        login: ftp_client::Login,
    },
}

/// Runs a `zero ftp` command.
pub fn run(command: FtpCommand) -> Result<(), String> {
    let FtpCommand::Serve {
        root,
        users,
        anonymous,
        listen,
        passive_ports,
        advertise,
        shards,
        idle_timeout,
        accept_timeout,
        data_timeout,
        tls_cert,
        tls_key,
        implicit,
        require_tls,
        xferlog,
        max_rate,
        max_total_rate,
        ops,
    } = command
    else {
        return ftp_client::run(command);
    };
    let tls = match (&tls_cert, &tls_key) {
        (Some(cert), Some(key)) => Some(zero_ftp::server::tls_config(cert, key).map_err(|e| e.to_string())?),
        _ => None,
    };
    let root = root.canonicalize().map_err(|e| format!("{}: {e}", root.display()))?;
    let users = match &users {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            Users::parse(&text, &root).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => Users::default(),
    };
    if users.is_empty() && !anonymous {
        return Err("nobody could log in: give --users FILE or --anonymous".into());
    }
    let ports = passive_ports
        .map(|p| {
            let (a, b) = p.split_once('-').ok_or("--passive-ports is FIRST-LAST")?;
            let (a, b): (u16, u16) =
                (a.parse().map_err(|_| "bad first port")?, b.parse().map_err(|_| "bad last port")?);
            if a > b || a < 1024 {
                return Err("--passive-ports: FIRST <= LAST, both 1024 or more");
            }
            Ok(a..=b)
        })
        .transpose()?;
    let config = ServerConfig {
        users,
        anonymous: anonymous.then(|| root.clone()),
        advertised: advertise,
        idle_timeout: Duration::from_secs(idle_timeout),
        accept_timeout: Duration::from_secs(accept_timeout),
        data_timeout: Duration::from_secs(data_timeout),
        tls,
        require_tls,
        xferlog,
        max_rate,
        max_total_rate,
        ..ServerConfig::default()
    };
    let shards = shards.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // Every shard listens on the same port: a port-0 address is given one first.
    let mut reserved = zero_core::Reserved::default();
    let listen = reserved.port(listen).map_err(|e| e.to_string())?;
    let implicit = implicit.map(|a| reserved.port(a)).transpose().map_err(|e| e.to_string())?;
    crate::serving::catch_signals()?;
    let cluster = IoCluster::start(ClusterConfig::new(shards), move |shard, io| {
        let mut opts = ListenOptions::default();
        opts.reuse_port = true;
        let mut server = Server::new(config.clone())
            .with_rate_share(shards)
            .open_xferlog()
            .map_err(|e| zero_core::IoError::Config(format!("xferlog: {e}")))?;
        if let Some(ports) = &ports {
            // Each shard starts its search at its own share of the range.
            let span = ports.end() - ports.start() + 1;
            let first = ports.start() + (span / shards as u16) * shard as u16;
            server = server.with_passive_ports(ports.clone(), first);
        }
        server.listen(io, listen, &opts)?;
        if let Some(addr) = implicit {
            server.listen_tls(io, addr, &opts)?;
        }
        Ok(server)
    })
    .map_err(|e| e.to_string())?;
    drop(reserved);
    crate::serving::start("ftp", &ops, cluster.collector(), cluster.stopper(), None)?;
    let implicit_note = implicit.map(|a| format!(", implicit FTPS on {a}")).unwrap_or_default();
    eprintln!(
        "zero ftp: listening on {listen}{implicit_note} ({shards} shard{}), root {}",
        if shards == 1 { "" } else { "s" },
        root.display()
    );
    cluster.join().map_err(|e| e.to_string())
}
