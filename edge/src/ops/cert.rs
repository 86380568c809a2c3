//! `herald cert request|import|check`: a key and CSR for a CA, importing a certificate
//! into the data directory, and checking expiry and domain coverage (the logic is in
//! `herald_certs`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use herald_certs::{unix_now, CertReport};

use crate::app::load_config;
use crate::config::Config;
use crate::error::EdgeError;

/// A certificate this close to expiry is reported as a problem.
const WARN_DAYS: i64 = 14;

#[derive(Debug, Subcommand)]
pub enum CertAction {
    /// Generate a new private key and a certificate signing request (PEM) for DOMAIN,
    /// as DOMAIN.key (mode 0600) and DOMAIN.csr; hand the CSR to your CA.
    Request {
        /// The domain the certificate is for (subject and first subjectAltName).
        domain: String,
        /// More names for the subjectAltName (repeat the option for each).
        #[arg(long = "name")]
        names: Vec<String>,
        /// Where to write the files (default: the data directory's tls/).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Validate a certificate chain and its private key, copy them into the data
    /// directory's tls/, and print the configuration lines that use them.
    Import {
        /// The PEM certificate chain, leaf first.
        cert: PathBuf,
        /// The PEM private key of the leaf certificate.
        key: PathBuf,
    },
    /// Report expiry, days left and covered names of certificates. Without FILEs,
    /// checks the configured certificates and lists the hosted domains none covers.
    Check {
        /// PEM certificate files to check instead of the configured ones.
        files: Vec<PathBuf>,
    },
}

pub fn run(config_path: Option<&Path>, action: CertAction) -> Result<ExitCode, EdgeError> {
    let config = load_config(config_path)?;
    let tls_dir = config.server.data_dir.join("tls");
    match action {
        CertAction::Request { domain, names, out } => {
            let dir = out.unwrap_or(tls_dir);
            let files = herald_certs::request(&domain, &names, &dir)?;
            println!("private key:                 {}", files.key.display());
            println!("certificate signing request: {}", files.csr.display());
            println!(
                "Send the request to your CA, then: herald cert import CERT.pem {}",
                files.key.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        CertAction::Import { cert, key } => {
            let imported = herald_certs::import(&cert, &key, &tls_dir)?;
            println!("{}", describe(&imported.report, unix_now()));
            println!(
                "Copied to {} and {}.\nAdd to the configuration (then restart):\n\n\
                 [[tls.certificates]]\ncert = {:?}\nkey = {:?}",
                imported.cert.display(),
                imported.key.display(),
                absolute(&imported.cert).display().to_string(),
                absolute(&imported.key).display().to_string(),
            );
            let uncovered: Vec<&String> = config
                .server
                .domains
                .iter()
                .filter(|d| !imported.report.covers(d))
                .collect();
            if !uncovered.is_empty() {
                println!(
                    "\nNote: it does not cover hosted domain(s) {}",
                    join(&uncovered)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        CertAction::Check { files } => {
            let (text, healthy) = check(&config, &files);
            print!("{text}");
            Ok(if healthy {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn join(items: &[&String]) -> String {
    items
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// One certificate, as text.
pub fn describe(r: &CertReport, now: i64) -> String {
    let days = r.days_left(now);
    let state = if r.expired(now) {
        "EXPIRED".to_string()
    } else if days < WARN_DAYS {
        format!("expires soon: {days} day(s) left")
    } else {
        format!("{days} day(s) left")
    };
    format!(
        "{}\n  expires: {} ({state})\n  covers:  {}",
        r.path.display(),
        herald_core::time::xep0082(r.not_after.saturating_mul(1000)),
        if r.names.is_empty() {
            "(no subjectAltName)".to_string()
        } else {
            r.names.join(", ")
        }
    )
}

/// The check report, and whether everything is fine: nothing expired, expiring within
/// two weeks or unreadable, and — when checking the configured certificates — no
/// hosted domain left uncovered.
pub fn check(config: &Config, files: &[PathBuf]) -> (String, bool) {
    let now = unix_now();
    let configured = files.is_empty();
    let paths: Vec<PathBuf> = if !configured {
        files.to_vec()
    } else if config.tls.certificates.is_empty() {
        vec![config.server.data_dir.join("tls").join("server.pem")]
    } else {
        config
            .tls
            .certificates
            .iter()
            .map(|c| c.cert.clone())
            .collect()
    };
    let mut out = String::new();
    if configured && config.tls.certificates.is_empty() {
        out.push_str(
            "No certificates configured: the generated development certificate is used.\n",
        );
    }
    let mut healthy = true;
    let mut reports = Vec::new();
    for p in &paths {
        match herald_certs::inspect(p) {
            Ok(r) => {
                out.push_str(&describe(&r, now));
                out.push('\n');
                healthy &= r.days_left(now) >= WARN_DAYS;
                reports.push(r);
            }
            Err(e) => {
                out.push_str(&format!("{}\n  unreadable: {e}\n", p.display()));
                healthy = false;
            }
        }
    }
    if configured {
        let uncovered: Vec<&String> = config
            .server
            .domains
            .iter()
            .filter(|d| !reports.iter().any(|r| r.covers(d)))
            .collect();
        if uncovered.is_empty() {
            out.push_str("Every hosted domain is covered.\n");
        } else {
            out.push_str(&format!(
                "Hosted domain(s) not covered by any certificate: {}\n",
                join(&uncovered)
            ));
            healthy = false;
        }
    }
    (out, healthy)
}
