#!/usr/bin/env python3
"""Herald federation suite: two real XMPP servers federating on loopback, with real
slixmpp clients on both domains.

    python3 interop/federation/run.py [--pair prosody,ejabberd] [--auth pkix|dialback]
                                      [-k NAME] [--timeout S] [--keep] [-v]

Makes a test CA and a certificate per domain (pki.py), starts dnsmasq on a free
loopback port serving the domains' `_xmpp-server._tcp` SRV records (dns.py), starts the
two servers of the pair (peers.py), each for its own `.example` domain, resolving
through that dnsmasq only, creates the scenarios' accounts, and runs every scenario
with a timeout. Prints one PASS/FAIL line per scenario and ends with
`N passed, M failed`; exit status 0 only if nothing failed. On failure the temp dir
(configs, data, every log) is kept and its path printed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import logging
import os
import re
import shutil
import signal
import ssl
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "scenarios"))

from clients import Client, ScenarioError, check, describe, is_message, is_presence  # noqa: E402
from dns import Dns, DnsError  # noqa: E402
from peers import (HOST, SERVERS, HeraldServer, HeraldVariant, Server, ServerError,  # noqa: E402
                   Setting, free_ports)
from pki import Issued, PKIError, TestCA  # noqa: E402
from slixmpp import JID  # noqa: E402
from slixmpp.stanza import Iq, Message  # noqa: E402

NS_ROSTER = "jabber:iq:roster"
# The first stanza between two domains waits for DNS, TCP, STARTTLS and s2s
# authentication in both directions; later ones ride the established links.
FIRST_HOP = 30.0
HOP = 10.0


# ---------------------------------------------------------------------- registry


@dataclass(frozen=True)
class HeraldSetup:
    """A variant of Herald's configuration that a scenario asks for (side a must be
    Herald). The runner restarts Herald with it before the scenario (same ports, same
    accounts), and Herald keeps it until the next scenario that asks for another."""

    tables: str = ""  # TOML tables appended to herald.toml: [[s2s.acl]], [[s2s.route]]
    listen_tls: bool = False  # a direct-TLS s2s listener ([s2s] listen_tls) on s2s_tls_port
    # When not None: Herald resolves through a dnsmasq of its own, started for the
    # scenario, serving exactly these SRV records (owner, target, port, priority,
    # weight) and `localhost` A. The peer keeps the run's dnsmasq.
    srv: list[tuple[str, str, int, int, int]] | None = None
    # When not None: the peer (side b) is restarted for the scenario to resolve through
    # a dnsmasq of its own serving exactly these SRV records, and restarted again with
    # the run's dnsmasq afterwards.
    peer_srv: list[tuple[str, str, int, int, int]] | None = None


@dataclass
class Scenario:
    name: str
    func: Callable[["Context"], Awaitable[str | None]]  # may return a note for the PASS line
    users: tuple[tuple[str, str], ...]  # (user, side): side "a" or "b"
    doc: str
    # Herald's configuration for this scenario, computed from the context (ports are
    # known only once the servers exist); None: whatever Herald runs with. A scenario
    # with a setup runs only when side a is Herald.
    herald: Callable[["Context"], HeraldSetup] | None = None
    # Scenarios that restart a server run after the others (order 1), and those that
    # reconfigure Herald last (order 2), so the plain scenarios see the run's setup.
    order: int = 0
    peers: tuple[str, ...] = ()  # when not empty: only these kinds of side b
    herald_only: bool = False  # runs only when side a is Herald (implied by `herald`)


SCENARIOS: list[Scenario] = []


def scenario(name: str, users: tuple[tuple[str, str], ...],
             herald: Callable[["Context"], HeraldSetup] | None = None, order: int = 0,
             peers: tuple[str, ...] = (), herald_only: bool = False):
    def register(func):
        SCENARIOS.append(Scenario(name, func, users, (func.__doc__ or "").strip(), herald,
                                  order or (2 if herald is not None else 0), peers,
                                  herald_only or herald is not None))
        return func

    return register


def applies(sc: Scenario, kinds: list[str]) -> bool:
    """Whether the scenario makes sense for the pair: Herald setups need Herald on side a."""
    return (not sc.herald_only or kinds[0] == "herald") and (not sc.peers or kinds[1] in sc.peers)


class Context:
    """What a scenario sees: the two servers (a, b), its accounts, and clients."""

    def __init__(self, a: Server, b: Server, sc: Scenario, workdir: Path | None = None,
                 s2s_ca: TestCA | None = None) -> None:
        self.a, self.b = a, b
        self.scenario = sc
        self.workdir = workdir
        # The CA the servers trust for s2s (the test CA in PKIX runs, the unrelated CA
        # in dialback runs): a scenario that plays a server itself gets its certificate
        # from it.
        self.s2s_ca = s2s_ca
        self.clients: list[Client] = []
        self.dns: Dns | None = None  # Herald's own dnsmasq, when the setup asks for one
        self.peer_dns: Dns | None = None  # the peer's, likewise
        self.peer_dns_restore = 0  # the run's dnsmasq port, for the peer afterwards
        (self.closed_port,) = free_ports(1)  # nothing listens there

    def server(self, side: str) -> Server:
        return self.a if side == "a" else self.b

    def account(self, user: str) -> str:
        return f"{self.scenario.name}-{user}"

    def password(self, user: str) -> str:
        return f"pw {self.account(user)} !"

    def side_of(self, user: str) -> str:
        for u, side in self.scenario.users:
            if u == user:
                return side
        raise KeyError(f"scenario {self.scenario.name} declares no user {user!r}")

    def jid(self, user: str) -> str:
        """The bare JID of one of the scenario's users (on the side it declared)."""
        return f"{self.account(user)}@{self.server(self.side_of(user)).domain}"

    async def client(self, user: str, resource: str = "fed", **kwargs) -> Client:
        """A started client of `user` on its own server (session established, roster
        fetched, initial presence sent unless presence=None), connected to the
        server's c2s port by address: no DNS lookup leaves the process."""
        srv = self.server(self.side_of(user))
        kwargs.setdefault("presence", {})
        c = Client(f"{self.jid(user)}/{resource}", self.password(user), host=HOST,
                   port=srv.c2s_port, ca_file=srv.ca_file, **kwargs)
        self.clients.append(c)
        return await c.start(timeout=15.0)

    async def close_all(self) -> None:
        await asyncio.gather(*(c.stop(wait=2.0) for c in self.clients), return_exceptions=True)
        for c in self.clients:
            await c.kill()


# ---------------------------------------------------------------------- helpers


def roster_items(s) -> dict[str, dict]:
    """jid -> {subscription, ask} of a roster result or push (raw XML, so any server's
    attributes are seen as sent)."""
    q = s.xml.find(f"{{{NS_ROSTER}}}query") if isinstance(s, Iq) else None
    if q is None:
        return {}
    return {i.get("jid"): {"subscription": i.get("subscription", "none"), "ask": i.get("ask")}
            for i in q.findall(f"{{{NS_ROSTER}}}item")}


def is_roster_push(s, jid: str, subscription: str) -> bool:
    return (isinstance(s, Iq) and s["type"] == "set"
            and roster_items(s).get(jid, {}).get("subscription") == subscription)


async def fetch_roster(c: Client) -> dict[str, dict]:
    iq = c.make_iq_get(queryxmlns=NS_ROSTER)
    try:
        result = await iq.send(timeout=HOP)
    except Exception as e:  # noqa: BLE001 - IqError, IqTimeout
        raise ScenarioError(f"{c.label}: roster get failed: {e!r}") from None
    return roster_items(result)


