//! Verifying (RFC 6376 6): every `DKIM-Signature` of a message, each to one [`Outcome`].

use super::canon::{self, Canon};
use super::sign::RSA_MIN_BITS;
use super::{signed_data, tags, without_b, Algorithm};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::Verifier as _;
use rsa::pkcs1::DecodeRsaPublicKey as _;
use rsa::pkcs8::DecodePublicKey as _;
use rsa::traits::PublicKeyParts as _;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// What a key lookup found at `selector._domainkey.domain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyAnswer {
    /// The TXT records there, each one's strings joined.
    Records(Vec<String>),
    /// No such name or no TXT record (a permanent error for the signature).
    NotFound,
    /// The lookup failed for now (a temporary error).
    Unavailable,
}

/// Where public keys come from: the DNS (the caller resolves [`key_names`] through
/// zero-dns) or a static map (name to record) in tests and closed setups.
pub trait KeyLookup {
    /// The TXT records at `name`.
    fn lookup(&self, name: &str) -> KeyAnswer;
}

impl KeyLookup for HashMap<String, String> {
    fn lookup(&self, name: &str) -> KeyAnswer {
        match self.get(&name.to_ascii_lowercase()) {
            Some(record) => KeyAnswer::Records(vec![record.clone()]),
            None => KeyAnswer::NotFound,
        }
    }
}

impl KeyLookup for HashMap<String, KeyAnswer> {
    fn lookup(&self, name: &str) -> KeyAnswer {
        self.get(&name.to_ascii_lowercase()).cloned().unwrap_or(KeyAnswer::NotFound)
    }
}

/// A signature's result, in RFC 8601's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The signature verified.
    Pass,
    /// The body hash or the signature did not verify.
    Fail,
    /// The signature or its key cannot be used (malformed, missing, revoked, too weak).
    PermError,
    /// The key could not be fetched for now.
    TempError,
}

impl Verdict {
    /// The word in an Authentication-Results header.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::PermError => "permerror",
            Verdict::TempError => "temperror",
        }
    }
}

/// One signature's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The result.
    pub verdict: Verdict,
    /// The signing domain (`d=`), empty if the signature had none.
    pub domain: String,
    /// The selector (`s=`).
    pub selector: String,
    /// The algorithm, if it was one we know.
    pub algorithm: Option<Algorithm>,
    /// The first eight characters of `b=` (RFC 6008's `header.b`), to tell signatures apart.
    pub b: String,
    /// Why, when it is not a pass.
    pub reason: String,
}

