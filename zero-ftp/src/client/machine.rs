//! One FTP client session (RFC 959), sans I/O: zero-core's [`Machine`] contract for the
//! control connection; the data connections are its owner's, opened when the machine asks
//! ([`Event::Connect`], [`Event::Listen`]) and reported back.
//!
//! Its life: the greeting; `AUTH TLS` and the upgrade (explicit FTPS; a refusal ends the
//! session before the password is sent); `USER`, `PASS`; under TLS `PBSZ 0` and `PROT P`
//! (every data connection TLS too, RFC 4217 9); `FEAT`, `OPTS UTF8 ON` where offered, `TYPE
//! I`; then [`Event::Ready`] and the requests, one at a time, in order.
//!
//! A transfer: `EPSV` (`PASV` when the server does not know it, on IPv4) and a connection to
//! the port it names, on the control connection's server address: the address in a `227`
//! is not used, as curl does by default, so a server cannot point the client elsewhere (and
//! one behind NAT that names its private address still works). Or, active: a listener, and
//! `EPRT` (`PORT` on IPv4). Then `REST` when resuming, and the command once the data
//! connection is up. An upload's bytes go after the server's `1xx`. The transfer is done
//! when both the final reply and the data connection's end are in: a `2yz` with a data
//! connection that broke (a reset, TLS without close_notify) is [`Error::DataLost`].
//!
//! Timeouts: each reply within `command_timeout`; a transfer that moves nothing for
//! `data_timeout` fails, and so does the session (the server's state is unknown: its owner
//! reconnects).

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use zero_core::machine::{Closed, Machine, Outbox, Upgrade};

use super::{ClientConfig, Error, Event, Features, Listing, Request, RequestId, Security};
use crate::codec::command::{parse_epsv_reply, parse_pasv_reply};
use crate::codec::reply::{Reply, ReplyReader};

/// The reply awaited next, and what it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Greeting,
    AuthTls,
    User,
    Pass,
    Pbsz,
    Prot,
    Feat,
    Utf8,
    Type,
    /// The reply to a request's one command.
    Reply,
    /// `RNFR`'s `350`.
    RenameFrom,
    Epsv,
    Pasv,
    Port,
    Rest,
    /// A transfer command's `1xx`, or its final reply.
    Transfer,
    Quit,
}

/// The data connection of the running transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Data {
    /// Not asked for yet (or the command needs none).
    None,
    /// Asked for (connecting, or listening).
    Opening,
    /// Connected (TCP).
    Connected,
    /// Its TLS handshake under way.
    Securing,
    /// Up (and through its TLS handshake).
    Open,
    /// Ended: cleanly (the sender's FIN, with TLS close_notify), or not.
    Ended { clean: bool },
}

/// The request in progress.
#[derive(Debug)]
struct Job {
    id: RequestId,
    request: Request,
    data: Data,
    /// The transfer command's `1xx` came.
    started: bool,
    /// The final reply, once in.
    reply: Option<Reply>,
}

/// One client session.
pub struct Client {
    config: ClientConfig,
    server: IpAddr,
    features: Features,
    /// `PROT P` is in force.
    protected: bool,
    /// The server does not know `EPSV`: `PASV` from here on.
    no_epsv: bool,
    waiting: VecDeque<(RequestId, Request)>,
    job: Option<Job>,
    expect: Option<Expect>,
    ready: bool,
    connected: bool,
    used: bool,
    quitting: bool,
    /// The session is over (for good): requests fail with this.
    over: Option<Error>,
    next_id: u64,
    replies: ReplyReader,
    out: Outbox,
    events: VecDeque<Event>,
    upgrade: Option<Upgrade>,
    close: bool,
    /// When the awaited reply is due.
    reply_due: Option<Instant>,
    /// When the running transfer last moved a byte.
    progress: Option<Instant>,
}

impl Client {
    /// A session under `config` with the server at `server` (the address the control
    /// connection goes to: data connections go there too).
    pub fn new(config: ClientConfig, server: IpAddr) -> Client {
        Client {
            config,
            server,
            features: Features::default(),
            protected: false,
            no_epsv: false,
            waiting: VecDeque::new(),
            job: None,
            expect: None,
            ready: false,
            connected: false,
            used: false,
            quitting: false,
            over: None,
            next_id: 0,
            replies: ReplyReader::new(),
            out: Outbox::default(),
            events: VecDeque::new(),
            upgrade: None,
            close: false,
            reply_due: None,
            progress: None,
        }
    }

