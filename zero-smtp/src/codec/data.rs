//! The message text of `DATA` (RFC 5321 4.1.1.4, 4.5.2): lines ending in CRLF, a leading dot
//! doubled, the end a line holding one dot. [`DataReader`] reads it incrementally and
//! [`dot_stuff`] writes it.
//!
//! **Only `CRLF . CRLF` ends the data.** A bare LF or a bare CR (one not part of a CRLF) is
//! never a line end for the purpose of finding the end, so `\n.\n`, `\r.\r`, `\n.\r\n` and
//! `\r\n.\n` are all message text: the SMTP smuggling attacks (CVE-2023-51764 Postfix,
//! CVE-2023-51765 Sendmail, CVE-2023-51766 Exim, CVE-2024-27305 aiosmtpd) relied on servers
//! that ended the data at one of them while the next hop did not. A bare line ending is then
//! either reason to reject the message ([`BareLineEnding::Reject`], the default) or rewritten
//! as CRLF ([`BareLineEnding::Normalize`]); either way the stored text has CRLF line ends
//! only, so no later hop can read it two ways.

/// What to do with a bare CR or LF in message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BareLineEnding {
    /// Read to the real end, then refuse the message (554 5.6.0), as Postfix's
    /// `smtpd_forbid_bare_newline = reject` does.
    #[default]
    Reject,
    /// Rewrite it as CRLF and accept the message.
    Normalize,
}

/// Why a message's text was refused (the data was still read to its end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A bare CR or LF, under [`BareLineEnding::Reject`].
    #[error("the message has a bare CR or LF (only CRLF ends a line)")]
    BareLineEnding,
    /// A line over [`super::MAX_TEXT_LINE`] octets.
    #[error("a line of the message is longer than 1000 octets")]
    LineTooLong,
    /// More than the size limit.
    #[error("the message is larger than the limit")]
    TooBig,
}

/// Where the reader is in the current line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    /// At the start of a line.
    LineStart,
    /// Inside a line.
    Mid,
    /// After a CR inside a line (or at its start).
    Cr,
    /// After a dot at the start of a line.
    Dot,
    /// After a dot and a CR at the start of a line: LF ends the data.
    DotCr,
}

/// Reads `DATA` text incrementally into a body (dot-unstuffed, CRLF line ends).
#[derive(Debug)]
pub struct DataReader {
    at: At,
    policy: BareLineEnding,
    max_size: usize,
    line: usize,
    /// The current line began after a bare CR or LF: a dot line here is text, since only a
    /// CRLF before it makes `CRLF . CRLF`.
    after_bare: bool,
    error: Option<DataError>,
}

/// What [`DataReader::read`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataStatus {
    /// All of the input was message text; more is to come.
    More,
    /// The data ended: `used` octets of the input were the text and its end; the rest
    /// is the next command (a pipelining client's).
    Done {
        /// Input octets consumed.
        used: usize,
    },
}

impl DataReader {
    /// A reader for one message of at most `max_size` octets.
    pub fn new(policy: BareLineEnding, max_size: usize) -> DataReader {
        DataReader { at: At::LineStart, policy, max_size, line: 0, after_bare: false, error: None }
    }

    /// Whether the text read so far is acceptable; the verdict is final once the data is
    /// done.
    pub fn result(&self) -> Result<(), DataError> {
        self.error.map_or(Ok(()), Err)
    }

    fn fail(&mut self, e: DataError) {
        self.error.get_or_insert(e);
    }

    /// Appends `bytes` to `body` unless the message is already refused (a refused message's
    /// text is read and dropped).
    fn emit(&mut self, body: &mut Vec<u8>, bytes: &[u8]) {
        if self.error.is_some() {
            return;
        }
        if body.len() + bytes.len() > self.max_size {
            self.fail(DataError::TooBig);
            body.clear();
            return;
        }
        body.extend_from_slice(bytes);
    }

    /// A bare CR or LF: refused, or written as CRLF; the line ends either way.
    fn bare(&mut self, body: &mut Vec<u8>) {
        if self.policy == BareLineEnding::Reject {
            self.fail(DataError::BareLineEnding);
        }
        self.emit(body, b"\r\n");
        (self.line, self.after_bare) = (0, true);
    }

    fn text(&mut self, body: &mut Vec<u8>, bytes: &[u8]) {
        self.line += bytes.len();
        // 998 octets of text and the CRLF.
        if self.line > super::MAX_TEXT_LINE - 2 {
            self.fail(DataError::LineTooLong);
        }
        self.emit(body, bytes);
    }

