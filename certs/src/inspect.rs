//! Certificate tooling for operators (`herald cert ...`): generate a key and a
//! certificate signing request for a CA, check certificates (expiry, names covered,
//! hosted domains left uncovered), and import a certificate and key into the data
//! directory after validating them.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_ECDSA_P256_SHA256};

use crate::dev_ca::{create_private_dir, write_file};
use crate::error::CertError;
use crate::identity::{io_error, load_identity, read_certs};
use crate::store::{name_matches, normalize_name};

const DAY: i64 = 86_400;

/// What a certificate file's leaf certificate says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertReport {
    pub path: PathBuf,
    /// subjectAltName DNS names (lower case, wildcards as `*.parent`) and addresses.
    pub names: Vec<String>,
    /// Validity, seconds since the Unix epoch.
    pub not_before: i64,
    pub not_after: i64,
    /// Certificates in the file (the chain).
    pub chain_len: usize,
}

impl CertReport {
    /// Whole days until expiry from `now` (negative once expired).
    pub fn days_left(&self, now: i64) -> i64 {
        (self.not_after - now).div_euclid(DAY)
    }

    pub fn expired(&self, now: i64) -> bool {
        now >= self.not_after
    }

    /// Whether the certificate is valid for `domain` (exact or one-label wildcard).
    pub fn covers(&self, domain: &str) -> bool {
        let domain = normalize_name(domain);
        self.names.iter().any(|p| name_matches(p, &domain))
    }
}

/// Seconds since the Unix epoch now.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The validity period `(notBefore, notAfter)` of a DER certificate, in seconds since
/// the Unix epoch (e.g. a peer's end-entity certificate).
pub fn certificate_validity(cert_der: &[u8]) -> Result<(i64, i64), &'static str> {
    crate::der::validity(cert_der)
}

/// Read the leaf certificate of a PEM chain file.
pub fn inspect(path: &Path) -> Result<CertReport, CertError> {
    let chain = read_certs(path)?;
    let leaf = chain
        .first()
        .ok_or_else(|| CertError::NoCertificate(path.to_path_buf()))?;
    let bad = |reason: &str| CertError::Pem {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let names = crate::der::subject_alt_names(leaf).map_err(bad)?;
    let (not_before, not_after) = crate::der::validity(leaf).map_err(bad)?;
    Ok(CertReport {
        path: path.to_path_buf(),
        names,
        not_before,
        not_after,
        chain_len: chain.len(),
    })
}

/// The files [`request`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrFiles {
    /// The new private key (mode 0600).
    pub key: PathBuf,
    /// The certificate signing request to hand to a CA.
    pub csr: PathBuf,
}

/// Generate an ECDSA P-256 key and a CSR for `domain` (subject CN and subjectAltName
/// `domain`, plus `extra` names) as `<dir>/<domain>.key` and `<dir>/<domain>.csr`.
/// An existing key is never overwritten.
pub fn request(domain: &str, extra: &[String], dir: &Path) -> Result<CsrFiles, CertError> {
    let domain = normalize_name(domain);
    if domain.is_empty() || domain.contains(['/', '\\']) || domain.starts_with('.') {
        return Err(CertError::Generate(format!("invalid domain {domain:?}")));
    }
    let files = CsrFiles {
        key: dir.join(format!("{domain}.key")),
        csr: dir.join(format!("{domain}.csr")),
    };
    if files.key.exists() {
        return Err(io_error(
            &files.key,
            std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "a key already exists; move it away to make a new one",
            ),
        ));
    }
    let mut names = vec![domain.clone()];
    names.extend(extra.iter().map(|n| normalize_name(n)));
    names.dedup();
    let mut params = CertificateParams::new(names)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, domain);
    params.distinguished_name = dn;
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let csr = params.serialize_request(&key)?;
    create_private_dir(dir)?;
    write_file(&files.key, key.serialize_pem().as_bytes(), 0o600)?;
    write_file(&files.csr, csr.pem()?.as_bytes(), 0o644)?;
    Ok(files)
}

/// The files [`import`] wrote, and what the certificate says.
#[derive(Debug, Clone)]
pub struct Imported {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub report: CertReport,
}

/// Validate a certificate chain and its key (both PEM; the key must match, the
/// certificate must not be expired and must name at least one DNS name) and copy them
/// into `dir` as `<first name>.pem` and `<first name>.key` (mode 0600).
pub fn import(cert: &Path, key: &Path, dir: &Path) -> Result<Imported, CertError> {
    load_identity(cert, key)?;
    let report = inspect(cert)?;
    if report.expired(unix_now()) {
        return Err(CertError::Pem {
            path: cert.to_path_buf(),
            reason: "the certificate has expired".into(),
        });
    }
    let base = report
        .names
        .iter()
        .find(|n| n.parse::<std::net::IpAddr>().is_err())
        .map(|n| n.replace('*', "wildcard"))
        .ok_or_else(|| CertError::Pem {
            path: cert.to_path_buf(),
            reason: "the certificate names no DNS name".into(),
        })?;
    let read = |p: &Path| std::fs::read(p).map_err(|e| io_error(p, e));
    let (cert_pem, key_pem) = (read(cert)?, read(key)?);
    create_private_dir(dir)?;
    let out = Imported {
        cert: dir.join(format!("{base}.pem")),
        key: dir.join(format!("{base}.key")),
        report: CertReport {
            path: dir.join(format!("{base}.pem")),
            ..report
        },
    };
    write_file(&out.key, &key_pem, 0o600)?;
    write_file(&out.cert, &cert_pem, 0o644)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "herald-inspect-{tag}-{}-{}",
            std::process::id(),
            unix_now()
        ))
    }

    #[test]
    fn request_writes_a_key_and_a_csr_and_keeps_the_key() {
        let dir = temp("csr");
        let files = request("Example.org", &["xmpp.example.org".into()], &dir).expect("csr");
        let csr = std::fs::read_to_string(&files.csr).expect("csr file");
        assert!(
            csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----"),
            "{csr}"
        );
        let key = std::fs::read_to_string(&files.key).expect("key file");
        assert!(key.contains("PRIVATE KEY"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&files.key)
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(
            request("example.org", &[], &dir).is_err(),
            "never overwrite a key"
        );
        assert!(request("../x", &[], &dir).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn import_checks_the_pair_and_inspect_reports_names_and_expiry() {
        let dir = temp("import");
        std::fs::create_dir_all(&dir).expect("dir");
        let key = KeyPair::generate().expect("key");
        let params =
            CertificateParams::new(vec!["*.example.org".into(), "example.org".into()]).expect("p");
        let cert = params.self_signed(&key).expect("cert");
        let (cp, kp) = (dir.join("in.pem"), dir.join("in.key"));
        std::fs::write(&cp, cert.pem()).expect("w");
        std::fs::write(&kp, key.serialize_pem()).expect("w");
        let r = inspect(&cp).expect("inspect");
        assert!(r.covers("example.org") && r.covers("chat.example.org"));
        assert!(!r.covers("a.b.example.org") && !r.covers("example.com"));
        assert!(r.days_left(unix_now()) > 300);
        let imported = import(&cp, &kp, &dir.join("tls")).expect("import");
        assert!(imported.cert.ends_with("wildcard.example.org.pem"));
        assert!(load_identity(&imported.cert, &imported.key).is_ok());
        let other = KeyPair::generate().expect("key");
        std::fs::write(&kp, other.serialize_pem()).expect("w");
        assert!(import(&cp, &kp, &dir.join("tls2")).is_err(), "key mismatch");
        let _ = std::fs::remove_dir_all(dir);
    }
}
