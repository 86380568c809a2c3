//! Instant messaging and presence (RFC 6121) and the server's IM extensions: roster
//! versioning (XEP-0237), offline messages (XEP-0160, XEP-0203), blocking (XEP-0191),
//! carbons (XEP-0280), disco#info (XEP-0030), version (XEP-0092), ping (XEP-0199).

use herald_tests::{
    body_of, is_presence, stanza_error, stanza_error_type, wait_until, TestServer, XmppClient,
};
use herald_translate::{ns, Element};

const ROSTER_GET: &str = "<query xmlns='jabber:iq:roster'/>";

/// Log in and send initial presence (with `extra` inside it, e.g. a priority), then
/// make sure the server has processed it: a ping is answered after the presence.
async fn available(ts: &TestServer, user: &str, resource: &str, extra: &str) -> XmppClient {
    let mut c = ts.login(user, resource).await;
    c.send(&format!("<presence>{extra}</presence>")).await;
    c.assert_alive().await;
    c
}

/// Log in, request the roster (an "interested" resource) and become available.
async fn online(ts: &TestServer, user: &str, resource: &str) -> XmppClient {
    let mut c = ts.login(user, resource).await;
    let roster = c.iq("get", None, ROSTER_GET).await;
    assert_eq!(roster.attr("type"), Some("result"));
    c.send("<presence/>").await;
    c.assert_alive().await;
    c
}

/// The roster items of a roster result or push.
fn roster_items(iq: &Element) -> Vec<Element> {
    iq.child("query", ns::ROSTER)
        .map(|q| q.elements().cloned().collect())
        .unwrap_or_default()
}

fn roster_ver(iq: &Element) -> Option<String> {
    iq.child("query", ns::ROSTER)
        .and_then(|q| q.attr("ver"))
        .map(str::to_string)
}

/// Wait for a roster push about `jid` with this subscription and pending-out state, and
/// return the whole push.
async fn expect_push(c: &mut XmppClient, jid: &str, subscription: &str, ask: bool) -> Element {
    let what = format!("a roster push {jid} subscription={subscription} ask={ask}");
    c.recv_where(&what, |e| {
        e.is("iq", ns::CLIENT)
            && e.attr("type") == Some("set")
            && roster_items(e).iter().any(|i| {
                i.attr("jid") == Some(jid)
                    && i.attr("subscription") == Some(subscription)
                    && (i.attr("ask") == Some("subscribe")) == ask
            })
    })
    .await
}

/// Wait for a presence stanza from `from` of `kind` (`None`: available).
async fn expect_presence(c: &mut XmppClient, from: &str, kind: Option<&str>) -> Element {
    let what = format!("presence type={kind:?} from {from}");
    c.recv_where(&what, |e| is_presence(e, from, kind)).await
}

/// Status text of a presence.
fn status(p: &Element) -> Option<String> {
    p.child("status", ns::CLIENT).map(Element::text)
}

/// One direction of RFC 6121 §3.1: `x` asks `y`, `y` approves.
async fn subscribe(x: &mut XmppClient, y: &mut XmppClient) {
    let (x_bare, y_bare) = (x.bare_jid().to_string(), y.bare_jid().to_string());
    x.send(&format!("<presence to='{y_bare}' type='subscribe'/>")).await;
    let request = expect_presence(y, &x_bare, Some("subscribe")).await;
    assert_eq!(request.attr("to"), Some(y_bare.as_str()));
    y.send(&format!("<presence to='{x_bare}' type='subscribed'/>")).await;
    expect_presence(x, &y_bare, Some("subscribed")).await;
}

/// Build a mutual (`both`) subscription between two online, interested clients.
async fn subscribe_mutually(a: &mut XmppClient, b: &mut XmppClient) {
    subscribe(a, b).await;
    subscribe(b, a).await;
    let (a_bare, b_bare) = (a.bare_jid().to_string(), b.bare_jid().to_string());
    expect_push(a, &b_bare, "both", false).await;
    expect_push(b, &a_bare, "both", false).await;
}

