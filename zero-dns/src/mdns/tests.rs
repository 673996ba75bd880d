//! The responder and browser on a simulated clock, wired to each other (and to a rival) as if
//! on one link.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode};
use hickory_proto::rr::rdata::SRV;
use hickory_proto::rr::{RData, Record};

use super::browser::{self, Browser};
use super::responder::{self, next_host_name, next_name, Responder};
use super::{Endpoint, Service};

fn service(name: &str) -> Service {
    Service { instance: name.into(), service_type: "_zero._tcp".into(), port: 8080, txt: vec!["v=1".into()] }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Carries every endpoint's multicast to every other (and its unicast to the addressee),
/// stepping time by `step` until `until` has passed.
fn link(nodes: &mut [&mut dyn Endpoint], now: &mut Instant, step: Duration, until: Duration) {
    let end = *now + until;
    while *now < end {
        for node in nodes.iter_mut() {
            if node.poll_timeout().is_some_and(|t| t <= *now) {
                node.handle_timeout(*now);
            }
        }
        loop {
            let mut moved = false;
            for i in 0..nodes.len() {
                while let Some(t) = nodes[i].poll_transmit() {
                    moved = true;
                    let from = SocketAddr::from((
                        [127, 0, 0, 1],
                        if t.to.is_some() { 40000 + i as u16 } else { 5353 },
                    ));
                    for (j, node) in nodes.iter_mut().enumerate() {
                        if j != i {
                            node.handle_datagram(*now, from, &t.bytes);
                        }
                    }
                }
            }
            if !moved {
                break;
            }
        }
        *now += step;
    }
}

#[test]
fn a_registered_service_is_found_resolved_and_removed_by_its_goodbye() {
    let mut now = Instant::now();
    let mut r = Responder::new(now, "zerobox", &[ip("127.0.0.1")], 1);
    let id = r.register(now, service("Zero Printer"));
    let mut b = Browser::new("_zero._tcp", now).unwrap();
    link(&mut [&mut r, &mut b], &mut now, Duration::from_millis(50), Duration::from_secs(4));
    assert_eq!(r.poll_event(), Some(responder::Event::Registered { id, name: "Zero Printer".into() }));
    let added = b.poll_event();
    let Some(browser::Event::Added(instance)) = added else { panic!("{added:?}") };
    assert_eq!(instance.name, "Zero Printer");
    assert_eq!((instance.port, instance.host.as_str()), (8080, "zerobox.local."));
    assert_eq!(instance.txt, ["v=1"]);
    assert_eq!(instance.addresses, [ip("127.0.0.1")]);
    r.unregister(now, id);
    link(&mut [&mut r, &mut b], &mut now, Duration::from_millis(100), Duration::from_secs(2));
    assert_eq!(b.poll_event(), Some(browser::Event::Removed("Zero Printer".into())));
}

#[test]
fn a_name_taken_by_another_responder_is_renamed() {
    let mut now = Instant::now();
    let mut first = Responder::new(now, "one", &[ip("127.0.0.1")], 1);
    first.register(now, service("Shared"));
    link(&mut [&mut first], &mut now, Duration::from_millis(50), Duration::from_secs(3));
    let mut second = Responder::new(now, "two", &[ip("127.0.0.2")], 2);
    let id = second.register(now, service("Shared"));
    let mut b = Browser::new("_zero._tcp", now).unwrap();
    link(&mut [&mut first, &mut second, &mut b], &mut now, Duration::from_millis(50), Duration::from_secs(5));
    assert_eq!(
        second.poll_event(),
        Some(responder::Event::Renamed { id, from: "Shared".into(), to: "Shared (2)".into() })
    );
    assert_eq!(second.name_of(id), Some("Shared (2)"));
    let names: Vec<String> = b.instances().map(|i| i.name.clone()).collect();
    assert_eq!(names, ["Shared", "Shared (2)"]);
}

#[test]
fn a_host_name_taken_by_another_responder_is_renamed_and_its_services_follow() {
    let mut now = Instant::now();
    let mut first = Responder::new(now, "box", &[ip("127.0.0.1")], 1);
    link(&mut [&mut first], &mut now, Duration::from_millis(50), Duration::from_secs(3));
    let mut second = Responder::new(now, "box", &[ip("127.0.0.2")], 2);
    let id = second.register(now, service("Mine"));
    let mut b = Browser::new("_zero._tcp", now).unwrap();
    link(&mut [&mut first, &mut second, &mut b], &mut now, Duration::from_millis(50), Duration::from_secs(5));
    assert_eq!(
        second.poll_event(),
        Some(responder::Event::HostRenamed { from: "box.local.".into(), to: "box-2.local.".into() })
    );
    assert_eq!(second.poll_event(), Some(responder::Event::Registered { id, name: "Mine".into() }));
    assert_eq!(first.host(), "box.local.");
    let found: Vec<(String, Vec<IpAddr>)> =
        b.instances().map(|i| (i.host.clone(), i.addresses.clone())).collect();
    assert_eq!(found, [("box-2.local.".to_string(), vec![ip("127.0.0.2")])]);
}

#[test]
fn the_same_host_and_addresses_twice_is_no_conflict() {
    let mut now = Instant::now();
    let mut one = Responder::new(now, "box", &[ip("127.0.0.1")], 1);
    let mut two = Responder::new(now, "box", &[ip("127.0.0.1")], 2);
    link(&mut [&mut one, &mut two], &mut now, Duration::from_millis(50), Duration::from_secs(4));
    assert_eq!((one.poll_event(), two.poll_event()), (None, None));
}

/// A response claiming `instance` with an SRV record of its own.
fn rival_claim(instance: &str) -> Vec<u8> {
    let mut m = Message::new(0, MessageType::Response, OpCode::Query);
    let name = super::instance_name(instance, "_zero._tcp").unwrap();
    let srv = SRV::new(0, 0, 1, "rival.local.".parse().unwrap());
    m.answers = vec![Record::from_rdata(name, 120, RData::SRV(srv))];
    m.to_vec().unwrap()
}

#[test]
fn fifteen_conflicts_in_ten_seconds_slow_probing_to_one_per_five_seconds() {
    // A rival that claims every name we try: each of our probes meets its answer.
    let rival: SocketAddr = "127.0.0.9:5353".parse().unwrap();
    let mut now = Instant::now();
    let mut r = Responder::new(now, "box", &[], 1);
    let id = r.register(now, service("Busy"));
    let mut probes = Vec::new();
    for _ in 0..800 {
        r.handle_timeout(now);
        while let Some(t) = r.poll_transmit() {
            if !Message::from_vec(&t.bytes).unwrap().authorities.is_empty() {
                probes.push(now);
                r.handle_datagram(now, rival, &rival_claim(r.name_of(id).unwrap()));
            }
        }
        now += Duration::from_millis(50);
    }
    let gaps: Vec<Duration> = probes.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.len() > 16, "{gaps:?}");
    assert!(
        gaps[..15].iter().all(|g| *g < Duration::from_secs(1)),
        "the first fifteen at full speed: {gaps:?}"
    );
    assert!(gaps[16..].iter().all(|g| *g >= Duration::from_secs(5)), "then one per five seconds: {gaps:?}");
    // Ten quiet seconds: the next conflict is probed again at full speed.
    now += Duration::from_secs(11);
    r.handle_datagram(now, rival, &rival_claim(r.name_of(id).unwrap()));
    assert_eq!(r.poll_timeout(), Some(now + Duration::from_millis(250)));
}

