//! A development PKI: a local CA and a server certificate it signs, created
//! on demand so that a fresh install can speak TLS without any setup. Clients
//! used for development trust `dev-ca.pem`; nothing here is meant for
//! production deployments, which bring their own certificates.

use std::fs;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType, PKCS_ECDSA_P256_SHA256,
};
use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::server::ParsedCertificate;
use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, DnsName, ServerName, UnixTime};

use crate::error::CertError;
use crate::identity::{io_error, load_identity, read_certs, read_file};
use crate::store::normalize_name;

/// Common name of the development CA certificate.
pub const DEV_CA_COMMON_NAME: &str = "Herald development CA";

const CA_CERT_FILE: &str = "dev-ca.pem";
const CA_KEY_FILE: &str = "dev-ca.key";
const SERVER_CERT_FILE: &str = "server.pem";
const SERVER_KEY_FILE: &str = "server.key";

const DAY: u64 = 24 * 60 * 60;
/// Ten years, leap days included.
const CA_VALIDITY: Duration = Duration::from_secs(3652 * DAY);
/// The longest validity clients such as Apple's accept for a TLS server.
const SERVER_VALIDITY: Duration = Duration::from_secs(825 * DAY);
/// A server certificate this close to expiry is reissued.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * DAY);
/// Certificates start slightly in the past to tolerate clock skew.
const BACKDATE: Duration = Duration::from_secs(60 * 60);

const PRIVATE_MODE: u32 = 0o600;
const PUBLIC_MODE: u32 = 0o644;

/// Development PKI for the embedded default: a CA and a server certificate
/// signed by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevPki {
    /// The CA certificate (`dev-ca.pem`) development clients should trust.
    pub ca_cert: PathBuf,
    /// The server certificate (`server.pem`).
    pub cert: PathBuf,
    /// The server private key (`server.key`, mode 0600).
    pub key: PathBuf,
}

/// Makes sure `dir` holds a development CA (`dev-ca.pem`, `dev-ca.key`) and
/// a server certificate signed by it (`server.pem`, `server.key`) covering
/// every domain in `domains`, and returns their paths.
///
/// `dir` is created with mode 0700 if missing; private keys are written with
/// mode 0600. The CA (ECDSA P-256, CN "Herald development CA", valid ten
/// years) is generated only when absent. The server certificate (ECDSA
/// P-256, valid 825 days) is (re)issued when absent, unreadable, not
/// matching its key, not signed by the CA, expiring within 30 days, or not
/// covering all of: each domain, `*.domain` for non-IP domains, and for
/// `localhost` also 127.0.0.1 and ::1. Otherwise nothing is written, so
/// repeated calls are cheap and leave the files untouched.
pub fn ensure_dev_pki(dir: &Path, domains: &[String]) -> Result<DevPki, CertError> {
    let wanted = WantedNames::new(domains)?;
    create_private_dir(dir)?;
    let pki = DevPki {
        ca_cert: dir.join(CA_CERT_FILE),
        cert: dir.join(SERVER_CERT_FILE),
        key: dir.join(SERVER_KEY_FILE),
    };
    let ca = load_or_create_ca(&pki.ca_cert, &dir.join(CA_KEY_FILE))?;
    match server_cert_problem(&pki, &ca.cert, &wanted) {
        None => {
            tracing::debug!(path = %pki.cert.display(), "development server certificate is up to date");
            return Ok(pki);
        }
        Some(problem) => tracing::info!(
            path = %pki.cert.display(),
            %problem,
            "issuing a development server certificate"
        ),
    }
    issue_server_cert(&pki, &ca, &wanted)?;
    Ok(pki)
}

/// The names the server certificate must carry, derived from the domains.
struct WantedNames {
    /// subjectAltName entries, with the text form `subject_alt_names` yields.
    sans: Vec<(String, SanType)>,
    /// Names a client would verify the certificate against.
    server_names: Vec<ServerName<'static>>,
    common_name: String,
}

