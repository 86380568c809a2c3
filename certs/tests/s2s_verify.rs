//! Server-to-server certificate verification: identities (DNS-ID, SRV-ID,
//! XmppAddr, no CN), chains, pins, and in-memory handshakes between the s2s
//! client and server configurations.

mod common;

use std::sync::Arc;

use common::{handshake, Failure};
use herald_certs::verify::{check_peer_at, presented_ids, MAX_PRESENTED_IDS};
use herald_certs::{
    check_identity, check_peer, crypto_provider, pin_sha256, s2s_client_config, s2s_server_config,
    CertPin, CertifiedIdentity, ChainError, IdentityKind, PeerRole, PresentedId, S2sTrust,
    S2sVerifyMode, SniStore,
};
use proptest::prelude::*;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, OtherNameValue, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{AlertDescription, CertificateError, ClientConnection, ServerConnection};

const XMPP_SERVER: &[u8] = b"xmpp-server";
const ID_ON_XMPP_ADDR: [u64; 9] = [1, 3, 6, 1, 5, 5, 7, 8, 5];

// ---------------------------------------------------------------- PKI ----

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert: CertificateDer<'static>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().expect("ca key");
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).expect("ca cert");
        Self {
            issuer: Issuer::new(params, key),
            cert: cert.der().clone(),
        }
    }

    fn trust(&self) -> S2sTrust {
        S2sTrust::from_certs(std::slice::from_ref(&self.cert)).expect("trust")
    }
}

/// A leaf certificate and its key.
struct Leaf {
    cert: CertificateDer<'static>,
    key: KeyPair,
}

impl Leaf {
    fn certified_key(&self) -> Arc<CertifiedKey> {
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.serialize_der()));
        let signing = crypto_provider()
            .key_provider
            .load_private_key(der)
            .expect("signing key");
        Arc::new(CertifiedKey::new(vec![self.cert.clone()], signing))
    }

    fn identity(&self) -> CertifiedIdentity {
        CertifiedIdentity::from_certified_key(self.certified_key()).expect("identity")
    }

    fn store(&self) -> Arc<SniStore> {
        Arc::new(SniStore::new(self.identity()))
    }
}

/// What goes into a leaf.
#[derive(Default)]
struct Spec {
    dns: Vec<&'static str>,
    xmpp_addrs: Vec<&'static str>,
    /// SRVName values, written as a raw subjectAltName (rcgen only writes
    /// UTF8String otherNames; SRVName is an IA5String).
    srv: Vec<&'static str>,
    common_name: Option<&'static str>,
    eku: Vec<ExtendedKeyUsagePurpose>,
    expired: bool,
}

fn leaf(spec: Spec, issuer: Option<&Ca>) -> Leaf {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    if let Some(cn) = spec.common_name {
        dn.push(DnType::CommonName, cn);
    }
    params.distinguished_name = dn;
    if spec.srv.is_empty() {
        for name in spec.dns {
            params
                .subject_alt_names
                .push(SanType::DnsName(name.try_into().expect("dns")));
        }
        for jid in spec.xmpp_addrs {
            params.subject_alt_names.push(SanType::OtherName((
                ID_ON_XMPP_ADDR.to_vec(),
                OtherNameValue::Utf8String(jid.to_owned()),
            )));
        }
    } else {
        assert!(spec.dns.is_empty() && spec.xmpp_addrs.is_empty());
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                &[2, 5, 29, 17],
                srv_san(&spec.srv),
            ));
    }
    params.extended_key_usages = spec.eku;
    if spec.expired {
        params.not_before = rcgen::date_time_ymd(2019, 1, 1);
        params.not_after = rcgen::date_time_ymd(2020, 1, 1);
    }
    let key = KeyPair::generate().expect("leaf key");
    let cert = match issuer {
        Some(ca) => params.signed_by(&key, &ca.issuer),
        None => params.self_signed(&key),
    }
    .expect("leaf cert");
    Leaf {
        cert: cert.der().clone(),
        key,
    }
}

