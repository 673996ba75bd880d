//! `zero sbe decode`: SBE messages from a file (or standard input) as JSON lines, decoded
//! from the schema alone.

use std::io::Write;
use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use zero_sbe::Schema;

/// `zero sbe` commands.
#[derive(Subcommand, Debug)]
pub enum SbeCommand {
    /// Print each message of FILE as a JSON line (the schema says how to read them).
    Decode {
        /// The XML message schema.
        #[arg(long)]
        schema: PathBuf,
        /// How messages are framed in the file.
        #[arg(long, value_enum, default_value = "none")]
        framing: Framing,
        /// The file (`-` for standard input).
        #[arg(default_value = "-")]
        file: PathBuf,
    },
}

/// Framings of a file of messages.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Framing {
    /// Messages back to back, each found by its header and schema.
    None,
    /// One CME MDP 3.0 packet: MsgSeqNum (u32), SendingTime (u64), then each message after
    /// its size (u16, the size included).
    Mdp3,
}

/// Runs a `zero sbe` command.
pub fn run(command: SbeCommand) -> Result<(), String> {
    let SbeCommand::Decode { schema, framing, file } = command;
    let xml = std::fs::read_to_string(&schema).map_err(|e| format!("{}: {e}", schema.display()))?;
    let schema = Schema::parse(&xml).map_err(|e| e.to_string())?;
    let bytes = if file.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b).map_err(|e| e.to_string())?;
        b
    } else {
        std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?
    };
    let mut out = std::io::stdout().lock();
    let mut line = |value: serde_json::Value| writeln!(out, "{value}").map_err(|e| e.to_string());
    match framing {
        Framing::None => {
            let mut at = 0;
            while at < bytes.len() {
                let (value, used) =
                    zero_sbe::to_json(&schema, &bytes[at..]).map_err(|e| format!("at byte {at}: {e}"))?;
                line(value)?;
                at += used;
            }
        }
        Framing::Mdp3 => {
            let head = bytes.get(..12).ok_or("an MDP 3.0 packet starts with 12 bytes of header")?;
            let seq = u32::from_le_bytes(head[..4].try_into().expect("4 bytes"));
            let sent = u64::from_le_bytes(head[4..12].try_into().expect("8 bytes"));
            line(serde_json::json!({ "$packet": { "msgSeqNum": seq, "sendingTime": sent } }))?;
            let mut at = 12;
            while at < bytes.len() {
                let size = bytes.get(at..at + 2).map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])));
                let Some(size) = size.filter(|&s| s >= 2 && at + s <= bytes.len()) else {
                    return Err(format!("at byte {at}: a message size that does not fit the packet"));
                };
                let (value, _) = zero_sbe::to_json(&schema, &bytes[at + 2..at + size])
                    .map_err(|e| format!("at byte {at}: {e}"))?;
                line(value)?;
                at += size;
            }
        }
    }
    Ok(())
}
