//! zero-ntp's client against chrony on loopback (a sane offset, stratum and reference read)
//! and against scripted servers: each kiss code, a forged origin, and a falseticker outvoted.

use std::time::Duration;

use zero_conformance::ntp::{Chrony, Script, Scripted};
use zero_ntp::client::{query_blocking, ClientConfig, Standing};

fn burst(servers: &[std::net::SocketAddr]) -> ClientConfig {
    let mut c = ClientConfig::new(servers);
    c.min_poll = -2; // a quarter of a second between requests: a test, not a daemon
    c.max_poll = -2;
    c.timeout = Duration::from_millis(200);
    c
}

#[test]
fn chrony_on_loopback() {
    let chrony = Chrony::start();
    let client = query_blocking(burst(&[chrony.addr]), 4, Duration::from_secs(5)).unwrap();
    let s = &client.sources()[0];
    assert!(s.reach.count_ones() >= 4, "reach {:08b}", s.reach);
    assert_eq!(s.stratum, 8, "local stratum 8");
    // The same machine's clock: the offset is tiny, the delay a loopback round trip.
    let (offset, delay) = (s.offset().unwrap(), s.delay().unwrap());
    assert!(offset.abs() < 0.005, "offset {offset}");
    assert!((0.0..0.01).contains(&delay), "delay {delay}");
    assert_eq!(s.reference, "127.127.1.1", "chrony's local reference id");
    let selection = client.selection(std::time::Instant::now()).expect("one server, selected");
    assert_eq!(selection.peer, 0);
}

#[test]
fn kiss_codes_and_a_forged_origin() {
    let rate = Scripted::start(Script::Kiss(*b"RATE"));
    let deny = Scripted::start(Script::Kiss(*b"DENY"));
    let rstr = Scripted::start(Script::Kiss(*b"RSTR"));
    let odd = Scripted::start(Script::Kiss(*b"ZZZZ"));
    let forged = Scripted::start(Script::ForgedOrigin);
    let servers = [rate.addr, deny.addr, rstr.addr, odd.addr, forged.addr];
    let client = query_blocking(burst(&servers), 4, Duration::from_secs(2)).unwrap();
    let s = client.sources();
    assert!(s[0].poll > -2 && s[0].standing == Standing::Active, "RATE slows: poll {}", s[0].poll);
    assert_eq!(s[1].standing, Standing::Refused(*b"DENY"));
    assert_eq!(s[2].standing, Standing::Refused(*b"RSTR"));
    assert_eq!(deny.answered.load(std::sync::atomic::Ordering::Relaxed), 1, "DENY: asked once");
    assert_eq!((s[3].standing, s[3].poll), (Standing::Active, -2), "an unknown code is ignored");
    assert!(
        rate.answered.load(std::sync::atomic::Ordering::Relaxed)
            < odd.answered.load(std::sync::atomic::Ordering::Relaxed)
    );
    assert_eq!(s[4].offset(), None, "a forged origin gives no sample");
    assert!(client.bogus() >= 1);
}

#[test]
fn a_falseticker_is_outvoted_by_chrony_and_an_honest_server() {
    let chrony = Chrony::start();
    let honest = Scripted::start(Script::Ahead(0.0));
    let liar = Scripted::start(Script::Ahead(30.0));
    let client =
        query_blocking(burst(&[chrony.addr, honest.addr, liar.addr]), 4, Duration::from_secs(5)).unwrap();
    let selection = client
        .selection(std::time::Instant::now())
        .unwrap_or_else(|| panic!("two of three agree: {:#?}", client.sources()));
    assert_eq!(selection.falsetickers, [2], "{selection:?}");
    assert!(selection.offset.abs() < 0.005, "{}", selection.offset);
    assert_eq!(selection.peer, 1, "stratum 2 beats chrony's stratum 8");
}
