//! Command lines (RFC 959 4.1, 5.3): a verb of three or four letters, case-insensitive, then
//! one space and the argument, to CRLF. The argument is kept as sent (paths may hold spaces,
//! and RFC 3659 2.2 makes them UTF-8); Telnet IAC sequences (RFC 854) are taken out of the
//! line first, so the "IAC IP IAC DM" a client sends before `ABOR` leaves `ABOR` alone.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Telnet's "interpret as command" byte (RFC 854).
const IAC: u8 = 0xFF;

/// The longest command line read (vsftpd's limit): longer ones are answered `500` and
/// skipped to their end.
pub const MAX_LINE: usize = 4096;

/// A command verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // each is the RFC's own name
pub enum Verb {
    User,
    Pass,
    Acct,
    Cwd,
    Cdup,
    Pwd,
    List,
    Nlst,
    Retr,
    Stor,
    Stou,
    Appe,
    Dele,
    Rnfr,
    Rnto,
    Mkd,
    Rmd,
    Type,
    Mode,
    Stru,
    Pasv,
    Port,
    Epsv,
    Eprt,
    Syst,
    Stat,
    Noop,
    Quit,
    Abor,
    Allo,
    Rest,
    Size,
    Mdtm,
    Mlsd,
    Mlst,
    Feat,
    Opts,
    Host,
    Auth,
    Pbsz,
    Prot,
    Ccc,
    Help,
    Site,
    Rein,
}

impl Verb {
    /// The verb of a command's first word, any case; `None` for a verb zero does not know.
    pub fn parse(word: &[u8]) -> Option<Verb> {
        let mut up = [0u8; 4];
        if word.len() < 3 || word.len() > 4 {
            return None;
        }
        for (u, b) in up.iter_mut().zip(word) {
            *u = b.to_ascii_uppercase();
        }
        Some(match &up[..word.len()] {
            b"USER" => Verb::User,
            b"PASS" => Verb::Pass,
            b"ACCT" => Verb::Acct,
            b"CWD" | b"XCWD" => Verb::Cwd,
            b"CDUP" | b"XCUP" => Verb::Cdup,
            b"PWD" | b"XPWD" => Verb::Pwd,
            b"LIST" => Verb::List,
            b"NLST" => Verb::Nlst,
            b"RETR" => Verb::Retr,
            b"STOR" => Verb::Stor,
            b"STOU" => Verb::Stou,
            b"APPE" => Verb::Appe,
            b"DELE" => Verb::Dele,
            b"RNFR" => Verb::Rnfr,
            b"RNTO" => Verb::Rnto,
            b"MKD" | b"XMKD" => Verb::Mkd,
            b"RMD" | b"XRMD" => Verb::Rmd,
            b"TYPE" => Verb::Type,
            b"MODE" => Verb::Mode,
            b"STRU" => Verb::Stru,
            b"PASV" => Verb::Pasv,
            b"PORT" => Verb::Port,
            b"EPSV" => Verb::Epsv,
            b"EPRT" => Verb::Eprt,
            b"SYST" => Verb::Syst,
            b"STAT" => Verb::Stat,
            b"NOOP" => Verb::Noop,
            b"QUIT" => Verb::Quit,
            b"ABOR" => Verb::Abor,
            b"ALLO" => Verb::Allo,
            b"REST" => Verb::Rest,
            b"SIZE" => Verb::Size,
            b"MDTM" => Verb::Mdtm,
            b"MLSD" => Verb::Mlsd,
            b"MLST" => Verb::Mlst,
            b"FEAT" => Verb::Feat,
            b"OPTS" => Verb::Opts,
            b"HOST" => Verb::Host,
            b"AUTH" => Verb::Auth,
            b"PBSZ" => Verb::Pbsz,
            b"PROT" => Verb::Prot,
            b"CCC" => Verb::Ccc,
            b"HELP" => Verb::Help,
            b"SITE" => Verb::Site,
            b"REIN" => Verb::Rein,
            _ => return None,
        })
    }
}

/// A command line, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A known verb and its argument (empty when none was sent).
    Command(Verb, String),
    /// A verb zero does not know (`502`), as sent.
    Unknown(String),
    /// Not a command at all: empty, or not UTF-8 (`500`).
    Garbage,
}

/// Reads one command line (without its CRLF, or bare LF, which many clients send).
pub fn parse(line: &[u8]) -> Line {
    let clean = strip_telnet(line);
    let line = clean.strip_suffix(b"\r").unwrap_or(&clean);
    let Ok(text) = std::str::from_utf8(line) else { return Line::Garbage };
    let (word, arg) = text.split_once(' ').unwrap_or((text, ""));
    if word.is_empty() {
        return Line::Garbage;
    }
    match Verb::parse(word.as_bytes()) {
        Some(verb) => Line::Command(verb, arg.to_string()),
        None => Line::Unknown(word.to_string()),
    }
}

