//! Development PKI generation, idempotence and regeneration.

mod common;

use std::fs;
use std::path::Path;
use std::time::SystemTime;

use common::{domains, TempDir};
use herald_certs::{ensure_dev_pki, load_identity, read_certs, CertError, DevPki};

fn mtime(path: &Path) -> SystemTime {
    fs::metadata(path)
        .expect("metadata")
        .modified()
        .expect("mtime")
}

fn all_files(pki: &DevPki) -> Vec<std::path::PathBuf> {
    let dir = pki.cert.parent().expect("dir");
    vec![
        pki.ca_cert.clone(),
        dir.join("dev-ca.key"),
        pki.cert.clone(),
        pki.key.clone(),
    ]
}

fn snapshot(pki: &DevPki) -> Vec<(SystemTime, Vec<u8>)> {
    all_files(pki)
        .iter()
        .map(|path| (mtime(path), fs::read(path).expect("read")))
        .collect()
}

#[test]
fn generates_ca_and_server_certificate() {
    let tmp = TempDir::new("gen");
    let dir = tmp.join("nested/pki");
    let pki = ensure_dev_pki(&dir, &domains(&["localhost", "Example.ORG."])).expect("dev pki");
    assert_eq!(pki.ca_cert, dir.join("dev-ca.pem"));
    assert_eq!(pki.cert, dir.join("server.pem"));
    assert_eq!(pki.key, dir.join("server.key"));
    for path in all_files(&pki) {
        assert!(path.is_file(), "{} missing", path.display());
    }
    assert_eq!(read_certs(&pki.ca_cert).expect("ca").len(), 1);

    let identity = load_identity(&pki.cert, &pki.key).expect("identity");
    let names = identity.names();
    for wanted in [
        "localhost",
        "*.localhost",
        "127.0.0.1",
        "::1",
        "example.org",
        "*.example.org",
    ] {
        assert!(
            names.iter().any(|n| n == wanted),
            "{wanted} not in {names:?}"
        );
    }
    assert_eq!(names.len(), 6, "{names:?}");
    assert!(identity.covers("chat.example.org"));
    assert!(identity.covers("EXAMPLE.org"));
    assert!(!identity.covers("a.b.example.org"));
    assert!(!identity.covers("example.net"));
}

#[cfg(unix)]
#[test]
fn private_files_have_restrictive_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = TempDir::new("perm");
    let dir = tmp.join("pki");
    let pki = ensure_dev_pki(&dir, &domains(&["localhost"])).expect("dev pki");
    let mode = |path: &Path| fs::metadata(path).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&pki.key), 0o600);
    assert_eq!(mode(&dir.join("dev-ca.key")), 0o600);
    assert_eq!(mode(&pki.cert), 0o644);
    assert_eq!(mode(&pki.ca_cert), 0o644);
    // No temporary files left behind.
    assert_eq!(fs::read_dir(&dir).expect("list").count(), 4);
}

#[test]
fn second_call_changes_nothing() {
    let tmp = TempDir::new("idem");
    let names = domains(&["localhost", "example.org"]);
    let first = ensure_dev_pki(tmp.path(), &names).expect("first");
    let before = snapshot(&first);
    // Make a rewrite detectable even with coarse mtime granularity.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let second = ensure_dev_pki(tmp.path(), &names).expect("second");
    assert_eq!(first, second);
    assert!(before == snapshot(&second), "files were rewritten");
    // A subset of the covered domains needs nothing new either.
    ensure_dev_pki(tmp.path(), &domains(&["example.org"])).expect("subset");
    assert!(
        before == snapshot(&second),
        "files were rewritten for a subset"
    );
}

#[test]
fn adding_a_domain_reissues_only_the_server_certificate() {
    let tmp = TempDir::new("add");
    let pki = ensure_dev_pki(tmp.path(), &domains(&["localhost"])).expect("first");
    let ca_before = fs::read(&pki.ca_cert).expect("ca");
    let ca_key_before = fs::read(tmp.join("dev-ca.key")).expect("ca key");
    let cert_before = fs::read(&pki.cert).expect("cert");
    let key_before = fs::read(&pki.key).expect("key");

    ensure_dev_pki(tmp.path(), &domains(&["localhost", "example.net"])).expect("second");
    assert_eq!(fs::read(&pki.ca_cert).expect("ca"), ca_before);
    assert_eq!(
        fs::read(tmp.join("dev-ca.key")).expect("ca key"),
        ca_key_before
    );
    assert_ne!(fs::read(&pki.cert).expect("cert"), cert_before);
    assert_ne!(fs::read(&pki.key).expect("key"), key_before);
    let identity = load_identity(&pki.cert, &pki.key).expect("identity");
    assert!(identity.covers("localhost"));
    assert!(identity.covers("example.net"));
    assert!(identity.covers("muc.example.net"));
}

#[test]
fn ip_domain_gets_no_wildcard() {
    let tmp = TempDir::new("ip");
    let pki = ensure_dev_pki(tmp.path(), &domains(&["192.0.2.7", "2001:db8::1"])).expect("pki");
    let identity = load_identity(&pki.cert, &pki.key).expect("identity");
    assert_eq!(identity.names(), ["192.0.2.7", "2001:db8::1"]);
}

#[test]
fn missing_or_broken_server_files_are_replaced() {
    let tmp = TempDir::new("repair");
    let names = domains(&["localhost"]);
    let pki = ensure_dev_pki(tmp.path(), &names).expect("first");
    let ca_before = fs::read(&pki.ca_cert).expect("ca");

    fs::remove_file(&pki.key).expect("remove key");
    ensure_dev_pki(tmp.path(), &names).expect("after key removal");
    load_identity(&pki.cert, &pki.key).expect("repaired");

    fs::write(&pki.cert, "garbage").expect("write garbage");
    ensure_dev_pki(tmp.path(), &names).expect("after garbage");
    load_identity(&pki.cert, &pki.key).expect("repaired");
    assert_eq!(fs::read(&pki.ca_cert).expect("ca"), ca_before);
}

#[test]
fn new_ca_forces_a_new_server_certificate() {
    let tmp = TempDir::new("newca");
    let names = domains(&["localhost"]);
    let pki = ensure_dev_pki(tmp.path(), &names).expect("first");
    let cert_before = fs::read(&pki.cert).expect("cert");
    fs::remove_file(&pki.ca_cert).expect("remove ca");
    fs::remove_file(tmp.join("dev-ca.key")).expect("remove ca key");
    ensure_dev_pki(tmp.path(), &names).expect("second");
    assert_ne!(fs::read(&pki.cert).expect("cert"), cert_before);
}

#[test]
fn ca_key_mismatch_is_reported() {
    let tmp = TempDir::new("camismatch");
    let pki = ensure_dev_pki(tmp.path(), &domains(&["localhost"])).expect("first");
    fs::copy(&pki.key, tmp.join("dev-ca.key")).expect("copy");
    let error = ensure_dev_pki(tmp.path(), &domains(&["localhost"])).expect_err("mismatch");
    assert!(matches!(error, CertError::KeyMismatch { .. }), "{error:?}");
}

#[test]
fn invalid_domains_are_rejected() {
    let tmp = TempDir::new("invalid");
    for bad in [&[][..], &["bad name"][..], &["é.example"][..], &[""][..]] {
        let error = ensure_dev_pki(tmp.path(), &domains(bad)).expect_err("invalid");
        assert!(
            matches!(error, CertError::Generate(_)),
            "{bad:?}: {error:?}"
        );
    }
}
