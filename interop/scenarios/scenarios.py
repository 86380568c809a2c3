"""The interop scenarios. Each is an async function of a `Context` (see run.py) that
raises `ScenarioError` (via `check`) on the first thing that is not as expected.

Every scenario has its own accounts (`<scenario>-alice`, ...), created before the run,
so rosters, block lists and offline queues never leak from one scenario to another.

No scenario sleeps. It waits for the stanza it expects (bounded, see clients.py), and
before checking that something did NOT happen it runs a barrier: a round trip that
could only complete after the unwanted stanza, had it been sent, would have arrived
(`drain()`, `settle()`, or a ping of the other client's full JID).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from slixmpp import JID
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.stanza import Iq

from clients import (
    NS_DELAY,
    Client,
    ScenarioError,
    body_of,
    carbon_inner,
    check,
    describe,
    is_error_message,
    is_message,
    is_presence,
    is_sm,
    settle,
)


@dataclass
class Scenario:
    name: str
    func: Callable[..., Awaitable[None]]
    users: tuple[str, ...] = ()
    xfail: str | None = None
    doc: str = field(default="")
    # A strict expected failure that passes fails the run (the marker must go); a
    # non-strict one (for a race that does not always show) is then only noted.
    strict: bool = True


SCENARIOS: list[Scenario] = []


def scenario(name: str, users: tuple[str, ...] = (), xfail: str | None = None, strict: bool = True):
    """Register a scenario; `users` are created before the scenarios run; `xfail`
    marks a known server bug (the run stays green while it still fails)."""

    def register(func):
        SCENARIOS.append(Scenario(name, func, users, xfail, (func.__doc__ or "").strip(), strict))
        return func

    return register


async def stop_and_wait_gone(leaving: Client, observer: Client) -> str:
    """Close `leaving`'s stream and return once the server no longer routes to its full
    JID. `leaving` first sends directed presence to `observer`; Herald unbinds a
    session before it sends the unavailable presence that directed presence obliges it
    to send when the session ends (RFC 6121 §4.6.3), so that presence is the proof."""
    full = str(leaving.boundjid)
    mark = observer.mark()
    leaving.send_presence(pto=observer.boundjid)
    await observer.wait_for(lambda s: is_presence(s, sender=full, ptype="available"),
                            f"directed presence from {full}", since=mark)
    await leaving.stop()
    await observer.wait_for(lambda s: is_presence(s, sender=full, ptype="unavailable"),
                            f"unavailable presence from {full} after it closed its stream", since=mark)
    return full


def is_roster_push(s, contact: str, subscription: str | None = None) -> bool:
    return (isinstance(s, Iq) and s["type"] == "set"
            and JID(contact) in s["roster"]["items"]
            and (subscription is None or s["roster"]["items"][JID(contact)]["subscription"] == subscription))


async def fresh_roster(c: Client) -> dict[str, dict]:
    """A roster get without a version: the server's full current roster."""
    iq = c.Iq()
    iq["type"] = "get"
    iq.enable("roster")
    result = await iq.send(timeout=5)
    return {str(j): dict(item) for j, item in result["roster"]["items"].items()}


# --------------------------------------------------------------------------- 1


@scenario("subscription", users=("alice", "bob"))
async def subscription(ctx) -> None:
    """Mutual RFC 6121 subscription handshake through slixmpp's roster API; both rosters
    end at 'both'; each side sees the other's available presence with its status text,
    a status change, and unavailable presence when the other disconnects."""
    alice = await ctx.client("alice", "laptop", presence={"pstatus": "alice is here"})
    bob = await ctx.client("bob", "phone", presence={"pstatus": "bob is here ✓"})
    a, b = ctx.jid("alice"), ctx.jid("bob")

    # alice asks; bob approves and asks back; alice approves.
    mb, ma = bob.mark(), alice.mark()
    alice.client_roster[b].subscribe()
    await bob.wait_for(lambda s: is_presence(s, sender=a, ptype="subscribe"), "alice's subscribe", since=mb)
    # RFC 6121 §3.1.2: alice's resources get a roster push: bob, subscription none, ask.
    push = await alice.wait_for(lambda s: is_roster_push(s, b), "a roster push for bob after subscribing",
                                since=ma)
    item = push["roster"]["items"][JID(b)]
    check(item["subscription"] == "none" and item["ask"] == "subscribe",
          f"roster push after subscribe is {describe(push)}, want subscription='none' ask='subscribe'")
    ma = alice.mark()
    bob.client_roster[a].authorize()
    bob.client_roster[a].subscribe()
    await alice.wait_for(lambda s: is_presence(s, sender=b, ptype="subscribed"), "bob's subscribed", since=ma)
    await alice.wait_for(lambda s: is_presence(s, sender=b, ptype="subscribe"), "bob's subscribe", since=ma)
    alice.client_roster[b].authorize()
    await bob.wait_for(lambda s: is_presence(s, sender=a, ptype="subscribed"), "alice's subscribed", since=mb)

    # Roster pushes bring both local rosters to 'both' (slixmpp applies a push in its
    # synchronous handler, before a waiter for the push resumes) ...
    await alice.wait_for(lambda s: is_roster_push(s, b, "both"), "a roster push with bob as 'both'", since=ma)
    await bob.wait_for(lambda s: is_roster_push(s, a, "both"), "a roster push with alice as 'both'", since=mb)
    check(alice.client_roster[b]["subscription"] == "both",
          f"alice's roster shows bob as {alice.client_roster[b]['subscription']!r}, want 'both'")
    check(bob.client_roster[a]["subscription"] == "both",
          f"bob's roster shows alice as {bob.client_roster[a]['subscription']!r}, want 'both'")
    # ... and the server's stored rosters agree, with nothing left pending.
    for who, other, c in (("alice", b, alice), ("bob", a, bob)):
        items = await fresh_roster(c)
        check(other in items, f"{who}'s roster from the server lacks {other}: {items}")
        check(items[other]["subscription"] == "both",
              f"{who}'s server roster has {other} as {items[other]['subscription']!r}, want 'both'")
        check(not items[other].get("pending_out") and not items[other].get("ask"),
              f"{who}'s server roster still has a pending request for {other}: {items[other]}")

    # Each sees the other's current presence with its status text.
    await alice.wait_for(
        lambda s: is_presence(s, sender=bob.boundjid, ptype="available") and s["status"] == "bob is here ✓",
        "bob's available presence with status 'bob is here ✓'")
    await bob.wait_for(
        lambda s: is_presence(s, sender=alice.boundjid, ptype="available") and s["status"] == "alice is here",
        "alice's available presence with status 'alice is here'")

    # A presence change is broadcast to the subscriber.
    ma = alice.mark()
    bob.send_presence(pshow="away", pstatus="gone <fishing> & back")
    p = await alice.wait_for(lambda s: is_presence(s, sender=bob.boundjid, ptype="available"),
                             "bob's changed presence", since=ma)
    check(p["show"] == "away" and p["status"] == "gone <fishing> & back",
          f"bob's changed presence arrived as {describe(p)}")

    # bob disconnects: alice is told bob's resource is unavailable.
    ma = alice.mark()
    bob_full = str(bob.boundjid)
    await bob.stop()
    await alice.wait_for(lambda s: is_presence(s, sender=bob_full, ptype="unavailable"),
                         f"unavailable presence from {bob_full}", since=ma)

    # bob comes back: his initial presence reaches alice, and the server's probe on
    # his behalf brings him alice's current presence.
    ma = alice.mark()
    bob = await ctx.client("bob", "phone", presence={"pstatus": "back again"})
    await alice.wait_for(
        lambda s: is_presence(s, sender=bob.boundjid, ptype="available") and s["status"] == "back again",
        "bob's presence after he reconnected", since=ma)
    await bob.wait_for(
        lambda s: is_presence(s, sender=alice.boundjid, ptype="available") and s["status"] == "alice is here",
        "alice's presence (probe answer) after reconnecting")


