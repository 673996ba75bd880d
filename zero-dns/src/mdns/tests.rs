//! The responder and browser on a simulated clock, wired to each other (and to a rival) as if
//! on one link.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::browser::{self, Browser};
use super::responder::{self, next_name, Responder};
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
    let mut r = Responder::new("zerobox", &[ip("127.0.0.1")], 1);
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
    let mut first = Responder::new("one", &[ip("127.0.0.1")], 1);
    first.register(now, service("Shared"));
    link(&mut [&mut first], &mut now, Duration::from_millis(50), Duration::from_secs(3));
    let mut second = Responder::new("two", &[ip("127.0.0.2")], 2);
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
fn renaming_counts_up() {
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
