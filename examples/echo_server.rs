//! A TCP echo server on one zero-core shard ([`zero_core::Io`]) with a [`Handler`] of its
//! own: every byte a client sends comes back to it.
//!
//! Any TCP client is the peer:
//!
//! ```text
//! cargo run -p zero-examples --example echo_server -- 127.0.0.1:7000
//! printf 'hello\n' | nc -q1 127.0.0.1 7000        # prints: hello
//! ```
//!
//! Argument: `LISTEN_ADDR` (default `127.0.0.1:7000`; `127.0.0.1:0` picks a free port). The
//! first line on stdout is `listening on ADDR`, with the port actually bound. It runs until
//! killed. The shard needs io_uring (Linux 6.0 or newer, not disabled by sysctl or by a
//! container's seccomp profile); the error says so otherwise.
//!
//! One shard is one thread. To serve on every core, run the same handler on an
//! `IoCluster` (one shard per core, listeners with `ListenOptions::reuse_port`), as
//! `zero echo serve --shards N` does. `zero_core::echo::Echo` is the complete version of
//! this handler: rather than disconnect a client that does not read its replies, it holds
//! them (without a copy) until the connection is writable again.

use std::net::SocketAddr;

use zero_core::{Config, Event, Handler, Io, Ops};

/// Sends every `Data` event back where it came from.
struct EchoHandler;

impl Handler for EchoHandler {
    // `ops` is the shard's submit side: send, close, timers. It comes with each event so
    // a reply can be sent while the event's payload is still borrowed.
    fn on_event(&mut self, ops: &mut Ops, event: Event<'_>) {
        match event {
            Event::Accepted { conn, .. } => {
                let peer = ops.peer_addr(conn).map_or_else(|e| e.to_string(), |a| a.to_string());
                eprintln!("{conn}: accepted from {peer}");
            }
            // `data` borrows the shard's receive pool until the next poll: reply from it
            // directly, no copy. `send` only queues; the shard writes at the end of the tick.
            Event::Data { conn, data } => {
                if let Err(e) = ops.send(conn, &data) {
                    // Typically `SendQueueFull`: the client sends but does not read.
                    eprintln!("{conn}: {e}; closing");
                    let _ = ops.close(conn);
                }
            }
            // With the default `Config::half_open = false`, a client's FIN closes the
            // connection once the replies queued before it are sent.
            Event::Closed { conn, reason } => eprintln!("{conn}: closed ({reason:?})"),
            _ => {}
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen: SocketAddr = std::env::args().nth(1).as_deref().unwrap_or("127.0.0.1:7000").parse()?;

    // One io_uring shard with default settings (pool, connection table, send-queue limit).
    let mut io = Io::new(Config::default())?;
    let listener = io.tcp_listen(listen)?;
    println!("listening on {}", io.listener_addr(listener)?);

    // Poll, dispatch every event to the handler, repeat; returns only when stopped
    // (`Ops::stop`, or `IoHandle::stop` from another thread).
    io.run(&mut EchoHandler)?;
    Ok(())
}
