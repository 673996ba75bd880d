//! zero-smtp's SPF against the openspf.org RFC 7208 test suite (release 2014.04, as pyspf
//! ships it; `tests/spf/`): every test's result must be one the suite allows. A Python
//! helper reads the YAML and answers DNS queries from each scenario's zone.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use zero_smtp::spf::{Answer, Check, Poll, QueryType};

fn unhex(s: &str) -> String {
    let bytes: Vec<u8> =
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn the_rfc_7208_test_suite() {
    let found = Command::new("/usr/bin/python3").args(["-c", "import yaml"]).status().unwrap();
    assert!(found.success(), "python3-yaml is missing: run scripts/test.sh");
    let dir = format!("{}/tests/spf", env!("CARGO_MANIFEST_DIR"));
    let mut oracle = Command::new("/usr/bin/python3")
        .arg(format!("{dir}/suite.py"))
        .arg(format!("{dir}/rfc7208-tests.yml"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut to = oracle.stdin.take().unwrap();
    let mut from = BufReader::new(oracle.stdout.take().unwrap());
    let mut read = move || {
        let mut reply = String::new();
        from.read_line(&mut reply).unwrap();
        reply.trim_end().to_string()
    };
    writeln!(to, "tests").unwrap();
    let mut tests = Vec::new();
    let mut line = read();
    while line != "end" {
        tests.push(line.split(' ').map(str::to_string).collect::<Vec<_>>());
        line = read();
    }
    let mut ask = |line: String| -> String {
        writeln!(to, "{line}").unwrap();
        read()
    };
    assert!(tests.len() > 200, "{} tests", tests.len());
    let mut failures = Vec::new();
    for t in &tests {
        let (scenario, name, host, helo, mailfrom, allowed) =
            (&t[0], unhex(&t[1]), unhex(&t[2]), unhex(&t[3]), unhex(&t[4]), &t[5]);
        let mut check = Check::new(host.parse().unwrap(), &mailfrom, &helo);
        let outcome = loop {
            match check.poll() {
                Poll::Done(outcome) => break outcome,
                Poll::Need(q) => {
                    let qtype = match q.qtype {
                        QueryType::Txt => "TXT",
                        QueryType::A => "A",
                        QueryType::Aaaa => "AAAA",
                        QueryType::Mx => "MX",
                        QueryType::Ptr => "PTR",
                    };
                    let reply = ask(format!("query {scenario} {} {qtype}", hex(&q.name)));
                    let answer = match reply.split_once(' ') {
                        Some(("found", list)) => Answer::Found(list.split(',').map(unhex).collect()),
                        _ if reply == "found" => Answer::Found(vec![String::new()]),
                        _ if reply == "void" => Answer::Void,
                        _ => Answer::Failed,
                    };
                    check.answer(q, answer);
                }
            }
        };
        if !allowed.split(',').any(|r| r == outcome.result.name()) {
            failures.push(format!(
                "{name}: {} ({}), the suite says {allowed}",
                outcome.result.name(),
                outcome.reason
            ));
        }
    }
    let _ = oracle.kill();
    let _ = oracle.wait();
    assert!(failures.is_empty(), "{} of {} failed:\n{}", failures.len(), tests.len(), failures.join("\n"));
}
