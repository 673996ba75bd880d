//! `zero ftp ls|get|put|mirror URL`: the FTP client, with a progress bar (bytes, rate, ETA)
//! on a terminal and plain lines otherwise.

use std::io::{IsTerminal, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use zero_ftp::client::{mirror, ClientConfig, Connection, FtpUrl, Listing, Progress, Security, TlsClient};

use crate::ftp::FtpCommand;

/// How to log in.
#[derive(Args, Debug)]
pub struct Login {
    /// The user (the URL's, or anonymous).
    #[arg(long)]
    user: Option<String>,
    /// The password (the URL's, or $ZERO_FTP_PASSWORD, or anonymous's e-mail).
    #[arg(long)]
    password: Option<String>,
    /// Explicit FTPS: AUTH TLS before the login (refused servers get no password).
    #[arg(long)]
    tls: bool,
    /// Trust the server certificates signed by this CA (PEM) instead of the system's.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Active mode: the server connects to us (EPRT/PORT) instead of passive (EPSV/PASV).
    #[arg(long)]
    active: bool,
    /// Seconds to wait for a reply, or for a stalled transfer.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

/// Runs a client command.
pub fn run(command: FtpCommand) -> Result<(), String> {
    match command {
        FtpCommand::Serve { .. } => unreachable!("the server is ftp::run's"),
        FtpCommand::Ls { url, format, login } => {
            let format = match format.as_str() {
                "long" => Listing::Long,
                "names" => Listing::Names,
                "facts" => Listing::Facts,
                other => return Err(format!("--format {other}: long, names or facts")),
            };
            let (mut conn, url) = open(&url, &login)?;
            let path = (!url.path.is_empty()).then_some(url.path.as_str());
            let text = conn.list(path, format).map_err(|e| e.to_string())?;
            print!("{text}");
            conn.quit().map_err(|e| e.to_string())
        }
        FtpCommand::Get { url, output, resume, login } => {
            let (mut conn, url) = open(&url, &login)?;
            let name = url.path.rsplit('/').next().filter(|n| !n.is_empty());
            let local = match (output, name) {
                (Some(o), _) => o,
                (None, Some(n)) => PathBuf::from(n),
                (None, None) => return Err("the URL names no file (and no --output was given)".into()),
            };
            let mut bar = Bar::new(&url.path);
            let got = conn.get(&url.path, &local, resume, &mut |p| bar.show(p));
            bar.end(got.as_ref().ok().copied());
            got.map_err(|e| e.to_string())?;
            conn.quit().map_err(|e| e.to_string())
        }
        FtpCommand::Put { file, url, resume, login } => {
            let (mut conn, url) = open(&url, &login)?;
            let mut remote = url.path.clone();
            if remote.is_empty() || remote.ends_with('/') {
                let name = file.file_name().and_then(|n| n.to_str()).ok_or("the file has no usable name")?;
                remote.push_str(name);
            }
            let mut bar = Bar::new(&remote);
            let sent = conn.put(&file, &remote, resume, &mut |p| bar.show(p));
            bar.end(sent.as_ref().ok().copied());
            sent.map_err(|e| e.to_string())?;
            conn.quit().map_err(|e| e.to_string())
        }
        FtpCommand::Mirror { url, dir, login } => {
            let (mut conn, url) = open(&url, &login)?;
            let mut bar: Option<Bar> = None;
            let done = mirror(&mut conn, &url.path, &dir, &mut |name, p| {
                if bar.as_ref().is_none_or(|b| b.name != name) {
                    if let Some(b) = bar.take() {
                        b.end(Some(b.last.done));
                    }
                    bar = Some(Bar::new(name));
                }
                if let Some(b) = &mut bar {
                    b.show(p);
                }
            });
            if let Some(b) = bar.take() {
                b.end(done.as_ref().ok().map(|_| b.last.done));
            }
            let done = done.map_err(|e| e.to_string())?;
            println!(
                "mirrored {} directories: {} files downloaded ({}), {} unchanged",
                done.dirs,
                done.files,
                bytes(done.bytes),
                done.unchanged
            );
            conn.quit().map_err(|e| e.to_string())
        }
    }
}

/// Resolves the URL's host and logs in.
fn open(url: &str, login: &Login) -> Result<(Connection, FtpUrl), String> {
    let url = FtpUrl::parse(url).map_err(|e| e.to_string())?;
    let addr: SocketAddr = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| format!("{}: {e}", url.host))?
        .next()
        .ok_or_else(|| format!("{}: no address", url.host))?;
    let user = login.user.clone().or(url.user.clone());
    let mut config = match user {
        Some(user) => {
            let password = login
                .password
                .clone()
                .or(url.password.clone())
                .or_else(|| std::env::var("ZERO_FTP_PASSWORD").ok())
                .unwrap_or_default();
            ClientConfig::new(&user, &password)
        }
        None => ClientConfig::anonymous(),
    };
    if url.implicit_tls || login.tls {
        let tls = match &login.ca {
            Some(ca) => zero_core::tls::ClientTls::with_ca_file(ca),
            None => zero_core::tls::ClientTls::system_roots(),
        };
        let tls = TlsClient {
            server_name: url.host.clone(),
            config: tls.and_then(|t| t.build()).map_err(|e| e.to_string())?,
        };
        config.security = if url.implicit_tls { Security::Implicit(tls) } else { Security::Explicit(tls) };
    }
    config.passive = !login.active;
    config.command_timeout = Duration::from_secs(login.timeout);
    config.data_timeout = Duration::from_secs(login.timeout);
    let conn = Connection::open(addr, config).map_err(|e| format!("{}: {e}", url.host))?;
    Ok((conn, url))
}

/// A transfer's progress: a bar redrawn in place on a terminal; on anything else, a line
/// every few seconds and one at the end.
struct Bar {
    name: String,
    began: Instant,
    drawn: Instant,
    terminal: bool,
    last: Progress,
}

impl Bar {
    fn new(name: &str) -> Bar {
        let now = Instant::now();
        Bar {
            name: name.to_string(),
            began: now,
            drawn: now,
            terminal: std::io::stderr().is_terminal(),
            last: Progress { done: 0, total: None },
        }
    }

    fn show(&mut self, p: Progress) {
        self.last = p;
        let every = if self.terminal { Duration::from_millis(200) } else { Duration::from_secs(5) };
        if self.drawn.elapsed() < every {
            return;
        }
        self.drawn = Instant::now();
        let rate = p.done as f64 / self.began.elapsed().as_secs_f64().max(1e-3);
        let share = p.total.filter(|&t| t > 0).map(|t| p.done as f64 / t as f64);
        let eta = p.total.filter(|_| rate > 0.0).map(|t| t.saturating_sub(p.done) as f64 / rate);
        let mut line = format!("{}  {}", self.name, bytes(p.done));
        if let Some(t) = p.total {
            line += &format!(" / {}", bytes(t));
        }
        line += &format!("  {}/s", bytes(rate as u64));
        if let Some(eta) = eta {
            line += &format!("  ETA {}:{:02}", eta as u64 / 60, eta as u64 % 60);
        }
        let mut err = std::io::stderr();
        if self.terminal {
            const WIDTH: usize = 24;
            let filled = share.map_or(0, |s| (s.min(1.0) * WIDTH as f64) as usize);
            let bar = format!("[{}{}]", "#".repeat(filled), "-".repeat(WIDTH - filled));
            let _ = write!(err, "\r\x1b[2K{bar} {line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }

    /// The last line: what was moved, how fast (or that it failed: the error follows).
    fn end(&self, moved: Option<u64>) {
        let mut err = std::io::stderr();
        if self.terminal {
            let _ = write!(err, "\r\x1b[2K");
        }
        if let Some(n) = moved {
            let secs = self.began.elapsed().as_secs_f64();
            let _ = writeln!(
                err,
                "{}: {} in {secs:.2} s ({}/s)",
                self.name,
                bytes(n),
                bytes((n as f64 / secs.max(1e-3)) as u64)
            );
        }
    }
}

/// A byte count for people: `12.3 MiB`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
