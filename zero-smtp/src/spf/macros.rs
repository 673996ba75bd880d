//! Macro expansion (RFC 7208 7): `%{s}`, `%{d2r}`, `%{ir}.%{v}._spf.%{d}` and the rest.

use std::net::IpAddr;

/// Whether `text` is a macro-string (RFC 7208 7.1): visible characters, `%` only in
/// `%%`, `%_`, `%-` and `%{...}` with a letter a domain-spec may use.
pub fn valid_macro_string(text: &str) -> bool {
    tokens(text).is_some()
}

/// Whether `spec` is a domain-spec: a macro-string ending in a macro or in `.` and a
/// top label (letters and digits, not all digits, or with inner hyphens), a final `.`
/// allowed. Checked before expansion, as RFC 7208 7.1 says.
pub fn valid_domain_spec(spec: &str) -> bool {
    let Some(tokens) = tokens(spec) else { return false };
    // The literal characters after the last macro (a macro at the end ends it well).
    let mut tail = String::new();
    for t in tokens.iter().rev() {
        match t {
            Token::Literal(c) => tail.insert(0, *c),
            _ if tail.is_empty() => return true,
            _ => break,
        }
    }
    let tail = tail.strip_suffix('.').unwrap_or(&tail);
    let Some((_, top)) = tail.rsplit_once('.') else { return false };
    let alnum = |c: char| c.is_ascii_alphanumeric();
    let lettered = !top.is_empty() && top.chars().all(alnum) && top.chars().any(|c| c.is_ascii_alphabetic());
    let hyphenated = top.len() >= 3
        && top.starts_with(alnum)
        && top.ends_with(alnum)
        && top.contains('-')
        && top.chars().all(|c| alnum(c) || c == '-');
    lettered || hyphenated
}

/// A piece of a macro-string.
#[derive(Debug, PartialEq, Eq)]
enum Token {
    /// A character as it is.
    Literal(char),
    /// `%%`, `%_` or `%-`: what it stands for.
    Escape(&'static str),
    /// `%{...}`: a checked macro, its inside.
    Macro(String),
}

/// A macro-string's pieces, or `None` if it is not one.
fn tokens(text: &str) -> Option<Vec<Token>> {
    let mut out = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        out.push(match c {
            '%' => match chars.next()? {
                '%' => Token::Escape("%"),
                '_' => Token::Escape(" "),
                '-' => Token::Escape("%20"),
                '{' => {
                    let mut spec = String::new();
                    loop {
                        match chars.next()? {
                            '}' => break,
                            c => spec.push(c),
                        }
                    }
                    parse_macro(&spec)?;
                    Token::Macro(spec)
                }
                _ => return None,
            },
            '!'..='~' => Token::Literal(c),
            _ => return None,
        });
    }
    Some(out)
}

/// A macro's inside: its letter (lowercased), whether uppercase, the parts to keep (0 for
/// all), whether reversed, and the delimiters.
fn parse_macro(spec: &str) -> Option<(char, bool, usize, bool, &str)> {
    let letter = spec.chars().next()?;
    let rest = &spec[letter.len_utf8()..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let keep = if digits == 0 { 0 } else { rest[..digits].parse().ok().filter(|&n: &usize| n > 0)? };
    let (reverse, delimiters) = match rest[digits..].strip_prefix(['r', 'R']) {
        Some(d) => (true, d),
        None => (false, &rest[digits..]),
    };
    let lower = letter.to_ascii_lowercase();
    let ok = "slodiphv".contains(lower) && delimiters.chars().all(|c| ".-+,/_=".contains(c));
    ok.then_some((lower, letter.is_ascii_uppercase(), keep, reverse, delimiters))
}

/// What the macros stand for during one check.
pub struct Context<'a> {
    /// `s`: the sender (`local@domain`).
    pub sender: &'a str,
    /// `d`: the domain being checked.
    pub domain: &'a str,
    /// `i`: the client's address.
    pub ip: IpAddr,
    /// `h`: the HELO/EHLO name.
    pub helo: &'a str,
    /// `p`: the client's validated name (or `unknown`).
    pub validated: &'a str,
}

