//! The resolver on a simulated clock, against scripted servers (hickory-proto builds their
//! answers): retries and server order, truncation to TCP, streams reused and pipelined,
//! spoofed answers dropped, the search list, negative caching, coalescing, CNAME chains.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::*;
use crate::config::{Hosts, ResolverConfig};
use crate::error::{ResolveError, Source};
use crate::wire;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn name(s: &str) -> Name {
    Name::from_str(s).unwrap()
}

/// The reply a server gives to `query`: `rcode`, `answers`, an SOA in the authority section
/// when `soa`, truncated when `tc`.
fn reply(query: &[u8], rcode: ResponseCode, answers: Vec<Record>, soa: bool, tc: bool) -> Vec<u8> {
    let q = Message::from_vec(query).unwrap();
    let mut m = Message::new(q.metadata.id, MessageType::Response, q.metadata.op_code);
    m.metadata.response_code = rcode;
    m.metadata.truncation = tc;
    m.metadata.recursion_desired = true;
    m.metadata.recursion_available = true;
    m.queries = q.queries.clone();
    m.answers = answers;
    if soa {
        let zone = name("zero.test.");
        let data = SOA::new(name("ns.zero.test."), name("admin.zero.test."), 1, 3600, 600, 86400, 60);
        m.authorities.push(Record::from_rdata(zone, 300, RData::SOA(data)));
    }
    m.to_vec().unwrap()
}

fn a(owner: &str, ip: &str, ttl: u32) -> Record {
    Record::from_rdata(name(owner), ttl, RData::A(A::from_str(ip).unwrap()))
}

struct Net {
    r: Resolver,
    now: Instant,
    answers: Vec<(LookupId, Result<Answer, ResolveError>)>,
}

impl Net {
    fn new(config: ResolverConfig) -> Net {
        Net { r: Resolver::new(config, 7), now: Instant::now(), answers: Vec::new() }
    }

    fn sent(&mut self) -> Vec<Transmit> {
        std::iter::from_fn(|| self.r.poll_transmit()).collect()
    }

    fn drain(&mut self) {
        while let Some(Event::Answer { lookup, result }) = self.r.poll_event() {
            self.answers.push((lookup, result));
        }
    }

    fn answer(&mut self, t: &Transmit, bytes: &[u8]) {
        if let Some(stream) = t.stream {
            self.r.handle_stream(self.now, stream, &wire::tcp_frame(bytes));
        } else {
            self.r.handle_datagram(self.now, t.attempt, t.server, bytes);
        }
        self.drain();
    }

    fn wait(&mut self, d: Duration) {
        self.now += d;
        if self.r.poll_timeout().is_some_and(|t| t <= self.now) {
            self.r.handle_timeout(self.now);
        }
        self.drain();
    }
}

fn two_servers() -> ResolverConfig {
    let mut c = ResolverConfig::with_servers(&[addr("127.0.0.1:5301"), addr("127.0.0.1:5302")]);
    c.timeout = Duration::from_secs(2);
    c
}

#[test]
fn an_answer_from_the_first_server() {
    let mut n = Net::new(two_servers());
    let id = n.r.lookup(n.now, "www.zero.test", RecordType::A);
    let sent = n.sent();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].stream.is_none());
    n.answer(
        &sent[0],
        &reply(
            &sent[0].bytes,
            ResponseCode::NoError,
            vec![a("www.zero.test.", "10.0.0.1", 60)],
            false,
            false,
        ),
    );
    let (lid, result) = &n.answers[0];
    assert_eq!(*lid, id);
    let answer = result.as_ref().unwrap();
    assert_eq!(answer.ips(), ["10.0.0.1".parse::<std::net::IpAddr>().unwrap()]);
    assert_eq!(answer.source, Source::Server(addr("127.0.0.1:5301")));
    assert_eq!(n.r.poll_close(), Some(Close::Attempt(sent[0].attempt)));
    // Then from the cache.
    n.r.lookup(n.now, "WWW.zero.test", RecordType::A);
    n.drain();
    assert!(n.sent().is_empty());
    assert_eq!(n.answers[1].1.as_ref().unwrap().source, Source::Cache);
}

