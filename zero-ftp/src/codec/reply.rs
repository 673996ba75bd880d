//! Replies (RFC 959 4.2): a three-digit code and text; a multi-line reply opens with
//! `ddd-text`, and ends with a line `ddd text` of the same code. The server writes middle
//! lines indented by a space (so none can look like the end, RFC 959 4.2 and RFC 2389 3.2);
//! the client reads any form, line by line.

/// A reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The code, 100 to 599.
    pub code: u16,
    /// The text, one entry a line (at least one; multi-line when more).
    pub lines: Vec<String>,
}

impl Reply {
    /// A one-line reply.
    pub fn new(code: u16, text: impl Into<String>) -> Reply {
        Reply { code, lines: vec![text.into()] }
    }

    /// A multi-line reply: `first`, the middle lines, `last`.
    pub fn multi(code: u16, first: impl Into<String>, middle: Vec<String>, last: impl Into<String>) -> Reply {
        let mut lines = Vec::with_capacity(middle.len() + 2);
        lines.push(first.into());
        lines.extend(middle);
        lines.push(last.into());
        Reply { code, lines }
    }

    /// Whether the code is 1yz (preliminary: another reply follows).
    pub fn is_preliminary(&self) -> bool {
        self.code < 200
    }

    /// Whether the code is 2yz.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// The whole text, lines joined by newlines.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    /// Appends the reply in wire form. CR and LF inside a line (a path a client chose) are
    /// written as spaces: a reply line can never be split by what it quotes.
    pub fn write(&self, out: &mut Vec<u8>) {
        let clean = |s: &str| s.replace(['\r', '\n'], " ");
        let code = self.code;
        match self.lines.as_slice() {
            [] => out.extend_from_slice(format!("{code} \r\n").as_bytes()),
            [one] => out.extend_from_slice(format!("{code} {}\r\n", clean(one)).as_bytes()),
            [first, middle @ .., last] => {
                out.extend_from_slice(format!("{code}-{}\r\n", clean(first)).as_bytes());
                for line in middle {
                    out.extend_from_slice(format!(" {}\r\n", clean(line)).as_bytes());
                }
                out.extend_from_slice(format!("{code} {}\r\n", clean(last)).as_bytes());
            }
        }
    }

    /// The first double-quoted name in the first line (`257 "/a ""b"" c" is current`: the
    /// reply to `PWD` and `MKD`, RFC 959 Appendix II), doubled quotes made single.
    pub fn quoted(&self) -> Option<String> {
        let line = self.lines.first()?;
        let rest = &line[line.find('"')? + 1..];
        let mut out = String::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '"' {
                if chars.peek() != Some(&'"') {
                    return Some(out);
                }
                chars.next();
            }
            out.push(c);
        }
        None
    }

    /// The reply in wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.lines.join(" / "))
    }
}

/// A reply the client could not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// A first line that does not start with three digits and a space or hyphen.
    #[error("not an FTP reply: {0:?}")]
    Malformed(String),
    /// A reply longer than the reader takes.
    #[error("a reply of more than {0} bytes")]
    TooLong(usize),
}

/// Reads replies from the server's bytes, as they come (the client's side).
#[derive(Debug, Default)]
pub struct ReplyReader {
    buf: Vec<u8>,
    open: Option<Reply>,
}

/// The most a reader holds of one reply (a LIST on the control connection, `STAT path`, can be
/// long; more is an error).
const MAX_REPLY: usize = 1 << 20;

impl ReplyReader {
    /// A reader.
    pub fn new() -> ReplyReader {
        ReplyReader::default()
    }

