//! Instant messaging and presence (RFC 6121) and the server's IM extensions: roster
//! versioning (XEP-0237), offline messages (XEP-0160, XEP-0203), blocking (XEP-0191),
//! carbons (XEP-0280), disco#info (XEP-0030), version (XEP-0092), ping (XEP-0199).

use herald_tests::{
    body_of, is_presence, stanza_error, stanza_error_type, wait_until, TestServer, XmppClient,
};
use herald_translate::{ns, Element};

mod messages;
mod roster;

pub(super) const ROSTER_GET: &str = "<query xmlns='jabber:iq:roster'/>";

/// Log in and send initial presence (with `extra` inside it, e.g. a priority), then
/// make sure the server has processed it: a ping is answered after the presence.
pub(super) async fn available(
    ts: &TestServer,
    user: &str,
    resource: &str,
    extra: &str,
) -> XmppClient {
    let mut c = ts.login(user, resource).await;
    c.send(&format!("<presence>{extra}</presence>")).await;
    c.assert_alive().await;
    c
}

/// Log in, request the roster (an "interested" resource) and become available.
pub(super) async fn online(ts: &TestServer, user: &str, resource: &str) -> XmppClient {
    let mut c = ts.login(user, resource).await;
    let roster = c.iq("get", None, ROSTER_GET).await;
    assert_eq!(roster.attr("type"), Some("result"));
    c.send("<presence/>").await;
    c.assert_alive().await;
    c
}

/// The roster items of a roster result or push.
pub(super) fn roster_items(iq: &Element) -> Vec<Element> {
    iq.child("query", ns::ROSTER)
        .map(|q| q.elements().cloned().collect())
        .unwrap_or_default()
}

pub(super) fn roster_ver(iq: &Element) -> Option<String> {
    iq.child("query", ns::ROSTER)
        .and_then(|q| q.attr("ver"))
        .map(str::to_string)
}

/// Wait for a roster push about `jid` with this subscription and pending-out state, and
/// return the whole push.
pub(super) async fn expect_push(
    c: &mut XmppClient,
    jid: &str,
    subscription: &str,
    ask: bool,
) -> Element {
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
pub(super) async fn expect_presence(c: &mut XmppClient, from: &str, kind: Option<&str>) -> Element {
    let what = format!("presence type={kind:?} from {from}");
    c.recv_where(&what, |e| is_presence(e, from, kind)).await
}

/// Status text of a presence.
pub(super) fn status(p: &Element) -> Option<String> {
    p.child("status", ns::CLIENT).map(Element::text)
}

/// One direction of RFC 6121 §3.1: `x` asks `y`, `y` approves.
pub(super) async fn subscribe(x: &mut XmppClient, y: &mut XmppClient) {
    let (x_bare, y_bare) = (x.bare_jid().to_string(), y.bare_jid().to_string());
    x.send(&format!("<presence to='{y_bare}' type='subscribe'/>"))
        .await;
    let request = expect_presence(y, &x_bare, Some("subscribe")).await;
    assert_eq!(request.attr("to"), Some(y_bare.as_str()));
    y.send(&format!("<presence to='{x_bare}' type='subscribed'/>"))
        .await;
    expect_presence(x, &y_bare, Some("subscribed")).await;
}

/// Build a mutual (`both`) subscription between two online, interested clients.
pub(super) async fn subscribe_mutually(a: &mut XmppClient, b: &mut XmppClient) {
    subscribe(a, b).await;
    subscribe(b, a).await;
    let (a_bare, b_bare) = (a.bare_jid().to_string(), b.bare_jid().to_string());
    expect_push(a, &b_bare, "both", false).await;
    expect_push(b, &a_bare, "both", false).await;
}
