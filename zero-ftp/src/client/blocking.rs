//! [`Connection`]: the client on a shard of its own, one request at a time, blocking the
//! caller until each is done. It owns the data connections the [`Client`] asks for: a
//! download is gathered into large file writes, an upload spliced by the kernel from the
//! page cache (read into the send queue under TLS), a listing kept in memory.

use std::collections::HashMap;
use std::fs::File;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use zero_core::machine::Driver;
use zero_core::{CloseReason, Config, ConnId, Event as IoEvent, Handler, Io, ListenerId, Ops, Target};

use super::{Client, ClientConfig, Error, Event, Features, Listing, Request, RequestId, Security, TlsClient};
use crate::codec::list::{self, Entry, Kind};
use crate::codec::reply::Reply;
use crate::data::{Pumped, Sink, Source};

/// How far a transfer is, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes moved so far (in this transfer, not counting a resumed part).
    pub done: u64,
    /// Bytes this transfer moves in all, when known.
    pub total: Option<u64>,
}

/// How often a running transfer reports its progress.
const TICK: Duration = Duration::from_millis(100);

/// What the running transfer moves.
enum Move {
    Nothing,
    /// A download, into a file.
    ToFile(Sink<File>),
    /// A listing, into memory.
    ToMemory(Vec<u8>),
    /// An upload.
    From(Source),
}

/// The shard's side of the session: the control connection's driver, and the data
/// connection.
struct Run {
    driver: Driver<Client>,
    tls: Option<TlsClient>,
    listener: Option<ListenerId>,
    data: Option<ConnId>,
    moving: Move,
    /// Bytes moved on the data connection.
    moved: u64,
    /// An upload's last byte is queued and its connection closing.
    sent_all: bool,
    /// A local file failed during the transfer: it is the result, whatever the server says.
    local_error: Option<String>,
    ready: bool,
    results: HashMap<RequestId, Result<Reply, Error>>,
}

impl Run {
    fn client(&mut self) -> &mut Client {
        self.driver.machine()
    }

    /// Does what the machine asks, until it asks nothing more.
    fn serve(&mut self, ops: &mut Ops) {
        let now = ops.now();
        while let Some(event) = self.client().poll_event() {
            match event {
                Event::Ready => self.ready = true,
                Event::Done { id, result } => {
                    let result = match self.local_error.take() {
                        Some(e) => Err(Error::Local(e)),
                        None => result,
                    };
                    self.results.insert(id, result);
                }
                Event::Connect { addr, .. } => match ops.tcp_connect(addr) {
                    Ok(conn) => self.data = Some(conn),
                    Err(_) => self.client().data_closed(now, false),
                },
                Event::Listen { .. } => {
                    let local = self.driver.conn().and_then(|c| ops.local_addr(c).ok());
                    let addr = match local.map(|a| ops.tcp_listen(SocketAddr::new(a.ip(), 0))) {
                        Some(Ok(l)) => {
                            self.listener = Some(l);
                            ops.listener_addr(l).map_err(|e| e.to_string())
                        }
                        Some(Err(e)) => Err(e.to_string()),
                        None => Err("no control connection".into()),
                    };
                    self.client().listening(now, addr);
                }
                Event::Secure => self.secure(ops),
                Event::Send => self.send_more(ops),
                Event::DropData => self.drop_data(ops),
            }
        }
    }

    fn drop_data(&mut self, ops: &mut Ops) {
        if let Some(l) = self.listener.take() {
            let _ = ops.close_listener(l);
        }
        if let Some(conn) = self.data.take() {
            let _ = ops.close_now(conn);
        }
    }

    /// An active-mode data connection: taken only from the server's address.
    fn accepted(&mut self, ops: &mut Ops, conn: ConnId) {
        let from = ops.peer_addr(conn).ok().map(|a| a.ip());
        if self.data.is_some() || !from.is_some_and(|ip| self.driver.machine_ref().is_server(ip)) {
            tracing::warn!(?from, "a data connection not from the server, refused");
            let _ = ops.close_now(conn);
            return;
        }
        if let Some(l) = self.listener.take() {
            let _ = ops.close_listener(l);
        }
        self.data = Some(conn);
        self.client().data_connected(ops.now());
    }