async def subscribe(asker: Client, asker_jid: str, contact: Client, contact_jid: str,
                    first: bool) -> None:
    """`asker` subscribes to `contact`'s presence; `contact` approves. Checks the
    request arrives from the asker's bare JID, the approval comes back, and the
    asker's server pushes the new roster state."""
    mark_c, mark_a = contact.mark(), asker.mark()
    asker.send_presence(pto=contact_jid, ptype="subscribe")
    req = await contact.wait_for(lambda s: is_presence(s, sender=asker_jid, ptype="subscribe"),
                                 f"<presence type='subscribe'/> from {asker_jid}",
                                 timeout=FIRST_HOP if first else HOP, since=mark_c)
    check(req["from"].bare == asker_jid and not req["from"].resource,
          f"the subscription request must come from the bare JID {asker_jid}, came from {req['from']}")
    contact.send_presence(pto=asker_jid, ptype="subscribed")
    await asker.wait_for(lambda s: is_presence(s, sender=contact_jid, ptype="subscribed"),
                         f"<presence type='subscribed'/> from {contact_jid}", timeout=HOP, since=mark_a)
    await asker.wait_for(lambda s: isinstance(s, Iq) and s["type"] == "set"
                         and roster_items(s).get(contact_jid, {}).get("subscription") in ("to", "both"),
                         f"a roster push with {contact_jid} subscription 'to' or 'both'",
                         timeout=HOP, since=mark_a)


async def befriend(ctx: Context, alice: Client, bob: Client) -> None:
    """Mutual subscription between alice (side a) and bob (side b)."""
    aj, bj = ctx.jid("alice"), ctx.jid("bob")
    await subscribe(alice, aj, bob, bj, first=True)
    await subscribe(bob, bj, alice, aj, first=False)


def error_condition(s: Message) -> str:
    try:
        return s["error"]["condition"] or "(none)"
    except (KeyError, AttributeError):
        return "(none)"


# ---------------------------------------------------------------------- scenarios


@scenario("messages_both_ways", users=(("alice", "a"), ("bob", "b")))
async def messages_both_ways(ctx: Context) -> None:
    """alice@A sends a chat message to bob@B's bare JID; bob receives it with alice's
    full JID as `from` and the body intact. bob answers alice's full JID; alice
    receives it from bob's full JID with its body."""
    alice, bob = await ctx.client("alice"), await ctx.client("bob")
    body = "hello across the federation: é ü ✓ <&>"
    mark = bob.mark()
    alice.send_message(mto=ctx.jid("bob"), mbody=body, mtype="chat")
    got = await bob.wait_for(lambda s: is_message(s, sender=alice.boundjid),
                             f"alice's message from {alice.boundjid}", timeout=FIRST_HOP, since=mark)
    check(got["from"] == alice.boundjid, f"from is {got['from']}, want {alice.boundjid}")
    check(got["body"] == body, f"body is {got['body']!r}, want {body!r}")
    check(got["type"] == "chat", f"type is {got['type']!r}, want 'chat'")
    reply = "and back again"
    mark = alice.mark()
    bob.send_message(mto=alice.boundjid, mbody=reply, mtype="chat")
    got = await alice.wait_for(lambda s: is_message(s, sender=bob.boundjid),
                               f"bob's reply from {bob.boundjid}", timeout=FIRST_HOP, since=mark)
    check(got["from"] == bob.boundjid, f"from is {got['from']}, want {bob.boundjid}")
    check(got["body"] == reply, f"body is {got['body']!r}, want {reply!r}")


@scenario("iq_ping_both_ways", users=(("alice", "a"), ("bob", "b")))
async def iq_ping_both_ways(ctx: Context) -> None:
    """IQs cross in both directions and their results come back: alice@A pings bob's
    full JID (answered by bob's client) and the server B itself; bob pings alice's full
    JID and the server A."""
    alice, bob = await ctx.client("alice"), await ctx.client("bob")
    await alice.ping(bob.boundjid, "bob's client, across s2s", timeout=FIRST_HOP)
    await bob.ping(alice.boundjid, "alice's client, across s2s", timeout=FIRST_HOP)
    await alice.ping(ctx.b.domain, "the remote server", timeout=HOP)
    await bob.ping(ctx.a.domain, "the remote server", timeout=HOP)


@scenario("subscription_both_ways", users=(("alice", "a"), ("bob", "b")))
async def subscription_both_ways(ctx: Context) -> None:
    """alice@A asks bob@B for a subscription; bob gets the request from alice's bare
    JID and approves; alice gets `subscribed` and a roster push. Then the same from bob
    to alice. Finally both rosters, fetched fresh, show the other with
    subscription='both' and no pending ask."""
    alice, bob = await ctx.client("alice"), await ctx.client("bob")
    await befriend(ctx, alice, bob)
    for c, other in ((alice, ctx.jid("bob")), (bob, ctx.jid("alice"))):
        items = await fetch_roster(c)
        item = items.get(other)
        check(item is not None, f"{c.label}: {other} is not on the roster: {items}")
        check(item["subscription"] == "both" and not item["ask"],
              f"{c.label}: roster item {other} is {item}, want subscription='both' without ask")


@scenario("presence_both_ways", users=(("alice", "a"), ("bob", "b")))
async def presence_both_ways(ctx: Context) -> None:
    """With a mutual subscription: alice's presence change reaches bob (from her full
    JID, status intact) and bob's reaches alice; bob logging out reaches alice as
    unavailable; bob logging in again reaches alice as available, and bob gets
    alice's current presence (his server probes hers across s2s)."""
    alice, bob = await ctx.client("alice"), await ctx.client("bob")
    await befriend(ctx, alice, bob)
    for sender, receiver, status in ((alice, bob, "alice is federating"), (bob, alice, "bob too")):
        mark = receiver.mark()
        sender.send_presence(pstatus=status)
        got = await receiver.wait_for(
            lambda s: is_presence(s, sender=sender.boundjid, ptype="available") and s["status"] == status,
            f"available presence with status {status!r} from {sender.boundjid}", timeout=HOP, since=mark)
        check(got["from"] == sender.boundjid, f"from is {got['from']}, want {sender.boundjid}")
    mark = alice.mark()
    old = JID(bob.boundjid)
    await bob.stop()
    await alice.wait_for(lambda s: is_presence(s, sender=old, ptype="unavailable"),
                         f"unavailable presence from {old}", timeout=HOP, since=mark)
    mark = alice.mark()
    bob2 = await ctx.client("bob", "again", presence={"pstatus": "back"})
    await alice.wait_for(
        lambda s: is_presence(s, sender=bob2.boundjid, ptype="available") and s["status"] == "back",
        f"available presence from {bob2.boundjid}", timeout=HOP, since=mark)
    await bob2.wait_for(
        lambda s: is_presence(s, sender=alice.boundjid, ptype="available")
        and s["status"] == "alice is federating",
        f"alice's current presence (answer to the probe) from {alice.boundjid}", timeout=HOP)