    /// Bytes from the server.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes received that are not yet part of a reply.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete reply, if one is in.
    pub fn next_reply(&mut self) -> Result<Option<Reply>, ReplyError> {
        loop {
            let Some(end) = self.buf.iter().position(|&b| b == b'\n') else {
                if self.buf.len() > MAX_REPLY {
                    return Err(ReplyError::TooLong(MAX_REPLY));
                }
                return Ok(None);
            };
            let raw: Vec<u8> = self.buf.drain(..=end).collect();
            let line = String::from_utf8_lossy(&raw);
            let line = line.trim_end_matches(['\r', '\n']);
            let head = line.as_bytes();
            let code = (head.len() >= 3 && head[..3].iter().all(u8::is_ascii_digit))
                .then(|| line[..3].parse::<u16>().ok())
                .flatten()
                .filter(|c| (100..600).contains(c));
            match self.open.as_mut() {
                None => {
                    let Some(code) = code else {
                        return Err(ReplyError::Malformed(line.to_string()));
                    };
                    let text = line.get(4..).unwrap_or("").to_string();
                    match head.get(3) {
                        None | Some(b' ') => return Ok(Some(Reply::new(code, text))),
                        Some(b'-') => self.open = Some(Reply::new(code, text)),
                        Some(_) => return Err(ReplyError::Malformed(line.to_string())),
                    }
                }
                Some(open) => {
                    let closing = code == Some(open.code) && head.get(3).is_none_or(|&b| b == b' ');
                    if closing {
                        open.lines.push(line.get(4..).unwrap_or("").to_string());
                        return Ok(self.open.take());
                    }
                    if open.lines.iter().map(String::len).sum::<usize>() > MAX_REPLY {
                        return Err(ReplyError::TooLong(MAX_REPLY));
                    }
                    open.lines.push(line.strip_prefix(' ').unwrap_or(line).to_string());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_one_and_many_lines() {
        assert_eq!(Reply::new(200, "OK").to_bytes(), b"200 OK\r\n");
        let feat = Reply::multi(211, "Features:", vec!["MLST size*;modify*;".into(), "UTF8".into()], "End");
        assert_eq!(feat.to_bytes(), b"211-Features:\r\n MLST size*;modify*;\r\n UTF8\r\n211 End\r\n");
        assert_eq!(Reply::new(550, "no\r\n200 fake").to_bytes(), b"550 no  200 fake\r\n");
    }

    #[test]
    fn reads_replies_byte_by_byte() {
        let wire = b"220 hello\r\n211-Features:\r\n MDTM\r\n211 junk but not the end\r\n211 End\r\n230-line\n230-still\n230 in\n";
        let mut r = ReplyReader::new();
        let mut got = Vec::new();
        for b in wire {
            r.push(&[*b]);
            while let Some(reply) = r.next_reply().unwrap() {
                got.push(reply);
            }
        }
        assert_eq!(got[0], Reply::new(220, "hello"));
        assert_eq!(got[1].code, 211);
        // "211 junk" closes it (same code and a space): the RFC's rule, as clients read it.
        assert_eq!(got[1].lines, ["Features:", "MDTM", "junk but not the end"]);
        assert_eq!(got[2], Reply::new(211, "End"));
        assert_eq!(got[3].lines, ["line", "230-still", "in"]);
        assert_eq!(got.len(), 4);
    }

    #[test]
    fn quoted_names() {
        assert_eq!(Reply::new(257, r#""/a ""b"" c" is current"#).quoted().as_deref(), Some(r#"/a "b" c"#));
        assert_eq!(Reply::new(257, "\"/\"").quoted().as_deref(), Some("/"));
        assert_eq!(Reply::new(257, "no quotes").quoted(), None);
        assert_eq!(Reply::new(257, "\"open").quoted(), None);
    }

    #[test]
    fn malformed_replies_are_errors() {
        let mut r = ReplyReader::new();
        r.push(b"hello\r\n");
        assert!(matches!(r.next_reply(), Err(ReplyError::Malformed(_))));
        for bad in [&b"22\r\n"[..], b"000 zero\r\n", b"600 six\r\n"] {
            let mut r = ReplyReader::new();
            r.push(bad);
            assert!(r.next_reply().is_err(), "{bad:?}");
        }
        let mut r = ReplyReader::new();
        r.push(b"200\r\n");
        assert_eq!(r.next_reply().unwrap(), Some(Reply::new(200, "")));
    }
}
