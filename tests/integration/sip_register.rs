//! SIP REGISTER with digest authentication over real UDP, TCP and TLS sockets: the
//! challenges (MD5 first, then SHA-256), the 200 with the binding, and the refusals
//! (wrong password, a replayed nonce count, an expired nonce, an account without SIP
//! credentials).

use herald_tests::sip_client::{
    challenge_of, challenges, code, header, headers, reason, sip_server, text, token, SipClient,
    SipTransport,
};
use herald_tests::PASSWORD;
use herald_translate::digest::{Algorithm, NonceConfig, NonceManager};

/// One REGISTER exchange by hand: the first attempt without credentials, returning
/// the 401.
async fn unauthenticated_register(
    c: &mut SipClient,
    call_id: &str,
) -> herald_translate::sip::Message {
    let aor = c.aor();
    c.transact(
        "REGISTER",
        "sip:localhost",
        &format!("<{aor}>"),
        call_id,
        &token("f"),
        &["Expires: 300".to_owned()],
        "",
    )
    .await
}

/// REGISTER with an Authorization header value given.
async fn register_with(
    c: &mut SipClient,
    call_id: &str,
    authorization: &str,
) -> herald_translate::sip::Message {
    let aor = c.aor();
    c.transact(
        "REGISTER",
        "sip:localhost",
        &format!("<{aor}>"),
        call_id,
        &token("f"),
        &[
            "Expires: 300".to_owned(),
            format!("Authorization: {authorization}"),
        ],
        "",
    )
    .await
}

#[tokio::test]
async fn register_over_udp_tcp_and_tls_answers_md5_then_sha256_challenges() {
    let ts = sip_server(|_| {}).await;
    for transport in [SipTransport::Udp, SipTransport::Tcp, SipTransport::Tls] {
        let mut c = ts.sip_client("alice", transport).await;
        let call_id = c.register_call_id.clone();
        for algorithm in [Algorithm::Md5, Algorithm::Sha256] {
            let first = unauthenticated_register(&mut c, &call_id).await;
            assert_eq!(code(&first), 401, "{transport:?}: {}", text(&first));
            let offered = challenges(&first, "WWW-Authenticate");
            let algs: Vec<_> = offered.iter().map(|ch| ch.algorithm).collect();
            assert_eq!(
                algs,
                [Algorithm::Md5, Algorithm::Sha256],
                "{}",
                text(&first)
            );
            assert!(offered
                .iter()
                .all(|ch| ch.qop_auth && !ch.stale && ch.realm == "localhost"));
            assert_eq!(offered[0].nonce, offered[1].nonce, "one nonce for both");
            let (challenge, _) = challenge_of(&first, algorithm).expect("a challenge");
            assert_eq!(challenge.algorithm, algorithm);
            let creds = c.credentials(&challenge, "REGISTER", "sip:localhost", PASSWORD, None);
            let ok = register_with(&mut c, &call_id, &creds).await;
            assert_eq!(code(&ok), 200, "{transport:?} {algorithm:?}: {}", text(&ok));
            let contacts = headers(&ok, "Contact");
            let mine = contacts
                .iter()
                .find(|v| v.contains(&c.local.to_string()))
                .unwrap_or_else(|| panic!("our binding in {}", text(&ok)));
            assert!(mine.contains("expires=300"), "{mine}");
        }
        // Unregister so the next transport's binding is the only one.
        let r = c.register(0).await;
        assert_eq!(code(&r), 200, "{}", text(&r));
        assert!(
            !headers(&r, "Contact")
                .iter()
                .any(|v| v.contains(&c.local.to_string())),
            "the binding is gone: {}",
            text(&r)
        );
    }
}

#[tokio::test]
async fn a_wrong_password_is_challenged_again() {
    let ts = sip_server(|_| {}).await;
    let mut c = ts.sip_client("alice", SipTransport::Udp).await;
    let call_id = c.register_call_id.clone();
    let first = unauthenticated_register(&mut c, &call_id).await;
    let (challenge, _) = challenge_of(&first, Algorithm::Sha256).expect("a challenge");
    let creds = c.credentials(
        &challenge,
        "REGISTER",
        "sip:localhost",
        "not-the-password",
        None,
    );
    let again = register_with(&mut c, &call_id, &creds).await;
    assert_eq!(code(&again), 401, "{}", text(&again));
    let fresh = challenges(&again, "WWW-Authenticate");
    assert_eq!(fresh.len(), 2, "{}", text(&again));
    assert!(
        fresh.iter().all(|ch| !ch.stale),
        "a wrong password is not stale"
    );
    // The right password still works afterwards.
    c.register_ok(300).await;
}