@scenario("message_to_nonexistent_remote_user", users=(("alice", "a"), ("bob", "b")))
async def message_to_nonexistent_remote_user(ctx: Context) -> None:
    """alice@A writes to a user that does not exist on B, and bob@B to one that does
    not exist on A: each gets a message of type 'error' back from that JID (bounced by
    the remote server across s2s), with an error condition."""
    alice, bob = await ctx.client("alice"), await ctx.client("bob")
    seen = []
    for c, target in ((alice, f"nobody-{ctx.scenario.name}@{ctx.b.domain}"),
                      (bob, f"nobody-{ctx.scenario.name}@{ctx.a.domain}")):
        mark = c.mark()
        c.send_message(mto=target, mbody="is anybody there?", mtype="chat")
        err = await c.wait_for(lambda s: is_message(s, sender=target, mtype="error"),
                               f"an error message from {target}", timeout=FIRST_HOP, since=mark)
        cond = error_condition(err)
        check(cond in ("service-unavailable", "item-not-found", "recipient-unavailable"),
              f"{c.label}: the bounce from {target} has condition {cond!r}: {describe(err)}")
        c.check_none(lambda s: is_message(s, sender=target), f"a non-error message from {target}", since=mark)
        seen.append(f"{target.split('@')[1]} said {cond}")
    return "[" + ", ".join(seen) + "]"


@scenario("message_to_unknown_domain", users=(("alice", "a"), ("bob", "b")))
async def message_to_unknown_domain(ctx: Context) -> None:
    """A message to a domain with no SRV and no address record (NXDOMAIN from the
    suite's DNS) comes back to the sender as an error, from both servers: the local
    server gives up on the route instead of holding the stanza forever."""
    alice, bob = await ctx.client("alice"), await ctx.client("bob")
    seen = []
    for c in (alice, bob):
        target = f"someone@nowhere-{c.boundjid.domain.split('.')[0]}.example"
        mark = c.mark()
        c.send_message(mto=target, mbody="hello, void", mtype="chat")
        err = await c.wait_for(lambda s: is_message(s, sender=target, mtype="error"),
                               f"an error message from {target}", timeout=FIRST_HOP, since=mark)
        cond = error_condition(err)
        check(cond in ("remote-server-not-found", "remote-server-timeout", "service-unavailable"),
              f"{c.label}: the bounce from {target} has condition {cond!r}: {describe(err)}")
        seen.append(f"{c.boundjid.domain} said {cond}")
    return "[" + ", ".join(seen) + "]"


# ------------------------------------------------ scenarios with a Herald setup, restarts


async def deliver(sender: Client, receiver: Client, to: str, body: str, timeout: float) -> None:
    """sender writes `body` to `to`; receiver (to's session) gets it from sender's full JID."""
    mark = receiver.mark()
    sender.send_message(mto=to, mbody=body, mtype="chat")
    got = await receiver.wait_for(lambda s: is_message(s, sender=sender.boundjid, body=body),
                                  f"{body!r} from {sender.boundjid}", timeout=timeout, since=mark)
    check(got["type"] == "chat", f"{receiver.label}: type is {got['type']!r}, want 'chat'")


async def first_of(waits: dict[str, Awaitable], what: str, timeout: float) -> tuple[str, object]:
    """The first of several waits (each a Client.wait_for) to succeed: (its key, its
    stanza). Fails after `timeout` if none did; a wait that fails early (its connection
    closed) leaves the others running."""
    tasks = {asyncio.ensure_future(w): k for k, w in waits.items()}
    errors = []
    try:
        pending = set(tasks)
        deadline = time.monotonic() + timeout
        while pending:
            done, pending = await asyncio.wait(pending, timeout=max(deadline - time.monotonic(), 0),
                                               return_when=asyncio.FIRST_COMPLETED)
            if not done:
                break
            for t in done:
                if t.exception() is None:
                    return tasks[t], t.result()
                errors.append(str(t.exception()))
        raise ScenarioError(f"none of {what} within {timeout:g}s" + (f": {'; '.join(errors)}" if errors else ""))
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def deliver_after_backoff(sender: Client, receiver: Client, to: str, body: str,
                                timeout: float) -> list[str]:
    """Like deliver(), for a route that failed moments ago: a server may back off
    (Herald: 5 s after a failed connection) and bounce stanzas meanwhile. Each bounce
    (recorded: its condition is returned) is followed by a new attempt one second
    later, until the message is delivered or `timeout` passes."""
    deadline = time.monotonic() + timeout
    bounces = []
    mark_r = receiver.mark()
    while True:
        text = f"{body} (attempt {len(bounces) + 1})"
        mark = sender.mark()
        sender.send_message(mto=to, mbody=text, mtype="chat")
        left = max(deadline - time.monotonic(), 0.1)
        how, got = await first_of({
            "delivered": receiver.wait_for(lambda s: is_message(s, sender=sender.boundjid, body=text),
                                           repr(text), timeout=left, since=mark_r),
            "bounced": sender.wait_for(lambda s: is_message(s, sender=to, mtype="error"),
                                       "an error", timeout=left, since=mark),
        }, f"{text!r} reaching {receiver.label} or bouncing", left)
        if how == "delivered":
            return bounces
        bounces.append(error_condition(got))
        if time.monotonic() + 1.0 > deadline:
            raise ScenarioError(f"{sender.label}: {body!r} still bounces after {timeout:g}s: {bounces}")
        # A pause between attempts, not a wait for an outcome: the peer's route is in a
        # back-off that only time ends. Bounded by the deadline above.
        await asyncio.sleep(1.0)


def acl(action_direction: str):
    def setup(ctx: Context) -> HeraldSetup:
        return HeraldSetup(tables=f"""
[[s2s.acl]]
domain = "{ctx.b.domain}"
action = "deny"
direction = "{action_direction}"
""")
    return setup


@scenario("acl_deny_outbound", users=(("alice", "a"), ("bob", "b")), herald=acl("outbound"))
async def acl_deny_outbound(ctx: Context) -> str:
    """Herald denies outbound s2s to B ([[s2s.acl]] direction "outbound"): alice's
    message to bob comes back as an error `not-allowed` from bob's JID, and bob gets
    nothing. Barrier: bob then writes to alice (inbound is allowed; it may be delivered
    or bounced, recorded) and syncs with his own server before the check."""
    alice, bob = await ctx.client("alice"), await ctx.client("bob")
    mark_b = bob.mark()
    mark = alice.mark()
    alice.send_message(mto=ctx.jid("bob"), mbody="this must not leave herald", mtype="chat")
    err = await alice.wait_for(lambda s: is_message(s, sender=ctx.jid("bob"), mtype="error"),
                               f"an error message from {ctx.jid('bob')}", timeout=FIRST_HOP, since=mark)
    cond = error_condition(err)
    check(cond == "not-allowed", f"{alice.label}: the bounce has condition {cond!r}, want 'not-allowed': "
                                 f"{describe(err)}")
    back = "inbound is still allowed"
    mark = alice.mark()
    bob.send_message(mto=alice.boundjid, mbody=back, mtype="chat")
    how, got = await first_of({
        "delivered": alice.wait_for(lambda s: is_message(s, sender=bob.boundjid, body=back),
                                    "bob's message", timeout=FIRST_HOP, since=mark),
        "bounced": bob.wait_for(lambda s: is_message(s, sender=alice.boundjid, mtype="error"),
                                "an error from alice", timeout=FIRST_HOP, since=mark_b),
    }, "bob's message to alice arriving or bouncing", FIRST_HOP)
    await bob.sync()
    bob.check_none(lambda s: is_message(s, sender=alice.boundjid), "alice's message", since=mark_b)
    extra = f", {error_condition(got)}" if how == "bounced" else ""
    return f"[herald said {cond}; bob -> alice meanwhile: {how}{extra}]"


