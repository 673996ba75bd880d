//! A raw SMTP client: exactly the bytes a check sends (pipelined, malformed, smuggled), each
//! reply read whole, STARTTLS on demand.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use zero_core::rustls::{ClientConfig, ClientConnection, StreamOwned};
use zero_smtp::codec::reply::Reply;

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

/// A connection to the server under test.
pub struct Conn {
    stream: Option<Stream>,
    buf: Vec<u8>,
}

/// How long a reply may take.
const WAIT: Duration = Duration::from_secs(10);

impl Conn {
    /// Connects and reads the greeting.
    pub fn open(target: SocketAddr) -> Result<(Conn, Reply), String> {
        let tcp = TcpStream::connect_timeout(&target, WAIT).map_err(|e| format!("connect {target}: {e}"))?;
        tcp.set_read_timeout(Some(WAIT)).map_err(|e| e.to_string())?;
        let mut conn = Conn { stream: Some(Stream::Plain(tcp)), buf: Vec::new() };
        let greeting = conn.reply()?;
        Ok((conn, greeting))
    }

    /// Sends bytes as they are.
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        let result = match self.stream.as_mut().ok_or("not connected")? {
            Stream::Plain(s) => s.write_all(bytes),
            Stream::Tls(s) => s.write_all(bytes).and_then(|()| s.flush()),
        };
        result.map_err(|e| format!("send: {e}"))
    }

    /// Sends a command line (CRLF added) and reads its reply.
    pub fn cmd(&mut self, line: &str) -> Result<Reply, String> {
        self.send(format!("{line}\r\n").as_bytes())?;
        self.reply()
    }

    /// Reads one reply, all its lines.
    pub fn reply(&mut self) -> Result<Reply, String> {
        loop {
            match Reply::parse(&self.buf) {
                Ok(Some((reply, used))) => {
                    self.buf.drain(..used);
                    return Ok(reply);
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(format!("a malformed reply: {e}: {:?}", String::from_utf8_lossy(&self.buf)))
                }
            }
            if self.fill()? == 0 {
                return Err(format!(
                    "the connection closed (after {:?})",
                    String::from_utf8_lossy(&self.buf)
                ));
            }
        }
    }

    /// Reads more bytes; 0 when the server closed.
    fn fill(&mut self) -> Result<usize, String> {
        let mut chunk = [0u8; 16 * 1024];
        let n = match self.stream.as_mut().ok_or("not connected")? {
            Stream::Plain(s) => s.read(&mut chunk),
            Stream::Tls(s) => match s.read(&mut chunk) {
                // A peer closing without close_notify is a close here.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
                other => other,
            },
        }
        .map_err(|e| format!("no reply within {WAIT:?}: {e}"))?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Whether the server closes the connection (without sending more) within the wait.
    pub fn closes(&mut self) -> Result<(), String> {
        match self.fill() {
            Ok(0) => Ok(()),
            Ok(_) => Err(format!("it sent {:?} instead of closing", String::from_utf8_lossy(&self.buf))),
            Err(e) if e.contains("reset") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Bytes the server sent that no reply was read for.
    pub fn unread(&self) -> &[u8] {
        &self.buf
    }

    /// Says EHLO; the capabilities (each keyword line, uppercased).
    pub fn ehlo(&mut self) -> Result<Vec<String>, String> {
        let reply = self.cmd("EHLO client.zero.test")?;
        if reply.code != 250 {
            return Err(format!("EHLO: {}", one_line(&reply)));
        }
        Ok(reply.lines.iter().skip(1).map(|l| l.to_ascii_uppercase()).collect())
    }

    /// Runs the TLS handshake (after a 220 to STARTTLS), checking the certificate for `name`.
    pub fn handshake(&mut self, config: Arc<ClientConfig>, name: &str) -> Result<(), String> {
        let Some(Stream::Plain(tcp)) = self.stream.take() else {
            return Err("not a plain connection".into());
        };
        self.stream = Some(Stream::Tls(Box::new(crate::tls_handshake(tcp, config, name)?)));
        Ok(())
    }
}

/// A reply on one line, for failure messages.
pub fn one_line(reply: &Reply) -> String {
    format!("{} {}", reply.code, reply.lines.join(" / "))
}

/// Whether `capabilities` (from [`Conn::ehlo`]) offer `keyword`.
pub fn offers(capabilities: &[String], keyword: &str) -> bool {
    capabilities.iter().any(|c| c.split_whitespace().next() == Some(keyword))
}
