//! The server on a zero-core shard (a [`Handler`]): the control listener, a [`Session`]
//! [`Driver`] per client, and what the sessions ask for: each user's [`Root`], passive
//! listeners, data connections and the transfers on them.
//!
//! - A passive listener takes one connection, and only from the control connection's own
//!   address: any other is closed at once and the listener waits on (no data theft, RFC
//!   2577 5).
//! - A download is spliced by the kernel from the page cache into the data connection
//!   (`Ops::send_file`: no copy through user space); a listing goes through the send queue,
//!   up to its limit, resuming on `Writable`. Once the last byte is in the kernel's hands
//!   the data connection is closed (in the background) and `226` follows at once.
//! - An upload is gathered into 1 MiB writes; the client's close (FIN) completes it (the
//!   rest written), a reset breaks it (`426`).
//! - File-system requests run at once on the shard (they are single system calls on the
//!   root's descriptor).
//! - A transfer whose data connection is not up within `accept_timeout` ends `425`; one
//!   that moves no byte for `data_timeout` ends `426`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Seek, SeekFrom, Write as _};
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use zero_core::machine::{Driver, Machine};
use zero_core::tls::Listeners;
use zero_core::{CloseReason, ConnId, Event as IoEvent, Handler, ListenOptions, ListenerId, Ops, Target};

use super::quota::{Quota, Upload};
use super::{
    DataMode, Event, Fs, FsDone, FsError, ListFormat, Peer, ServerConfig, Session, TransferEnd, TransferKind,
};
use crate::codec::list::{self, Kind};
use crate::data::{Pumped, Sink, Source};
use crate::path::VPath;
use crate::rate::{Bucket, Limits};
use crate::vfs::{Root, Write};
use crate::Perms;

/// What a running transfer moves.
enum Job {
    /// A download or a listing: its bytes come from here.
    Send(Source),
    /// An upload: its bytes go here, charged to the user's quota if it has one.
    Receive(Sink<File>, Option<Upload>),
}

/// A transfer the session asked for.
struct Running {
    job: Job,
    bytes: u64,
    /// Its data connection is TLS.
    tls: bool,
    /// What it moves, and when it was asked for (for the transfer log).
    kind: TransferKind,
    began: Instant,
    /// When it last moved a byte (or began).
    progress: Instant,
    /// What was left of a file download at the last look (`ConnStats::file_left`).
    file_left: Option<u64>,
    /// `150` was sent: the data connection is open and the job started.
    opened: bool,
    /// Its rate limit (`max_rate`), and when it may move bytes again if it is waiting.
    limit: Option<Bucket>,
    throttled: Option<Instant>,
    /// An upload whose last bytes came over its limit: how it ended, told when the limit
    /// allows.
    ended: Option<TransferEnd>,
    /// An upload that cannot go on (over its quota, and undone; a write failed): what else
    /// comes is dropped, and the error follows the client's close (a reset while it still
    /// sends would hide the reply from it).
    refused: Option<FsError>,
}

/// One client.
struct Control {
    driver: Driver<Session>,
    root: Option<Root>,
    /// The user's storage quota.
    quota: Option<Quota>,
    /// The passive listener, waiting for the client's data connection.
    listener: Option<ListenerId>,
    /// The data connection (accepted, or being connected), and whether it is up (connected,
    /// and through its TLS handshake if it has one).
    data: Option<(ConnId, bool)>,
    /// Whether the data connection is (or is to be) TLS, and its handshake is done (the
    /// client may begin it before the transfer command or after `150`, RFC 4217 7: bytes wait
    /// for it); whether the passive listener's connection is to be TLS.
    data_tls: bool,
    data_secured: bool,
    passive_tls: bool,
    transfer: Option<Running>,
    /// Its data timer: the token, and the one armed (one at a time).
    data_token: u64,
    data_timer: Option<zero_core::TimerId>,
}

impl Control {
    /// Arms the data timer for `at`, in place of the one armed before.
    fn arm(&mut self, ops: &mut Ops, at: Instant) {
        if let Some(old) = self.data_timer.replace(ops.timer_at(at, self.data_token)) {
            ops.cancel_timer(old);
        }
    }
}

