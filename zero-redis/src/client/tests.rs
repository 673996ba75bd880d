//! The client machine on a simulated clock, against scripted server bytes.

use std::time::{Duration, Instant};
use zero_core::machine::{Closed, Machine};
use zero_core::CloseReason;

use super::cache::Cache;
use super::machine::*;
use crate::cmd::cmd;
use crate::codec::Frame;
use crate::Error;

const HELLO_MAP: &[u8] = b"%1\r\n$6\r\nserver\r\n$5\r\nredis\r\n";

struct Harness {
    /// With a cache of its own: the machine's rules hold without a shared store.
    client: Client<Cache>,
    now: Instant,
    /// Events drained when input arrived (the machine reads input as its events are polled,
    /// as a driver does before it transmits).
    seen: Vec<Event<'static>>,
}

impl Harness {
    fn new(config: ClientConfig) -> Harness {
        let now = Instant::now();
        Harness { client: Client::with_store(config, now), now, seen: Vec::new() }
    }

    /// Connects, takes the first set-up bytes (returned) and answers with `replies`.
    fn connect(&mut self, replies: &[u8]) -> String {
        assert!(self.client.wants_connect(self.now));
        self.client.handle_connected(self.now);
        let setup = self.transmit();
        self.input(replies);
        setup
    }

    fn input(&mut self, bytes: &[u8]) {
        self.client.handle_input(self.now, bytes);
        let events = self.drain();
        self.seen.extend(events);
    }

    fn transmit(&mut self) -> String {
        let mut all = Vec::new();
        while let Some(b) = self.client.poll_transmit() {
            all.extend_from_slice(b);
        }
        String::from_utf8(all).unwrap()
    }

    fn events(&mut self) -> Vec<Event<'static>> {
        let mut all = std::mem::take(&mut self.seen);
        all.extend(self.drain());
        all
    }

    fn drain(&mut self) -> Vec<Event<'static>> {
        let mut all = Vec::new();
        while let Some(e) = self.client.poll_event() {
            all.push(match e {
                Event::Reply { id, frame } => Event::Reply { id, frame: frame.into_owned() },
                Event::Message(m) => Event::Message(m.into_owned()),
                Event::Push(f) => Event::Push(f.into_owned()),
                Event::Failed { id, error } => Event::Failed { id, error },
                Event::Connected { protocol } => Event::Connected { protocol },
                Event::Disconnected { error } => Event::Disconnected { error },
            });
        }
        all
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.client.handle_timeout(self.now);
    }
}

fn ok() -> Frame<'static> {
    Frame::Simple(b"OK"[..].into())
}

fn bulk(s: &str) -> Frame<'static> {
    Frame::Bulk(s.as_bytes().to_vec().into())
}

