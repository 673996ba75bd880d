//! Replay a pcap/pcapng capture of a CME MDP 3.0 channel through zero-sbe's channel (A/B
//! arbitration, snapshot recovery, books by price), then print the messages per template,
//! the arbitration counts and each instrument's final book. It needs a capture (`tcpdump -w`)
//! and the schema naming the templates (zero-sbe carries one):
//!
//! ```text
//! cargo run -p zero-examples --example sbe_replay -- feed.pcap zero-sbe/schemas/mdp3.xml \
//!     224.0.31.1:14310 224.0.32.1:15310 224.0.25.1:14310
//! ```
//!
//! Arguments: `CAPTURE SCHEMA [FEED_A [FEED_B [SNAPSHOT]]]`, the feeds as the datagrams'
//! destinations (group:port); without them, every datagram is read as feed A.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use zero_sbe::mdp3::arbiter::Feed;
use zero_sbe::mdp3::book::Level;
use zero_sbe::mdp3::channel::{Channel, ChannelConfig, Event};
use zero_sbe::mdp3::packet::Packet;
use zero_sbe::Schema;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(file), Some(schema)) = (args.first(), args.get(1)) else {
        return Err("usage: sbe_replay CAPTURE SCHEMA [FEED_A [FEED_B [SNAPSHOT]]]".into());
    };
    let feed = |i: usize| args.get(i).map(|a| a.parse::<SocketAddr>()).transpose();
    let (feed_a, feed_b, snapshot) = (feed(2)?, feed(3)?, feed(4)?);
    let schema = Schema::parse(&std::fs::read_to_string(schema)?)?;
    let bytes = std::fs::read(file)?;
    let datagrams = zero_sbe::capture::datagrams(&bytes)?; // UDP payloads, borrowed from `bytes`

    // Books 10 deep (set `orders: true` to keep books by order too). The channel is sans-I/O:
    // the capture's own timestamps are its clock.
    let mut channel = Channel::new(ChannelConfig::default());
    let (base, first) = (Instant::now(), datagrams.first().map_or(0, |d| d.time_ns));
    let mut templates: BTreeMap<String, u64> = BTreeMap::new();
    let mut trades = 0;
    let mut drain = |channel: &mut Channel| {
        while let Some(event) = channel.poll_event() {
            match event {
                Event::Trade(_) => trades += 1,
                Event::Gap { from, to } => println!("gap: packets {from}-{to} lost on both feeds"),
                _ => {} // Published, Stale, Recovered, Statistic, Status, Defined, ...
            }
        }
    };
    for d in &datagrams {
        let now = base + Duration::from_nanos(d.time_ns.saturating_sub(first));
        channel.handle_timeout(now); // the arbiter's wait for a missing packet
        if snapshot == Some(d.to) {
            channel.snapshot(d.payload);
        } else if feed_b == Some(d.to) {
            channel.incremental(now, Feed::B, d.payload);
        } else if feed_a.is_none() || feed_a == Some(d.to) {
            // Count feed A's messages by template, named from the schema.
            for m in Packet::parse(d.payload).iter().flat_map(|p| p.messages().flatten()) {
                let id = zero_sbe::decode::header(&schema, m).map(|h| h.template_id);
                let name =
                    id.ok().and_then(|id| schema.message(id)).map_or("unknown".into(), |t| t.name.clone());
                *templates.entry(name).or_default() += 1;
            }
            channel.incremental(now, Feed::A, d.payload);
        }
        drain(&mut channel);
    }
    // The end of the capture: let the gap timers run out.
    while let Some(at) = channel.poll_timeout() {
        channel.handle_timeout(at);
        drain(&mut channel);
    }

    for (name, count) in &templates {
        println!("messages {name}: {count}");
    }
    let a = channel.arbitration();
    println!(
        "packets: {} delivered, {} duplicates, {} lost in {} gaps",
        a.delivered, a.duplicates, a.lost, a.gaps
    );
    println!("trades: {trades}; channel {:?}", channel.state());
    // Each book, best level first, `price x qty`: prices are mantissas of exponent -9.
    let side = |levels: &[Level]| {
        levels.iter().map(|l| format!("{}x{}", l.price, l.qty)).collect::<Vec<_>>().join(" ")
    };
    for id in channel.instruments() {
        let Some(b) = channel.book(id) else {
            println!("book {id}: stale"); // not (yet) recovered from a snapshot
            continue;
        };
        println!("book {id}: bids [{}] offers [{}]", side(b.bids.levels()), side(b.offers.levels()));
    }
    Ok(())
}
