"""slixmpp clients for the Herald interop scenarios.

`Client` is an ordinary slixmpp `ClientXMPP` with three additions:

* TLS is verified against Herald's development CA (no verification shortcuts), over
  STARTTLS or direct TLS (XEP-0368) as asked;
* every top-level element the server sends is recorded in `client.received`, so a
  scenario can wait for "the next stanza like this" or check that nothing like it came;
* `start()` / `stop()` coroutines that return once the session is established (or
  raise with the reason it was not) and once the stream is closed.

Synchronization is by round trips, never by sleeping. Herald handles one session's
stanzas in order, and everything it routes to a session goes through that session's
one outbound queue, so:

* `sync()` (a XEP-0199 ping of the server, answered by the server itself) proves the
  server has handled everything this client sent before it;
* `drain()` (a ping of the client's own full JID, which the server routes through this
  session's outbound queue and slixmpp answers) proves that too, and also that
  everything the server had queued for this client before it has been received;
* `ping(jid)` of another client's full JID proves that whatever this client's earlier
  stanzas made the server queue for that client has reached it.

Every wait has a deadline; a wait for a stanza also ends as soon as the connection
closes (nothing more can come), reporting the stream error if there was one.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import xml.etree.ElementTree as ET
from typing import Callable, Iterable

import slixmpp
from slixmpp import JID
from slixmpp.stanza import Message, Presence
from slixmpp.xmlstream import ElementBase

NS_DELAY = "urn:xmpp:delay"
NS_CARBONS = "urn:xmpp:carbons:2"
NS_FORWARD = "urn:xmpp:forward:0"
NS_CLIENT = "jabber:client"
NS_SM = "urn:xmpp:sm:3"

Predicate = Callable[[ElementBase], bool]


class ScenarioError(AssertionError):
    """A scenario check failed; the message says what was expected and what came."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise ScenarioError(message)