// --- roster ------------------------------------------------------------------------

#[tokio::test]
async fn roster_get_set_push_remove_and_versioning() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    let mut one = ts.login("alice", "one").await;
    let mut two = ts.login("alice", "two").await;

    let empty = one.iq("get", None, ROSTER_GET).await;
    assert_eq!(empty.attr("type"), Some("result"));
    assert!(roster_items(&empty).is_empty());
    let v0 = roster_ver(&empty).expect("the roster is versioned");
    two.iq("get", None, ROSTER_GET).await;

    // Add a contact: result, and a push to every interested resource.
    let set = one
        .iq(
            "set",
            None,
            "<query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='Bob'>\
             <group>Friends</group></item></query>",
        )
        .await;
    assert_eq!(set.attr("type"), Some("result"), "{set:?}");
    let mut v1 = None;
    for c in [&mut one, &mut two] {
        let push = expect_push(c, "bob@localhost", "none", false).await;
        let from = push.attr("from");
        assert!(from.is_none() || from == Some("alice@localhost"), "push from {from:?}");
        let item = &roster_items(&push)[0];
        assert_eq!(item.attr("name"), Some("Bob"));
        assert_eq!(
            item.child("group", ns::ROSTER).map(Element::text).as_deref(),
            Some("Friends")
        );
        let ver = roster_ver(&push).expect("the push carries a version");
        assert_ne!(ver, v0);
        assert!(v1.is_none() || v1.as_ref() == Some(&ver), "both pushes have one version");
        v1 = Some(ver);
    }
    let v1 = v1.unwrap_or_default();

    // Up to date: an empty result. Outdated: the whole roster.
    let same = one
        .iq("get", None, &format!("<query xmlns='jabber:iq:roster' ver='{v1}'/>"))
        .await;
    assert_eq!(same.attr("type"), Some("result"));
    assert!(same.children.is_empty(), "no roster when the version is current: {same:?}");
    let full = one
        .iq("get", None, &format!("<query xmlns='jabber:iq:roster' ver='{v0}'/>"))
        .await;
    assert_eq!(roster_ver(&full).as_deref(), Some(v1.as_str()));
    let items = roster_items(&full);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].attr("jid"), Some("bob@localhost"));
    assert_eq!(items[0].attr("subscription"), Some("none"));

    // A client cannot set the subscription state: those attributes are ignored.
    let forged = one
        .iq(
            "set",
            None,
            "<query xmlns='jabber:iq:roster'><item jid='carol@localhost' subscription='both' \
             ask='subscribe' approved='true'/></query>",
        )
        .await;
    assert_eq!(forged.attr("type"), Some("result"));
    let push = expect_push(&mut one, "carol@localhost", "none", false).await;
    assert_eq!(roster_items(&push)[0].attr("approved"), None);
    let removed = one
        .iq(
            "set",
            None,
            "<query xmlns='jabber:iq:roster'><item jid='carol@localhost' subscription='remove'/></query>",
        )
        .await;
    assert_eq!(removed.attr("type"), Some("result"));
    let v2 = roster_ver(&expect_push(&mut one, "carol@localhost", "remove", false).await)
        .unwrap_or_default();
    expect_push(&mut two, "carol@localhost", "remove", false).await;

    // Invalid sets are refused.
    let two_items = one
        .iq(
            "set",
            None,
            "<query xmlns='jabber:iq:roster'><item jid='x@localhost'/><item jid='y@localhost'/></query>",
        )
        .await;
    assert_eq!(stanza_error(&two_items).as_deref(), Some("bad-request"));
    let missing = one
        .iq(
            "set",
            None,
            "<query xmlns='jabber:iq:roster'><item jid='nobody@localhost' subscription='remove'/></query>",
        )
        .await;
    assert_eq!(stanza_error(&missing).as_deref(), Some("item-not-found"));

    // Remove: result and a `remove` push to every interested resource.
    let removed = one
        .iq(
            "set",
            None,
            "<query xmlns='jabber:iq:roster'><item jid='bob@localhost' subscription='remove'/></query>",
        )
        .await;
    assert_eq!(removed.attr("type"), Some("result"));
    for c in [&mut one, &mut two] {
        let push = expect_push(c, "bob@localhost", "remove", false).await;
        assert_ne!(roster_ver(&push).as_deref(), Some(v2.as_str()), "a new version");
    }
    let after = two.iq("get", None, ROSTER_GET).await;
    assert!(roster_items(&after).is_empty());
}

