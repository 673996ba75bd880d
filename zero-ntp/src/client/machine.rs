//! The NTP client machine (sans I/O, on the caller's clocks): it polls several servers and
//! says what time it is, never setting any clock.
//!
//! - **A poll.** Each server is asked every 2^poll seconds. The request's transmit timestamp
//!   is a random nonce (it tells nothing of our clock); the answer must come from that
//!   server, in mode 4, echoing the nonce as its origin (RFC 5905 8 "bogus" check), or it is
//!   dropped and counted. Our send and receive times (T1, T4) are the driver's wall clock.
//! - **A sample** (RFC 5905 8): offset `((T2 - T1) + (T3 - T4)) / 2`, delay
//!   `(T4 - T1) - (T3 - T2)`, dispersion from our precision and the frequency tolerance. An
//!   unsynchronised server (leap 3, stratum 16) gives none.
//! - **The clock filter** (10.): of a server's last eight samples, the one with the lowest
//!   delay counts; jitter is the RMS of the others' offsets from it.
//! - **Selection** (11.2.1): each usable server's correctness interval is its offset plus or
//!   minus its root distance; the intersection algorithm finds the largest clique that
//!   agrees, the rest are falsetickers. Of the truechimers the one of lowest stratum and
//!   distance is the system peer; the reported offset combines the truechimers weighted by
//!   the inverse of their distance (11.2.3).
//! - **Poll adaptation.** The interval doubles after four good samples in a row, up to
//!   `max_poll`, and drops back to `min_poll` when a server stops answering.
//! - **Kiss-o'-Death** (7.4), counted only when it echoes our nonce: `RATE` doubles that
//!   server's interval, `DENY` and `RSTR` stop using it, other codes are ignored.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::packet::{Mode, Packet, Timestamp, LEN};

/// Frequency tolerance (RFC 5905: 15 ppm).
const PHI: f64 = 15e-6;
/// A root distance beyond this makes a server unusable (RFC 5905 MAXDIST, 1.5 s).
const MAX_DISTANCE: f64 = 1.5;
/// The least a server's delays count for in its root distance (RFC 5905 MINDISP, 10 ms).
const MIN_DISPERSION: f64 = 0.01;
/// Samples kept per server.
const FILTER: usize = 8;
/// Our clock's precision, log2 seconds (about a microsecond).
const PRECISION: i8 = -20;

/// How the client works.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The servers.
    pub servers: Vec<SocketAddr>,
    /// The shortest poll interval, log2 seconds (RFC 5905 MINPOLL is 4, 16 s; a one-shot
    /// query uses 0, a second).
    pub min_poll: i8,
    /// The longest, log2 seconds (MAXPOLL 17; 10 by default, about 17 minutes).
    pub max_poll: i8,
    /// How long an answer may take before the request counts as lost.
    pub timeout: Duration,
}

impl ClientConfig {
    /// Polling `servers` from 16 s up to 1024 s, two seconds for each answer.
    pub fn new(servers: &[SocketAddr]) -> ClientConfig {
        ClientConfig { servers: servers.to_vec(), min_poll: 4, max_poll: 10, timeout: Duration::from_secs(2) }
    }
}

/// A request to send.
#[derive(Debug, Clone, Copy)]
pub struct Transmit {
    /// The server (index into [`ClientConfig::servers`]).
    pub server: usize,
    /// Its address.
    pub to: SocketAddr,
    /// The request.
    pub bytes: [u8; LEN],
}

/// What the client tells its driver.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A server answered: the sample's offset and delay, seconds.
    Sample {
        /// The server.
        server: usize,
        /// Its clock minus ours.
        offset: f64,
        /// The round trip, less the server's time.
        delay: f64,
    },
    /// A server kissed us off.
    Kiss {
        /// The server.
        server: usize,
        /// The code.
        code: String,
    },
}

/// Why a server is not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Polled.
    Active,
    /// A `DENY` or `RSTR` kiss: no longer asked.
    Refused([u8; 4]),
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    offset: f64,
    delay: f64,
    dispersion: f64,
    at: Instant,
}

