//! `ftp://` and `ftps://` URLs (RFC 1738 3.2): `ftp://user:password@host:port/path`.
//!
//! The path is relative to the login directory, as RFC 1738 reads it (`ftp://h/pub/f` is
//! `pub/f`); a path that starts with `%2F` (or a second `/`) is absolute. `ftps://` is
//! implicit FTPS (port 990), as curl and lftp read it.

/// A parsed URL.
#[derive(Clone, PartialEq, Eq)]
pub struct FtpUrl {
    /// `ftps://`: TLS from the first byte.
    pub implicit_tls: bool,
    /// The host name or address (an IPv6 address without its brackets).
    pub host: String,
    /// The port (21, or 990 for `ftps://`, unless given).
    pub port: u16,
    /// The user, if given (percent-decoded).
    pub user: Option<String>,
    /// The password, if given (percent-decoded; hidden from `Debug`).
    pub password: Option<String>,
    /// The path (percent-decoded); empty for the login directory.
    pub path: String,
}

impl std::fmt::Debug for FtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FtpUrl")
            .field("implicit_tls", &self.implicit_tls)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A URL that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{url:?} is not an FTP URL: {why} (the form is ftp://[user[:password]@]host[:port][/path])")]
pub struct UrlError {
    url: String,
    why: &'static str,
}

impl FtpUrl {
    /// Reads `url`.
    pub fn parse(url: &str) -> Result<FtpUrl, UrlError> {
        let bad = |why| UrlError { url: url.to_string(), why };
        let (scheme, rest) = url.split_once("://").ok_or(bad("no scheme"))?;
        let implicit_tls = match scheme.to_ascii_lowercase().as_str() {
            "ftp" => false,
            "ftps" => true,
            _ => return Err(bad("the scheme is neither ftp nor ftps")),
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((user, pass)) => (
                    Some(decode(user).ok_or(bad("bad %-escape"))?),
                    Some(decode(pass).ok_or(bad("bad %-escape"))?),
                ),
                None => (Some(decode(u).ok_or(bad("bad %-escape"))?), None),
            },
            None => (None, None),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or(bad("an unclosed [IPv6] host"))?;
            (host, after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            Some(p) => p.parse().map_err(|_| bad("a bad port"))?,
            None if implicit_tls => 990,
            None => 21,
        };
        let path = decode(path).ok_or(bad("bad %-escape"))?;
        Ok(FtpUrl { implicit_tls, host: host.to_string(), port, user, password, path })
    }
}

/// Percent-decoding (RFC 3986 2.1); `None` for a broken escape or bytes that are not UTF-8.
fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = FtpUrl::parse("ftp://bob:p%40ss@files.example:2121/pub/a%20b.txt").unwrap();
        assert_eq!(
            (
                u.implicit_tls,
                u.host.as_str(),
                u.port,
                u.user.as_deref(),
                u.password.as_deref(),
                u.path.as_str()
            ),
            (false, "files.example", 2121, Some("bob"), Some("p@ss"), "pub/a b.txt")
        );
        let u = FtpUrl::parse("ftps://[::1]/%2Fetc").unwrap();
        assert_eq!((u.implicit_tls, u.host.as_str(), u.port, u.path.as_str()), (true, "::1", 990, "/etc"));
        let u = FtpUrl::parse("FTP://host").unwrap();
        assert_eq!((u.port, u.path.as_str(), u.user.as_deref()), (21, "", None));
        assert!(!format!("{u:?}").contains("password: Some"));
        for bad in ["http://x/", "ftp://", "ftp://h:port/", "ftp://[::1/", "ftp://h/%zz", "host/path"] {
            assert!(FtpUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
