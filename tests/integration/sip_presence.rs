//! SIMPLE presence over real sockets: a SIP watcher's SUBSCRIBE authorized by the
//! presentity's XMPP roster (pending, then active when approved from XMPP), PUBLISH
//! reaching the watcher, presence.winfo, and a SIP call shown to XMPP contacts.

use herald_tests::sip_client::{
    body, code, header, sip_server, text, token, SipClient, SipTransport,
};
use herald_tests::XmppClient;
use herald_translate::ns;
use herald_translate::sip::Message;

const GARDEN: &str = "<?xml version='1.0' encoding='UTF-8'?>\
<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='sip:bob@localhost'>\
<tuple id='t1'><status><basic>open</basic></status><note>In the garden</note></tuple>\
</presence>";

const ON_CALL: &str = "<?xml version='1.0'?>\
<dialog-info xmlns='urn:ietf:params:xml:ns:dialog-info' version='0' state='full' \
entity='sip:bob@localhost'><dialog id='d1' call-id='c1' local-tag='l1' remote-tag='r1' \
direction='initiator'><state>confirmed</state></dialog></dialog-info>";

/// A new SUBSCRIBE from `c` to `presentity` for `event`, authenticated.
async fn subscribe(c: &mut SipClient, presentity: &str, event: &str, accept: &str) -> Message {
    let uri = format!("sip:{presentity}@localhost");
    c.authed(
        "SUBSCRIBE",
        &uri,
        &format!("<{uri}>"),
        &token("sub"),
        &token("f"),
        &[
            format!("Event: {event}"),
            format!("Accept: {accept}"),
            "Expires: 600".to_owned(),
        ],
        "",
    )
    .await
}

/// A PUBLISH by `c` of its own presentity, authenticated.
async fn publish(c: &mut SipClient, event: &str, content_type: &str, doc: &str) -> Message {
    let aor = c.aor();
    c.authed(
        "PUBLISH",
        &aor,
        &format!("<{aor}>"),
        &token("pub"),
        &token("f"),
        &[
            format!("Event: {event}"),
            "Expires: 600".to_owned(),
            format!("Content-Type: {content_type}"),
        ],
        doc,
    )
    .await
}

/// The next NOTIFY for `event` whose state begins with `state`, answered 200.
async fn notify(c: &mut SipClient, event: &str, state: &str) -> Message {
    let m = c
        .recv_request_where("NOTIFY", |m| {
            header(m, "Event").is_some_and(|e| e.starts_with(event))
                && header(m, "Subscription-State").is_some_and(|s| s.starts_with(state))
        })
        .await;
    c.respond(&m, 200, "OK").await;
    m
}

/// An XMPP client online with available presence.
async fn online(ts: &herald_tests::TestServer, user: &str) -> XmppClient {
    let mut c = ts.login(user, "desk").await;
    c.send("<presence/>").await;
    let me = format!("{user}@localhost/desk");
    c.recv_where("our own presence", |e| {
        e.is("presence", ns::CLIENT) && e.attr("from") == Some(me.as_str())
    })
    .await;
    c
}

fn is_2xx(m: &Message) -> bool {
    (200..300).contains(&code(m))
}

#[tokio::test]
async fn a_watcher_outside_the_roster_waits_for_approval_then_sees_what_is_published() {
    let ts = sip_server(|_| {}).await;
    let mut bob_xmpp = online(&ts, "bob").await;
    let mut alice = ts.sip_client("alice", SipTransport::Udp).await;

    let r = subscribe(&mut alice, "bob", "presence", "application/pidf+xml").await;
    assert!(is_2xx(&r), "{}", text(&r));
    let pending = notify(&mut alice, "presence", "pending").await;
    assert!(
        pending.body.is_empty(),
        "no document while pending: {}",
        text(&pending)
    );

    // Bob is asked from XMPP, as if alice had asked there.
    bob_xmpp
        .recv_where("alice's subscription request", |e| {
            herald_tests::is_presence(e, "alice@localhost", Some("subscribe"))
        })
        .await;
    bob_xmpp
        .send("<presence to='alice@localhost' type='subscribed'/>")
        .await;
    let active = notify(&mut alice, "presence", "active").await;
    assert!(
        header(&active, "Content-Type").is_some_and(|t| t.starts_with("application/pidf+xml")),
        "{}",
        text(&active)
    );
    assert!(body(&active).contains("bob@localhost"), "{}", text(&active));
    assert!(
        body(&active).contains("open"),
        "bob is online: {}",
        text(&active)
    );

    // Bob's SIP device publishes: alice sees the note.
    let mut bob = ts.sip_client("bob", SipTransport::Udp).await;
    let r = publish(&mut bob, "presence", "application/pidf+xml", GARDEN).await;
    assert_eq!(code(&r), 200, "{}", text(&r));
    assert!(header(&r, "SIP-ETag").is_some(), "{}", text(&r));
    let m = alice
        .recv_request_where("NOTIFY", |m| body(m).contains("In the garden"))
        .await;
    alice.respond(&m, 200, "OK").await;

    // Bob watches his watchers: alice is listed, active.
    let r = subscribe(
        &mut bob,
        "bob",
        "presence.winfo",
        "application/watcherinfo+xml",
    )
    .await;
    assert!(is_2xx(&r), "{}", text(&r));
    let winfo = notify(&mut bob, "presence.winfo", "active").await;
    assert!(
        header(&winfo, "Content-Type")
            .is_some_and(|t| t.starts_with("application/watcherinfo+xml")),
        "{}",
        text(&winfo)
    );
    let doc = body(&winfo);
    assert!(doc.contains("sip:alice@localhost"), "{doc}");
    assert!(doc.contains("active"), "{doc}");
}

