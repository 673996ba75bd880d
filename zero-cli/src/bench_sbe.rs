//! `zero bench sbe`: an MDP 3.0 incremental stream (from zero-sbe's simulated exchange: 1 to 3
//! book messages a packet, 1 to 4 entries each, on `--instruments` instruments), every
//! packet on feeds A and B, through zero-sbe's channel (arbitration, generated flyweights,
//! RptSeq checks, MBP books, publication), against a naive hand-written decoder doing the same
//! work (owned structs per packet, a set of seen numbers for arbitration, the same books).
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

    let mut best_zero = Duration::MAX;
    let mut best_naive = Duration::MAX;
    let mut best_decode = Duration::MAX;
    let mut checksum = 0i64;
    let mut published = 0;
    for _ in 0..load.rounds {
        // zero-sbe's channel, brought in sync by the exchange's opening snapshots.
        let config = ChannelConfig { arbiter: ArbiterConfig::default(), depth: DEPTH, ..Default::default() };
        let mut ch = Channel::new(config);
        for id in 1..=load.instruments {
            ch.snapshot(&start_books.snapshot(id as u32, id));
        }
        while ch.poll_event().is_some() {}
        if ch.state() != State::InSync {
            return Err("the channel did not get in sync from the opening snapshots".into());
        }
        let now = Instant::now();
        let t0 = Instant::now();
        let mut events = 0usize;
        for p in &packets {
            ch.incremental(now, Feed::A, p);
            ch.incremental(now, Feed::B, p);
            while ch.poll_event().is_some() {
                events += 1;
            }
        }
        best_zero = best_zero.min(t0.elapsed());
        published = events;
        let a = ch.arbitration();
        if a.delivered != load.packets as u64 || a.duplicates != load.packets as u64 {
            return Err(format!("arbitration: {a:?}"));
        }
        for (id, (book, _)) in &ex.books {
            if ch.book(*id) != Some(book) {
                return Err(format!("instrument {id}: zero's book is not the exchange's"));
            }
        }

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
                    if let Ok(zero_sbe::mdp3::templates::Message::MDIncrementalRefreshBook46(d)) =
                        zero_sbe::mdp3::templates::decode(m)
                    {
                        for e in d.no_md_entries().into_iter().flatten().flatten() {
                            checksum = checksum
                                .wrapping_add(e.md_entry_px().mantissa().unwrap_or(0))
                                .wrapping_add(i64::from(e.rpt_seq()) + i64::from(e.md_price_level()));
                        }
                    }
                }
            }
        }
        best_decode = best_decode.min(t0.elapsed());

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
    println!("books published: {published}");
    println!("ratio naive/zero: {:.2}", best_naive.as_secs_f64() / best_zero.as_secs_f64());
    println!("ns per packet: {:.1}", per(best_zero, load.packets));
    Ok(())
}

/// A book entry decoded into an owned struct.
struct NaiveEntry {
    security_id: i32,
    rpt_seq: u32,
    price: i64,
    qty: i32,
    level: u8,
    action: u8,
    entry_type: u8,
}

/// The naive decoder: owned structs per packet, a set of every number seen.
#[derive(Default)]
struct Naive {
    seen: HashSet<u32>,
    books: HashMap<i32, Book>,
    rpt: HashMap<i32, u32>,
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
            if le16(m, 2) != 46 {
                continue;
            }
            let block = usize::from(le16(m, 0));
            let g = 8 + block;
            let entry_len = usize::from(le16(m, g));
            let count = usize::from(m[g + 2]);
            for i in 0..count {
                let e = &m[g + 3 + i * entry_len..];
                entries.push(NaiveEntry {
                    price: i64::from_le_bytes(e[0..8].try_into().expect("8 bytes")),
                    qty: le32(e, 8) as i32,
                    security_id: le32(e, 12) as i32,
                    rpt_seq: le32(e, 16),
                    level: e[24],
                    action: e[25],
                    entry_type: e[26],
                });
            }
        }
        for e in entries {
            let rpt = self.rpt.entry(e.security_id).or_insert(0);
            if e.rpt_seq != *rpt + 1 {
                continue;
            }
            *rpt = e.rpt_seq;
            let book = self.books.entry(e.security_id).or_insert_with(|| Book::new(DEPTH, 2));
            if let (Some(side), Some(action)) =
                (BookSide::from_entry_type(e.entry_type), Action::from_u8(e.action))
            {
                let _ = book.apply(side, action, e.level, Level { price: e.price, qty: e.qty, orders: None });
            }
        }
    }
}
