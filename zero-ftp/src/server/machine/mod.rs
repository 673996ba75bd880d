//! One FTP server session, sans I/O: the control connection under zero-core's [`Machine`]
//! contract; file systems, data connections and transfers belong to its owner, asked for by
//! [`Event`]s and answered through the `*_done` methods.
//!
//! Its life: the greeting (`220`), then `USER` and `PASS` (a client that fails
//! `max_login_fails` times is disconnected), then commands, one at a time. A command the
//! owner must work on (a file-system request, a passive listener, a transfer) makes the
//! session wait, reading nothing more, until the owner answers. While a transfer runs, only
//! `ABOR`, `STAT` and `QUIT` are read (RFC 959 4.1.3); the rest wait their turn.
//!
//! The rules it holds (vsftpd's safe defaults):
//! - `PORT`/`EPRT` only to the control connection's own address and a port of 1024 or more
//!   (no bounce attack, RFC 2577 3); `EPSV ALL` refuses every other data command after it;
//! - a `PASV`/`EPSV` listener or a `PORT` serves one transfer;
//! - `REST` counts for the command right after it only (RFC 3659 5.5);
//! - `RNTO` only right after a `RNFR`;
//! - each command's permission (read, write, delete, mkdir) is checked before the owner is
//!   asked anything;
//! - a client silent for `idle_timeout` is told `421` and disconnected (not while a
//!   transfer runs: the owner's data timeout watches that).

mod data;
mod features;
mod secure;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use zero_core::machine::{Closed, Machine, Outbox, Upgrade};

use super::{
    DataMode, Event, Fs, FsDone, FsError, ListFormat, Peer, Perms, ServerConfig, Transfer, TransferEnd,
    TransferKind,
};
use crate::codec::command::{self, Line, Verb, MAX_LINE};
use crate::codec::list;
use crate::codec::reply::Reply;
use crate::path::VPath;
use crate::vfs::Write;

/// What the session is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Not connected, or closed.
    Idle,
    /// Reading commands.
    Command,
    /// The rest of a command line too long to read: skipped to its end.
    SkipLine,
    /// The owner is working on a file-system request.
    Fs(Fs),
    /// The owner is opening a passive listener (`extended`: for `EPSV`).
    Passive { extended: bool },
    /// The owner is opening the file and the data connection of a transfer.
    Opening(Transfer),
    /// A transfer runs.
    Transferring(Transfer),
    /// `AUTH TLS` answered: nothing is read until the handshake ends.
    Upgrading,
    /// `QUIT` or `421`: closing.
    Closing,
}

/// Who the client is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Login {
    /// Nobody yet.
    None,
    /// `USER` given: the password is next.
    User(String),
    /// Logged in (`anonymous`: as the anonymous user).
    In { user: String, perms: Perms, anonymous: bool },
}

/// One server session.
pub struct Session {
    config: Arc<ServerConfig>,
    peer: Peer,
    phase: Phase,
    login: Login,
    fails: u32,
    cwd: VPath,
    rest: Option<u64>,
    rename_from: Option<VPath>,
    data: Option<DataMode>,
    epsv_all: bool,
    /// `ABOR` or `QUIT` came during the transfer: what to say when it ends.
    aborted: bool,
    quit: bool,
    /// `STOU`'s tries at a free name.
    unique: u32,
    /// Which command an [`Fs::Stat`] answers (`SIZE`, `MDTM` or `MLST`).
    stat_for: Option<Verb>,
    /// The control connection is TLS; `PBSZ` was given; `PROT P` is in force.
    tls: bool,
    pbsz: bool,
    private: bool,
    upgrade: Option<Upgrade>,
    input: Vec<u8>,
    out: Outbox,
    events: VecDeque<Event>,
    close: bool,
    deadline: Option<Instant>,
}

