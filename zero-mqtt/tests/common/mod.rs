//! Helpers shared by the integration tests: the peers' command-line tools and a mosquitto
//! broker on a spare port.
#![allow(dead_code)] // each test binary uses its own part

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zero_mqtt::client::driver::Target;

/// `name` as a command with no stdin; fails the test (pointing at scripts/test.sh) if the
/// tool is not installed.
pub fn tool(name: &str) -> Command {
    let found = Command::new("sh").arg("-c").arg(format!("command -v {name}")).output().unwrap();
    assert!(found.status.success(), "{name} is missing: run scripts/test.sh (it installs mosquitto-clients)");
    let mut cmd = Command::new(name);
    cmd.stdin(Stdio::null());
    cmd
}

/// mosquitto on a spare loopback port, killed on drop.
pub struct Mosquitto {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Mosquitto {
    /// Starts mosquitto on a spare loopback port, anonymous clients allowed.
    pub fn start() -> Mosquitto {
        tool("mosquitto");
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = std::env::temp_dir().join(format!("zero-mqtt-client-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(&conf, format!("listener {port} 127.0.0.1\nallow_anonymous true\n")).unwrap();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not start on {addr}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Mosquitto { child, addr, _dir: TempDir(dir) }
    }

    /// Where a zero client finds it.
    pub fn target(&self) -> Target {
        Target { addr: self.addr, tls: None }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
