//! One SMTP server session (RFC 5321), sans I/O: zero-core's [`Machine`] contract, driven
//! by a shard [`Driver`](zero_core::machine::Driver) attached to an accepted connection.
//!
//! Its life: the greeting (`220`), then commands. `EHLO`/`HELO` first; then a transaction
//! (`MAIL`, `RCPT`s, then `DATA` or `BDAT` chunks); the message goes to the owner
//! ([`Event::Message`]) and the session **waits**, reading nothing more, until the owner
//! answers [`Session::stored`]: only then does the client get its `250`. Pipelined commands
//! (RFC 2920) are read in order and answered in order; whatever follows a command that must
//! be answered first waits in the session. `STARTTLS` sends `220`, drops every byte that
//! followed it (RFC 3207 4.2, CVE-2011-0411), asks the driver for TLS, and forgets the
//! `EHLO` and any authentication: the client starts over. `AUTH` waits for
//! [`Session::authenticated`] the same way.
//!
//! Limits: command lines of [`MAX_COMMAND_LINE_EXTENDED`] octets (longer ones are answered
//! `500 5.5.2` and skipped to their end), message lines of 1000 and messages of
//! `max_size` (the text is read to its end, then refused), `max_recipients` (`452 4.5.3`);
//! a client that is refused `max_errors` times is disconnected (`421 4.7.0`), and one silent
//! for longer than the command or data timeout too (`421 4.4.2`).

use std::sync::Arc;
use std::time::Instant;

use zero_core::machine::{Closed, Machine, Outbox, Upgrade};

use super::auth::{self, Credentials, Mechanism};
use super::{Envelope, Event, Peer, Recipient, ServerConfig};
use crate::codec::command::{self, Body, Command, MailParams, Path, RcptParams};
use crate::codec::data::{DataError, DataReader, DataStatus};
use crate::codec::reply::Reply;
use crate::codec::{line_end, MAX_COMMAND_LINE_EXTENDED};

/// What the session is reading or waiting for.
#[derive(Debug)]
enum Phase {
    /// Not connected yet, or closed.
    Idle,
    /// Command lines.
    Command,
    /// The rest of a command line too long to read: skipped to its CRLF.
    SkipLine,
    /// Message text after `354`.
    Data(DataReader),
    /// A `BDAT` chunk's octets; `refused`: the command was refused, the chunk is read and
    /// dropped (RFC 3030 2: its size is known, so the stream stays in step).
    Chunk { size: u64, left: u64, last: bool, refused: Option<Reply> },
    /// A SASL exchange, waiting for the client's next line.
    Sasl(Sasl),
    /// The owner is storing the message or checking credentials.
    Waiting,
    /// `STARTTLS` answered: nothing is read until the handshake ends.
    Upgrading,
    /// `QUIT` or `421`: closing.
    Closing,
}

/// Where a SASL exchange is.
#[derive(Debug)]
enum Sasl {
    /// PLAIN or XOAUTH2, after an empty `334`: the response.
    Response(Mechanism),
    /// LOGIN: the user name.
    LoginUser,
    /// LOGIN: the password.
    LoginPassword(String),
    /// XOAUTH2 failed and said why in a `334`: the client's empty line, then `535`.
    XOAuth2Failed,
}

/// The transaction in progress.
#[derive(Debug, Default)]
struct Transaction {
    from: Option<String>,
    recipients: Vec<Recipient>,
    body: Vec<u8>,
    params: Params,
    /// BDAT chunks came: DATA may not follow.
    chunked: bool,
    /// A BDAT chunk made the message too big: refused at its last chunk.
    too_big: bool,
}

#[derive(Debug, Default, Clone)]
struct Params {
    body: Option<Body>,
    smtputf8: bool,
    requiretls: bool,
    ret: Option<command::Ret>,
    envid: Option<String>,
}