impl Session {
    /// A session with the client at `peer`, under `config`.
    pub fn new(config: Arc<ServerConfig>, peer: Peer) -> Session {
        Session {
            config,
            peer,
            phase: Phase::Idle,
            login: Login::None,
            fails: 0,
            cwd: VPath::root(),
            rest: None,
            rename_from: None,
            data: None,
            epsv_all: false,
            aborted: false,
            quit: false,
            unique: 0,
            stat_for: None,
            tls: peer.tls,
            pbsz: false,
            private: false,
            upgrade: None,
            input: Vec::new(),
            out: Outbox::default(),
            events: VecDeque::new(),
            close: false,
            deadline: None,
        }
    }

    /// The next event for the owner.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Where the control connection is.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// Whether `ip` is the client's own address: the only one a data connection may go to
    /// (PORT, EPRT) or come from (after PASV, EPSV), RFC 2577 3 and 5.
    pub fn is_client(&self, ip: std::net::IpAddr) -> bool {
        ip.to_canonical() == self.peer.remote.ip().to_canonical()
    }

    /// The working directory.
    pub fn cwd(&self) -> &VPath {
        &self.cwd
    }

    fn reply(&mut self, code: u16, text: impl Into<String>) {
        Reply::new(code, text).write(&mut self.out);
    }

    fn shut(&mut self) {
        if self.data.take().is_some() {
            self.events.push_back(Event::DropData);
        }
        self.phase = Phase::Closing;
        self.close = true;
        self.deadline = None;
    }

    /// The server is shutting down: `421` (RFC 959: the reply of a service that "knows it must
    /// shut down"), any transfer aborted, then the close.
    pub fn shut_down(&mut self) {
        if matches!(self.phase, Phase::Closing) {
            return;
        }
        if matches!(self.phase, Phase::Opening(_) | Phase::Transferring(_)) {
            self.events.push_back(Event::Abort);
        }
        self.reply(421, "Service shutting down, closing control connection.");
        self.shut();
    }

    /// The owner opened the passive listener at `addr`, or could not.
    pub fn passive_done(&mut self, now: Instant, addr: Option<std::net::SocketAddr>) {
        let Phase::Passive { extended } = self.phase else { return };
        match addr {
            Some(addr) if extended => {
                self.data = Some(DataMode::Passive);
                self.reply(229, format!("Entering Extended Passive Mode (|||{}|)", addr.port()));
            }
            Some(addr) => {
                let ip = match (self.config.advertised, self.peer.local.ip()) {
                    (Some(ip), _) => ip,
                    (None, std::net::IpAddr::V4(ip)) => ip,
                    (None, std::net::IpAddr::V6(ip)) => {
                        ip.to_ipv4_mapped().unwrap_or(std::net::Ipv4Addr::LOCALHOST)
                    }
                };
                self.data = Some(DataMode::Passive);
                self.reply(227, command::pasv_text(ip, addr.port()));
            }
            None => self.reply(425, "Could not open a passive listener."),
        }
        self.resume(now);
    }

    /// The owner's answer to an [`Event::Fs`].
    pub fn fs_done(&mut self, now: Instant, result: Result<FsDone, FsError>) {
        let Phase::Fs(request) = std::mem::replace(&mut self.phase, Phase::Command) else { return };
        match (request, result) {
            (Fs::ChangeDir(path), Ok(_)) => {
                self.cwd = path;
                self.reply(250, "Directory successfully changed.");
            }
            (Fs::ChangeDir(_), Err(_)) => self.reply(550, "Failed to change directory."),
            (Fs::MakeDir(path), Ok(_)) => self.reply(257, format!("{} created", path.quoted())),
            (Fs::MakeDir(_), Err(_)) => self.reply(550, "Create directory operation failed."),
            (Fs::RemoveDir(_), Ok(_)) => self.reply(250, "Remove directory operation successful."),
            (Fs::RemoveDir(_), Err(_)) => self.reply(550, "Remove directory operation failed."),
            (Fs::Delete(_), Ok(_)) => self.reply(250, "Delete operation successful."),
            (Fs::Delete(_), Err(_)) => self.reply(550, "Delete operation failed."),
            (Fs::RenameFrom(path), Ok(_)) => {
                self.rename_from = Some(path);
                self.reply(350, "Ready for RNTO.");
            }
            (Fs::RenameFrom(_), Err(_)) => self.reply(550, "RNFR command failed."),
            (Fs::Rename(..), Ok(_)) => self.reply(250, "Rename successful."),
            (Fs::Rename(..), Err(_)) => self.reply(550, "Rename failed."),
            (Fs::Stat(_), Ok(FsDone::Stat(entry))) => self.stat_reply(&entry),
            (Fs::Stat(_), _) => self.reply(550, "Could not get file status."),
            (Fs::List(_), Ok(FsDone::List(entries))) => {
                let lines = entries.iter().map(|e| list::list_line(e, entry_now(&entries))).collect();
                Reply::multi(213, "Status follows:", lines, "End of status").write(&mut self.out);
            }
            (Fs::List(_), _) => self.reply(550, "Could not list."),
        }
        self.resume(now);
    }