impl WantedNames {
    fn new(domains: &[String]) -> Result<Self, CertError> {
        let mut wanted = Self {
            sans: Vec::new(),
            server_names: Vec::new(),
            common_name: String::new(),
        };
        for domain in domains {
            let name = normalize_name(domain.trim());
            if wanted.common_name.is_empty() {
                wanted.common_name.clone_from(&name);
            }
            if let Ok(address) = name.parse::<IpAddr>() {
                wanted.push_ip(address);
                wanted.server_names.push(ServerName::from(address));
                continue;
            }
            let dns_name = DnsName::try_from(name.clone()).map_err(|_| {
                CertError::Generate(format!(
                    "invalid domain name {domain:?} (internationalized names must be given in \
                     their ASCII form)"
                ))
            })?;
            wanted.push_dns(name.clone())?;
            wanted.push_dns(format!("*.{name}"))?;
            if name == "localhost" {
                wanted.push_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
                wanted.push_ip(IpAddr::V6(Ipv6Addr::LOCALHOST));
            }
            wanted.server_names.push(ServerName::DnsName(dns_name));
        }
        if wanted.server_names.is_empty() {
            return Err(CertError::Generate(
                "no domain given for the development certificate".to_owned(),
            ));
        }
        // Keep the plain names ahead of their wildcards, IPs after names.
        wanted.sans.sort_by_key(|(text, san)| {
            (matches!(san, SanType::IpAddress(_)), text.starts_with("*."))
        });
        Ok(wanted)
    }

    fn push_dns(&mut self, name: String) -> Result<(), CertError> {
        if !self.contains(&name) {
            let san = SanType::DnsName(name.clone().try_into()?);
            self.sans.push((name, san));
        }
        Ok(())
    }

    fn push_ip(&mut self, address: IpAddr) {
        let text = address.to_string();
        if !self.contains(&text) {
            self.sans.push((text, SanType::IpAddress(address)));
        }
    }

    fn contains(&self, text: &str) -> bool {
        self.sans.iter().any(|(existing, _)| existing == text)
    }
}

/// The development CA: its certificate and an issuer able to sign with it.
struct DevCa {
    cert: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

/// Parameters of the CA certificate for `key`. Also used to rebuild the
/// issuer from the stored key: the issuer name written into server
/// certificates comes from here, so it must stay in sync with what was
/// generated. Besides the fixed common name, the subject carries an
/// organizational unit derived from the key, so that two installations'
/// CAs never share a name (clients pick candidate issuers by name).
fn ca_params(key: &KeyPair) -> CertificateParams {
    let mut params = CertificateParams::default();
    let key_id: String = params
        .key_identifier(key)
        .iter()
        .take(8)
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, DEV_CA_COMMON_NAME);
    name.push(DnType::OrganizationalUnitName, format!("key {key_id}"));
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn load_or_create_ca(cert_path: &Path, key_path: &Path) -> Result<DevCa, CertError> {
    match (cert_path.exists(), key_path.exists()) {
        (true, true) => load_ca(cert_path, key_path),
        (cert_exists, key_exists) => {
            if cert_exists || key_exists {
                tracing::warn!(
                    path = %cert_path.display(),
                    "development CA incomplete (certificate or key missing): replacing it"
                );
            }
            create_ca(cert_path, key_path)
        }
    }
}

fn load_ca(cert_path: &Path, key_path: &Path) -> Result<DevCa, CertError> {
    let cert = read_certs(cert_path)?.swap_remove(0);
    let key_pem = String::from_utf8(read_file(key_path)?).map_err(|_| CertError::Pem {
        path: key_path.to_path_buf(),
        reason: "not UTF-8 text".to_owned(),
    })?;
    let key = KeyPair::from_pem(&key_pem).map_err(|error| CertError::Pem {
        path: key_path.to_path_buf(),
        reason: error.to_string(),
    })?;
    let parsed = ParsedCertificate::try_from(&cert).map_err(|error| CertError::Pem {
        path: cert_path.to_path_buf(),
        reason: format!("unusable certificate: {error}"),
    })?;
    if parsed.subject_public_key_info().as_ref() != key.subject_public_key_info().as_slice() {
        return Err(CertError::KeyMismatch {
            domain: DEV_CA_COMMON_NAME.to_owned(),
        });
    }
    Ok(DevCa {
        cert,
        issuer: Issuer::new(ca_params(&key), key),
    })
}

fn create_ca(cert_path: &Path, key_path: &Path) -> Result<DevCa, CertError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = ca_params(&key);
    set_validity(&mut params, CA_VALIDITY)?;
    let cert = params.self_signed(&key)?;
    write_file(key_path, key.serialize_pem().as_bytes(), PRIVATE_MODE)?;
    write_file(cert_path, cert.pem().as_bytes(), PUBLIC_MODE)?;
    tracing::info!(
        path = %cert_path.display(),
        "generated a development CA; development clients must trust this certificate"
    );
    Ok(DevCa {
        cert: cert.der().clone(),
        issuer: Issuer::new(params, key),
    })
}