fn dns(names: &[&'static str]) -> Spec {
    Spec {
        dns: names.to_vec(),
        ..Spec::default()
    }
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend([0x81, len as u8]);
    } else {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(content);
    out
}

/// `SubjectAltName` with one SRVName otherName per value.
fn srv_san(values: &[&str]) -> Vec<u8> {
    const ID_ON_DNS_SRV: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x07];
    let mut names = Vec::new();
    for value in values {
        let mut other = tlv(0x06, ID_ON_DNS_SRV);
        other.extend(tlv(0xa0, &tlv(0x16, value.as_bytes())));
        names.extend(tlv(0xa0, &other));
    }
    tlv(0x30, &names)
}

// ----------------------------------------------------------- identity ----

#[test]
fn each_kind_of_reference_identifier_matches() {
    let ca = Ca::new("identity CA");
    let cases = [
        (
            dns(&["example.org"]),
            "example.org",
            Some(IdentityKind::DnsId),
        ),
        (
            Spec {
                srv: vec!["_xmpp-server.example.org"],
                ..Spec::default()
            },
            "example.org",
            Some(IdentityKind::SrvId),
        ),
        (
            Spec {
                xmpp_addrs: vec!["example.org"],
                ..Spec::default()
            },
            "example.org",
            Some(IdentityKind::XmppAddr),
        ),
        (
            dns(&["*.example.org"]),
            "chat.example.org",
            Some(IdentityKind::WildcardDnsId),
        ),
        (dns(&["*.example.org"]), "example.org", None),
        (
            Spec {
                srv: vec!["_xmpp-client.example.org"],
                ..Spec::default()
            },
            "example.org",
            None,
        ),
        (
            Spec {
                xmpp_addrs: vec!["admin@example.org"],
                ..Spec::default()
            },
            "example.org",
            None,
        ),
    ];
    for (spec, domain, expected) in cases {
        let leaf = leaf(spec, Some(&ca));
        let check = check_identity(&leaf.cert, domain);
        assert_eq!(check.matched, expected, "{domain}: {:?}", check.names);
        assert_eq!(check.names.len(), 1, "{:?}", check.names);
        assert_eq!(check.unreadable, None);
    }
}

#[test]
fn common_name_alone_never_matches() {
    let ca = Ca::new("cn CA");
    let cn_only = leaf(
        Spec {
            common_name: Some("example.org"),
            ..Spec::default()
        },
        Some(&ca),
    );
    let check = check_identity(&cn_only.cert, "example.org");
    assert_eq!(check.matched, None);
    assert!(check.names.is_empty());
    // Its chain is fine: only the identity is missing.
    let outcome = check_peer(
        std::slice::from_ref(&cn_only.cert),
        "example.org",
        &ca.trust(),
        PeerRole::Server,
        None,
    );
    assert_eq!(outcome.chain_valid, Ok(()));
    assert!(!outcome.authenticates());
    let text = outcome.to_string();
    assert!(text.contains("no DNS-ID, SRV-ID or XmppAddr"), "{text}");
}

#[test]
fn all_presented_names_are_listed_in_order() {
    let generated = leaf(
        Spec {
            dns: vec!["example.org", "*.example.org"],
            xmpp_addrs: vec!["example.org"],
            ..Spec::default()
        },
        None,
    );
    let names = presented_ids(&generated.cert).expect("names");
    assert_eq!(
        names,
        [
            PresentedId::DnsName("example.org".into()),
            PresentedId::DnsName("*.example.org".into()),
            PresentedId::XmppAddr("example.org".into()),
        ]
    );
    let check = check_identity(&generated.cert, "EXAMPLE.org.");
    // An XmppAddr is preferred over a DNS-ID when both match.
    assert_eq!(check.matched, Some(IdentityKind::XmppAddr));
    assert_eq!(
        check.describe_names(),
        [
            "DNS-ID example.org",
            "DNS-ID *.example.org",
            "XmppAddr example.org"
        ]
    );
}

#[test]
fn the_list_of_presented_names_is_bounded() {
    let many: Vec<&'static str> = (0..MAX_PRESENTED_IDS + 10)
        .map(|i| &*Box::leak(format!("_xmpp-server.h{i}.example").into_boxed_str()))
        .collect();
    let generated = leaf(
        Spec {
            srv: many,
            ..Spec::default()
        },
        None,
    );
    let names = presented_ids(&generated.cert).expect("names");
    assert_eq!(names.len(), MAX_PRESENTED_IDS);
}

