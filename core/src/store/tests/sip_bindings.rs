//! The SIP registrar binding part of the store suite: round trip of every field, whole
//! set replacement, purge of expired bindings, and removal with the account.

use super::super::{AccountCredentials, SipBinding, Store, StoreError};
use super::assert_no_such_user;

/// A binding of `user` for `contact` expiring at `expires_at_ms`, optional fields unset.
pub(crate) fn binding(user: &str, contact: &str, expires_at_ms: i64) -> SipBinding {
    SipBinding {
        user: user.to_owned(),
        contact: contact.to_owned(),
        expires_at_ms,
        call_id: format!("call-{contact}"),
        cseq: 1,
        q: None,
        instance: None,
        reg_id: None,
        source: "udp:127.0.0.1:5062".to_owned(),
        user_agent: None,
    }
}

/// Every optional field set, at the edges of its range.
fn full(user: &str, contact: &str) -> SipBinding {
    SipBinding {
        cseq: u32::MAX,
        q: Some(1000),
        instance: Some("<urn:uuid:00000000-0000-1000-8000-000a95a0e128>".to_owned()),
        reg_id: Some(u32::MAX),
        source: "tls:[2001:db8::1]:5061".to_owned(),
        user_agent: Some("Herald-Test/1.0 \u{e9}".to_owned()),
        ..binding(user, contact, i64::MAX)
    }
}

fn contacts(list: &[SipBinding]) -> Vec<&str> {
    list.iter().map(|b| b.contact.as_str()).collect()
}

fn users(s: &dyn Store, names: &[&str]) {
    for name in names {
        s.create_user(name, &AccountCredentials::default()).unwrap();
    }
}

pub(super) fn sip_bindings_round_trip(s: &dyn Store) {
    users(s, &["alice", "bob"]);
    assert!(s.sip_bindings("alice").unwrap().is_empty());
    assert!(s.sip_bindings_all().unwrap().is_empty());

    let mut zero_q = binding("alice", "sip:alice@[::1]:5062;transport=tcp", -5);
    zero_q.q = Some(0);
    let set = vec![
        full("alice", "sips:alice@pc.example.org"),
        binding("alice", "sip:alice@192.0.2.1:5062", 1_700_000_000_000),
        zero_q.clone(),
    ];
    s.sip_bindings_replace("alice", &set).unwrap();
    let stored = s.sip_bindings("alice").unwrap();
    // Sorted by contact, every field as written.
    let mut expected = set.clone();
    expected.sort_by(|a, b| a.contact.cmp(&b.contact));
    assert_eq!(stored, expected);
    assert_eq!(
        contacts(&stored),
        [
            "sip:alice@192.0.2.1:5062",
            "sip:alice@[::1]:5062;transport=tcp",
            "sips:alice@pc.example.org",
        ]
    );
    assert!(s.sip_bindings("bob").unwrap().is_empty());

    // The `user` field of the input is ignored: the set is stored under the user named.
    let mut misnamed = binding("someone-else", "sip:bob@192.0.2.2", 10);
    misnamed.cseq = 7;
    s.sip_bindings_replace("bob", &[misnamed]).unwrap();
    let bob = s.sip_bindings("bob").unwrap();
    assert_eq!(bob.len(), 1);
    assert_eq!(bob[0].user, "bob");
    assert_eq!(bob[0].cseq, 7);

    // All users, by user then contact.
    let all = s.sip_bindings_all().unwrap();
    let keys: Vec<(&str, &str)> = all
        .iter()
        .map(|b| (b.user.as_str(), b.contact.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("alice", "sip:alice@192.0.2.1:5062"),
            ("alice", "sip:alice@[::1]:5062;transport=tcp"),
            ("alice", "sips:alice@pc.example.org"),
            ("bob", "sip:bob@192.0.2.2"),
        ]
    );

    // A repeated contact: the later one wins.
    let mut later = binding("alice", "sip:alice@192.0.2.1:5062", 99);
    later.cseq = 2;
    s.sip_bindings_replace(
        "alice",
        &[
            binding("alice", "sip:alice@192.0.2.1:5062", 1),
            later.clone(),
        ],
    )
    .unwrap();
    assert_eq!(s.sip_bindings("alice").unwrap(), vec![later]);

    assert_no_such_user(s.sip_bindings("ghost"));
    assert_no_such_user(s.sip_bindings_replace("ghost", &[]));
    assert_no_such_user(s.sip_bindings_replace("ghost", &[binding("ghost", "sip:g@h", 1)]));
    assert_eq!(s.sip_bindings_all().unwrap().len(), 2);
}

