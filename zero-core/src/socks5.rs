//! A sans-I/O SOCKS5 client: the handshake of RFC 1928 (CONNECT and UDP ASSOCIATE) with the
//! username/password subnegotiation of RFC 1929, and the header codec of UDP ASSOCIATE datagrams.
//!
//! [`Handshake`] never touches a socket: [`Handshake::poll_transmit`] says what to send to the proxy,
//! [`Handshake::handle_input`] takes what the proxy sent, until it reports [`Progress::Done`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The protocol version of RFC 1928.
const VERSION: u8 = 0x05;
/// The subnegotiation version of RFC 1929.
const AUTH_VERSION: u8 = 0x01;
/// METHOD: no authentication required.
const METHOD_NONE: u8 = 0x00;
/// METHOD: username/password (RFC 1929).
const METHOD_USER_PASS: u8 = 0x02;
/// METHOD reply: no acceptable methods.
const METHOD_NO_ACCEPTABLE: u8 = 0xFF;
/// CMD: CONNECT.
const CMD_CONNECT: u8 = 0x01;
/// CMD: UDP ASSOCIATE.
const CMD_UDP_ASSOCIATE: u8 = 0x03;
/// ATYP: IP V4 address.
const ATYP_IPV4: u8 = 0x01;
/// ATYP: DOMAINNAME.
const ATYP_DOMAIN: u8 = 0x03;
/// ATYP: IP V6 address.
const ATYP_IPV6: u8 = 0x04;

/// Where the proxy should connect (or, for UDP ASSOCIATE, the address we will send from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Socks5Target {
    /// An IP address and port (ATYP 0x01 or 0x04).
    Ip(SocketAddr),
    /// A fully-qualified domain name and port, resolved by the proxy (ATYP 0x03).
    Domain(String, u16),
}

impl From<SocketAddr> for Socks5Target {
    fn from(addr: SocketAddr) -> Self {
        Socks5Target::Ip(addr)
    }
}

impl fmt::Display for Socks5Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Socks5Target::Ip(addr) => write!(f, "{addr}"),
            Socks5Target::Domain(host, port) => write!(f, "{host}:{port}"),
        }
    }
}

/// How to authenticate to the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Socks5Auth {
    /// No authentication (METHOD 0x00).
    None,
    /// Username/password authentication of RFC 1929 (METHOD 0x02).
    UserPass {
        /// UNAME: 1 to 255 bytes.
        user: String,
        /// PASSWD: at most 255 bytes.
        password: String,
    },
}

/// The request the handshake makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Socks5Command {
    /// CMD 0x01: a TCP connection to the target through the proxy.
    Connect,
    /// CMD 0x03: a UDP relay; datagrams carry the header of [`encode_udp_header`].
    UdpAssociate,
}

/// Everything that can go wrong in a SOCKS5 exchange; each reply code of RFC 1928 section 6 has its
/// own variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Socks5Error {
    /// The proxy answered the greeting with METHOD 0xFF.
    #[error(
        "SOCKS5 proxy accepted none of the authentication methods offered (method reply 0xFF); we offer \
         only 0x00 (no authentication) when no credentials are configured and only 0x02 \
         (username/password) when they are: configure the credentials the proxy requires"
    )]
    NoAcceptableMethod,
    /// The proxy rejected the username/password (RFC 1929 STATUS not 0x00).
    #[error("SOCKS5 proxy rejected the username/password (RFC 1929 status not 0x00): check the credentials")]
    AuthFailed,
    /// REP 0x01.
    #[error("SOCKS5 proxy failed to carry out the request (reply 0x01 general SOCKS server failure)")]
    GeneralFailure,
    /// REP 0x02: the proxy's ruleset forbids the request.
    #[error("SOCKS5 proxy's ruleset forbids the request (reply 0x02 connection not allowed by ruleset)")]
    NotAllowed,
    /// REP 0x03.
    #[error("SOCKS5 proxy cannot reach the destination's network (reply 0x03 network unreachable)")]
    NetworkUnreachable,
    /// REP 0x04.
    #[error("SOCKS5 proxy cannot reach the destination host (reply 0x04 host unreachable)")]
    HostUnreachable,
    /// REP 0x05.
    #[error("SOCKS5 proxy refused the connection to the destination (reply 0x05 connection refused)")]
    ConnectionRefused,
    /// REP 0x06.
    #[error("SOCKS5 proxy's attempt to reach the destination timed out (reply 0x06 TTL expired)")]
    TtlExpired,
    /// REP 0x07.
    #[error("SOCKS5 proxy does not support the requested command (reply 0x07 command not supported)")]
    CommandNotSupported,
    /// REP 0x08.
    #[error(
        "SOCKS5 proxy does not support the destination's address type (reply 0x08 address type not \
         supported): try an IP address instead of a domain name, or the other IP version"
    )]
    AddressTypeNotSupported,
    /// A REP code RFC 1928 does not assign.
    #[error("SOCKS5 proxy rejected the request with unassigned reply code {0:#04x}")]
    UnknownReply(u8),
    /// A message broke the protocol (bad version byte, unknown ATYP, a method we did not offer, ...).
    #[error("malformed SOCKS5 exchange: {0}")]
    Malformed(&'static str),
    /// A field does not fit its length octet (or is empty where RFC 1928/1929 requires a value).
    #[error("SOCKS5 field out of range: {0}")]
    TooLong(&'static str),
    /// A UDP datagram with FRAG != 0: fragments are not reassembled.
    #[error(
        "SOCKS5 UDP datagram is a fragment (FRAG != 0) and fragment reassembly is not supported: drop it"
    )]
    Fragmented,
}

