//! The NTP packet (RFC 5905 7.3): 48 bytes of header, timestamps in 32.32 fixed point
//! seconds since 1900. Extension fields and MACs (NTS, symmetric keys) are skipped, not read.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds from 1900 (NTP's era 0) to 1970 (Unix's epoch).
const UNIX_TO_NTP: u64 = 2_208_988_800;

/// The packet's length without extensions.
pub const LEN: usize = 48;

/// A 64-bit NTP timestamp: seconds since 1900 (era 0) and a binary fraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The timestamp of a wall-clock time.
    pub fn from_system(t: SystemTime) -> Timestamp {
        let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = d.as_secs() + UNIX_TO_NTP;
        let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
        Timestamp((secs << 32) | frac)
    }

    /// Seconds (signed, with the fraction) from `earlier` to this one; era wrap-around is
    /// taken care of by the 64-bit difference (RFC 5905 6: valid within 68 years).
    pub fn since(self, earlier: Timestamp) -> f64 {
        (self.0.wrapping_sub(earlier.0) as i64) as f64 / 4_294_967_296.0
    }

    /// This timestamp moved by `seconds`.
    pub fn shifted(self, seconds: f64) -> Timestamp {
        Timestamp(self.0.wrapping_add((seconds * 4_294_967_296.0) as i64 as u64))
    }

    /// The wall-clock time it stands for.
    pub fn to_system(self) -> SystemTime {
        let secs = (self.0 >> 32).saturating_sub(UNIX_TO_NTP);
        let nanos = ((self.0 & 0xffff_ffff) * 1_000_000_000) >> 32;
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_nanos(nanos)
    }
}

/// Who sent a packet (the mode field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 3: a client's request.
    Client,
    /// 4: a server's answer.
    Server,
    /// Any other (symmetric, broadcast, control, private).
    Other(u8),
}

/// A decoded packet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Packet {
    /// Leap indicator: 0 none, 1 last minute has 61 s, 2 has 59 s, 3 clock unsynchronised.
    pub leap: u8,
    /// Version (1 to 4).
    pub version: u8,
    /// Mode.
    pub mode: Mode,
    /// Stratum: 0 a Kiss-o'-Death, 1 a primary server, 2-15 secondary, 16 unsynchronised.
    pub stratum: u8,
    /// Poll interval, log2 seconds.
    pub poll: i8,
    /// Clock precision, log2 seconds.
    pub precision: i8,
    /// Round-trip delay to the reference clock, seconds.
    pub root_delay: f64,
    /// Dispersion to the reference clock, seconds.
    pub root_dispersion: f64,
    /// Reference id: an IPv4 address or a hash (stratum 2+), a source name (stratum 1), or a
    /// kiss code (stratum 0).
    pub reference_id: [u8; 4],
    /// When the server's clock was last set.
    pub reference: Timestamp,
    /// The request's transmit timestamp, echoed (T1 as the client wrote it).
    pub origin: Timestamp,
    /// When the request arrived (T2).
    pub receive: Timestamp,
    /// When this packet left (T3).
    pub transmit: Timestamp,
}

/// Why bytes are not an NTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PacketError {
    /// Fewer than 48 bytes.
    #[error("{0} bytes: shorter than an NTP header")]
    Short(usize),
    /// A version other than 1 to 4.
    #[error("NTP version {0}")]
    Version(u8),
}

/// Seconds in NTP short format (16.16).
fn short(bytes: [u8; 4]) -> f64 {
    f64::from(u32::from_be_bytes(bytes)) / 65536.0
}

