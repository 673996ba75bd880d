//! The write-ahead log on real files: reopening, a torn tail, compaction, and a full disk (a
//! small tmpfs the test mounts and fills) under a running session.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime};

use zero_core::machine::Machine;
use zero_fix::codec::Timestamp;
use zero_fix::session::{
    Cause, Event, Fsync, MemoryStore, MessageStore, Role, SendError, Session, SessionConfig, Wal,
};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zero-fix-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn loaded(wal: &Wal, begin: u64, end: u64) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    wal.load(begin, end, &mut |seq, bytes| out.push((seq, bytes.to_vec()))).unwrap();
    out
}

#[test]
fn records_survive_reopen_and_a_torn_tail_is_cut() {
    let dir = temp_dir("wal-reopen");
    let now = Instant::now();
    {
        let mut wal = Wal::open(&dir, Fsync::Always).unwrap();
        for seq in 1..=10 {
            wal.save(seq, format!("message {seq}").as_bytes()).unwrap();
        }
        wal.set_next_in(42).unwrap();
        assert_eq!(loaded(&wal, 9, 10).len(), 2, "unflushed messages are readable");
        wal.flush(now).unwrap();
        wal.save(11, b"never flushed").unwrap();
    }
    // A crash in the middle of a write: half a record at the end.
    let mut file = std::fs::OpenOptions::new().append(true).open(dir.join("journal")).unwrap();
    file.write_all(&[0, 0, 0, 40, 1, 2, 3]).unwrap();
    drop(file);
    let wal = Wal::open(&dir, Fsync::Always).unwrap();
    assert_eq!((wal.next_out(), wal.next_in()), (11, 42));
    assert_eq!(loaded(&wal, 3, 4), [(3, b"message 3".to_vec()), (4, b"message 4".to_vec())]);
    assert!(loaded(&wal, 11, 11).is_empty());
    drop(wal);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn compaction_keeps_the_numbers_and_the_retained_messages_and_bounds_the_file() {
    let dir = temp_dir("wal-compact");
    let now = Instant::now();
    let mut wal = Wal::open_with(&dir, Fsync::Never, 5, 4096).unwrap();
    for seq in 1..=2000 {
        wal.save(seq, &[b'x'; 100]).unwrap();
        wal.set_next_in(seq + 1).unwrap();
        wal.flush(now).unwrap();
    }
    wal.reset(Timestamp(1_796_635_800)).unwrap();
    wal.save(1, b"after the reset").unwrap();
    wal.flush(now).unwrap();
    let size = std::fs::metadata(dir.join("journal")).unwrap().len();
    assert!(size < 64 * 1024, "the journal stays bounded: {size} bytes");
    drop(wal);
    let wal = Wal::open_with(&dir, Fsync::Never, 5, 4096).unwrap();
    assert_eq!((wal.next_out(), wal.next_in()), (2, 1));
    assert_eq!(loaded(&wal, 1, 3000), [(1, b"after the reset".to_vec())]);
    assert_eq!(wal.created(), Some(Timestamp(1_796_635_800)), "when the numbers began survives compaction");
    drop(wal);
    let mut wal = Wal::open_with(&dir, Fsync::Never, 5, 4096).unwrap();
    for seq in 2..=50 {
        wal.save(seq, seq.to_string().as_bytes()).unwrap();
        wal.flush(now).unwrap();
    }
    let kept: Vec<u64> = loaded(&wal, 1, 100).into_iter().map(|(s, _)| s).collect();
    assert_eq!(kept, [46, 47, 48, 49, 50]);
    drop(wal);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A tmpfs of `size` mounted at `dir`, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "mounting a tmpfs needs root (the test suite runs as root)"
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn session<S: MessageStore>(role: Role, store: S, now: Instant) -> Session<S> {
    let (us, them) = match role {
        Role::Initiator => ("CLIENT", "BROKER"),
        Role::Acceptor => ("BROKER", "CLIENT"),
    };
    Session::new(SessionConfig::new(role, us, them), store, now, SystemTime::now().into())
}

#[test]
fn a_full_disk_stops_the_session_before_it_could_lose_a_number() {
    let dir = temp_dir("wal-full");
    let mount = Tmpfs::mount(&dir, "128k");
    let wal_dir = dir.join("session");
    let now = Instant::now();
    let mut i = session(Role::Initiator, Wal::open(&wal_dir, Fsync::Always).unwrap(), now);
    let mut a = session(Role::Acceptor, MemoryStore::default(), now);
    assert!(i.wants_connect(now));
    i.handle_connected(now);
    a.handle_connected(now);
    let mut received = Vec::new();
    let mut stopped = None;
    let mut send_error = None;
    for n in 0..100_000 {
        if n > 0 && i.is_logged_on() && send_error.is_none() {
            let id = format!("ORD-{n}");
            if let Err(e) = i.send(now, b"D", |b| {
                b.str(11, id.as_bytes()).str(58, &[b'x'; 200]);
            }) {
                send_error = Some(e);
            }
        }
        while let Some(bytes) = i.poll_transmit() {
            let bytes = bytes.to_vec();
            a.handle_input(now, &bytes);
        }
        while let Some(e) = a.poll_event() {
            if let Event::Application(m) = e {
                received.push((m.seq_num().unwrap(), m.get(11).unwrap().to_vec()));
            }
        }
        while let Some(bytes) = a.poll_transmit() {
            let bytes = bytes.to_vec();
            i.handle_input(now, &bytes);
        }
        while let Some(e) = i.poll_event() {
            if let Event::Disconnected(cause) = e {
                stopped = Some(cause);
            }
        }
        if stopped.is_some() {
            break;
        }
    }
    assert!(matches!(stopped, Some(Cause::Store(_))), "the session stopped on the store: {stopped:?}");
    assert!(received.len() > 10, "some orders went through first: {}", received.len());
    assert!(i.poll_close(), "it closes the connection");
    assert!(i.poll_transmit().is_none(), "and sends nothing more");
    if let Some(e) = send_error {
        assert!(matches!(e, SendError::Store(_) | SendError::NotLoggedOn), "{e:?}");
    }
    drop(i);

    // Reopening on the same full disk recovers: every order the acceptor got is in the log,
    // and the next number is past all of them.
    let wal = Wal::open(&wal_dir, Fsync::Always).expect("recovery works on a full disk");
    let last = received.last().unwrap().0;
    assert!(wal.next_out() > last, "next {} after {last}", wal.next_out());
    let stored: std::collections::HashMap<u64, Vec<u8>> = loaded(&wal, 1, u64::MAX).into_iter().collect();
    for (seq, id) in &received {
        let m = stored.get(seq).unwrap_or_else(|| panic!("order {seq} is not in the log"));
        assert!(m.windows(id.len()).any(|w| w == &id[..]), "order {seq} is the one sent");
    }
    drop(wal);
    drop(mount);
    let _ = std::fs::remove_dir_all(&dir);
}
