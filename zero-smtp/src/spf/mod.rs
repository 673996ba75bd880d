//! SPF (RFC 7208): is this client allowed to send mail from this domain?
//!
//! [`Check`] is sans-I/O: [`Check::poll`] says which DNS query it needs next or gives the
//! result; the caller resolves the query (zero-dns on the shard, a map in tests) and hands the
//! answer back with [`Check::answer`]. Evaluation replays from the top with the answers known
//! so far (cheap: a check makes at most a few dozen queries), which keeps `check_host()`
//! (RFC 7208 4) the recursive function the RFC describes. The RFC's limits hold: 10
//! DNS-querying terms, 2 void lookups, 10 MX or PTR names.

mod macros;
pub mod record;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::IpAddr;

use record::{Mechanism, Qualifier};

/// A DNS query a check needs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Query {
    /// The name (no final dot).
    pub name: String,
    /// The type.
    pub qtype: QueryType,
}

/// The record types SPF asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueryType {
    /// TXT (the records themselves).
    Txt,
    /// A.
    A,
    /// AAAA.
    Aaaa,
    /// MX.
    Mx,
    /// PTR.
    Ptr,
}

/// What a query found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Records: TXT strings joined, addresses as text, MX or PTR host names.
    Found(Vec<String>),
    /// NXDOMAIN, or no records of the type (a "void lookup").
    Void,
    /// The lookup failed (a timeout, SERVFAIL): a temperror where it matters.
    Failed,
}

/// A check's result (RFC 7208 2.6), in Authentication-Results' words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpfResult {
    /// The domain publishes no SPF record.
    None,
    /// The domain says nothing either way.
    Neutral,
    /// The client may send for the domain.
    Pass,
    /// The client may not.
    Fail,
    /// Probably not.
    SoftFail,
    /// A DNS failure; try later.
    TempError,
    /// The domain's records are broken.
    PermError,
}

impl SpfResult {
    /// The word in an Authentication-Results header.
    pub fn name(self) -> &'static str {
        match self {
            SpfResult::None => "none",
            SpfResult::Neutral => "neutral",
            SpfResult::Pass => "pass",
            SpfResult::Fail => "fail",
            SpfResult::SoftFail => "softfail",
            SpfResult::TempError => "temperror",
            SpfResult::PermError => "permerror",
        }
    }
}

impl From<Qualifier> for SpfResult {
    fn from(q: Qualifier) -> SpfResult {
        match q {
            Qualifier::Pass => SpfResult::Pass,
            Qualifier::Fail => SpfResult::Fail,
            Qualifier::SoftFail => SpfResult::SoftFail,
            Qualifier::Neutral => SpfResult::Neutral,
        }
    }
}

/// A finished check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The result.
    pub result: SpfResult,
    /// Why, for an error.
    pub reason: String,
}

/// What [`Check::poll`] gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Poll {
    /// Resolve this and call [`Check::answer`].
    Need(Query),
    /// The result.
    Done(Outcome),
}

/// One check of a client against a sender's domain.
#[derive(Debug, Clone)]
pub struct Check {
    ip: IpAddr,
    sender: String,
    helo: String,
    answers: HashMap<Query, Answer>,
}

/// The most DNS-querying terms one check may evaluate (RFC 7208 4.6.4).
const MAX_LOOKUPS: u32 = 10;
/// The most lookups that may find nothing.
const MAX_VOIDS: u32 = 2;
/// The most MX or PTR names one term looks at.
const MAX_NAMES: usize = 10;

impl Check {
    /// A check of the client at `ip` sending as `mail_from` (the reverse-path), having said
    /// `helo`; with the null reverse-path, `postmaster@helo` is checked (RFC 7208 2.4).
    pub fn new(ip: IpAddr, mail_from: &str, helo: &str) -> Check {
        let sender = match mail_from.rsplit_once('@') {
            _ if mail_from.is_empty() => format!("postmaster@{helo}"),
            Some(("", domain)) => format!("postmaster@{domain}"),
            Some(_) => mail_from.to_string(),
            None => format!("postmaster@{mail_from}"),
        };
        // An IPv4-mapped IPv6 client is checked as IPv4 (RFC 7208 5).
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        Check { ip, sender, helo: helo.to_string(), answers: HashMap::new() }
    }

    /// The identity checked (`local@domain`).
    pub fn sender(&self) -> &str {
        &self.sender
    }

    /// Records the answer to a query.
    pub fn answer(&mut self, query: Query, answer: Answer) {
        self.answers.insert(query, answer);
    }

    /// The next query needed, or the result.
    pub fn poll(&self) -> Poll {
        let mut run = Run { check: self, lookups: 0, voids: 0 };
        let domain = self.sender.rsplit_once('@').map_or("", |(_, d)| d).trim_end_matches('.').to_string();
        match run.check_host(&domain, true) {
            Ok(result) => Poll::Done(Outcome { result, reason: String::new() }),
            Err(Stop::Need(query)) => Poll::Need(query),
            Err(Stop::Error(result, reason)) => Poll::Done(Outcome { result, reason }),
        }
    }
}