    /// `SIZE`, `MDTM` or `MLST`'s reply: which one is in `stat_for`.
    fn stat_reply(&mut self, entry: &list::Entry) {
        match self.stat_for.take() {
            Some(Verb::Size) if entry.kind == list::Kind::File => self.reply(213, entry.size.to_string()),
            Some(Verb::Size) => self.reply(550, "Could not get file size."),
            Some(Verb::Mdtm) => self.reply(213, list::timeval(entry.modified)),
            _ => {
                let perms = self.perms();
                let facts = list::mlsx_line(entry, perms, false);
                Reply::multi(250, "Listing", vec![facts], "End").write(&mut self.out);
            }
        }
    }

    /// The file and data connection of the transfer asked for are ready: `150`.
    pub fn transfer_opened(&mut self, now: Instant) {
        let Phase::Opening(transfer) = std::mem::replace(&mut self.phase, Phase::Idle) else { return };
        let text = match &transfer.kind {
            TransferKind::List(..) => "Here comes the directory listing.".to_string(),
            TransferKind::Retrieve(path, _) => format!("Opening BINARY mode data connection for {path}."),
            TransferKind::Store(path, Write::New) => format!("FILE: {}", path.name().unwrap_or("")),
            TransferKind::Store(..) => "Ok to send data.".to_string(),
        };
        self.reply(150, text);
        self.phase = Phase::Transferring(transfer);
        // Whatever came meanwhile may be an ABOR.
        self.process(now);
    }

    /// The transfer asked for ended (or never started: `NoConnection`, `Fs`).
    pub fn transfer_done(&mut self, now: Instant, end: TransferEnd) {
        let transfer = match std::mem::replace(&mut self.phase, Phase::Command) {
            Phase::Opening(t) | Phase::Transferring(t) => t,
            other => {
                self.phase = other;
                return;
            }
        };
        self.data = None;
        // STOU: a name taken is tried again with the next number.
        if let (TransferKind::Store(path, Write::New), TransferEnd::Fs(FsError::Exists)) =
            (&transfer.kind, end)
        {
            if self.unique < 100 && !self.aborted {
                self.unique += 1;
                let base =
                    path.name().unwrap_or("file").trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
                let next = path.parent().join(&format!("{base}.{}", self.unique)).unwrap_or_default();
                let retry = Transfer { kind: TransferKind::Store(next, Write::New), ..transfer };
                self.data = Some(transfer.mode);
                self.events.push_back(Event::Transfer(retry.clone()));
                self.phase = Phase::Opening(retry);
                return;
            }
        }
        let listing = matches!(transfer.kind, TransferKind::List(..));
        match end {
            TransferEnd::Complete(_) if listing => self.reply(226, "Directory send OK."),
            TransferEnd::Complete(_) => self.reply(226, "Transfer complete."),
            TransferEnd::NoConnection => self.reply(425, "Failed to establish connection."),
            TransferEnd::Broken => self.reply(426, "Failure writing network stream."),
            TransferEnd::NoSessionReuse => self.reply(522, "SSL connection failed: session reuse required."),
            TransferEnd::Fs(FsError::NoSpace) => self.reply(552, "Out of space: transfer aborted."),
            TransferEnd::Fs(FsError::OverQuota) => self.reply(552, "Quota exceeded: transfer aborted."),
            TransferEnd::Fs(FsError::Local) => self.reply(451, "Local error in processing."),
            TransferEnd::Fs(_) if listing => self.reply(550, "Could not list the directory."),
            TransferEnd::Fs(_) => self.reply(550, "Failed to open file."),
        }
        if std::mem::take(&mut self.aborted) {
            self.reply(226, "ABOR successful.");
        }
        if std::mem::take(&mut self.quit) {
            self.reply(221, "Goodbye.");
            return self.shut();
        }
        self.resume(now);
    }

