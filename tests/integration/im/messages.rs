//! Messages, offline storage, blocking, carbons and the server's own services.

use super::*;

// --- messages ------------------------------------------------------------------------

#[tokio::test]
async fn message_to_bare_jid_reaches_every_non_negative_resource() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    ts.add_user("bob");
    let mut high = available(&ts, "bob", "high", "<priority>1</priority>").await;
    let mut zero = available(&ts, "bob", "zero", "<priority>0</priority>").await;
    let mut negative = available(&ts, "bob", "negative", "<priority>-1</priority>").await;
    let mut alice = ts.login("alice", "a").await;

    alice.send_message("bob@localhost", "to all").await;
    for c in [&mut high, &mut zero] {
        let m = c.recv_message().await;
        assert_eq!(body_of(&m).as_deref(), Some("to all"), "{}", c.jid);
        assert_eq!(m.attr("from"), Some("alice@localhost/a"));
    }
    // The negative-priority resource only gets what is addressed to it: the first
    // message it receives is the one sent to its full JID after the broadcast one.
    alice.send_message("bob@localhost/negative", "direct").await;
    let m = negative.recv_message().await;
    assert_eq!(body_of(&m).as_deref(), Some("direct"));
}

#[tokio::test]
async fn message_to_full_jid_reaches_only_that_resource() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    ts.add_user("bob");
    let mut one = available(&ts, "bob", "one", "").await;
    let mut two = available(&ts, "bob", "two", "").await;
    let mut alice = ts.login("alice", "a").await;

    alice.send_message("bob@localhost/two", "only two").await;
    let m = two.recv_message().await;
    assert_eq!(body_of(&m).as_deref(), Some("only two"));
    assert_eq!(m.attr("to"), Some("bob@localhost/two"));
    alice.send_message("bob@localhost", "everyone").await;
    let m = one.recv_message().await;
    assert_eq!(
        body_of(&m).as_deref(),
        Some("everyone"),
        "one never got 'only two'"
    );
    two.recv_message_with_body("everyone").await;

    // Addresses are compared in normalized form (the resource part is case-sensitive).
    alice.send_message("BOB@LocalHost/two", "normalized").await;
    two.recv_message_with_body("normalized").await;

    // A chat message to a resource that is not online falls back to the bare JID.
    alice.send_message("bob@localhost/gone", "fallback").await;
    one.recv_message_with_body("fallback").await;
    two.recv_message_with_body("fallback").await;

    // A message to an account that does not exist bounces.
    alice.send_message("nobody@localhost", "hello?").await;
    let bounce = alice
        .recv_where("the bounce", |e| {
            e.name == "message" && e.attr("type") == Some("error")
        })
        .await;
    assert_eq!(
        stanza_error(&bounce).as_deref(),
        Some("service-unavailable")
    );
    assert_eq!(bounce.attr("from"), Some("nobody@localhost"));
}

#[tokio::test]
async fn offline_messages_are_delivered_with_delay_after_initial_presence() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    ts.add_user("bob");
    let mut alice = ts.login("alice", "a").await;
    alice.send_message("bob@localhost", "first").await;
    alice.send_message("bob@localhost", "second").await;
    // Handled in order: once the ping is answered both messages are stored.
    alice.assert_alive().await;
    assert!(
        alice.pending().all(|e| e.attr("type") != Some("error")),
        "no bounce"
    );

    let mut bob = ts.login("bob", "phone").await;
    bob.assert_alive().await;
    assert!(
        bob.pending().all(|e| e.name != "message"),
        "nothing before initial presence"
    );
    bob.send("<presence/>").await;
    for expected in ["first", "second"] {
        let m = bob.recv_message().await;
        assert_eq!(
            body_of(&m).as_deref(),
            Some(expected),
            "stored order is kept"
        );
        assert_eq!(m.attr("from"), Some("alice@localhost/a"));
        assert_eq!(m.attr("to"), Some("bob@localhost/phone"));
        let delay = m
            .child("delay", ns::DELAY)
            .unwrap_or_else(|| panic!("offline message without <delay/>: {m:?}"));
        assert_eq!(delay.attr("from"), Some("localhost"));
        let stamp = delay.attr("stamp").unwrap_or_default();
        assert!(
            stamp.ends_with('Z') && stamp.contains('T'),
            "XEP-0082 stamp {stamp:?}"
        );
    }
    let store = std::sync::Arc::clone(ts.server.db.store());
    wait_until("the delivered messages are deleted", || {
        store.offline_count("bob").ok() == Some(0)
    })
    .await;
}

