//! Decimal values (Price, Qty, Amt, ...) exactly as written: no binary rounding.

use std::fmt;

/// `mantissa` * 10^-`scale`, e.g. `10.25` is (1025, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Decimal {
    /// The digits, as an integer.
    pub mantissa: i64,
    /// How many of them are after the point (at most 18).
    pub scale: u32,
}

impl Decimal {
    /// `mantissa` * 10^-`scale`.
    pub const fn new(mantissa: i64, scale: u32) -> Decimal {
        Decimal { mantissa, scale }
    }

    /// Reads `-?digits[.digits]` (18 significant digits at most).
    pub fn parse(text: &[u8]) -> Option<Decimal> {
        let (negative, digits) = match text.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, text),
        };
        let mut mantissa = 0i64;
        let mut scale = None;
        let mut count = 0;
        for (i, &c) in digits.iter().enumerate() {
            match c {
                b'0'..=b'9' => {
                    count += 1;
                    if count > 18 {
                        return None;
                    }
                    mantissa = mantissa * 10 + i64::from(c - b'0');
                    scale = scale.map(|s: u32| s + 1);
                }
                b'.' if scale.is_none() && (i > 0 || digits.len() > 1) => scale = Some(0),
                _ => return None,
            }
        }
        if count == 0 {
            return None;
        }
        Some(Decimal { mantissa: if negative { -mantissa } else { mantissa }, scale: scale.unwrap_or(0) })
    }

    /// The nearest `f64`.
    pub fn to_f64(self) -> f64 {
        self.mantissa as f64 / 10f64.powi(self.scale as i32)
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Vec::new();
        self.write(&mut out);
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl Decimal {
    /// Appends the value as FIX writes it (`-0.005`, `10.25`, `100`).
    pub fn write(self, out: &mut Vec<u8>) {
        if self.mantissa < 0 {
            out.push(b'-');
        }
        let m = self.mantissa.unsigned_abs();
        let unit = 10u64.pow(self.scale.min(18));
        super::builder::push_uint(out, m / unit);
        if self.scale > 0 {
            out.push(b'.');
            let frac = m % unit;
            let width = self.scale as usize;
            let digits = frac.checked_ilog10().map_or(1, |l| l as usize + 1);
            out.extend(std::iter::repeat_n(b'0', width - digits));
            super::builder::push_uint(out, frac);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_exactly() {
        for (text, m, s) in
            [("10.25", 1025, 2), ("-0.005", -5, 3), ("100", 100, 0), ("0.10", 10, 2), (".5", 5, 1)]
        {
            let d = Decimal::parse(text.as_bytes()).unwrap();
            assert_eq!((d.mantissa, d.scale), (m, s), "{text}");
            if !text.starts_with('.') {
                assert_eq!(d.to_string(), text);
            }
        }
        for bad in ["", "-", ".", "1.2.3", "1e5", "12a", "1234567890123456789"] {
            assert_eq!(Decimal::parse(bad.as_bytes()), None, "{bad}");
        }
        assert_eq!(Decimal::new(1025, 2).to_f64(), 10.25);
    }
}
