"""The federation suite's scenario registry, the context a scenario sees, and the
helpers scenarios share (imported by run.py and the scenarios_*.py modules)."""

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
