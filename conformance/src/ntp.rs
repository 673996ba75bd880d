//! Real and scripted NTP servers on loopback for the client's tests: chrony (serving its
//! local clock at stratum 8, never touching the system clock), and a scripted server that
//! answers every request with a chosen Kiss-o'-Death code, or with a forged origin.

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use zero_ntp::packet::{Mode, Packet, Timestamp};

/// chronyd on a spare loopback port, killed on drop.
pub struct Chrony {
    /// Where it answers.
    pub addr: SocketAddr,
    child: Child,
    dir: std::path::PathBuf,
}

impl Drop for Chrony {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Chrony {
    /// Starts it (`-x`: it never sets the clock) with `local stratum 8`.
    pub fn start() -> Chrony {
        crate::require("chronyd");
        // Another test may take the port between our probe and chronyd's bind: then it exits,
        // and is started again on another.
        for _ in 0..5 {
            let mut chrony = Chrony::spawn();
            if chrony.answering() {
                return chrony;
            }
        }
        panic!("chronyd exited at start five times");
    }

    fn spawn() -> Chrony {
        let port = crate::spare_udp_port();
        let dir = std::env::temp_dir().join(format!("zero-chrony-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let conf = dir.join("chrony.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbindaddress 127.0.0.1\nallow 127.0.0.1\nlocal stratum 8\ncmdport 0\n\
                 pidfile {}/chronyd.pid\ndriftfile {}/drift\n",
                dir.display(),
                dir.display()
            ),
        )
        .expect("chrony.conf written");
        let child = Command::new("chronyd")
            .args(["-d", "-x", "-u", "root", "-f"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chronyd starts");
        Chrony { addr: SocketAddr::from(([127, 0, 0, 1], port)), child, dir }
    }

    /// Whether it answers a request as a synchronised server (`false` if it exited first).
    fn answering(&mut self) -> bool {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("a port");
        sock.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.child.try_wait().ok().flatten().is_some() {
                return false;
            }
            let _ = sock.send_to(&Packet::request(Timestamp(1), 4), self.addr);
            let mut buf = [0; 128];
            // Up when it answers as a synchronised server (its local clock selected: leap
            // not 3); before that its answers are no samples.
            if let Ok(n) = sock.recv(&mut buf) {
                if Packet::decode(&buf[..n]).is_ok_and(|p| p.leap != 3 && p.stratum != 0) {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            assert!(Instant::now() < deadline, "chronyd never answered on {}", self.addr);
        }
    }
}

/// What the scripted server answers.
#[derive(Debug, Clone, Copy)]
pub enum Script {
    /// A Kiss-o'-Death with this code (stratum 0), echoing the request's nonce.
    Kiss([u8; 4]),
    /// A normal stratum 2 answer whose origin is not the request's nonce.
    ForgedOrigin,
    /// A normal stratum 2 answer, `offset` seconds ahead of the real clock.
    Ahead(f64),
}

/// A scripted NTP server on a thread, answering every request per its [`Script`].
pub struct Scripted {
    /// Where it answers.
    pub addr: SocketAddr,
    /// Requests it answered.
    pub answered: Arc<std::sync::atomic::AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Scripted {
    /// Starts one.
    pub fn start(script: Script) -> Scripted {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("a port");
        sock.set_read_timeout(Some(Duration::from_millis(50))).expect("timeout");
        let addr = sock.local_addr().expect("bound");
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (halt, count) = (stop.clone(), answered.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !halt.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else { continue };
                let Ok(request) = Packet::decode(&buf[..n]) else { continue };
                let now = Timestamp::from_system(SystemTime::now());
                let (stratum, reference_id, origin, shift) = match script {
                    Script::Kiss(code) => (0, code, request.transmit, 0.0),
                    Script::ForgedOrigin => {
                        (2, [127, 0, 0, 1], Timestamp(request.transmit.0 ^ 0xdead_beef), 0.0)
                    }
                    Script::Ahead(offset) => (2, [127, 0, 0, 1], request.transmit, offset),
                };
                let answer = Packet {
                    leap: 0,
                    version: 4,
                    mode: Mode::Server,
                    stratum,
                    poll: request.poll,
                    precision: -20,
                    root_delay: 0.0,
                    root_dispersion: 0.001,
                    reference_id,
                    reference: now,
                    origin,
                    receive: now.shifted(shift),
                    transmit: now.shifted(shift),
                };
                let _ = sock.send_to(&answer.encode(), from);
                count.fetch_add(1, Ordering::Relaxed);
            }
        });
        Scripted { addr, answered, stop, thread: Some(thread) }
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