#[test]
fn commands_wait_for_hello_then_leave_in_one_write() {
    let mut h = Harness::new(ClientConfig::default());
    let a = h.client.send(&cmd("SET").arg("k").arg("v"), h.now);
    assert!(h.client.wants_connect(h.now));
    assert_eq!(h.transmit(), "", "nothing before the connection");
    h.client.handle_connected(h.now);
    assert_eq!(h.transmit(), "*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n", "only HELLO until it is answered");
    h.input(HELLO_MAP);
    assert_eq!(h.events(), vec![Event::Connected { protocol: Protocol::Resp3 }]);
    let b = h.client.send_args(&["GET", "k"], h.now);
    assert_eq!(h.transmit(), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    // Replies arrive split anywhere.
    h.input(b"+OK\r\n$1\r");
    assert_eq!(h.events(), vec![Event::Reply { id: a, frame: ok() }]);
    h.input(b"\nv\r\n");
    assert_eq!(h.events(), vec![Event::Reply { id: b, frame: bulk("v") }]);
    assert_eq!(h.client.in_flight(), 0);
}

#[test]
fn hello_carries_auth_and_name_and_select_follows() {
    let config = ClientConfig {
        username: Some("app".into()),
        password: Some("secret".into()),
        client_name: Some("svc".into()),
        database: 2,
        ..ClientConfig::default()
    };
    let mut h = Harness::new(config);
    assert_eq!(
        h.connect(b""),
        "*7\r\n$5\r\nHELLO\r\n$1\r\n3\r\n$4\r\nAUTH\r\n$3\r\napp\r\n$6\r\nsecret\r\n$7\r\nSETNAME\r\n$3\r\nsvc\r\n"
    );
    h.input(HELLO_MAP);
    assert_eq!(h.transmit(), "*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n");
    assert!(!h.client.is_ready());
    h.input(b"+OK\r\n");
    assert_eq!(h.events(), vec![Event::Connected { protocol: Protocol::Resp3 }]);
}

#[test]
fn a_server_without_resp3_gets_resp2_setup() {
    let config = ClientConfig { password: Some("pw".into()), ..ClientConfig::default() };
    let mut h = Harness::new(config);
    h.connect(b"");
    h.transmit();
    h.input(b"-ERR unknown command 'HELLO', with args beginning with: '3'\r\n");
    assert_eq!(h.transmit(), "*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n");
    h.input(b"+OK\r\n");
    assert_eq!(h.events(), vec![Event::Connected { protocol: Protocol::Resp2 }]);
}

#[test]
fn a_refused_setup_fails_the_connection_not_the_commands() {
    let config = ClientConfig { password: Some("bad".into()), ..ClientConfig::default() };
    let mut h = Harness::new(config);
    let id = h.client.send_args(&["PING"], h.now);
    h.connect(b"");
    h.transmit();
    h.input(b"-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    let events = h.events();
    assert!(
        matches!(&events[..], [Event::Disconnected { error: Error::SetupRefused { reply, .. } }] if reply.code() == "WRONGPASS"),
        "{events:?}"
    );
    assert!(h.client.poll_close());
    assert_eq!(h.client.in_flight(), 1, "the PING waits for the next connection");
    // The retry comes right away the first time, then backs off.
    assert!(h.client.wants_connect(h.now));
    h.client.handle_closed(h.now, Closed::Lost(CloseReason::Reset));
    assert!(!h.client.wants_connect(h.now));
    h.advance(Duration::from_millis(50));
    assert!(h.client.wants_connect(h.now));
    h.client.handle_connected(h.now);
    h.transmit();
    h.input(HELLO_MAP);
    assert_eq!(h.transmit(), "*1\r\n$4\r\nPING\r\n");
    h.input(b"+PONG\r\n");
    let events = h.events();
    assert_eq!(events.last(), Some(&Event::Reply { id, frame: Frame::Simple(b"PONG"[..].into()) }));
}

#[test]
fn a_lost_connection_resends_reads_and_fails_writes() {
    let mut h = Harness::new(ClientConfig::default());
    h.connect(HELLO_MAP);
    h.events();
    let get = h.client.send(&cmd("GET").arg("k"), h.now);
    let incr = h.client.send(&cmd("INCR").arg("n"), h.now);
    h.transmit();
    h.client.handle_closed(h.now, Closed::Lost(CloseReason::Reset));
    let later = h.client.send(&cmd("SET").arg("k").arg("v"), h.now);
    let events = h.events();
    assert_eq!(events[0], Event::Failed { id: incr, error: Error::ConnectionLost { sent: true } });
    assert!(matches!(events[1], Event::Disconnected { .. }));
    assert_eq!(h.connect(b""), "*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n");
    h.input(HELLO_MAP);
    assert_eq!(h.transmit(), "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
    h.input(b"$-1\r\n+OK\r\n");
    let events = h.events();
    assert_eq!(
        &events[1..],
        &[Event::Reply { id: get, frame: Frame::Null }, Event::Reply { id: later, frame: ok() }]
    );
}

#[test]
fn retries_stop_at_max_attempts_and_policy_never() {
    let mut h = Harness::new(ClientConfig { max_attempts: 2, ..ClientConfig::default() });
    let get = h.client.send(&cmd("GET").arg("k"), h.now);
    for round in 0..2 {
        h.advance(Duration::from_secs(1));
        h.connect(HELLO_MAP);
        assert!(h.transmit().contains("GET"), "round {round}");
        h.client.handle_closed(h.now, Closed::Lost(CloseReason::Reset));
    }
    assert!(h.events().contains(&Event::Failed { id: get, error: Error::ConnectionLost { sent: true } }));

    let mut h = Harness::new(ClientConfig { retry: RetryPolicy::Never, ..ClientConfig::default() });
    h.connect(HELLO_MAP);
    let get = h.client.send(&cmd("GET").arg("k"), h.now);
    h.transmit();
    h.client.handle_closed(h.now, Closed::Lost(CloseReason::Reset));
    assert!(h.events().contains(&Event::Failed { id: get, error: Error::ConnectionLost { sent: true } }));
}

#[test]
fn timeouts_abandon_sent_commands_and_drop_unsent_ones() {
    let config = ClientConfig { command_timeout: Some(Duration::from_secs(1)), ..ClientConfig::default() };
    let mut h = Harness::new(config);
    h.connect(HELLO_MAP);
    h.events();
    let slow = h.client.send_args(&["DEBUG", "SLEEP", "2"], h.now);
    h.transmit();
    h.advance(Duration::from_millis(500));
    let next = h.client.send_args(&["PING"], h.now);
    h.transmit();
    assert_eq!(h.client.poll_timeout(), Some(h.now + Duration::from_millis(500)));
    h.advance(Duration::from_millis(500));
    assert_eq!(h.events(), vec![Event::Failed { id: slow, error: Error::Timeout { sent: true } }]);
    // The late reply is read and dropped; the next one is PING's.
    h.input(b"+OK\r\n+PONG\r\n");
    assert_eq!(h.events(), vec![Event::Reply { id: next, frame: Frame::Simple(b"PONG"[..].into()) }]);

    // While disconnected nothing is written: an expired command is never sent.
    h.client.handle_closed(h.now, Closed::Lost(CloseReason::Reset));
    h.events();
    let queued = h.client.send_args(&["SET", "a", "b"], h.now);
    h.advance(Duration::from_secs(1));
    assert!(h.events().contains(&Event::Failed { id: queued, error: Error::Timeout { sent: false } }));
    assert_eq!(h.connect(HELLO_MAP), "*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n");
    assert_eq!(h.transmit(), "");
}

#[test]
fn a_command_may_have_its_own_timeout() {
    let config = ClientConfig { command_timeout: Some(Duration::from_secs(1)), ..ClientConfig::default() };
    let mut h = Harness::new(config);
    h.connect(HELLO_MAP);
    h.events();
    let blpop = h.client.send(&cmd("BLPOP").arg("q").arg(0u64).timeout(None), h.now);
    let get = h.client.send(&cmd("GET").arg("k").timeout(Some(Duration::from_millis(200))), h.now);
    h.transmit();
    h.advance(Duration::from_millis(200));
    assert_eq!(h.events(), vec![Event::Failed { id: get, error: Error::Timeout { sent: true } }]);
    h.advance(Duration::from_secs(60));
    assert_eq!(h.events(), vec![], "BLPOP waits as long as it takes");
    h.input(b"*2\r\n$1\r\nq\r\n$1\r\nx\r\n$1\r\nv\r\n");
    let events = h.events();
    assert!(matches!(&events[..], [Event::Reply { id, .. }] if *id == blpop), "{events:?}");
}

#[test]
fn a_large_reply_arriving_in_small_reads_is_decoded_once_whole() {
    let mut h = Harness::new(ClientConfig::default());
    h.connect(HELLO_MAP);
    h.events();
    let id = h.client.send_args(&["LRANGE", "l", "0", "-1"], h.now);
    h.transmit();
    let items: Vec<Frame<'static>> = (0..50_000).map(|i| bulk(&format!("item-{i}"))).collect();
    let mut reply = Vec::new();
    Frame::Array(items.clone()).encode(&mut reply);
    reply.extend_from_slice(b"+OK\r\n");
    let (body, tail) = reply.split_at(reply.len() - 5);
    for chunk in body.chunks(1000) {
        h.input(chunk);
    }
    assert_eq!(h.events(), vec![Event::Reply { id, frame: Frame::Array(items) }]);
    // A reply nobody asked for means the stream is out of step: the connection is closed.
    h.input(tail);
    assert!(matches!(&h.events()[..], [Event::Disconnected { error: Error::UnexpectedReply }]));
}

#[test]
fn connect_timeout() {
    let mut h = Harness::new(ClientConfig::default());
    assert!(h.client.wants_connect(h.now));
    h.advance(Duration::from_secs(5));
    assert!(matches!(&h.events()[..], [Event::Disconnected { error: Error::ConnectTimeout(_) }]));
    assert!(h.client.poll_close(), "the connecting socket is closed");
}

#[test]
fn resp3_pubsub_shares_the_connection_and_is_restored() {
    let mut h = Harness::new(ClientConfig::default());
    h.connect(HELLO_MAP);
    h.events();
    let sub = h.client.subscribe(SubKind::Channel, &["a", "b"], h.now);
    let get = h.client.send_args(&["GET", "k"], h.now);
    assert_eq!(h.transmit(), "*3\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n$1\r\nb\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    h.input(b">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n>3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nhi\r\n");
    let events = h.events();
    assert_eq!(events.len(), 1);
    assert!(matches!(&events[0], Event::Message(m) if &*m.channel == b"a" && &*m.payload == b"hi"));
    h.input(b">3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n$1\r\nv\r\n");
    let events = h.events();
    assert!(matches!(&events[0], Event::Reply { id, .. } if *id == sub));
    assert_eq!(events[1], Event::Reply { id: get, frame: bulk("v") });

    let psub = h.client.subscribe(SubKind::Pattern, &["n.*"], h.now);
    h.transmit();
    h.input(b">3\r\n$10\r\npsubscribe\r\n$3\r\nn.*\r\n:3\r\n>4\r\n$8\r\npmessage\r\n$3\r\nn.*\r\n$3\r\nn.1\r\n$1\r\nx\r\n");
    let events = h.events();
    assert!(matches!(&events[0], Event::Reply { id, .. } if *id == psub));
    assert!(
        matches!(&events[1], Event::Message(m) if m.pattern.as_deref() == Some(&b"n.*"[..]) && &*m.channel == b"n.1")
    );

    // A new connection subscribes again before anything else goes out.
    h.client.handle_closed(h.now, Closed::Lost(CloseReason::Reset));
    h.events();
    h.client.send_args(&["PING"], h.now);
    h.connect(HELLO_MAP);
    assert_eq!(
        h.transmit(),
        "*3\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n$1\r\nb\r\n*2\r\n$10\r\nPSUBSCRIBE\r\n$3\r\nn.*\r\n"
    );
    h.input(b">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n>3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n");
    h.input(b">3\r\n$10\r\npsubscribe\r\n$3\r\nn.*\r\n:3\r\n");
    assert_eq!(h.events(), vec![Event::Connected { protocol: Protocol::Resp3 }]);
    assert_eq!(h.transmit(), "*1\r\n$4\r\nPING\r\n");

    let unsub = h.client.unsubscribe(SubKind::Channel, &["a"], h.now);
    h.transmit();
    h.input(b"+PONG\r\n");
    h.input(b">3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:2\r\n");
    let events = h.events();
    assert!(matches!(&events[0], Event::Reply { .. }));
    assert!(matches!(&events[1], Event::Reply { id, .. } if *id == unsub));
}

#[test]
fn resp2_pubsub_arrays_are_messages_once_subscribed() {
    let mut h = Harness::new(ClientConfig { protocol: Protocol::Resp2, ..ClientConfig::default() });
    h.connect(b"");
    assert_eq!(h.events(), vec![Event::Connected { protocol: Protocol::Resp2 }]);
    let sub = h.client.subscribe(SubKind::Channel, &["c"], h.now);
    h.transmit();
    h.input(b"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$3\r\nabc\r\n");
    let events = h.events();
    assert!(matches!(&events[0], Event::Reply { id, .. } if *id == sub));
    assert!(matches!(&events[1], Event::Message(m) if &*m.payload == b"abc"));
}

#[test]
fn a_subscribed_resp2_connection_refuses_other_commands_at_once() {
    let mut h = Harness::new(ClientConfig { protocol: Protocol::Resp2, ..ClientConfig::default() });
    h.connect(b"");
    h.events();
    h.client.subscribe(SubKind::Channel, &["c"], h.now);
    let get = h.client.send_args(&["GET", "k"], h.now);
    let ping = h.client.send_args(&["ping"], h.now);
    let events = h.events();
    assert!(
        matches!(&events[..], [Event::Failed { id, error: Error::Usage(_) }] if *id == get),
        "{events:?}"
    );
    let sent = h.transmit();
    assert!(sent.contains("SUBSCRIBE") && sent.contains("ping") && !sent.contains("GET"), "{sent}");
    assert_ne!(get, ping);
}

#[test]
fn bad_resp_closes_the_connection() {
    let mut h = Harness::new(ClientConfig::default());
    h.connect(HELLO_MAP);
    h.events();
    let get = h.client.send_args(&["GET", "k"], h.now);
    h.transmit();
    h.input(b"?what\r\n");
    let events = h.events();
    assert!(matches!(&events[..], [Event::Disconnected { error: Error::Protocol(_) }]), "{events:?}");
    assert!(h.client.poll_close());
    assert_eq!(h.client.in_flight(), 1, "the GET is kept for the next connection");
    h.input(b"+OK\r\n");
    assert_eq!(h.events(), vec![], "bytes of the dead connection are dropped");
    let _ = get;
}

#[test]
fn close_fails_everything_outstanding() {
    let mut h = Harness::new(ClientConfig::default());
    h.connect(HELLO_MAP);
    h.events();
    let a = h.client.send_args(&["GET", "k"], h.now);
    h.transmit();
    h.client.close();
    let b = h.client.send_args(&["GET", "k"], h.now);
    assert!(h.client.poll_close());
    assert_eq!(
        h.events(),
        vec![Event::Failed { id: a, error: Error::Closed }, Event::Failed { id: b, error: Error::Closed }]
    );
    assert!(!h.client.wants_connect(h.now + Duration::from_secs(60)));
}

// Client-side caching.

const TRACKING: &str = "*3\r\n$6\r\nCLIENT\r\n$8\r\nTRACKING\r\n$2\r\nON\r\n";

/// A harness whose connection is set up with tracking.
fn cached(cache: super::CacheConfig) -> Harness {
    let mut h = Harness::new(ClientConfig { cache: Some(cache), ..ClientConfig::default() });
    h.connect(HELLO_MAP);
    assert_eq!(h.transmit(), TRACKING, "tracking follows HELLO");
    h.input(b"+OK\r\n");
    assert_eq!(h.events(), vec![Event::Connected { protocol: Protocol::Resp3 }]);
    h
}

fn invalidate(key: &str) -> Vec<u8> {
    format!(">2\r\n$10\r\ninvalidate\r\n*1\r\n${}\r\n{key}\r\n", key.len()).into_bytes()
}

impl Harness {
    /// Issues `GET key`; returns what went out and the events (the reply, on a hit).
    fn get(&mut self, key: &str) -> (String, Vec<Event<'static>>) {
        self.client.send(&cmd("GET").arg(key), self.now);
        (self.transmit(), self.events())
    }

    /// `GET key`, answered by the server with `value`.
    fn get_from_server(&mut self, key: &str, value: &str) {
        let (sent, events) = self.get(key);
        assert!(sent.contains("GET"), "{key} should miss the cache");
        assert!(events.is_empty());
        self.input(format!("${}\r\n{value}\r\n", value.len()).as_bytes());
        assert!(matches!(&self.events()[..], [Event::Reply { frame, .. }] if *frame == bulk(value)));
    }

    /// `GET key`, answered from the cache with `value`.
    fn get_from_cache(&mut self, key: &str, value: &str) {
        let (sent, events) = self.get(key);
        assert_eq!(sent, "", "{key} should hit the cache");
        assert!(matches!(&events[..], [Event::Reply { frame, .. }] if *frame == bulk(value)), "{events:?}");
    }
}

#[test]
fn cached_reads_are_answered_locally_until_invalidated() {
    let mut h = cached(Default::default());
    h.get_from_server("k", "v1");
    h.get_from_cache("k", "v1");
    h.input(&invalidate("k"));
    assert!(h.events().is_empty(), "the machine consumes invalidations");
    h.get_from_server("k", "v2");
    h.get_from_cache("k", "v2");
    // A read that must reach the server does, and refreshes the entry.
    h.client.send(&cmd("GET").arg("k").cached(false), h.now);
    assert!(h.transmit().contains("GET"));
    h.input(b"$2\r\nv3\r\n");
    h.events();
    h.get_from_cache("k", "v3");
    // Each command is its own entry; an invalidation of the key drops them all.
    h.client.send(&cmd("STRLEN").arg("k"), h.now);
    h.transmit();
    h.input(b":2\r\n");
    h.events();
    h.input(&invalidate("k"));
    let stats = h.client.cache().unwrap().stats();
    assert_eq!((stats.hits, stats.misses, stats.invalidations, stats.entries), (3, 4, 2, 0));
    // A null list: everything was flushed.
    h.get_from_server("a", "1");
    h.input(b">2\r\n$10\r\ninvalidate\r\n_\r\n");
    h.get_from_server("a", "1");
}

#[test]
fn a_read_overtaken_by_an_invalidation_or_own_write_is_not_kept() {
    let mut h = cached(Default::default());
    h.get("k");
    h.input(&invalidate("k"));
    h.input(b"$2\r\nv1\r\n");
    h.events();
    h.get_from_server("k", "v2");
    // This client's own write evicts at once: its invalidation comes after its reply.
    h.get_from_cache("k", "v2");
    h.client.send(&cmd("SET").arg("k").arg("v3"), h.now);
    let (sent, _) = h.get("k");
    assert!(sent.ends_with("GET\r\n$1\r\nk\r\n"));
    h.input(&[&b"+OK\r\n"[..], &invalidate("k"), b"$2\r\nv3\r\n"].concat());
    h.events();
    h.get_from_server("k", "v3");
    h.get_from_cache("k", "v3");
    // A write issued while a read of its key is in flight: that read is not kept either.
    h.get("j");
    h.client.send(&cmd("DEL").arg("j"), h.now);
    h.input(b"$1\r\nx\r\n:1\r\n");
    h.events();
    h.get("j");
    h.input(b"$-1\r\n");
    h.events();
}

#[test]
fn errors_transactions_and_database_switches_bypass_the_cache() {
    let mut h = cached(Default::default());
    h.get("h");
    h.input(b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    h.events();
    h.get_from_server("k", "v");
    h.client.send(&cmd("MULTI"), h.now);
    let (sent, _) = h.get("k");
    assert!(sent.contains("GET"), "inside MULTI the server must see the GET");
    h.client.send(&cmd("EXEC"), h.now);
    h.transmit();
    h.input(b"+OK\r\n+QUEUED\r\n*1\r\n$1\r\nv\r\n");
    h.events();
    h.get_from_cache("k", "v");
    h.client.send(&cmd("SELECT").arg(1), h.now);
    h.get_from_server("k", "other");
}

#[test]
fn a_lost_connection_empties_the_cache_and_resp2_caches_nothing() {
    let mut h = cached(Default::default());
    h.get_from_server("k", "v");
    h.client.handle_closed(h.now, Closed::Lost(CloseReason::Reset));
    h.events();
    h.connect(HELLO_MAP);
    assert_eq!(h.transmit(), TRACKING);
    h.input(b"+OK\r\n");
    h.events();
    h.get_from_server("k", "v");

    let config = ClientConfig { cache: Some(Default::default()), ..ClientConfig::default() };
    let mut h = Harness::new(config.clone());
    h.connect(b"-ERR unknown command 'HELLO'\r\n");
    assert_eq!(h.events(), vec![Event::Connected { protocol: Protocol::Resp2 }]);
    h.get_from_server("k", "v");
    h.get_from_server("k", "v");

    // A user not allowed CLIENT TRACKING still gets a working connection, without the cache.
    let mut h = Harness::new(config);
    h.connect(HELLO_MAP);
    assert_eq!(h.transmit(), TRACKING);
    h.input(b"-NOPERM User app has no permissions to run the 'client|tracking' command\r\n");
    assert_eq!(h.events(), vec![Event::Connected { protocol: Protocol::Resp3 }]);
    h.get_from_server("k", "v");
    h.get_from_server("k", "v");
}

#[test]
fn the_cache_is_bounded_in_entries_bytes_and_age() {
    let config =
        super::CacheConfig { max_entries: 2, max_age: Some(Duration::from_secs(10)), ..Default::default() };
    let mut h = cached(config);
    h.get_from_server("a", "1");
    h.get_from_server("b", "2");
    h.get_from_cache("a", "1");
    h.get_from_server("c", "3");
    assert_eq!(h.client.cache().unwrap().stats().entries, 2);
    h.get_from_server("b", "2");
    h.now += Duration::from_secs(10);
    h.get_from_server("b", "2");

    // Bytes: a 40-byte value weighs 56, so 448 bytes hold eight (the ninth evicts the
    // first), and a reply over 448 / 8 = 56 is not kept at all.
    let mut h = cached(super::CacheConfig { max_bytes: 448, ..Default::default() });
    let value = "x".repeat(40);
    for i in 0..9 {
        h.get_from_server(&format!("k{i}"), &value);
    }
    assert_eq!(h.client.cache().unwrap().stats().entries, 8);
    h.get_from_cache("k8", &value);
    h.get_from_server("k0", &value);
    h.get_from_server("big", &"x".repeat(41));
    h.get_from_server("big", &"x".repeat(41));
}

#[test]
fn reconnect_delays_double_with_jitter() {
    let delays = || {
        let mut h = Harness::new(ClientConfig::default());
        let mut delays = Vec::new();
        for _ in 0..8 {
            let start = h.now;
            while !h.client.wants_connect(h.now) {
                h.advance(Duration::from_millis(1));
            }
            delays.push(h.now - start);
            h.client.handle_closed(h.now, Closed::Lost(CloseReason::Reset));
        }
        delays
    };
    let (a, b) = (delays(), delays());
    for d in [&a, &b] {
        assert_eq!(
            d[..2],
            [Duration::ZERO; 2],
            "the first two attempts (after start, after a drop) are immediate"
        );
        for (i, full) in [50, 100, 200, 400, 800, 1600].into_iter().enumerate() {
            let full = Duration::from_millis(full);
            assert!(
                d[i + 2] >= full / 2 && d[i + 2] <= full,
                "delay {} is {:?}, not in [{:?}, {full:?}]",
                i + 2,
                d[i + 2],
                full / 2
            );
        }
    }
    assert_ne!(a, b, "two clients dropped together come back at different times");
}
