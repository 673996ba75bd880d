//! Directory listings: `LIST`'s `ls -l` lines (the form every client parses, as vsftpd
//! writes it), `NLST`'s names, and MLSD/MLST facts (RFC 3659 7); the client's parsers of both.

use crate::Perms;

/// What kind of entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (listed, not followed).
    Link,
    /// Anything else (a socket, a device).
    Other,
}

/// One directory entry, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name (no `/`).
    pub name: String,
    /// The kind.
    pub kind: Kind,
    /// Size in bytes.
    pub size: u64,
    /// Last modification, seconds since the Unix epoch (UTC).
    pub modified: i64,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Hard links.
    pub links: u64,
}

/// `unix` seconds as a UTC time, written with jiff's strftime `format` (the epoch for a
/// time jiff cannot hold, beyond year 9999).
pub(crate) fn utc(unix: i64, format: &str) -> String {
    let ts = jiff::Timestamp::from_second(unix).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    ts.strftime(format).to_string()
}

/// A UTC timestamp as `YYYYMMDDHHMMSS` (RFC 3659 2.3: MDTM and MLSD's `modify`).
pub fn timeval(unix: i64) -> String {
    utc(unix, "%Y%m%d%H%M%S")
}

/// `timeval`'s inverse; `None` unless 14 digits naming a real time (fractions, RFC 3659 2.3,
/// are dropped).
pub fn parse_timeval(text: &str) -> Option<i64> {
    let digits = text.split('.').next()?;
    if digits.len() != 14 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| digits[r].parse::<i8>().ok();
    let year = digits[0..4].parse::<i16>().ok()?;
    let time =
        jiff::civil::DateTime::new(year, n(4..6)?, n(6..8)?, n(8..10)?, n(10..12)?, n(12..14)?, 0).ok()?;
    Some(jiff::tz::Offset::UTC.to_timestamp(time).ok()?.as_second())
}

