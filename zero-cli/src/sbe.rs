//! `zero sbe decode`: SBE messages from a file (or standard input) as JSON lines, decoded
//! from the schema alone; `zero sbe generate`: a schema's Rust flyweights.

use std::io::Write;
use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use zero_sbe::mdp3::packet::Packet;
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
    /// Print (or write to --out) the Rust flyweight decoders of a schema, as a `build.rs`
    /// would make them with `zero_sbe::generate::rust`.
    Generate {
        /// The XML message schema.
        #[arg(long)]
        schema: PathBuf,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn read_schema(path: &std::path::Path) -> Result<Schema, String> {
    let xml = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Schema::parse(&xml).map_err(|e| e.to_string())
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
    let (schema, framing, file) = match command {
        SbeCommand::Generate { schema, out } => {
            let code = zero_sbe::generate::rust(&read_schema(&schema)?);
            return match out {
                Some(path) => std::fs::write(&path, code).map_err(|e| format!("{}: {e}", path.display())),
                None => std::io::stdout().write_all(code.as_bytes()).map_err(|e| e.to_string()),
            };
        }
        SbeCommand::Decode { schema, framing, file } => (read_schema(&schema)?, framing, file),
    };
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
            let packet = Packet::parse(&bytes).map_err(|e| e.to_string())?;
            line(
                serde_json::json!({ "$packet": { "msgSeqNum": packet.seq, "sendingTime": packet.sending_time } }),
            )?;
            for message in packet.messages() {
                let message = message.map_err(|e| e.to_string())?;
                let (value, _) = zero_sbe::to_json(&schema, message).map_err(|e| e.to_string())?;
                line(value)?;
            }
        }
    }
    Ok(())
}
