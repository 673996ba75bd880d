//! Reading one frame. A frame cut short by the end of the input is not an error: [`decode`]
//! says so and is called again, from the frame's start, once more bytes have arrived. A blob
//! whose payload has not all arrived is recognised from its header alone, so a large value
//! arriving in many reads is not rescanned.

use std::borrow::Cow;

use super::{DecodeError, Frame, Limits};

/// Decodes the frame at the start of `input`: the frame and the bytes it took, or `None` if
/// the input ends before the frame does.
pub fn decode<'a>(input: &'a [u8], limits: &Limits) -> Result<Option<(Frame<'a>, usize)>, DecodeError> {
    let mut reader = Reader { input, pos: 0, limits };
    match reader.frame(0) {
        Ok(frame) => Ok(Some((frame, reader.pos))),
        Err(Stop::Incomplete) => Ok(None),
        Err(Stop::Invalid(e)) => Err(e),
    }
}

/// Where the scan of a frame that has not all arrived stopped, so that the next read goes on
/// from there instead of from the frame's start: a large aggregate arriving over many reads is
/// then read in linear time. [`scan`] only finds where the frame ends; [`decode`] then reads
/// it once, whole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// Where the next element starts, from the frame's start.
    pos: usize,
    /// The aggregates open around it, innermost last.
    open: Vec<Open>,
}

impl Scan {
    /// Whether a frame's scan is under way.
    pub fn is_active(&self) -> bool {
        self.pos > 0
    }
}

/// An aggregate being scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    /// This many elements still to come.
    Count(usize),
    /// Elements up to `.`; `then` more follow it (the value after a streamed attribute).
    Streamed { seen: usize, then: usize },
    /// The chunks of a streamed string, up to `;0`.
    Chunks,
}

/// Goes on scanning the frame at the start of `input` from where `state` stopped: the
/// frame's length once all of it is there (`state` is then reset), `None` while it is not.
/// It checks the framing and the limits, not the contents, which [`decode`] checks after.
pub fn scan(input: &[u8], limits: &Limits, state: &mut Scan) -> Result<Option<usize>, DecodeError> {
    loop {
        let mut reader = Reader { input, pos: state.pos, limits };
        match reader.step(&mut state.open) {
            Ok(complete) => {
                state.pos = reader.pos;
                if complete {
                    *state = Scan::default();
                    return Ok(Some(reader.pos));
                }
            }
            Err(Stop::Incomplete) => return Ok(None),
            Err(Stop::Invalid(e)) => return Err(e),
        }
    }
}

/// Why reading stopped.
enum Stop {
    /// The input ends inside the frame.
    Incomplete,
    Invalid(DecodeError),
}

impl From<DecodeError> for Stop {
    fn from(e: DecodeError) -> Stop {
        Stop::Invalid(e)
    }
}

/// A length header: a count, RESP2's null (`-1`), or RESP3's streamed form (`?`).
enum Length {
    Count(usize),
    Null,
    Streamed,
}

struct Reader<'a, 'l> {
    input: &'a [u8],
    pos: usize,
    limits: &'l Limits,
}