pub(super) fn sip_bindings_replace(s: &dyn Store) {
    users(s, &["alice", "bob"]);
    let first = [
        binding("alice", "sip:a@192.0.2.1", 100),
        binding("alice", "sip:a@192.0.2.2", 100),
    ];
    s.sip_bindings_replace("alice", &first).unwrap();
    s.sip_bindings_replace("bob", &[binding("bob", "sip:b@192.0.2.9", 100)])
        .unwrap();

    // The new set replaces the old one entirely: one kept and refreshed, one dropped,
    // one added.
    let mut refreshed = binding("alice", "sip:a@192.0.2.2", 500);
    refreshed.cseq = 2;
    refreshed.q = Some(500);
    let second = [refreshed, binding("alice", "sip:a@192.0.2.3", 500)];
    s.sip_bindings_replace("alice", &second).unwrap();
    assert_eq!(s.sip_bindings("alice").unwrap(), second.to_vec());

    // The empty set removes them all; the other user's set is untouched.
    s.sip_bindings_replace("alice", &[]).unwrap();
    assert!(s.sip_bindings("alice").unwrap().is_empty());
    assert_eq!(
        contacts(&s.sip_bindings("bob").unwrap()),
        ["sip:b@192.0.2.9"]
    );
}

pub(super) fn sip_bindings_purge(s: &dyn Store) {
    users(s, &["alice", "bob"]);
    assert_eq!(s.sip_bindings_purge_expired(1_000).unwrap(), 0);
    s.sip_bindings_replace(
        "alice",
        &[
            binding("alice", "sip:a@192.0.2.1", 999),
            binding("alice", "sip:a@192.0.2.2", 1_000),
            binding("alice", "sip:a@192.0.2.3", 1_001),
        ],
    )
    .unwrap();
    s.sip_bindings_replace(
        "bob",
        &[
            binding("bob", "sip:b@192.0.2.1", -1),
            binding("bob", "sip:b@192.0.2.2", i64::MAX),
        ],
    )
    .unwrap();
    // Expired at `now`: expires_at_ms <= now.
    assert_eq!(s.sip_bindings_purge_expired(1_000).unwrap(), 3);
    assert_eq!(
        contacts(&s.sip_bindings("alice").unwrap()),
        ["sip:a@192.0.2.3"]
    );
    assert_eq!(
        contacts(&s.sip_bindings("bob").unwrap()),
        ["sip:b@192.0.2.2"]
    );
    assert_eq!(s.sip_bindings_purge_expired(1_000).unwrap(), 0);
    assert_eq!(s.sip_bindings_purge_expired(1_001).unwrap(), 1);
    assert_eq!(s.sip_bindings_all().unwrap().len(), 1);
}

pub(super) fn sip_bindings_removed_with_account(s: &dyn Store) {
    users(s, &["alice", "bob"]);
    s.sip_bindings_replace("alice", &[full("alice", "sip:a@192.0.2.1")])
        .unwrap();
    s.sip_bindings_replace("bob", &[full("bob", "sip:b@192.0.2.1")])
        .unwrap();
    s.remove_user("alice").unwrap();
    assert!(matches!(
        s.sip_bindings("alice"),
        Err(StoreError::NoSuchUser(_))
    ));
    assert_eq!(
        contacts(&s.sip_bindings_all().unwrap()),
        ["sip:b@192.0.2.1"]
    );

    // A new account under the same name starts without bindings.
    users(s, &["alice"]);
    assert!(s.sip_bindings("alice").unwrap().is_empty());
    assert_eq!(s.sip_bindings("bob").unwrap().len(), 1);
}
