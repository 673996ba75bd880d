//! FIX session-layer conformance of any acceptor, from the FIX session protocol
//! specification: this suite plays the counterparty (an initiator that sends exactly the bytes
//! a check needs, malformed ones included) against `--target`. Each check opens its own
//! connection and logs on with ResetSeqNumFlag=Y, so the acceptor's session must accept
//! resets (zero's does; QuickFIX's with ResetOnLogon or by default for 141=Y).

mod peer;
mod quickfix;

pub use quickfix::quickfix_peer;

use std::net::SocketAddr;
use std::time::Duration;

use peer::{Header, Peer};
use zero_fix::codec::Timestamp;

use crate::Outcome;

/// Who the suite is: its SenderCompID and the acceptor's (its TargetCompID).
#[derive(Debug, Clone)]
pub struct Ids {
    /// BeginString.
    pub begin_string: String,
    /// Our SenderCompID.
    pub sender: String,
    /// The acceptor's CompID.
    pub target: String,
}

impl Default for Ids {
    fn default() -> Ids {
        Ids { begin_string: "FIX.4.4".into(), sender: "CLIENT".into(), target: "BROKER".into() }
    }
}

type Check = fn(&Ids, SocketAddr) -> Result<(), String>;

const CHECKS: &[(&str, &str, Check)] = &[
    ("logon", "Logon answered by Logon, HeartBtInt kept", logon),
    ("first-not-logon", "a first message other than Logon: disconnect", first_not_logon),
    ("test-request", "TestRequest answered by Heartbeat(112)", test_request),
    ("seq-too-high", "MsgSeqNum too high: ResendRequest for the gap", seq_too_high),
    ("gap-fill", "GapFill fills the gap; held messages follow", gap_fill),
    ("seq-too-low", "too low without PossDupFlag: Logout, disconnect", seq_too_low),
    ("poss-dup", "a PossDupFlag duplicate is ignored", poss_dup),
    ("resend-request", "ResendRequest: admin messages gap-filled", resend_request),
    ("empty-value", "a tag without a value: Reject 373=4, counted", empty_value),
    ("garbled", "a bad CheckSum: ignored, not counted", garbled),
    ("sequence-reset", "SequenceReset-Reset sets the next number", sequence_reset),
    ("reset-in-session", "Logon 141=Y in session restarts both at 1", reset_in_session),
    ("logout", "Logout answered by Logout, then disconnect", logout),
    ("logout-too-high", "a Logout numbered beyond a gap is still answered", logout_too_high),
    ("sending-time", "SendingTime 10 min off: Reject 373=10, Logout", sending_time),
    ("comp-id", "a wrong SenderCompID in session: Reject 373=9, Logout", comp_id),
    ("gap-fill-backwards", "GapFill to a lower NewSeqNo: Reject 373=5 on 36", gap_fill_backwards),
    ("poss-dup-no-orig", "a PossDup resend without OrigSendingTime: Reject 373=1 on 122", poss_dup_no_orig),
];

/// Runs every check (or those whose name contains `only`) against the acceptor at `target`.
pub fn run(target: SocketAddr, ids: &Ids, only: Option<&str>) -> Vec<Outcome> {
    CHECKS
        .iter()
        .filter(|(name, ..)| only.is_none_or(|o| name.contains(o)))
        .map(|(name, rule, check)| Outcome { name, rule, failure: check(ids, target).err() })
        .collect()
}

const WAIT: Duration = Duration::from_secs(3);

/// A logged-on peer: Logon (141=Y) sent as 1 and answered.
fn logged_on(ids: &Ids, addr: SocketAddr) -> Result<Peer, String> {
    let mut p = Peer::connect(ids, addr)?;
    p.send(1, "A", &[(98, "0"), (108, "30"), (141, "Y")])?;
    let answer = p.expect("A", WAIT)?;
    if answer.get(108) != Some("30") {
        return Err(format!("the Logon answer has HeartBtInt {:?}", answer.get(108)));
    }
    Ok(p)
}

/// Proves the acceptor expects `seq` next: a TestRequest with it is answered.
fn expects(p: &mut Peer, seq: u64) -> Result<(), String> {
    let id = format!("probe-{seq}");
    p.send(seq, "1", &[(112, &id)])?;
    let hb =
        p.expect("0", WAIT).map_err(|e| format!("a TestRequest numbered {seq} got no Heartbeat: {e}"))?;
    if hb.get(112) != Some(id.as_str()) {
        return Err(format!("the Heartbeat carries TestReqID {:?}, not {id}", hb.get(112)));
    }
    Ok(())
}