// --- subscriptions and presence ----------------------------------------------------------

#[tokio::test]
async fn subscription_handshake_both_ways_then_presence_flows() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    ts.add_user("bob");
    let mut alice = online(&ts, "alice", "a").await;
    let mut bob = online(&ts, "bob", "b").await;

    // alice asks bob.
    alice
        .send("<presence to='bob@localhost' type='subscribe'/>")
        .await;
    expect_push(&mut alice, "bob@localhost", "none", true).await;
    let request = expect_presence(&mut bob, "alice@localhost", Some("subscribe")).await;
    assert_eq!(request.attr("to"), Some("bob@localhost"));

    // bob approves: he gets `from`, alice gets `to`, the approval and bob's presence.
    bob.send("<presence to='alice@localhost' type='subscribed'/>")
        .await;
    expect_push(&mut bob, "alice@localhost", "from", false).await;
    expect_presence(&mut alice, "bob@localhost", Some("subscribed")).await;
    expect_push(&mut alice, "bob@localhost", "to", false).await;
    expect_presence(&mut alice, "bob@localhost/b", None).await;

    // And the other way round: both end with `both`.
    bob.send("<presence to='alice@localhost' type='subscribe'/>")
        .await;
    expect_push(&mut bob, "alice@localhost", "from", true).await;
    expect_presence(&mut alice, "bob@localhost", Some("subscribe")).await;
    alice
        .send("<presence to='bob@localhost' type='subscribed'/>")
        .await;
    expect_push(&mut alice, "bob@localhost", "both", false).await;
    expect_presence(&mut bob, "alice@localhost", Some("subscribed")).await;
    expect_push(&mut bob, "alice@localhost", "both", false).await;
    expect_presence(&mut bob, "alice@localhost/a", None).await;

    // Presence changes now reach the contact.
    alice
        .send("<presence><show>away</show><status>lunch</status></presence>")
        .await;
    let p = bob
        .recv_where("alice's away presence", |e| {
            is_presence(e, "alice@localhost/a", None) && status(e).as_deref() == Some("lunch")
        })
        .await;
    assert_eq!(
        p.child("show", ns::CLIENT).map(Element::text).as_deref(),
        Some("away")
    );
    bob.send("<presence><status>busy</status></presence>").await;
    alice
        .recv_where("bob's busy presence", |e| {
            is_presence(e, "bob@localhost/b", None) && status(e).as_deref() == Some("busy")
        })
        .await;

    let roster = alice.iq("get", None, ROSTER_GET).await;
    let items = roster_items(&roster);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].attr("subscription"), Some("both"));
}

#[tokio::test]
async fn presence_probe_is_answered_at_login() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    ts.add_user("bob");
    let mut alice = online(&ts, "alice", "a").await;
    let mut bob = online(&ts, "bob", "b").await;
    subscribe_mutually(&mut alice, &mut bob).await;
    bob.send("<presence><status>here</status></presence>").await;
    bob.assert_alive().await;

    // A new resource of alice's learns bob's current presence from the probe its initial
    // presence triggers, and sees her other available resource.
    let mut laptop = ts.login("alice", "laptop").await;
    laptop.send("<presence/>").await;
    let p = expect_presence(&mut laptop, "bob@localhost/b", None).await;
    assert_eq!(status(&p).as_deref(), Some("here"));
    expect_presence(&mut laptop, "alice@localhost/a", None).await;
    // And bob and alice's other resource see the new one.
    expect_presence(&mut bob, "alice@localhost/laptop", None).await;
    expect_presence(&mut alice, "alice@localhost/laptop", None).await;
}

