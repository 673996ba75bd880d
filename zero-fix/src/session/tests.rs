//! The session machine on a simulated clock: an initiator and an acceptor wired back to back,
//! and hand-written messages for what a well-behaved peer never sends.

use std::time::{Duration, Instant};

use zero_core::machine::{Closed, Machine};
use zero_core::CloseReason;

use super::*;
use crate::codec::{tag, Builder, Decoded, Decoder, Timestamp};

const WALL: Timestamp = Timestamp(1_796_635_800_000_000_000);

/// One side: its session and what it reported.
struct Side {
    s: Session,
    seen: Vec<String>,
    /// Bytes it sent that the wire has not carried yet.
    wire: Vec<u8>,
    up: bool,
}

impl Side {
    fn new(config: SessionConfig, now: Instant) -> Side {
        Side {
            s: Session::new(config, MemoryStore::default(), now, WALL),
            seen: Vec::new(),
            wire: Vec::new(),
            up: false,
        }
    }

    /// Drains events (recorded as text) and output (onto the wire).
    fn drain(&mut self) {
        while let Some(e) = self.s.poll_event() {
            self.seen.push(match e {
                Event::Application(m) => format!(
                    "app {} #{} {}",
                    String::from_utf8_lossy(m.msg_type()),
                    m.seq_num().unwrap(),
                    String::from_utf8_lossy(m.get(11).unwrap_or(b"-"))
                ),
                other => format!("{other:?}"),
            });
        }
        while let Some(bytes) = self.s.poll_transmit() {
            self.wire.extend_from_slice(bytes);
        }
    }

    fn has(&self, what: &str) -> bool {
        self.seen.iter().any(|s| s.contains(what))
    }

    /// The messages on the wire, as text with `|` for SOH.
    fn sent(&self) -> Vec<String> {
        let mut d = Decoder::default();
        let mut at = 0;
        let mut out = Vec::new();
        while let Decoded::Message(m) = d.decode(&self.wire[at..]) {
            at += m.bytes().len();
            out.push(String::from_utf8_lossy(m.bytes()).replace('\x01', "|"));
        }
        out
    }
}

struct Pair {
    i: Side,
    a: Side,
    now: Instant,
}

fn config(role: Role) -> SessionConfig {
    match role {
        Role::Initiator => SessionConfig::new(role, "CLIENT", "BROKER"),
        Role::Acceptor => SessionConfig::new(role, "BROKER", "CLIENT"),
    }
}

impl Pair {
    fn new() -> Pair {
        Pair::with(config(Role::Initiator), config(Role::Acceptor))
    }

    fn with(i: SessionConfig, a: SessionConfig) -> Pair {
        let now = Instant::now();
        Pair { i: Side::new(i, now), a: Side::new(a, now), now }
    }

    fn connect(&mut self) {
        assert!(self.i.s.wants_connect(self.now), "the initiator wants to connect");
        self.i.s.handle_connected(self.now);
        self.a.s.handle_connected(self.now);
        self.i.up = true;
        self.a.up = true;
        self.run();
    }

    /// Carries bytes both ways until nothing moves; closes what asks to close.
    fn run(&mut self) {
        for _ in 0..100 {
            self.i.drain();
            self.a.drain();
            let (to_a, to_i) = (std::mem::take(&mut self.i.wire), std::mem::take(&mut self.a.wire));
            if to_a.is_empty() && to_i.is_empty() && !self.closes() {
                return;
            }
            if self.a.up && !to_a.is_empty() {
                self.a.s.handle_input(self.now, &to_a);
            }
            if self.i.up && !to_i.is_empty() {
                self.i.s.handle_input(self.now, &to_i);
            }
        }
        panic!("the pair never went quiet");
    }

