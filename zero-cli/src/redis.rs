//! `zero redis`: one command against a Redis server, its reply printed the way redis-cli
//! prints it; or, for `SUBSCRIBE`, `PSUBSCRIBE` and `SSUBSCRIBE`, the messages as they come.

use clap::Args;
use zero_redis::client::{BlockingClient, Commands, SubKind};
use zero_redis::codec::Frame;
use zero_redis::{cmd, Error, Value};

/// Options of `zero redis`.
#[derive(Args, Debug)]
pub struct RedisArgs {
    /// The server: `redis://[user:password@]host[:port][/db][?protocol=resp2]`, or
    /// `rediss://` for TLS.
    #[arg(long, short = 'u', default_value = "redis://127.0.0.1:6379")]
    url: String,
    /// The command and its arguments (e.g. `SET greeting hello`).
    #[arg(required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// Runs the command and prints its reply; an error reply fails.
pub fn run(args: RedisArgs) -> Result<(), String> {
    let client = BlockingClient::open(&args.url).map_err(|e| format!("{}: {e}", args.url))?;
    let (name, rest) = args.command.split_first().expect("clap requires a command");
    let kind = match name.to_ascii_uppercase().as_str() {
        "SUBSCRIBE" => Some(SubKind::Channel),
        "PSUBSCRIBE" => Some(SubKind::Pattern),
        "SSUBSCRIBE" => Some(SubKind::Shard),
        _ => None,
    };
    if let Some(kind) = kind {
        return subscribe(&client, kind, rest);
    }
    let command = rest.iter().fold(cmd(name), |c, a| c.arg(a));
    match client.query::<Value>(command) {
        Ok(reply) => {
            println!("{}", render(&reply, 0));
            Ok(())
        }
        Err(Error::Server(e)) => {
            println!("(error) {e}");
            Err(format!("the server refused {name}"))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Prints `channel payload` (or `pattern channel payload`) per message until the process is
/// killed; the subscriptions come back by themselves after a reconnect.
fn subscribe(client: &BlockingClient, kind: SubKind, channels: &[String]) -> Result<(), String> {
    let channels: Vec<&str> = channels.iter().map(String::as_str).collect();
    client.subscribe(kind, &channels).map_err(|e| e.to_string())?;
    eprintln!("zero redis: subscribed to {}", channels.join(" "));
    while let Some(m) = client.recv(None) {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match &m.pattern {
            Some(p) => println!("{} {} {}", text(p), text(&m.channel), text(&m.payload)),
            None => println!("{} {}", text(&m.channel), text(&m.payload)),
        }
    }
    Ok(())
}

/// A reply as redis-cli shows it: `"quoted"` strings, `(integer) 1`, `(nil)`, numbered
/// aggregate elements indented under their parent. `indent`: the columns of the number in
/// front of this element.
fn render(frame: &Frame<'_>, indent: usize) -> String {
    let items = |items: &[Frame<'_>], empty: &str| {
        if items.is_empty() {
            return format!("({empty})");
        }
        let width = items.len().to_string().len();
        let lines: Vec<String> = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let number = format!("{:>width$}) ", i + 1);
                format!("{number}{}", render(item, indent + number.len()))
            })
            .collect();
        lines.join(&format!("\n{}", " ".repeat(indent)))
    };
    match frame {
        Frame::Simple(s) => String::from_utf8_lossy(s).into_owned(),
        Frame::Bulk(b) => quote(b),
        Frame::Verbatim { text, .. } => String::from_utf8_lossy(text).into_owned(),
        Frame::Error(e) | Frame::BulkError(e) => format!("(error) {}", String::from_utf8_lossy(e)),
        Frame::Integer(i) => format!("(integer) {i}"),
        Frame::Double(d) => format!("(double) {d}"),
        Frame::BigNumber(n) => format!("(big number) {}", String::from_utf8_lossy(n)),
        Frame::Boolean(b) => format!("({b})"),
        Frame::Null => "(nil)".into(),
        Frame::Array(v) | Frame::Push(v) => items(v, "empty array"),
        Frame::Set(v) => items(v, "empty set"),
        Frame::Map(pairs) => {
            if pairs.is_empty() {
                return "(empty hash)".into();
            }
            let width = pairs.len().to_string().len();
            let lines: Vec<String> = pairs
                .iter()
                .enumerate()
                .map(|(i, (k, v))| {
                    let head = format!("{:>width$}# {} => ", i + 1, render(k, 0));
                    format!("{head}{}", render(v, indent + head.len()))
                })
                .collect();
            lines.join(&format!("\n{}", " ".repeat(indent)))
        }
        Frame::Attribute { value, .. } => render(value, indent),
    }
}

/// A bulk string in double quotes, escaped as redis-cli does.
fn quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    fn bulk(s: &str) -> Frame<'static> {
        Frame::Bulk(Cow::Owned(s.as_bytes().to_vec()))
    }

    #[test]
    fn replies_print_as_redis_cli_prints_them() {
        assert_eq!(render(&bulk("a\"b\n\x01"), 0), r#""a\"b\n\x01""#);
        assert_eq!(render(&Frame::Null, 0), "(nil)");
        let nested = Frame::Array(vec![
            bulk("x"),
            Frame::Array(vec![Frame::Integer(1), Frame::Integer(2)]),
            Frame::Array(vec![]),
        ]);
        assert_eq!(render(&nested, 0), "1) \"x\"\n2) 1) (integer) 1\n   2) (integer) 2\n3) (empty array)");
        let map = Frame::Map(vec![(bulk("k"), bulk("v")), (bulk("n"), Frame::Double(1.5))]);
        assert_eq!(render(&map, 0), "1# \"k\" => \"v\"\n2# \"n\" => (double) 1.5");
    }
}