/// One `LIST` line, as `ls -l` (and vsftpd) writes it: the date shows the time when it is
/// within six months of `now`, the year otherwise. Owner and group are shown as `ftp`.
pub fn list_line(e: &Entry, now: i64) -> String {
    let kind = match e.kind {
        Kind::File => '-',
        Kind::Dir => 'd',
        Kind::Link => 'l',
        Kind::Other => '?',
    };
    let mut mode = String::with_capacity(10);
    mode.push(kind);
    for shift in [6, 3, 0] {
        let bits = e.mode >> shift;
        mode.push(if bits & 4 != 0 { 'r' } else { '-' });
        mode.push(if bits & 2 != 0 { 'w' } else { '-' });
        mode.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    let recent = (now - e.modified).abs() < 182 * 86_400;
    let when = utc(e.modified, if recent { "%b %e %H:%M" } else { "%b %e  %Y" });
    format!("{mode} {:>4} ftp      ftp      {:>12} {when} {}", e.links, e.size, e.name)
}

/// One MLSD line (or MLST's fact line, without its leading space): the facts RFC 3659 7.5
/// names (`perm` from what the user may do), then a space and the name. `kind` overrides the type for `cdir`/`pdir` entries.
pub fn mlsx_line(e: &Entry, perms: Perms, cdir: bool) -> String {
    let kind = match (e.kind, cdir) {
        (Kind::Dir, true) => "cdir",
        (Kind::Dir, false) => "dir",
        (Kind::File, _) => "file",
        (Kind::Link, _) => "OS.unix=symlink",
        (Kind::Other, _) => "OS.unix=other",
    };
    let mut perm = String::new();
    match e.kind {
        Kind::Dir => {
            if perms.read {
                perm.push_str("el");
            }
            if perms.write {
                perm.push('c');
            }
            if perms.mkdir {
                perm.push('m');
            }
            if perms.delete {
                perm.push_str("dfp");
            }
        }
        _ => {
            if perms.read {
                perm.push('r');
            }
            if perms.write {
                perm.push_str("wa");
            }
            if perms.delete {
                perm.push_str("df");
            }
        }
    }
    let size = if e.kind == Kind::Dir { String::new() } else { format!("size={};", e.size) };
    format!(
        "type={kind};{size}modify={};perm={perm};UNIX.mode=0{:o}; {}",
        timeval(e.modified),
        e.mode & 0o7777,
        e.name
    )
}

/// An MLSD line read back (the client's side): the name and the facts it understands.
pub fn parse_mlsx(line: &str) -> Option<Entry> {
    let (facts, name) = line.trim_start().split_once(' ')?;
    let mut e = Entry { name: name.to_string(), kind: Kind::Other, size: 0, modified: 0, mode: 0, links: 1 };
    for fact in facts.split(';').filter(|f| !f.is_empty()) {
        let (key, value) = fact.split_once('=')?;
        match key.to_ascii_lowercase().as_str() {
            "type" => {
                e.kind = match value.to_ascii_lowercase().as_str() {
                    "file" => Kind::File,
                    "dir" | "cdir" | "pdir" => Kind::Dir,
                    "os.unix=symlink" | "os.unix=slink" => Kind::Link,
                    _ => Kind::Other,
                }
            }
            "size" => e.size = value.parse().ok()?,
            "modify" => e.modified = parse_timeval(value)?,
            "unix.mode" => e.mode = u32::from_str_radix(value, 8).ok()?,
            _ => {}
        }
    }
    Some(e)
}

/// A `LIST` line read back (the client's side), in the two forms servers write: Unix
/// `ls -l` (vsftpd, pyftpdlib, ProFTPD, ours; with or without the group column, links as
/// `name -> target`) and MS-DOS (IIS: `12-07-26  09:30AM  <DIR>  name`). `now` dates a
/// time-of-day entry, which `ls -l` gives for the last six months: this year's date, or last
/// year's if that would be in the future. Dates are taken as UTC (the listing does not say).
/// `None` for what is not an entry (`total 12`, a blank line).
pub fn parse_list_line(line: &str, now: i64) -> Option<Entry> {
    let line = line.trim_end_matches(['\r', '\n']);
    parse_unix(line, now).or_else(|| parse_dos(line))
}

/// The start of each whitespace-separated word, and the word.
fn words(line: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices().chain(std::iter::once((line.len(), ' '))) {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((s, &line[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    out
}

const MONTHS: [&str; 12] =
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];

fn parse_unix(line: &str, now: i64) -> Option<Entry> {
    let w = words(line);
    let mode_word = w.first()?.1.as_bytes();
    if mode_word.len() < 10 {
        return None;
    }
    let kind = match mode_word[0] {
        b'-' => Kind::File,
        b'd' => Kind::Dir,
        b'l' => Kind::Link,
        b'b' | b'c' | b'p' | b's' => Kind::Other,
        _ => return None,
    };
    let mut mode = 0;
    for (i, &b) in mode_word[1..10].iter().enumerate() {
        if b != b'-' {
            mode |= 1 << (8 - i);
        }
    }
    // The month is the first word that names one and is followed by a day and a time or year.
    let m = (3..w.len().saturating_sub(3)).find(|&i| {
        MONTHS.contains(&w[i].1.to_ascii_lowercase().as_str()) && w[i - 1].1.parse::<u64>().is_ok()
    })?;
    let month = MONTHS.iter().position(|x| *x == w[m].1.to_ascii_lowercase())? as i8 + 1;
    let day: i8 = w[m + 1].1.parse().ok()?;
    let (year, hour, minute) = match w[m + 2].1.split_once(':') {
        Some((h, mi)) => (None, h.parse().ok()?, mi.parse().ok()?),
        None => (Some(w[m + 2].1.parse::<i16>().ok()?), 0, 0),
    };
    let at = |year: i16| {
        let time = jiff::civil::DateTime::new(year, month, day, hour, minute, 0, 0).ok()?;
        Some(jiff::tz::Offset::UTC.to_timestamp(time).ok()?.as_second())
    };
    let modified = match year {
        Some(y) => at(y)?,
        None => {
            let this_year = jiff::tz::Offset::UTC.to_datetime(jiff::Timestamp::from_second(now).ok()?).year();
            at(this_year).filter(|&t| t <= now + 86_400).or_else(|| at(this_year - 1))?
        }
    };
    let mut name = &line[w[m + 3].0..];
    if kind == Kind::Link {
        name = name.split_once(" -> ").map_or(name, |(n, _)| n);
    }
    Some(Entry {
        name: name.to_string(),
        kind,
        size: w[m - 1].1.parse().ok()?,
        modified,
        mode,
        links: w[1].1.parse().unwrap_or(1),
    })
}

fn parse_dos(line: &str) -> Option<Entry> {
    let w = words(line);
    let [(_, date), (_, time), (_, size), (name_at, _), ..] = w.as_slice() else { return None };
    let d: Vec<&str> = date.split('-').collect();
    let [mo, da, yr] = d.as_slice() else { return None };
    let year: i16 = match yr.parse::<i16>().ok()? {
        y @ 0..=69 => 2000 + y,
        y @ 70..=99 => 1900 + y,
        y => y,
    };
    let upper = time.to_ascii_uppercase();
    let (clock, pm) = match (upper.strip_suffix("PM"), upper.strip_suffix("AM")) {
        (Some(c), _) => (c, true),
        (_, Some(c)) => (c, false),
        _ => (upper.as_str(), false),
    };
    let (h, mi) = clock.split_once(':')?;
    let mut hour: i8 = h.parse().ok()?;
    if pm && hour < 12 {
        hour += 12;
    } else if !pm && hour == 12 && upper.ends_with("AM") {
        hour = 0;
    }
    let time =
        jiff::civil::DateTime::new(year, mo.parse().ok()?, da.parse().ok()?, hour, mi.parse().ok()?, 0, 0)
            .ok()?;
    let modified = jiff::tz::Offset::UTC.to_timestamp(time).ok()?.as_second();
    let (kind, size) = match *size {
        "<DIR>" => (Kind::Dir, 0),
        n => (Kind::File, n.parse().ok()?),
    };
    Some(Entry { name: line[*name_at..].to_string(), kind, size, modified, mode: 0, links: 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, modified: i64) -> Entry {
        Entry { name: name.into(), kind: Kind::File, size: 1234, modified, mode: 0o644, links: 1 }
    }

    #[test]
    fn timevals_both_ways() {
        assert_eq!(timeval(0), "19700101000000");
        assert_eq!(timeval(1_796_639_400), "20261207103000");
        assert_eq!(timeval(951_782_400), "20000229000000", "a leap day");
        for t in [0, 951_782_400, 1_796_639_400, 4_102_444_799] {
            assert_eq!(parse_timeval(&timeval(t)), Some(t));
        }
        assert_eq!(parse_timeval("20261207103000.123"), Some(1_796_639_400));
        assert_eq!(parse_timeval("2026120710300"), None);
        assert_eq!(parse_timeval("20261307103000"), None, "no 13th month");
    }

    #[test]
    fn list_lines_as_ls_writes_them() {
        let now = 1_796_639_400; // 2026-12-07 10:30
        assert_eq!(
            list_line(&file("a b.txt", now - 3600), now),
            "-rw-r--r--    1 ftp      ftp              1234 Dec  7 09:30 a b.txt"
        );
        let old = Entry { kind: Kind::Dir, mode: 0o755, links: 2, ..file("old", 1_000_000_000) };
        assert_eq!(list_line(&old, now), "drwxr-xr-x    2 ftp      ftp              1234 Sep  9  2001 old");
    }

    #[test]
    fn list_lines_read_back() {
        let now = 1_796_639_400; // 2026-12-07 10:30
        for e in [
            file("a  b.txt", now - 3600),
            Entry { kind: Kind::Dir, mode: 0o755, links: 2, ..file("old", 1_000_000_020) },
        ] {
            let mut want = e.clone();
            want.modified -= want.modified % 60;
            if e.name == "old" {
                want.modified = 999_993_600; // only the day: 2001-09-09
            }
            assert_eq!(parse_list_line(&list_line(&e, now), now), Some(want));
        }
        // December's entry listed in January is last year's.
        let jan = 1_798_761_600; // 2027-01-01
        let dec = parse_list_line("-rw-r--r-- 1 ftp ftp 5 Dec 31 23:00 x", jan).unwrap();
        assert_eq!(dec.modified, jan - 3600);
        let link = parse_list_line("lrwxrwxrwx 1 0 0 7 Dec  7 09:30 here -> there", now).unwrap();
        assert_eq!((link.name.as_str(), link.kind, link.mode), ("here", Kind::Link, 0o777));
        let no_group = parse_list_line("-rw-r--r--   1 owner   42 Jan  2  2020 f", now).unwrap();
        assert_eq!((no_group.size, no_group.name.as_str()), (42, "f"));
        let dos = parse_list_line("12-07-26  09:30PM       <DIR>          my dir", now).unwrap();
        assert_eq!((dos.kind, dos.name.as_str(), dos.modified), (Kind::Dir, "my dir", now + 11 * 3600));
        let dos = parse_list_line("01-02-99  12:05AM               77 a.txt", now).unwrap();
        assert_eq!((dos.size, dos.modified), (77, 915_235_500));
        assert_eq!(parse_list_line("total 12", now), None);
        assert_eq!(parse_list_line("", now), None);
        assert_eq!(parse_list_line("-rw-r--r-- 1 a b Dec 7 09:30", now), None);
    }

    #[test]
    fn mlsx_facts_round_trip() {
        let e = file("name with; semicolon", 1_796_639_400);
        let perms = Perms { read: true, write: true, delete: false, mkdir: false };
        let line = mlsx_line(&e, perms, false);
        assert_eq!(
            line,
            "type=file;size=1234;modify=20261207103000;perm=rwa;UNIX.mode=0644; name with; semicolon"
        );
        assert_eq!(parse_mlsx(&line), Some(e));
        let d = Entry { kind: Kind::Dir, mode: 0o755, ..file(".", 0) };
        assert!(
            mlsx_line(&d, Perms { read: true, ..Perms::default() }, true).starts_with("type=cdir;modify=")
        );
    }
}
