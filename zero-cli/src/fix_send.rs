//! `zero fix send`: log on to an acceptor, send messages given as `tag=value|...` (the
//! session writes the header), print what comes back (named from the dictionary), log out.

use std::time::{Duration, Instant, SystemTime};

use clap::Args;
use zero_core::machine::Driver;
use zero_core::{Config, Event as IoEvent, Handler, Io, Ops, Target};
use zero_fix::dict::Dictionary;
use zero_fix::session::{Event, MemoryStore, Session};

/// Options of `zero fix send`.
#[derive(Args, Debug)]
pub struct SendArgs {
    #[command(flatten)]
    to: crate::fix::Counterparty,
    /// How long to wait for answers after the last message.
    #[arg(long, default_value_t = 2)]
    wait: u64,
    /// The messages: `35=D|11=ORD-1|55=ZERO|...` (MsgType first; `|` or SOH between fields).
    #[arg(required = true)]
    messages: Vec<String>,
}

/// A message to send: its MsgType and its fields after the header.
type Outgoing = (Vec<u8>, Vec<(u32, Vec<u8>)>);

struct Sender {
    driver: Driver<Session>,
    messages: Vec<Outgoing>,
    sent: bool,
    quiet_from: Option<Instant>,
    wait: Duration,
    failed: Option<String>,
}

impl Sender {
    fn pump(&mut self, ops: &mut Ops) {
        let now = ops.now();
        let mut logged_on = false;
        while let Some(event) = self.driver.machine().poll_event() {
            match event {
                Event::LoggedOn => logged_on = true,
                Event::Application(m) => {
                    let begin = String::from_utf8_lossy(m.begin_string()).into_owned();
                    crate::fix::print_message(
                        &begin,
                        m.fields().iter().map(|f| (f.tag, m.value(f))),
                        Dictionary::for_message(&begin, m.msg_type()),
                    );
                    self.quiet_from = Some(now);
                }
                Event::Rejected { ref_seq_num, reason, text } => {
                    println!("Reject of {ref_seq_num:?}: reason {reason:?} {}\n", text.unwrap_or_default())
                }
                Event::Disconnected(cause) => self.failed = Some(format!("{cause:?}")),
                _ => {}
            }
        }
        if logged_on && !self.sent {
            for (msg_type, fields) in &self.messages {
                let sent = self.driver.machine().send(now, msg_type, |b| {
                    for (tag, value) in fields {
                        b.str(*tag, value);
                    }
                });
                if let Err(e) = sent {
                    self.failed = Some(e.to_string());
                }
            }
            self.sent = true;
            self.quiet_from = Some(now);
        }
        if self.quiet_from.is_some_and(|at| now >= at + self.wait) {
            self.driver.machine().close(now);
            self.quiet_from = None;
        }
        self.driver.pump(ops);
    }
}

impl Handler for Sender {
    fn on_event(&mut self, ops: &mut Ops, event: IoEvent<'_>) {
        self.driver.on_event(ops, &event);
    }

    fn on_batch_end(&mut self, ops: &mut Ops) {
        self.pump(ops);
        if self.failed.is_some() || (self.driver.conn().is_none() && self.sent) {
            ops.stop();
        }
    }
}

/// `35=D|11=X|...` as (MsgType, fields).
fn parse(text: &str) -> Result<Outgoing, String> {
    let mut fields = Vec::new();
    for field in text.split(['|', '\x01']).filter(|f| !f.is_empty()) {
        let (tag, value) = field.split_once('=').ok_or(format!("{field}: not tag=value"))?;
        let tag: u32 = tag.parse().map_err(|_| format!("{field}: the tag is not a number"))?;
        fields.push((tag, value.as_bytes().to_vec()));
    }
    match fields.split_first() {
        Some(((35, msg_type), rest)) => Ok((msg_type.clone(), rest.to_vec())),
        _ => Err(format!("{text}: the first field must be 35 (MsgType)")),
    }
}

/// Runs `zero fix send`.
pub fn run(args: SendArgs) -> Result<(), String> {
    let messages = args.messages.iter().map(|m| parse(m)).collect::<Result<Vec<_>, _>>()?;
    let mut config = args.to.config();
    config.reset_on_logon = true;
    let session = Session::new(config, MemoryStore::default(), Instant::now(), SystemTime::now().into());
    let mut sender = Sender {
        driver: Driver::new(session, Target::tcp(args.to.target), 0),
        messages,
        sent: false,
        quiet_from: None,
        wait: Duration::from_secs(args.wait),
        failed: None,
    };
    let mut io = Io::new(Config::default()).map_err(|e| e.to_string())?;
    sender.driver.pump(&mut io);
    let deadline = Instant::now() + Duration::from_secs(10) + sender.wait;
    while Instant::now() < deadline {
        io.run_once(&mut sender, Some(Duration::from_millis(50))).map_err(|e| e.to_string())?;
        if sender.failed.is_some() || (sender.sent && sender.driver.conn().is_none()) {
            break;
        }
    }
    match sender.failed {
        Some(why) if !why.starts_with("LoggedOut") => Err(why),
        _ if !sender.sent => Err(format!("no logon at {} within 10 s", args.to.target)),
        _ => Ok(()),
    }
}