#[test]
fn a_certificate_with_two_subject_alt_name_extensions_is_unreadable() {
    let mut params = CertificateParams::new(vec!["example.org".to_owned()]).expect("params");
    params
        .custom_extensions
        .push(CustomExtension::from_oid_content(
            &[2, 5, 29, 17],
            srv_san(&["_xmpp-server.evil.example"]),
        ));
    let key = KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("cert");
    let check = check_identity(cert.der(), "evil.example");
    assert_eq!(check.matched, None);
    assert_eq!(check.unreadable, Some("duplicate subjectAltName extension"));
    assert!(check.names.is_empty());
}

// -------------------------------------------------------------- chain ----

#[test]
fn chain_reasons_are_precise() {
    let ca = Ca::new("chain CA");
    let other = Ca::new("other CA");
    let trust = ca.trust();
    let domain = "example.org";
    let check = |leaf: &Leaf, role| {
        check_peer(std::slice::from_ref(&leaf.cert), domain, &trust, role, None)
    };

    let good = leaf(dns(&[domain]), Some(&ca));
    let outcome = check(&good, PeerRole::Server);
    assert_eq!(outcome.chain_valid, Ok(()));
    assert_eq!(outcome.identity.matched, Some(IdentityKind::DnsId));
    assert!(outcome.authenticates() && outcome.pkix_valid());
    assert_eq!(outcome.failure(), None);

    let foreign = leaf(dns(&[domain]), Some(&other));
    let outcome = check(&foreign, PeerRole::Server);
    assert_eq!(outcome.chain_valid, Err(ChainError::UnknownIssuer));
    assert_eq!(outcome.identity.matched, Some(IdentityKind::DnsId));
    assert_eq!(outcome.failure(), Some(CertificateError::UnknownIssuer));

    let self_signed = leaf(dns(&[domain]), None);
    assert_eq!(
        check(&self_signed, PeerRole::Server).chain_valid,
        Err(ChainError::UnknownIssuer)
    );

    let expired = leaf(
        Spec {
            expired: true,
            ..dns(&[domain])
        },
        Some(&ca),
    );
    let outcome = check(&expired, PeerRole::Server);
    assert_eq!(outcome.chain_valid, Err(ChainError::Expired));
    assert_eq!(outcome.failure(), Some(CertificateError::Expired));
    let in_2019 = UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_560_000_000));
    let then = check_peer_at(
        std::slice::from_ref(&expired.cert),
        domain,
        &trust,
        PeerRole::Server,
        None,
        in_2019,
    );
    assert_eq!(then.chain_valid, Ok(()));

    assert_eq!(
        check_peer(&[], domain, &trust, PeerRole::Client, None).chain_valid,
        Err(ChainError::NoCertificate)
    );
    let empty = S2sTrust::from_certs(&[]).expect("empty trust");
    assert!(empty.is_empty());
    assert_eq!(
        empty.verify_chain(
            std::slice::from_ref(&good.cert),
            PeerRole::Server,
            UnixTime::now()
        ),
        Err(ChainError::UnknownIssuer)
    );
    assert_eq!(
        empty
            .verify_chain(
                &[CertificateDer::from(&b"not a certificate"[..])],
                PeerRole::Server,
                UnixTime::now()
            )
            .map_err(|e| matches!(e, ChainError::Invalid(_))),
        Err(true)
    );
}

