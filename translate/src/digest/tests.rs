//! Digest tests: the RFCs' worked examples, the parameter grammar, nonces.

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::params::{parse_params, parse_scheme_params, push_quoted};
use super::*;

/// RFC 2617 §3.5: MD5 with `qop=auth`.
const RFC2617: &str = r#"Digest username="Mufasa",
                 realm="testrealm@host.com",
                 nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
                 uri="/dir/index.html",
                 qop=auth,
                 nc=00000001,
                 cnonce="0a4f113b",
                 response="6629fae49393a05397450978507c4ef1",
                 opaque="5ccc069c403ebaf9f0171e9517f40e41""#;

#[test]
fn rfc2617_md5_example_verifies() {
    let creds = Credentials::parse(RFC2617).unwrap();
    assert_eq!(creds.username, "Mufasa");
    assert_eq!(creds.qop, Some(Qop::Auth));
    assert_eq!(creds.nc, Some(1));
    assert_eq!(creds.algorithm, Algorithm::Md5);
    let stored = ha1(
        Algorithm::Md5,
        "Mufasa",
        "testrealm@host.com",
        "Circle Of Life",
    );
    assert_eq!(stored, "939e7578ed9e3c518a452acee763bce9");
    assert!(verify_response(&creds, "GET", &stored));
    assert!(!verify_response(&creds, "POST", &stored));
    let wrong = ha1(
        Algorithm::Md5,
        "Mufasa",
        "testrealm@host.com",
        "circle of life",
    );
    assert!(!verify_response(&creds, "GET", &wrong));
}

/// RFC 7616 §3.9.1: the same request with MD5 and with SHA-256.
fn rfc7616(algorithm: &str, response: &str) -> String {
    format!(
        "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", \
         uri=\"/dir/index.html\", algorithm={algorithm}, \
         nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", nc=00000001, \
         cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", qop=auth, \
         response=\"{response}\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
    )
}

#[test]
fn rfc7616_examples_verify() {
    for (alg, name, response) in [
        (Algorithm::Md5, "MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        (
            Algorithm::Sha256,
            "SHA-256",
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
        ),
    ] {
        let creds = Credentials::parse(&rfc7616(name, response)).unwrap();
        assert_eq!(creds.algorithm, alg);
        let stored = ha1(alg, "Mufasa", "http-auth@example.org", "Circle of Life");
        assert!(verify_response(&creds, "GET", &stored), "{name}");
        let upper = Credentials::parse(&rfc7616(name, &response.to_uppercase())).unwrap();
        assert!(
            verify_response(&upper, "GET", &stored),
            "{name} in uppercase hex"
        );
    }
}

#[test]
fn rfc2069_form_without_qop_verifies() {
    let stored = ha1(Algorithm::Md5, "bob", "biloxi.com", "zanzibar");
    let mut creds = Credentials {
        username: "bob".into(),
        realm: "biloxi.com".into(),
        nonce: "n0nce".into(),
        uri: "sip:biloxi.com".into(),
        response: String::new(),
        algorithm: Algorithm::Md5,
        cnonce: None,
        opaque: None,
        qop: None,
        nc: None,
    };
    // H(HA1:nonce:H(method:uri)), computed independently of the code under test.
    let ha2 = Algorithm::Md5.hash_hex(&[b"REGISTER", b"sip:biloxi.com"]);
    creds.response = Algorithm::Md5.hash_hex(&[stored.as_bytes(), b"n0nce", ha2.as_bytes()]);
    assert!(verify_response(&creds, "REGISTER", &stored));
    let parsed = Credentials::parse(&creds.to_string()).unwrap();
    assert_eq!(parsed, creds);
    assert!(verify_response(&parsed, "REGISTER", &stored));
}

