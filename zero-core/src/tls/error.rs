//! [`TlsError`]: why a TLS handshake or session failed, in words a user can act on.

use std::time::Duration;

use rustls::{AlertDescription, CertificateError, Error};

/// Why a TLS handshake or session failed. Reported in `Event::ConnectFailed`,
/// `Event::HandshakeFailed` and `CloseReason::Tls`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The peer's certificate chain does not lead to a trusted root.
    #[error("TLS: the peer's certificate has an unknown issuer; trust its CA (CA bundle or system roots)")]
    UnknownIssuer,
    /// The peer's certificate is not valid for the name that was expected.
    #[error("TLS: the peer's certificate is not valid for the expected name ({0})")]
    NameMismatch(String),
    /// The peer's certificate has expired.
    #[error("TLS: the peer's certificate has expired")]
    Expired,
    /// The peer's certificate is not valid yet.
    #[error("TLS: the peer's certificate is not valid yet (check both clocks)")]
    NotYetValid,
    /// The peer's certificate was revoked.
    #[error("TLS: the peer's certificate has been revoked")]
    Revoked,
    /// This endpoint requires a client certificate and the peer sent none.
    #[error("TLS: the peer sent no certificate and this endpoint requires one (mutual TLS)")]
    CertificateRequired,
    /// The peer's certificate was rejected for another reason.
    #[error("TLS: the peer's certificate was rejected: {0}")]
    BadCertificate(String),
    /// The two sides share no protocol version.
    #[error("TLS: no protocol version in common with the peer ({0})")]
    ProtocolVersion(String),
    /// The two sides share no cipher suite, group or signature scheme.
    #[error("TLS: no cipher suite or key exchange in common with the peer ({0})")]
    NoCommonParameters(String),
    /// The two sides share no application protocol (ALPN).
    #[error("TLS: no application protocol (ALPN) in common with the peer")]
    NoApplicationProtocol,
    /// The peer aborted with an alert; `unknown_ca`, `bad_certificate` or `certificate_required`
    /// mean it rejected this side's certificate.
    #[error("TLS: the peer aborted with alert `{0}`")]
    AlertReceived(String),
    /// The handshake did not finish in time (`Config::tls_handshake_timeout`).
    #[error("TLS: the handshake did not finish within {0:?}")]
    HandshakeTimeout(Duration),
    /// The peer sent something the protocol does not allow (a malformed record, a bad MAC, plain
    /// text where TLS was expected).
    #[error("TLS: the peer broke the protocol: {0}")]
    Protocol(String),
    /// Anything else rustls reported.
    #[error("TLS: {0}")]
    Other(String),
}

impl From<Error> for TlsError {
    fn from(e: Error) -> TlsError {
        match e {
            Error::InvalidCertificate(c) => certificate(c),
            Error::NoCertificatesPresented => TlsError::CertificateRequired,
            Error::NoApplicationProtocol => TlsError::NoApplicationProtocol,
            Error::AlertReceived(AlertDescription::ProtocolVersion) => {
                TlsError::ProtocolVersion("the peer rejected the versions offered".into())
            }
            Error::AlertReceived(AlertDescription::NoApplicationProtocol) => TlsError::NoApplicationProtocol,
            Error::AlertReceived(a) => TlsError::AlertReceived(alert_name(a)),
            Error::PeerIncompatible(p) => {
                let what = format!("{p:?}");
                if what.contains("Tls1") || what.contains("Version") {
                    TlsError::ProtocolVersion(what)
                } else {
                    TlsError::NoCommonParameters(what)
                }
            }
            Error::InvalidMessage(_)
            | Error::InappropriateMessage { .. }
            | Error::InappropriateHandshakeMessage { .. }
            | Error::PeerMisbehaved(_)
            | Error::DecryptError
            | Error::PeerSentOversizedRecord => TlsError::Protocol(e.to_string()),
            e => TlsError::Other(e.to_string()),
        }
    }
}

fn certificate(c: CertificateError) -> TlsError {
    match c {
        CertificateError::UnknownIssuer => TlsError::UnknownIssuer,
        CertificateError::NotValidForName => {
            TlsError::NameMismatch("the name was not in the certificate".into())
        }
        CertificateError::NotValidForNameContext { expected, presented } => TlsError::NameMismatch(format!(
            "expected {expected:?}, certificate is for {}",
            presented.join(", ")
        )),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => TlsError::Expired,
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => TlsError::NotYetValid,
        CertificateError::Revoked => TlsError::Revoked,
        c => TlsError::BadCertificate(format!("{c:?}")),
    }
}

/// `UnknownCa` → `unknown_ca`, as the alert is named in RFC 8446.
fn alert_name(a: AlertDescription) -> String {
    let mut name = String::new();
    let mut after_lower = false;
    for ch in format!("{a:?}").chars() {
        if ch.is_ascii_uppercase() && after_lower {
            name.push('_');
        }
        after_lower = ch.is_ascii_lowercase();
        name.push(ch.to_ascii_lowercase());
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_named() {
        assert_eq!(
            TlsError::from(Error::InvalidCertificate(CertificateError::UnknownIssuer)),
            TlsError::UnknownIssuer
        );
        assert_eq!(TlsError::from(Error::InvalidCertificate(CertificateError::Expired)), TlsError::Expired);
        assert_eq!(
            TlsError::from(Error::AlertReceived(AlertDescription::UnknownCA)),
            TlsError::AlertReceived("unknown_ca".into())
        );
        assert!(matches!(
            TlsError::from(Error::AlertReceived(AlertDescription::ProtocolVersion)),
            TlsError::ProtocolVersion(_)
        ));
    }
}