#[tokio::test]
async fn only_the_user_watches_their_watchers() {
    let ts = sip_server(|_| {}).await;
    let mut alice = ts.sip_client("alice", SipTransport::Udp).await;
    let r = subscribe(
        &mut alice,
        "bob",
        "presence.winfo",
        "application/watcherinfo+xml",
    )
    .await;
    assert_eq!(code(&r), 403, "{}", text(&r));
}

#[tokio::test]
async fn a_call_in_progress_shows_xmpp_contacts_on_the_phone() {
    let ts = sip_server(|_| {}).await;
    let mut alice = online(&ts, "alice").await;
    let mut bob_xmpp = online(&ts, "bob").await;
    crate::im::subscribe(&mut alice, &mut bob_xmpp).await;

    let mut bob = ts.sip_client("bob", SipTransport::Tcp).await;
    let r = publish(&mut bob, "dialog", "application/dialog-info+xml", ON_CALL).await;
    assert_eq!(code(&r), 200, "{}", text(&r));
    let p = alice
        .recv_where("bob's SIP side on the phone", |e| {
            herald_tests::is_presence(e, "bob@localhost/sip", None)
                && e.child("show", ns::CLIENT).map(|s| s.text()).as_deref() == Some("dnd")
        })
        .await;
    assert_eq!(
        crate::im::status(&p).as_deref(),
        Some("On the phone"),
        "{}",
        herald_tests::xml(&p, ns::CLIENT)
    );
}

/// alice (SIP) watches bob with bob's approval already in his roster.
async fn approved_watch(
    ts: &herald_tests::TestServer,
    transport: SipTransport,
) -> (SipClient, XmppClient, Message, Message) {
    let mut bob_xmpp = online(ts, "bob").await;
    let mut alice = ts.sip_client("alice", transport).await;
    let r = subscribe(&mut alice, "bob", "presence", "application/pidf+xml").await;
    assert!(is_2xx(&r), "{}", text(&r));
    notify(&mut alice, "presence", "pending").await;
    bob_xmpp
        .recv_where("alice's subscription request", |e| {
            herald_tests::is_presence(e, "alice@localhost", Some("subscribe"))
        })
        .await;
    bob_xmpp
        .send("<presence to='alice@localhost' type='subscribed'/>")
        .await;
    let active = notify(&mut alice, "presence", "active").await;
    (alice, bob_xmpp, r, active)
}

/// A refresh in the dialog is matched by the dialog (no challenge), and an
/// unsubscribe ends it with a terminated NOTIFY.
#[tokio::test]
async fn a_subscription_is_refreshed_and_ended_in_its_dialog() {
    let ts = sip_server(|_| {}).await;
    let (mut alice, _bob, ok, active) = approved_watch(&ts, SipTransport::Tcp).await;
    let call_id = ok.call_id().expect("Call-ID").to_owned();
    let from_tag = ok
        .from()
        .ok()
        .and_then(|f| f.tag().map(str::to_owned))
        .expect("From tag");
    let to = header(&ok, "To").expect("To").to_owned();
    assert!(to.contains(";tag="), "{to}");
    // In-dialog requests go to the notifier's Contact (the NOTIFY's Contact).
    let target = match active.contacts() {
        Ok(Some(herald_translate::sip::Contact::Addresses(a))) if !a.is_empty() => {
            a[0].uri.to_string()
        }
        _ => panic!("a Contact in {}", text(&active)),
    };
    for (expires, state) in [(300, "active"), (0, "terminated")] {
        let r = alice
            .transact(
                "SUBSCRIBE",
                &target,
                &to,
                &call_id,
                &from_tag,
                &["Event: presence".to_owned(), format!("Expires: {expires}")],
                "",
            )
            .await;
        assert!(is_2xx(&r), "no challenge in the dialog: {}", text(&r));
        let n = notify(&mut alice, "presence", state).await;
        assert_eq!(n.call_id().ok(), Some(call_id.as_str()), "{}", text(&n));
    }
    // Gone: a further refresh is not known.
    let r = alice
        .transact(
            "SUBSCRIBE",
            &target,
            &to,
            &call_id,
            &from_tag,
            &["Event: presence".to_owned(), "Expires: 300".to_owned()],
            "",
        )
        .await;
    assert_eq!(code(&r), 481, "{}", text(&r));
}

