//! The admin commands operators coming from prosodyctl and ejabberdctl look for:
//! status and sessions through the admin API, kick, backup and restore, XEP-0227
//! export and import, certificate checks.

use std::path::Path;

use herald_core::store::{OfflineQuota, RosterItem, SqliteStore, Store, Subscription};
use herald_edge::admin_client::AdminClient;
use herald_edge::ops;
use herald_edge::Config;
use herald_tests::{unique_temp_dir, wait_until, Event, TestServer, PASSWORD};
use herald_translate::sasl::{verify_password, ScramHash};
use herald_translate::{ns, Element};
use serde_json::{json, Value};
use tokio::time::Instant;

/// A blocking admin API call, off the runtime's worker.
async fn api(config: &Config, method: &'static str, path: &str, body: Value) -> Value {
    let client = AdminClient::from_config(config).expect("admin client");
    let path = path.to_string();
    tokio::task::spawn_blocking(move || match method {
        "GET" => client.get(&path),
        _ => client.post(&path, &body),
    })
    .await
    .expect("join")
    .unwrap_or_else(|e| panic!("admin API: {e}"))
}

/// The stream error the server ends the stream with: condition and text.
async fn stream_error(c: &mut herald_tests::XmppClient) -> (String, String) {
    let deadline = Instant::now() + herald_tests::TIMEOUT;
    loop {
        match c.next_event(deadline).await {
            Event::Element(el) if el.is("error", ns::STREAM) => {
                let cond = el
                    .elements()
                    .find(|e| e.ns == ns::STREAM_ERRORS && e.name != "text")
                    .map(|e| e.name.clone())
                    .unwrap_or_default();
                let text = el
                    .child("text", ns::STREAM_ERRORS)
                    .map(Element::text)
                    .unwrap_or_default();
                c.expect_closed().await;
                return (cond, text);
            }
            Event::Element(_) | Event::Header(_) => {}
            other => panic!("waiting for a stream error: {other:?}"),
        }
    }
}

#[tokio::test]
async fn sessions_are_listed_and_kicked_with_the_reason() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    let mut phone = ts.login("alice", "phone").await;
    let mut laptop = ts.login("alice", "laptop").await;

    let status = api(&ts.config, "GET", "/api/status", json!(null)).await;
    assert_eq!(status["sessions"], 2, "{status}");
    assert_eq!(status["connections"], 2, "{status}");
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    let kinds: Vec<&str> = status["listeners"]
        .as_array()
        .expect("listeners")
        .iter()
        .filter_map(|l| l["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        ["c2s-starttls", "c2s-direct-tls", "admin"],
        "{status}"
    );
    assert!(
        status["database"]["bytes"].as_u64().unwrap_or(0) > 0,
        "{status}"
    );
    let text = ops::status::render(&status);
    assert!(text.contains("sessions:    2"), "{text}");

    let list = api(
        &ts.config,
        "GET",
        "/api/sessions?user=alice%40localhost%2Fphone",
        json!(null),
    )
    .await;
    let sessions = list["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 1, "{list}");
    assert_eq!(sessions[0]["jid"], "alice@localhost/phone");
    assert_eq!(sessions[0]["ip"], "127.0.0.1");
    assert_eq!(sessions[0]["direct_tls"], false);
    assert_eq!(sessions[0]["detached"], false);
    let table = ops::sessions::render_list(
        &api(&ts.config, "GET", "/api/sessions?user=alice", json!(null)).await,
    );
    assert!(
        table.contains("alice@localhost/laptop")
            && table.contains("alice@localhost/phone")
            && table.contains("starttls")
            && table.contains("2 session(s)"),
        "{table}"
    );

    let kicked = api(
        &ts.config,
        "POST",
        "/api/sessions/kick",
        json!({ "jid": "alice@localhost/phone", "reason": "maintenance <now>" }),
    )
    .await;
    assert_eq!(kicked["kicked"], json!(["alice@localhost/phone"]));
    let (cond, text) = stream_error(&mut phone).await;
    assert_eq!(
        (cond.as_str(), text.as_str()),
        ("policy-violation", "maintenance <now>")
    );
    laptop.assert_alive().await;

    // A bare JID (here a plain username) ends every session of the user.
    let kicked = api(
        &ts.config,
        "POST",
        "/api/sessions/kick",
        json!({ "jid": "alice" }),
    )
    .await;
    assert_eq!(kicked["kicked"], json!(["alice@localhost/laptop"]));
    assert_eq!(stream_error(&mut laptop).await.0, "policy-violation");
    let server = std::sync::Arc::clone(&ts.server);
    wait_until("the sessions are gone", || {
        server.sessions_snapshot(None).is_empty()
    })
    .await;
}

#[tokio::test]
async fn admin_commands_say_when_the_server_is_not_running() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = free.local_addr().expect("addr");
    drop(free);
    let mut config = Config::default();
    config.server.data_dir = unique_temp_dir("not-running");
    config.admin.listen = Some(addr);
    let client = AdminClient::from_config(&config).expect("client");
    let err = tokio::task::spawn_blocking(move || client.get("/api/status"))
        .await
        .expect("join")
        .expect_err("nothing listens");
    assert_eq!(
        err.to_string(),
        format!("server not running (no answer on {addr})")
    );
}