impl<'a> Reader<'a, '_> {
    fn malformed(&self, at: usize, what: &'static str) -> Stop {
        Stop::Invalid(DecodeError::Malformed { at, what })
    }

    /// The line at the cursor, without its CRLF; the cursor moves past it.
    fn line(&mut self) -> Result<&'a [u8], Stop> {
        let rest = &self.input[self.pos..];
        let window = &rest[..rest.len().min(self.limits.max_line + 2)];
        let Some(lf) = window.iter().position(|&b| b == b'\n') else {
            return Err(if rest.len() > self.limits.max_line + 1 {
                Stop::Invalid(DecodeError::LineTooLong { limit: self.limits.max_line })
            } else {
                Stop::Incomplete
            });
        };
        if lf == 0 || rest[lf - 1] != b'\r' {
            return Err(self.malformed(self.pos + lf, "a line must end in CRLF"));
        }
        self.pos += lf + 1;
        Ok(&rest[..lf - 1])
    }

    /// `n` bytes of payload and their CRLF; the cursor moves past them.
    fn payload(&mut self, n: usize) -> Result<&'a [u8], Stop> {
        let rest = &self.input[self.pos..];
        if rest.len() < n + 2 {
            return Err(Stop::Incomplete);
        }
        if &rest[n..n + 2] != b"\r\n" {
            return Err(self.malformed(self.pos + n, "a blob must end in CRLF"));
        }
        self.pos += n + 2;
        Ok(&rest[..n])
    }

    fn integer(&self, digits: &[u8], at: usize) -> Result<i64, Stop> {
        parse_i64(digits).ok_or_else(|| self.malformed(at, "not a 64-bit integer"))
    }

    /// A length header's value, checked against `limit`.
    fn length(&mut self, limit: usize, too_big: fn(u64, usize) -> DecodeError) -> Result<Length, Stop> {
        let at = self.pos;
        match self.line()? {
            b"?" => Ok(Length::Streamed),
            b"-1" => Ok(Length::Null),
            digits => {
                let n = parse_u64(digits).ok_or_else(|| self.malformed(at, "not a length"))?;
                match usize::try_from(n) {
                    Ok(n) if n <= limit => Ok(Length::Count(n)),
                    _ => Err(Stop::Invalid(too_big(n, limit))),
                }
            }
        }
    }

    fn blob_length(&mut self) -> Result<Length, Stop> {
        self.length(self.limits.max_bulk, |len, limit| DecodeError::BulkTooLong { len, limit })
    }

    fn aggregate_length(&mut self) -> Result<Length, Stop> {
        self.length(self.limits.max_aggregate, |len, limit| DecodeError::AggregateTooLarge { len, limit })
    }

    /// A blob of fixed length (streamed blobs are only allowed for bulk strings).
    fn fixed_blob(&mut self) -> Result<&'a [u8], Stop> {
        let at = self.pos;
        match self.blob_length()? {
            Length::Count(n) => self.payload(n),
            _ => Err(self.malformed(at, "this blob type has no null or streamed form")),
        }
    }

    /// The chunks of a streamed string (`;4\r\nHell\r\n ... ;0\r\n`), joined.
    fn streamed_blob(&mut self) -> Result<Vec<u8>, Stop> {
        let mut joined = Vec::new();
        loop {
            let at = self.pos;
            if self.input.get(self.pos) != Some(&b';') {
                return Err(if self.pos >= self.input.len() {
                    Stop::Incomplete
                } else {
                    self.malformed(at, "a streamed string chunk must start with ';'")
                });
            }
            self.pos += 1;
            let Length::Count(n) = self.blob_length()? else {
                return Err(self.malformed(at, "a chunk needs a length"));
            };
            if n == 0 {
                return Ok(joined);
            }
            if joined.len() + n > self.limits.max_bulk {
                let len = (joined.len() + n) as u64;
                return Err(Stop::Invalid(DecodeError::BulkTooLong { len, limit: self.limits.max_bulk }));
            }
            joined.extend_from_slice(self.payload(n)?);
        }
    }

    /// The elements of an aggregate of `count` (`None`: a streamed one, up to `.`), each read
    /// by `item`.
    fn elements<T>(
        &mut self,
        count: Option<usize>,
        depth: usize,
        mut item: impl FnMut(&mut Self, usize) -> Result<T, Stop>,
    ) -> Result<Vec<T>, Stop> {
        match count {
            Some(n) => {
                // Every element takes at least three bytes: never reserve for more than the
                // input could hold.
                let mut items = Vec::with_capacity(n.min((self.input.len() - self.pos) / 3));
                for _ in 0..n {
                    items.push(item(self, depth + 1)?);
                }
                Ok(items)
            }
            None => {
                let mut items = Vec::new();
                loop {
                    let rest = &self.input[self.pos..];
                    if rest.first() == Some(&b'.') {
                        return match rest.get(..3) {
                            None => Err(Stop::Incomplete),
                            Some(b".\r\n") => {
                                self.pos += 3;
                                Ok(items)
                            }
                            Some(_) => {
                                Err(self.malformed(self.pos, "a streamed aggregate ends with '.' CRLF"))
                            }
                        };
                    }
                    if items.len() >= self.limits.max_aggregate {
                        let (len, limit) = (items.len() as u64 + 1, self.limits.max_aggregate);
                        return Err(Stop::Invalid(DecodeError::AggregateTooLarge { len, limit }));
                    }
                    items.push(item(self, depth + 1)?);
                }
            }
        }
    }

    /// One step of a [`scan`]: an element, or the end of a streamed aggregate or string.
    /// Returns whether the frame is complete; on `Incomplete` nothing of the step is kept.
    fn step(&mut self, open: &mut Vec<Open>) -> Result<bool, Stop> {
        // One more level than `decode` allows: a streamed string's chunks and an attribute's
        // value sit one level deeper here; `decode` enforces the exact limit.
        if open.len() > self.limits.max_depth + 1 {
            return Err(Stop::Invalid(DecodeError::TooDeep { limit: self.limits.max_depth }));
        }
        let at = self.pos;
        let kind = *self.input.get(at).ok_or(Stop::Incomplete)?;
        match open.last() {
            Some(Open::Chunks) => {
                if kind != b';' {
                    return Err(self.malformed(at, "a streamed string chunk must start with ';'"));
                }
                self.pos += 1;
                let Length::Count(n) = self.blob_length()? else {
                    return Err(self.malformed(at, "a chunk needs a length"));
                };
                if n > 0 {
                    self.payload(n)?;
                    return Ok(false);
                }
                open.pop();
                return Ok(finish(open));
            }
            Some(&Open::Streamed { then, .. }) if kind == b'.' => {
                if self.input.get(at..at + 3).ok_or(Stop::Incomplete)? != b".\r\n" {
                    return Err(self.malformed(at, "a streamed aggregate ends with '.' CRLF"));
                }
                self.pos += 3;
                open.pop();
                if then > 0 {
                    open.push(Open::Count(then));
                    return Ok(false);
                }
                return Ok(finish(open));
            }
            _ => {}
        }
        self.pos += 1;
        let opened = match kind {
            b'+' | b'-' | b':' | b'_' | b'#' | b',' | b'(' => {
                self.line()?;
                None
            }
            b'$' => match self.blob_length()? {
                Length::Count(n) => {
                    self.payload(n)?;
                    None
                }
                Length::Null => None,
                Length::Streamed => Some(Open::Chunks),
            },
            b'!' | b'=' => {
                self.fixed_blob()?;
                None
            }
            b'*' | b'~' | b'>' | b'%' | b'|' => {
                let pairs = matches!(kind, b'%' | b'|');
                let after = usize::from(kind == b'|');
                match self.aggregate_length()? {
                    Length::Count(n) if n * (1 + usize::from(pairs)) + after == 0 => None,
                    Length::Count(n) => Some(Open::Count(n * (1 + usize::from(pairs)) + after)),
                    Length::Streamed => Some(Open::Streamed { seen: 0, then: after }),
                    Length::Null if kind == b'*' => None,
                    Length::Null => return Err(self.malformed(at, "only arrays have a null form")),
                }
            }
            _ => return Err(self.malformed(at, "unknown type byte")),
        };
        if let Some(Open::Streamed { seen, .. }) = open.last_mut() {
            *seen += 1;
            if *seen > self.limits.max_aggregate {
                let (len, limit) = (*seen as u64, self.limits.max_aggregate);
                return Err(Stop::Invalid(DecodeError::AggregateTooLarge { len, limit }));
            }
        }
        match opened {
            Some(o) => {
                open.push(o);
                Ok(false)
            }
            None => Ok(finish(open)),
        }
    }

    fn pair(&mut self, depth: usize) -> Result<(Frame<'a>, Frame<'a>), Stop> {
        Ok((self.frame(depth)?, self.frame(depth)?))
    }

    /// One frame, `depth` aggregates deep.
    fn frame(&mut self, depth: usize) -> Result<Frame<'a>, Stop> {
        if depth > self.limits.max_depth {
            return Err(Stop::Invalid(DecodeError::TooDeep { limit: self.limits.max_depth }));
        }
        let at = self.pos;
        let Some(&kind) = self.input.get(self.pos) else {
            return Err(Stop::Incomplete);
        };
        self.pos += 1;
        Ok(match kind {
            b'+' => Frame::Simple(Cow::Borrowed(self.line()?)),
            b'-' => Frame::Error(Cow::Borrowed(self.line()?)),
            b':' => {
                let digits = self.line()?;
                Frame::Integer(self.integer(digits, at + 1)?)
            }
            b'$' => match self.blob_length()? {
                Length::Count(n) => Frame::Bulk(Cow::Borrowed(self.payload(n)?)),
                Length::Null => Frame::Null,
                Length::Streamed => Frame::Bulk(Cow::Owned(self.streamed_blob()?)),
            },
            b'_' => match self.line()? {
                b"" => Frame::Null,
                _ => return Err(self.malformed(at, "null has no payload")),
            },
            b'#' => match self.line()? {
                b"t" => Frame::Boolean(true),
                b"f" => Frame::Boolean(false),
                _ => return Err(self.malformed(at, "a boolean is t or f")),
            },
            b',' => {
                let text = self.line()?;
                Frame::Double(parse_double(text).ok_or_else(|| self.malformed(at + 1, "not a double"))?)
            }
            b'(' => {
                let digits = self.line()?;
                let body = digits.strip_prefix(b"-").or_else(|| digits.strip_prefix(b"+")).unwrap_or(digits);
                if body.is_empty() || !body.iter().all(u8::is_ascii_digit) {
                    return Err(self.malformed(at + 1, "a big number is digits"));
                }
                Frame::BigNumber(Cow::Borrowed(digits))
            }
            b'!' => Frame::BulkError(Cow::Borrowed(self.fixed_blob()?)),
            b'=' => {
                let blob = self.fixed_blob()?;
                match blob {
                    [a, b, c, b':', text @ ..] => {
                        Frame::Verbatim { format: [*a, *b, *c], text: Cow::Borrowed(text) }
                    }
                    _ => {
                        return Err(
                            self.malformed(at, "a verbatim string starts with a 3-byte format and ':'")
                        )
                    }
                }
            }
            b'*' | b'~' | b'>' => {
                let count = match self.aggregate_length()? {
                    Length::Count(n) => Some(n),
                    Length::Streamed => None,
                    Length::Null if kind == b'*' => return Ok(Frame::Null),
                    Length::Null => return Err(self.malformed(at, "only arrays have a null form")),
                };
                let items = self.elements(count, depth, Self::frame)?;
                match kind {
                    b'*' => Frame::Array(items),
                    b'~' => Frame::Set(items),
                    _ => Frame::Push(items),
                }
            }
            b'%' | b'|' => {
                let count = match self.aggregate_length()? {
                    Length::Count(n) => Some(n),
                    Length::Streamed => None,
                    Length::Null => return Err(self.malformed(at, "maps have no null form")),
                };
                let pairs = self.elements(count, depth, Self::pair)?;
                if kind == b'%' {
                    Frame::Map(pairs)
                } else {
                    Frame::Attribute { attributes: pairs, value: Box::new(self.frame(depth)?) }
                }
            }
            _ => return Err(self.malformed(at, "unknown type byte")),
        })
    }
}

