//! Command lines (RFC 5321 4.1): `VERB [arguments]`, parsed from one line without its CRLF.
//! The parser borrows the line; what a session keeps (the envelope) it copies.
//!
//! Addresses are read as RFC 5321 4.1.2 writes them, with the leniency real clients need: a
//! space after `FROM:`/`TO:` is allowed, a source route (`<@relay:user@host>`) is dropped
//! (4.1.1.3 says to accept and ignore it), and `<Postmaster>` needs no domain. UTF-8 in an
//! address is accepted here and flagged: only `SMTPUTF8` makes it legal (RFC 6531), which is
//! the session's rule to enforce.

use super::reply::Reply;

/// One SMTP command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    /// `HELO domain` (RFC 5321 4.1.1.1).
    Helo(&'a str),
    /// `EHLO domain-or-address-literal`.
    Ehlo(&'a str),
    /// `MAIL FROM:<reverse-path> [params]`.
    Mail(Path<'a>, MailParams<'a>),
    /// `RCPT TO:<forward-path> [params]`.
    Rcpt(Path<'a>, RcptParams<'a>),
    /// `DATA`.
    Data,
    /// `BDAT size [LAST]` (RFC 3030 CHUNKING).
    Bdat {
        /// The chunk's size in octets.
        size: u64,
        /// Whether it is the message's last chunk.
        last: bool,
    },
    /// `RSET`.
    Rset,
    /// `NOOP [string]`.
    Noop,
    /// `QUIT`.
    Quit,
    /// `VRFY string`.
    Vrfy(&'a str),
    /// `HELP [string]`.
    Help,
    /// `STARTTLS` (RFC 3207).
    StartTls,
    /// `AUTH mechanism [initial-response]` (RFC 4954).
    Auth {
        /// The SASL mechanism, as sent.
        mechanism: &'a str,
        /// The initial response (base64, or `=` for an empty one).
        initial: Option<&'a str>,
    },
}

/// A path: the mailbox between the angle brackets (empty for the null reverse-path `<>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Path<'a> {
    /// `local@domain`, or `Postmaster`, or empty.
    pub mailbox: &'a str,
    /// Whether the mailbox has non-ASCII characters (legal only with `SMTPUTF8`).
    pub utf8: bool,
}

/// `BODY=` (RFC 6152 8BITMIME, RFC 3030 BINARYMIME).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// `7BIT`.
    SevenBit,
    /// `8BITMIME`.
    EightBitMime,
    /// `BINARYMIME`.
    BinaryMime,
}

/// `RET=` (RFC 3461 4.3): what a bounce carries of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    /// The whole message.
    Full,
    /// Its headers only.
    Hdrs,
}

/// `MAIL` parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailParams<'a> {
    /// `SIZE=` (RFC 1870): the client's estimate of the message size.
    pub size: Option<u64>,
    /// `BODY=`.
    pub body: Option<Body>,
    /// `SMTPUTF8` (RFC 6531).
    pub smtputf8: bool,
    /// `REQUIRETLS` (RFC 8689).
    pub requiretls: bool,
    /// `RET=` (DSN).
    pub ret: Option<Ret>,
    /// `ENVID=` (DSN, xtext).
    pub envid: Option<&'a str>,
    /// `AUTH=` (RFC 4954 5): the submitter's identity, as the client claims it.
    pub auth: Option<&'a str>,
}

/// `RCPT` parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RcptParams<'a> {
    /// `NOTIFY=` (DSN): `NEVER`, or some of `SUCCESS,FAILURE,DELAY`.
    pub notify: Option<&'a str>,
    /// `ORCPT=` (DSN): the original recipient, `addr-type;xtext`.
    pub orcpt: Option<&'a str>,
}