# Last (order 3): the peer remembers the refused stream for a while (ejabberd keeps
# bouncing stanzas to Herald's domain), which would break the scenarios after it.
@scenario("acl_deny_inbound", users=(("alice", "a"), ("bob", "b")), herald=acl("inbound"), order=3)
async def acl_deny_inbound(ctx: Context) -> str:
    """Herald denies inbound s2s from B ([[s2s.acl]] direction "inbound"): bob's
    message to alice comes back to bob as an error (whatever condition B reports: the
    PASS line records it), and alice gets nothing (checked after a second refused
    message and a drain barrier on alice's session)."""
    alice, bob = await ctx.client("alice"), await ctx.client("bob")
    mark_a = alice.mark()
    conds = []
    for n in (1, 2):
        mark = bob.mark()
        bob.send_message(mto=ctx.jid("alice"), mbody=f"refused {n}", mtype="chat")
        err = await bob.wait_for(lambda s: is_message(s, sender=ctx.jid("alice"), mtype="error"),
                                 f"an error message from {ctx.jid('alice')}", timeout=FIRST_HOP, since=mark)
        conds.append(error_condition(err))
    await alice.drain()
    alice.check_none(lambda s: is_message(s, sender=bob.boundjid), "bob's messages", since=mark_a)
    return f"[{ctx.b.domain} said {', '.join(conds)}]"


@scenario("static_route_without_srv", users=(("alice", "a"), ("bob", "b")),
          herald=lambda ctx: HeraldSetup(tables=f"""
[[s2s.route]]
domain = "{ctx.b.domain}"
target = "{HOST}:{ctx.b.s2s_port}"
""", srv=[]))
async def static_route_without_srv(ctx: Context) -> None:
    """Herald's DNS has no record for B at all (no SRV, no address); a [[s2s.route]]
    with target 127.0.0.1:<B's s2s port> routes to it: alice's message reaches bob,
    and bob's reply reaches alice."""
    alice, bob = await ctx.client("alice"), await ctx.client("bob")
    await deliver(alice, bob, ctx.jid("bob"), "by static route", FIRST_HOP)
    await deliver(bob, alice, alice.boundjid, "and back by SRV", FIRST_HOP)


@scenario("srv_failover", users=(("alice", "a"), ("bob", "b")),
          herald=lambda ctx: HeraldSetup(srv=[
              (f"_xmpp-server._tcp.{ctx.b.domain}", "localhost", ctx.closed_port, 0, 0),
              (f"_xmpp-server._tcp.{ctx.b.domain}", "localhost", ctx.b.s2s_port, 10, 0),
              (f"_xmpp-server._tcp.{ctx.a.domain}", "localhost", ctx.a.s2s_port, 0, 0),
          ]))
async def srv_failover(ctx: Context) -> None:
    """Herald's DNS publishes two `_xmpp-server` SRV records for B: priority 0 points
    at a closed loopback port, priority 10 at B's s2s listener. alice's message still
    reaches bob (Herald falls over to the second target)."""
    alice, bob = await ctx.client("alice"), await ctx.client("bob")
    await deliver(alice, bob, ctx.jid("bob"), "through the second SRV target", FIRST_HOP)
    await deliver(bob, alice, alice.boundjid, "and back", FIRST_HOP)


@scenario("direct_tls_outbound", users=(("alice", "a"), ("bob", "b")),
          herald=lambda ctx: HeraldSetup(listen_tls=True, srv=[
              (f"_xmpps-server._tcp.{ctx.b.domain}", "localhost", ctx.b.s2s_tls_port, 0, 0),
              (f"_xmpp-server._tcp.{ctx.a.domain}", "localhost", ctx.a.s2s_port, 0, 0),
          ]))
async def direct_tls_outbound(ctx: Context) -> None:
    """Herald's DNS publishes only `_xmpps-server._tcp.B` (XEP-0368), pointing at B's
    direct-TLS s2s listener (Prosody `s2s_direct_tls_ports`, ejabberd `ejabberd_s2s_in`
    with `tls: true`); there is no `_xmpp-server` record and no address record for B,
    so only a direct-TLS connection can carry alice's message to bob."""
    alice, bob = await ctx.client("alice"), await ctx.client("bob")
    await deliver(alice, bob, ctx.jid("bob"), "over direct TLS", FIRST_HOP)
    await deliver(bob, alice, alice.boundjid, "and back", FIRST_HOP)


@scenario("direct_tls_inbound", users=(("alice", "a"), ("bob", "b")), peers=("prosody", "herald"),
          herald=lambda ctx: HeraldSetup(listen_tls=True, peer_srv=[
              (f"_xmpps-server._tcp.{ctx.a.domain}", "localhost", ctx.a.s2s_tls_port, 0, 0),
          ]))
async def direct_tls_inbound(ctx: Context) -> None:
    """Herald listens for direct-TLS s2s ([s2s] listen_tls); the peer (Prosody 0.12,
    which looks up `_xmpps-server` before `_xmpp-server`, or a second Herald, which
    pools both record kinds) resolves through a dnsmasq
    that publishes only `_xmpps-server._tcp.A` pointing at that listener: no
    `_xmpp-server` and no address record for A. So bob's message can reach alice only
    over a direct-TLS stream into Herald. alice's reply goes back as usual."""
    alice, bob = await ctx.client("alice"), await ctx.client("bob")
    await deliver(bob, alice, ctx.jid("alice"), "over direct TLS into herald", FIRST_HOP)
    await deliver(alice, bob, bob.boundjid, "and back", FIRST_HOP)


# Herald's pairs only: in the control pair it would add two ejabberd restarts (~30 s)
# to every CI run and check nothing about Herald.
@scenario("peer_restart", users=(("alice", "a"), ("bob", "b")), order=1, herald_only=True)
async def peer_restart(ctx: Context) -> str:
    """Messages flow A -> B; B is stopped (Prosody: SIGTERM; ejabberd: `ejabberdctl
    stop`) and alice writes to bob: that message must bounce back to alice as an error
    or reach bob once B is up again, never vanish. B starts again (same data), bob
    logs in again, and messages flow both ways."""
    alice, bob = await ctx.client("alice"), await ctx.client("bob")
    await deliver(alice, bob, ctx.jid("bob"), "before the restart", FIRST_HOP)
    ok, how = await ctx.b.stop()
    check(ok, f"stopping {ctx.b.kind}: {how}")
    await bob.kill()
    mark = alice.mark()
    body = "while you were down"
    alice.send_message(mto=ctx.jid("bob"), mbody=body, mtype="chat")
    early = None
    try:  # a bounce while B is down (the usual case); else it may still come later
        early = await alice.wait_for(lambda s: is_message(s, sender=ctx.jid("bob"), mtype="error"),
                                     "an error while B is down", timeout=HOP, since=mark)
    except ScenarioError:
        pass
    await ctx.b.start(ctx.b.setting)
    bob2 = await ctx.client("bob", "back")
    if early is not None:
        outcome = f"bounced while down ({error_condition(early)})"
    else:
        how, got = await first_of({
            "bounced": alice.wait_for(lambda s: is_message(s, sender=ctx.jid("bob"), mtype="error"),
                                      "an error", timeout=FIRST_HOP, since=mark),
            "delivered": bob2.wait_for(lambda s: is_message(s, sender=alice.boundjid, body=body),
                                       "the message", timeout=FIRST_HOP),
        }, "alice's message bouncing or reaching bob", FIRST_HOP)
        outcome = f"{how} after the restart" + (f" ({error_condition(got)})" if how == "bounced" else "")
    bounces = await deliver_after_backoff(alice, bob2, ctx.jid("bob"), "after the restart", FIRST_HOP)
    await deliver(bob2, alice, alice.boundjid, "back again", FIRST_HOP)
    after = f"; then {len(bounces)} bounce(s) ({', '.join(sorted(set(bounces)))}) before delivery" if bounces else ""
    return f"[message sent while {ctx.b.kind} was down: {outcome}{after}]"