    /// A side that asks to close is closed, and the other side sees the connection end.
    fn closes(&mut self) -> bool {
        let (i, a) = (self.i.s.poll_close(), self.a.s.poll_close());
        if i || a {
            self.i.drain();
            self.a.drain();
            self.i.s.handle_closed(
                self.now,
                if i { Closed::Requested } else { Closed::Lost(CloseReason::PeerClosed) },
            );
            self.a.s.handle_closed(
                self.now,
                if a { Closed::Requested } else { Closed::Lost(CloseReason::PeerClosed) },
            );
            self.i.up = false;
            self.a.up = false;
        }
        i || a
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        for side in [&mut self.i, &mut self.a] {
            if side.s.poll_timeout().is_some_and(|t| t <= self.now) {
                side.s.handle_timeout(self.now);
            }
        }
        self.run();
    }
}

fn order(s: &mut Session, now: Instant, id: &str) -> u64 {
    s.send(now, b"D", |b| {
        b.str(11, id.as_bytes()).str(55, b"ZERO").char(54, b'1').uint(38, 100).char(40, b'1');
    })
    .unwrap()
}

/// A message as `sender` would send it to `target`, with `fields` (tag=value|...) after the
/// standard header, sent at WALL.
fn raw(sender: &str, target: &str, msg_type: &str, seq: u64, fields: &str) -> Vec<u8> {
    raw_at("20261207-09:30:00.000", sender, target, msg_type, seq, fields)
}

/// [`raw`] with SendingTime `sent`.
fn raw_at(sent: &str, sender: &str, target: &str, msg_type: &str, seq: u64, fields: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut b = Builder::new(&mut out, b"FIX.4.4", msg_type.as_bytes());
    b.str(49, sender.as_bytes()).str(56, target.as_bytes()).uint(34, seq).str(52, sent.as_bytes());
    for field in fields.split('|').filter(|f| !f.is_empty()) {
        let (t, v) = field.split_once('=').unwrap();
        b.str(t.parse().unwrap(), v.as_bytes());
    }
    b.finish();
    out
}

#[test]
fn logon_then_orders_flow_both_ways_in_sequence() {
    let mut p = Pair::new();
    p.connect();
    assert!(p.i.has("LoggedOn") && p.a.has("LoggedOn"), "{:?} {:?}", p.i.seen, p.a.seen);
    assert!(p.i.s.is_logged_on() && p.a.s.is_logged_on());
    let now = p.now;
    order(&mut p.i.s, now, "ORD-1");
    order(&mut p.i.s, now, "ORD-2");
    p.run();
    assert!(p.a.has("app D #2 ORD-1") && p.a.has("app D #3 ORD-2"), "{:?}", p.a.seen);
    assert_eq!((p.i.s.next_out(), p.a.s.next_in()), (4, 4));
}

#[test]
fn heartbeats_keep_a_quiet_link_and_a_silent_peer_is_dropped() {
    let mut p = Pair::new();
    p.connect();
    p.advance(Duration::from_secs(30));
    assert!(p.i.sent().is_empty(), "the heartbeats were carried");
    assert_eq!(p.a.s.next_in(), 3, "a heartbeat arrived (Logon was 1)");
    // The acceptor goes silent: no bytes reach the initiator any more.
    p.i.up = false;
    p.a.up = false;
    p.i.s.handle_input(p.now, b"");
    p.i.up = true;
    for _ in 0..10 {
        p.now += Duration::from_secs(10);
        if p.i.s.poll_timeout().is_some_and(|t| t <= p.now) {
            p.i.s.handle_timeout(p.now);
        }
        p.i.drain();
        if p.i.s.poll_close() {
            break;
        }
    }
    assert!(p.i.sent().iter().any(|m| m.contains("|35=1|")), "a TestRequest went out: {:?}", p.i.sent());
    assert!(p.i.has("HeartbeatTimeout"), "{:?}", p.i.seen);
}