/// Why a command line was refused; [`CommandError::reply`] is what the server answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// No such command (500 5.5.2).
    Unrecognized,
    /// A command we know and do not do: `EXPN`, `TURN`, `ETRN`, `SEND`... (502 5.5.1).
    NotImplemented(&'static str),
    /// The command's arguments are malformed (501 5.5.4), and how.
    Syntax(&'static str),
    /// A `MAIL`/`RCPT` parameter we do not know or whose value is wrong (555 5.5.4).
    Parameter(String),
    /// The line is not UTF-8 (500 5.5.2).
    NotText,
}

impl CommandError {
    /// The reply a server gives.
    pub fn reply(&self) -> Reply {
        match self {
            CommandError::Unrecognized => Reply::new(500, (5, 5, 2), "Command unrecognized"),
            CommandError::NotImplemented(what) => {
                Reply::new(502, (5, 5, 1), &format!("{what} not implemented"))
            }
            CommandError::Syntax(why) => Reply::new(501, (5, 5, 4), &format!("Syntax error: {why}")),
            CommandError::Parameter(p) => {
                Reply::new(555, (5, 5, 4), &format!("Parameter not recognized or not implemented: {p}"))
            }
            CommandError::NotText => Reply::new(500, (5, 5, 2), "Command line is not text"),
        }
    }
}

/// Parses one command line (without its CRLF).
pub fn parse(line: &[u8]) -> Result<Command<'_>, CommandError> {
    let line = std::str::from_utf8(line).map_err(|_| CommandError::NotText)?;
    let (verb, rest) = match line.find(' ') {
        Some(i) => (&line[..i], line[i + 1..].trim_start_matches(' ')),
        None => (line, ""),
    };
    let rest = rest.trim_end_matches(' ');
    let no_args = |c: Command<'static>| {
        if rest.is_empty() {
            Ok(c)
        } else {
            Err(CommandError::Syntax("no arguments expected"))
        }
    };
    match verb.to_ascii_uppercase().as_str() {
        "EHLO" => domain_arg(rest).map(Command::Ehlo),
        "HELO" => domain_arg(rest).map(Command::Helo),
        "MAIL" => {
            let args = prefixed(rest, "FROM:").ok_or(CommandError::Syntax("MAIL FROM:<address>"))?;
            let (path, params) = path_and_params(args, true)?;
            Ok(Command::Mail(path, mail_params(params)?))
        }
        "RCPT" => {
            let args = prefixed(rest, "TO:").ok_or(CommandError::Syntax("RCPT TO:<address>"))?;
            let (path, params) = path_and_params(args, false)?;
            Ok(Command::Rcpt(path, rcpt_params(params)?))
        }
        "DATA" => no_args(Command::Data),
        "BDAT" => bdat(rest),
        "RSET" => no_args(Command::Rset),
        // NOOP may carry a string, which is ignored (4.1.1.9).
        "NOOP" => Ok(Command::Noop),
        "QUIT" => no_args(Command::Quit),
        "VRFY" if rest.is_empty() => Err(CommandError::Syntax("VRFY needs a string")),
        "VRFY" => Ok(Command::Vrfy(rest)),
        "HELP" => Ok(Command::Help),
        "STARTTLS" => no_args(Command::StartTls),
        "AUTH" => {
            let mut words = rest.split(' ');
            let mechanism =
                words.next().filter(|m| !m.is_empty()).ok_or(CommandError::Syntax("AUTH mechanism"))?;
            let initial = words.next();
            if words.next().is_some() {
                return Err(CommandError::Syntax("AUTH mechanism [initial-response]"));
            }
            Ok(Command::Auth { mechanism, initial })
        }
        "EXPN" => Err(CommandError::NotImplemented("EXPN")),
        "TURN" | "ATRN" | "ETRN" => Err(CommandError::NotImplemented("Relay turning")),
        "SEND" | "SOML" | "SAML" => Err(CommandError::NotImplemented("Terminal delivery")),
        _ => Err(CommandError::Unrecognized),
    }
}

/// `EHLO`/`HELO`'s argument: a domain or address literal (one word).
fn domain_arg(rest: &str) -> Result<&str, CommandError> {
    if rest.is_empty() {
        return Err(CommandError::Syntax("a domain name or address literal is required"));
    }
    if rest.contains(' ') || rest.chars().any(char::is_control) {
        return Err(CommandError::Syntax("one domain name or address literal"));
    }
    Ok(rest)
}