#[test]
fn extended_key_usage_depends_on_the_role() {
    let ca = Ca::new("eku CA");
    let trust = ca.trust();
    let with_eku = |eku| {
        leaf(
            Spec {
                eku: vec![eku],
                ..dns(&["example.org"])
            },
            Some(&ca),
        )
    };
    let verify = |leaf: &Leaf, role| {
        trust.verify_chain(std::slice::from_ref(&leaf.cert), role, UnixTime::now())
    };
    let server_only = with_eku(ExtendedKeyUsagePurpose::ServerAuth);
    let client_only = with_eku(ExtendedKeyUsagePurpose::ClientAuth);
    let signing = with_eku(ExtendedKeyUsagePurpose::CodeSigning);
    // A server certificate is a valid s2s client certificate (XEP-0178).
    assert_eq!(verify(&server_only, PeerRole::Server), Ok(()));
    assert_eq!(verify(&server_only, PeerRole::Client), Ok(()));
    assert_eq!(verify(&client_only, PeerRole::Client), Ok(()));
    assert_eq!(
        verify(&client_only, PeerRole::Server),
        Err(ChainError::WrongUsage)
    );
    assert_eq!(
        verify(&signing, PeerRole::Client),
        Err(ChainError::WrongUsage)
    );
}

#[test]
fn intermediates_are_followed() {
    let root = Ca::new("root CA");
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "intermediate CA");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let intermediate_cert = params.signed_by(&key, &root.issuer).expect("intermediate");
    let intermediate = Ca {
        issuer: Issuer::new(params, key),
        cert: intermediate_cert.der().clone(),
    };
    let leaf = leaf(dns(&["example.org"]), Some(&intermediate));
    let trust = root.trust();
    let now = UnixTime::now();
    assert_eq!(
        trust.verify_chain(
            &[leaf.cert.clone(), intermediate.cert.clone()],
            PeerRole::Server,
            now
        ),
        Ok(())
    );
    assert_eq!(
        trust.verify_chain(std::slice::from_ref(&leaf.cert), PeerRole::Server, now),
        Err(ChainError::UnknownIssuer)
    );
}

#[test]
fn pins_match_the_end_entity_only() {
    let ca = Ca::new("pin CA");
    let self_signed = leaf(dns(&["example.org"]), None);
    let pin = pin_sha256(&self_signed.cert);
    let chain = std::slice::from_ref(&self_signed.cert);
    let outcome = check_peer(
        chain,
        "example.org",
        &ca.trust(),
        PeerRole::Server,
        Some(&pin),
    );
    assert_eq!(outcome.pinned, Some(true));
    assert_eq!(outcome.chain_valid, Err(ChainError::UnknownIssuer));
    assert!(outcome.authenticates(), "a pin replaces PKIX");
    assert!(!outcome.pkix_valid());

    let good = leaf(dns(&["example.org"]), Some(&ca));
    let outcome = check_peer(
        std::slice::from_ref(&good.cert),
        "example.org",
        &ca.trust(),
        PeerRole::Server,
        Some(&pin),
    );
    assert_eq!(outcome.pinned, Some(false));
    assert!(outcome.pkix_valid());
    assert!(!outcome.authenticates(), "a pin mismatch is final");
    assert!(outcome.to_string().contains("does NOT match the pin"));
    let text = pin.to_string();
    assert_eq!(text.parse::<CertPin>(), Ok(pin));
}

#[test]
fn system_roots_are_read_from_the_bundle() {
    let trust = S2sTrust::new(true, &[]).expect("system trust");
    // Debian's ca-certificates bundle (or SSL_CERT_FILE) when installed.
    if let Some(bundle) = trust.system_bundle() {
        assert!(trust.len() > 10, "{trust:?} from {}", bundle.display());
    }
    let none = S2sTrust::new(false, &[]).expect("no roots");
    assert!(none.is_empty());
    assert_eq!(none.system_bundle(), None);
    let missing = S2sTrust::new(false, &["/nonexistent/ca.pem".into()]);
    assert!(missing.is_err());
}

// ---------------------------------------------------------- handshakes ----

/// Runs a handshake that must fail on the client side, delivers the
/// client's alert to the server, and returns both errors.
fn refused(
    client: Arc<rustls::ClientConfig>,
    server: Arc<rustls::ServerConfig>,
    name: &str,
) -> (rustls::Error, rustls::Error) {
    let name = ServerName::try_from(name.to_owned()).expect("name");
    let mut client = ClientConnection::new(client, name).expect("client");
    let mut server = ServerConnection::new(server).expect("server");
    for _ in 0..16 {
        let to_server = drain(|buf| client.write_tls(buf));
        feed(&to_server, &mut server).expect("server accepts the client's flight");
        let to_client = drain(|buf| server.write_tls(buf));
        if let Err(client_error) = feed(&to_client, &mut client) {
            let alert = drain(|buf| client.write_tls(buf));
            let server_error = feed(&alert, &mut server).expect_err("server gets an alert");
            return (client_error, server_error);
        }
    }
    panic!("the handshake did not fail");
}