#[test]
fn a_gap_is_filled_by_resend_and_the_rest_follows_in_order() {
    let mut p = Pair::new();
    p.connect();
    let now = p.now;
    // The acceptor sends 2, 3, 4; 3 is lost on the way.
    let mut wire = Vec::new();
    for id in ["E-1", "E-2", "E-3"] {
        p.a.s
            .send(now, b"8", |b| {
                b.str(11, id.as_bytes()).str(17, id.as_bytes());
            })
            .unwrap();
        wire.push(p.a.s.poll_transmit().unwrap().to_vec());
    }
    p.i.s.handle_input(now, &wire[0]);
    p.i.s.handle_input(now, &wire[2]);
    p.run();
    let sent = p.i.sent();
    assert!(p.a.sent().is_empty());
    assert!(p.i.has("app 8 #2 E-1"));
    let seen = p.i.seen.iter().filter(|s| s.starts_with("app")).cloned().collect::<Vec<_>>();
    assert_eq!(seen, ["app 8 #2 E-1", "app 8 #3 E-2", "app 8 #4 E-3"], "exactly once, in order");
    assert!(sent.is_empty(), "{sent:?}");
    assert_eq!(p.i.s.next_in(), 5);
}

#[test]
fn resend_request_resends_orders_and_gap_fills_session_messages() {
    let mut p = Pair::new();
    p.connect();
    let now = p.now;
    order(&mut p.i.s, now, "ORD-1"); // 2
    p.run();
    p.advance(Duration::from_secs(30)); // heartbeat: 3
    order(&mut p.i.s, p.now, "ORD-2"); // 4
    p.run();
    p.a.wire.clear();
    // The acceptor asks for everything from 1.
    let rr = raw("BROKER", "CLIENT", "2", p.i.s.next_in(), "7=1|16=0|");
    p.i.s.handle_input(p.now, &rr);
    p.i.drain();
    let sent = p.i.sent();
    assert_eq!(sent.len(), 4, "{sent:?}");
    assert!(
        sent[0].contains("|35=4|") && sent[0].contains("|34=1|") && sent[0].contains("|123=Y|36=2|"),
        "{}",
        sent[0]
    );
    assert!(
        sent[1].contains("|35=D|")
            && sent[1].contains("|34=2|43=Y|")
            && sent[1].contains("|122=")
            && sent[1].contains("|11=ORD-1|"),
        "{}",
        sent[1]
    );
    assert!(
        sent[2].contains("|35=4|") && sent[2].contains("|34=3|") && sent[2].contains("|36=4|"),
        "{}",
        sent[2]
    );
    assert!(sent[3].contains("|34=4|43=Y|") && sent[3].contains("|11=ORD-2|"), "{}", sent[3]);
    assert_eq!(p.i.s.next_out(), 5, "resending takes no new numbers");
}

#[test]
fn a_resend_filter_gap_fills_over_declined_orders() {
    let mut i = config(Role::Initiator);
    i.resend_filter = Some(std::sync::Arc::new(|m| m.get(11) != Some(b"STALE")));
    let mut p = Pair::with(i, config(Role::Acceptor));
    p.connect();
    let now = p.now;
    order(&mut p.i.s, now, "STALE");
    order(&mut p.i.s, now, "FRESH");
    p.run();
    let rr = raw("BROKER", "CLIENT", "2", p.i.s.next_in(), "7=2|16=3|");
    p.i.s.handle_input(p.now, &rr);
    p.i.drain();
    let sent = p.i.sent();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent[0].contains("|34=2|") && sent[0].contains("|123=Y|36=3|"), "{}", sent[0]);
    assert!(sent[1].contains("|11=FRESH|"), "{}", sent[1]);
}

#[test]
fn too_low_without_poss_dup_logs_out_with_the_specs_text() {
    let mut p = Pair::new();
    p.connect();
    let dup = raw("BROKER", "CLIENT", "8", 1, "11=X|43=Y|122=20261207-09:29:00.000|");
    p.i.s.handle_input(p.now, &dup);
    p.i.drain();
    assert!(p.i.sent().is_empty() && !p.i.has("app"), "a PossDup duplicate is ignored");
    let low = raw("BROKER", "CLIENT", "8", 1, "11=X|");
    p.i.s.handle_input(p.now, &low);
    p.i.drain();
    let sent = p.i.sent();
    assert!(
        sent[0].contains("|35=5|") && sent[0].contains("|58=MsgSeqNum too low, expecting 2 but received 1|"),
        "{sent:?}"
    );
    assert!(p.i.has("SeqTooLow { expected: 2, received: 1 }"));
    assert!(p.i.s.poll_close());
}

