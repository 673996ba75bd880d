//! SPF records (RFC 7208 4.5, 12): `v=spf1`, then directives (a qualifier and a mechanism)
//! and the modifiers `redirect=` and `exp=` (unknown ones ignored).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::macros::{valid_domain_spec, valid_macro_string};

/// A directive's qualifier: what a match means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualifier {
    /// `+` (the default).
    Pass,
    /// `-`.
    Fail,
    /// `~`.
    SoftFail,
    /// `?`.
    Neutral,
}

/// A mechanism. Domain specs are unexpanded (macros in them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    /// `all`.
    All,
    /// `include:domain`.
    Include(String),
    /// `a[:domain][/v4][//v6]`.
    A(Option<String>, u8, u8),
    /// `mx[:domain][/v4][//v6]`.
    Mx(Option<String>, u8, u8),
    /// `ptr[:domain]`.
    Ptr(Option<String>),
    /// `ip4:address[/prefix]`.
    Ip4(Ipv4Addr, u8),
    /// `ip6:address[/prefix]`.
    Ip6(Ipv6Addr, u8),
    /// `exists:domain`.
    Exists(String),
}

/// A parsed record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// The directives, in order.
    pub directives: Vec<(Qualifier, Mechanism)>,
    /// `redirect=`.
    pub redirect: Option<String>,
    /// `exp=`.
    pub exp: Option<String>,
}

/// Whether a TXT string is an SPF record (`v=spf1` alone or followed by a space).
pub fn is_spf(txt: &str) -> bool {
    txt.get(..6).is_some_and(|v| v.eq_ignore_ascii_case("v=spf1"))
        && matches!(txt.as_bytes().get(6), None | Some(b' '))
}

/// Parses an SPF record; the error says what is wrong (a permerror).
pub fn parse(text: &str) -> Result<Record, String> {
    if !is_spf(text) {
        return Err("not an SPF record".into());
    }
    if let Some(c) = text.chars().find(|&c| c != ' ' && !c.is_ascii_graphic()) {
        return Err(format!("the record holds {c:?}"));
    }
    let mut record = Record::default();
    for term in text[6..].split(' ').filter(|t| !t.is_empty()) {
        // A modifier: name=value, the name starting with a letter.
        if let Some((name, value)) = term.split_once('=') {
            if name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                let slot = match name.to_ascii_lowercase().as_str() {
                    "redirect" => &mut record.redirect,
                    "exp" => &mut record.exp,
                    // Unknown modifiers are ignored, but must be macro-strings.
                    _ if valid_macro_string(value) => continue,
                    _ => return Err(format!("bad modifier {term}")),
                };
                if slot.is_some() {
                    return Err(format!("{name}= given twice"));
                }
                if !valid_domain_spec(value) {
                    return Err(format!("bad domain in {term}"));
                }
                *slot = Some(value.to_string());
                continue;
            }
        }
        let (qualifier, mechanism) = match term.as_bytes()[0] {
            b'+' => (Qualifier::Pass, &term[1..]),
            b'-' => (Qualifier::Fail, &term[1..]),
            b'~' => (Qualifier::SoftFail, &term[1..]),
            b'?' => (Qualifier::Neutral, &term[1..]),
            _ => (Qualifier::Pass, term),
        };
        record
            .directives
            .push((qualifier, parse_mechanism(mechanism).ok_or_else(|| format!("bad term {term}"))?));
    }
    Ok(record)
}

