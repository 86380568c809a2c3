//! The offline-message part of the store suite: quotas by count and bytes, exclusive
//! claims, release, deletion counts.

use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;

use super::super::{AccountCredentials, ClaimLimit, OfflinePush, OfflineQuota, Store};
use super::assert_no_such_user;

pub(super) fn offline(s: &dyn Store) {
    s.create_user("alice", &AccountCredentials::default())
        .unwrap();
    s.create_user("bob", &AccountCredentials::default())
        .unwrap();
    assert_eq!(s.offline_total().unwrap(), 0);
    assert!(s.offline_list("alice").unwrap().is_empty());

    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let before = i64::try_from(before).unwrap();
    for i in 0..3 {
        let push = s
            .offline_push(
                "alice",
                &format!("<message id='{i}'/>"),
                OfflineQuota::messages(3),
            )
            .unwrap();
        assert_eq!(push, OfflinePush::Stored, "message {i}");
    }
    // Exactly at the limit: refused and not stored.
    assert_eq!(
        s.offline_push("alice", "<message id='x'/>", OfflineQuota::messages(3))
            .unwrap(),
        OfflinePush::QuotaExceeded
    );
    assert_eq!(s.offline_count("alice").unwrap(), 3);
    // A larger quota admits more; a zero quota admits nothing.
    assert_eq!(
        s.offline_push("alice", "<message id='3'/>", OfflineQuota::messages(4))
            .unwrap(),
        OfflinePush::Stored
    );
    assert_eq!(
        s.offline_push("bob", "<message/>", OfflineQuota::messages(0))
            .unwrap(),
        OfflinePush::QuotaExceeded
    );
    assert_eq!(
        s.offline_push("bob", "<message id='b'/>", OfflineQuota::messages(1))
            .unwrap(),
        OfflinePush::Stored
    );
    assert_eq!(s.offline_total().unwrap(), 5);

    let list = s.offline_list("alice").unwrap();
    let stanzas: Vec<&str> = list.iter().map(|m| m.stanza.as_str()).collect();
    assert_eq!(
        stanzas,
        [
            "<message id='0'/>",
            "<message id='1'/>",
            "<message id='2'/>",
            "<message id='3'/>"
        ]
    );
    assert!(list.windows(2).all(|w| w[0].id < w[1].id));
    assert!(list.iter().all(|m| m.stored_at_unix_ms >= before));

    // Ids of another user are ignored; unknown ids are ignored.
    let bob_id = s.offline_list("bob").unwrap()[0].id;
    s.offline_delete("alice", &[bob_id, -1, i64::MAX]).unwrap();
    assert_eq!(s.offline_count("bob").unwrap(), 1);
    assert_eq!(s.offline_count("alice").unwrap(), 4);

    s.offline_delete("alice", &[list[0].id, list[2].id])
        .unwrap();
    let rest = s.offline_list("alice").unwrap();
    assert_eq!(rest, vec![list[1].clone(), list[3].clone()]);
    s.offline_delete("alice", &[]).unwrap();
    assert_eq!(s.offline_count("alice").unwrap(), 2);
    assert_eq!(s.offline_total().unwrap(), 3);

    // Ids are never reused.
    let max = rest.iter().map(|m| m.id).max().unwrap();
    s.offline_delete("alice", &[rest[1].id]).unwrap();
    s.offline_push("alice", "<message id='new'/>", OfflineQuota::messages(10))
        .unwrap();
    let newest = s.offline_list("alice").unwrap().pop().unwrap();
    assert_eq!(newest.stanza, "<message id='new'/>");
    assert!(newest.id > max.max(bob_id));

    assert_no_such_user(s.offline_push("ghost", "<message/>", OfflineQuota::messages(10)));
    assert_no_such_user(s.offline_list("ghost"));
    assert_no_such_user(s.offline_delete("ghost", &[1]));
    assert_no_such_user(s.offline_count("ghost"));
}