#[tokio::test]
async fn offline_quota_bounces_the_excess_message() {
    let ts = TestServer::start_with(|c| c.c2s.offline_quota = 2).await;
    ts.add_user("alice");
    ts.add_user("bob");
    let mut alice = ts.login("alice", "a").await;
    for body in ["one", "two", "three"] {
        alice.send_message("bob@localhost", body).await;
    }
    let bounce = alice
        .recv_where("the bounce", |e| {
            e.name == "message" && e.attr("type") == Some("error")
        })
        .await;
    assert_eq!(
        body_of(&bounce).as_deref(),
        Some("three"),
        "the third bounces"
    );
    assert_eq!(
        stanza_error(&bounce).as_deref(),
        Some("service-unavailable")
    );
    assert_eq!(stanza_error_type(&bounce).as_deref(), Some("wait"));
    assert_eq!(bounce.attr("from"), Some("bob@localhost"));
    alice.assert_alive().await;
    assert!(
        alice.pending().all(|e| e.attr("type") != Some("error")),
        "only one bounce"
    );

    let mut bob = ts.login("bob", "phone").await;
    bob.send("<presence/>").await;
    bob.recv_message_with_body("one").await;
    bob.recv_message_with_body("two").await;
    alice.send_message("bob@localhost", "four").await;
    let m = bob.recv_message().await;
    assert_eq!(
        body_of(&m).as_deref(),
        Some("four"),
        "'three' was not stored"
    );
}

// --- blocking (XEP-0191) ---------------------------------------------------------------

