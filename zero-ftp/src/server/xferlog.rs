//! The transfer log, in wu-ftpd's xferlog format (what vsftpd's `xferlog_std_format` writes and
//! log analyzers read): one line a transfer, download or upload, complete or not.
//!
//! `current-time transfer-time remote-host file-size filename transfer-type
//! special-action-flag direction access-mode username service-name authentication-method
//! authenticated-user-id completion-status`, e.g.
//! `Mon Dec  7 10:30:00 2026 1 127.0.0.1 6 /a.txt b _ o r alice ftp 0 * c`.

use crate::codec::list;

/// One transfer, as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// When it ended, seconds since the Unix epoch (written in UTC).
    pub at: i64,
    /// How long it took, whole seconds (at least 1, as wu-ftpd writes).
    pub seconds: u64,
    /// The client's address.
    pub host: String,
    /// Bytes moved.
    pub bytes: u64,
    /// The file, as the client named it in its root.
    pub path: &'a str,
    /// A download (`true`) or an upload.
    pub outgoing: bool,
    /// The anonymous user (`a`), or a real one (`r`).
    pub anonymous: bool,
    /// The user name.
    pub user: &'a str,
    /// Every byte moved (`c`), or not (`i`).
    pub complete: bool,
}

impl Record<'_> {
    /// The line, without its newline. Spaces in the path are written as `_` (the format is
    /// space-separated).
    pub fn line(&self) -> String {
        format!(
            "{} {} {} {} {} b _ {} {} {} ftp 0 * {}",
            list::utc(self.at, "%a %b %e %H:%M:%S %Y"),
            self.seconds.max(1),
            self.host,
            self.bytes,
            self.path.replace(' ', "_"),
            if self.outgoing { 'o' } else { 'i' },
            if self.anonymous { 'a' } else { 'r' },
            self.user,
            if self.complete { 'c' } else { 'i' },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_as_wu_ftpd_writes_them() {
        let r = Record {
            at: 1_796_639_400,
            seconds: 0,
            host: "127.0.0.1".into(),
            bytes: 6,
            path: "/a b.txt",
            outgoing: true,
            anonymous: false,
            user: "alice",
            complete: true,
        };
        assert_eq!(r.line(), "Mon Dec  7 10:30:00 2026 1 127.0.0.1 6 /a_b.txt b _ o r alice ftp 0 * c");
        let up = Record { outgoing: false, anonymous: true, complete: false, at: 0, ..r };
        assert_eq!(up.line(), "Thu Jan  1 00:00:00 1970 1 127.0.0.1 6 /a_b.txt b _ i a alice ftp 0 * i");
    }
}