#[test]
fn session_algorithms_rehash_ha1() {
    let stored = ha1(Algorithm::Sha256, "u", "r", "p");
    assert_eq!(stored, ha1(Algorithm::Sha256Sess, "u", "r", "p"));
    let mut creds = Credentials::parse(&rfc7616("SHA-256-sess", "00")).unwrap();
    let sess_ha1 = Algorithm::Sha256.hash_hex(&[
        stored.as_bytes(),
        creds.nonce.as_bytes(),
        creds.cnonce.as_deref().unwrap().as_bytes(),
    ]);
    let ha2 = Algorithm::Sha256.hash_hex(&[b"MESSAGE", creds.uri.as_bytes()]);
    creds.response = Algorithm::Sha256.hash_hex(&[
        sess_ha1.as_bytes(),
        creds.nonce.as_bytes(),
        b"00000001",
        creds.cnonce.as_deref().unwrap().as_bytes(),
        b"auth",
        ha2.as_bytes(),
    ]);
    assert!(verify_response(&creds, "MESSAGE", &stored));
}

#[test]
fn sha512_256_is_supported() {
    let h = ha1(Algorithm::Sha512_256, "u", "r", "p");
    assert_eq!(h.len(), 64);
    assert_ne!(h, ha1(Algorithm::Sha256, "u", "r", "p"));
}

#[test]
fn credentials_refusals() {
    let cases = [
        ("Basic dXNlcjpwYXNz", DigestError::NotDigest),
        (
            "Digest realm=\"r\", nonce=\"n\", uri=\"u\", response=\"00\"",
            DigestError::Missing("username"),
        ),
        (
            "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"00\", qop=auth, cnonce=\"c\"",
            DigestError::Missing("nc"),
        ),
        (
            "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"00\", qop=auth, nc=00000001",
            DigestError::Missing("cnonce"),
        ),
        (
            "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"00\", nc=1",
            DigestError::Invalid {
                name: "nc",
                value: "1".into(),
            },
        ),
        (
            "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"zz\"",
            DigestError::Invalid {
                name: "response",
                value: "zz".into(),
            },
        ),
        (
            "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"00\", qop=auth-int, nc=00000001, cnonce=\"c\"",
            DigestError::Invalid {
                name: "qop",
                value: "auth-int".into(),
            },
        ),
        (
            "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"00\", algorithm=SHA-1",
            DigestError::UnsupportedAlgorithm("SHA-1".into()),
        ),
        (
            "Digest username=\"a\", USERNAME=\"b\"",
            DigestError::Duplicate("username".into()),
        ),
    ];
    for (value, err) in cases {
        assert_eq!(Credentials::parse(value), Err(err), "{value}");
    }
}

#[test]
fn param_grammar() {
    let (scheme, params) =
        parse_scheme_params("DIGEST  Realm = \"a \\\"b\\\" \\\\ c\" ,, qop=auth,\r\n stale=TRUE")
            .unwrap();
    assert_eq!(scheme, "DIGEST");
    assert_eq!(params[0].name, "realm");
    assert_eq!(params[0].value, "a \"b\" \\ c");
    assert!(params[0].quoted);
    assert_eq!(params[1].name, "qop");
    assert!(!params[1].quoted);
    assert_eq!(params[2].value, "TRUE");
    for bad in [
        "realm",
        "realm=",
        "realm=\"open",
        "realm=\"a\" nonce=\"b\"",
        "=x",
        "realm=\"a\u{1}\"",
        "realm=a b",
    ] {
        assert!(parse_params(bad).is_err(), "{bad:?}");
    }
    assert!(parse_scheme_params("Digest,realm=x").is_err());
    assert!(parse_scheme_params("").is_err());
    let long = format!("Digest realm=\"{}\"", "x".repeat(5000));
    assert_eq!(
        parse_scheme_params(&long),
        Err(DigestError::TooLong("header value"))
    );
    let many: String = (0..30).map(|i| format!("p{i}=x,")).collect();
    assert_eq!(
        parse_params(&many),
        Err(DigestError::TooLong("parameter count"))
    );
}