/// One server as the client sees it.
#[derive(Debug, Clone)]
pub struct Source {
    /// Its address.
    pub addr: SocketAddr,
    /// Whether it is used.
    pub standing: Standing,
    /// Its poll interval, log2 seconds.
    pub poll: i8,
    /// The last eight polls, a bit each (1: answered), newest lowest.
    pub reach: u8,
    /// Its stratum (0 until it answers).
    pub stratum: u8,
    /// Its reference id, as chrony prints it.
    pub reference: String,
    /// Its root delay and dispersion, seconds.
    pub root: (f64, f64),
    filter: Vec<Sample>,
    /// The chosen sample: offset, delay, dispersion; jitter.
    best: Option<(Sample, f64)>,
    last_sample: Option<Instant>,
    good_in_a_row: u32,
    /// The request in flight: its nonce, our wall time when it left, and when it is overdue.
    waiting: Option<(Timestamp, Timestamp, Instant)>,
    next_poll: Instant,
    /// Answers dropped: bogus (wrong origin), wrong mode, unsynchronised.
    pub dropped: u64,
}

impl Source {
    /// The chosen sample's offset (its clock minus ours), seconds.
    pub fn offset(&self) -> Option<f64> {
        self.best.map(|(s, _)| s.offset)
    }

    /// The chosen sample's delay, seconds.
    pub fn delay(&self) -> Option<f64> {
        self.best.map(|(s, _)| s.delay)
    }

    /// Jitter among the kept samples, seconds.
    pub fn jitter(&self) -> Option<f64> {
        self.best.map(|(_, j)| j)
    }

    /// When its last sample came.
    pub fn last_sample(&self) -> Option<Instant> {
        self.last_sample
    }

    /// Root distance (RFC 5905 11.2: the half-width of its correctness interval).
    pub fn distance(&self, now: Instant) -> Option<f64> {
        let (s, jitter) = self.best?;
        let age = now.saturating_duration_since(s.at).as_secs_f64();
        // RFC 5905 A.5.5.2 rootdist(): the delays count for at least MINDISP, so that a server
        // on the same machine (microseconds away) still has an interval the others can meet.
        Some(
            (self.root.0 + s.delay).max(MIN_DISPERSION) / 2.0
                + self.root.1
                + s.dispersion
                + PHI * age
                + jitter,
        )
    }

    fn usable(&self, now: Instant) -> bool {
        self.standing == Standing::Active
            && self.reach != 0
            && self.stratum > 0
            && self.stratum < 16
            && self.distance(now).is_some_and(|d| d < MAX_DISTANCE)
    }
}

/// What the client makes of its servers.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// The system peer (index into the sources).
    pub peer: usize,
    /// The servers that agree (the system peer among them).
    pub truechimers: Vec<usize>,
    /// Usable servers outside the agreement.
    pub falsetickers: Vec<usize>,
    /// The combined offset of the truechimers: the server clocks minus ours, seconds.
    pub offset: f64,
}

/// The NTP client.
pub struct Client {
    config: ClientConfig,
    sources: Vec<Source>,
    rng: StdRng,
    events: Vec<Event>,
    bogus: u64,
}

impl Client {
    /// A client of `config.servers`, asking each at once; `seed` seeds its nonces.
    pub fn new(config: ClientConfig, now: Instant, seed: u64) -> Client {
        let sources = config
            .servers
            .iter()
            .map(|&addr| Source {
                addr,
                standing: Standing::Active,
                poll: config.min_poll,
                reach: 0,
                stratum: 0,
                reference: String::new(),
                root: (0.0, 0.0),
                filter: Vec::new(),
                best: None,
                last_sample: None,
                good_in_a_row: 0,
                waiting: None,
                next_poll: now,
                dropped: 0,
            })
            .collect();
        Client { config, sources, rng: StdRng::seed_from_u64(seed), events: Vec::new(), bogus: 0 }
    }

