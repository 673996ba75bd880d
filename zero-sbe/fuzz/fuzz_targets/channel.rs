//! The MDP 3.0 channel (keeping books by order too) fed arbitrary packets on A, B, the
//! snapshot feeds and the definition loop, with time passing: every packet is framed from the
//! input (real ones spliced in now and then, so recovery is reached), and the channel never
//! panics; a book it gives out is never deeper than its depth (configured, or defined by
//! the input).
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use zero_sbe::mdp3::arbiter::Feed;
use zero_sbe::mdp3::channel::{Channel, ChannelConfig};
use zero_sbe::mdp3::sim::{Exchange, Rng};

fuzz_target!(|data: &[u8]| {
    let config = ChannelConfig { depth: 5, orders: true, max_instruments: 64, ..ChannelConfig::default() };
    let mut ch = Channel::new(config);
    let mut ex = Exchange::new(3, 5).forgetful().with_orders();
    let mut rng = Rng(u64::from(data.first().copied().unwrap_or(1)) | 1);
    let start = Instant::now();
    let mut at = 1;
    let mut step = 0u64;
    while at < data.len() {
        let kind = data[at];
        let len = usize::from(*data.get(at + 1).unwrap_or(&0));
        let body = &data[(at + 2).min(data.len())..(at + 2 + len).min(data.len())];
        at += 2 + len;
        step += 1;
        let now = start + Duration::from_millis(step);
        match kind % 7 {
            0 => ch.incremental(now, Feed::A, body),
            1 => ch.incremental(now, Feed::B, body),
            2 => ch.snapshot(body),
            3 => {
                let real = ex.incremental(&mut rng);
                ch.incremental(now, if kind & 8 == 0 { Feed::A } else { Feed::B }, &real);
            }
            4 => ch.definitions(body),
            5 => {
                let id = 1 + i32::from(kind % 3);
                ch.snapshot(&ex.snapshot(step as u32, id));
            }
            _ => {
                let id = 1 + i32::from(kind % 3);
                for chunk in ex.order_snapshot(step as u32, id, 2) {
                    ch.snapshot(&chunk);
                }
            }
        }
        ch.handle_timeout(now);
        while let Some(event) = ch.poll_event() {
            // (A book published may have gone stale later in the same call.)
            if let zero_sbe::mdp3::channel::Event::Published(id) = event {
                if let Some(book) = ch.book(id) {
                    let (depth, _) = book.depth();
                    assert!(book.bids.levels().len() <= depth && book.offers.levels().len() <= depth);
                }
            }
        }
    }
});