    fn resume(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Closing | Phase::Idle) {
            return;
        }
        self.phase = Phase::Command;
        self.process(now);
    }

    /// Reads the command lines held, as far as the phase lets it.
    fn process(&mut self, now: Instant) {
        loop {
            let waiting = matches!(self.phase, Phase::Fs(_) | Phase::Passive { .. } | Phase::Opening(_));
            if waiting || matches!(self.phase, Phase::Closing | Phase::Idle | Phase::Upgrading) {
                return;
            }
            let Some(end) = self.input.iter().position(|&b| b == b'\n') else {
                if self.phase == Phase::SkipLine || self.input.len() > MAX_LINE {
                    self.input.clear();
                    if self.phase == Phase::Command {
                        self.phase = Phase::SkipLine;
                    }
                }
                return;
            };
            if self.phase == Phase::SkipLine {
                self.input.drain(..=end);
                self.reply(500, "Command line too long.");
                self.phase = Phase::Command;
                continue;
            }
            let line = command::parse(&self.input[..end]);
            if let Phase::Transferring(_) = self.phase {
                // Only ABOR, STAT and QUIT are read while a transfer runs; the rest wait.
                match &line {
                    Line::Command(Verb::Abor, _) => {
                        self.input.drain(..=end);
                        self.aborted = true;
                        self.events.push_back(Event::Abort);
                    }
                    Line::Command(Verb::Quit, _) => {
                        self.input.drain(..=end);
                        self.quit = true;
                        self.events.push_back(Event::Abort);
                    }
                    Line::Command(Verb::Stat, arg) if arg.is_empty() => {
                        self.input.drain(..=end);
                        self.reply(213, "Status: a transfer is in progress.");
                    }
                    _ => return,
                }
                continue;
            }
            self.input.drain(..=end);
            if end > MAX_LINE {
                self.reply(500, "Command line too long.");
                continue;
            }
            self.deadline = Some(now + self.config.idle_timeout);
            self.command(line);
        }
    }

    /// What the logged-in user may do (nothing before login).
    pub fn perms(&self) -> Perms {
        match self.login {
            Login::In { perms, .. } => perms,
            _ => Perms::default(),
        }
    }

    /// Who is logged in, and whether as the anonymous user.
    pub fn user_name(&self) -> Option<(&str, bool)> {
        match &self.login {
            Login::In { user, anonymous, .. } => Some((user, *anonymous)),
            _ => None,
        }
    }

    /// One command, in the Command phase.
    fn command(&mut self, line: Line) {
        let (verb, arg) = match line {
            Line::Command(verb, arg) => (verb, arg),
            Line::Unknown(_) => return self.reply(500, "Unknown command."),
            Line::Garbage => return self.reply(500, "Unknown command."),
        };
        let rest = self.rest.take();
        let rename_from = self.rename_from.take();
        match verb {
            Verb::User => return self.user(arg),
            Verb::Pass => return self.pass(arg),
            Verb::Quit => {
                self.reply(221, "Goodbye.");
                return self.shut();
            }
            Verb::Feat => return self.feat(),
            Verb::Syst => return self.reply(215, "UNIX Type: L8"),
            Verb::Noop => return self.reply(200, "NOOP ok."),
            Verb::Help => return self.help(),
            Verb::Host => return self.host(arg),
            Verb::Opts => return self.opts(&arg),
            Verb::Auth => return self.auth(&arg),
            Verb::Pbsz => return self.pbsz(),
            Verb::Prot => return self.prot(&arg),
            Verb::Ccc => return self.reply(534, "CCC is refused: the control connection stays encrypted."),
            _ => {}
        }
        let Login::In { perms, .. } = self.login else {
            return self.reply(530, "Please login with USER and PASS.");
        };
        let path = |s: &Self, arg: &str| s.cwd.join(arg);
        match verb {
            Verb::Acct => self.reply(202, "ACCT is superfluous here."),
            Verb::Allo => self.reply(202, "ALLO command ignored."),
            Verb::Pwd => self.reply(257, format!("{} is the current directory", self.cwd.quoted())),
            Verb::Cwd | Verb::Cdup => {
                let target = if verb == Verb::Cdup { ".." } else { arg.as_str() };
                match path(self, target) {
                    Ok(p) => self.ask(Fs::ChangeDir(p)),
                    Err(_) => self.reply(550, "Failed to change directory."),
                }
            }
            Verb::Type => match arg.to_ascii_uppercase().as_str() {
                "I" | "L 8" => self.reply(200, "Switching to Binary mode."),
                "A" | "A N" => self.reply(200, "Switching to ASCII mode."),
                _ => self.reply(504, "Unsupported TYPE."),
            },
            Verb::Mode if arg.eq_ignore_ascii_case("S") => self.reply(200, "Mode set to S."),
            Verb::Mode => self.reply(504, "Bad MODE command."),
            Verb::Stru if arg.eq_ignore_ascii_case("F") => self.reply(200, "Structure set to F."),
            Verb::Stru => self.reply(504, "Bad STRU command."),
            Verb::Pasv | Verb::Epsv => self.passive(verb, &arg),
            Verb::Port | Verb::Eprt => self.active(verb, &arg),
            Verb::Rest => match arg.trim().parse::<u64>() {
                Ok(n) => {
                    self.rest = Some(n);
                    self.reply(350, format!("Restart position accepted ({n})."));
                }
                Err(_) => self.reply(501, "REST takes a byte offset."),
            },
            Verb::List | Verb::Nlst | Verb::Mlsd => {
                let format = match verb {
                    Verb::List => ListFormat::Long,
                    Verb::Nlst => ListFormat::Names,
                    _ => ListFormat::Facts,
                };
                // `LIST -la`: ls options, which clients still send, are not a path.
                let target = if verb != Verb::Mlsd && arg.starts_with('-') {
                    arg.split_once(' ').map_or("", |(_, p)| p)
                } else {
                    arg.as_str()
                };
                match path(self, target) {
                    Ok(p) if perms.read => self.transfer(TransferKind::List(p, format)),
                    Ok(_) => self.reply(550, "Permission denied."),
                    Err(_) => self.reply(501, "Bad path."),
                }
            }
            Verb::Retr => match path(self, &arg) {
                Ok(p) if perms.read && !arg.is_empty() => {
                    self.transfer(TransferKind::Retrieve(p, rest.unwrap_or(0)))
                }
                Ok(_) if arg.is_empty() => self.reply(501, "RETR takes a file name."),
                Ok(_) => self.reply(550, "Permission denied."),
                Err(_) => self.reply(501, "Bad path."),
            },
            Verb::Stor | Verb::Appe | Verb::Stou => {
                let (name, how) = match verb {
                    Verb::Stor => (arg.as_str(), rest.map_or(Write::Truncate, Write::At)),
                    Verb::Appe => (arg.as_str(), Write::Append),
                    _ => (if arg.is_empty() { "file" } else { arg.as_str() }, Write::New),
                };
                self.unique = 0;
                match path(self, name) {
                    Ok(p) if perms.write && p.name().is_some() => self.transfer(TransferKind::Store(p, how)),
                    Ok(p) if p.name().is_none() => self.reply(553, "Could not create file."),
                    Ok(_) => self.reply(550, "Permission denied."),
                    Err(_) => self.reply(553, "Could not create file."),
                }
            }
            Verb::Size | Verb::Mdtm | Verb::Mlst => {
                let target = if arg.is_empty() && verb == Verb::Mlst { "." } else { arg.as_str() };
                match path(self, target) {
                    Ok(p) if perms.read => {
                        self.stat_for = Some(verb);
                        self.ask(Fs::Stat(p));
                    }
                    Ok(_) => self.reply(550, "Permission denied."),
                    Err(_) => self.reply(501, "Bad path."),
                }
            }
            Verb::Dele | Verb::Rnfr | Verb::Mkd | Verb::Rmd => {
                let allowed = if matches!(verb, Verb::Mkd | Verb::Rmd) { perms.mkdir } else { perms.delete };
                match path(self, &arg) {
                    Ok(p) if allowed && !arg.is_empty() => self.ask(match verb {
                        Verb::Dele => Fs::Delete(p),
                        Verb::Rnfr => Fs::RenameFrom(p),
                        Verb::Mkd => Fs::MakeDir(p),
                        _ => Fs::RemoveDir(p),
                    }),
                    Ok(_) if arg.is_empty() => self.reply(501, "A path is needed."),
                    Ok(_) => self.reply(550, "Permission denied."),
                    Err(_) => self.reply(501, "Bad path."),
                }
            }
            Verb::Rnto => match (rename_from, path(self, &arg)) {
                (None, _) => self.reply(503, "RNFR required first."),
                (Some(from), Ok(to)) if !arg.is_empty() => self.ask(Fs::Rename(from, to)),
                _ => self.reply(501, "A path is needed."),
            },
            Verb::Stat if arg.is_empty() => {
                let lines = vec![
                    format!("Connected to {}", self.peer.remote.ip()),
                    "TYPE: BINARY".to_string(),
                    "No session bandwidth limit".to_string(),
                    format!("Session timeout in seconds is {}", self.config.idle_timeout.as_secs()),
                    "zero FTP server".to_string(),
                ];
                Reply::multi(211, "FTP server status:", lines, "End of status").write(&mut self.out);
            }
            Verb::Stat => match path(self, &arg) {
                Ok(p) if perms.read => self.ask(Fs::List(p)),
                Ok(_) => self.reply(550, "Permission denied."),
                Err(_) => self.reply(501, "Bad path."),
            },
            Verb::Abor => self.reply(225, "No transfer to ABOR."),
            Verb::Site => self.reply(500, "Unknown SITE command."),
            Verb::Rein => self.reply(502, "REIN not implemented."),
            // Handled before login is checked.
            Verb::User
            | Verb::Pass
            | Verb::Quit
            | Verb::Feat
            | Verb::Syst
            | Verb::Noop
            | Verb::Help
            | Verb::Host
            | Verb::Opts
            | Verb::Auth
            | Verb::Pbsz
            | Verb::Prot
            | Verb::Ccc => {}
        }
    }

    fn ask(&mut self, request: Fs) {
        self.events.push_back(Event::Fs(request.clone()));
        self.phase = Phase::Fs(request);
    }

    fn transfer(&mut self, kind: TransferKind) {
        let Some(mode) = self.data else {
            return self.reply(425, "Use PORT or PASV first.");
        };
        let anonymous = matches!(self.login, Login::In { anonymous: true, .. });
        if self.config.require_tls && !anonymous && !self.private {
            return self.reply(521, "Data connections must be encrypted: PROT P.");
        }
        let transfer = Transfer { kind, mode, tls: self.private };
        self.events.push_back(Event::Transfer(transfer.clone()));
        self.phase = Phase::Opening(transfer);
    }

    fn user(&mut self, name: String) {
        if matches!(self.login, Login::In { .. }) {
            return self.reply(530, "Can't change to another user.");
        }
        let anonymous = self.config.anonymous.is_some() && matches!(name.as_str(), "anonymous" | "ftp");
        if self.config.require_tls && !self.tls && !anonymous {
            return self.reply(530, "Non-anonymous sessions must use encryption.");
        }
        self.login = Login::User(name);
        self.reply(331, "Please specify the password.");
    }

    fn pass(&mut self, password: String) {
        let name = match std::mem::replace(&mut self.login, Login::None) {
            Login::User(name) => name,
            logged_in @ Login::In { .. } => {
                self.login = logged_in;
                return self.reply(230, "Already logged in.");
            }
            Login::None => return self.reply(503, "Login with USER first."),
        };
        let anonymous = matches!(name.as_str(), "anonymous" | "ftp");
        let found = match (&self.config.anonymous, anonymous) {
            (Some(root), true) => Some((Perms::READ, root.clone())),
            _ => {
                self.config.users.get(&name).filter(|u| u.check(&password)).map(|u| (u.perms, u.root.clone()))
            }
        };
        match found {
            Some((perms, root)) => {
                self.login = Login::In { user: name.clone(), perms, anonymous };
                self.cwd = VPath::root();
                self.events.push_back(Event::LoggedIn { user: name, root, perms, anonymous });
                self.reply(230, "Login successful.");
            }
            None => {
                self.fails += 1;
                self.reply(530, "Login incorrect.");
                if self.fails >= self.config.max_login_fails {
                    self.shut();
                }
            }
        }
    }
}