    /// Reads `input`, appending message text to `body`.
    pub fn read(&mut self, input: &[u8], body: &mut Vec<u8>) -> DataStatus {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.at {
                At::LineStart if b == b'.' => self.at = At::Dot,
                At::Mid | At::LineStart => {
                    if b != b'\r' && b != b'\n' {
                        // A run of ordinary text, copied at once.
                        let run = input[i..]
                            .iter()
                            .position(|&c| c == b'\r' || c == b'\n')
                            .unwrap_or(input.len() - i);
                        self.text(body, &input[i..i + run]);
                        self.at = At::Mid;
                        i += run;
                        continue;
                    }
                    if b == b'\r' {
                        self.at = At::Cr;
                    } else {
                        self.bare(body);
                        self.at = At::LineStart;
                    }
                }
                At::Cr => match b {
                    b'\n' => {
                        self.emit(body, b"\r\n");
                        (self.line, self.at, self.after_bare) = (0, At::LineStart, false);
                    }
                    // The first CR was bare; this one may start a CRLF.
                    b'\r' => self.bare(body),
                    _ => {
                        self.bare(body);
                        self.at = At::LineStart;
                        continue;
                    }
                },
                At::Dot => match b {
                    b'\r' => self.at = At::DotCr,
                    b'\n' => {
                        // `.` and a bare LF: text, not the end.
                        self.text(body, b".");
                        self.bare(body);
                        self.at = At::LineStart;
                    }
                    _ => {
                        // A doubled leading dot: the first is dropped.
                        self.at = At::Mid;
                        continue;
                    }
                },
                At::DotCr => {
                    if b == b'\n' && !self.after_bare {
                        return DataStatus::Done { used: i + 1 };
                    }
                    if b == b'\n' {
                        // `LF . CRLF`: a dot line, but not after a CRLF: text.
                        self.text(body, b".");
                        self.emit(body, b"\r\n");
                        (self.line, self.at, self.after_bare) = (0, At::LineStart, false);
                        i += 1;
                        continue;
                    }
                    // `.` and a bare CR: text, not the end.
                    self.text(body, b".");
                    self.bare(body);
                    self.at = At::LineStart;
                    continue;
                }
            }
            i += 1;
        }
        DataStatus::More
    }
}

