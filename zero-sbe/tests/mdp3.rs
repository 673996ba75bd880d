//! The MDP 3.0 channel driven by a generated exchange: books changed at random on a few
//! instruments, trades and statistics in the same sequence, orders when asked, packets copied
//! to feeds A and B with loss, reordering and duplication, snapshot loops answering while the
//! channel recovers, channel resets. Whatever happens, every book the channel publishes
//! equals the loss-free book at the same RptSeq (an order book, one the exchange had), trades
//! come once each and in order, and once the stream ends and recovery is done, every book is
//! the exchange's.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use zero_sbe::mdp3::arbiter::{ArbiterConfig, Feed};
use zero_sbe::mdp3::channel::{Channel, ChannelConfig, Event, State};
use zero_sbe::mdp3::packet;
use zero_sbe::mdp3::sim::{Exchange, Rng};
use zero_sbe::mdp3::templates as t;

const DEPTH: usize = 5;

/// What a run is made of.
#[derive(Debug, Clone, Copy)]
struct Setup {
    seed: u64,
    packets: usize,
    loss_a: u64,
    loss_b: u64,
    resets: bool,
    orders: bool,
}

impl Setup {
    fn new(seed: u64, packets: usize, loss_a: u64, loss_b: u64) -> Setup {
        Setup { seed, packets, loss_a, loss_b, resets: false, orders: false }
    }
}

/// What a run saw.
#[derive(Default)]
struct Seen {
    joined: bool,
    /// Published books checked against the exchange's.
    checked: usize,
    /// Published order books checked.
    orders_checked: usize,
    /// Each instrument's last trade (the sim numbers them in MDTradeEntryID, across resets).
    last_trade: HashMap<i32, u32>,
    trades: usize,
}

impl Seen {
    fn events(&mut self, ch: &mut Channel, ex: &Exchange, seed: u64) {
        while let Some(e) = ch.poll_event() {
            match e {
                Event::Published(id) => {
                    if let Some(book) = ch.book(id) {
                        let rpt = ch.rpt_seq(id).expect("a published book is not stale");
                        let truths = &ex.history[&(id, rpt)];
                        assert!(
                            truths.contains(book),
                            "instrument {id} at RptSeq {rpt} (seed {seed}): {book:?} is none of {truths:?}"
                        );
                        self.checked += 1;
                    }
                    if let Some(orders) = ch.orders(id) {
                        assert!(
                            ex.order_history[&id].contains(orders),
                            "instrument {id}'s orders (seed {seed}) are none the exchange had: {orders:?}"
                        );
                        self.orders_checked += 1;
                    }
                }
                Event::Trade(trade) => {
                    let id = trade.trade_id.expect("the sim numbers trades");
                    let last = self.last_trade.insert(trade.security_id, id);
                    assert!(last.is_none_or(|l| l < id), "trade {id} after {last:?} (seed {seed})");
                    self.trades += 1;
                }
                Event::JoinSnapshots => self.joined = true,
                Event::LeaveSnapshots => self.joined = false,
                _ => {}
            }
        }
    }
}

/// The snapshot loops' turn `k`: instrument `1 + k % 4`'s book, and its orders (in chunks of
/// two, one of them lost now and then).
fn snapshots(ch: &mut Channel, ex: &Exchange, rng: &mut Rng, k: u32, orders: bool) {
    let id = 1 + (k % 4) as i32;
    ch.snapshot(&ex.snapshot(k, id));
    if orders {
        for chunk in ex.order_snapshot(k, id, 2) {
            if rng.below(20) != 0 {
                ch.snapshot(&chunk);
            }
        }
    }
}