# --------------------------------------------------------------------------- 2

BODIES = [
    "hello bob",
    "Grüße, 世界! ünïcödé — ñ 🎉👍🏽",
    "<b>not markup</b> & 'single' \"double\" ]]> &amp; <![CDATA[x]]> <!-- c -->",
    "line one\nline two\ttabbed  and  spaced ",
    "\u200bzero-width and RTL \u05e9\u05dc\u05d5\u05dd",
]


@scenario("messages", users=("alice", "bob"))
async def messages(ctx) -> None:
    """Chat messages both ways (full and bare JID addressing); bodies arrive byte-for-byte,
    including unicode (astral plane, RTL, zero-width) and XML special characters."""
    alice = await ctx.client("alice", "desk")
    bob = await ctx.client("bob", "pocket")

    mb = bob.mark()
    for body in BODIES:
        alice.send_message(mto=bob.boundjid, mbody=body, mtype="chat")
    got = await bob.wait_count(lambda s: is_message(s, sender=alice.boundjid, mtype="chat"),
                               len(BODIES), "chat messages from alice", since=mb)
    check([m["body"] for m in got] == BODIES,
          f"bob got bodies {[m['body'] for m in got]!r}, want {BODIES!r}")

    ma = alice.mark()
    for body in reversed(BODIES):
        bob.send_message(mto=ctx.jid("alice"), mbody=body, mtype="chat")
    got = await alice.wait_count(lambda s: is_message(s, sender=bob.boundjid, mtype="chat"),
                                 len(BODIES), "chat messages from bob", since=ma)
    check([m["body"] for m in got] == list(reversed(BODIES)),
          f"alice got bodies {[m['body'] for m in got]!r}, want {list(reversed(BODIES))!r}")
    check(not alice.find(is_error_message, ma) and not bob.find(is_error_message, mb),
          "an error message came back during the exchange")


# --------------------------------------------------------------------------- 3


@scenario("offline", users=("alice", "bob"))
async def offline(ctx) -> None:
    """bob disconnects; alice sends 3 chat messages (two to his bare JID, one to the
    full JID he just left); bob reconnects and gets all 3, in order, each with a
    urn:xmpp:delay stamp from the server; a later login gets none of them again."""
    alice = await ctx.client("alice", "web")
    bob = await ctx.client("bob", "tablet")
    bob_full = await stop_and_wait_gone(bob, alice)

    ma = alice.mark()
    sent_at = time.time()
    bodies = [f"offline message {i} ✉ <{i}>" for i in (1, 2, 3)]
    # The second goes to the full JID bob just left: RFC 6121 §8.5.3.2.1 treats a chat
    # message to an unavailable resource like one to the bare JID.
    for body, to in zip(bodies, (ctx.jid("bob"), bob_full, ctx.jid("bob"))):
        alice.send_message(mto=to, mbody=body, mtype="chat")
    # Barrier: stored (offline storage is awaited before the next stanza is handled),
    # and any bounce would already be in alice's queue, ahead of the drain ping.
    await alice.drain()
    errors = alice.find(is_error_message, ma)
    check(not errors, f"alice got an error for an offline message: {errors and describe(errors[0])}")

    # start() drains: the offline messages, queued while the server handled bob's
    # initial presence, are in ahead of the drain ping.
    bob = await ctx.client("bob", "tablet")
    got = await bob.wait_count(lambda s: is_message(s, sender=alice.boundjid), 3,
                               "offline messages from alice")
    check([m["body"] for m in got] == bodies,
          f"offline messages arrived as {[m['body'] for m in got]!r}, want {bodies!r} in that order")
    for m in got:
        delay = m.xml.find(f"{{{NS_DELAY}}}delay")
        check(delay is not None, f"offline message without <delay xmlns='{NS_DELAY}'/>: {describe(m)}")
        stamp = m["delay"]["stamp"]
        check(stamp is not None and sent_at - 60 <= stamp.timestamp() <= time.time() + 60,
              f"<delay/> stamp {delay.get('stamp')!r} is not a XEP-0082 time near the sending time")
        check(delay.get("from") in (None, ctx.domain),
              f"<delay/> from={delay.get('from')!r}, want the server domain {ctx.domain}")
    await bob.stop()

    # Delivered means deleted: the next login gets nothing replayed (start() drained,
    # so a replay would be here already).
    bob = await ctx.client("bob", "tablet")
    bob.check_none(lambda s: is_message(s, sender=ctx.jid("alice")), "an offline message a second time")