fn drain(mut write_tls: impl FnMut(&mut Vec<u8>) -> std::io::Result<usize>) -> Vec<u8> {
    let mut buf = Vec::new();
    while write_tls(&mut buf).expect("write_tls") > 0 {}
    buf
}

fn feed<D>(data: &[u8], conn: &mut rustls::ConnectionCommon<D>) -> Result<(), rustls::Error> {
    let mut rest = data;
    while !rest.is_empty() {
        conn.read_tls(&mut rest).expect("read_tls");
        conn.process_new_packets()?;
    }
    Ok(())
}

fn alert(error: &rustls::Error) -> AlertDescription {
    match error {
        rustls::Error::AlertReceived(alert) => *alert,
        other => panic!("expected an alert, got {other:?}"),
    }
}

#[test]
fn record_mode_completes_and_reports_why_the_certificate_fails() {
    let ca = Ca::new("record CA");
    let other = Ca::new("record other CA");
    let trust = ca.trust();
    let client = s2s_client_config(&trust, S2sVerifyMode::Record, None, &[XMPP_SERVER])
        .expect("client config");

    let cases = [
        (
            leaf(dns(&["example.org"]), Some(&other)),
            Err(ChainError::UnknownIssuer),
            true,
        ),
        (
            leaf(
                Spec {
                    common_name: Some("example.org"),
                    ..Spec::default()
                },
                Some(&ca),
            ),
            Ok(()),
            false,
        ),
        (
            leaf(
                Spec {
                    expired: true,
                    ..dns(&["example.org"])
                },
                Some(&ca),
            ),
            Err(ChainError::Expired),
            true,
        ),
    ];
    for (presented, chain, identity) in cases {
        let server = s2s_server_config(presented.store(), &[XMPP_SERVER]).expect("server config");
        let done = handshake(Arc::clone(&client), server, "example.org").expect("handshake");
        assert_eq!(done.server.server_name(), Some("example.org"), "SNI");
        assert_eq!(done.client.alpn_protocol(), Some(XMPP_SERVER));
        let peer = done.client.peer_certificates().expect("server chain");
        let outcome = check_peer(peer, "example.org", &trust, PeerRole::Server, None);
        assert_eq!(outcome.chain_valid, chain);
        assert_eq!(outcome.identity.is_match(), identity);
        assert!(!outcome.authenticates());
        assert!(outcome.failure().is_some());
    }
}

#[test]
fn strict_mode_accepts_every_xmpp_identity_kind() {
    let ca = Ca::new("strict CA");
    let trust = ca.trust();
    let client = s2s_client_config(&trust, S2sVerifyMode::Strict, None, &[]).expect("client");
    let specs = [
        dns(&["example.org"]),
        dns(&["*.example.org"]),
        Spec {
            srv: vec!["_xmpp-server.example.org"],
            ..Spec::default()
        },
        Spec {
            xmpp_addrs: vec!["example.org"],
            ..Spec::default()
        },
    ];
    for (spec, name) in specs.into_iter().zip([
        "example.org",
        "chat.example.org",
        "example.org",
        "example.org",
    ]) {
        let presented = leaf(spec, Some(&ca));
        let server = s2s_server_config(presented.store(), &[]).expect("server");
        let done = handshake(Arc::clone(&client), server, name)
            .unwrap_or_else(|failure| panic!("{name}: {failure:?}"));
        assert_eq!(done.server.server_name(), Some(name));
        let outcome = check_peer(
            done.client.peer_certificates().expect("chain"),
            name,
            &trust,
            PeerRole::Server,
            None,
        );
        assert!(outcome.authenticates(), "{outcome}");
    }
}

