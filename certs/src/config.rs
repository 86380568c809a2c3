//! rustls client and server configurations, always built on the ring
//! provider of this crate (never on a process-wide default provider).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::ResolvesClientCert;
use rustls::server::{ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    ClientConfig, RootCertStore, ServerConfig, SignatureScheme, SupportedProtocolVersion,
};

use crate::error::CertError;
use crate::identity::{read_certs, CertifiedIdentity};

/// TLS 1.3 preferred, TLS 1.2 still accepted.
pub(crate) const VERSIONS: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// Server configuration (TLS 1.2 + 1.3) presenting certificates chosen by
/// SNI from `store` (an [`SniStore`](crate::SniStore), or a
/// [`ReloadableCerts`](crate::ReloadableCerts) over one), without client authentication. `alpn` lists the
/// protocols to accept, e.g. `[b"xmpp-client"]` for XEP-0368 direct TLS, or
/// nothing for STARTTLS.
pub fn server_config(
    store: Arc<dyn ResolvesServerCert>,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, CertError> {
    let mut config = ServerConfig::builder_with_provider(crate::crypto_provider())
        .with_protocol_versions(VERSIONS)?
        .with_no_client_auth()
        .with_cert_resolver(store);
    config.alpn_protocols = alpn_list(alpn);
    Ok(Arc::new(config))
}

/// Like [`server_config`], but every client must present a certificate that
/// chains to one of the CA certificates in `client_roots` (PEM files).
pub fn server_config_mtls(
    store: Arc<dyn ResolvesServerCert>,
    alpn: &[&[u8]],
    client_roots: &[PathBuf],
) -> Result<Arc<ServerConfig>, CertError> {
    let provider = crate::crypto_provider();
    let roots = Arc::new(root_store(client_roots)?);
    let verifier = WebPkiClientVerifier::builder_with_provider(roots, Arc::clone(&provider))
        .build()
        .map_err(|error| CertError::Tls(error.to_string()))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(VERSIONS)?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(store);
    config.alpn_protocols = alpn_list(alpn);
    Ok(Arc::new(config))
}

/// Client configuration trusting exactly the CA certificates found in
/// `trust_pem` (no system roots). With `identity`, the client presents that
/// certificate when the server asks for one (mutual TLS).
pub fn client_config(
    trust_pem: &[PathBuf],
    identity: Option<&CertifiedIdentity>,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, CertError> {
    let builder = ClientConfig::builder_with_provider(crate::crypto_provider())
        .with_protocol_versions(VERSIONS)?
        .with_root_certificates(root_store(trust_pem)?);
    let mut config = match identity {
        Some(identity) => builder.with_client_cert_resolver(Arc::new(FixedClientIdentity(
            Arc::clone(identity.certified_key()),
        ))),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn_list(alpn);
    Ok(Arc::new(config))
}

/// Every certificate of every file becomes a trust anchor.
fn root_store(paths: &[PathBuf]) -> Result<RootCertStore, CertError> {
    let mut roots = RootCertStore::empty();
    for path in paths {
        for cert in read_certs(path)? {
            roots.add(cert).map_err(|error| CertError::Pem {
                path: path.clone(),
                reason: format!("not usable as a trust anchor: {error}"),
            })?;
        }
    }
    if roots.is_empty() {
        return Err(CertError::NoTrustAnchors);
    }
    Ok(roots)
}

pub(crate) fn alpn_list(alpn: &[&[u8]]) -> Vec<Vec<u8>> {
    alpn.iter().map(|protocol| protocol.to_vec()).collect()
}

/// Always offers the same client certificate.
#[derive(Debug)]
pub(crate) struct FixedClientIdentity(pub(crate) Arc<CertifiedKey>);

impl ResolvesClientCert for FixedClientIdentity {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }

    fn has_certs(&self) -> bool {
        true
    }
}
