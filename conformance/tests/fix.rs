//! zero-fix against QuickFIX C++, both ways, and the FIX conformance suite against both
//! acceptors.
//!
//! zero-fix's initiator against a QuickFIX C++ acceptor (Debian's libquickfix-dev, through
//! `conformance/fix/quickfix_peer.cpp`): logon, orders answered by ExecutionReports, a message
//! lost on the way and recovered by ResendRequest, and the acceptor killed (SIGKILL) and
//! restarted in the middle, its sequence numbers recovered from its file store. Every order
//! reaches QuickFIX once and every ExecutionReport reaches us once.
//!
//! What the restart exercises, as QuickFIX's event log shows it: a SIGKILL can cost QuickFIX
//! the last incoming number it had not written yet (our ResendRequest), so after the restart it
//! expects one less than our Logon carries, asks for a resend, and our session answers with a
//! SequenceReset-GapFill over the session messages; the orders sent meanwhile wait in
//! QuickFIX's queue and are processed once. `ZERO_KEEP=1` keeps QuickFIX's logs in the temp
//! directory.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant, SystemTime};

use zero_core::machine::{Closed, Driver, Machine};
use zero_core::{Config, Event as IoEvent, Handler, Io, Ops, Target};
use zero_fix::codec::{Decoded, Decoder};
use zero_fix::session::{Event, MemoryStore, Role, Session, SessionConfig};

fn peer_binary() -> PathBuf {
    zero_conformance::fix::quickfix_peer(Path::new(env!("CARGO_TARGET_TMPDIR")))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A QuickFIX acceptor process and the lines it prints.
struct QuickFix {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl QuickFix {
    fn start(dir: &Path, port: u16) -> QuickFix {
        let config = dir.join("acceptor.cfg");
        std::fs::write(
            &config,
            format!(
                "[DEFAULT]\nConnectionType=acceptor\nSocketAcceptPort={port}\nSocketReuseAddress=Y\n\
                 StartTime=00:00:00\nEndTime=00:00:00\nFileStorePath={d}/store\nFileLogPath={d}/log\n\
                 UseDataDictionary=N\n\n[SESSION]\nBeginString=FIX.4.4\nSenderCompID=BROKER\nTargetCompID=CLIENT\n",
                d = dir.display()
            ),
        )
        .unwrap();
        let mut child = Command::new(peer_binary())
            .arg("acceptor")
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the QuickFIX peer runs");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut qf = QuickFix { child, lines, seen: Vec::new() };
        qf.wait_for("LISTENING");
        qf
    }

    fn wait_for(&mut self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.seen.iter().any(|l| l.starts_with(what)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!("QuickFIX never said {what}: {:?}", self.seen),
            }
        }
    }

    fn drain(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.drain();
    }
}

impl Drop for QuickFix {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A session whose input loses one message, once: the frame holding `drop` (a byte string).
struct Lossy {
    session: Session,
    drop: Option<&'static [u8]>,
    held: Vec<u8>,
}

impl Machine for Lossy {
    fn wants_connect(&mut self, now: Instant) -> bool {
        self.session.wants_connect(now)
    }
    fn handle_connected(&mut self, now: Instant) {
        self.held.clear();
        self.session.handle_connected(now)
    }
    fn handle_input(&mut self, now: Instant, data: &[u8]) {
        let Some(needle) = self.drop else { return self.session.handle_input(now, data) };
        self.held.extend_from_slice(data);
        let mut decoder = Decoder::default();
        let mut at = 0;
        while let Decoded::Message(m) = decoder.decode(&self.held[at..]) {
            let frame = m.bytes();
            at += frame.len();
            if self.drop.is_some() && frame.windows(needle.len()).any(|w| w == needle) {
                self.drop = None;
                continue;
            }
            self.session.handle_input(now, frame);
        }
        self.held.drain(..at);
        if self.drop.is_none() && !self.held.is_empty() {
            let rest = std::mem::take(&mut self.held);
            self.session.handle_input(now, &rest);
        }
    }
    fn handle_closed(&mut self, now: Instant, cause: Closed) {
        self.session.handle_closed(now, cause)
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.session.handle_timeout(now)
    }
    fn poll_transmit(&mut self) -> Option<&[u8]> {
        self.session.poll_transmit()
    }
    fn poll_close(&mut self) -> bool {
        self.session.poll_close()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.session.poll_timeout()
    }
    fn is_drained(&self) -> bool {
        self.session.is_drained()
    }
}

/// The initiator inline on a shard: orders go out when logged on; reports are counted.
struct Trader {
    driver: Driver<Lossy>,
    logons: usize,
    reports: HashMap<String, usize>,
    poss_dup_reports: usize,
    disconnects: Vec<String>,
}

impl Trader {
    fn pump(&mut self, ops: &mut Ops) {
        while let Some(event) = self.driver.machine().session.poll_event() {
            match event {
                Event::LoggedOn => self.logons += 1,
                Event::Application(m) if m.msg_type() == b"8" => {
                    let id = String::from_utf8_lossy(m.get(11).unwrap_or_default()).into_owned();
                    *self.reports.entry(id).or_default() += 1;
                    self.poss_dup_reports += usize::from(m.poss_dup());
                }
                Event::Disconnected(cause) => self.disconnects.push(format!("{cause:?}")),
                _ => {}
            }
        }
        self.driver.pump(ops);
    }

    fn order(&mut self, ops: &mut Ops, id: &str) {
        let now = ops.now();
        self.driver
            .machine()
            .session
            .send(now, b"D", |b| {
                b.str(11, id.as_bytes()).str(55, b"ZERO").char(54, b'1');
                b.str(60, b"20261207-09:30:00.000").uint(38, 100).char(40, b'1');
            })
            .expect("logged on");
    }
}

impl Handler for Trader {
    fn on_event(&mut self, ops: &mut Ops, event: IoEvent<'_>) {
        self.driver.on_event(ops, &event);
    }
    fn on_batch_end(&mut self, ops: &mut Ops) {
        self.pump(ops);
    }
}

fn run_until(io: &mut Io, t: &mut Trader, what: &str, done: impl Fn(&Trader) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done(t) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {} logons, reports {:?}, {:?}",
            t.logons,
            t.reports,
            t.disconnects
        );
        io.run_once(t, Some(Duration::from_millis(20))).unwrap();
        t.pump(io);
    }
}

