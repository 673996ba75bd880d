//! Every reader of network input in zero-ftp's codec, on arbitrary bytes: command lines,
//! PORT/EPRT and passive replies, the client's reply reader (byte by byte and whole), MLSD
//! lines and timevals. None may panic; a reply read back is one the reader can write again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zero_ftp::codec::{command, list, ReplyReader};

fuzz_target!(|data: &[u8]| {
    let _ = command::parse(data);
    let text = String::from_utf8_lossy(data);
    let _ = command::parse_port(&text);
    let _ = command::parse_eprt(&text);
    let _ = command::parse_pasv_reply(&text);
    let _ = command::parse_epsv_reply(&text);
    let _ = list::parse_mlsx(&text);
    let _ = list::parse_timeval(&text);
    let mut whole = ReplyReader::new();
    whole.push(data);
    while let Ok(Some(reply)) = whole.next_reply() {
        let mut again = ReplyReader::new();
        again.push(&reply.to_bytes());
        assert_eq!(again.next_reply().ok().flatten().map(|r| r.code), Some(reply.code));
    }
    let mut bytewise = ReplyReader::new();
    for b in data {
        bytewise.push(&[*b]);
        if bytewise.next_reply().is_err() {
            break;
        }
    }
});
