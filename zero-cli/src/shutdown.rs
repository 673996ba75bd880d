//! SIGTERM and SIGINT for every `zero` server: the first one drains the server (listeners
//! close, each protocol says goodbye, connections close after what is queued for them,
//! persistence is flushed) within the grace period (`--shutdown-grace`), and the process exits
//! 0; a second one ends the process at once.

use std::sync::OnceLock;
use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use zero_core::Stopper;

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
pub fn on_signal(name: &'static str, stopper: Stopper) -> Result<(), String> {
    let mut signals =
        Signals::new([SIGTERM, SIGINT]).map_err(|e| format!("installing signal handlers: {e}"))?;
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
            let drained = stopper.shutdown(grace);
            eprintln!("zero {name}: {drained} of {shards} shard(s) drained in time; stopped");
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