/// An element just ended: counts it in the aggregate around it, closing every aggregate it
/// completes. Returns whether that completes the frame.
fn finish(open: &mut Vec<Open>) -> bool {
    loop {
        match open.last_mut() {
            None => return true,
            Some(Open::Count(n)) => {
                *n -= 1;
                if *n > 0 {
                    return false;
                }
                open.pop();
            }
            Some(_) => return false,
        }
    }
}

/// A decimal `u64` (digits only).
fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        let d = d.checked_sub(b'0').filter(|d| *d < 10)?;
        n.checked_mul(10)?.checked_add(u64::from(d))
    })
}

/// A decimal `i64`, with an optional sign.
fn parse_i64(text: &[u8]) -> Option<i64> {
    match text {
        [b'-', digits @ ..] => {
            let n = parse_u64(digits)?;
            0i64.checked_sub_unsigned(n)
        }
        [b'+', digits @ ..] => i64::try_from(parse_u64(digits)?).ok(),
        digits => i64::try_from(parse_u64(digits)?).ok(),
    }
}

/// A RESP3 double: `inf`, `-inf`, `nan`, or a decimal with an optional exponent.
fn parse_double(text: &[u8]) -> Option<f64> {
    match text {
        b"inf" | b"+inf" => Some(f64::INFINITY),
        b"-inf" => Some(f64::NEG_INFINITY),
        b"nan" | b"-nan" => Some(f64::NAN),
        _ if text.iter().all(|b| b.is_ascii_digit() || b"+-.eE".contains(b)) => {
            std::str::from_utf8(text).ok()?.parse().ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(input: &[u8]) -> Frame<'_> {
        let (frame, used) = decode(input, &Limits::default()).unwrap().expect("complete");
        assert_eq!(used, input.len(), "the whole input is one frame");
        frame
    }

    fn bulk(b: &[u8]) -> Frame<'_> {
        Frame::Bulk(Cow::Borrowed(b))
    }

    #[test]
    fn every_type() {
        assert_eq!(one(b"+OK\r\n"), Frame::Simple(Cow::Borrowed(b"OK")));
        assert_eq!(one(b"-ERR bad\r\n"), Frame::Error(Cow::Borrowed(b"ERR bad")));
        assert_eq!(one(b":-42\r\n"), Frame::Integer(-42));
        assert_eq!(one(b":-9223372036854775808\r\n"), Frame::Integer(i64::MIN));
        assert_eq!(one(b"$5\r\nhe\r\no\r\n"), bulk(b"he\r\no"));
        assert_eq!(one(b"$0\r\n\r\n"), bulk(b""));
        assert_eq!(one(b"$-1\r\n"), Frame::Null);
        assert_eq!(one(b"*-1\r\n"), Frame::Null);
        assert_eq!(one(b"_\r\n"), Frame::Null);
        assert_eq!(one(b"#t\r\n"), Frame::Boolean(true));
        assert_eq!(one(b",1.5e3\r\n"), Frame::Double(1500.0));
        assert_eq!(one(b",-inf\r\n"), Frame::Double(f64::NEG_INFINITY));
        assert!(matches!(one(b",nan\r\n"), Frame::Double(d) if d.is_nan()));
        assert_eq!(
            one(b"(-3492890328409238509324850943850943825024385\r\n"),
            Frame::BigNumber(Cow::Borrowed(b"-3492890328409238509324850943850943825024385"))
        );
        assert_eq!(one(b"!9\r\nERR nope!\r\n"), Frame::BulkError(Cow::Borrowed(b"ERR nope!")));
        assert_eq!(
            one(b"=8\r\ntxt:some\r\n"),
            Frame::Verbatim { format: *b"txt", text: Cow::Borrowed(b"some") }
        );
        assert_eq!(one(b"*2\r\n:1\r\n$1\r\na\r\n"), Frame::Array(vec![Frame::Integer(1), bulk(b"a")]));
        assert_eq!(one(b"~1\r\n#f\r\n"), Frame::Set(vec![Frame::Boolean(false)]));
        assert_eq!(
            one(b">2\r\n+a\r\n_\r\n"),
            Frame::Push(vec![Frame::Simple(Cow::Borrowed(b"a")), Frame::Null])
        );
        assert_eq!(
            one(b"%1\r\n+k\r\n:1\r\n"),
            Frame::Map(vec![(Frame::Simple(Cow::Borrowed(b"k")), Frame::Integer(1))])
        );
        assert_eq!(
            one(b"|1\r\n+ttl\r\n:3\r\n:7\r\n"),
            Frame::Attribute {
                attributes: vec![(Frame::Simple(Cow::Borrowed(b"ttl")), Frame::Integer(3))],
                value: Box::new(Frame::Integer(7)),
            }
        );
    }

    #[test]
    fn streamed_forms() {
        assert_eq!(one(b"$?\r\n;4\r\nHell\r\n;1\r\no\r\n;0\r\n"), bulk(b"Hello"));
        assert_eq!(one(b"*?\r\n:1\r\n:2\r\n.\r\n"), Frame::Array(vec![Frame::Integer(1), Frame::Integer(2)]));
        assert_eq!(
            one(b"%?\r\n+a\r\n:1\r\n.\r\n"),
            Frame::Map(vec![(Frame::Simple(Cow::Borrowed(b"a")), Frame::Integer(1))])
        );
    }

    #[test]
    fn every_cut_is_incomplete_not_an_error() {
        let input: &[u8] =
            b"*3\r\n$?\r\n;2\r\nab\r\n;0\r\n%1\r\n+k\r\n,2.5\r\n|1\r\n+a\r\n#t\r\n*?\r\n:1\r\n.\r\n";
        assert!(matches!(decode(input, &Limits::default()), Ok(Some((_, n))) if n == input.len()));
        for cut in 0..input.len() {
            assert_eq!(decode(&input[..cut], &Limits::default()), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn a_scan_goes_on_where_it_stopped() {
        let input: &[u8] =
            b"*3\r\n$?\r\n;2\r\nab\r\n;0\r\n%1\r\n+k\r\n,2.5\r\n|1\r\n+a\r\n#t\r\n*?\r\n:1\r\n|?\r\n+x\r\n+y\r\n.\r\n_\r\n.\r\n+tail";
        let whole = input.len() - 5;
        let mut state = Scan::default();
        for cut in 0..whole {
            assert_eq!(scan(&input[..cut], &Limits::default(), &mut state), Ok(None), "cut at {cut}");
        }
        assert_eq!(scan(input, &Limits::default(), &mut state), Ok(Some(whole)));
        assert!(!state.is_active());
        assert!(matches!(decode(input, &Limits::default()), Ok(Some((_, n))) if n == whole));
        let mut state = Scan::default();
        let limits = Limits { max_aggregate: 2, ..Limits::default() };
        let e = scan(b"*?\r\n:1\r\n:2\r\n:3\r\n", &limits, &mut state);
        assert_eq!(e, Err(DecodeError::AggregateTooLarge { len: 3, limit: 2 }));
        assert!(scan(b"*1\r\n?x\r\n", &Limits::default(), &mut Scan::default()).is_err());
    }

    #[test]
    fn pipelined_frames_are_read_one_at_a_time() {
        let input = b"+OK\r\n:1\r\n";
        let (first, used) = decode(input, &Limits::default()).unwrap().unwrap();
        assert_eq!((first, used), (Frame::Simple(Cow::Borrowed(b"OK")), 5));
        assert_eq!(decode(&input[used..], &Limits::default()).unwrap().unwrap().0, Frame::Integer(1));
    }

    #[test]
    fn bad_input_is_named() {
        let bad = |input: &[u8]| decode(input, &Limits::default()).unwrap_err();
        assert!(matches!(bad(b"?x\r\n"), DecodeError::Malformed { what: "unknown type byte", .. }));
        assert!(matches!(bad(b"+OK\n"), DecodeError::Malformed { .. }));
        assert!(matches!(bad(b":12a\r\n"), DecodeError::Malformed { .. }));
        assert!(matches!(bad(b":9223372036854775808\r\n"), DecodeError::Malformed { .. }));
        assert!(matches!(bad(b"$3\r\nabcd\r\n"), DecodeError::Malformed { .. }));
        assert!(matches!(bad(b"#x\r\n"), DecodeError::Malformed { .. }));
        assert!(matches!(bad(b",1.2.x\r\n"), DecodeError::Malformed { .. }));
        assert!(matches!(bad(b"=3\r\ntxt\r\n"), DecodeError::Malformed { .. }));
        assert!(matches!(bad(b"%-1\r\n"), DecodeError::Malformed { .. }));
    }

    #[test]
    fn limits_hold() {
        fn check<'a>(input: &'a [u8]) -> Result<Option<(Frame<'a>, usize)>, DecodeError> {
            decode(input, &Limits { max_bulk: 4, max_line: 8, max_aggregate: 2, max_depth: 2 })
        }
        assert!(matches!(check(b"$5\r\n"), Err(DecodeError::BulkTooLong { len: 5, limit: 4 })));
        assert!(matches!(check(b"$?\r\n;3\r\nabc\r\n;3\r\n"), Err(DecodeError::BulkTooLong { .. })));
        assert!(matches!(check(b"+1234567890"), Err(DecodeError::LineTooLong { limit: 8 })));
        assert_eq!(check(b"+1234567"), Ok(None), "under the limit: wait for more");
        assert!(matches!(check(b"*3\r\n"), Err(DecodeError::AggregateTooLarge { len: 3, .. })));
        assert!(matches!(check(b"*?\r\n:1\r\n:2\r\n:3\r\n"), Err(DecodeError::AggregateTooLarge { .. })));
        assert!(matches!(check(b"*1\r\n*1\r\n*1\r\n:1\r\n"), Err(DecodeError::TooDeep { limit: 2 })));
        assert!(matches!(check(b"*1\r\n*1\r\n:1\r\n"), Ok(Some(_))));
        // A huge announced length reserves nothing up front.
        let big = Limits { max_aggregate: usize::MAX, ..Limits::default() };
        assert_eq!(decode(b"*1000000000000\r\n", &big), Ok(None));
    }
}
