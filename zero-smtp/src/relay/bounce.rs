//! Delivery status notifications (RFC 3464, RFC 3462 `multipart/report`): the bounce a
//! sender gets when recipients failed for good, and the warning when delivery is late. The
//! message is built with lettre's builder (headers, date, encoding); the report's parts are
//! laid out here, since lettre has no `multipart/report`.

use std::time::SystemTime;

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, Message, SinglePart};

use crate::client::Failure;

/// Why the report is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// Recipients failed for good (`Action: failed`).
    Failed,
    /// Delivery is late and still being tried (`Action: delayed`).
    Delayed,
}

/// What a report is about.
#[derive(Debug, Clone, Copy)]
pub struct Notice<'a> {
    /// Why it is sent.
    pub kind: Report,
    /// The reporting host (`MAILER-DAEMON@host` sends it).
    pub host: &'a str,
    /// The message's queue id.
    pub queue_id: &'a str,
    /// Who gets it: the message's sender.
    pub sender: &'a str,
    /// The recipients, each with its last failure.
    pub recipients: &'a [(String, Failure)],
    /// The message's text.
    pub original: &'a [u8],
    /// Attach the whole message (`RET=FULL`), else its headers.
    pub full: bool,
}

/// The report's text, CRLF line ends, ready to spool.
pub fn report(n: &Notice<'_>, now: SystemTime) -> Result<Vec<u8>, String> {
    let Notice { kind, host, queue_id, sender, recipients, original, full } = *n;
    let boundary = format!("{queue_id}/{host}");
    let (subject, opening, action) = match kind {
        Report::Failed => (
            "Undelivered Mail Returned to Sender",
            "Your message could not be delivered to one or more recipients. It was given up on.",
            "failed",
        ),
        Report::Delayed => (
            "Delayed Mail (still being retried)",
            "Your message has not been delivered yet to the recipients below. Delivery is still being tried; you need not send it again.",
            "delayed",
        ),
    };
    let mut human = format!("This is the mail system at {host}.\r\n\r\n{opening}\r\n\r\n");
    for (address, failure) in recipients {
        human += &format!("<{address}>: {}\r\n", failure.why);
    }
    let arrival = date(now);
    let mut status =
        format!("Reporting-MTA: dns; {host}\r\nX-Zero-Queue-ID: {queue_id}\r\nArrival-Date: {arrival}\r\n");
    for (address, failure) in recipients {
        let code = match failure.reply.as_ref().and_then(|r| r.enhanced) {
            Some(e) => e.to_string(),
            None if kind == Report::Delayed => "4.0.0".into(),
            None => "5.0.0".into(),
        };
        status +=
            &format!("\r\nFinal-Recipient: rfc822; {address}\r\nAction: {action}\r\nStatus: {code}\r\n");
        if let Some(reply) = &failure.reply {
            status += &format!("Diagnostic-Code: smtp; {}\r\n", reply.to_string().replace(['\r', '\n'], " "));
        }
    }
    let headers_end = original.windows(4).position(|w| w == b"\r\n\r\n").map_or(original.len(), |p| p + 2);
    let (kind_of_copy, copy) =
        if full { ("message/rfc822", original) } else { ("text/rfc822-headers", &original[..headers_end]) };
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{human}\r\n").as_bytes(),
    );
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n{status}\r\n").as_bytes(),
    );
    body.extend_from_slice(format!("--{boundary}\r\nContent-Type: {kind_of_copy}\r\n\r\n").as_bytes());
    body.extend_from_slice(copy);
    if !copy.ends_with(b"\r\n") {
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let content_type = ContentType::parse(&format!(
        "multipart/report; report-type=delivery-status; boundary=\"{boundary}\""
    ))
    .map_err(|e| e.to_string())?;
    // 8bit: the copy of the original may hold UTF-8 or 8-bit text, and goes unchanged.
    // Laid out above with CRLF line ends: passed through as it is.
    let body = Body::dangerous_pre_encoded(body, ContentTransferEncoding::EightBit);
    let part = SinglePart::builder().header(content_type).body(body);
    let from: Mailbox =
        format!("Mail Delivery System <MAILER-DAEMON@{host}>").parse().map_err(|e| format!("{e}"))?;
    let to: Mailbox = sender.parse().map_err(|e| format!("the sender <{sender}>: {e}"))?;
    let message = Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .message_id(Some(format!("<{queue_id}.report@{host}>")))
        .date(now)
        .keep_bcc()
        .singlepart(part)
        .map_err(|e| e.to_string())?;
    let mut text = b"Auto-Submitted: auto-replied\r\n".to_vec();
    text.extend_from_slice(&message.formatted());
    Ok(text)
}

/// An RFC 5322 date (UTC).
fn date(now: SystemTime) -> String {
    jiff::Timestamp::try_from(now)
        .map(|t| t.strftime("%a, %-d %b %Y %H:%M:%S +0000").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::reply::Reply;

    #[test]
    fn a_bounce_names_each_recipient_with_its_status_and_carries_the_headers() {
        let original = b"From: a@src.test\r\nSubject: hello\r\n\r\nsecret body\r\n";
        let failures = vec![
            ("x@dst.test".to_string(), Failure::reply(Reply::new(550, (5, 1, 1), "No such user"))),
            ("y@dst.test".to_string(), Failure::permanent("gave up after 5.0 days: connection refused")),
        ];
        let notice = Notice {
            kind: Report::Failed,
            host: "mx.zero.test",
            queue_id: "0001",
            sender: "a@src.test",
            recipients: &failures,
            original,
            full: false,
        };
        let text = String::from_utf8(report(&notice, SystemTime::UNIX_EPOCH).unwrap()).unwrap();
        assert!(text.starts_with("Auto-Submitted: auto-replied\r\n"), "{text}");
        assert!(text.contains("From: \"Mail Delivery System\" <MAILER-DAEMON@mx.zero.test>\r\n"), "{text}");
        assert!(text.contains("Content-Type: multipart/report; report-type=delivery-status;"), "{text}");
        let x = "Final-Recipient: rfc822; x@dst.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\
                 Diagnostic-Code: smtp; 550 5.1.1 No such user\r\n";
        assert!(text.contains(x), "{text}");
        assert!(
            text.contains("Final-Recipient: rfc822; y@dst.test\r\nAction: failed\r\nStatus: 5.0.0\r\n"),
            "{text}"
        );
        assert!(
            text.contains("Content-Type: text/rfc822-headers\r\n\r\nFrom: a@src.test\r\nSubject: hello\r\n"),
            "{text}"
        );
        assert!(!text.contains("secret body"), "headers only without RET=FULL");
        assert!(!text.replace("\r\n", "").contains('\n'), "CRLF only");
        let delayed = Notice { kind: Report::Delayed, recipients: &failures[1..], full: true, ..notice };
        let delayed = String::from_utf8(report(&delayed, SystemTime::UNIX_EPOCH).unwrap()).unwrap();
        assert!(delayed.contains("Subject: Delayed Mail (still being retried)"), "{delayed}");
        assert!(delayed.contains("Action: delayed\r\nStatus: 4.0.0"), "{delayed}");
        assert!(delayed.contains("message/rfc822") && delayed.contains("secret body"));
    }
}
