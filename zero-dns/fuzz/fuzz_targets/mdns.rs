//! The mDNS responder and browser fed arbitrary datagrams (from port 5353 and from others,
//! the legacy unicast path) with time passing, and each other's output: nothing panics, a
//! renamed service keeps a name, and the browser's instances all resolve to an address.
//! With the first byte's top bit set, the input is spliced into a well-formed response
//! carrying records for the names the two care about, so conflicts, goodbyes and updates are
//! reached, not only malformed bytes.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use zero_dns::mdns::browser::Browser;
use zero_dns::mdns::responder::Responder;
use zero_dns::mdns::{Endpoint, Service};
use zero_dns::proto::op::{Message, MessageType, OpCode};
use zero_dns::proto::rr::rdata::{A, PTR, SRV, TXT};
use zero_dns::{Name, RData, Record};

fn spliced(chunk: &[u8]) -> Vec<u8> {
    let kind = Name::from_ascii("_zero._tcp.local.").unwrap();
    let instance = Name::from_ascii("Fuzz._zero._tcp.local.").unwrap();
    let host = Name::from_ascii("h.local.").unwrap();
    let ttl = u32::from(chunk[0] % 4) * 60; // goodbyes (0) included
    let mut m = Message::new(0, MessageType::Response, OpCode::Query);
    let port = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
    m.answers = vec![
        Record::from_rdata(kind, ttl, RData::PTR(PTR(instance.clone()))),
        Record::from_rdata(instance.clone(), ttl, RData::SRV(SRV::new(0, 0, port, host.clone()))),
        Record::from_rdata(
            instance,
            ttl,
            RData::TXT(TXT::new(vec![String::from_utf8_lossy(chunk).into_owned()])),
        ),
        Record::from_rdata(host, ttl, RData::A(A::new(10, 0, 0, chunk[0]))),
    ];
    m.answers.truncate(usize::from(chunk[0] % 5));
    m.to_vec().unwrap_or_default()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else { return };
    let mut now = Instant::now();
    let mut r = Responder::new(now, "zero", &["127.0.0.1".parse().unwrap()], u64::from(mode));
    let service =
        Service { instance: "Fuzz".into(), service_type: "_zero._tcp".into(), port: 1, txt: vec![] };
    let id = r.register(now, service);
    let mut b = Browser::new("_zero._tcp", now).unwrap();
    for chunk in data.chunks(usize::from(mode & 0x3f).max(1)).take(200) {
        let bytes = if mode & 0x80 != 0 { spliced(chunk) } else { chunk.to_vec() };
        let port = if chunk[0] & 1 == 0 { 5353 } else { 40000 };
        let from = SocketAddr::from(([127, 0, 0, 2], port));
        r.handle_datagram(now, from, &bytes);
        b.handle_datagram(now, from, &bytes);
        // The two hear each other, as on a link.
        while let Some(t) = r.poll_transmit() {
            b.handle_datagram(now, SocketAddr::from(([127, 0, 0, 1], 5353)), &t.bytes);
        }
        while let Some(t) = b.poll_transmit() {
            r.handle_datagram(now, SocketAddr::from(([127, 0, 0, 1], 5353)), &t.bytes);
        }
        while r.poll_event().is_some() {}
        while b.poll_event().is_some() {}
        assert!(r.name_of(id).is_some_and(|n| n.starts_with("Fuzz")));
        assert!(b.instances().all(|i| !i.addresses.is_empty()));
        now += Duration::from_millis(u64::from(chunk[chunk.len() - 1]) * 20);
        if r.poll_timeout().is_some_and(|t| t <= now) {
            r.handle_timeout(now);
        }
        if b.poll_timeout().is_some_and(|t| t <= now) {
            b.handle_timeout(now);
        }
    }
    r.shutdown(now);
});
