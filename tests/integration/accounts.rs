//! What an administrator does to live accounts and a running server: removing an
//! account, ending its sessions after a password change, reloading the configuration.

use herald_tests::TestServer;
use herald_translate::{ns, StreamError, StreamErrorCondition};

use crate::im::{expect_presence, online, roster_items, subscribe_mutually, ROSTER_GET};

#[tokio::test]
async fn removing_an_account_ends_its_sessions_and_takes_it_off_every_roster() {
    let ts = TestServer::start().await;
    for u in ["alice", "bob", "carol"] {
        ts.add_user(u);
    }
    let mut alice = online(&ts, "alice", "desk").await;
    let mut bob = online(&ts, "bob", "phone").await;
    subscribe_mutually(&mut alice, &mut bob).await;
    // carol is offline: bob's request waits for her as a pending subscription.
    bob.send("<presence to='carol@localhost' type='subscribe'/>")
        .await;
    bob.assert_alive().await;
    let store = ts.server.db.store();
    assert_eq!(store.pending_in_list("carol").expect("pending").len(), 1);
    // A message waiting for bob goes with the account.
    let offline_before = ts.server.metrics.offline_queue.get();

    let report = ts.server.remove_account("bob").await.expect("removed");
    assert_eq!(report.sessions_ended, 1);
    assert_eq!(
        report.rosters_updated, 2,
        "alice's roster and carol's request"
    );

    assert_eq!(bob.expect_stream_error().await, "not-authorized");
    // alice sees bob go, the subscriptions cancelled both ways, and the item removed.
    expect_presence(&mut alice, "bob@localhost/phone", Some("unavailable")).await;
    expect_presence(&mut alice, "bob@localhost", Some("unsubscribed")).await;
    expect_presence(&mut alice, "bob@localhost", Some("unsubscribe")).await;
    alice
        .recv_where("a roster push removing bob", |e| {
            e.is("iq", ns::CLIENT)
                && roster_items(e).iter().any(|i| {
                    i.attr("jid") == Some("bob@localhost")
                        && i.attr("subscription") == Some("remove")
                })
        })
        .await;
    let roster = alice.iq("get", None, ROSTER_GET).await;
    assert!(roster_items(&roster).is_empty(), "{roster:?}");

    assert!(!store.user_exists("bob").expect("lookup"));
    assert!(store.pending_in_list("carol").expect("pending").is_empty());
    assert!(store
        .roster_owners_of("bob@localhost")
        .expect("owners")
        .is_empty());
    assert_eq!(ts.server.metrics.offline_queue.get(), offline_before);
    assert!(!ts
        .server
        .router
        .is_online(&"bob@localhost".parse().expect("jid")));

    // The removed account cannot log in again, and removing it twice says so.
    let err = ts.server.remove_account("bob").await.expect_err("gone");
    assert!(err.to_string().contains("bob"), "{err}");
    alice.assert_alive().await;
}

#[tokio::test]
async fn removing_an_account_drops_its_offline_messages_from_the_gauge() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    ts.add_user("dave");
    let mut alice = ts.login("alice", "desk").await;
    for i in 0..3 {
        alice.send_message("dave@localhost", &format!("m{i}")).await;
    }
    alice.assert_alive().await;
    herald_tests::wait_until("three offline messages", || {
        ts.server.metrics.offline_queue.get() == 3
    })
    .await;
    let report = ts.server.remove_account("dave").await.expect("removed");
    assert_eq!(report.offline_deleted, 3);
    assert_eq!(report.sessions_ended, 0);
    assert_eq!(ts.server.metrics.offline_queue.get(), 0);
    // Messages to the removed account now bounce.
    alice.send_message("dave@localhost", "after").await;
    let bounce = alice
        .recv_where("a bounce", |e| e.attr("type") == Some("error"))
        .await;
    assert_eq!(bounce.attr("from"), Some("dave@localhost"));
}

