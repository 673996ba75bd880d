//! The Authentication-Results header (RFC 8601): what the server found out about a message
//! from outside (SPF and DKIM), in one header field at its top.

use crate::dkim::canon::{split, Field};
use crate::dkim::Outcome as DkimOutcome;
use crate::spf::Outcome as SpfOutcome;

/// An SPF result and the identity it is about.
#[derive(Debug, Clone)]
pub struct SpfChecked {
    /// The result.
    pub outcome: SpfOutcome,
    /// The identity checked: the reverse-path, or `postmaster@HELO` for the null one.
    pub identity: String,
    /// Whether it came from HELO (the null reverse-path) rather than MAIL FROM.
    pub helo: bool,
}

/// The field (ending in CRLF) from the server `authserv_id`: SPF's result if checked, and
/// one `dkim=` per signature (`dkim=none` for an unsigned message).
pub fn header(authserv_id: &str, spf: Option<&SpfChecked>, dkim: &[DkimOutcome]) -> String {
    let mut field = format!("Authentication-Results: {authserv_id}");
    if let Some(spf) = spf {
        field.push_str(&format!(";\r\n\tspf={}", spf.outcome.result.name()));
        comment(&mut field, &spf.outcome.reason);
        if spf.helo {
            let helo = spf.identity.rsplit_once('@').map_or(spf.identity.as_str(), |(_, d)| d);
            field.push_str(&format!(" smtp.helo={helo}"));
        } else {
            field.push_str(&format!(" smtp.mailfrom={}", spf.identity));
        }
    }
    if dkim.is_empty() {
        field.push_str(";\r\n\tdkim=none");
    }
    for o in dkim {
        field.push_str(&format!(";\r\n\tdkim={}", o.verdict.name()));
        comment(&mut field, &o.reason);
        if !o.domain.is_empty() {
            field.push_str(&format!(" header.d={}", o.domain));
        }
        if !o.selector.is_empty() {
            field.push_str(&format!(" header.s={}", o.selector));
        }
        if let Some(a) = o.algorithm {
            field.push_str(&format!(" header.a={}", a.name()));
        }
        if !o.b.is_empty() {
            field.push_str(&format!(" header.b=\"{}\"", o.b));
        }
    }
    field.push_str("\r\n");
    field
}

/// A reason as an RFC 5322 comment (parentheses in it dropped).
fn comment(field: &mut String, reason: &str) {
    if !reason.is_empty() {
        field.push_str(&format!(" ({})", reason.replace(['(', ')', '\r', '\n'], "")));
    }
}

/// `message` without the Authentication-Results fields that bear `authserv_id` (a border
/// server must drop those it did not write, RFC 8601 5).
pub fn without_ours(message: &[u8], authserv_id: &str) -> Vec<u8> {
    let (fields, _) = split(message);
    let ours = |f: &Field<'_>| {
        f.name.eq_ignore_ascii_case(b"Authentication-Results") && {
            let value = String::from_utf8_lossy(&f.raw[f.name.len()..]);
            let id =
                value.trim_start_matches([' ', '\t', ':']).split([';', ' ', '\t', '\r']).next().unwrap_or("");
            id.eq_ignore_ascii_case(authserv_id)
        }
    };
    if !fields.iter().any(ours) {
        return message.to_vec();
    }
    let mut out = Vec::with_capacity(message.len());
    let mut at = 0;
    for f in fields.iter().filter(|f| ours(f)) {
        let start = f.raw.as_ptr() as usize - message.as_ptr() as usize;
        out.extend_from_slice(&message[at..start]);
        at = start + f.raw.len();
    }
    out.extend_from_slice(&message[at..]);
    out
}