/// Why the current server certificate cannot be kept, or `None` if it can.
fn server_cert_problem(
    pki: &DevPki,
    ca_cert: &CertificateDer<'static>,
    wanted: &WantedNames,
) -> Option<String> {
    if !pki.cert.exists() || !pki.key.exists() {
        return Some("certificate or key missing".to_owned());
    }
    let identity = match load_identity(&pki.cert, &pki.key) {
        Ok(identity) => identity,
        Err(error) => return Some(error.to_string()),
    };
    let missing: Vec<&str> = wanted
        .sans
        .iter()
        .map(|(text, _)| text.as_str())
        .filter(|text| !identity.names().iter().any(|name| name == text))
        .collect();
    if !missing.is_empty() {
        return Some(format!("does not cover {}", missing.join(", ")));
    }
    let chain = &identity.certified_key().cert;
    let now = match unix_now() {
        Ok(now) => now,
        Err(error) => return Some(error.to_string()),
    };
    if let Err(error) = verify_chain(ca_cert, chain, &wanted.server_names, now) {
        return Some(format!("not valid under the development CA: {error}"));
    }
    if verify_chain(ca_cert, chain, &wanted.server_names, now + RENEW_BEFORE).is_err() {
        return Some("expires soon".to_owned());
    }
    None
}

fn issue_server_cert(pki: &DevPki, ca: &DevCa, wanted: &WantedNames) -> Result<(), CertError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    params.subject_alt_names = wanted.sans.iter().map(|(_, san)| san.clone()).collect();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, wanted.common_name.as_str());
    params.distinguished_name = name;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, SERVER_VALIDITY)?;
    let cert = params.signed_by(&key, &ca.issuer)?;

    // Never write a certificate that clients of this CA would reject.
    verify_chain(
        &ca.cert,
        &[cert.der().clone()],
        &wanted.server_names,
        unix_now()?,
    )
    .map_err(|error| {
        CertError::Generate(format!(
            "the new server certificate does not verify against {}: {error} \
                 (remove the development CA files to start over)",
            pki.ca_cert.display()
        ))
    })?;
    write_file(&pki.key, key.serialize_pem().as_bytes(), PRIVATE_MODE)?;
    write_file(&pki.cert, cert.pem().as_bytes(), PUBLIC_MODE)?;
    Ok(())
}

/// Verifies `chain` (leaf first) as a server certificate for every name,
/// with `ca_cert` as the only trust anchor, at time `at`.
fn verify_chain(
    ca_cert: &CertificateDer<'static>,
    chain: &[CertificateDer<'static>],
    server_names: &[ServerName<'static>],
    at: Duration,
) -> Result<(), rustls::Error> {
    let (leaf, intermediates) = chain
        .split_first()
        .ok_or(rustls::Error::NoCertificatesPresented)?;
    let mut roots = RootCertStore::empty();
    roots.add(ca_cert.clone())?;
    let verifier =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), crate::crypto_provider())
            .build()
            .map_err(|error| rustls::Error::General(error.to_string()))?;
    for server_name in server_names {
        verifier.verify_server_cert(
            leaf,
            intermediates,
            server_name,
            &[],
            UnixTime::since_unix_epoch(at),
        )?;
    }
    Ok(())
}

fn unix_now() -> Result<Duration, CertError> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| CertError::Generate("the system clock is set before 1970".to_owned()))
}

/// Valid from (a little before) now, for `validity`.
fn set_validity(params: &mut CertificateParams, validity: Duration) -> Result<(), CertError> {
    let start = unix_now()?.saturating_sub(BACKDATE);
    params.not_before = rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(start.as_secs());
    params.not_after = params.not_before + validity;
    Ok(())
}

pub(crate) fn create_private_dir(dir: &Path) -> Result<(), CertError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|error| io_error(dir, error))
}

/// Writes `contents` to `path` atomically (temporary file + rename), the file
/// having permission `mode` (on Unix) from its creation on.
pub(crate) fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), CertError> {
    let mut temp_name = path.file_name().unwrap_or_default().to_os_string();
    temp_name.push(".tmp");
    let temp = path.with_file_name(temp_name);
    let write = || -> std::io::Result<()> {
        match fs::remove_file(&temp) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        let mut file = options.open(&temp)?;
        // The umask may have narrowed the mode: set it exactly.
        #[cfg(unix)]
        file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        #[cfg(not(unix))]
        let _ = mode;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    };
    write().map_err(|error| {
        let _ = fs::remove_file(&temp);
        io_error(path, error)
    })
}
