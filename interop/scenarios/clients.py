"""slixmpp clients for the Herald interop scenarios.

`Client` is an ordinary slixmpp `ClientXMPP` with three additions:

* TLS is verified against Herald's development CA (no verification shortcuts), over
  STARTTLS or direct TLS (XEP-0368) as asked;
* every top-level element the server sends is recorded in `client.received`, so a
  scenario can wait for "the next stanza like this" or check that nothing like it came;
* `start()` / `stop()` coroutines that return once the session is established (or
  raise with the reason it was not) and once the stream is closed.
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

    async def start(self, timeout: float = 10.0) -> "Client":
        """Connect and wait for the session (roster fetched, initial presence sent)."""
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
        await self.sync()
        return self

    async def sync(self, timeout: float = 5.0) -> None:
        """Round-trip a XEP-0199 ping to the server: the server handles a session's
        stanzas in order, so everything sent before (initial presence, ...) is processed."""
        try:
            await self.plugin["xep_0199"].send_ping(JID(self.boundjid.domain), timeout=timeout)
        except Exception as e:  # noqa: BLE001
            raise ScenarioError(f"{self.label}: ping of the server failed: {e!r}") from None

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
        self.received.append(stanza)
        wake, self._arrival = self._arrival, asyncio.Event()
        wake.set()
        return stanza

    def mark(self) -> int:
        """Position in the received log; pass it as `since` to ignore older stanzas."""
        return len(self.received)

    def find(self, pred: Predicate, since: int = 0) -> list[ElementBase]:
        return [s for s in self.received[since:] if _safe(pred, s)]

    async def wait_for(
        self, pred: Predicate, what: str, timeout: float = 5.0, since: int = 0
    ) -> ElementBase:
        """The first stanza received at or after `since` that satisfies `pred`."""
        deadline = time.monotonic() + timeout
        scanned = since
        while True:
            while scanned < len(self.received):
                s = self.received[scanned]
                scanned += 1
                if _safe(pred, s):
                    return s
            left = deadline - time.monotonic()
            if left <= 0:
                recent = "; ".join(describe(s, 200) for s in self.received[since:][-4:]) or "nothing"
                raise ScenarioError(
                    f"{self.label}: timed out after {timeout}s waiting for {what}; "
                    f"last received: {recent}"
                )
            arrival = self._arrival
            try:
                await asyncio.wait_for(arrival.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def wait_count(
        self, pred: Predicate, count: int, what: str, timeout: float = 5.0, since: int = 0
    ) -> list[ElementBase]:
        """Wait until `count` stanzas satisfying `pred` arrived after `since`."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.find(pred, since)
            if len(found) >= count:
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                raise ScenarioError(
                    f"{self.label}: got {len(found)} of {count} {what} within {timeout}s"
                )
            arrival = self._arrival
            try:
                await asyncio.wait_for(arrival.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def expect_none(self, pred: Predicate, what: str, within: float = 1.0, since: int = 0) -> None:
        """Fail if a stanza satisfying `pred` arrives (or arrived) after `since`."""
        await asyncio.sleep(within)
        found = self.find(pred, since)
        if found:
            raise ScenarioError(f"{self.label}: unexpectedly received {what}: {describe(found[0])}")


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