# --------------------------------------------------------------------------- 4


@scenario("multi_device", users=("alice", "bob"))
async def multi_device(ctx) -> None:
    """bob online with priorities 0, 5 and -1; a chat message to his bare JID reaches
    both non-negative resources (delivery = "all") and not the priority -1 one."""
    alice = await ctx.client("alice", "home")
    b0 = await ctx.client("bob", "prio0", presence={"ppriority": 0})
    b5 = await ctx.client("bob", "prio5", presence={"ppriority": 5})
    bneg = await ctx.client("bob", "prio-neg", presence={"ppriority": -1})
    marks = {c: c.mark() for c in (b0, b5, bneg)}

    body = "to every device of bob"
    alice.send_message(mto=ctx.jid("bob"), mbody=body, mtype="chat")
    for c in (b0, b5):
        await c.wait_for(lambda s: is_message(s, sender=alice.boundjid, body=body),
                         "alice's message to the bare JID", since=marks[c])
    # Barrier: alice's pings of each resource are queued behind any copy of her message.
    for c in (b0, b5, bneg):
        await alice.ping(c.boundjid, "barrier behind the message")
    bneg.check_none(lambda s: is_message(s, sender=ctx.jid("alice")),
                    "a message to the bare JID on a priority -1 resource", since=marks[bneg])
    for c in (b0, b5):
        check(len(c.find(lambda s: is_message(s, sender=ctx.jid("alice")), marks[c])) == 1,
              f"{c.boundjid} got alice's message more than once")


# --------------------------------------------------------------------------- 5


@scenario("blocking", users=("alice", "bob"))
async def blocking(ctx) -> None:
    """XEP-0191 through slixmpp's xep_0191: bob blocks alice, her message is not
    delivered (she gets service-unavailable), bob's own message to her is refused with
    <blocked/>; after unblocking, her message is delivered."""
    alice = await ctx.client("alice", "main")
    bob = await ctx.client("bob", "main", plugins=("xep_0191",))
    a = ctx.jid("alice")

    await bob.plugin["xep_0191"].block(JID(a), timeout=5)
    blocked = await bob.plugin["xep_0191"].get_blocked_jids(timeout=5)
    check(JID(a) in blocked, f"bob's block list is {blocked}, want it to contain {a}")

    mb, ma = bob.mark(), alice.mark()
    alice.send_message(mto=bob.boundjid, mbody="can you hear me?", mtype="chat")
    err = await alice.wait_for(is_error_message, "an error for the message to a blocker", since=ma)
    check(err["error"]["condition"] == "service-unavailable",
          f"alice's message to a blocker bounced with {err['error']['condition']!r}, want service-unavailable")
    await settle(alice, bob)
    bob.check_none(lambda s: is_message(s, sender=a), "a message from a blocked contact", since=mb)

    # XEP-0191 §3.3: the blocker cannot message the blocked contact either.
    mb = bob.mark()
    bob.send_message(mto=alice.boundjid, mbody="psst", mtype="chat")
    err = await bob.wait_for(is_error_message, "an error for messaging a blocked contact", since=mb)
    check(err["error"]["condition"] == "not-acceptable"
          and err.xml.find(".//{urn:xmpp:blocking:errors}blocked") is not None,
          f"bob's message to a blocked contact bounced as {describe(err)}, want not-acceptable + <blocked/>")
    await settle(bob, alice)
    alice.check_none(lambda s: is_message(s, sender=ctx.jid("bob")), "a message from bob, who blocks her",
                     since=ma)

    await bob.plugin["xep_0191"].unblock(JID(a), timeout=5)
    blocked = await bob.plugin["xep_0191"].get_blocked_jids(timeout=5)
    check(JID(a) not in blocked, f"after unblock bob's block list is still {blocked}")
    mb = bob.mark()
    alice.send_message(mto=bob.boundjid, mbody="and now?", mtype="chat")
    await bob.wait_for(lambda s: is_message(s, sender=alice.boundjid, body="and now?"),
                       "alice's message after unblocking", since=mb)


# --------------------------------------------------------------------------- 6