impl Packet {
    /// A client request (mode 3, version 4) whose transmit timestamp is `transmit` (a random
    /// nonce, as chrony does: the answer must echo it, and it says nothing of our clock).
    pub fn request(transmit: Timestamp, poll: i8) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        out[0] = (4 << 3) | 3;
        out[2] = poll as u8;
        out[40..48].copy_from_slice(&transmit.0.to_be_bytes());
        out
    }

    /// Reads a packet (extensions after the header are ignored).
    pub fn decode(bytes: &[u8]) -> Result<Packet, PacketError> {
        if bytes.len() < LEN {
            return Err(PacketError::Short(bytes.len()));
        }
        let version = (bytes[0] >> 3) & 7;
        if !(1..=4).contains(&version) {
            return Err(PacketError::Version(version));
        }
        let word = |at: usize| [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        let stamp =
            |at: usize| Timestamp(u64::from_be_bytes(bytes[at..at + 8].try_into().expect("eight bytes")));
        Ok(Packet {
            leap: bytes[0] >> 6,
            version,
            mode: match bytes[0] & 7 {
                3 => Mode::Client,
                4 => Mode::Server,
                other => Mode::Other(other),
            },
            stratum: bytes[1],
            poll: bytes[2] as i8,
            precision: bytes[3] as i8,
            root_delay: short(word(4)),
            root_dispersion: short(word(8)),
            reference_id: word(12),
            reference: stamp(16),
            origin: stamp(24),
            receive: stamp(32),
            transmit: stamp(40),
        })
    }

    /// Writes a server's answer (for tests and scripted servers).
    pub fn encode(&self) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        let mode = match self.mode {
            Mode::Client => 3,
            Mode::Server => 4,
            Mode::Other(m) => m & 7,
        };
        out[0] = (self.leap << 6) | (self.version << 3) | mode;
        out[1] = self.stratum;
        out[2] = self.poll as u8;
        out[3] = self.precision as u8;
        out[4..8].copy_from_slice(&((self.root_delay * 65536.0) as u32).to_be_bytes());
        out[8..12].copy_from_slice(&((self.root_dispersion * 65536.0) as u32).to_be_bytes());
        out[12..16].copy_from_slice(&self.reference_id);
        for (at, t) in [(16, self.reference), (24, self.origin), (32, self.receive), (40, self.transmit)] {
            out[at..at + 8].copy_from_slice(&t.0.to_be_bytes());
        }
        out
    }

    /// The kiss code of a Kiss-o'-Death packet (stratum 0): `RATE`, `DENY`, `RSTR`, ...
    pub fn kiss_code(&self) -> Option<[u8; 4]> {
        (self.stratum == 0).then_some(self.reference_id)
    }

    /// The reference id as chrony prints it: a name for stratum 0-1, else an address.
    pub fn reference_name(&self) -> String {
        let id = self.reference_id;
        if self.stratum <= 1 {
            String::from_utf8_lossy(&id).trim_end_matches('\0').to_string()
        } else {
            format!("{}.{}.{}.{}", id[0], id[1], id[2], id[3])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_convert_and_subtract() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_635_800_250);
        let n = Timestamp::from_system(t);
        assert_eq!(n.0 >> 32, 1_796_635_800 + UNIX_TO_NTP);
        let back = n.to_system().duration_since(t).unwrap_or_else(|e| e.duration());
        assert!(back < Duration::from_micros(1));
        assert!((n.shifted(1.5).since(n) - 1.5).abs() < 1e-9);
        assert!((n.since(n.shifted(0.25)) + 0.25).abs() < 1e-9);
    }

    #[test]
    fn a_packet_round_trips_and_bad_ones_are_refused() {
        let p = Packet {
            leap: 0,
            version: 4,
            mode: Mode::Server,
            stratum: 2,
            poll: 6,
            precision: -20,
            root_delay: 0.015625,
            root_dispersion: 0.03125,
            reference_id: [127, 0, 0, 1],
            reference: Timestamp(1 << 40),
            origin: Timestamp(2),
            receive: Timestamp(3),
            transmit: Timestamp(4),
        };
        assert_eq!(Packet::decode(&p.encode()), Ok(p));
        assert_eq!(Packet::decode(&[0; 47]), Err(PacketError::Short(47)));
        let mut v7 = p.encode();
        v7[0] = (7 << 3) | 4;
        assert_eq!(Packet::decode(&v7), Err(PacketError::Version(7)));
        let request = Packet::decode(&Packet::request(Timestamp(99), 6)).unwrap();
        assert_eq!((request.mode, request.version, request.transmit), (Mode::Client, 4, Timestamp(99)));
        assert_eq!(p.reference_name(), "127.0.0.1");
    }
}
