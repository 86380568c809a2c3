//! SCRAM-SHA-1 / SCRAM-SHA-256 (RFC 5802, RFC 7677), both sides.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use herald_translate::sasl::{
    verify_password, ClientFirst, DecoySecret, SaslError, ScramClient, ScramHash, ScramRecord,
    ScramServer, DEFAULT_ITERATIONS,
};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::sync::LazyLock;

struct Vector {
    hash: ScramHash,
    client_nonce: &'static str,
    server_nonce: &'static str,
    client_first: &'static str,
    server_first: &'static str,
    client_final: &'static str,
    server_final: &'static str,
    salt: &'static str,
}

/// RFC 5802 §5.
const SHA1: Vector = Vector {
    hash: ScramHash::Sha1,
    client_nonce: "fyko+d2lbbFgONRv9qkxdawL",
    server_nonce: "3rfcNHYJY1ZVvWVs7j",
    client_first: "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
    server_first: "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
    client_final:
        "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
    server_final: "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
    salt: "QSXCR+Q6sek8bf92",
};

/// RFC 7677 §3.
const SHA256: Vector = Vector {
    hash: ScramHash::Sha256,
    client_nonce: "rOprNGfwEbeRWgbNEkqO",
    server_nonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
    client_first: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
    server_first: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
    client_final: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    server_final: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
    salt: "W22ZaJ0SNY7soEsUEjb6gQ==",
};

fn record(v: &Vector) -> ScramRecord {
    ScramRecord::derive(v.hash, "pencil", &B64.decode(v.salt).unwrap(), 4096).unwrap()
}

/// The decoy record of the tests' fixed secret.
fn decoy(hash: ScramHash, user: &str) -> ScramRecord {
    DecoySecret::from_bytes([7; 32]).record(hash, user)
}

static SHA1_RECORD: LazyLock<ScramRecord> = LazyLock::new(|| record(&SHA1));
static SHA256_RECORD: LazyLock<ScramRecord> = LazyLock::new(|| record(&SHA256));

fn check_server(v: &Vector) {
    let rec = record(v);
    let mut server = ScramServer::with_nonce(v.hash, v.server_nonce);
    let first = server.client_first(v.client_first.as_bytes()).unwrap();
    assert_eq!(
        first,
        ClientFirst {
            username: "user".into(),
            authzid: None
        }
    );
    assert_eq!(
        server.server_first(Some(&rec), &decoy(v.hash, "user")),
        v.server_first.as_bytes()
    );
    assert_eq!(
        server.client_final(v.client_final.as_bytes()).unwrap(),
        v.server_final.as_bytes()
    );
}

