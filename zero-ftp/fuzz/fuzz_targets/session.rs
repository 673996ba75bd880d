//! The server session machine driven by arbitrary input: the bytes are command lines (a
//! logged-in user's, so every command is reached), cut into reads where the input says, and
//! the owner's answers (file-system results, passive listeners, transfers opened and ended)
//! are chosen by the input too. The session must never panic, and must never ask for a data
//! connection to an address other than the client's.
#![no_main]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use zero_core::machine::Machine;
use zero_ftp::server::{
    DataMode, Event, FsDone, FsError, Peer, ServerConfig, Session, TransferEnd, Users,
};

fuzz_target!(|data: &[u8]| {
    let users = Users::parse(
        "alice:$5$saltsalt$hcyDOxdIg0p3xyqtpHh/v8Ph.am06tQaovp1KpEklb7:rwdm",
        Path::new("/srv"),
    )
    .unwrap();
    let config = ServerConfig { users, anonymous: Some("/pub".into()), ..ServerConfig::default() };
    let peer =
        Peer { remote: "127.0.0.1:40000".parse().unwrap(), local: "127.0.0.1:21".parse().unwrap(), tls: false };
    let mut s = Session::new(Arc::new(config), peer);
    let mut now = Instant::now();
    s.handle_connected(now);
    s.handle_input(now, b"USER anonymous\r\nPASS x\r\n");
    let mut at = 0;
    while at < data.len() {
        let n = usize::from(data[at] % 64) + 1;
        let chunk = &data[at + 1..(at + 1 + n).min(data.len())];
        at += 1 + n;
        s.handle_input(now, chunk);
        while let Some(event) = s.poll_event() {
            let pick = data.get(at).copied().unwrap_or(0);
            match event {
                Event::Passive { .. } => s.passive_done(now, (pick % 4 != 0).then(|| "127.0.0.1:30000".parse().unwrap())),
                Event::Fs(_) => s.fs_done(now, if pick % 3 == 0 { Err(FsError::NotFound) } else { Ok(FsDone::Ok) }),
                Event::Transfer(t) => {
                    if let DataMode::Active(addr) = t.mode {
                        assert_eq!(addr.ip(), peer.remote.ip(), "a data connection elsewhere");
                        assert!(addr.port() >= 1024, "a privileged port");
                    }
                    if pick % 2 == 0 {
                        s.transfer_opened(now);
                    }
                    s.transfer_done(now, if pick % 5 == 0 { TransferEnd::Broken } else { TransferEnd::Complete(1) });
                }
                Event::LoggedIn { .. } | Event::DropData | Event::Abort => {}
            }
        }
        while s.poll_transmit().is_some() {}
        now += Duration::from_secs(u64::from(data.get(at).copied().unwrap_or(0) % 8));
        s.handle_timeout(now);
    }
});
