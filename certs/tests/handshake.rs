//! In-memory TLS handshakes with the configurations of this crate.

mod common;

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;

use common::{domains, handshake, Failure, TempDir};
use herald_certs::{
    client_config, crypto_provider, ensure_dev_pki, load_identity, read_certs, server_config,
    server_config_mtls, CertError, CertifiedIdentity, DevPki, ReloadableCerts, SniStore,
};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair,
};

const XMPP_CLIENT: &[u8] = b"xmpp-client";

/// Two independent development PKIs: "localhost" and "example.org".
struct Fixture {
    _tmp: TempDir,
    local: DevPki,
    remote: DevPki,
}

impl Fixture {
    fn new(label: &str) -> Self {
        let tmp = TempDir::new(label);
        let local = ensure_dev_pki(&tmp.join("local"), &domains(&["localhost"])).expect("local");
        let remote =
            ensure_dev_pki(&tmp.join("remote"), &domains(&["example.org"])).expect("remote");
        Self {
            _tmp: tmp,
            local,
            remote,
        }
    }

    fn identity(pki: &DevPki) -> CertifiedIdentity {
        load_identity(&pki.cert, &pki.key).expect("identity")
    }

    fn store(&self) -> Arc<SniStore> {
        let mut store = SniStore::new(Self::identity(&self.local));
        store.add(Self::identity(&self.remote));
        Arc::new(store)
    }
}

#[test]
fn client_trusting_dev_ca_connects_to_localhost() {
    let fx = Fixture::new("hs-local");
    let server = server_config(fx.store(), &[XMPP_CLIENT]).expect("server config");
    let client = client_config(
        std::slice::from_ref(&fx.local.ca_cert),
        None,
        &[XMPP_CLIENT],
    )
    .expect("client");
    let done = handshake(client, server, "localhost").expect("handshake");
    assert_eq!(done.client.alpn_protocol(), Some(XMPP_CLIENT));
    assert_eq!(done.server.server_name(), Some("localhost"));
    assert_eq!(
        done.client.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    let presented = &done.client.peer_certificates().expect("certs")[0];
    assert_eq!(presented, Fixture::identity(&fx.local).end_entity());
}

#[test]
fn replaced_certificates_serve_the_next_handshake() {
    let fx = Fixture::new("hs-reload");
    let certs = Arc::new(ReloadableCerts::new(SniStore::new(Fixture::identity(
        &fx.local,
    ))));
    let server = server_config(certs.clone(), &[]).expect("server config");
    let trust = [fx.local.ca_cert.clone(), fx.remote.ca_cert.clone()];
    let client = client_config(&trust, None, &[]).expect("client config");
    let presented = |name| {
        let done = handshake(client.clone(), server.clone(), name).expect("handshake");
        done.client.peer_certificates().expect("certs")[0].clone()
    };
    assert_eq!(
        &presented("localhost"),
        Fixture::identity(&fx.local).end_entity()
    );
    // The same server configuration, new certificates: no listener is rebuilt.
    certs.replace(SniStore::new(Fixture::identity(&fx.remote)));
    assert_eq!(
        &presented("example.org"),
        Fixture::identity(&fx.remote).end_entity()
    );
}

#[test]
fn sni_selects_the_certificate_for_the_requested_domain() {
    let fx = Fixture::new("hs-sni");
    let store = fx.store();
    let server = server_config(store.clone(), &[]).expect("server config");
    let trust = [fx.local.ca_cert.clone(), fx.remote.ca_cert.clone()];
    let client = client_config(&trust, None, &[]).expect("client config");
    let local_leaf = Fixture::identity(&fx.local).end_entity().clone();
    let remote_leaf = Fixture::identity(&fx.remote).end_entity().clone();

    for (name, expected) in [
        ("example.org", &remote_leaf),
        ("chat.example.org", &remote_leaf),
        ("localhost", &local_leaf),
    ] {
        let done = handshake(Arc::clone(&client), Arc::clone(&server), name)
            .unwrap_or_else(|failure| panic!("{name}: {failure:?}"));
        assert_eq!(done.client.alpn_protocol(), None);
        let presented = &done.client.peer_certificates().expect("certs")[0];
        assert_eq!(presented, expected, "wrong certificate for {name}");
    }

    assert!(store.covers("example.org"));
    assert!(store.covers("Chat.Example.Org."));
    assert!(store.covers("127.0.0.1"));
    assert!(!store.covers("a.b.example.org"));
    assert!(!store.covers("example.net"));
    // An unknown name gets the default (localhost) certificate, which the
    // client rightly rejects.
    assert_eq!(store.select(Some("example.net")).cert[0], local_leaf);
    assert_eq!(store.select(None).cert[0], local_leaf);
    // The `*.localhost` SAN is selected by SNI, although webpki-based
    // clients refuse wildcards directly under a single-label name.
    assert_eq!(
        store.select(Some("conference.localhost")).cert[0],
        local_leaf
    );
    let failure = handshake(client, server, "example.net")
        .err()
        .expect("name mismatch");
    assert!(matches!(failure, Failure::Client(_)), "{failure:?}");
    let debug = format!("{store:?}");
    assert!(debug.contains("*.example.org"), "{debug}");
}

#[test]
fn client_not_trusting_the_dev_ca_fails() {
    let fx = Fixture::new("hs-untrusted");
    let server = server_config(fx.store(), &[]).expect("server config");
    let client =
        client_config(std::slice::from_ref(&fx.remote.ca_cert), None, &[]).expect("client config");
    let failure = handshake(client, server, "localhost")
        .err()
        .expect("untrusted");
    assert!(
        matches!(
            failure,
            Failure::Client(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer
            ))
        ),
        "{failure:?}"
    );
}

