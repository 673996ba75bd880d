//! The QuickFIX C++ counterparty (`conformance/fix/quickfix_peer.cpp`, built against Debian's
//! libquickfix-dev), for the interoperability tests and benchmarks.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The peer program, built into `dir` with g++ if it is missing or older than its source
/// (once per process: a binary must not run while it is being written, so it is built aside
/// and renamed into place). Panics if it cannot be built.
pub fn quickfix_peer(dir: &Path) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| build(dir)).clone()
}

fn build(dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("fix/quickfix_peer.cpp");
    let binary = dir.join("quickfix_peer");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if modified(&binary).is_some_and(|b| modified(&source).is_some_and(|s| b >= s)) {
        return binary;
    }
    let partial = binary.with_extension(format!("partial-{}", std::process::id()));
    let status = Command::new("g++")
        .args(["-std=c++11", "-O1", "-Wno-deprecated", "-o"])
        .arg(&partial)
        .arg(&source)
        .args(["-lquickfix", "-lpthread"])
        .status()
        .expect("g++ runs (scripts/test.sh installs g++ and libquickfix-dev)");
    assert!(status.success(), "the QuickFIX peer does not build: is libquickfix-dev installed?");
    std::fs::rename(&partial, &binary).expect("renames the built peer into place");
    binary
}
