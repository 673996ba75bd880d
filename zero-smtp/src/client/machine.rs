//! One SMTP client connection (RFC 5321), sans I/O: zero-core's [`Machine`] contract, run by
//! a shard [`Driver`](zero_core::machine::Driver) that connects it.
//!
//! Its life: the greeting; `EHLO` (`HELO` if refused); `STARTTLS` under the TLS policy (a
//! required TLS the server does not offer fails the messages: never a silent downgrade),
//! then `EHLO` again inside TLS; `AUTH` if configured; then the messages it was given, one
//! transaction each, on the same connection. With PIPELINING, `MAIL`, every `RCPT` and
//! `DATA` (or `BDAT ... LAST` and the text, with CHUNKING) go in one write and their replies
//! are read in order (RFC 2920); without it, one command at a time. Each message ends in one
//! [`Event::Outcome`]: per recipient, the reply to its text or why not. The connection is
//! used once: when it closes, whatever was not done fails as transient, and the owner
//! decides what to try next.

use std::collections::VecDeque;
use std::time::Instant;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use zero_core::machine::{Closed, Machine, Outbox, Upgrade};

use super::{ClientConfig, Event, Failure, Outgoing, SendId, TlsPolicy};
use crate::codec::data::dot_stuff;
use crate::codec::reply::Reply;

/// What the server offered in its EHLO reply.
#[derive(Debug, Default, Clone)]
struct Offer {
    pipelining: bool,
    chunking: bool,
    starttls: bool,
    eight_bit: bool,
    smtputf8: bool,
    requiretls: bool,
    dsn: bool,
    size: Option<u64>,
    plain: bool,
    login: bool,
}