/// The rest of `s` after `prefix` (any case), spaces after it skipped.
fn prefixed<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| s[prefix.len()..].trim_start_matches(' '))
}

/// `<path> [params]`.
fn path_and_params(args: &str, reverse: bool) -> Result<(Path<'_>, &str), CommandError> {
    let inner_end = args
        .find('>')
        .filter(|_| args.starts_with('<'))
        .ok_or(CommandError::Syntax("the address goes in <>"))?;
    let inner = &args[1..inner_end];
    let params = args[inner_end + 1..].trim_start_matches(' ');
    if !params.is_empty() && !args[inner_end + 1..].starts_with(' ') {
        return Err(CommandError::Syntax("a space goes between the address and its parameters"));
    }
    // 4.1.1.3: a source route is accepted and ignored.
    let mailbox = match inner.strip_prefix('@') {
        Some(routed) => routed.split_once(':').ok_or(CommandError::Syntax("a source route ends with ':'"))?.1,
        None => inner,
    };
    if mailbox.is_empty() {
        return if reverse {
            Ok((Path { mailbox, utf8: false }, params))
        } else {
            Err(CommandError::Syntax("an empty recipient"))
        };
    }
    if !reverse && mailbox.eq_ignore_ascii_case("postmaster") {
        return Ok((Path { mailbox, utf8: false }, params));
    }
    check_mailbox(mailbox)?;
    Ok((Path { mailbox, utf8: !mailbox.is_ascii() }, params))
}

/// RFC 5321 4.1.2 `Mailbox` (with RFC 6531's UTF-8), and the 4.5.3.1 size limits.
fn check_mailbox(mailbox: &str) -> Result<(), CommandError> {
    if mailbox.len() > 254 {
        return Err(CommandError::Syntax("the address is longer than 254 octets"));
    }
    let at = mailbox.rfind('@').ok_or(CommandError::Syntax("the address has no domain"))?;
    let (local, domain) = (&mailbox[..at], &mailbox[at + 1..]);
    if local.is_empty() || local.len() > 64 {
        return Err(CommandError::Syntax("the local part is empty or longer than 64 octets"));
    }
    let local_ok = if let Some(quoted) = local.strip_prefix('"').and_then(|l| l.strip_suffix('"')) {
        !quoted.chars().any(|c| c.is_control() && c != '\t')
    } else {
        !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c) || !c.is_ascii())
    };
    if !local_ok {
        return Err(CommandError::Syntax("the local part has characters an address cannot"));
    }
    if !(is_domain(domain) || is_address_literal(domain)) {
        return Err(CommandError::Syntax("the domain is not a domain name or address literal"));
    }
    Ok(())
}

/// A domain name: dot-separated labels of letters, digits and inner hyphens (UTF-8 letters
/// allowed, for SMTPUTF8's U-labels), at most 255 octets.
fn is_domain(d: &str) -> bool {
    d.len() <= 255
        && !d.is_empty()
        && d.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
}

/// `[192.0.2.1]`, `[IPv6:2001:db8::1]`.
fn is_address_literal(d: &str) -> bool {
    let Some(inner) = d.strip_prefix('[').and_then(|d| d.strip_suffix(']')) else { return false };
    match inner.get(..5) {
        Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => inner[5..].parse::<std::net::Ipv6Addr>().is_ok(),
        _ => inner.parse::<std::net::Ipv4Addr>().is_ok(),
    }
}

/// `KEY[=VALUE]` words.
fn params(s: &str) -> impl Iterator<Item = Result<(String, Option<&str>), CommandError>> {
    s.split(' ').filter(|w| !w.is_empty()).map(|word| {
        let (key, value) = match word.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (word, None),
        };
        let key_ok = !key.is_empty()
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !key.starts_with('-');
        let value_ok =
            value.is_none_or(|v| !v.is_empty() && v.bytes().all(|b| (33..=126).contains(&b) && b != b'='));
        if key_ok && value_ok {
            Ok((key.to_ascii_uppercase(), value))
        } else {
            Err(CommandError::Parameter(word.to_string()))
        }
    })
}

