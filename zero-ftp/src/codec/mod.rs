//! FTP's wire forms, without I/O: command lines, replies (written and read), listings.

pub mod command;
pub mod list;
pub mod reply;

pub use command::{Line, Verb};
pub use reply::{Reply, ReplyReader};
