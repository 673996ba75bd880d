//! WebSocket (RFC 6455) for the shard: a per-connection layer like TLS, and over it (`wss`).
//!
//! A WebSocket connection is a TCP (or TLS) connection with a session layered in: the shard
//! answers the opening handshake, unmasks what arrives and delivers the payload of data
//! frames as `Event::Data`, a byte stream exactly as on TCP (frame boundaries are not kept:
//! the protocols carried, MQTT first, are streams, and MQTT says a frame may hold several
//! packets or part of one). What the handler sends in a tick leaves as one binary frame.
//! Pings are answered, the close handshake is kept (a close frame from the peer reads as its
//! FIN; `Ops::close` sends one), and `Accepted` / `Connected` come once the upgrade is done.
//!
//! - Listen: `Ops::ws_listen` with a [`WsServer`] (subprotocols in order of preference, an
//!   origin allow-list, paths, a message size limit), over TLS with a rustls configuration.
//! - Connect: `Ops::ws_connect` with a [`WsClient`].
//!
//! What a peer does wrong ends its connection with the close code that says why
//! ([`WsError::close_code`]): unmasked client frames, text frames (this layer carries binary
//! streams), oversized messages, broken fragmentation; a bad upgrade request gets the HTTP
//! status that says why (400, 403, 404, 426, 431). Not offered: extensions
//! (permessage-deflate), text messages.
//!
//! **Dependencies**: `httparse` reads the upgrade request and response (the HTTP/1.1 parser
//! tungstenite and hyper use: zero-copy, no allocation); `ring`'s SHA-1 and `base64` make
//! the accept key. The frame codec is ours: it is small, and it unmasks straight into the
//! shard's plaintext arena, where tungstenite's frame types would own a buffer per message
//! and copy again.

mod frame;
mod handshake;
mod session;
mod shard;

pub(crate) use session::Session;

/// The close code of an orderly close.
pub(crate) const NORMAL_CLOSURE: u16 = frame::close_code::NORMAL;

/// Settings of a WebSocket listener.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WsServer {
    /// Subprotocols served, in order of preference (e.g. `mqtt`). A client that offers some
    /// and none of these is refused (400); one that offers none is accepted without one.
    pub protocols: Vec<String>,
    /// Origins allowed (`https://app.example`), compared without case; `None` allows any.
    /// Requests without an Origin header (non-browser clients) are not checked.
    pub origins: Option<Vec<String>>,
    /// Request paths served (`/mqtt`); empty serves every path.
    pub paths: Vec<String>,
    /// The largest message accepted (all its frames); larger ones close with 1009.
    /// Default 64 MiB.
    pub max_message: usize,
}

impl Default for WsServer {
    fn default() -> WsServer {
        WsServer { protocols: Vec::new(), origins: None, paths: Vec::new(), max_message: 64 << 20 }
    }
}

/// Settings of a WebSocket client connection.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WsClient {
    /// The Host header (`broker.example:8080`).
    pub host: String,
    /// The request path (`/mqtt`).
    pub path: String,
    /// Subprotocols offered, in order of preference.
    pub protocols: Vec<String>,
    /// The Origin header to send, if any.
    pub origin: Option<String>,
    /// The largest message accepted from the server. Default 64 MiB.
    pub max_message: usize,
}

impl WsClient {
    /// A client for `path` on `host`, offering no subprotocol.
    pub fn new(host: &str, path: &str) -> WsClient {
        WsClient {
            host: host.into(),
            path: path.into(),
            protocols: Vec::new(),
            origin: None,
            max_message: 64 << 20,
        }
    }
}

/// What went wrong on a WebSocket connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WsError {
    /// The opening handshake failed (refused, malformed, or the wrong accept key).
    #[error("WebSocket handshake failed: {0}")]
    Handshake(String),
    /// The peer broke a framing rule.
    #[error("WebSocket protocol error: {0}")]
    Protocol(&'static str),
    /// A text frame arrived; this layer carries binary streams only.
    #[error("WebSocket text frame refused: this endpoint carries binary data only")]
    Text,
    /// A message exceeded the size limit.
    #[error("WebSocket message over the {0}-byte limit")]
    TooBig(usize),
    /// The opening handshake did not finish in time.
    #[error("WebSocket handshake timed out after {0:?}")]
    HandshakeTimeout(std::time::Duration),
}

impl WsError {
    /// The close code to send for it (section 7.4.1).
    pub fn close_code(&self) -> u16 {
        match self {
            WsError::Text => frame::close_code::UNSUPPORTED_DATA,
            WsError::TooBig(_) => frame::close_code::TOO_BIG,
            _ => frame::close_code::PROTOCOL_ERROR,
        }
    }
}

/// For the fuzz target (`zero-core/fuzz`): drives sessions with arbitrary peer bytes.
#[doc(hidden)]
pub mod fuzzing {
    use std::sync::Arc;

    use super::{Session, WsClient, WsServer};

    /// The first byte picks the role (bit 0) and the piece size (the rest); the remaining
    /// bytes are what the peer sends. A server session is first given a valid upgrade
    /// request half the time (bit 1), so frames are reached too.
    pub fn feed(data: &[u8]) {
        let Some((&control, input)) = data.split_first() else { return };
        let piece = usize::from(control >> 2).max(1);
        let mut plain = Vec::new();
        let mut session = if control & 1 == 0 {
            let mut server = Session::server(Arc::new(WsServer::default()));
            if control & 2 != 0 {
                let request = b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
                server.receive(request, &mut plain).expect("a valid request");
            }
            server
        } else {
            Session::client(Arc::new(WsClient::new("h", "/")))
        };
        let mut out = Vec::new();
        for chunk in input.chunks(piece) {
            plain.clear();
            let failed = session.receive(chunk, &mut plain).is_err();
            assert!(plain.len() <= chunk.len(), "more payload than input");
            session.transmit(&mut out);
            out.clear();
            if failed {
                break;
            }
        }
    }
}
