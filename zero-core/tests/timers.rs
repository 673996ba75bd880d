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

#[test]
fn a_deadline_rearms_only_when_it_moves_earlier() {
    let mut io = Io::new(Config::default()).unwrap();
    let start = Instant::now();
    let mut d = zero_core::Deadline::new(9);
    d.follow(&mut io, Some(start + Duration::from_millis(80)));
    d.follow(&mut io, Some(start + Duration::from_millis(200))); // later: left alone
    d.follow(&mut io, None);
    assert_eq!(io.timers_pending(), 1);
    d.follow(&mut io, Some(start + Duration::from_millis(20))); // earlier: replaces it
    assert_eq!(io.timers_pending(), 1);
    let mut f = Fired::default();
    while f.tokens.is_empty() {
        io.run_once(&mut f, None).unwrap();
    }
    let (token, at) = f.tokens[0];
    assert!(d.fired(token) && !d.fired(1));
    assert!(at.duration_since(start) < Duration::from_millis(80), "the earlier deadline fired");
    assert_eq!(io.timers_pending(), 0);
    d.follow(&mut io, Some(start + Duration::from_millis(200)));
    assert_eq!(io.timers_pending(), 1, "armed again after firing");
}

/// A shard that spins for input before it sleeps still fires its timers in order and on time
/// (never early), and still hears a handle's post (through its wake-up completion).
#[test]
fn a_busy_polling_shard_fires_timers_on_time_and_hears_posts() {
    struct Seen(Vec<(u64, Instant)>, bool);
    impl Handler for Seen {
        fn on_event(&mut self, _: &mut Ops, event: Event<'_>) {
            match event {
                Event::Timer { token, .. } => self.0.push((token, Instant::now())),
                Event::Message(_) => self.1 = true,
                _ => {}
            }
        }
    }
    let mut config = Config::default();
    config.busy_poll = Some(Duration::from_millis(5));
    let mut io = Io::new(config).unwrap();
    let start = Instant::now();
    io.timer(Duration::from_millis(30), 2);
    io.timer(Duration::from_millis(10), 1);
    let handle = io.handle();
    let poster = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        handle.post(()).unwrap();
    });
    let mut seen = Seen(Vec::new(), false);
    while !(seen.1 && seen.0.len() == 2) {
        io.run_once(&mut seen, None).unwrap();
        assert!(start.elapsed() < Duration::from_secs(5), "{:?} {}", seen.0, seen.1);
    }
    poster.join().unwrap();
    let order: Vec<u64> = seen.0.iter().map(|t| t.0).collect();
    assert_eq!(order, [1, 2]);
    for ((_, at), ms) in seen.0.iter().zip([10, 30]) {
        assert!(at.duration_since(start) >= Duration::from_millis(ms), "fired early");
    }
}