impl Offer {
    fn of(reply: &Reply) -> Offer {
        let mut o = Offer::default();
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_whitespace();
            let Some(keyword) = words.next() else { continue };
            match keyword.to_ascii_uppercase().as_str() {
                "PIPELINING" => o.pipelining = true,
                "CHUNKING" => o.chunking = true,
                "STARTTLS" => o.starttls = true,
                "8BITMIME" => o.eight_bit = true,
                "SMTPUTF8" => o.smtputf8 = true,
                "REQUIRETLS" => o.requiretls = true,
                "DSN" => o.dsn = true,
                "SIZE" => o.size = words.next().and_then(|s| s.parse().ok()).filter(|&s| s > 0),
                "AUTH" => {
                    for m in words {
                        match m.to_ascii_uppercase().as_str() {
                            "PLAIN" => o.plain = true,
                            "LOGIN" => o.login = true,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        o
    }
}

/// The reply awaited next, and what it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Greeting,
    Ehlo,
    Helo,
    StartTls,
    AuthPlain,
    /// LOGIN's 334s (the user name, then the password), then its 235.
    AuthLogin(u8),
    Mail,
    Rcpt(usize),
    Data,
    /// The reply to the message's text (after `.` or the last BDAT chunk).
    Text,
    /// The reply to a `.` sent only to end a DATA no recipient was accepted for.
    Abandoned,
    Rset,
    Quit,
}

/// The transaction in progress.
#[derive(Debug)]
struct Tx {
    id: SendId,
    message: Outgoing,
    results: Vec<Option<Result<Reply, Failure>>>,
    mail: Option<Reply>,
    /// Commands not sent yet (without PIPELINING, one at a time).
    queued: VecDeque<(Expect, Vec<u8>)>,
}

/// One client connection.
pub struct Client {
    config: ClientConfig,
    offer: Offer,
    tls: bool,
    authenticated: bool,
    /// Messages waiting for the session (or for the current transaction to end).
    waiting: VecDeque<(SendId, Outgoing)>,
    tx: Option<Tx>,
    expect: VecDeque<Expect>,
    /// The session is set up: messages may go.
    ready: bool,
    /// A finished transaction left the server's state unclear: RSET before the next.
    dirty: bool,
    connected: bool,
    /// The connection was opened once (a client is used for one).
    used: bool,
    next_id: u64,
    input: Vec<u8>,
    out: Outbox,
    events: VecDeque<Event>,
    upgrade: Option<Upgrade>,
    close: bool,
    quitting: bool,
    deadline: Option<Instant>,
}

impl Client {
    /// A client session under `config` (not connected yet).
    pub fn new(config: ClientConfig) -> Client {
        Client {
            config,
            offer: Offer::default(),
            tls: false,
            authenticated: false,
            waiting: VecDeque::new(),
            tx: None,
            expect: VecDeque::new(),
            ready: false,
            dirty: false,
            connected: false,
            used: false,
            next_id: 0,
            input: Vec::new(),
            out: Outbox::default(),
            events: VecDeque::new(),
            upgrade: None,
            close: false,
            quitting: false,
            deadline: None,
        }
    }

    /// Queues a message; its [`Event::Outcome`] comes once it is done with.
    pub fn send(&mut self, now: Instant, message: Outgoing) -> SendId {
        self.next_id += 1;
        let id = SendId(self.next_id);
        self.waiting.push_back((id, message));
        self.next_transaction(now);
        id
    }

    /// Ends the session after the messages given so far: `QUIT`.
    pub fn quit(&mut self, now: Instant) {
        self.quitting = true;
        self.next_transaction(now);
    }

    /// Whether more messages may be given to this connection (it is not ending).
    pub fn accepts_more(&self) -> bool {
        !self.quitting && !self.close && (self.connected || !self.used)
    }

    /// Whether TLS is up.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Messages given and not yet done with.
    pub fn pending(&self) -> usize {
        self.waiting.len() + usize::from(self.tx.is_some())
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn command(&mut self, now: Instant, expect: Expect, line: &str) {
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
        self.expect.push_back(expect);
        let wait =
            if expect == Expect::Text { self.config.data_timeout } else { self.config.command_timeout };
        self.deadline.get_or_insert(now + wait);
    }

    /// Every message given fails with `failure` (the session cannot carry them), and the
    /// connection is given up.
    fn give_up(&mut self, failure: Failure) {
        if let Some(tx) = self.tx.take() {
            // A recipient accepted by RCPT is delivered only by the reply to the text.
            let recipients = tx
                .results
                .into_iter()
                .map(|r| match r {
                    Some(Err(refused)) => Err(refused),
                    _ => Err(failure.clone()),
                })
                .collect();
            self.events.push_back(Event::Outcome { id: tx.id, recipients });
        }
        for (id, message) in self.waiting.drain(..) {
            let recipients = message.to.iter().map(|_| Err(failure.clone())).collect();
            self.events.push_back(Event::Outcome { id, recipients });
        }
        self.ready = false;
        self.expect.clear();
        self.deadline = None;
        if self.connected && !self.close {
            self.out.extend_from_slice(b"QUIT\r\n");
            self.close = true;
        }
    }

    /// Starts the next message's transaction if the session is free.
    fn next_transaction(&mut self, now: Instant) {
        if !self.ready || self.tx.is_some() || !self.expect.is_empty() {
            return;
        }
        if self.dirty {
            self.dirty = false;
            return self.command(now, Expect::Rset, "RSET");
        }
        let Some((id, message)) = self.waiting.pop_front() else {
            if self.quitting && !self.close {
                self.command(now, Expect::Quit, "QUIT");
            }
            return;
        };
        if let Some(failure) = self.unsendable(&message) {
            let recipients = message.to.iter().map(|_| Err(failure.clone())).collect();
            self.events.push_back(Event::Outcome { id, recipients });
            return self.next_transaction(now);
        }
        let mut queued = VecDeque::new();
        let mut mail = format!("MAIL FROM:<{}>", message.from);
        if let Some(size) = self.offer.size.map(|_| message.text.len()) {
            mail += &format!(" SIZE={size}");
        }
        if message.eight_bit && self.offer.eight_bit {
            mail += " BODY=8BITMIME";
        }
        if message.smtputf8 {
            mail += " SMTPUTF8";
        }
        if message.requiretls {
            mail += " REQUIRETLS";
        }
        if self.offer.dsn {
            if let Some(ret) = message.ret {
                mail += &format!(" RET={ret}");
            }
            if let Some(envid) = &message.envid {
                mail += &format!(" ENVID={envid}");
            }
        }
        queued.push_back((Expect::Mail, mail.into_bytes()));
        for (i, to) in message.to.iter().enumerate() {
            let mut rcpt = format!("RCPT TO:<{}>", to.address);
            if self.offer.dsn {
                if let Some(n) = &to.notify {
                    rcpt += &format!(" NOTIFY={n}");
                }
                if let Some(o) = &to.orcpt {
                    rcpt += &format!(" ORCPT={o}");
                }
            }
            queued.push_back((Expect::Rcpt(i), rcpt.into_bytes()));
        }
        if self.config.chunking && self.offer.chunking {
            // BDAT carries the text as it is: no dot-stuffing, and a refused BDAT is still
            // read by the server, so it may be pipelined with the rest.
            let mut bdat = format!("BDAT {} LAST", message.text.len()).into_bytes();
            bdat.extend_from_slice(b"\r\n");
            bdat.extend_from_slice(&message.text);
            queued.push_back((Expect::Text, bdat));
        } else {
            queued.push_back((Expect::Data, b"DATA".to_vec()));
        }
        let results = vec![None; message.to.len()];
        self.tx = Some(Tx { id, message, results, mail: None, queued });
        self.send_queued(now);
    }

    /// Sends the transaction's next commands: all of them with PIPELINING, else one.
    fn send_queued(&mut self, now: Instant) {
        let pipelining = self.offer.pipelining;
        loop {
            let Some(tx) = self.tx.as_mut() else { return };
            let Some((expect, mut bytes)) = tx.queued.pop_front() else { return };
            if expect == Expect::Text {
                // `BDAT n LAST\r\n` and the text: the line ends inside `bytes`.
                self.out.append(&mut bytes);
                self.expect.push_back(expect);
                self.deadline.get_or_insert(now + self.config.data_timeout);
            } else {
                self.out.append(&mut bytes);
                self.out.extend_from_slice(b"\r\n");
                self.expect.push_back(expect);
                self.deadline.get_or_insert(now + self.config.command_timeout);
            }
            if !pipelining {
                return;
            }
        }
    }

    /// Why the message cannot go to this server as it is, if it cannot.
    fn unsendable(&self, m: &Outgoing) -> Option<Failure> {
        if m.smtputf8 && !self.offer.smtputf8 {
            return Some(Failure::permanent(
                "the server does not offer SMTPUTF8, which the message's addresses need",
            ));
        }
        if m.requiretls && !(self.tls && self.offer.requiretls) {
            return Some(Failure::transient("REQUIRETLS: this server does not offer it over TLS"));
        }
        if self.offer.size.is_some_and(|max| m.text.len() as u64 > max) {
            return Some(Failure::permanent("the message is larger than the server's SIZE limit"));
        }
        None
    }

    /// The session is set up after EHLO (and TLS, and AUTH): go on to what is next.
    fn after_ehlo(&mut self, now: Instant) {
        let wants_tls = !matches!(self.config.tls, TlsPolicy::Never);
        if !self.tls && wants_tls && self.offer.starttls {
            return self.command(now, Expect::StartTls, "STARTTLS");
        }
        if !self.tls && matches!(self.config.tls, TlsPolicy::Required(_)) {
            return self
                .give_up(Failure::transient("TLS is required and the server does not offer STARTTLS"));
        }
        if let (Some((user, password)), false) = (self.config.auth.clone(), self.authenticated) {
            if self.offer.plain {
                let token = STANDARD.encode(format!("\0{user}\0{password}"));
                return self.command(now, Expect::AuthPlain, &format!("AUTH PLAIN {token}"));
            }
            if self.offer.login {
                return self.command(now, Expect::AuthLogin(0), "AUTH LOGIN");
            }
            return self.give_up(Failure::transient(
                "AUTH is configured and the server offers neither PLAIN nor LOGIN",
            ));
        }
        self.ready = true;
        self.events.push_back(Event::Idle);
        self.next_transaction(now);
    }

    fn on_reply(&mut self, now: Instant, reply: Reply) {
        let Some(expect) = self.expect.pop_front() else {
            // A reply nobody asked for (a 421 before closing, usually).
            if reply.code == 421 {
                self.give_up(Failure::reply(reply));
            }
            return;
        };
        self.deadline = None;
        if !self.expect.is_empty() {
            self.deadline = Some(now + self.config.command_timeout);
        }
        match expect {
            Expect::Greeting if reply.code == 220 => {
                self.command(now, Expect::Ehlo, &format!("EHLO {}", self.config.helo))
            }
            Expect::Greeting => self.give_up(Failure::transient(&format!("the server greeted with {reply}"))),
            Expect::Ehlo | Expect::Helo if reply.code == 250 => {
                self.offer = if expect == Expect::Ehlo { Offer::of(&reply) } else { Offer::default() };
                self.after_ehlo(now);
            }
            Expect::Ehlo if !self.tls => {
                self.command(now, Expect::Helo, &format!("HELO {}", self.config.helo))
            }
            Expect::Ehlo | Expect::Helo => {
                self.give_up(Failure::transient(&format!("EHLO/HELO refused: {reply}")))
            }
            Expect::StartTls if reply.code == 220 => {
                let tls = match &self.config.tls {
                    TlsPolicy::Opportunistic(t) | TlsPolicy::Required(t) => t.clone(),
                    TlsPolicy::Never => return,
                };
                // RFC 3207: nothing the server sent after its 220 counts.
                self.input.clear();
                self.upgrade = Some(Upgrade::Client { server_name: tls.server_name, config: tls.config });
            }
            Expect::StartTls => match self.config.tls {
                TlsPolicy::Required(_) => self.give_up(Failure::transient(&format!(
                    "TLS is required and STARTTLS was refused: {reply}"
                ))),
                _ => {
                    // Opportunistic: carry on in plaintext, as the server said no.
                    self.offer.starttls = false;
                    self.after_ehlo(now);
                }
            },
            Expect::AuthPlain | Expect::AuthLogin(2) if reply.code == 235 => {
                self.authenticated = true;
                self.after_ehlo(now);
            }
            Expect::AuthLogin(step @ (0 | 1)) if reply.code == 334 => {
                let (user, password) = self.config.auth.clone().unwrap_or_default();
                let answer = STANDARD.encode(if step == 0 { user } else { password });
                self.command(now, Expect::AuthLogin(step + 1), &answer);
            }
            Expect::AuthPlain | Expect::AuthLogin(_) => {
                self.give_up(Failure::transient(&format!("authentication failed: {reply}")))
            }
            Expect::Mail | Expect::Rcpt(_) | Expect::Data | Expect::Text | Expect::Abandoned => {
                self.transaction_reply(now, expect, reply)
            }
            Expect::Rset => self.next_transaction(now),
            Expect::Quit => self.close = true,
        }
    }

    fn transaction_reply(&mut self, now: Instant, expect: Expect, reply: Reply) {
        let Some(tx) = self.tx.as_mut() else { return };
        match expect {
            Expect::Mail => {
                tx.mail = Some(reply.clone());
                if !reply.is_positive() {
                    let failure = Failure::reply(reply);
                    tx.results.iter_mut().for_each(|r| *r = Some(Err(failure.clone())));
                    // Without PIPELINING nothing more was sent: the transaction is over.
                    if tx.queued.is_empty() {
                        return; // the pipelined replies that follow end it
                    }
                    tx.queued.clear();
                    return self.finish(now, false);
                }
            }
            Expect::Rcpt(i) => {
                if tx.results[i].is_none() {
                    tx.results[i] =
                        Some(if reply.is_positive() { Ok(reply) } else { Err(Failure::reply(reply)) });
                }
                if tx.queued.front().is_some_and(|(e, _)| matches!(e, Expect::Data | Expect::Text))
                    && !tx.results.iter().any(|r| matches!(r, Some(Ok(_))))
                    && tx.results.iter().all(Option::is_some)
                {
                    // Not pipelined, and nobody accepted: no DATA.
                    tx.queued.clear();
                    return self.finish(now, true);
                }
            }
            Expect::Data if reply.code == 354 => {
                let accepted = tx.mail.as_ref().is_some_and(Reply::is_positive)
                    && tx.results.iter().any(|r| matches!(r, Some(Ok(_))));
                if accepted {
                    let mut wire = Vec::with_capacity(tx.message.text.len() + 64);
                    dot_stuff(&tx.message.text, &mut wire);
                    self.out.extend_from_slice(&wire);
                    self.expect.push_back(Expect::Text);
                    self.deadline = Some(now + self.config.data_timeout);
                } else {
                    // RFC 2920 3.1: a 354 with no recipient accepted still needs its end.
                    self.out.extend_from_slice(b".\r\n");
                    self.expect.push_back(Expect::Abandoned);
                }
                return;
            }
            Expect::Data => {
                let failure = Failure::reply(reply);
                for r in tx.results.iter_mut().filter(|r| matches!(r, Some(Ok(_)) | None)) {
                    *r = Some(Err(failure.clone()));
                }
                return self.finish(now, true);
            }
            Expect::Text => {
                for r in tx.results.iter_mut().filter(|r| matches!(r, Some(Ok(_)) | None)) {
                    *r = Some(if reply.is_positive() {
                        Ok(reply.clone())
                    } else {
                        Err(Failure::reply(reply.clone()))
                    });
                }
                let mail_ok = tx.mail.as_ref().is_some_and(Reply::is_positive);
                return self.finish(now, !mail_ok);
            }
            Expect::Abandoned => return self.finish(now, true),
            _ => {}
        }
        self.send_queued(now);
    }

    /// The transaction is over: its outcome, then the next message. `dirty`: the server
    /// may still hold the transaction, so RSET first.
    fn finish(&mut self, now: Instant, dirty: bool) {
        // Pipelined replies may still be due for this transaction: wait for them.
        if self
            .expect
            .iter()
            .any(|e| matches!(e, Expect::Rcpt(_) | Expect::Data | Expect::Text | Expect::Abandoned))
        {
            return;
        }
        let Some(tx) = self.tx.take() else { return };
        let recipients = tx
            .results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Failure::transient("no reply for this recipient"))))
            .collect();
        self.events.push_back(Event::Outcome { id: tx.id, recipients });
        self.dirty = dirty;
        self.next_transaction(now);
    }
}

impl Machine for Client {
    fn wants_connect(&mut self, _now: Instant) -> bool {
        !self.used && !self.waiting.is_empty()
    }

