//! RESP2 and RESP3, sans-I/O: [`decode`] reads one reply from a receive buffer, borrowing its
//! payloads; [`encode_command`] writes a command into a send buffer; [`Frame::encode`] writes
//! any frame (what a server, or a test, sends).
//!
//! The wire format is the one in Redis's `RESP3.md` (RESP2 is its subset): a type byte, a line
//! ending in CRLF, and for blobs and aggregates a length and then the payload or the elements.

mod decode;
pub(crate) mod encode;

use std::borrow::Cow;

pub use decode::{decode, scan, Scan};
pub use encode::encode_command;

/// One RESP value. Payloads borrow from the buffer they were decoded from (a streamed string,
/// whose chunks are not contiguous, is the one copy); [`Frame::into_owned`] keeps one longer.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame<'a> {
    /// `+OK`: a simple string.
    Simple(Cow<'a, [u8]>),
    /// `-ERR ...`: a simple error.
    Error(Cow<'a, [u8]>),
    /// `:42`: a signed 64-bit integer.
    Integer(i64),
    /// `$5\r\nhello`: a blob (bulk) string.
    Bulk(Cow<'a, [u8]>),
    /// `_` (RESP3), `$-1` or `*-1` (RESP2): no value.
    Null,
    /// `#t` / `#f`.
    Boolean(bool),
    /// `,1.5`, `,inf`, `,-inf`, `,nan`.
    Double(f64),
    /// `(3492890328409238509324850943850943825024385`: an integer of any size, as digits.
    BigNumber(Cow<'a, [u8]>),
    /// `!21\r\nSYNTAX invalid syntax`: an error with a blob payload.
    BulkError(Cow<'a, [u8]>),
    /// `=15\r\ntxt:Some string`: a string with a three-byte format (`txt`, `mkd`).
    Verbatim {
        /// The format, e.g. `txt`.
        format: [u8; 3],
        /// The text after `format:`.
        text: Cow<'a, [u8]>,
    },
    /// `*2\r\n...`: an array.
    Array(Vec<Frame<'a>>),
    /// `%1\r\n...`: a map, as its pairs in wire order.
    Map(Vec<(Frame<'a>, Frame<'a>)>),
    /// `~2\r\n...`: a set, as its members in wire order.
    Set(Vec<Frame<'a>>),
    /// `>3\r\n...`: out-of-band data (pub/sub messages, invalidations).
    Push(Vec<Frame<'a>>),
    /// `|1\r\n...`: attributes about the value that follows them.
    Attribute {
        /// The attributes, as pairs.
        attributes: Vec<(Frame<'a>, Frame<'a>)>,
        /// The value they describe.
        value: Box<Frame<'a>>,
    },
}

impl Frame<'_> {
    /// A copy that owns its payloads, to keep past the receive buffer.
    pub fn into_owned(self) -> Frame<'static> {
        fn own(b: Cow<'_, [u8]>) -> Cow<'static, [u8]> {
            Cow::Owned(b.into_owned())
        }
        fn all(v: Vec<Frame<'_>>) -> Vec<Frame<'static>> {
            v.into_iter().map(Frame::into_owned).collect()
        }
        fn pairs(v: Vec<(Frame<'_>, Frame<'_>)>) -> Vec<(Frame<'static>, Frame<'static>)> {
            v.into_iter().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
        }
        match self {
            Frame::Simple(b) => Frame::Simple(own(b)),
            Frame::Error(b) => Frame::Error(own(b)),
            Frame::Integer(i) => Frame::Integer(i),
            Frame::Bulk(b) => Frame::Bulk(own(b)),
            Frame::Null => Frame::Null,
            Frame::Boolean(b) => Frame::Boolean(b),
            Frame::Double(d) => Frame::Double(d),
            Frame::BigNumber(b) => Frame::BigNumber(own(b)),
            Frame::BulkError(b) => Frame::BulkError(own(b)),
            Frame::Verbatim { format, text } => Frame::Verbatim { format, text: own(text) },
            Frame::Array(v) => Frame::Array(all(v)),
            Frame::Map(v) => Frame::Map(pairs(v)),
            Frame::Set(v) => Frame::Set(all(v)),
            Frame::Push(v) => Frame::Push(all(v)),
            Frame::Attribute { attributes, value } => {
                Frame::Attribute { attributes: pairs(attributes), value: Box::new(value.into_owned()) }
            }
        }
    }
}

/// Bounds on what a reply may make the decoder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest blob (bulk string, bulk error, verbatim string), in bytes. Redis's own
    /// `proto-max-bulk-len` defaults to 512 MiB.
    pub max_bulk: usize,
    /// Longest line (simple strings and errors, numbers, headers), in bytes.
    pub max_line: usize,
    /// Most elements in one aggregate (pairs for maps and attributes).
    pub max_aggregate: usize,
    /// Deepest nesting of aggregates.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_bulk: 512 << 20, max_line: 64 << 10, max_aggregate: 1 << 24, max_depth: 64 }
    }
}

/// Why input is not valid RESP (or breaks a [`Limits`] bound). The connection cannot be read
/// past it: the client closes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes break RESP's grammar.
    #[error("malformed RESP at byte {at}: {what}")]
    Malformed {
        /// Offset into the input.
        at: usize,
        /// What was wrong.
        what: &'static str,
    },
    /// A blob longer than `Limits::max_bulk`.
    #[error("a {len}-byte blob is over the limit of {limit}")]
    BulkTooLong {
        /// The length the server announced.
        len: u64,
        /// The limit.
        limit: usize,
    },
    /// A line longer than `Limits::max_line` without its CRLF.
    #[error("a line is over the limit of {limit} bytes")]
    LineTooLong {
        /// The limit.
        limit: usize,
    },
    /// An aggregate with more elements than `Limits::max_aggregate`.
    #[error("an aggregate of {len} elements is over the limit of {limit}")]
    AggregateTooLarge {
        /// The count the server announced.
        len: u64,
        /// The limit.
        limit: usize,
    },
    /// Aggregates nested deeper than `Limits::max_depth`.
    #[error("aggregates nested deeper than {limit}")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
}
