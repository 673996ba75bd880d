//! The client on simulated clocks against scripted servers: samples, the bogus check, the
//! intersection algorithm, poll adaptation and every kiss code.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::packet::{Mode, Packet, Timestamp};

const T0: Timestamp = Timestamp(0xeb00_0000_0000_0000);

fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 12300 + i as u16))
}

/// A server `offset` seconds ahead of us, `delay` seconds away (half each way), stratum
/// `stratum`.
#[derive(Clone, Copy)]
struct Fake {
    offset: f64,
    delay: f64,
    stratum: u8,
}

struct World {
    client: Client,
    now: Instant,
    wall: Timestamp,
    servers: Vec<Fake>,
    events: Vec<Event>,
}

impl World {
    fn new(servers: Vec<Fake>) -> World {
        let addrs: Vec<SocketAddr> = (0..servers.len()).map(addr).collect();
        let now = Instant::now();
        let mut config = ClientConfig::new(&addrs);
        config.min_poll = 4;
        World { client: Client::new(config, now, 1), now, wall: T0, servers, events: Vec::new() }
    }

    fn reply(&self, t: &Transmit, kiss: Option<&[u8; 4]>) -> (Timestamp, Vec<u8>) {
        let f = self.servers[t.server];
        let request = Packet::decode(&t.bytes).unwrap();
        let received = self.wall.shifted(f.offset + f.delay / 2.0);
        let p = Packet {
            leap: 0,
            version: 4,
            mode: Mode::Server,
            stratum: if kiss.is_some() { 0 } else { f.stratum },
            poll: 4,
            precision: -20,
            root_delay: 0.001,
            root_dispersion: 0.001,
            reference_id: kiss.copied().unwrap_or([10, 0, 0, 1]),
            reference: self.wall,
            origin: request.transmit,
            receive: received,
            transmit: received.shifted(0.0001),
        };
        (self.wall.shifted(f.delay + 0.0001), p.encode().to_vec())
    }

    /// One round: every due request answered (each kissed with `kiss` if given).
    fn round(&mut self, kiss: Option<&[u8; 4]>) -> usize {
        let mut sent = 0;
        while let Some(t) = self.client.poll_transmit(self.now, self.wall) {
            let (arrives, bytes) = self.reply(&t, kiss);
            self.client.handle_datagram(self.now, arrives, t.to, &bytes);
            sent += 1;
        }
        while let Some(e) = self.client.poll_event() {
            self.events.push(e);
        }
        sent
    }

    fn wait(&mut self, secs: u64) {
        self.now += Duration::from_secs(secs);
        self.wall = self.wall.shifted(secs as f64);
        self.client.handle_timeout(self.now);
    }
}

#[test]
fn a_sample_gives_the_offset_and_delay() {
    let mut w = World::new(vec![Fake { offset: 0.5, delay: 0.02, stratum: 2 }]);
    assert_eq!(w.round(None), 1);
    let Event::Sample { offset, delay, .. } = w.events[0].clone() else { panic!("{:?}", w.events) };
    assert!((offset - 0.5).abs() < 1e-6, "{offset}");
    assert!((delay - 0.02).abs() < 1e-6, "{delay}");
    let s = &w.client.sources()[0];
    assert_eq!((s.stratum, s.reach, s.reference.as_str()), (2, 1, "10.0.0.1"));
}

#[test]
fn answers_that_do_not_echo_our_nonce_or_come_from_elsewhere_are_dropped() {
    let mut w = World::new(vec![Fake { offset: 0.0, delay: 0.01, stratum: 2 }]);
    let t = w.client.poll_transmit(w.now, w.wall).unwrap();
    let (arrives, mut bytes) = w.reply(&t, None);
    // A forged origin.
    let mut forged = bytes.clone();
    forged[24] ^= 0xff;
    w.client.handle_datagram(w.now, arrives, t.to, &forged);
    // From another address.
    w.client.handle_datagram(w.now, arrives, addr(9), &bytes);
    assert_eq!(w.client.bogus(), 2);
    assert!(w.client.poll_event().is_none());
    // The real one counts once; a replay of it does not.
    w.client.handle_datagram(w.now, arrives, t.to, &bytes);
    bytes[47] ^= 1;
    w.client.handle_datagram(w.now, arrives, t.to, &bytes);
    assert!(matches!(w.client.poll_event(), Some(Event::Sample { .. })));
    assert!(w.client.poll_event().is_none());
    assert_eq!(w.client.bogus(), 3);
}