fn check_client(v: &Vector) {
    let mut client = ScramClient::with_nonce(v.hash, "user", "pencil", v.client_nonce);
    assert_eq!(client.client_first(), v.client_first.as_bytes());
    let fin = client
        .handle_server_first(v.server_first.as_bytes())
        .unwrap();
    assert_eq!(fin, v.client_final.as_bytes());
    client
        .verify_server_final(v.server_final.as_bytes())
        .unwrap();
    assert_eq!(
        client.verify_server_final(b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        Err(SaslError::ServerSignatureMismatch)
    );
    assert_eq!(
        client.verify_server_final(b"e=invalid-proof"),
        Err(SaslError::ServerError("invalid-proof".into()))
    );
}

#[test]
fn rfc5802_sha1_server() {
    check_server(&SHA1);
}

#[test]
fn rfc5802_sha1_client() {
    check_client(&SHA1);
}

#[test]
fn rfc7677_sha256_server() {
    check_server(&SHA256);
}

#[test]
fn rfc7677_sha256_client() {
    check_client(&SHA256);
}

#[test]
fn mechanism_names() {
    for h in [ScramHash::Sha1, ScramHash::Sha256] {
        assert_eq!(ScramHash::from_mechanism(h.mechanism()), Some(h));
    }
    assert_eq!(ScramHash::Sha1.mechanism(), "SCRAM-SHA-1");
    assert_eq!(ScramHash::Sha256.mechanism(), "SCRAM-SHA-256");
    assert_eq!(ScramHash::from_mechanism("SCRAM-SHA-1-PLUS"), None);
    assert_eq!(ScramHash::from_mechanism("PLAIN"), None);
}

#[test]
fn record_generation() {
    let a = ScramRecord::generate(ScramHash::Sha256, "secret", 4096).unwrap();
    let b = ScramRecord::generate(ScramHash::Sha256, "secret", 4096).unwrap();
    assert_eq!(a.salt.len(), 16);
    assert_ne!(a.salt, b.salt);
    assert_eq!(a.stored_key.len(), 32);
    assert_eq!(a.server_key.len(), 32);
    assert_eq!(
        ScramRecord::generate(ScramHash::Sha1, "secret", 4096)
            .unwrap()
            .stored_key
            .len(),
        20
    );
    assert!(verify_password(&a, "secret"));
    assert!(!verify_password(&a, "Secret"));
    assert!(ScramRecord::derive(ScramHash::Sha1, "x", b"salt", 0).is_err());
    assert_eq!(
        ScramRecord::generate(ScramHash::Sha1, "", 4096),
        Err(SaslError::InvalidPassword)
    );
    assert_eq!(
        ScramRecord::generate(ScramHash::Sha1, "a\u{7}b", 4096),
        Err(SaslError::InvalidPassword)
    );
    // OpaqueString maps non-ASCII spaces and normalizes to NFC.
    let r = ScramRecord::generate(ScramHash::Sha1, "a\u{00A0}b\u{0065}\u{0301}", 4096).unwrap();
    assert!(verify_password(&r, "a b\u{00E9}"));
}

/// Runs a full exchange; returns the server's verdict and whether the client accepted
/// the server's signature.
fn exchange(
    hash: ScramHash,
    record: Option<&ScramRecord>,
    user: &str,
    password: &str,
) -> Result<(), SaslError> {
    let mut client = ScramClient::new(hash, user, password);
    let mut server = ScramServer::new(hash, &mut rand::rng());
    let first = server.client_first(&client.client_first())?;
    assert_eq!(first.username, user);
    let server_first = server.server_first(record, &decoy(hash, user));
    let client_final = client.handle_server_first(&server_first)?;
    let server_final = server.client_final(&client_final)?;
    client.verify_server_final(&server_final)
}

#[test]
fn round_trips() {
    for hash in [ScramHash::Sha1, ScramHash::Sha256] {
        let rec = ScramRecord::generate(hash, "correct horse", 4096).unwrap();
        assert_eq!(
            exchange(hash, Some(&rec), "juliet", "correct horse"),
            Ok(())
        );
        assert_eq!(exchange(hash, Some(&rec), "a,b=c", "correct horse"), Ok(()));
        assert_eq!(
            exchange(hash, Some(&rec), "juliet", "wrong horse"),
            Err(SaslError::NotAuthorized)
        );
        assert_eq!(
            exchange(hash, None, "nobody", "correct horse"),
            Err(SaslError::NotAuthorized)
        );
    }
    // A record for the other hash is treated like an unknown user.
    let rec = ScramRecord::generate(ScramHash::Sha1, "pw", 4096).unwrap();
    assert_eq!(
        exchange(ScramHash::Sha256, Some(&rec), "u", "pw"),
        Err(SaslError::NotAuthorized)
    );
}

#[test]
fn unknown_user_looks_plausible() {
    let first_for = |user: &str| {
        let mut server = ScramServer::with_nonce(ScramHash::Sha256, "srv");
        server
            .client_first(format!("n,,n={user},r=abc").as_bytes())
            .unwrap();
        String::from_utf8(server.server_first(None, &decoy(ScramHash::Sha256, user))).unwrap()
    };
    let a = first_for("ghost");
    assert!(a.starts_with("r=abcsrv,s="), "{a}");
    assert!(a.ends_with(",i=4096"), "{a}");
    let salt = a.split(',').nth(1).unwrap().strip_prefix("s=").unwrap();
    assert_eq!(B64.decode(salt).unwrap().len(), 16);
    // Same user, same salt; other user, other salt.
    assert_eq!(a, first_for("ghost"));
    assert_ne!(a, first_for("phantom"));
}

#[test]
fn server_nonce_is_random_and_long() {
    let nonce_of = || {
        let mut server = ScramServer::new(ScramHash::Sha1, &mut rand::rng());
        server.client_first(b"n,,n=u,r=c").unwrap();
        let first =
            String::from_utf8(server.server_first(None, &decoy(ScramHash::Sha1, "u"))).unwrap();
        first
            .split(',')
            .next()
            .unwrap()
            .strip_prefix("r=c")
            .unwrap()
            .to_owned()
    };
    let (a, b) = (nonce_of(), nonce_of());
    assert_ne!(a, b);
    assert!(B64.decode(&a).unwrap().len() >= 18);
}

#[test]
fn server_nonce_comes_from_the_given_generator() {
    let nonce_of = |seed: u64| {
        let mut server = ScramServer::new(ScramHash::Sha256, &mut StdRng::seed_from_u64(seed));
        server.client_first(b"n,,n=u,r=c").unwrap();
        server.server_first(None, &decoy(ScramHash::Sha256, "u"))
    };
    assert_eq!(nonce_of(1), nonce_of(1));
    assert_ne!(nonce_of(1), nonce_of(2));
}

#[test]
fn unknown_users_look_like_known_ones() {
    // A real record made the way accounts are made, and a decoy: the server-first
    // messages differ only in the random parts (nonce and salt bytes), not in shape.
    let shape = |msg: Vec<u8>| {
        let msg = String::from_utf8(msg).unwrap();
        let parts: Vec<&str> = msg.split(',').collect();
        assert_eq!(parts.len(), 3, "{msg}");
        let nonce = parts[0].strip_prefix("r=").unwrap().len();
        let salt = B64
            .decode(parts[1].strip_prefix("s=").unwrap())
            .unwrap()
            .len();
        (nonce, salt, parts[2].to_owned())
    };
    let first = |record: Option<&ScramRecord>, user: &str| {
        let mut server = ScramServer::new(ScramHash::Sha256, &mut rand::rng());
        server
            .client_first(format!("n,,n={user},r=abc").as_bytes())
            .unwrap();
        server.server_first(record, &decoy(ScramHash::Sha256, user))
    };
    let real = ScramRecord::generate(ScramHash::Sha256, "pw", DEFAULT_ITERATIONS).unwrap();
    let known = shape(first(Some(&real), "juliet"));
    let unknown = shape(first(None, "ghost"));
    assert_eq!(known, unknown);
    assert_eq!(known.2, "i=4096");
}

#[test]
fn client_first_parsing() {
    let parse =
        |m: &str| ScramServer::new(ScramHash::Sha256, &mut rand::rng()).client_first(m.as_bytes());
    assert_eq!(
        parse("y,,n=user,r=abc"),
        Ok(ClientFirst {
            username: "user".into(),
            authzid: None
        })
    );
    assert_eq!(
        parse("n,a=juliet@example.com,n=Juliet,r=abc"),
        Ok(ClientFirst {
            username: "Juliet".into(),
            authzid: Some("juliet@example.com".into())
        })
    );
    assert_eq!(
        parse("n,a=a=2Cb,n=x=3Dy=2Cz,r=abc,x=ext"),
        Ok(ClientFirst {
            username: "x=y,z".into(),
            authzid: Some("a,b".into())
        })
    );
    for bad in [
        "",
        "n",
        "n,",
        "n,,",
        "x,,n=user,r=abc",
        "p=tls-unique,,n=user,r=abc",
        "p=tls-exporter,,n=user,r=abc",
        "n,,m=ext,n=user,r=abc",
        "n,,n=user",
        "n,,r=abc,n=user",
        "n,,n=,r=abc",
        "n,,n=user,r=",
        "n,,n=us=er,r=abc",
        "n,,n=us=2,r=abc",
        "n,,n=user,r=ab c",
        "n,,n=user,r=abc,",
        "n,,n=user,r=abc,1=x",
        "n,b=x,n=user,r=abc",
        "n,a=,n=user,r=abc",
        "n,,n=us\0er,r=abc",
    ] {
        assert!(
            matches!(parse(bad), Err(SaslError::MalformedRequest(_))),
            "{bad:?} -> {:?}",
            parse(bad)
        );
    }
    assert!(matches!(
        ScramServer::new(ScramHash::Sha1, &mut rand::rng()).client_first(b"n,,n=\xff,r=abc"),
        Err(SaslError::MalformedRequest(_))
    ));
}

fn server_after_first(v: &Vector, client_first: &str) -> ScramServer {
    let mut server = ScramServer::with_nonce(v.hash, v.server_nonce);
    server.client_first(client_first.as_bytes()).unwrap();
    server.server_first(Some(&record(v)), &decoy(v.hash, "user"));
    server
}

#[test]
fn client_final_errors() {
    let v = &SHA1;
    let nonce = "fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j";
    let proof = "v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=";
    let run = |msg: &str| server_after_first(v, v.client_first).client_final(msg.as_bytes());
    let malformed =
        |r: Result<Vec<u8>, SaslError>| matches!(r, Err(SaslError::MalformedRequest(_)));

    assert!(run(v.client_final).is_ok());
    // Missing fields.
    assert!(malformed(run("")));
    assert!(malformed(run(&format!("c=biws,r={nonce}"))));
    assert!(malformed(run(&format!("r={nonce},p={proof}"))));
    assert!(malformed(run(&format!("c=biws,p={proof}"))));
    // Bad base64.
    assert_eq!(
        run(&format!("c=biws,r={nonce},p=!!!!")),
        Err(SaslError::IncorrectEncoding)
    );
    assert_eq!(
        run(&format!("c=bi*s,r={nonce},p={proof}")),
        Err(SaslError::IncorrectEncoding)
    );
    // Proof of the wrong length.
    assert!(malformed(run(&format!("c=biws,r={nonce},p=AAAA"))));
    // Nonce mismatch.
    assert!(malformed(run(&format!(
        "c=biws,r=fyko+d2lbbFgONRv9qkxdawL,p={proof}"
    ))));
    assert!(malformed(run(&format!("c=biws,r={nonce}x,p={proof}"))));
    // Channel binding echo mismatch ("y,," instead of "n,,").
    assert!(malformed(run(&format!(
        "c={},r={nonce},p={proof}",
        B64.encode("y,,")
    ))));
    // Wrong proof.
    assert_eq!(
        run(&format!("c=biws,r={nonce},p=AAAAAAAAAAAAAAAAAAAAAAAAAAA=")),
        Err(SaslError::NotAuthorized)
    );
    // Extensions before the proof are tolerated (and covered by the signature, so a
    // tampered message fails).
    assert_eq!(
        run(&format!("c=biws,r={nonce},x=1,p={proof}")),
        Err(SaslError::NotAuthorized)
    );
}

#[test]
fn y_flag_is_echoed() {
    // With "y,," the client must echo base64("y,,") = "eSws".
    let v = &SHA1;
    let mut server = server_after_first(v, "y,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
    let nonce = "fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j";
    let r =
        server.client_final(format!("c=biws,r={nonce},p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=").as_bytes());
    assert!(matches!(r, Err(SaslError::MalformedRequest(_))));
    let mut server = server_after_first(v, "y,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
    let r =
        server.client_final(format!("c=eSws,r={nonce},p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=").as_bytes());
    // The channel binding data is part of AuthMessage, so the RFC proof no longer fits.
    assert_eq!(r, Err(SaslError::NotAuthorized));
}

#[test]
fn steps_out_of_order() {
    let mut server = ScramServer::new(ScramHash::Sha1, &mut rand::rng());
    assert!(server.client_final(b"c=biws,r=x,p=AAAA").is_err());
    let mut server = ScramServer::new(ScramHash::Sha1, &mut rand::rng());
    assert!(server
        .server_first(None, &decoy(ScramHash::Sha1, "u"))
        .is_empty());
    let mut server = server_after_first(&SHA1, SHA1.client_first);
    assert!(server.client_first(SHA1.client_first.as_bytes()).is_err());
    // A finished exchange accepts nothing more.
    let mut server = server_after_first(&SHA1, SHA1.client_first);
    assert!(server.client_final(SHA1.client_final.as_bytes()).is_ok());
    assert!(server.client_final(SHA1.client_final.as_bytes()).is_err());
    // Client side.
    let mut client = ScramClient::new(ScramHash::Sha1, "user", "pencil");
    assert!(client
        .handle_server_first(SHA1.server_first.as_bytes())
        .is_err());
    assert!(client
        .verify_server_final(SHA1.server_final.as_bytes())
        .is_err());
}

#[test]
fn client_rejects_bad_server_first() {
    let attempt = |msg: &str| {
        let mut client = ScramClient::with_nonce(ScramHash::Sha1, "user", "pencil", "abc");
        client.client_first();
        client.handle_server_first(msg.as_bytes())
    };
    assert!(attempt("r=abcdef,s=QSXCR+Q6sek8bf92,i=1").is_ok());
    for bad in [
        "",
        "r=abc,s=QSXCR+Q6sek8bf92,i=4096",
        "r=xyzdef,s=QSXCR+Q6sek8bf92,i=4096",
        "r=abcdef,i=4096",
        "r=abcdef,s=,i=4096",
        "r=abcdef,s=QSXCR+Q6sek8bf92,i=0",
        "r=abcdef,s=QSXCR+Q6sek8bf92,i=+5",
        "r=abcdef,s=QSXCR+Q6sek8bf92,i=-1",
        "r=abcdef,s=QSXCR+Q6sek8bf92",
        "m=x,r=abcdef,s=QSXCR+Q6sek8bf92,i=4096",
    ] {
        assert!(attempt(bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        attempt("r=abcdef,s=%%%,i=4096"),
        Err(SaslError::IncorrectEncoding)
    );
}

#[test]
fn conditions() {
    assert_eq!(
        SaslError::MalformedRequest("x").condition(),
        "malformed-request"
    );
    assert_eq!(SaslError::NotAuthorized.condition(), "not-authorized");
    assert_eq!(SaslError::InvalidAuthzid.condition(), "invalid-authzid");
    assert_eq!(
        SaslError::EncryptionRequired.condition(),
        "encryption-required"
    );
    assert_eq!(SaslError::InvalidMechanism.condition(), "invalid-mechanism");
    assert_eq!(SaslError::Aborted.condition(), "aborted");
    assert_eq!(
        SaslError::IncorrectEncoding.condition(),
        "incorrect-encoding"
    );
}

proptest! {
    #[test]
    fn server_steps_never_panic(a in proptest::collection::vec(any::<u8>(), 0..64),
                                b in proptest::collection::vec(any::<u8>(), 0..96)) {
        let mut server = ScramServer::new(ScramHash::Sha1, &mut rand::rng());
        let _ = server.client_first(&a);
        let _ = server.server_first(Some(&SHA1_RECORD), &decoy(ScramHash::Sha1, "user"));
        prop_assert!(server.client_final(&b).is_err());

        // The same garbage after a valid first step.
        let mut server = ScramServer::new(ScramHash::Sha1, &mut rand::rng());
        server.client_first(SHA1.client_first.as_bytes()).unwrap();
        let _ = server.server_first(None, &decoy(ScramHash::Sha1, "user"));
        prop_assert!(server.client_final(&a).is_err());
    }

    #[test]
    fn structured_garbage_never_panics(s in "[nyp=a,rcm\\x00-\\x7f\u{e9}]{0,40}",
                                       t in "[crp=,biwsA-Z0-9+/]{0,60}") {
        let mut server = ScramServer::new(ScramHash::Sha256, &mut rand::rng());
        if server.client_first(s.as_bytes()).is_ok() {
            let _ = server.server_first(Some(&SHA256_RECORD), &decoy(ScramHash::Sha256, "user"));
            prop_assert!(server.client_final(t.as_bytes()).is_err());
        }
        let mut client = ScramClient::new(ScramHash::Sha256, "u", "p");
        client.client_first();
        let _ = client.handle_server_first(t.as_bytes());
        let _ = client.verify_server_final(s.as_bytes());
    }
}