def describe(el: ElementBase, limit: int = 300) -> str:
    """A one-line rendering of an element for failure messages."""
    text = str(el).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Client(slixmpp.ClientXMPP):
    """A real slixmpp client pointed at the Herald under test."""

    def __init__(
        self,
        jid: str,
        password: str,
        *,
        host: str,
        port: int,
        ca_file: str,
        direct_tls: bool = False,
        plugins: Iterable[str] = (),
        presence: dict | None = None,
        fetch_roster: bool = True,
    ) -> None:
        super().__init__(jid, password)
        # Verify the server certificate against the dev CA, hostname included.
        self.ssl_context = ssl.create_default_context(cafile=ca_file)
        self.enable_plaintext = False
        self.enable_direct_tls = direct_tls
        self.enable_starttls = not direct_tls
        self._address = (host, port)
        # Subscription requests are answered by the scenarios, not automatically.
        self.auto_authorize = None
        self.auto_subscribe = False
        # `presence`: keyword arguments for send_presence() at session start
        # (e.g. {"pstatus": "hi", "ppriority": 5}); None sends no initial presence.
        self._initial_presence = presence
        self._fetch_roster = fetch_roster
        for name in ("xep_0030", "xep_0199", "xep_0203", *plugins):
            self.register_plugin(name)

        self.received: list[ElementBase] = []
        self.events: list[tuple[str, object]] = []
        self._arrival = asyncio.Event()
        self._disconnects = 0
        self._outcome: asyncio.Future | None = None
        self.add_filter("in", self._record)
        self.add_event_handler("session_start", self._on_session_start)
        for name in (
            "failed_auth",
            "failed_all_auth",
            "connection_failed",
            "disconnected",
            "stream_error",
            "ssl_invalid_chain",
        ):
            self.add_event_handler(name, self._note(name))

    # ------------------------------------------------------------------ lifecycle

    @property
    def label(self) -> str:
        return str(self.boundjid if self.boundjid.resource else self.requested_jid)

    async def start(self, timeout: float = 10.0, drain: bool = True) -> "Client":
        """Connect and wait for the session (roster fetched, initial presence sent);
        then, unless `drain=False`, `drain()`: what the server queued for the new
        session at login (presence of contacts, offline messages) has arrived."""
        self._outcome = asyncio.get_running_loop().create_future()
        self.connect(*self._address)
        try:
            result = await asyncio.wait_for(asyncio.shield(self._outcome), timeout)
        except asyncio.TimeoutError:
            await self.kill()
            raise ScenarioError(
                f"{self.label}: no session within {timeout}s; events: {self._event_names()}"
            ) from None
        if result != "session_start":
            await self.kill()
            raise ScenarioError(f"{self.label}: login failed ({result}); events: {self._event_names()}")
        if drain:
            await self.drain()
        return self

    async def ping(self, target: str | JID, what: str = "", timeout: float = 5.0) -> None:
        """A XEP-0199 ping of `target` that must be answered with a result."""
        try:
            await self.plugin["xep_0199"].send_ping(JID(target), timeout=timeout)
        except Exception as e:  # noqa: BLE001 - IqError, IqTimeout, a closed stream
            raise ScenarioError(
                f"{self.label}: ping of {target}{f' ({what})' if what else ''} failed: {e!r}"
                f"{'; the connection closed' + self._closed_note() if self._disconnects else ''}"
            ) from None

    async def sync(self, timeout: float = 5.0) -> None:
        """Barrier: the server has handled every stanza this client sent before (it
        handles a session's stanzas in order and answers a ping of its domain itself)."""
        await self.ping(JID(self.boundjid.domain), "sync barrier", timeout)

    async def drain(self, timeout: float = 5.0) -> None:
        """Barrier: the server has handled every stanza this client sent before, and
        this client has received everything the server queued for it before (the ping
        of our own full JID travels through this session's outbound queue behind
        them, and slixmpp answers it)."""
        await self.ping(self.boundjid, "drain barrier", timeout)

    async def attempt_login(self, timeout: float = 10.0) -> str:
        """Connect and report how it ended: 'session_start', 'failed_auth', ..."""
        self._outcome = asyncio.get_running_loop().create_future()
        self.connect(*self._address)
        try:
            return await asyncio.wait_for(asyncio.shield(self._outcome), timeout)
        except asyncio.TimeoutError:
            return "timeout"
        finally:
            await self.kill()

    async def stop(self, wait: float = 3.0) -> None:
        """Close the stream cleanly and wait for the server to close its side."""
        self.cancel_connection_attempt()
        if self.transport is None:
            return
        fut = self.disconnect(wait=wait)
        try:
            await asyncio.wait_for(fut, wait + 2)
        except asyncio.TimeoutError:
            self.abort()

    async def kill(self) -> None:
        """Stop any connection attempt and drop the connection without a stream close."""
        self.cancel_connection_attempt()
        if self.transport is not None:
            self.abort()
        # Not a timed wait: one turn of the event loop, so the transport's
        # connection_lost callback (scheduled by abort) has run when this returns.
        await asyncio.sleep(0)

    async def _on_session_start(self, _event) -> None:
        try:
            if self._fetch_roster:
                await self.get_roster(timeout=10)
            if self._initial_presence is not None:
                self.send_presence(**self._initial_presence)
        except Exception as e:  # noqa: BLE001 - reported through the outcome
            self._settle(f"session setup failed: {e!r}")
            return
        self._settle("session_start")

    def _note(self, name: str):
        def handler(payload) -> None:
            self.events.append((name, payload))
            if name == "disconnected":
                self._disconnects += 1
            self._wake()
            if name in ("failed_auth", "failed_all_auth", "ssl_invalid_chain", "stream_error"):
                self._settle(name)
            elif name == "connection_failed":
                self._settle(f"connection_failed: {payload}")
            elif name == "disconnected":
                self._settle("disconnected before the session started")

        return handler

    def _settle(self, outcome: str) -> None:
        if self._outcome is not None and not self._outcome.done():
            self._outcome.set_result(outcome)

    def _event_names(self) -> list[str]:
        return [n for n, _ in self.events]

    # ------------------------------------------------------------------ recording

    def _record(self, stanza: ElementBase) -> ElementBase:
        # An 'in' filter: it runs before slixmpp's handlers, but waiters resume only on
        # a later loop turn, when the synchronous handlers (roster, carbons, SM acks)
        # have updated slixmpp's state for this stanza.
        self.received.append(stanza)
        self._wake()
        return stanza

    def _wake(self) -> None:
        wake, self._arrival = self._arrival, asyncio.Event()
        wake.set()

    async def _until_change(self, deadline: float) -> None:
        """Wait for the next stanza or event, or the deadline."""
        left = deadline - time.monotonic()
        if left <= 0:
            return
        arrival = self._arrival
        try:
            await asyncio.wait_for(arrival.wait(), left)
        except asyncio.TimeoutError:
            pass

    def _closed_note(self) -> str:
        """How the connection ended, for failure messages ('' while it is up)."""
        errors = [p for n, p in self.events if n == "stream_error"]
        if errors:
            e = errors[-1]
            text = f" {e['text']!r}" if e["text"] else ""
            return f" (stream error <{e['condition']}/>{text})"
        if self._disconnects:
            return " (no stream error)"
        return ""

    def mark(self) -> int:
        """Position in the received log; pass it as `since` to ignore older stanzas."""
        return len(self.received)

    def find(self, pred: Predicate, since: int = 0) -> list[ElementBase]:
        return [s for s in self.received[since:] if _safe(pred, s)]

    async def wait_for(
        self, pred: Predicate, what: str, timeout: float = 5.0, since: int = 0
    ) -> ElementBase:
        """The first stanza received at or after `since` that satisfies `pred`; fails
        after `timeout` seconds, or at once if the connection closes meanwhile."""
        deadline = time.monotonic() + timeout
        disconnects = self._disconnects
        scanned = since
        while True:
            while scanned < len(self.received):
                s = self.received[scanned]
                scanned += 1
                if _safe(pred, s):
                    return s
            recent = "; ".join(describe(s, 200) for s in self.received[since:][-4:]) or "nothing"
            if self._disconnects != disconnects:
                raise ScenarioError(
                    f"{self.label}: the connection closed{self._closed_note()} while waiting for "
                    f"{what}; last received: {recent}"
                )
            if time.monotonic() >= deadline:
                raise ScenarioError(
                    f"{self.label}: timed out after {timeout}s waiting for {what}; "
                    f"last received: {recent}"
                )
            await self._until_change(deadline)

    async def wait_count(
        self, pred: Predicate, count: int, what: str, timeout: float = 5.0, since: int = 0
    ) -> list[ElementBase]:
        """Wait until `count` stanzas satisfying `pred` arrived after `since`; fails
        after `timeout` seconds, or at once if the connection closes meanwhile."""
        deadline = time.monotonic() + timeout
        disconnects = self._disconnects
        scanned, found = since, []
        while True:
            found.extend(s for s in self.received[scanned:] if _safe(pred, s))
            scanned = len(self.received)
            if len(found) >= count:
                return found
            if self._disconnects != disconnects:
                raise ScenarioError(
                    f"{self.label}: got {len(found)} of {count} {what}, then the connection "
                    f"closed{self._closed_note()}"
                )
            if time.monotonic() >= deadline:
                raise ScenarioError(
                    f"{self.label}: got {len(found)} of {count} {what} within {timeout}s"
                )
            await self._until_change(deadline)

    async def wait_event(self, name: str, what: str, timeout: float = 5.0, since: int = 0) -> object:
        """The payload of the first slixmpp event `name` (one of those recorded in
        `events`) at or after position `since` of `events`."""
        deadline = time.monotonic() + timeout
        while True:
            for n, payload in self.events[since:]:
                if n == name:
                    return payload
            if time.monotonic() >= deadline:
                raise ScenarioError(f"{self.label}: timed out after {timeout}s waiting for {what}; "
                                    f"events: {self._event_names()}")
            await self._until_change(deadline)

    def check_none(self, pred: Predicate, what: str, since: int = 0) -> None:
        """Fail if a stanza satisfying `pred` arrived after `since`. Call it after a
        barrier (`drain()`, a `ping()` from the sender) that proves such a stanza would
        have arrived by now."""
        found = self.find(pred, since)
        if found:
            raise ScenarioError(f"{self.label}: unexpectedly received {what}: {describe(found[0])}")