/// An FTP server on one shard.
pub struct Server {
    config: Arc<ServerConfig>,
    passive_ports: Option<RangeInclusive<u16>>,
    next_port: u16,
    /// Control listeners, and whether each is TLS from the start (implicit FTPS).
    listeners: Listeners,
    sessions: HashMap<ConnId, Control>,
    /// Data connections and passive listeners, and the control connection each serves.
    data_conns: HashMap<ConnId, ConnId>,
    passive: HashMap<ListenerId, ConnId>,
    /// Timer tokens: each session's driver's, and its data timer's.
    timers: HashMap<u64, ConnId>,
    data_timers: HashMap<u64, ConnId>,
    next_token: u64,
    touched: Vec<ConnId>,
    /// The transfer log (each shard appends whole lines with `O_APPEND`).
    xferlog: Option<File>,
    /// This shard's share of `max_total_rate`.
    total: Option<Bucket>,
}

impl Server {
    /// A server under `config`.
    pub fn new(config: ServerConfig) -> Server {
        Server {
            passive_ports: None,
            next_port: 0,
            listeners: Listeners::default(),
            sessions: HashMap::new(),
            data_conns: HashMap::new(),
            passive: HashMap::new(),
            timers: HashMap::new(),
            data_timers: HashMap::new(),
            next_token: 1,
            touched: Vec::new(),
            xferlog: None,
            total: config.max_total_rate.map(|rate| Bucket::new(rate, Instant::now())),
            config: Arc::new(config),
        }
    }

    /// Takes a `1/shards` share of `max_total_rate` (each shard of a cluster limits its own
    /// transfers, shared nothing); the whole of it by default.
    pub fn with_rate_share(mut self, shards: usize) -> Server {
        let share = self.config.max_total_rate.map(|rate| rate / shards.max(1) as u64);
        self.total = share.map(|rate| Bucket::new(rate, Instant::now()));
        self
    }

    /// Opens the transfer log of the configuration, if it names one.
    pub fn open_xferlog(mut self) -> std::io::Result<Server> {
        if let Some(path) = &self.config.xferlog {
            self.xferlog = Some(std::fs::OpenOptions::new().create(true).append(true).open(path)?);
        }
        Ok(self)
    }

    /// Passive listeners take ports from `ports` (for a firewall or NAT), trying `first`
    /// first (shards sharing a range start apart), the next one free after; any free port
    /// without.
    pub fn with_passive_ports(mut self, ports: RangeInclusive<u16>, first: u16) -> Server {
        self.next_port = first.clamp(*ports.start(), *ports.end());
        self.passive_ports = Some(ports);
        self
    }

    /// Listens for control connections on `addr`; returns the address bound.
    pub fn listen(
        &mut self,
        ops: &mut Ops,
        addr: SocketAddr,
        opts: &ListenOptions,
    ) -> zero_core::Result<SocketAddr> {
        self.listeners.listen(ops, addr, opts)
    }

    /// Listens for implicit FTPS (TLS from the first byte, port 990 by custom) on `addr`.
    pub fn listen_tls(
        &mut self,
        ops: &mut Ops,
        addr: SocketAddr,
        opts: &ListenOptions,
    ) -> zero_core::Result<SocketAddr> {
        self.listeners.listen_tls(ops, addr, opts, self.config.tls.clone())
    }

