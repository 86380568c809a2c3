//! Rosters, subscriptions and presence (RFC 6121 §2-§4, XEP-0237).

use super::*;

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
        assert!(
            from.is_none() || from == Some("alice@localhost"),
            "push from {from:?}"
        );
        let item = &roster_items(&push)[0];
        assert_eq!(item.attr("name"), Some("Bob"));
        assert_eq!(
            item.child("group", ns::ROSTER)
                .map(Element::text)
                .as_deref(),
            Some("Friends")
        );
        let ver = roster_ver(&push).expect("the push carries a version");
        assert_ne!(ver, v0);
        assert!(
            v1.is_none() || v1.as_ref() == Some(&ver),
            "both pushes have one version"
        );
        v1 = Some(ver);
    }
    let v1 = v1.unwrap_or_default();

    // Up to date: an empty result. Outdated: the whole roster.
    let same = one
        .iq(
            "get",
            None,
            &format!("<query xmlns='jabber:iq:roster' ver='{v1}'/>"),
        )
        .await;
    assert_eq!(same.attr("type"), Some("result"));
    assert!(
        same.children.is_empty(),
        "no roster when the version is current: {same:?}"
    );
    let full = one
        .iq(
            "get",
            None,
            &format!("<query xmlns='jabber:iq:roster' ver='{v0}'/>"),
        )
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
        assert_ne!(
            roster_ver(&push).as_deref(),
            Some(v2.as_str()),
            "a new version"
        );
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
    alice.send("<presence><status>me</status></presence>").await;
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
    laptop
        .send("<presence><status>back</status></presence>")
        .await;
    bob.recv_where("alice's laptop online", |e| {
        is_presence(e, "alice@localhost/laptop", None) && status(e).as_deref() == Some("back")
    })
    .await;
    laptop.close().await;
    expect_presence(&mut bob, "alice@localhost/laptop", Some("unavailable")).await;
}

// --- more subscription cases ---------------------------------------------------------

#[tokio::test]
async fn subscription_request_to_an_offline_contact_is_delivered_at_login() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    ts.add_user("bob");
    let mut alice = online(&ts, "alice", "a").await;
    alice
        .send(
            "<presence to='bob@localhost' type='subscribe'><status>it's alice</status></presence>",
        )
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
    assert_eq!(
        roster_items(&push)[0].attr("approved"),
        None,
        "the approval is used up"
    );
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
    alice
        .send("<presence><status>gone</status></presence>")
        .await;
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
    alice
        .send("<presence><status>hidden</status></presence>")
        .await;
    alice
        .send("<presence><status>still hidden</status></presence>")
        .await;
    bob.send("<presence><status>knock knock</status></presence>")
        .await;
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
    bob.send("<presence><status>after</status></presence>")
        .await;
    let p = alice
        .recv_where("bob's presence with a status", |e| {
            is_presence(e, "bob@localhost/b", None) && status(e).is_some()
        })
        .await;
    assert_eq!(
        status(&p).as_deref(),
        Some("after"),
        "'knock knock' never arrived"
    );
}
