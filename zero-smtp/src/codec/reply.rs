//! Replies (RFC 5321 4.2): a three-digit code and lines of text, `250-` on every line but
//! the last, `250 ` on the last; with ENHANCEDSTATUSCODES (RFC 2034, RFC 3463) each line's
//! text starts with `class.subject.detail`.

use std::fmt;

/// An enhanced status code (RFC 3463): `class.subject.detail`, `5.1.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Enhanced {
    /// 2 (success), 4 (persistent transient failure), 5 (permanent failure).
    pub class: u8,
    /// The subject (1 addressing, 2 mailbox, 3 mail system, 4 network, 5 protocol, 6
    /// content, 7 security).
    pub subject: u16,
    /// The detail.
    pub detail: u16,
}

impl fmt::Display for Enhanced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

impl From<(u8, u16, u16)> for Enhanced {
    fn from((class, subject, detail): (u8, u16, u16)) -> Enhanced {
        Enhanced { class, subject, detail }
    }
}

/// A reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The code, `250`.
    pub code: u16,
    /// The enhanced status code, if the reply carries one.
    pub enhanced: Option<Enhanced>,
    /// The text of each line, without the code and the enhanced code.
    pub lines: Vec<String>,
}

/// Why reply bytes do not make a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// A line does not start with three digits and a space or hyphen.
    #[error("a reply line does not start with a code: {0:?}")]
    Malformed(String),
    /// The lines of one reply carry different codes.
    #[error("a multi-line reply changes its code from {0} to {1}")]
    MixedCodes(u16, u16),
    /// A line (or the reply) is longer than we read.
    #[error("a reply line is longer than {0} octets")]
    TooLong(usize),
}

/// The most lines one reply may have (an EHLO reply lists a dozen extensions).
const MAX_LINES: usize = 100;

impl Reply {
    /// A one-line reply with an enhanced code.
    pub fn new(code: u16, enhanced: (u8, u16, u16), text: &str) -> Reply {
        Reply { code, enhanced: Some(enhanced.into()), lines: vec![text.to_string()] }
    }

    /// A one-line reply without an enhanced code (the greeting, `354`).
    pub fn plain(code: u16, text: &str) -> Reply {
        Reply { code, enhanced: None, lines: vec![text.to_string()] }
    }

    /// Whether the code says success (2xx) or go on (3xx).
    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// Whether the failure is permanent (5xx).
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// The text, lines joined by a space.
    pub fn text(&self) -> String {
        self.lines.join(" ")
    }

    /// Appends the reply's wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            match self.enhanced {
                Some(e) => out.extend_from_slice(format!("{}{sep}{e} {line}\r\n", self.code).as_bytes()),
                None => out.extend_from_slice(format!("{}{sep}{line}\r\n", self.code).as_bytes()),
            }
        }
        if self.lines.is_empty() {
            out.extend_from_slice(format!("{}\r\n", self.code).as_bytes());
        }
    }

    /// The reply at the start of `input` and the bytes it took, once its last line is there;
    /// `Ok(None)` until then. The enhanced code is read if every line starts with the same
    /// one whose class matches the code's.
    pub fn parse(input: &[u8]) -> Result<Option<(Reply, usize)>, ReplyError> {
        let mut at = 0;
        let mut code = None;
        let mut texts = Vec::new();
        loop {
            let Some(end) = super::line_end(&input[at..]) else {
                let pending = input.len() - at;
                return if pending > super::MAX_REPLY_LINE * 4 {
                    Err(ReplyError::TooLong(super::MAX_REPLY_LINE * 4))
                } else {
                    Ok(None)
                };
            };
            let line = &input[at..at + end];
            at += end + 2;
            let text = String::from_utf8_lossy(line);
            let digits = line.get(..3).filter(|d| d.iter().all(u8::is_ascii_digit));
            let (Some(digits), sep) = (digits, line.get(3).copied()) else {
                return Err(ReplyError::Malformed(text.into_owned()));
            };
            let this: u16 = std::str::from_utf8(digits).expect("digits").parse().expect("three digits");
            if !(200..600).contains(&this) || !matches!(sep, Some(b' ' | b'-') | None) {
                return Err(ReplyError::Malformed(text.into_owned()));
            }
            if let Some(first) = code.filter(|&c| c != this) {
                return Err(ReplyError::MixedCodes(first, this));
            }
            code = Some(this);
            texts.push(text.get(4..).unwrap_or("").to_string());
            if texts.len() > MAX_LINES {
                return Err(ReplyError::TooLong(MAX_LINES));
            }
            if sep != Some(b'-') {
                let code = this;
                let enhanced = enhanced_of(code, &texts);
                let lines = match enhanced {
                    Some(e) => {
                        let prefix = format!("{e}");
                        texts.iter().map(|t| t[prefix.len()..].trim_start().to_string()).collect()
                    }
                    None => texts,
                };
                return Ok(Some((Reply { code, enhanced, lines }, at)));
            }
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.enhanced {
            Some(e) => write!(f, "{} {e} {}", self.code, self.text()),
            None => write!(f, "{} {}", self.code, self.text()),
        }
    }
}

/// The enhanced code every line starts with, if they agree and its class is the code's.
fn enhanced_of(code: u16, texts: &[String]) -> Option<Enhanced> {
    let first = texts.first()?.split(' ').next()?;
    let mut parts = first.split('.');
    let class: u8 = parts.next()?.parse().ok()?;
    let subject: u16 = parts.next()?.parse().ok()?;
    let detail: u16 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || u16::from(class) != code / 100 || subject > 999 || detail > 999 {
        return None;
    }
    texts.iter().all(|t| t.split(' ').next() == Some(first)).then_some(Enhanced { class, subject, detail })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_and_many_lines_round_trip() {
        let mut out = Vec::new();
        Reply::new(250, (2, 1, 0), "Sender OK").encode(&mut out);
        assert_eq!(out, b"250 2.1.0 Sender OK\r\n");
        let ehlo = Reply {
            code: 250,
            enhanced: None,
            lines: vec!["mx.example".into(), "PIPELINING".into(), "SIZE 1000".into()],
        };
        let mut out = Vec::new();
        ehlo.encode(&mut out);
        assert_eq!(out, b"250-mx.example\r\n250-PIPELINING\r\n250 SIZE 1000\r\n");
        assert_eq!(Reply::parse(&out), Ok(Some((ehlo, out.len()))));
        let (r, used) = Reply::parse(b"550-5.1.1 No such\r\n550 5.1.1 user\r\nnext").unwrap().unwrap();
        assert_eq!(
            (r.code, r.enhanced, r.text(), used),
            (550, Some((5, 1, 1).into()), "No such user".into(), 35)
        );
    }

    #[test]
    fn partial_and_malformed_replies() {
        assert_eq!(Reply::parse(b"250-first\r\n250 sec"), Ok(None));
        assert_eq!(Reply::parse(b""), Ok(None));
        assert!(matches!(Reply::parse(b"hello\r\n"), Err(ReplyError::Malformed(_))));
        assert!(matches!(Reply::parse(b"250-a\r\n251 b\r\n"), Err(ReplyError::MixedCodes(250, 251))));
        assert!(matches!(Reply::parse(&[b'2'; 5000]), Err(ReplyError::TooLong(_))));
        // A code whose class differs from the enhanced one's: no enhanced code.
        let (r, _) = Reply::parse(b"250 5.0.0 odd\r\n").unwrap().unwrap();
        assert_eq!((r.enhanced, r.text()), (None, "5.0.0 odd".into()));
    }
}