/// The quota holds when many threads push at once through one store.
pub(super) fn offline_quota_concurrent(s: &dyn Store) {
    s.create_user("alice", &AccountCredentials::default())
        .unwrap();
    let stored = AtomicU32::new(0);
    thread::scope(|scope| {
        for t in 0..4 {
            let stored = &stored;
            scope.spawn(move || {
                for i in 0..10 {
                    let stanza = format!("<message id='{t}-{i}'/>");
                    if s.offline_push("alice", &stanza, OfflineQuota::messages(25))
                        .unwrap()
                        == OfflinePush::Stored
                    {
                        stored.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(stored.load(Ordering::Relaxed), 25);
    assert_eq!(s.offline_count("alice").unwrap(), 25);
}

/// The byte bound holds next to the count bound.
pub(super) fn offline_quota_bytes(s: &dyn Store) {
    s.create_user("alice", &AccountCredentials::default())
        .unwrap();
    let quota = OfflineQuota {
        messages: 100,
        bytes: 25,
    };
    let ten = "<m>123</m>"; // 10 bytes
    assert_eq!(
        s.offline_push("alice", ten, quota).unwrap(),
        OfflinePush::Stored
    );
    assert_eq!(
        s.offline_push("alice", ten, quota).unwrap(),
        OfflinePush::Stored
    );
    // 20 stored + 10 > 25.
    assert_eq!(
        s.offline_push("alice", ten, quota).unwrap(),
        OfflinePush::QuotaExceeded
    );
    assert_eq!(
        s.offline_push("alice", "<m/>", quota).unwrap(),
        OfflinePush::Stored
    );
    assert_eq!(s.offline_count("alice").unwrap(), 3);
    // A single message over the whole quota is never stored.
    s.create_user("bob", &AccountCredentials::default())
        .unwrap();
    let big = "x".repeat(26);
    assert_eq!(
        s.offline_push("bob", &big, quota).unwrap(),
        OfflinePush::QuotaExceeded
    );
}

/// Claims: a message is handed to exactly one claim; released messages come back;
/// deletes report what they removed.
pub(super) fn offline_claims(s: &dyn Store) {
    s.create_user("alice", &AccountCredentials::default())
        .unwrap();
    let q = OfflineQuota::messages(100);
    for i in 0..10 {
        s.offline_push("alice", &format!("<message id='{i}'/>"), q)
            .unwrap();
    }
    let page = |n| ClaimLimit {
        messages: n,
        bytes: usize::MAX,
    };
    let a = s.offline_claim("alice", 1, page(4)).unwrap();
    let b = s.offline_claim("alice", 2, page(4)).unwrap();
    let c = s.offline_claim("alice", 3, page(4)).unwrap();
    assert_eq!((a.len(), b.len(), c.len()), (4, 4, 2));
    let mut ids: Vec<i64> = a.iter().chain(&b).chain(&c).map(|m| m.id).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "oldest first, no repeats"
    );
    assert!(s.offline_claim("alice", 4, page(4)).unwrap().is_empty());
    // Claimed messages are still stored.
    assert_eq!(s.offline_count("alice").unwrap(), 10);
    // Claim 2 gives up: its messages go back, oldest first again.
    assert_eq!(s.offline_release("alice", 2).unwrap(), 4);
    let again = s.offline_claim("alice", 5, page(10)).unwrap();
    assert_eq!(
        again.iter().map(|m| m.id).collect::<Vec<_>>(),
        b.iter().map(|m| m.id).collect::<Vec<_>>()
    );
    // Deleting twice counts once.
    let first: Vec<i64> = a.iter().map(|m| m.id).collect();
    assert_eq!(s.offline_delete("alice", &first).unwrap(), 4);
    assert_eq!(s.offline_delete("alice", &first).unwrap(), 0);
    assert_eq!(s.offline_count("alice").unwrap(), 6);
    // A restart voids every claim.
    assert_eq!(s.offline_release_all().unwrap(), 6);
    ids = s
        .offline_claim("alice", 6, page(100))
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids.len(), 6);
    // The byte limit cuts a page, but the first message is always taken.
    s.offline_release_all().unwrap();
    let tiny = ClaimLimit {
        messages: 100,
        bytes: 1,
    };
    assert_eq!(s.offline_claim("alice", 7, tiny).unwrap().len(), 1);
    assert_no_such_user(s.offline_claim("ghost", 1, page(1)));
    assert_no_such_user(s.offline_release("ghost", 1));
}

/// Concurrent claims from several threads never hand out a message twice.
pub(super) fn offline_claims_concurrent(s: &dyn Store) {
    s.create_user("alice", &AccountCredentials::default())
        .unwrap();
    for i in 0..200 {
        s.offline_push(
            "alice",
            &format!("<m i='{i}'/>"),
            OfflineQuota::messages(1000),
        )
        .unwrap();
    }
    let got = std::sync::Mutex::new(Vec::new());
    thread::scope(|scope| {
        for t in 0..4 {
            let got = &got;
            scope.spawn(move || loop {
                let limit = ClaimLimit {
                    messages: 7,
                    bytes: usize::MAX,
                };
                let page = s.offline_claim("alice", t, limit).unwrap();
                if page.is_empty() {
                    break;
                }
                got.lock().unwrap().extend(page.into_iter().map(|m| m.id));
            });
        }
    });
    let mut ids = got.into_inner().unwrap();
    ids.sort_unstable();
    let n = ids.len();
    ids.dedup();
    assert_eq!((n, ids.len()), (200, 200));
}
