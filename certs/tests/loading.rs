//! PEM loading errors and key/certificate consistency.

mod common;

use std::fs;
use std::path::PathBuf;

use common::{domains, TempDir};
use herald_certs::{ensure_dev_pki, load_identity, read_certs, CertError};

#[test]
fn missing_file_is_an_io_error_naming_the_path() {
    let tmp = TempDir::new("missing");
    let absent = tmp.join("absent.pem");
    match read_certs(&absent) {
        Err(CertError::Io { path, source }) => {
            assert_eq!(path, absent);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("unexpected {other:?}"),
    }

    let pki = ensure_dev_pki(&tmp.join("pki"), &domains(&["localhost"])).expect("pki");
    let error = load_identity(&pki.cert, &absent).expect_err("missing key");
    assert!(
        matches!(&error, CertError::Io { path, .. } if *path == absent),
        "{error:?}"
    );
    assert!(error.to_string().contains("absent.pem"), "{error}");
}

#[test]
fn garbage_pem_is_an_error_naming_the_path() {
    let tmp = TempDir::new("garbage");
    fs::create_dir_all(tmp.path()).expect("dir");

    let text = tmp.join("text.pem");
    fs::write(&text, "this is not PEM at all\n").expect("write");
    let error = read_certs(&text).expect_err("no cert");
    assert!(
        matches!(&error, CertError::NoCertificate(path) if *path == text),
        "{error:?}"
    );
    assert!(error.to_string().contains("text.pem"), "{error}");

    let broken = tmp.join("broken.pem");
    fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\n!!! not base64 !!!\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    let error = read_certs(&broken).expect_err("bad base64");
    assert!(
        matches!(&error, CertError::Pem { path, .. } if *path == broken),
        "{error:?}"
    );
    assert!(error.to_string().contains("broken.pem"), "{error}");

    let unterminated = tmp.join("unterminated.pem");
    fs::write(&unterminated, "-----BEGIN CERTIFICATE-----\nMIIB\n").expect("write");
    let error = read_certs(&unterminated).expect_err("unterminated");
    assert!(
        matches!(&error, CertError::Pem { path, .. } if *path == unterminated),
        "{error:?}"
    );

    // Well-formed PEM whose content is not a certificate.
    let not_a_cert = tmp.join("not-a-cert.pem");
    fs::write(
        &not_a_cert,
        "-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    let pki = ensure_dev_pki(&tmp.join("pki"), &domains(&["localhost"])).expect("pki");
    let error = load_identity(&not_a_cert, &pki.key).expect_err("not a certificate");
    assert!(
        matches!(&error, CertError::Pem { path, .. } if *path == not_a_cert),
        "{error:?}"
    );

    // A certificate where the key should be.
    let error = load_identity(&pki.cert, &pki.cert).expect_err("no key");
    assert!(
        matches!(&error, CertError::NoPrivateKey(path) if *path == pki.cert),
        "{error:?}"
    );
}

#[test]
fn wrong_key_for_certificate_is_key_mismatch() {
    let tmp = TempDir::new("mismatch");
    let one = ensure_dev_pki(&tmp.join("one"), &domains(&["localhost"])).expect("one");
    let two = ensure_dev_pki(&tmp.join("two"), &domains(&["example.org"])).expect("two");
    match load_identity(&one.cert, &two.key) {
        Err(CertError::KeyMismatch { domain }) => assert_eq!(domain, "localhost"),
        other => panic!("unexpected {other:?}"),
    }
    load_identity(&one.cert, &one.key).expect("matching pair loads");
}

#[test]
fn chain_files_keep_every_certificate_in_order() {
    let tmp = TempDir::new("chain");
    let pki = ensure_dev_pki(&tmp.join("pki"), &domains(&["localhost"])).expect("pki");
    let chain: PathBuf = tmp.join("chain.pem");
    let mut contents = fs::read(&pki.cert).expect("cert");
    contents.extend(fs::read(&pki.ca_cert).expect("ca"));
    fs::write(&chain, contents).expect("write");
    let certs = read_certs(&chain).expect("chain");
    assert_eq!(certs.len(), 2);
    assert_eq!(certs[1], read_certs(&pki.ca_cert).expect("ca")[0]);
    let identity = load_identity(&chain, &pki.key).expect("identity");
    assert_eq!(identity.certified_key().cert.len(), 2);
    assert_eq!(
        identity.end_entity(),
        &read_certs(&pki.cert).expect("cert")[0]
    );
}
