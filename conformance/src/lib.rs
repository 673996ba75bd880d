//! # zero-conformance
//!
//! Suites that check a server against its protocol's normative statements, one check per
//! statement (or small group), each naming the statement it checks. A suite can be pointed at
//! any server (`zero conformance mqtt --target HOST:PORT`) and prints a pass/fail table; the
//! tests run it against zero's own server and against the reference implementation.
//!
//! - [`mqtt`]: MQTT 3.1.1 and 5.0 brokers, through a raw client that sends exactly the bytes
//!   a check needs (malformed ones included).
//! - [`redis`]: zero-redis's client against redis-server.
//! - [`fix`]: the FIX session layer of any acceptor, this suite playing the counterparty.
//! - [`dns`]: what a stub resolver relies on in any DNS server, and the real servers (unbound,
//!   dnsmasq) the resolver is tested against.
//! - [`ntp`]: chrony and a scripted Kiss-o'-Death server, for zero-ntp's client.
//! - [`smtp`]: any SMTP server: command order, limits, pipelining, BDAT, every smuggling
//!   variant, STARTTLS injection, AUTH flows.
//! - [`ftp`]: any FTP server: the commands, path escapes, bounce attempts, a data
//!   connection stolen from another address, REST, ABOR; FTPS (AUTH TLS, PROT P, data
//!   sessions resumed, close_notify).
//!
//! Dependencies: `zero-mqtt`, `zero-fix`, `zero-dns`, `zero-ntp`, `zero-smtp` and `zero-ftp` for their codecs only (the checks encode and
//! decode with them; the server under test is a black box); `zero-redis`, the client under
//! test; `socket2`, to bind the FTP suite's thief to another local address.

pub mod dns;
pub mod fix;
pub mod ftp;
pub mod mqtt;
pub mod ntp;
pub mod redis;
pub mod smtp;

/// Fails (pointing at scripts/test.sh, which installs it) unless `command` is installed.
pub(crate) fn require(command: &str) {
    let found = std::process::Command::new("sh").arg("-c").arg(format!("command -v {command}")).output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "{command} is missing: run scripts/test.sh (it installs the peers the tests run against)"
    );
}

/// A TLS client configuration trusting `ca_pem` (the system's roots without one), for the
/// suites' TLS checks.
pub fn tls_config(ca_pem: Option<&[u8]>) -> Result<std::sync::Arc<zero_core::rustls::ClientConfig>, String> {
    let tls = match ca_pem {
        Some(pem) => zero_core::tls::ClientTls::with_ca_pem(pem),
        None => zero_core::tls::ClientTls::system_roots(),
    };
    tls.and_then(|t| t.build()).map_err(|e| e.to_string())
}

/// A blocking TLS client handshake over `tcp`, checking the certificate for `name`.
pub fn tls_handshake(
    tcp: std::net::TcpStream,
    config: std::sync::Arc<zero_core::rustls::ClientConfig>,
    name: &str,
) -> Result<zero_core::rustls::StreamOwned<zero_core::rustls::ClientConnection, std::net::TcpStream>, String>
{
    use zero_core::rustls::{pki_types::ServerName, ClientConnection, StreamOwned};
    let server = ServerName::try_from(name.to_string()).map_err(|e| e.to_string())?;
    let tls = ClientConnection::new(config, server).map_err(|e| e.to_string())?;
    let mut stream = StreamOwned::new(tls, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock).map_err(|e| format!("TLS handshake: {e}"))?;
    }
    Ok(stream)
}

/// A UDP port on 127.0.0.1 that was free a moment ago (a peer that finds it taken exits at
/// start, and its starter tries another).
pub(crate) fn spare_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").expect("a UDP port").local_addr().expect("bound").port()
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The check's name.
    pub name: &'static str,
    /// The normative statement(s) it checks.
    pub rule: &'static str,
    /// `None` if it passed, else what the server did wrong.
    pub failure: Option<String>,
}

/// One check of a suite whose checks take a `C` (the target and what the suite knows of it).
pub struct Check<C> {
    /// Short and unique; `--only` filters on it.
    pub name: &'static str,
    /// The normative statement(s) it checks.
    pub rule: &'static str,
    /// The check: `Err` says what the server did wrong.
    pub run: fn(&C) -> Result<(), String>,
}

/// Runs `checks` (those whose name contains `filter`, if given) against `cx`, in order.
pub fn run_checks<C>(checks: &[Check<C>], cx: &C, filter: Option<&str>) -> Vec<Outcome> {
    checks
        .iter()
        .filter(|c| filter.is_none_or(|f| c.name.contains(f)))
        .map(|c| Outcome { name: c.name, rule: c.rule, failure: (c.run)(cx).err() })
        .collect()
}

/// Prints outcomes as a table under `title`; returns how many failed.
pub fn print_table(title: &str, outcomes: &[Outcome]) -> usize {
    #![allow(clippy::print_stdout)] // printing the report is this function's job
    println!("{title}");
    println!("{:<24} {:<6} {:<42} detail", "check", "result", "rule");
    for o in outcomes {
        let (result, detail) = match &o.failure {
            None => ("pass", ""),
            Some(why) => ("FAIL", why.as_str()),
        };
        println!("{:<24} {:<6} {:<42} {detail}", o.name, result, o.rule);
    }
    let failed = outcomes.iter().filter(|o| o.failure.is_some()).count();
    println!("{} checks, {} passed, {failed} failed", outcomes.len(), outcomes.len() - failed);
    failed
}
