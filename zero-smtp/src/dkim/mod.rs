//! DKIM (RFC 6376), with Ed25519-SHA256 (RFC 8463) and RSA-SHA256, and the RFC 8301 rules:
//! no SHA-1, no RSA key under 1024 bits.
//!
//! [`Signer`] signs a message for a domain and selector: the header fields it names are
//! selected bottom-up (the last instance first), `From` and `Subject` are oversigned (named
//! once more than they appear, so none can be added later), `l=` is never written (a body
//! length would let anyone append to the message). [`verify`] checks every signature of a
//! message against keys from a [`KeyLookup`] (DNS TXT records through zero-dns, or a static
//! map), and says per signature `pass`, `fail`, `permerror` or `temperror`, the words of an
//! Authentication-Results header (`crate::results`).

pub mod canon;
mod sign;
mod tags;
#[cfg(test)]
mod tests;
mod verify;

pub use sign::KeyError;
pub use sign::{Signer, SigningKey};
pub use verify::{key_names, verify, KeyAnswer, KeyLookup, Outcome, Verdict};

use sha2::{Digest, Sha256};

/// A signing algorithm (`a=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `rsa-sha256`.
    RsaSha256,
    /// `ed25519-sha256` (RFC 8463).
    Ed25519Sha256,
}

impl Algorithm {
    /// The name in `a=`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::RsaSha256 => "rsa-sha256",
            Algorithm::Ed25519Sha256 => "ed25519-sha256",
        }
    }
}

/// The domain of the author (the first `From:` field's address), lowercased: the domain a
/// signature should carry to align with it (DMARC).
pub fn author_domain(message: &[u8]) -> Option<String> {
    let (fields, _) = canon::split(message);
    let from = fields.iter().find(|f| f.name.eq_ignore_ascii_case(b"From"))?;
    let value = std::str::from_utf8(from.raw).ok()?;
    let address = match (value.rfind('<'), value.rfind('>')) {
        (Some(open), Some(close)) if open < close => &value[open + 1..close],
        _ => value.split_once(':')?.1,
    };
    let domain = address.trim().rsplit_once('@')?.1;
    let domain: String =
        domain.chars().take_while(|c| !c.is_whitespace() && !matches!(c, ',' | ';' | ')')).collect();
    (!domain.is_empty()).then(|| domain.to_ascii_lowercase())
}

/// The body hash (`bh=`): SHA-256 of the canonicalized body.
fn body_hash(canon: canon::Canon, body: &[u8]) -> [u8; 32] {
    Sha256::digest(canon::body(canon, body)).into()
}

/// The data a signature covers (RFC 6376 3.7): the selected header fields canonicalized,
/// then the DKIM-Signature field itself (given with its CRLF, its `b=` value empty),
/// canonicalized without its final CRLF.
fn signed_data(
    canon: canon::Canon,
    fields: &[canon::Field<'_>],
    names: &[String],
    signature_field: &[u8],
) -> Vec<u8> {
    let mut data = Vec::new();
    // Bottom-up: each name takes the last instance not taken yet; a name with none left
    // (an oversigned one) adds nothing (RFC 6376 5.4.2).
    let mut taken = vec![false; fields.len()];
    for name in names {
        let found = (0..fields.len())
            .rev()
            .find(|&i| !taken[i] && fields[i].name.eq_ignore_ascii_case(name.as_bytes()));
        if let Some(i) = found {
            taken[i] = true;
            data.extend_from_slice(&canon::header(canon, &fields[i]));
        }
    }
    let field = canon::Field { name: b"DKIM-Signature", raw: signature_field };
    let mut own = canon::header(canon, &field);
    own.truncate(own.len() - 2);
    data.extend_from_slice(&own);
    data
}

/// `signature_field` with its `b=` value removed (the rest kept byte for byte).
fn without_b(field: &[u8]) -> Vec<u8> {
    let Some((_, eq)) = find_b_tag(field) else { return field.to_vec() };
    let last = field.len() - usize::from(field.ends_with(b"\r\n")) * 2;
    let end = field[eq..last].iter().position(|&c| c == b';').map_or(last, |p| eq + p);
    [&field[..=eq], &field[end..]].concat()
}

/// Where the tag `b` (not `bh`) and its `=` are in a DKIM-Signature field.
fn find_b_tag(field: &[u8]) -> Option<(usize, usize)> {
    let fws = |c: &u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');
    let mut start_of_tag = false;
    for (i, c) in field.iter().enumerate() {
        match c {
            b';' | b':' => start_of_tag = true,
            c if fws(c) => {}
            b'b' if start_of_tag => {
                let eq = field[i + 1..].iter().position(|c| !fws(c)).map(|p| i + 1 + p);
                if let Some(eq) = eq.filter(|&e| field[e] == b'=') {
                    return Some((i, eq));
                }
                start_of_tag = false;
            }
            _ => start_of_tag = false,
        }
    }
    None
}
