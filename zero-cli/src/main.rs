//! `zero`: run zero's servers and load generators from the command line.

mod bench_echo;

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// zero: application protocols on io_uring.
#[derive(Parser)]
#[command(name = "zero", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Echo server.
    Echo {
        #[command(subcommand)]
        command: EchoCommand,
    },
    /// Load generators.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
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
}

fn serve(args: ServeArgs) -> Result<(), zero_core::IoError> {
    let mut config = zero_core::ClusterConfig::new(args.shards);
    config.io = zero_core::echo::Echo::config();
    config.io = zero_core::echo::Echo::config();
    if args.pin {
        config.cpus = (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect();
    }
    let listen = args.listen;
    let cluster = zero_core::IoCluster::start(config, move |_, io| {
        let mut opts = zero_core::ListenOptions::default();
        opts.reuse_port = true;
        io.tcp_listen_with(listen, &opts)?;
        Ok(zero_core::echo::Echo::default())
    })?;
    tracing::info!(%listen, shards = args.shards, "echo server running");
    eprintln!("zero echo: listening on {listen} with {} shard(s)", args.shards);
    cluster.join()
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let result = match Cli::parse().command {
        Command::Echo { command: EchoCommand::Serve(args) } => serve(args).map_err(|e| e.to_string()),
        Command::Bench { command: BenchCommand::Echo(load) } => bench_echo::run(load),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zero: {e}");
            ExitCode::FAILURE
        }
    }
}
