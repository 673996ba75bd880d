//! What generated flyweights share (see [`crate::generate`]): their error type.

/// Why a generated decoder refused a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The buffer ends before something it must hold.
    #[error("the buffer ends before the {0} it must hold")]
    Short(&'static str),
    /// A block length on the wire is shorter than the fields every version has.
    #[error("a {0} block is shorter than its first version's fields")]
    Block(&'static str),
    /// The header names another schema.
    #[error("the header names schema {0}")]
    OtherSchema(u16),
}
