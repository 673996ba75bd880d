//! Reading UDP datagrams from capture files, for replaying a feed: pcap (microsecond and
//! nanosecond, either byte order) and pcapng (section, interface and enhanced or simple packet
//! blocks), over Ethernet (with VLAN tags), Linux cooked captures (v1 and v2), raw IP and
//! BSD loopback; IPv4 and IPv6. Every length is checked: a damaged file is an error at the
//! record where it breaks, never a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why a capture does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("capture: {0}")]
pub struct CaptureError(pub String);

/// One UDP datagram from a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram<'a> {
    /// When it was captured, in nanoseconds since the epoch.
    pub time_ns: u64,
    /// Its source.
    pub from: SocketAddr,
    /// Its destination (the feed's group and port).
    pub to: SocketAddr,
    /// Its payload.
    pub payload: &'a [u8],
}

fn err<T>(what: impl Into<String>) -> Result<T, CaptureError> {
    Err(CaptureError(what.into()))
}

fn get(b: &[u8], at: usize, len: usize) -> Result<&[u8], CaptureError> {
    at.checked_add(len)
        .and_then(|end| b.get(at..end))
        .ok_or_else(|| CaptureError(format!("truncated at byte {at}")))
}

fn u16_at(b: &[u8], at: usize, big: bool) -> Result<u16, CaptureError> {
    let s = get(b, at, 2)?;
    Ok(if big { u16::from_be_bytes([s[0], s[1]]) } else { u16::from_le_bytes([s[0], s[1]]) })
}

fn u32_at(b: &[u8], at: usize, big: bool) -> Result<u32, CaptureError> {
    let s: [u8; 4] = get(b, at, 4)?.try_into().expect("4 bytes");
    Ok(if big { u32::from_be_bytes(s) } else { u32::from_le_bytes(s) })
}

/// Every UDP datagram in `file` (pcap or pcapng), in order; other packets are skipped.
pub fn datagrams(file: &[u8]) -> Result<Vec<Datagram<'_>>, CaptureError> {
    let magic = get(file, 0, 4)?;
    match magic {
        [0x0a, 0x0d, 0x0d, 0x0a] => pcapng(file),
        _ => pcap(file),
    }
}

fn pcap(file: &[u8]) -> Result<Vec<Datagram<'_>>, CaptureError> {
    let (big, nanos) = match u32_at(file, 0, false)? {
        0xa1b2_c3d4 => (false, false),
        0xa1b2_3c4d => (false, true),
        0xd4c3_b2a1 => (true, false),
        0x4d3c_b2a1 => (true, true),
        m => return err(format!("not a pcap or pcapng file (magic {m:#010x})")),
    };
    let link = u32_at(file, 20, big)?;
    let mut out = Vec::new();
    let mut at = 24;
    while at < file.len() {
        let secs = u64::from(u32_at(file, at, big)?);
        let frac = u64::from(u32_at(file, at + 4, big)?);
        let len = u32_at(file, at + 8, big)? as usize;
        let frame = get(file, at + 16, len)?;
        let time_ns = secs * 1_000_000_000 + if nanos { frac } else { frac * 1000 };
        if let Some(d) = frame_datagram(link, frame, time_ns)? {
            out.push(d);
        }
        at += 16 + len;
    }
    Ok(out)
}

fn pcapng(file: &[u8]) -> Result<Vec<Datagram<'_>>, CaptureError> {
    let mut out = Vec::new();
    let mut big = false;
    // Per interface: link type and timestamp resolution (units per second).
    let mut interfaces: Vec<(u32, u64)> = Vec::new();
    let mut at = 0;
    while at < file.len() {
        let kind = u32_at(file, at, big)?;
        if kind == 0x0a0d_0d0a {
            big = match u32_at(file, at + 8, false)? {
                0x1a2b_3c4d => false,
                0x4d3c_2b1a => true,
                m => return err(format!("pcapng byte-order magic {m:#010x}")),
            };
            interfaces.clear();
        }
        let len = u32_at(file, at + 4, big)? as usize;
        if len < 12 || !len.is_multiple_of(4) {
            return err(format!("a pcapng block of length {len} at byte {at}"));
        }
        let block = get(file, at, len)?;
        match kind {
            1 => {
                let link = u32::from(u16_at(block, 8, big)?);
                interfaces.push((link, resolution(block, big)));
            }
            6 => {
                let iface = u32_at(block, 8, big)? as usize;
                let (link, per_sec) = *interfaces
                    .get(iface)
                    .ok_or_else(|| CaptureError(format!("interface {iface} undefined")))?;
                let ts = (u64::from(u32_at(block, 12, big)?) << 32) | u64::from(u32_at(block, 16, big)?);
                let captured = u32_at(block, 20, big)? as usize;
                let frame = get(block, 28, captured)?;
                let time_ns = if per_sec == 1_000_000_000 {
                    ts
                } else {
                    ts.saturating_mul(1_000_000_000 / per_sec.max(1))
                };
                if let Some(d) = frame_datagram(link, frame, time_ns)? {
                    out.push(d);
                }
            }
            3 => {
                let (link, _) = *interfaces
                    .first()
                    .ok_or_else(|| CaptureError("a simple packet before any interface".into()))?;
                let original = u32_at(block, 8, big)? as usize;
                let frame = get(block, 12, original.min(len.saturating_sub(16)))?;
                if let Some(d) = frame_datagram(link, frame, 0)? {
                    out.push(d);
                }
            }
            _ => {}
        }
        at += len;
    }
    Ok(out)
}

