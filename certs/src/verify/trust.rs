//! Trust anchors for server-to-server TLS and certificate path validation
//! without a name check (the name check is ours: see `identity`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, UnixTime};

use crate::error::CertError;
use crate::identity::{read_certs, read_file};

/// The CA bundles looked for, in order, when `SSL_CERT_FILE` is not set.
/// The first is Debian's and Ubuntu's (package `ca-certificates`); the
/// others are Fedora/RHEL, openSUSE, Alpine's second name and FreeBSD.
pub const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
    "/usr/local/share/certs/ca-root-nss.crt",
];

/// The trust anchors server-to-server connections validate peer chains
/// against: the system's CA bundle (optional) plus configured CA files.
///
/// The system roots come from one PEM bundle file: `SSL_CERT_FILE` when set,
/// else the first of [`SYSTEM_BUNDLES`] that exists. This is what
/// `rustls-native-certs` does on Linux too, minus the `SSL_CERT_DIR` hashed
/// directory, which Debian's bundle makes redundant; reading the file
/// ourselves keeps the dependency tree as it is and the source of the
/// roots visible in [`S2sTrust::system_bundle`].
#[derive(Clone)]
pub struct S2sTrust {
    roots: Arc<RootCertStore>,
    system_bundle: Option<PathBuf>,
    skipped: usize,
}

impl S2sTrust {
    /// Trust anchors from the system bundle (when `system` is true) and
    /// every certificate of the `extra` PEM files. A missing system bundle
    /// is logged, not an error (dialback still works without PKIX); an
    /// unreadable or malformed configured file is an error. Certificates of
    /// the system bundle that webpki cannot use are skipped and counted.
    pub fn new(system: bool, extra: &[PathBuf]) -> Result<Self, CertError> {
        let mut roots = RootCertStore::empty();
        let mut system_bundle = None;
        let mut skipped = 0;
        if system {
            match find_system_bundle() {
                Some(path) => {
                    let certs = read_certs(&path)?;
                    let (_, unusable) = roots.add_parsable_certificates(certs);
                    skipped = unusable;
                    system_bundle = Some(path);
                }
                None => tracing::warn!(
                    "no system CA bundle found (set SSL_CERT_FILE or install ca-certificates): \
                     only the configured trust anchors will authenticate federated servers"
                ),
            }
        }
        for path in extra {
            for cert in read_certs(path)? {
                roots.add(cert).map_err(|error| CertError::Pem {
                    path: path.clone(),
                    reason: format!("not usable as a trust anchor: {error}"),
                })?;
            }
        }
        Ok(Self {
            roots: Arc::new(roots),
            system_bundle,
            skipped,
        })
    }

    /// Exactly the given CA certificates (no system roots).
    pub fn from_certs(certs: &[CertificateDer<'_>]) -> Result<Self, CertError> {
        let mut roots = RootCertStore::empty();
        for cert in certs {
            roots.add(cert.clone().into_owned())?;
        }
        Ok(Self {
            roots: Arc::new(roots),
            system_bundle: None,
            skipped: 0,
        })
    }

    /// The trust anchors.
    pub fn roots(&self) -> &Arc<RootCertStore> {
        &self.roots
    }

    /// How many trust anchors there are.
    pub fn len(&self) -> usize {
        self.roots.len()
    }

    /// Whether there is no trust anchor at all (every chain then fails
    /// with [`ChainError::UnknownIssuer`]).
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// The system bundle the roots were read from, if any.
    pub fn system_bundle(&self) -> Option<&Path> {
        self.system_bundle.as_deref()
    }

    /// How many certificates of the system bundle were not usable.
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// Validates `chain` (end-entity first, then intermediates in any
    /// order) up to one of the trust anchors at time `now`, for the
    /// extended key usage of `role`. No name is checked here.
    pub fn verify_chain(
        &self,
        chain: &[CertificateDer<'_>],
        role: PeerRole,
        now: UnixTime,
    ) -> Result<(), ChainError> {
        let (end_entity, intermediates) = chain.split_first().ok_or(ChainError::NoCertificate)?;
        let cert = webpki::EndEntityCert::try_from(end_entity).map_err(ChainError::from)?;
        let algorithms = crate::crypto_provider()
            .signature_verification_algorithms
            .all;
        cert.verify_for_usage(
            algorithms,
            &self.roots.roots,
            intermediates,
            now,
            role,
            None,
            None,
        )
        .map(|_| ())
        .map_err(ChainError::from)
    }
}

impl fmt::Debug for S2sTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S2sTrust")
            .field("anchors", &self.roots.len())
            .field("system_bundle", &self.system_bundle)
            .field("skipped", &self.skipped)
            .finish()
    }
}

