//! An SPF check against an arbitrary zone (every TXT, A, MX and PTR answer drawn from the
//! input, so records, macros and limits are all attacker-chosen): it ends, within the
//! RFC's lookup limits, with a result and never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zero_smtp::spf::{Answer, Check, Poll};

fuzz_target!(|data: &[u8]| {
    // Answers are lines of the input, used in turn; an empty line is a void lookup, a line
    // starting with '!' a failed one.
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n').cycle();
    let mut check = Check::new("192.0.2.1".parse().unwrap(), "joe@example.com", "mx.example.org");
    for _ in 0..200 {
        match check.poll() {
            Poll::Done(_) => return,
            Poll::Need(query) => {
                let line = lines.next().unwrap_or("");
                let answer = match line {
                    "" => Answer::Void,
                    l if l.starts_with('!') => Answer::Failed,
                    l => Answer::Found(l.split('|').map(str::to_string).collect()),
                };
                check.answer(query, answer);
            }
        }
    }
    panic!("an SPF check that did not end after 200 queries");
});
