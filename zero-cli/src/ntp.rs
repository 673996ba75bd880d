//! `zero ntp query`: a burst of requests to each server, then a table like chrony's `sources`.

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use zero_ntp::client::{query_blocking, ClientConfig, Standing};

/// `zero ntp` commands.
#[derive(Subcommand, Debug)]
pub enum NtpCommand {
    /// Ask servers what time it is (never setting the clock) and print a table like chrony's
    /// `sources`: `*` the selected server, `+` one that agrees, `x` a falseticker, `?`
    /// unusable, `-` refused us (DENY or RSTR).
    Query(QueryArgs),
}

/// Options of `zero ntp query`.
#[derive(Args, Debug)]
pub struct QueryArgs {
    /// The servers: HOST or HOST:PORT (port 123 by default).
    #[arg(required = true, num_args = 1..)]
    servers: Vec<String>,
    /// Answers wanted from each server.
    #[arg(long, default_value_t = 4)]
    samples: usize,
    /// Seconds between requests to a server.
    #[arg(long, default_value_t = 1.0)]
    interval: f64,
}

/// Runs a `zero ntp` command.
pub fn run(command: NtpCommand) -> Result<ExitCode, String> {
    let NtpCommand::Query(args) = command;
    let servers = args
        .servers
        .iter()
        .map(|s| {
            let with_port = if s.parse::<SocketAddr>().is_ok() || s.contains(':') {
                s.clone()
            } else {
                format!("{s}:123")
            };
            with_port
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .ok_or_else(|| format!("{s}: not an address"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut config = ClientConfig::new(&servers);
    let poll = args.interval.max(0.01).log2().round() as i8;
    (config.min_poll, config.max_poll) = (poll, poll);
    config.timeout = Duration::from_secs_f64(args.interval.clamp(0.2, 2.0));
    let within = Duration::from_secs_f64(args.interval * (args.samples as f64 + 1.0) + 1.0);
    let client = query_blocking(config, args.samples, within)?;
    let now = Instant::now();
    let selection = client.selection(now);
    println!("MS Name/IP address         Stratum Poll Reach LastRx Last sample               ");
    println!("===============================================================================");
    for (i, s) in client.sources().iter().enumerate() {
        let mark = match (&selection, s.standing) {
            (_, Standing::Refused(_)) => '-',
            (Some(sel), _) if sel.peer == i => '*',
            (Some(sel), _) if sel.truechimers.contains(&i) => '+',
            (Some(sel), _) if sel.falsetickers.contains(&i) => 'x',
            _ => '?',
        };
        let last = s
            .last_sample()
            .map_or("-".to_string(), |t| format!("{}", now.saturating_duration_since(t).as_secs()));
        let sample = match (s.offset(), s.delay()) {
            (Some(offset), Some(delay)) => {
                format!("{:>+9} +/- {:>7}", micros(offset), micros(delay / 2.0 + s.root.1))
            }
            _ => match s.standing {
                Standing::Refused(code) => format!("kissed off: {}", String::from_utf8_lossy(&code)),
                Standing::Active => "no answer".to_string(),
            },
        };
        println!(
            "^{mark} {:<27} {:>2} {:>4} {:>5o} {:>6} {sample}",
            s.addr.to_string(),
            s.stratum,
            s.poll,
            s.reach,
            last
        );
    }
    match selection {
        Some(sel) => {
            let peer = &client.sources()[sel.peer];
            println!(
                "\nselected {} (stratum {}, reference {}); offset {} (the servers' clock minus ours)",
                peer.addr,
                peer.stratum,
                peer.reference,
                micros(sel.offset)
            );
            Ok(ExitCode::SUCCESS)
        }
        None => {
            println!("\nno server selected: none answered, or no majority agrees");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Seconds as chrony prints them: us, ms or s.
fn micros(seconds: f64) -> String {
    let a = seconds.abs();
    if a < 1e-3 {
        format!("{:.0}us", seconds * 1e6)
    } else if a < 1.0 {
        format!("{:.3}ms", seconds * 1e3)
    } else {
        format!("{seconds:.3}s")
    }
}
