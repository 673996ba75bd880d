//! Signing: [`SigningKey`] (RSA or Ed25519, from PEM or a seed) and [`Signer`] (a domain, a
//! selector, the fields to sign).

use super::canon::{self, Canon};
use super::{body_hash, signed_data, Algorithm};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::pkcs8::DecodePrivateKey as _;
use ed25519_dalek::Signer as _;
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::pkcs8::EncodePublicKey as _;
use rsa::traits::PublicKeyParts as _;
use sha2::{Digest, Sha256};

/// The fewest RSA bits we sign or verify with (RFC 8301 3.2).
pub(super) const RSA_MIN_BITS: usize = 1024;

/// Why a key was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not a PKCS#8 or PKCS#1 RSA key, nor a PKCS#8 Ed25519 key, in PEM.
    #[error("not an RSA or Ed25519 private key in PEM (PKCS#8, or PKCS#1 for RSA)")]
    Unreadable,
    /// An RSA key below RFC 8301's minimum.
    #[error("an RSA key of {0} bits: DKIM needs at least 1024 (RFC 8301), 2048 is usual")]
    TooShort(usize),
}

/// A private key to sign with.
#[derive(Clone)]
pub enum SigningKey {
    /// RSA (`rsa-sha256`), at least 1024 bits.
    Rsa(rsa::RsaPrivateKey),
    /// Ed25519 (`ed25519-sha256`).
    Ed25519(ed25519_dalek::SigningKey),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.algorithm().name())
    }
}

impl SigningKey {
    /// Reads a PEM private key: RSA in PKCS#8 (`BEGIN PRIVATE KEY`, what `openssl genpkey`
    /// writes) or PKCS#1 (`BEGIN RSA PRIVATE KEY`), or Ed25519 in PKCS#8.
    pub fn from_pem(pem: &str) -> Result<SigningKey, KeyError> {
        let key = if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
            SigningKey::Ed25519(key)
        } else if let Ok(key) = rsa::RsaPrivateKey::from_pkcs8_pem(pem) {
            SigningKey::Rsa(key)
        } else if let Ok(key) = rsa::RsaPrivateKey::from_pkcs1_pem(pem) {
            SigningKey::Rsa(key)
        } else {
            return Err(KeyError::Unreadable);
        };
        if let SigningKey::Rsa(rsa) = &key {
            let bits = rsa.size() * 8;
            if bits < RSA_MIN_BITS {
                return Err(KeyError::TooShort(bits));
            }
        }
        Ok(key)
    }

    /// An Ed25519 key from its 32-byte seed (the form RFC 8463's example gives).
    pub fn ed25519_from_seed(seed: &[u8; 32]) -> SigningKey {
        SigningKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            SigningKey::Rsa(_) => Algorithm::RsaSha256,
            SigningKey::Ed25519(_) => Algorithm::Ed25519Sha256,
        }
    }

    /// The key record to publish as TXT at `selector._domainkey.domain`:
    /// `v=DKIM1; k=rsa; p=...` (the SubjectPublicKeyInfo) or `v=DKIM1; k=ed25519; p=...` (the
    /// raw 32 bytes, RFC 8463 4.2).
    pub fn dns_record(&self) -> String {
        let (k, public) = match self {
            SigningKey::Rsa(key) => {
                let spki = key.to_public_key().to_public_key_der().expect("an RSA public key encodes");
                ("rsa", spki.as_bytes().to_vec())
            }
            SigningKey::Ed25519(key) => ("ed25519", key.verifying_key().to_bytes().to_vec()),
        };
        format!("v=DKIM1; k={k}; p={}", B64.encode(public))
    }

    /// The signature of `data` (`b=`'s bytes): RSASSA-PKCS1-v1_5 over SHA-256, or Ed25519
    /// over the SHA-256 digest (RFC 8463 3).
    fn sign(&self, data: &[u8]) -> Vec<u8> {
        let digest = Sha256::digest(data);
        match self {
            // Blinded: PKCS#1 v1.5 signatures are deterministic, so the bytes are the same,
            // but the private-key operation's timing no longer follows the key (the rsa
            // crate's advice for RUSTSEC-2023-0071).
            SigningKey::Rsa(key) => key
                .sign_with_rng(&mut rsa::rand_core::OsRng, rsa::Pkcs1v15Sign::new::<Sha256>(), &digest)
                .expect("a digest fits any key of 1024 bits or more"),
            SigningKey::Ed25519(key) => key.sign(&digest).to_bytes().to_vec(),
        }
    }
}