@scenario("carbons", users=("alice", "bob"))
async def carbons(ctx) -> None:
    """XEP-0280 through slixmpp's xep_0280: both bob resources enable carbons; alice
    writes to bob/res1, bob/res2 gets a 'received' carbon of it; bob/res1's reply
    reaches bob/res2 as a 'sent' carbon."""
    alice = await ctx.client("alice", "pc")
    b1 = await ctx.client("bob", "res1", plugins=("xep_0280",))
    b2 = await ctx.client("bob", "res2", plugins=("xep_0280",))
    await b1.plugin["xep_0280"].enable(timeout=5)
    await b2.plugin["xep_0280"].enable(timeout=5)
    m1, m2 = b1.mark(), b2.mark()
    received_events: list = []
    b2.add_event_handler("carbon_received", received_events.append)

    body = "carbon copy me — ✓ <ok>"
    alice.send_message(mto=b1.boundjid, mbody=body, mtype="chat")
    await b1.wait_for(lambda s: is_message(s, sender=alice.boundjid, body=body), "alice's message", since=m1)
    carbon = await b2.wait_for(lambda s: carbon_inner(s, "received") is not None,
                               "a received carbon", since=m2)
    inner = carbon_inner(carbon, "received")
    check(body_of(inner) == body, f"the carbon forwards body {body_of(inner)!r}, want {body!r}")
    check(JID(inner.get("from")) == alice.boundjid,
          f"the forwarded message is from {inner.get('from')!r}, want {alice.boundjid}")
    check(JID(carbon["from"]) == JID(ctx.jid("bob")),
          f"the carbon wrapper is from {carbon['from']}, want bob's bare JID")
    # slixmpp raises carbon_received in its synchronous handler for the carbon.
    check(bool(received_events), "slixmpp did not raise carbon_received on bob/res2")
    await settle(alice, b1, b2)
    b1.check_none(lambda s: carbon_inner(s, "received") is not None,
                  "a carbon of a message addressed to itself", since=m1)
    b2.check_none(lambda s: is_message(s, sender=ctx.jid("alice")),
                  "alice's full-JID message to res1 directly, not only as a carbon", since=m2)

    # To the bare JID both resources get the message itself, so neither gets a carbon.
    m1, m2 = b1.mark(), b2.mark()
    alice.send_message(mto=ctx.jid("bob"), mbody="for all of bob", mtype="chat")
    for c, m in ((b1, m1), (b2, m2)):
        await c.wait_for(lambda s: is_message(s, sender=alice.boundjid, body="for all of bob"),
                         "alice's message to the bare JID", since=m)
    await settle(alice, b1, b2)
    for c, m in ((b1, m1), (b2, m2)):
        c.check_none(lambda s: carbon_inner(s, "received") is not None,
                     "a carbon of a message it received directly", since=m)

    m2 = b2.mark()
    b1.send_message(mto=alice.boundjid, mbody="reply from res1", mtype="chat")
    sent = await b2.wait_for(lambda s: carbon_inner(s, "sent") is not None, "a sent carbon", since=m2)
    inner = carbon_inner(sent, "sent")
    check(body_of(inner) == "reply from res1" and JID(inner.get("to")) == alice.boundjid,
          f"the sent carbon forwards {describe(sent)}")


# --------------------------------------------------------------------------- 7


@scenario("stream_management_ping", users=("alice", "bob"))
async def stream_management_ping(ctx) -> None:
    """XEP-0198 through slixmpp's xep_0198: SM is enabled (resumable) at login; after
    a batch of stanzas the server's <a h=.../> matches the number the client sent; the
    server's own <r/> requests are answered without a stream error; after a dropped
    connection the stream is resumed and a message sent meanwhile arrives. XEP-0199
    ping of the server domain gets a result."""
    c = ctx.make_client("alice", "sm", plugins=("xep_0198",), presence={"pstatus": "managed"})
    await c.start()
    enabled = await c.wait_for(lambda s: is_sm(s, "enabled"), "the server's <enabled/> answer to <enable/>")
    check(bool(enabled["id"]), f"<enabled/> has no id: {describe(enabled)}")
    check(enabled.xml.get("resume") in ("true", "1"),
          f"slixmpp asked for resumption but <enabled/> does not offer it: {describe(enabled)}")

    sm = c.plugin["xep_0198"]
    # Pings to the server (XEP-0199) plus messages to ourselves (which come back to us
    # and make the server request acks).
    rtt = await c.plugin["xep_0199"].ping(jid=JID(ctx.domain), timeout=5)
    check(rtt is not None and rtt >= 0, f"ping of {ctx.domain} returned {rtt!r}")
    mark = c.mark()
    for i in range(7):
        c.send_message(mto=c.boundjid, mbody=f"note to self {i}", mtype="chat")
    await c.wait_count(lambda s: is_message(s, sender=c.boundjid), 7, "messages to self", since=mark)
    await c.plugin["xep_0199"].ping(jid=JID(ctx.domain), timeout=5)

    sent = sm.seq
    mark = c.mark()
    sm.request_ack()
    is_ack = lambda s: is_sm(s, "a")  # noqa: E731
    try:
        await c.wait_for(lambda s: is_ack(s) and int(s["h"]) == sent,
                         f"the server's <a h='{sent}'/> after our <r/>", since=mark)
    except ScenarioError:
        seen = [s["h"] for s in c.find(is_ack)]
        raise ScenarioError(f"the client sent {sent} stanzas since <enable/>; the server's "
                            f"acks said h={seen}") from None
    too_high = [s["h"] for s in c.find(is_ack) if int(s["h"]) > sent]
    check(not too_high, f"the server acknowledged more than was sent ({sent}): h={too_high}")
    # slixmpp's synchronous ack handler has applied that <a/> by now.
    check(not sm.unacked_queue, f"slixmpp's unacked queue still holds {len(sm.unacked_queue)} stanzas "
          f"after the server acknowledged h={sent}")
    check(any(is_sm(s, "r") for s in c.received), "the server never requested an ack (<r/>) "
          "although it sent stanzas on a managed stream")
    # Our answers to the server's <r/> were accepted: the stream is still up.
    await c.plugin["xep_0199"].ping(jid=JID(ctx.domain), timeout=5)
    check(not any(n == "stream_error" for n, _ in c.events), f"stream error: {c.events}")

    # The connection drops without a stream close; a message arrives for the detached
    # session; slixmpp reconnects, resumes (previd), and gets it.
    bob = await ctx.client("bob", "sender")
    resumed: list = []
    c.add_event_handler("session_resumed", resumed.append)
    seen = len(c.events)
    c.transport.abort()
    await c.wait_event("disconnected", "the client to see its connection drop", since=seen)
    bob.send_message(mto=c.boundjid, mbody="sent while you were away", mtype="chat")
    await bob.drain()  # handled; a bounce would be in bob's queue ahead of the ping
    check(not bob.find(is_error_message), "the message to a detached resumable session bounced")
    mark = c.mark()
    c.connect(*c._address)
    await c.wait_for(lambda s: is_sm(s, "resumed"), "the server's <resumed/>", timeout=10, since=mark)
    check(bool(resumed), "slixmpp did not raise session_resumed on <resumed/>")
    await c.wait_for(lambda s: is_message(s, sender=bob.boundjid, body="sent while you were away"),
                     "the message sent while the session was detached", since=mark)


