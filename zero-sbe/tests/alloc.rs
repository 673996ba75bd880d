//! The channel in steady state allocates nothing: packets on A and B, in sequence,
//! decoded with the generated flyweights, arbitrated, applied to the books and published.

use std::time::Instant;

use zero_sbe::mdp3::arbiter::Feed;
use zero_sbe::mdp3::channel::{Channel, ChannelConfig, State};
use zero_sbe::mdp3::sim::{Exchange, Rng};

#[test]
fn steady_state_allocates_nothing() {
    let mut rng = Rng(42);
    let mut ex = Exchange::new(8, 10).forgetful();
    let opening = Exchange::new(8, 10);
    let packets: Vec<Vec<u8>> = (0..20_000).map(|_| ex.incremental(&mut rng)).collect();
    let mut ch = Channel::new(ChannelConfig::default());
    for id in 1..=8 {
        ch.snapshot(&opening.snapshot(id as u32, id));
    }
    assert_eq!(ch.state(), State::InSync);
    let now = Instant::now();
    let feed = |ch: &mut Channel, packets: &[Vec<u8>]| {
        let mut published = 0;
        for p in packets {
            ch.incremental(now, Feed::A, p);
            ch.incremental(now, Feed::B, p);
            while ch.poll_event().is_some() {
                published += 1;
            }
        }
        published
    };
    // Warm up: books reach their depth, the event queue its size.
    feed(&mut ch, &packets[..10_000]);
    let mut published = 0;
    let counted = allocation_counter::measure(|| published = feed(&mut ch, &packets[10_000..]));
    assert!(published > 10_000, "{published}");
    assert_eq!(counted.count_total, 0, "allocations in steady state: {counted:?}");
    for (id, (book, _)) in &ex.books {
        assert_eq!(ch.book(*id), Some(book));
    }
}
