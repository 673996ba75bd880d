//! The trace header a server adds to each message it accepts (RFC 5321 4.4, RFC 3848).

use std::time::SystemTime;

use super::Envelope;

/// `Received: from HELO ([ip]) by HOST with ESMTPSA id ID for <rcpt>; DATE`: the protocol
/// word says ESMTP, and S for TLS and A for an authenticated client (RFC 3848); `for` only
/// with a single recipient (naming several would tell each about the others).
pub fn received(e: &Envelope, host: &str, id: &str, now: SystemTime) -> String {
    let protocol = match (e.esmtp, e.tls, e.authenticated.is_some()) {
        (false, _, _) => "SMTP",
        (true, false, false) => "ESMTP",
        (true, true, false) => "ESMTPS",
        (true, false, true) => "ESMTPA",
        (true, true, true) => "ESMTPSA",
    };
    let ip = match e.peer.addr.ip() {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => format!("IPv6:{v6}"),
    };
    let helo: String = e.helo.chars().filter(|c| !c.is_control()).collect();
    let for_ = match e.recipients.as_slice() {
        [only] => format!("\r\n\tfor <{}>", only.address),
        _ => String::new(),
    };
    let date = jiff::Timestamp::try_from(now)
        .map(|t| t.strftime("%a, %-d %b %Y %H:%M:%S +0000").to_string())
        .unwrap_or_default();
    format!("Received: from {helo} ([{ip}])\r\n\tby {host} with {protocol} id {id}{for_};\r\n\t{date}\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::{Peer, Recipient};

    #[test]
    fn the_received_line_names_client_server_protocol_and_date() {
        let e = Envelope {
            peer: Peer { addr: "192.0.2.7:40000".parse().unwrap(), trusted: false, tls: false },
            helo: "client.test".into(),
            esmtp: true,
            tls: true,
            authenticated: None,
            from: "a@client.test".into(),
            recipients: vec![Recipient { address: "b@zero.test".into(), notify: None, orcpt: None }],
            body: None,
            smtputf8: false,
            requiretls: false,
            ret: None,
            envid: None,
        };
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_796_624_940);
        assert_eq!(
            received(&e, "mx.zero.test", "0001", at),
            "Received: from client.test ([192.0.2.7])\r\n\tby mx.zero.test with ESMTPS id 0001\r\n\tfor <b@zero.test>;\r\n\tMon, 7 Dec 2026 06:29:00 +0000\r\n"
        );
    }
}
