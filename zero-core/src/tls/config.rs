//! Building rustls configurations: [`ServerTls`] (identity, client authentication, ALPN,
//! versions; hot-reloadable through [`CertReloadHandle`]) and [`ClientTls`] (trusted roots,
//! client certificate, ALPN, versions).

use std::path::Path;
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};

use crate::error::{IoError, Result};

/// The crypto provider every configuration here uses: `ring` (see the module docs for why).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Which TLS versions an endpoint accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsVersions {
    /// TLS 1.2 and 1.3 (the default).
    #[default]
    Any,
    /// TLS 1.2 only.
    Only12,
    /// TLS 1.3 only.
    Only13,
}

impl TlsVersions {
    fn list(self) -> &'static [&'static SupportedProtocolVersion] {
        static ONLY12: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
        static ONLY13: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
        match self {
            TlsVersions::Any => rustls::ALL_VERSIONS,
            TlsVersions::Only12 => &ONLY12,
            TlsVersions::Only13 => &ONLY13,
        }
    }
}

fn config_error(what: &str, e: impl std::fmt::Display) -> IoError {
    IoError::Config(format!("{what}: {e}"))
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| IoError::sys(format!("read {}", path.display()), e))
}

/// Parses every certificate in a PEM bundle; an empty bundle is an error.
fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| config_error(&format!("{what}: bad PEM"), e))?;
    if certs.is_empty() {
        return Err(IoError::Config(format!("{what}: no CERTIFICATE block in the PEM data")));
    }
    Ok(certs)
}

/// A certified key from a PEM chain (leaf first) and a PEM private key (PKCS#8, PKCS#1 or SEC1),
/// checked to match.
fn certified_key(chain: &[u8], key: &[u8]) -> Result<Arc<CertifiedKey>> {
    let chain = certificates(chain, "certificate chain")?;
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| config_error("private key", e))?;
    let ck = CertifiedKey::from_der(chain, key, &provider())
        .map_err(|e| config_error("certificate and private key", e))?;
    Ok(Arc::new(ck))
}

fn root_store(ca_pem: &[u8]) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(ca_pem, "CA bundle")? {
        roots.add(cert).map_err(|e| config_error("CA bundle", e))?;
    }
    Ok(roots)
}

