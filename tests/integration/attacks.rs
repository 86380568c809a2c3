//! What outside testing found by attacking the running server, one test per finding:
//! offline floods and duplicates, memory amplification through slow readers, connection
//! slots taken before authentication, password guessing, user enumeration, and gauges
//! that must come back down on every way out of a connection.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use herald_tests::*;
use herald_translate::ns;

const OTHER_HOST: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const THIRD_HOST: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

async fn server(tune: impl FnOnce(&mut herald_edge::Config)) -> TestServer {
    let ts = TestServer::start_with(tune).await;
    for u in ["alice", "bob", "carol"] {
        ts.add_user(u);
    }
    ts
}

/// Store `n` chat messages from alice for offline bob, each accepted (a ping of bob's
/// account after the last proves they were all handled).
async fn store_for_bob(ts: &TestServer, n: usize, body_len: usize) {
    // Each stored message is synced to disk before it is acknowledged: on a busy
    // machine hundreds of them take longer than the default patience.
    let mut alice = ts
        .login("alice", "sender")
        .await
        .with_patience(Duration::from_secs(60));
    let pad = "x".repeat(body_len);
    for i in 0..n {
        alice
            .send_message("bob@localhost", &format!("{i} {pad}"))
            .await;
    }
    let pong = alice
        .iq(
            "get",
            Some("bob@localhost"),
            "<ping xmlns='urn:xmpp:ping'/>",
        )
        .await;
    assert_eq!(pong.attr("type"), Some("result"));
    assert!(
        alice.pending().all(|e| e.attr("type") != Some("error")),
        "every message was accepted"
    );
    alice.close().await;
}

/// carol logged in as `carol@localhost/stuck` with a 4 KiB receive buffer; the test
/// never reads from her, so the server's writes to her stall quickly.
async fn never_reading_carol(ts: &TestServer) -> XmppClient {
    XmppClient::connect_plain_with_recv_buffer(ts.starttls, &ts.ca, 4096)
        .await
        .login("carol", PASSWORD, Some("stuck"))
        .await
}

fn index_of(msg: &herald_translate::Element) -> usize {
    body_of(msg)
        .and_then(|b| b.split(' ').next().and_then(|n| n.parse().ok()))
        .unwrap_or_else(|| panic!("not a numbered message: {}", xml(msg, ns::CLIENT)))
}

/// Finding 2: more stored messages than the session queue holds (512) are delivered in
/// one login, in order, to a client that reads.
#[tokio::test]
async fn more_offline_messages_than_the_session_queue_arrive_in_one_login() {
    let ts = server(|_| {}).await;
    store_for_bob(&ts, 800, 100).await;
    let mut bob = ts.login("bob", "reader").await;
    bob.send("<presence/>").await;
    for want in 0..800 {
        let m = bob.recv_message().await;
        assert_eq!(index_of(&m), want, "in order, each once");
    }
    bob.assert_alive().await;
    assert_eq!(ts.server.db.store().offline_count("bob").unwrap(), 0);
    assert_eq!(ts.server.metrics.offline_queue.get(), 0);
}

/// Finding 3: three resources sending initial presence at once get each stored message
/// exactly once between them, and the offline gauge falls by exactly that many.
#[tokio::test]
async fn concurrent_initial_presences_take_each_offline_message_once() {
    let ts = server(|_| {}).await;
    for round in 0..3 {
        store_for_bob(&ts, 10, 10).await;
        assert_eq!(ts.server.metrics.offline_queue.get(), 10);
        let mut bobs = Vec::new();
        for r in 0..3 {
            bobs.push(ts.login("bob", &format!("r{round}-{r}")).await);
        }
        let sends = bobs.iter_mut().map(|b| b.send("<presence/>"));
        futures_join(sends).await;
        let mut seen = Vec::new();
        for b in &mut bobs {
            // A ping of the account goes through after this session's initial presence:
            // the stored messages it claimed were written before the answer.
            b.iq("get", None, "<ping xmlns='urn:xmpp:ping'/>").await;
        }
        wait_until("every stored message is delivered", || {
            ts.server.db.store().offline_count("bob").unwrap() == 0
        })
        .await;
        for b in &mut bobs {
            b.iq("get", None, "<ping xmlns='urn:xmpp:ping'/>").await;
            seen.extend(
                b.pending()
                    .filter(|e| e.name == "message" && body_of(e).is_some())
                    .map(index_of),
            );
        }
        seen.sort_unstable();
        assert_eq!(
            seen,
            (0..10).collect::<Vec<_>>(),
            "round {round}: each exactly once"
        );
        assert_eq!(ts.server.metrics.offline_queue.get(), 0, "round {round}");
        for b in bobs {
            b.close().await;
        }
    }
}