# ------------------------------------------------ Herald reloading by SIGHUP, live


def herald_links(pid: int) -> set[tuple[int, int]]:
    """(local port, remote port) of every established TCP connection (IPv4) the
    process `pid` holds: its socket inodes (/proc/PID/fd) looked up in /proc/net/tcp."""
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    links = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        if len(f) > 9 and f[3] == "01" and f[9] in inodes:  # 01: ESTABLISHED
            links.add((int(f[1].rsplit(":", 1)[1], 16), int(f[2].rsplit(":", 1)[1], 16)))
    return links


def stream_links(ctx: Context) -> set[tuple[int, int]]:
    """Herald's (side a) connections with the peer's s2s listener (outbound) and into
    its own s2s listener (inbound: only the peer connects there in this run)."""
    return {(lp, rp) for lp, rp in herald_links(ctx.a.proc.pid)
            if rp == ctx.b.s2s_port or lp == ctx.a.s2s_port}


def streams_opened(herald: HeraldServer, domain: str) -> tuple[int, int]:
    """How many streams with `domain` Herald's log says it has set up since it was
    first started: (inbound authenticated, outbound up)."""
    text = herald.log_since(0)
    inbound = sum(1 for line in text.splitlines()
                  if "inbound stream authenticated" in line and f"remote={domain} " in line + " ")
    outbound = sum(1 for line in text.splitlines()
                   if "outbound stream up" in line and f"s2s-out{{remote={domain}}}" in line)
    return inbound, outbound


async def wait_streams(herald: HeraldServer, domain: str, want: dict[str, int], what: str,
                       timeout: float = HOP) -> None:
    """Until Herald's herald_s2s_streams for `domain` is `want` ({"in": n, "out": m})."""
    deadline = time.monotonic() + timeout
    while True:
        got = await herald.s2s_streams(domain)
        if got == want:
            return
        if time.monotonic() > deadline:
            raise ScenarioError(f"{what}: herald_s2s_streams for {domain} is {got}, want {want} "
                                f"(waited {timeout:g}s)")
        # /metrics has no change notification: one request every 50 ms, bounded.
        await asyncio.sleep(0.05)


def reload_closed(text: str) -> int:
    """The `closed` count of Herald's `s2s rules reloaded closed=N` line."""
    m = re.search(r"s2s rules reloaded closed=(\d+)", text)
    check(m is not None, f"no 's2s rules reloaded closed=N' line in herald's log after SIGHUP:\n{text[-1500:]}")
    return int(m.group(1))


async def bounce(sender: Client, to: str, body: str, timeout: float) -> str:
    """sender writes to `to`; the message comes back as an error from `to`: its condition."""
    mark = sender.mark()
    sender.send_message(mto=to, mbody=body, mtype="chat")
    err = await sender.wait_for(lambda s: is_message(s, sender=to, mtype="error"),
                                f"an error message from {to} for {body!r}", timeout=timeout, since=mark)
    return error_condition(err)


async def both_ways_on_the_same_streams(ctx: Context, alice: Client, bob: Client, step: str,
                                        before: tuple, links: set) -> None:
    """Messages cross both ways, and Herald still has exactly the streams of `before`
    (streams_opened counts) with no connection outside `links`."""
    await deliver(alice, bob, ctx.jid("bob"), f"alice after {step}", HOP)
    await deliver(bob, alice, alice.boundjid, f"bob after {step}", HOP)
    await wait_streams(ctx.a, ctx.b.domain, {"in": 1, "out": 1}, f"after {step}")
    now = streams_opened(ctx.a, ctx.b.domain)
    check(now == before, f"after {step}: herald set up streams with {ctx.b.domain} again: "
                         f"(inbound, outbound) opened {before} before, {now} now")
    new = stream_links(ctx) - links
    check(not new, f"after {step}: herald has new s2s connections {sorted(new)} "
                   f"(before: {sorted(links)})")