    /// Open sessions.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    fn accept(&mut self, ops: &mut Ops, conn: ConnId, tls: bool) {
        let unknown = SocketAddr::from(([0, 0, 0, 0], 0));
        let remote = ops.peer_addr(conn).unwrap_or(unknown);
        let local = ops.local_addr(conn).unwrap_or(unknown);
        let peer = Peer { remote, local, tls };
        // ABOR comes as urgent data: keep it in the stream.
        let _ = ops.set_oob_inline(conn, true);
        let token = self.next_token;
        self.next_token += 1;
        // Server sessions never connect: the target is never used.
        let mut driver = Driver::new(Session::new(self.config.clone(), peer), Target::tcp(unknown), token);
        driver.attach(ops, conn);
        let data_token = self.next_token;
        self.next_token += 1;
        let control = Control {
            driver,
            root: None,
            quota: None,
            listener: None,
            data: None,
            data_tls: false,
            data_secured: false,
            passive_tls: false,
            transfer: None,
            data_token,
            data_timer: None,
        };
        self.sessions.insert(conn, control);
        self.timers.insert(token, conn);
        self.data_timers.insert(data_token, conn);
        self.touched.push(conn);
    }

    /// A connection on a session's passive listener.
    fn accept_data(&mut self, ops: &mut Ops, conn: ConnId, listener: ListenerId) {
        let Some(&ctrl) = self.passive.get(&listener) else { return };
        let Some(c) = self.sessions.get_mut(&ctrl) else { return };
        let from = ops.peer_addr(conn).ok().map(|a| a.ip());
        if !from.is_some_and(|ip| c.driver.machine_ref().is_client(ip)) || c.data.is_some() {
            // RFC 2577 5: a data connection from elsewhere is somebody else's.
            tracing::warn!(?from, "data connection refused: not from the control connection's address");
            let _ = ops.close_now(conn);
            return;
        }
        self.passive.remove(&listener);
        c.listener = None;
        let _ = ops.close_listener(listener);
        // RFC 4217 7: under PROT P the server is the data connection's TLS server, from its
        // first byte.
        let tls = c.passive_tls;
        c.data = Some((conn, true));
        c.data_tls = tls;
        self.data_conns.insert(conn, ctrl);
        if tls {
            let upgraded = self.config.tls.clone().map(|cfg| ops.tls_accept_upgrade(conn, cfg));
            if !matches!(upgraded, Some(Ok(()))) {
                return self.end(ops, ctrl, TransferEnd::NoConnection);
            }
        }
        self.start(ops, ctrl);
    }

    /// Hands the session's events to the file system, the listeners and the transfers.
    fn serve(&mut self, ops: &mut Ops, ctrl: ConnId) {
        let now = ops.now();
        loop {
            let Some(c) = self.sessions.get_mut(&ctrl) else { return };
            let Some(event) = c.driver.machine().poll_event() else { return };
            match event {
                Event::LoggedIn { user, root, .. } => match Root::open(&root) {
                    Ok(r) => {
                        c.quota = self.config.users.get(&user).and_then(|u| u.quota.clone());
                        // The first login under a root counts what it holds.
                        let used = c.quota.as_ref().map(|q| q.usage.used());
                        tracing::info!(user, root = %root.display(), ?used, "logged in");
                        c.root = Some(r);
                    }
                    Err(e) => {
                        tracing::error!(user, root = %root.display(), error = %e, "the user's root cannot be opened");
                        let _ = ops.close_now(ctrl);
                    }
                },
                Event::Passive { tls } => {
                    c.passive_tls = tls;
                    self.drop_data(ops, ctrl);
                    let addr = self.open_passive(ops, ctrl);
                    if let Some(c) = self.sessions.get_mut(&ctrl) {
                        c.driver.machine().passive_done(now, addr);
                    }
                }
                Event::DropData => self.drop_data(ops, ctrl),
                Event::Fs(request) => {
                    let result = match &c.root {
                        Some(root) => fs(root, request, c.quota.as_ref()),
                        None => Err(FsError::Local),
                    };
                    c.driver.machine().fs_done(now, result);
                }
                Event::Transfer(t) => {
                    let job = match &c.root {
                        Some(root) => {
                            prepare(root, &t.kind, c.driver.machine_ref().perms(), c.quota.as_ref())
                        }
                        None => Err(FsError::Local),
                    };
                    let job = match job {
                        Ok(job) => job,
                        Err(e) => {
                            self.drop_data(ops, ctrl);
                            if let Some(c) = self.sessions.get_mut(&ctrl) {
                                c.driver.machine().transfer_done(now, TransferEnd::Fs(e));
                            }
                            continue;
                        }
                    };
                    let Some(c) = self.sessions.get_mut(&ctrl) else { return };
                    c.transfer = Some(Running {
                        job,
                        tls: t.tls,
                        kind: t.kind.clone(),
                        began: now,
                        bytes: 0,
                        progress: now,
                        file_left: None,
                        opened: false,
                        limit: self.config.max_rate.map(|rate| Bucket::new(rate, now)),
                        throttled: None,
                        ended: None,
                        refused: None,
                    });
                    c.arm(ops, now + self.config.accept_timeout);
                    if let DataMode::Active(addr) = t.mode {
                        match ops.tcp_connect_timeout(addr, self.config.accept_timeout) {
                            Ok(conn) => {
                                c.data = Some((conn, false));
                                c.data_tls = t.tls;
                                self.data_conns.insert(conn, ctrl);
                            }
                            Err(_) => {
                                c.transfer = None;
                                c.driver.machine().transfer_done(now, TransferEnd::NoConnection);
                                continue;
                            }
                        }
                    }
                    self.start(ops, ctrl);
                }
                Event::Abort => self.end(ops, ctrl, TransferEnd::Broken),
            }
        }
    }

    /// Opens a passive listener on the control connection's local address.
    fn open_passive(&mut self, ops: &mut Ops, ctrl: ConnId) -> Option<SocketAddr> {
        let ip = self.sessions.get(&ctrl)?.driver.machine_ref().peer().local.ip();
        let listener = match self.passive_ports.clone() {
            None => ops.tcp_listen(SocketAddr::new(ip, 0)).ok()?,
            Some(range) => {
                let span = usize::from(range.end() - range.start()) + 1;
                (0..span).find_map(|_| {
                    let port = self.next_port;
                    self.next_port = if port >= *range.end() { *range.start() } else { port + 1 };
                    ops.tcp_listen(SocketAddr::new(ip, port)).ok()
                })?
            }
        };
        let addr = ops.listener_addr(listener).ok()?;
        self.passive.insert(listener, ctrl);
        self.sessions.get_mut(&ctrl)?.listener = Some(listener);
        Some(addr)
    }

    /// Closes the session's passive listener and data connection.
    fn drop_data(&mut self, ops: &mut Ops, ctrl: ConnId) {
        let Some(c) = self.sessions.get_mut(&ctrl) else { return };
        if let Some(l) = c.listener.take() {
            self.passive.remove(&l);
            let _ = ops.close_listener(l);
        }
        if let Some((conn, _)) = c.data.take() {
            self.data_conns.remove(&conn);
            let _ = ops.close_now(conn);
        }
        c.data_secured = false;
    }

    /// Starts the transfer once its data connection is up: `150`, then the bytes.
    fn start(&mut self, ops: &mut Ops, ctrl: ConnId) {
        let Some(c) = self.sessions.get_mut(&ctrl) else { return };
        let (Some(t), Some((conn, true))) = (&mut c.transfer, c.data) else { return };
        if t.opened {
            return;
        }
        let limited = self.config.max_rate.into_iter().chain(self.total.as_ref().map(Bucket::rate)).min();
        if let (Some(rate), Job::Receive(..)) = (limited, &t.job) {
            // A limited upload: what the kernel takes ahead of the limit is a burst the limit
            // cannot shape, so it is kept to a quarter second's worth.
            let _ = ops.set_recv_buffer(conn, (rate / 4).clamp(16 * 1024, 4 << 20) as usize);
        }
        if t.tls != c.data_tls {
            // PROT changed between PASV and the transfer: the connection is not what it must be.
            return self.end(ops, ctrl, TransferEnd::NoConnection);
        }
        t.opened = true;
        t.progress = ops.now();
        c.arm(ops, ops.now() + self.config.data_timeout);
        c.driver.machine().transfer_opened(ops.now());
        self.touched.push(ctrl);
        self.send_more(ops, ctrl);
    }

    /// Moves a download on: a file is handed to the kernel whole (`Event::FileSent` comes
    /// when it is in the socket's buffer); a listing fills the send queue to its limit (and
    /// goes on at `Event::Writable`). The data connection closes after the last byte.
    fn send_more(&mut self, ops: &mut Ops, ctrl: ConnId) {
        let Some(c) = self.sessions.get_mut(&ctrl) else { return };
        let (Some(t), Some((conn, true))) = (&mut c.transfer, c.data) else { return };
        let Job::Send(source) = &mut t.job else { return };
        if t.tls && !c.data_secured {
            return;
        }
        let now = ops.now();
        let mut limits = Limits([t.limit.as_mut(), self.total.as_mut()]);
        let budget = limits.allowance(now);
        let before = t.bytes + source.spliced();
        let pumped = source.pump(ops, conn, t.tls, &mut t.bytes, budget);
        let moved = t.bytes + source.spliced() - before;
        limits.spend(now, moved);
        if moved > 0 {
            t.progress = now;
        }
        match pumped {
            Pumped::Waiting if budget != u64::MAX && source.spliced() == 0 && moved >= budget => {
                // Out of allowance: on again when the limits allow.
                let at = limits.ready_at(now);
                t.throttled = Some(at);
                c.arm(ops, at);
            }
            Pumped::Waiting => {}
            Pumped::Done => {
                // Every byte is in the kernel's hands (queued, or spliced and reported): the
                // close goes on by itself (the rest sent, then FIN, then the client's FIN
                // awaited), and 226 goes now, as it does after vsftpd's close(). Waiting for
                // the client's FIN would hang a client that closes after reading 226.
                let bytes = t.bytes;
                c.data = None;
                c.data_secured = false;
                self.data_conns.remove(&conn);
                let _ = ops.close(conn);
                self.end(ops, ctrl, TransferEnd::Complete(bytes));
            }
            Pumped::Broken => self.end(ops, ctrl, TransferEnd::Broken),
            Pumped::Unreadable => self.end(ops, ctrl, TransferEnd::Fs(FsError::Local)),
        }
    }

    /// A spliced piece of a download is in the socket's buffer: the next, or the close
    /// (`226` follows it).
    fn file_sent(&mut self, ops: &mut Ops, ctrl: ConnId) {
        let Some(c) = self.sessions.get_mut(&ctrl) else { return };
        let (Some(t), Some((_, true))) = (&mut c.transfer, c.data) else { return };
        if let Job::Send(source) = &mut t.job {
            source.file_sent(&mut t.bytes);
        }
        self.send_more(ops, ctrl);
    }

    /// Ends the transfer: its data connection closed, the session told. What an upload
    /// received is written, whatever the end (a broken upload resumes from it); an upload
    /// whose last bytes cannot be written is not complete.
    fn end(&mut self, ops: &mut Ops, ctrl: ConnId, mut end: TransferEnd) {
        self.drop_data(ops, ctrl);
        let Some(c) = self.sessions.get_mut(&ctrl) else { return };
        let Some(mut t) = c.transfer.take() else { return };
        if let Job::Receive(sink, upload) = &mut t.job {
            if let Err(e) = sink.finish() {
                tracing::warn!(error = %e, "the end of an upload cannot be written");
                if let TransferEnd::Complete(_) = end {
                    end = TransferEnd::Fs(FsError::from(&e));
                }
            }
            if let (Some(upload), Ok(meta)) = (upload, sink.to.metadata()) {
                upload.settle(meta.len());
            }
        }
        c.driver.machine().transfer_done(ops.now(), end);
        self.touched.push(ctrl);
        let (path, outgoing) = match &t.kind {
            TransferKind::Retrieve(p, _) => (p, true),
            TransferKind::Store(p, _) => (p, false),
            TransferKind::List(..) => return,
        };
        if let Some(log) = &mut self.xferlog {
            let session = c.driver.machine_ref();
            let (user, anonymous) = session.user_name().unwrap_or_default();
            let record = super::xferlog::Record {
                at: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64),
                seconds: ops.now().duration_since(t.began).as_secs(),
                host: session.peer().remote.ip().to_canonical().to_string(),
                bytes: t.bytes,
                path: &path.to_string(),
                outgoing,
                anonymous,
                user,
                complete: matches!(end, TransferEnd::Complete(_)),
            };
            if let Err(e) = writeln!(log, "{}", record.line()) {
                tracing::warn!(error = %e, "the transfer log cannot be written");
            }
        }
    }

    /// An event of a data connection.
    fn on_data_event(&mut self, ops: &mut Ops, ctrl: ConnId, event: &IoEvent<'_>) {
        match event {
            IoEvent::Connected { conn } => {
                let Some(c) = self.sessions.get_mut(&ctrl) else { return };
                if c.data_tls {
                    let upgraded = self.config.tls.clone().map(|cfg| ops.tls_accept_upgrade(*conn, cfg));
                    if !matches!(upgraded, Some(Ok(()))) {
                        return self.end(ops, ctrl, TransferEnd::NoConnection);
                    }
                }
                if let Some((_, up)) = &mut c.data {
                    *up = true;
                }
                self.start(ops, ctrl);
            }
            IoEvent::Upgraded { conn } => {
                // RFC 4217 10.2: a data connection must resume the control connection's
                // session, or anyone who learned the port could take the transfer.
                let resumed = ops.tls_info(*conn).ok().flatten().is_some_and(|i| i.resumed);
                if !resumed {
                    tracing::warn!(
                        "data connection refused: its TLS session is not the control connection's"
                    );
                    return self.end(ops, ctrl, TransferEnd::NoSessionReuse);
                }
                if let Some(c) = self.sessions.get_mut(&ctrl) {
                    c.data_secured = true;
                }
                self.send_more(ops, ctrl);
            }
            IoEvent::ConnectFailed { conn, .. } => {
                self.data_conns.remove(conn);
                if let Some(c) = self.sessions.get_mut(&ctrl) {
                    c.data = None;
                    c.data_secured = false;
                }
                self.end(ops, ctrl, TransferEnd::NoConnection);
            }
            IoEvent::Writable { .. } => self.send_more(ops, ctrl),
            IoEvent::FileSent { .. } => self.file_sent(ops, ctrl),
            IoEvent::Data { data, .. } => {
                let Some(c) = self.sessions.get_mut(&ctrl) else { return };
                let Some(Running {
                    job: Job::Receive(sink, upload),
                    bytes,
                    progress,
                    limit,
                    throttled,
                    kind,
                    refused,
                    ..
                }) = &mut c.transfer
                else {
                    return;
                };
                let now = ops.now();
                *progress = now;
                if refused.is_some() {
                    return;
                }
                if upload.as_mut().is_some_and(|u| !u.charge(data.len() as u64)) {
                    tracing::info!(path = ?kind, "upload over the user's quota: undone");
                    if let (Some(u), TransferKind::Store(path, how), Some(root)) = (upload, &*kind, &c.root) {
                        undo_upload(root, path, *how, sink, u);
                    }
                    *refused = Some(FsError::OverQuota);
                    return;
                }
                *bytes += data.len() as u64;
                if let Err(e) = sink.write(data) {
                    tracing::warn!(error = %e, "write failed during an upload");
                    *refused = Some(FsError::from(&e));
                    sink.discard();
                }
                let mut limits = Limits([limit.as_mut(), self.total.as_mut()]);
                limits.spend(now, data.len() as u64);
                // Over the limit: the client waits in TCP's window until it is paid back.
                let over = (limits.allowance(now) == 0).then(|| limits.ready_at(now));
                if let Some(at) = over {
                    if throttled.replace(at).is_none() {
                        if let Some((data_conn, _)) = c.data {
                            let _ = ops.hold_reads(data_conn, true);
                        }
                    }
                    c.arm(ops, at);
                }
            }
            IoEvent::Closed { conn, reason } => {
                self.data_conns.remove(conn);
                let Some(c) = self.sessions.get_mut(&ctrl) else { return };
                c.data = None;
                c.data_secured = false;
                let Some(t) = &mut c.transfer else { return };
                if let Some(e) = t.refused {
                    return self.end(ops, ctrl, TransferEnd::Fs(e));
                }
                let end = match (&t.job, reason) {
                    (Job::Receive(..), CloseReason::PeerClosed) => TransferEnd::Complete(t.bytes),
                    _ => TransferEnd::Broken,
                };
                if let (Some(at), TransferEnd::Complete(_)) = (t.throttled, end) {
                    // The last bytes came over the limit: the 226 waits as long as they
                    // would have (as vsftpd's does), so the client sees the rate.
                    t.ended = Some(end);
                    c.arm(ops, at);
                    return;
                }
                self.end(ops, ctrl, end);
            }
            _ => {}
        }
    }

    /// A data timer: the data connection is not up in time, or the transfer stalled.
    fn data_timer(&mut self, ops: &mut Ops, ctrl: ConnId) {
        let now = ops.now();
        let Some(c) = self.sessions.get_mut(&ctrl) else { return };
        c.data_timer = None;
        let Some(t) = &c.transfer else { return };
        if !t.opened {
            let due = t.progress + self.config.accept_timeout;
            if now < due {
                c.arm(ops, due);
                return;
            }
            tracing::info!("no data connection in time");
            return self.end(ops, ctrl, TransferEnd::NoConnection);
        }
        // A transfer held back by its rate limit goes on once the limit allows.
        if c.transfer.as_ref().and_then(|t| t.throttled).is_some_and(|at| at <= now) {
            if let Some(t) = &mut c.transfer {
                t.throttled = None;
                t.progress = now;
                if let Some(end) = t.ended.take() {
                    return self.end(ops, ctrl, end);
                }
            }
            if let Some((conn, _)) = c.data {
                let _ = ops.hold_reads(conn, false);
            }
            self.send_more(ops, ctrl);
            let Some(c) = self.sessions.get_mut(&ctrl) else { return };
            if let Some(at) = c.transfer.as_ref().and_then(|t| t.throttled) {
                c.arm(ops, at);
                return;
            }
        }
        let Some(c) = self.sessions.get_mut(&ctrl) else { return };
        // A file in the kernel's hands moves if less of it is left than at the last look.
        let left = c.data.and_then(|(conn, _)| ops.conn_stats(conn).ok()).and_then(|s| s.file_left);
        let Some(t) = &mut c.transfer else { return };
        if left.is_some() && left != t.file_left {
            t.file_left = left;
            t.progress = now;
        }
        let due = t.progress + self.config.data_timeout;
        if let Some(at) = t.throttled {
            c.arm(ops, at.min(due));
            return;
        }
        if now < due {
            c.arm(ops, due);
            return;
        }
        tracing::info!(bytes = t.bytes, "data connection stalled");
        self.end(ops, ctrl, TransferEnd::Broken);
    }

    fn forget(&mut self, ops: &mut Ops, ctrl: ConnId) {
        self.drop_data(ops, ctrl);
        self.sessions.remove(&ctrl);
        self.timers.retain(|_, c| *c != ctrl);
        self.data_timers.retain(|_, c| *c != ctrl);
    }
}

