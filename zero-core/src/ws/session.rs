//! [`Session`]: the WebSocket layer of one connection, sans I/O. Bytes from the transport
//! (TCP, or TLS plaintext) go in; the payload of data frames comes out as a byte stream, so a
//! protocol on top (MQTT) reads exactly what it reads on TCP. What the handler sends is staged
//! and leaves once per tick as one binary frame. Pings are answered, the close handshake is
//! kept, and every rule broken by the peer is an error with the close code to send.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use super::frame::{self, close_code, Header};
use super::handshake;
use super::{WsClient, WsError, WsServer};
use crate::timer::TimerId;

/// What a batch of input changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Received {
    /// The opening handshake finished with this batch.
    pub established: bool,
    /// The peer sent its close frame: it will send nothing more.
    pub peer_closed: bool,
}

enum Role {
    Server(Arc<WsServer>),
    Client { config: Arc<WsClient>, key: String, mask: u64 },
}

/// One connection's WebSocket state.
pub(crate) struct Session {
    role: Role,
    open: bool,
    /// A handshake head, a frame header or a control frame's payload not yet whole.
    buf: Vec<u8>,
    /// The frame being read and how much of its payload has been.
    frame: Option<(Header, u64)>,
    /// The data message being read: its bytes so far, while its last frame has not come.
    message: Option<u64>,
    /// What the handler sent this tick, framed at the next flush.
    pub staged: Vec<u8>,
    /// Bytes to send before any data: the handshake, pongs, a close frame.
    control: Vec<u8>,
    close_sent: bool,
    peer_closed: bool,
    /// The handshake deadline while it runs.
    pub deadline: Option<TimerId>,
    /// The subprotocol agreed.
    pub protocol: Option<String>,
    max_message: u64,
}

impl Session {
    /// A server session: it waits for the client's upgrade request.
    pub fn server(config: Arc<WsServer>) -> Session {
        let max_message = config.max_message as u64;
        Session::new(Role::Server(config), Vec::new(), max_message)
    }

