//! The crash test: `zero fix acceptor --app exec` (write-ahead log, fsync never: a killed
//! process keeps the page cache) is killed with SIGKILL at a random moment during a burst of
//! orders, and restarted, 100 times (`ZERO_CRASH_ROUNDS`; the seed is printed and taken from
//! `ZERO_CRASH_SEED`). The counterparty, a zero-fix initiator over a plain socket, survives:
//!
//! - the acceptor's numbers never go back (our session would end with "too low");
//! - at the end every order has exactly one ExecutionReport;
//! - every message the acceptor sends again (a resend after a restart) is the one it sent the
//!   first time: the same ClOrdID, OrderID and ExecID under the same number. A third of the
//!   rounds drop what is on its way to us when the acceptor is killed, so that it must resend.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use zero_core::machine::{Closed, Machine};
use zero_core::CloseReason;
use zero_fix::codec::{Decoded, Decoder};
use zero_fix::session::{Event, MemoryStore, Role, Session, SessionConfig};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// xorshift64*: a seeded sequence, reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// What identifies a report: ClOrdID, OrderID, ExecID.
type Report = (Vec<u8>, Vec<u8>, Vec<u8>);

/// The initiator's side: its session, its connection, what it saw.
struct Trader {
    session: Session,
    tcp: Option<TcpStream>,
    /// Raw frames read, for the resend check.
    wire: Vec<u8>,
    /// Every ExecutionReport seen on the wire: number -> (ClOrdID, OrderID, ExecID).
    seen: HashMap<u64, Report>,
    resent: usize,
    /// ResendRequests from the acceptor (orders it had not kept when it was killed).
    asked: usize,
    /// Reports delivered by the session, by ClOrdID.
    reports: HashMap<String, usize>,
    logons: usize,
    failures: Vec<String>,
}

impl Trader {
    /// Moves bytes both ways once and hands out events.
    fn step(&mut self) {
        let now = Instant::now();
        if let Some(tcp) = &mut self.tcp {
            while let Some(bytes) = self.session.poll_transmit() {
                if std::env::var_os("ZERO_CRASH_TRACE").is_some() {
                    eprintln!("out {}", String::from_utf8_lossy(bytes).replace('\x01', "|"));
                }
                if tcp.write_all(bytes).is_err() {
                    break;
                }
            }
            let mut buf = [0u8; 16 * 1024];
            match tcp.read(&mut buf) {
                Ok(0) => self.lost(),
                Ok(n) => {
                    self.observe(&buf[..n]);
                    self.session.handle_input(now, &buf[..n]);
                }
                Err(e)
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => self.lost(),
            }
        }
        while let Some(e) = self.session.poll_event() {
            if std::env::var_os("ZERO_CRASH_TRACE").is_some() {
                eprintln!("event {e:?}");
            }
            match e {
                Event::LoggedOn => self.logons += 1,
                Event::Application(m) if m.msg_type() == b"8" => {
                    let id = String::from_utf8_lossy(m.get(11).unwrap_or_default()).into_owned();
                    *self.reports.entry(id).or_default() += 1;
                }
                Event::Disconnected(cause) if !matches!(cause, zero_fix::session::Cause::Connection(_)) => {
                    self.failures.push(format!("{cause:?}"))
                }
                Event::Rejected { .. } | Event::RejectedIncoming { .. } => {
                    self.failures.push(format!("{e:?}"))
                }
                _ => {}
            }
        }
        if self.session.poll_close() {
            self.tcp = None;
            self.session.handle_closed(now, Closed::Requested);
        }
        if self.session.poll_timeout().is_some_and(|t| t <= now) {
            self.session.handle_timeout(now);
        }
    }

    /// Sends what the session has queued, reading nothing.
    fn flush(&mut self) {
        if let Some(tcp) = &mut self.tcp {
            while let Some(bytes) = self.session.poll_transmit() {
                if tcp.write_all(bytes).is_err() {
                    break;
                }
            }
        }
    }

    /// Reads what has arrived and only looks at it: the session never gets it, as if the
    /// connection had lost it. After the restart the acceptor must send it again, the same.
    fn drop_unread(&mut self) {
        let Some(tcp) = &mut self.tcp else { return };
        let mut buf = [0u8; 16 * 1024];
        let mut read = Vec::new();
        while let Ok(n @ 1..) = tcp.read(&mut buf) {
            read.extend_from_slice(&buf[..n]);
        }
        self.observe(&read);
    }

    fn lost(&mut self) {
        self.tcp = None;
        self.wire.clear();
        self.session.handle_closed(Instant::now(), Closed::Lost(CloseReason::Reset));
    }