#[tokio::test]
async fn backup_while_running_restores_into_a_fresh_directory_and_not_over_a_live_server() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    ts.add_user("bob");
    let _client = ts.login("alice", "phone").await;
    let dir = unique_temp_dir("backup");
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("herald-backup.db");
    let summary = ops::backup::backup_to(&ts.config, &file).expect("backup while running");
    assert_eq!(summary.users, 2);

    let err = ops::backup::restore_from(&ts.config, &file)
        .expect_err("the server holds the lock")
        .to_string();
    assert!(
        err.contains("herald.lock") && err.contains("running"),
        "{err}"
    );

    let mut fresh = Config::default();
    fresh.server.data_dir = dir.join("fresh");
    let restored = ops::backup::restore_from(&fresh, &file).expect("restore");
    assert_eq!(restored.users, 2);
    let store = SqliteStore::open(&fresh.server.data_dir.join("herald.db")).expect("open");
    assert_eq!(store.list_users().expect("users"), ["alice", "bob"]);
    let cred = store
        .credentials("alice", ScramHash::Sha256)
        .expect("read")
        .expect("credentials came along");
    assert!(verify_password(&cred, PASSWORD));

    // Not a Herald database: refused, nothing replaced.
    let junk = dir.join("junk.db");
    std::fs::write(&junk, "not a database").expect("write");
    assert!(ops::backup::restore_from(&fresh, &junk).is_err());
    assert_eq!(store.list_users().expect("users"), ["alice", "bob"]);
    let _ = std::fs::remove_dir_all(dir);
}

fn fill(store: &dyn Store) {
    for u in ["alice", "bob"] {
        herald_core::accounts::add_user(store, u, PASSWORD, "localhost").expect("user");
    }
    let mut item = RosterItem::new("bob@localhost");
    item.name = Some("Bob & Co".into());
    item.subscription = Subscription::Both;
    item.groups = vec!["Friends".into(), "Work".into()];
    store.roster_put("alice", &item).expect("roster");
    let mut pending = RosterItem::new("carol@example.net");
    pending.ask = true;
    store.roster_put("alice", &pending).expect("roster");
    let quota = OfflineQuota::messages(100);
    store
        .offline_push(
            "bob",
            "<message from='alice@localhost/phone' to='bob@localhost' type='chat'>\
             <body>while you were out</body>\
             <delay xmlns='urn:xmpp:delay' from='localhost' stamp='2026-01-02T03:04:05.000Z'/>\
             </message>",
            quota,
        )
        .expect("offline");
}

fn fresh_store(tag: &str) -> (SqliteStore, std::path::PathBuf) {
    let dir = unique_temp_dir(tag);
    (
        SqliteStore::open(&dir.join("herald.db")).expect("open"),
        dir,
    )
}

#[tokio::test]
async fn xep0227_export_then_import_gives_the_same_accounts() {
    let (src, d1) = fresh_store("x227-src");
    fill(&src);
    let (xml, report) = ops::xep0227::export(&src, "localhost").expect("export");
    assert_eq!(
        (report.users, report.roster_items, report.offline_messages),
        (2, 2, 1)
    );
    assert!(
        xml.contains("<server-data xmlns='urn:xmpp:pie:0'>"),
        "{xml}"
    );

    let (dst, d2) = fresh_store("x227-dst");
    let domains = vec!["localhost".to_string()];
    let report = ops::xep0227::import(&dst, &domains, "localhost", xml.as_bytes()).expect("import");
    assert_eq!(
        (report.users, report.roster_items, report.offline_messages),
        (2, 2, 1),
        "{report:?}"
    );
    assert!(report.warnings.is_empty(), "{report:?}");
    // SCRAM keys only in the file: no SIP digest credentials can be derived.
    assert_eq!(report.without_sip, 2, "{report:?}");
    assert!(!herald_core::accounts::sip_ready(&dst, "alice", "localhost").expect("sip"));
    assert_eq!(dst.list_users().expect("u"), src.list_users().expect("u"));
    for u in ["alice", "bob"] {
        assert_eq!(dst.roster(u).expect("r").1, src.roster(u).expect("r").1);
        for h in [ScramHash::Sha1, ScramHash::Sha256] {
            assert_eq!(
                dst.credentials(u, h).expect("c"),
                src.credentials(u, h).expect("c")
            );
        }
        let stanzas = |s: &SqliteStore| -> Vec<String> {
            s.offline_list(u)
                .expect("o")
                .into_iter()
                .map(|m| m.stanza)
                .collect()
        };
        assert_eq!(stanzas(&dst), stanzas(&src));
    }
    // Again: every account exists, nothing is duplicated.
    let again = ops::xep0227::import(&dst, &domains, "localhost", xml.as_bytes()).expect("again");
    assert_eq!((again.users, again.skipped.len()), (0, 2));
    assert_eq!(dst.offline_count("bob").expect("n"), 1);
    let _ = std::fs::remove_dir_all(d1);
    let _ = std::fs::remove_dir_all(d2);
}