/// Run the futures one after the other without awaiting in between: each `send` writes
/// in its first poll, so the three presences leave within one turn.
async fn futures_join<F: std::future::Future<Output = ()>>(futs: impl Iterator<Item = F>) {
    let futs: Vec<_> = futs.map(Box::pin).collect();
    for f in futs {
        f.await;
    }
}

/// Finding 4: a user's sessions that never read cannot hold unbounded memory: the queue
/// is bounded in bytes, so big stanzas close the stuck session long before 512 of them.
#[tokio::test]
async fn a_session_that_never_reads_is_closed_by_the_byte_bound() {
    let ts = server(|c| {
        c.c2s.send_queue_bytes = 256 * 1024;
    })
    .await;
    let _carol = never_reading_carol(&ts).await;
    let mut alice = ts.login("alice", "r").await;
    let sessions = ts.server.metrics.sessions.clone();
    assert_eq!(sessions.get(), 2);
    let big = "y".repeat(200 * 1024);
    // Loopback socket buffers take a few MB; the queue's 256 KiB must then overflow
    // within a few dozen of these, far below the 512-stanza count.
    for i in 0..60 {
        alice
            .send_message("carol@localhost/stuck", &format!("{i} {big}"))
            .await;
        if sessions.get() == 1 {
            break;
        }
    }
    wait_until("carol's stuck session is closed", || sessions.get() == 1).await;
    alice.assert_alive().await;
}

/// Finding 4: a write that stalls is timed out after `write_timeout_secs` (30 s), not
/// after the idle timeout (600 s). On virtual time.
#[tokio::test(start_paused = true)]
async fn a_stalled_write_is_timed_out_before_the_idle_timeout() {
    let ts = server(|c| {
        c.c2s.write_timeout_secs = 30;
        c.c2s.idle_timeout_secs = 600;
        c.c2s.send_queue_bytes = 64 * 1024 * 1024;
        c.c2s.send_queue = 4096;
    })
    .await;
    let _carol = never_reading_carol(&ts).await;
    let mut alice = ts.login("alice", "r").await;
    let sessions = ts.server.metrics.sessions.clone();
    let big = "y".repeat(200 * 1024);
    for i in 0..40 {
        alice
            .send_message("carol@localhost/stuck", &format!("{i} {big}"))
            .await;
    }
    alice.assert_alive().await;
    let stalled = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert_eq!(sessions.get(), 2, "not before the write timeout");
    tokio::time::sleep(Duration::from_secs(10)).await;
    wait_until("carol's stalled session is closed", || sessions.get() == 1).await;
    assert!(
        stalled.elapsed() < Duration::from_secs(60),
        "closed by the write timeout, not the idle timeout"
    );
    let errors = ts.server.metrics.render();
    assert!(
        errors.contains("write-stalled"),
        "counted as a stalled write: {errors}"
    );
}

/// Finding 4: the offline quota is bounded in bytes too.
#[tokio::test]
async fn the_offline_quota_is_bounded_in_bytes() {
    let ts = server(|c| c.c2s.offline_quota_bytes = 16 * 1024).await;
    let mut alice = ts.login("alice", "r").await;
    let body = "z".repeat(6 * 1024);
    for i in 0..3 {
        alice
            .send_message("bob@localhost", &format!("{i} {body}"))
            .await;
    }
    let bounce = alice
        .recv_where("the bounce of the third message", |e| {
            e.name == "message" && e.attr("type") == Some("error")
        })
        .await;
    assert_eq!(
        stanza_error(&bounce).as_deref(),
        Some("service-unavailable")
    );
    assert_eq!(stanza_error_type(&bounce).as_deref(), Some("wait"));
    assert_eq!(ts.server.db.store().offline_count("bob").unwrap(), 2);
}

