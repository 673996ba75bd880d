//! DNS server behaviour a stub resolver relies on, checked against any server (recursive or
//! authoritative) with raw queries over UDP and TCP: answers echo the id and the question (in
//! the case asked), TCP works, EDNS is answered with EDNS, unknown types are answered,
//! NXDOMAIN carries its zone's SOA, and an answer too large for 512 bytes is truncated over
//! UDP and whole over TCP. The probe names are the server's to provide (`--name`, `--big`,
//! `--zone`); the defaults match the zone the tests give unbound and dnsmasq.

mod peers;

pub use peers::{big_strings, Dnsmasq, Unbound, ZONE_DATA};

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use zero_dns::proto::op::{Message, ResponseCode};
use zero_dns::{wire, Name, RecordType};

use crate::Outcome;

/// The names the checks ask about.
#[derive(Debug, Clone)]
pub struct Probe {
    /// A name with an A record.
    pub name: String,
    /// A name whose TXT answer is over 512 bytes.
    pub big: String,
    /// The zone both live in (NXDOMAIN is asked under it).
    pub zone: String,
}

impl Default for Probe {
    fn default() -> Probe {
        Probe { name: "www.zero.test.".into(), big: "big.zero.test.".into(), zone: "zero.test.".into() }
    }
}

type Check = fn(SocketAddr, &Probe) -> Result<(), String>;

const CHECKS: &[(&str, &str, Check)] = &[
    ("udp", "RFC 1035 4.2.1: UDP query answered, id echoed", udp),
    ("tcp", "RFC 7766 5: TCP query answered", tcp),
    ("edns", "RFC 6891 7: EDNS query answered with OPT", edns),
    ("case", "RFC 4343 / 0x20: question case preserved", case),
    ("unknown-type", "RFC 3597: unknown type answered", unknown_type),
    ("nxdomain-soa", "RFC 2308 3: NXDOMAIN carries the SOA", nxdomain_soa),
    ("truncation", "RFC 1035 4.2.1: >512 B: TC on UDP, whole on TCP", truncation),
];

/// Runs every check (or those whose name contains `only`) against the server at `target`.
pub fn run(target: SocketAddr, probe: &Probe, only: Option<&str>) -> Vec<Outcome> {
    CHECKS
        .iter()
        .filter(|(name, ..)| only.is_none_or(|o| name.contains(o)))
        .map(|(name, rule, check)| Outcome { name, rule, failure: check(target, probe).err() })
        .collect()
}

const WAIT: Duration = Duration::from_secs(2);

fn name(text: &str) -> Result<Name, String> {
    Name::from_ascii(text).map_err(|e| format!("{text}: {e}"))
}

/// Sends `query` over UDP and reads the reply.
fn over_udp(server: SocketAddr, query: &[u8]) -> Result<Vec<u8>, String> {
    let any = if server.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let sock = UdpSocket::bind(any).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(WAIT)).map_err(|e| e.to_string())?;
    sock.send_to(query, server).map_err(|e| format!("send: {e}"))?;
    let mut buf = vec![0; 65535];
    let n = sock.recv(&mut buf).map_err(|e| format!("no answer over UDP: {e}"))?;
    buf.truncate(n);
    Ok(buf)
}

/// Sends `query` over TCP and reads the reply.
fn over_tcp(server: SocketAddr, query: &[u8]) -> Result<Vec<u8>, String> {
    let mut tcp = TcpStream::connect_timeout(&server, WAIT).map_err(|e| format!("TCP connect: {e}"))?;
    tcp.set_read_timeout(Some(WAIT)).map_err(|e| e.to_string())?;
    tcp.write_all(&wire::tcp_frame(query)).map_err(|e| format!("TCP send: {e}"))?;
    let mut input = Vec::new();
    let mut buf = [0; 4096];
    loop {
        if let Some((message, _)) = wire::tcp_unframe(&input) {
            return Ok(message.to_vec());
        }
        match tcp.read(&mut buf) {
            Ok(0) => return Err("the connection closed without an answer".into()),
            Ok(n) => input.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("no answer over TCP: {e}")),
        }
    }
}

/// Asks `qname` `rtype` (EDNS `edns` bytes, 0: none) and checks the reply echoes the query.
fn ask(server: SocketAddr, qname: &Name, rtype: RecordType, edns: u16, tcp: bool) -> Result<Message, String> {
    let id = 0x2a5c;
    let query = wire::query(id, qname, rtype, edns);
    let reply = if tcp { over_tcp(server, &query)? } else { over_udp(server, &query)? };
    wire::response(&reply, id, qname, rtype, true)
        .map_err(|m| format!("the answer does not match the query: {m}"))
}

fn answered(m: &Message) -> Result<(), String> {
    match m.metadata.response_code {
        ResponseCode::NoError if !m.answers.is_empty() => Ok(()),
        rcode => Err(format!("{rcode} with {} answers", m.answers.len())),
    }
}

fn udp(server: SocketAddr, p: &Probe) -> Result<(), String> {
    answered(&ask(server, &name(&p.name)?, RecordType::A, 0, false)?)
}

fn tcp(server: SocketAddr, p: &Probe) -> Result<(), String> {
    answered(&ask(server, &name(&p.name)?, RecordType::A, 0, true)?)
}

fn edns(server: SocketAddr, p: &Probe) -> Result<(), String> {
    let m = ask(server, &name(&p.name)?, RecordType::A, 1232, false)?;
    answered(&m)?;
    match &m.edns {
        Some(_) => Ok(()),
        None => Err("no OPT record in the answer".into()),
    }
}

fn case(server: SocketAddr, p: &Probe) -> Result<(), String> {
    let mixed: String = p
        .name
        .chars()
        .enumerate()
        .map(|(i, c)| if i % 2 == 0 { c.to_ascii_uppercase() } else { c })
        .collect();
    // `ask` compares the question case-sensitively.
    answered(&ask(server, &name(&mixed)?, RecordType::A, 0, false)?)
}

fn unknown_type(server: SocketAddr, p: &Probe) -> Result<(), String> {
    let m = ask(server, &name(&p.name)?, RecordType::Unknown(65280), 0, false)?;
    match m.metadata.response_code {
        ResponseCode::NoError | ResponseCode::NXDomain => Ok(()),
        rcode => Err(format!("{rcode} for TYPE65280")),
    }
}

fn nxdomain_soa(server: SocketAddr, p: &Probe) -> Result<(), String> {
    let qname = name(&format!("no-such-name-7f3a.{}", p.zone))?;
    let m = ask(server, &qname, RecordType::A, 0, false)?;
    if m.metadata.response_code != ResponseCode::NXDomain {
        return Err(format!("{} for a name that does not exist", m.metadata.response_code));
    }
    if !m.authorities.iter().any(|r| r.record_type() == RecordType::SOA) {
        return Err("NXDOMAIN without the zone's SOA (its negative TTL is unknown)".into());
    }
    Ok(())
}

fn truncation(server: SocketAddr, p: &Probe) -> Result<(), String> {
    let big = name(&p.big)?;
    let udp = ask(server, &big, RecordType::TXT, 0, false)?;
    if !udp.metadata.truncation {
        return Err(format!("not truncated over UDP ({} answers)", udp.answers.len()));
    }
    let tcp = ask(server, &big, RecordType::TXT, 0, true)?;
    answered(&tcp)?;
    let size = tcp.to_vec().map_err(|e| e.to_string())?.len();
    if tcp.metadata.truncation || size <= 512 {
        return Err(format!("over TCP: TC={} and {size} bytes", tcp.metadata.truncation));
    }
    Ok(())
}
