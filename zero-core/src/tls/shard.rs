//! The TLS layer in the shard: starting sessions (listen, connect, STARTTLS), feeding them
//! received ciphertext, announcing the end of a handshake, and failing cleanly.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::{ClientConfig, ServerConfig};

use super::{Session, TlsError, TlsInfo};
use crate::config::ListenOptions;
use crate::conn::{CloseReason, Owed, Phase};
use crate::error::{IoError, Result};
use crate::event::{Chunk, Raw};
use crate::id::{ConnId, ListenerId};
use crate::ops::Ops;
use crate::socks5::Socks5Auth;
use crate::table::Kind;
use crate::timer::TimerKind;

/// Where a client connects: an address, over TCP or over TLS (the name to verify the
/// server's certificate against, and the rustls configuration), directly or through a SOCKS5
/// proxy. The protocol clients' runners keep one and reopen it after every failure.
#[derive(Debug, Clone)]
pub struct Target {
    /// The server's address.
    pub addr: SocketAddr,
    /// TLS: the server name and the client configuration; `None`: plain TCP.
    pub tls: Option<(String, Arc<ClientConfig>)>,
    /// A SOCKS5 proxy to connect through, and how to authenticate to it; `None`: directly.
    pub socks5: Option<(SocketAddr, Socks5Auth)>,
}

impl Target {
    /// Plain TCP to `addr`.
    pub fn tcp(addr: SocketAddr) -> Target {
        Target { addr, tls: None, socks5: None }
    }

    /// TLS to `addr`, verifying the server's certificate against `name`.
    pub fn tls(addr: SocketAddr, name: impl Into<String>, config: Arc<ClientConfig>) -> Target {
        Target { addr, tls: Some((name.into(), config)), socks5: None }
    }

    /// The same, through the SOCKS5 proxy at `proxy` (TLS, if any, runs end to end over it).
    pub fn via_socks5(self, proxy: SocketAddr, auth: Socks5Auth) -> Target {
        Target { socks5: Some((proxy, auth)), ..self }
    }
}

impl Ops {
    /// Opens a connection to `target`: through its proxy if it names one, then over TLS if it
    /// says so (see [`Ops::tls_connect`], [`Ops::tcp_connect_socks5`]).
    pub fn connect_to(&mut self, target: &Target) -> Result<ConnId> {
        let session = match &target.tls {
            Some((name, tls)) => Some(Session::client(tls.clone(), name)?),
            None => None,
        };
        let conn = match &target.socks5 {
            Some((proxy, auth)) => self.tcp_connect_socks5(*proxy, target.addr, auth.clone())?,
            None => self.tcp_connect(target.addr)?,
        };
        if let Some(session) = session {
            super::ktls_available();
            if let Ok(s) = self.stream(conn) {
                s.tls = Some(Box::new(session));
            }
        }
        Ok(conn)
    }

    /// Listens for TLS connections on `addr` with a configuration from
    /// [`ServerTls`](super::ServerTls). A connection is announced (`Event::Accepted`) once its
    /// handshake is done; a failed one raises `Event::HandshakeFailed`.
    pub fn tls_listen(&mut self, addr: SocketAddr, config: Arc<ServerConfig>) -> Result<ListenerId> {
        self.tls_listen_with(addr, &ListenOptions::default(), config)
    }

    /// [`Ops::tls_listen`] with options.
    pub fn tls_listen_with(
        &mut self,
        addr: SocketAddr,
        opts: &ListenOptions,
        config: Arc<ServerConfig>,
    ) -> Result<ListenerId> {
        super::ktls_available();
        let listener = self.tcp_listen_with(addr, opts)?;
        if let Some(Kind::Listener { tls, .. }) =
            self.table.live_mut(listener.index, listener.gen).map(|slot| &mut slot.kind)
        {
            *tls = Some(config);
        }
        Ok(listener)
    }

    /// Connects over TCP, then TLS: `server_name` (a DNS name or IP address) is sent as SNI and
    /// checked against the server's certificate; ALPN comes from `config`
    /// ([`ClientTls`](super::ClientTls)). `Event::Connected` follows the handshake;
    /// `Event::ConnectFailed` names what went wrong (e.g. `TlsError::UnknownIssuer`).
    pub fn tls_connect(
        &mut self,
        addr: SocketAddr,
        server_name: &str,
        config: Arc<ClientConfig>,
    ) -> Result<ConnId> {
        self.connect_to(&Target::tls(addr, server_name, config))
    }

    /// STARTTLS, client side: turns an open plaintext connection into a TLS client session
    /// (call it after the server agreed, e.g. SMTP's `220`). `Event::Upgraded` follows the
    /// handshake; a failure closes the connection with `CloseReason::Tls`.
    ///
    /// Plaintext that arrived after the server's go-ahead and is still queued is discarded; the
    /// rest of the payload being handled is the caller's to discard (CVE-2011-0411).
    pub fn tls_upgrade(&mut self, conn: ConnId, server_name: &str, config: Arc<ClientConfig>) -> Result<()> {
        self.upgrade(conn, Session::client(config, server_name)?)
    }

    /// STARTTLS, server side: turns an open plaintext connection into a TLS server session (call
    /// it right after sending the go-ahead). As [`Ops::tls_upgrade`], queued plaintext that
    /// followed the command is discarded and must be by the caller too.
    pub fn tls_accept_upgrade(&mut self, conn: ConnId, config: Arc<ServerConfig>) -> Result<()> {
        self.upgrade(conn, Session::server(config)?)
    }

    /// What a TLS connection negotiated; `None` for plaintext connections.
    pub fn tls_info(&mut self, conn: ConnId) -> Result<Option<TlsInfo>> {
        Ok(self.stream(conn)?.tls.as_ref().map(|t| t.info()))
    }

