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
        /// The order snapshot loop's destination.
        #[arg(long)]
        order_snapshot: Option<std::net::SocketAddr>,
        /// The instrument definition loop's destination.
        #[arg(long)]
        definitions: Option<std::net::SocketAddr>,
        #[command(flatten)]
        books: BookArgs,
    },
    /// Run zero-sbe's channel on live multicast feeds (A, B, and the snapshot loop while
    /// recovering) until --packets are in or --seconds pass, then print as `replay` does.
    Listen {
        /// The schema that names the templates in the counts.
        #[arg(long)]
        schema: PathBuf,
        /// Feed A (group:port).
        #[arg(long)]
        feed_a: std::net::SocketAddrV4,
        /// Feed B.
        #[arg(long)]
        feed_b: std::net::SocketAddrV4,
        /// The snapshot loop.
        #[arg(long)]
        snapshot: std::net::SocketAddrV4,
        /// The order snapshot loop.
        #[arg(long)]
        order_snapshot: Option<std::net::SocketAddrV4>,
        /// The instrument definition loop.
        #[arg(long)]
        definitions: Option<std::net::SocketAddrV4>,
        /// The exchange's source address: source-specific joins.
        #[arg(long)]
        source: Option<std::net::Ipv4Addr>,
        /// The interface's address to join on.
        #[arg(long, default_value = "0.0.0.0")]
        interface: std::net::Ipv4Addr,
        #[command(flatten)]
        books: BookArgs,
        /// Stop after this many packets are in.
        #[arg(long, default_value_t = u64::MAX)]
        packets: u64,
        /// Stop after this long.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
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

/// The books a replay or a listen keeps.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct BookArgs {
    /// Outright book depth for instruments without a definition.
    #[arg(long, default_value_t = 10)]
    depth: usize,
    /// Keep books by order (market by order) too.
    #[arg(long)]
    orders: bool,
}