fn logon(ids: &Ids, addr: SocketAddr) -> Result<(), String> {
    let mut p = logged_on(ids, addr)?;
    expects(&mut p, 2)
}

fn first_not_logon(ids: &Ids, addr: SocketAddr) -> Result<(), String> {
    let mut p = Peer::connect(ids, addr)?;
    p.send(1, "D", &[(11, "X"), (55, "ZERO"), (54, "1"), (60, "20261207-09:30:00"), (38, "1"), (40, "1")])?;
    match p.recv(WAIT)? {
        None => Ok(()),
        Some(m) if m.msg_type == "5" && p.closed(WAIT) => Ok(()),
        Some(m) => Err(format!("answered with {}", m.msg_type)),
    }
}

fn test_request(ids: &Ids, addr: SocketAddr) -> Result<(), String> {
    let mut p = logged_on(ids, addr)?;
    expects(&mut p, 2)?;
    expects(&mut p, 3)
}

fn seq_too_high(ids: &Ids, addr: SocketAddr) -> Result<(), String> {
    let mut p = logged_on(ids, addr)?;
    p.send(5, "0", &[])?;
    let rr = p.expect("2", WAIT)?;
    let (begin, end) = (rr.get(7), rr.get(16));
    if begin != Some("2") || !matches!(end, Some("0" | "4" | "999999")) {
        return Err(format!("ResendRequest {begin:?}..{end:?}, not 2..0 (or 2..4)"));
    }
    Ok(())
}

fn gap_fill(ids: &Ids, addr: SocketAddr) -> Result<(), String> {
    let mut p = logged_on(ids, addr)?;
    p.send(5, "1", &[(112, "held")])?;
    p.expect("2", WAIT)?;
    p.send_poss_dup(2, "4", &[(123, "Y"), (36, "5")])?;
    // The held TestRequest (5) is handled once the gap is filled.
    let hb = p.expect("0", WAIT).map_err(|e| format!("the held TestRequest was not answered: {e}"))?;
    if hb.get(112) != Some("held") {
        return Err(format!("Heartbeat for {:?}", hb.get(112)));
    }
    expects(&mut p, 6)
}

fn seq_too_low(ids: &Ids, addr: SocketAddr) -> Result<(), String> {
    let mut p = logged_on(ids, addr)?;
    expects(&mut p, 2)?;
    p.send(2, "0", &[])?;
    let logout = p.expect("5", WAIT)?;
    let text = logout.get(58).unwrap_or("");
    if !text.contains("MsgSeqNum too low") {
        return Err(format!("Logout text {text:?}"));
    }
    if !p.closed(WAIT) {
        return Err("the connection stayed open".into());
    }
    Ok(())
}

fn poss_dup(ids: &Ids, addr: SocketAddr) -> Result<(), String> {
    let mut p = logged_on(ids, addr)?;
    expects(&mut p, 2)?;
    p.send_poss_dup(2, "0", &[])?;
    expects(&mut p, 3)
}

fn resend_request(ids: &Ids, addr: SocketAddr) -> Result<(), String> {
    let mut p = logged_on(ids, addr)?;
    p.send(2, "2", &[(7, "1"), (16, "0")])?;
    let reset = p.expect("4", WAIT)?;
    if reset.get(123) != Some("Y") || reset.get(43) != Some("Y") || reset.get(34) != Some("1") {
        return Err(format!("not a PossDup GapFill from 1: {reset:?}"));
    }
    if reset.get(36).and_then(|n| n.parse::<u64>().ok()).is_none_or(|n| n < 2) {
        return Err(format!("NewSeqNo {:?}", reset.get(36)));
    }
    expects(&mut p, 3)
}

fn empty_value(ids: &Ids, addr: SocketAddr) -> Result<(), String> {
    let mut p = logged_on(ids, addr)?;
    p.send(2, "1", &[(112, "")])?;
    let reject = p.expect("3", WAIT)?;
    if reject.get(45) != Some("2") || reject.get(373) != Some("4") {
        return Err(format!("Reject 45={:?} 373={:?}, not 2 and 4", reject.get(45), reject.get(373)));
    }
    expects(&mut p, 3)
}

