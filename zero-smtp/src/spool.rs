//! The spool: every accepted message, on disk before its `250`.
//!
//! It is a zero-core [`Journal`] in the spool directory: an append-only file of checksummed
//! records: a **message** (its id, envelope, arrival time and text), a **recipient done**
//! mark (one recipient delivered, or failed for good: never tried again), or a **done** mark
//! (the whole message is dealt with). The server stages the messages of a shard batch and
//! commits them with one write and one `fdatasync` ([`Fsync::Always`]): group commit, so
//! sessions that finish together share a disk flush, and no `250` leaves before the flush.
//! Opening the spool after a crash cuts a torn tail (a record whose length or checksum fails
//! is never read as a message: a half-written message is never delivered) and returns the
//! messages not yet done. The file is compacted into the live messages once it has grown.
//!
//! One spool per shard (the directory is locked): a cluster gives each shard a directory.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use zero_core::journal::{self, Fsync, Journal};

use crate::codec::command::{Body, Ret};
use crate::server::{Envelope, Peer, Recipient};

const MESSAGE: u8 = 1;
const DONE: u8 = 2;
const RECIPIENT_DONE: u8 = 3;

/// A message's id in the spool (shown as 16 hex digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(pub u64);

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016X}", self.0)
    }
}

/// A message in the spool, its text left on disk until asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spooled {
    /// Its id.
    pub id: MessageId,
    /// When it was accepted (seconds since the epoch).
    pub received: u64,
    /// Its envelope.
    pub envelope: Envelope,
    /// Which recipients are dealt with (delivered, or failed for good).
    pub done: Vec<bool>,
    /// Where its text lies in the journal, and its length.
    text_at: u64,
    text_len: u32,
}

/// The spool of one shard.
#[derive(Debug)]
pub struct Spool {
    journal: Journal,
    /// Records staged for the next commit.
    batch: Vec<u8>,
    /// Messages staged, not yet committed.
    staged: Vec<Spooled>,
    live: BTreeMap<MessageId, Spooled>,
    last_id: u64,
    /// Messages committed since [`Spool::take_committed`] was last called.
    committed: Vec<MessageId>,
}

impl Spool {
    /// Opens (creating) the spool in `dir`, with the messages not yet done.
    pub fn open(dir: &Path, fsync: Fsync, now: Instant) -> io::Result<Spool> {
        let (journal, bytes) = Journal::open(dir, fsync, now, |body| decode(body, 0).is_some())?;
        let mut live = BTreeMap::new();
        let mut last_id = 0;
        let mut at = 0;
        while let Some((body, len)) = journal::next_record(&bytes[at..]) {
            match decode(body, (at + journal::HEADER) as u64) {
                Some(Record::Message(m)) => {
                    last_id = last_id.max(m.id.0);
                    live.insert(m.id, *m);
                }
                Some(Record::Done(id)) => {
                    live.remove(&id);
                }
                Some(Record::RecipientDone(id, i)) => {
                    if let Some(flag) = live.get_mut(&id).and_then(|m: &mut Spooled| m.done.get_mut(i)) {
                        *flag = true;
                    }
                }
                None => {}
            }
            at += len;
        }
        Ok(Spool { journal, batch: Vec::new(), staged: Vec::new(), live, last_id, committed: Vec::new() })
    }

    /// The messages not yet done in the spool at `dir` and their text, read without taking
    /// the spool (a running server may hold it; a record it is writing is not read).
    pub fn inspect(dir: &Path) -> io::Result<Vec<(Spooled, Vec<u8>)>> {
        let bytes = match std::fs::read(dir.join("journal")) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut live: BTreeMap<MessageId, (Spooled, Vec<u8>)> = BTreeMap::new();
        let mut at = 0;
        while let Some((body, len)) = journal::next_record(&bytes[at..]) {
            match decode(body, (at + journal::HEADER) as u64) {
                Some(Record::Message(m)) => {
                    let start = m.text_at as usize;
                    let text = bytes[start..start + m.text_len as usize].to_vec();
                    live.insert(m.id, (*m, text));
                }
                Some(Record::Done(id)) => {
                    live.remove(&id);
                }
                Some(Record::RecipientDone(id, i)) => {
                    if let Some(flag) = live.get_mut(&id).and_then(|(m, _)| m.done.get_mut(i)) {
                        *flag = true;
                    }
                }
                None => break,
            }
            at += len;
        }
        Ok(live.into_values().collect())
    }