/// What the handshake did with the bytes it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// More bytes from the proxy are needed.
    Pending,
    /// The proxy accepted the request. `bound` is BND.ADDR:BND.PORT from the reply (for
    /// UDP ASSOCIATE: the relay address to send datagrams to; proxies often answer with an
    /// unspecified address such as `0.0.0.0`, meaning "the proxy's own address"). `consumed` is how
    /// many bytes of the LAST input slice belonged to the handshake; the rest is application data from
    /// the destination and must be delivered to the application.
    Done {
        /// BND.ADDR and BND.PORT of the reply.
        bound: Socks5Target,
        /// Bytes of the last input slice that belonged to the handshake.
        consumed: usize,
    },
}

/// Which reply the handshake waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// METHOD selection reply: `[VER, METHOD]`.
    Method,
    /// RFC 1929 status reply: `[VER, STATUS]`.
    AuthStatus,
    /// Request reply: `[VER, REP, RSV, ATYP, BND.ADDR, BND.PORT]`.
    Reply,
    /// Done or failed; no more input is accepted.
    Finished,
}

/// The client side of a SOCKS5 handshake.
pub struct Handshake {
    state: State,
    /// The one METHOD offered in the greeting.
    method: u8,
    /// Bytes to send at the next `poll_transmit`.
    out: Vec<u8>,
    /// The RFC 1929 subnegotiation request, when username/password is offered.
    auth: Vec<u8>,
    /// The CONNECT or UDP ASSOCIATE request.
    request: Vec<u8>,
    /// The part of the awaited reply received so far (at most 262 bytes).
    buf: Vec<u8>,
}

impl fmt::Debug for Handshake {
    // Hand-written so the credentials in `auth` never reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handshake")
            .field("state", &self.state)
            .field("method", &self.method)
            .field("buffered", &self.buf.len())
            .finish_non_exhaustive()
    }
}

impl Handshake {
    /// Validates lengths up front (TooLong errors) and queues the greeting (method selection
    /// message offering 0x00 when auth is None, or 0x02 only when UserPass is given — offering only
    /// username/password when credentials are configured, so a proxy cannot downgrade us to no-auth).
    pub fn new(
        command: Socks5Command,
        target: Socks5Target,
        auth: Socks5Auth,
    ) -> Result<Handshake, Socks5Error> {
        let cmd = match command {
            Socks5Command::Connect => CMD_CONNECT,
            Socks5Command::UdpAssociate => CMD_UDP_ASSOCIATE,
        };
        let mut request = vec![VERSION, cmd, 0x00];
        match &target {
            Socks5Target::Ip(addr) => put_socket_addr(addr, &mut request),
            Socks5Target::Domain(host, port) => {
                if host.is_empty() {
                    return Err(Socks5Error::TooLong("domain name is empty"));
                }
                let len = u8::try_from(host.len())
                    .map_err(|_| Socks5Error::TooLong("domain name is longer than 255 bytes"))?;
                request.extend_from_slice(&[ATYP_DOMAIN, len]);
                request.extend_from_slice(host.as_bytes());
                request.extend_from_slice(&port.to_be_bytes());
            }
        }
        let (method, auth) = match &auth {
            Socks5Auth::None => (METHOD_NONE, Vec::new()),
            Socks5Auth::UserPass { user, password } => {
                if user.is_empty() {
                    return Err(Socks5Error::TooLong("username is empty"));
                }
                let ulen = u8::try_from(user.len())
                    .map_err(|_| Socks5Error::TooLong("username is longer than 255 bytes"))?;
                let plen = u8::try_from(password.len())
                    .map_err(|_| Socks5Error::TooLong("password is longer than 255 bytes"))?;
                let mut msg = Vec::with_capacity(3 + user.len() + password.len());
                msg.extend_from_slice(&[AUTH_VERSION, ulen]);
                msg.extend_from_slice(user.as_bytes());
                msg.push(plen);
                msg.extend_from_slice(password.as_bytes());
                (METHOD_USER_PASS, msg)
            }
        };
        Ok(Handshake {
            state: State::Method,
            method,
            out: vec![VERSION, 1, method],
            auth,
            request,
            buf: Vec::with_capacity(8),
        })
    }