#[test]
fn a_silent_server_is_skipped_after_its_timeout_and_tried_last_after() {
    let mut n = Net::new(two_servers());
    n.r.lookup(n.now, "a.zero.test", RecordType::A);
    let first = n.sent();
    assert_eq!(first[0].server, addr("127.0.0.1:5301"));
    n.wait(Duration::from_secs(2));
    let second = n.sent();
    assert_eq!(second[0].server, addr("127.0.0.1:5302"));
    n.answer(
        &second[0],
        &reply(
            &second[0].bytes,
            ResponseCode::NoError,
            vec![a("a.zero.test.", "10.0.0.2", 60)],
            false,
            false,
        ),
    );
    assert!(n.answers[0].1.is_ok());
    // The first server timed out: the next question goes to the second first.
    n.r.lookup(n.now, "b.zero.test", RecordType::A);
    assert_eq!(n.sent()[0].server, addr("127.0.0.1:5302"));
}

#[test]
fn nobody_answers_timeout_after_every_try() {
    let mut n = Net::new(two_servers());
    n.r.lookup(n.now, "c.zero.test", RecordType::A);
    for _ in 0..4 {
        assert_eq!(n.sent().len(), 1);
        n.wait(Duration::from_secs(2));
    }
    let error = n.answers[0].1.as_ref().unwrap_err();
    assert_eq!(error.to_string(), "c.zero.test.: timed out after 4 tries of 2 servers");
}

#[test]
fn servfail_moves_on_and_the_last_failure_is_reported() {
    let mut n = Net::new(ResolverConfig::with_servers(&[addr("127.0.0.1:5301")]));
    n.r.lookup(n.now, "d.zero.test", RecordType::A);
    for _ in 0..2 {
        let t = n.sent().remove(0);
        n.answer(&t, &reply(&t.bytes, ResponseCode::ServFail, vec![], false, false));
    }
    let error = n.answers[0].1.as_ref().unwrap_err();
    assert!(
        matches!(error, ResolveError::ServerFailure { rcode, .. } if rcode.contains("Server Failure")),
        "{error}"
    );
}

#[test]
fn truncated_is_asked_again_over_tcp() {
    let mut n = Net::new(two_servers());
    n.r.lookup(n.now, "big.zero.test", RecordType::A);
    let udp = n.sent().remove(0);
    n.answer(&udp, &reply(&udp.bytes, ResponseCode::NoError, vec![], false, true));
    let tcp = n.sent().remove(0);
    assert!(tcp.stream.is_some() && tcp.server == udp.server);
    let (query, _) = wire::tcp_unframe(&tcp.bytes).unwrap();
    let big: Vec<Record> = (1..=40).map(|i| a("big.zero.test.", &format!("10.0.0.{i}"), 60)).collect();
    n.answer(&tcp, &reply(query, ResponseCode::NoError, big, false, false));
    assert_eq!(n.answers[0].1.as_ref().unwrap().ips().len(), 40);
}

/// A framed query's own bytes.
fn unframed(t: &Transmit) -> &[u8] {
    wire::tcp_unframe(&t.bytes).unwrap().0
}