#[test]
fn challenge_is_written_and_read_back() {
    let c = Challenge::new("atlanta.com", "abc\"def", Algorithm::Sha256)
        .with_opaque("op")
        .with_stale(true);
    let text = c.to_string();
    assert_eq!(
        text,
        "Digest realm=\"atlanta.com\", nonce=\"abc\\\"def\", opaque=\"op\", \
         algorithm=SHA-256, qop=\"auth\", stale=true"
    );
    assert_eq!(Challenge::parse(&text).unwrap(), c);
    let rfc3261 = "Digest realm=\"atlanta.com\", domain=\"sip:ss1.carrier.com\", qop=\"auth\", \
                   nonce=\"f84f1cec41e6cbe5aea9c8e88d359\", opaque=\"\", stale=FALSE, algorithm=MD5";
    let c = Challenge::parse(rfc3261).unwrap();
    assert_eq!(c.algorithm, Algorithm::Md5);
    assert!(c.qop_auth && !c.stale);
    assert_eq!(c.domain.as_deref(), Some("sip:ss1.carrier.com"));
    assert_eq!(c.opaque.as_deref(), Some(""));
    assert!(
        !Challenge::parse("Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\"")
            .unwrap()
            .qop_auth
    );
}

// ----- nonces -----

fn manager(max_tracked: usize) -> NonceManager {
    NonceManager::new(
        [7; 32],
        NonceConfig {
            lifetime_secs: 60,
            max_skew_secs: 2,
            max_tracked,
        },
    )
}

#[test]
fn nonces_check_themselves_and_expire() {
    let mut rng = StdRng::seed_from_u64(1);
    let m = manager(8);
    let n = m.issue(1000, &mut rng);
    assert_eq!(m.check(&n, 1000), NonceVerdict::Fresh);
    assert_eq!(m.check(&n, 1060), NonceVerdict::Fresh);
    assert_eq!(m.check(&n, 1061), NonceVerdict::Stale);
    assert_eq!(m.check(&n, 997), NonceVerdict::Invalid, "from the future");
    let other = NonceManager::new([8; 32], NonceConfig::default());
    assert_eq!(other.check(&n, 1000), NonceVerdict::Invalid);
    let mut tampered = n.clone().into_bytes();
    tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_eq!(m.check(&tampered, 1000), NonceVerdict::Invalid);
    for junk in ["", "x", "!!!!", &"A".repeat(43), &"A".repeat(100)] {
        assert_eq!(m.check(junk, 1000), NonceVerdict::Invalid, "{junk}");
    }
    assert_ne!(n, m.issue(1000, &mut rng), "salted");
}

#[test]
fn counts_must_grow() {
    let mut rng = StdRng::seed_from_u64(2);
    let mut m = manager(8);
    let n = m.issue(100, &mut rng);
    assert_eq!(m.accept(&n, Some(0), 100), NonceVerdict::Replayed);
    assert_eq!(m.accept(&n, Some(1), 100), NonceVerdict::Fresh);
    assert_eq!(m.accept(&n, Some(1), 101), NonceVerdict::Replayed);
    assert_eq!(m.accept(&n, Some(3), 101), NonceVerdict::Fresh);
    assert_eq!(m.accept(&n, Some(2), 101), NonceVerdict::Replayed);
    assert_eq!(m.accept(&n, Some(4), 200), NonceVerdict::Stale);
    assert_eq!(
        m.accept(&n, None, 101),
        NonceVerdict::Fresh,
        "RFC 2069: age only"
    );
    assert_eq!(m.tracked_len(), 1);
    m.purge_expired(200);
    assert_eq!(m.tracked_len(), 0);
}

#[test]
fn table_is_bounded_and_dropped_nonces_cannot_be_replayed() {
    let mut rng = StdRng::seed_from_u64(3);
    let mut m = manager(2);
    let a = m.issue(10, &mut rng);
    let b = m.issue(11, &mut rng);
    let c = m.issue(12, &mut rng);
    assert_eq!(m.accept(&a, Some(1), 12), NonceVerdict::Fresh);
    assert_eq!(m.accept(&b, Some(1), 12), NonceVerdict::Fresh);
    assert_eq!(
        m.accept(&a, Some(2), 12),
        NonceVerdict::Fresh,
        "a is now recent"
    );
    assert_eq!(m.accept(&c, Some(1), 12), NonceVerdict::Fresh, "b dropped");
    assert_eq!(m.tracked_len(), 2);
    assert_eq!(
        m.accept(&b, Some(1), 12),
        NonceVerdict::Stale,
        "not replayable"
    );
    assert_eq!(m.accept(&a, Some(2), 12), NonceVerdict::Replayed);
    let d = m.issue(13, &mut rng);
    assert_eq!(
        m.accept(&d, Some(1), 13),
        NonceVerdict::Fresh,
        "newer than dropped"
    );
}