fn find_system_bundle() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SSL_CERT_FILE") {
        let path = PathBuf::from(path);
        if read_file(&path).is_ok() {
            return Some(path);
        }
        tracing::warn!(path = %path.display(), "SSL_CERT_FILE is set but cannot be read");
    }
    SYSTEM_BUNDLES
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
}

/// Which end of the TLS connection the peer is, which decides the extended
/// key usage its certificate must allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerRole {
    /// We connected to it (outbound): serverAuth, when the certificate
    /// lists extended key usages at all.
    Server,
    /// It connected to us and presented a client certificate (inbound):
    /// serverAuth or clientAuth. XMPP servers present their server
    /// certificate as client certificate (XEP-0178), and many of those
    /// certificates are serverAuth-only; RFC 7590 does not ask for
    /// clientAuth, so either is accepted.
    Client,
}

/// id-kp-serverAuth, 1.3.6.1.5.5.7.3.1.
const EKU_SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
/// id-kp-clientAuth, 1.3.6.1.5.5.7.3.2.
const EKU_CLIENT_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];

impl webpki::ExtendedKeyUsageValidator for PeerRole {
    fn validate(&self, iter: webpki::KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        let server = webpki::KeyPurposeId::new(EKU_SERVER_AUTH);
        let client = webpki::KeyPurposeId::new(EKU_CLIENT_AUTH);
        let mut present = Vec::new();
        for id in iter {
            let id = id?;
            if id == server || (*self == Self::Client && id == client) {
                return Ok(());
            }
            present.push(id.to_decoded_oid());
        }
        // RFC 5280 §4.2.1.12: no EKU extension means no restriction.
        if present.is_empty() {
            return Ok(());
        }
        Err(webpki::Error::RequiredEkuNotFoundContext(
            webpki::RequiredEkuNotFoundContext {
                required: webpki::KeyUsage::server_auth(),
                present,
            },
        ))
    }
}

/// Why a certificate chain is not valid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The peer presented no certificate.
    #[error("no certificate presented")]
    NoCertificate,
    /// The chain does not lead to a trust anchor (self-signed, private CA,
    /// missing intermediate...).
    #[error("issued by an unknown certificate authority")]
    UnknownIssuer,
    /// A certificate of the chain has expired.
    #[error("certificate expired")]
    Expired,
    /// A certificate of the chain is not valid yet.
    #[error("certificate not valid yet")]
    NotValidYet,
    /// A signature in the chain is wrong or uses an unsupported algorithm.
    #[error("bad or unsupported signature in the chain")]
    BadSignature,
    /// The certificate's extended key usage does not allow this use.
    #[error("extended key usage does not allow TLS authentication for this role")]
    WrongUsage,
    /// A certificate could not be parsed, or has an unsupported critical
    /// extension, or breaks a CA constraint.
    #[error("invalid certificate: {0}")]
    Invalid(String),
}

impl From<webpki::Error> for ChainError {
    // The unit variants are deprecated but still produced by some paths.
    #[allow(deprecated)]
    fn from(error: webpki::Error) -> Self {
        use webpki::Error as E;
        match error {
            E::UnknownIssuer => Self::UnknownIssuer,
            E::CertExpired { .. } => Self::Expired,
            E::CertNotValidYet { .. } => Self::NotValidYet,
            E::InvalidSignatureForPublicKey
            | E::UnsupportedSignatureAlgorithm
            | E::UnsupportedSignatureAlgorithmContext(_)
            | E::UnsupportedSignatureAlgorithmForPublicKey
            | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_)
            | E::SignatureAlgorithmMismatch => Self::BadSignature,
            E::RequiredEkuNotFound | E::RequiredEkuNotFoundContext(_) => Self::WrongUsage,
            other => Self::Invalid(format!("{other:?}")),
        }
    }
}

impl ChainError {
    /// The rustls error for this reason, which picks the TLS alert when a
    /// handshake is refused: `unknown_ca`, `certificate_expired`,
    /// `bad_certificate`, `decrypt_error` or `unsupported_certificate`.
    pub fn to_rustls(&self) -> rustls::CertificateError {
        use rustls::CertificateError as C;
        match self {
            Self::UnknownIssuer => C::UnknownIssuer,
            Self::Expired => C::Expired,
            Self::NotValidYet => C::NotValidYet,
            Self::BadSignature => C::BadSignature,
            Self::WrongUsage => C::InvalidPurpose,
            Self::NoCertificate | Self::Invalid(_) => C::BadEncoding,
        }
    }
}