@scenario("sighup_acl_reload", users=(("alice", "a"), ("bob", "b")), order=1, herald_only=True)
async def sighup_acl_reload(ctx: Context) -> str:
    """Herald federates with B (streams up both ways), and its herald.toml is rewritten
    and Herald sent SIGHUP (by PID), five times:
    (1) a deny for `*.blocked.example` and another `[s2s.limits]` rate: reloaded, a
    message to that domain bounces `not-allowed`, and messages cross both ways on the
    same streams (herald_s2s_streams 1 in, 1 out; no new stream in Herald's log; no new
    TCP connection of Herald's with B);
    (2) a file that denies B but does not load (an unknown key): refused, the same
    streams keep carrying messages both ways;
    (3) a deny for B (both directions): Herald closes both streams (`closed=2`, the
    gauges drop to 0); alice's message bounces `not-allowed`; bob's message does not
    reach alice (it bounces back to bob, recorded, or nothing comes within the wait);
    bob gets nothing from alice;
    (4) a file that lifts the deny but does not load: refused, alice's message still
    bounces `not-allowed`;
    (5) the run's own configuration: messages flow both ways again (B may bounce
    bob's first tries while it backs off from the refusals: retried once a second).
    Herald keeps its run configuration afterwards, restored also when a step fails."""
    herald = ctx.a
    check(isinstance(herald, HeraldServer), "side a must be herald")
    base = herald.variant
    b_dom = ctx.b.domain
    deny_b = f"""
[[s2s.acl]]
domain = "{b_dom}"
action = "deny"
direction = "both"
"""
    unrelated = """
[[s2s.acl]]
domain = "*.blocked.example"
action = "deny"
direction = "both"

[s2s.limits]
stanzas_per_sec = 150
"""
    notes = []
    restored = False
    try:
        alice, bob = await ctx.client("alice"), await ctx.client("bob")
        await deliver(alice, bob, ctx.jid("bob"), "before any reload", FIRST_HOP)
        await deliver(bob, alice, alice.boundjid, "and back before any reload", FIRST_HOP)
        await wait_streams(herald, b_dom, {"in": 1, "out": 1}, "before the reloads")
        opened = streams_opened(herald, b_dom)
        check(opened[0] >= 1 and opened[1] >= 1,
              f"herald's log shows (inbound, outbound) streams with {b_dom} set up: {opened}")
        links = stream_links(ctx)
        check(any(rp == ctx.b.s2s_port for _, rp in links) and any(lp == ctx.a.s2s_port for lp, _ in links),
              f"herald holds no connection to {b_dom}'s s2s port {ctx.b.s2s_port} or none into its own "
              f"{ctx.a.s2s_port}: {sorted(links)}")

        # (1) an unrelated change: the streams with B stay.
        outcome, text = await herald.reload(dataclasses.replace(base, tables=base.tables + unrelated))
        check(outcome == "reloaded", f"(1) reload refused:\n{text[-1500:]}")
        check(reload_closed(text) == 0, f"(1) the unrelated reload closed streams:\n{text[-1500:]}")
        cond = await bounce(alice, "someone@x.blocked.example", "to a denied domain", HOP)
        check(cond == "not-allowed", f"(1) the message to x.blocked.example bounced with {cond!r}, "
                                     f"want 'not-allowed' (the reloaded ACL)")
        await both_ways_on_the_same_streams(ctx, alice, bob, "the unrelated reload", opened, links)
        notes.append(f"unrelated reload: same streams, same {len(links)} connections")

        # (2) a broken file (that would deny B) is refused; the same streams carry on.
        outcome, text = await herald.reload(dataclasses.replace(base, tables=base.tables + deny_b),
                                            broken="no_such_key = 1\n")
        check(outcome == "refused", f"(2) a broken file was not refused: {outcome}:\n{text[-1500:]}")
        await both_ways_on_the_same_streams(ctx, alice, bob, "the refused reload", opened, links)
        notes.append("broken file refused")

        # (3) deny B: both streams close, nothing crosses.
        before = await herald.s2s_streams(b_dom)
        outcome, text = await herald.reload(dataclasses.replace(base, tables=base.tables + deny_b))
        check(outcome == "reloaded", f"(3) reload refused:\n{text[-1500:]}")
        closed = reload_closed(text)
        check(closed == before["in"] + before["out"],
              f"(3) the deny closed {closed} streams, want {before['in'] + before['out']} ({before})")
        check(f"domain={b_dom}" in text and "s2s stream closed: the reloaded ACL denies it" in text,
              f"(3) herald's log does not say it closed the streams with {b_dom}:\n{text[-1500:]}")
        await wait_streams(herald, b_dom, {"in": 0, "out": 0}, "(3) after the deny")
        mark_a, mark_b = alice.mark(), bob.mark()
        cond = await bounce(alice, ctx.jid("bob"), "denied by the reload", HOP)
        check(cond == "not-allowed", f"(3) alice's message to bob bounced with {cond!r}, want 'not-allowed'")
        refused = "refused by the reload"
        bob.send_message(mto=alice.boundjid, mbody=refused, mtype="chat")
        try:
            how, got = await first_of({
                "delivered": alice.wait_for(lambda s: is_message(s, sender=bob.boundjid, body=refused),
                                            "bob's message", timeout=FIRST_HOP, since=mark_a),
                "bounced": bob.wait_for(lambda s: is_message(s, sender=alice.boundjid, mtype="error"),
                                        "an error from alice", timeout=FIRST_HOP, since=mark_b),
            }, "bob's message to alice arriving or bouncing", FIRST_HOP)
        except ScenarioError:  # neither within the wait: nothing came back, which is allowed
            how, got = "nothing came back", None
        check(how != "delivered", f"(3) bob's message reached alice although herald denies {b_dom}")
        await alice.drain()
        alice.check_none(lambda s: is_message(s, sender=bob.boundjid), "bob's message while denied",
                         since=mark_a)
        await bob.sync()
        bob.check_none(lambda s: is_message(s, sender=alice.boundjid), "alice's message while denied",
                       since=mark_b)
        notes.append(f"deny closed {closed} streams; alice -> bob {cond}; bob -> alice "
                     + (f"bounced ({error_condition(got)})" if how == "bounced" else how))

        # (4) a broken file that would lift the deny: refused, still denied.
        outcome, text = await herald.reload(base, broken="[[s2s.acl]]\ndomain = 7\n")
        check(outcome == "refused", f"(4) a broken file was not refused: {outcome}:\n{text[-1500:]}")
        cond = await bounce(alice, ctx.jid("bob"), "still denied", HOP)
        check(cond == "not-allowed", f"(4) after the refused reload alice's message bounced with {cond!r}, "
                                     f"want 'not-allowed' (the deny still in force)")

        # (5) the run's configuration again: delivery is back.
        outcome, text = await herald.reload(base)
        check(outcome == "reloaded", f"(5) reload refused:\n{text[-1500:]}")
        restored = True
        await deliver(alice, bob, ctx.jid("bob"), "the deny is lifted", FIRST_HOP)
        bounces = await deliver_after_backoff(bob, alice, alice.boundjid, "bob after the lift", FIRST_HOP)
        await wait_streams(herald, b_dom, {"in": 1, "out": 1}, "(5) after the lift")
        notes.append("lifted: delivered both ways" + (f" (bob's first {len(bounces)} bounced: "
                                                      f"{', '.join(sorted(set(bounces)))})" if bounces else ""))
        return "[" + "; ".join(notes) + "]"
    finally:
        if not restored and herald.alive():
            try:
                outcome, _ = await herald.reload(base)
            except ServerError:
                outcome = "failed"
            if outcome != "reloaded":
                await herald.reconfigure(base)


# ------------------------------------------------ a spoofed `from` on a raw s2s stream

NS_STREAMS = "http://etherx.jabber.org/streams"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_STREAM_ERRORS = "urn:ietf:params:xml:ns:xmpp-streams"


class RawS2s:
    """The initiating side of an s2s stream, written out by hand on an asyncio socket:
    stream headers, STARTTLS with a client certificate, SASL EXTERNAL (XEP-0178),
    stanzas as text. Elements the server sends are parsed with a pull parser, one per
    stream (a new one after each restart). Every read is bounded by `timeout`."""

    def __init__(self, local: str, remote: str, port: int, timeout: float) -> None:
        self.local, self.remote, self.port, self.timeout = local, remote, port, timeout
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.parser: ET.XMLPullParser | None = None
        self.depth = 0
        self.elements: list[ET.Element] = []  # complete top-level elements not yet read
        self.closed = False  # the server closed the stream or the connection
        self.header: dict[str, str] = {}

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(HOST, self.port), self.timeout)

    def send(self, xml: str) -> None:
        self.writer.write(xml.encode())

    async def open_stream(self) -> ET.Element:
        """Send a stream header, read the server's and its features."""
        self.parser = ET.XMLPullParser(events=("start", "end"))
        self.depth, self.elements, self.header = 0, [], {}
        self.send(f"<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
                  f"xmlns:stream='{NS_STREAMS}' from='{self.local}' to='{self.remote}' version='1.0'>")
        return await self.expect(f"{{{NS_STREAMS}}}features", "stream features")

    async def next(self, what: str) -> ET.Element | None:
        """The next top-level element, or None once the server closed the stream."""
        deadline = time.monotonic() + self.timeout
        while not self.elements:
            if self.closed:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise ScenarioError(f"raw s2s: nothing within {self.timeout:g}s while waiting for {what}")
            try:
                data = await asyncio.wait_for(self.reader.read(65536), left)
            except asyncio.TimeoutError:
                continue
            except (ConnectionError, ssl.SSLError):
                data = b""
            if not data:
                self.closed = True
                continue
            self.parser.feed(data)
            for event, el in self.parser.read_events():
                if event == "start":
                    if self.depth == 0:
                        self.header = dict(el.attrib)
                    self.depth += 1
                else:
                    self.depth -= 1
                    if self.depth == 1:
                        self.elements.append(el)
                    elif self.depth == 0:
                        self.closed = True
        return self.elements.pop(0)

    async def expect(self, tag: str, what: str) -> ET.Element:
        el = await self.next(what)
        if el is None:
            raise ScenarioError(f"raw s2s: the server closed the stream while waiting for {what}")
        if el.tag != tag:
            raise ScenarioError(f"raw s2s: got {ET.tostring(el, encoding='unicode')[:300]} "
                                f"while waiting for {what}")
        return el

    async def negotiate(self, cert: Issued, ca_file: str) -> None:
        """STARTTLS (presenting `cert`, verifying the server against `ca_file`), SASL
        EXTERNAL as `local`, and the restarted stream after it."""
        await self.connect()
        features = await self.open_stream()
        check(features.find(f"{{{NS_TLS}}}starttls") is not None,
              f"raw s2s: no <starttls/> offered: {ET.tostring(features, encoding='unicode')}")
        self.send(f"<starttls xmlns='{NS_TLS}'/>")
        await self.expect(f"{{{NS_TLS}}}proceed", "<proceed/>")
        tls = ssl.create_default_context(cafile=ca_file)
        tls.load_cert_chain(str(cert.chain), str(cert.key))
        await self.writer.start_tls(tls, server_hostname=self.remote, ssl_handshake_timeout=self.timeout)
        features = await self.open_stream()
        mechs = [m.text for m in features.iter(f"{{{NS_SASL}}}mechanism")]
        check("EXTERNAL" in mechs, f"raw s2s: SASL EXTERNAL not offered after TLS (mechanisms {mechs}): "
                                   f"{ET.tostring(features, encoding='unicode')}")
        authzid = base64.b64encode(self.local.encode()).decode()
        self.send(f"<auth xmlns='{NS_SASL}' mechanism='EXTERNAL'>{authzid}</auth>")
        await self.expect(f"{{{NS_SASL}}}success", "SASL <success/>")
        await self.open_stream()

    async def close(self) -> None:
        if self.writer is None:
            return
        try:
            if not self.closed:
                self.send("</stream:stream>")
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 2.0)
        except (OSError, ssl.SSLError, asyncio.TimeoutError):
            pass


