//! SASL for AUTH (RFC 4954): the PLAIN (RFC 4616), LOGIN and XOAUTH2 messages, decoded
//! into [`Credentials`] for the owner to check.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// A SASL mechanism the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// PLAIN (RFC 4616).
    Plain,
    /// LOGIN (draft-murchison-sasl-login).
    Login,
    /// XOAUTH2 (a bearer token; Google's and Microsoft's).
    XOAuth2,
}

impl Mechanism {
    /// The mechanism named `name` (any case).
    pub fn named(name: &str) -> Option<Mechanism> {
        match name.to_ascii_uppercase().as_str() {
            "PLAIN" => Some(Mechanism::Plain),
            "LOGIN" => Some(Mechanism::Login),
            "XOAUTH2" => Some(Mechanism::XOAuth2),
            _ => None,
        }
    }
}

/// What a client presented.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// How.
    pub mechanism: Mechanism,
    /// Who it acts for, if other than itself (PLAIN's authzid).
    pub authzid: Option<String>,
    /// Who it is.
    pub username: String,
    /// Its password (or, for XOAUTH2, its bearer token).
    pub secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("mechanism", &self.mechanism)
            .field("authzid", &self.authzid)
            .field("username", &self.username)
            .field("secret", &"<hidden>")
            .finish()
    }
}

/// Base64 text to UTF-8 text (`=` is the empty response, RFC 4954 4).
pub(super) fn decode(text: &str) -> Result<String, &'static str> {
    if text == "=" {
        return Ok(String::new());
    }
    let bytes = STANDARD.decode(text.trim()).map_err(|_| "not base64")?;
    String::from_utf8(bytes).map_err(|_| "not UTF-8")
}

/// Text to base64 (a server challenge).
pub(super) fn encode(text: &str) -> String {
    STANDARD.encode(text)
}

/// PLAIN's message: `authzid NUL authcid NUL passwd`.
pub(super) fn plain(response: &str) -> Result<Credentials, &'static str> {
    let text = decode(response)?;
    let mut parts = text.split('\0');
    let (Some(authzid), Some(username), Some(secret), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("PLAIN is authzid NUL authcid NUL password");
    };
    if username.is_empty() {
        return Err("PLAIN needs a user name");
    }
    Ok(Credentials {
        mechanism: Mechanism::Plain,
        authzid: (!authzid.is_empty()).then(|| authzid.to_string()),
        username: username.to_string(),
        secret: secret.to_string(),
    })
}

/// XOAUTH2's message: `user=NAME ^A auth=Bearer TOKEN ^A ^A`.
pub(super) fn xoauth2(response: &str) -> Result<Credentials, &'static str> {
    let text = decode(response)?;
    let mut username = None;
    let mut token = None;
    for field in text.split('\u{1}').filter(|f| !f.is_empty()) {
        if let Some(u) = field.strip_prefix("user=") {
            username = Some(u);
        } else if let Some(t) = field.strip_prefix("auth=Bearer ") {
            token = Some(t);
        }
    }
    match (username, token) {
        (Some(u), Some(t)) if !u.is_empty() && !t.is_empty() => Ok(Credentials {
            mechanism: Mechanism::XOAuth2,
            authzid: None,
            username: u.to_string(),
            secret: t.to_string(),
        }),
        _ => Err("XOAUTH2 is user=NAME^Aauth=Bearer TOKEN^A^A"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_login_and_xoauth2_messages() {
        let c = plain(&STANDARD.encode("\0alice\0s3cret")).unwrap();
        assert_eq!((c.authzid, c.username.as_str(), c.secret.as_str()), (None, "alice", "s3cret"));
        let c = plain(&STANDARD.encode("admin\0alice\0pw")).unwrap();
        assert_eq!(c.authzid.as_deref(), Some("admin"));
        assert!(plain(&STANDARD.encode("alice\0pw")).is_err());
        assert!(plain(&STANDARD.encode("\0\0pw")).is_err());
        assert!(plain("!!!").is_err());
        assert_eq!(decode("="), Ok(String::new()));
        let c =
            xoauth2(&STANDARD.encode("user=bob@example.com\u{1}auth=Bearer ya29.token\u{1}\u{1}")).unwrap();
        assert_eq!((c.username.as_str(), c.secret.as_str()), ("bob@example.com", "ya29.token"));
        assert!(xoauth2(&STANDARD.encode("user=bob\u{1}\u{1}")).is_err());
        assert!(!format!("{c:?}").contains("ya29"), "the secret stays out of logs");
    }
}