#[test]
fn one_stream_carries_pipelined_queries_answered_out_of_order_then_closes_when_idle() {
    let mut c = two_servers();
    c.tcp_only = true;
    let mut n = Net::new(c);
    let one = n.r.lookup(n.now, "one.zero.test", RecordType::A);
    let two = n.r.lookup(n.now, "two.zero.test", RecordType::A);
    let sent = n.sent();
    assert_eq!(sent.len(), 2);
    assert!(sent[0].stream.is_some() && sent[0].stream == sent[1].stream, "one connection for both");
    // An answer with an id nobody asked is dropped.
    let mut stray = reply(
        unframed(&sent[0]),
        ResponseCode::NoError,
        vec![a("one.zero.test.", "10.0.0.9", 60)],
        false,
        false,
    );
    stray[0] ^= 0x5a;
    n.answer(&sent[0], &stray);
    assert_eq!((n.answers.len(), n.r.dropped()), (0, 1));
    // The second answered first, both in one read.
    let mut both = wire::tcp_frame(&reply(
        unframed(&sent[1]),
        ResponseCode::NoError,
        vec![a("two.zero.test.", "10.0.0.2", 60)],
        false,
        false,
    ));
    both.extend(wire::tcp_frame(&reply(
        unframed(&sent[0]),
        ResponseCode::NoError,
        vec![a("one.zero.test.", "10.0.0.1", 60)],
        false,
        false,
    )));
    n.r.handle_stream(n.now, sent[0].stream.unwrap(), &both);
    n.drain();
    let got: Vec<(LookupId, String)> =
        n.answers.iter().map(|(l, r)| (*l, r.as_ref().unwrap().ips()[0].to_string())).collect();
    assert_eq!(got, [(two, "10.0.0.2".into()), (one, "10.0.0.1".into())]);
    // The next query reuses it; it closes after STREAM_IDLE without one.
    n.r.lookup(n.now, "three.zero.test", RecordType::A);
    let three = n.sent().remove(0);
    assert_eq!(three.stream, sent[0].stream);
    n.answer(
        &three,
        &reply(
            unframed(&three),
            ResponseCode::NoError,
            vec![a("three.zero.test.", "10.0.0.3", 60)],
            false,
            false,
        ),
    );
    assert_eq!(n.r.poll_close(), None);
    n.wait(STREAM_IDLE);
    assert_eq!(n.r.poll_close(), Some(Close::Stream(sent[0].stream.unwrap())));
}

#[test]
fn a_reused_stream_the_server_closed_is_reopened_without_spending_a_try() {
    let mut c = two_servers();
    c.tcp_only = true;
    let mut n = Net::new(c);
    n.r.lookup(n.now, "one.zero.test", RecordType::A);
    let first = n.sent().remove(0);
    n.answer(
        &first,
        &reply(
            unframed(&first),
            ResponseCode::NoError,
            vec![a("one.zero.test.", "10.0.0.1", 60)],
            false,
            false,
        ),
    );
    n.r.lookup(n.now, "two.zero.test", RecordType::A);
    let second = n.sent().remove(0);
    assert_eq!(second.stream, first.stream);
    // The server's idle timeout closed it as the query went out: the same server, anew.
    n.r.handle_stream_closed(n.now, second.stream.unwrap(), None);
    let again = n.sent().remove(0);
    assert!(again.server == first.server && again.stream.is_some() && again.stream != first.stream);
    // A fresh stream that closes unanswered moves on to the next server.
    n.r.handle_stream_closed(n.now, again.stream.unwrap(), Some("connection refused".into()));
    let next = n.sent().remove(0);
    assert_eq!(next.server, addr("127.0.0.1:5302"));
    n.answer(
        &next,
        &reply(
            unframed(&next),
            ResponseCode::NoError,
            vec![a("two.zero.test.", "10.0.0.2", 60)],
            false,
            false,
        ),
    );
    assert_eq!(n.answers.len(), 2);
    assert!(n.answers[1].1.is_ok());
}

#[test]
fn a_spoofed_or_mismatched_reply_is_dropped_and_the_real_one_taken() {
    let mut n = Net::new(two_servers());
    n.r.lookup(n.now, "e.zero.test", RecordType::A);
    let t = n.sent().remove(0);
    let good = reply(&t.bytes, ResponseCode::NoError, vec![a("e.zero.test.", "10.0.0.5", 60)], false, false);
    // From another address.
    n.r.handle_datagram(n.now, t.attempt, addr("127.0.0.1:9999"), &good);
    // With another id.
    let mut other = good.clone();
    other[0] ^= 0xff;
    n.r.handle_datagram(n.now, t.attempt, t.server, &other);
    // Garbage.
    n.r.handle_datagram(n.now, t.attempt, t.server, &good[..7]);
    n.drain();
    assert!(n.answers.is_empty());
    assert_eq!(n.r.dropped(), 3);
    n.answer(&t, &good);
    assert!(n.answers[0].1.is_ok());
}