RAW_PEER = "rawpeer.example"


@scenario("spoofed_from_raw_s2s", users=(("alice", "a"),), herald_only=True)
async def spoofed_from_raw_s2s(ctx: Context) -> str:
    """A raw TCP socket (no XMPP library) plays the server `rawpeer.example` towards
    Herald's s2s listener: STARTTLS with a client certificate for that domain from the
    CA the servers trust for s2s (the test CA; in dialback runs the unrelated CA, which
    is what Herald trusts there), SASL EXTERNAL as rawpeer.example, a new stream. A
    message from `tester@rawpeer.example` reaches alice (the stream really is
    authenticated). Then a message whose `from` is in a domain not authenticated on
    the stream: Herald ends the stream with the RFC 6120 stream error `<invalid-from/>`
    and closes it, and alice receives nothing from that sender (checked after a drain
    barrier on her session). Three streams, one per spoofed domain: an unknown one
    (`mallory@evil.example`), the peer B that Herald federates with, and Herald's own
    domain."""
    alice = await ctx.client("alice")
    check(ctx.s2s_ca is not None, "the run gave no s2s CA")
    cert = await asyncio.to_thread(ctx.s2s_ca.issue, RAW_PEER)
    texts = []
    for n, spoofed in enumerate(("mallory@evil.example/x", f"{ctx.account('alice')}-friend@{ctx.b.domain}/x",
                                 f"admin@{ctx.a.domain}/x"), 1):
        raw = RawS2s(RAW_PEER, ctx.a.domain, ctx.a.s2s_port, HOP)
        try:
            await raw.negotiate(cert, ctx.a.ca_file)
            mark = alice.mark()
            legit, body = f"tester@{RAW_PEER}/raw", f"from an authenticated domain ({n})"
            raw.send(f"<message from='{legit}' to='{alice.boundjid}' type='chat' id='legit-{n}'>"
                     f"<body>{body}</body></message>")
            await alice.wait_for(lambda s: is_message(s, sender=legit, body=body),
                                 f"the message from {legit} over raw stream {n}", timeout=HOP, since=mark)
            raw.send(f"<message from='{spoofed}' to='{alice.boundjid}' type='chat' id='spoof-{n}'>"
                     f"<body>spoofed</body></message>")
            err = await raw.next(f"herald's answer to the spoofed from {spoofed}")
            check(err is not None, f"herald closed the stream without a stream error after the spoofed "
                                   f"from {spoofed}")
            check(err.tag == f"{{{NS_STREAMS}}}error",
                  f"herald answered the spoofed from {spoofed} with "
                  f"{ET.tostring(err, encoding='unicode')[:300]}, want a stream error")
            conds = [c.tag.split("}")[1] for c in err if c.tag.startswith(f"{{{NS_STREAM_ERRORS}}}")
                     and c.tag.split("}")[1] != "text"]
            check(conds == ["invalid-from"], f"the stream error for the spoofed from {spoofed} is {conds}, "
                                             f"want ['invalid-from']: {ET.tostring(err, encoding='unicode')[:300]}")
            texts.append(err.findtext(f"{{{NS_STREAM_ERRORS}}}text") or "")
            rest = await raw.next("the end of the stream after the stream error")
            if rest is not None:
                raise ScenarioError(f"herald sent {ET.tostring(rest, encoding='unicode')[:200]} after the "
                                    f"stream error instead of closing the stream")
            await alice.drain()
            alice.check_none(lambda s: is_message(s, sender=JID(spoofed).bare), f"the message from {spoofed}",
                             since=mark)
        finally:
            await raw.close()
    return f"[{len(texts)} spoofed domains, each stream error invalid-from: {sorted(set(texts))}]"


# ---------------------------------------------------------------------- runner


def emit(text: str) -> None:
    first, *rest = text.rstrip("\n").splitlines() or [""]
    print(first, flush=True)
    for line in rest:
        print(f"    | {line}", flush=True)


async def apply_setup(ctx: Context) -> None:
    """Restart Herald (side a) with the scenario's configuration variant, and start its
    own dnsmasq first if the variant has one."""
    setup = ctx.scenario.herald(ctx)
    dns_port = 0
    if setup.srv is not None:
        ctx.dns = Dns(ctx.workdir / f"dns-{ctx.scenario.name}", {}, srv=setup.srv)
        ctx.dns.start()
        dns_port = ctx.dns.port
    if setup.peer_srv is not None:
        ctx.peer_dns = Dns(ctx.workdir / f"dns-{ctx.scenario.name}-peer", {}, srv=setup.peer_srv)
        ctx.peer_dns.start()
        ctx.peer_dns_restore = ctx.b.setting.dns_port
        ok, how = await ctx.b.stop()
        check(ok, f"stopping {ctx.b.kind} to give it this scenario's DNS: {how}")
        await ctx.b.kill()
        await ctx.b.start(dataclasses.replace(ctx.b.setting, dns_port=ctx.peer_dns.port))
    ok, how = await ctx.a.reconfigure(HeraldVariant(setup.tables, setup.listen_tls, dns_port))
    check(ok, f"restarting herald for this scenario's configuration: {how}")


async def run_scenario(a: Server, b: Server, sc: Scenario, timeout: float,
                       workdir: Path | None = None, s2s_ca: TestCA | None = None) -> tuple[bool, str]:
    ctx = Context(a, b, sc, workdir, s2s_ca)
    started = time.monotonic()
    ok, reason, note = True, "", None
    try:
        if sc.herald is not None:
            await asyncio.wait_for(apply_setup(ctx), 60)
        note = await asyncio.wait_for(sc.func(ctx), timeout)
    except asyncio.TimeoutError:
        ok, reason = False, f"scenario timed out after {timeout:g}s"
    except ScenarioError as e:
        ok, reason = False, str(e)
    except Exception as e:  # noqa: BLE001 - any crash is a failure of the scenario
        ok, reason = False, f"{type(e).__name__}: {e}\n{traceback.format_exc()}"
    finally:
        try:
            await asyncio.wait_for(ctx.close_all(), 10)
        except asyncio.TimeoutError:
            pass
        if ctx.dns is not None:
            ctx.dns.stop()
        if ctx.peer_dns is not None:
            # The peer goes back to the run's dnsmasq (its setting has the scenario's).
            try:
                if ctx.b.alive():
                    good, how = await ctx.b.stop()
                    if ok and not good:
                        ok, reason = False, f"stopping {ctx.b.kind} after the scenario: {how}"
                await ctx.b.kill()
                await ctx.b.start(dataclasses.replace(ctx.b.setting, dns_port=ctx.peer_dns_restore))
            except ServerError as e:
                ok, reason = False, (reason or "") + f"\nrestarting {ctx.b.kind} after the scenario: {e}"
            ctx.peer_dns.stop()
    for srv in (a, b):
        if not srv.alive():
            if ok:
                ok, reason = False, f"{srv} is not running any more:\n{srv.log_tail()}"
            # A scenario that stops a server may fail before it starts it again: start it
            # here, so the scenarios after it still have their pair.
            if srv.setting is not None:
                try:
                    await srv.kill()
                    await srv.start(srv.setting)
                except ServerError as e:
                    reason += f"\n(starting {srv.kind} again failed: {e})"
    took = time.monotonic() - started
    if not reason:
        return ok, f"({took:.1f}s)" + (f" {note}" if note else "")
    first, _, details = reason.partition("\n")
    return ok, f"{first} ({took:.1f}s)" + (f"\n{details}" if details else "")