    /// Checks every ExecutionReport on the wire against the first one with its number.
    fn observe(&mut self, bytes: &[u8]) {
        self.wire.extend_from_slice(bytes);
        let mut decoder = Decoder::default();
        let mut at = 0;
        while let Decoded::Message(m) = decoder.decode(&self.wire[at..]) {
            at += m.bytes().len();
            if std::env::var_os("ZERO_CRASH_TRACE").is_some() {
                eprintln!("wire {}", String::from_utf8_lossy(m.bytes()).replace('\x01', "|"));
            }
            if m.msg_type() == b"2" {
                self.asked += 1;
            }
            if m.msg_type() != b"8" {
                continue;
            }
            let content = |t| m.get(t).unwrap_or_default().to_vec();
            let now = (content(11), content(37), content(17));
            let seq = m.seq_num().unwrap();
            match self.seen.get(&seq) {
                Some(first) if *first != now => {
                    self.failures.push(format!("report {seq} came back different: {first:?} then {now:?}"))
                }
                Some(_) => self.resent += 1,
                None => drop(self.seen.insert(seq, now)),
            }
        }
        self.wire.drain(..at);
    }
}

fn start(config: &std::path::Path, addr: &str) -> Server {
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_zero"))
            .args(["fix", "acceptor", "--app", "exec", "--config"])
            .arg(config)
            .stderr(if std::env::var_os("ZERO_CRASH_TRACE").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "the acceptor never listened");
        std::thread::sleep(Duration::from_millis(5));
    }
    server
}

fn kill(server: Server, addr: &str) {
    drop(server);
    // Its io_uring (and listening socket) goes just after the process is reaped.
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_ok() {
        assert!(Instant::now() < deadline, "the killed acceptor's socket never went away");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn connect(t: &mut Trader, addr: &str) {
    assert!(t.session.wants_connect(Instant::now() + Duration::from_secs(3600)));
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_nodelay(true).unwrap();
    tcp.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
    t.tcp = Some(tcp);
    t.session.handle_connected(Instant::now());
}

#[test]
fn kill_9_during_bursts_loses_no_number_and_no_order() {
    let rounds: usize = std::env::var("ZERO_CRASH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(100);
    let seed: u64 = std::env::var("ZERO_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    println!("ZERO_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let dir = std::env::temp_dir().join(format!("zero-fix-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let config = dir.join("acceptor.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"{addr}\"\nstore = \"{}\"\nfsync = \"never\"\n\n[[session]]\nsender_comp_id = \"BROKER\"\n\
             target_comp_id = \"CLIENT\"\nvalidate = false\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let session = Session::new(
        SessionConfig::new(Role::Initiator, "CLIENT", "BROKER"),
        MemoryStore::default(),
        Instant::now(),
        SystemTime::now().into(),
    );
    let mut t = Trader {
        session,
        tcp: None,
        wire: Vec::new(),
        seen: HashMap::new(),
        resent: 0,
        asked: 0,
        reports: HashMap::new(),
        logons: 0,
        failures: Vec::new(),
    };
    let mut orders = 0u64;
    for round in 0..rounds {
        let server = start(&config, &addr);
        connect(&mut t, &addr);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !t.session.is_logged_on() {
            assert!(Instant::now() < deadline, "round {round}: no logon; {:?}", t.failures);
            t.step();
        }
        for _ in 0..1 + rng.below(50) {
            orders += 1;
            let id = format!("ORD-{orders}");
            t.session
                .send(Instant::now(), b"D", |b| {
                    b.str(11, id.as_bytes())
                        .str(55, b"ZERO")
                        .char(54, b'1')
                        .str(60, b"20261207-09:30:00.000");
                    b.uint(38, 100).char(40, b'2').str(44, b"10.25");
                })
                .unwrap();
        }
        // The burst leaves. Then one of three: the kill comes at once (orders still on their
        // way in or being handled); we read for up to 3 ms first; or what is on its way to us
        // is lost with the connection (read, but never given to our session), so that the
        // restarted acceptor must send it again.
        t.flush();
        match rng.below(3) {
            0 => {}
            1 => {
                let until = Instant::now() + Duration::from_micros(rng.below(3000));
                while Instant::now() < until {
                    t.step();
                }
            }
            _ => {
                std::thread::sleep(Duration::from_millis(1 + rng.below(5)));
                t.drop_unread();
            }
        }
        kill(server, &addr);
        if t.tcp.is_some() {
            t.lost();
        }
        assert!(t.failures.is_empty(), "round {round} (seed {seed}): {:?}", t.failures);
    }
    // A last run, until every order has its report.
    let server = start(&config, &addr);
    connect(&mut t, &addr);
    let deadline = Instant::now() + Duration::from_secs(30);
    while t.reports.len() < orders as usize || !t.session.is_logged_on() {
        assert!(
            Instant::now() < deadline,
            "{} of {orders} orders have reports; {:?}",
            t.reports.len(),
            t.failures
        );
        t.step();
    }
    drop(server);
    assert!(t.failures.is_empty(), "seed {seed}: {:?}", t.failures);
    assert!(t.reports.values().all(|&n| n == 1), "every order exactly one report");
    assert_eq!(t.logons, rounds + 1);
    println!(
        "{rounds} kills, {orders} orders, {} ResendRequests from the acceptor, {} reports seen again after a \
         restart, all as first sent",
        t.asked, t.resent
    );
    let _ = std::fs::remove_dir_all(&dir);
}