#[test]
fn the_search_list_and_negative_caching() {
    let mut c = two_servers();
    c.search = vec!["corp.test".into()];
    let mut n = Net::new(c);
    n.r.lookup(n.now, "host", RecordType::A);
    // host has no dots: host.corp.test first, then host.
    let t = n.sent().remove(0);
    assert_eq!(Message::from_vec(&t.bytes).unwrap().queries[0].name(), &name("host.corp.test."));
    n.answer(&t, &reply(&t.bytes, ResponseCode::NXDomain, vec![], true, false));
    let t = n.sent().remove(0);
    assert_eq!(Message::from_vec(&t.bytes).unwrap().queries[0].name(), &name("host."));
    n.answer(&t, &reply(&t.bytes, ResponseCode::NXDomain, vec![], true, false));
    let error = n.answers[0].1.as_ref().unwrap_err();
    assert!(matches!(error, ResolveError::NxDomain { name, .. } if name == "host."), "{error}");
    // Remembered for the SOA minimum (60 s): no query within it, a query after.
    n.r.lookup(n.now, "host", RecordType::A);
    n.drain();
    assert!(n.sent().is_empty());
    assert!(matches!(&n.answers[1].1, Err(ResolveError::NxDomain { server: Source::Cache, .. })));
    n.now += Duration::from_secs(61);
    n.r.lookup(n.now, "host", RecordType::A);
    assert_eq!(n.sent().len(), 1);
}

#[test]
fn nodata_is_not_nxdomain() {
    let mut n = Net::new(two_servers());
    n.r.lookup(n.now, "www.zero.test", RecordType::AAAA);
    let t = n.sent().remove(0);
    n.answer(&t, &reply(&t.bytes, ResponseCode::NoError, vec![], true, false));
    assert!(matches!(&n.answers[0].1, Err(ResolveError::NoData { .. })), "{:?}", n.answers[0].1);
}

#[test]
fn identical_questions_in_flight_are_asked_once() {
    let mut n = Net::new(two_servers());
    let ids: Vec<LookupId> = (0..5).map(|_| n.r.lookup(n.now, "f.zero.test", RecordType::A)).collect();
    let sent = n.sent();
    assert_eq!(sent.len(), 1);
    n.answer(
        &sent[0],
        &reply(&sent[0].bytes, ResponseCode::NoError, vec![a("f.zero.test.", "10.0.0.6", 60)], false, false),
    );
    let answered: Vec<LookupId> = n.answers.iter().map(|(id, _)| *id).collect();
    assert_eq!(answered, ids);
    assert!(n.answers.iter().all(|(_, r)| r.is_ok()));
}

#[test]
fn cname_chains_are_followed_and_loops_stopped() {
    let mut n = Net::new(two_servers());
    n.r.lookup(n.now, "alias.zero.test", RecordType::A);
    let t = n.sent().remove(0);
    // Only the CNAME: the resolver asks about its target.
    let cname =
        Record::from_rdata(name("alias.zero.test."), 60, RData::CNAME(CNAME(name("real.zero.test."))));
    n.answer(&t, &reply(&t.bytes, ResponseCode::NoError, vec![cname.clone()], false, false));
    let t = n.sent().remove(0);
    assert_eq!(Message::from_vec(&t.bytes).unwrap().queries[0].name(), &name("real.zero.test."));
    n.answer(
        &t,
        &reply(&t.bytes, ResponseCode::NoError, vec![a("real.zero.test.", "10.0.0.7", 60)], false, false),
    );
    let answer = n.answers[0].1.as_ref().unwrap();
    assert_eq!(answer.records.len(), 2);
    assert_eq!(answer.name, name("real.zero.test."));
    // A loop: x -> y -> x.
    n.r.lookup(n.now, "x.zero.test", RecordType::A);
    let t = n.sent().remove(0);
    let xy = Record::from_rdata(name("x.zero.test."), 60, RData::CNAME(CNAME(name("y.zero.test."))));
    let yx = Record::from_rdata(name("y.zero.test."), 60, RData::CNAME(CNAME(name("x.zero.test."))));
    n.answer(&t, &reply(&t.bytes, ResponseCode::NoError, vec![xy, yx], false, false));
    let mut rounds = 0;
    while n.answers.len() < 2 && rounds < 20 {
        for t in n.sent() {
            let q = Message::from_vec(&t.bytes).unwrap();
            let owner = q.queries[0].name().clone();
            let target = if owner == name("x.zero.test.") { "y.zero.test." } else { "x.zero.test." };
            let r = Record::from_rdata(owner, 60, RData::CNAME(CNAME(name(target))));
            n.answer(&t, &reply(&t.bytes, ResponseCode::NoError, vec![r], false, false));
        }
        rounds += 1;
    }
    assert!(matches!(&n.answers[1].1, Err(ResolveError::CnameLoop { .. })), "{:?}", n.answers.get(1));
}