fn mail_params(s: &str) -> Result<MailParams<'_>, CommandError> {
    let mut p = MailParams::default();
    for param in params(s) {
        let (key, value) = param?;
        let bad = || {
            CommandError::Parameter(format!("{key}{}", value.map(|v| format!("={v}")).unwrap_or_default()))
        };
        match (key.as_str(), value) {
            ("SIZE", Some(v)) => p.size = Some(v.parse().map_err(|_| bad())?),
            ("BODY", Some(v)) => {
                p.body = Some(match v.to_ascii_uppercase().as_str() {
                    "7BIT" => Body::SevenBit,
                    "8BITMIME" => Body::EightBitMime,
                    "BINARYMIME" => Body::BinaryMime,
                    _ => return Err(bad()),
                })
            }
            ("SMTPUTF8", None) => p.smtputf8 = true,
            ("REQUIRETLS", None) => p.requiretls = true,
            ("RET", Some(v)) => {
                p.ret = Some(match v.to_ascii_uppercase().as_str() {
                    "FULL" => Ret::Full,
                    "HDRS" => Ret::Hdrs,
                    _ => return Err(bad()),
                })
            }
            ("ENVID", Some(v)) if v.len() <= 100 => p.envid = Some(v),
            ("AUTH", Some(v)) => p.auth = Some(v),
            _ => return Err(bad()),
        }
    }
    Ok(p)
}

fn rcpt_params(s: &str) -> Result<RcptParams<'_>, CommandError> {
    let mut p = RcptParams::default();
    for param in params(s) {
        let (key, value) = param?;
        let bad = || {
            CommandError::Parameter(format!("{key}{}", value.map(|v| format!("={v}")).unwrap_or_default()))
        };
        match (key.as_str(), value) {
            ("NOTIFY", Some(v)) if valid_notify(v) => p.notify = Some(v),
            ("ORCPT", Some(v)) if v.contains(';') => p.orcpt = Some(v),
            _ => return Err(bad()),
        }
    }
    Ok(p)
}

/// RFC 3461 4.1: `NEVER` alone, or a list of `SUCCESS`, `FAILURE`, `DELAY`.
fn valid_notify(v: &str) -> bool {
    let words: Vec<String> = v.split(',').map(|w| w.to_ascii_uppercase()).collect();
    if words.iter().any(|w| w == "NEVER") {
        return words.len() == 1;
    }
    words.iter().all(|w| matches!(w.as_str(), "SUCCESS" | "FAILURE" | "DELAY"))
}

