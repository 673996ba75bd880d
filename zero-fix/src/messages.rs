//! Typed views of the common order-entry messages, generated at build time from the FIX 4.4
//! dictionary (`build.rs`): one method per top-level field, typed by the field's FIX type
//! (`Option<Decimal>` for a Price, `Option<u8>` for a Side), one per repeating group, and
//! [`values`] with every enumerated value by name. They read the borrowed message; nothing is
//! copied.
//!
//! ```
//! use zero_fix::codec::{Decoded, Decoder, Decimal};
//! use zero_fix::messages::{values, NewOrderSingle};
//! # let body = "35=D\x0149=C\x0156=B\x0134=2\x0152=20261207-09:30:00\x0111=ORD-1\x0155=ZERO\x0154=1\x0160=20261207-09:30:00\x0138=100\x0140=2\x0144=10.25\x01";
//! # let mut bytes = format!("8=FIX.4.4\x019={}\x01{body}", body.len()).into_bytes();
//! # let sum = zero_fix::codec::checksum(&bytes);
//! # bytes.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
//! let mut decoder = Decoder::default();
//! let Decoded::Message(message) = decoder.decode(&bytes) else { panic!() };
//! let order = NewOrderSingle::new(message).expect("35=D");
//! assert_eq!(order.cl_ord_id(), Some(&b"ORD-1"[..]));
//! assert_eq!(order.side(), Some(values::side::BUY));
//! assert_eq!(order.price(), Some(Decimal::new(1025, 2)));
//! ```

use crate::codec::message::parse_int;
use crate::codec::{Decimal, Group, GroupError, Message, Timestamp};

include!(concat!(env!("OUT_DIR"), "/messages.rs"));