    /// A new message id (unique across restarts, even after compaction dropped every older
    /// one), for the trace header a message is staged with.
    pub fn next_id(&mut self, now: SystemTime) -> MessageId {
        let micros = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_micros() as u64;
        self.last_id = (self.last_id + 1).max(micros);
        MessageId(self.last_id)
    }

    /// Stages message `id` ([`Spool::next_id`]) for the next [`Spool::commit`]: its text is
    /// `parts` joined (a trace header and what the client sent).
    pub fn stage(&mut self, id: MessageId, envelope: &Envelope, parts: &[&[u8]], now: SystemTime) {
        let received = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let text_len: usize = parts.iter().map(|p| p.len()).sum();
        journal::frame(&mut self.batch, |out| encode_message(out, id, received, envelope, parts));
        let text_at = self.journal.len() + (self.batch.len() - text_len) as u64;
        let done = vec![false; envelope.recipients.len()];
        self.staged.push(Spooled {
            id,
            received,
            envelope: envelope.clone(),
            done,
            text_at,
            text_len: text_len as u32,
        });
    }

    /// Marks recipient `index` of message `id` dealt with (staged for the next commit).
    pub fn recipient_done(&mut self, id: MessageId, index: usize) {
        let Some(flag) = self.live.get_mut(&id).and_then(|m| m.done.get_mut(index)) else { return };
        *flag = true;
        journal::frame(&mut self.batch, |out| {
            out.push(RECIPIENT_DONE);
            out.extend_from_slice(&id.0.to_be_bytes());
            out.extend_from_slice(&(index as u32).to_be_bytes());
        });
    }

    /// The messages committed since the last call (for the queue manager to take up).
    pub fn take_committed(&mut self) -> Vec<MessageId> {
        std::mem::take(&mut self.committed)
    }

    /// A message not yet done.
    pub fn get(&self, id: MessageId) -> Option<&Spooled> {
        self.live.get(&id)
    }

    /// Marks a message delivered or bounced (staged for the next commit).
    pub fn done(&mut self, id: MessageId) {
        if self.live.remove(&id).is_some() {
            journal::frame(&mut self.batch, |out| {
                out.push(DONE);
                out.extend_from_slice(&id.0.to_be_bytes());
            });
        }
    }

    /// Writes what is staged in one write and syncs it (under [`Fsync::Always`]): the
    /// staged messages are safe once this returns `Ok`. On an error nothing staged counts
    /// (the caller answers `451` and reopens the spool, which cuts a partial write).
    pub fn commit(&mut self, now: Instant) -> io::Result<()> {
        let batch = std::mem::take(&mut self.batch);
        let staged = std::mem::take(&mut self.staged);
        self.journal.append(&batch, now)?;
        for m in staged {
            self.committed.push(m.id);
            self.live.insert(m.id, m);
        }
        self.batch = batch;
        self.batch.clear();
        if self.journal.grown() {
            self.compact(now)?;
        }
        Ok(())
    }

    /// Whether anything is staged.
    pub fn has_staged(&self) -> bool {
        !self.batch.is_empty()
    }

    /// The messages not yet done, oldest first.
    pub fn pending(&self) -> impl Iterator<Item = &Spooled> {
        self.live.values()
    }

    /// How many messages are not yet done.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether every message is done.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// A message's text.
    pub fn text(&self, id: MessageId) -> io::Result<Vec<u8>> {
        let m = self
            .live
            .get(&id)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no message {id}")))?;
        let mut text = vec![0; m.text_len as usize];
        self.journal.read_at(m.text_at, &mut text)?;
        Ok(text)
    }

    /// Rewrites the journal as the live messages only.
    fn compact(&mut self, now: Instant) -> io::Result<()> {
        let mut snapshot = Vec::new();
        let mut moved = Vec::new();
        for m in self.live.values() {
            let text = self.text(m.id)?;
            journal::frame(&mut snapshot, |out| encode_message(out, m.id, m.received, &m.envelope, &[&text]));
            moved.push((m.id, (snapshot.len() - text.len()) as u64));
            for (i, _) in m.done.iter().enumerate().filter(|(_, d)| **d) {
                journal::frame(&mut snapshot, |out| {
                    out.push(RECIPIENT_DONE);
                    out.extend_from_slice(&m.id.0.to_be_bytes());
                    out.extend_from_slice(&(i as u32).to_be_bytes());
                });
            }
        }
        self.journal.compact(&snapshot, now)?;
        for (id, at) in moved {
            if let Some(m) = self.live.get_mut(&id) {
                m.text_at = at;
            }
        }
        Ok(())
    }
}