#[test]
fn the_intersection_rejects_a_falseticker_and_picks_the_lowest_stratum() {
    let agree = |offset, stratum| Fake { offset, delay: 0.01, stratum };
    let mut w = World::new(vec![agree(0.100, 3), agree(0.102, 2), agree(0.098, 3), agree(5.0, 1)]);
    w.round(None);
    let s = w.client.selection(w.now).expect("a majority agrees");
    assert_eq!(s.falsetickers, [3], "{s:?}");
    assert_eq!(s.peer, 1, "stratum 2 is the best of the truechimers");
    assert!((s.offset - 0.1).abs() < 0.003, "{}", s.offset);
}

#[test]
fn no_majority_no_selection() {
    let far = |offset| Fake { offset, delay: 0.001, stratum: 2 };
    let mut w = World::new(vec![far(0.0), far(10.0)]);
    w.round(None);
    assert_eq!(w.client.selection(w.now), None);
}

#[test]
fn the_poll_interval_grows_with_good_samples_and_falls_back_when_unreachable() {
    let mut w = World::new(vec![Fake { offset: 0.0, delay: 0.01, stratum: 2 }]);
    for _ in 0..4 {
        assert_eq!(w.round(None), 1);
        w.wait(16);
    }
    assert_eq!(w.client.sources()[0].poll, 5);
    // Eight polls unanswered: back to the shortest interval.
    for _ in 0..9 {
        let _ = w.client.poll_transmit(w.now, w.wall);
        w.wait(32);
    }
    assert_eq!(w.client.sources()[0].reach, 0);
    assert_eq!(w.client.sources()[0].poll, 4);
}

#[test]
fn kiss_codes_rate_slows_deny_and_rstr_stop_others_are_ignored() {
    let fake = Fake { offset: 0.0, delay: 0.01, stratum: 2 };
    let mut w = World::new(vec![fake; 4]);
    // One round, each server kissing with its own code.
    let codes: [&[u8; 4]; 4] = [b"RATE", b"DENY", b"RSTR", b"XXXX"];
    for (i, code) in codes.iter().enumerate() {
        let t = w.client.poll_transmit(w.now, w.wall).unwrap();
        assert_eq!(t.server, i);
        let (arrives, bytes) = w.reply(&t, Some(code));
        w.client.handle_datagram(w.now, arrives, t.to, &bytes);
    }
    let s = w.client.sources();
    assert_eq!(s[0].poll, 5, "RATE doubles the interval");
    assert_eq!(s[1].standing, Standing::Refused(*b"DENY"));
    assert_eq!(s[2].standing, Standing::Refused(*b"RSTR"));
    assert_eq!((s[3].standing, s[3].poll), (Standing::Active, 4), "an unknown code changes nothing");
    // Only the two active servers are asked again; the RATE one later than the other.
    w.wait(16);
    let asked: Vec<usize> =
        std::iter::from_fn(|| w.client.poll_transmit(w.now, w.wall)).map(|t| t.server).collect();
    assert_eq!(asked, [3]);
    w.wait(16);
    let asked: Vec<usize> =
        std::iter::from_fn(|| w.client.poll_transmit(w.now, w.wall)).map(|t| t.server).collect();
    assert!(asked.contains(&0), "{asked:?}");
}

#[test]
fn a_kiss_with_a_forged_origin_is_not_obeyed() {
    let mut w = World::new(vec![Fake { offset: 0.0, delay: 0.01, stratum: 2 }]);
    let t = w.client.poll_transmit(w.now, w.wall).unwrap();
    let (arrives, mut bytes) = w.reply(&t, Some(b"DENY"));
    bytes[24] ^= 0x55;
    w.client.handle_datagram(w.now, arrives, t.to, &bytes);
    assert_eq!(w.client.sources()[0].standing, Standing::Active);
    assert_eq!(w.client.bogus(), 1);
}