    /// Begins TLS on the data connection.
    fn secure(&mut self, ops: &mut Ops) {
        let (Some(conn), Some(t)) = (self.data, &self.tls) else { return };
        if ops.tls_upgrade(conn, &t.server_name, t.config.clone()).is_err() {
            self.data = None;
            let _ = ops.close_now(conn);
            self.client().data_closed(ops.now(), false);
        }
    }

    fn send_more(&mut self, ops: &mut Ops) {
        let (Some(conn), Move::From(source)) = (self.data, &mut self.moving) else { return };
        if self.sent_all {
            return;
        }
        let tls = ops.tls_info(conn).ok().flatten().is_some();
        let before = self.moved;
        let pumped = source.pump(ops, conn, tls, &mut self.moved, u64::MAX);
        if self.moved != before {
            self.driver.machine().data_progress(ops.now());
        }
        match pumped {
            Pumped::Waiting => {}
            Pumped::Done => self.sent(ops, conn),
            Pumped::Broken => {
                let _ = ops.close_now(conn);
            }
            Pumped::Unreadable => {
                self.local_error = Some("the file to upload could not be read".into());
                let _ = ops.close_now(conn);
            }
        }
    }

    /// An upload's last byte is queued: the close (after TLS close_notify) ends it.
    fn sent(&mut self, ops: &mut Ops, conn: ConnId) {
        self.sent_all = true;
        let _ = ops.close(conn);
    }

    fn on_data(&mut self, ops: &mut Ops, event: &IoEvent<'_>) {
        let now = ops.now();
        match event {
            IoEvent::Connected { .. } => self.client().data_connected(now),
            IoEvent::Upgraded { .. } => self.client().data_opened(now),
            IoEvent::Data { data, .. } => {
                self.moved += data.len() as u64;
                let written = match &mut self.moving {
                    Move::ToFile(sink) => sink.write(data),
                    Move::ToMemory(bytes) => {
                        bytes.extend_from_slice(data);
                        Ok(())
                    }
                    _ => Ok(()),
                };
                self.client().data_progress(now);
                if let Err(e) = written {
                    self.local_error = Some(e.to_string());
                    self.drop_data(ops);
                    self.client().data_closed(now, false);
                }
            }
            IoEvent::Writable { .. } => self.send_more(ops),
            IoEvent::FileSent { .. } => {
                if let Move::From(source) = &mut self.moving {
                    source.file_sent(&mut self.moved);
                }
                self.send_more(ops);
            }
            IoEvent::ConnectFailed { .. } => {
                self.data = None;
                self.client().data_closed(now, false);
            }
            IoEvent::Closed { reason, .. } => {
                self.data = None;
                let clean = match &mut self.moving {
                    Move::From(_) => self.sent_all,
                    Move::ToFile(sink) => {
                        let finished = sink.finish();
                        if let Err(e) = &finished {
                            self.local_error = Some(e.to_string());
                        }
                        *reason == CloseReason::PeerClosed && finished.is_ok()
                    }
                    _ => *reason == CloseReason::PeerClosed,
                };
                self.client().data_closed(now, clean);
            }
            _ => {}
        }
    }
}

impl Handler for Run {
    fn on_event(&mut self, ops: &mut Ops, event: IoEvent<'_>) {
        let data = match &event {
            IoEvent::Accepted { conn, listener } if Some(*listener) == self.listener => {
                return self.accepted(ops, *conn);
            }
            IoEvent::Connected { conn }
            | IoEvent::ConnectFailed { conn, .. }
            | IoEvent::Data { conn, .. }
            | IoEvent::Writable { conn }
            | IoEvent::FileSent { conn }
            | IoEvent::Upgraded { conn }
            | IoEvent::Closed { conn, .. } => Some(*conn) == self.data,
            _ => false,
        };
        if data {
            self.on_data(ops, &event);
        } else {
            self.driver.on_event(ops, &event);
        }
    }

    fn on_batch_end(&mut self, ops: &mut Ops) {
        self.serve(ops);
        self.driver.pump(ops);
        // Pumping may have ended the session (a refused send), with events to act on.
        self.serve(ops);
    }
}

/// An FTP session on a shard of its own: each call sends its request and blocks until it is
/// done. Drop it (or [`Connection::quit`]) to end the session.
pub struct Connection {
    io: Io,
    run: Run,
}

