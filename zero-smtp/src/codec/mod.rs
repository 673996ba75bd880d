//! The SMTP codec (sans I/O): command lines ([`command`]), replies ([`reply`]) and the
//! message body of `DATA` ([`data`]), each a pure function or a small incremental reader over
//! bytes, with the RFC 5321 limits checked where the bytes are read.

pub mod command;
pub mod data;
pub mod reply;

pub use command::{Command, CommandError, MailParams, Path, RcptParams};
pub use data::{BareLineEnding, DataError, DataReader, DataStatus};
pub use reply::{Enhanced, Reply};

/// The longest command line, CRLF included (RFC 5321 4.5.3.1.4), before any SMTP
/// extension's parameters; [`MAX_COMMAND_LINE_EXTENDED`] with them.
pub const MAX_COMMAND_LINE: usize = 512;

/// The longest command line we read when extensions add parameters (RFC 5321 4.5.3.1.4 lets
/// each extension add to the limit; SIZE, BODY, SMTPUTF8, RET, ENVID, NOTIFY, ORCPT and AUTH
/// together stay well under this).
pub const MAX_COMMAND_LINE_EXTENDED: usize = 2048;

/// The longest line of message text, CRLF included (RFC 5321 4.5.3.1.6).
pub const MAX_TEXT_LINE: usize = 1000;

/// The longest reply line, CRLF included (RFC 5321 4.5.3.1.5).
pub const MAX_REPLY_LINE: usize = 512;

/// The end of the line starting `input`: the index of its CRLF, if a whole line is there.
/// Only CRLF ends a command line; a bare LF is part of the line (and makes it malformed).
pub fn line_end(input: &[u8]) -> Option<usize> {
    input.windows(2).position(|w| w == b"\r\n")
}