/// `text` with its macros expanded; `None` when it is malformed (a permerror).
pub fn expand(text: &str, cx: &Context<'_>) -> Option<String> {
    let mut out = String::new();
    for token in tokens(text)? {
        match token {
            Token::Literal(c) => out.push(c),
            Token::Escape(s) => out.push_str(s),
            Token::Macro(spec) => out.push_str(&macro_value(&spec, cx)?),
        }
    }
    Some(out)
}

/// One `%{...}`'s value: a letter, then an optional count and `r`, then delimiters.
fn macro_value(spec: &str, cx: &Context<'_>) -> Option<String> {
    let (letter, upper, keep, reverse, delimiters) = parse_macro(spec)?;
    let (local, sender_domain) = cx.sender.rsplit_once('@').unwrap_or(("postmaster", cx.sender));
    let value = match letter {
        's' => cx.sender.to_string(),
        'l' => local.to_string(),
        'o' => sender_domain.to_string(),
        'd' => cx.domain.to_string(),
        'i' => dotted(cx.ip),
        'p' => cx.validated.to_string(),
        'v' => if cx.ip.is_ipv4() { "in-addr" } else { "ip6" }.to_string(),
        _ => cx.helo.to_string(), // 'h', the only letter left
    };
    let delimiters = if delimiters.is_empty() { "." } else { delimiters };
    let mut parts: Vec<&str> = value.split(|c| delimiters.contains(c)).collect();
    if reverse {
        parts.reverse();
    }
    if keep > 0 {
        let skip = parts.len().saturating_sub(keep);
        parts.drain(..skip);
    }
    let joined = parts.join(".");
    Some(if upper { url_escape(&joined) } else { joined })
}

/// `i`: dotted-quad for IPv4, dot-separated nibbles for IPv6 (RFC 7208 7.3).
fn dotted(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let nibbles: Vec<String> =
                v6.octets().iter().flat_map(|b| [b >> 4, b & 15]).map(|n| format!("{n:x}")).collect();
            nibbles.join(".")
        }
    }
}

/// Uppercase macros are URL-escaped (RFC 3986 unreserved characters kept).
fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7208 7.4's examples.
    #[test]
    fn rfc_7208_examples() {
        let v4 = Context {
            sender: "strong-bad@email.example.com",
            domain: "email.example.com",
            ip: "192.0.2.3".parse().unwrap(),
            helo: "mx.example.org",
            validated: "unknown",
        };
        for (macro_string, expanded) in [
            ("%{s}", "strong-bad@email.example.com"),
            ("%{o}", "email.example.com"),
            ("%{d}", "email.example.com"),
            ("%{d4}", "email.example.com"),
            ("%{d3}", "email.example.com"),
            ("%{d2}", "example.com"),
            ("%{d1}", "com"),
            ("%{dr}", "com.example.email"),
            ("%{d2r}", "example.email"),
            ("%{l}", "strong-bad"),
            ("%{l-}", "strong.bad"),
            ("%{lr}", "strong-bad"),
            ("%{lr-}", "bad.strong"),
            ("%{l1r-}", "strong"),
            ("%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"),
            ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
            ("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"),
            ("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"),
            ("%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"),
            ("%%%_%-", "% %20"),
        ] {
            assert_eq!(expand(macro_string, &v4).as_deref(), Some(expanded), "{macro_string}");
        }
        let v6 = Context { ip: "2001:db8::cb01".parse().unwrap(), ..v4 };
        assert_eq!(
            expand("%{ir}.%{v}._spf.%{d2}", &v6).as_deref(),
            Some("1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com")
        );
        assert_eq!(expand("%{S}", &Context { sender: "a b@x.org", ..v4 }).as_deref(), Some("a%20b%40x.org"));
        for bad in ["%{x}", "%{d", "%q", "%{d0}"] {
            assert_eq!(expand(bad, &v4), None, "{bad}");
        }
        for (spec, valid) in [
            ("example.com", true),
            ("example.com.", true),
            ("%{d}", true),
            ("%{ir}.%{v}._spf.%{d2}", true),
            ("foo:bar/baz.example.com", true),
            ("a.123-45", true),
            ("a.123", false),
            ("localhost", false),
            ("example.-com", false),
            ("", false),
            ("%{r}.example.com", false),
            ("%(ir).example.com", false),
            ("foo%.example.com", false),
            ("ex ample.com", false),
        ] {
            assert_eq!(valid_domain_spec(spec), valid, "{spec}");
        }
    }
}