#[test]
fn strict_mode_refuses_with_the_matching_alert() {
    let ca = Ca::new("alert CA");
    let other = Ca::new("alert other CA");
    let client = s2s_client_config(&ca.trust(), S2sVerifyMode::Strict, None, &[]).expect("client");

    let foreign = leaf(dns(&["example.org"]), Some(&other));
    let server = s2s_server_config(foreign.store(), &[]).expect("server");
    let (client_error, server_error) = refused(Arc::clone(&client), server, "example.org");
    assert_eq!(
        client_error,
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
    );
    assert_eq!(alert(&server_error), AlertDescription::UnknownCA);

    let good = leaf(dns(&["example.org"]), Some(&ca));
    let server = s2s_server_config(good.store(), &[]).expect("server");
    let (client_error, server_error) = refused(Arc::clone(&client), server, "example.net");
    assert!(
        matches!(
            &client_error,
            rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { presented, .. })
                if presented == &["DNS-ID example.org".to_owned()]
        ),
        "{client_error:?}"
    );
    assert_eq!(alert(&server_error), AlertDescription::BadCertificate);

    let cn_only = leaf(
        Spec {
            common_name: Some("example.org"),
            ..Spec::default()
        },
        Some(&ca),
    );
    let server = s2s_server_config(cn_only.store(), &[]).expect("server");
    let (_, server_error) = refused(Arc::clone(&client), server, "example.org");
    assert_eq!(alert(&server_error), AlertDescription::BadCertificate);

    let expired = leaf(
        Spec {
            expired: true,
            ..dns(&["example.org"])
        },
        Some(&ca),
    );
    let server = s2s_server_config(expired.store(), &[]).expect("server");
    let (_, server_error) = refused(client, server, "example.org");
    assert_eq!(alert(&server_error), AlertDescription::CertificateExpired);
}

#[test]
fn a_pinned_route_accepts_only_its_certificate() {
    let ca = Ca::new("pinned CA");
    let self_signed = leaf(dns(&["example.org"]), None);
    let pin = pin_sha256(&self_signed.cert);
    let client =
        s2s_client_config(&ca.trust(), S2sVerifyMode::Pinned(pin), None, &[]).expect("client");

    let server = s2s_server_config(self_signed.store(), &[]).expect("server");
    handshake(Arc::clone(&client), server, "example.org").expect("pinned certificate");

    // A CA-valid certificate is still not the pinned one.
    let other = leaf(dns(&["example.org"]), Some(&ca));
    let server = s2s_server_config(other.store(), &[]).expect("server");
    let (client_error, server_error) = refused(client, server, "example.org");
    assert!(
        matches!(
            &client_error,
            rustls::Error::InvalidCertificate(CertificateError::Other(_))
        ),
        "{client_error:?}"
    );
    assert!(
        client_error.to_string().contains("pinned"),
        "{client_error}"
    );
    assert_eq!(alert(&server_error), AlertDescription::CertificateUnknown);
}

