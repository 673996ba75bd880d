//! What every `zero` server does besides its protocol ([`start`]):
//! - SIGTERM and SIGINT: the first one drains the server (listeners close, each protocol says
//!   goodbye, connections close after what is queued for them, persistence is flushed) within
//!   the grace period (`--shutdown-grace`), and the process exits 0; a second one ends the
//!   process at once;
//! - `--metrics ADDR`: Prometheus metrics, `/healthz` and `/readyz` over HTTP;
//! - `--ops-socket PATH`: the ops socket `zero status` talks to (privileged commands with
//!   `--ops-key`, audited with `--audit-log`).
//!
//! Signals come through `signal-hook` (its iterator: a self-pipe read by a thread of ours), the
//! maintained way to take them without `unsafe` handlers.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use std::net::SocketAddr;
use std::path::PathBuf;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use zero_core::admin::{serve_metrics, Collector, OpsSocket};
use zero_core::Stopper;

/// Operating a running server: metrics and the ops socket.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct OpsArgs {
    /// Serve Prometheus metrics (and /healthz, /readyz) over HTTP on this address.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Answer `zero status` on this Unix socket (mode 0600, this user and root only); without
    /// a path, at /tmp/zero-ops.sock.
    #[arg(long, value_name = "PATH", num_args = 0..=1, default_missing_value = DEFAULT_SOCKET)]
    pub ops_socket: Option<PathBuf>,
    /// A file holding the secret (at least 16 bytes) privileged ops-socket commands (drain,
    /// kill, reload-certs, reset-peaks) are signed with; without it they are refused.
    #[arg(long, value_name = "FILE", requires = "ops_socket")]
    pub ops_key: Option<PathBuf>,
    /// Append every privileged ops-socket command and its verdict to this file.
    #[arg(long, value_name = "FILE", requires = "ops_socket")]
    pub audit_log: Option<PathBuf>,
}

/// Where the ops socket is when no path is given.
const DEFAULT_SOCKET: &str = "/tmp/zero-ops.sock";

/// `zero status` options.
#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// The server's ops socket (its --ops-socket).
    #[arg(long, default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// The server's ops key file, for privileged commands.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// What to ask: healthz, readyz, stats, connections, snapshot; privileged (with --key): drain,
    /// kill SHARD CONN, reload-certs, reset-peaks. Without one: healthz, readyz and stats.
    command: Vec<String>,
}

/// `zero status`: prints the answers; fails if one is an error.
pub fn status(args: StatusArgs) -> Result<(), String> {
    const PRIVILEGED: [&str; 4] = ["drain", "kill", "reload-certs", "reset-peaks"];
    let lines = match args.command.first() {
        None => vec!["healthz".to_string(), "readyz".into(), "stats".into()],
        Some(first) if PRIVILEGED.contains(&first.as_str()) => {
            let file =
                args.key.as_ref().ok_or(format!("{first} is privileged: give the server's --key FILE"))?;
            vec![zero_core::admin::sign(&read_key(file)?, &args.command.join(" "))]
        }
        Some(_) => vec![args.command.join(" ")],
    };
    let mut failed = false;
    for line in lines {
        let answer = zero_core::admin::request(&args.socket, &line).map_err(|e| {
            format!("{}: {e} (is the server running with --ops-socket?)", args.socket.display())
        })?;
        let command = line.split(" nonce=").next().unwrap_or(&line);
        print!("{command}: {answer}");
        failed |= !answer.starts_with("ok");
    }
    if failed {
        return Err("the server answered with an error".into());
    }
    Ok(())
}

/// Starts what `args` asks for beside a server whose shards `collector` and `stopper` reach,
/// and the signal handling every server has. `reload` is what `reload-certs` runs.
pub fn start(
    name: &'static str,
    args: &OpsArgs,
    collector: Collector,
    stopper: Stopper,
    reload: Option<zero_core::admin::Reload>,
) -> Result<(), String> {
    on_signal(name, stopper.clone())?;
    if let Some(addr) = args.metrics {
        let bound = serve_metrics(addr, collector.clone()).map_err(|e| e.to_string())?;
        eprintln!("zero {name}: metrics on http://{bound}/metrics");
    }
    if let Some(path) = &args.ops_socket {
        let mut socket = OpsSocket::new(collector, stopper, grace());
        if let Some(file) = &args.ops_key {
            socket = socket.with_key(&read_key(file)?).map_err(|e| e.to_string())?;
        }
        if let Some(file) = &args.audit_log {
            socket = socket.with_audit_log(file).map_err(|e| e.to_string())?;
        }
        if let Some(reload) = reload {
            socket = socket.with_reload(reload);
        }
        socket.serve(path).map_err(|e| e.to_string())?;
        eprintln!("zero {name}: ops socket at {}", path.display());
    }
    Ok(())
}

/// An ops key from its file (surrounding whitespace is not part of it).
pub fn read_key(file: &std::path::Path) -> Result<Vec<u8>, String> {
    let key = std::fs::read(file).map_err(|e| format!("ops key {}: {e}", file.display()))?;
    Ok(key.trim_ascii().to_vec())
}

static GRACE: OnceLock<Duration> = OnceLock::new();

/// Sets the grace period (once, from the command line).
pub fn set_grace(grace: Duration) {
    let _ = GRACE.set(grace);
}

/// How long a draining server waits for its connections before it stops anyway.
pub fn grace() -> Duration {
    GRACE.get().copied().unwrap_or(Duration::from_secs(10))
}

/// Shuts `stopper`'s shards down gracefully on the first SIGTERM or SIGINT; exits at once
/// (status 128 + the signal) on the second.
/// SIGTERM and SIGINT, caught from the moment a server starts setting up: one that comes
/// before the server is ready waits for [`start`] instead of killing the process mid-setup.
static CAUGHT: Mutex<Option<Signals>> = Mutex::new(None);

/// Catches SIGTERM and SIGINT from now on (a server calls this before it binds anything);
/// [`start`] then handles them, including any that came in between.
pub fn catch_signals() -> Result<(), String> {
    let mut caught = CAUGHT.lock().map_err(|_| "the signal state is poisoned".to_owned())?;
    if caught.is_none() {
        *caught =
            Some(Signals::new([SIGTERM, SIGINT]).map_err(|e| format!("installing signal handlers: {e}"))?);
    }
    Ok(())
}

fn on_signal(name: &'static str, stopper: Stopper) -> Result<(), String> {
    catch_signals()?;
    let caught = CAUGHT.lock().map_err(|_| "the signal state is poisoned".to_owned())?.take();
    let Some(mut signals) = caught else { return Err("signals already handled".into()) };
    std::thread::Builder::new()
        .name("zero-signals".into())
        .spawn(move || {
            let Some(first) = signals.forever().next() else { return };
            let grace = grace();
            eprintln!(
                "zero {name}: {} received: draining (at most {:.1} s; send it again to stop at once)",
                signal_name(first),
                grace.as_secs_f64()
            );
            std::thread::spawn(move || {
                if let Some(second) = signals.forever().next() {
                    eprintln!("zero {name}: {} received again: stopping now", signal_name(second));
                    std::process::exit(128 + second);
                }
            });
            let shards = stopper.shards();
            let drained = stopper.drain(grace);
            // Said before the stop: the process may end as soon as its shards do.
            eprintln!("zero {name}: {drained} of {shards} shard(s) drained in time; stopped");
            stopper.stop();
        })
        .map_err(|e| format!("starting the signal thread: {e}"))?;
    Ok(())
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        SIGTERM => "SIGTERM",
        SIGINT => "SIGINT",
        _ => "a signal",
    }
}
