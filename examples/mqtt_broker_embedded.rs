//! An MQTT 3.1.1 / 5.0 broker embedded in an application: zero-mqtt's broker runs on shards
//! (threads, one io_uring each) inside this process, and the application publishes to it
//! through an ordinary client of its own: a retained `app/status` and an `app/uptime` tick.
//!
//! Any MQTT client is the peer:
//!
//! ```text
//! cargo run -p zero-examples --example mqtt_broker_embedded -- 127.0.0.1:1883
//! mosquitto_sub -h 127.0.0.1 -p 1883 -t 'app/#' -v     # app/status online, app/uptime 1, ...
//! ```
//!
//! Arguments: `[LISTEN_ADDR] [SECONDS]` (default `127.0.0.1:1883`, run until killed; with
//! `SECONDS` it stops gracefully after that long). The first line on stdout is
//! `broker listening on ADDR`, with the port actually bound (`127.0.0.1:0` picks one).
//! On a shard the application already owns (one thread, next to its own work): open the
//! sockets with `server::listen(&mut io, &listeners)?` and run the handler
//! `server::BrokerHandler::new(config, Instant::now())?` (a `zero_core::Handler`) on it.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use zero_mqtt::broker::BrokerConfig;
use zero_mqtt::client::blocking::BlockingClient;
use zero_mqtt::client::driver::Target;
use zero_mqtt::client::ClientConfig;
use zero_mqtt::codec::QoS;
use zero_mqtt::server::{self, Listeners};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let listen: SocketAddr = args.next().as_deref().unwrap_or("127.0.0.1:1883").parse()?;
    let run_for = args.next().map(|s| s.parse::<u64>()).transpose()?.map(Duration::from_secs);

    // Defaults, spelled out where an embedder usually decides. Anonymous clients are
    // accepted from loopback only (`anonymous`, `passwords` and `acl` change that).
    let mut config = BrokerConfig::default();
    config.persistence = false; // true: sessions and retained messages survive restarts
    config.sys_interval = None; // no `$SYS/...` statistics topics
    let listeners = Listeners { tcp: vec![listen], ..Listeners::default() };
    // One shard per core, as `zero mqtt broker` runs it; they share the port (SO_REUSEPORT).
    let shards = std::thread::available_parallelism().map_or(1, |n| n.get());
    let broker = server::start_cluster(config, &listeners, shards, Vec::new())?;
    let addr = *broker.addrs().first().ok_or("the broker has no listener")?;
    println!("broker listening on {addr}");

    // The application's own client. `BlockingClient` runs on a shard thread of its own; in
    // an async application use `client::tokio::AsyncClient` (see mqtt_client_tokio.rs).
    let mut client_config = ClientConfig::default();
    client_config.client_id = "embedded-app".into();
    let (app, _) = BlockingClient::connect(Target::tcp(loopback(addr)), client_config)?;
    app.publish("app/status", b"online", QoS::AtLeastOnce, true)?; // retained: late subscribers get it

    let started = Instant::now();
    let mut ticks = 0u64;
    while run_for.is_none_or(|limit| started.elapsed() < limit) {
        std::thread::sleep(Duration::from_secs(1));
        ticks += 1;
        app.publish("app/uptime", ticks.to_string().as_bytes(), QoS::AtMostOnce, false)?;
    }

    app.disconnect();
    // Graceful: every shard stops taking input, hands on what it accepted, then stops.
    broker.stop()?;
    println!("broker stopped");
    Ok(())
}

/// Where a local client reaches a listener bound to `0.0.0.0` or `[::]`.
fn loopback(mut addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() { Ipv4Addr::LOCALHOST.into() } else { Ipv6Addr::LOCALHOST.into() });
    }
    addr
}
