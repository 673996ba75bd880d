//! A message's header fields and body as DKIM sees them, and the two canonicalizations
//! (RFC 6376 3.4): `simple` (nearly as is) and `relaxed` (whitespace and case folded).

/// A canonicalization algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canon {
    /// `simple`.
    Simple,
    /// `relaxed`.
    Relaxed,
}

impl Canon {
    /// The name in `c=`.
    pub fn name(self) -> &'static str {
        match self {
            Canon::Simple => "simple",
            Canon::Relaxed => "relaxed",
        }
    }

    /// The algorithm named `name`.
    pub fn named(name: &str) -> Option<Canon> {
        match name {
            "simple" => Some(Canon::Simple),
            "relaxed" => Some(Canon::Relaxed),
            _ => None,
        }
    }
}

/// One header field: its name and the whole field as it appears (name, colon, value, folded
/// lines, final CRLF).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field<'a> {
    /// The name, as written.
    pub name: &'a [u8],
    /// The whole field, CRLF included.
    pub raw: &'a [u8],
}

/// Splits a message into its header fields (in order) and its body (after the empty line).
/// A message without an empty line is all header.
pub fn split(message: &[u8]) -> (Vec<Field<'_>>, &[u8]) {
    let mut fields: Vec<Field<'_>> = Vec::new();
    let mut at = 0;
    while at < message.len() {
        let end = message[at..].windows(2).position(|w| w == b"\r\n").map_or(message.len(), |p| at + p + 2);
        let line = &message[at..end];
        if line == b"\r\n" {
            return (fields, &message[end..]);
        }
        if matches!(line.first(), Some(b' ' | b'\t')) {
            // A folded continuation of the field before.
            if let Some(last) = fields.last_mut() {
                let start = last.raw.as_ptr() as usize - message.as_ptr() as usize;
                last.raw = &message[start..end];
            }
        } else {
            let name_end = line.iter().position(|&b| b == b':').unwrap_or(line.len());
            let name = trim_end(&line[..name_end]);
            fields.push(Field { name, raw: line });
        }
        at = end;
    }
    (fields, &[])
}

fn trim_end(b: &[u8]) -> &[u8] {
    let n = b.iter().rposition(|c| !matches!(c, b' ' | b'\t')).map_or(0, |p| p + 1);
    &b[..n]
}

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// A header field canonicalized: `simple` as it is; `relaxed` with the name lowercased,
/// unfolded, whitespace runs made one space, whitespace around the colon and at the end
/// removed (RFC 6376 3.4.2). Ends with CRLF.
pub fn header(canon: Canon, field: &Field<'_>) -> Vec<u8> {
    if canon == Canon::Simple {
        return field.raw.to_vec();
    }
    let colon = field.raw.iter().position(|&b| b == b':').unwrap_or(field.raw.len());
    let mut out: Vec<u8> = field.name.iter().map(u8::to_ascii_lowercase).collect();
    out.push(b':');
    let value = field.raw.get(colon + 1..).unwrap_or(&[]);
    let (mut space, mut started) = (false, false);
    for &b in value {
        match b {
            b'\r' | b'\n' => {}
            b if is_wsp(b) => space = true,
            b => {
                if space && started {
                    out.push(b' ');
                }
                (space, started) = (false, true);
                out.push(b);
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The body canonicalized (RFC 6376 3.4.3, 3.4.4): trailing empty lines removed (an empty
/// body is one CRLF under `simple`, nothing under `relaxed`); under `relaxed`, whitespace
/// at line ends removed and runs of it made one space. A body not ending in CRLF gets one.
pub fn body(canon: Canon, body: &[u8]) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (line, next) = match rest.windows(2).position(|w| w == b"\r\n") {
            Some(p) => (&rest[..p], &rest[p + 2..]),
            None => (rest, &rest[rest.len()..]),
        };
        lines.push(match canon {
            Canon::Simple => line.to_vec(),
            Canon::Relaxed => {
                let mut out = Vec::with_capacity(line.len());
                let mut space = false;
                for &b in line {
                    if is_wsp(b) {
                        space = true;
                    } else {
                        if space {
                            out.push(b' ');
                        }
                        space = false;
                        out.push(b);
                    }
                }
                out
            }
        });
        rest = next;
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    let mut out = Vec::with_capacity(body.len() + 2);
    for line in &lines {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    if out.is_empty() && canon == Canon::Simple {
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6376 3.4.5's example.
    const EXAMPLE: &[u8] = b"A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n C \r\nD \t E\r\n\r\n\r\n";

    #[test]
    fn the_rfc_6376_canonicalization_examples() {
        let (fields, b) = split(EXAMPLE);
        let relaxed: Vec<u8> = fields.iter().flat_map(|f| header(Canon::Relaxed, f)).collect();
        assert_eq!(relaxed, b"a:X\r\nb:Y Z\r\n");
        assert_eq!(body(Canon::Relaxed, b), b" C\r\nD E\r\n");
        let simple: Vec<u8> = fields.iter().flat_map(|f| header(Canon::Simple, f)).collect();
        assert_eq!(simple, b"A: X\r\nB : Y\t\r\n\tZ  \r\n");
        assert_eq!(body(Canon::Simple, b), b" C \r\nD \t E\r\n");
    }

    #[test]
    fn empty_bodies_and_missing_line_ends() {
        assert_eq!(body(Canon::Simple, b""), b"\r\n");
        assert_eq!(body(Canon::Relaxed, b""), b"");
        assert_eq!(body(Canon::Simple, b"\r\n\r\n"), b"\r\n");
        assert_eq!(body(Canon::Relaxed, b"x"), b"x\r\n");
        let (fields, b) = split(b"Only: header\r\n");
        assert_eq!((fields.len(), b), (1, &b""[..]));
    }
}