/// Finding 5: one address cannot hold more than `max_unauthenticated_per_ip`
/// connections before they authenticate; other addresses are unaffected, and a
/// connection that authenticates frees its place.
#[tokio::test]
async fn unauthenticated_connections_are_capped_per_address() {
    let ts = server(|c| c.c2s.max_unauthenticated_per_ip = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = ts.connect().await;
        c.open_stream().await;
        held.push(c);
    }
    let mut refused = ts.connect().await;
    refused.expect_closed().await;
    assert_eq!(refused.bytes_received(), 0, "refused before any stream");
    assert!(ts
        .server
        .metrics
        .render()
        .contains("herald_c2s_connections_refused_total{reason=\"per_ip_unauthenticated\"} 1"));
    // Another host still gets in and logs in.
    let other = XmppClient::connect_plain_from(ts.starttls, &ts.ca, OTHER_HOST)
        .await
        .login("bob", PASSWORD, Some("elsewhere"))
        .await;
    drop(other);
    // A held connection that authenticates no longer counts.
    let first = held.remove(0);
    let _alice = first.login_opened("alice", PASSWORD, Some("r")).await;
    let mut again = ts.connect().await;
    again.open_stream().await;
}

/// Finding 5: unauthenticated connections from all addresses together cannot take more
/// than `max_unauthenticated`; authenticated sessions keep their slots and the rest.
#[tokio::test]
async fn unauthenticated_connections_cannot_take_every_slot() {
    let ts = server(|c| {
        c.c2s.max_connections = 5;
        c.c2s.max_unauthenticated = 2;
    })
    .await;
    let mut alice = ts.login("alice", "r").await;
    let mut a = XmppClient::connect_plain_from(ts.starttls, &ts.ca, OTHER_HOST).await;
    a.open_stream().await;
    let mut b = XmppClient::connect_plain_from(ts.starttls, &ts.ca, THIRD_HOST).await;
    b.open_stream().await;
    let mut refused = ts.connect().await;
    refused.expect_closed().await;
    assert_eq!(refused.bytes_received(), 0);
    alice.assert_alive().await;
    // One leaves: a fresh login gets its place.
    a.close().await;
    let connections = ts.server.metrics.connections.clone();
    wait_until("the closed connection is released", || {
        connections.get() == 2
    })
    .await;
    let _bob = ts.login("bob", "r").await;
}

/// Finding 6: failed logins are throttled per account; during the block even the right
/// password is refused with `temporary-auth-failure`, while the user's open session is
/// untouched. The block is counted in `/metrics`.
#[tokio::test]
async fn failed_logins_block_the_account_but_not_its_open_session() {
    let ts = server(|c| {
        c.c2s.auth_failures_per_account_burst = 2;
        c.c2s.auth_failures_per_account_per_min = 1;
        c.c2s.auth_block_account_secs = 60;
    })
    .await;
    let mut session = ts.login("alice", "open").await;
    for _ in 0..3 {
        let (mut c, _) = ts.connect_tls().await;
        let outcome = c
            .authenticate(Mechanism::ScramSha256, "alice", "wrong")
            .await;
        assert_eq!(outcome, Err("not-authorized".to_string()));
    }
    let (mut c, _) = ts.connect_tls().await;
    let outcome = c
        .authenticate(Mechanism::ScramSha256, "alice", PASSWORD)
        .await;
    assert_eq!(outcome, Err("temporary-auth-failure".to_string()));
    session.assert_alive().await;
    // Other accounts are not affected.
    let _bob = ts.login("bob", "r").await;
    let text = ts.server.metrics.render();
    assert!(
        text.contains("herald_auth_blocks_total{scope=\"account\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("herald_auth_throttled_total{scope=\"account\"} 1"),
        "{text}"
    );
}

/// Finding 6: an address that keeps failing is blocked for every account.
#[tokio::test]
async fn failed_logins_block_the_address() {
    let ts = server(|c| {
        c.c2s.auth_failures_per_ip_burst = 3;
        c.c2s.auth_failures_per_ip_per_min = 1;
    })
    .await;
    for user in ["alice", "bob", "carol", "alice"] {
        let (mut c, _) = ts.connect_tls().await;
        assert!(c
            .authenticate(Mechanism::Plain, user, "wrong")
            .await
            .is_err());
    }
    let (mut c, _) = ts.connect_tls().await;
    let outcome = c.authenticate(Mechanism::Plain, "bob", PASSWORD).await;
    assert_eq!(outcome, Err("temporary-auth-failure".to_string()));
    // Another host is not blocked.
    let _bob = XmppClient::connect_plain_from(ts.starttls, &ts.ca, OTHER_HOST)
        .await
        .login("bob", PASSWORD, Some("r"))
        .await;
}

/// Finding 1 (its second half): the connection gauge comes back to zero whichever way
/// connections end: refused TLS, a peer that hangs up mid-negotiation, a stream error,
/// a clean close, a dropped session.
#[tokio::test]
async fn the_connection_gauge_returns_to_zero_on_every_way_out() {
    let ts = server(|_| {}).await;
    let gauge = ts.server.metrics.connections.clone();
    // Not TLS on the direct-TLS port.
    let mut raw = tokio::net::TcpStream::connect(ts.direct_tls).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut raw, b"<stream:stream>not tls at all")
        .await
        .unwrap();
    // Hang up in the middle of the TLS handshake.
    let mut half = tokio::net::TcpStream::connect(ts.direct_tls).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut half, &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .unwrap();
    drop(half);
    // A stream error before authentication.
    let mut bad = ts.connect().await;
    bad.send("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' to='localhost'><!-- no -->").await;
    bad.expect_stream_error().await;
    // Clean close after login, and a session whose socket just goes away.
    ts.login("alice", "a").await.close().await;
    ts.login("bob", "b").await.abort();
    drop(raw);
    wait_until("every connection is released", || gauge.get() == 0).await;
    wait_until("every session is released", || {
        ts.server.metrics.sessions.get() == 0
    })
    .await;
}

