//! RFC 7208 Appendix A's examples and the limits, on a zone held in a map.

use super::*;

/// RFC 7208 A's zone, plus what the other tests need.
fn zone(spf: &str) -> Vec<(&'static str, QueryType, Vec<String>)> {
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        ("example.com", QueryType::Txt, vec![spf.to_string()]),
        ("example.com", QueryType::Mx, s(&["mail-a.example.com", "mail-b.example.com"])),
        ("example.com", QueryType::A, s(&["192.0.2.10", "192.0.2.11"])),
        ("amy.example.com", QueryType::A, s(&["192.0.2.65"])),
        ("bob.example.com", QueryType::A, s(&["192.0.2.66"])),
        ("mail-a.example.com", QueryType::A, s(&["192.0.2.129"])),
        ("mail-b.example.com", QueryType::A, s(&["192.0.2.130"])),
        ("example.org", QueryType::Mx, s(&["mail-c.example.org"])),
        ("mail-c.example.org", QueryType::A, s(&["192.0.2.140"])),
        ("10.2.0.192.in-addr.arpa", QueryType::Ptr, s(&["example.com"])),
        ("11.2.0.192.in-addr.arpa", QueryType::Ptr, s(&["example.com"])),
        ("65.2.0.192.in-addr.arpa", QueryType::Ptr, s(&["amy.example.com"])),
        ("66.2.0.192.in-addr.arpa", QueryType::Ptr, s(&["bob.example.com"])),
        ("129.2.0.192.in-addr.arpa", QueryType::Ptr, s(&["mail-a.example.com"])),
        ("130.2.0.192.in-addr.arpa", QueryType::Ptr, s(&["mail-b.example.com"])),
        ("140.2.0.192.in-addr.arpa", QueryType::Ptr, s(&["mail-c.example.org"])),
        ("_spf.example.net", QueryType::Txt, s(&["v=spf1 ip4:198.51.100.0/24 -all"])),
        ("nospf.example.net", QueryType::Txt, s(&["some other text"])),
        ("loop.example.net", QueryType::Txt, s(&["v=spf1 include:loop.example.net -all"])),
        ("strong-bad.lp._spf.example.com", QueryType::A, s(&["127.0.0.2"])),
        ("broken.example.net", QueryType::Txt, s(&["v=spf1 -all", "v=spf1 +all"])),
    ]
}

/// Runs a check to its end, answering from `zone` (a name not in it is void; `failing`
/// fails).
fn check(spf: &str, ip: &str, from: &str) -> Outcome {
    check_with(&zone(spf), ip, from)
}

fn check_with(zone: &[(&str, QueryType, Vec<String>)], ip: &str, from: &str) -> Outcome {
    let mut c = Check::new(ip.parse().unwrap(), from, "mx.client.example");
    for _ in 0..100 {
        match c.poll() {
            Poll::Done(outcome) => return outcome,
            Poll::Need(q) => {
                let answer = if q.name.starts_with("failing") {
                    Answer::Failed
                } else {
                    zone.iter()
                        .find(|(n, t, _)| *n == q.name && *t == q.qtype)
                        .map_or(Answer::Void, |(_, _, r)| Answer::Found(r.clone()))
                };
                c.answer(q, answer);
            }
        }
    }
    panic!("a check that never ends");
}

fn result(spf: &str, ip: &str) -> SpfResult {
    check(spf, ip, "strong-bad@example.com").result
}