enum Record {
    Message(Box<Spooled>),
    Done(MessageId),
    RecipientDone(MessageId, usize),
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_opt(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            out.push(1);
            put_str(out, s);
        }
        None => out.push(0),
    }
}

fn encode_message(out: &mut Vec<u8>, id: MessageId, received: u64, e: &Envelope, text: &[&[u8]]) {
    out.push(MESSAGE);
    out.extend_from_slice(&id.0.to_be_bytes());
    out.extend_from_slice(&received.to_be_bytes());
    put_str(out, &e.peer.addr.to_string());
    let flags = u8::from(e.peer.trusted)
        | u8::from(e.peer.tls) << 1
        | u8::from(e.esmtp) << 2
        | u8::from(e.tls) << 3
        | u8::from(e.smtputf8) << 4
        | u8::from(e.requiretls) << 5;
    out.push(flags);
    out.push(match e.body {
        None => 0,
        Some(Body::SevenBit) => 1,
        Some(Body::EightBitMime) => 2,
        Some(Body::BinaryMime) => 3,
    });
    out.push(match e.ret {
        None => 0,
        Some(Ret::Full) => 1,
        Some(Ret::Hdrs) => 2,
    });
    put_str(out, &e.helo);
    put_opt(out, e.authenticated.as_deref());
    put_str(out, &e.from);
    put_opt(out, e.envid.as_deref());
    out.extend_from_slice(&(e.recipients.len() as u32).to_be_bytes());
    for r in &e.recipients {
        put_str(out, &r.address);
        put_opt(out, r.notify.as_deref());
        put_opt(out, r.orcpt.as_deref());
    }
    let len: usize = text.iter().map(|p| p.len()).sum();
    out.extend_from_slice(&(len as u32).to_be_bytes());
    for part in text {
        out.extend_from_slice(part);
    }
}