#[test]
fn wrong_password_does_not_burn_counts() {
    // The verification order a server follows: response first, nonce count after.
    let mut rng = StdRng::seed_from_u64(4);
    let mut m = manager(8);
    let nonce = m.issue(50, &mut rng);
    let stored = ha1(Algorithm::Sha256, "alice", "herald", "secret");
    let mut creds = Credentials {
        username: "alice".into(),
        realm: "herald".into(),
        nonce: nonce.clone(),
        uri: "sip:herald".into(),
        response: "00".into(),
        algorithm: Algorithm::Sha256,
        cnonce: Some("c".into()),
        opaque: None,
        qop: Some(Qop::Auth),
        nc: Some(1),
    };
    assert!(!verify_response(&creds, "REGISTER", &stored));
    let ha2 = Algorithm::Sha256.hash_hex(&[b"REGISTER", b"sip:herald"]);
    creds.response = Algorithm::Sha256.hash_hex(&[
        stored.as_bytes(),
        nonce.as_bytes(),
        b"00000001",
        b"c",
        b"auth",
        ha2.as_bytes(),
    ]);
    assert!(verify_response(&creds, "REGISTER", &stored));
    assert_eq!(m.accept(&nonce, creds.nc, 50), NonceVerdict::Fresh);
    assert_eq!(m.accept(&nonce, creds.nc, 51), NonceVerdict::Replayed);
}

proptest! {
    #[test]
    fn quoted_values_round_trip(value in "[ -~\u{e9}\u{4e2d}\t]{0,40}") {
        let mut text = String::from("x=");
        push_quoted(&mut text, &value);
        let params = parse_params(&text).unwrap();
        prop_assert_eq!(&params[0].value, &value);
    }

    #[test]
    fn parsers_never_panic(s in "\\PC{0,200}") {
        let _ = Credentials::parse(&s);
        let _ = Challenge::parse(&s);
        let _ = parse_params(&s);
    }

    #[test]
    fn counts_are_accepted_once(ncs in proptest::collection::vec(1u32..20, 1..20)) {
        let mut rng = StdRng::seed_from_u64(5);
        let mut m = manager(4);
        let n = m.issue(0, &mut rng);
        let mut highest = 0;
        for nc in ncs {
            let verdict = m.accept(&n, Some(nc), 0);
            prop_assert_eq!(verdict == NonceVerdict::Fresh, nc > highest);
            highest = highest.max(nc);
        }
    }
}

// ----- the server helper -----

/// What a client computes for `challenge` (the reference computation, independent of
/// `verify_response`).
fn answer(c: &Challenge, user: &str, password: &str, method: &str, uri: &str, nc: u32) -> String {
    let alg = c.algorithm;
    let ha1 = alg.hash_hex(&[user.as_bytes(), c.realm.as_bytes(), password.as_bytes()]);
    let ha2 = alg.hash_hex(&[method.as_bytes(), uri.as_bytes()]);
    let nc_hex = format!("{nc:08x}");
    let response = alg.hash_hex(&[
        ha1.as_bytes(),
        c.nonce.as_bytes(),
        nc_hex.as_bytes(),
        b"0a4f113b",
        b"auth",
        ha2.as_bytes(),
    ]);
    let mut opaque = String::new();
    if let Some(o) = &c.opaque {
        opaque = format!(", opaque=\"{o}\"");
    }
    format!(
        "Digest username=\"{user}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", \
         response=\"{response}\", algorithm={}, qop=auth, nc={nc_hex}, cnonce=\"0a4f113b\"{opaque}",
        c.realm,
        c.nonce,
        alg.as_str()
    )
}