fn bdat(rest: &str) -> Result<Command<'static>, CommandError> {
    let mut words = rest.split(' ');
    let size =
        words.next().and_then(|s| s.parse().ok()).ok_or(CommandError::Syntax("BDAT chunk-size [LAST]"))?;
    let last = match words.next() {
        None => false,
        Some(w) if w.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(CommandError::Syntax("BDAT chunk-size [LAST]")),
    };
    if words.next().is_some() {
        return Err(CommandError::Syntax("BDAT chunk-size [LAST]"));
    }
    Ok(Command::Bdat { size, last })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(mailbox: &str) -> Command<'_> {
        Command::Mail(Path { mailbox, utf8: false }, MailParams::default())
    }

    #[test]
    fn verbs_in_any_case_with_their_arguments() {
        assert_eq!(parse(b"ehlo client.example"), Ok(Command::Ehlo("client.example")));
        assert_eq!(parse(b"HELO [192.0.2.1]"), Ok(Command::Helo("[192.0.2.1]")));
        assert_eq!(parse(b"MAIL FROM:<a@b.example>"), Ok(mail("a@b.example")));
        assert_eq!(parse(b"mail from: <a@b.example>"), Ok(mail("a@b.example")));
        assert_eq!(parse(b"MAIL FROM:<>"), Ok(mail("")));
        assert_eq!(parse(b"MAIL FROM:<@relay.example,@r2.example:a@b.example>"), Ok(mail("a@b.example")));
        assert_eq!(
            parse(b"RCPT TO:<Postmaster>"),
            Ok(Command::Rcpt(Path { mailbox: "Postmaster", utf8: false }, RcptParams::default()))
        );
        assert_eq!(parse(b"DATA"), Ok(Command::Data));
        assert_eq!(parse(b"BDAT 1000 LAST"), Ok(Command::Bdat { size: 1000, last: true }));
        assert_eq!(parse(b"BDAT 0"), Ok(Command::Bdat { size: 0, last: false }));
        assert_eq!(parse(b"NOOP anything"), Ok(Command::Noop));
        assert_eq!(
            parse(b"AUTH PLAIN AGEAYg=="),
            Ok(Command::Auth { mechanism: "PLAIN", initial: Some("AGEAYg==") })
        );
        assert_eq!(parse(b"starttls"), Ok(Command::StartTls));
    }

    #[test]
    fn parameters_are_read_and_unknown_ones_refused() {
        let Ok(Command::Mail(_, p)) = parse(
            b"MAIL FROM:<a@b.example> SIZE=1024 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=QQ314159 REQUIRETLS",
        ) else {
            panic!()
        };
        assert_eq!(p.size, Some(1024));
        assert_eq!(p.body, Some(Body::EightBitMime));
        assert!(p.smtputf8 && p.requiretls);
        assert_eq!((p.ret, p.envid), (Some(Ret::Hdrs), Some("QQ314159")));
        let Ok(Command::Rcpt(_, p)) =
            parse(b"RCPT TO:<c@d.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;c@d.example")
        else {
            panic!()
        };
        assert_eq!((p.notify, p.orcpt), (Some("SUCCESS,FAILURE"), Some("rfc822;c@d.example")));
        assert!(matches!(parse(b"MAIL FROM:<a@b.example> X-UNKNOWN=1"), Err(CommandError::Parameter(_))));
        assert!(matches!(parse(b"MAIL FROM:<a@b.example> SIZE=big"), Err(CommandError::Parameter(_))));
        assert!(matches!(
            parse(b"RCPT TO:<c@d.example> NOTIFY=NEVER,DELAY"),
            Err(CommandError::Parameter(_))
        ));
    }

    #[test]
    fn malformed_addresses_and_commands_say_why() {
        for bad in [
            &b"MAIL FROM:a@b.example"[..],
            b"MAIL TO:<a@b.example>",
            b"RCPT TO:<>",
            b"RCPT TO:<nodomain>",
            b"RCPT TO:<a..b@c.example>",
            b"RCPT TO:<a@-bad.example>",
            b"RCPT TO:<a@[999.1.1.1]>",
            b"EHLO",
            b"EHLO two words",
            b"DATA now",
            b"BDAT x",
            b"VRFY",
        ] {
            assert!(matches!(parse(bad), Err(CommandError::Syntax(_))), "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse(b"EXPN list"), Err(CommandError::NotImplemented("EXPN")));
        assert_eq!(parse(b"FROBNICATE"), Err(CommandError::Unrecognized));
        assert_eq!(parse(b"MAIL FROM:<\xff@b>"), Err(CommandError::NotText));
        let long = format!("RCPT TO:<{}@b.example>", "a".repeat(65));
        assert!(matches!(parse(long.as_bytes()), Err(CommandError::Syntax(_))));
    }

    #[test]
    fn utf8_addresses_are_flagged() {
        let Ok(Command::Rcpt(path, _)) = parse("RCPT TO:<用户@例子.广告>".as_bytes()) else { panic!() };
        assert!(path.utf8);
        assert_eq!(
            parse(b"RCPT TO:<\"quoted local\"@b.example>").map(|c| matches!(c, Command::Rcpt(..))),
            Ok(true)
        );
        assert_eq!(
            parse(b"RCPT TO:<a@[IPv6:2001:db8::1]>").map(|c| matches!(c, Command::Rcpt(..))),
            Ok(true)
        );
    }

    proptest::proptest! {
        #[test]
        fn any_line_parses_or_is_refused_without_panicking(line in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let _ = parse(&line).map_err(|e| e.reply());
        }
    }
}