    /// Appends the bytes to send to the proxy now (if any) to `out`; after this returns, those bytes are
    /// considered sent. Called after `new` and after every `handle_input`.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.out);
    }

    /// Feeds bytes received from the proxy. Replies may arrive split at any byte boundary or several
    /// at once; partial messages are buffered internally, and only the bytes a reply needs are taken,
    /// so `consumed` in [`Progress::Done`] marks where application data starts. After Done or an
    /// error, further calls return `Err(Malformed("handshake already finished"))`.
    pub fn handle_input(&mut self, input: &[u8]) -> Result<Progress, Socks5Error> {
        let result = self.advance(input);
        if result.is_err() {
            self.state = State::Finished;
            self.out.clear();
            self.buf.clear();
        }
        result
    }

    fn advance(&mut self, mut input: &[u8]) -> Result<Progress, Socks5Error> {
        let total = input.len();
        loop {
            let need = match self.state {
                State::Method | State::AuthStatus => 2,
                State::Reply => reply_len(&self.buf)?,
                State::Finished => return Err(Socks5Error::Malformed("handshake already finished")),
            };
            if self.buf.len() < need {
                if input.is_empty() {
                    return Ok(Progress::Pending);
                }
                let (head, rest) = input.split_at((need - self.buf.len()).min(input.len()));
                self.buf.extend_from_slice(head);
                input = rest;
                // Re-evaluate: the bytes just taken may be invalid or reveal that the reply is longer.
                continue;
            }
            match self.state {
                State::Method => {
                    let &[ver, method] = self.buf.as_slice() else {
                        return Err(Socks5Error::Malformed("method reply is not 2 bytes"));
                    };
                    if ver != VERSION {
                        return Err(Socks5Error::Malformed("method reply version is not 0x05"));
                    }
                    if method == METHOD_NO_ACCEPTABLE {
                        return Err(Socks5Error::NoAcceptableMethod);
                    }
                    if method != self.method {
                        return Err(Socks5Error::Malformed(
                            "proxy chose an authentication method we did not offer",
                        ));
                    }
                    if method == METHOD_USER_PASS {
                        self.out.append(&mut self.auth);
                        self.state = State::AuthStatus;
                    } else {
                        self.out.extend_from_slice(&self.request);
                        self.state = State::Reply;
                    }
                }
                State::AuthStatus => {
                    let &[ver, status] = self.buf.as_slice() else {
                        return Err(Socks5Error::Malformed("username/password reply is not 2 bytes"));
                    };
                    // RFC 1929 says VER is 0x01, but some proxies echo the SOCKS version 0x05
                    // here; both are accepted since the status byte is unambiguous either way.
                    if ver != AUTH_VERSION && ver != VERSION {
                        return Err(Socks5Error::Malformed("username/password reply version is not 0x01"));
                    }
                    if status != 0x00 {
                        return Err(Socks5Error::AuthFailed);
                    }
                    self.out.extend_from_slice(&self.request);
                    self.state = State::Reply;
                }
                State::Reply => {
                    // `reply_len` has checked VER, REP and ATYP; RSV is ignored.
                    let atyp = self.buf.get(3).copied().unwrap_or_default();
                    let (bound, _) = read_addr(atyp, self.buf.get(4..).unwrap_or_default())?;
                    self.state = State::Finished;
                    self.buf = Vec::new();
                    self.request = Vec::new();
                    return Ok(Progress::Done { bound, consumed: total - input.len() });
                }
                State::Finished => return Err(Socks5Error::Malformed("handshake already finished")),
            }
            self.buf.clear();
        }
    }
}

/// How many bytes the request reply in `buf` needs, as far as its first bytes tell; checks VER, REP
/// and ATYP as soon as they arrive (a failure reply is reported without waiting for its address).
fn reply_len(buf: &[u8]) -> Result<usize, Socks5Error> {
    if buf.first().is_some_and(|&ver| ver != VERSION) {
        return Err(Socks5Error::Malformed("request reply version is not 0x05"));
    }
    if let Some(&rep) = buf.get(1) {
        reply_result(rep)?;
    }
    Ok(match buf.get(3) {
        None => 4,
        Some(&ATYP_IPV4) => 4 + 4 + 2,
        Some(&ATYP_IPV6) => 4 + 16 + 2,
        Some(&ATYP_DOMAIN) => match buf.get(4) {
            None => 5,
            Some(&len) => 5 + usize::from(len) + 2,
        },
        Some(_) => return Err(Socks5Error::Malformed("unknown address type (ATYP) in request reply")),
    })
}

/// Maps REP to its error (RFC 1928 section 6).
fn reply_result(rep: u8) -> Result<(), Socks5Error> {
    Err(match rep {
        0x00 => return Ok(()),
        0x01 => Socks5Error::GeneralFailure,
        0x02 => Socks5Error::NotAllowed,
        0x03 => Socks5Error::NetworkUnreachable,
        0x04 => Socks5Error::HostUnreachable,
        0x05 => Socks5Error::ConnectionRefused,
        0x06 => Socks5Error::TtlExpired,
        0x07 => Socks5Error::CommandNotSupported,
        0x08 => Socks5Error::AddressTypeNotSupported,
        other => Socks5Error::UnknownReply(other),
    })
}

/// Appends ATYP, ADDR and PORT for an IP address; IPv4-mapped IPv6 addresses go out as ATYP 0x01.
fn put_socket_addr(addr: &SocketAddr, out: &mut Vec<u8>) {
    let ip = match addr.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            out.push(ATYP_IPV4);
            out.extend_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            out.push(ATYP_IPV6);
            out.extend_from_slice(&v6.octets());
        }
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