#[tokio::test]
async fn initial_presence_is_echoed_to_the_sending_resource() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    let mut alice = ts.login("alice", "a").await;
    alice
        .send("<presence><status>me</status></presence>")
        .await;
    let p = expect_presence(&mut alice, "alice@localhost/a", None).await;
    assert_eq!(status(&p).as_deref(), Some("me"));
}

#[tokio::test]
async fn directed_presence_and_its_unavailable_on_disconnect() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    ts.add_user("bob");
    let mut bob = online(&ts, "bob", "b").await;
    let mut alice = online(&ts, "alice", "a").await;
    // Not subscribed: only directed presence reaches bob.
    alice
        .send("<presence to='bob@localhost/b'><status>psst</status></presence>")
        .await;
    let p = expect_presence(&mut bob, "alice@localhost/a", None).await;
    assert_eq!(status(&p).as_deref(), Some("psst"));
    assert_eq!(p.attr("to"), Some("bob@localhost/b"));
    // Whoever got directed presence learns that the session ended.
    alice.abort();
    expect_presence(&mut bob, "alice@localhost/a", Some("unavailable")).await;
}

#[tokio::test]
async fn unavailable_presence_on_disconnect_reaches_subscribers() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    ts.add_user("bob");
    let mut alice = online(&ts, "alice", "a").await;
    let mut bob = online(&ts, "bob", "b").await;
    subscribe_mutually(&mut alice, &mut bob).await;

    // A dropped connection.
    alice.abort();
    expect_presence(&mut bob, "alice@localhost/a", Some("unavailable")).await;

    // A stream closed politely.
    let mut laptop = ts.login("alice", "laptop").await;
    laptop.send("<presence><status>back</status></presence>").await;
    bob.recv_where("alice's laptop online", |e| {
        is_presence(e, "alice@localhost/laptop", None) && status(e).as_deref() == Some("back")
    })
    .await;
    laptop.close().await;
    expect_presence(&mut bob, "alice@localhost/laptop", Some("unavailable")).await;
}

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
    alice
        .send_message("bob@localhost/negative", "direct")
        .await;
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
    assert_eq!(body_of(&m).as_deref(), Some("everyone"), "one never got 'only two'");
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
        .recv_where("the bounce", |e| e.name == "message" && e.attr("type") == Some("error"))
        .await;
    assert_eq!(stanza_error(&bounce).as_deref(), Some("service-unavailable"));
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
        assert_eq!(body_of(&m).as_deref(), Some(expected), "stored order is kept");
        assert_eq!(m.attr("from"), Some("alice@localhost/a"));
        assert_eq!(m.attr("to"), Some("bob@localhost/phone"));
        let delay = m
            .child("delay", ns::DELAY)
            .unwrap_or_else(|| panic!("offline message without <delay/>: {m:?}"));
        assert_eq!(delay.attr("from"), Some("localhost"));
        let stamp = delay.attr("stamp").unwrap_or_default();
        assert!(stamp.ends_with('Z') && stamp.contains('T'), "XEP-0082 stamp {stamp:?}");
    }
    let store = std::sync::Arc::clone(&ts.server.store);
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
        .recv_where("the bounce", |e| e.name == "message" && e.attr("type") == Some("error"))
        .await;
    assert_eq!(body_of(&bounce).as_deref(), Some("three"), "the third bounces");
    assert_eq!(stanza_error(&bounce).as_deref(), Some("service-unavailable"));
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
    assert_eq!(body_of(&m).as_deref(), Some("four"), "'three' was not stored");
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
    assert_eq!(blocklist(&alice.iq("get", None, get).await), ["bob@localhost"]);

    // bob's message is not delivered; he gets an error.
    bob.send_message("alice@localhost/a", "blocked?").await;
    let bounce = bob
        .recv_where("the bounce", |e| e.name == "message" && e.attr("type") == Some("error"))
        .await;
    assert_eq!(stanza_error(&bounce).as_deref(), Some("service-unavailable"));
    // alice cannot write to a contact she blocked.
    alice.send_message("bob@localhost/b", "to a blocked contact").await;
    let refused = alice
        .recv_where("the refusal", |e| e.name == "message" && e.attr("type") == Some("error"))
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
    assert_eq!(body_of(&m).as_deref(), Some("after unblock"), "'blocked?' never arrived");

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
        let enabled = c.iq("set", None, "<enable xmlns='urn:xmpp:carbons:2'/>").await;
        assert_eq!(enabled.attr("type"), Some("result"));
    }

    // Received: bob writes to r1, r2 gets a copy.
    bob.send_message("alice@localhost/r1", "hi r1").await;
    r1.recv_message_with_body("hi r1").await;
    let copy = r2
        .recv_where("a received carbon", |e| e.has_child("received", ns::CARBONS))
        .await;
    assert_eq!(copy.attr("from"), Some("alice@localhost"), "carbons come from the bare JID");
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
    assert_eq!(body_of(&next).as_deref(), Some("marker"), "no carbon of its own message");

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
    assert_eq!(body_of(&inner).as_deref(), Some("public"), "'secret' was not copied");
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
    let query = info.child("query", ns::DISCO_INFO).expect("a disco#info query");
    let identity = query.child("identity", ns::DISCO_INFO).expect("an identity");
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
        .iq("get", Some("localhost"), "<query xmlns='jabber:iq:version'/>")
        .await;
    assert_eq!(reply.attr("type"), Some("result"));
    let query = reply.child("query", ns::VERSION).expect("a version query");
    assert_eq!(
        query.child("name", ns::VERSION).map(Element::text).as_deref(),
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

// --- more subscription cases ---------------------------------------------------------

#[tokio::test]
async fn subscription_request_to_an_offline_contact_is_delivered_at_login() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    ts.add_user("bob");
    let mut alice = online(&ts, "alice", "a").await;
    alice
        .send("<presence to='bob@localhost' type='subscribe'><status>it's alice</status></presence>")
        .await;
    expect_push(&mut alice, "bob@localhost", "none", true).await;

    let mut bob = ts.login("bob", "b").await;
    bob.send("<presence/>").await;
    let request = expect_presence(&mut bob, "alice@localhost", Some("subscribe")).await;
    assert_eq!(status(&request).as_deref(), Some("it's alice"));
    bob.send("<presence to='alice@localhost' type='subscribed'/>")
        .await;
    expect_push(&mut alice, "bob@localhost", "to", false).await;
    expect_presence(&mut alice, "bob@localhost/b", None).await;
}