/// Why an evaluation stopped early.
enum Stop {
    Need(Query),
    Error(SpfResult, String),
}

fn perm(reason: impl Into<String>) -> Stop {
    Stop::Error(SpfResult::PermError, reason.into())
}

/// One replay of the evaluation.
struct Run<'a> {
    check: &'a Check,
    lookups: u32,
    voids: u32,
}

impl Run<'_> {
    /// RFC 7208 4: the result for `domain`. `top` is the first call (where a malformed or
    /// missing domain is `none`, not an error).
    fn check_host(&mut self, domain: &str, top: bool) -> Result<SpfResult, Stop> {
        if !valid_domain(domain) {
            return if top { Ok(SpfResult::None) } else { Err(perm(format!("{domain:?} is not a domain"))) };
        }
        let txt = match self.check.answers.get(&query(domain, QueryType::Txt)) {
            None => return Err(Stop::Need(query(domain, QueryType::Txt))),
            Some(Answer::Failed) => {
                return Err(Stop::Error(SpfResult::TempError, format!("the TXT lookup of {domain} failed")))
            }
            Some(Answer::Void) => Vec::new(),
            Some(Answer::Found(txt)) => txt.clone(),
        };
        let records: Vec<&String> = txt.iter().filter(|t| record::is_spf(t)).collect();
        let record = match records[..] {
            [] => return Ok(SpfResult::None),
            [one] => record::parse(one).map_err(|e| perm(format!("{domain}: {e}")))?,
            _ => return Err(perm(format!("{domain} has more than one SPF record"))),
        };
        for (qualifier, mechanism) in &record.directives {
            if self.matches(mechanism, domain)? {
                return Ok((*qualifier).into());
            }
        }
        if let Some(redirect) = &record.redirect {
            self.count()?;
            let target = self.target(Some(redirect), domain)?;
            return match self.check_host(&target, false)? {
                SpfResult::None => Err(perm(format!("redirect to {target}, which has no SPF record"))),
                result => Ok(result),
            };
        }
        Ok(SpfResult::Neutral)
    }

    fn matches(&mut self, mechanism: &Mechanism, domain: &str) -> Result<bool, Stop> {
        let ip = self.check.ip;
        Ok(match mechanism {
            Mechanism::All => true,
            Mechanism::Ip4(net, prefix) => {
                matches!(ip, IpAddr::V4(_)) && in_net(ip, IpAddr::V4(*net), *prefix)
            }
            Mechanism::Ip6(net, prefix) => {
                matches!(ip, IpAddr::V6(_)) && in_net(ip, IpAddr::V6(*net), *prefix)
            }
            Mechanism::Include(spec) => {
                self.count()?;
                let target = self.target(Some(spec), domain)?;
                match self.check_host(&target, false)? {
                    SpfResult::Pass => true,
                    SpfResult::None => return Err(perm(format!("include:{target} has no SPF record"))),
                    _ => false,
                }
            }
            Mechanism::A(spec, v4, v6) => {
                self.count()?;
                let target = self.target(spec.as_ref(), domain)?;
                let addresses = self.lookup(&target, address_type(ip), true)?;
                addresses.iter().any(|a| self.in_dual(a, *v4, *v6))
            }
            Mechanism::Mx(spec, v4, v6) => {
                self.count()?;
                let target = self.target(spec.as_ref(), domain)?;
                let hosts = self.lookup(&target, QueryType::Mx, true)?;
                if hosts.len() > MAX_NAMES {
                    return Err(perm(format!("{target} has more than {MAX_NAMES} MX records")));
                }
                let mut found = false;
                for host in hosts {
                    let addresses = self.lookup(&host, address_type(ip), false)?;
                    found |= addresses.iter().any(|a| self.in_dual(a, *v4, *v6));
                }
                found
            }
            Mechanism::Ptr(spec) => {
                self.count()?;
                let target = self.target(spec.as_ref(), domain)?;
                self.ptr_matches(&target)?
            }
            Mechanism::Exists(spec) => {
                self.count()?;
                let target = self.target(Some(spec), domain)?;
                !self.lookup(&target, QueryType::A, true)?.is_empty()
            }
        })
    }

    /// `ptr`: a validated name of the client's in `target` or under it. A DNS error here is
    /// no match, not a temperror (RFC 7208 5.5).
    fn ptr_matches(&mut self, target: &str) -> Result<bool, Stop> {
        let target = target.to_ascii_lowercase();
        let names = self.validated_names(true)?;
        Ok(names.iter().any(|n| *n == target || n.ends_with(&format!(".{target}"))))
    }

    /// The client's names (PTR) whose addresses include it, lowercased; none on an error.
    /// `counts`: a void PTR lookup counts toward the limit.
    fn validated_names(&mut self, counts: bool) -> Result<Vec<String>, Stop> {
        let ip = self.check.ip;
        let names = match self.answer(&reverse_name(ip), QueryType::Ptr)? {
            Answer::Found(names) => names,
            Answer::Void if counts => {
                self.void()?;
                return Ok(Vec::new());
            }
            _ => return Ok(Vec::new()),
        };
        let mut validated = Vec::new();
        for name in names.iter().take(MAX_NAMES) {
            if let Answer::Found(addresses) = self.answer(name, address_type(ip))? {
                if addresses.iter().any(|a| a.parse() == Ok(ip)) {
                    validated.push(name.to_ascii_lowercase());
                }
            }
        }
        Ok(validated)
    }

    /// `%{p}`: a validated name in `domain` or under it if there is one, else any, else
    /// `unknown` (RFC 7208 7.3).
    fn validated_name(&mut self, domain: &str) -> Result<String, Stop> {
        let names = self.validated_names(false)?;
        let domain = domain.to_ascii_lowercase();
        let inside = names.iter().find(|n| **n == domain || n.ends_with(&format!(".{domain}")));
        Ok(inside.or(names.first()).cloned().unwrap_or_else(|| "unknown".into()))
    }

    /// A known answer, or a stop asking for it.
    fn answer(&self, name: &str, qtype: QueryType) -> Result<Answer, Stop> {
        self.check.answers.get(&query(name, qtype)).cloned().ok_or_else(|| Stop::Need(query(name, qtype)))
    }

    /// The records of a lookup a term makes: a failure is a temperror; a void one counts
    /// (when `counts`) toward the limit of two.
    fn lookup(&mut self, name: &str, qtype: QueryType, counts: bool) -> Result<Vec<String>, Stop> {
        // A name the DNS cannot hold (a macro made it so: a label too long, a single label)
        // finds nothing. Other odd characters are asked about as they are, as the RFC 7208
        // test suite expects.
        let answer = if valid_domain(name) { self.answer(name, qtype)? } else { Answer::Void };
        match answer {
            Answer::Found(records) if !records.is_empty() => Ok(records),
            Answer::Found(_) | Answer::Void => {
                if counts {
                    self.void()?;
                }
                Ok(Vec::new())
            }
            Answer::Failed => {
                Err(Stop::Error(SpfResult::TempError, format!("the {qtype:?} lookup of {name} failed")))
            }
        }
    }

    fn void(&mut self) -> Result<(), Stop> {
        self.voids += 1;
        if self.voids > MAX_VOIDS {
            return Err(perm(format!("more than {MAX_VOIDS} lookups found nothing")));
        }
        Ok(())
    }

    fn count(&mut self) -> Result<(), Stop> {
        self.lookups += 1;
        if self.lookups > MAX_LOOKUPS {
            return Err(perm(format!("more than {MAX_LOOKUPS} DNS-querying terms")));
        }
        Ok(())
    }

    /// A term's domain: its spec expanded, or the current domain. Its syntax was checked
    /// before expansion; what expansion makes of it is looked up as it is (RFC 7208 7.1).
    fn target(&mut self, spec: Option<&String>, domain: &str) -> Result<String, Stop> {
        let Some(spec) = spec else { return Ok(domain.to_string()) };
        let validated = if spec.to_ascii_lowercase().contains("%{p") {
            self.validated_name(domain)?
        } else {
            String::new()
        };
        let check = self.check;
        let cx = macros::Context {
            sender: &check.sender,
            domain,
            ip: check.ip,
            helo: &check.helo,
            validated: &validated,
        };
        let mut name = macros::expand(spec, &cx).ok_or_else(|| perm(format!("bad macro in {spec}")))?;
        name = name.trim_end_matches('.').to_string();
        // Too long: labels dropped from the left until it fits (RFC 7208 7.3).
        while name.len() > 253 {
            match name.split_once('.') {
                Some((_, rest)) => name = rest.to_string(),
                None => break,
            }
        }
        Ok(name)
    }

    fn in_dual(&self, address: &str, v4: u8, v6: u8) -> bool {
        let Ok(address) = address.parse::<IpAddr>() else { return false };
        in_net(self.check.ip, address, if address.is_ipv4() { v4 } else { v6 })
    }
}

