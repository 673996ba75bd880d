//! UTCTimestamp (`YYYYMMDD-HH:MM:SS[.sss[sss[sss]]]`): written at the session's precision,
//! read at any.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How many fractional digits a session writes in its timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// Whole seconds.
    Seconds,
    /// Milliseconds (FIX 4.2's only choice; the default).
    #[default]
    Millis,
    /// Microseconds (FIX 4.4 on).
    Micros,
    /// Nanoseconds (FIX 5.0 on).
    Nanos,
}

/// A moment in UTC, in nanoseconds since the Unix epoch (1970 to 2554).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Timestamp {
        Timestamp(t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64))
    }
}

impl From<Timestamp> for SystemTime {
    fn from(t: Timestamp) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(t.0)
    }
}

impl Timestamp {
    /// Appends the timestamp as FIX writes it.
    pub fn write(self, out: &mut Vec<u8>, precision: Precision) {
        let secs = self.0 / 1_000_000_000;
        let nanos = (self.0 % 1_000_000_000) as u32;
        let (y, m, d) = civil((secs / 86_400) as i64);
        let s = (secs % 86_400) as u32;
        let mut b = [0u8; 30];
        put(&mut b[0..4], y as u32);
        put(&mut b[4..6], m);
        put(&mut b[6..8], d);
        b[8] = b'-';
        put(&mut b[9..11], s / 3600);
        b[11] = b':';
        put(&mut b[12..14], s / 60 % 60);
        b[14] = b':';
        put(&mut b[15..17], s % 60);
        let len = match precision {
            Precision::Seconds => 17,
            Precision::Millis => frac(&mut b, nanos / 1_000_000, 3),
            Precision::Micros => frac(&mut b, nanos / 1_000, 6),
            Precision::Nanos => frac(&mut b, nanos, 9),
        };
        out.extend_from_slice(&b[..len]);
    }

    /// Reads a UTCTimestamp with 0 to 9 fractional digits (more are cut to nanoseconds).
    pub fn parse(text: &[u8]) -> Option<Timestamp> {
        if text.len() < 17 || text[8] != b'-' || text[11] != b':' || text[14] != b':' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            text[r].iter().try_fold(0u32, |n, &c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')))
        };
        let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
        let (h, min, s) = (num(9..11)?, num(12..14)?, num(15..17)?);
        if !(1..=12).contains(&m)
            || d == 0
            || d > days_in_month(y, m)
            || h > 23
            || min > 59
            || s > 60
            || y < 1970
        {
            return None;
        }
        let mut nanos = 0u64;
        if text.len() > 17 {
            let digits = &text[18..];
            if text[17] != b'.' || digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            for i in 0..9 {
                nanos = nanos * 10 + digits.get(i).map_or(0, |c| u64::from(c - b'0'));
            }
        }
        let days = days_from_civil(i64::from(y), m, d) as u64;
        let secs = days * 86_400 + u64::from(h * 3600 + min * 60 + s);
        Some(Timestamp(secs * 1_000_000_000 + nanos))
    }
}

fn frac(b: &mut [u8; 30], value: u32, digits: usize) -> usize {
    b[17] = b'.';
    put(&mut b[18..18 + digits], value);
    18 + digits
}

/// Writes `n` right-aligned in `out`, zero-padded.
fn put(out: &mut [u8], mut n: u32) {
    for c in out.iter_mut().rev() {
        *c = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// (year, month, day) of day `z` since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Days since 1970-01-01 of (year, month, day) (`days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: Timestamp, p: Precision) -> String {
        let mut out = Vec::new();
        t.write(&mut out, p);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn writes_each_precision() {
        // 2026-12-07 09:30:00.123456789 UTC
        let t = Timestamp(1_796_635_800_123_456_789);
        assert_eq!(text(t, Precision::Seconds), "20261207-09:30:00");
        assert_eq!(text(t, Precision::Millis), "20261207-09:30:00.123");
        assert_eq!(text(t, Precision::Micros), "20261207-09:30:00.123456");
        assert_eq!(text(t, Precision::Nanos), "20261207-09:30:00.123456789");
        assert_eq!(text(Timestamp(0), Precision::Millis), "19700101-00:00:00.000");
    }

    #[test]
    fn reads_what_it_writes_on_every_day() {
        for day in (0..30_000u64).step_by(7) {
            let t = Timestamp(day * 86_400_000_000_000 + 45_296_789_000_000);
            for p in [Precision::Millis, Precision::Nanos] {
                assert_eq!(Timestamp::parse(text(t, p).as_bytes()), Some(t), "{}", text(t, p));
            }
        }
        assert_eq!(Timestamp::parse(b"20240229-23:59:60"), Some(Timestamp(1_709_251_200_000_000_000)));
        for bad in
            [&b"20230229-00:00:00"[..], b"20261207-24:00:00", b"20261207-09:30:00.", b"2026120709:30:00"]
        {
            assert_eq!(Timestamp::parse(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }
}