#[tokio::test]
async fn pre_approved_subscription_is_accepted_automatically() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    ts.add_user("bob");
    let mut alice = online(&ts, "alice", "a").await;
    let mut bob = online(&ts, "bob", "b").await;
    assert!(
        alice
            .features
            .as_ref()
            .is_some_and(|f| f.has_child("sub", ns::PRE_APPROVAL)),
        "pre-approval is announced"
    );

    // RFC 6121 §3.4: alice approves before bob asks.
    alice
        .send("<presence to='bob@localhost' type='subscribed'/>")
        .await;
    let push = expect_push(&mut alice, "bob@localhost", "none", false).await;
    assert_eq!(roster_items(&push)[0].attr("approved"), Some("true"));

    bob.send("<presence to='alice@localhost' type='subscribe'/>")
        .await;
    expect_presence(&mut bob, "alice@localhost", Some("subscribed")).await;
    expect_push(&mut bob, "alice@localhost", "to", false).await;
    expect_presence(&mut bob, "alice@localhost/a", None).await;
    let push = expect_push(&mut alice, "bob@localhost", "from", false).await;
    assert_eq!(roster_items(&push)[0].attr("approved"), None, "the approval is used up");
    alice.assert_alive().await;
    assert!(
        alice
            .pending()
            .all(|e| !is_presence(e, "bob@localhost", Some("subscribe"))),
        "alice was not asked"
    );
}