/// The names whose TXT records verifying `message` needs (one per signature), so a caller
/// can resolve them before calling [`verify`].
pub fn key_names(message: &[u8]) -> Vec<String> {
    let (fields, _) = canon::split(message);
    let mut names: Vec<String> = Vec::new();
    for field in fields.iter().filter(|f| f.name.eq_ignore_ascii_case(b"DKIM-Signature")) {
        let Some(tags) = field_tags(field.raw) else { continue };
        if let (Some(s), Some(d)) = (tags::get(&tags, "s"), tags::get(&tags, "d")) {
            let name = format!("{s}._domainkey.{d}").to_ascii_lowercase();
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// Verifies every DKIM-Signature of `message` at `now` (seconds since the epoch), top to
/// bottom. A message without one gives no outcomes (`dkim=none`).
pub fn verify(message: &[u8], keys: &impl KeyLookup, now: u64) -> Vec<Outcome> {
    let (fields, body) = canon::split(message);
    fields
        .iter()
        .filter(|f| f.name.eq_ignore_ascii_case(b"DKIM-Signature"))
        .map(|field| {
            let tags = field_tags(field.raw).unwrap_or_default();
            let mut outcome = Outcome {
                verdict: Verdict::PermError,
                domain: tags::get(&tags, "d").unwrap_or("").to_ascii_lowercase(),
                selector: tags::get(&tags, "s").unwrap_or("").to_string(),
                algorithm: None,
                b: tags::base64(tags::get(&tags, "b").unwrap_or("")).chars().take(8).collect(),
                reason: String::new(),
            };
            match check(&fields, body, field.raw, &tags, keys, now, &mut outcome.algorithm) {
                Ok(()) => outcome.verdict = Verdict::Pass,
                Err((verdict, reason)) => (outcome.verdict, outcome.reason) = (verdict, reason),
            }
            outcome
        })
        .collect()
}

type Refusal = (Verdict, String);

fn perm(reason: impl Into<String>) -> Refusal {
    (Verdict::PermError, reason.into())
}

/// The tags of a DKIM-Signature field (everything after its colon).
fn field_tags(raw: &[u8]) -> Option<Vec<(String, String)>> {
    let colon = raw.iter().position(|&b| b == b':')?;
    tags::parse(std::str::from_utf8(&raw[colon + 1..]).ok()?)
}

fn check(
    fields: &[canon::Field<'_>],
    body: &[u8],
    raw: &[u8],
    sig: &[(String, String)],
    keys: &impl KeyLookup,
    now: u64,
    algorithm: &mut Option<Algorithm>,
) -> Result<(), Refusal> {
    if sig.is_empty() {
        return Err(perm("the signature is not a tag list"));
    }
    let tag = |name: &str| tags::get(sig, name).ok_or_else(|| perm(format!("no {name}= tag")));
    if tag("v")? != "1" {
        return Err(perm("v= is not 1"));
    }
    let alg = match tag("a")? {
        "rsa-sha256" => Algorithm::RsaSha256,
        "ed25519-sha256" => Algorithm::Ed25519Sha256,
        "rsa-sha1" => return Err(perm("rsa-sha1 is not accepted (RFC 8301)")),
        other => return Err(perm(format!("unknown algorithm {other}"))),
    };
    *algorithm = Some(alg);
    let domain = tag("d")?.to_ascii_lowercase();
    let selector = tag("s")?;
    let names: Vec<String> = tag("h")?.split(':').map(|n| n.trim().to_string()).collect();
    if !names.iter().any(|n| n.eq_ignore_ascii_case("from")) {
        return Err(perm("h= does not sign From"));
    }
    if let Some(i) = tags::get(sig, "i") {
        let i_domain = i.rsplit('@').next().unwrap_or("").to_ascii_lowercase();
        if i_domain != domain && !i_domain.ends_with(&format!(".{domain}")) {
            return Err(perm("i= is not in d='s domain"));
        }
    }
    let (header_canon, body_canon) = match tags::get(sig, "c").unwrap_or("simple/simple").split_once('/') {
        Some((h, b)) => (Canon::named(h), Canon::named(b)),
        None => (Canon::named(tags::get(sig, "c").unwrap_or("")), Some(Canon::Simple)),
    };
    let (Some(header_canon), Some(body_canon)) = (header_canon, body_canon) else {
        return Err(perm("unknown canonicalization"));
    };
    if let Some(x) = tags::get(sig, "x") {
        if x.parse::<u64>().is_ok_and(|x| x < now) {
            return Err(perm("the signature has expired (x=)"));
        }
    }
    let bh = B64.decode(tags::base64(tag("bh")?)).map_err(|_| perm("bh= is not base64"))?;
    let b = B64.decode(tags::base64(tag("b")?)).map_err(|_| perm("b= is not base64"))?;

    let key = fetch_key(keys, &format!("{selector}._domainkey.{domain}"), alg)?;

    let mut canonical_body = canon::body(body_canon, body);
    if let Some(l) = tags::get(sig, "l") {
        let l: usize = l.parse().map_err(|_| perm("l= is not a number"))?;
        if l > canonical_body.len() {
            return Err(perm("l= is longer than the body"));
        }
        canonical_body.truncate(l);
    }
    if Sha256::digest(&canonical_body)[..] != bh[..] {
        return Err((Verdict::Fail, "the body hash did not verify".into()));
    }
    let digest = Sha256::digest(signed_data(header_canon, fields, &names, &without_b(raw)));
    let verified = match &key {
        PublicKey::Rsa(key) => key.verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &digest, &b).is_ok(),
        PublicKey::Ed25519(key) => {
            ed25519_dalek::Signature::from_slice(&b).is_ok_and(|s| key.verify(&digest, &s).is_ok())
        }
    };
    if !verified {
        return Err((Verdict::Fail, "the signature did not verify".into()));
    }
    Ok(())
}

enum PublicKey {
    Rsa(rsa::RsaPublicKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// The key at `name` for `alg` (RFC 6376 3.6.1: `v=DKIM1`, `k=`, `h=`, `s=`, `p=`).
fn fetch_key(keys: &impl KeyLookup, name: &str, alg: Algorithm) -> Result<PublicKey, Refusal> {
    let records = match keys.lookup(name) {
        KeyAnswer::Records(records) => records,
        KeyAnswer::NotFound => return Err(perm(format!("no key at {name}"))),
        KeyAnswer::Unavailable => {
            return Err((Verdict::TempError, format!("the key at {name} could not be fetched")))
        }
    };
    // The first record that is a key record; others (a stray SPF string) are skipped.
    let Some(key) = records.iter().filter_map(|r| tags::parse(r)).find(|t| tags::get(t, "p").is_some())
    else {
        return Err(perm(format!("no key record at {name}")));
    };
    if tags::get(&key, "v").is_some_and(|v| v != "DKIM1") {
        return Err(perm("the key record's v= is not DKIM1"));
    }
    if tags::get(&key, "h").is_some_and(|h| !h.split(':').any(|h| h.trim() == "sha256")) {
        return Err(perm("the key does not allow sha256"));
    }
    if tags::get(&key, "s").is_some_and(|s| !s.split(':').any(|s| matches!(s.trim(), "*" | "email"))) {
        return Err(perm("the key is not for email"));
    }
    let p = tags::base64(tags::get(&key, "p").unwrap_or(""));
    if p.is_empty() {
        return Err(perm("the key has been revoked (empty p=)"));
    }
    let p = B64.decode(p).map_err(|_| perm("the key's p= is not base64"))?;
    match (tags::get(&key, "k").unwrap_or("rsa"), alg) {
        ("rsa", Algorithm::RsaSha256) => {
            let key = rsa::RsaPublicKey::from_public_key_der(&p)
                .or_else(|_| rsa::RsaPublicKey::from_pkcs1_der(&p))
                .map_err(|_| perm("the key's p= is not an RSA public key"))?;
            if key.size() * 8 < RSA_MIN_BITS {
                return Err(perm(format!("an RSA key of {} bits (RFC 8301 needs 1024)", key.size() * 8)));
            }
            Ok(PublicKey::Rsa(key))
        }
        ("ed25519", Algorithm::Ed25519Sha256) => {
            let bytes: [u8; 32] = p.try_into().map_err(|_| perm("an Ed25519 key is 32 bytes"))?;
            ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                .map(PublicKey::Ed25519)
                .map_err(|_| perm("the key's p= is not an Ed25519 point"))
        }
        (k, _) => Err(perm(format!("a key of type {k} for {}", alg.name()))),
    }
}
