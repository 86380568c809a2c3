//! Server-to-server certificate verification: identities (DNS-ID, SRV-ID,
//! XmppAddr, no CN), chains and pins. The handshakes are in `s2s_handshake.rs`.

mod s2s_pki;

use s2s_pki::*;

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