#[tokio::test]
async fn a_prosody_style_xep0227_file_is_imported() {
    // bob's SCRAM-SHA-1 keys as Prosody's mod_auth_internal_hashed keeps them.
    let rec = herald_translate::sasl::ScramRecord::derive(
        ScramHash::Sha1,
        PASSWORD,
        b"2b7d8f40-prosody-salt",
        4096,
    )
    .expect("derive");
    let file = format!(
        "<?xml version='1.0' encoding='UTF-8'?>\n\
<server-data xmlns='urn:xmpp:pie:0'>\n\
  <host jid='elsewhere.example'><user name='mallory' password='x'/></host>\n\
  <host jid='localhost'>\n\
    <user name='Alice' password='{PASSWORD}'>\n\
      <query xmlns='jabber:iq:roster'>\n\
        <item jid='bob@localhost' name='Bob' subscription='both'><group>Friends</group></item>\n\
        <item jid='dave@example.net' subscription='none' ask='subscribe'/>\n\
      </query>\n\
      <offline-messages>\n\
        <message xmlns='jabber:client' from='bob@localhost/pc' to='alice@localhost' type='chat'>\
<body>hello from prosody</body>\
<delay xmlns='urn:xmpp:delay' from='localhost' stamp='2025-05-05T05:05:05Z'/></message>\n\
      </offline-messages>\n\
      <vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>\n\
    </user>\n\
    <user name='bob' xmlns:p='http://prosody.im/protocol/extended-xep0227' \
p:salt='2b7d8f40-prosody-salt' p:iteration_count='4096' p:stored_key='{}' p:server_key='{}'/>\n\
  </host>\n\
</server-data>\n",
        hex::encode(&rec.stored_key),
        hex::encode(&rec.server_key)
    );
    let ts = TestServer::start().await;
    let store = ts.server.db.store();
    let report = ops::xep0227::import(
        &**store,
        &ts.config.server.domains,
        &ts.config.sip_realm(),
        file.as_bytes(),
    )
    .expect("import");
    assert_eq!(
        (report.users, report.roster_items, report.offline_messages),
        (2, 2, 1),
        "{report:?}"
    );
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("elsewhere.example")),
        "{report:?}"
    );
    assert_eq!(store.list_users().expect("u"), ["alice", "bob"]);
    // Alice's plaintext password gave SIP digest credentials; bob's hashes could not.
    assert_eq!(report.without_sip, 1, "{report:?}");
    let realm = ts.config.sip_realm();
    assert!(herald_core::accounts::sip_ready(&**store, "alice", &realm).expect("sip"));
    assert!(!herald_core::accounts::sip_ready(&**store, "bob", &realm).expect("sip"));
    let bob = store
        .credentials("bob", ScramHash::Sha1)
        .expect("c")
        .expect("Prosody's keys imported");
    assert_eq!(bob, rec);
    let (_, roster) = store.roster("alice").expect("roster");
    assert_eq!(roster[0].jid, "bob@localhost");
    assert_eq!(roster[0].groups, ["Friends"]);
    assert_eq!(roster[0].subscription, Subscription::Both);
    assert!(roster[1].ask && roster[1].subscription == Subscription::None);

    // Alice's plaintext password became SCRAM credentials: she logs in, and gets the
    // message that waited for her.
    let mut alice = ts.login("alice", "phone").await;
    alice.send("<presence/>").await;
    let m = alice.recv_message_with_body("hello from prosody").await;
    assert_eq!(m.attr("from"), Some("bob@localhost/pc"));

    let bad = ops::xep0227::import(
        &**store,
        &ts.config.server.domains,
        &ts.config.sip_realm(),
        b"<a/>",
    )
    .expect_err("not XEP-0227")
    .to_string();
    assert!(bad.contains("not a XEP-0227 file"), "{bad}");
}

#[tokio::test]
async fn cert_check_reports_the_generated_certificate_and_uncovered_domains() {
    let ts = TestServer::start().await;
    let (text, healthy) = ops::cert::check(&ts.config, &[]);
    assert!(healthy, "{text}");
    assert!(
        text.contains("server.pem") && text.contains("localhost") && text.contains("day(s) left"),
        "{text}"
    );
    assert!(text.contains("Every hosted domain is covered."), "{text}");

    let mut more = ts.config.clone();
    more.server.domains.push("example.net".into());
    let (text, healthy) = ops::cert::check(&more, &[]);
    assert!(!healthy);
    assert!(
        text.contains("not covered by any certificate: example.net"),
        "{text}"
    );

    let ca = Path::new(&ts.ca);
    let (text, healthy) = ops::cert::check(&ts.config, &[ca.to_path_buf()]);
    assert!(healthy, "{text}");
    assert!(!text.contains("hosted domain"), "files only: {text}");
}
