//! What limits SIP digest authentication: failed attempts share the per-account and
//! per-address budgets of XMPP logins, and the HA1 cache never lets a password set
//! again, or an account removed, be judged by what it cached before.

use herald_tests::sip_client::{code, reason, sip_server, text, SipTransport};
use herald_tests::{Mechanism, PASSWORD};

#[tokio::test]
async fn failed_digest_attempts_block_the_account_for_sip_and_xmpp() {
    let ts = sip_server(|c| {
        c.c2s.auth_failures_per_account_burst = 2;
        c.c2s.auth_failures_per_account_per_min = 1;
        c.c2s.auth_block_account_secs = 60;
    })
    .await;
    let mut c = ts.sip_client("alice", SipTransport::Udp).await;
    c.password = "wrong".to_owned();
    for attempt in 0..3 {
        let r = c.register(300).await;
        assert_eq!(code(&r), 401, "attempt {attempt}: {}", text(&r));
    }
    // Blocked now: even the right password is refused, with a 403 saying why.
    c.password = PASSWORD.to_owned();
    let r = c.register(300).await;
    assert_eq!(code(&r), 403, "{}", text(&r));
    let reason = reason(&r);
    assert!(reason.contains("too many failed"), "{reason}");
    // The same budget holds for XMPP logins of the account...
    let (mut x, _) = ts.connect_tls().await;
    let outcome = x
        .authenticate(Mechanism::ScramSha256, "alice", PASSWORD)
        .await;
    assert_eq!(outcome, Err("temporary-auth-failure".to_string()));
    // ...and other accounts are not affected.
    let mut bob = ts.sip_client("bob", SipTransport::Udp).await;
    bob.register_ok(300).await;
    let metrics = ts.server.metrics.render();
    assert!(
        metrics.contains("herald_auth_blocks_total{scope=\"account\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("herald_auth_throttled_total{scope=\"account\"} 2"),
        "the SIP and the XMPP refusal: {metrics}"
    );
}

#[tokio::test]
async fn a_failing_address_is_blocked_for_every_account() {
    let ts = sip_server(|c| {
        c.c2s.auth_failures_per_ip_burst = 3;
        c.c2s.auth_failures_per_ip_per_min = 1;
    })
    .await;
    for user in ["alice", "bob", "carol", "ghost"] {
        let mut c = ts.sip_client(user, SipTransport::Tcp).await;
        c.password = "wrong".to_owned();
        let r = c.register(300).await;
        assert_eq!(code(&r), 401, "{user}: {}", text(&r));
    }
    let mut c = ts.sip_client("bob", SipTransport::Tcp).await;
    let r = c.register(300).await;
    assert_eq!(code(&r), 403, "{}", text(&r));
}

#[tokio::test]
async fn a_password_set_while_running_counts_at_once_and_a_removed_account_at_once() {
    let ts = sip_server(|_| {}).await;
    let mut c = ts.sip_client("alice", SipTransport::Udp).await;
    // The first REGISTER reads the HA1 from the store and caches it.
    c.register_ok(300).await;
    // Another process (`herald user passwd`) sets a new password in the same store.
    herald_core::accounts::set_password(
        &**ts.server.db.store(),
        "alice",
        "new-secret",
        "localhost",
    )
    .expect("password set");
    c.password = "new-secret".to_owned();
    c.register_ok(300).await;
    c.password = PASSWORD.to_owned();
    let r = c.register(300).await;
    assert_eq!(
        code(&r),
        401,
        "the old password no longer works: {}",
        text(&r)
    );
    // Removed through this server: its cached credential goes with it.
    c.password = "new-secret".to_owned();
    ts.server.remove_account("alice").await.expect("removed");
    let r = c.register(300).await;
    assert_eq!(code(&r), 401, "a removed account: {}", text(&r));
}