    fn handle_connected(&mut self, now: Instant) {
        self.used = true;
        self.connected = true;
        self.expect.push_back(Expect::Greeting);
        self.deadline = Some(now + self.config.command_timeout);
    }

    fn handle_input(&mut self, now: Instant, data: &[u8]) {
        self.input.extend_from_slice(data);
        loop {
            match Reply::parse(&self.input) {
                Ok(Some((reply, used))) => {
                    self.input.drain(..used);
                    self.on_reply(now, reply);
                    if self.upgrade.is_some() || self.close {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    self.input.clear();
                    return self.give_up(Failure::transient(&format!(
                        "the server said something that is not a reply: {e}"
                    )));
                }
            }
        }
    }

    fn handle_closed(&mut self, _now: Instant, cause: Closed) {
        self.used = true;
        let why = match &cause {
            Closed::Requested => "the connection was closed",
            _ => "the connection was lost",
        };
        self.connected = false;
        self.give_up(Failure::transient(&format!("{why}: {cause}")));
        self.out.clear();
        self.close = false;
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| d <= now) {
            self.give_up(Failure::transient("the server did not answer in time"));
        }
    }

    fn poll_transmit(&mut self) -> Option<&[u8]> {
        self.out.poll()
    }

    fn poll_close(&mut self) -> bool {
        std::mem::take(&mut self.close) && self.connected
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    fn is_drained(&self) -> bool {
        self.used && !self.connected && self.pending() == 0
    }

    fn poll_upgrade(&mut self) -> Option<Upgrade> {
        self.upgrade.take()
    }

    fn handle_upgraded(&mut self, now: Instant) {
        // RFC 3207 4.2: start over inside TLS.
        self.tls = true;
        self.offer = Offer::default();
        self.command(now, Expect::Ehlo, &format!("EHLO {}", self.config.helo));
    }
}