#[test]
fn sequence_reset_in_both_modes() {
    let mut p = Pair::new();
    p.connect();
    // Reset mode: its own number does not matter.
    p.i.s.handle_input(p.now, &raw("BROKER", "CLIENT", "4", 99, "36=10|"));
    p.i.drain();
    assert_eq!(p.i.s.next_in(), 10);
    // Gap fill, in sequence.
    p.i.s.handle_input(p.now, &raw("BROKER", "CLIENT", "4", 10, "123=Y|36=15|"));
    p.i.drain();
    assert_eq!(p.i.s.next_in(), 15);
    // Backwards: rejected on NewSeqNo, the number unchanged.
    p.i.s.handle_input(p.now, &raw("BROKER", "CLIENT", "4", 15, "36=3|"));
    p.i.drain();
    assert!(p
        .i
        .sent()
        .iter()
        .any(|m| m.contains("|35=3|") && m.contains("|371=36|") && m.contains("|373=5|")));
    assert_eq!(p.i.s.next_in(), 15);
}

#[test]
fn garbled_is_ignored_and_malformed_is_rejected_and_counted() {
    let mut p = Pair::new();
    p.connect();
    let mut bad = raw("BROKER", "CLIENT", "8", 2, "11=X|");
    let at = bad.len() - 3;
    bad[at] = b'0' + (bad[at] - b'0' + 1) % 10;
    p.i.s.handle_input(p.now, &bad);
    p.i.drain();
    assert!(p.i.has("Garbled(CheckSum"), "{:?}", p.i.seen);
    assert_eq!(p.i.s.next_in(), 2, "a garbled message does not count");
    p.i.s.handle_input(p.now, &raw("BROKER", "CLIENT", "8", 2, "11=|"));
    p.i.drain();
    assert!(p.i.sent().iter().any(|m| m.contains("|35=3|") && m.contains("|45=2|") && m.contains("|373=4|")));
    assert_eq!(p.i.s.next_in(), 3, "a rejected message counts");
}

#[test]
fn logout_handshake_then_the_initiator_reconnects_and_resumes_numbers() {
    let mut p = Pair::new();
    p.connect();
    let now = p.now;
    order(&mut p.i.s, now, "ORD-1");
    p.run();
    p.i.s.logout(p.now, Some("end of day"));
    p.run();
    assert!(p.a.has("LoggedOut(Some(\"end of day\"))"), "{:?}", p.a.seen);
    assert!(p.i.has("LoggedOut(None)"), "{:?}", p.i.seen);
    assert!(!p.i.s.wants_connect(p.now), "not before the reconnect interval");
    p.now += Duration::from_secs(5);
    p.connect();
    assert_eq!(p.i.seen.iter().filter(|s| s.contains("LoggedOn")).count(), 2);
    assert_eq!((p.i.s.next_out(), p.a.s.next_in()), (p.a.s.next_in(), p.i.s.next_out()));
    assert_eq!(p.i.s.next_out(), 5, "Logon 1, order 2, Logout 3, Logon 4");
}

#[test]
fn wrong_comp_ids_are_rejected_and_the_session_ends() {
    let mut p = Pair::new();
    p.connect();
    p.i.s.handle_input(p.now, &raw("INTRUDER", "CLIENT", "8", 2, "11=X|"));
    p.i.drain();
    let sent = p.i.sent();
    assert!(sent[0].contains("|35=3|") && sent[0].contains("|373=9|"), "{sent:?}");
    assert!(sent[1].contains("|35=5|"), "{sent:?}");
    assert!(p.i.has("CompId") && !p.i.has("app"));
}

#[test]
fn the_first_message_must_be_a_logon() {
    let mut p = Pair::new();
    p.a.s.handle_connected(p.now);
    p.a.s.handle_input(p.now, &raw("CLIENT", "BROKER", "D", 1, "11=X|"));
    p.a.drain();
    assert!(p.a.has("BadLogon") && p.a.s.poll_close());
}

