//! `zero sbe decode` on files of messages: back to back, and in an MDP 3.0 packet.

use std::process::Command;

fn zero() -> Command {
    Command::new(env!("CARGO_BIN_EXE_zero"))
}

const SCHEMA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../zero-sbe/tests/schemas/orders.xml");

/// An Order of the test schema: id `id`, no fills or notes, text `text`.
fn order(id: u64, text: &str) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [36u16, 1, 91, 1] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(&id.to_le_bytes());
    b.extend_from_slice(&5i64.to_le_bytes());
    b.extend_from_slice(&i32::MIN.to_le_bytes());
    b.extend_from_slice(b"1\0ESZ6\0\0\0\0");
    b.extend_from_slice(&[7, 0, 0, 0, 0, 0]);
    b.extend_from_slice(&[12, 0, 0, 0]); // fills: none
    b.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]); // notes: none
    b.extend_from_slice(&(text.len() as u16).to_le_bytes());
    b.extend_from_slice(text.as_bytes());
    b
}

fn decode(framing: &str, bytes: &[u8]) -> (bool, String, String) {
    let file = std::env::temp_dir().join(format!("zero-sbe-{framing}-{}.bin", std::process::id()));
    std::fs::write(&file, bytes).unwrap();
    let out =
        zero().args(["sbe", "decode", "--schema", SCHEMA, "--framing", framing]).arg(&file).output().unwrap();
    let _ = std::fs::remove_file(&file);
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn messages_back_to_back() {
    let bytes = [order(1, "one"), order(2, "two")].concat();
    let (ok, out, err) = decode("none", &bytes);
    assert!(ok, "{err}");
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!((lines[0]["orderId"].clone(), lines[1]["text"].clone()), (1.into(), "two".into()));
    assert_eq!(lines[0]["qty"], serde_json::Value::Null);
    // Cut short: the messages before are printed, then the error says where.
    let (ok, out, err) = decode("none", &bytes[..bytes.len() - 1]);
    assert!(!ok && out.lines().count() == 1 && err.contains("at byte"), "{out}{err}");
}

#[test]
fn an_mdp3_packet() {
    let mut packet = Vec::new();
    packet.extend_from_slice(&77u32.to_le_bytes());
    packet.extend_from_slice(&1_765_000_000_000_000_000u64.to_le_bytes());
    for m in [order(1, "a"), order(2, "bb")] {
        packet.extend_from_slice(&((m.len() + 2) as u16).to_le_bytes());
        packet.extend_from_slice(&m);
    }
    let (ok, out, err) = decode("mdp3", &packet);
    assert!(ok, "{err}");
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["$packet"]["msgSeqNum"], 77);
    assert_eq!((lines[1]["text"].clone(), lines[2]["orderId"].clone()), ("a".into(), 2.into()));
    let (ok, _, err) = decode("mdp3", &packet[..packet.len() - 3]);
    assert!(!ok && err.contains("does not fit"), "{err}");
}
