//! The FIX session layer: the [`Session`] machine, its [`SessionConfig`] and the
//! [`MessageStore`] it keeps its numbers and sent messages in.

mod config;
mod machine;
mod store;
#[cfg(test)]
mod tests;

pub use config::{ResendFilter, Role, SessionConfig};
pub use machine::{Cause, Event, SendError, Session};
pub use store::{MemoryStore, MessageStore};