async def start_all(args: argparse.Namespace, workdir: Path, kinds: list[str],
                    selected: list[Scenario]) -> tuple[Dns, list[Server], TestCA]:
    ca = TestCA(workdir / "pki")
    # Dialback mode: servers trust an unrelated CA, so the peer's certificate does not
    # verify and s2s must authenticate with dialback (clients still trust the test CA).
    s2s_ca = TestCA(workdir / "pki-stranger", "Unrelated CA") if args.auth == "dialback" else ca
    trust = s2s_ca.cert
    # herald,herald: the second is herald2.example, in herald2/, so domains and
    # directories stay distinct (ports always are: free_ports never repeats one).
    names = [kinds[0], kinds[1] + ("2" if kinds[1] == kinds[0] else "")]
    servers = [SERVERS[k](f"{n}.example", workdir / n) for k, n in zip(kinds, names)]
    if isinstance(servers[1], HeraldServer):
        # Herald as the peer (side b) listens for direct-TLS s2s too, as Prosody and
        # ejabberd always do, so direct_tls_outbound finds a listener there.
        servers[1].variant = HeraldVariant(listen_tls=True)
    dns = Dns(workdir / "dns", {s.domain: s.s2s_port for s in servers})
    dns.start()
    try:
        # Both start at once; every start is awaited (even when one fails early), so no
        # server process is left half-started when setup gives up.
        results = await asyncio.gather(
            *(s.start(Setting(ca.cert, trust, ca.issue(s.domain), dns.port, args.auth, args.debug_logs))
              for s in servers), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r
        gate = asyncio.Semaphore(4)
        ctxs = [Context(servers[0], servers[1], sc) for sc in selected]

        async def add(ctx: Context, user: str, side: str) -> None:
            async with gate:
                await ctx.server(side).add_user(ctx.account(user), ctx.password(user))

        await asyncio.gather(*(add(c, u, side) for c in ctxs for u, side in c.scenario.users))
    except BaseException:
        for s in servers:
            await s.kill()
        dns.stop()
        raise
    return dns, servers, s2s_ca


async def main_async(args: argparse.Namespace) -> int:
    kinds = [k.strip() for k in args.pair.split(",")]
    # Two of a kind only for Herald (two `herald serve` processes, each with its own
    # domain, directory and ports); Prosody and ejabberd pairs of one kind are not set up.
    if (len(kinds) != 2 or any(k not in SERVERS for k in kinds)
            or (kinds[0] == kinds[1] and kinds[0] != "herald")):
        print(f"FAIL setup: --pair wants two servers of {', '.join(SERVERS)} (the same one twice "
              f"only for herald); got {args.pair!r}")
        print("0 passed, 1 failed")
        return 1
    selected = [s for s in SCENARIOS if (not args.k or args.k in s.name) and applies(s, kinds)]
    selected.sort(key=lambda s: s.order)  # stable: registry order within each group
    if not selected:
        print(f"FAIL selection: no scenario matches -k {args.k!r}; "
              f"scenarios: {', '.join(s.name for s in SCENARIOS)}")
        print("0 passed, 1 failed")
        return 1

    workdir = Path(tempfile.mkdtemp(prefix="herald-fed-interop-"))
    suite_started = time.monotonic()
    try:
        dns, servers, s2s_ca = await start_all(args, workdir, kinds, selected)
    except (PKIError, DnsError, ServerError, NotImplementedError, OSError) as e:
        emit(f"FAIL setup: {e}")
        print(f"(configs and logs kept in {workdir})")
        print(f"0 passed, {len(selected) + 1} failed")
        return 1
    a, b = servers
    print(f"pair: {a}; {b}; dnsmasq on {HOST}:{dns.port}; s2s auth: {args.auth}; "
          f"temp dir {workdir}", flush=True)
    passed = failed = 0
    try:
        for sc in selected:
            # The run's dnsmasq is a child of this process and only this run stops it.
            # If it has exited anyway (something else on the machine ended it: once, in
            # a run on a shared machine, every lookup after the first timed out), say so
            # and start it again on its port, so that the scenarios after it test the
            # servers and not a missing DNS server.
            rc = dns.exited()
            if rc is not None:
                emit(f"NOTE the run's dnsmasq exited ({rc}) before {sc.name} without this run stopping "
                     f"it; starting it again on {HOST}:{dns.port}. Its log ends:\n{dns.log_tail(3)}")
                try:
                    dns.start(dns.port)
                except DnsError as e:
                    emit(f"NOTE starting the run's dnsmasq again failed: {e}")
            ok, reason = await run_scenario(a, b, sc, args.timeout, workdir, s2s_ca)
            if ok:
                emit(f"PASS {sc.name} {reason}")
                passed += 1
            else:
                emit(f"FAIL {sc.name}: {reason}")
                failed += 1
                for srv in servers:
                    emit(f"     {srv.kind} log tail:\n{srv.log_tail(15)}")
        stops = [await s.stop() for s in servers]
        ok = all(o for o, _ in stops)
        emit(f"{'PASS' if ok else 'FAIL'} clean_stop{'' if ok else ':'} " + "; ".join(r for _, r in stops))
        passed, failed = passed + ok, failed + (not ok)
    finally:
        for s in servers:
            await s.kill()
        dns.stop()
    print(f"suite took {time.monotonic() - suite_started:.1f}s", flush=True)
    if failed or args.keep:
        print(f"(configs, data and logs kept in {workdir})")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pair", default="prosody,ejabberd",
                   help=f"the two servers under test, of {', '.join(SERVERS)} (default prosody,ejabberd)")
    p.add_argument("--auth", choices=("pkix", "dialback"), default="pkix",
                   help="s2s authentication: pkix (certificates from the test CA, no dialback) or "
                        "dialback (servers do not trust each other's CA; XEP-0220)")
    p.add_argument("-k", metavar="NAME", default="", help="run only scenarios whose name contains NAME")
    p.add_argument("--timeout", type=float, default=90.0, help="per-scenario timeout in seconds")
    p.add_argument("--keep", action="store_true", help="keep the temp dir even on success")
    p.add_argument("--debug-logs", action="store_true", help="servers log at debug level")
    p.add_argument("-v", "--verbose", action="store_true", help="slixmpp debug logging on stderr")
    args = p.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.CRITICAL,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")

    # SIGTERM (e.g. from `timeout`) ends the run like Ctrl-C does: the running
    # coroutine is cancelled and its `finally` blocks stop the servers and dnsmasq.
    def interrupted(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    try:
        return asyncio.run(main_async(args))
    except KeyboardInterrupt:
        print("interrupted: servers and dnsmasq stopped; the temp dir is left in place", flush=True)
        print("0 passed, 1 failed")
        return 130


if __name__ == "__main__":
    sys.exit(main())
