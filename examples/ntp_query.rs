//! One NTP query with zero-ntp: ask a server what time it is and print the offset (its clock
//! minus ours) and the round-trip delay. The system clock is never set.
//!
//! It needs an NTP server: a public one, or a local chronyd serving its own clock
//! (`local stratum 8` and `allow 127.0.0.1` in chrony.conf, `port 11123` for a spare port):
//!
//! ```text
//! cargo run -p zero-examples --example ntp_query -- pool.ntp.org
//! cargo run -p zero-examples --example ntp_query -- 127.0.0.1:11123
//! ```
//!
//! Arguments: `SERVER[:PORT]` (port 123 by default).

use std::net::ToSocketAddrs;
use std::time::Duration;

use zero_ntp::client::{query_blocking, ClientConfig, Standing};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = std::env::args().nth(1).ok_or("usage: ntp_query SERVER[:PORT]")?;
    let with_port = if server.contains(':') { server } else { format!("{server}:123") };
    let addr = with_port.to_socket_addrs()?.next().ok_or("the server resolves to nothing")?;

    let mut config = ClientConfig::new(&[addr]);
    // A one-shot query: poll every second (log2 0) rather than NTP's 16 s and up, and
    // count a request lost after two seconds.
    (config.min_poll, config.max_poll) = (0, 0);
    config.timeout = Duration::from_secs(2);
    // Runs the client on a shard of its own until one answer is in (or 5 s pass).
    let client = query_blocking(config, 1, Duration::from_secs(5))?;

    let source = client.sources().first().ok_or("no source")?;
    if let Standing::Refused(code) = source.standing {
        // A Kiss-o'-Death (DENY or RSTR): this server will not serve us.
        return Err(format!("{addr} kissed us off: {}", String::from_utf8_lossy(&code)).into());
    }
    match (source.offset(), source.delay()) {
        (Some(offset), Some(delay)) => {
            println!("server {addr}: stratum {}, reference {}", source.stratum, source.reference);
            println!("offset {offset:+.6} s (the server's clock minus ours)");
            println!("delay  {delay:.6} s (round trip, less the server's time)");
            Ok(())
        }
        _ => Err(format!("{addr}: no answer within 5 s").into()),
    }
}