#[test]
fn reset_on_logon_starts_both_sides_at_one() {
    let mut i = config(Role::Initiator);
    i.reset_on_logon = true;
    let mut p = Pair::with(i, config(Role::Acceptor));
    p.connect();
    let now = p.now;
    order(&mut p.i.s, now, "ORD-1");
    p.run();
    p.i.s.logout(p.now, None);
    p.run();
    p.now += Duration::from_secs(5);
    p.connect();
    assert!(p.i.s.is_logged_on() && p.a.s.is_logged_on());
    assert_eq!((p.i.s.next_out(), p.i.s.next_in(), p.a.s.next_out(), p.a.s.next_in()), (2, 2, 2, 2));
}

#[test]
fn sequence_numbers_stop_before_the_limit() {
    let mut i = config(Role::Initiator);
    i.max_seq_num = 20;
    let mut p = Pair::with(i, config(Role::Acceptor));
    p.connect();
    let now = p.now;
    assert_eq!(p.i.s.send(now, b"D", |_| {}), Ok(2));
    assert_eq!(p.i.s.send(now, b"D", |_| {}), Ok(3));
    assert_eq!(p.i.s.send(now, b"D", |_| {}), Ok(4));
    assert_eq!(p.i.s.send(now, b"D", |_| {}), Err(SendError::SeqExhausted));
    p.i.drain();
    assert!(p.i.has("SeqExhausted"));
}

#[test]
fn a_failing_store_stops_the_session_before_anything_leaves() {
    struct Full(MemoryStore);
    impl MessageStore for Full {
        fn next_out(&self) -> u64 {
            self.0.next_out()
        }
        fn next_in(&self) -> u64 {
            self.0.next_in()
        }
        fn save(&mut self, seq: u64, m: &[u8]) -> std::io::Result<()> {
            if seq > 1 {
                return Err(std::io::Error::from_raw_os_error(28));
            }
            self.0.save(seq, m)
        }
        fn set_next_out(&mut self, n: u64) -> std::io::Result<()> {
            self.0.set_next_out(n)
        }
        fn set_next_in(&mut self, n: u64) -> std::io::Result<()> {
            self.0.set_next_in(n)
        }
        fn load(&self, b: u64, e: u64, each: &mut dyn FnMut(u64, &[u8])) -> std::io::Result<()> {
            self.0.load(b, e, each)
        }
        fn reset(&mut self, at: Timestamp) -> std::io::Result<()> {
            self.0.reset(at)
        }
        fn created(&self) -> Option<Timestamp> {
            self.0.created()
        }
    }
    let now = Instant::now();
    let mut s = Session::new(config(Role::Initiator), Full(MemoryStore::default()), now, WALL);
    assert!(s.wants_connect(now));
    s.handle_connected(now);
    s.handle_input(now, &raw("BROKER", "CLIENT", "A", 1, "98=0|108=30|"));
    while s.poll_event().is_some() {}
    let logon = s.poll_transmit().map(<[u8]>::to_vec).unwrap_or_default();
    assert!(String::from_utf8_lossy(&logon).contains("35=A"));
    let err = s
        .send(now, b"D", |b| {
            b.str(11, b"X");
        })
        .unwrap_err();
    assert!(matches!(err, SendError::Store(_)), "{err:?}");
    assert!(s.poll_transmit().is_none(), "nothing unstored leaves");
    assert!(matches!(s.poll_event(), Some(Event::Disconnected(Cause::Store(_)))));
    assert!(s.poll_close());
    s.handle_closed(now, Closed::Requested);
    assert!(
        s.is_drained() && !s.wants_connect(now + Duration::from_secs(3600)),
        "it does not come back by itself"
    );
}