#[test]
fn renaming_counts_up() {
    assert_eq!(next_host_name("box"), "box-2");
    assert_eq!(next_host_name("box-2"), "box-3");
    assert_eq!(next_host_name("my-box"), "my-box-2");
    assert_eq!(next_name("Printer"), "Printer (2)");
    assert_eq!(next_name("Printer (2)"), "Printer (3)");
    assert_eq!(next_name("Odd (x)"), "Odd (x) (2)");
}

#[test]
fn the_browser_asks_at_one_second_then_doubling() {
    let mut now = Instant::now();
    let mut b = Browser::new("_zero._tcp", now).unwrap();
    let mut sent_at = Vec::new();
    for _ in 0..80 {
        b.handle_timeout(now);
        while b.poll_transmit().is_some() {
            sent_at.push(now);
        }
        now += Duration::from_millis(250);
    }
    let gaps: Vec<u64> = sent_at.windows(2).map(|w| w[1].duration_since(w[0]).as_secs()).collect();
    assert_eq!(gaps, [1, 2, 4, 8], "1 s, then doubling");
}

/// RFC 6762 5.2: a cached record is asked for again at 80%, 85%, 90% and 95% of its life
/// (each plus up to 2%), four times in all, then left to expire.
#[test]
fn a_cached_record_is_refreshed_four_times_before_it_expires() {
    let start = Instant::now();
    let mut b = Browser::new("_zero._tcp", start).unwrap();
    let name = super::instance_name("Zero Printer", "_zero._tcp").unwrap();
    let target = "zerobox.local.".parse().unwrap();
    let mut answer = Message::new(0, MessageType::Response, OpCode::Query);
    answer.metadata.authoritative = true;
    answer.answers = vec![Record::from_rdata(name.clone(), 100, RData::SRV(SRV::new(0, 0, 8080, target)))];
    let from = SocketAddr::from(([127, 0, 0, 1], 5353));
    b.handle_datagram(start, from, &answer.to_vec().unwrap());
    let mut asked = Vec::new();
    let mut now = start;
    while now < start + Duration::from_secs(110) {
        if b.poll_timeout().is_some_and(|t| t <= now) {
            b.handle_timeout(now);
        }
        while let Some(t) = b.poll_transmit() {
            let query = Message::from_vec(&t.bytes).unwrap();
            if query.queries.iter().any(|q| q.name() == &name) {
                asked.push(now.duration_since(start).as_secs_f64());
            }
        }
        now += Duration::from_millis(100);
    }
    assert_eq!(asked.len(), 4, "{asked:?}");
    for (at, percent) in asked.iter().zip([80.0, 85.0, 90.0, 95.0]) {
        assert!(
            (percent..=percent + 2.2).contains(at),
            "asked at {at} s, due at {percent}-{} s",
            percent + 2.0
        );
    }
}