/// Runs a channel against an exchange.
fn run(s: Setup) -> (Seen, Channel) {
    let seed = s.seed;
    let mut rng = Rng(seed | 1);
    let mut ex = Exchange::new(4, DEPTH);
    if s.orders {
        ex = ex.with_orders();
    }
    let config = ChannelConfig {
        arbiter: ArbiterConfig { gap_wait: Duration::from_millis(5), window: 32 },
        depth: DEPTH,
        orders: s.orders,
        ..Default::default()
    };
    let mut ch = Channel::new(config);
    let start = Instant::now();
    let mut snapshot_turn = 0u32;
    let mut seen = Seen { joined: true, ..Seen::default() }; // a channel starts recovering
    let mut pending: Vec<(u64, Feed, Vec<u8>)> = Vec::new();
    let mut slot = 0u64;
    for n in 0..s.packets {
        let bytes =
            if s.resets && n > 0 && rng.below(200) == 0 { ex.reset() } else { ex.incremental(&mut rng) };
        for (feed, loss) in [(Feed::A, s.loss_a), (Feed::B, s.loss_b)] {
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
            seen.events(&mut ch, &ex, seed);
        }
        // The snapshot loops: one instrument every other packet while joined.
        if seen.joined && n % 2 == 0 {
            snapshot_turn += 1;
            snapshots(&mut ch, &ex, &mut rng, snapshot_turn, s.orders);
            seen.events(&mut ch, &ex, seed);
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
        seen.events(&mut ch, &ex, seed);
    }
    // Each gap wait ends in turn (a gap found behind another waits afresh).
    while let Some(t) = ch.poll_timeout() {
        ch.handle_timeout(t);
        seen.events(&mut ch, &ex, seed);
    }
    for k in 0..128 {
        if ch.state() == State::InSync {
            break;
        }
        snapshots(&mut ch, &ex, &mut rng, snapshot_turn + k, s.orders);
        seen.events(&mut ch, &ex, seed);
    }
    assert_eq!(ch.state(), State::InSync, "seed {seed}");
    for (id, (book, _)) in &ex.books {
        assert_eq!(ch.book(*id), Some(book), "instrument {id} at the end (seed {seed})");
        if s.orders {
            assert_eq!(ch.orders(*id), Some(&ex.orders[id]), "instrument {id}'s orders (seed {seed})");
        } else {
            assert_eq!(ch.orders(*id), None, "orders are not kept");
        }
    }
    (seen, ch)
}

#[test]
fn a_loss_free_feed_publishes_every_event() {
    let (seen, ch) = run(Setup::new(7, 300, 0, 0));
    assert!(seen.checked > 200, "{}", seen.checked);
    assert_eq!(ch.arbitration().lost, 0);
    assert!(ch.arbitration().duplicates >= 300, "every B copy is a duplicate");
    assert!(seen.trades > 50, "trades: {}", seen.trades);
}

#[test]
fn loss_on_one_feed_is_covered_by_the_other() {
    let (_, ch) = run(Setup::new(11, 400, 30, 0));
    assert_eq!(ch.arbitration().lost, 0);
}

#[test]
fn loss_on_both_feeds_recovers_from_snapshots() {
    let (seen, ch) = run(Setup::new(13, 600, 20, 20));
    assert!(ch.arbitration().gaps > 0, "the test made gaps");
    assert!(ch.counts().snapshots > 4, "it recovered more than once at start");
    assert!(seen.checked > 50, "{}", seen.checked);
}

#[test]
fn channel_resets_empty_the_books() {
    run(Setup { resets: true, ..Setup::new(17, 800, 5, 5) });
}

#[test]
fn order_books_recover_from_chunked_snapshots() {
    let (seen, ch) = run(Setup { orders: true, ..Setup::new(19, 600, 20, 20) });
    assert!(ch.arbitration().gaps > 0, "the test made gaps");
    assert!(ch.counts().orders > 200, "{:?}", ch.counts());
    assert!(seen.orders_checked > 50, "{}", seen.orders_checked);
}

/// Every trade of a loss-free run comes out, once: the sim sends one trade message in five.
#[test]
fn every_trade_comes_once() {
    let mut rng = Rng(23);
    let mut ex = Exchange::new(4, DEPTH);
    let mut ch = Channel::new(ChannelConfig { depth: DEPTH, ..Default::default() });
    for id in 1..=4 {
        ch.snapshot(&ex.snapshot(id as u32, id));
    }
    let now = Instant::now();
    let mut seen = Seen::default();
    let mut sent = 0;
    for _ in 0..500 {
        let p = ex.incremental(&mut rng);
        sent += trades_in(&p);
        ch.incremental(now, Feed::A, &p);
        ch.incremental(now, Feed::B, &p);
        seen.events(&mut ch, &ex, 23);
    }
    assert!(sent > 100, "{sent}");
    assert_eq!(seen.trades, sent);
    // The callback form: the book is read inside the callback, as it is published.
    let mut best_bids = 0;
    for _ in 0..100 {
        let p = ex.incremental(&mut rng);
        ch.incremental(now, Feed::A, &p);
        ch.for_each_event(|ch, e| {
            if let Event::Published(id) = e {
                best_bids += ch.book(id).map_or(0, |b| b.bids.levels().len().min(1));
            }
        });
    }
    assert!(best_bids > 50 && ch.poll_event().is_none(), "{best_bids}");
}

fn trades_in(packet: &[u8]) -> usize {
    let p = packet::Packet::parse(packet).unwrap();
    p.messages()
        .map(|m| match t::decode(m.unwrap()).unwrap() {
            t::Message::MDIncrementalRefreshTradeSummary48(m) => m.no_md_entries().unwrap().len(),
            _ => 0,
        })
        .sum()
}

/// Rule 11: the definition's MarketDepth (GBX outright, GBI implied) sizes the book; a
/// Delete forgets the instrument.
#[test]
fn definitions_set_the_depth() {
    let definition = |action: u8, depth: i8| {
        let mut msg = Vec::new();
        let mut d = t::md_instrument_definition_future54::Encoder::new(&mut msg);
        d.set_security_update_action(t::SecurityUpdateAction(action))
            .set_symbol(b"ESZ6\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0")
            .set_security_group(b"ES    ")
            .set_security_id(7);
        d.min_price_increment().set_mantissa(250_000_000);
        d.no_events(0);
        let mut feeds = d.no_md_feed_types(2);
        feeds.entry().set_md_feed_type(b"GBX").set_market_depth(depth);
        feeds.entry().set_md_feed_type(b"GBI").set_market_depth(1);
        let mut out = Vec::new();
        packet::write(1, 0, &[&msg], &mut out);
        out
    };
    let mut ch = Channel::new(ChannelConfig::default());
    ch.definitions(&definition(b'A', 3));
    assert_eq!(ch.poll_event(), Some(Event::JoinSnapshots));
    assert_eq!(ch.poll_event(), Some(Event::Defined(7)));
    let d = ch.definition(7).expect("defined");
    assert_eq!((d.symbol.as_str(), d.security_group.as_str()), ("ESZ6", "ES"));
    assert_eq!((d.depth, d.implied_depth, d.min_price_increment), (3, 1, 250_000_000));
    // The snapshot's book takes the definition's depth; a fourth level does not fit.
    let mut ex = Exchange::new(7, 3);
    let mut rng = Rng(5);
    for _ in 0..200 {
        ex.entry(&mut rng, 7);
    }
    ch.snapshot(&ex.snapshot(1, 7));
    assert_eq!(ch.book(7).map(|b| b.depth()), Some((3, 1)));
    let (book, truth) = (ch.book(7).expect("recovered"), &ex.books[&7].0);
    assert_eq!((&book.bids, &book.offers), (&truth.bids, &truth.offers));
    // The same definition again changes nothing; a Delete forgets the instrument.
    ch.definitions(&definition(b'M', 3));
    assert!(!std::iter::from_fn(|| ch.poll_event()).any(|e| e == Event::Defined(7)));
    ch.definitions(&definition(b'D', 3));
    assert!(ch.definition(7).is_none() && ch.book(7).is_none());
}

proptest! {
    // 48 cases by default; PROPTEST_CASES=N for more.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(48),
        ..ProptestConfig::default()
    })]
    /// Any seed, any loss on either feed, resets or not, orders or not: published books are
    /// always right.
    #[test]
    fn published_books_are_always_the_loss_free_books(
        seed in any::<u64>(),
        loss_a in 0u64..40,
        loss_b in 0u64..40,
        resets in any::<bool>(),
        orders in any::<bool>(),
    ) {
        run(Setup { seed, packets: 300, loss_a, loss_b, resets, orders });
    }
}