impl BookArgs {
    fn channel(self) -> zero_sbe::mdp3::channel::Channel {
        use zero_sbe::mdp3::channel::{Channel, ChannelConfig};
        Channel::new(ChannelConfig { depth: self.depth, orders: self.orders, ..ChannelConfig::default() })
    }
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
        SbeCommand::Listen {
            schema,
            feed_a,
            feed_b,
            snapshot,
            order_snapshot,
            definitions,
            source,
            interface,
            books,
            packets,
            seconds,
        } => {
            let feeds = zero_sbe::mdp3::driver::Feeds {
                a: feed_a,
                b: feed_b,
                snapshot,
                order_snapshot,
                definitions,
                source,
                interface,
            };
            return listen(&read_schema(&schema)?, feeds, books, packets, seconds);
        }
        SbeCommand::Replay { file, schema, feed_a, feed_b, snapshot, order_snapshot, definitions, books } => {
            let to = [feed_a, feed_b, snapshot, order_snapshot, definitions];
            return replay(&file, &read_schema(&schema)?, to, books);
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

/// What a replay or a listen counted.
#[derive(Default)]
struct Tally {
    datagrams: u64,
    on_a: u64,
    on_b: u64,
    on_snapshot: u64,
    other: u64,
    templates: std::collections::BTreeMap<String, u64>,
    gaps: Vec<(u32, u32)>,
    recovered: u64,
    stale: u64,
    resets: u64,
    trades: u64,
    statistics: u64,
    statuses: u64,
    definitions: u64,
}

impl Tally {
    /// Counts feed A's messages by template (named by `schema`).
    fn messages(&mut self, schema: &Schema, payload: &[u8]) {
        let Ok(p) = Packet::parse(payload) else { return };
        for m in p.messages().flatten() {
            let name = match zero_sbe::decode::header(schema, m) {
                Ok(h) => schema
                    .message(h.template_id)
                    .map_or(format!("template {}", h.template_id), |t| t.name.clone()),
                Err(_) => "malformed".into(),
            };
            *self.templates.entry(name).or_default() += 1;
        }
    }

    fn event(&mut self, e: zero_sbe::mdp3::channel::Event) {
        use zero_sbe::mdp3::channel::Event;
        match e {
            Event::Gap { from, to } => self.gaps.push((from, to)),
            Event::Recovered(_) => self.recovered += 1,
            Event::Stale(_) => self.stale += 1,
            Event::ChannelReset => self.resets += 1,
            Event::Trade(_) => self.trades += 1,
            Event::Statistic(_) => self.statistics += 1,
            Event::Status(_) => self.statuses += 1,
            Event::Defined(_) => self.definitions += 1,
            _ => {}
        }
    }

    fn print(&self, ch: &zero_sbe::mdp3::channel::Channel) -> Result<(), String> {
        let mut out = std::io::stdout().lock();
        let mut say = |line: String| writeln!(out, "{line}").map_err(|e| e.to_string());
        say(format!(
            "datagrams: {} (A {}, B {}, snapshot {}, other {})",
            self.datagrams, self.on_a, self.on_b, self.on_snapshot, self.other
        ))?;
        for (name, count) in &self.templates {
            say(format!("messages {name}: {count}"))?;
        }
        let a = ch.arbitration();
        say(format!(
            "packets: {} delivered, {} duplicates, {} lost in {} gaps",
            a.delivered, a.duplicates, a.lost, a.gaps
        ))?;
        for (from, to) in &self.gaps {
            say(format!("gap: {from}-{to}"))?;
        }
        say(format!(
            "recoveries: {} books recovered, {} went stale, {} channel resets; state {:?}",
            self.recovered,
            self.stale,
            self.resets,
            ch.state()
        ))?;
        say(format!(
            "events: {} trades, {} statistics, {} status changes, {} definitions",
            self.trades, self.statistics, self.statuses, self.definitions
        ))?;
        for id in ch.instruments() {
            let name = ch.definition(id).map_or(String::new(), |d| format!(" ({})", d.symbol));
            match ch.book(id) {
                Some(book) => say(format!("book {id}{name}: {}", describe(book)))?,
                None => say(format!("book {id}{name}: stale"))?,
            }
            if ch.config().orders {
                match ch.orders(id) {
                    Some(orders) => say(format!("orders {id}: {}", describe_orders(orders)))?,
                    None => say(format!("orders {id}: stale"))?,
                }
            }
        }
        Ok(())
    }
}

/// `zero sbe replay`.
fn replay(
    file: &std::path::Path,
    schema: &Schema,
    [feed_a, feed_b, snapshot, order_snapshot, definitions]: [Option<std::net::SocketAddr>; 5],
    books: BookArgs,
) -> Result<(), String> {
    use zero_sbe::mdp3::arbiter::Feed;

    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let datagrams = zero_sbe::capture::datagrams(&bytes).map_err(|e| e.to_string())?;
    let mut ch = books.channel();
    let base = std::time::Instant::now();
    let first = datagrams.first().map_or(0, |d| d.time_ns);
    let mut tally = Tally { datagrams: datagrams.len() as u64, ..Tally::default() };
    for d in &datagrams {
        let now = base + std::time::Duration::from_nanos(d.time_ns.saturating_sub(first));
        ch.handle_timeout(now);
        if Some(d.to) == snapshot || Some(d.to) == order_snapshot {
            tally.on_snapshot += 1;
            ch.snapshot(d.payload);
        } else if Some(d.to) == definitions {
            tally.other += 1;
            ch.definitions(d.payload);
        } else if Some(d.to) == feed_b {
            tally.on_b += 1;
            ch.incremental(now, Feed::B, d.payload);
        } else if feed_a.is_none() || Some(d.to) == feed_a {
            tally.on_a += 1;
            tally.messages(schema, d.payload);
            ch.incremental(now, Feed::A, d.payload);
        } else {
            tally.other += 1;
        }
        while let Some(e) = ch.poll_event() {
            tally.event(e);
        }
    }
    while let Some(t) = ch.poll_timeout() {
        ch.handle_timeout(t);
        while let Some(e) = ch.poll_event() {
            tally.event(e);
        }
    }
    tally.print(&ch)
}

/// `zero sbe listen`: the channel on multicast feeds until `packets` are in or `seconds` pass.
fn listen(
    schema: &Schema,
    feeds: zero_sbe::mdp3::driver::Feeds,
    books: BookArgs,
    packets: u64,
    seconds: u64,
) -> Result<(), String> {
    use zero_core::{Config, Event as IoEvent, Handler, Io, Ops};
    use zero_sbe::mdp3::driver::{ChannelDriver, Socket};

    struct Listen<'s> {
        driver: ChannelDriver,
        schema: &'s Schema,
        tally: Tally,
        packets: u64,
        until: std::time::Instant,
        failed: Option<String>,
    }
    impl Handler for Listen<'_> {
        fn on_event(&mut self, ops: &mut Ops, event: IoEvent<'_>) {
            if let IoEvent::Datagram { udp, data, .. } = &event {
                self.tally.datagrams += 1;
                match self.driver.socket(*udp) {
                    Some(Socket::A) => {
                        self.tally.on_a += 1;
                        self.tally.messages(self.schema, data);
                    }
                    Some(Socket::B) => self.tally.on_b += 1,
                    Some(Socket::Snapshot | Socket::OrderSnapshot) => self.tally.on_snapshot += 1,
                    Some(Socket::Definitions) | None => self.tally.other += 1,
                }
            }
            self.driver.on_event(ops, &event);
        }
        fn on_batch_end(&mut self, ops: &mut Ops) {
            if let Err(e) = self.driver.pump(ops) {
                self.failed = Some(e.to_string());
                ops.stop();
            }
            let tally = &mut self.tally;
            self.driver.for_each_event(|_, e| tally.event(e));
            if self.driver.channel().arbitration().delivered >= self.packets || ops.now() >= self.until {
                ops.stop();
            }
        }
    }
    let mut io = Io::new(Config::default()).map_err(|e| e.to_string())?;
    let mut driver = ChannelDriver::new(books.channel(), feeds, 1);
    driver.start(&mut io).map_err(|e| e.to_string())?;
    let within = std::time::Duration::from_secs(seconds);
    io.timer(within, u64::MAX);
    let mut l = Listen {
        driver,
        schema,
        tally: Tally::default(),
        packets,
        until: std::time::Instant::now() + within,
        failed: None,
    };
    eprintln!(
        "zero sbe: listening on A {} and B {} (snapshot loop {} while recovering)",
        feeds.a, feeds.b, feeds.snapshot
    );
    io.run(&mut l).map_err(|e| e.to_string())?;
    if let Some(e) = l.failed {
        return Err(e);
    }
    l.tally.print(l.driver.channel())
}

/// A book on one line: bids, then offers, best first, `price x qty` (price in units of 1e-9).
pub fn describe(book: &zero_sbe::mdp3::book::Book) -> String {
    let side = |levels: &zero_sbe::mdp3::book::Levels| {
        levels.levels().iter().map(|l| format!("{}x{}", l.price, l.qty)).collect::<Vec<_>>().join(" ")
    };
    format!("bids [{}] offers [{}]", side(&book.bids), side(&book.offers))
}

/// A book by order on one line: how many orders rest, and the first order of each side.
pub fn describe_orders(orders: &zero_sbe::mdp3::orders::OrderBook) -> String {
    let first = |o: Option<&zero_sbe::mdp3::orders::Order>| {
        o.map_or("none".to_string(), |o| format!("{}x{} (order {})", o.price, o.qty, o.id))
    };
    format!(
        "{} resting, best bid {}, best offer {}",
        orders.len(),
        first(orders.bids().next()),
        first(orders.offers().next())
    )
}
