//! [`Session`]: the TLS layer of one connection. Ciphertext from receive completions goes in,
//! plaintext comes out into the shard's plaintext arena; plaintext the handler sends is staged
//! and encrypted once per tick, so every send of a tick shares its records.

use std::io::Read;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};

use super::TlsError;
use crate::timer::TimerId;

/// What a batch of ciphertext changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Received {
    /// The handshake finished with this batch.
    pub established: bool,
    /// The peer sent `close_notify`: it will send nothing more.
    pub peer_closed: bool,
}

/// One connection's TLS state.
pub(crate) struct Session {
    conn: Connection,
    /// Plaintext sent this tick, encrypted at the next flush.
    pub staged: Vec<u8>,
    /// The handshake deadline while it runs.
    pub deadline: Option<TimerId>,
    established: bool,
    peer_closed: bool,
}

impl Session {
    /// A server session.
    pub fn server(config: Arc<ServerConfig>) -> Result<Session, TlsError> {
        let conn = ServerConnection::new(config).map_err(TlsError::from)?;
        Ok(Session::new(Connection::Server(conn)))
    }

    /// A client session that verifies the server against `server_name` (a DNS name or an IP
    /// address) and sends it as SNI.
    pub fn client(config: Arc<ClientConfig>, server_name: &str) -> Result<Session, TlsError> {
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|_| TlsError::Other(format!("{server_name:?} is not a valid DNS name or IP address")))?;
        let conn = ClientConnection::new(config, name).map_err(TlsError::from)?;
        Ok(Session::new(Connection::Client(conn)))
    }

    fn new(mut conn: Connection) -> Session {
        // The shard bounds what is queued (Config::send_queue_limit); rustls need not.
        conn.set_buffer_limit(None);
        Session { conn, staged: Vec::new(), deadline: None, established: false, peer_closed: false }
    }

    /// Whether the peer has sent `close_notify`.
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// Whether the handshake has finished.
    pub fn is_established(&self) -> bool {
        self.established
    }

    /// Feeds ciphertext; appends the plaintext it yields to `plain`. On error, an alert for the
    /// peer may be waiting: call [`Session::transmit`] before closing.
    pub fn receive(&mut self, mut input: &[u8], plain: &mut Vec<u8>) -> Result<Received, TlsError> {
        let mut got = Received::default();
        while !input.is_empty() && !self.peer_closed {
            // Reading from a slice cannot fail except when rustls' own buffer is full, which
            // draining the plaintext below prevents.
            self.conn.read_tls(&mut input).map_err(|e| TlsError::Protocol(e.to_string()))?;
            let state = self.conn.process_new_packets()?;
            let n = state.plaintext_bytes_to_read();
            if n > 0 {
                let start = plain.len();
                plain.resize(start + n, 0);
                self.conn
                    .reader()
                    .read_exact(&mut plain[start..])
                    .map_err(|e| TlsError::Other(e.to_string()))?;
            }
            if !self.established && !self.conn.is_handshaking() {
                self.established = true;
                got.established = true;
            }
            if state.peer_has_closed() {
                self.peer_closed = true;
                got.peer_closed = true;
            }
        }
        Ok(got)
    }

    /// Encrypts the staged plaintext and appends every pending record to `out`.
    pub fn transmit(&mut self, out: &mut Vec<u8>) {
        if !self.staged.is_empty() {
            // With no buffer limit, rustls takes everything (buffering it until the handshake
            // ends if need be).
            let _ = std::io::Write::write_all(&mut self.conn.writer(), &self.staged);
            self.staged.clear();
        }
        while self.conn.wants_write() {
            // Writing into a Vec cannot fail.
            let _ = self.conn.write_tls(out);
        }
    }

    /// Once established: queues `close_notify` after everything staged, and moves it all to `out`.
    pub fn close_notify(&mut self, out: &mut Vec<u8>) {
        if !self.established {
            return;
        }
        self.transmit(out);
        self.conn.send_close_notify();
        self.transmit(out);
    }

    /// What was negotiated.
    pub fn info(&self) -> TlsInfo {
        let server_name = match &self.conn {
            Connection::Server(s) => s.server_name().map(str::to_owned),
            Connection::Client(_) => None,
        };
        TlsInfo {
            version: self.conn.protocol_version().map(|v| format!("{v:?}")),
            cipher_suite: self.conn.negotiated_cipher_suite().map(|s| format!("{:?}", s.suite())),
            alpn: self.conn.alpn_protocol().map(<[u8]>::to_vec),
            server_name,
            peer_certificates: self.conn.peer_certificates().map(|c| c.iter().map(|c| c.to_vec()).collect()),
            resumed: self.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
        }
    }
}

/// What a TLS connection negotiated (see `Ops::tls_info`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsInfo {
    /// `TLSv1_3` or `TLSv1_2`, once negotiated.
    pub version: Option<String>,
    /// The cipher suite, e.g. `TLS13_AES_128_GCM_SHA256`.
    pub cipher_suite: Option<String>,
    /// The application protocol agreed through ALPN.
    pub alpn: Option<Vec<u8>>,
    /// The name the client asked for (SNI), on the server side.
    pub server_name: Option<String>,
    /// The peer's certificate chain (DER, leaf first), if it presented one.
    pub peer_certificates: Option<Vec<Vec<u8>>>,
    /// The handshake resumed an earlier session (a ticket or session id), rather than making
    /// a new one (an FTPS server asks it of data connections: RFC 4217 10.2).
    pub resumed: bool,
}