#[test]
fn a_message_beyond_a_gap_is_not_delivered_twice_when_resent() {
    let mut p = Pair::new();
    p.connect();
    let now = p.now;
    // 2 and 3 from the acceptor; only 3 arrives, then the acceptor resends 2 and 3 (3 again).
    let mut wire = Vec::new();
    for id in ["E-1", "E-2"] {
        p.a.s
            .send(now, b"8", |b| {
                b.str(11, id.as_bytes());
            })
            .unwrap();
        wire.push(p.a.s.poll_transmit().unwrap().to_vec());
    }
    p.i.s.handle_input(now, &wire[1]);
    p.run();
    let apps: Vec<_> = p.i.seen.iter().filter(|s| s.starts_with("app")).cloned().collect();
    assert_eq!(apps, ["app 8 #2 E-1", "app 8 #3 E-2"]);
    let _ = tag::MSG_SEQ_NUM;
}

#[test]
fn a_resend_request_beyond_a_gap_is_answered_at_once() {
    // Both sides have a gap: if each held the other's ResendRequest until its own gap was
    // filled, neither would ever be (the crash test found this).
    let mut p = Pair::new();
    p.connect();
    let now = p.now;
    order(&mut p.i.s, now, "ORD-1"); // 2
    p.i.drain();
    p.i.wire.clear();
    // Their ResendRequest arrives numbered 5 while we expect 2.
    p.i.s.handle_input(p.now, &raw("BROKER", "CLIENT", "2", 5, "7=1|16=0|"));
    p.i.drain();
    let sent = p.i.sent();
    assert!(
        sent.iter().any(|m| m.contains("|35=D|") && m.contains("|43=Y|") && m.contains("|11=ORD-1|")),
        "{sent:?}"
    );
    assert!(
        sent.iter().any(|m| m.contains("|35=2|") && m.contains("|7=2|16=0|")),
        "and asks for its own gap: {sent:?}"
    );
}

#[test]
fn a_refused_logon_reports_the_counterpartys_text() {
    let mut p = Pair::new();
    assert!(p.i.s.wants_connect(p.now));
    p.i.s.handle_connected(p.now);
    p.i.drain();
    p.i.s.handle_input(
        p.now,
        &raw("BROKER", "CLIENT", "5", 7, "58=MsgSeqNum too low, expecting 9 but received 1|"),
    );
    p.i.drain();
    assert!(p.i.has("LoggedOut(Some(\"MsgSeqNum too low, expecting 9 but received 1\"))"), "{:?}", p.i.seen);
    assert!(p.i.s.poll_close());
}

#[test]
fn a_schedule_opens_closes_with_a_logout_and_starts_numbers_over_in_the_next_window() {
    // WALL is Monday 2026-12-07 09:30 UTC; the window is 10:00-11:00 UTC every day.
    let hour = Duration::from_secs(3600);
    let schedule = Schedule::from_settings("10:00:00", "11:00:00", None, None, &[], None).unwrap();
    let (mut i, mut a) = (config(Role::Initiator), config(Role::Acceptor));
    i.schedule = Some(schedule.clone());
    a.schedule = Some(schedule);
    let mut p = Pair::with(i, a);
    // Closed: the initiator waits for 10:00, the acceptor refuses a connection.
    assert!(!p.i.s.wants_connect(p.now));
    assert_eq!(p.i.s.poll_timeout(), Some(p.now + hour / 2));
    p.a.s.handle_connected(p.now);
    p.a.drain();
    assert!(p.a.has("OutsideSchedule") && p.a.s.poll_close(), "{:?}", p.a.seen);
    p.a.s.handle_closed(p.now, Closed::Requested);
    p.advance(hour / 2);
    p.connect();
    assert!(p.i.has("LoggedOn") && p.a.has("LoggedOn"), "{:?} {:?}", p.i.seen, p.a.seen);
    let now = p.now;
    order(&mut p.i.s, now, "O1");
    p.run();
    assert!(p.a.has("app D #2 O1"));
    // 11:00: the initiator logs out, the acceptor answers, and nobody reconnects until 10:00.
    for _ in 0..60 {
        p.advance(Duration::from_secs(60));
    }
    assert!(p.a.has("LoggedOut(Some(\"End of session window\"))"), "{:?}", p.a.seen);
    assert!(!p.i.up && !p.a.up);
    p.advance(Duration::from_secs(60));
    assert!(!p.i.s.wants_connect(p.now));
    assert!(
        p.i.s.next_out() > 3 && p.i.s.next_out() == p.a.s.next_in(),
        "numbers are kept until the next window"
    );
    // The next day's window starts both sides over at 1.
    p.advance(hour * 23 - Duration::from_secs(60));
    p.connect();
    assert_eq!(p.i.seen.iter().filter(|s| s.contains("LoggedOn")).count(), 2, "{:?}", p.i.seen);
    assert_eq!((p.i.s.next_out(), p.i.s.next_in(), p.a.s.next_out(), p.a.s.next_in()), (2, 2, 2, 2));
}

