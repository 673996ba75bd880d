//! `redis://` and `rediss://` URLs:
//! `redis[s]://[[user]:password@]host[:port][/database][?protocol=resp2|resp3&name=NAME]`.
//! User and password are percent-decoded; the host is resolved here, once.

use std::net::ToSocketAddrs;

use super::driver::Target;
use super::machine::{ClientConfig, Protocol};
use crate::error::Error;

/// The target and configuration a URL names (on top of `ClientConfig::default()`).
pub fn parse(url: &str) -> Result<(Target, ClientConfig), Error> {
    let bad = |why: &str| Error::Url(format!("{url}: {why}"));
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme (redis:// or rediss://)"))?;
    let tls = match scheme {
        "redis" => false,
        "rediss" => true,
        _ => return Err(bad("the scheme must be redis:// or rediss://")),
    };
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let mut config = ClientConfig::default();
    if let Some(userinfo) = userinfo {
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (userinfo, None),
        };
        let user = percent_decode(user).ok_or_else(|| bad("bad percent-encoding in the user"))?;
        config.username = (!user.is_empty()).then_some(user);
        if let Some(p) = password {
            config.password =
                Some(percent_decode(p).ok_or_else(|| bad("bad percent-encoding in the password"))?);
        }
    }
    let (host, port) = split_host_port(hostport).ok_or_else(|| bad("bad host or port"))?;
    if !path.is_empty() {
        config.database = path.parse().map_err(|_| bad("the path must be a database number"))?;
    }
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=').unwrap_or((pair, "")) {
            ("protocol", "resp2") => config.protocol = Protocol::Resp2,
            ("protocol", "resp3") => config.protocol = Protocol::Resp3,
            ("name", name) => config.client_name = Some(percent_decode(name).ok_or_else(|| bad("bad name"))?),
            _ => return Err(bad(&format!("unknown parameter {pair:?}"))),
        }
    }
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| bad(&format!("cannot resolve {host}: {e}")))?
        .next()
        .ok_or_else(|| bad(&format!("{host} has no address")))?;
    let tls = match tls {
        true => {
            let roots = zero_core::tls::ClientTls::system_roots().and_then(|t| t.build());
            Some((host.to_string(), roots.map_err(|e| bad(&format!("TLS set-up failed: {e}")))?))
        }
        false => None,
    };
    Ok((Target { addr, tls, socks5: None }, config))
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; the port defaults to 6379.
fn split_host_port(s: &str) -> Option<(&str, u16)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => 6379,
    };
    (!host.is_empty()).then_some((host, port))
}

fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_url() {
        let (target, config) = parse("redis://app:p%40ss@127.0.0.1:6380/3?protocol=resp2&name=svc").unwrap();
        assert_eq!(target.addr, "127.0.0.1:6380".parse().unwrap());
        assert!(target.tls.is_none());
        assert_eq!(config.username.as_deref(), Some("app"));
        assert_eq!(config.password.as_deref(), Some("p@ss"));
        assert_eq!((config.database, config.protocol), (3, Protocol::Resp2));
        assert_eq!(config.client_name.as_deref(), Some("svc"));
    }

    #[test]
    fn defaults_and_password_only() {
        let (target, config) = parse("redis://:secret@[::1]").unwrap();
        assert_eq!(target.addr, "[::1]:6379".parse().unwrap());
        assert_eq!((config.username, config.password.as_deref()), (None, Some("secret")));
        let (target, _) = parse("rediss://localhost:6390").unwrap();
        assert_eq!(target.tls.as_ref().map(|(n, _)| n.as_str()), Some("localhost"));
    }

    #[test]
    fn bad_urls_say_why() {
        for (url, why) in [
            ("http://x", "scheme"),
            ("localhost:6379", "no scheme"),
            ("redis://h:99999", "port"),
            ("redis://h/x", "database"),
            ("redis://h?foo=1", "unknown parameter"),
        ] {
            let e = parse(url).unwrap_err().to_string();
            assert!(e.contains(why), "{url}: {e}");
        }
    }
}
