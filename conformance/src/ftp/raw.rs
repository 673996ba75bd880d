//! A raw FTP client: a command line at a time, each reply read whole (zero-ftp's reply
//! reader), data connections opened by hand; TLS on either when a check asks.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use zero_core::rustls::{ClientConfig, ClientConnection, StreamOwned};
use zero_ftp::codec::{command, Reply, ReplyReader};

/// A TLS connection over TCP.
pub type Tls = StreamOwned<ClientConnection, TcpStream>;

/// A control connection to the server under test.
pub struct Conn {
    tcp: TcpStream,
    /// The TLS layer over `tcp`, after `AUTH TLS`.
    tls: Option<Box<Tls>>,
    replies: ReplyReader,
}

/// How long a reply may take.
pub const WAIT: Duration = Duration::from_secs(10);

impl Conn {
    /// Connects and reads the greeting.
    pub fn open(target: SocketAddr) -> Result<(Conn, Reply), String> {
        let tcp = TcpStream::connect_timeout(&target, WAIT).map_err(|e| format!("connect {target}: {e}"))?;
        tcp.set_read_timeout(Some(WAIT)).map_err(|e| e.to_string())?;
        let mut conn = Conn { tcp, tls: None, replies: ReplyReader::new() };
        let greeting = conn.reply()?;
        Ok((conn, greeting))
    }

    /// Sends a command line (CRLF added) and reads its reply.
    pub fn cmd(&mut self, line: &str) -> Result<Reply, String> {
        self.send(line)?;
        self.reply()
    }

    /// Sends a command line without reading.
    pub fn send(&mut self, line: &str) -> Result<(), String> {
        self.send_raw(format!("{line}\r\n").as_bytes()).map_err(|e| format!("send {line}: {e}"))
    }

    /// Sends bytes as they are (over TLS once it is up).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), String> {
        match &mut self.tls {
            Some(tls) => tls.write_all(bytes).and_then(|()| tls.flush()),
            None => self.tcp.write_all(bytes),
        }
        .map_err(|e| e.to_string())
    }

    /// Runs the TLS handshake (after `234` to `AUTH TLS`), checking the certificate for
    /// `name`. Bytes the server sent in plain before it are an error (CVE-2011-0411).
    pub fn handshake(&mut self, config: Arc<ClientConfig>, name: &str) -> Result<(), String> {
        if self.replies.buffered() > 0 {
            return Err("the server sent more in plain after 234".into());
        }
        let tcp = self.tcp.try_clone().map_err(|e| e.to_string())?;
        self.tls = Some(Box::new(crate::tls_handshake(tcp, config, name)?));
        Ok(())
    }

    /// `ABOR` as ftp(1) sends it (RFC 959 4.1.3, RFC 854): Telnet IP, then the Synch (IAC,
    /// and DM as urgent data), then the command. A server that reads its control connection
    /// only on SIGURG (vsftpd) hears it this way.
    pub fn abort(&mut self) -> Result<(), String> {
        self.send_raw(b"\xff\xf4\xff").map_err(|e| format!("send IP: {e}"))?;
        socket2::SockRef::from(&self.tcp).send_out_of_band(b"\xf2").map_err(|e| format!("send DM: {e}"))?;
        self.send("ABOR")
    }

    /// Reads one reply.
    pub fn reply(&mut self) -> Result<Reply, String> {
        loop {
            if let Some(reply) = self.replies.next_reply().map_err(|e| e.to_string())? {
                return Ok(reply);
            }
            let mut chunk = [0u8; 4096];
            let read = match &mut self.tls {
                Some(tls) => tls.read(&mut chunk),
                None => self.tcp.read(&mut chunk),
            };
            match read {
                Ok(0) => return Err("the connection closed".into()),
                Ok(n) => self.replies.push(&chunk[..n]),
                Err(e) => return Err(format!("no reply: {e}")),
            }
        }
    }

    /// `PASV`: the data address the server gives.
    pub fn pasv(&mut self) -> Result<SocketAddr, String> {
        let r = self.cmd("PASV")?;
        if r.code != 227 {
            return Err(format!("PASV: {}", one_line(&r)));
        }
        command::parse_pasv_reply(&r.text()).ok_or_else(|| format!("PASV: no address in {}", one_line(&r)))
    }

    /// `EPSV`: the data port the server gives, on its own address.
    pub fn epsv(&mut self) -> Result<SocketAddr, String> {
        let r = self.cmd("EPSV")?;
        if r.code != 229 {
            return Err(format!("EPSV: {}", one_line(&r)));
        }
        let port = command::parse_epsv_reply(&r.text())
            .ok_or_else(|| format!("EPSV: no port in {}", one_line(&r)))?;
        Ok(SocketAddr::new(self.tcp.peer_addr().map_err(|e| e.to_string())?.ip(), port))
    }

    /// A passive transfer: `command` (RETR, LIST, ...) over a data connection opened first;
    /// the bytes received and the final reply.
    pub fn fetch(&mut self, command: &str) -> Result<(Vec<u8>, Reply), String> {
        self.cmd("TYPE I")?;
        let addr = self.pasv()?;
        let mut data =
            TcpStream::connect_timeout(&addr, WAIT).map_err(|e| format!("data connection: {e}"))?;
        data.set_read_timeout(Some(WAIT)).map_err(|e| e.to_string())?;
        let first = self.cmd(command)?;
        if !first.is_preliminary() {
            return Err(format!("{command}: {}", one_line(&first)));
        }
        let mut bytes = Vec::new();
        data.read_to_end(&mut bytes).map_err(|e| format!("reading the data: {e}"))?;
        Ok((bytes, self.reply()?))
    }

    /// A passive upload of `bytes` with `command` (STOR, APPE); the final reply.
    pub fn upload(&mut self, command: &str, bytes: &[u8]) -> Result<Reply, String> {
        self.cmd("TYPE I")?;
        let addr = self.pasv()?;
        let mut data =
            TcpStream::connect_timeout(&addr, WAIT).map_err(|e| format!("data connection: {e}"))?;
        let first = self.cmd(command)?;
        if !first.is_preliminary() {
            return Err(format!("{command}: {}", one_line(&first)));
        }
        data.write_all(bytes).map_err(|e| format!("writing the data: {e}"))?;
        drop(data);
        self.reply()
    }
}

/// Reads a TLS data connection to its end; whether it ended with close_notify (a bare TCP
/// close could be a truncation).
pub fn read_tls(tls: &mut Tls) -> Result<(Vec<u8>, bool), String> {
    let mut bytes = Vec::new();
    match tls.read_to_end(&mut bytes) {
        Ok(_) => Ok((bytes, true)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok((bytes, false)),
        Err(e) => Err(format!("reading the data: {e}")),
    }
}

/// A reply on one line, for messages.
pub fn one_line(r: &Reply) -> String {
    format!("{} {}", r.code, r.lines.join(" / "))
}
