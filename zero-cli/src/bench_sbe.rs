//! `zero bench sbe`: an MDP 3.0 incremental stream (from zero-sbe's simulated exchange: 1 to 3
//! messages a packet, 70% book updates of 1 to 4 entries, 20% trade summaries, 10% volume and
//! session statistics, on `--instruments` instruments), every packet on feeds A and B,
//! through zero-sbe's channel (arbitration, generated flyweights, RptSeq checks, MBP books,
//! publication, trade and statistic events), against a naive hand-written decoder doing the
//! same work (owned structs per packet, a set of seen numbers for arbitration, the same
//! books, trades and statistics collected).
//! Prints ns per packet (both copies included) and per message for each, and for zero-sbe's
//! arbitration and decoding alone (no books); the last line is `ns per packet: X` (zero's
//! channel, everything included).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use clap::Args;
use zero_sbe::mdp3::arbiter::{ArbiterConfig, Feed};
use zero_sbe::mdp3::book::{Action, Book, BookSide, Level};
use zero_sbe::mdp3::channel::{Channel, ChannelConfig, State};
use zero_sbe::mdp3::sim::{Exchange, Rng};

/// Options of `zero bench sbe`.
#[derive(Args, Debug)]
pub struct SbeLoad {
    /// Packets in the stream (each sent twice, on A and B).
    #[arg(long, default_value_t = 1_000_000)]
    packets: usize,
    /// Instruments on the channel.
    #[arg(long, default_value_t = 20)]
    instruments: i32,
    /// Passes over the stream (the best is reported).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

const DEPTH: usize = 10;

/// Runs `zero bench sbe`.
pub fn run(load: SbeLoad) -> Result<(), String> {
    #![allow(clippy::print_stdout)] // the report is the point
    let mut rng = Rng(0x5eed);
    let mut ex = Exchange::new(load.instruments, DEPTH).forgetful();
    let start_books = Exchange::new(load.instruments, DEPTH);
    let packets: Vec<Vec<u8>> = (0..load.packets).map(|_| ex.incremental(&mut rng)).collect();
    let messages: usize = packets
        .iter()
        .map(|p| zero_sbe::mdp3::packet::Packet::parse(p).map_or(0, |p| p.messages().count()))
        .sum();
    let bytes: usize = packets.iter().map(Vec::len).sum();
    println!(
        "stream: {} packets ({} messages, {:.1} MB), each on A and B; {} instruments, depth {DEPTH}",
        load.packets,
        messages,
        bytes as f64 / 1e6,
        load.instruments
    );

    // The same stream's shape with orders (MBO), for the by-order row.
    let mut rng = Rng(0x5eed);
    let mut ex_orders = Exchange::new(load.instruments, DEPTH).forgetful().with_orders();
    let start_orders = Exchange::new(load.instruments, DEPTH).with_orders();
    let order_packets: Vec<Vec<u8>> = (0..load.packets).map(|_| ex_orders.incremental(&mut rng)).collect();
    let mut best_orders = Duration::MAX;

    let mut best_zero = Duration::MAX;
    let mut best_naive = Duration::MAX;
    let mut best_decode = Duration::MAX;
    let mut checksum = 0i64;
    let mut published = 0;
    for _ in 0..load.rounds {
        let (took, events, trades) = channel(&packets, &start_books, &ex, false)?;
        best_zero = best_zero.min(took);
        published = events;

        // Arbitration and decoding alone (every entry's fields read), no books: what the
        // generated flyweights cost by themselves.
        let mut arbiter = zero_sbe::mdp3::arbiter::Arbiter::<()>::new(ArbiterConfig::default());
        let t0 = Instant::now();
        for p in &packets {
            for _copy in 0..2 {
                let Ok(packet) = zero_sbe::mdp3::packet::Packet::parse(p) else { continue };
                if arbiter.fast(packet.seq) == zero_sbe::mdp3::arbiter::Fast::Duplicate {
                    continue;
                }
                for m in packet.messages().flatten() {
                    use zero_sbe::mdp3::templates::Message;
                    let sum = match zero_sbe::mdp3::templates::decode(m) {
                        Ok(Message::MDIncrementalRefreshBook46(d)) => {
                            (d.no_md_entries().into_iter().flatten())
                                .flatten()
                                .map(|e| {
                                    e.md_entry_px().mantissa().unwrap_or(0)
                                        + i64::from(e.rpt_seq())
                                        + i64::from(e.md_price_level())
                                })
                                .sum()
                        }
                        Ok(Message::MDIncrementalRefreshTradeSummary48(d)) => {
                            (d.no_md_entries().into_iter().flatten())
                                .flatten()
                                .map(|e| e.md_entry_px().mantissa() + i64::from(e.rpt_seq()))
                                .sum()
                        }
                        Ok(Message::MDIncrementalRefreshVolume37(d)) => {
                            (d.no_md_entries().into_iter().flatten())
                                .flatten()
                                .map(|e| i64::from(e.md_entry_size()) + i64::from(e.rpt_seq()))
                                .sum()
                        }
                        Ok(Message::MDIncrementalRefreshSessionStatistics51(d)) => {
                            (d.no_md_entries().into_iter().flatten())
                                .flatten()
                                .map(|e| e.md_entry_px().mantissa() + i64::from(e.rpt_seq()))
                                .sum()
                        }
                        _ => 0i64,
                    };
                    checksum = checksum.wrapping_add(sum);
                }
            }
        }
        best_decode = best_decode.min(t0.elapsed());

        best_orders = best_orders.min(channel(&order_packets, &start_orders, &ex_orders, true)?.0);

        // The naive decoder.
        let mut naive = Naive::default();
        let t0 = Instant::now();
        for p in &packets {
            naive.packet(p);
            naive.packet(p);
        }
        best_naive = best_naive.min(t0.elapsed());
        for (id, (book, _)) in &ex.books {
            if naive.books.get(id) != Some(book) {
                return Err(format!("instrument {id}: the naive decoder's book is not the exchange's"));
            }
        }
        if naive.trades.len() != trades {
            return Err(format!("trades: zero gave {trades}, the naive decoder {}", naive.trades.len()));
        }
    }
    let per = |d: Duration, n: usize| d.as_nanos() as f64 / n as f64;
    println!("{:<28} {:>14} {:>15}", "decoder", "ns per packet", "ns per message");
    println!(
        "{:<28} {:>14.1} {:>15.1}",
        "zero-sbe channel",
        per(best_zero, load.packets),
        per(best_zero, messages)
    );
    println!(
        "{:<28} {:>14.1} {:>15.1}",
        "naive hand-written",
        per(best_naive, load.packets),
        per(best_naive, messages)
    );
    println!(
        "{:<28} {:>14.1} {:>15.1}   (no books; checksum {checksum})",
        "zero-sbe decode+arbitrate",
        per(best_decode, load.packets),
        per(best_decode, messages)
    );
    println!(
        "{:<28} {:>14.1} {:>15}   (another stream: half the book updates are order updates)",
        "zero-sbe channel, by order",
        per(best_orders, load.packets),
        "-"
    );
    println!("books published: {published}");
    println!("ratio naive/zero: {:.2}", best_naive.as_secs_f64() / best_zero.as_secs_f64());
    println!("ns per packet: {:.1}", per(best_zero, load.packets));
    Ok(())
}

/// zero-sbe's channel over `packets` (each on A and B), in sync from `opening`'s snapshots,
/// its books checked against `truth` at the end: the time, the events and the trades.
fn channel(
    packets: &[Vec<u8>],
    opening: &Exchange,
    truth: &Exchange,
    orders: bool,
) -> Result<(Duration, usize, usize), String> {
    let config =
        ChannelConfig { arbiter: ArbiterConfig::default(), depth: DEPTH, orders, ..Default::default() };
    let mut ch = Channel::new(config);
    for &id in opening.books.keys() {
        ch.snapshot(&opening.snapshot(id as u32, id));
        if orders {
            for chunk in opening.order_snapshot(id as u32, id, 50) {
                ch.snapshot(&chunk);
            }
        }
    }
    while ch.poll_event().is_some() {}
    if ch.state() != State::InSync {
        return Err("the channel did not get in sync from the opening snapshots".into());
    }
    let now = Instant::now();
    let t0 = Instant::now();
    let (mut events, mut trades) = (0usize, 0usize);
    for p in packets {
        ch.incremental(now, Feed::A, p);
        ch.incremental(now, Feed::B, p);
        while let Some(e) = ch.poll_event() {
            events += 1;
            trades += usize::from(matches!(e, zero_sbe::mdp3::channel::Event::Trade(_)));
        }
    }
    let took = t0.elapsed();
    let a = ch.arbitration();
    if a.delivered != packets.len() as u64 || a.duplicates != packets.len() as u64 {
        return Err(format!("arbitration: {a:?}"));
    }
    for (id, (book, _)) in &truth.books {
        if ch.book(*id) != Some(book) {
            return Err(format!("instrument {id}: zero's book is not the exchange's"));
        }
        if orders && ch.orders(*id) != truth.orders.get(id) {
            return Err(format!("instrument {id}: zero's orders are not the exchange's"));
        }
    }
    Ok((took, events, trades))
}

/// An entry decoded into an owned struct: a book level (46), a trade (48), volume (37) or a
/// statistic (51), all in the RptSeq sequence.
struct NaiveEntry {
    template: u16,
    security_id: i32,
    rpt_seq: u32,
    price: i64,
    qty: i32,
    level: u8,
    action: u8,
    entry_type: u8,
}

/// The naive decoder: owned structs per packet, a set of every number seen, trades and
/// statistics kept as owned structs too.
#[derive(Default)]
struct Naive {
    seen: HashSet<u32>,
    books: HashMap<i32, Book>,
    rpt: HashMap<i32, u32>,
    trades: Vec<(i32, i64, i32)>,
    statistics: Vec<(i32, u8, i64, i32)>,
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

impl Naive {
    fn packet(&mut self, p: &[u8]) {
        let seq = le32(p, 0);
        if !self.seen.insert(seq) {
            return;
        }
        let mut entries = Vec::new();
        let mut at = 12;
        while at + 2 <= p.len() {
            let size = usize::from(le16(p, at));
            let m = &p[at + 2..at + size];
            at += size;
            let template = le16(m, 2);
            let block = usize::from(le16(m, 0));
            let g = 8 + block;
            let entry_len = usize::from(le16(m, g));
            let count = usize::from(m[g + 2]);
            for i in 0..count {
                let e = &m[g + 3 + i * entry_len..];
                let price = |at: usize| i64::from_le_bytes(e[at..at + 8].try_into().expect("8 bytes"));
                entries.push(match template {
                    46 => NaiveEntry {
                        template,
                        price: price(0),
                        qty: le32(e, 8) as i32,
                        security_id: le32(e, 12) as i32,
                        rpt_seq: le32(e, 16),
                        level: e[24],
                        action: e[25],
                        entry_type: e[26],
                    },
                    48 => NaiveEntry {
                        template,
                        price: price(0),
                        qty: le32(e, 8) as i32,
                        security_id: le32(e, 12) as i32,
                        rpt_seq: le32(e, 16),
                        level: 0,
                        action: e[25],
                        entry_type: b'2',
                    },
                    37 => NaiveEntry {
                        template,
                        price: 0,
                        qty: le32(e, 0) as i32,
                        security_id: le32(e, 4) as i32,
                        rpt_seq: le32(e, 8),
                        level: 0,
                        action: e[12],
                        entry_type: b'e',
                    },
                    51 => NaiveEntry {
                        template,
                        price: price(0),
                        qty: le32(e, 19) as i32,
                        security_id: le32(e, 8) as i32,
                        rpt_seq: le32(e, 12),
                        level: 0,
                        action: e[17],
                        entry_type: e[18],
                    },
                    _ => break,
                });
            }
        }
        for e in entries {
            let rpt = self.rpt.entry(e.security_id).or_insert(0);
            if e.rpt_seq != *rpt + 1 {
                continue;
            }
            *rpt = e.rpt_seq;
            match e.template {
                46 => {
                    let book = self.books.entry(e.security_id).or_insert_with(|| Book::new(DEPTH, 2));
                    if let (Some(side), Some(action)) =
                        (BookSide::from_entry_type(e.entry_type), Action::from_u8(e.action))
                    {
                        let level = Level { price: e.price, qty: e.qty, orders: None };
                        let _ = book.apply(side, action, e.level, level);
                    }
                }
                48 => self.trades.push((e.security_id, e.price, e.qty)),
                _ => self.statistics.push((e.security_id, e.entry_type, e.price, e.qty)),
            }
        }
    }
}
