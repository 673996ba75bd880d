//! The WebSocket layer in the shard: listeners and connections that start a session, input
//! fed through it, and failures that close with the right code.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::{ClientConfig, ServerConfig};

use super::{Session, WsClient, WsError, WsServer};
use crate::config::ListenOptions;
use crate::conn::CloseReason;
use crate::error::{IoError, Result};
use crate::event::{Chunk, Raw};
use crate::id::{ConnId, ListenerId};
use crate::ops::Ops;
use crate::table::Kind;

impl Ops {
    /// Listens for WebSocket connections on `addr` (over TLS, `wss`, with `tls`). A
    /// connection is announced (`Event::Accepted`) once its upgrade is done; a refused
    /// upgrade gets its HTTP status and raises `Event::HandshakeFailed`.
    pub fn ws_listen(
        &mut self,
        addr: SocketAddr,
        opts: &ListenOptions,
        ws: Arc<WsServer>,
        tls: Option<Arc<ServerConfig>>,
    ) -> Result<ListenerId> {
        let listener = match tls {
            Some(tls) => self.tls_listen_with(addr, opts, tls)?,
            None => self.tcp_listen_with(addr, opts)?,
        };
        if let Some(Kind::Listener { ws: slot, .. }) =
            self.table.live_mut(listener.index, listener.gen).map(|slot| &mut slot.kind)
        {
            *slot = Some(ws);
        }
        Ok(listener)
    }

    /// Connects to `addr` and upgrades to WebSocket (over TLS first if `tls` gives the server
    /// name and configuration). `Event::Connected` follows the upgrade; `Event::ConnectFailed`
    /// says what went wrong (e.g. `WsError::Handshake` for a refused upgrade).
    pub fn ws_connect(
        &mut self,
        addr: SocketAddr,
        ws: Arc<WsClient>,
        tls: Option<(&str, Arc<ClientConfig>)>,
    ) -> Result<ConnId> {
        let conn = match tls {
            Some((name, config)) => self.tls_connect(addr, name, config)?,
            None => self.tcp_connect(addr)?,
        };
        if let Ok(s) = self.stream(conn) {
            s.ws = Some(Box::new(Session::client(ws)));
        }
        Ok(conn)
    }

    /// The subprotocol a WebSocket connection agreed on; `None` for other connections or none.
    pub fn ws_protocol(&mut self, conn: ConnId) -> Result<Option<String>> {
        Ok(self.stream(conn)?.ws.as_ref().and_then(|w| w.protocol.clone()))
    }

    /// Feeds transport bytes (TCP payload, or TLS plaintext) through the connection's
    /// WebSocket session; queues the payload (in `plain`) and the events it causes.
    pub(crate) fn ws_receive(&mut self, conn: ConnId, input: &[u8], plain: &mut Vec<u8>) {
        let Some(Kind::Stream(s)) = self.table.touch_live(conn.index, conn.gen).map(|slot| &mut slot.kind)
        else {
            return;
        };
        let Some(ws) = s.ws.as_mut() else { return };
        let start = plain.len();
        match ws.receive(input, plain) {
            Ok(got) => {
                if got.established {
                    self.settle(conn);
                }
                if plain.len() > start {
                    let chunk = Chunk::Plain { offset: start, len: plain.len() - start };
                    self.events.push_back(Raw::Data { conn, chunk });
                }
                if got.peer_closed {
                    self.peer_sent_fin(conn, false);
                }
            }
            Err(error) => {
                plain.truncate(start);
                self.ws_failed(conn, error);
            }
        }
    }

    /// The session failed: send its refusal or close frame, then close. A connection the
    /// handler knows closes with `CloseReason::WebSocket`; one it does not know yet reports
    /// `ConnectFailed` or is dropped (a refused upgrade on a listener).
    pub(crate) fn ws_failed(&mut self, conn: ConnId, error: WsError) {
        let Some(Kind::Stream(s)) = self.table.live_mut(conn.index, conn.gen).map(|slot| &mut slot.kind)
        else {
            return;
        };
        if s.ws.is_none() {
            return;
        }
        tracing::debug!(%conn, %error, "WebSocket failed");
        s.ws_transmit(Some(error.close_code()));
        if let Some(t) = s.ws.as_mut().and_then(|ws| ws.deadline.take()) {
            self.timers.cancel(t);
        }
        s.fail(IoError::WebSocket(error.clone()));
        self.begin_close(conn, CloseReason::WebSocket(error));
    }
}