/// One server session.
pub struct Session {
    config: Arc<ServerConfig>,
    peer: Peer,
    phase: Phase,
    helo: Option<(String, bool)>,
    tls: bool,
    authenticated: Option<String>,
    tx: Transaction,
    /// Input not read yet (it follows something that must be answered first).
    input: Vec<u8>,
    out: Outbox,
    events: std::collections::VecDeque<Event>,
    upgrade: Option<Upgrade>,
    close: bool,
    deadline: Option<Instant>,
    errors: usize,
    /// The credentials being checked (for XOAUTH2's error flow).
    checking: Option<Mechanism>,
}

impl Session {
    /// A session with `peer`, under `config`.
    pub fn new(config: Arc<ServerConfig>, peer: Peer) -> Session {
        Session {
            tls: peer.tls,
            config,
            peer,
            phase: Phase::Idle,
            helo: None,
            authenticated: None,
            tx: Transaction::default(),
            input: Vec::new(),
            out: Outbox::default(),
            events: std::collections::VecDeque::new(),
            upgrade: None,
            close: false,
            deadline: None,
            errors: 0,
            checking: None,
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether the session is TLS now.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The owner stored the message of the last [`Event::Message`] as `Ok(queue id)`, or
    /// could not (`Err(reply)`, a `451 4.3.0` usually): the client hears so, and the session
    /// reads on.
    pub fn stored(&mut self, now: Instant, result: Result<String, Reply>) {
        if !matches!(self.phase, Phase::Waiting) {
            return;
        }
        match result {
            Ok(id) => self.reply(Reply::new(250, (2, 0, 0), &format!("Ok: queued as {id}"))),
            Err(reply) => self.reply(reply),
        }
        self.tx = Transaction::default();
        self.resume(now);
    }

    /// The owner checked the credentials of the last [`Event::Authenticate`].
    pub fn authenticated(&mut self, now: Instant, ok: bool, username: &str) {
        if !matches!(self.phase, Phase::Waiting) {
            return;
        }
        let mechanism = self.checking.take();
        if ok {
            self.authenticated = Some(username.to_string());
            self.reply(Reply::new(235, (2, 7, 0), "Authentication successful"));
        } else if mechanism == Some(Mechanism::XOAuth2) {
            // The XOAUTH2 error flow: the reason in a 334, the client's empty line, then 535.
            let status =
                auth::encode(r#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#);
            self.reply(Reply::plain(334, &status));
            self.phase = Phase::Sasl(Sasl::XOAuth2Failed);
            self.deadline = Some(now + self.config.command_timeout);
            return self.process(now);
        } else {
            self.refuse(Reply::new(535, (5, 7, 8), "Authentication credentials invalid"));
        }
        self.resume(now);
    }

    fn resume(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Closing) {
            return;
        }
        self.phase = Phase::Command;
        self.deadline = Some(now + self.config.command_timeout);
        self.process(now);
    }

    fn reply(&mut self, reply: Reply) {
        reply.encode(&mut self.out);
    }

    /// A refusal: it counts against the client's error budget.
    fn refuse(&mut self, reply: Reply) {
        self.reply(reply);
        self.errors += 1;
        if self.errors >= self.config.max_errors {
            self.reply(Reply::new(
                421,
                (4, 7, 0),
                &format!("{} Too many errors, closing", self.config.hostname),
            ));
            self.shut();
        }
    }

    /// The server is shutting down: `421` (RFC 5321 3.8), then the close. A message still
    /// being received is not taken: its client keeps it and tries again later.
    pub fn shut_down(&mut self) {
        if !matches!(self.phase, Phase::Closing) {
            let text =
                format!("{} Service shutting down, closing transmission channel", self.config.hostname);
            self.reply(Reply::new(421, (4, 3, 2), &text));
            self.shut();
        }
    }

    fn shut(&mut self) {
        self.phase = Phase::Closing;
        self.close = true;
        self.input.clear();
        self.deadline = None;
    }

    /// Reads held input as far as the session may.
    fn process(&mut self, now: Instant) {
        let mut input = std::mem::take(&mut self.input);
        let used = self.read(now, &input);
        input.drain(..used);
        // What is held can only grow while the owner works; a client that pipelines more
        // than a message's worth meanwhile is not one to wait for.
        if input.len() > self.config.max_size + MAX_COMMAND_LINE_EXTENDED {
            self.reply(Reply::new(421, (4, 7, 0), "Too much pipelined input, closing"));
            self.shut();
            return;
        }
        if !matches!(self.phase, Phase::Closing | Phase::Upgrading) {
            self.input = input;
        }
    }

    /// Reads from `input` as far as the session may; returns how much it consumed.
    fn read(&mut self, now: Instant, input: &[u8]) -> usize {
        let mut at = 0;
        loop {
            let rest = &input[at..];
            let used = match &mut self.phase {
                Phase::Idle | Phase::Waiting | Phase::Upgrading | Phase::Closing => return at,
                Phase::Command | Phase::Sasl(_) => {
                    let Some(end) = line_end(rest) else {
                        if rest.len() >= MAX_COMMAND_LINE_EXTENDED {
                            self.refuse(Reply::new(500, (5, 5, 2), "Line too long"));
                            if !matches!(self.phase, Phase::Closing) {
                                self.phase = Phase::SkipLine;
                            }
                            // Keep a trailing CR: it may start the CRLF that ends the line.
                            at += rest.len() - usize::from(rest.ends_with(b"\r"));
                            continue;
                        }
                        return at;
                    };
                    if end + 2 > MAX_COMMAND_LINE_EXTENDED {
                        self.refuse(Reply::new(500, (5, 5, 2), "Line too long"));
                    } else if matches!(self.phase, Phase::Command) {
                        self.command(now, &rest[..end]);
                    } else {
                        self.sasl_line(now, &rest[..end]);
                    }
                    end + 2
                }
                Phase::SkipLine => match line_end(rest) {
                    Some(end) => {
                        self.phase = Phase::Command;
                        end + 2
                    }
                    None => return at + rest.len() - usize::from(rest.ends_with(b"\r")),
                },
                Phase::Data(reader) => match reader.read(rest, &mut self.tx.body) {
                    DataStatus::More => return input.len(),
                    DataStatus::Done { used } => {
                        let result = reader.result();
                        self.message_read(now, result);
                        used
                    }
                },
                Phase::Chunk { size, left, last, refused } => {
                    let take = (*left).min(rest.len() as u64) as usize;
                    *left -= take as u64;
                    let (done, last, refused, size) = (*left == 0, *last, refused.take(), *size);
                    if refused.is_none() && !self.tx.too_big {
                        if self.tx.body.len() + take > self.config.max_size {
                            self.tx.too_big = true;
                            self.tx.body = Vec::new();
                        } else {
                            self.tx.body.extend_from_slice(&rest[..take]);
                        }
                    }
                    if done {
                        self.chunk_read(now, last, refused, size);
                    } else if let Phase::Chunk { refused: slot, .. } = &mut self.phase {
                        *slot = refused;
                    }
                    if !done {
                        return at + take;
                    }
                    take
                }
            };
            at += used;
        }
    }

    /// A whole `DATA` text was read.
    fn message_read(&mut self, now: Instant, result: Result<(), DataError>) {
        match result {
            Ok(()) => self.hand_over(now),
            Err(e) => {
                let reply = match e {
                    DataError::TooBig => Reply::new(552, (5, 3, 4), "Message size exceeds fixed limit"),
                    DataError::LineTooLong => {
                        Reply::new(554, (5, 6, 0), "Message has a line over 1000 octets")
                    }
                    _ => Reply::new(554, (5, 6, 0), "Message has a bare CR or LF: only CRLF may end a line"),
                };
                self.tx = Transaction::default();
                self.phase = Phase::Command;
                self.refuse(reply);
            }
        }
    }

    /// A `BDAT` chunk's octets were read.
    fn chunk_read(&mut self, now: Instant, last: bool, refused: Option<Reply>, size: u64) {
        self.phase = Phase::Command;
        self.deadline = Some(now + self.config.command_timeout);
        if let Some(reply) = refused {
            return self.refuse(reply);
        }
        if !last {
            return self.reply(Reply::new(250, (2, 0, 0), &format!("{size} octets received")));
        }
        if self.tx.too_big {
            self.tx = Transaction::default();
            return self.refuse(Reply::new(552, (5, 3, 4), "Message size exceeds fixed limit"));
        }
        self.hand_over(now);
    }

    /// The message goes to the owner; the session waits for [`Session::stored`].
    fn hand_over(&mut self, _now: Instant) {
        let tx = std::mem::take(&mut self.tx);
        let (helo, esmtp) = self.helo.clone().unwrap_or_default();
        let envelope = Envelope {
            peer: self.peer,
            helo,
            esmtp,
            tls: self.tls,
            authenticated: self.authenticated.clone(),
            from: tx.from.unwrap_or_default(),
            recipients: tx.recipients,
            body: tx.params.body,
            smtputf8: tx.params.smtputf8,
            requiretls: tx.params.requiretls,
            ret: tx.params.ret,
            envid: tx.params.envid,
        };
        self.events.push_back(Event::Message { envelope: Box::new(envelope), body: tx.body });
        self.phase = Phase::Waiting;
        self.deadline = None;
    }

    fn command(&mut self, now: Instant, line: &[u8]) {
        self.deadline = Some(now + self.config.command_timeout);
        let command = match command::parse(line) {
            Ok(c) => c,
            Err(e) => {
                // A refused BDAT still sends its chunk: read it, to stay in step.
                if let Some(size) = bdat_size(line) {
                    self.phase = Phase::Chunk { size, left: size, last: false, refused: Some(e.reply()) };
                    return;
                }
                return self.refuse(e.reply());
            }
        };
        match command {
            Command::Ehlo(domain) => self.hello(domain, true),
            Command::Helo(domain) => self.hello(domain, false),
            Command::Mail(path, params) => self.mail(path, params),
            Command::Rcpt(path, params) => self.rcpt(path, params),
            Command::Data => self.data(now),
            Command::Bdat { size, last } => self.bdat(now, size, last),
            Command::Rset => {
                self.tx = Transaction::default();
                self.reply(Reply::new(250, (2, 0, 0), "Flushed"));
            }
            Command::Noop => self.reply(Reply::new(250, (2, 0, 0), "OK")),
            Command::Vrfy(_) => self.reply(Reply::new(
                252,
                (2, 5, 0),
                "Cannot VRFY user, but will accept message and attempt delivery",
            )),
            Command::Help => self.reply(Reply::new(214, (2, 0, 0), "See RFC 5321")),
            Command::Quit => {
                self.reply(Reply::new(221, (2, 0, 0), &format!("{} Bye", self.config.hostname)));
                self.shut();
            }
            Command::StartTls => self.starttls(),
            Command::Auth { mechanism, initial } => self.auth(now, mechanism, initial),
        }
    }

    fn hello(&mut self, domain: &str, esmtp: bool) {
        // 4.1.4: EHLO/HELO in a transaction resets it.
        self.tx = Transaction::default();
        self.helo = Some((domain.to_string(), esmtp));
        let greeting = format!("{} Hello {domain}", self.config.hostname);
        if !esmtp {
            return self.reply(Reply::plain(250, &greeting));
        }
        let mut lines = vec![
            greeting,
            "PIPELINING".into(),
            format!("SIZE {}", self.config.max_size),
            "8BITMIME".into(),
            "SMTPUTF8".into(),
            "ENHANCEDSTATUSCODES".into(),
            "CHUNKING".into(),
            "DSN".into(),
        ];
        if self.config.tls.is_some() && !self.tls {
            lines.push("STARTTLS".into());
        }
        if self.tls {
            lines.push("REQUIRETLS".into());
        }
        if self.auth_offered() {
            lines.push(
                if self.config.xoauth2 { "AUTH PLAIN LOGIN XOAUTH2" } else { "AUTH PLAIN LOGIN" }.into(),
            );
        }
        self.reply(Reply { code: 250, enhanced: None, lines });
    }

    fn auth_offered(&self) -> bool {
        self.config.auth && (self.tls || self.config.auth_without_tls) && self.authenticated.is_none()
    }

    fn mail(&mut self, path: Path<'_>, params: MailParams<'_>) {
        let Some((_, esmtp)) = self.helo else {
            return self.refuse(Reply::new(503, (5, 5, 1), "Send EHLO or HELO first"));
        };
        if self.tx.from.is_some() {
            return self.refuse(Reply::new(503, (5, 5, 1), "Sender already given"));
        }
        if self.config.auth_required && self.authenticated.is_none() {
            return self.refuse(Reply::new(530, (5, 7, 0), "Authentication required"));
        }
        if !esmtp && params != MailParams::default() {
            return self.refuse(Reply::new(555, (5, 5, 4), "Parameters need EHLO"));
        }
        if params.size.is_some_and(|s| s > self.config.max_size as u64) {
            return self.refuse(Reply::new(552, (5, 3, 4), "Message size exceeds fixed limit"));
        }
        if params.body == Some(Body::BinaryMime) {
            return self.refuse(Reply::new(555, (5, 5, 4), "BINARYMIME is not offered"));
        }
        if path.utf8 && !params.smtputf8 {
            return self.refuse(Reply::new(553, (5, 6, 7), "A non-ASCII address needs SMTPUTF8"));
        }
        if params.requiretls && !self.tls {
            return self.refuse(Reply::new(530, (5, 7, 10), "REQUIRETLS needs a TLS session"));
        }
        self.tx = Transaction {
            from: Some(path.mailbox.to_string()),
            params: Params {
                body: params.body,
                smtputf8: params.smtputf8,
                requiretls: params.requiretls,
                ret: params.ret,
                envid: params.envid.map(str::to_string),
            },
            ..Transaction::default()
        };
        self.reply(Reply::new(250, (2, 1, 0), "Sender OK"));
    }

    fn rcpt(&mut self, path: Path<'_>, params: RcptParams<'_>) {
        if self.tx.from.is_none() {
            return self.refuse(Reply::new(503, (5, 5, 1), "Need MAIL before RCPT"));
        }
        if self.tx.recipients.len() >= self.config.max_recipients {
            // 4.5.3.1.10: a transient refusal; the client sends the rest in another message.
            return self.reply(Reply::new(452, (4, 5, 3), "Too many recipients"));
        }
        if path.utf8 && !self.tx.params.smtputf8 {
            return self.refuse(Reply::new(553, (5, 6, 7), "A non-ASCII address needs SMTPUTF8"));
        }
        if !self.may_send_to(path.mailbox) {
            return self.refuse(Reply::new(554, (5, 7, 1), "Relay access denied"));
        }
        self.tx.recipients.push(Recipient {
            address: path.mailbox.to_string(),
            notify: params.notify.map(str::to_string),
            orcpt: params.orcpt.map(str::to_string),
        });
        self.reply(Reply::new(250, (2, 1, 5), "Recipient OK"));
    }

    /// No open relay: other domains only for authenticated or trusted clients.
    fn may_send_to(&self, mailbox: &str) -> bool {
        let Some((_, domain)) = mailbox.rsplit_once('@') else {
            // `Postmaster` alone: always (RFC 5321 4.5.1).
            return true;
        };
        self.authenticated.is_some()
            || self.peer.trusted
            || self.config.accept_domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
    }

    fn data(&mut self, now: Instant) {
        if self.tx.from.is_none() {
            return self.refuse(Reply::new(503, (5, 5, 1), "Need MAIL before DATA"));
        }
        if self.tx.recipients.is_empty() {
            return self.refuse(Reply::new(554, (5, 5, 1), "No valid recipients"));
        }
        if self.tx.chunked {
            return self.refuse(Reply::new(503, (5, 5, 1), "BDAT and DATA do not mix"));
        }
        self.reply(Reply::plain(354, "End data with <CR><LF>.<CR><LF>"));
        self.phase = Phase::Data(DataReader::new(self.config.bare_line_endings, self.config.max_size));
        self.deadline = Some(now + self.config.data_timeout);
    }

    fn bdat(&mut self, now: Instant, size: u64, last: bool) {
        let refused = if self.tx.from.is_none() {
            Some(Reply::new(503, (5, 5, 1), "Need MAIL before BDAT"))
        } else if self.tx.recipients.is_empty() {
            Some(Reply::new(554, (5, 5, 1), "No valid recipients"))
        } else {
            None
        };
        self.tx.chunked = true;
        self.phase = Phase::Chunk { size, left: size, last, refused };
        if size == 0 {
            // Nothing to read: the chunk is whole now.
            let Phase::Chunk { refused, .. } = std::mem::replace(&mut self.phase, Phase::Command) else {
                unreachable!("set just above")
            };
            self.chunk_read(now, last, refused, 0);
        }
    }

    fn starttls(&mut self) {
        match (&self.config.tls, self.tls) {
            (_, true) => self.refuse(Reply::new(503, (5, 5, 1), "TLS already active")),
            (None, _) => self.refuse(Reply::new(454, (4, 7, 0), "TLS not available")),
            (Some(_), _) if self.tx.from.is_some() => {
                self.refuse(Reply::new(503, (5, 5, 1), "STARTTLS in a transaction"))
            }
            (Some(config), false) => {
                let config = config.clone();
                self.reply(Reply::new(220, (2, 0, 0), "Ready to start TLS"));
                self.upgrade = Some(Upgrade::Server(config));
                self.phase = Phase::Upgrading;
                // RFC 3207 4.2 and CVE-2011-0411: what followed the command is not read.
                self.input.clear();
            }
        }
    }

    fn auth(&mut self, now: Instant, mechanism: &str, initial: Option<&str>) {
        if !self.config.auth {
            return self.refuse(Reply::new(502, (5, 5, 1), "AUTH not available"));
        }
        if self.authenticated.is_some() {
            return self.refuse(Reply::new(503, (5, 5, 1), "Already authenticated"));
        }
        if !self.auth_offered() {
            return self.refuse(Reply::new(
                538,
                (5, 7, 11),
                "Encryption required for requested authentication mechanism",
            ));
        }
        if self.tx.from.is_some() {
            return self.refuse(Reply::new(503, (5, 5, 1), "AUTH in a transaction"));
        }
        let mechanism = match Mechanism::named(mechanism) {
            Some(Mechanism::XOAuth2) if !self.config.xoauth2 => None,
            m => m,
        };
        let Some(mechanism) = mechanism else {
            return self.refuse(Reply::new(504, (5, 5, 4), "Unrecognized authentication type"));
        };
        match (mechanism, initial) {
            (Mechanism::Login, Some(user)) => self.sasl_step(now, Sasl::LoginUser, user),
            (Mechanism::Login, None) => {
                self.reply(Reply::plain(334, &auth::encode("Username:")));
                self.phase = Phase::Sasl(Sasl::LoginUser);
            }
            (m, Some(response)) => self.sasl_step(now, Sasl::Response(m), response),
            (m, None) => {
                self.reply(Reply::plain(334, ""));
                self.phase = Phase::Sasl(Sasl::Response(m));
            }
        }
    }

    fn sasl_line(&mut self, now: Instant, line: &[u8]) {
        let Phase::Sasl(step) = std::mem::replace(&mut self.phase, Phase::Command) else { return };
        let line = String::from_utf8_lossy(line);
        if line == "*" {
            return self.refuse(Reply::new(501, (5, 0, 0), "Authentication cancelled"));
        }
        if let Sasl::XOAuth2Failed = step {
            return self.refuse(Reply::new(535, (5, 7, 8), "Authentication credentials invalid"));
        }
        self.sasl_step(now, step, &line);
    }

    fn sasl_step(&mut self, _now: Instant, step: Sasl, response: &str) {
        let credentials = match step {
            Sasl::Response(Mechanism::Plain) => auth::plain(response),
            Sasl::Response(_) => auth::xoauth2(response),
            Sasl::LoginUser => match auth::decode(response) {
                Ok(user) => {
                    self.reply(Reply::plain(334, &auth::encode("Password:")));
                    self.phase = Phase::Sasl(Sasl::LoginPassword(user));
                    return;
                }
                Err(e) => Err(e),
            },
            Sasl::LoginPassword(username) => auth::decode(response).map(|secret| Credentials {
                mechanism: Mechanism::Login,
                authzid: None,
                username,
                secret,
            }),
            Sasl::XOAuth2Failed => Err("unexpected"),
        };
        match credentials {
            Ok(c) => {
                self.checking = Some(c.mechanism);
                self.events.push_back(Event::Authenticate(c));
                self.phase = Phase::Waiting;
                self.deadline = None;
            }
            Err(why) => {
                self.refuse(Reply::new(501, (5, 5, 2), &format!("Cannot decode the response: {why}")))
            }
        }
    }
}

/// `BDAT n ...`'s size, for a refused BDAT whose chunk must still be read.
fn bdat_size(line: &[u8]) -> Option<u64> {
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split(' ');
    words.next().filter(|v| v.eq_ignore_ascii_case("BDAT"))?;
    words.next()?.parse().ok()
}

impl Machine for Session {
    fn wants_connect(&mut self, _now: Instant) -> bool {
        false
    }

    fn handle_connected(&mut self, now: Instant) {
        // The greeting carries no enhanced code (RFC 2034 3).
        self.reply(Reply::plain(220, &format!("{} ESMTP zero", self.config.hostname)));
        self.phase = Phase::Command;
        self.deadline = Some(now + self.config.command_timeout);
    }

    fn handle_input(&mut self, now: Instant, data: &[u8]) {
        if matches!(self.phase, Phase::Closing | Phase::Upgrading | Phase::Idle) {
            return;
        }
        if matches!(self.phase, Phase::Data(_) | Phase::Chunk { .. }) {
            self.deadline = Some(now + self.config.data_timeout);
        }
        if self.input.is_empty() {
            // Read where it lies; hold only what is left.
            let used = self.read(now, data);
            if !matches!(self.phase, Phase::Closing | Phase::Upgrading) {
                self.input.extend_from_slice(&data[used..]);
            }
            if self.input.len() > self.config.max_size + MAX_COMMAND_LINE_EXTENDED {
                self.process(now);
            }
        } else {
            self.input.extend_from_slice(data);
            self.process(now);
        }
    }

    fn handle_closed(&mut self, _now: Instant, _cause: Closed) {
        self.phase = Phase::Idle;
        self.input = Vec::new();
        self.deadline = None;
        self.tx = Transaction::default();
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| d <= now) {
            let host = self.config.hostname.clone();
            self.reply(Reply::new(421, (4, 4, 2), &format!("{host} Timeout, closing")));
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
        self.deadline
    }

    fn is_drained(&self) -> bool {
        matches!(self.phase, Phase::Idle)
    }

    fn poll_upgrade(&mut self) -> Option<Upgrade> {
        self.upgrade.take()
    }

    fn handle_upgraded(&mut self, now: Instant) {
        // RFC 3207 4.2: the client starts over; nothing from before counts.
        self.tls = true;
        self.helo = None;
        self.authenticated = None;
        self.tx = Transaction::default();
        self.phase = Phase::Command;
        self.deadline = Some(now + self.config.command_timeout);
    }
}