# --------------------------------------------------------------------------- 8


@scenario("disco_info", users=("alice",))
async def disco_info(ctx) -> None:
    """XEP-0030 disco#info of the server domain (over direct TLS, XEP-0368) lists
    urn:xmpp:ping and urn:xmpp:blocking and a server/im identity."""
    c = await ctx.client("alice", "disco", direct_tls=True)
    info = await c.plugin["xep_0030"].get_info(jid=JID(ctx.domain), cached=False, timeout=5)
    features = set(info["disco_info"]["features"])
    for ns in ("urn:xmpp:ping", "urn:xmpp:blocking", "http://jabber.org/protocol/disco#info"):
        check(ns in features, f"disco#info of {ctx.domain} lacks {ns}; features: {sorted(features)}")
    identities = {(cat, typ) for cat, typ, _lang, _name in info["disco_info"]["identities"]}
    check(("server", "im") in identities, f"no server/im identity: {identities}")


# --------------------------------------------------------------------------- 9


@scenario("user_add_live")
async def user_add_live(ctx) -> None:
    """An account created with `herald user add` while the server runs can log in at
    once (over STARTTLS, and from a second client over direct TLS); `herald user list`
    shows it."""
    await ctx.add_user("newcomer")
    c = await ctx.client("newcomer", "first")
    await c.plugin["xep_0199"].ping(timeout=5)
    d = await ctx.client("newcomer", "second", direct_tls=True)
    await d.plugin["xep_0199"].ping(timeout=5)
    listed = await ctx.server.cli("user", "list")
    check(ctx.jid("newcomer") in listed.split(), f"`herald user list` does not show it:\n{listed}")


# --------------------------------------------------------------------------- 10


@scenario("wrong_password", users=("alice",))
async def wrong_password(ctx) -> None:
    """A wrong password makes slixmpp report failed_auth (SASL not-authorized) and no
    session starts; the right password still works afterwards."""
    c = ctx.make_client("alice", "guess", password="not the password")
    outcome = await c.attempt_login(timeout=10)
    check(outcome == "failed_auth", f"login with a wrong password ended with {outcome!r}, want failed_auth")
    failure = next(p for n, p in c.events if n == "failed_auth")
    check(failure["condition"] == "not-authorized",
          f"SASL failure condition is {failure['condition']!r}, want not-authorized")
    ok = await ctx.client("alice", "right")
    await ok.plugin["xep_0199"].ping(timeout=5)


# --------------------------------------------------------------------------- 5b


@scenario("blocking_presence_privacy", users=("alice", "bob"))
async def blocking_presence_privacy(ctx) -> None:
    """XEP-0191 §3.3: blocking sends unavailable presence to the contact *only if the
    contact may receive the user's presence*. alice has no subscription to bob, so
    bob blocking her must not send her anything (it would reveal bob's online resource)."""
    alice = await ctx.client("alice", "main")
    bob = await ctx.client("bob", "secret-resource", plugins=("xep_0191",))
    ma = alice.mark()
    await bob.plugin["xep_0191"].block(JID(ctx.jid("alice")), timeout=5)
    await settle(bob, alice)
    alice.check_none(lambda s: is_presence(s, sender=ctx.jid("bob")),
                     "presence from bob, who just blocked her and to whose presence she is "
                     "not subscribed", since=ma)


@scenario("blocking_outbound_iq", users=("alice", "bob"))
async def blocking_outbound_iq(ctx) -> None:
    """XEP-0191 §3.3: a stanza the user sends to a blocked contact is not routed; the
    user gets not-acceptable + <blocked/>. Checked for an IQ (a XEP-0199 ping from bob
    to the full JID of alice, whom bob blocks)."""
    alice = await ctx.client("alice", "main")
    bob = await ctx.client("bob", "main", plugins=("xep_0191",))
    await bob.plugin["xep_0191"].block(JID(ctx.jid("alice")), timeout=5)
    ma = alice.mark()
    try:
        await bob.plugin["xep_0199"].send_ping(alice.boundjid, timeout=3)
    except IqError as e:
        err = e.iq
        check(err["error"]["condition"] == "not-acceptable"
              and err.xml.find(".//{urn:xmpp:blocking:errors}blocked") is not None,
              f"bob's ping to a blocked contact failed with {describe(err)}, want not-acceptable + <blocked/>")
    except IqTimeout:
        delivered = alice.find(lambda s: isinstance(s, Iq) and s["type"] == "get", ma)
        raise ScenarioError(
            "bob's ping to alice (blocked by bob) got no answer within 3s"
            + (f"; it WAS routed to alice: {describe(delivered[0])}" if delivered else "")
        ) from None
    else:
        raise ScenarioError("bob's ping to alice, whom he blocks, was routed and answered")
    await settle(bob, alice)
    alice.check_none(lambda s: isinstance(s, Iq) and s["type"] == "get" and s["from"] == bob.boundjid,
                     "bob's IQ although bob blocks her", since=ma)