/// The salt and iteration count a server announces to `user` in SCRAM-SHA-256.
async fn scram_salt(ts: &TestServer, user: &str) -> String {
    let (mut c, _) = ts.connect_tls().await;
    let first = format!("n,,n={user},r=fixednonce");
    c.send(&format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>{}</auth>",
        base64_encode(first.as_bytes())
    ))
    .await;
    let challenge = c.recv().await;
    assert!(
        challenge.is("challenge", ns::SASL),
        "{}",
        xml(&challenge, ns::CLIENT)
    );
    let server_first = String::from_utf8(base64_decode(&challenge.text())).expect("utf-8");
    server_first
        .split(',')
        .filter(|f| f.starts_with("s=") || f.starts_with("i="))
        .collect::<Vec<_>>()
        .join(",")
}

/// Finding 7: an unknown user's made-up salt is the same after a restart, like a real
/// user's, so restarting and comparing does not tell which accounts exist.
#[tokio::test]
async fn unknown_users_get_the_same_salt_after_a_restart() {
    let mut first = server(|_| {}).await;
    let real = scram_salt(&first, "alice").await;
    let fake = scram_salt(&first, "nobody").await;
    assert_ne!(fake, scram_salt(&first, "nobody2").await, "per user");
    assert!(
        fake.ends_with(",i=4096"),
        "the default iteration count: {fake}"
    );
    // A restart: the first server stops (releasing the data directory's lock, which a
    // second server would otherwise be refused on), a new one starts on the same data.
    first.shutdown(Duration::from_secs(2)).await;
    let dir = first.data_dir.clone();
    let second = TestServer::start_with(|c| c.server.data_dir = dir).await;
    assert_eq!(scram_salt(&second, "alice").await, real);
    assert_eq!(scram_salt(&second, "nobody").await, fake);
    drop(second);
}

/// Found by interop/attacks: a client that sends many stanzas in one go, each answered
/// by the server (here a bounce), was closed as "not reading" when the answers
/// overflowed its own queue. Its input now waits while it owes half a queue of output.
#[tokio::test]
async fn a_client_whose_requests_outrun_their_answers_is_slowed_not_closed() {
    let ts = server(|c| c.c2s.send_queue = 64).await;
    let mut alice = ts.login("alice", "r").await;
    let mut burst = String::new();
    for i in 0..1000 {
        burst.push_str(&format!(
            "<message to='nobody@localhost' id='m{i}' type='chat'><body>{i}</body></message>"
        ));
    }
    alice.send(&burst).await;
    for i in 0..1000 {
        let id = format!("m{i}");
        let bounce = alice
            .recv_where("the bounce", |e| e.attr("id") == Some(id.as_str()))
            .await;
        assert_eq!(
            stanza_error(&bounce).as_deref(),
            Some("service-unavailable")
        );
    }
    alice.assert_alive().await;
}
