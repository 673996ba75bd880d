//! A Redis pub/sub consumer with zero-redis's blocking client: SUBSCRIBE to a channel and
//! print each message as `CHANNEL PAYLOAD`. So there is something to see at once, it
//! publishes one greeting on the channel itself right after subscribing.
//!
//! The peer is a Redis server (or Valkey, KeyDB); publish more with redis-cli:
//!
//! ```text
//! redis-server --port 6379 &
//! cargo run -p zero-examples --example redis_pubsub -- redis://127.0.0.1:6379 news
//! redis-cli PUBLISH news "hello again"            # prints: news hello again
//! ```
//!
//! Arguments: `[URL] [CHANNEL] [COUNT]` (default `redis://127.0.0.1:6379`, `news`, run until
//! killed; with `COUNT` it exits after that many messages). URLs:
//! `redis[s]://[user:password@]host[:port][/db][?protocol=resp2]`.

use zero_redis::client::{BlockingClient, Commands, SubKind};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "redis://127.0.0.1:6379".to_string());
    let channel = args.next().unwrap_or_else(|| "news".to_string());
    let count = args.next().map(|s| s.parse::<usize>()).transpose()?;

    // Connects (RESP3 through HELLO 3, falling back to RESP2) and waits until ready. The
    // client runs on a shard thread of its own and reconnects by itself, resubscribing.
    let client = BlockingClient::open(&url)?;

    // Returns once the server confirmed. Over RESP3 the subscription shares the command
    // connection; over RESP2 the client opens a second connection for it.
    client.subscribe(SubKind::Channel, &[channel.as_str()])?;
    eprintln!("subscribed to {channel} ({:?})", client.protocol());

    // Commands still work on a subscribed client: PUBLISH replies with the receiver count.
    let receivers: i64 = client.publish(channel.as_str(), "hello from zero-redis")?;
    eprintln!("greeting published to {receivers} subscriber(s)");

    let mut received = 0;
    while count.is_none_or(|c| received < c) {
        // `None` waits for ever; `Some(timeout)` gives up after it (returning `None`).
        let Some(message) = client.recv(None) else { break };
        received += 1;
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        println!("{} {}", text(&message.channel), text(&message.payload));
    }

    client.close();
    Ok(())
}