fn garbled(ids: &Ids, addr: SocketAddr) -> Result<(), String> {
    let mut p = logged_on(ids, addr)?;
    let mut bytes = p.encode(2, "1", &[(112, "garbled")], false);
    let at = bytes.len() - 2;
    bytes[at] = if bytes[at] == b'9' { b'0' } else { bytes[at] + 1 };
    p.raw(&bytes)?;
    expects(&mut p, 2)
}

fn sequence_reset(ids: &Ids, addr: SocketAddr) -> Result<(), String> {
    let mut p = logged_on(ids, addr)?;
    p.send(7, "4", &[(36, "10")])?;
    expects(&mut p, 10)
}

fn reset_in_session(ids: &Ids, addr: SocketAddr) -> Result<(), String> {
    let mut p = logged_on(ids, addr)?;
    expects(&mut p, 2)?;
    expects(&mut p, 3)?;
    p.send(1, "A", &[(98, "0"), (108, "30"), (141, "Y")])?;
    let answer = p.expect("A", WAIT)?;
    if answer.get(141) != Some("Y") || answer.get(34) != Some("1") {
        return Err(format!("the reset Logon answer is 141={:?} 34={:?}", answer.get(141), answer.get(34)));
    }
    expects(&mut p, 2)
}

fn logout(ids: &Ids, addr: SocketAddr) -> Result<(), String> {
    let mut p = logged_on(ids, addr)?;
    p.send(2, "5", &[])?;
    p.expect("5", WAIT)?;
    if !p.closed(WAIT) {
        return Err("the connection stayed open after the Logout handshake".into());
    }
    Ok(())
}

fn logout_too_high(ids: &Ids, addr: SocketAddr) -> Result<(), String> {
    let mut p = logged_on(ids, addr)?;
    p.send(5, "5", &[])?;
    p.expect("5", WAIT)?;
    if !p.closed(WAIT) {
        return Err("the connection stayed open after the Logout handshake".into());
    }
    Ok(())
}

/// Reads a session Reject of `reason`, then a Logout if `logout`. A RefTagID, if there, must
/// be `ref_tag` (the spec makes it conditional: QuickFIX leaves it out of some rejects).
fn rejected(p: &mut Peer, reason: &str, ref_tag: Option<&str>, logout: bool) -> Result<(), String> {
    let reject = p.expect("3", WAIT)?;
    let wrong_tag = reject.get(371).is_some_and(|t| ref_tag.is_some_and(|r| r != t));
    if reject.get(373) != Some(reason) || wrong_tag {
        return Err(format!(
            "Reject 373={:?} 371={:?}, not {reason} {ref_tag:?}",
            reject.get(373),
            reject.get(371)
        ));
    }
    if logout {
        p.expect("5", WAIT).map_err(|e| format!("no Logout after the Reject: {e}"))?;
    }
    Ok(())
}

fn sending_time(ids: &Ids, addr: SocketAddr) -> Result<(), String> {
    let mut p = logged_on(ids, addr)?;
    let header = Header::now(p.ids());
    let late = Header { sent: Timestamp(header.sent.0 - 600_000_000_000), ..header };
    p.send_with(&late, 2, "1", &[(112, "late")])?;
    rejected(&mut p, "10", None, true)
}

fn comp_id(ids: &Ids, addr: SocketAddr) -> Result<(), String> {
    let mut p = logged_on(ids, addr)?;
    let intruder = Header { sender: format!("{}X", ids.sender), ..Header::now(p.ids()) };
    p.send_with(&intruder, 2, "1", &[(112, "who")])?;
    rejected(&mut p, "9", None, true)
}

fn gap_fill_backwards(ids: &Ids, addr: SocketAddr) -> Result<(), String> {
    let mut p = logged_on(ids, addr)?;
    expects(&mut p, 2)?;
    expects(&mut p, 3)?;
    p.send(4, "4", &[(123, "Y"), (36, "2")])?;
    rejected(&mut p, "5", Some("36"), false)
}

fn poss_dup_no_orig(ids: &Ids, addr: SocketAddr) -> Result<(), String> {
    let mut p = logged_on(ids, addr)?;
    expects(&mut p, 2)?;
    let resend = Header { poss_dup: true, orig_sent: None, ..Header::now(p.ids()) };
    p.send_with(&resend, 2, "1", &[(112, "again")])?;
    rejected(&mut p, "1", Some("122"), false)?;
    expects(&mut p, 3)
}
