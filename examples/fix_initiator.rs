//! A FIX 4.4 initiator with zero-fix's blocking session: log on, send one NewOrderSingle
//! (35=D), print the ExecutionReports (35=8) that come back, log out.
//!
//! It needs a FIX acceptor: zero's own answers each order with an ExecutionReport with
//! `--app exec` (with the default `--app echo` the order itself comes back). acceptor.toml:
//! `listen = "127.0.0.1:9880"`, `store = "fix-data"`, and a `[[session]]` with
//! `sender_comp_id = "BROKER"`, `target_comp_id = "CLIENT"`.
//!
//! ```text
//! zero fix acceptor --app exec --config acceptor.toml
//! cargo run -p zero-examples --example fix_initiator -- 127.0.0.1:9880 CLIENT BROKER
//! ```
//!
//! Arguments: `HOST:PORT [SENDER_COMP_ID] [TARGET_COMP_ID]` (defaults `127.0.0.1:9880`,
//! `CLIENT`, `BROKER`).

use std::net::ToSocketAddrs;
use std::time::{Duration, Instant, SystemTime};

use zero_core::Target;
use zero_fix::client::{BlockingSession, Incoming};
use zero_fix::codec::{Decoded, Decoder, Precision, Timestamp};
use zero_fix::messages::ExecutionReport;
use zero_fix::session::{MemoryStore, Role, Session, SessionConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9880".into());
    let sender = args.next().unwrap_or_else(|| "CLIENT".into());
    let target = args.next().unwrap_or_else(|| "BROKER".into());
    let addr = addr.to_socket_addrs()?.next().ok_or("the address resolves to nothing")?;

    // ResetSeqNumFlag=Y on Logon: both sides start at 1, so an in-memory store is enough.
    let mut config = SessionConfig::new(Role::Initiator, &sender, &target);
    config.reset_on_logon = true;
    let session = Session::new(config, MemoryStore::default(), Instant::now(), SystemTime::now().into());
    // The session runs on a zero-core shard in a thread of its own; calls below block.
    let fix = BlockingSession::start(session, Target::tcp(addr))?;
    match fix.recv(Duration::from_secs(10)) {
        Some(Incoming::LoggedOn) => println!("logged on to {addr} as {sender}"),
        other => return Err(format!("no logon at {addr}: {other:?}").into()),
    }

    // The order's fields after the standard header (the session writes 8, 9, 35, 49, 56, 34, 52, 10).
    let mut now = Vec::new();
    Timestamp::from(SystemTime::now()).write(&mut now, Precision::Millis);
    let field = |tag: u32, value: &[u8]| (tag, value.to_vec());
    let order = vec![
        field(11, b"ORD-1"), // ClOrdID
        field(55, b"ZERO"),  // Symbol
        field(54, b"1"),     // Side: buy
        field(60, &now),     // TransactTime
        field(38, b"100"),   // OrderQty
        field(40, b"2"),     // OrdType: limit
        field(44, b"10.25"), // Price
    ];
    let seq = fix.send(b"D", order)?;
    println!("sent NewOrderSingle ORD-1 as MsgSeqNum {seq}");

    // Print what comes back until nothing has for two seconds.
    let text = |v: Option<&[u8]>| String::from_utf8_lossy(v.unwrap_or_default()).into_owned();
    let mut decoder = Decoder::default();
    while let Some(incoming) = fix.recv(Duration::from_secs(2)) {
        match incoming {
            Incoming::Message(bytes) => match decoder.decode(&bytes) {
                // A typed view, generated from the FIX 4.4 dictionary.
                Decoded::Message(m) => match ExecutionReport::new(m) {
                    Some(er) => println!(
                        "ExecutionReport: OrderID {} ClOrdID {} ExecType {} OrdStatus {} LeavesQty {}",
                        text(er.order_id()),
                        text(er.cl_ord_id()),
                        er.exec_type().map_or('?', char::from),
                        er.ord_status().map_or('?', char::from),
                        er.leaves_qty().map_or("-".into(), |q| q.to_string()),
                    ),
                    None => println!("other: {}", text(Some(m.bytes())).replace('\x01', "|")),
                },
                other => println!("undecodable message: {other:?}"),
            },
            Incoming::Rejected(ref_seq, reason) => println!("rejected: {ref_seq:?}, reason {reason:?}"),
            Incoming::Disconnected(cause) => return Err(format!("session down: {cause:?}").into()),
            other => println!("{other:?}"),
        }
    }
    // Logout, waiting up to five seconds for the acceptor's answer.
    fix.close(Duration::from_secs(5));
    println!("logged out");
    Ok(())
}