#[test]
fn the_server_requests_a_client_certificate_but_does_not_require_one() {
    let ca = Ca::new("inbound CA");
    let other = Ca::new("inbound other CA");
    let trust = ca.trust();
    let ours = leaf(dns(&["herald.example"]), Some(&ca));
    let server = s2s_server_config(ours.store(), &[XMPP_SERVER]).expect("server");

    // No client certificate: the handshake completes, nothing to check.
    let anonymous =
        s2s_client_config(&trust, S2sVerifyMode::Strict, None, &[XMPP_SERVER]).expect("client");
    let done = handshake(anonymous, Arc::clone(&server), "herald.example").expect("anonymous");
    assert!(done.server.peer_certificates().is_none());
    let outcome = check_peer(&[], "peer.example", &trust, PeerRole::Client, None);
    assert_eq!(outcome.chain_valid, Err(ChainError::NoCertificate));

    // A serverAuth-only server certificate, offered as client certificate
    // (XEP-0178), from a trusted CA: valid for the claimed domain only.
    let peer = leaf(
        Spec {
            eku: vec![ExtendedKeyUsagePurpose::ServerAuth],
            ..dns(&["peer.example"])
        },
        Some(&ca),
    );
    let client = s2s_client_config(
        &trust,
        S2sVerifyMode::Strict,
        Some(&peer.identity()),
        &[XMPP_SERVER],
    )
    .expect("client");
    let done = handshake(client, Arc::clone(&server), "herald.example").expect("with cert");
    assert_eq!(done.server.server_name(), Some("herald.example"));
    let presented = done.server.peer_certificates().expect("client certificate");
    assert_eq!(presented[0], peer.cert);
    let outcome = check_peer(presented, "peer.example", &trust, PeerRole::Client, None);
    assert!(outcome.authenticates(), "{outcome}");
    let claims_other = check_peer(presented, "evil.example", &trust, PeerRole::Client, None);
    assert!(!claims_other.authenticates());
    assert_eq!(claims_other.chain_valid, Ok(()));

    // An untrusted client certificate does not break the handshake either
    // (dialback may follow); the check says why it does not authenticate.
    let stranger = leaf(dns(&["peer.example"]), Some(&other));
    let client = s2s_client_config(
        &trust,
        S2sVerifyMode::Record,
        Some(&stranger.identity()),
        &[XMPP_SERVER],
    )
    .expect("client");
    let done = handshake(client, server, "herald.example").expect("untrusted client cert");
    let presented = done.server.peer_certificates().expect("client certificate");
    let outcome = check_peer(presented, "peer.example", &trust, PeerRole::Client, None);
    assert_eq!(outcome.chain_valid, Err(ChainError::UnknownIssuer));
    assert_eq!(outcome.identity.matched, Some(IdentityKind::DnsId));
}

/// Presents a certificate with someone else's key.
#[derive(Debug)]
struct WrongKey(Arc<CertifiedKey>);

