//! The ops socket: one command per connection, one answer, then the close.
//!
//! - Only the server's own user (the socket file's owner) and root may connect: the file is
//!   mode 0600 and each peer's uid is checked (`SO_PEERCRED`).
//! - Read-only: `healthz`, `readyz`, `stats` (a line per shard), `connections` (a line per
//!   connection: shard, id, peer, bytes queued), `snapshot` (every metric, in Prometheus' text
//!   format).
//! - Privileged: `drain`, `kill SHARD CONN`, `reload-certs`, `reset-peaks`, each sent as
//!   `COMMAND nonce=NONCE mac=HEX`, the MAC an HMAC-SHA256 under the server's key over
//!   `NONCE COMMAND` ([`sign`] makes one). A nonce is `UNIXTIME-RANDOM`, accepted within five
//!   minutes of the server's clock and only once. Every privileged command, accepted or
//!   refused, is logged (and appended to the audit log when one is set).
//! - Answers start with `ok` or `error`.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::hmac;

use super::metrics::Collector;
use super::{health, Health};
use crate::drain::Stopper;
use crate::error::{IoError, Result};
use crate::id::ConnId;
use crate::ring as kernel;

/// How far a nonce's time may be from the server's clock.
const NONCE_WINDOW: u64 = 300;
/// The longest command line read.
const MAX_LINE: usize = 1024;

/// Reloads a server's TLS certificates; says what it reloaded.
pub type Reload = Box<dyn Fn() -> std::result::Result<String, String> + Send>;

/// An ops socket for a server: what it reaches, and how privileged commands are checked.
pub struct OpsSocket {
    collector: Collector,
    stopper: Stopper,
    grace: Duration,
    key: Option<hmac::Key>,
    audit: Option<File>,
    reload: Option<Reload>,
    /// Nonces seen, with their time, until they leave the window.
    seen: HashMap<String, u64>,
}

impl OpsSocket {
    /// An ops socket over the shards `collector` and `stopper` reach; `drain` shuts them down
    /// with `grace`. Without a key, privileged commands are refused.
    pub fn new(collector: Collector, stopper: Stopper, grace: Duration) -> OpsSocket {
        OpsSocket { collector, stopper, grace, key: None, audit: None, reload: None, seen: HashMap::new() }
    }

    /// The key privileged commands are signed with (at least 16 bytes).
    pub fn with_key(mut self, key: &[u8]) -> Result<OpsSocket> {
        if key.len() < 16 {
            return Err(IoError::Config("an ops key must be at least 16 bytes".into()));
        }
        self.key = Some(hmac::Key::new(hmac::HMAC_SHA256, key));
        Ok(self)
    }

