//! JID parsing and normalization (RFC 7622).

use herald_translate::jid::{domainprep, nodeprep, resourceprep};
use herald_translate::{Jid, JidError};
use proptest::prelude::*;

#[test]
fn case_mapping() {
    let j = Jid::parse("Juliet@Example.COM").unwrap();
    assert_eq!(j.to_string(), "juliet@example.com");
    assert_eq!(j, Jid::parse("juliet@example.com").unwrap());
    // The resourcepart keeps its case.
    let j = Jid::parse("Juliet@Example.COM/Balcony").unwrap();
    assert_eq!(j.to_string(), "juliet@example.com/Balcony");
    assert_ne!(j, Jid::parse("juliet@example.com/balcony").unwrap());
}

#[test]
fn width_mapping() {
    // Fullwidth letters in the localpart map to their ASCII counterparts, then lowercase.
    let j = Jid::parse("ＪＵＬＩＥＴ@example.com").unwrap();
    assert_eq!(j.local(), Some("juliet"));
    // Fullwidth letters in the domainpart are mapped by IDNA.
    let j = Jid::parse("juliet@ｅｘａｍｐｌｅ.com").unwrap();
    assert_eq!(j.domain(), "example.com");
    // Non-ASCII spaces in the resourcepart become U+0020.
    let j = Jid::parse("juliet@example.com/a\u{3000}b").unwrap();
    assert_eq!(j.resource(), Some("a b"));
}

#[test]
fn rfc7622_examples() {
    for s in [
        "juliet@example.com",
        "juliet@example.com/foo",
        "juliet@example.com/foo bar",
        "juliet@example.com/foo@bar",
        "foo\\20bar@example.com",
        "fussball@example.com",
        "fußball@example.com",
        "π@example.com",
        "σ@example.com/foo",
        "ς@example.com/foo",
        "king@example.com/♚",
        "example.com",
        "example.com/foobar",
        "a.example.com/b@example.net",
    ] {
        let j = Jid::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(j.to_string(), s);
    }
    assert_eq!(
        Jid::parse("Σ@example.com/foo").unwrap().to_string(),
        "σ@example.com/foo"
    );
    assert_ne!(
        Jid::parse("fussball@example.com"),
        Jid::parse("fußball@example.com")
    );
    assert_ne!(Jid::parse("σ@example.com"), Jid::parse("ς@example.com"));

    for (s, e) in [
        ("\"juliet\"@example.com", JidError::InvalidLocal),
        ("foo bar@example.com", JidError::InvalidLocal),
        ("@example.com/", JidError::EmptyLocal),
        ("henryⅣ@example.com", JidError::InvalidLocal),
        ("♚@example.com", JidError::InvalidLocal),
        ("juliet@", JidError::Empty),
        ("/foobar", JidError::Empty),
    ] {
        assert_eq!(Jid::parse(s), Err(e), "{s}");
    }
}

#[test]
fn splitting_rules() {
    assert_eq!(Jid::parse(""), Err(JidError::Empty));
    assert_eq!(Jid::parse("@example.com"), Err(JidError::EmptyLocal));
    assert_eq!(Jid::parse("example.com/"), Err(JidError::EmptyResource));
    assert_eq!(
        Jid::parse("juliet@example.com/"),
        Err(JidError::EmptyResource)
    );
    // The resource is everything after the first slash, '@' included.
    let j = Jid::parse("juliet@example.com/a/b@c").unwrap();
    assert_eq!(j.resource(), Some("a/b@c"));
    // A '@' in the domainpart is invalid.
    assert_eq!(Jid::parse("a@b@example.com"), Err(JidError::InvalidDomain));
    for c in ["&", "'", ":", "<", ">"] {
        assert_eq!(
            Jid::parse(&format!("a{c}b@example.com")),
            Err(JidError::InvalidLocal),
            "{c}"
        );
    }
}

#[test]
fn domains() {
    assert_eq!(Jid::parse("example.com.").unwrap().domain(), "example.com");
    assert_eq!(
        Jid::parse("A.Example.nEt.").unwrap().domain(),
        "a.example.net"
    );
    assert_eq!(
        Jid::parse("example.com..").unwrap_err(),
        JidError::InvalidDomain
    );
    assert_eq!(Jid::parse(".").unwrap_err(), JidError::Empty);
    assert_eq!(Jid::parse("a..b").unwrap_err(), JidError::InvalidDomain);
    assert_eq!(
        Jid::parse("-a.example").unwrap_err(),
        JidError::InvalidDomain
    );
    assert_eq!(
        Jid::parse("ex ample.com").unwrap_err(),
        JidError::InvalidDomain
    );
    assert_eq!(
        Jid::parse("ex_ample.com").unwrap_err(),
        JidError::InvalidDomain
    );
    // A-labels are converted to U-labels.
    assert_eq!(
        Jid::parse("u@xn--mnchen-3ya.de").unwrap().domain(),
        "münchen.de"
    );
    assert_eq!(Jid::parse("u@MÜNCHEN.de").unwrap().domain(), "münchen.de");
    assert_eq!(Jid::parse("xn--mnchen-3ya.de"), Jid::parse("münchen.de"));
    // IP literals.
    assert_eq!(Jid::parse("u@127.0.0.1/r").unwrap().domain(), "127.0.0.1");
    assert_eq!(Jid::parse("[::1]").unwrap().domain(), "[::1]");
    assert_eq!(
        Jid::parse("u@[2001:DB8:0::1]/r").unwrap().domain(),
        "[2001:db8::1]"
    );
    assert_eq!(Jid::parse("[::1").unwrap_err(), JidError::InvalidDomain);
    assert_eq!(Jid::parse("[zz::1]").unwrap_err(), JidError::InvalidDomain);
    let label = "a".repeat(64);
    assert_eq!(
        Jid::parse(&format!("{label}.com")).unwrap_err(),
        JidError::InvalidDomain
    );
    assert_eq!(domainprep("Example.COM."), Ok("example.com".to_owned()));
}

