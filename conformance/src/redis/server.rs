//! A redis-server the suite starts (and restarts) on a spare loopback port.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server's log file, in its working directory.
const LOG: &str = "redis.log";

/// redis-server with `DEBUG` allowed from loopback, killed on drop. Its append-only file is
/// fsynced before every reply (`appendfsync always`), so a write the server acknowledged
/// survives a `kill -9` restart: what the client saw acknowledged can be checked after one.
pub struct RedisServer {
    child: Option<Child>,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its working directory (the append-only file), removed on drop.
    dir: PathBuf,
}

impl RedisServer {
    /// Starts redis-server on a spare port. Fails (pointing at scripts/test.sh) if it is not
    /// installed.
    pub fn start() -> Result<RedisServer, String> {
        let port =
            TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
        let dir = std::env::temp_dir().join(format!("zero-redis-conformance-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let mut server = RedisServer { child: None, addr: SocketAddr::from(([127, 0, 0, 1], port)), dir };
        server.restart()?;
        Ok(server)
    }

    /// Stops the server (if running) and starts it again on the same port.
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        let child = Command::new("redis-server")
            .args(["--port", &self.addr.port().to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
            .arg(&self.dir)
            .args(["--enable-debug-command", "local", "--loglevel", "warning", "--logfile"])
            .arg(self.dir.join(LOG))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run redis-server ({e}): run scripts/test.sh, which installs it"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(self.addr).is_err() {
            if Instant::now() > deadline {
                return Err(format!("redis-server did not start on {}", self.addr));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// The last lines the server logged (warnings and worse), to explain a lost connection.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join(LOG)).unwrap_or_default();
        let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(3)..].join(" | ")
    }

    /// Kills the server.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