    /// Queues a request; its [`Event::Done`] comes once it is done with.
    pub fn request(&mut self, now: Instant, request: Request) -> RequestId {
        self.next_id += 1;
        let id = RequestId(self.next_id);
        self.waiting.push_back((id, request));
        self.next(now);
        id
    }

    /// Ends the session after the requests given so far: `QUIT`.
    pub fn quit(&mut self, now: Instant) {
        self.quitting = true;
        self.next(now);
    }

    /// What the server offered in `FEAT`.
    pub fn features(&self) -> &Features {
        &self.features
    }

    /// Whether `ip` is the server's (an active-mode data connection must come from it).
    pub fn is_server(&self, ip: IpAddr) -> bool {
        ip.to_canonical() == self.server.to_canonical()
    }

    /// Whether the session ended for good (and why).
    pub fn ended(&self) -> Option<&Error> {
        self.over.as_ref()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The active-mode listener is up at `addr` (or could not be opened: why).
    pub fn listening(&mut self, now: Instant, addr: Result<SocketAddr, String>) {
        if !matches!(&self.job, Some(j) if j.data == Data::Opening) {
            return;
        }
        match addr {
            Ok(addr) => {
                // RFC 2428 2: EPRT for IPv6; PORT, which every server knows, for IPv4.
                let line = match addr {
                    SocketAddr::V4(a) => {
                        let [h1, h2, h3, h4] = a.ip().octets();
                        let [p1, p2] = a.port().to_be_bytes();
                        format!("PORT {h1},{h2},{h3},{h4},{p1},{p2}")
                    }
                    SocketAddr::V6(a) => format!("EPRT |2|{}|{}|", a.ip(), a.port()),
                };
                self.command(now, Expect::Port, &line);
            }
            Err(why) => self.fail(now, Error::DataConnection(why)),
        }
    }

    /// The data connection's TCP connection is up: the command may go.
    pub fn data_connected(&mut self, now: Instant) {
        let Some(job) = &mut self.job else { return };
        if job.data != Data::Opening {
            return;
        }
        job.data = Data::Connected;
        self.progress = Some(now);
        if !job.started && self.expect.is_none() {
            self.transfer_command(now);
        }
        self.secure(now);
    }

    /// The data connection's TLS handshake is done: bytes may flow.
    pub fn data_opened(&mut self, now: Instant) {
        if let Some(job) = &mut self.job {
            if job.data == Data::Securing {
                self.open(now);
            }
        }
    }

    /// Once the data connection is up and the server said `1xx`: under `PROT P`, the TLS
    /// handshake ([`Event::Secure`]), else the bytes. The handshake waits for the `1xx`, as
    /// curl and ftplib do: servers such as vsftpd and pyftpdlib begin it only once they have
    /// the command.
    fn secure(&mut self, now: Instant) {
        let Some(job) = &mut self.job else { return };
        if job.data != Data::Connected || !job.started {
            return;
        }
        if self.protected {
            job.data = Data::Securing;
            self.events.push_back(Event::Secure);
        } else {
            self.open(now);
        }
    }

    fn open(&mut self, now: Instant) {
        let Some(job) = &mut self.job else { return };
        job.data = Data::Open;
        self.progress = Some(now);
        if matches!(job.request, Request::Store { .. }) {
            self.events.push_back(Event::Send);
        }
    }

    /// Bytes moved on the data connection.
    pub fn data_progress(&mut self, now: Instant) {
        if self.progress.is_some() {
            self.progress = Some(now);
        }
    }

    /// The data connection ended: `clean` when the sender ended it properly (for a download,
    /// the server's FIN, after TLS close_notify; for an upload, the client's own close after
    /// its last byte), or could not be opened.
    pub fn data_closed(&mut self, now: Instant, clean: bool) {
        let Some(job) = &mut self.job else { return };
        match job.data {
            Data::Opening if !job.started => {
                job.data = Data::Ended { clean: false };
                if self.expect.is_none() {
                    return self.fail(now, Error::DataConnection("it could not be made".into()));
                }
            }
            Data::Opening | Data::Connected | Data::Securing | Data::Open => job.data = Data::Ended { clean },
            _ => return,
        }
        self.settle(now);
    }

    fn command(&mut self, now: Instant, expect: Expect, line: &str) {
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
        self.expect = Some(expect);
        self.reply_due = Some(now + self.config.command_timeout);
    }

    /// Starts the next request, if the session is free for it.
    fn next(&mut self, now: Instant) {
        if let Some(error) = self.over.clone() {
            for (id, _) in self.waiting.drain(..) {
                self.events.push_back(Event::Done { id, result: Err(error.clone()) });
            }
            return;
        }
        if !self.ready || self.job.is_some() || self.expect.is_some() {
            return;
        }
        let Some((id, request)) = self.waiting.pop_front() else {
            if self.quitting {
                self.command(now, Expect::Quit, "QUIT");
            }
            return;
        };
        let args: &[&String] = match &request {
            Request::ChangeDir(p)
            | Request::MakeDir(p)
            | Request::RemoveDir(p)
            | Request::Delete(p)
            | Request::Size(p)
            | Request::ModTime(p)
            | Request::Facts(p)
            | Request::Quote(p)
            | Request::Retrieve { path: p, .. }
            | Request::Store { path: p, .. } => &[p],
            Request::Rename { from, to } => &[from, to],
            Request::List { path: Some(p), .. } => &[p],
            Request::PrintDir | Request::List { path: None, .. } => &[],
        };
        if let Some(bad) = args.iter().find(|a| a.contains(['\r', '\n'])) {
            let error = Error::BadArgument(bad.to_string());
            self.events.push_back(Event::Done { id, result: Err(error) });
            return self.next(now);
        }
        let line = match &request {
            Request::ChangeDir(p) => format!("CWD {p}"),
            Request::PrintDir => "PWD".to_string(),
            Request::MakeDir(p) => format!("MKD {p}"),
            Request::RemoveDir(p) => format!("RMD {p}"),
            Request::Delete(p) => format!("DELE {p}"),
            Request::Rename { from, .. } => format!("RNFR {from}"),
            Request::Size(p) => format!("SIZE {p}"),
            Request::ModTime(p) => format!("MDTM {p}"),
            Request::Facts(p) => format!("MLST {p}"),
            Request::Quote(line) => line.clone(),
            Request::List { .. } | Request::Retrieve { .. } | Request::Store { .. } => String::new(),
        };
        let transfer = request.is_transfer();
        let rename = matches!(request, Request::Rename { .. });
        let data = if transfer { Data::Opening } else { Data::None };
        self.job = Some(Job { id, request, data, started: false, reply: None });
        if !transfer {
            return self.command(now, if rename { Expect::RenameFrom } else { Expect::Reply }, &line);
        }
        let tls = self.protected;
        if !self.config.passive {
            self.events.push_back(Event::Listen { tls });
        } else if self.no_epsv {
            self.command(now, Expect::Pasv, "PASV");
        } else {
            self.command(now, Expect::Epsv, "EPSV");
        }
    }

    /// The data connection is ready (passive: up; active: the server was told where):
    /// `REST` when resuming, else the command.
    fn transfer_command(&mut self, now: Instant) {
        let Some(job) = &self.job else { return };
        let line = match &job.request {
            Request::Retrieve { offset, .. } if *offset > 0 => {
                let line = format!("REST {offset}");
                return self.command(now, Expect::Rest, &line);
            }
            Request::Retrieve { path, .. } => format!("RETR {path}"),
            Request::Store { path, append } => format!("{} {path}", if *append { "APPE" } else { "STOR" }),
            Request::List { path, format } => {
                let verb = match format {
                    Listing::Long => "LIST",
                    Listing::Names => "NLST",
                    Listing::Facts => "MLSD",
                };
                match path {
                    Some(p) => format!("{verb} {p}"),
                    None => verb.to_string(),
                }
            }
            _ => return,
        };
        self.command(now, Expect::Transfer, &line);
    }

    /// Ends the running request.
    fn finish(&mut self, now: Instant, result: Result<Reply, Error>) {
        let Some(job) = self.job.take() else { return };
        if result.is_err()
            && job.request.is_transfer()
            && !matches!(job.data, Data::None | Data::Ended { .. })
        {
            self.events.push_back(Event::DropData);
        }
        self.progress = None;
        self.events.push_back(Event::Done { id: job.id, result });
        self.next(now);
    }

    fn fail(&mut self, now: Instant, error: Error) {
        self.expect = None;
        self.reply_due = None;
        self.finish(now, Err(error));
    }

    /// Ends the session for good: every request fails with `error`, the connection closes.
    fn end(&mut self, now: Instant, error: Error) {
        if self.over.is_none() {
            self.over = Some(error.clone());
        }
        self.expect = None;
        self.reply_due = None;
        self.finish(now, Err(error));
        self.next(now);
        self.close = true;
    }

    /// A transfer ends once its final reply and its data connection's end are both in.
    fn settle(&mut self, now: Instant) {
        let Some(job) = &self.job else { return };
        let Some(reply) = &job.reply else { return };
        if !reply.is_positive() {
            let reply = reply.clone();
            return self.finish(now, Err(Error::Refused(reply)));
        }
        match job.data {
            Data::Ended { clean: true } | Data::None => {
                let reply = reply.clone();
                self.finish(now, Ok(reply))
            }
            Data::Ended { clean: false } => {
                let reply = reply.clone();
                self.finish(now, Err(Error::DataLost(reply)))
            }
            Data::Opening | Data::Connected | Data::Securing | Data::Open => {}
        }
    }

    fn on_reply(&mut self, now: Instant, reply: Reply) {
        let Some(expect) = self.expect else {
            return self.end(now, Error::Protocol(format!("a reply nothing asked for: {reply}")));
        };
        if reply.is_preliminary() && expect != Expect::Transfer {
            // RFC 959 4.2: a 1yz before the real reply (120 before the greeting): wait on.
            if expect != Expect::Greeting || reply.code != 120 {
                tracing::debug!(%reply, "a preliminary reply, ignored");
            }
            return;
        }
        self.expect = None;
        self.reply_due = None;
        let ok = reply.is_positive();
        match expect {
            Expect::Greeting if ok => match &self.config.security {
                Security::Explicit(_) => self.command(now, Expect::AuthTls, "AUTH TLS"),
                _ => self.user(now),
            },
            Expect::AuthTls if reply.code == 234 => {
                if let Security::Explicit(tls) = &self.config.security {
                    self.upgrade = Some(Upgrade::Client {
                        server_name: tls.server_name.clone(),
                        config: tls.config.clone(),
                    });
                }
            }
            Expect::AuthTls => self.end(now, Error::TlsRefused(reply)),
            Expect::User if reply.code == 230 => self.logged_in(now),
            Expect::User if reply.code == 331 => {
                let line = format!("PASS {}", self.config.password);
                self.command(now, Expect::Pass, &line);
            }
            Expect::Pass if reply.code == 230 || reply.code == 202 => self.logged_in(now),
            Expect::User | Expect::Pass => self.end(now, Error::Login(reply)),
            Expect::Pbsz if ok => self.command(now, Expect::Prot, "PROT P"),
            Expect::Prot if ok => {
                self.protected = true;
                self.command(now, Expect::Feat, "FEAT");
            }
            Expect::Pbsz | Expect::Prot => self.end(now, Error::TlsRefused(reply)),
            Expect::Feat => {
                if ok {
                    self.features = features(&reply);
                }
                if self.features.utf8 {
                    self.command(now, Expect::Utf8, "OPTS UTF8 ON");
                } else {
                    self.command(now, Expect::Type, "TYPE I");
                }
            }
            Expect::Utf8 => self.command(now, Expect::Type, "TYPE I"),
            Expect::Type if ok => {
                self.ready = true;
                self.events.push_back(Event::Ready);
                self.next(now);
            }
            Expect::Greeting | Expect::Type => self.end(now, Error::Refused(reply)),
            Expect::Reply => {
                let result = if ok { Ok(reply) } else { Err(Error::Refused(reply)) };
                self.finish(now, result);
            }
            Expect::RenameFrom if reply.code == 350 => {
                if let Some(Job { request: Request::Rename { to, .. }, .. }) = &self.job {
                    let line = format!("RNTO {to}");
                    self.command(now, Expect::Reply, &line);
                }
            }
            Expect::RenameFrom => self.finish(now, Err(Error::Refused(reply))),
            Expect::Epsv if reply.code == 229 => match parse_epsv_reply(&reply.text()) {
                Some(port) => self.connect(SocketAddr::new(self.server, port)),
                None => self.end(now, Error::Protocol(format!("an EPSV reply without a port: {reply}"))),
            },
            // RFC 2428 3: a server that does not know EPSV says 500 or 502 (some 501, 504).
            Expect::Epsv if (500..=504).contains(&reply.code) && self.server.is_ipv4() => {
                self.no_epsv = true;
                self.command(now, Expect::Pasv, "PASV");
            }
            Expect::Pasv if reply.code == 227 => match parse_pasv_reply(&reply.text()) {
                Some(named) => self.connect(SocketAddr::new(self.server, named.port())),
                None => self.end(now, Error::Protocol(format!("a PASV reply without an address: {reply}"))),
            },
            Expect::Port if ok => self.transfer_command(now),
            Expect::Epsv | Expect::Pasv | Expect::Port => self.fail(now, Error::Refused(reply)),
            Expect::Rest if reply.code == 350 => {
                if let Some(Job { request: Request::Retrieve { path, .. }, .. }) = &self.job {
                    let line = format!("RETR {path}");
                    self.command(now, Expect::Transfer, &line);
                }
            }
            Expect::Rest => self.fail(now, Error::Refused(reply)),
            Expect::Transfer => self.transfer_reply(now, reply),
            Expect::Quit => {
                self.over = Some(Error::Closed("the session ended (QUIT)".into()));
                self.close = true;
            }
        }
    }

    fn transfer_reply(&mut self, now: Instant, reply: Reply) {
        let Some(job) = &mut self.job else { return };
        if reply.is_preliminary() {
            if job.started {
                return; // a second 1yz (some servers say 125 then 150): wait on
            }
            job.started = true;
            self.expect = Some(Expect::Transfer);
            // The final reply may take as long as the transfer: the data timeout rules now.
            self.reply_due = None;
            return self.secure(now);
        }
        job.reply = Some(reply);
        self.settle(now);
    }

    fn connect(&mut self, addr: SocketAddr) {
        let tls = self.protected;
        self.events.push_back(Event::Connect { addr, tls });
    }

    fn user(&mut self, now: Instant) {
        let line = format!("USER {}", self.config.user);
        self.command(now, Expect::User, &line);
    }

    fn logged_in(&mut self, now: Instant) {
        match self.config.security {
            // RFC 4217 9: PBSZ 0, then PROT P: data connections under TLS too.
            Security::Explicit(_) | Security::Implicit(_) => self.command(now, Expect::Pbsz, "PBSZ 0"),
            Security::Plain => self.command(now, Expect::Feat, "FEAT"),
        }
    }
}

/// The features a `FEAT` reply lists (one a line, RFC 2389 3.2).
fn features(reply: &Reply) -> Features {
    let mut f = Features::default();
    for line in reply.lines.iter().skip(1) {
        let line = line.trim().to_ascii_uppercase();
        let word = line.split_whitespace().next().unwrap_or("");
        match word {
            "MLST" => f.mlst = true,
            "SIZE" => f.size = true,
            "MDTM" => f.mdtm = true,
            "EPSV" => f.epsv = true,
            "UTF8" => f.utf8 = true,
            "REST" => f.rest_stream |= line.contains("STREAM"),
            _ => {}
        }
    }
    f
}

impl Machine for Client {
    fn wants_connect(&mut self, _now: Instant) -> bool {
        !self.used && self.over.is_none()
    }