    /// Appends every privileged command, and its verdict, to the file at `path`.
    pub fn with_audit_log(mut self, path: &Path) -> Result<OpsSocket> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| IoError::sys(format!("audit log {}", path.display()), e))?;
        self.audit = Some(file);
        Ok(self)
    }

    /// What `reload-certs` runs.
    pub fn with_reload(mut self, reload: Reload) -> OpsSocket {
        self.reload = Some(reload);
        self
    }

    /// Listens at `path` (replacing a stale socket there) on a thread of its own until the
    /// process ends.
    pub fn serve(mut self, path: &Path) -> Result<()> {
        let fail = |what: &str, e| IoError::sys(format!("ops socket {}: {what}", path.display()), e);
        if std::fs::symlink_metadata(path)
            .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
        {
            std::fs::remove_file(path).map_err(|e| fail("remove the stale socket", e))?;
        }
        let listener = UnixListener::bind(path).map_err(|e| fail("bind", e))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| fail("chmod 0600", e))?;
        let owner = std::fs::metadata(path).map_err(|e| fail("stat", e))?.uid();
        let path: PathBuf = path.into();
        std::thread::Builder::new()
            .name("zero-ops".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    if let Err(e) = self.answer(stream, owner) {
                        tracing::debug!(socket = %path.display(), error = %e, "ops request failed");
                    }
                }
            })
            .map_err(|e| IoError::sys("spawn the ops socket thread", e))?;
        Ok(())
    }

    fn answer(&mut self, stream: UnixStream, owner: u32) -> std::io::Result<()> {
        let (pid, uid) = kernel::peer_credentials(stream.as_raw_fd())?;
        let mut stream = stream;
        if uid != owner && uid != 0 {
            tracing::warn!(pid, uid, "ops socket: a peer of another user refused");
            return stream.write_all(b"error: not the server's user\n");
        }
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut line = String::new();
        BufReader::new((&stream).take(MAX_LINE as u64)).read_line(&mut line)?;
        let answer = self.run(line.trim(), pid, uid);
        stream.write_all(answer.as_bytes())?;
        if !answer.ends_with('\n') {
            stream.write_all(b"\n")?;
        }
        Ok(())
    }

    /// The answer to one command line, as a connection would get it (audited as from pid 0,
    /// uid 0): for tests and fuzzing, the same code `serve` runs.
    pub fn answer_line(&mut self, line: &str) -> String {
        self.run(line, 0, 0)
    }

    /// One command line's answer.
    fn run(&mut self, line: &str, pid: i32, uid: u32) -> String {
        match line {
            "healthz" | "readyz" => match health(&self.collector, line == "readyz") {
                Health::Ok => "ok".into(),
                h => format!("error: {h}"),
            },
            "stats" => self.stats(),
            "connections" => self.connections(),
            "snapshot" => format!("ok\n{}", self.collector.prometheus(Duration::from_secs(2))),
            _ => {
                let (verdict, answer) = match self.verify(line) {
                    Ok(command) => ("accepted", self.privileged(command)),
                    Err(why) => ("refused", format!("error: {why}")),
                };
                let command = line.split(" nonce=").next().unwrap_or(line);
                tracing::warn!(pid, uid, command, verdict, %answer, "ops socket: privileged command");
                if let Some(audit) = &mut self.audit {
                    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64();
                    let entry = format!("{now:.3} pid={pid} uid={uid} {verdict} {command:?}: {answer}\n");
                    if let Err(e) = audit.write_all(entry.as_bytes()).and_then(|()| audit.sync_data()) {
                        tracing::error!(error = %e, "audit log write failed");
                    }
                }
                answer
            }
        }
    }

    /// The command of a signed line, if its signature holds and its nonce is fresh.
    fn verify<'a>(&mut self, line: &'a str) -> std::result::Result<&'a str, String> {
        let (rest, mac) =
            line.rsplit_once(" mac=").ok_or("unknown command (privileged ones must be signed)")?;
        let (command, nonce) = rest.rsplit_once(" nonce=").ok_or("a signed command needs a nonce")?;
        let key = self.key.as_ref().ok_or("privileged commands are off: the server has no ops key")?;
        let mac = hex_decode(mac).ok_or("the mac is not hex")?;
        hmac::verify(key, format!("{nonce} {command}").as_bytes(), &mac).map_err(|_| "bad signature")?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let at: u64 =
            nonce.split('-').next().and_then(|t| t.parse().ok()).ok_or("a nonce is UNIXTIME-RANDOM")?;
        if at.abs_diff(now) > NONCE_WINDOW {
            return Err("the nonce is stale (more than 5 minutes off the server's clock)".into());
        }
        self.seen.retain(|_, &mut t| t.abs_diff(now) <= NONCE_WINDOW);
        if self.seen.insert(nonce.to_string(), at).is_some() {
            return Err("the nonce was used before: replay refused".into());
        }
        Ok(command)
    }

    fn privileged(&mut self, command: &str) -> String {
        let words: Vec<&str> = command.split_whitespace().collect();
        match words.as_slice() {
            ["drain"] => {
                let (stopper, grace) = (self.stopper.clone(), self.grace);
                std::thread::spawn(move || stopper.shutdown(grace));
                format!("ok: draining (at most {:.1} s)", grace.as_secs_f64())
            }
            ["kill", shard, conn] => {
                let (Ok(shard), Some(conn)) = (shard.parse::<usize>(), ConnId::parse(conn)) else {
                    return "error: kill SHARD CONN, e.g. kill 0 conn#12.3".into();
                };
                match self.stopper.handle(shard).map(|h| h.close_now(conn)) {
                    Some(Ok(())) => format!("ok: {conn} on shard {shard} closed (if it was open)"),
                    _ => format!("error: no shard {shard}"),
                }
            }
            ["reload-certs"] => match &self.reload {
                Some(reload) => match reload() {
                    Ok(what) => format!("ok: {what}"),
                    Err(e) => format!("error: {e}"),
                },
                None => "error: this server has no certificates to reload".into(),
            },
            ["reset-peaks"] => format!("ok: {} shard(s) reset", self.collector.reset_peaks()),
            _ => format!("error: unknown command {command:?}"),
        }
    }

    fn connections(&self) -> String {
        let mut out = String::from("ok\n");
        for (shard, m) in self.collector.connections(Duration::from_secs(1)).iter().enumerate() {
            for c in m.iter().flat_map(|m| m.connections()) {
                let peer = c.peer.map_or("unix".to_string(), |p| p.to_string());
                out.push_str(&format!("{shard} {} {peer} {}\n", c.id, c.queued));
            }
        }
        out
    }

    fn stats(&self) -> String {
        let mut out = String::from("ok\n");
        for (shard, m) in self.collector.collect(Duration::from_secs(1)).iter().enumerate() {
            let Some(m) = m else {
                out.push_str(&format!("shard {shard}: no answer\n"));
                continue;
            };
            let v = |name| m.get(name).unwrap_or(0.0);
            out.push_str(&format!(
                "shard {shard}: {} connections (peak {} sockets), {} listeners, {} B queued, pool {}/{} free ({} detached, {} exhausted){}\n",
                v("zero_connections"),
                v("zero_sockets_peak"),
                v("zero_listeners"),
                v("zero_send_queue_bytes"),
                v("zero_pool_slots_available"),
                v("zero_pool_slots"),
                v("zero_pool_slots_detached"),
                v("zero_pool_exhausted_total"),
                if v("zero_draining") > 0.0 { ", draining" } else { "" },
            ));
        }
        out
    }
}