fn blocklist(iq: &Element) -> Vec<String> {
    iq.child("blocklist", ns::BLOCKING)
        .map(|l| {
            l.elements()
                .filter_map(|i| i.attr("jid").map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn blocking_command_list_block_unblock_and_enforcement() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    ts.add_user("bob");
    let mut alice = online(&ts, "alice", "a").await;
    let mut bob = online(&ts, "bob", "b").await;
    let get = "<blocklist xmlns='urn:xmpp:blocking'/>";

    let list = alice.iq("get", None, get).await;
    assert_eq!(list.attr("type"), Some("result"));
    assert!(blocklist(&list).is_empty());

    let blocked = alice
        .iq(
            "set",
            None,
            "<block xmlns='urn:xmpp:blocking'><item jid='bob@localhost'/></block>",
        )
        .await;
    assert_eq!(blocked.attr("type"), Some("result"));
    let push = alice
        .recv_where("the block push", |e| {
            e.attr("type") == Some("set") && e.has_child("block", ns::BLOCKING)
        })
        .await;
    let item = push
        .child("block", ns::BLOCKING)
        .and_then(|b| b.child("item", ns::BLOCKING))
        .and_then(|i| i.attr("jid"));
    assert_eq!(item, Some("bob@localhost"));
    assert_eq!(
        blocklist(&alice.iq("get", None, get).await),
        ["bob@localhost"]
    );

    // bob's message is not delivered; he gets an error.
    bob.send_message("alice@localhost/a", "blocked?").await;
    let bounce = bob
        .recv_where("the bounce", |e| {
            e.name == "message" && e.attr("type") == Some("error")
        })
        .await;
    assert_eq!(
        stanza_error(&bounce).as_deref(),
        Some("service-unavailable")
    );
    // alice cannot write to a contact she blocked.
    alice
        .send_message("bob@localhost/b", "to a blocked contact")
        .await;
    let refused = alice
        .recv_where("the refusal", |e| {
            e.name == "message" && e.attr("type") == Some("error")
        })
        .await;
    assert_eq!(stanza_error(&refused).as_deref(), Some("not-acceptable"));
    let app = refused
        .child("error", ns::CLIENT)
        .is_some_and(|e| e.has_child("blocked", ns::BLOCKING_ERRORS));
    assert!(app, "the error carries <blocked/>: {refused:?}");

    let unblocked = alice
        .iq(
            "set",
            None,
            "<unblock xmlns='urn:xmpp:blocking'><item jid='bob@localhost'/></unblock>",
        )
        .await;
    assert_eq!(unblocked.attr("type"), Some("result"));
    alice
        .recv_where("the unblock push", |e| {
            e.attr("type") == Some("set") && e.has_child("unblock", ns::BLOCKING)
        })
        .await;
    assert!(blocklist(&alice.iq("get", None, get).await).is_empty());
    bob.send_message("alice@localhost/a", "after unblock").await;
    let m = alice
        .recv_where("a message from bob", |e| {
            e.name == "message" && e.attr("from") == Some("bob@localhost/b")
        })
        .await;
    assert_eq!(
        body_of(&m).as_deref(),
        Some("after unblock"),
        "'blocked?' never arrived"
    );

    // An empty <unblock/> clears the whole list.
    alice
        .iq(
            "set",
            None,
            "<block xmlns='urn:xmpp:blocking'><item jid='carol@localhost'/>\
             <item jid='example.org'/></block>",
        )
        .await;
    assert_eq!(blocklist(&alice.iq("get", None, get).await).len(), 2);
    alice
        .iq("set", None, "<unblock xmlns='urn:xmpp:blocking'/>")
        .await;
    assert!(blocklist(&alice.iq("get", None, get).await).is_empty());
}

// --- carbons (XEP-0280) -----------------------------------------------------------------

/// The message forwarded inside a carbon of this direction (`received` or `sent`).
fn carbon_of(el: &Element, direction: &str) -> Option<Element> {
    el.child(direction, ns::CARBONS)?
        .child("forwarded", ns::FORWARD)?
        .child("message", ns::CLIENT)
        .cloned()
}

#[tokio::test]
async fn carbons_copy_received_and_sent_messages_to_the_other_resource() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    ts.add_user("bob");
    let mut r1 = available(&ts, "alice", "r1", "").await;
    let mut r2 = available(&ts, "alice", "r2", "").await;
    let mut bob = available(&ts, "bob", "b", "").await;
    for c in [&mut r1, &mut r2] {
        let enabled = c
            .iq("set", None, "<enable xmlns='urn:xmpp:carbons:2'/>")
            .await;
        assert_eq!(enabled.attr("type"), Some("result"));
    }

    // Received: bob writes to r1, r2 gets a copy.
    bob.send_message("alice@localhost/r1", "hi r1").await;
    r1.recv_message_with_body("hi r1").await;
    let copy = r2
        .recv_where("a received carbon", |e| {
            e.has_child("received", ns::CARBONS)
        })
        .await;
    assert_eq!(
        copy.attr("from"),
        Some("alice@localhost"),
        "carbons come from the bare JID"
    );
    let inner = carbon_of(&copy, "received").expect("forwarded message");
    assert_eq!(body_of(&inner).as_deref(), Some("hi r1"));
    assert_eq!(inner.attr("from"), Some("bob@localhost/b"));
    assert_eq!(inner.attr("to"), Some("alice@localhost/r1"));

    // Sent: r1 writes to bob, r2 gets a copy, r1 does not.
    r1.send_message("bob@localhost", "from r1").await;
    bob.recv_message_with_body("from r1").await;
    let copy = r2
        .recv_where("a sent carbon", |e| e.has_child("sent", ns::CARBONS))
        .await;
    assert_eq!(copy.attr("from"), Some("alice@localhost"));
    let inner = carbon_of(&copy, "sent").expect("forwarded message");
    assert_eq!(body_of(&inner).as_deref(), Some("from r1"));
    assert_eq!(inner.attr("from"), Some("alice@localhost/r1"));
    assert_eq!(inner.attr("to"), Some("bob@localhost"));
    bob.send_message("alice@localhost/r1", "marker").await;
    let next = r1
        .recv_where("the next message", |e| e.name == "message")
        .await;
    assert_eq!(
        body_of(&next).as_deref(),
        Some("marker"),
        "no carbon of its own message"
    );

    // <private/> messages are not copied, and the marker is removed for the recipient.
    r1.send(
        "<message to='bob@localhost' type='chat'><body>secret</body>\
         <private xmlns='urn:xmpp:carbons:2'/></message>",
    )
    .await;
    let m = bob.recv_message_with_body("secret").await;
    assert!(!m.has_child("private", ns::CARBONS));
    r1.send_message("bob@localhost", "public").await;
    let copy = r2
        .recv_where("a sent carbon", |e| e.has_child("sent", ns::CARBONS))
        .await;
    let inner = carbon_of(&copy, "sent").expect("forwarded message");
    assert_eq!(
        body_of(&inner).as_deref(),
        Some("public"),
        "'secret' was not copied"
    );
}

// --- server services -------------------------------------------------------------------

#[tokio::test]
async fn disco_info_on_the_domain_lists_identity_and_features() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    let mut alice = ts.login("alice", "a").await;
    let info = alice
        .iq(
            "get",
            Some("localhost"),
            "<query xmlns='http://jabber.org/protocol/disco#info'/>",
        )
        .await;
    assert_eq!(info.attr("type"), Some("result"));
    assert_eq!(info.attr("from"), Some("localhost"));
    let query = info
        .child("query", ns::DISCO_INFO)
        .expect("a disco#info query");
    let identity = query
        .child("identity", ns::DISCO_INFO)
        .expect("an identity");
    assert_eq!(identity.attr("category"), Some("server"));
    assert_eq!(identity.attr("type"), Some("im"));
    let features: Vec<&str> = query
        .elements()
        .filter(|e| e.name == "feature")
        .filter_map(|e| e.attr("var"))
        .collect();
    for wanted in [
        ns::DISCO_INFO,
        ns::DISCO_ITEMS,
        ns::PING,
        ns::VERSION,
        ns::BLOCKING,
        ns::CARBONS,
        ns::ROSTER,
        ns::MSGOFFLINE,
    ] {
        assert!(features.contains(&wanted), "{wanted} in {features:?}");
    }
    let items = alice
        .iq(
            "get",
            Some("localhost"),
            "<query xmlns='http://jabber.org/protocol/disco#items'/>",
        )
        .await;
    assert!(items.has_child("query", ns::DISCO_ITEMS));
}

#[tokio::test]
async fn software_version() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    let mut alice = ts.login("alice", "a").await;
    let reply = alice
        .iq(
            "get",
            Some("localhost"),
            "<query xmlns='jabber:iq:version'/>",
        )
        .await;
    assert_eq!(reply.attr("type"), Some("result"));
    let query = reply.child("query", ns::VERSION).expect("a version query");
    assert_eq!(
        query
            .child("name", ns::VERSION)
            .map(Element::text)
            .as_deref(),
        Some("Herald")
    );
    let version = query
        .child("version", ns::VERSION)
        .map(Element::text)
        .unwrap_or_default();
    assert!(!version.is_empty());
}