/// Reads a record's body; `at` is where the body starts in the journal (for the text's
/// offset). `None` for anything malformed: the journal then cuts it off on open.
fn decode(body: &[u8], at: u64) -> Option<Record> {
    let mut r = Reader { bytes: body, at: 0 };
    match r.u8()? {
        DONE => {
            let id = MessageId(r.u64()?);
            r.end()?;
            Some(Record::Done(id))
        }
        RECIPIENT_DONE => {
            let id = MessageId(r.u64()?);
            let index = r.u32()? as usize;
            r.end()?;
            Some(Record::RecipientDone(id, index))
        }
        MESSAGE => {
            let id = MessageId(r.u64()?);
            let received = r.u64()?;
            let addr = r.string()?.parse().ok()?;
            let flags = r.u8()?;
            let body = match r.u8()? {
                0 => None,
                1 => Some(Body::SevenBit),
                2 => Some(Body::EightBitMime),
                3 => Some(Body::BinaryMime),
                _ => return None,
            };
            let ret = match r.u8()? {
                0 => None,
                1 => Some(Ret::Full),
                2 => Some(Ret::Hdrs),
                _ => return None,
            };
            let helo = r.string()?;
            let authenticated = r.opt()?;
            let from = r.string()?;
            let envid = r.opt()?;
            let count = r.u32()?;
            let mut recipients = Vec::new();
            for _ in 0..count {
                recipients.push(Recipient { address: r.string()?, notify: r.opt()?, orcpt: r.opt()? });
            }
            let text_len = r.u32()?;
            let text_at = at + r.at as u64;
            r.take(text_len as usize)?;
            r.end()?;
            let bit = |n: u8| flags & (1 << n) != 0;
            let envelope = Envelope {
                peer: Peer { addr, trusted: bit(0), tls: bit(1) },
                helo,
                esmtp: bit(2),
                tls: bit(3),
                authenticated,
                from,
                recipients,
                body,
                smtputf8: bit(4),
                requiretls: bit(5),
                ret,
                envid,
            };
            let done = vec![false; envelope.recipients.len()];
            Some(Record::Message(Box::new(Spooled { id, received, envelope, done, text_at, text_len })))
        }
        _ => None,
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let out = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(out)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
    fn opt(&mut self) -> Option<Option<String>> {
        match self.u8()? {
            0 => Some(None),
            1 => Some(Some(self.string()?)),
            _ => None,
        }
    }
    fn end(&self) -> Option<()> {
        (self.at == self.bytes.len()).then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(to: &str) -> Envelope {
        Envelope {
            peer: Peer { addr: "192.0.2.1:2525".parse().unwrap(), trusted: false, tls: true },
            helo: "client.test".into(),
            esmtp: true,
            tls: true,
            authenticated: Some("alice".into()),
            from: "a@client.test".into(),
            recipients: vec![Recipient { address: to.into(), notify: Some("FAILURE".into()), orcpt: None }],
            body: Some(Body::EightBitMime),
            smtputf8: false,
            requiretls: true,
            ret: Some(Ret::Hdrs),
            envid: Some("E1".into()),
        }
    }

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("zero-spool-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn committed_messages_survive_reopening_and_done_ones_do_not() {
        let d = dir("reopen");
        let now = Instant::now();
        let (a, b);
        {
            let mut s = Spool::open(&d, Fsync::Always, now).unwrap();
            (a, b) = (s.next_id(SystemTime::now()), s.next_id(SystemTime::now()));
            s.stage(a, &envelope("x@zero.test"), &[b"first\r\n"], SystemTime::now());
            s.stage(b, &envelope("y@zero.test"), &[b"sec", b"ond\r\n"], SystemTime::now());
            assert!(a < b);
            s.commit(now).unwrap();
            s.done(a);
            s.commit(now).unwrap();
            // Staged, never committed: as if the process died before the flush.
            let c = s.next_id(SystemTime::now());
            s.stage(c, &envelope("w@zero.test"), &[b"uncommitted\r\n"], SystemTime::now());
        }
        let s = Spool::open(&d, Fsync::Always, now).unwrap();
        let pending: Vec<(MessageId, String)> =
            s.pending().map(|m| (m.id, m.envelope.recipients[0].address.clone())).collect();
        assert_eq!(pending, [(b, "y@zero.test".to_string())]);
        assert_eq!(s.get(b).unwrap().done, [false]);
        assert_eq!(s.text(b).unwrap(), b"second\r\n");
        assert_eq!(s.pending().next().unwrap().envelope, envelope("y@zero.test"));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_torn_tail_is_never_a_message() {
        let d = dir("torn");
        let now = Instant::now();
        {
            let mut s = Spool::open(&d, Fsync::Always, now).unwrap();
            let id = s.next_id(SystemTime::now());
            s.stage(id, &envelope("x@zero.test"), &[b"whole\r\n"], SystemTime::now());
            s.commit(now).unwrap();
        }
        // A crash in the middle of the next message's write.
        let mut partial = Vec::new();
        journal::frame(&mut partial, |out| {
            encode_message(out, MessageId(u64::MAX), 0, &envelope("t@zero.test"), &[b"torn"])
        });
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(d.join("journal")).unwrap();
        f.write_all(&partial[..partial.len() - 3]).unwrap();
        drop(f);
        let s = Spool::open(&d, Fsync::Always, now).unwrap();
        let to: Vec<String> = s.pending().map(|m| m.envelope.recipients[0].address.clone()).collect();
        assert_eq!(to, ["x@zero.test"]);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn compaction_keeps_the_live_messages_readable() {
        let d = dir("compact");
        let now = Instant::now();
        let mut s = Spool::open(&d, Fsync::Never, now).unwrap();
        let keep = s.next_id(SystemTime::now());
        let mut two = envelope("keep@zero.test");
        two.recipients.push(Recipient { address: "second@zero.test".into(), notify: None, orcpt: None });
        s.stage(keep, &two, &[b"kept text\r\n"], SystemTime::now());
        s.commit(now).unwrap();
        assert_eq!(s.take_committed(), [keep]);
        s.recipient_done(keep, 1);
        s.commit(now).unwrap();
        for _ in 0..3 {
            let id = s.next_id(SystemTime::now());
            s.stage(id, &envelope("gone@zero.test"), &[&vec![b'x'; 1 << 20]], SystemTime::now());
            s.commit(now).unwrap();
            s.done(id);
            s.commit(now).unwrap();
        }
        s.compact(now).unwrap();
        assert_eq!(s.text(keep).unwrap(), b"kept text\r\n");
        drop(s);
        let s = Spool::open(&d, Fsync::Never, now).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s.text(keep).unwrap(), b"kept text\r\n");
        assert_eq!(s.get(keep).unwrap().done, [false, true], "a recipient dealt with stays so");
        assert!(std::fs::metadata(d.join("journal")).unwrap().len() < 4096);
        let _ = std::fs::remove_dir_all(&d);
    }
}