impl Connection {
    /// Connects to `server`, logs in under `config` and sets the session up; returns once it
    /// is ready.
    pub fn open(server: SocketAddr, config: ClientConfig) -> Result<Connection, Error> {
        let mut cfg = Config::default();
        // A data connection's close waits briefly for the server's FIN.
        cfg.close_linger = Duration::from_secs(2);
        let io = Io::new(cfg).map_err(|e| Error::Closed(e.to_string()))?;
        let (target, tls) = match &config.security {
            Security::Plain => (Target::tcp(server), None),
            Security::Explicit(t) => (Target::tcp(server), Some(t.clone())),
            Security::Implicit(t) => {
                (Target::tls(server, t.server_name.clone(), t.config.clone()), Some(t.clone()))
            }
        };
        let client = Client::new(config, server.ip());
        let run = Run {
            driver: Driver::new(client, target, 1),
            tls,
            listener: None,
            data: None,
            moving: Move::Nothing,
            moved: 0,
            sent_all: false,
            local_error: None,
            ready: false,
            results: HashMap::new(),
        };
        let mut c = Connection { io, run };
        c.run.on_batch_end(&mut c.io);
        while !c.run.ready {
            if let Some(e) = c.run.driver.machine_ref().ended() {
                return Err(e.clone());
            }
            c.tick()?;
        }
        Ok(c)
    }

    /// What the server offered in `FEAT`.
    pub fn features(&self) -> &Features {
        self.run.driver.machine_ref().features()
    }

    fn tick(&mut self) -> Result<(), Error> {
        self.io.run_once(&mut self.run, Some(TICK)).map(|_| ()).map_err(|e| Error::Closed(e.to_string()))
    }