#[test]
fn alpn_mismatch_is_refused_by_the_server() {
    let fx = Fixture::new("hs-alpn");
    let server = server_config(fx.store(), &[XMPP_CLIENT]).expect("server config");
    let client = client_config(
        std::slice::from_ref(&fx.local.ca_cert),
        None,
        &[b"xmpp-server"],
    )
    .expect("client");
    let failure = handshake(client, server, "localhost")
        .err()
        .expect("no common ALPN");
    assert!(matches!(failure, Failure::Server(_)), "{failure:?}");
}

#[test]
fn tls12_client_is_accepted() {
    let fx = Fixture::new("hs-tls12");
    let server = server_config(fx.store(), &[]).expect("server config");
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certs(&fx.local.ca_cert).expect("ca") {
        roots.add(cert).expect("root");
    }
    let client = rustls::ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let done = handshake(Arc::new(client), server, "localhost").expect("handshake");
    assert_eq!(
        done.client.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
}

#[test]
fn empty_trust_list_is_refused() {
    let fx = Fixture::new("hs-empty");
    let error = client_config(&[], None, &[]).expect_err("no trust anchors");
    assert!(matches!(error, CertError::NoTrustAnchors), "{error:?}");
    let error = server_config_mtls(fx.store(), &[], &[]).expect_err("no client roots");
    assert!(matches!(error, CertError::NoTrustAnchors), "{error:?}");
}

/// Writes a client CA and a client certificate it signs; returns the paths
/// of (CA certificate, client certificate, client key).
fn client_pki(dir: &TempDir, label: &str) -> (PathBuf, PathBuf, PathBuf) {
    fs::create_dir_all(dir.path()).expect("dir");
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::default();
    let mut ca_name = DistinguishedName::new();
    ca_name.push(DnType::CommonName, format!("{label} client CA"));
    ca_params.distinguished_name = ca_name;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca_params, ca_key);

    let client_key = KeyPair::generate().expect("client key");
    let mut params =
        CertificateParams::new(vec![format!("{label}.client.example")]).expect("params");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = params.signed_by(&client_key, &issuer).expect("client cert");

    let paths = (
        dir.join(&format!("{label}-ca.pem")),
        dir.join(&format!("{label}-client.pem")),
        dir.join(&format!("{label}-client.key")),
    );
    fs::write(&paths.0, ca_cert.pem()).expect("write ca");
    fs::write(&paths.1, client_cert.pem()).expect("write cert");
    fs::write(&paths.2, client_key.serialize_pem()).expect("write key");
    paths
}

#[test]
fn mutual_tls_requires_a_client_certificate_from_the_trusted_ca() {
    let fx = Fixture::new("hs-mtls");
    let tmp = TempDir::new("mtls-clients");
    let (trusted_ca, good_cert, good_key) = client_pki(&tmp, "trusted");
    let (_other_ca, bad_cert, bad_key) = client_pki(&tmp, "other");
    let server =
        server_config_mtls(fx.store(), &[XMPP_CLIENT], &[trusted_ca]).expect("mtls config");
    let trust = [fx.local.ca_cert.clone()];

    let anonymous = client_config(&trust, None, &[XMPP_CLIENT]).expect("anonymous client");
    let failure = handshake(anonymous, Arc::clone(&server), "localhost")
        .err()
        .expect("client certificate required");
    assert!(matches!(failure, Failure::Server(_)), "{failure:?}");

    let stranger = load_identity(&bad_cert, &bad_key).expect("stranger identity");
    let client = client_config(&trust, Some(&stranger), &[XMPP_CLIENT]).expect("client");
    let failure = handshake(client, Arc::clone(&server), "localhost")
        .err()
        .expect("untrusted client certificate");
    assert!(matches!(failure, Failure::Server(_)), "{failure:?}");

    let member = load_identity(&good_cert, &good_key).expect("member identity");
    assert_eq!(member.names(), ["trusted.client.example"]);
    let client = client_config(&trust, Some(&member), &[XMPP_CLIENT]).expect("client");
    let done = handshake(client, server, "localhost").expect("mutual TLS handshake");
    let presented = &done.server.peer_certificates().expect("client certs")[0];
    assert_eq!(presented, member.end_entity());
    assert_eq!(done.client.alpn_protocol(), Some(XMPP_CLIENT));
}
