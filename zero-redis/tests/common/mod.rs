//! A redis-server on a spare loopback port for the integration tests.
#![allow(dead_code)] // each test binary uses its own part

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zero_redis::client::{ClientConfig, Target};

/// redis-server, killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl RedisServer {
    /// Starts redis-server (no persistence, `DEBUG` allowed from loopback) on a spare port.
    /// Fails the test, pointing at scripts/test.sh, if redis-server is not installed.
    pub fn start() -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = RedisServer { child: None, addr: format!("127.0.0.1:{port}").parse().unwrap() };
        server.restart();
        server
    }

    /// Stops the server (if running) and starts it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        let found = Command::new("sh").arg("-c").arg("command -v redis-server").output().unwrap();
        assert!(
            found.status.success(),
            "redis-server is missing: run scripts/test.sh (it installs redis-server)"
        );
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.addr.port().to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--enable-debug-command", "local", "--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(self.addr).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start on {}", self.addr);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The target for a client.
    pub fn target(&self) -> Target {
        Target { addr: self.addr, tls: None }
    }

    /// The `redis://` URL.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// A configuration with short timeouts for tests.
    pub fn config(&self) -> ClientConfig {
        ClientConfig {
            connect_timeout: Duration::from_secs(2),
            command_timeout: Some(Duration::from_secs(10)),
            ..ClientConfig::default()
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