#[tokio::test]
async fn ending_an_accounts_sessions_closes_every_resource_with_the_reason() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    ts.add_user("bob");
    let mut one = ts.login("alice", "one").await;
    let mut two = ts.login("alice", "two").await;
    let mut bob = ts.login("bob", "desk").await;
    let reset = StreamError::with_text(StreamErrorCondition::Reset, "the password was changed");
    assert_eq!(ts.server.end_account_sessions("alice", &reset).await, 2);
    assert_eq!(one.expect_stream_error().await, "reset");
    assert_eq!(two.expect_stream_error().await, "reset");
    bob.assert_alive().await;
    // A new login with the (unchanged) password works.
    let mut again = ts.login("alice", "three").await;
    again.assert_alive().await;
}

#[tokio::test]
async fn a_reload_changes_limits_for_new_sessions_and_keeps_the_old_ones() {
    let mut ts = TestServer::start().await;
    ts.add_user("alice");
    ts.add_user("bob");
    let mut old = ts.login("alice", "old").await;
    let mut bob = ts.login("bob", "desk").await;

    let restart = ts
        .reload(|c| c.c2s.max_stanza_bytes = 2048)
        .expect("reloaded");
    assert!(restart.is_empty(), "{restart:?}");
    assert_eq!(ts.server.settings().max_stanza_bytes, 2048);

    // The session from before the reload keeps its limits and its connection.
    let big = "b".repeat(3000);
    old.send_message("bob@localhost/desk", &big).await;
    bob.recv_message_with_body(&big).await;
    // A session opened after it gets the new limit.
    let mut new = ts.login("alice", "new").await;
    new.send_message("bob@localhost/desk", &big).await;
    assert_eq!(new.expect_stream_error().await, "policy-violation");
    old.assert_alive().await;

    // Listener changes are named, not applied.
    let restart = ts
        .reload(|c| c.c2s.listen = vec!["127.0.0.2:5222".parse().expect("address")])
        .expect("reloaded");
    assert_eq!(restart, ["c2s.listen"]);
}

#[tokio::test]
async fn a_reload_with_bad_certificates_changes_nothing() {
    let mut ts = TestServer::start().await;
    ts.add_user("alice");
    let missing = ts.data_dir.join("missing.pem");
    let err = ts
        .reload(|c| {
            c.c2s.max_stanza_bytes = 2048;
            c.tls.certificates = vec![herald_edge::config::CertificateConfig {
                cert: missing.clone(),
                key: missing.clone(),
            }];
        })
        .expect_err("the certificate does not exist");
    assert!(err.to_string().contains("missing.pem"), "{err}");
    assert_ne!(ts.server.settings().max_stanza_bytes, 2048);
    // TLS still works with the certificates from before.
    let mut c = ts.login("alice", "r").await;
    c.assert_alive().await;
}

/// `herald user remove` and `herald user passwd` beside a running server: the lock
/// says it runs, the admin API does the work, the sessions end.
#[tokio::test]
async fn the_account_commands_reach_the_running_server() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    ts.add_user("bob");
    let mut alice = online(&ts, "alice", "desk").await;
    let mut bob = online(&ts, "bob", "phone").await;
    subscribe_mutually(&mut alice, &mut bob).await;
    let config = ts.config.clone();
    let store = herald_edge::app::open_existing_store(&config).expect("the server's database");
    let removed = tokio::task::spawn_blocking(move || {
        herald_edge::ops::accounts::remove(&config, &store, "bob")
    })
    .await
    .expect("join")
    .expect("removed through the server");
    assert!(
        removed.starts_with("1 session(s) ended, left 1 other roster(s)"),
        "{removed}"
    );
    assert_eq!(bob.expect_stream_error().await, "not-authorized");
    expect_presence(&mut alice, "bob@localhost", Some("unsubscribed")).await;

    let config = ts.config.clone();
    let ended = tokio::task::spawn_blocking(move || {
        herald_edge::ops::accounts::end_sessions_after_password_change(&config, "alice@localhost")
    })
    .await
    .expect("join")
    .expect("ended through the server");
    assert_eq!(ended, 1);
    assert_eq!(alice.expect_stream_error().await, "reset");
}
