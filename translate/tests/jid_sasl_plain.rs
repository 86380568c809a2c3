//! PLAIN (RFC 4616) and password verification.

use herald_translate::sasl::{
    plain_encode, plain_parse, verify_password, SaslError, ScramHash, ScramRecord,
};
use proptest::prelude::*;

fn ok(a: Option<&str>, c: &str, p: &str) -> Result<(Option<String>, String, String), SaslError> {
    Ok((a.map(str::to_owned), c.to_owned(), p.to_owned()))
}

#[test]
fn parse_valid() {
    assert_eq!(
        plain_parse(b"\0tim\0tanstaaftanstaaf"),
        ok(None, "tim", "tanstaaftanstaaf")
    );
    assert_eq!(
        plain_parse(b"Ursel\0Kurt\0xipj3plmq"),
        ok(Some("Ursel"), "Kurt", "xipj3plmq")
    );
    assert_eq!(
        plain_parse("\0jüliet\0pässword with spaces".as_bytes()),
        ok(None, "jüliet", "pässword with spaces")
    );
}

#[test]
fn parse_invalid() {
    let malformed = |m: &[u8]| matches!(plain_parse(m), Err(SaslError::MalformedRequest(_)));
    assert!(malformed(b""));
    assert!(malformed(b"timpassword"));
    assert!(malformed(b"\0timpassword"));
    assert!(malformed(b"tim\0password"));
    assert!(malformed(b"\0tim\0pass\0word"));
    assert!(malformed(b"\0\0password"));
    assert!(malformed(b"authz\0\0password"));
    assert!(malformed(b"\0tim\0"));
    assert!(malformed(b"\0\0"));
    assert!(malformed(b"\0t\xffm\0password"));
    assert!(malformed(b"\0tim\0pass\xc3"));
    assert!(malformed(b"\xff\0tim\0password"));
}

#[test]
fn encode_round_trip() {
    assert_eq!(plain_encode(None, "tim", "pw"), b"\0tim\0pw");
    assert_eq!(plain_encode(Some("z"), "tim", "pw"), b"z\0tim\0pw");
    assert_eq!(
        plain_parse(&plain_encode(Some("z"), "tim", "pw")),
        ok(Some("z"), "tim", "pw")
    );
}

#[test]
fn password_verification() {
    for hash in [ScramHash::Sha1, ScramHash::Sha256] {
        let rec = ScramRecord::generate(hash, "pencil", 4096).unwrap();
        assert!(verify_password(&rec, "pencil"));
        assert!(!verify_password(&rec, "pencil "));
        assert!(!verify_password(&rec, ""));
        let mut zero = rec.clone();
        zero.iterations = 0;
        assert!(!verify_password(&zero, "pencil"));
    }
}

proptest! {
    #[test]
    fn parse_never_panics(m in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = plain_parse(&m);
    }

    #[test]
    fn encode_parse(a in "[^\\x00]{0,8}", c in "[^\\x00]{1,8}", p in "[^\\x00]{1,8}") {
        let z = (!a.is_empty()).then_some(a.as_str());
        prop_assert_eq!(
            plain_parse(&plain_encode(z, &c, &p)),
            Ok((z.map(str::to_owned), c.clone(), p.clone()))
        );
    }
}
