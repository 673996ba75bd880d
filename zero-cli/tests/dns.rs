//! `zero dns query` against unbound (its answer, as dig prints it, and dig's exit codes), and
//! `zero conformance dns` against the same server.

use std::process::Command;

use zero_conformance::dns::Unbound;

fn zero() -> Command {
    Command::new(env!("CARGO_BIN_EXE_zero"))
}

#[test]
fn query_prints_like_dig_and_the_suite_passes() {
    let u = Unbound::start_tls();
    let at = format!("@{}", u.addr);
    let out = zero().args(["dns", "query", "zero.test", "MX", &at]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("status: NOERROR") && text.contains(";; flags: qr aa rd ra;"), "{text}");
    assert!(text.contains(";; ANSWER SECTION:") && text.contains("MX\t5 mx0.zero.test."), "{text}");
    assert!(text.contains(&format!(";; SERVER: 127.0.0.1#{}(127.0.0.1) (UDP)", u.addr.port())), "{text}");
    // Over TCP, and an answer that is NXDOMAIN (still exit 0, as dig).
    let out = zero().args(["dns", "query", &at, "+tcp", "www.zero.test"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("10.0.0.1") && text.contains("(TCP)"), "{text}");
    let out = zero().args(["dns", "query", "nothere.zero.test", &at]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("status: NXDOMAIN"), "{text}");
    // Nobody answers: dig's exit code 9.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let at_silent = format!("@{}", silent.local_addr().unwrap());
    let out =
        zero().args(["dns", "query", "www.zero.test", &at_silent, "+time=1", "+tries=1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(9), "{}", String::from_utf8_lossy(&out.stdout));
    // DNS over TLS, the certificate checked for its name.
    let (tls_addr, ca) = u.tls.clone().unwrap();
    let ca_file = std::env::temp_dir().join(format!("zero-cli-dns-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, ca).unwrap();
    let ca_arg = format!("+tls-ca={}", ca_file.display());
    let at_tls = format!("@{tls_addr}");
    let out = zero()
        .args(["dns", "query", "www.zero.test", &at_tls, "+tls", "+tls-name=dns.zero.test", &ca_arg])
        .output();
    let text = String::from_utf8_lossy(&out.as_ref().unwrap().stdout).into_owned();
    assert!(text.contains("10.0.0.2") && text.contains("(TLS)"), "{text}");
    let out = zero()
        .args(["dns", "query", "www.zero.test", &at_tls, "+tls", "+tries=1", &ca_arg])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("certificate"), "the name 127.0.0.1 is not on it: {text}");
    let _ = std::fs::remove_file(&ca_file);
    // The server suite.
    let out = zero().args(["conformance", "dns", "--target", &u.addr.to_string()]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("7 checks, 7 passed, 0 failed"), "{text}");
}
