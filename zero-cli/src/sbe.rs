//! `zero sbe decode`: SBE messages from a file (or standard input) as JSON lines, decoded
//! from the schema alone; `zero sbe generate`: a schema's Rust flyweights.

use std::io::Write;
use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use zero_sbe::mdp3::packet::Packet;
use zero_sbe::Schema;

/// `zero sbe` commands.
#[derive(Subcommand, Debug)]
pub enum SbeCommand {
    /// Print each message of FILE as a JSON line (the schema says how to read them).
    Decode {
        /// The XML message schema.
        #[arg(long)]
        schema: PathBuf,
        /// How messages are framed in the file.
        #[arg(long, value_enum, default_value = "none")]
        framing: Framing,
        /// The file (`-` for standard input).
        #[arg(default_value = "-")]
        file: PathBuf,
    },
    /// Replay an MDP 3.0 capture (pcap or pcapng) through zero-sbe's channel: messages per
    /// template, arbitration, gaps, recoveries, and the final books.
    Replay {
        /// The capture file.
        file: PathBuf,
        /// The schema that names the templates in the counts (CME's, or zero-sbe's own).
        #[arg(long)]
        schema: PathBuf,
        /// Feed A's destination (group:port); without feeds, every datagram is feed A.
        #[arg(long)]
        feed_a: Option<std::net::SocketAddr>,
        /// Feed B's destination.
        #[arg(long)]
        feed_b: Option<std::net::SocketAddr>,
        /// The snapshot loop's destination.
        #[arg(long)]
        snapshot: Option<std::net::SocketAddr>,
        /// Outright book depth.
        #[arg(long, default_value_t = 10)]
        depth: usize,
    },
    /// Print (or write to --out) the Rust flyweight decoders of a schema, as a `build.rs`
    /// would make them with `zero_sbe::generate::rust`.
    Generate {
        /// The XML message schema.
        #[arg(long)]
        schema: PathBuf,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn read_schema(path: &std::path::Path) -> Result<Schema, String> {
    let xml = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Schema::parse(&xml).map_err(|e| e.to_string())
}

/// Framings of a file of messages.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Framing {
    /// Messages back to back, each found by its header and schema.
    None,
    /// One CME MDP 3.0 packet: MsgSeqNum (u32), SendingTime (u64), then each message after
    /// its size (u16, the size included).
    Mdp3,
}

/// Runs a `zero sbe` command.
pub fn run(command: SbeCommand) -> Result<(), String> {
    let (schema, framing, file) = match command {
        SbeCommand::Generate { schema, out } => {
            let code = zero_sbe::generate::rust(&read_schema(&schema)?);
            return match out {
                Some(path) => std::fs::write(&path, code).map_err(|e| format!("{}: {e}", path.display())),
                None => std::io::stdout().write_all(code.as_bytes()).map_err(|e| e.to_string()),
            };
        }
        SbeCommand::Decode { schema, framing, file } => (read_schema(&schema)?, framing, file),
        SbeCommand::Replay { file, schema, feed_a, feed_b, snapshot, depth } => {
            return replay(&file, &read_schema(&schema)?, [feed_a, feed_b, snapshot], depth);
        }
    };
    let bytes = if file.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b).map_err(|e| e.to_string())?;
        b
    } else {
        std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?
    };
    let mut out = std::io::stdout().lock();
    let mut line = |value: serde_json::Value| writeln!(out, "{value}").map_err(|e| e.to_string());
    match framing {
        Framing::None => {
            let mut at = 0;
            while at < bytes.len() {
                let (value, used) =
                    zero_sbe::to_json(&schema, &bytes[at..]).map_err(|e| format!("at byte {at}: {e}"))?;
                line(value)?;
                at += used;
            }
        }
        Framing::Mdp3 => {
            let packet = Packet::parse(&bytes).map_err(|e| e.to_string())?;
            line(
                serde_json::json!({ "$packet": { "msgSeqNum": packet.seq, "sendingTime": packet.sending_time } }),
            )?;
            for message in packet.messages() {
                let message = message.map_err(|e| e.to_string())?;
                let (value, _) = zero_sbe::to_json(&schema, message).map_err(|e| e.to_string())?;
                line(value)?;
            }
        }
    }
    Ok(())
}