#[test]
fn server_challenges_then_accepts() {
    let mut rng = StdRng::seed_from_u64(9);
    let mut server = DigestServer::new(
        "herald",
        &[Algorithm::Sha256, Algorithm::Md5],
        [1; 32],
        NonceConfig::default(),
    )
    .with_opaque("op");
    let stored = ha1(Algorithm::Sha256, "alice", "herald", "secret");
    let stored_md5 = ha1(Algorithm::Md5, "alice", "herald", "secret");
    let lookup = |u: &str, alg: Algorithm| {
        (u == "alice").then(|| match alg {
            Algorithm::Md5 => stored_md5.clone(),
            _ => stored.clone(),
        })
    };
    let uri = "sip:herald";

    let AuthOutcome::Challenge { challenges, reason } =
        server.check(None, "REGISTER", Some(uri), 100, &mut rng, lookup)
    else {
        panic!("no credentials must be challenged")
    };
    assert_eq!(reason, ChallengeReason::NoCredentials);
    assert_eq!(challenges.len(), 2);
    assert_eq!(
        challenges[0].algorithm,
        Algorithm::Sha256,
        "preferred first"
    );
    assert_eq!(challenges[1].algorithm, Algorithm::Md5);
    assert_eq!(challenges[0].nonce, challenges[1].nonce);
    let challenge = challenges[0].clone();
    assert_eq!(challenge.opaque.as_deref(), Some("op"));
    assert!(!challenge.stale);

    let good = answer(&challenge, "alice", "secret", "REGISTER", uri, 1);
    assert_eq!(
        server.check(Some(&good), "REGISTER", Some(uri), 101, &mut rng, lookup),
        AuthOutcome::Authenticated {
            username: "alice".into()
        }
    );
    let reason_of = |outcome: AuthOutcome| match outcome {
        AuthOutcome::Challenge { reason, challenges } => (reason, challenges[0].stale),
        AuthOutcome::Authenticated { .. } => panic!("accepted"),
    };
    assert_eq!(
        reason_of(server.check(Some(&good), "REGISTER", Some(uri), 102, &mut rng, lookup)),
        (ChallengeReason::ReplayedCount, false)
    );
    let wrong = answer(&challenge, "alice", "guess", "REGISTER", uri, 2);
    assert_eq!(
        reason_of(server.check(Some(&wrong), "REGISTER", Some(uri), 102, &mut rng, lookup)),
        (ChallengeReason::BadResponse, false)
    );
    let nobody = answer(&challenge, "mallory", "secret", "REGISTER", uri, 1);
    assert_eq!(
        reason_of(server.check(Some(&nobody), "REGISTER", Some(uri), 102, &mut rng, lookup)),
        (ChallengeReason::UnknownUser, false)
    );
    let later = answer(&challenge, "alice", "secret", "REGISTER", uri, 3);
    assert_eq!(
        reason_of(server.check(
            Some(&later),
            "REGISTER",
            Some(uri),
            10_000,
            &mut rng,
            lookup
        )),
        (ChallengeReason::StaleNonce, true)
    );
    let elsewhere = answer(&challenge, "alice", "secret", "REGISTER", "sip:other", 4);
    assert_eq!(
        reason_of(server.check(
            Some(&elsewhere),
            "REGISTER",
            Some(uri),
            103,
            &mut rng,
            lookup
        )),
        (ChallengeReason::UriMismatch, false)
    );
    let sess = elsewhere.replace("algorithm=SHA-256", "algorithm=SHA-256-sess");
    assert_eq!(
        reason_of(server.check(Some(&sess), "REGISTER", None, 103, &mut rng, lookup)),
        (ChallengeReason::OtherAlgorithm, false)
    );
    assert!(matches!(
        reason_of(server.check(
            Some("Digest realm"),
            "REGISTER",
            None,
            103,
            &mut rng,
            lookup
        ))
        .0,
        ChallengeReason::Malformed(_)
    ));
    let next = answer(&challenge, "alice", "secret", "REGISTER", uri, 5);
    assert!(matches!(
        server.check(Some(&next), "REGISTER", Some(uri), 104, &mut rng, lookup),
        AuthOutcome::Authenticated { .. }
    ));
    // A user agent that knows only MD5 answers the second challenge.
    let md5 = answer(&challenges[1], "alice", "secret", "REGISTER", uri, 6);
    assert!(matches!(
        server.check(Some(&md5), "REGISTER", Some(uri), 105, &mut rng, lookup),
        AuthOutcome::Authenticated { .. }
    ));
}
