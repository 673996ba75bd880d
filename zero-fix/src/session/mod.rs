//! The FIX session layer: the [`Session`] machine, its [`SessionConfig`] and [`Schedule`], and the
//! [`MessageStore`] it keeps its numbers and sent messages in: in memory, or in the
//! write-ahead log [`Wal`].

mod config;
mod machine;
mod schedule;
mod store;
#[cfg(test)]
mod tests;
mod wal;

pub use config::{ResendFilter, Role, SessionConfig};
pub use machine::{Cause, Event, SendError, Sender, Session};
pub use schedule::{Schedule, ScheduleError, Window};
pub use store::{MemoryStore, MessageStore};
pub use wal::Wal;
pub use zero_core::journal::Fsync;
