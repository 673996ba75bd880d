//! `zero ntp query` against chrony and a server that kisses us off: the sources table.

use std::process::Command;

use zero_conformance::ntp::{Chrony, Script, Scripted};

#[test]
fn query_prints_a_sources_table() {
    let chrony = Chrony::start();
    let deny = Scripted::start(Script::Kiss(*b"DENY"));
    let out = Command::new(env!("CARGO_BIN_EXE_zero"))
        .args([
            "ntp",
            "query",
            &chrony.addr.to_string(),
            &deny.addr.to_string(),
            "--samples",
            "3",
            "--interval",
            "0.25",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(&format!("^* {}", chrony.addr)) && text.contains("  8 "), "{text}");
    assert!(text.contains(&format!("^- {}", deny.addr)) && text.contains("kissed off: DENY"), "{text}");
    assert!(text.contains(&format!("selected {} (stratum 8, reference 127.127.1.1)", chrony.addr)), "{text}");
}
