//! The MDP 3.0 channel driven by a generated exchange: books changed at random on a few
//! instruments, packets copied to feeds A and B with loss, reordering and duplication, a
//! snapshot loop answering while the channel recovers, channel resets. Whatever happens, every
//! book the channel publishes equals the loss-free book at the same RptSeq, and once the
//! stream ends and recovery is done, every book is the exchange's.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use zero_sbe::mdp3::arbiter::{ArbiterConfig, Feed};
use zero_sbe::mdp3::channel::{Channel, ChannelConfig, Event, State};
use zero_sbe::mdp3::sim::{Exchange, Rng};

const DEPTH: usize = 5;

/// Runs a channel against an exchange; returns how many books were published and checked.
fn run(seed: u64, packets: usize, loss_a: u64, loss_b: u64, resets: bool) -> (usize, Channel) {
    let mut rng = Rng(seed | 1);
    let mut ex = Exchange::new(4, DEPTH);
    let config = ChannelConfig {
        arbiter: ArbiterConfig { gap_wait: Duration::from_millis(5), window: 32 },
        depth: DEPTH,
        ..Default::default()
    };
    let mut ch = Channel::new(config);
    let start = Instant::now();
    let mut snapshot_seq = 0u32;
    let mut joined = true; // a channel starts recovering
    let mut checked = 0;
    let mut pending: Vec<(u64, Feed, Vec<u8>)> = Vec::new();
    let mut slot = 0u64;
    let step = |ch: &mut Channel, joined: &mut bool, checked: &mut usize, ex: &Exchange| {
        while let Some(e) = ch.poll_event() {
            match e {
                Event::Published(id) => {
                    let rpt = ch.rpt_seq(id).expect("a published book is not stale");
                    let book = ch.book(id).expect("published");
                    let truths = &ex.history[&(id, rpt)];
                    assert!(
                        truths.contains(book),
                        "instrument {id} at RptSeq {rpt} (seed {seed}): {book:?} is none of {truths:?}"
                    );
                    *checked += 1;
                }
                Event::JoinSnapshots => *joined = true,
                Event::LeaveSnapshots => *joined = false,
                _ => {}
            }
        }
    };
    for n in 0..packets {
        let bytes =
            if resets && n > 0 && rng.below(200) == 0 { ex.reset() } else { ex.incremental(&mut rng) };
        for (feed, loss) in [(Feed::A, loss_a), (Feed::B, loss_b)] {
            if rng.below(100) >= loss {
                pending.push((slot + rng.below(6), feed, bytes.clone()));
                if rng.below(50) == 0 {
                    pending.push((slot + rng.below(10), feed, bytes.clone())); // a duplicate
                }
            }
        }
        slot += 3;
        pending.sort_by_key(|p| p.0);
        let due: Vec<_> = pending.iter().take_while(|p| p.0 <= slot).cloned().collect();
        pending.drain(..due.len());
        for (at, feed, p) in due {
            let now = start + Duration::from_micros(at * 100);
            ch.handle_timeout(now);
            ch.incremental(now, feed, &p);
            step(&mut ch, &mut joined, &mut checked, &ex);
        }
        // The snapshot loop: one instrument's snapshot every other packet while joined.
        if joined && n % 2 == 0 {
            snapshot_seq += 1;
            let id = 1 + (snapshot_seq % 4) as i32;
            ch.snapshot(&ex.snapshot(snapshot_seq, id));
            step(&mut ch, &mut joined, &mut checked, &ex);
        }
    }
    // The rest arrives, then one last packet on both feeds (so a loss at the very end is a
    // gap too), the gap waits end, and the loop runs until the channel is in sync.
    let last = ex.incremental(&mut rng);
    pending.push((slot + 20, Feed::A, last.clone()));
    pending.push((slot + 21, Feed::B, last));
    for (at, feed, p) in std::mem::take(&mut pending) {
        let now = start + Duration::from_micros(at * 100);
        ch.handle_timeout(now);
        ch.incremental(now, feed, &p);
        step(&mut ch, &mut joined, &mut checked, &ex);
    }
    // Each gap wait ends in turn (a gap found behind another waits afresh).
    while let Some(t) = ch.poll_timeout() {
        ch.handle_timeout(t);
        step(&mut ch, &mut joined, &mut checked, &ex);
    }
    for k in 0..64 {
        if ch.state() == State::InSync {
            break;
        }
        ch.snapshot(&ex.snapshot(snapshot_seq + k, 1 + (k % 4) as i32));
        step(&mut ch, &mut joined, &mut checked, &ex);
    }
    assert_eq!(ch.state(), State::InSync, "seed {seed}");
    for (id, (book, _)) in &ex.books {
        assert_eq!(ch.book(*id), Some(book), "instrument {id} at the end (seed {seed})");
    }
    (checked, ch)
}

#[test]
fn a_loss_free_feed_publishes_every_event() {
    let (checked, ch) = run(7, 300, 0, 0, false);
    assert!(checked > 200, "{checked}");
    assert_eq!(ch.arbitration().lost, 0);
    assert!(ch.arbitration().duplicates >= 300, "every B copy is a duplicate");
}

#[test]
fn loss_on_one_feed_is_covered_by_the_other() {
    let (_, ch) = run(11, 400, 30, 0, false);
    assert_eq!(ch.arbitration().lost, 0);
}

#[test]
fn loss_on_both_feeds_recovers_from_snapshots() {
    let (checked, ch) = run(13, 600, 20, 20, false);
    assert!(ch.arbitration().gaps > 0, "the test made gaps");
    assert!(ch.counts().snapshots > 4, "it recovered more than once at start");
    assert!(checked > 50, "{checked}");
}

#[test]
fn channel_resets_empty_the_books() {
    run(17, 800, 5, 5, true);
}

proptest! {
    // 48 cases by default; PROPTEST_CASES=N for more.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(48),
        ..ProptestConfig::default()
    })]
    /// Any seed, any loss on either feed, resets or not: published books are always right.
    #[test]
    fn published_books_are_always_the_loss_free_books(
        seed in any::<u64>(),
        loss_a in 0u64..40,
        loss_b in 0u64..40,
        resets in any::<bool>(),
    ) {
        run(seed, 300, loss_a, loss_b, resets);
    }
}