impl ResolvesServerCert for WrongKey {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

#[test]
fn record_mode_still_checks_the_handshake_signature() {
    let victim = leaf(dns(&["example.org"]), None);
    let attacker = leaf(dns(&["attacker.example"]), None);
    let stolen = Arc::new(CertifiedKey::new(
        vec![victim.cert.clone()],
        Arc::clone(&attacker.certified_key().key),
    ));
    let server = s2s_server_config(Arc::new(WrongKey(stolen)), &[]).expect("server");
    let client = s2s_client_config(
        &S2sTrust::from_certs(&[]).expect("trust"),
        S2sVerifyMode::Record,
        None,
        &[],
    )
    .expect("client");
    let failure = handshake(client, server, "example.org")
        .err()
        .expect("bad signature");
    assert!(matches!(failure, Failure::Client(_)), "{failure:?}");
}

#[test]
fn record_mode_works_against_a_tls12_server() {
    let presented = leaf(dns(&["example.org"]), None);
    let server = rustls::ServerConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .expect("versions")
        .with_no_client_auth()
        .with_cert_resolver(presented.store());
    let client = s2s_client_config(
        &S2sTrust::from_certs(&[]).expect("trust"),
        S2sVerifyMode::Record,
        None,
        &[],
    )
    .expect("client");
    let done = handshake(client, Arc::new(server), "example.org").expect("TLS 1.2");
    assert_eq!(
        done.client.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    assert_eq!(
        done.client.peer_certificates().expect("chain")[0],
        presented.cert
    );
}

#[test]
fn sni_selects_the_certificate_for_the_remote_domain() {
    let ca = Ca::new("sni CA");
    let first = leaf(dns(&["one.example"]), Some(&ca));
    let second = leaf(dns(&["two.example"]), Some(&ca));
    let mut store = SniStore::new(first.identity());
    store.add(second.identity());
    let server = s2s_server_config(Arc::new(store), &[]).expect("server");
    let client = s2s_client_config(&ca.trust(), S2sVerifyMode::Strict, None, &[]).expect("client");
    for (name, expected) in [("one.example", &first.cert), ("two.example", &second.cert)] {
        let done = handshake(Arc::clone(&client), Arc::clone(&server), name).expect(name);
        assert_eq!(done.server.server_name(), Some(name));
        assert_eq!(
            &done.client.peer_certificates().expect("chain")[0],
            expected
        );
    }
}

#[test]
fn every_connection_is_a_full_handshake() {
    let ca = Ca::new("resumption CA");
    let presented = leaf(dns(&["example.org"]), Some(&ca));
    let client = s2s_client_config(&ca.trust(), S2sVerifyMode::Strict, None, &[]).expect("client");
    // Even against a server that hands out tickets, the s2s client does
    // not resume: each connection presents and verifies a certificate.
    let ticketing = herald_certs::server_config(presented.store(), &[]).expect("server");
    let s2s = s2s_server_config(presented.store(), &[]).expect("s2s server");
    for server in [ticketing, s2s] {
        for _ in 0..2 {
            let done =
                handshake(Arc::clone(&client), Arc::clone(&server), "example.org").expect("hs");
            assert_eq!(
                done.client.handshake_kind(),
                Some(rustls::HandshakeKind::Full)
            );
        }
    }
}

/// The record layer connections use (`herald_certs::tls`) exposes what
/// `check_peer` needs on both sides: the peer's chain and the SNI.
#[test]
fn the_record_layer_hands_out_peer_certificates_and_sni() {
    use herald_certs::tls::TlsSession;

    let ca = Ca::new("session CA");
    let trust = ca.trust();
    let receiving = leaf(dns(&["receiving.example"]), Some(&ca));
    let originating = leaf(dns(&["originating.example"]), Some(&ca));
    let server_config = s2s_server_config(receiving.store(), &[XMPP_SERVER]).expect("server");
    let client_config = s2s_client_config(
        &trust,
        S2sVerifyMode::Record,
        Some(&originating.identity()),
        &[XMPP_SERVER],
    )
    .expect("client");
    let name = ServerName::try_from("receiving.example").expect("name");
    let mut client = TlsSession::client(client_config, name).expect("client session");
    let mut server = TlsSession::server(server_config).expect("server session");
    for _ in 0..16 {
        let mut to_server = client.outgoing().to_vec();
        client.consume_outgoing(to_server.len());
        server.feed_hold(&mut to_server).expect("server feed");
        let mut to_client = server.outgoing().to_vec();
        server.consume_outgoing(to_client.len());
        client.feed_hold(&mut to_client).expect("client feed");
        if !client.is_handshaking() && !server.is_handshaking() {
            break;
        }
    }
    assert!(!client.is_handshaking() && !server.is_handshaking());
    assert_eq!(server.server_name(), Some("receiving.example"));
    assert_eq!(server.alpn_protocol(), Some(XMPP_SERVER));

    let from_client = server.peer_certificates().expect("client certificate");
    let inbound = check_peer(
        from_client,
        "originating.example",
        &trust,
        PeerRole::Client,
        None,
    );
    assert!(inbound.authenticates(), "{inbound}");
    let from_server = client.peer_certificates().expect("server certificate");
    let outbound = check_peer(
        from_server,
        "receiving.example",
        &trust,
        PeerRole::Server,
        None,
    );
    assert!(outbound.authenticates(), "{outbound}");
}

// ------------------------------------------------------- fuzz safety ----

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_san_reader_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = presented_ids(&bytes);
        let _ = check_identity(&bytes, "example.org");
    }

    #[test]
    fn the_san_reader_never_panics_on_mutated_certificates(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut der = sample_certificate().to_vec();
        for (index, byte) in edits {
            let at = index.index(der.len());
            der[at] = byte;
        }
        let _ = check_identity(&der, "example.org");
        let _ = check_identity(&der[..cut.index(der.len())], "example.org");
    }
}

/// A certificate with every kind of identifier, made once.
fn sample_certificate() -> &'static [u8] {
    static DER: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    DER.get_or_init(|| {
        let mut params = CertificateParams::default();
        params.subject_alt_names = vec![
            SanType::DnsName("example.org".try_into().expect("dns")),
            SanType::OtherName((
                ID_ON_XMPP_ADDR.to_vec(),
                OtherNameValue::Utf8String("example.org".into()),
            )),
            SanType::IpAddress("192.0.2.1".parse().expect("ip")),
        ];
        let key = KeyPair::generate().expect("key");
        params.self_signed(&key).expect("cert").der().to_vec()
    })
}