#[test]
fn zero_initiator_trades_with_a_quickfix_acceptor_through_loss_and_a_restart() {
    let dir = std::env::temp_dir().join(format!("zero-fix-qf-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let mut qf = QuickFix::start(&dir, port);

    let mut config = SessionConfig::new(Role::Initiator, "CLIENT", "BROKER");
    config.reconnect_interval = Duration::from_millis(100);
    config.heart_bt_int = Duration::from_secs(5);
    let now = Instant::now();
    let session = Session::new(config, MemoryStore::default(), now, SystemTime::now().into());
    let lossy = Lossy { session, drop: Some(b"\x0111=ORD-3\x01"), held: Vec::new() };
    let target = Target::tcp(SocketAddr::from(([127, 0, 0, 1], port)));
    let mut io = Io::new(Config::default()).unwrap();
    let mut t = Trader {
        driver: Driver::new(lossy, target, 0),
        logons: 0,
        reports: HashMap::new(),
        poss_dup_reports: 0,
        disconnects: Vec::new(),
    };
    t.pump(&mut io);
    run_until(&mut io, &mut t, "the first logon", |t| t.logons == 1);

    // Five orders; the report for ORD-3 is lost on the way in and comes back by resend.
    for i in 1..=5 {
        t.order(&mut io, &format!("ORD-{i}"));
    }
    run_until(&mut io, &mut t, "five reports", |t| t.reports.len() == 5);
    assert_eq!(t.poss_dup_reports, 1, "the lost report came back as a PossDup resend");

    // QuickFIX dies without a word and comes back with its file store.
    qf.kill();
    let first = std::mem::take(&mut qf.seen);
    drop(qf);
    let mut qf = QuickFix::start(&dir, port);
    run_until(&mut io, &mut t, "the logon after the restart", |t| t.logons == 2);
    for i in 6..=10 {
        t.order(&mut io, &format!("ORD-{i}"));
    }
    run_until(&mut io, &mut t, "ten reports", |t| t.reports.len() == 10);
    qf.drain();

    assert!(t.reports.values().all(|&n| n == 1), "each report once: {:?}", t.reports);
    // QuickFIX's application saw each order once, with increasing numbers across its restart.
    let orders: Vec<(String, u64)> = first
        .iter()
        .chain(&qf.seen)
        .filter_map(|l| l.strip_prefix("ORDER "))
        .map(|l| {
            let (id, seq) = l.split_once(' ').unwrap();
            (id.to_string(), seq.parse().unwrap())
        })
        .collect();
    let ids: Vec<&str> = orders.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, (1..=10).map(|i| format!("ORD-{i}")).collect::<Vec<_>>(), "QuickFIX saw {orders:?}");
    assert!(orders.windows(2).all(|w| w[0].1 < w[1].1), "increasing numbers: {orders:?}");
    drop(qf);
    if std::env::var_os("ZERO_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Runs QuickFIX's initiator once against `port`: it logs on, sends `n` orders, waits for each
/// to come back and logs out. Returns its output.
fn quickfix_initiator(dir: &Path, port: u16, n: usize) -> String {
    let config = dir.join("initiator.cfg");
    std::fs::write(
        &config,
        format!(
            "[DEFAULT]\nConnectionType=initiator\nSocketConnectHost=127.0.0.1\nSocketConnectPort={port}\n\
             ReconnectInterval=1\nHeartBtInt=5\nStartTime=00:00:00\nEndTime=00:00:00\n\
             FileStorePath={d}/qf-store\nFileLogPath={d}/qf-log\nUseDataDictionary=N\n\n\
             [SESSION]\nBeginString=FIX.4.4\nSenderCompID=CLIENT\nTargetCompID=BROKER\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let out = Command::new(peer_binary()).arg("initiator").arg(&config).arg(n.to_string()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "QuickFIX's initiator failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// zero's acceptor (the built-in echo, a write-ahead log per session) on a shard thread.
struct ZeroAcceptor {
    handle: zero_core::IoHandle,
    thread: Option<std::thread::JoinHandle<(u64, u64)>>,
    port: u16,
}

impl ZeroAcceptor {
    fn start(dir: &Path, port: u16) -> ZeroAcceptor {
        let (tx, rx) = mpsc::channel();
        let dir = dir.to_path_buf();
        let thread = std::thread::spawn(move || {
            use zero_fix::acceptor::{Acceptor, Echo};
            use zero_fix::session::{Fsync, Wal};
            let now = Instant::now();
            let wal = Wal::open(&dir.join("zero-wal"), Fsync::Always).unwrap();
            let config = SessionConfig::new(Role::Acceptor, "BROKER", "CLIENT");
            let session = Session::new(config, wal, now, SystemTime::now().into());
            let echo = Echo::new(std::sync::Arc::new(zero_fix::dict::Dictionary::fix44().clone()));
            let mut acceptor = Acceptor::new(vec![session], echo);
            let mut io = Io::new(Config::default()).unwrap();
            acceptor.listen(&mut io, SocketAddr::from(([127, 0, 0, 1], port))).unwrap();
            tx.send(io.handle()).unwrap();
            io.run(&mut acceptor).unwrap();
            let s = acceptor.sessions().next().unwrap();
            (s.next_in(), s.next_out())
        });
        ZeroAcceptor { handle: rx.recv().unwrap(), thread: Some(thread), port }
    }

    /// Stops it; returns the session's (next_in, next_out).
    fn stop(mut self) -> (u64, u64) {
        self.handle.stop().unwrap();
        self.thread.take().unwrap().join().unwrap()
    }
}

#[test]
fn quickfix_initiator_trades_with_a_zero_acceptor_across_its_restart() {
    let dir = std::env::temp_dir().join(format!("zero-fix-qfi-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();

    let zero = ZeroAcceptor::start(&dir, port);
    let first = quickfix_initiator(&dir, zero.port, 20);
    let echoes = |text: &str| text.lines().filter(|l| l.starts_with("ECHO ")).count();
    assert_eq!(echoes(&first), 20, "{first}");
    let (next_in, next_out) = zero.stop();
    assert!(next_in >= 23 && next_out >= 23, "Logon, 20 orders and Logout each way: {next_in} {next_out}");

    // zero's acceptor restarts from its write-ahead log; QuickFIX from its file store. Neither
    // side resets, so the numbers must carry on.
    let zero = ZeroAcceptor::start(&dir, port);
    let second = quickfix_initiator(&dir, zero.port, 5);
    assert_eq!(echoes(&second), 5, "{second}");
    assert!(!second.contains("too low") && !second.contains("TIMEOUT"), "{second}");
    let (again_in, again_out) = zero.stop();
    assert!(again_in >= next_in + 7 && again_out >= next_out + 7, "carried on: {again_in} {again_out}");
    if std::env::var_os("ZERO_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The suite passes against zero's acceptor (in this process) and QuickFIX's.
#[test]
fn the_session_suite_passes_against_zero_and_quickfix_acceptors() {
    let dir = std::env::temp_dir().join(format!("zero-fix-suite-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ids = zero_conformance::fix::Ids::default();

    let zero = ZeroAcceptor::start(&dir, free_port());
    let outcomes = zero_conformance::fix::run(SocketAddr::from(([127, 0, 0, 1], zero.port)), &ids, None);
    zero.stop();
    let failed: Vec<_> = outcomes.iter().filter(|o| o.failure.is_some()).collect();
    assert!(failed.is_empty(), "zero: {failed:?}");

    let port = free_port();
    let qf = QuickFix::start(&dir, port);
    let outcomes = zero_conformance::fix::run(SocketAddr::from(([127, 0, 0, 1], port)), &ids, None);
    drop(qf);
    let failed: Vec<_> = outcomes.iter().filter(|o| o.failure.is_some()).collect();
    assert!(failed.is_empty(), "QuickFIX: {failed:?}");
    assert_eq!(outcomes.len(), 18);
    let _ = std::fs::remove_dir_all(&dir);
}

/// zero-fix's blocking and Tokio sessions (the runner kit) trade with zero's acceptor.
#[test]
fn blocking_and_tokio_sessions_trade_with_the_acceptor() {
    use zero_fix::client::{AsyncSession, BlockingSession, Incoming};

    let dir = std::env::temp_dir().join(format!("zero-fix-clients-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let zero = ZeroAcceptor::start(&dir, free_port());
    let target = Target::tcp(SocketAddr::from(([127, 0, 0, 1], zero.port)));
    let order = |id: &str| {
        let f = |t: u32, v: &str| (t, v.as_bytes().to_vec());
        vec![f(11, id), f(55, "ZERO"), f(54, "1"), f(60, "20261207-09:30:00"), f(38, "100"), f(40, "1")]
    };
    let session = || {
        let mut config = SessionConfig::new(Role::Initiator, "CLIENT", "BROKER");
        config.reset_on_logon = true;
        Session::new(config, MemoryStore::default(), Instant::now(), SystemTime::now().into())
    };
    let echoed = |bytes: &[u8], id: &str| {
        let mut d = Decoder::default();
        matches!(d.decode(bytes), Decoded::Message(m) if m.get(11) == Some(id.as_bytes()))
    };

    let blocking = BlockingSession::start(session(), target.clone()).unwrap();
    assert!(matches!(blocking.recv(Duration::from_secs(10)), Some(Incoming::LoggedOn)));
    assert_eq!(blocking.send(b"D", order("B-1")), Ok(2));
    match blocking.recv(Duration::from_secs(10)) {
        Some(Incoming::Message(bytes)) => assert!(echoed(&bytes, "B-1")),
        other => panic!("{other:?}"),
    }
    blocking.close(Duration::from_secs(5));

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut s = AsyncSession::start(session(), target);
        assert!(matches!(s.recv().await, Some(Incoming::LoggedOn)));
        assert_eq!(s.send(b"D", order("T-1")).await, Ok(2));
        match s.recv().await {
            Some(Incoming::Message(bytes)) => assert!(echoed(&bytes, "T-1")),
            other => panic!("{other:?}"),
        }
        s.close(Duration::from_secs(5)).await;
    });
    zero.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
