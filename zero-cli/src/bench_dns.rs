//! `zero bench dns`: lookups of distinct names (cache off) against any DNS server, a fixed
//! number in flight, zero-dns's resolver inline on one zero-core shard. Prints queries/s,
//! queries per client CPU-second and latency; the last line is `RESULT impl=zero ...` for
//! bench/dns.sh.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use clap::Args;
use hdrhistogram::Histogram;
use zero_core::{Config, Event as IoEvent, Handler, Io, Ops};
use zero_dns::resolver::{Event, LookupId, Resolver, ResolverDriver};
use zero_dns::{RecordType, ResolverConfig};

/// Options of `zero bench dns`.
#[derive(Args, Debug)]
pub struct DnsLoad {
    /// The server.
    #[arg(long)]
    target: SocketAddr,
    /// Lookups in all.
    #[arg(long, default_value_t = 100_000)]
    queries: u64,
    /// Lookups in flight.
    #[arg(long, default_value_t = 100)]
    concurrency: u64,
    /// Names asked are q0.ZONE, q1.ZONE, ...
    #[arg(long, default_value = "zero.test")]
    zone: String,
}

struct Bench {
    driver: ResolverDriver,
    in_flight: HashMap<LookupId, Instant>,
    next: u64,
    errors: u64,
    load: DnsLoad,
    histogram: Histogram<u64>,
}

impl Bench {
    fn top_up(&mut self, now: Instant) {
        while self.next < self.load.queries && (self.in_flight.len() as u64) < self.load.concurrency {
            let name = format!("q{}.{}.", self.next, self.load.zone.trim_end_matches('.'));
            self.next += 1;
            let id = self.driver.resolver().lookup(now, &name, RecordType::A);
            self.in_flight.insert(id, Instant::now());
        }
    }
}

impl Handler for Bench {
    fn on_event(&mut self, ops: &mut Ops, event: IoEvent<'_>) {
        self.driver.on_event(ops, &event);
    }

    fn on_batch_end(&mut self, ops: &mut Ops) {
        while let Some(Event::Answer { lookup, result }) = self.driver.resolver().poll_event() {
            let Some(at) = self.in_flight.remove(&lookup) else { continue };
            match result {
                Ok(_) => drop(self.histogram.record(at.elapsed().as_nanos() as u64)),
                Err(_) => self.errors += 1,
            }
        }
        self.top_up(ops.now());
        self.driver.pump(ops);
        if self.in_flight.is_empty() && self.next >= self.load.queries {
            ops.stop();
        }
    }
}

/// Runs the lookups and prints the figures.
pub fn run(load: DnsLoad) -> Result<(), String> {
    let mut config = ResolverConfig::with_servers(&[load.target]);
    config.cache_size = 0;
    let resolver = Resolver::new(config, crate::random_seed());
    let mut bench = Bench {
        driver: ResolverDriver::new(resolver, 0),
        in_flight: HashMap::new(),
        next: 0,
        errors: 0,
        load,
        histogram: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds"),
    };
    let mut io = Io::new(Config::default()).map_err(|e| e.to_string())?;
    let pid = std::process::id();
    let (started, cpu_start) = (Instant::now(), crate::bench::cpu_time(pid).unwrap_or_default());
    bench.on_batch_end(&mut io);
    io.run(&mut bench).map_err(|e| e.to_string())?;
    let secs = started.elapsed().as_secs_f64();
    let cpu_s = (crate::bench::cpu_time(pid).unwrap_or_default() - cpu_start).as_secs_f64();
    let (h, queries) = (&bench.histogram, bench.load.queries);
    let us = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "zero bench dns: {queries} lookups ({} failed) in {secs:.2} s: {:.0}/s, {:.0} per CPU-second; p50 {:.1} us, p99 {:.1} us",
        bench.errors,
        queries as f64 / secs,
        queries as f64 / cpu_s.max(0.01),
        us(0.5),
        us(0.99)
    );
    println!(
        "RESULT impl=zero queries={queries} errors={} seconds={secs:.2} qps={:.0} cpu_s={cpu_s:.2} q_per_cpu_s={:.0} p50_us={:.1} p99_us={:.1}",
        bench.errors,
        queries as f64 / secs,
        queries as f64 / cpu_s.max(0.01),
        us(0.5),
        us(0.99)
    );
    Ok(())
}
