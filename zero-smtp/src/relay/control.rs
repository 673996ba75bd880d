//! The relay's control socket (a Unix socket in each shard's spool directory): one command
//! line per connection, one reply line (`ok ...` or `error ...`), then the relay closes.
//!
//! - `flush`: every queued message is due now (`ok N queued`).
//! - `delete ID`: the message is forgotten without a bounce, and marked done in the spool.

use crate::spool::MessageId;

/// A command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Try every queued message now.
    Flush,
    /// Forget one message.
    Delete(MessageId),
}

impl Command {
    /// Parses a command line (without its newline).
    pub fn parse(line: &str) -> Result<Command, String> {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("flush"), None, _) => Ok(Command::Flush),
            (Some("delete"), Some(id), None) => u64::from_str_radix(id, 16)
                .map(|n| Command::Delete(MessageId(n)))
                .map_err(|_| format!("{id} is not a queue id (16 hex digits)")),
            _ => Err(format!("unknown command {line:?}: flush, or delete ID")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        assert_eq!(Command::parse("flush"), Ok(Command::Flush));
        assert_eq!(Command::parse("delete 00000000000000FF"), Ok(Command::Delete(MessageId(255))));
        assert!(Command::parse("delete zz").is_err());
        assert!(Command::parse("flush now").is_err());
        assert!(Command::parse("").is_err());
    }
}