#[tokio::test]
async fn a_reused_nonce_count_is_challenged_again() {
    let ts = sip_server(|_| {}).await;
    let mut c = ts.sip_client("alice", SipTransport::Tcp).await;
    let call_id = c.register_call_id.clone();
    let first = unauthenticated_register(&mut c, &call_id).await;
    let (challenge, _) = challenge_of(&first, Algorithm::Md5).expect("a challenge");
    let one = c.credentials(&challenge, "REGISTER", "sip:localhost", PASSWORD, Some(1));
    let ok = register_with(&mut c, &call_id, &one).await;
    assert_eq!(code(&ok), 200, "{}", text(&ok));
    // The same nonce with the same count (a fresh cnonce, so a different response).
    let replay = c.credentials(&challenge, "REGISTER", "sip:localhost", PASSWORD, Some(1));
    let refused = register_with(&mut c, &call_id, &replay).await;
    assert_eq!(code(&refused), 401, "{}", text(&refused));
    assert!(
        challenges(&refused, "WWW-Authenticate")
            .iter()
            .all(|ch| ch.nonce != challenge.nonce),
        "a fresh nonce: {}",
        text(&refused)
    );
    // A higher count on the same nonce is accepted.
    let two = c.credentials(&challenge, "REGISTER", "sip:localhost", PASSWORD, Some(2));
    let ok = register_with(&mut c, &call_id, &two).await;
    assert_eq!(code(&ok), 200, "{}", text(&ok));
}

/// A nonce the server made (it is keyed by the data directory's `sip-nonce.key`) but
/// issued an hour ago: right credentials get `stale=true`, wrong ones do not.
#[tokio::test]
async fn an_expired_nonce_is_challenged_with_stale() {
    let ts = sip_server(|_| {}).await;
    let key_hex = std::fs::read_to_string(ts.data_dir.join("sip-nonce.key")).expect("nonce key");
    let mut key = [0u8; 32];
    hex::decode_to_slice(key_hex.trim(), &mut key).expect("64 hex digits");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let old = NonceManager::new(key, NonceConfig::default()).issue(now - 3600, &mut rand::rng());
    let mut c = ts.sip_client("alice", SipTransport::Udp).await;
    let call_id = c.register_call_id.clone();
    let first = unauthenticated_register(&mut c, &call_id).await;
    let (mut challenge, _) = challenge_of(&first, Algorithm::Md5).expect("a challenge");
    challenge.nonce = old;

    let wrong = c.credentials(&challenge, "REGISTER", "sip:localhost", "wrong", None);
    let r = register_with(&mut c, &call_id, &wrong).await;
    assert_eq!(code(&r), 401, "{}", text(&r));
    assert!(
        challenges(&r, "WWW-Authenticate")
            .iter()
            .all(|ch| !ch.stale),
        "a wrong password is never stale: {}",
        text(&r)
    );

    let right = c.credentials(&challenge, "REGISTER", "sip:localhost", PASSWORD, None);
    let r = register_with(&mut c, &call_id, &right).await;
    assert_eq!(code(&r), 401, "{}", text(&r));
    let fresh = challenges(&r, "WWW-Authenticate");
    assert!(
        !fresh.is_empty() && fresh.iter().all(|ch| ch.stale),
        "{}",
        text(&r)
    );
    // The fresh nonce works without asking anyone for the password again.
    let (fresh, _) = challenge_of(&r, Algorithm::Md5).expect("a challenge");
    let creds = c.credentials(&fresh, "REGISTER", "sip:localhost", PASSWORD, None);
    let ok = register_with(&mut c, &call_id, &creds).await;
    assert_eq!(code(&ok), 200, "{}", text(&ok));
}

#[tokio::test]
async fn an_account_without_sip_credentials_is_forbidden() {
    let ts = sip_server(|_| {}).await;
    let scram = herald_core::accounts::credentials_for(PASSWORD, 4096).expect("SCRAM records");
    ts.server
        .db
        .store()
        .create_user("dave", &scram.into())
        .expect("an account without SIP credentials");
    let mut c = ts.sip_client("dave", SipTransport::Udp).await;
    let r = c.register(300).await;
    assert_eq!(code(&r), 403, "{}", text(&r));
    let reason = reason(&r);
    assert!(reason.contains("no SIP credentials"), "{reason}");
    assert!(header(&r, "WWW-Authenticate").is_none(), "{}", text(&r));
    // An unknown user is challenged like a wrong password: no 403 tells them apart.
    let mut ghost = ts.sip_client("ghost", SipTransport::Udp).await;
    let r = ghost.register(300).await;
    assert_eq!(code(&r), 401, "{}", text(&r));
}