#[test]
fn hosts_answer_first() {
    let mut c = two_servers();
    c.hosts = Hosts::parse("10.9.9.9 printer.lan printer\n");
    let mut n = Net::new(c);
    n.r.lookup(n.now, "printer", RecordType::A);
    n.drain();
    assert!(n.sent().is_empty());
    let answer = n.answers[0].1.as_ref().unwrap();
    assert_eq!(answer.source, Source::Hosts);
    assert_eq!(answer.ips(), ["10.9.9.9".parse::<std::net::IpAddr>().unwrap()]);
}

#[test]
fn case_randomization_requires_the_case_back() {
    let mut c = two_servers();
    c.case_randomization = true;
    let mut n = Net::new(c);
    n.r.lookup(n.now, "mixedcase.zero.test", RecordType::A);
    let t = n.sent().remove(0);
    let asked = Message::from_vec(&t.bytes).unwrap().queries[0].name().to_ascii();
    assert_ne!(asked, "mixedcase.zero.test.", "the case was mixed");
    // A server (or spoofer) that lowers the case is not believed.
    let mut lowered =
        Message::from_vec(&reply(&t.bytes, ResponseCode::NoError, vec![], false, false)).unwrap();
    lowered.queries[0].set_name(Name::from_ascii("mixedcase.zero.test.").unwrap());
    n.r.handle_datagram(n.now, t.attempt, t.server, &lowered.to_vec().unwrap());
    assert_eq!(n.r.dropped(), 1);
    n.answer(
        &t,
        &reply(
            &t.bytes,
            ResponseCode::NoError,
            vec![a("mixedcase.zero.test.", "10.0.0.8", 60)],
            false,
            false,
        ),
    );
    assert!(n.answers[0].1.is_ok());
}

#[test]
fn mx_by_preference_and_srv_in_rfc_2782_order() {
    use hickory_proto::rr::rdata::{MX, SRV};
    let rec = |data| Record::from_rdata(name("zero.test."), 60, data);
    let answer = Answer {
        name: name("zero.test."),
        rtype: RecordType::MX,
        records: vec![
            rec(RData::MX(MX::new(20, name("b.zero.test.")))),
            rec(RData::MX(MX::new(5, name("a.zero.test.")))),
            rec(RData::SRV(SRV::new(10, 0, 1, name("zero-weight.zero.test.")))),
            rec(RData::SRV(SRV::new(10, 60, 2, name("heavy.zero.test.")))),
            rec(RData::SRV(SRV::new(1, 0, 3, name("first.zero.test.")))),
            rec(RData::SRV(SRV::new(10, 40, 4, name("light.zero.test.")))),
        ],
        source: Source::Cache,
        response: None,
    };
    let mx: Vec<u16> = answer.mx().iter().map(|(p, _)| *p).collect();
    assert_eq!(mx, [5, 20]);
    // Priority 1 first; then a draw of 0 takes the zero-weight target, a draw of the total
    // (100) the last of the running sums (the heaviest), and the light one is left.
    let mut draws = [0, 0, 100, 40].into_iter();
    let ports: Vec<u16> = answer.srv(|_| draws.next().unwrap()).iter().map(|s| s.1).collect();
    assert_eq!(ports, [3, 1, 2, 4]);
}

#[test]
fn a_and_aaaa_are_asked_together() {
    let mut n = Net::new(two_servers());
    let [v6, v4] = n.r.lookup_addresses(n.now, "both.zero.test");
    let sent = n.sent();
    assert_eq!(sent.len(), 2, "both in flight at once");
    assert_ne!(v6, v4);
}
