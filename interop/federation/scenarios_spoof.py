"""A raw s2s stream that plays a server itself, to check that a spoofed `from` is refused."""

from __future__ import annotations

from registry import *  # noqa: F401,F403


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
