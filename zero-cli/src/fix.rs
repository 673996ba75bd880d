//! `zero fix`: an acceptor serving FIX sessions from a TOML file (QuickFIX's settings under
//! their own names), with the built-in echo counterparty; `zero fix send`, one-off messages to
//! an acceptor; and `zero fix parse`, a log viewer that names every field from the data
//! dictionary.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use clap::{Args, Subcommand, ValueEnum};
use serde::Deserialize;
use zero_core::machine::Driver;
use zero_core::tls::{ClientTls, ServerTls};
use zero_core::{Config, Handler, Io, Target};
use zero_fix::acceptor::{Acceptor, Application, Echo, Exec};
use zero_fix::codec::{Decoded, Decoder, Precision};
use zero_fix::dict::{Dictionary, Validation};
use zero_fix::session::{Event, Fsync, Role, Schedule, Session, SessionConfig, Wal};

/// `zero fix` commands.
#[derive(Subcommand, Debug)]
pub enum FixCommand {
    /// Serve the sessions of a TOML file (see `zero fix acceptor --help`).
    Acceptor(AcceptorArgs),
    /// Run the sessions of a TOML file as initiators (each `[[session]]` with `connect =
    /// "HOST:PORT"`), printing what they receive; they reconnect until stopped.
    Initiator(InitiatorArgs),
    /// Print FIX messages (from a file, or standard input) with field names and values from
    /// the data dictionary; SOH or `|` separates fields.
    Parse(ParseArgs),
    /// Log on to an acceptor (ResetSeqNumFlag=Y), send messages, print the answers, log out.
    Send(crate::fix_send::SendArgs),
}

/// Options of `zero fix acceptor`.
#[derive(Args, Debug)]
pub struct AcceptorArgs {
    /// The settings file:
    ///
    /// listen = "127.0.0.1:9880"   store = "fix-data"   fsync = "always" (or "never", "10ms")
    ///
    /// [[session]] begin_string = "FIX.4.4", sender_comp_id = "BROKER", target_comp_id =
    /// "CLIENT", heart_bt_int = 30, reset_on_logon = false, data_dictionary = "FIX44" (FIX42,
    /// FIX44, FIXT11, FIX50SP2 or a QuickFIX XML file), validate = true (false: the session
    /// layer's checks only, like QuickFIX's UseDataDictionary=N),
    /// timestamp_precision = "millis" (seconds, millis, micros, nanos)
    ///
    /// A schedule (none: always up): start_time = "08:00:00", end_time = "17:00:00",
    /// time_zone = "America/New_York" (UTC if absent), and start_day = "Sun", end_day = "Fri"
    /// for a weekly window, or weekdays = ["Mon", "Tue"] for the days a daily one opens.
    ///
    /// TLS: tls_cert = "cert.pem", tls_key = "key.pem" (the acceptor's, at the top level);
    /// tls = true, tls_ca = "ca.pem" (system roots if absent), tls_server_name (the connect
    /// host if absent) in an initiator's [[session]].
    #[arg(long)]
    config: PathBuf,
    /// The application: `echo` sends back each application message the dictionary defines
    /// and refuses the others with BusinessMessageReject; `exec` answers each
    /// NewOrderSingle with an ExecutionReport (for round-trip benchmarks).
    #[arg(long, value_enum, default_value = "echo")]
    app: App,
    #[command(flatten)]
    ops: crate::serving::OpsArgs,
}

/// Options of `zero fix initiator`.
#[derive(Args, Debug)]
pub struct InitiatorArgs {
    /// The settings file, as for `zero fix acceptor`, each `[[session]]` with `connect =
    /// "HOST:PORT"`, `failover = ["HOST:PORT", ...]` tried in turn while logons fail, and
    /// `reconnect_interval` in seconds; `listen` is not needed.
    #[arg(long)]
    config: PathBuf,
}

/// The built-in applications.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum App {
    /// The echo counterparty.
    Echo,
    /// An ExecutionReport for each NewOrderSingle.
    Exec,
}