/// Writes `body` as `DATA` text to `out`: every line ending in CRLF (a bare CR or LF
/// written as CRLF), a leading dot doubled, then the ending `.` line.
pub fn dot_stuff(body: &[u8], out: &mut Vec<u8>) {
    out.reserve(body.len() + body.len() / 64 + 5);
    let mut line_start = true;
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if line_start && b == b'.' {
            out.push(b'.');
        }
        match b {
            b'\r' if body.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 2;
                line_start = true;
                continue;
            }
            b'\r' | b'\n' => {
                out.extend_from_slice(b"\r\n");
                line_start = true;
            }
            _ => {
                let run = body[i..].iter().position(|&c| c == b'\r' || c == b'\n').unwrap_or(body.len() - i);
                out.extend_from_slice(&body[i..i + run]);
                i += run;
                line_start = false;
                continue;
            }
        }
        i += 1;
    }
    if !line_start {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(policy: BareLineEnding, input: &[u8]) -> (Vec<u8>, DataStatus, Result<(), DataError>) {
        let mut r = DataReader::new(policy, 1 << 20);
        let mut body = Vec::new();
        let status = r.read(input, &mut body);
        (body, status, r.result())
    }

    /// Every split of `input` into two reads gives the same outcome as one read.
    fn same_in_pieces(policy: BareLineEnding, input: &[u8]) {
        let whole = read_all(policy, input);
        for cut in 0..=input.len() {
            let mut r = DataReader::new(policy, 1 << 20);
            let mut body = Vec::new();
            let status = match r.read(&input[..cut], &mut body) {
                DataStatus::Done { used } => DataStatus::Done { used },
                DataStatus::More => match r.read(&input[cut..], &mut body) {
                    DataStatus::Done { used } => DataStatus::Done { used: used + cut },
                    more => more,
                },
            };
            assert_eq!((body, status, r.result()), whole, "cut at {cut}");
        }
    }

    #[test]
    fn text_is_unstuffed_and_ends_at_crlf_dot_crlf() {
        let input = b"Subject: hi\r\n\r\n..leading dot\r\n.\r\nQUIT\r\n";
        let (body, status, result) = read_all(BareLineEnding::Reject, input);
        assert_eq!(body, b"Subject: hi\r\n\r\n.leading dot\r\n");
        assert_eq!(status, DataStatus::Done { used: input.len() - 6 });
        assert_eq!(result, Ok(()));
        assert_eq!(read_all(BareLineEnding::Reject, b".\r\n").1, DataStatus::Done { used: 3 });
        same_in_pieces(BareLineEnding::Reject, input);
    }

    /// The smuggling variants: none of them ends the data; under Reject the message is
    /// refused, under Normalize it is stored with CRLF line ends only.
    #[test]
    fn bare_line_endings_never_end_the_data() {
        for smuggled in [
            &b"a\n.\nMAIL FROM:<x@y>\r\n"[..],
            b"a\r.\rMAIL FROM:<x@y>\r\n",
            b"a\n.\r\nMAIL FROM:<x@y>\r\n",
            b"a\r\n.\nMAIL FROM:<x@y>\r\n",
            b"a\r\n.\rMAIL FROM:<x@y>\r\n",
            b"a\r.\r\nMAIL FROM:<x@y>\r\n",
        ] {
            let input = [smuggled, b".\r\n"].concat();
            let (body, status, result) = read_all(BareLineEnding::Reject, &input);
            assert_eq!(status, DataStatus::Done { used: input.len() }, "{smuggled:?}");
            assert_eq!(result, Err(DataError::BareLineEnding), "{smuggled:?}");
            let (body_n, _, ok) = read_all(BareLineEnding::Normalize, &input);
            assert_eq!(ok, Ok(()));
            assert!(body_n.windows(2).filter(|w| w[1] == b'\n').all(|w| w[0] == b'\r'), "{body_n:?}");
            assert!(!body_n.windows(2).any(|w| w[0] == b'\r' && w[1] != b'\n'), "{body_n:?}");
            assert!(body_n.ends_with(b"MAIL FROM:<x@y>\r\n"), "{body_n:?} {body:?}");
            same_in_pieces(BareLineEnding::Reject, &input);
            same_in_pieces(BareLineEnding::Normalize, &input);
        }
    }

    #[test]
    fn long_lines_and_large_messages_are_refused_after_the_end() {
        let long = [&vec![b'x'; 999][..], b"\r\n.\r\n"].concat();
        let (_, status, result) = read_all(BareLineEnding::Reject, &long);
        assert_eq!((status, result), (DataStatus::Done { used: long.len() }, Err(DataError::LineTooLong)));
        let ok = [&vec![b'x'; 998][..], b"\r\n.\r\n"].concat();
        assert_eq!(read_all(BareLineEnding::Reject, &ok).2, Ok(()));
        let mut r = DataReader::new(BareLineEnding::Reject, 10);
        let mut body = Vec::new();
        assert_eq!(r.read(b"0123456789abc\r\n.\r\n", &mut body), DataStatus::Done { used: 18 });
        assert_eq!((r.result(), body.len()), (Err(DataError::TooBig), 0));
    }

    #[test]
    fn dot_stuffing_round_trips() {
        let body = b"line\r\n.dot\r\n..two\r\n.\r\nend";
        let mut wire = Vec::new();
        dot_stuff(body, &mut wire);
        assert_eq!(wire, b"line\r\n..dot\r\n...two\r\n..\r\nend\r\n.\r\n");
        let (back, status, _) = read_all(BareLineEnding::Reject, &wire);
        assert_eq!(back, b"line\r\n.dot\r\n..two\r\n.\r\nend\r\n");
        assert_eq!(status, DataStatus::Done { used: wire.len() });
        let mut wire = Vec::new();
        dot_stuff(b"bare\nlf\r.", &mut wire);
        assert_eq!(wire, b"bare\r\nlf\r\n..\r\n.\r\n");
    }

    proptest::proptest! {
        #[test]
        fn stuffed_text_reads_back_and_pieces_agree(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let mut wire = Vec::new();
            dot_stuff(&body, &mut wire);
            let (back, status, result) = read_all(BareLineEnding::Reject, &wire);
            proptest::prop_assert_eq!(status, DataStatus::Done { used: wire.len() });
            proptest::prop_assert_eq!(result, Ok(()));
            let mut normalized = Vec::new();
            dot_stuff(&back, &mut normalized);
            proptest::prop_assert_eq!(normalized, wire);
        }

        #[test]
        fn any_input_reads_the_same_in_any_two_pieces(input in proptest::collection::vec(proptest::sample::select(vec![b'\r', b'\n', b'.', b'a']), 0..24)) {
            same_in_pieces(BareLineEnding::Reject, &input);
            same_in_pieces(BareLineEnding::Normalize, &input);
        }
    }
}
