//! # zero-fix
//!
//! FIX 4.2, 4.4 and FIXT 1.1 for zero. This first part is the tag=value [`codec`]: a
//! zero-copy parser (messages framed by BodyLength and verified by CheckSum, fields as
//! borrowed slices in wire order, header fields in O(1), repeating groups on demand, garbled
//! frames skipped up to the next `8=FIX`) and a builder that writes straight into a send
//! buffer and fills in BodyLength and CheckSum at the end. Decoding allocates nothing in
//! steady state: the decoder's field table is reused.
//!
//! The [`dict`] module reads data dictionaries in the QuickFIX XML format (FIX 4.2, 4.4,
//! FIXT 1.1 and FIX 5.0 SP2 are built in) and checks received messages against them as a
//! session's [`dict::Validation`] says, with the SessionRejectReason a Reject carries.
//! [`messages`] has typed views of the common order-entry messages, generated from the FIX 4.4
//! dictionary at build time.
//!
//! ## Dependencies, and why
//! - `thiserror`: the house error convention.
//! - `roxmltree`: reads the QuickFIX XML dictionaries (the de-facto format for custom ones):
//!   small, no dependencies of its own, read-only, which is all a dictionary needs. The build
//!   script uses it too, through the same reader (`src/dict/model.rs`).

pub mod acceptor;
pub mod codec;
pub mod dict;
pub mod messages;
pub mod session;