/// `zero sbe replay`.
fn replay(
    file: &std::path::Path,
    schema: &Schema,
    [feed_a, feed_b, snapshot]: [Option<std::net::SocketAddr>; 3],
    depth: usize,
) -> Result<(), String> {
    use std::collections::BTreeMap;
    use zero_sbe::mdp3::arbiter::Feed;
    use zero_sbe::mdp3::channel::{Channel, ChannelConfig, Event};

    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let datagrams = zero_sbe::capture::datagrams(&bytes).map_err(|e| e.to_string())?;
    let mut ch = Channel::new(ChannelConfig { depth, ..ChannelConfig::default() });
    let base = std::time::Instant::now();
    let first = datagrams.first().map_or(0, |d| d.time_ns);
    let (mut on_a, mut on_b, mut on_snapshot, mut other) = (0u64, 0u64, 0u64, 0u64);
    let mut templates: BTreeMap<String, u64> = BTreeMap::new();
    let (mut gaps, mut recovered, mut stale, mut resets) = (Vec::new(), 0u64, 0u64, 0u64);
    for d in &datagrams {
        let now = base + std::time::Duration::from_nanos(d.time_ns.saturating_sub(first));
        ch.handle_timeout(now);
        let feed = if Some(d.to) == snapshot {
            on_snapshot += 1;
            ch.snapshot(d.payload);
            None
        } else if Some(d.to) == feed_b {
            on_b += 1;
            Some(Feed::B)
        } else if feed_a.is_none() || Some(d.to) == feed_a {
            on_a += 1;
            Some(Feed::A)
        } else {
            other += 1;
            None
        };
        if let Some(feed) = feed {
            if let Ok(p) = Packet::parse(d.payload) {
                if feed == Feed::A || feed_a.is_none() {
                    for m in p.messages().flatten() {
                        let name = zero_sbe::decode::header(schema, m)
                            .ok()
                            .and_then(|h| {
                                schema
                                    .message(h.template_id)
                                    .map(|t| t.name.clone())
                                    .or(Some(format!("template {}", h.template_id)))
                            })
                            .unwrap_or_else(|| "malformed".into());
                        *templates.entry(name).or_default() += 1;
                    }
                }
            }
            ch.incremental(now, feed, d.payload);
        }
        while let Some(e) = ch.poll_event() {
            match e {
                Event::Gap { from, to } => gaps.push((from, to)),
                Event::Recovered(_) => recovered += 1,
                Event::Stale(_) => stale += 1,
                Event::ChannelReset => resets += 1,
                _ => {}
            }
        }
    }
    while let Some(t) = ch.poll_timeout() {
        ch.handle_timeout(t);
        while let Some(e) = ch.poll_event() {
            if let Event::Gap { from, to } = e {
                gaps.push((from, to));
            }
        }
    }
    let mut out = std::io::stdout().lock();
    let mut say = |line: String| writeln!(out, "{line}").map_err(|e| e.to_string());
    say(format!(
        "datagrams: {} (A {on_a}, B {on_b}, snapshot {on_snapshot}, other {other})",
        datagrams.len()
    ))?;
    for (name, count) in &templates {
        say(format!("messages {name}: {count}"))?;
    }
    let a = ch.arbitration();
    say(format!(
        "packets: {} delivered, {} duplicates, {} lost in {} gaps",
        a.delivered, a.duplicates, a.lost, a.gaps
    ))?;
    for (from, to) in &gaps {
        say(format!("gap: {from}-{to}"))?;
    }
    say(format!(
        "recoveries: {recovered} books recovered, {stale} went stale, {resets} channel resets; state {:?}",
        ch.state()
    ))?;
    for id in ch.instruments() {
        match ch.book(id) {
            Some(book) => say(format!("book {id}: {}", describe(book)))?,
            None => say(format!("book {id}: stale"))?,
        }
    }
    Ok(())
}

/// A book on one line: bids, then offers, best first, `price x qty` (price in units of 1e-9).
pub fn describe(book: &zero_sbe::mdp3::book::Book) -> String {
    let side = |levels: &zero_sbe::mdp3::book::Levels| {
        levels.levels().iter().map(|l| format!("{}x{}", l.price, l.qty)).collect::<Vec<_>>().join(" ")
    };
    format!("bids [{}] offers [{}]", side(&book.bids), side(&book.offers))
}
