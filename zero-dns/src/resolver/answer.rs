//! A lookup's answer, and what applications do with it: addresses, mail exchangers in
//! preference order, service targets in RFC 2782 order.

use std::net::IpAddr;

use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::error::Source;

/// A lookup's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The name whose records answered (the last of the CNAME chain).
    pub name: Name,
    /// The type asked for.
    pub rtype: RecordType,
    /// The records: the CNAME chain first, then those of `rtype`.
    pub records: Vec<Record>,
    /// Where it came from.
    pub source: Source,
    /// The server's whole last response (none from the cache or `/etc/hosts`).
    pub response: Option<Box<Message>>,
}

impl Answer {
    /// The addresses among the records (A and AAAA).
    pub fn ips(&self) -> Vec<IpAddr> {
        self.records
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            })
            .collect()
    }

    /// The records of the type asked for (the chain's CNAMEs left out).
    pub fn of_type(&self) -> impl Iterator<Item = &Record> {
        self.records.iter().filter(move |r| r.record_type() == self.rtype)
    }

    /// The TXT records, each one's character-strings joined (as DKIM and SPF read them,
    /// RFC 6376 3.6.2.2, RFC 7208 3.3); bytes that are not UTF-8 are replaced.
    pub fn txt(&self) -> Vec<String> {
        self.records
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(txt) => {
                    Some(txt.txt_data.iter().map(|s| String::from_utf8_lossy(s)).collect::<String>())
                }
                _ => None,
            })
            .collect()
    }

    /// The names of the PTR records.
    pub fn ptr(&self) -> Vec<Name> {
        self.records
            .iter()
            .filter_map(|r| match &r.data {
                RData::PTR(p) => Some(p.0.clone()),
                _ => None,
            })
            .collect()
    }

    /// The mail exchangers, most preferred (lowest preference) first (RFC 5321 5.1).
    pub fn mx(&self) -> Vec<(u16, Name)> {
        let mut mx: Vec<(u16, Name)> = self
            .records
            .iter()
            .filter_map(|r| match &r.data {
                RData::MX(mx) => Some((mx.preference, mx.exchange.clone())),
                _ => None,
            })
            .collect();
        mx.sort_by_key(|(preference, _)| *preference);
        mx
    }

    /// The service's targets in the order RFC 2782 says to try them: by priority, lowest
    /// first; within a priority, a weighted random order (`pick(total)` returns a number in
    /// `0..=total`; zero-weight targets come first in the draw, as the RFC orders them).
    pub fn srv(&self, mut pick: impl FnMut(u32) -> u32) -> Vec<(Name, u16)> {
        let mut all: Vec<(u16, u16, Name, u16)> = self
            .records
            .iter()
            .filter_map(|r| match &r.data {
                RData::SRV(s) => Some((s.priority, s.weight, s.target.clone(), s.port)),
                _ => None,
            })
            .collect();
        all.sort_by_key(|&(priority, weight, ..)| (priority, weight));
        let mut out = Vec::with_capacity(all.len());
        while let Some(&(priority, ..)) = all.first() {
            let end = all.iter().position(|s| s.0 != priority).unwrap_or(all.len());
            let mut group: Vec<_> = all.drain(..end).collect();
            while !group.is_empty() {
                let total: u32 = group.iter().map(|s| u32::from(s.1)).sum();
                let chosen = pick(total);
                let mut running = 0;
                let at = group
                    .iter()
                    .position(|s| {
                        running += u32::from(s.1);
                        running >= chosen
                    })
                    .unwrap_or(0);
                let (_, _, target, port) = group.remove(at);
                out.push((target, port));
            }
        }
        out
    }
}
