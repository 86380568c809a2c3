//! Loading certificate chains and private keys from PEM files.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::server::ParsedCertificate;
use rustls::sign::CertifiedKey;
use rustls::InconsistentKeys;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::der::subject_alt_names;
use crate::error::CertError;
use crate::store::{name_matches, normalize_name};

/// A certificate chain plus its private key, ready to be served, together
/// with the names (DNS names and IP addresses from the leaf's
/// subjectAltName extension) that it covers.
#[derive(Clone)]
pub struct CertifiedIdentity {
    key: Arc<CertifiedKey>,
    names: Vec<String>,
}

impl CertifiedIdentity {
    /// Wraps an already-assembled rustls key, checking that the private key
    /// matches the leaf certificate and reading the names it covers.
    pub fn from_certified_key(key: Arc<CertifiedKey>) -> Result<Self, CertError> {
        let leaf = key.end_entity_cert()?;
        ParsedCertificate::try_from(leaf)?;
        let names = subject_alt_names(leaf)
            .map_err(|reason| CertError::Tls(format!("unreadable certificate: {reason}")))?;
        let label = names
            .first()
            .cloned()
            .unwrap_or_else(|| "<certificate without subjectAltName>".to_owned());
        check_keys_match(&key, label)?;
        Ok(Self { key, names })
    }

    /// The rustls certificate chain + signing key.
    pub fn certified_key(&self) -> &Arc<CertifiedKey> {
        &self.key
    }

    /// The names covered by the leaf certificate: lower-case DNS names
    /// (wildcards as `*.parent`) and IP addresses in canonical text form.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The leaf (end-entity) certificate.
    pub fn end_entity(&self) -> &CertificateDer<'static> {
        // `from_certified_key` / `load_identity` guarantee a non-empty chain.
        &self.key.cert[0]
    }

    /// Whether the certificate is valid for `name` (exact or single-label
    /// wildcard match, case-insensitive).
    pub fn covers(&self, name: &str) -> bool {
        let name = normalize_name(name);
        self.names
            .iter()
            .any(|pattern| name_matches(pattern, &name))
    }
}

impl fmt::Debug for CertifiedIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertifiedIdentity")
            .field("names", &self.names)
            .field("chain_len", &self.key.cert.len())
            .finish_non_exhaustive()
    }
}

/// Loads a certificate chain (leaf first) and its private key from PEM files.
///
/// Fails with [`CertError::KeyMismatch`] when the key is not the one the leaf
/// certificate certifies.
pub fn load_identity(cert_pem: &Path, key_pem: &Path) -> Result<CertifiedIdentity, CertError> {
    let chain = read_certs(cert_pem)?;
    let leaf = &chain[0];
    let bad_cert = |reason: String| CertError::Pem {
        path: cert_pem.to_path_buf(),
        reason,
    };
    ParsedCertificate::try_from(leaf)
        .map_err(|error| bad_cert(format!("unusable certificate: {error}")))?;
    let names = subject_alt_names(leaf)
        .map_err(|reason| bad_cert(format!("unreadable certificate: {reason}")))?;
    if names.is_empty() {
        tracing::warn!(
            path = %cert_pem.display(),
            "certificate has no subjectAltName: it will only be served as a default"
        );
    }

    let key_der = read_private_key(key_pem)?;
    let signing_key = crate::crypto_provider()
        .key_provider
        .load_private_key(key_der)
        .map_err(|error| CertError::Pem {
            path: key_pem.to_path_buf(),
            reason: format!("unsupported private key: {error}"),
        })?;
    let key = CertifiedKey::new(chain, signing_key);
    let label = names
        .first()
        .cloned()
        .unwrap_or_else(|| cert_pem.display().to_string());
    check_keys_match(&key, label)?;
    Ok(CertifiedIdentity {
        key: Arc::new(key),
        names,
    })
}

fn check_keys_match(key: &CertifiedKey, label: String) -> Result<(), CertError> {
    match key.keys_match() {
        Ok(()) => Ok(()),
        Err(rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
            Err(CertError::KeyMismatch { domain: label })
        }
        Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => {
            tracing::warn!(
                certificate = %label,
                "cannot check that the private key matches the certificate"
            );
            Ok(())
        }
        Err(other) => Err(other.into()),
    }
}

/// Reads every certificate of a PEM file, in file order. Fails when the file
/// holds none or a PEM section is malformed.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let contents = read_file(path)?;
    let certs = CertificateDer::pem_slice_iter(&contents)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| pem_error(path, &error))?;
    if certs.is_empty() {
        return Err(CertError::NoCertificate(path.to_path_buf()));
    }
    Ok(certs)
}

/// Reads the first private key (PKCS#8, SEC1 or PKCS#1) of a PEM file.
pub(crate) fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, CertError> {
    let contents = read_file(path)?;
    match PrivateKeyDer::from_pem_slice(&contents) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => Err(CertError::NoPrivateKey(path.to_path_buf())),
        Err(error) => Err(pem_error(path, &error)),
    }
}

pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, CertError> {
    std::fs::read(path).map_err(|source| io_error(path, source))
}

pub(crate) fn io_error(path: &Path, source: std::io::Error) -> CertError {
    CertError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn pem_error(path: &Path, error: &pem::Error) -> CertError {
    CertError::Pem {
        path: PathBuf::from(path),
        reason: error.to_string(),
    }
}