# --------------------------------------------------------------------------- 7b


@scenario("sm_detached_shutdown")
async def sm_detached_shutdown(ctx) -> None:
    """XEP-0198 + clean shutdown: messages routed to resumable sessions whose TCP
    connection dropped (detached, waiting for resumption) must survive a SIGTERM: on
    shutdown the detached sessions end and their undelivered messages go to offline
    storage, so after a restart the user gets them. Uses its own server instance."""
    srv = await ctx.spawn_server("a")
    for user in ("alice", "bob"):
        await ctx.add_user(user, server=srv)
    alice = await ctx.client("alice", "sender", server=srv)
    devices = 4
    for i in range(devices):
        relay = await ctx.relay(srv)
        b = await ctx.client("bob", f"dev{i}", server=srv, plugins=("xep_0198",), via=relay)
        enabled = await b.wait_for(lambda s: is_sm(s, "enabled"), f"<enabled/> on bob/dev{i}")
        check(enabled.xml.get("resume") in ("true", "1") and b.plugin["xep_0198"].sm_id,
              f"bob/dev{i}: stream management is not resumable: {describe(enabled)}")
        await b.kill()  # the network goes away: no stream close
        # The server closes its end only after its session loop ended on the lost
        # connection; a resumable session is detached right then.
        await relay.server_closed()

    bodies = [f"for detached dev{i}" for i in range(devices)]
    for i, body in enumerate(bodies):
        alice.send_message(mto=ctx.jid("bob", f"dev{i}"), mbody=body, mtype="chat")
    await alice.plugin["xep_0199"].ping(timeout=5)  # all routed by now
    errors = alice.find(is_error_message)
    check(not errors, f"a message to a detached session bounced: {errors and describe(errors[0])}")
    await alice.stop()

    ok, how = await srv.stop()
    check(ok, f"SIGTERM with detached sessions: {how}")

    srv = await ctx.spawn_server("a")  # same data directory
    # start() drains: the offline messages are queued while the server handles bob's
    # initial presence, ahead of the drain ping.
    bob = await ctx.client("bob", "after-restart", server=srv)
    got = [m["body"] for m in bob.find(lambda s: is_message(s, sender=ctx.jid("alice")))]
    lost = [b for b in bodies if b not in got]
    check(not lost, f"{len(lost)} of {devices} messages routed to detached SM sessions before SIGTERM "
          f"were neither delivered nor stored offline (lost: {lost}; got after restart: {got})")
    await bob.stop()
    ok, how = await srv.stop()
    check(ok, f"second shutdown: {how}")


# --------------------------------------------------------------------------- 3b

FLOOD = 800


@scenario("offline_flood", users=("alice", "bob"))
async def offline_flood(ctx) -> None:
    """800 chat messages are stored for offline bob (each accepted: no error, and a
    drain barrier after the last); bob logs in, sends initial presence and reads
    normally: in that one session he gets all 800, in order, each exactly once, and
    the server does not close his stream."""
    alice = await ctx.client("alice", "flooder")
    bodies = [f"flood {i:03d}/{FLOOD} ✉" for i in range(1, FLOOD + 1)]
    ma = alice.mark()
    for body in bodies:
        alice.send_message(mto=ctx.jid("bob"), mbody=body, mtype="chat")
    # Barrier: the server handled (stored) all 800; a bounce would be queued ahead of
    # the drain ping. Storage is one database write per message, hence the deadline.
    await alice.drain(timeout=10)
    errors = alice.find(is_error_message, ma)
    check(not errors, f"{len(errors)} of {FLOOD} messages to offline bob bounced, first: "
          f"{errors and describe(errors[0])}")

    bob = ctx.make_client("bob", "reader", presence={})
    # No drain inside start(): its ping would queue behind the 800; the count below has
    # a longer deadline and says how many came.
    await bob.start(drain=False)
    # Bounded: a server that stops delivering (queue full, rest left in storage) fails
    # here after 20 s; one that closes the stream fails at once.
    await bob.wait_count(lambda s: is_message(s, sender=alice.boundjid), FLOOD,
                         "offline messages from alice", timeout=20)
    await bob.drain(timeout=10)  # a duplicate queued along with the 800 is in by now
    got = bob.find(lambda s: is_message(s, sender=alice.boundjid))
    closed = [n for n, _ in bob.events if n in ("stream_error", "disconnected")]
    check(not closed, f"bob's stream was closed: {closed}")
    got_bodies = [m["body"] for m in got]
    if got_bodies != bodies:
        counts = Counter(got_bodies)
        dups = sum(n - 1 for n in counts.values() if n > 1)
        missing = [b for b in bodies if b not in counts]
        first_bad = next((i for i, (x, y) in enumerate(zip(got_bodies, bodies)) if x != y), None)
        raise ScenarioError(
            f"bob got {len(got_bodies)} messages for {FLOOD} stored: {len(missing)} missing, "
            f"{dups} duplicates, first out of place at position {first_bad}")