    /// A client session: its upgrade request is the first thing it sends.
    pub fn client(config: Arc<WsClient>) -> Session {
        let mut seed = [0u8; 24];
        // Masking keys need only be unpredictable to scripts in a browser (section 10.3);
        // one draw seeds them all.
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed);
        let key = BASE64.encode(&seed[..16]);
        let request = handshake::request(&config, &key);
        let mask = u64::from_ne_bytes(seed[16..].try_into().expect("8 bytes")) | 1;
        let max_message = config.max_message as u64;
        Session::new(Role::Client { config, key, mask }, request, max_message)
    }

    fn new(role: Role, control: Vec<u8>, max_message: u64) -> Session {
        Session {
            role,
            open: false,
            buf: Vec::new(),
            frame: None,
            message: None,
            staged: Vec::new(),
            control,
            close_sent: false,
            peer_closed: false,
            deadline: None,
            protocol: None,
            max_message,
        }
    }

    /// Whether the opening handshake has finished.
    pub fn is_established(&self) -> bool {
        self.open
    }

    /// Whether the peer has sent its close frame.
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    fn is_server(&self) -> bool {
        matches!(self.role, Role::Server(_))
    }

    /// Feeds transport bytes; appends data payload to `plain`. On error, a refusal or close
    /// frame for the peer may be waiting: call [`Session::transmit`] before closing.
    pub fn receive(&mut self, input: &[u8], plain: &mut Vec<u8>) -> Result<Received, WsError> {
        let mut got = Received::default();
        if self.peer_closed {
            return Ok(got);
        }
        if !self.open {
            self.buf.extend_from_slice(input);
            let Some(consumed) = self.handshake()? else { return Ok(got) };
            got.established = true;
            let rest = self.buf.split_off(consumed);
            self.buf.clear();
            self.frames(&rest, plain, &mut got)?;
            return Ok(got);
        }
        self.frames(input, plain, &mut got)?;
        Ok(got)
    }

    /// Reads the handshake in `buf`; the bytes it took once it is whole.
    fn handshake(&mut self) -> Result<Option<usize>, WsError> {
        let (consumed, protocol) = match &self.role {
            Role::Server(config) => match handshake::accept(&self.buf, config) {
                Ok(None) => return Ok(None),
                Ok(Some(up)) => {
                    self.control.extend_from_slice(&up.response);
                    (up.consumed, up.protocol)
                }
                Err(refusal) => {
                    self.control.extend_from_slice(&refusal.response());
                    self.close_sent = true; // nothing more goes out after the refusal
                    return Err(refusal.error);
                }
            },
            Role::Client { config, key, .. } => match handshake::confirm(&self.buf, config, key)? {
                None => return Ok(None),
                Some(answer) => answer,
            },
        };
        self.open = true;
        self.protocol = protocol;
        Ok(Some(consumed))
    }

    /// Reads frames from `input`.
    fn frames(&mut self, mut input: &[u8], plain: &mut Vec<u8>, got: &mut Received) -> Result<(), WsError> {
        while !input.is_empty() && !self.peer_closed {
            let Some((header, done)) = self.frame else {
                input = self.header(input, got)?;
                continue;
            };
            let take = (header.len - done).min(input.len() as u64) as usize;
            let (payload, rest) = input.split_at(take);
            input = rest;
            let target = if header.is_control() { &mut self.buf } else { &mut *plain };
            let start = target.len();
            target.extend_from_slice(payload);
            if let Some(key) = header.mask {
                frame::apply_mask(&mut target[start..], key, done);
            }
            self.frame = Some((header, done + take as u64));
            self.end_frame_if_whole(got)?;
        }
        Ok(())
    }

    /// Reads a frame header from `buf` and `input`; returns the input after it.
    fn header<'a>(&mut self, input: &'a [u8], got: &mut Received) -> Result<&'a [u8], WsError> {
        let held = self.buf.len();
        let parsed = if held == 0 {
            frame::parse(input)?
        } else {
            // A header is at most 14 bytes.
            let more = input.len().min(14 - held);
            self.buf.extend_from_slice(&input[..more]);
            frame::parse(&self.buf)?
        };
        let Some(header) = parsed else {
            if held == 0 {
                self.buf.extend_from_slice(input);
            }
            return Ok(&[]);
        };
        self.buf.clear();
        self.start_frame(header, got)?;
        Ok(&input[header.header_len - held..])
    }

    /// Checks a frame's header against the connection's state.
    fn start_frame(&mut self, header: Header, got: &mut Received) -> Result<(), WsError> {
        // Section 5.1: clients mask every frame, servers none.
        if header.mask.is_some() != self.is_server() {
            return Err(WsError::Protocol(if self.is_server() {
                "a client frame is not masked"
            } else {
                "a server frame is masked"
            }));
        }
        if !header.is_control() {
            let so_far = match (header.opcode, self.message) {
                (frame::CONTINUATION, Some(n)) => n,
                (frame::CONTINUATION, None) => {
                    return Err(WsError::Protocol("a continuation frame starts no message"))
                }
                (_, Some(_)) => {
                    return Err(WsError::Protocol("a new message starts inside a fragmented one"))
                }
                (frame::TEXT, None) => return Err(WsError::Text),
                (_, None) => 0,
            };
            let total = so_far.saturating_add(header.len);
            if total > self.max_message {
                return Err(WsError::TooBig(self.max_message as usize));
            }
            self.message = (!header.fin).then_some(total);
        }
        self.frame = Some((header, 0));
        // A frame without payload ends here.
        self.end_frame_if_whole(got)
    }

    /// Finishes the current frame if all its payload has been read: control frames act.
    fn end_frame_if_whole(&mut self, got: &mut Received) -> Result<(), WsError> {
        let Some((header, done)) = self.frame.filter(|(h, done)| *done == h.len) else { return Ok(()) };
        debug_assert_eq!(done, header.len);
        self.frame = None;
        if !header.is_control() {
            return Ok(());
        }
        let payload = std::mem::take(&mut self.buf);
        match header.opcode {
            frame::PING if !self.close_sent => self.push_frame(frame::PONG, &payload),
            frame::CLOSE => {
                let code = match payload.len() {
                    0 => close_code::NORMAL,
                    1 => return Err(WsError::Protocol("a close frame with a one-byte body")),
                    _ => u16::from_be_bytes([payload[0], payload[1]]),
                };
                if !self.close_sent {
                    // Echo the status (section 5.5.1).
                    self.push_frame(frame::CLOSE, &code.to_be_bytes());
                    self.close_sent = true;
                }
                self.peer_closed = true;
                got.peer_closed = true;
            }
            _ => {} // a pong, or a ping after our close
        }
        Ok(())
    }

    fn push_frame(&mut self, opcode: u8, payload: &[u8]) {
        let mask = self.next_mask();
        frame::write_frame(&mut self.control, opcode, payload, mask);
    }

    /// The next masking key (clients), `None` for servers.
    fn next_mask(&mut self) -> Option<[u8; 4]> {
        let Role::Client { mask, .. } = &mut self.role else { return None };
        // xorshift64: keys differ frame to frame.
        *mask ^= *mask << 13;
        *mask ^= *mask >> 7;
        *mask ^= *mask << 17;
        Some((*mask as u32).to_ne_bytes())
    }

    /// Appends what is due to `out`: control frames (the handshake first), then the staged
    /// data as one binary frame once the connection is open.
    pub fn transmit(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.control);
        if self.open && !self.close_sent && !self.staged.is_empty() {
            let mask = self.next_mask();
            frame::write_header(out, frame::BINARY, self.staged.len(), mask);
            let start = out.len();
            out.extend_from_slice(&self.staged);
            if let Some(key) = mask {
                frame::apply_mask(&mut out[start..], key, 0);
            }
            self.staged.clear();
        }
    }

    /// Closes: the staged data, then a close frame with `code` (unless one was sent), into
    /// `out`. `code` is what an error says ([`WsError::close_code`]), or 1000.
    pub fn close(&mut self, code: u16, out: &mut Vec<u8>) {
        self.transmit(out);
        if self.open && !self.close_sent {
            self.push_frame(frame::CLOSE, &code.to_be_bytes());
            self.close_sent = true;
            out.append(&mut self.control);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Session, Session) {
        let server =
            Session::server(Arc::new(WsServer { protocols: vec!["mqtt".into()], ..WsServer::default() }));
        let config = WsClient { protocols: vec!["mqtt".into()], ..WsClient::new("h", "/") };
        (server, Session::client(Arc::new(config)))
    }

    /// Moves what `from` has to send into `to`, in pieces of `piece` bytes; returns the data.
    fn carry(from: &mut Session, to: &mut Session, piece: usize) -> (Vec<u8>, Received) {
        let mut wire = Vec::new();
        from.transmit(&mut wire);
        let (mut plain, mut all) = (Vec::new(), Received::default());
        for chunk in wire.chunks(piece.max(1)) {
            let got = to.receive(chunk, &mut plain).unwrap();
            all.established |= got.established;
            all.peer_closed |= got.peer_closed;
        }
        (plain, all)
    }

    #[test]
    fn handshake_data_both_ways_and_the_close_handshake_at_any_cut() {
        for piece in [1, 2, 3, 7, 64, 10_000] {
            let (mut server, mut client) = pair();
            assert!(carry(&mut client, &mut server, piece).1.established);
            assert!(carry(&mut server, &mut client, piece).1.established);
            assert_eq!(client.protocol.as_deref(), Some("mqtt"));
            let big: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
            client.staged.extend_from_slice(&big);
            assert_eq!(carry(&mut client, &mut server, piece).0, big, "client to server, pieces of {piece}");
            server.staged.extend_from_slice(b"hello");
            assert_eq!(carry(&mut server, &mut client, piece).0, b"hello");
            let mut wire = Vec::new();
            client.close(close_code::NORMAL, &mut wire);
            let got = server.receive(&wire, &mut Vec::new()).unwrap();
            assert!(got.peer_closed);
            let (_, echoed) = carry(&mut server, &mut client, piece);
            assert!(echoed.peer_closed, "the server echoes the close");
        }
    }

    #[test]
    fn pings_are_answered_and_rule_breaking_peers_get_the_close_code_that_says_why() {
        let (mut server, mut client) = pair();
        carry(&mut client, &mut server, 100);
        carry(&mut server, &mut client, 100);
        let mut ping = Vec::new();
        frame::write_frame(&mut ping, frame::PING, b"p", Some([9, 9, 9, 9]));
        server.receive(&ping, &mut Vec::new()).unwrap();
        let mut out = Vec::new();
        server.transmit(&mut out);
        assert_eq!(out, [0x8A, 0x01, b'p'], "an unmasked pong with the ping's payload");
        let error = |bytes: &[u8]| {
            let (mut server, mut client) = pair();
            carry(&mut client, &mut server, 100);
            server.receive(bytes, &mut Vec::new()).unwrap_err().close_code()
        };
        let mut unmasked = Vec::new();
        frame::write_frame(&mut unmasked, frame::BINARY, b"x", None);
        assert_eq!(error(&unmasked), close_code::PROTOCOL_ERROR);
        let mut text = Vec::new();
        frame::write_frame(&mut text, frame::TEXT, b"x", Some([1, 2, 3, 4]));
        assert_eq!(error(&text), close_code::UNSUPPORTED_DATA);
        let mut huge = Vec::new();
        frame::write_header(&mut huge, frame::BINARY, 1 << 30, Some([1, 2, 3, 4]));
        assert_eq!(error(&huge), close_code::TOO_BIG);
        let mut orphan = vec![0x80, 0x81, 1, 2, 3, 4, 0];
        orphan[0] = 0x80; // FIN + CONTINUATION with no message
        assert_eq!(error(&orphan), close_code::PROTOCOL_ERROR);
    }

    #[test]
    fn a_refused_upgrade_answers_with_its_http_status() {
        let (mut server, _) = pair();
        let e = server.receive(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", &mut Vec::new()).unwrap_err();
        assert!(matches!(e, WsError::Handshake(_)), "{e}");
        let mut out = Vec::new();
        server.transmit(&mut out);
        assert!(out.starts_with(b"HTTP/1.1 426 "), "{}", String::from_utf8_lossy(&out));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        for _ in 0..2_000 {
            let (mut server, mut client) = pair();
            carry(&mut client, &mut server, 1000);
            let len = (seed % 64) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let _ = server.receive(&bytes, &mut Vec::new());
            let _ = client.receive(&bytes, &mut Vec::new());
        }
    }
}