/// The `now` for `ls -l` dates of a `STAT` listing: the newest entry's time (the machine reads
/// no clock; a listing's own newest entry keeps recent files in the hours-and-minutes form).
fn entry_now(entries: &[list::Entry]) -> i64 {
    entries.iter().map(|e| e.modified).max().unwrap_or(0)
}

impl Machine for Session {
    fn wants_connect(&mut self, _now: Instant) -> bool {
        false
    }

    fn handle_connected(&mut self, now: Instant) {
        let banner = self.config.banner.clone();
        self.reply(220, banner);
        self.phase = Phase::Command;
        self.deadline = Some(now + self.config.idle_timeout);
    }

    fn handle_input(&mut self, now: Instant, data: &[u8]) {
        // While upgrading, plaintext is an attacker's injection (CVE-2011-0411): dropped.
        if matches!(self.phase, Phase::Closing | Phase::Idle | Phase::Upgrading) {
            return;
        }
        self.input.extend_from_slice(data);
        self.process(now);
    }

    fn handle_closed(&mut self, _now: Instant, _cause: Closed) {
        if matches!(self.phase, Phase::Opening(_) | Phase::Transferring(_)) {
            self.events.push_back(Event::Abort);
        }
        if self.data.take().is_some() {
            self.events.push_back(Event::DropData);
        }
        self.phase = Phase::Idle;
        self.input = Vec::new();
        self.deadline = None;
    }

    fn handle_timeout(&mut self, now: Instant) {
        let idle = matches!(self.phase, Phase::Command | Phase::SkipLine);
        if idle && self.deadline.is_some_and(|d| d <= now) {
            self.reply(421, "Timeout.");
            self.shut();
        }
    }

    fn poll_transmit(&mut self) -> Option<&[u8]> {
        self.out.poll()
    }

    fn poll_close(&mut self) -> bool {
        std::mem::take(&mut self.close)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Command | Phase::SkipLine => self.deadline,
            _ => None,
        }
    }

    fn is_drained(&self) -> bool {
        matches!(self.phase, Phase::Idle)
    }

    fn poll_upgrade(&mut self) -> Option<Upgrade> {
        self.upgrade.take()
    }

    fn handle_upgraded(&mut self, now: Instant) {
        self.tls = true;
        self.phase = Phase::Command;
        self.deadline = Some(now + self.config.idle_timeout);
        self.process(now);
    }
}