fn parse_mechanism(text: &str) -> Option<Mechanism> {
    let name_end = text.find([':', '/']).unwrap_or(text.len());
    let (name, rest) = text.split_at(name_end);
    let domain = |rest: &str| -> Option<String> {
        let d = rest.strip_prefix(':')?;
        valid_domain_spec(d).then(|| d.to_string())
    };
    match name.to_ascii_lowercase().as_str() {
        "all" if rest.is_empty() => Some(Mechanism::All),
        "include" => Some(Mechanism::Include(domain(rest)?)),
        "exists" => Some(Mechanism::Exists(domain(rest)?)),
        "ptr" if rest.is_empty() => Some(Mechanism::Ptr(None)),
        "ptr" => Some(Mechanism::Ptr(Some(domain(rest)?))),
        "a" | "mx" => {
            let (spec, v4, v6) = dual_cidr(rest)?;
            let spec = if spec.is_empty() { None } else { Some(domain(spec)?) };
            Some(if name.eq_ignore_ascii_case("a") {
                Mechanism::A(spec, v4, v6)
            } else {
                Mechanism::Mx(spec, v4, v6)
            })
        }
        "ip4" => {
            let (addr, prefix) = cidr(rest.strip_prefix(':')?, 32)?;
            Some(Mechanism::Ip4(addr.parse().ok()?, prefix))
        }
        "ip6" => {
            let (addr, prefix) = cidr(rest.strip_prefix(':')?, 128)?;
            Some(Mechanism::Ip6(addr.parse().ok()?, prefix))
        }
        _ => None,
    }
}

/// `address[/prefix]`, the prefix at most `max` (and no leading zeros).
fn cidr(text: &str, max: u8) -> Option<(&str, u8)> {
    match text.split_once('/') {
        None => Some((text, max)),
        Some((addr, prefix)) => Some((addr, prefix_len(prefix, max)?)),
    }
}

fn prefix_len(text: &str, max: u8) -> Option<u8> {
    if text.is_empty()
        || (text.len() > 1 && text.starts_with('0'))
        || !text.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    text.parse().ok().filter(|&p| p <= max)
}

/// `[:domain][/v4][//v6]`: the domain part and both prefixes. A domain may hold `/` (it
/// is a macro-literal): only digits after the last one make a prefix.
fn dual_cidr(rest: &str) -> Option<(&str, u8, u8)> {
    let is_prefix = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (head, v6) = match rest.rsplit_once("//") {
        Some((head, v6)) if is_prefix(v6) => (head, prefix_len(v6, 128)?),
        _ => (rest, 128),
    };
    let (spec, v4) = match head.rsplit_once('/') {
        Some((spec, v4)) if is_prefix(v4) => (spec, prefix_len(v4, 32)?),
        // `a/` or `a//`: a slash with no prefix.
        Some((spec, "")) if spec.is_empty() || !head.contains(':') => return None,
        _ => (head, 32),
    };
    Some((spec, v4, v6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records() {
        let r = parse("v=spf1 +a mx/24 -ip4:192.0.2.0/24 ~ip6:2001:db8::/32 a:mail.%{d}//64 include:_spf.example.com ?exists:%{ir}.x.example ptr redirect=_spf.example.org exp=explain.%{d} x-unknown=1").unwrap();
        assert_eq!(r.directives.len(), 8);
        assert_eq!(r.directives[0], (Qualifier::Pass, Mechanism::A(None, 32, 128)));
        assert_eq!(r.directives[1], (Qualifier::Pass, Mechanism::Mx(None, 24, 128)));
        assert_eq!(r.directives[2], (Qualifier::Fail, Mechanism::Ip4("192.0.2.0".parse().unwrap(), 24)));
        assert_eq!(r.directives[3], (Qualifier::SoftFail, Mechanism::Ip6("2001:db8::".parse().unwrap(), 32)));
        assert_eq!(r.directives[4], (Qualifier::Pass, Mechanism::A(Some("mail.%{d}".into()), 32, 64)));
        assert_eq!(r.directives[6], (Qualifier::Neutral, Mechanism::Exists("%{ir}.x.example".into())));
        assert_eq!(r.redirect.as_deref(), Some("_spf.example.org"));
        assert!(parse("v=spf1").unwrap().directives.is_empty());
        assert!(is_spf("V=SPF1 -all") && !is_spf("v=spf10") && !is_spf("spf2.0/pra"));
        for bad in [
            "v=spf1 ip4:192.0.2.1/33",
            "v=spf1 a/",
            "v=spf1 foo",
            "v=spf1 include",
            "v=spf1 redirect=a redirect=b",
            "v=spf1 all:x",
            "v=spf1 ip4:300.0.0.1",
            "v=spf1 a/024",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