    /// Runs `request` to its end, reporting a transfer's progress; returns the final reply
    /// and what the transfer moved into.
    fn wait(
        &mut self,
        request: Request,
        total: Option<u64>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<(Reply, Move), Error> {
        let now = self.io.now();
        let id = self.run.client().request(now, request);
        self.run.on_batch_end(&mut self.io);
        loop {
            if let Some(result) = self.run.results.remove(&id) {
                progress(Progress { done: self.moved(), total });
                let moved = std::mem::replace(&mut self.run.moving, Move::Nothing);
                self.run.drop_data(&mut self.io);
                return result.map(|reply| (reply, moved));
            }
            self.tick()?;
            progress(Progress { done: self.moved(), total });
        }
    }

    /// Bytes moved by the running transfer (a spliced upload counts what the kernel took).
    fn moved(&mut self) -> u64 {
        if let (Some(conn), Move::From(source)) = (self.run.data, &self.run.moving) {
            if let Ok(Some(left)) = self.io.conn_stats(conn).map(|s| s.file_left) {
                return self.run.moved + source.spliced() - left;
            }
        }
        self.run.moved
    }

    /// Runs a request that moves no data (`CWD`, `SIZE`, `MKD`, a quoted command ...);
    /// returns the server's final reply. A transfer request is refused here: use
    /// [`Connection::list`], [`Connection::retrieve`], [`Connection::store`].
    pub fn request(&mut self, request: Request) -> Result<Reply, Error> {
        if request.is_transfer() {
            return Err(Error::Protocol("a transfer needs list, retrieve or store".into()));
        }
        self.wait(request, None, &mut |_| {}).map(|(reply, _)| reply)
    }

    /// `PWD`: the working directory.
    pub fn pwd(&mut self) -> Result<String, Error> {
        let reply = self.request(Request::PrintDir)?;
        reply.quoted().ok_or_else(|| Error::Protocol(format!("a PWD reply without a path: {reply}")))
    }

    /// `CWD`.
    pub fn cwd(&mut self, path: &str) -> Result<(), Error> {
        self.request(Request::ChangeDir(path.to_string())).map(drop)
    }

    /// `SIZE`: a file's size in bytes.
    pub fn size(&mut self, path: &str) -> Result<u64, Error> {
        let reply = self.request(Request::Size(path.to_string()))?;
        let text = reply.text();
        text.trim().parse().map_err(|_| Error::Protocol(format!("a SIZE reply without a size: {reply}")))
    }

    /// `MDTM`: a file's last modification, seconds since the Unix epoch (UTC).
    pub fn mdtm(&mut self, path: &str) -> Result<i64, Error> {
        let reply = self.request(Request::ModTime(path.to_string()))?;
        list::parse_timeval(reply.text().trim())
            .ok_or_else(|| Error::Protocol(format!("an MDTM reply without a time: {reply}")))
    }

    /// A listing of `path` (the working directory when `None`), as the server wrote it.
    pub fn list(&mut self, path: Option<&str>, format: Listing) -> Result<String, Error> {
        self.run.moving = Move::ToMemory(Vec::new());
        self.begin_transfer();
        let request = Request::List { path: path.map(str::to_string), format };
        match self.wait(request, None, &mut |_| {})? {
            (_, Move::ToMemory(bytes)) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            _ => Ok(String::new()),
        }
    }

    /// A directory's entries (not `.` and `..`): `MLSD` where the server offers it, `LIST`
    /// parsed otherwise.
    pub fn entries(&mut self, path: Option<&str>) -> Result<Vec<Entry>, Error> {
        let facts = self.features().mlst;
        let text = self.list(path, if facts { Listing::Facts } else { Listing::Long })?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mut entries: Vec<Entry> = text
            .lines()
            .filter_map(|line| if facts { list::parse_mlsx(line) } else { list::parse_list_line(line, now) })
            .filter(|e| e.name != "." && e.name != ".." && !e.name.contains('/'))
            .collect();
        if facts {
            // MLSD's cdir/pdir entries.
            entries.retain(|e| !(e.kind == Kind::Dir && (e.name == "." || e.name == "..")));
        }
        Ok(entries)
    }

    fn begin_transfer(&mut self) {
        self.run.moved = 0;
        self.run.sent_all = false;
        self.run.local_error = None;
    }

    /// `RETR path` from `offset` into `to` (written from where it stands); returns the bytes
    /// received.
    pub fn retrieve(
        &mut self,
        path: &str,
        to: File,
        offset: u64,
        total: Option<u64>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<u64, Error> {
        self.begin_transfer();
        self.run.moving = Move::ToFile(Sink::new(to));
        self.wait(Request::Retrieve { path: path.to_string(), offset }, total, progress)?;
        Ok(self.run.moved)
    }

    /// `STOR path` (`APPE` when `append`) from `from`, its bytes from `offset` to its end;
    /// returns the bytes sent.
    pub fn store(
        &mut self,
        path: &str,
        from: File,
        offset: u64,
        append: bool,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<u64, Error> {
        let size = from.metadata().map_err(|e| Error::Local(e.to_string()))?.len();
        let len = size.saturating_sub(offset);
        self.begin_transfer();
        self.run.moving = Move::From(Source::File { file: from, offset, len, spliced: 0, started: false });
        self.wait(Request::Store { path: path.to_string(), append }, Some(len), progress)?;
        Ok(len)
    }

    /// Downloads `remote` to `local`. With `resume`, a shorter local file is continued from
    /// its end (`REST`), and one as long as the remote is left alone. Returns the bytes
    /// received.
    pub fn get(
        &mut self,
        remote: &str,
        local: &Path,
        resume: bool,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<u64, Error> {
        let local_error = |e: std::io::Error| Error::Local(format!("{}: {e}", local.display()));
        let size = self.size(remote).ok();
        let have = if resume { std::fs::metadata(local).map_or(0, |m| m.len()) } else { 0 };
        if resume && size.is_some_and(|s| have >= s) {
            return Ok(0);
        }
        let file =
            if have > 0 { std::fs::OpenOptions::new().append(true).open(local) } else { File::create(local) }
                .map_err(local_error)?;
        self.retrieve(remote, file, have, size.map(|s| s - have), progress)
    }

    /// Uploads `local` to `remote`. With `resume`, a shorter remote file is continued from
    /// its end (`APPE`), and one as long as the local is left alone. Returns the bytes sent.
    pub fn put(
        &mut self,
        local: &Path,
        remote: &str,
        resume: bool,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<u64, Error> {
        let file = File::open(local).map_err(|e| Error::Local(format!("{}: {e}", local.display())))?;
        let len = file.metadata().map_err(|e| Error::Local(e.to_string()))?.len();
        let have = if resume { self.size(remote).unwrap_or(0) } else { 0 };
        if resume && have >= len && have > 0 {
            return Ok(0);
        }
        self.store(remote, file, have, have > 0, progress)
    }

    /// Ends the session: `QUIT`, then the close.
    pub fn quit(mut self) -> Result<(), Error> {
        let now = self.io.now();
        self.run.client().quit(now);
        self.run.on_batch_end(&mut self.io);
        while self.run.driver.conn().is_some() {
            self.tick()?;
        }
        Ok(())
    }
}
