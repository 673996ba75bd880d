//! TLS for the shard, built on rustls.
//!
//! A TLS connection is a TCP connection with a `Session` layered in: the shard feeds received
//! ciphertext through rustls and delivers plaintext as `Event::Data`, and encrypts what the
//! handler sends, once per tick. A handler sees exactly what it sees on plain TCP; the events
//! that differ are the handshake's: `Accepted` / `Connected` come after it, and its failures
//! arrive as `HandshakeFailed`, `ConnectFailed` or `Closed` carrying a [`TlsError`].
//!
//! - Listen: [`ServerTls`] builds the configuration (with a [`CertReloadHandle`]);
//!   `Ops::tls_listen`.
//! - Connect: [`ClientTls`] (system roots or a CA bundle; there is no switch that skips
//!   verification); `Ops::tls_connect`.
//! - STARTTLS: `Ops::tls_upgrade` / `Ops::tls_accept_upgrade` on an open plaintext connection.
//!   Plaintext that arrived after the command and is still queued is discarded (CVE-2011-0411).
//!
//! **Crypto provider**: `ring`. rustls' default, aws-lc-rs, needs cmake and a long C build,
//! which costs minutes on a 2-core machine for every clean build; ring builds in seconds,
//! covers the suites that matter (AES-GCM, ChaCha20-Poly1305, X25519, P-256/384, Ed25519, RSA)
//! and its AES-GCM is as fast on x86-64. What aws-lc-rs adds (FIPS, post-quantum key exchange)
//! is not needed yet.
//!
//! **kTLS**: [`ktls_available`] probes for the kernel's TLS ULP. This kernel has none, so
//! records are sealed and opened in process by rustls; a kTLS path (hand the keys to the
//! kernel after the handshake) can come later without changing the API.

mod config;
mod error;
mod listeners;
mod session;
mod shard;

pub use config::{CertReloadHandle, ClientTls, SelfSigned, ServerTls, TlsVersions};
pub use error::TlsError;
pub use listeners::Listeners;
pub(crate) use session::Session;
pub use session::TlsInfo;
pub use shard::Target;

/// Whether the kernel offers kTLS (the `tls` upper-layer protocol is loaded). Checked once.
pub fn ktls_available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let ulps = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_ulp").unwrap_or_default();
        let found = ulps.split_whitespace().any(|u| u == "tls");
        tracing::debug!(ktls = found, available = %ulps.trim(), "kTLS probe; TLS runs in rustls in process");
        found
    })
}