    /// The servers.
    pub fn sources(&self) -> &[Source] {
        &self.sources
    }

    /// Answers from nobody we asked (wrong address) or for no request of ours.
    pub fn bogus(&self) -> u64 {
        self.bogus
    }

    /// The next request due at `now`; `wall` is our wall clock now (T1).
    pub fn poll_transmit(&mut self, now: Instant, wall: Timestamp) -> Option<Transmit> {
        let timeout = self.config.timeout;
        let (i, s) = self
            .sources
            .iter_mut()
            .enumerate()
            .find(|(_, s)| s.standing == Standing::Active && s.waiting.is_none() && s.next_poll <= now)?;
        let nonce = Timestamp(self.rng.random::<u64>());
        s.waiting = Some((nonce, wall, now + timeout));
        s.reach <<= 1;
        s.next_poll = now + poll_interval(s.poll);
        Some(Transmit { server: i, to: s.addr, bytes: Packet::request(nonce, s.poll) })
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        (!self.events.is_empty()).then(|| self.events.remove(0))
    }

    /// When [`Client::handle_timeout`] (or a [`Client::poll_transmit`]) is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sources
            .iter()
            .filter(|s| s.standing == Standing::Active)
            .map(|s| s.waiting.map_or(s.next_poll, |(_, _, due)| due))
            .min()
    }

    /// Time passed: requests unanswered in time are given up (a lost poll); a server that
    /// answers nothing in eight polls starts over at the shortest interval.
    pub fn handle_timeout(&mut self, now: Instant) {
        for s in &mut self.sources {
            if s.waiting.is_some_and(|(_, _, due)| due <= now) {
                s.waiting = None;
                s.good_in_a_row = 0;
                if s.reach == 0 {
                    s.poll = self.config.min_poll;
                }
            }
        }
    }

    /// A datagram from `from` arrived at our wall time `wall` (T4; a kernel receive
    /// timestamp if the driver has one).
    pub fn handle_datagram(&mut self, now: Instant, wall: Timestamp, from: SocketAddr, bytes: &[u8]) {
        let Some(i) = self.sources.iter().position(|s| s.addr == from) else {
            self.bogus += 1;
            return;
        };
        let Ok(p) = Packet::decode(bytes) else {
            self.sources[i].dropped += 1;
            return;
        };
        let s = &mut self.sources[i];
        // RFC 5905 8: the answer to our request, or nothing (a replay, a spoof, a duplicate).
        let Some((nonce, t1, _)) = s.waiting.filter(|(nonce, ..)| p.origin == *nonce) else {
            self.bogus += 1;
            return;
        };
        if p.mode != Mode::Server || p.transmit == Timestamp(0) {
            s.dropped += 1;
            return;
        }
        let _ = nonce;
        s.waiting = None;
        if let Some(code) = p.kiss_code() {
            return self.kissed(i, code, now);
        }
        s.reach |= 1;
        if p.leap == 3 || p.stratum >= 16 {
            s.dropped += 1;
            return;
        }
        s.stratum = p.stratum;
        s.reference = p.reference_name();
        s.root = (p.root_delay, p.root_dispersion);
        let (t2, t3, t4) = (p.receive, p.transmit, wall);
        let offset = (t2.since(t1) + t3.since(t4)) / 2.0;
        let precision = 2f64.powi(i32::from(PRECISION)) + 2f64.powi(i32::from(p.precision));
        let delay = (t4.since(t1) - t3.since(t2)).max(precision);
        let dispersion = precision + PHI * t4.since(t1).max(0.0);
        s.filter.push(Sample { offset, delay, dispersion, at: now });
        if s.filter.len() > FILTER {
            s.filter.remove(0);
        }
        let best = *s.filter.iter().min_by(|a, b| a.delay.total_cmp(&b.delay)).expect("one at least");
        let n = s.filter.len() as f64;
        let jitter = if n > 1.0 {
            (s.filter.iter().map(|x| (x.offset - best.offset).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            precision
        };
        s.best = Some((best, jitter));
        s.last_sample = Some(now);
        s.good_in_a_row += 1;
        if s.good_in_a_row >= 4 && s.poll < self.config.max_poll {
            s.poll += 1;
            s.good_in_a_row = 0;
        }
        self.events.push(Event::Sample { server: i, offset, delay });
    }

    /// RFC 5905 7.4: what a kiss code means for server `i`.
    fn kissed(&mut self, i: usize, code: [u8; 4], now: Instant) {
        let s = &mut self.sources[i];
        match &code {
            b"RATE" => {
                s.poll = (s.poll + 1).max(self.config.min_poll + 1).min(17);
                s.next_poll = now + poll_interval(s.poll);
            }
            b"DENY" | b"RSTR" => s.standing = Standing::Refused(code),
            _ => {}
        }
        let code = String::from_utf8_lossy(&code).into_owned();
        tracing::debug!(server = %s.addr, %code, "NTP Kiss-o'-Death");
        self.events.push(Event::Kiss { server: i, code });
    }

    /// The selection (RFC 5905 11.2.1): `None` until a majority of the usable servers agree.
    pub fn selection(&self, now: Instant) -> Option<Selection> {
        let usable: Vec<(usize, f64, f64)> = self
            .sources
            .iter()
            .enumerate()
            .filter(|(_, s)| s.usable(now))
            .map(|(i, s)| (i, s.offset().expect("usable"), s.distance(now).expect("usable")))
            .collect();
        let m = usable.len();
        if m == 0 {
            return None;
        }
        // Endpoints: (value, type) with -1 a lower end, 0 a midpoint, +1 an upper end.
        let mut ends: Vec<(f64, i32)> = usable
            .iter()
            .flat_map(|&(_, offset, distance)| [(offset - distance, -1), (offset, 0), (offset + distance, 1)])
            .collect();
        ends.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        // Allow f falsetickers, fewest first, while they are a minority.
        for f in 0..m.div_ceil(2) {
            let (mut low, mut high) = (None, None);
            let (mut chimers, mut midpoints) = (0i64, 0usize);
            for &(value, kind) in &ends {
                chimers -= i64::from(kind);
                if chimers >= (m - f) as i64 {
                    low = Some(value);
                    break;
                }
                if kind == 0 {
                    midpoints += 1;
                }
            }
            chimers = 0;
            for &(value, kind) in ends.iter().rev() {
                chimers += i64::from(kind);
                if chimers >= (m - f) as i64 {
                    high = Some(value);
                    break;
                }
                if kind == 0 {
                    midpoints += 1;
                }
            }
            let (Some(low), Some(high)) = (low, high) else { continue };
            if midpoints > f || low > high {
                continue;
            }
            // Truechimers: servers whose interval meets the intersection.
            let (truechimers, falsetickers): (Vec<_>, Vec<_>) = usable
                .iter()
                .copied()
                .partition(|&(_, offset, distance)| offset - distance <= high && offset + distance >= low);
            let peer = truechimers
                .iter()
                .min_by(|a, b| {
                    let key =
                        |x: &(usize, f64, f64)| f64::from(self.sources[x.0].stratum) * MAX_DISTANCE + x.2;
                    key(a).total_cmp(&key(b))
                })
                .expect("a clique is not empty")
                .0;
            let weight: f64 = truechimers.iter().map(|&(_, _, d)| 1.0 / d).sum();
            let offset = truechimers.iter().map(|&(_, o, d)| o / d).sum::<f64>() / weight;
            return Some(Selection {
                peer,
                truechimers: truechimers.iter().map(|t| t.0).collect(),
                falsetickers: falsetickers.iter().map(|t| t.0).collect(),
                offset,
            });
        }
        None
    }
}

fn poll_interval(poll: i8) -> Duration {
    Duration::from_secs_f64(2f64.powi(i32::from(poll)))
}