async def settle(sender: Client, *receivers: Client) -> None:
    """Barrier after `sender` sent something: the server has finished handling it (the
    sender's own drain is handled after it), and then whatever that queued for the
    receivers has reached them (their drains travel behind it)."""
    await sender.drain()
    await asyncio.gather(*(r.drain() for r in receivers if r is not sender))


def is_sm(s: ElementBase, name: str) -> bool:
    """A XEP-0198 element (`enabled`, `resumed`, `a`, `r`, ...)."""
    return s.xml.tag == f"{{{NS_SM}}}{name}"


def _safe(pred: Predicate, s: ElementBase) -> bool:
    try:
        return bool(pred(s))
    except (KeyError, AttributeError, TypeError, ValueError):
        return False


# ---------------------------------------------------------------------- predicates


def is_message(s: ElementBase, *, sender: str | JID | None = None, body: str | None = None,
               mtype: str | None = None) -> bool:
    """A message (not a carbon copy, not an error unless mtype='error') optionally from
    `sender` (bare or full) with `body`."""
    if not isinstance(s, Message):
        return False
    if s.xml.find(f"{{{NS_CARBONS}}}received") is not None or s.xml.find(f"{{{NS_CARBONS}}}sent") is not None:
        return False
    if sender is not None and not _jid_matches(s["from"], sender):
        return False
    if mtype is not None and s["type"] != mtype:
        return False
    if mtype is None and s["type"] == "error":
        return False
    if body is not None and s["body"] != body:
        return False
    return True


def is_error_message(s: ElementBase) -> bool:
    return isinstance(s, Message) and s["type"] == "error"


def is_presence(s: ElementBase, *, sender: str | JID | None = None, ptype: str | None = None) -> bool:
    """Presence from `sender`; ptype 'available' means no type attribute."""
    if not isinstance(s, Presence):
        return False
    if sender is not None and not _jid_matches(s["from"], sender):
        return False
    if ptype is not None:
        actual = s.xml.get("type") or "available"
        if actual != ptype:
            return False
    return True


def _jid_matches(actual: JID, wanted: str | JID) -> bool:
    wanted = JID(wanted)
    if wanted.resource:
        return actual == wanted
    return actual.bare == wanted.bare


def carbon_inner(s: ElementBase, direction: str) -> ET.Element | None:
    """The forwarded <message/> inside a received/sent carbon, as raw XML."""
    if not isinstance(s, Message):
        return None
    wrapper = s.xml.find(f"{{{NS_CARBONS}}}{direction}")
    if wrapper is None:
        return None
    return wrapper.find(f"{{{NS_FORWARD}}}forwarded/{{{NS_CLIENT}}}message")


def body_of(xml: ET.Element) -> str | None:
    el = xml.find(f"{{{NS_CLIENT}}}body")
    return None if el is None else el.text