    fn upgrade(&mut self, conn: ConnId, session: Session) -> Result<()> {
        let s = self.stream(conn)?;
        if s.tls.is_some() {
            return Err(IoError::WrongKind("the connection already uses TLS"));
        }
        if s.phase != Phase::Open || s.write_closed {
            return Err(IoError::Closing(conn.to_string()));
        }
        s.tls = Some(Box::new(session));
        s.owed = Some(Owed::Upgraded);
        self.start_handshake(conn.index, conn.gen);
        // CVE-2011-0411: bytes that followed the command in plaintext must reach neither the
        // TLS session nor the protocol.
        self.events.retain(|r| !matches!(r, Raw::Data { conn: c, .. } if *c == conn));
        Ok(())
    }

    /// Arms the handshake deadline (one for the TLS and WebSocket handshakes together) and
    /// queues the first flight (a client's hello, or its upgrade request).
    pub(crate) fn start_handshake(&mut self, index: u32, gen: u32) {
        let deadline = self.now + self.config.tls_handshake_timeout;
        let Some(Kind::Stream(s)) = self.table.touch_live(index, gen).map(|slot| &mut slot.kind) else {
            return;
        };
        let timer = Some(self.timers.insert(deadline, TimerKind::Handshake { index, gen }));
        match (&mut s.tls, &mut s.ws) {
            (Some(tls), _) => tls.deadline = timer,
            (None, Some(ws)) => ws.deadline = timer,
            (None, None) => {}
        }
    }

    /// Feeds received ciphertext through the connection's session; queues the plaintext (in
    /// `plain`) and the events it causes.
    pub(crate) fn tls_receive(&mut self, conn: ConnId, ciphertext: &[u8], plain: &mut Vec<u8>) {
        let Some(Kind::Stream(s)) = self.table.touch_live(conn.index, conn.gen).map(|slot| &mut slot.kind)
        else {
            return;
        };
        let Some(tls) = s.tls.as_mut() else {
            return;
        };
        // Over TLS, a WebSocket layer reads the plaintext first.
        let layered = s.ws.is_some();
        let mut scratch = std::mem::take(&mut self.scratch);
        let out = if layered { &mut scratch } else { &mut *plain };
        let start = out.len();
        match tls.receive(ciphertext, out) {
            Ok(got) => {
                if got.established {
                    self.settle(conn);
                }
                if layered {
                    self.ws_receive(conn, &scratch, plain);
                } else if plain.len() > start {
                    let chunk = Chunk::Plain { offset: start, len: plain.len() - start };
                    self.events.push_back(Raw::Data { conn, chunk });
                }
                if got.peer_closed {
                    self.peer_sent_fin(conn, false);
                }
            }
            Err(error) => {
                out.truncate(start);
                self.tls_failed(conn, error);
            }
        }
        scratch.clear();
        self.scratch = scratch;
    }

    /// A closing TLS connection still reads what TLS itself carries: the session tickets a
    /// server sends after its handshake (an FTPS upload's data connection closes before the
    /// server ever writes, and the next one must resume with a ticket), and close_notify.
    /// The plaintext is dropped: the handler asked for the close.
    pub(crate) fn tls_receive_closing(&mut self, conn: ConnId, ciphertext: &[u8]) {
        let Some(Kind::Stream(s)) = self.table.live_mut(conn.index, conn.gen).map(|slot| &mut slot.kind)
        else {
            return;
        };
        let Some(tls) = s.tls.as_mut().filter(|t| t.is_established()) else {
            return;
        };
        let mut scratch = std::mem::take(&mut self.scratch);
        let _ = tls.receive(ciphertext, &mut scratch);
        scratch.clear();
        self.scratch = scratch;
    }

    /// The session failed: send its alert, then close. A connection the handler knows closes
    /// with `CloseReason::Tls`; one it does not know yet reports `ConnectFailed` or
    /// `HandshakeFailed` instead.
    pub(crate) fn tls_failed(&mut self, conn: ConnId, error: TlsError) {
        let Some(Kind::Stream(s)) = self.table.live_mut(conn.index, conn.gen).map(|slot| &mut slot.kind)
        else {
            return;
        };
        let Some(tls) = s.tls.as_mut() else {
            return;
        };
        tracing::debug!(%conn, %error, "TLS failed");
        tls.transmit(s.send.pending());
        if let Some(t) = tls.deadline.take() {
            self.timers.cancel(t);
        }
        s.fail(IoError::Tls(error.clone()));
        self.begin_close(conn, CloseReason::Tls(error));
    }

    /// A handshake deadline passed (TLS, then WebSocket, must be done by then).
    pub(crate) fn handshake_expired(&mut self, index: u32, gen: u32) {
        let timeout = self.config.tls_handshake_timeout;
        let conn = ConnId::new(index, gen);
        let Ok(s) = self.stream(conn) else { return };
        let tls_done = s.tls.as_mut().is_none_or(|t| {
            t.deadline = None;
            t.is_established()
        });
        let ws_done = s.ws.as_mut().is_none_or(|w| {
            w.deadline = None;
            w.is_established()
        });
        let (error, reason) = if !tls_done {
            let error = TlsError::HandshakeTimeout(timeout);
            (IoError::Tls(error.clone()), CloseReason::Tls(error))
        } else if !ws_done {
            let error = crate::ws::WsError::HandshakeTimeout(timeout);
            (IoError::WebSocket(error.clone()), CloseReason::WebSocket(error))
        } else {
            return;
        };
        s.fail(error);
        self.release(index, gen, reason);
    }
}