    fn handle_connected(&mut self, now: Instant) {
        self.used = true;
        self.connected = true;
        self.expect = Some(Expect::Greeting);
        self.reply_due = Some(now + self.config.command_timeout);
    }

    fn handle_input(&mut self, now: Instant, data: &[u8]) {
        if self.upgrade.is_some() {
            return; // CVE-2011-0411: nothing the server sent after 234 counts
        }
        self.replies.push(data);
        loop {
            match self.replies.next_reply() {
                Ok(Some(reply)) => {
                    self.on_reply(now, reply);
                    if self.close || self.upgrade.is_some() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => return self.end(now, Error::Protocol(e.to_string())),
            }
        }
    }

    fn handle_closed(&mut self, now: Instant, cause: Closed) {
        self.used = true;
        self.connected = false;
        let error = self.over.get_or_insert_with(|| Error::Closed(cause.to_string())).clone();
        self.expect = None;
        self.reply_due = None;
        self.finish(now, Err(error));
        self.next(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.reply_due.is_some_and(|due| now >= due) {
            return self.end(now, Error::Timeout("the server's reply"));
        }
        if self.progress.is_some_and(|at| now >= at + self.config.data_timeout) {
            self.end(now, Error::Timeout("the data connection to move"));
        }
    }

    fn poll_transmit(&mut self) -> Option<&[u8]> {
        self.out.poll()
    }

    fn poll_close(&mut self) -> bool {
        std::mem::take(&mut self.close) && self.connected
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let data = self.progress.map(|at| at + self.config.data_timeout);
        match (self.reply_due, data) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn is_drained(&self) -> bool {
        self.over.is_some() && !self.connected
    }

    fn poll_upgrade(&mut self) -> Option<Upgrade> {
        self.upgrade.take().inspect(|_| {
            self.replies = ReplyReader::new();
        })
    }

    fn handle_upgraded(&mut self, now: Instant) {
        self.user(now);
    }
}