/// Reads ADDR and PORT of type `atyp` from the start of `bytes`; returns them and their length.
fn read_addr(atyp: u8, bytes: &[u8]) -> Result<(Socks5Target, usize), Socks5Error> {
    const TRUNCATED: Socks5Error = Socks5Error::Malformed("address is truncated");
    let (host_len, skip) = match atyp {
        ATYP_IPV4 => (4, 0),
        ATYP_IPV6 => (16, 0),
        ATYP_DOMAIN => (usize::from(*bytes.first().ok_or(TRUNCATED)?), 1),
        _ => return Err(Socks5Error::Malformed("unknown address type (ATYP)")),
    };
    let host = bytes.get(skip..skip + host_len).ok_or(TRUNCATED)?;
    let port = bytes.get(skip + host_len..skip + host_len + 2).ok_or(TRUNCATED)?;
    let port = u16::from_be_bytes(port.try_into().map_err(|_| TRUNCATED)?);
    let target = match atyp {
        ATYP_IPV4 => {
            let octets: [u8; 4] = host.try_into().map_err(|_| TRUNCATED)?;
            Socks5Target::Ip(SocketAddr::new(Ipv4Addr::from(octets).into(), port))
        }
        ATYP_IPV6 => {
            let octets: [u8; 16] = host.try_into().map_err(|_| TRUNCATED)?;
            Socks5Target::Ip(SocketAddr::new(Ipv6Addr::from(octets).into(), port))
        }
        _ => {
            if host.is_empty() {
                return Err(Socks5Error::Malformed("domain name is empty"));
            }
            let name =
                std::str::from_utf8(host).map_err(|_| Socks5Error::Malformed("domain name is not UTF-8"))?;
            Socks5Target::Domain(name.to_owned(), port)
        }
    };
    Ok((target, skip + host_len + 2))
}

/// UDP ASSOCIATE datagrams (RFC 1928 section 7).
/// Appends the header for a datagram to `to` (RSV 0x0000, FRAG 0, ATYP, DST.ADDR, DST.PORT).
/// IPv4-mapped IPv6 addresses are written as ATYP 0x01.
pub fn encode_udp_header(to: &SocketAddr, out: &mut Vec<u8>) {
    out.extend_from_slice(&[0x00, 0x00, 0x00]);
    put_socket_addr(to, out);
}