/// The certified key a listener presents; swapped atomically by [`CertReloadHandle`].
#[derive(Debug)]
struct Identity(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Identity {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

/// Replaces the certificate of a TLS listener while it runs: handshakes that start after
/// [`CertReloadHandle::reload_pem`] returns present the new certificate; sessions already
/// established are untouched. `Send + Sync + Clone`: reload from any thread (e.g. on SIGHUP).
#[derive(Debug, Clone)]
pub struct CertReloadHandle {
    identity: Arc<Identity>,
}

impl CertReloadHandle {
    /// Swaps in a new chain and key from PEM bytes. Nothing changes if they do not parse or match.
    pub fn reload_pem(&self, chain: &[u8], key: &[u8]) -> Result<()> {
        let ck = certified_key(chain, key)?;
        *self.identity.0.write().unwrap_or_else(|p| p.into_inner()) = ck;
        Ok(())
    }

    /// Swaps in a new chain and key from PEM files.
    pub fn reload_files(&self, chain: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<()> {
        self.reload_pem(&read(chain.as_ref())?, &read(key.as_ref())?)
    }
}

/// A TLS server configuration under construction.
///
/// ```no_run
/// let (config, reload) = zero_core::tls::ServerTls::from_pem_files("cert.pem", "key.pem")?
///     .alpn(&[b"mqtt"])
///     .build()?;
/// # Ok::<(), zero_core::IoError>(())
/// ```
#[derive(Debug)]
pub struct ServerTls {
    identity: Arc<CertifiedKey>,
    client_roots: Option<(RootCertStore, bool)>,
    alpn: Vec<Vec<u8>>,
    versions: TlsVersions,
}

impl ServerTls {
    /// A server presenting this PEM chain (leaf first) and PEM private key.
    pub fn from_pem(chain: &[u8], key: &[u8]) -> Result<ServerTls> {
        Ok(ServerTls {
            identity: certified_key(chain, key)?,
            client_roots: None,
            alpn: Vec::new(),
            versions: TlsVersions::Any,
        })
    }

    /// [`ServerTls::from_pem`] from files.
    pub fn from_pem_files(chain: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<ServerTls> {
        ServerTls::from_pem(&read(chain.as_ref())?, &read(key.as_ref())?)
    }

    /// Asks clients for a certificate issued by a CA in `ca_pem`; with `required`, refuses
    /// clients without one (mutual TLS).
    pub fn client_auth(mut self, ca_pem: &[u8], required: bool) -> Result<ServerTls> {
        self.client_roots = Some((root_store(ca_pem)?, required));
        Ok(self)
    }

    /// Application protocols to accept (ALPN), in order of preference. A client that offers
    /// ALPN but none of these is refused (`no_application_protocol`).
    pub fn alpn(mut self, protocols: &[&[u8]]) -> ServerTls {
        self.alpn = protocols.iter().map(|p| p.to_vec()).collect();
        self
    }

    /// The versions to accept.
    pub fn versions(mut self, versions: TlsVersions) -> ServerTls {
        self.versions = versions;
        self
    }

    /// The rustls configuration for `Ops::tls_listen` / `Ops::tls_accept_upgrade`, and the
    /// handle that swaps its certificate.
    pub fn build(self) -> Result<(Arc<ServerConfig>, CertReloadHandle)> {
        let builder = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(self.versions.list())
            .map_err(|e| config_error("TLS versions", e))?;
        let builder = match self.client_roots {
            None => builder.with_no_client_auth(),
            Some((roots, required)) => {
                let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
                let verifier = if required { verifier } else { verifier.allow_unauthenticated() };
                builder.with_client_cert_verifier(verifier.build().map_err(|e| config_error("client CA", e))?)
            }
        };
        let identity = Arc::new(Identity(RwLock::new(self.identity)));
        let mut config = builder.with_cert_resolver(identity.clone());
        config.alpn_protocols = self.alpn;
        Ok((Arc::new(config), CertReloadHandle { identity }))
    }
}

/// A TLS client configuration under construction. Servers are always verified; there is no
/// switch to turn that off.
///
/// ```no_run
/// let config = zero_core::tls::ClientTls::system_roots()?.alpn(&[b"h2"]).build()?;
/// # Ok::<(), zero_core::IoError>(())
/// ```
#[derive(Debug)]
pub struct ClientTls {
    roots: RootCertStore,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    alpn: Vec<Vec<u8>>,
    versions: TlsVersions,
}

impl ClientTls {
    fn with_roots(roots: RootCertStore) -> ClientTls {
        ClientTls { roots, identity: None, alpn: Vec::new(), versions: TlsVersions::Any }
    }

    /// Trusts the system's roots (`/etc/ssl/certs`, or `SSL_CERT_FILE` / `SSL_CERT_DIR`).
    pub fn system_roots() -> Result<ClientTls> {
        let found = rustls_native_certs::load_native_certs();
        let mut roots = RootCertStore::empty();
        let (added, _) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            let why = found.errors.first().map(|e| e.to_string()).unwrap_or_else(|| "none found".into());
            return Err(IoError::Config(format!(
                "no system root certificates ({why}): install ca-certificates or give a CA bundle"
            )));
        }
        Ok(ClientTls::with_roots(roots))
    }

    /// Trusts only the CAs in a PEM bundle.
    pub fn with_ca_pem(ca_pem: &[u8]) -> Result<ClientTls> {
        Ok(ClientTls::with_roots(root_store(ca_pem)?))
    }

    /// [`ClientTls::with_ca_pem`] from a file.
    pub fn with_ca_file(path: impl AsRef<Path>) -> Result<ClientTls> {
        ClientTls::with_ca_pem(&read(path.as_ref())?)
    }

    /// Presents this PEM chain and key when the server asks (mutual TLS).
    pub fn client_cert(mut self, chain: &[u8], key: &[u8]) -> Result<ClientTls> {
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| config_error("client private key", e))?;
        self.identity = Some((certificates(chain, "client certificate chain")?, key));
        Ok(self)
    }

    /// Application protocols to offer (ALPN), in order of preference.
    pub fn alpn(mut self, protocols: &[&[u8]]) -> ClientTls {
        self.alpn = protocols.iter().map(|p| p.to_vec()).collect();
        self
    }

    /// The versions to offer.
    pub fn versions(mut self, versions: TlsVersions) -> ClientTls {
        self.versions = versions;
        self
    }

    /// The rustls configuration for `Ops::tls_connect` / `Ops::tls_upgrade`.
    pub fn build(self) -> Result<Arc<ClientConfig>> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(self.versions.list())
            .map_err(|e| config_error("TLS versions", e))?
            .with_root_certificates(self.roots);
        let mut config = match self.identity {
            None => builder.with_no_client_auth(),
            Some((chain, key)) => builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| config_error("client certificate", e))?,
        };
        config.alpn_protocols = self.alpn;
        Ok(Arc::new(config))
    }
}

/// A self-signed certificate and key, as PEM, for development only: clients must be told to
/// trust `cert_pem` explicitly. Nothing in zero-core creates one unless asked.
#[derive(Debug, Clone)]
pub struct SelfSigned {
    /// The certificate (also the CA to trust).
    pub cert_pem: String,
    /// Its private key (PKCS#8).
    pub key_pem: String,
}

impl SelfSigned {
    /// Generates one valid for `names` (DNS names or IP addresses).
    pub fn generate(names: &[&str]) -> Result<SelfSigned> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let ck = rcgen::generate_simple_self_signed(names)
            .map_err(|e| config_error("self-signed certificate", e))?;
        Ok(SelfSigned { cert_pem: ck.cert.pem(), key_pem: ck.key_pair.serialize_pem() })
    }

    /// A [`ServerTls`] presenting this certificate.
    pub fn server(&self) -> Result<ServerTls> {
        ServerTls::from_pem(self.cert_pem.as_bytes(), self.key_pem.as_bytes())
    }

    /// A [`ClientTls`] that trusts exactly this certificate.
    pub fn client(&self) -> Result<ClientTls> {
        ClientTls::with_ca_pem(self.cert_pem.as_bytes())
    }
}
