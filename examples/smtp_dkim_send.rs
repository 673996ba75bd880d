//! One mail through zero-smtp's client, DKIM-signed with zero-smtp's signer.
//!
//! It needs an SMTP server that accepts mail for the recipient, e.g. zero's own:
//!
//! ```text
//! openssl genpkey -algorithm ed25519 -out dkim.pem      # or an RSA key of 2048 bits
//! zero smtp serve --listen 127.0.0.1:2525 --accept-domain zero.test --spool spool
//! cargo run -p zero-examples --example smtp_dkim_send -- \
//!     127.0.0.1:2525 joe@client.test a@zero.test dkim.pem s1 client.test
//! zero smtp queue list --text --spool spool             # shows the DKIM-Signature
//! ```
//!
//! Arguments: `SERVER FROM TO KEY.pem SELECTOR DOMAIN`. Publish `SigningKey::dns_record()` as
//! TXT at `SELECTOR._domainkey.DOMAIN` for receivers to verify it.

use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lettre::message::Mailbox;
use lettre::Message;
use zero_core::Target;
use zero_smtp::client::{send_blocking, ClientConfig, Outgoing, To};
use zero_smtp::dkim::{Signer, SigningKey};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [server, from, to, key, selector, domain] = args.as_slice() else {
        return Err("usage: smtp_dkim_send SERVER FROM TO KEY.pem SELECTOR DOMAIN".into());
    };
    let addr = server.to_socket_addrs()?.next().ok_or("the server address resolves to nothing")?;

    // The message, built with lettre (headers, Date, Message-ID, CRLF line ends).
    let message = Message::builder()
        .from(from.parse::<Mailbox>()?)
        .to(to.parse::<Mailbox>()?)
        .subject("hello from zero")
        .date_now()
        .body(String::from("Signed with DKIM by zero-smtp.\r\n"))?;
    let mut text = message.formatted();

    // DKIM: the signer returns the DKIM-Signature header field; it goes in front of the text.
    let key = SigningKey::from_pem(&std::fs::read_to_string(key)?)?;
    println!("DNS record for {selector}._domainkey.{domain}: {}", key.dns_record());
    let signer = Signer::new(domain, selector, key);
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    text = [signer.sign(&text, now).into_bytes(), text].concat();

    // The envelope and the text; plain SMTP (set config.tls to a TlsPolicy for STARTTLS).
    let outgoing = Outgoing {
        from: from.clone(),
        to: vec![To::new(to)],
        eight_bit: text.iter().any(|&b| b >= 0x80),
        text: Arc::from(text),
        smtputf8: false,
        requiretls: false,
        ret: None,
        envid: None,
    };
    // "localhost": the name given in EHLO. One connection, one message, at most 60 s; an
    // outcome per message, per recipient.
    let config = ClientConfig::new("localhost");
    let (outcomes, _tls) = send_blocking(Target::tcp(addr), config, vec![outgoing], Duration::from_secs(60))?;
    for outcome in outcomes.iter().flatten() {
        match outcome {
            Ok(reply) => println!("<{to}>: {reply}"),
            Err(failure) => return Err(format!("<{to}>: not delivered: {}", failure.why).into()),
        }
    }
    Ok(())
}