/// Parses a relayed datagram's header: returns the original sender and the offset where its payload
/// starts. Domain-name senders are returned as Socks5Target::Domain. RSV is ignored; FRAG != 0 is
/// [`Socks5Error::Fragmented`].
pub fn decode_udp_header(datagram: &[u8]) -> Result<(Socks5Target, usize), Socks5Error> {
    let Some(&[_rsv0, _rsv1, frag, atyp]) = datagram.get(..4) else {
        return Err(Socks5Error::Malformed("UDP datagram is shorter than its 4-byte header"));
    };
    if frag != 0 {
        return Err(Socks5Error::Fragmented);
    }
    let (sender, len) = read_addr(atyp, datagram.get(4..).unwrap_or_default())?;
    Ok((sender, 4 + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn connect(target: Socks5Target) -> Handshake {
        Handshake::new(Socks5Command::Connect, target, Socks5Auth::None).unwrap()
    }

    fn user_pass(user: &str, password: &str) -> Socks5Auth {
        Socks5Auth::UserPass { user: user.into(), password: password.into() }
    }

    fn sent(hs: &mut Handshake) -> Vec<u8> {
        let mut out = Vec::new();
        hs.poll_transmit(&mut out);
        out
    }

    /// Reply to a CONNECT with BND 10.0.0.1:4660.
    const OK_REPLY: [u8; 10] = [5, 0, 0, 1, 10, 0, 0, 1, 0x12, 0x34];

    fn bound_ok() -> Socks5Target {
        Socks5Target::Ip(v4("10.0.0.1:4660"))
    }

    #[test]
    fn greeting_without_auth_offers_only_no_auth() {
        let mut hs = connect(v4("1.2.3.4:80").into());
        assert_eq!(sent(&mut hs), [5, 1, 0]);
        assert_eq!(sent(&mut hs), []);
    }

    #[test]
    fn greeting_with_credentials_offers_only_user_pass() {
        let mut hs =
            Handshake::new(Socks5Command::Connect, v4("1.2.3.4:80").into(), user_pass("u", "pw")).unwrap();
        assert_eq!(sent(&mut hs), [5, 1, 2]);
    }

    #[test]
    fn connect_ipv4() {
        let mut hs = connect(v4("1.2.3.4:80").into());
        assert_eq!(sent(&mut hs), [5, 1, 0]);
        assert_eq!(hs.handle_input(&[5, 0]), Ok(Progress::Pending));
        assert_eq!(sent(&mut hs), [5, 1, 0, 1, 1, 2, 3, 4, 0, 80]);
        assert_eq!(hs.handle_input(&OK_REPLY), Ok(Progress::Done { bound: bound_ok(), consumed: 10 }));
        assert_eq!(sent(&mut hs), []);
    }

    #[test]
    fn connect_ipv6() {
        let mut hs = connect(v4("[2001:db8::1]:443").into());
        sent(&mut hs);
        assert_eq!(hs.handle_input(&[5, 0]), Ok(Progress::Pending));
        let mut expect = vec![5, 1, 0, 4, 0x20, 0x01, 0x0d, 0xb8];
        expect.extend_from_slice(&[0; 11]);
        expect.extend_from_slice(&[1, 0x01, 0xbb]);
        assert_eq!(sent(&mut hs), expect);
        let mut reply = vec![5, 0, 0, 4];
        reply.extend_from_slice(&[0; 15]);
        reply.extend_from_slice(&[1, 0x1f, 0x90]);
        assert_eq!(
            hs.handle_input(&reply),
            Ok(Progress::Done { bound: Socks5Target::Ip(v4("[::1]:8080")), consumed: 22 })
        );
    }

    #[test]
    fn connect_ipv4_mapped_goes_out_as_ipv4() {
        let mut hs = connect(v4("[::ffff:1.2.3.4]:80").into());
        sent(&mut hs);
        hs.handle_input(&[5, 0]).unwrap();
        assert_eq!(sent(&mut hs), [5, 1, 0, 1, 1, 2, 3, 4, 0, 80]);
    }

    #[test]
    fn connect_domain_with_domain_reply() {
        let mut hs = connect(Socks5Target::Domain("example.com".into(), 443));
        sent(&mut hs);
        hs.handle_input(&[5, 0]).unwrap();
        let mut expect = vec![5, 1, 0, 3, 11];
        expect.extend_from_slice(b"example.com");
        expect.extend_from_slice(&[0x01, 0xbb]);
        assert_eq!(sent(&mut hs), expect);
        let mut reply = vec![5, 0, 0, 3, 5];
        reply.extend_from_slice(b"proxy");
        reply.extend_from_slice(&[0, 1]);
        assert_eq!(
            hs.handle_input(&reply),
            Ok(Progress::Done { bound: Socks5Target::Domain("proxy".into(), 1), consumed: 12 })
        );
    }

    #[test]
    fn connect_with_user_pass() {
        let mut hs =
            Handshake::new(Socks5Command::Connect, v4("1.2.3.4:80").into(), user_pass("alice", "s3cret!"))
                .unwrap();
        assert_eq!(sent(&mut hs), [5, 1, 2]);
        assert_eq!(hs.handle_input(&[5, 2]), Ok(Progress::Pending));
        let mut expect = vec![1, 5];
        expect.extend_from_slice(b"alice");
        expect.push(7);
        expect.extend_from_slice(b"s3cret!");
        assert_eq!(sent(&mut hs), expect);
        assert_eq!(hs.handle_input(&[1, 0]), Ok(Progress::Pending));
        assert_eq!(sent(&mut hs), [5, 1, 0, 1, 1, 2, 3, 4, 0, 80]);
        assert_eq!(hs.handle_input(&OK_REPLY), Ok(Progress::Done { bound: bound_ok(), consumed: 10 }));
    }

    #[test]
    fn empty_password_is_allowed() {
        let mut hs =
            Handshake::new(Socks5Command::Connect, v4("1.2.3.4:80").into(), user_pass("u", "")).unwrap();
        sent(&mut hs);
        hs.handle_input(&[5, 2]).unwrap();
        assert_eq!(sent(&mut hs), [1, 1, b'u', 0]);
    }

    #[test]
    fn auth_status_version_5_is_tolerated() {
        let mut hs =
            Handshake::new(Socks5Command::Connect, v4("1.2.3.4:80").into(), user_pass("u", "p")).unwrap();
        hs.handle_input(&[5, 2]).unwrap();
        assert_eq!(hs.handle_input(&[5, 0]), Ok(Progress::Pending));
    }

    #[test]
    fn auth_failure() {
        let mut hs =
            Handshake::new(Socks5Command::Connect, v4("1.2.3.4:80").into(), user_pass("u", "p")).unwrap();
        sent(&mut hs);
        hs.handle_input(&[5, 2]).unwrap();
        sent(&mut hs);
        assert_eq!(hs.handle_input(&[1, 1]), Err(Socks5Error::AuthFailed));
        assert_eq!(sent(&mut hs), []);
        assert_eq!(hs.handle_input(&[1, 0]), Err(Socks5Error::Malformed("handshake already finished")));
    }

    #[test]
    fn auth_status_bad_version() {
        let mut hs =
            Handshake::new(Socks5Command::Connect, v4("1.2.3.4:80").into(), user_pass("u", "p")).unwrap();
        hs.handle_input(&[5, 2]).unwrap();
        assert!(matches!(hs.handle_input(&[2, 0]), Err(Socks5Error::Malformed(_))));
    }

    #[test]
    fn udp_associate_request() {
        let mut hs =
            Handshake::new(Socks5Command::UdpAssociate, v4("0.0.0.0:0").into(), Socks5Auth::None).unwrap();
        assert_eq!(sent(&mut hs), [5, 1, 0]);
        hs.handle_input(&[5, 0]).unwrap();
        assert_eq!(sent(&mut hs), [5, 3, 0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            hs.handle_input(&[5, 0, 0, 1, 192, 168, 1, 1, 0x04, 0x38]),
            Ok(Progress::Done { bound: Socks5Target::Ip(v4("192.168.1.1:1080")), consumed: 10 })
        );
    }

    #[test]
    fn reply_split_one_byte_at_a_time() {
        let mut hs =
            Handshake::new(Socks5Command::Connect, v4("1.2.3.4:80").into(), user_pass("u", "p")).unwrap();
        let mut stream = vec![5, 2, 1, 0];
        stream.extend_from_slice(&OK_REPLY);
        let (last, head) = stream.split_last().unwrap();
        for b in head {
            assert_eq!(hs.handle_input(std::slice::from_ref(b)), Ok(Progress::Pending));
        }
        assert_eq!(hs.handle_input(&[*last]), Ok(Progress::Done { bound: bound_ok(), consumed: 1 }));
        let mut out = Vec::new();
        hs.poll_transmit(&mut out);
        assert_eq!(out, [5, 1, 2, 1, 1, b'u', 1, b'p', 5, 1, 0, 1, 1, 2, 3, 4, 0, 80]);
    }

    #[test]
    fn domain_reply_split_one_byte_at_a_time() {
        let mut hs = connect(v4("1.2.3.4:80").into());
        hs.handle_input(&[5, 0]).unwrap();
        let reply = [5, 0, 0, 3, 2, b'h', b'i', 0, 9];
        for b in &reply[..8] {
            assert_eq!(hs.handle_input(&[*b]), Ok(Progress::Pending));
        }
        assert_eq!(
            hs.handle_input(&[9]),
            Ok(Progress::Done { bound: Socks5Target::Domain("hi".into(), 9), consumed: 1 })
        );
    }

    #[test]
    fn empty_input_is_pending() {
        let mut hs = connect(v4("1.2.3.4:80").into());
        assert_eq!(hs.handle_input(&[]), Ok(Progress::Pending));
        hs.handle_input(&[5, 0]).unwrap();
        assert_eq!(hs.handle_input(&[]), Ok(Progress::Pending));
    }

    #[test]
    fn reply_followed_by_application_data() {
        let mut hs = connect(v4("1.2.3.4:80").into());
        hs.handle_input(&[5, 0]).unwrap();
        let mut input = OK_REPLY.to_vec();
        input.extend_from_slice(b"HTTP/1.1 200 OK");
        assert_eq!(hs.handle_input(&input), Ok(Progress::Done { bound: bound_ok(), consumed: 10 }));
        assert_eq!(&input[10..], b"HTTP/1.1 200 OK");
    }

    #[test]
    fn partial_reply_then_rest_with_application_data() {
        let mut hs = connect(v4("1.2.3.4:80").into());
        hs.handle_input(&[5, 0]).unwrap();
        assert_eq!(hs.handle_input(&OK_REPLY[..6]), Ok(Progress::Pending));
        let mut input = OK_REPLY[6..].to_vec();
        input.extend_from_slice(b"xyz");
        assert_eq!(hs.handle_input(&input), Ok(Progress::Done { bound: bound_ok(), consumed: 4 }));
    }

    #[test]
    fn all_replies_in_one_slice() {
        let mut hs =
            Handshake::new(Socks5Command::Connect, v4("1.2.3.4:80").into(), user_pass("u", "p")).unwrap();
        assert_eq!(sent(&mut hs), [5, 1, 2]);
        let mut input = vec![5, 2, 1, 0];
        input.extend_from_slice(&OK_REPLY);
        input.push(0xAA);
        assert_eq!(hs.handle_input(&input), Ok(Progress::Done { bound: bound_ok(), consumed: 14 }));
        assert_eq!(sent(&mut hs), [1, 1, b'u', 1, b'p', 5, 1, 0, 1, 1, 2, 3, 4, 0, 80]);
    }

    #[test]
    fn each_reply_code_maps_to_its_variant() {
        let cases = [
            (0x01, Socks5Error::GeneralFailure),
            (0x02, Socks5Error::NotAllowed),
            (0x03, Socks5Error::NetworkUnreachable),
            (0x04, Socks5Error::HostUnreachable),
            (0x05, Socks5Error::ConnectionRefused),
            (0x06, Socks5Error::TtlExpired),
            (0x07, Socks5Error::CommandNotSupported),
            (0x08, Socks5Error::AddressTypeNotSupported),
            (0x09, Socks5Error::UnknownReply(0x09)),
            (0x7f, Socks5Error::UnknownReply(0x7f)),
        ];
        for (rep, err) in cases {
            let mut hs = connect(v4("1.2.3.4:80").into());
            hs.handle_input(&[5, 0]).unwrap();
            assert_eq!(sent(&mut hs), [5, 1, 0, 5, 1, 0, 1, 1, 2, 3, 4, 0, 80]);
            assert_eq!(hs.handle_input(&[5, rep, 0, 1, 0, 0, 0, 0, 0, 0]), Err(err.clone()));
            assert_eq!(sent(&mut hs), []);
            // A failure is reported from VER and REP alone, even if the proxy truncates the reply.
            let mut hs = connect(v4("1.2.3.4:80").into());
            hs.handle_input(&[5, 0]).unwrap();
            assert_eq!(hs.handle_input(&[5]), Ok(Progress::Pending));
            assert_eq!(hs.handle_input(&[rep]), Err(err));
        }
    }

    #[test]
    fn no_acceptable_method() {
        let mut hs = connect(v4("1.2.3.4:80").into());
        sent(&mut hs);
        assert_eq!(hs.handle_input(&[5, 0xFF]), Err(Socks5Error::NoAcceptableMethod));
        assert_eq!(sent(&mut hs), []);
    }

    #[test]
    fn method_not_offered_is_malformed() {
        let mut hs = connect(v4("1.2.3.4:80").into());
        assert!(matches!(hs.handle_input(&[5, 2]), Err(Socks5Error::Malformed(_))));
        // With credentials, a proxy answering "no authentication" is a downgrade attempt.
        let mut hs =
            Handshake::new(Socks5Command::Connect, v4("1.2.3.4:80").into(), user_pass("u", "p")).unwrap();
        assert!(matches!(hs.handle_input(&[5, 0]), Err(Socks5Error::Malformed(_))));
        assert_eq!(sent(&mut hs), []);
    }

    #[test]
    fn bad_version_bytes() {
        let mut hs = connect(v4("1.2.3.4:80").into());
        assert!(matches!(hs.handle_input(&[4, 0]), Err(Socks5Error::Malformed(_))));
        let mut hs = connect(v4("1.2.3.4:80").into());
        hs.handle_input(&[5, 0]).unwrap();
        assert!(matches!(hs.handle_input(&[4]), Err(Socks5Error::Malformed(_))));
    }

    #[test]
    fn unknown_atyp_in_reply() {
        let mut hs = connect(v4("1.2.3.4:80").into());
        hs.handle_input(&[5, 0]).unwrap();
        assert!(matches!(hs.handle_input(&[5, 0, 0, 2]), Err(Socks5Error::Malformed(_))));
    }

    #[test]
    fn bad_domain_in_reply() {
        let mut hs = connect(v4("1.2.3.4:80").into());
        hs.handle_input(&[5, 0]).unwrap();
        assert!(matches!(hs.handle_input(&[5, 0, 0, 3, 0, 0, 80]), Err(Socks5Error::Malformed(_))));
        let mut hs = connect(v4("1.2.3.4:80").into());
        hs.handle_input(&[5, 0]).unwrap();
        assert!(matches!(hs.handle_input(&[5, 0, 0, 3, 1, 0xff, 0, 80]), Err(Socks5Error::Malformed(_))));
    }

    #[test]
    fn input_after_done_is_rejected() {
        let mut hs = connect(v4("1.2.3.4:80").into());
        hs.handle_input(&[5, 0]).unwrap();
        hs.handle_input(&OK_REPLY).unwrap();
        assert_eq!(hs.handle_input(b"x"), Err(Socks5Error::Malformed("handshake already finished")));
        assert_eq!(hs.handle_input(&[]), Err(Socks5Error::Malformed("handshake already finished")));
    }

    #[test]
    fn length_limits() {
        let new = |target, auth| Handshake::new(Socks5Command::Connect, target, auth).map(|_| ());
        let ip: Socks5Target = v4("1.2.3.4:80").into();
        assert_eq!(new(Socks5Target::Domain("a".repeat(255), 1), Socks5Auth::None), Ok(()));
        assert!(matches!(
            new(Socks5Target::Domain("a".repeat(256), 1), Socks5Auth::None),
            Err(Socks5Error::TooLong(_))
        ));
        assert!(matches!(
            new(Socks5Target::Domain(String::new(), 1), Socks5Auth::None),
            Err(Socks5Error::TooLong(_))
        ));
        assert_eq!(new(ip.clone(), user_pass(&"u".repeat(255), &"p".repeat(255))), Ok(()));
        assert!(matches!(new(ip.clone(), user_pass(&"u".repeat(256), "p")), Err(Socks5Error::TooLong(_))));
        assert!(matches!(new(ip.clone(), user_pass("", "p")), Err(Socks5Error::TooLong(_))));
        assert!(matches!(new(ip, user_pass("u", &"p".repeat(256))), Err(Socks5Error::TooLong(_))));
    }

    #[test]
    fn udp_header_ipv4_round_trip() {
        let mut d = Vec::new();
        encode_udp_header(&v4("1.2.3.4:53"), &mut d);
        assert_eq!(d, [0, 0, 0, 1, 1, 2, 3, 4, 0, 53]);
        d.extend_from_slice(b"payload");
        assert_eq!(decode_udp_header(&d), Ok((Socks5Target::Ip(v4("1.2.3.4:53")), 10)));
    }

    #[test]
    fn udp_header_ipv6_round_trip() {
        let mut d = Vec::new();
        encode_udp_header(&v4("[fe80::2]:1"), &mut d);
        let mut expect = vec![0, 0, 0, 4, 0xfe, 0x80];
        expect.extend_from_slice(&[0; 13]);
        expect.extend_from_slice(&[2, 0, 1]);
        assert_eq!(d, expect);
        assert_eq!(decode_udp_header(&d), Ok((Socks5Target::Ip(v4("[fe80::2]:1")), 22)));
    }

    #[test]
    fn udp_header_ipv4_mapped_is_encoded_as_ipv4() {
        let mut d = Vec::new();
        encode_udp_header(&v4("[::ffff:1.2.3.4]:53"), &mut d);
        assert_eq!(d, [0, 0, 0, 1, 1, 2, 3, 4, 0, 53]);
    }

    #[test]
    fn udp_header_domain_sender() {
        let mut d = vec![0, 0, 0, 3, 7];
        d.extend_from_slice(b"dns.lan");
        d.extend_from_slice(&[0, 53, 0xAB]);
        assert_eq!(decode_udp_header(&d), Ok((Socks5Target::Domain("dns.lan".into(), 53), 14)));
    }

    #[test]
    fn udp_header_fragment_is_rejected() {
        assert_eq!(decode_udp_header(&[0, 0, 1, 1, 1, 2, 3, 4, 0, 53]), Err(Socks5Error::Fragmented));
        assert_eq!(decode_udp_header(&[0, 0, 0x81, 1, 1, 2, 3, 4, 0, 53]), Err(Socks5Error::Fragmented));
    }

    #[test]
    fn udp_header_truncated_or_bad() {
        let full = [0, 0, 0, 1, 1, 2, 3, 4, 0, 53];
        for len in 0..full.len() {
            assert!(matches!(decode_udp_header(&full[..len]), Err(Socks5Error::Malformed(_))), "len {len}");
        }
        assert!(matches!(decode_udp_header(&[0, 0, 0, 3, 5, b'a']), Err(Socks5Error::Malformed(_))));
        assert!(matches!(
            decode_udp_header(&[0, 0, 0, 9, 1, 2, 3, 4, 0, 53]),
            Err(Socks5Error::Malformed(_))
        ));
        // A header with nothing after it is a valid empty datagram.
        assert_eq!(decode_udp_header(&full), Ok((Socks5Target::Ip(v4("1.2.3.4:53")), 10)));
    }

    #[test]
    fn target_display() {
        assert_eq!(Socks5Target::from(v4("1.2.3.4:80")).to_string(), "1.2.3.4:80");
        assert_eq!(Socks5Target::from(v4("[::1]:80")).to_string(), "[::1]:80");
        assert_eq!(Socks5Target::Domain("example.com".into(), 443).to_string(), "example.com:443");
    }

    #[test]
    fn error_messages_name_the_reply() {
        assert_eq!(
            Socks5Error::ConnectionRefused.to_string(),
            "SOCKS5 proxy refused the connection to the destination (reply 0x05 connection refused)"
        );
        assert_eq!(
            Socks5Error::UnknownReply(0x42).to_string(),
            "SOCKS5 proxy rejected the request with unassigned reply code 0x42"
        );
    }

    #[test]
    fn debug_hides_credentials() {
        let hs = Handshake::new(Socks5Command::Connect, v4("1.2.3.4:80").into(), user_pass("u", "hunter2"))
            .unwrap();
        assert!(!format!("{hs:?}").contains("hunter2"));
    }

    #[test]
    fn random_garbage_never_panics() {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut done, mut failed) = (0, 0);
        for round in 0..20_000 {
            let with_auth = round % 2 == 1;
            let auth = if with_auth { user_pass("user", "pass") } else { Socks5Auth::None };
            let mut hs = Handshake::new(Socks5Command::Connect, v4("1.2.3.4:80").into(), auth).unwrap();
            // A valid reply stream, then random damage: pure garbage, or a few flipped bytes.
            let mut stream = if with_auth { vec![5, 2, 1, 0] } else { vec![5, 0] };
            stream.extend_from_slice(&[5, 0, 0]);
            match next() % 3 {
                0 => stream.extend_from_slice(&[1, 1, 2, 3, 4]),
                1 => stream.extend_from_slice(&[4; 17]),
                _ => {
                    let len = 1 + next() % 6;
                    stream.extend_from_slice(&[3, len as u8]);
                    stream.extend((0..len).map(|_| b'a'));
                }
            }
            stream.extend_from_slice(&[0, 80]);
            let valid_len = stream.len();
            match round % 4 {
                0 => stream = (0..next() % 64).map(|_| next() as u8).collect(),
                1 => {
                    for _ in 0..1 + next() % 3 {
                        let at = (next() % stream.len() as u64) as usize;
                        stream[at] = next() as u8;
                    }
                }
                _ => {}
            }
            stream.extend((0..next() % 8).map(|_| next() as u8));
            let mut rest = stream.as_slice();
            let mut out = Vec::new();
            let mut handshake_bytes = 0;
            while !rest.is_empty() {
                let (chunk, tail) = rest.split_at(1 + (next() % rest.len() as u64) as usize);
                rest = tail;
                match hs.handle_input(chunk) {
                    Ok(Progress::Pending) => handshake_bytes += chunk.len(),
                    Ok(Progress::Done { consumed, .. }) => {
                        assert!(consumed <= chunk.len());
                        handshake_bytes += consumed;
                        done += 1;
                        break;
                    }
                    Err(_) => {
                        failed += 1;
                        break;
                    }
                }
                hs.poll_transmit(&mut out);
            }
            if round % 4 >= 2 {
                assert_eq!(handshake_bytes, valid_len, "round {round}: {stream:?}");
            }
            let _ = decode_udp_header(&stream);
        }
        assert!(done >= 10_000 && failed > 0, "done {done}, failed {failed}");
    }
}
