//! Timers on a live shard: order, cancellation, and the ring wait bounded by the next deadline.

use std::time::{Duration, Instant};

use zero_core::{Config, Event, Handler, Io, Ops, TimerId};

#[derive(Default)]
struct Fired {
    tokens: Vec<(u64, Instant)>,
}

impl Handler for Fired {
    fn on_event(&mut self, _: &mut Ops, event: Event<'_>) {
        if let Event::Timer { token, .. } = event {
            self.tokens.push((token, Instant::now()));
        }
    }
}

#[test]
fn timers_fire_in_order_and_cancelled_ones_do_not() {
    let mut io = Io::new(Config::default()).unwrap();
    let start = Instant::now();
    let mut ids: Vec<TimerId> = vec![];
    for (token, ms) in [(3u64, 60u64), (1, 20), (2, 40), (4, 80), (5, 30)] {
        ids.push(io.timer(Duration::from_millis(ms), token));
    }
    assert!(io.cancel_timer(ids[4]), "token 5 cancelled while pending");
    let mut f = Fired::default();
    // Wait with no timeout: only the timers can end each wait.
    while f.tokens.len() < 4 {
        io.run_once(&mut f, None).unwrap();
        assert!(start.elapsed() < Duration::from_secs(5));
    }
    let order: Vec<u64> = f.tokens.iter().map(|t| t.0).collect();
    assert_eq!(order, [1, 2, 3, 4]);
    for ((_, at), ms) in f.tokens.iter().zip([20, 40, 60, 80]) {
        assert!(at.duration_since(start) >= Duration::from_millis(ms), "fired early");
    }
    assert!(!io.cancel_timer(ids[0]), "a fired timer's id is stale");
    assert_eq!(io.timers_pending(), 0);
}