/// A file-system request on `root`; what it frees goes back to `quota`.
fn fs(root: &Root, request: Fs, quota: Option<&Quota>) -> Result<FsDone, FsError> {
    let io = |e: std::io::Error| FsError::from(&e);
    let freed = |bytes: u64| {
        if let Some(q) = quota {
            q.usage.give_back(bytes);
        }
        FsDone::Ok
    };
    match request {
        Fs::ChangeDir(p) => root.is_dir(&p).then_some(FsDone::Ok).ok_or(FsError::NotFound),
        Fs::MakeDir(p) => root.mkdir(&p).map(|()| FsDone::Ok).map_err(io),
        Fs::RemoveDir(p) => root.rmdir(&p).map(|()| FsDone::Ok).map_err(io),
        Fs::Delete(p) => root.remove(&p).map(freed).map_err(io),
        Fs::RenameFrom(p) => root.stat(&p).map(|_| FsDone::Ok).map_err(io),
        Fs::Rename(from, to) => root.rename(&from, &to).map(freed).map_err(io),
        Fs::Stat(p) => root.stat(&p).map(FsDone::Stat).map_err(io),
        Fs::List(p) => list_entries(root, &p).map(FsDone::List).map_err(io),
    }
}

/// A directory's entries, or a file's own.
fn list_entries(root: &Root, path: &VPath) -> std::io::Result<Vec<list::Entry>> {
    let entry = root.stat(path)?;
    if entry.kind == Kind::Dir {
        root.list(path)
    } else {
        Ok(vec![entry])
    }
}

