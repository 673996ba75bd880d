//! `openssl s_client` as a peer.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

/// The `openssl` command, which the test script installs; its absence is a failure, not a skip.
pub fn openssl() -> std::process::Command {
    let found =
        std::process::Command::new("openssl").arg("version").output().is_ok_and(|o| o.status.success());
    assert!(found, "openssl is not installed: run scripts/test.sh (it installs the test peers)");
    std::process::Command::new("openssl")
}

/// Runs `openssl s_client` against `addr` with `args`, sends `line`, and returns everything it
/// printed up to the line that ends with the echo (or up to its exit, or ten quiet seconds).
pub fn s_client(addr: SocketAddr, args: &[&str], line: &str) -> String {
    use std::io::BufRead;
    use std::process::Stdio;
    let mut child = openssl()
        .args(["s_client", "-connect", &addr.to_string()])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut out = String::new();
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let line = line.to_owned();
    std::thread::spawn(move || {
        let mut l = String::new();
        while reader.read_line(&mut l).is_ok_and(|n| n > 0) {
            let echoed = l.trim_end().ends_with(&line);
            let _ = tx.send(std::mem::take(&mut l));
            if echoed {
                break;
            }
        }
    });
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(10)) {
        out.push_str(&l);
    }
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    out
}