/// An interface block's `if_tsresol` option (units per second; microseconds by default).
fn resolution(block: &[u8], big: bool) -> u64 {
    let mut at = 16;
    while at + 4 <= block.len().saturating_sub(4) {
        let (Ok(code), Ok(len)) = (u16_at(block, at, big), u16_at(block, at + 2, big)) else { break };
        if code == 0 {
            break;
        }
        if code == 9 && len >= 1 {
            if let Ok(v) = get(block, at + 4, 1) {
                let v = v[0];
                let exp = u32::from(v & 0x7f);
                return if v & 0x80 == 0 { 10u64.saturating_pow(exp) } else { 1u64 << exp.min(63) };
            }
        }
        at += 4 + usize::from(len).div_ceil(4) * 4;
    }
    1_000_000
}

/// The UDP datagram in a captured frame, if it carries one.
fn frame_datagram(link: u32, frame: &[u8], time_ns: u64) -> Result<Option<Datagram<'_>>, CaptureError> {
    let (ether_type, ip) = match link {
        // Ethernet, with any VLAN tags.
        1 => {
            let mut at = 12;
            let mut t = u16_at(frame, at, true)?;
            while t == 0x8100 || t == 0x88a8 {
                at += 4;
                t = u16_at(frame, at, true)?;
            }
            (t, get(frame, at + 2, frame.len().saturating_sub(at + 2))?)
        }
        // Linux cooked v1 (16-byte header) and v2 (20 bytes).
        113 => (u16_at(frame, 14, true)?, get(frame, 16, frame.len().saturating_sub(16))?),
        276 => (u16_at(frame, 0, true)?, get(frame, 20, frame.len().saturating_sub(20))?),
        // Raw IP.
        101 | 228 | 229 | 12 => {
            let v = get(frame, 0, 1)?[0] >> 4;
            (if v == 6 { 0x86dd } else { 0x0800 }, frame)
        }
        // BSD loopback: a 4-byte address family.
        0 => {
            let family = u32_at(frame, 0, false)?;
            (if family == 2 { 0x0800 } else { 0x86dd }, get(frame, 4, frame.len().saturating_sub(4))?)
        }
        other => return err(format!("link type {other} is not supported")),
    };
    let (src, dst, udp) = match ether_type {
        0x0800 => {
            let ihl = usize::from(get(ip, 0, 1)?[0] & 0x0f) * 4;
            if ihl < 20 || get(ip, 9, 1)?[0] != 17 {
                return Ok(None);
            }
            let frag = u16_at(ip, 6, true)?;
            if frag & 0x3fff != 0 {
                return Ok(None); // a fragment: not a whole datagram
            }
            let total = usize::from(u16_at(ip, 2, true)?).min(ip.len());
            let s: [u8; 4] = get(ip, 12, 4)?.try_into().expect("4");
            let d: [u8; 4] = get(ip, 16, 4)?.try_into().expect("4");
            (
                IpAddr::V4(Ipv4Addr::from(s)),
                IpAddr::V4(Ipv4Addr::from(d)),
                get(ip, ihl, total.saturating_sub(ihl))?,
            )
        }
        0x86dd => {
            if get(ip, 6, 1)?[0] != 17 {
                return Ok(None);
            }
            let s: [u8; 16] = get(ip, 8, 16)?.try_into().expect("16");
            let d: [u8; 16] = get(ip, 24, 16)?.try_into().expect("16");
            let payload = usize::from(u16_at(ip, 4, true)?);
            (
                IpAddr::V6(Ipv6Addr::from(s)),
                IpAddr::V6(Ipv6Addr::from(d)),
                get(ip, 40, payload.min(ip.len().saturating_sub(40)))?,
            )
        }
        _ => return Ok(None),
    };
    let sport = u16_at(udp, 0, true)?;
    let dport = u16_at(udp, 2, true)?;
    let len = usize::from(u16_at(udp, 4, true)?);
    if len < 8 {
        return err("a UDP length under 8");
    }
    let payload = get(udp, 8, len - 8)?;
    Ok(Some(Datagram {
        time_ns,
        from: SocketAddr::new(src, sport),
        to: SocketAddr::new(dst, dport),
        payload,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet/IPv4/UDP frame.
    fn frame(dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&0x0800u16.to_be_bytes());
        let total = 20 + 8 + payload.len();
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&(total as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 224, 0, 31, 1]);
        f.extend_from_slice(&5000u16.to_be_bytes());
        f.extend_from_slice(&dport.to_be_bytes());
        f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn pcapng_with_nanosecond_stamps() {
        let f = frame(14310, b"hello");
        let mut file = Vec::new();
        // Section header block.
        for w in [0x0a0d_0d0au32, 28, 0x1a2b_3c4d] {
            file.extend_from_slice(&w.to_le_bytes());
        }
        file.extend_from_slice(&[1, 0, 0, 0]); // version 1.0
        file.extend_from_slice(&u64::MAX.to_le_bytes()); // section length unknown
        file.extend_from_slice(&28u32.to_le_bytes());
        // Interface block: Ethernet, if_tsresol 9 (ns).
        let idb = [1u32.to_le_bytes(), 32u32.to_le_bytes()].concat();
        file.extend_from_slice(&idb);
        file.extend_from_slice(&1u16.to_le_bytes());
        file.extend_from_slice(&0u16.to_le_bytes());
        file.extend_from_slice(&0u32.to_le_bytes()); // snaplen
        file.extend_from_slice(&[9, 0, 1, 0, 9, 0, 0, 0]); // if_tsresol = 9
        file.extend_from_slice(&[0, 0, 0, 0]); // opt_endofopt
        file.extend_from_slice(&32u32.to_le_bytes());
        // Enhanced packet block.
        let padded = f.len().div_ceil(4) * 4;
        let len = 32 + padded;
        file.extend_from_slice(&6u32.to_le_bytes());
        file.extend_from_slice(&(len as u32).to_le_bytes());
        file.extend_from_slice(&0u32.to_le_bytes());
        let ts: u64 = 1_765_000_000_123_456_789;
        file.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        file.extend_from_slice(&(ts as u32).to_le_bytes());
        file.extend_from_slice(&(f.len() as u32).to_le_bytes());
        file.extend_from_slice(&(f.len() as u32).to_le_bytes());
        file.extend_from_slice(&f);
        file.resize(file.len() + padded - f.len(), 0);
        file.extend_from_slice(&(len as u32).to_le_bytes());
        let d = datagrams(&file).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].payload, d[0].time_ns, d[0].to.port()), (&b"hello"[..], ts, 14310));
        assert_eq!(d[0].to.ip(), IpAddr::V4(Ipv4Addr::new(224, 0, 31, 1)));
        // Cut between blocks, it is a shorter capture; anywhere else, an error.
        for cut in 1..file.len() {
            assert_eq!(datagrams(&file[..cut]).is_ok(), cut == 28 || cut == 60, "cut at {cut}");
        }
    }

    #[test]
    fn pcap_of_any_byte_order() {
        let f = frame(14311, b"abc");
        for big in [false, true] {
            let w32 = |v: u32| if big { v.to_be_bytes() } else { v.to_le_bytes() };
            let w16 = |v: u16| if big { v.to_be_bytes() } else { v.to_le_bytes() };
            let mut file = Vec::new();
            file.extend_from_slice(&w32(0xa1b2_c3d4));
            file.extend_from_slice(&w16(2));
            file.extend_from_slice(&w16(4));
            file.extend_from_slice(&[0; 8]);
            file.extend_from_slice(&w32(65535));
            file.extend_from_slice(&w32(1));
            file.extend_from_slice(&w32(10));
            file.extend_from_slice(&w32(20));
            file.extend_from_slice(&w32(f.len() as u32));
            file.extend_from_slice(&w32(f.len() as u32));
            file.extend_from_slice(&f);
            let d = datagrams(&file).unwrap();
            assert_eq!((d[0].payload, d[0].time_ns), (&b"abc"[..], 10_000_020_000));
        }
        assert!(datagrams(b"nope").is_err());
    }
}