/// The line with Telnet's commands taken out: `IAC IAC` is a data 0xFF, `IAC x` (IP, DM, ...)
/// is dropped, and so are the option negotiations (`IAC WILL|WONT|DO|DONT option`).
fn strip_telnet(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        match (line[i], line.get(i + 1)) {
            (IAC, Some(&IAC)) => {
                out.push(IAC);
                i += 2;
            }
            (IAC, Some(251..=254)) => i += 3,
            (IAC, _) => i += 2,
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// A data connection's address from `PORT h1,h2,h3,h4,p1,p2` (RFC 959 4.1.2).
pub fn parse_port(arg: &str) -> Option<SocketAddr> {
    let mut n = [0u8; 6];
    let mut parts = arg.trim().split(',');
    for slot in &mut n {
        *slot = parts.next()?.trim().parse().ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    let ip = Ipv4Addr::new(n[0], n[1], n[2], n[3]);
    Some(SocketAddr::new(IpAddr::V4(ip), u16::from_be_bytes([n[4], n[5]])))
}

/// A data connection's address from `EPRT |proto|addr|port|` (RFC 2428 2): the first
/// character delimits; proto 1 is IPv4, 2 IPv6.
pub fn parse_eprt(arg: &str) -> Option<SocketAddr> {
    let delimiter = arg.chars().next().filter(|c| (33..=126).contains(&(*c as u32)))?;
    let fields: Vec<&str> = arg.split(delimiter).collect();
    let [_, proto, addr, port, ""] = fields.as_slice() else { return None };
    let ip: IpAddr = match *proto {
        "1" => IpAddr::V4(addr.parse::<Ipv4Addr>().ok()?),
        "2" => IpAddr::V6(addr.parse::<Ipv6Addr>().ok()?),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port.parse().ok()?))
}

/// `PASV`'s reply text: `Entering Passive Mode (h1,h2,h3,h4,p1,p2).` for an IPv4 address.
pub fn pasv_text(ip: Ipv4Addr, port: u16) -> String {
    let [a, b, c, d] = ip.octets();
    let [p1, p2] = port.to_be_bytes();
    format!("Entering Passive Mode ({a},{b},{c},{d},{p1},{p2}).")
}

/// The address in a `227` reply's text (the client's side): the six numbers after the
/// first digit, as RFC 1123 4.1.2.6 asks (the parenthesis is not required).
pub fn parse_pasv_reply(text: &str) -> Option<SocketAddr> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let numbers: String = text[start..].chars().take_while(|c| c.is_ascii_digit() || *c == ',').collect();
    parse_port(&numbers)
}

/// The port in an `EPSV` reply's text: `(|||port|)` (RFC 2428 3).
pub fn parse_epsv_reply(text: &str) -> Option<u16> {
    let open = text.find('(')?;
    let inner = &text[open + 1..text[open..].find(')')? + open];
    let delimiter = inner.chars().next()?;
    let fields: Vec<&str> = inner.split(delimiter).collect();
    let [_, "", "", port, ""] = fields.as_slice() else { return None };
    port.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_and_arguments() {
        assert_eq!(parse(b"retr my file.txt\r"), Line::Command(Verb::Retr, "my file.txt".into()));
        assert_eq!(parse(b"PWD"), Line::Command(Verb::Pwd, String::new()));
        assert_eq!(parse(b"XMKD new"), Line::Command(Verb::Mkd, "new".into()));
        assert_eq!(parse(b"CWD  two spaces"), Line::Command(Verb::Cwd, " two spaces".into()));
        assert_eq!(parse(b"FOOB x"), Line::Unknown("FOOB".into()));
        assert_eq!(parse(b""), Line::Garbage);
        assert_eq!(parse(b" USER"), Line::Garbage);
        assert_eq!(parse(b"STOR \xff\xff\xfe"), Line::Garbage, "not UTF-8 once IAC IAC is 0xFF");
    }

    #[test]
    fn telnet_commands_are_taken_out() {
        // What ftp(1) sends for an abort: IAC IP, IAC DM (the urgent mark), then ABOR.
        assert_eq!(parse(b"\xff\xf4\xff\xf2ABOR\r"), Line::Command(Verb::Abor, String::new()));
        assert_eq!(parse(b"\xff\xfb\x01NOOP"), Line::Command(Verb::Noop, String::new()));
    }

    #[test]
    fn port_and_eprt() {
        assert_eq!(parse_port("127,0,0,1,4,1"), Some("127.0.0.1:1025".parse().unwrap()));
        assert_eq!(parse_port("127,0,0,1,4"), None);
        assert_eq!(parse_port("127,0,0,1,4,1,9"), None);
        assert_eq!(parse_port("256,0,0,1,4,1"), None);
        assert_eq!(parse_eprt("|1|132.235.1.2|6275|"), Some("132.235.1.2:6275".parse().unwrap()));
        assert_eq!(
            parse_eprt("|2|1080::8:800:200C:417A|5282|"),
            Some("[1080::8:800:200C:417A]:5282".parse().unwrap())
        );
        assert_eq!(parse_eprt("!1!10.0.0.1!21!"), Some("10.0.0.1:21".parse().unwrap()));
        assert_eq!(parse_eprt("|3|10.0.0.1|21|"), None);
        assert_eq!(parse_eprt("|1|10.0.0.1|21"), None);
        assert_eq!(parse_eprt("|1|::1|21|"), None, "proto 1 is IPv4");
    }

    #[test]
    fn passive_replies() {
        let text = pasv_text(Ipv4Addr::new(10, 1, 2, 3), 30_001);
        assert_eq!(text, "Entering Passive Mode (10,1,2,3,117,49).");
        assert_eq!(parse_pasv_reply(&text), Some("10.1.2.3:30001".parse().unwrap()));
        assert_eq!(parse_pasv_reply("=10,1,2,3,117,49"), Some("10.1.2.3:30001".parse().unwrap()));
        assert_eq!(parse_epsv_reply("Entering Extended Passive Mode (|||6446|)"), Some(6446));
        assert_eq!(parse_epsv_reply("Entering Extended Passive Mode (|1|x|6446|)"), None);
    }
}