/// A SIP watcher of a user whose phone publishes only dialog state sees the call.
#[tokio::test]
async fn a_sip_watcher_sees_a_call_published_as_dialog_state() {
    let ts = sip_server(|_| {}).await;
    let (mut alice, _bob_xmpp, _, _) = approved_watch(&ts, SipTransport::Udp).await;
    let mut bob = ts.sip_client("bob", SipTransport::Udp).await;
    let r = publish(&mut bob, "dialog", "application/dialog-info+xml", ON_CALL).await;
    assert_eq!(code(&r), 200, "{}", text(&r));
    let m = alice
        .recv_request_where("NOTIFY", |m| body(m).contains("on-the-phone"))
        .await;
    alice.respond(&m, 200, "OK").await;
}

/// Removing a publication (Expires 0 with its entity-tag) takes its note away.
#[tokio::test]
async fn a_removed_publication_is_no_longer_shown() {
    let ts = sip_server(|_| {}).await;
    let (mut alice, _bob_xmpp, _, _) = approved_watch(&ts, SipTransport::Udp).await;
    let mut bob = ts.sip_client("bob", SipTransport::Udp).await;
    let r = publish(&mut bob, "presence", "application/pidf+xml", GARDEN).await;
    assert_eq!(code(&r), 200, "{}", text(&r));
    let etag = header(&r, "SIP-ETag").expect("SIP-ETag").to_owned();
    let m = alice
        .recv_request_where("NOTIFY", |m| body(m).contains("In the garden"))
        .await;
    alice.respond(&m, 200, "OK").await;
    let aor = bob.aor();
    let r = bob
        .authed(
            "PUBLISH",
            &aor,
            &format!("<{aor}>"),
            &token("pub"),
            &token("f"),
            &[
                "Event: presence".to_owned(),
                format!("SIP-If-Match: {etag}"),
                "Expires: 0".to_owned(),
            ],
            "",
        )
        .await;
    assert_eq!(code(&r), 200, "{}", text(&r));
    let m = alice
        .recv_request_where("NOTIFY", |m| {
            !m.body.is_empty() && !body(m).contains("In the garden")
        })
        .await;
    alice.respond(&m, 200, "OK").await;
    assert!(
        body(&m).contains("open"),
        "bob's XMPP client is still online: {}",
        text(&m)
    );
}

/// A presentity who takes the approval back (XMPP `unsubscribed`) stops the watcher
/// seeing anything: the subscription leaves `active`, and a later publication is not
/// sent.
#[tokio::test]
async fn a_revoked_approval_stops_the_notifications() {
    let ts = sip_server(|_| {}).await;
    let (mut alice, mut bob_xmpp, _, _) = approved_watch(&ts, SipTransport::Udp).await;
    bob_xmpp
        .send("<presence to='alice@localhost' type='unsubscribed'/>")
        .await;
    let m = alice
        .recv_request_where("NOTIFY", |m| {
            header(m, "Subscription-State").is_some_and(|s| !s.starts_with("active"))
        })
        .await;
    alice.respond(&m, 200, "OK").await;
    assert!(m.body.is_empty(), "no document once revoked: {}", text(&m));
    let mut bob = ts.sip_client("bob", SipTransport::Udp).await;
    let secret = GARDEN.replace("In the garden", "At the secret place");
    let r = publish(&mut bob, "presence", "application/pidf+xml", &secret).await;
    assert_eq!(code(&r), 200, "{}", text(&r));
    while let Some(m) = alice
        .request_within("NOTIFY", std::time::Duration::from_secs(2))
        .await
    {
        alice.respond(&m, 200, "OK").await;
        assert!(!body(&m).contains("secret place"), "{}", text(&m));
    }
}

