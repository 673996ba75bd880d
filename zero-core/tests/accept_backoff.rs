//! A listener out of file descriptors backs off instead of spinning, and accepts again once
//! descriptors are free. Its own test binary: it exhausts this process's descriptor table.

use std::fs::File;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use zero_core::{Config, Event, Handler, Io, Ops};

#[derive(Default)]
struct Count {
    accepted: usize,
}

impl Handler for Count {
    fn on_event(&mut self, _: &mut Ops, event: Event<'_>) {
        if let Event::Accepted { .. } = event {
            self.accepted += 1;
        }
    }
}

#[test]
fn emfile_on_accept_backs_off_and_recovers() {
    let mut io = Io::new(Config::default()).unwrap();
    let l = io.tcp_listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = io.listener_addr(l).unwrap();
    // Arm the accept.
    io.poll(Some(Duration::ZERO)).unwrap();
    // Take every descriptor, then give exactly one back for the client's socket.
    let mut hog = Vec::new();
    while let Ok(f) = File::open("/dev/null") {
        hog.push(f);
        assert!(hog.len() < 1_000_000, "no descriptor limit?");
    }
    hog.pop();
    let client = TcpStream::connect(addr).unwrap(); // completes in the kernel's backlog
    let mut count = Count::default();
    let start = Instant::now();
    let mut ticks = 0;
    while start.elapsed() < Duration::from_millis(300) {
        io.run_once(&mut count, Some(Duration::from_millis(500))).unwrap();
        ticks += 1;
    }
    assert_eq!(count.accepted, 0, "no descriptor to accept into");
    assert!(ticks < 30, "the listener spun: {ticks} ticks in 300 ms");
    hog.truncate(hog.len().saturating_sub(16));
    let deadline = Instant::now() + Duration::from_secs(5);
    while count.accepted == 0 {
        assert!(Instant::now() < deadline, "never accepted after descriptors came back");
        io.run_once(&mut count, Some(Duration::from_millis(50))).unwrap();
    }
    drop(client);
}