#[test]
fn an_initiator_fails_over_until_a_logon_then_returns_to_the_primary() {
    let now = Instant::now();
    let mut c = config(Role::Initiator);
    c.max_latency = None; // the hand-written Logon is stamped WALL, long before `at`
    let mut s = Session::new(c, MemoryStore::default(), now, WALL);
    let mut at = now;
    let mut targets = Vec::new();
    for _ in 0..3 {
        at += Duration::from_secs(600);
        assert!(s.wants_connect(at));
        targets.push(s.target());
        s.handle_closed(at, Closed::ConnectFailed("refused".into()));
    }
    assert_eq!(targets, [0, 1, 2]);
    at += Duration::from_secs(600);
    assert!(s.wants_connect(at));
    s.handle_connected(at);
    s.handle_input(at, &raw("BROKER", "CLIENT", "A", 1, "98=0|108=30|"));
    while s.poll_event().is_some() {}
    assert!(s.is_logged_on());
    s.handle_closed(at, Closed::Lost(CloseReason::PeerClosed));
    assert_eq!(s.target(), 0, "after a logon the primary comes first again");
}

#[test]
fn a_sending_time_out_of_bounds_is_rejected_with_reason_10_and_logged_out() {
    let mut p = Pair::new();
    p.connect();
    // Ten minutes behind our clock (WALL): a replay, or a clock gone wrong.
    let late = raw_at("20261207-09:20:00.000", "CLIENT", "BROKER", "1", 2, "112=late|");
    p.a.s.handle_input(p.now, &late);
    p.a.drain();
    let sent = p.a.sent();
    assert!(
        sent.iter().any(|m| m.contains("35=3|") && m.contains("|373=10|") && m.contains("|371=52|")),
        "{sent:?}"
    );
    assert!(
        sent.iter().any(|m| m.contains("35=5|") && m.contains("SendingTime accuracy problem")),
        "{sent:?}"
    );
    assert_eq!(p.a.s.next_in(), 3, "the rejected message counted");
}

#[test]
fn fixt_logons_carry_default_appl_ver_id_and_one_without_it_is_refused() {
    let fixt = |role| {
        let mut c = config(role);
        c.begin_string = "FIXT.1.1".into();
        c
    };
    let mut p = Pair::with(fixt(Role::Initiator), fixt(Role::Acceptor));
    p.connect();
    assert!(p.i.has("LoggedOn") && p.a.has("LoggedOn"), "{:?} {:?}", p.i.seen, p.a.seen);
    assert_eq!(p.a.s.counterparty_appl_ver_id(), Some("9"));
    assert_eq!(p.i.s.counterparty_appl_ver_id(), Some("9"));

    let now = Instant::now();
    let mut a = Session::new(fixt(Role::Acceptor), MemoryStore::default(), now, WALL);
    a.handle_connected(now);
    let mut logon = Vec::new();
    let mut b = Builder::new(&mut logon, b"FIXT.1.1", b"A");
    b.str(49, b"CLIENT").str(56, b"BROKER").uint(34, 1).str(52, b"20261207-09:30:00.000");
    b.uint(98, 0).uint(108, 30);
    b.finish();
    a.handle_input(now, &logon);
    let mut seen = Vec::new();
    while let Some(e) = a.poll_event() {
        seen.push(format!("{e:?}"));
    }
    assert!(seen.iter().any(|e| e.contains("no DefaultApplVerID")), "{seen:?}");
    assert!(a.poll_close());
}