/// An upload over its quota taken back: a file it made (or emptied) removed, one it added
/// to cut back to its size before.
fn undo_upload(root: &Root, path: &VPath, how: Write, sink: &mut Sink<File>, upload: &mut Upload) {
    sink.discard();
    let keep = upload.undo();
    let undone = match how {
        Write::Truncate | Write::New => root.remove(path).map(drop),
        Write::At(_) | Write::Append => sink.to.set_len(keep),
    };
    if let Err(e) = undone {
        tracing::warn!(error = %e, "an upload over quota cannot be undone");
    }
}

/// Opens what a transfer reads or writes; an upload is refused when its quota is full.
fn prepare(root: &Root, kind: &TransferKind, perms: Perms, quota: Option<&Quota>) -> Result<Job, FsError> {
    let io = |e: std::io::Error| FsError::from(&e);
    match kind {
        TransferKind::Retrieve(path, offset) => {
            let file = root.open_read(path).map_err(io)?;
            let size = file.metadata().map_err(io)?.len();
            let offset = (*offset).min(size);
            Ok(Job::Send(Source::File { file, offset, len: size - offset, spliced: 0, started: false }))
        }
        TransferKind::Store(path, how) => {
            if quota.is_some_and(|q| !q.room()) {
                return Err(FsError::OverQuota);
            }
            // What STOR empties goes back to the quota.
            let emptied = match (quota, how) {
                (Some(_), Write::Truncate) => root.file_size(path),
                _ => 0,
            };
            let mut file = root.open_write(path, *how).map_err(io)?;
            let size = file.metadata().map_err(io)?.len();
            let at = match how {
                Write::At(offset) => file.seek(SeekFrom::Start(*offset)).map_err(io)?,
                Write::Append => size,
                Write::Truncate | Write::New => 0,
            };
            let upload = quota.map(|q| {
                q.usage.give_back(emptied);
                Upload::new(q.clone(), size, at)
            });
            Ok(Job::Receive(Sink::new(file), upload))
        }
        TransferKind::List(path, format) => {
            let entries = list_entries(root, path).map_err(io)?;
            if *format == ListFormat::Facts && root.stat(path).map_err(io)?.kind != Kind::Dir {
                return Err(FsError::Refused); // RFC 3659 7.2: MLSD lists directories only
            }
            let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
            let mut out = String::new();
            for e in &entries {
                let line = match format {
                    ListFormat::Long => list::list_line(e, now),
                    ListFormat::Names => e.name.clone(),
                    ListFormat::Facts => list::mlsx_line(e, perms, false),
                };
                out.push_str(&line);
                out.push_str("\r\n");
            }
            Ok(Job::Send(Source::Bytes(out.into_bytes(), 0)))
        }
    }
}