/// Signs `command` for an ops socket whose key is `key`: `COMMAND nonce=NONCE mac=HEX`.
pub fn sign(key: &[u8], command: &str) -> String {
    use ring::rand::SecureRandom;
    let mut random = [0u8; 12];
    let _ = ring::rand::SystemRandom::new().fill(&mut random);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let nonce = format!("{now}-{}", hex_encode(&random));
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), format!("{nonce} {command}").as_bytes());
    format!("{command} nonce={nonce} mac={}", hex_encode(tag.as_ref()))
}

/// Sends one command line to the ops socket at `path` and returns its answer.
pub fn request(path: &Path, line: &str) -> std::io::Result<String> {
    let mut stream = UnixStream::connect(path)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(line.as_bytes())?;
    stream.write_all(b"\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_and_unsigned_lines_are_refused_and_signed_ones_work_once() {
        let key = b"a key of sixteen bytes or more";
        let mut ops = OpsSocket::new(Collector::new(Vec::new()), Stopper::new(Vec::new()), Duration::ZERO)
            .with_key(key)
            .unwrap();
        for line in ["", "drain", "drain mac=zz", "drain nonce=1 mac=00", "x nonce=a-b mac=", "\u{0}"] {
            assert!(ops.answer_line(line).starts_with("error"), "{line:?}");
        }
        assert_eq!(ops.answer_line("healthz"), "ok", "no shards: nothing to be unhealthy");
        let signed = sign(key, "reset-peaks");
        assert_eq!(ops.answer_line(&signed), "ok: 0 shard(s) reset");
        assert!(ops.answer_line(&signed).contains("replay refused"));
        assert!(ops.answer_line(&sign(b"another key, sixteen+", "reset-peaks")).contains("bad signature"));
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(hex_decode(&hex_encode(&[0, 1, 0xab, 0xff])), Some(vec![0, 1, 0xab, 0xff]));
        assert_eq!(hex_decode("abc"), None);
        assert_eq!(hex_decode("zz"), None);
    }
}
