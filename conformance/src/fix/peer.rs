//! A raw FIX counterparty: it writes exactly the messages a check asks for (with zero-fix's
//! builder, or bytes as given) and reads the acceptor's, with no session layer of its own.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime};

use zero_fix::codec::{Builder, Decoded, Decoder, Precision, Timestamp};

use super::Ids;

/// A received message, owned.
#[derive(Debug)]
pub struct Msg {
    /// MsgType.
    pub msg_type: String,
    fields: Vec<(u32, String)>,
}

impl Msg {
    /// The first value of `tag`.
    pub fn get(&self, tag: u32) -> Option<&str> {
        self.fields.iter().find(|(t, _)| *t == tag).map(|(_, v)| v.as_str())
    }
}

/// The header fields a check may bend.
#[derive(Debug, Clone)]
pub struct Header {
    /// SenderCompID.
    pub sender: String,
    /// SendingTime.
    pub sent: Timestamp,
    /// PossDupFlag.
    pub poss_dup: bool,
    /// OrigSendingTime (written with PossDupFlag only).
    pub orig_sent: Option<Timestamp>,
}

impl Header {
    /// Ours, as a well-behaved peer writes it now.
    pub fn now(ids: &Ids) -> Header {
        let now = Timestamp::from(SystemTime::now());
        Header { sender: ids.sender.clone(), sent: now, poss_dup: false, orig_sent: Some(now) }
    }
}

/// A connection to the acceptor.
pub struct Peer {
    tcp: TcpStream,
    ids: Ids,
    held: Vec<u8>,
    eof: bool,
}

impl Peer {
    /// Connects.
    pub fn connect(ids: &Ids, addr: SocketAddr) -> Result<Peer, String> {
        let tcp = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(Peer { tcp, ids: ids.clone(), held: Vec::new(), eof: false })
    }

    /// A message numbered `seq` with our header and `fields`, sent now.
    pub fn encode(&self, seq: u64, msg_type: &str, fields: &[(u32, &str)], poss_dup: bool) -> Vec<u8> {
        let header = Header { poss_dup, ..Header::now(&self.ids) };
        self.encode_with(&header, seq, msg_type, fields)
    }

    /// A message numbered `seq` with `header` and `fields`.
    pub fn encode_with(&self, header: &Header, seq: u64, msg_type: &str, fields: &[(u32, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut b = Builder::new(&mut out, self.ids.begin_string.as_bytes(), msg_type.as_bytes());
        b.str(49, header.sender.as_bytes()).str(56, self.ids.target.as_bytes()).uint(34, seq);
        if header.poss_dup {
            b.bool(43, true);
        }
        b.timestamp(52, header.sent, Precision::Millis);
        if let Some(orig) = header.orig_sent.filter(|_| header.poss_dup) {
            b.timestamp(122, orig, Precision::Millis);
        }
        for (tag, value) in fields {
            b.str(*tag, value.as_bytes());
        }
        b.finish();
        out
    }

    /// Sends a message numbered `seq`.
    pub fn send(&mut self, seq: u64, msg_type: &str, fields: &[(u32, &str)]) -> Result<(), String> {
        let bytes = self.encode(seq, msg_type, fields, false);
        self.raw(&bytes)
    }

    /// Sends a message numbered `seq` with PossDupFlag and OrigSendingTime.
    pub fn send_poss_dup(&mut self, seq: u64, msg_type: &str, fields: &[(u32, &str)]) -> Result<(), String> {
        let bytes = self.encode(seq, msg_type, fields, true);
        self.raw(&bytes)
    }

    /// Sends a message numbered `seq` with `header`.
    pub fn send_with(
        &mut self,
        header: &Header,
        seq: u64,
        msg_type: &str,
        fields: &[(u32, &str)],
    ) -> Result<(), String> {
        let bytes = self.encode_with(header, seq, msg_type, fields);
        self.raw(&bytes)
    }

    /// Who this peer is.
    pub fn ids(&self) -> &Ids {
        &self.ids
    }

    /// Sends bytes as they are.
    pub fn raw(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.tcp.write_all(bytes).map_err(|e| format!("send: {e}"))
    }

    /// The next message within `wait`; `None` if the connection closed or nothing came.
    pub fn recv(&mut self, wait: Duration) -> Result<Option<Msg>, String> {
        let deadline = Instant::now() + wait;
        loop {
            let mut decoder = Decoder::default();
            match decoder.decode(&self.held) {
                Decoded::Message(m) => {
                    let len = m.bytes().len();
                    let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
                    let msg = Msg {
                        msg_type: text(m.msg_type()),
                        fields: m.fields().iter().map(|f| (f.tag, text(m.value(f)))).collect(),
                    };
                    self.held.drain(..len);
                    return Ok(Some(msg));
                }
                Decoded::Garbled { why, .. } => {
                    return Err(format!("the acceptor sent a garbled message: {why}"))
                }
                Decoded::Malformed { why, .. } => {
                    return Err(format!("the acceptor sent a malformed message: {why}"))
                }
                Decoded::Partial => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.eof {
                return Ok(None);
            }
            self.tcp.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
            let mut buf = [0u8; 8192];
            match self.tcp.read(&mut buf) {
                Ok(0) => self.eof = true,
                Ok(n) => self.held.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => self.eof = true,
            }
        }
    }

    /// The next message of `msg_type`, skipping Heartbeats (unless one is asked for).
    pub fn expect(&mut self, msg_type: &str, wait: Duration) -> Result<Msg, String> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left)? {
                Some(m) if m.msg_type == msg_type => return Ok(m),
                Some(m) if m.msg_type == "0" => continue,
                Some(m) => {
                    return Err(format!(
                        "expected {msg_type}, got {} (58={:?}, 373={:?})",
                        m.msg_type,
                        m.get(58),
                        m.get(373)
                    ))
                }
                None => return Err(format!("expected {msg_type}, got nothing")),
            }
        }
    }

    /// Whether the acceptor closes the connection within `wait` (what it sends meanwhile is
    /// read and dropped).
    pub fn closed(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        while !self.eof && Instant::now() < deadline {
            if self.recv(deadline.saturating_duration_since(Instant::now())).is_err() {
                return false;
            }
        }
        self.eof
    }
}
