//! `zero bench fix`: session round trips against any FIX acceptor that answers a
//! NewOrderSingle with an ExecutionReport (`zero fix acceptor --app exec`, or QuickFIX with the
//! peer in `conformance/fix`). A zero-fix initiator inline on one zero-core shard sends one
//! order, waits for its report, and sends the next from the same callback: the figure is the
//! time from the order's send to its report's arrival, both sides' session layers and stores
//! included. The last line is `RESULT impl=zero orders=N p50_us=.. p99_us=.. p999_us=..`.

use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use clap::Args;
use hdrhistogram::Histogram;
use zero_core::machine::Driver;
use zero_core::{Deadline, Event as IoEvent, Handler, Io, Ops, Target};
use zero_fix::session::{Event, Session, Wal};

/// Options of `zero bench fix`.
#[derive(Args, Debug)]
pub struct FixLoad {
    #[command(flatten)]
    to: crate::fix::Counterparty,
    /// Orders measured (after `--warmup` more).
    #[arg(long, default_value_t = 100_000)]
    orders: u64,
    /// Orders sent before measuring.
    #[arg(long, default_value_t = 10_000)]
    warmup: u64,
    /// The write-ahead log's directory (a fresh one per run is best: the session resets).
    #[arg(long)]
    store: PathBuf,
    /// The log's fsync policy: always, never, or <N>ms.
    #[arg(long, default_value = "never")]
    fsync: String,
    /// Microseconds the shard spins for input before it sleeps (see zero-core's
    /// `Config::busy_poll`); none by default.
    #[arg(long)]
    busy_poll_us: Option<u64>,
    /// Seconds to wait for an order's ExecutionReport (or the Logon) before giving up (an
    /// acceptor that answers orders with something else would stall the run).
    #[arg(long, default_value_t = 10)]
    stall_secs: u64,
}

/// The token of the timer that notices a stalled run (the session's driver uses 0).
const STALL: u64 = 1;

struct Bench {
    driver: Driver<Session<Wal>>,
    sent_at: Option<Instant>,
    sent: u64,
    done: u64,
    total: u64,
    warmup: u64,
    histogram: Histogram<u64>,
    failed: Option<String>,
    /// How long an order (or the Logon) may wait; and when the current wait began.
    stall: std::time::Duration,
    waiting_since: Instant,
    /// One shard timer following `waiting_since + stall`.
    stall_timer: Deadline,
}

impl Bench {
    fn order(&mut self, ops: &mut Ops) {
        let now = ops.now();
        self.sent += 1;
        let mut id = [0u8; 24];
        let id = {
            use std::io::Write;
            let mut cursor = &mut id[..];
            let _ = write!(cursor, "ORD-{}", self.sent);
            let left = cursor.len();
            &id[..24 - left]
        };
        self.waiting_since = now;
        match self.driver.machine().send(now, b"D", |b| {
            b.str(11, id).str(55, b"ZERO").char(54, b'1').str(60, b"20261207-09:30:00.000");
            b.uint(38, 100).char(40, b'2').str(44, b"10.25");
        }) {
            Ok(_) => self.sent_at = Some(Instant::now()),
            Err(e) => self.failed = Some(e.to_string()),
        }
    }

    fn pump(&mut self, ops: &mut Ops) {
        let mut next = false;
        while let Some(event) = self.driver.machine().poll_event() {
            match event {
                Event::LoggedOn => next = true,
                Event::Application(m) if m.msg_type() == b"8" => {
                    if let Some(at) = self.sent_at.take() {
                        self.done += 1;
                        if self.done > self.warmup {
                            let _ = self.histogram.record(at.elapsed().as_nanos() as u64);
                        }
                    }
                    next = self.done < self.warmup + self.total;
                }
                Event::Disconnected(cause) => self.failed = Some(format!("{cause:?}")),
                _ => {}
            }
        }
        if next {
            self.order(ops);
        }
        self.driver.pump(ops);
    }
}

impl Handler for Bench {
    fn on_event(&mut self, ops: &mut Ops, event: IoEvent<'_>) {
        if let IoEvent::Timer { token, .. } = event {
            // The stall check runs at the batch's end; the timer only has to wake the shard.
            if self.stall_timer.fired(token) {
                return;
            }
        }
        self.driver.on_event(ops, &event);
    }

    fn on_batch_end(&mut self, ops: &mut Ops) {
        self.pump(ops);
        if self.failed.is_none() && ops.now().duration_since(self.waiting_since) >= self.stall {
            self.failed = Some(format!(
                "nothing in {} s: is the acceptor answering NewOrderSingle with ExecutionReport (--app exec)?",
                self.stall.as_secs()
            ));
        }
        self.stall_timer.follow(ops, Some(self.waiting_since + self.stall));
        if self.failed.is_some() || self.done >= self.warmup + self.total {
            ops.stop();
        }
    }
}

/// Runs the round trips and prints the percentiles.
pub fn run(load: FixLoad) -> Result<(), String> {
    let fsync = crate::fix::fsync(&load.fsync)?;
    let wal = Wal::open(&load.store, fsync).map_err(|e| format!("{}: {e}", load.store.display()))?;
    let mut config = load.to.config();
    // Both sides start over: a benchmark run is its own trading day.
    config.reset_on_logon = true;
    let session = Session::new(config, wal, Instant::now(), SystemTime::now().into());
    let mut bench = Bench {
        driver: Driver::new(session, Target::tcp(load.to.target), 0),
        sent_at: None,
        sent: 0,
        done: 0,
        total: load.orders,
        warmup: load.warmup,
        histogram: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds"),
        failed: None,
        stall: std::time::Duration::from_secs(load.stall_secs.max(1)),
        waiting_since: Instant::now(),
        stall_timer: Deadline::new(STALL),
    };
    let mut io = Io::new(crate::fix::busy_polling(load.busy_poll_us)).map_err(|e| e.to_string())?;
    bench.driver.pump(&mut io);
    bench.stall_timer.follow(&mut io, Some(bench.waiting_since + bench.stall));
    let started = Instant::now();
    io.run(&mut bench).map_err(|e| e.to_string())?;
    if let Some(why) = bench.failed {
        return Err(format!("the session failed after {} orders: {why}", bench.done));
    }
    let h = &bench.histogram;
    let us = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "zero bench fix: {} round trips in {:.1} s; p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us",
        h.len(),
        started.elapsed().as_secs_f64(),
        us(0.5),
        us(0.99),
        us(0.999)
    );
    println!(
        "RESULT impl=zero orders={} p50_us={:.1} p99_us={:.1} p999_us={:.1}",
        h.len(),
        us(0.5),
        us(0.99),
        us(0.999)
    );
    Ok(())
}
