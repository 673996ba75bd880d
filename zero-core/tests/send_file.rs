//! `Ops::send_file`: a file spliced into a connection between bytes sent before and after it,
//! in order, to a reader slower than the pipe; nothing else sent meanwhile; a file shorter
//! than promised closes the connection.

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use zero_core::{CloseReason, Config, ConnId, Event, Handler, Io, IoError, Ops};

struct Sender {
    file: std::fs::File,
    offset: u64,
    len: u64,
    refused_meanwhile: bool,
    sent: bool,
    closed: Option<CloseReason>,
}

impl Sender {
    fn start(&mut self, ops: &mut Ops, conn: ConnId) {
        ops.send(conn, b"HEAD").unwrap();
        ops.send_file(conn, &self.file, self.offset, self.len).unwrap();
        self.refused_meanwhile = matches!(ops.send(conn, b"x"), Err(IoError::NotReady(_)));
        assert!(matches!(ops.send_file(conn, &self.file, 0, 1), Err(IoError::NotReady(_))));
    }
}

impl Handler for Sender {
    fn on_event(&mut self, ops: &mut Ops, event: Event<'_>) {
        match event {
            Event::Accepted { conn, .. } => self.start(ops, conn),
            Event::FileSent { conn } => {
                self.sent = true;
                ops.send(conn, b"TAIL").unwrap();
                ops.close(conn).unwrap();
            }
            Event::Closed { reason, .. } => self.closed = Some(reason),
            _ => {}
        }
    }
}

fn run(content: &[u8], offset: u64, len: u64, slow: bool) -> (Vec<u8>, Sender) {
    let path = std::env::temp_dir().join(format!("zero-send-file-{}-{len}", std::process::id()));
    std::fs::write(&path, content).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let mut io = Io::new(Config::default()).unwrap();
    let l = io.tcp_listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = io.listener_addr(l).unwrap();
    let reader = std::thread::spawn(move || {
        let mut c = TcpStream::connect(addr).unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match c.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
            if slow && got.len() < 3_000_000 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        got
    });
    let mut h = Sender { file, offset, len, refused_meanwhile: false, sent: false, closed: None };
    let deadline = Instant::now() + Duration::from_secs(20);
    while h.closed.is_none() {
        assert!(Instant::now() < deadline, "the connection never closed");
        io.run_once(&mut h, Some(Duration::from_millis(50))).unwrap();
    }
    let _ = std::fs::remove_file(&path);
    (reader.join().unwrap(), h)
}

#[test]
fn a_file_between_bytes_in_order_to_a_slow_reader() {
    let content: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    let (got, h) = run(&content, 3, 4_999_000, true);
    assert!(h.refused_meanwhile, "a send during the file is refused");
    assert!(h.sent);
    assert_eq!(got.len(), 4 + 4_999_000 + 4);
    assert_eq!(&got[..4], b"HEAD");
    assert!(got[4..4 + 4_999_000] == content[3..3 + 4_999_000], "the file's bytes, in order");
    assert_eq!(&got[got.len() - 4..], b"TAIL");
    assert_eq!(h.closed, Some(CloseReason::Local));
}

#[test]
fn a_file_shorter_than_promised_closes_the_connection() {
    let content = vec![7u8; 100_000];
    let (got, h) = run(&content, 0, 200_000, false);
    assert!(!h.sent, "the file was never all sent");
    assert_eq!(h.closed, Some(CloseReason::Error(libc_eio())));
    assert_eq!(&got[..4], b"HEAD");
    assert!(got.len() <= 4 + 100_000);
}

fn libc_eio() -> i32 {
    5
}
