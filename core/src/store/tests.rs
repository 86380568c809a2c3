//! Store tests. The backend-independent suite is a set of functions taking
//! `&dyn Store` (each expects an empty store), run by [`suite!`] against a
//! `SqliteStore` on a file and in memory; a later backend adds one more
//! `suite!` invocation. SQLite-specific tests (two handles on one file, kill -9,
//! schema version) are in `sqlite_tests.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;

use herald_translate::digest::Algorithm as DigestAlgorithm;
use herald_translate::sasl::{ScramHash, ScramRecord};
use proptest::prelude::*;

use super::{
    AccountCredentials, OfflinePush, OfflineQuota, RosterItem, SipCredentials, SqliteStore, Store,
    StoreError, Subscription,
};

// ----- helpers -----

/// A fresh directory under the system temp dir, removed on drop.
pub(super) struct TempDir(PathBuf);

impl TempDir {
    pub(super) fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "herald-store-{}-{}-{:016x}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    /// A database path in a subdirectory that does not exist yet.
    pub(super) fn db(&self) -> PathBuf {
        self.0.join("data").join("herald.db")
    }

    pub(super) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) fn record(hash: ScramHash, seed: u8) -> ScramRecord {
    ScramRecord {
        hash,
        salt: vec![seed; 16],
        iterations: 4096 + u32::from(seed),
        stored_key: vec![seed.wrapping_add(1); 20],
        server_key: vec![seed.wrapping_add(2); 32],
    }
}

/// SCRAM-SHA-1 and SCRAM-SHA-256 records, no SIP credentials.
pub(super) fn creds(seed: u8) -> AccountCredentials {
    scram(vec![
        record(ScramHash::Sha1, seed),
        record(ScramHash::Sha256, seed),
    ])
}

pub(super) fn scram(records: Vec<ScramRecord>) -> AccountCredentials {
    records.into()
}

/// No credentials at all.
pub(super) fn none() -> AccountCredentials {
    AccountCredentials::default()
}

/// A fake HA1 (the store does not look inside): `seed` repeated, as hex.
fn fake_ha1(algorithm: DigestAlgorithm, seed: u8) -> String {
    let len = if algorithm == DigestAlgorithm::Md5 {
        16
    } else {
        32
    };
    format!("{seed:02x}").repeat(len)
}

