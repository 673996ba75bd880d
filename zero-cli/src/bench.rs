//! What the load generators share: the CPU time a process used, and latency as printed.

use std::time::Duration;

use hdrhistogram::Histogram;

/// CPU time of all of a process's threads, from the scheduler's statistics (ns precision).
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

/// The latency at quantile `q` of a histogram of nanoseconds, in microseconds.
pub fn micros(latency: &Histogram<u64>, q: f64) -> f64 {
    latency.value_at_quantile(q) as f64 / 1000.0
}

/// The `latency us` line: p50, p99, p999 and max.
pub fn print_latency(latency: &Histogram<u64>) {
    println!(
        "latency us    p50 {:.1}  p99 {:.1}  p999 {:.1}  max {:.1}",
        micros(latency, 0.5),
        micros(latency, 0.99),
        micros(latency, 0.999),
        latency.max() as f64 / 1000.0
    );
}