/// XMPP contacts see a SIP registration come and go as the `sip` resource.
#[tokio::test]
async fn xmpp_contacts_see_a_registration_come_and_go() {
    let ts = sip_server(|_| {}).await;
    let mut alice = online(&ts, "alice").await;
    let mut bob_xmpp = online(&ts, "bob").await;
    crate::im::subscribe(&mut alice, &mut bob_xmpp).await;
    let mut bob = ts.sip_client("bob", SipTransport::Udp).await;
    bob.register_ok(600).await;
    crate::im::expect_presence(&mut alice, "bob@localhost/sip", None).await;
    let r = bob.register(0).await;
    assert_eq!(code(&r), 200, "{}", text(&r));
    crate::im::expect_presence(&mut alice, "bob@localhost/sip", Some("unavailable")).await;
}

/// What a SIP device publishes is what XMPP contacts see of its `sip` resource.
#[tokio::test]
async fn a_published_away_reaches_xmpp_contacts() {
    let ts = sip_server(|_| {}).await;
    let mut alice = online(&ts, "alice").await;
    let mut bob_xmpp = online(&ts, "bob").await;
    crate::im::subscribe(&mut alice, &mut bob_xmpp).await;
    let mut bob = ts.sip_client("bob", SipTransport::Udp).await;
    let away = "<?xml version='1.0'?>\
        <presence xmlns='urn:ietf:params:xml:ns:pidf' \
        xmlns:dm='urn:ietf:params:xml:ns:pidf:data-model' \
        xmlns:rpid='urn:ietf:params:xml:ns:pidf:rpid' entity='sip:bob@localhost'>\
        <tuple id='t1'><status><basic>open</basic></status></tuple>\
        <dm:person id='p1'><rpid:activities><rpid:away/></rpid:activities>\
        <dm:note>Back at four</dm:note></dm:person></presence>";
    let r = publish(&mut bob, "presence", "application/pidf+xml", away).await;
    assert_eq!(code(&r), 200, "{}", text(&r));
    let p = alice
        .recv_where("bob's SIP side away", |e| {
            herald_tests::is_presence(e, "bob@localhost/sip", None)
                && e.child("show", ns::CLIENT).is_some()
        })
        .await;
    let xml = herald_tests::xml(&p, ns::CLIENT);
    assert_eq!(
        p.child("show", ns::CLIENT).map(|s| s.text()).as_deref(),
        Some("away"),
        "{xml}"
    );
    assert_eq!(
        crate::im::status(&p).as_deref(),
        Some("Back at four"),
        "{xml}"
    );
}

/// A SUBSCRIBE asking for less than the minimum expiry gets 423 with Min-Expires.
#[tokio::test]
async fn subscribing_below_the_minimum_expiry_gets_423() {
    let ts = sip_server(|_| {}).await;
    let mut alice = ts.sip_client("alice", SipTransport::Udp).await;
    let r = alice
        .authed(
            "SUBSCRIBE",
            "sip:bob@localhost",
            "<sip:bob@localhost>",
            &token("sub"),
            &token("f"),
            &["Event: presence".to_owned(), "Expires: 5".to_owned()],
            "",
        )
        .await;
    assert_eq!(code(&r), 423, "{}", text(&r));
    assert_eq!(header(&r, "Min-Expires"), Some("60"), "{}", text(&r));
    alice.assert_alive().await;
}

/// A registration that survived a restart is a session again: an XMPP contact who
/// logs in afterwards sees the `sip` resource available.
#[tokio::test]
async fn a_registration_is_seen_from_xmpp_after_a_restart() {
    let mut first = sip_server(|_| {}).await;
    {
        let mut alice = online(&first, "alice").await;
        let mut bob_xmpp = online(&first, "bob").await;
        crate::im::subscribe(&mut alice, &mut bob_xmpp).await;
    }
    let mut bob = first.sip_client("bob", SipTransport::Udp).await;
    bob.register_ok(600).await;
    first.shutdown(std::time::Duration::from_secs(2)).await;
    let dir = first.data_dir.clone();
    let second = herald_tests::TestServer::start_with(|c| {
        herald_tests::sip_client::sip_on_loopback(c);
        c.server.data_dir = dir;
    })
    .await;
    let mut alice = second.login("alice", "desk").await;
    alice.send("<presence/>").await;
    crate::im::expect_presence(&mut alice, "bob@localhost/sip", None).await;
    drop(second);
}

/// A user watching their own presence is active at once, with no request to anyone.
#[tokio::test]
async fn a_user_watching_themself_is_active_at_once() {
    let ts = sip_server(|_| {}).await;
    let mut bob = ts.sip_client("bob", SipTransport::Udp).await;
    let r = subscribe(&mut bob, "bob", "presence", "application/pidf+xml").await;
    assert!(is_2xx(&r), "{}", text(&r));
    let n = notify(&mut bob, "presence", "active").await;
    assert!(
        header(&n, "Content-Type").is_some_and(|t| t.starts_with("application/pidf+xml")),
        "{}",
        text(&n)
    );
}
