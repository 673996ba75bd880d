//! Download one file with zero-ftp's blocking client, with a progress line.
//!
//! It needs an FTP server, e.g. zero's own serving a directory to anonymous users:
//!
//! ```text
//! zero ftp serve --anonymous --listen 127.0.0.1:2121 --root /srv/files
//! cargo run -p zero-examples --example ftp_download -- ftp://127.0.0.1:2121/big.bin big.bin
//! cargo run -p zero-examples --example ftp_download -- ftp://alice:secret@host:21/pub/f.tgz
//! ```
//!
//! Arguments: `URL [LOCAL_FILE]` (by default the URL's file name, in the current directory).
//! The URL is `ftp://[user[:password]@]host[:port]/path` (`ftps://` for implicit FTPS);
//! without a user, anonymous.

use std::io::Write;
use std::net::ToSocketAddrs;
use std::path::PathBuf;

use zero_core::tls::ClientTls;
use zero_ftp::client::{ClientConfig, Connection, FtpUrl, Progress, Security, TlsClient};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = FtpUrl::parse(&args.next().ok_or("usage: ftp_download URL [LOCAL_FILE]")?)?;
    let local = match args.next() {
        Some(path) => PathBuf::from(path),
        None => {
            let name = url.path.rsplit('/').next().filter(|n| !n.is_empty());
            PathBuf::from(name.ok_or("the URL names no file: give LOCAL_FILE")?)
        }
    };
    let addr =
        (url.host.as_str(), url.port).to_socket_addrs()?.next().ok_or("the host resolves to nothing")?;

    // Login: the URL's user and password, or anonymous. Passive mode (EPSV/PASV) by default.
    let mut config = match (&url.user, &url.password) {
        (Some(user), password) => ClientConfig::new(user, password.as_deref().unwrap_or("")),
        (None, _) => ClientConfig::anonymous(),
    };
    if url.implicit_tls {
        // ftps://: TLS from the first byte, the certificate checked against the system's roots
        // for the URL's host (Security::Explicit would be AUTH TLS on a plain connection).
        let tls = ClientTls::system_roots()?.build()?;
        config.security = Security::Implicit(TlsClient { server_name: url.host.clone(), config: tls });
    }
    // Connects, logs in, reads FEAT, sets TYPE I; returns once the session is ready.
    let mut ftp = Connection::open(addr, config)?;

    // SIZE first (for the total), then RETR into the file; the callback runs about every
    // 100 ms while bytes arrive.
    let mut show = |p: Progress| {
        match p.total {
            Some(total) if total > 0 => {
                eprint!("\r{}: {} / {total} bytes ({}%)", url.path, p.done, p.done * 100 / total)
            }
            _ => eprint!("\r{}: {} bytes", url.path, p.done),
        }
        let _ = std::io::stderr().flush();
    };
    let got = ftp.get(&url.path, &local, false, &mut show)?; // `true` resumes a partial file (REST)
    eprintln!();
    println!("{got} bytes written to {}", local.display());

    ftp.quit()?; // QUIT, then the close
    Ok(())
}