#[tokio::test]
async fn removing_a_contact_cancels_both_subscriptions() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    ts.add_user("bob");
    let mut alice = online(&ts, "alice", "a").await;
    let mut bob = online(&ts, "bob", "b").await;
    subscribe_mutually(&mut alice, &mut bob).await;

    let removed = alice
        .iq(
            "set",
            None,
            "<query xmlns='jabber:iq:roster'><item jid='bob@localhost' subscription='remove'/></query>",
        )
        .await;
    assert_eq!(removed.attr("type"), Some("result"));
    expect_push(&mut alice, "bob@localhost", "remove", false).await;
    // RFC 6121 §2.5.2: bob is unsubscribed both ways and stops seeing alice.
    expect_presence(&mut bob, "alice@localhost", Some("unsubscribe")).await;
    expect_presence(&mut bob, "alice@localhost", Some("unsubscribed")).await;
    expect_push(&mut bob, "alice@localhost", "none", false).await;
    expect_presence(&mut bob, "alice@localhost/a", Some("unavailable")).await;

    // alice's presence no longer reaches bob: his next presence from her is directed.
    alice.send("<presence><status>gone</status></presence>").await;
    alice
        .send("<presence to='bob@localhost/b'><status>directed</status></presence>")
        .await;
    let p = bob
        .recv_where("alice's next presence with a status", |e| {
            e.name == "presence"
                && e.attr("from") == Some("alice@localhost/a")
                && status(e).is_some()
        })
        .await;
    assert_eq!(status(&p).as_deref(), Some("directed"));
}

#[tokio::test]
async fn blocking_hides_presence_both_ways() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    ts.add_user("bob");
    let mut alice = online(&ts, "alice", "a").await;
    let mut bob = online(&ts, "bob", "b").await;
    subscribe_mutually(&mut alice, &mut bob).await;

    alice
        .iq(
            "set",
            None,
            "<block xmlns='urn:xmpp:blocking'><item jid='bob@localhost'/></block>",
        )
        .await;
    // XEP-0191 §3.3: the blocked contact sees alice go offline...
    expect_presence(&mut bob, "alice@localhost/a", Some("unavailable")).await;
    // ...and gets none of her updates, nor does she get his.
    alice.send("<presence><status>hidden</status></presence>").await;
    alice.send("<presence><status>still hidden</status></presence>").await;
    bob.send("<presence><status>knock knock</status></presence>").await;
    bob.assert_alive().await;
    alice.assert_alive().await;

    alice
        .iq(
            "set",
            None,
            "<unblock xmlns='urn:xmpp:blocking'><item jid='bob@localhost'/></unblock>",
        )
        .await;
    // Unblocked: bob gets alice's current presence, the first since the block.
    let p = bob
        .recv_where("alice's presence with a status", |e| {
            is_presence(e, "alice@localhost/a", None) && status(e).is_some()
        })
        .await;
    assert_eq!(status(&p).as_deref(), Some("still hidden"));
    bob.send("<presence><status>after</status></presence>").await;
    let p = alice
        .recv_where("bob's presence with a status", |e| {
            is_presence(e, "bob@localhost/b", None) && status(e).is_some()
        })
        .await;
    assert_eq!(status(&p).as_deref(), Some("after"), "'knock knock' never arrived");
}

#[tokio::test]
async fn iq_to_a_resource_that_is_not_online_is_service_unavailable() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    ts.add_user("bob");
    let mut alice = ts.login("alice", "a").await;
    let reply = alice
        .iq("get", Some("bob@localhost/gone"), "<ping xmlns='urn:xmpp:ping'/>")
        .await;
    assert_eq!(stanza_error(&reply).as_deref(), Some("service-unavailable"));
    assert_eq!(reply.attr("from"), Some("bob@localhost/gone"));
}