impl Handler for Server {
    fn on_event(&mut self, ops: &mut Ops, event: IoEvent<'_>) {
        let conn = match &event {
            IoEvent::Accepted { conn, listener } => match self.listeners.tls(*listener) {
                Some(tls) => return self.accept(ops, *conn, tls),
                None => return self.accept_data(ops, *conn, *listener),
            },
            IoEvent::Connected { conn }
            | IoEvent::ConnectFailed { conn, .. }
            | IoEvent::Data { conn, .. }
            | IoEvent::Writable { conn }
            | IoEvent::FileSent { conn }
            | IoEvent::Upgraded { conn }
            | IoEvent::Closed { conn, .. } => *conn,
            IoEvent::Timer { token, .. } if self.data_timers.contains_key(token) => {
                let ctrl = self.data_timers[token];
                self.data_timer(ops, ctrl);
                self.serve(ops, ctrl);
                self.touched.push(ctrl);
                return;
            }
            IoEvent::Timer { token, .. } => match self.timers.get(token) {
                Some(conn) => *conn,
                None => return,
            },
            _ => return,
        };
        if let Some(&ctrl) = self.data_conns.get(&conn) {
            self.on_data_event(ops, ctrl, &event);
            self.serve(ops, ctrl);
            self.touched.push(ctrl);
            return;
        }
        let Some(c) = self.sessions.get_mut(&conn) else { return };
        c.driver.on_event(ops, &event);
        if let IoEvent::Closed { .. } = event {
            // The session heard its close (and asked for any transfer to stop).
            self.serve(ops, conn);
            self.forget(ops, conn);
            return;
        }
        self.serve(ops, conn);
        self.touched.push(conn);
    }

    /// Every client is told `421` and closed; transfers in progress are aborted (a client
    /// resumes them from the next server: `REST`).
    fn on_drain(&mut self, ops: &mut Ops) {
        let ctrls: Vec<ConnId> = self.sessions.keys().copied().collect();
        for ctrl in ctrls {
            if let Some(c) = self.sessions.get_mut(&ctrl) {
                c.driver.machine().shut_down();
            }
            self.serve(ops, ctrl);
            if let Some(c) = self.sessions.get_mut(&ctrl) {
                c.driver.pump(ops);
            }
        }
        ops.close_all();
    }

    fn on_batch_end(&mut self, ops: &mut Ops) {
        self.touched.sort_unstable();
        self.touched.dedup();
        for conn in std::mem::take(&mut self.touched) {
            if let Some(c) = self.sessions.get_mut(&conn) {
                c.driver.pump(ops);
                if c.driver.machine_ref().is_drained() && c.driver.conn().is_none() {
                    self.forget(ops, conn);
                }
            }
        }
    }
}