/// [`creds`] plus SIP credentials for `realm` (MD5 and SHA-256).
pub(super) fn with_sip(seed: u8, realm: &str) -> AccountCredentials {
    AccountCredentials {
        sip: Some(SipCredentials {
            realm: realm.to_owned(),
            ha1: [DigestAlgorithm::Md5, DigestAlgorithm::Sha256]
                .into_iter()
                .map(|a| (a, fake_ha1(a, seed)))
                .collect(),
        }),
        ..creds(seed)
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

pub(super) fn item(jid: &str, sub: Subscription, groups: &[&str]) -> RosterItem {
    RosterItem {
        subscription: sub,
        groups: strings(groups),
        ..RosterItem::new(jid)
    }
}

#[track_caller]
fn assert_no_such_user<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    assert!(
        matches!(r, Err(StoreError::NoSuchUser(ref u)) if u == "ghost"),
        "{r:?}"
    );
}

// ----- backend-independent suite -----

fn accounts(s: &dyn Store) {
    assert_eq!(s.list_users().unwrap(), Vec::<String>::new());
    assert!(!s.user_exists("alice").unwrap());
    s.create_user("zed", &creds(1)).unwrap();
    s.create_user("alice", &creds(2)).unwrap();
    s.create_user("ämil", &scram(vec![record(ScramHash::Sha256, 3)]))
        .unwrap();
    s.create_user("nocreds", &none()).unwrap();
    assert!(s.user_exists("alice").unwrap());
    assert!(!s.user_exists("Alice").unwrap());
    let mut expected = strings(&["zed", "alice", "ämil", "nocreds"]);
    expected.sort();
    assert_eq!(s.list_users().unwrap(), expected);

    assert!(matches!(
        s.create_user("alice", &creds(9)),
        Err(StoreError::UserExists(ref u)) if u == "alice"
    ));
    // The failed create changed nothing.
    assert_eq!(
        s.credentials("alice", ScramHash::Sha1).unwrap(),
        Some(record(ScramHash::Sha1, 2))
    );
    assert_eq!(
        s.credentials("alice", ScramHash::Sha256).unwrap(),
        Some(record(ScramHash::Sha256, 2))
    );
    assert_eq!(s.credentials("ämil", ScramHash::Sha1).unwrap(), None);
    assert_eq!(
        s.credentials("ämil", ScramHash::Sha256).unwrap(),
        Some(record(ScramHash::Sha256, 3))
    );
    assert_eq!(s.credentials("nocreds", ScramHash::Sha256).unwrap(), None);
    assert_no_such_user(s.credentials("ghost", ScramHash::Sha1));

    // A later record for the same hash wins.
    s.create_user(
        "twice",
        &scram(vec![record(ScramHash::Sha1, 4), record(ScramHash::Sha1, 5)]),
    )
    .unwrap();
    assert_eq!(
        s.credentials("twice", ScramHash::Sha1).unwrap(),
        Some(record(ScramHash::Sha1, 5))
    );
}

fn set_credentials(s: &dyn Store) {
    s.create_user("alice", &creds(1)).unwrap();
    s.set_credentials("alice", &scram(vec![record(ScramHash::Sha256, 7)]))
        .unwrap();
    assert_eq!(s.credentials("alice", ScramHash::Sha1).unwrap(), None);
    assert_eq!(
        s.credentials("alice", ScramHash::Sha256).unwrap(),
        Some(record(ScramHash::Sha256, 7))
    );
    s.set_credentials("alice", &creds(8)).unwrap();
    assert_eq!(
        s.credentials("alice", ScramHash::Sha1).unwrap(),
        Some(record(ScramHash::Sha1, 8))
    );
    assert_no_such_user(s.set_credentials("ghost", &creds(1)));
    assert!(!s.user_exists("ghost").unwrap());
}

fn sip_credentials(s: &dyn Store) {
    use DigestAlgorithm::{Md5, Md5Sess, Sha256, Sha256Sess, Sha512_256};
    const REALM: &str = "herald.example";
    // Round trip, created together with the SCRAM records.
    s.create_user("alice", &with_sip(1, REALM)).unwrap();
    assert_eq!(
        s.sip_credentials("alice", REALM, Md5).unwrap(),
        Some(fake_ha1(Md5, 1))
    );
    assert_eq!(
        s.sip_credentials("alice", REALM, Sha256).unwrap(),
        Some(fake_ha1(Sha256, 1))
    );
    assert_eq!(
        s.credentials("alice", ScramHash::Sha256).unwrap(),
        Some(record(ScramHash::Sha256, 1))
    );
    // A -sess algorithm uses the stored HA1 of its base; one never stored is None.
    assert_eq!(
        s.sip_credentials("alice", REALM, Sha256Sess).unwrap(),
        Some(fake_ha1(Sha256, 1))
    );
    assert_eq!(
        s.sip_credentials("alice", REALM, Md5Sess).unwrap(),
        Some(fake_ha1(Md5, 1))
    );
    assert_eq!(s.sip_credentials("alice", REALM, Sha512_256).unwrap(), None);
    // Realm-specific.
    assert_eq!(
        s.sip_credentials("alice", "other.example", Md5).unwrap(),
        None
    );
    // An account without any (created before SIP credentials, or from SCRAM hashes).
    s.create_user("bob", &creds(2)).unwrap();
    assert_eq!(s.sip_credentials("bob", REALM, Sha256).unwrap(), None);
    assert_no_such_user(s.sip_credentials("ghost", REALM, Md5));

    // A password change replaces them, those of another realm included.
    s.set_credentials("alice", &with_sip(3, "other.example"))
        .unwrap();
    assert_eq!(s.sip_credentials("alice", REALM, Md5).unwrap(), None);
    assert_eq!(
        s.sip_credentials("alice", "other.example", Sha256).unwrap(),
        Some(fake_ha1(Sha256, 3))
    );
    s.set_credentials("alice", &with_sip(4, REALM)).unwrap();
    assert_eq!(
        s.sip_credentials("alice", REALM, Md5).unwrap(),
        Some(fake_ha1(Md5, 4))
    );
    assert_eq!(
        s.sip_credentials("alice", "other.example", Sha256).unwrap(),
        None
    );
    // Credentials without SIP ones leave none behind.
    s.set_credentials("alice", &creds(5)).unwrap();
    assert_eq!(s.sip_credentials("alice", REALM, Md5).unwrap(), None);
    // Setting them on an account that had none.
    s.set_credentials("bob", &with_sip(6, REALM)).unwrap();
    assert_eq!(
        s.sip_credentials("bob", REALM, Sha256).unwrap(),
        Some(fake_ha1(Sha256, 6))
    );
    assert_no_such_user(s.set_credentials("ghost", &with_sip(1, REALM)));

    // A later entry for the same algorithm wins.
    let mut twice = with_sip(7, REALM);
    if let Some(sip) = &mut twice.sip {
        sip.ha1.push((Md5, fake_ha1(Md5, 8)));
    }
    s.create_user("carol", &twice).unwrap();
    assert_eq!(
        s.sip_credentials("carol", REALM, Md5).unwrap(),
        Some(fake_ha1(Md5, 8))
    );
    // A failed create changes nothing.
    assert!(matches!(
        s.create_user("bob", &with_sip(9, REALM)),
        Err(StoreError::UserExists(_))
    ));
    assert_eq!(
        s.sip_credentials("bob", REALM, Sha256).unwrap(),
        Some(fake_ha1(Sha256, 6))
    );

    // They go with the account, and a new account under the name starts without.
    s.remove_user("bob").unwrap();
    assert_no_such_user(s.sip_credentials("ghost", REALM, Md5));
    assert!(matches!(
        s.sip_credentials("bob", REALM, Md5),
        Err(StoreError::NoSuchUser(_))
    ));
    s.create_user("bob", &none()).unwrap();
    assert_eq!(s.sip_credentials("bob", REALM, Sha256).unwrap(), None);

    // Bulk creation stores them too.
    let users = vec![
        ("dave".to_owned(), with_sip(10, REALM)),
        ("erin".to_owned(), creds(11)),
    ];
    assert!(s.create_users(&users).unwrap().iter().all(Result::is_ok));
    assert_eq!(
        s.sip_credentials("dave", REALM, Sha256).unwrap(),
        Some(fake_ha1(Sha256, 10))
    );
    assert_eq!(s.sip_credentials("erin", REALM, Sha256).unwrap(), None);
}

/// Concurrent creates with SIP credentials, one name taken by all of them: exactly one
/// wins, and the winner's SIP credentials are the ones stored.
fn sip_credentials_concurrent_creates(s: &dyn Store) {
    const REALM: &str = "herald.example";
    let results: Vec<(u8, bool)> = thread::scope(|scope| {
        let handles: Vec<_> = (1..=8u8)
            .map(|seed| {
                scope.spawn(move || {
                    let own = format!("user{seed}");
                    s.create_user(&own, &with_sip(seed, REALM)).unwrap();
                    (
                        seed,
                        s.create_user("shared", &with_sip(seed, REALM)).is_ok(),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners: Vec<u8> = results.iter().filter(|r| r.1).map(|r| r.0).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for seed in 1..=8u8 {
        assert_eq!(
            s.sip_credentials(&format!("user{seed}"), REALM, DigestAlgorithm::Md5)
                .unwrap(),
            Some(fake_ha1(DigestAlgorithm::Md5, seed))
        );
    }
    assert_eq!(
        s.sip_credentials("shared", REALM, DigestAlgorithm::Sha256)
            .unwrap(),
        Some(fake_ha1(DigestAlgorithm::Sha256, winners[0]))
    );
}

fn remove_user_cascades(s: &dyn Store) {
    for user in ["alice", "bob"] {
        s.create_user(user, &creds(1)).unwrap();
        s.roster_put(
            user,
            &item("carol@example.org", Subscription::Both, &["Friends"]),
        )
        .unwrap();
        s.pending_in_put(user, "dave@example.org", "<presence type='subscribe'/>")
            .unwrap();
        assert_eq!(
            s.offline_push(user, "<message/>", OfflineQuota::messages(10))
                .unwrap(),
            OfflinePush::Stored
        );
        s.block(user, &strings(&["spam.example"])).unwrap();
    }
    assert_eq!(s.offline_total().unwrap(), 2);

    s.remove_user("alice").unwrap();
    assert!(!s.user_exists("alice").unwrap());
    assert_eq!(s.list_users().unwrap(), strings(&["bob"]));
    assert_eq!(s.offline_total().unwrap(), 1);
    assert!(matches!(
        s.remove_user("alice"),
        Err(StoreError::NoSuchUser(_))
    ));
    assert_no_such_user(s.remove_user("ghost"));

    // A new account under the same name starts empty.
    s.create_user("alice", &none()).unwrap();
    assert_eq!(s.roster("alice").unwrap(), (0, vec![]));
    assert_eq!(s.roster_len("alice").unwrap(), 0);
    assert!(s.pending_in_list("alice").unwrap().is_empty());
    assert!(s.offline_list("alice").unwrap().is_empty());
    assert!(s.blocklist("alice").unwrap().is_empty());
    assert_eq!(s.credentials("alice", ScramHash::Sha1).unwrap(), None);

    // Bob is untouched.
    assert_eq!(s.roster_len("bob").unwrap(), 1);
    assert_eq!(s.pending_in_list("bob").unwrap().len(), 1);
    assert_eq!(s.offline_count("bob").unwrap(), 1);
    assert_eq!(s.blocklist("bob").unwrap(), strings(&["spam.example"]));
    assert!(s.credentials("bob", ScramHash::Sha256).unwrap().is_some());
}

fn bulk_create(s: &dyn Store) {
    s.create_user("u0600", &creds(1)).unwrap();
    let mut users: Vec<(String, AccountCredentials)> =
        (0..1200).map(|i| (format!("u{i:04}"), creds(2))).collect();
    users.insert(900, ("u0010".to_owned(), creds(3))); // repeated within the input
    let results = s.create_users(&users).unwrap();
    assert_eq!(results.len(), users.len());
    for (i, ((name, _), r)) in users.iter().zip(&results).enumerate() {
        if i == 600 || i == 900 {
            assert!(
                matches!(r, Err(StoreError::UserExists(u)) if u == name),
                "entry {i}: {r:?}"
            );
        } else {
            assert!(r.is_ok(), "entry {i}: {r:?}");
        }
    }
    assert_eq!(s.list_users().unwrap().len(), 1200);
    // The pre-existing user and the first u0010 keep their credentials.
    assert_eq!(
        s.credentials("u0600", ScramHash::Sha1).unwrap(),
        Some(record(ScramHash::Sha1, 1))
    );
    assert_eq!(
        s.credentials("u0010", ScramHash::Sha256).unwrap(),
        Some(record(ScramHash::Sha256, 2))
    );
    assert_eq!(
        s.credentials("u1199", ScramHash::Sha256).unwrap(),
        Some(record(ScramHash::Sha256, 2))
    );
    assert!(s.create_users(&[]).unwrap().is_empty());
}

fn roster(s: &dyn Store) {
    s.create_user("alice", &none()).unwrap();
    assert_eq!(s.roster("alice").unwrap(), (0, vec![]));
    assert_eq!(s.roster_version("alice").unwrap(), 0);
    assert_eq!(s.roster_item("alice", "bob@example.org").unwrap(), None);

    let mut bob = RosterItem {
        name: Some("Bob".to_owned()),
        ask: true,
        ..item(
            "bob@example.org",
            Subscription::None,
            &["Work", "Friends", "Work"],
        )
    };
    assert_eq!(s.roster_put("alice", &bob).unwrap(), 1);
    let carol = RosterItem {
        approved: true,
        ..item("carol@example.net", Subscription::From, &[])
    };
    assert_eq!(s.roster_put("alice", &carol).unwrap(), 2);
    let aaron = item("aaron@example.com", Subscription::Both, &["Ünïcode ✓", ""]);
    assert_eq!(s.roster_put("alice", &aaron).unwrap(), 3);

    // Duplicate groups are dropped, first occurrence kept.
    let stored_bob = RosterItem {
        groups: strings(&["Work", "Friends"]),
        ..bob.clone()
    };
    assert_eq!(
        s.roster_item("alice", "bob@example.org").unwrap(),
        Some(stored_bob.clone())
    );
    assert_eq!(
        s.roster_item("alice", "carol@example.net").unwrap(),
        Some(carol.clone())
    );
    assert_eq!(
        s.roster("alice").unwrap(),
        (3, vec![aaron.clone(), stored_bob, carol.clone()])
    );
    assert_eq!(s.roster_len("alice").unwrap(), 3);

    // Replace: every field and the groups change; the count does not.
    bob = RosterItem {
        name: None,
        subscription: Subscription::To,
        ask: false,
        approved: true,
        groups: strings(&["Family"]),
        jid: bob.jid,
    };
    assert_eq!(s.roster_put("alice", &bob).unwrap(), 4);
    assert_eq!(
        s.roster_item("alice", "bob@example.org").unwrap(),
        Some(bob.clone())
    );
    assert_eq!(s.roster_len("alice").unwrap(), 3);
    // An identical put still bumps the version.
    assert_eq!(s.roster_put("alice", &bob).unwrap(), 5);

    assert_eq!(
        s.roster_remove("alice", "aaron@example.com").unwrap(),
        Some(6)
    );
    assert_eq!(s.roster_remove("alice", "aaron@example.com").unwrap(), None);
    assert_eq!(s.roster_version("alice").unwrap(), 6);
    assert_eq!(s.roster("alice").unwrap(), (6, vec![bob.clone(), carol]));
    // Re-adding a removed item does not resurrect its old groups.
    let bare_aaron = item("aaron@example.com", Subscription::None, &[]);
    assert_eq!(s.roster_put("alice", &bare_aaron).unwrap(), 7);
    assert_eq!(
        s.roster_item("alice", "aaron@example.com").unwrap(),
        Some(bare_aaron)
    );

    // Rosters are per user.
    s.create_user("bob", &none()).unwrap();
    assert_eq!(s.roster("bob").unwrap(), (0, vec![]));
    assert_eq!(s.roster_remove("bob", "bob@example.org").unwrap(), None);
    assert_eq!(s.roster_version("alice").unwrap(), 7);

    assert_no_such_user(s.roster("ghost"));
    assert_no_such_user(s.roster_version("ghost"));
    assert_no_such_user(s.roster_item("ghost", "bob@example.org"));
    assert_no_such_user(s.roster_put("ghost", &bob));
    assert_no_such_user(s.roster_remove("ghost", "bob@example.org"));
    assert_no_such_user(s.roster_len("ghost"));
}

fn pending_in(s: &dyn Store) {
    s.create_user("alice", &none()).unwrap();
    assert!(s.pending_in_list("alice").unwrap().is_empty());
    s.pending_in_put(
        "alice",
        "dave@example.org",
        "<presence from='dave' type='subscribe'/>",
    )
    .unwrap();
    s.pending_in_put(
        "alice",
        "bob@example.org",
        "<presence type='subscribe'><status>hi</status></presence>",
    )
    .unwrap();
    // Replace.
    s.pending_in_put(
        "alice",
        "dave@example.org",
        "<presence type='subscribe'><status>again</status></presence>",
    )
    .unwrap();
    assert_eq!(
        s.pending_in_list("alice").unwrap(),
        vec![
            (
                "bob@example.org".to_owned(),
                "<presence type='subscribe'><status>hi</status></presence>".to_owned()
            ),
            (
                "dave@example.org".to_owned(),
                "<presence type='subscribe'><status>again</status></presence>".to_owned()
            ),
        ]
    );
    assert!(s.pending_in_remove("alice", "dave@example.org").unwrap());
    assert!(!s.pending_in_remove("alice", "dave@example.org").unwrap());
    assert_eq!(s.pending_in_list("alice").unwrap().len(), 1);
    // Pending requests do not touch the roster.
    assert_eq!(s.roster_version("alice").unwrap(), 0);

    assert_no_such_user(s.pending_in_put("ghost", "a@b", "<presence/>"));
    assert_no_such_user(s.pending_in_remove("ghost", "a@b"));
    assert_no_such_user(s.pending_in_list("ghost"));
}

fn roster_owners_of(s: &dyn Store) {
    for u in ["alice", "bob", "carol", "dave"] {
        s.create_user(u, &none()).unwrap();
    }
    let eve = "eve@example.org";
    s.roster_put("bob", &item(eve, Subscription::Both, &["friends"]))
        .unwrap();
    s.roster_put("alice", &item(eve, Subscription::None, &[]))
        .unwrap();
    s.roster_put("carol", &item("eve@example.com", Subscription::To, &[]))
        .unwrap();
    s.pending_in_put("dave", eve, "<presence type='subscribe'/>")
        .unwrap();
    s.pending_in_put("alice", eve, "<presence type='subscribe'/>")
        .unwrap();
    // Sorted, each owner once, exact JID match only.
    assert_eq!(
        s.roster_owners_of(eve).unwrap(),
        strings(&["alice", "bob", "dave"])
    );
    assert!(s.roster_owners_of("nobody@example.org").unwrap().is_empty());
    // The owner's own removal takes it off the list.
    s.remove_user("bob").unwrap();
    assert_eq!(
        s.roster_owners_of(eve).unwrap(),
        strings(&["alice", "dave"])
    );
}

fn blocklist(s: &dyn Store) {
    s.create_user("alice", &none()).unwrap();
    s.create_user("bob", &none()).unwrap();
    assert!(s.blocklist("alice").unwrap().is_empty());
    s.block(
        "alice",
        &strings(&["spam.example", "eve@example.org", "eve@example.org/res"]),
    )
    .unwrap();
    // Idempotent, also within one call.
    s.block(
        "alice",
        &strings(&["eve@example.org", "eve@example.org", "mallory@example.org"]),
    )
    .unwrap();
    s.block("alice", &[]).unwrap();
    s.block("bob", &strings(&["eve@example.org"])).unwrap();
    assert_eq!(
        s.blocklist("alice").unwrap(),
        strings(&[
            "eve@example.org",
            "eve@example.org/res",
            "mallory@example.org",
            "spam.example"
        ])
    );

    s.unblock("alice", &strings(&["eve@example.org", "never@blocked"]))
        .unwrap();
    assert_eq!(
        s.blocklist("alice").unwrap(),
        strings(&["eve@example.org/res", "mallory@example.org", "spam.example"])
    );
    // Empty slice: unblock all, of this user only.
    s.unblock("alice", &[]).unwrap();
    assert!(s.blocklist("alice").unwrap().is_empty());
    assert_eq!(s.blocklist("bob").unwrap(), strings(&["eve@example.org"]));
    s.unblock("alice", &[]).unwrap();

    assert_no_such_user(s.blocklist("ghost"));
    assert_no_such_user(s.block("ghost", &strings(&["a@b"])));
    assert_no_such_user(s.unblock("ghost", &[]));
}

mod offline;
mod roster_model;
pub(super) mod sip_bindings;
use offline::*;
use sip_bindings::*;

/// Runs every suite function against fresh SQLite stores.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite_file {
            $(
                #[test]
                fn $name() {
                    let dir = super::TempDir::new();
                    let store = super::SqliteStore::open(&dir.db()).expect("open");
                    super::$name(&store);
                }
            )*
        }
        mod sqlite_memory {
            $(
                #[test]
                fn $name() {
                    let store = super::SqliteStore::open_in_memory().expect("open");
                    super::$name(&store);
                }
            )*
        }
    };
}

suite!(
    accounts,
    set_credentials,
    sip_credentials,
    sip_credentials_concurrent_creates,
    remove_user_cascades,
    bulk_create,
    roster,
    pending_in,
    roster_owners_of,
    offline,
    offline_quota_concurrent,
    offline_quota_bytes,
    offline_claims,
    offline_claims_concurrent,
    blocklist,
    sip_bindings_round_trip,
    sip_bindings_replace,
    sip_bindings_purge,
    sip_bindings_removed_with_account,
);

// ----- types -----

#[test]
fn subscription_strings() {
    for sub in [
        Subscription::None,
        Subscription::To,
        Subscription::From,
        Subscription::Both,
    ] {
        assert_eq!(Subscription::parse(sub.as_str()), Some(sub));
    }
    assert_eq!(Subscription::Both.as_str(), "both");
    assert_eq!(Subscription::parse("remove"), None);
    assert_eq!(Subscription::parse("Both"), None);
}

#[test]
fn store_is_object_safe() {
    let store: std::sync::Arc<dyn Store> =
        std::sync::Arc::new(SqliteStore::open_in_memory().unwrap());
    let handle = store.clone();
    thread::spawn(move || handle.create_user("alice", &none()).unwrap())
        .join()
        .unwrap();
    assert!(store.user_exists("alice").unwrap());
}