fn query(name: &str, qtype: QueryType) -> Query {
    Query { name: name.trim_end_matches('.').to_ascii_lowercase(), qtype }
}

fn address_type(ip: IpAddr) -> QueryType {
    if ip.is_ipv4() {
        QueryType::A
    } else {
        QueryType::Aaaa
    }
}

/// A multi-label name with labels of 1 to 63 characters, at most 253 in all.
fn valid_domain(name: &str) -> bool {
    name.len() <= 253 && name.contains('.') && name.split('.').all(|l| !l.is_empty() && l.len() <= 63)
}

/// Whether `ip` is in `net/prefix` (both of one family).
fn in_net(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    let (ip, net, bits) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            (u128::from(u32::from(a)) << 96, u128::from(u32::from(b)) << 96, prefix)
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), prefix),
        _ => return false,
    };
    let mask = if bits == 0 { 0 } else { u128::MAX << (128 - u32::from(bits)) };
    ip & mask == net & mask
}

/// The reverse-lookup name of an address (`3.2.0.192.in-addr.arpa`).
fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let nibbles: Vec<String> =
                v6.octets().iter().rev().flat_map(|b| [b & 15, b >> 4]).map(|n| format!("{n:x}")).collect();
            format!("{}.ip6.arpa", nibbles.join("."))
        }
    }
}