#[test]
fn rfc_7208_appendix_a() {
    use SpfResult::*;
    for (spf, ip, expected) in [
        ("v=spf1 +all", "203.0.113.1", Pass),
        ("v=spf1 a -all", "192.0.2.10", Pass),
        ("v=spf1 a -all", "192.0.2.11", Pass),
        ("v=spf1 a -all", "192.0.2.65", Fail),
        ("v=spf1 a:example.org -all", "192.0.2.10", Fail),
        ("v=spf1 mx -all", "192.0.2.129", Pass),
        ("v=spf1 mx -all", "192.0.2.130", Pass),
        ("v=spf1 mx -all", "192.0.2.140", Fail),
        ("v=spf1 mx:example.org -all", "192.0.2.140", Pass),
        ("v=spf1 mx mx:example.org -all", "192.0.2.140", Pass),
        ("v=spf1 mx mx:example.org -all", "192.0.2.129", Pass),
        ("v=spf1 mx/30 mx:example.org/30 -all", "192.0.2.131", Pass),
        ("v=spf1 mx/30 mx:example.org/30 -all", "192.0.2.143", Pass),
        ("v=spf1 mx/30 mx:example.org/30 -all", "192.0.2.144", Fail),
        ("v=spf1 ptr -all", "192.0.2.65", Pass),
        ("v=spf1 ptr -all", "192.0.2.140", Fail),
        ("v=spf1 ip4:192.0.2.128/28 -all", "192.0.2.65", Fail),
        ("v=spf1 ip4:192.0.2.128/28 -all", "192.0.2.129", Pass),
        ("v=spf1 ip4:192.0.2.128/28 -all", "192.0.2.143", Pass),
        ("v=spf1 ~all", "192.0.2.1", SoftFail),
        ("v=spf1 ?all", "192.0.2.1", Neutral),
        ("v=spf1 a", "192.0.2.1", Neutral),
        ("v=spf1 ip6:2001:db8::/32 -all", "2001:db8::1", Pass),
        ("v=spf1 ip6:2001:db8::/32 -all", "192.0.2.1", Fail),
        ("v=spf1 ip4:192.0.2.0/24 -all", "::ffff:192.0.2.7", Pass),
        ("v=spf1 include:_spf.example.net -all", "198.51.100.9", Pass),
        ("v=spf1 include:_spf.example.net -all", "192.0.2.10", Fail),
        ("v=spf1 redirect=_spf.example.net", "198.51.100.9", Pass),
        ("v=spf1 redirect=_spf.example.net", "192.0.2.10", Fail),
        ("v=spf1 exists:%{l}.lp._spf.%{d} -all", "192.0.2.99", Pass),
        ("v=spf1 include:nospf.example.net -all", "192.0.2.10", PermError),
        ("v=spf1 redirect=nospf.example.net", "192.0.2.10", PermError),
        ("v=spf1 include:loop.example.net -all", "192.0.2.10", PermError),
        ("v=spf1 include:broken.example.net -all", "192.0.2.10", PermError),
        ("v=spf1 include:failing.example.net -all", "192.0.2.10", TempError),
        ("v=spf1 a:failing.example.net -all", "192.0.2.10", TempError),
        ("v=spf1 ptr:failing.example.net -all", "192.0.2.10", Fail),
        ("v=spf1 bogus -all", "192.0.2.10", PermError),
        ("v=spf1 a:%{q} -all", "192.0.2.10", PermError),
    ] {
        assert_eq!(
            result(spf, ip),
            expected,
            "{spf} for {ip}: {:?}",
            check(spf, ip, "strong-bad@example.com")
        );
    }
}

#[test]
fn limits() {
    // 11 DNS-querying terms: a permerror, the 10th still fine.
    let ten = format!("v=spf1 {}ip4:192.0.2.10 -all", "a:amy.example.com ".repeat(10));
    assert_eq!(result(&ten, "192.0.2.10"), SpfResult::Pass);
    let eleven = format!("v=spf1 {}ip4:192.0.2.10 -all", "a:amy.example.com ".repeat(11));
    let outcome = check(&eleven, "192.0.2.10", "strong-bad@example.com");
    assert_eq!(outcome.result, SpfResult::PermError);
    assert!(outcome.reason.contains("10 DNS-querying"), "{}", outcome.reason);
    // Two void lookups are allowed, a third is not.
    let two = "v=spf1 a:void1.example.com a:void2.example.com ip4:192.0.2.10 -all";
    assert_eq!(result(two, "192.0.2.10"), SpfResult::Pass);
    let three = "v=spf1 a:void1.example.com a:void2.example.com a:void3.example.com ip4:192.0.2.10 -all";
    assert_eq!(result(three, "192.0.2.10"), SpfResult::PermError);
}

#[test]
fn identities_and_missing_records() {
    // No SPF record, no such domain, a malformed one: none.
    assert_eq!(check("v=spf1 -all", "192.0.2.1", "joe@nowhere.example").result, SpfResult::None);
    assert_eq!(check("v=spf1 -all", "192.0.2.1", "joe@localhost").result, SpfResult::None);
    // Two records: permerror.
    assert_eq!(check("", "192.0.2.1", "joe@broken.example.net").result, SpfResult::PermError);
    // The null sender is checked as postmaster@HELO.
    let c = Check::new("192.0.2.1".parse().unwrap(), "", "mx.client.example");
    assert_eq!(c.sender(), "postmaster@mx.client.example");
    // A failed TXT lookup at the top: temperror.
    assert_eq!(check("", "192.0.2.1", "joe@failing.example").result, SpfResult::TempError);
}