/// The header fields signed by default (RFC 6376 5.4.1's list, the ones present in a
/// message are signed; `From` and `Subject` once more, so none can be added).
const DEFAULT_FIELDS: &[&str] = &[
    "From",
    "Reply-To",
    "Subject",
    "Date",
    "To",
    "Cc",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "List-Id",
    "List-Unsubscribe",
];

/// Fields named once more than they appear, so that adding one breaks the signature.
const OVERSIGNED: &[&str] = &["From", "Subject"];

/// Signs messages for one domain and selector.
#[derive(Debug, Clone)]
pub struct Signer {
    domain: String,
    selector: String,
    key: SigningKey,
    canon: (Canon, Canon),
    fields: Vec<String>,
}

impl Signer {
    /// A signer for `domain` with the key published at `selector._domainkey.domain`;
    /// `relaxed/relaxed` and the default field list.
    pub fn new(domain: &str, selector: &str, key: SigningKey) -> Signer {
        Signer {
            domain: domain.to_ascii_lowercase(),
            selector: selector.to_string(),
            key,
            canon: (Canon::Relaxed, Canon::Relaxed),
            fields: DEFAULT_FIELDS.iter().map(|f| f.to_string()).collect(),
        }
    }

    /// Sets the header and body canonicalizations (`c=`).
    pub fn canonicalization(mut self, header: Canon, body: Canon) -> Signer {
        self.canon = (header, body);
        self
    }

    /// Sets the header fields to sign (those present are signed; `From` always is).
    pub fn fields(mut self, fields: &[&str]) -> Signer {
        self.fields = fields.iter().map(|f| f.to_string()).collect();
        if !self.fields.iter().any(|f| f.eq_ignore_ascii_case("from")) {
            self.fields.insert(0, "From".to_string());
        }
        self
    }

    /// The signing domain (`d=`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The `DKIM-Signature` header field (folded, ending in CRLF) to put in front of
    /// `message`, signed at `time` (seconds since the epoch, `t=`).
    pub fn sign(&self, message: &[u8], time: u64) -> String {
        let (fields, body) = canon::split(message);
        let mut names: Vec<String> = Vec::new();
        for wanted in &self.fields {
            let count = fields.iter().filter(|f| f.name.eq_ignore_ascii_case(wanted.as_bytes())).count();
            let extra = usize::from(OVERSIGNED.iter().any(|o| o.eq_ignore_ascii_case(wanted)));
            names.extend(std::iter::repeat_n(wanted.clone(), count + extra));
        }
        let bh = B64.encode(body_hash(self.canon.1, body));
        let mut field = format!(
            "DKIM-Signature: v=1; a={}; c={}/{};\r\n\td={}; s={}; t={time};\r\n\th={};\r\n\tbh={bh};\r\n\tb=",
            self.key.algorithm().name(),
            self.canon.0.name(),
            self.canon.1.name(),
            self.domain,
            self.selector,
            fold_names(&names),
        );
        let unsigned = format!("{field}\r\n");
        let b = B64.encode(self.key.sign(&signed_data(self.canon.0, &fields, &names, unsigned.as_bytes())));
        field.push_str(&fold_base64(&b));
        field.push_str("\r\n");
        field
    }
}

/// `h=`'s names joined with `:`, folded so no line runs past 78 characters.
fn fold_names(names: &[String]) -> String {
    let mut out = String::new();
    let mut line = 10; // a tab and `h=`, as a terminal counts a tab
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            out.push(':');
            line += 1;
            if line + name.len() > 76 {
                out.push_str("\r\n\t ");
                line = 2;
            }
        }
        out.push_str(name);
        line += name.len();
    }
    out
}

/// A base64 value folded in 72-character pieces.
fn fold_base64(b: &str) -> String {
    let pieces: Vec<&str> =
        b.as_bytes().chunks(72).map(|c| std::str::from_utf8(c).expect("base64 is ASCII")).collect();
    pieces.join("\r\n\t ")
}

/// The signature (`b=`'s bytes) over `message` for a DKIM-Signature field whose `b=` is
/// empty, the field given whole (`DKIM-Signature: ...` and its CRLF).
#[cfg(test)]
pub(super) fn signature_for(
    key: &SigningKey,
    canon: Canon,
    message: &[u8],
    field: &str,
    names: &[String],
) -> Vec<u8> {
    let (fields, _) = canon::split(message);
    key.sign(&signed_data(canon, &fields, names, field.as_bytes()))
}
