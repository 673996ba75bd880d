//! Test harness: a shard on its own thread, stopped through its handle.
#![allow(dead_code)]

pub mod openssl;
pub mod pki;

use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use zero_core::{Config, Handler, Io, IoHandle};

/// A shard running `H` on its own thread.
pub struct Server<H> {
    pub addr: SocketAddr,
    pub handle: IoHandle,
    thread: Option<JoinHandle<H>>,
}

impl<H: Handler + Send + 'static> Server<H> {
    /// Starts a shard; `setup` opens its sockets and returns the handler and the address to report.
    pub fn spawn(
        config: Config,
        setup: impl FnOnce(&mut Io) -> (H, SocketAddr) + Send + 'static,
    ) -> Server<H> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let mut io = Io::new(config).expect("shard starts");
            let (mut handler, addr) = setup(&mut io);
            tx.send((addr, io.handle())).unwrap();
            io.run(&mut handler).expect("shard runs");
            handler
        });
        let (addr, handle) = rx.recv_timeout(Duration::from_secs(10)).expect("shard set up");
        Server { addr, handle, thread: Some(thread) }
    }

    /// Stops the shard and returns its handler.
    pub fn stop(mut self) -> H {
        self.handle.stop().unwrap();
        self.thread.take().unwrap().join().expect("shard thread")
    }
}

impl<H> Drop for Server<H> {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = self.handle.stop();
            let _ = t.join();
        }
    }
}

/// A TCP echo server on an ephemeral loopback port.
pub fn echo_server(mut config: Config) -> Server<zero_core::echo::Echo> {
    config.half_open = true;
    Server::spawn(config, |io| {
        let l = io.tcp_listen("127.0.0.1:0".parse().unwrap()).unwrap();
        (zero_core::echo::Echo::default(), io.listener_addr(l).unwrap())
    })
}

/// Polls `io` until `done` or the deadline, dispatching to `handler`.
pub fn run_until<H: Handler>(
    io: &mut Io,
    handler: &mut H,
    limit: Duration,
    mut done: impl FnMut(&H) -> bool,
) {
    let deadline = Instant::now() + limit;
    while !done(handler) {
        assert!(Instant::now() < deadline, "timed out after {limit:?}");
        io.run_once(handler, Some(Duration::from_millis(20))).unwrap();
    }
}