#[tokio::test]
async fn ping_the_server_the_account_and_another_client() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    ts.add_user("bob");
    let mut alice = ts.login("alice", "a").await;
    let mut bob = ts.login("bob", "b").await;
    let ping = "<ping xmlns='urn:xmpp:ping'/>";
    for to in [None, Some("localhost"), Some("alice@localhost")] {
        let reply = alice.iq("get", to, ping).await;
        assert_eq!(reply.attr("type"), Some("result"), "ping to {to:?}");
    }
    // An IQ to a full JID is routed to that client, and its answer back.
    alice
        .send("<iq type='get' id='p2p' to='bob@localhost/b'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    let request = bob
        .recv_where("alice's ping", |e| e.attr("id") == Some("p2p"))
        .await;
    assert_eq!(request.attr("from"), Some("alice@localhost/a"));
    bob.send("<iq type='result' id='p2p' to='alice@localhost/a'/>")
        .await;
    let answer = alice.recv_iq_response("p2p").await;
    assert_eq!(answer.attr("type"), Some("result"));
    assert_eq!(answer.attr("from"), Some("bob@localhost/b"));
}

#[tokio::test]
async fn iq_to_a_resource_that_is_not_online_is_service_unavailable() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    ts.add_user("bob");
    let mut alice = ts.login("alice", "a").await;
    let reply = alice
        .iq(
            "get",
            Some("bob@localhost/gone"),
            "<ping xmlns='urn:xmpp:ping'/>",
        )
        .await;
    assert_eq!(stanza_error(&reply).as_deref(), Some("service-unavailable"));
    assert_eq!(reply.attr("from"), Some("bob@localhost/gone"));
}
