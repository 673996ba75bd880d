//! `zero mdns register` and `zero mdns browse` against python-zeroconf, inside a network
//! namespace the test makes (its loopback with multicast on; nothing reaches the machine's
//! own network): our service is found and resolved by zeroconf and its goodbye removes it;
//! zeroconf's service is found by our browser and resolved by `zero mdns resolve`; a name
//! zeroconf holds makes ours rename.

use std::process::{Command, Output, Stdio};

fn zero() -> String {
    env!("CARGO_BIN_EXE_zero").to_string()
}

/// A network namespace with only `lo`, multicast on and routed; deleted on drop.
struct Netns(String);

impl Netns {
    fn new() -> Netns {
        let name = format!("zero-mdns-{}", std::process::id());
        let ip = |args: &[&str]| {
            let status = Command::new("ip").args(args).status().expect("ip (iproute2) runs");
            assert!(status.success(), "ip {args:?} (the tests run as root)");
        };
        let _ = Command::new("ip").args(["netns", "del", &name]).stderr(Stdio::null()).status();
        ip(&["netns", "add", &name]);
        let ns = Netns(name);
        ip(&["netns", "exec", &ns.0, "ip", "link", "set", "lo", "up"]);
        ip(&["netns", "exec", &ns.0, "ip", "link", "set", "lo", "multicast", "on"]);
        ip(&["netns", "exec", &ns.0, "ip", "route", "add", "224.0.0.0/4", "dev", "lo"]);
        ns
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0, program]);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn python(ns: &Netns, script: &str, args: &[&str]) -> Command {
    let found = Command::new("/usr/bin/python3").args(["-c", "import zeroconf"]).output();
    assert!(found.is_ok_and(|o| o.status.success()), "python3-zeroconf is missing: run scripts/test.sh");
    let mut c = ns.command("/usr/bin/python3");
    c.arg(format!("{}/tests/mdns/{script}", env!("CARGO_MANIFEST_DIR"))).args(args);
    c
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn zeroconf_finds_ours_and_we_find_and_yield_to_theirs() {
    let ns = Netns::new();
    // Ours, found and resolved by zeroconf; the goodbye removes it.
    let ours = ns
        .command(&zero())
        .args(["mdns", "register", "Zero Printer", "_zero._tcp", "8080", "v=1", "--for", "4"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let seen = python(&ns, "browse.py", &["_zero._tcp.local.", "6"]).output().unwrap();
    let ours = ours.wait_with_output().unwrap();
    let seen = text(&seen);
    assert!(seen.contains("added Zero Printer._zero._tcp.local. 8080 {b'v': b'1'} ['127.0.0.1']"), "{seen}");
    assert!(seen.contains("removed Zero Printer._zero._tcp.local."), "the goodbye: {seen}");
    assert!(text(&ours).contains("registered Zero Printer"), "{}", text(&ours));

    // Theirs, found by our browser; the same name registered by us is renamed.
    let theirs = python(&ns, "register.py", &["Py Service", "_zero._tcp.local.", "9090", "5"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let clash = ns
        .command(&zero())
        .args(["mdns", "register", "Py Service", "_zero._tcp", "8080", "--for", "3"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let resolved = ns
        .command(&zero())
        .args(["mdns", "resolve", "Py Service", "_zero._tcp", "--for", "3"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let browsed = ns.command(&zero()).args(["mdns", "browse", "_zero._tcp", "--for", "6"]).output().unwrap();
    let resolved = text(&resolved.wait_with_output().unwrap());
    assert_eq!(resolved, "Py Service at pyhost.local.:9090 [127.0.0.1] txt [\"from=python\"]\n");
    let clash = text(&clash.wait_with_output().unwrap());
    let _ = theirs.wait_with_output();
    let browsed = text(&browsed);
    assert!(
        browsed.contains("added Py Service at pyhost.local.:9090 [127.0.0.1] txt [\"from=python\"]"),
        "{browsed}"
    );
    assert!(clash.contains("renamed Py Service -> Py Service (2) (name conflict)"), "{clash}");
    assert!(browsed.contains("added Py Service (2) at zero.local.:8080"), "{browsed}");
    assert!(browsed.contains("removed Py Service (2)"), "our goodbye: {browsed}");
}
