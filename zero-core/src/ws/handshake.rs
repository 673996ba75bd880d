//! The opening handshake (RFC 6455 section 4): the client's HTTP/1.1 upgrade request and the
//! server's `101 Switching Protocols`, parsed with `httparse`, keyed with SHA-1 and base64.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use super::{WsClient, WsError, WsServer};

/// The GUID a server appends to the client's key (section 1.3).
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// The largest request or response head accepted.
pub const MAX_HEAD: usize = 8 * 1024;
/// Headers read from a request or response.
const MAX_HEADERS: usize = 32;

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`.
pub fn accept_key(key: &str) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(key.as_bytes());
    ctx.update(GUID.as_bytes());
    BASE64.encode(ctx.finish())
}

/// Whether the comma-separated header `value` lists `token` (case-insensitively).
fn lists(value: &[u8], token: &str) -> bool {
    value.split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

fn header<'h>(headers: &'h [httparse::Header<'_>], name: &str) -> Option<&'h [u8]> {
    headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value)
}

/// A refused upgrade request: the HTTP status to answer with, and why.
#[derive(Debug)]
pub struct Refusal {
    /// The status code (400, 403, 404, 426, 431).
    pub status: u16,
    /// What was wrong, for the log and the error.
    pub error: WsError,
}

impl Refusal {
    fn new(status: u16, why: impl Into<String>) -> Refusal {
        Refusal { status, error: WsError::Handshake(why.into()) }
    }

    /// The HTTP response that refuses the upgrade.
    pub fn response(&self) -> Vec<u8> {
        let text = match self.status {
            403 => "Forbidden",
            404 => "Not Found",
            426 => "Upgrade Required",
            431 => "Request Header Fields Too Large",
            _ => "Bad Request",
        };
        let version = if self.status == 426 { "Sec-WebSocket-Version: 13\r\n" } else { "" };
        format!("HTTP/1.1 {} {text}\r\n{version}Connection: close\r\nContent-Length: 0\r\n\r\n", self.status)
            .into_bytes()
    }
}

/// What a server made of a whole upgrade request.
#[derive(Debug)]
pub struct Upgrade {
    /// Bytes of the input the request took.
    pub consumed: usize,
    /// The `101` response to send.
    pub response: Vec<u8>,
    /// The subprotocol chosen, if any.
    pub protocol: Option<String>,
}

/// Reads a client's upgrade request at the start of `buf`: `Ok(None)` until it is whole.
pub fn accept(buf: &[u8], config: &WsServer) -> Result<Option<Upgrade>, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let consumed = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
            return Err(Refusal::new(431, "the upgrade request is over 8 KiB"))
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Refusal::new(431, "too many headers")),
        Err(e) => return Err(Refusal::new(400, format!("not an HTTP request: {e}"))),
    };
    if req.method != Some("GET") || req.version != Some(1) {
        return Err(Refusal::new(400, "the upgrade must be an HTTP/1.1 GET"));
    }
    let path = req.path.unwrap_or("/");
    let path_only = path.split('?').next().unwrap_or(path);
    if !config.paths.is_empty() && !config.paths.iter().any(|p| p == path_only) {
        return Err(Refusal::new(404, format!("no WebSocket endpoint at {path_only}")));
    }
    let h = req.headers;
    if header(h, "host").is_none() {
        return Err(Refusal::new(400, "no Host header"));
    }
    if !header(h, "upgrade").is_some_and(|v| lists(v, "websocket")) {
        return Err(Refusal::new(426, "not a WebSocket upgrade (Upgrade: websocket)"));
    }
    if !header(h, "connection").is_some_and(|v| lists(v, "upgrade")) {
        return Err(Refusal::new(400, "Connection does not list upgrade"));
    }
    if header(h, "sec-websocket-version") != Some(b"13") {
        return Err(Refusal::new(426, "Sec-WebSocket-Version is not 13"));
    }
    let key = header(h, "sec-websocket-key")
        .and_then(|k| std::str::from_utf8(k).ok())
        .map(str::trim)
        .filter(|k| BASE64.decode(k).is_ok_and(|raw| raw.len() == 16))
        .ok_or_else(|| Refusal::new(400, "Sec-WebSocket-Key is missing or not 16 base64 bytes"))?;
    // Browsers always send Origin; other clients usually do not, and are not checked.
    if let (Some(allowed), Some(origin)) = (&config.origins, header(h, "origin")) {
        if !allowed.iter().any(|a| a.as_bytes().eq_ignore_ascii_case(origin)) {
            let origin = String::from_utf8_lossy(origin);
            return Err(Refusal::new(403, format!("origin {origin} is not allowed")));
        }
    }
    let offered: Vec<&[u8]> = h
        .iter()
        .filter(|x| x.name.eq_ignore_ascii_case("sec-websocket-protocol"))
        .flat_map(|x| x.value.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|p| !p.is_empty())
        .collect();
    // The server's preference decides among what the client offered.
    let protocol =
        config.protocols.iter().find(|p| offered.iter().any(|o| o.eq_ignore_ascii_case(p.as_bytes())));
    if protocol.is_none() && !offered.is_empty() {
        let offered: Vec<_> = offered.iter().map(|o| String::from_utf8_lossy(o)).collect();
        return Err(Refusal::new(400, format!("none of the subprotocols {offered:?} is served")));
    }
    let mut response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        accept_key(key)
    );
    if let Some(p) = protocol {
        response.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
    }
    response.push_str("\r\n");
    Ok(Some(Upgrade { consumed, response: response.into_bytes(), protocol: protocol.cloned() }))
}

/// A client's upgrade request with `key` (16 random bytes, base64).
pub fn request(config: &WsClient, key: &str) -> Vec<u8> {
    let mut r = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n",
        config.path, config.host
    );
    if !config.protocols.is_empty() {
        r.push_str(&format!("Sec-WebSocket-Protocol: {}\r\n", config.protocols.join(", ")));
    }
    if let Some(origin) = &config.origin {
        r.push_str(&format!("Origin: {origin}\r\n"));
    }
    r.push_str("\r\n");
    r.into_bytes()
}

/// Reads the server's answer at the start of `buf`: `Ok(None)` until it is whole, then the
/// bytes it took and the subprotocol it chose.
pub fn confirm(buf: &[u8], config: &WsClient, key: &str) -> Result<Option<(usize, Option<String>)>, WsError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut headers);
    let consumed = match res.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
            return Err(WsError::Handshake("the server's answer is over 8 KiB".into()))
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(WsError::Handshake(format!("the server's answer is not HTTP: {e}"))),
    };
    if res.code != Some(101) {
        let (code, reason) = (res.code.unwrap_or(0), res.reason.unwrap_or(""));
        return Err(WsError::Handshake(format!("the server refused the upgrade: {code} {reason}")));
    }
    let h = res.headers;
    let upgraded = header(h, "upgrade").is_some_and(|v| lists(v, "websocket"))
        && header(h, "connection").is_some_and(|v| lists(v, "upgrade"));
    if !upgraded {
        return Err(WsError::Handshake(
            "the 101 answer lacks Upgrade: websocket / Connection: Upgrade".into(),
        ));
    }
    if header(h, "sec-websocket-accept") != Some(accept_key(key).as_bytes()) {
        return Err(WsError::Handshake("Sec-WebSocket-Accept does not match the key".into()));
    }
    let protocol = header(h, "sec-websocket-protocol").map(|p| String::from_utf8_lossy(p).trim().to_string());
    if let Some(p) = &protocol {
        if !config.protocols.iter().any(|o| o.eq_ignore_ascii_case(p)) {
            return Err(WsError::Handshake(format!(
                "the server chose subprotocol {p}, which was not offered"
            )));
        }
    }
    Ok(Some((consumed, protocol)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> WsServer {
        WsServer { protocols: vec!["mqtt".into()], ..WsServer::default() }
    }

    const REQUEST: &str = "GET /mqtt HTTP/1.1\r\nHost: example\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqttv3.1, mqtt\r\nOrigin: http://example\r\n\r\n";

    #[test]
    fn the_rfc_key_example_and_a_whole_request() {
        assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let up = accept(REQUEST.as_bytes(), &server()).unwrap().unwrap();
        assert_eq!(up.consumed, REQUEST.len());
        assert_eq!(up.protocol.as_deref(), Some("mqtt"));
        let text = String::from_utf8(up.response).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 101 ")
                && text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n")
        );
        assert!(text.contains("Sec-WebSocket-Protocol: mqtt\r\n"), "{text}");
        for cut in 0..REQUEST.len() {
            assert!(accept(&REQUEST.as_bytes()[..cut], &server()).unwrap().is_none(), "cut at {cut}");
        }
    }

    #[test]
    fn bad_requests_get_the_status_that_says_why() {
        let refuse = |req: &str, config: &WsServer| accept(req.as_bytes(), config).unwrap_err().status;
        assert_eq!(refuse(&REQUEST.replace("GET", "POST"), &server()), 400);
        assert_eq!(refuse(&REQUEST.replace("Version: 13", "Version: 8"), &server()), 426);
        assert_eq!(refuse(&REQUEST.replace("Upgrade: websocket", "Upgrade: h2c"), &server()), 426);
        assert_eq!(refuse(&REQUEST.replace("dGhlIHNhbXBsZSBub25jZQ==", "short"), &server()), 400);
        assert_eq!(refuse(&REQUEST.replace("mqttv3.1, mqtt", "wamp"), &server()), 400);
        assert_eq!(refuse("garbage\r\n\r\n", &server()), 400);
        let only = WsServer { origins: Some(vec!["https://app.example".into()]), ..server() };
        assert_eq!(refuse(REQUEST, &only), 403);
        let paths = WsServer { paths: vec!["/ws".into()], ..server() };
        assert_eq!(refuse(REQUEST, &paths), 404);
        let long = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(MAX_HEAD));
        assert_eq!(refuse(&long, &server()), 431);
    }

    #[test]
    fn a_client_request_is_accepted_and_the_answer_confirmed() {
        let client = WsClient { protocols: vec!["mqtt".into()], ..WsClient::new("broker.test", "/mqtt") };
        let key = "AQIDBAUGBwgJCgsMDQ4PEA==";
        let up = accept(&request(&client, key), &server()).unwrap().unwrap();
        let (consumed, protocol) = confirm(&up.response, &client, key).unwrap().unwrap();
        assert_eq!((consumed, protocol.as_deref()), (up.response.len(), Some("mqtt")));
        assert!(confirm(&up.response, &client, "AAAAAAAAAAAAAAAAAAAAAA==").is_err(), "wrong accept key");
        assert!(confirm(b"HTTP/1.1 403 Forbidden\r\n\r\n", &client, key).is_err());
    }
}