#[test]
fn lengths() {
    let ok = "a".repeat(1023);
    let long = "a".repeat(1024);
    assert!(Jid::parse(&format!("{ok}@example.com/{ok}")).is_ok());
    assert_eq!(
        Jid::parse(&format!("{long}@example.com")),
        Err(JidError::LocalTooLong)
    );
    assert_eq!(
        Jid::parse(&format!("example.com/{long}")),
        Err(JidError::ResourceTooLong)
    );
    let labels = vec!["a".repeat(63); 16].join(".");
    assert_eq!(labels.len(), 1023);
    assert!(Jid::parse(&labels).is_ok());
    let labels = format!("a.{labels}");
    assert_eq!(Jid::parse(&labels), Err(JidError::DomainTooLong));
    // The limit applies to the normalized form: 1023 fullwidth letters are 3069 bytes
    // of input but map to 1023 ASCII bytes.
    assert!(nodeprep(&"ａ".repeat(1023)).is_ok());
}

#[test]
fn accessors_and_constructors() {
    let full = Jid::parse("juliet@example.com/balcony").unwrap();
    assert_eq!(full.local(), Some("juliet"));
    assert_eq!(full.domain(), "example.com");
    assert_eq!(full.resource(), Some("balcony"));
    assert!(full.is_full() && !full.is_bare() && !full.is_domain());
    let bare = full.bare();
    assert_eq!(bare.to_string(), "juliet@example.com");
    assert!(bare.is_bare() && !bare.is_full() && !bare.is_domain());
    assert_eq!(
        bare.with_resource("orchard").unwrap().to_string(),
        "juliet@example.com/orchard"
    );
    assert_eq!(bare.with_resource(""), Err(JidError::EmptyResource));
    let d = Jid::domain_jid("Example.com").unwrap();
    assert!(d.is_domain() && d.is_bare());
    assert_eq!(d.to_string(), "example.com");
    assert_eq!(
        Jid::new(Some("Juliet"), "EXAMPLE.com", Some("r")).unwrap(),
        "juliet@example.com/r".parse::<Jid>().unwrap()
    );
    assert_eq!(
        Jid::new(Some(""), "example.com", None),
        Err(JidError::EmptyLocal)
    );
    assert_eq!(
        Jid::new(None, "example.com", Some("")),
        Err(JidError::EmptyResource)
    );
    assert_eq!(
        Jid::new(Some("a@b"), "example.com", None),
        Err(JidError::InvalidLocal)
    );
    assert_eq!(nodeprep("Juliet"), Ok("juliet".to_owned()));
    assert_eq!(nodeprep(""), Err(JidError::EmptyLocal));
    assert_eq!(nodeprep("a b"), Err(JidError::InvalidLocal));
    assert_eq!(resourceprep("Foo Bar"), Ok("Foo Bar".to_owned()));
    assert_eq!(resourceprep("a\u{7}"), Err(JidError::InvalidResource));
    // Ordering and hashing follow the normalized form.
    let mut set = std::collections::HashSet::new();
    set.insert(Jid::parse("JULIET@example.com").unwrap());
    assert!(set.contains(&Jid::parse("juliet@EXAMPLE.com").unwrap()));
}

fn part() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9._-]{1,12}",
        "\\PC{1,8}",
        "[a-zA-ZÀ-ÿΑ-ωＡ-Ｚ .@/]{1,10}",
    ]
}

proptest! {
    #[test]
    fn display_parse_idempotent(
        local in proptest::option::of(part()),
        domain in prop_oneof!["[a-zA-Z0-9-]{1,10}(\\.[a-zA-Z0-9-]{1,10}){0,3}", "\\PC{1,8}", "[a-zäöüßÀ-ÿ]{1,10}\\.[a-z]{2,4}"],
        resource in proptest::option::of(part()),
    ) {
        let mut s = String::new();
        if let Some(l) = &local {
            s.push_str(l);
            s.push('@');
        }
        s.push_str(&domain);
        if let Some(r) = &resource {
            s.push('/');
            s.push_str(r);
        }
        if let Ok(j) = Jid::parse(&s) {
            let again = Jid::parse(&j.to_string());
            prop_assert_eq!(again.as_ref(), Ok(&j));
            prop_assert_eq!(Jid::new(j.local(), j.domain(), j.resource()), Ok(j.clone()));
        }
    }

    #[test]
    fn parse_never_panics(s in "\\PC{0,40}") {
        let _ = Jid::parse(&s);
    }
}