ONCE_ROUNDS = 5


@scenario("offline_once", users=("alice", "bob"))
async def offline_once(ctx) -> None:
    """10 messages are stored for offline bob; three resources of bob connect (all
    three sessions up first) and then send initial presence at the same moment. Across
    the three resources every stored message is delivered exactly once in total. The
    race is tried up to 5 times (bob offline again between rounds); every round must
    deliver exactly once."""
    alice = await ctx.client("alice", "sender")
    for rnd in range(1, ONCE_ROUNDS + 1):
        bodies = [f"round {rnd}: once {i}/10" for i in range(1, 11)]
        ma = alice.mark()
        for body in bodies:
            alice.send_message(mto=ctx.jid("bob"), mbody=body, mtype="chat")
        await alice.drain()  # stored; a bounce would be queued ahead of the drain ping
        errors = alice.find(is_error_message, ma)
        check(not errors, f"round {rnd}: a message to offline bob bounced: {errors and describe(errors[0])}")

        resources = await asyncio.gather(
            *(ctx.client("bob", f"round{rnd}-r{i}", presence=None) for i in range(3)))
        marks = [r.mark() for r in resources]
        # The three presences are written straight to the three connections, back to
        # back in one turn of the event loop (slixmpp's send queue would spread them).
        for r in resources:
            r.send_raw(str(r.Presence()))
        # Each session handles its initial presence (and so its offline delivery)
        # before its drain ping, which is queued behind whatever that delivered.
        await asyncio.gather(*(r.drain(timeout=10) for r in resources))
        per_resource = [[m["body"] for m in r.find(lambda s: is_message(s, sender=alice.boundjid), mk)]
                        for r, mk in zip(resources, marks)]
        counts = Counter(b for got in per_resource for b in got)
        wrong = {b: counts[b] for b in bodies if counts[b] != 1}
        check(not wrong,
              f"round {rnd}: {len(wrong)} of {len(bodies)} stored messages were not delivered exactly "
              f"once across the three resources ({sum(counts.values())} deliveries in all; per "
              f"resource: {', '.join(f'r{i} {len(g)}' for i, g in enumerate(per_resource))}); "
              f"delivery counts: {dict(list(wrong.items())[:3])} ...")
        check(not (set(counts) - set(bodies)), f"round {rnd}: unexpected bodies: {set(counts) - set(bodies)}")
        # bob goes offline again before the next round.
        await asyncio.gather(*(stop_and_wait_gone(r, alice) for r in resources))


# --------------------------------------------------------------------------- go-sendxmpp

# One line (go-sendxmpp -l prints a message per line), non-ASCII and XML specials.
GO_BODY = "go-sendxmpp says: héllo ✓ 🙂 <b>&amp; 'q' \"qq\" ]]>"


async def go_send_to_slixmpp(ctx, direct_tls: bool) -> None:
    bob = await ctx.client("bob", "phone")
    mark = bob.mark()
    sender = ctx.go_sendxmpp("alice")
    await sender.send(ctx.address(direct_tls=direct_tls), ctx.jid("bob"), GO_BODY, direct_tls=direct_tls)
    got = await bob.wait_for(lambda s: is_message(s, sender=ctx.jid("alice")),
                             "a message from alice's go-sendxmpp", since=mark)
    check(got["body"] == GO_BODY, f"bob got body {got['body']!r}, want {GO_BODY!r}")
    check(JID(got["from"]).bare == ctx.jid("alice") and JID(got["from"]).resource,
          f"the message is from {got['from']!r}, want a full JID of {ctx.jid('alice')}")
    await settle(bob)
    check(not bob.find(is_error_message, mark), "an error message reached bob")


@scenario("go_sendxmpp_starttls", users=("alice", "bob"))
async def go_sendxmpp_starttls(ctx) -> None:
    """go-sendxmpp (Go, go-xmpp) on the STARTTLS port: it writes a newline after
    `<starttls/>`, verifies the certificate against the dev CA only (`SSL_CERT_FILE`),
    logs in as alice (password from a 0600 config file) and sends a message to bob's bare
    JID; it exits 0 and bob (slixmpp) gets the message from alice's full JID, body
    intact."""
    await go_send_to_slixmpp(ctx, direct_tls=False)


@scenario("go_sendxmpp_direct_tls", users=("alice", "bob"))
async def go_sendxmpp_direct_tls(ctx) -> None:
    """The same over direct TLS (go-sendxmpp `-t`, XEP-0368 port)."""
    await go_send_to_slixmpp(ctx, direct_tls=True)


@scenario("go_sendxmpp_listen", users=("alice", "bob"))
async def go_sendxmpp_listen(ctx) -> None:
    """bob runs `go-sendxmpp -l` (STARTTLS); alice and bob are mutual contacts (`herald
    roster import`), so alice (slixmpp) sees go-sendxmpp's available presence, then sends
    a chat message to that full JID; go-sendxmpp prints `<time> <alice's JID>: <body>`."""
    roster = ctx.server.workdir / f"{ctx.scenario.name}-roster.csv"
    roster.write_text(f"{ctx.account('alice')},{ctx.jid('bob')},,,both\n"
                      f"{ctx.account('bob')},{ctx.jid('alice')},,,both\n")
    await ctx.server.cli("roster", "import", str(roster))
    alice = await ctx.client("alice", "desk")
    mark = alice.mark()
    listener = await ctx.go_sendxmpp("bob").listen(ctx.address())
    presence = await listener.while_running(
        alice.wait_for(lambda s: is_presence(s, sender=ctx.jid("bob"), ptype="available"),
                       "available presence from bob's go-sendxmpp", since=mark),
        "alice to see its presence")
    alice.send_message(mto=presence["from"], mbody=GO_BODY, mtype="chat")
    line = await listener.wait_line(lambda text: GO_BODY in text, "line with alice's message")
    check(line.endswith(f"{ctx.jid('alice')}: {GO_BODY}"),
          f"go-sendxmpp printed {line!r}, want '<time> {ctx.jid('alice')}: {GO_BODY}'")
    await listener.stop()