/// Where a one-connection command (`zero fix send`, `zero bench fix`, `zero conformance fix`)
/// finds its acceptor, and who it is there.
#[derive(Args, Debug, Clone)]
pub struct Counterparty {
    /// The acceptor.
    #[arg(long)]
    pub target: SocketAddr,
    /// Our SenderCompID.
    #[arg(long, default_value = "CLIENT")]
    pub sender: String,
    /// The acceptor's CompID.
    #[arg(long, default_value = "BROKER")]
    pub target_comp_id: String,
    /// BeginString.
    #[arg(long, default_value = "FIX.4.4")]
    pub begin_string: String,
}

impl Counterparty {
    /// An initiator session's settings for it.
    pub fn config(&self) -> SessionConfig {
        let mut config = SessionConfig::new(Role::Initiator, &self.sender, &self.target_comp_id);
        config.begin_string = self.begin_string.clone();
        config
    }
}

/// Options of `zero fix parse`.
#[derive(Args, Debug)]
pub struct ParseArgs {
    /// The file (standard input if absent).
    file: Option<PathBuf>,
    /// The dictionary (FIX42, FIX44, FIXT11, FIX50SP2 or a QuickFIX XML file); by default
    /// the one of each message's BeginString.
    #[arg(long)]
    dictionary: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct File {
    /// The acceptor's address (`zero fix acceptor`).
    listen: Option<SocketAddr>,
    store: PathBuf,
    #[serde(default = "always")]
    fsync: String,
    /// Microseconds the shard spins for input before it sleeps (the latency path's option:
    /// it costs the core while waiting); none by default.
    busy_poll_us: Option<u64>,
    /// The acceptor's certificate chain and key (PEM): it listens over TLS.
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    session: Vec<SessionFile>,
}

fn always() -> String {
    "always".into()
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct SessionFile {
    /// The acceptor to connect to (`zero fix initiator`).
    connect: Option<SocketAddr>,
    /// Where to go when logons at `connect` fail, in order.
    #[serde(default)]
    failover: Vec<SocketAddr>,
    /// Connect over TLS, trusting `tls_ca` (system roots if absent) for `tls_server_name`
    /// (the connect address if absent).
    #[serde(default)]
    tls: bool,
    tls_ca: Option<PathBuf>,
    tls_server_name: Option<String>,
    /// Seconds before the first reconnect (an initiator's; it doubles up to 16x).
    #[serde(default = "five")]
    reconnect_interval: u64,
    #[serde(default = "fix44")]
    begin_string: String,
    sender_comp_id: String,
    target_comp_id: String,
    #[serde(default = "thirty")]
    heart_bt_int: u64,
    #[serde(default)]
    reset_on_logon: bool,
    data_dictionary: Option<String>,
    #[serde(default = "yes")]
    validate: bool,
    #[serde(default)]
    timestamp_precision: Option<String>,
    start_time: Option<String>,
    end_time: Option<String>,
    start_day: Option<String>,
    end_day: Option<String>,
    #[serde(default)]
    weekdays: Vec<String>,
    time_zone: Option<String>,
}

impl File {
    /// The shard's settings.
    fn io(&self) -> Config {
        busy_polling(self.busy_poll_us)
    }
}

/// Shard settings, spinning `busy_poll_us` microseconds before sleeping if given.
pub(crate) fn busy_polling(busy_poll_us: Option<u64>) -> Config {
    let mut config = Config::default();
    config.busy_poll = busy_poll_us.map(Duration::from_micros);
    config
}

impl SessionFile {
    fn name(&self) -> String {
        format!("{}->{}", self.sender_comp_id, self.target_comp_id)
    }

    /// The schedule, if the session has one.
    fn schedule(&self) -> Result<Option<Schedule>, String> {
        let problem = |e: &dyn std::fmt::Display| format!("session {}: {e}", self.name());
        match (&self.start_time, &self.end_time) {
            (None, None) if self.start_day.is_none() && self.weekdays.is_empty() => Ok(None),
            (Some(start), Some(end)) => Schedule::from_settings(
                start,
                end,
                self.start_day.as_deref(),
                self.end_day.as_deref(),
                &self.weekdays,
                self.time_zone.as_deref(),
            )
            .map(Some)
            .map_err(|e| problem(&e)),
            _ => Err(problem(&"a schedule needs both start_time and end_time")),
        }
    }

    /// Where an initiator connects: the primary target, then the failover ones.
    fn targets(&self) -> Result<Vec<Target>, String> {
        let primary = self
            .connect
            .ok_or_else(|| format!("session {}: an initiator needs connect = \"HOST:PORT\"", self.name()))?;
        let tls = if self.tls {
            let tls = match &self.tls_ca {
                Some(ca) => ClientTls::with_ca_file(ca),
                None => ClientTls::system_roots(),
            };
            Some(tls.and_then(ClientTls::build).map_err(|e| format!("session {}: {e}", self.name()))?)
        } else {
            None
        };
        Ok(std::iter::once(primary)
            .chain(self.failover.iter().copied())
            .map(|addr| match &tls {
                Some(config) => {
                    let name = self.tls_server_name.clone().unwrap_or_else(|| addr.ip().to_string());
                    Target::tls(addr, name, config.clone())
                }
                None => Target::tcp(addr),
            })
            .collect())
    }
}

fn fix44() -> String {
    "FIX.4.4".into()
}

fn thirty() -> u64 {
    30
}

fn five() -> u64 {
    5
}

fn yes() -> bool {
    true
}

/// A built-in dictionary by name, or one read from a file.
fn dictionary(name: &str) -> Result<Arc<Dictionary>, String> {
    let builtin = match name {
        "FIX42" => Some(Dictionary::fix42()),
        "FIX44" => Some(Dictionary::fix44()),
        "FIXT11" => Some(Dictionary::fixt11()),
        "FIX50SP2" => Some(Dictionary::fix50sp2()),
        _ => None,
    };
    match builtin {
        Some(d) => Ok(Arc::new(d.clone())),
        None => {
            let text = std::fs::read_to_string(name).map_err(|e| format!("{name}: {e}"))?;
            Dictionary::from_xml(&text).map(Arc::new).map_err(|e| format!("{name}: {e}"))
        }
    }
}

/// An fsync policy as the settings and `--fsync` write it: always, never or `<N>ms`.
pub(crate) fn fsync(text: &str) -> Result<Fsync, String> {
    match text {
        "always" => Ok(Fsync::Always),
        "never" => Ok(Fsync::Never),
        other => other
            .strip_suffix("ms")
            .and_then(|ms| ms.parse().ok())
            .map(|ms| Fsync::Every(Duration::from_millis(ms)))
            .ok_or_else(|| format!("fsync: {other} is not always, never or <N>ms")),
    }
}

/// Runs a `zero fix` command.
pub fn run(command: FixCommand) -> Result<(), String> {
    match command {
        FixCommand::Acceptor(args) => acceptor(args),
        FixCommand::Initiator(args) => initiator(args),
        FixCommand::Parse(args) => parse(args),
        FixCommand::Send(args) => crate::fix_send::run(args),
    }
}

/// The sessions of a settings file in `role`, each with its write-ahead log, and the
/// dictionary of the first.
fn sessions(file: &File, role: Role) -> Result<(Vec<Session<Wal>>, Arc<Dictionary>), String> {
    let fsync = fsync(&file.fsync)?;
    let (now, wall) = (Instant::now(), SystemTime::now());
    let mut sessions = Vec::new();
    let mut first = None;
    for s in &file.session {
        let mut config = SessionConfig::new(role, &s.sender_comp_id, &s.target_comp_id);
        config.begin_string = s.begin_string.clone();
        config.heart_bt_int = Duration::from_secs(s.heart_bt_int);
        config.reconnect_interval = Duration::from_secs(s.reconnect_interval);
        config.reset_on_logon = s.reset_on_logon;
        config.schedule = s.schedule()?;
        // Application messages are checked: FIX.4.4 -> FIX44, and FIXT.1.1 -> FIX50SP2 (its
        // default application version; the session layer checks its own messages).
        let name = s.data_dictionary.clone().unwrap_or_else(|| match s.begin_string.as_str() {
            "FIXT.1.1" => "FIX50SP2".into(),
            other => other.replace('.', ""),
        });
        let mut dict = dictionary(&name)?;
        if s.begin_string == "FIXT.1.1" {
            // A custom FIX 5.0 dictionary leaves the header to the transport's.
            dict = Arc::new(Arc::unwrap_or_clone(dict).over_transport(Dictionary::fixt11()));
        }
        first.get_or_insert_with(|| dict.clone());
        // validate = false: the session layer's checks only (QuickFIX's UseDataDictionary=N).
        if s.validate {
            config.dictionary = Some(dict);
            config.validation = Validation::default();
        }
        config.precision = match s.timestamp_precision.as_deref() {
            None | Some("millis") => Precision::Millis,
            Some("seconds") => Precision::Seconds,
            Some("micros") => Precision::Micros,
            Some("nanos") => Precision::Nanos,
            Some(other) => return Err(format!("timestamp_precision: {other}?")),
        };
        let dir = file.store.join(format!("{}-{}-{}", s.begin_string, s.sender_comp_id, s.target_comp_id));
        let wal = Wal::open(&dir, fsync).map_err(|e| format!("{}: {e}", dir.display()))?;
        sessions.push(Session::new(config, wal, now, wall.into()));
    }
    Ok((sessions, first.ok_or("the file names no [[session]]")?))
}

fn read(path: &std::path::Path) -> Result<File, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn acceptor(args: AcceptorArgs) -> Result<(), String> {
    let file = read(&args.config)?;
    let listen = file.listen.ok_or("an acceptor's file needs listen = \"HOST:PORT\"")?;
    let (sessions, dict) = sessions(&file, Role::Acceptor)?;
    let tls = match (&file.tls_cert, &file.tls_key) {
        (Some(cert), Some(key)) => Some(
            ServerTls::from_pem_files(cert, key).and_then(ServerTls::build).map_err(|e| e.to_string())?.0,
        ),
        (None, None) => None,
        _ => return Err("tls_cert and tls_key go together".into()),
    };
    let listen =
        Listen { ops: args.ops.clone(), addr: listen, tls, sessions: file.session.len(), io: file.io() };
    match args.app {
        App::Echo => serve(Acceptor::new(sessions, Echo::new(dict)), listen),
        App::Exec => serve(Acceptor::new(sessions, Exec::default()), listen),
    }
}

/// The sessions of `zero fix initiator`, inline on one shard: each logs on (and back on after
/// every loss), and what they receive is printed.
struct Initiators {
    drivers: Vec<Driver<Session<Wal>>>,
    dictionary: Arc<Dictionary>,
}

impl Handler for Initiators {
    fn on_event(&mut self, ops: &mut zero_core::Ops, event: zero_core::Event<'_>) {
        let _ = self.drivers.iter_mut().any(|d| d.on_event(ops, &event));
    }

    fn on_batch_end(&mut self, ops: &mut zero_core::Ops) {
        for d in &mut self.drivers {
            let name = format!(
                "{}->{}",
                d.machine_ref().config().sender_comp_id,
                d.machine_ref().config().target_comp_id
            );
            while let Some(event) = d.machine().poll_event() {
                match event {
                    Event::LoggedOn => println!("{name}: logged on"),
                    Event::Application(m) => {
                        let begin = String::from_utf8_lossy(m.begin_string()).into_owned();
                        print_message(
                            &begin,
                            m.fields().iter().map(|f| (f.tag, m.value(f))),
                            Some(&self.dictionary),
                        );
                    }
                    Event::Disconnected(cause) => println!("{name}: down: {cause:?}"),
                    _ => {}
                }
            }
            d.pump(ops);
        }
    }
}

fn initiator(args: InitiatorArgs) -> Result<(), String> {
    let file = read(&args.config)?;
    let (sessions, dictionary) = sessions(&file, Role::Initiator)?;
    let mut drivers = Vec::new();
    for (i, (session, s)) in sessions.into_iter().zip(&file.session).enumerate() {
        let mut targets = s.targets()?.into_iter();
        let primary = targets.next().expect("a primary target");
        drivers.push(Driver::new(session, primary, i as u64).with_failover(targets));
    }
    let mut initiators = Initiators { drivers, dictionary };
    let mut io = Io::new(file.io()).map_err(|e| e.to_string())?;
    initiators.on_batch_end(&mut io);
    eprintln!("zero fix initiator: {} session(s)", initiators.drivers.len());
    io.run(&mut initiators).map_err(|e| e.to_string())
}

/// Where and how the acceptor listens.
struct Listen {
    ops: crate::serving::OpsArgs,
    addr: SocketAddr,
    tls: Option<Arc<zero_core::rustls::ServerConfig>>,
    sessions: usize,
    io: Config,
}

fn serve<A: Application>(mut acceptor: Acceptor<Wal, A>, listen: Listen) -> Result<(), String> {
    crate::serving::catch_signals()?;
    let mut io = Io::new(listen.io).map_err(|e| e.to_string())?;
    let tls = if listen.tls.is_some() { " (TLS)" } else { "" };
    let addr = match listen.tls {
        Some(config) => acceptor.listen_tls(&mut io, listen.addr, config),
        None => acceptor.listen(&mut io, listen.addr),
    }
    .map_err(|e| format!("{}: {e}", listen.addr))?;
    let handles = vec![io.handle()];
    let (collector, stopper) =
        (zero_core::admin::Collector::new(handles.clone()), zero_core::Stopper::new(handles));
    crate::serving::start("fix", &listen.ops, collector, stopper, None)?;
    eprintln!("zero fix acceptor: {} session(s) on {addr}{tls}", listen.sessions);
    io.run(&mut acceptor).map_err(|e| e.to_string())
}

fn parse(args: ParseArgs) -> Result<(), String> {
    let mut input = Vec::new();
    match &args.file {
        Some(path) => input = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?,
        None => drop(std::io::stdin().read_to_end(&mut input).map_err(|e| e.to_string())?),
    }
    if !input.contains(&1) {
        input.iter_mut().filter(|b| **b == b'|').for_each(|b| *b = 1);
    }
    let fixed = args.dictionary.as_deref().map(dictionary).transpose()?;
    let mut decoder = Decoder::default();
    let mut at = 0;
    while at < input.len() {
        // Lines of a log may carry a timestamp before the message: start at the next 8=FIX.
        let Some(start) = input[at..].windows(5).position(|w| w == b"8=FIX") else { break };
        at += start;
        match decoder.decode(&input[at..]) {
            Decoded::Message(m) => {
                at += m.bytes().len();
                let begin = String::from_utf8_lossy(m.begin_string()).into_owned();
                let dict = fixed.as_deref().or_else(|| Dictionary::for_message(&begin, m.msg_type()));
                print_message(&begin, m.fields().iter().map(|f| (f.tag, m.value(f))), dict);
            }
            Decoded::Malformed { why, len, .. } => {
                println!("malformed message ({why}), {len} bytes skipped");
                at += len;
            }
            Decoded::Garbled { why, skip } => {
                println!("garbled ({why}), {skip} bytes skipped");
                at += skip;
            }
            Decoded::Partial => {
                println!("an incomplete message at the end ({} bytes)", input.len() - at);
                break;
            }
        }
    }
    Ok(())
}

/// Prints a message, a field a line, named from `dict`.
pub(crate) fn print_message<'a>(
    begin: &str,
    fields: impl Iterator<Item = (u32, &'a [u8])>,
    dict: Option<&Dictionary>,
) {
    println!("8 BeginString = {begin}");
    for (tag, value) in fields {
        let value = String::from_utf8_lossy(value);
        let def = dict.and_then(|d| d.field(tag));
        let name = def.map_or("?", |d| d.name.as_str());
        let message = (tag == 35).then(|| dict.and_then(|d| d.message(value.as_bytes()))).flatten();
        let meaning = match message {
            Some(m) => format!(" ({})", m.name),
            None => def
                .and_then(|d| d.values.iter().find(|(v, _)| &**v == value.as_bytes()))
                .map(|(_, m)| format!(" ({m})"))
                .unwrap_or_default(),
        };
        println!("{tag} {name} = {value}{meaning}");
    }
    println!();
}
