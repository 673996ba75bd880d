//! The FIX tag=value codec, sans I/O: [`frame`] finds messages in a byte stream (BodyLength,
//! CheckSum, resynchronising after a garbled one), [`message`] reads one in place, [`builder`]
//! writes one into a send buffer, [`time`] reads and writes UTCTimestamps.

pub mod builder;
pub mod decimal;
pub mod frame;
pub mod message;
pub mod tag;
pub mod time;

pub use builder::Builder;
pub use decimal::Decimal;
pub use frame::{checksum, Garbled, Limits, SOH};
pub use message::{DataFields, Decoded, Decoder, Field, Group, GroupError, Malformed, Message};
pub use time::{Precision, Timestamp};