# --------------------------------------------------------------------------- issue 7


async def _mutual_contacts(ctx, a: str, b: str) -> None:
    """Make `a` and `b` mutual contacts with `herald roster import`."""
    roster = ctx.server.workdir / f"{ctx.scenario.name}-roster.csv"
    roster.write_text(f"{ctx.account(a)},{ctx.jid(b)},,,both\n"
                      f"{ctx.account(b)},{ctx.jid(a)},,,both\n")
    await ctx.server.cli("roster", "import", str(roster))


@scenario("user_remove_live", users=("alice", "bob"))
async def user_remove_live(ctx) -> None:
    """`herald user remove` while bob is online: bob's stream ends with <not-authorized/>,
    alice (his contact) gets his unavailable and unsubscribed presence and a roster push
    removing him, and bob can no longer log in."""
    await _mutual_contacts(ctx, "alice", "bob")
    alice = await ctx.client("alice", "desk")
    bob = await ctx.client("bob", "phone")
    await alice.wait_for(lambda s: is_presence(s, sender=ctx.jid("bob"), ptype="available"),
                         "bob's presence")
    ma, eb = alice.mark(), len(bob.events)
    out = await ctx.server.cli("user", "remove", ctx.jid("bob"))
    check("1 session(s) ended" in out, f"`herald user remove` printed {out!r}")
    err = await bob.wait_event("stream_error", "bob's stream error", since=eb)
    check(err["condition"] == "not-authorized", f"bob got <{err['condition']}/>, want not-authorized")
    await alice.wait_for(lambda s: is_presence(s, sender=ctx.jid("bob"), ptype="unavailable"),
                         "bob's unavailable presence", since=ma)
    await alice.wait_for(lambda s: is_presence(s, sender=ctx.jid("bob"), ptype="unsubscribed"),
                         "unsubscribed from bob", since=ma)
    await alice.wait_for(lambda s: is_roster_push(s, ctx.jid("bob"), "remove"),
                         "a roster push removing bob", since=ma)
    again = ctx.make_client("bob", "again")
    outcome = await again.attempt_login(timeout=10)
    check(outcome == "failed_auth", f"a removed account's login ended with {outcome!r}")
    await alice.plugin["xep_0199"].ping(timeout=5)


@scenario("user_passwd_live", users=("alice",))
async def user_passwd_live(ctx) -> None:
    """`herald user passwd` while alice is online: her stream ends with <reset/>, the old
    password is refused and the new one logs in."""
    alice = await ctx.client("alice", "desk")
    ea = len(alice.events)
    await ctx.server.cli("user", "passwd", ctx.jid("alice"), "--password", "a new one")
    err = await alice.wait_event("stream_error", "alice's stream error", since=ea)
    check(err["condition"] == "reset", f"alice got <{err['condition']}/>, want reset")
    old = ctx.make_client("alice", "old")
    outcome = await old.attempt_login(timeout=10)
    check(outcome == "failed_auth", f"the old password's login ended with {outcome!r}")
    new = await ctx.client("alice", "new", password="a new one")
    await new.plugin["xep_0199"].ping(timeout=5)


def _add_user_on_a_terminal(herald: str, config: str, jid: str, first: str, second: str) -> tuple[int, str]:
    """Run `herald user add JID` on a pseudo-terminal, answer its two password prompts
    and return (exit status, everything the terminal showed)."""
    import os
    import pty
    import select

    pid, fd = pty.fork()
    if pid == 0:  # the child: herald on the terminal
        os.execv(herald, [herald, "user", "add", jid, "--config", config])
    shown = b""
    answers = [first, second]
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            # Answer a prompt only once it is shown (typed ahead, a terminal would echo
            # the answer before the prompt turned echo off).
            prompts = shown.count(b"Password")
            if answers and prompts == 3 - len(answers) and shown.endswith(b": "):
                os.write(fd, answers.pop(0).encode() + b"\n")
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")


@scenario("user_add_prompt")
async def user_add_prompt(ctx) -> None:
    """`herald user add` on a terminal asks for the password twice without echoing it
    (a pseudo-terminal stands in for the admin's); two different answers change
    nothing; the account made with matching answers logs in."""
    herald, config = str(ctx.server.herald), str(ctx.server.config)
    jid = ctx.jid("typed")
    code, shown = await asyncio.to_thread(_add_user_on_a_terminal, herald, config, jid,
                                          "first secret", "other secret")
    check(code != 0 and "differ" in shown, f"mismatched passwords: exit {code}, terminal:\n{shown}")
    code, shown = await asyncio.to_thread(_add_user_on_a_terminal, herald, config, jid,
                                          "typed secret", "typed secret")
    check(code == 0, f"exit {code}, terminal:\n{shown}")
    check(shown.count("Password") == 2, f"want two prompts, terminal:\n{shown}")
    check("typed secret" not in shown, f"the password was echoed:\n{shown}")
    c = await ctx.client("typed", "desk", password="typed secret")
    await c.plugin["xep_0199"].ping(timeout=5)
