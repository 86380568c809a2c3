"""The Herald-only scenarios: malformed and hostile input over real sockets (one probe
per rejection rule, each followed by an OPTIONS the server must still answer), OPTIONS
over TLS, a sample of the RFC 4475 invalid messages, and the mixed SIP/XMPP scenario
(a SIP UA and a slixmpp client seeing each other's presence and exchanging messages).
"""

from __future__ import annotations

import asyncio
import random
import socket
import ssl
import sys
import time
from pathlib import Path

import siplib
from common import HOST, MIXED_USERS, check, scenario

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
RFC4475 = REPO / "translate" / "tests" / "data" / "rfc4475"
ONLY = ("herald",)


# ---------------------------------------------------------------------------- raw I/O


def request(method: str, uri: str, *, port: int, transport: str = "UDP", version: str = "SIP/2.0",
            cseq: str | None = None, call_id: bool = True, max_forwards: int = 70,
            extra: list[str] | None = None, body: bytes = b"", content_length: int | None = None) -> bytes:
    """One request whose Via names (HOST, port): the socket the probe listens on."""
    lines = [f"{method} {uri} {version}",
             f"Via: {version}/{transport} {HOST}:{port};branch=z9hG4bK{siplib.new_token(12)};rport",
             f"Max-Forwards: {max_forwards}",
             f"From: <sip:alice@localhost>;tag={siplib.new_token()}",
             "To: <sip:bob@localhost>"]
    if call_id:
        lines.append(f"Call-ID: {siplib.new_token(16)}@{HOST}")
    lines.append(f"CSeq: {cseq or '1 ' + method}")
    lines += extra or []
    lines.append(f"Content-Length: {len(body) if content_length is None else content_length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def udp_exchange(ctx, build, timeout: float = 2.0) -> siplib.Msg | None:
    """Send what `build(local_port)` makes over UDP; the first final response (or the
    first response at all), or None if nothing came within `timeout`."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((HOST, 0))
        s.sendto(build(s.getsockname()[1]), (HOST, ctx.port))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            s.settimeout(left)
            try:
                data, _ = s.recvfrom(65535)
            except (socket.timeout, OSError):
                return None
            m = siplib.parse(data)
            if m is not None and m.is_response and m.status >= 200:
                return m
    finally:
        s.close()


def tcp_connect(ctx) -> socket.socket:
    s = socket.create_connection((HOST, ctx.port), timeout=3)
    return s


def tcp_read_response(s: socket.socket, timeout: float) -> tuple[siplib.Msg | None, bool]:
    """(first complete response, closed?) within `timeout`."""
    buf = b""
    deadline = time.monotonic() + timeout
    while True:
        if b"\r\n\r\n" in buf:
            head, _, rest = buf.partition(b"\r\n\r\n")
            m = siplib.parse(head + b"\r\n\r\n")
            length = int(m.get("content-length", "0") or 0) if m else 0
            if m is not None and len(rest) >= length:
                return m, False
        left = deadline - time.monotonic()
        if left <= 0:
            return None, False
        s.settimeout(left)
        try:
            data = s.recv(65536)
        except socket.timeout:
            return None, False
        except OSError:
            return None, True
        if not data:
            return (siplib.parse(buf) if buf else None), True
        buf += data


def expect_status(ctx, m: siplib.Msg | None, want: int, what: str) -> siplib.Msg:
    check(m is not None, f"{what}: no response, want {want}")
    check(m.status == want, f"{what}: got `{m.start}`, want {want}")
    ctx.options_ok()
    return m


# ---------------------------------------------------------------------------- rules


@scenario("bad_sip_version_505", ONLY)
def bad_version(ctx):
    m = udp_exchange(ctx, lambda p: request("OPTIONS", "sip:localhost", port=p, version="SIP/7.0"))
    expect_status(ctx, m, 505, "OPTIONS ... SIP/7.0")


@scenario("unsupported_uri_scheme_416", ONLY)
def bad_scheme(ctx):
    m = udp_exchange(ctx, lambda p: request("OPTIONS", "http://x", port=p))
    expect_status(ctx, m, 416, "OPTIONS http://x SIP/2.0")


@scenario("missing_call_id_400", ONLY)
def missing_call_id(ctx):
    m = udp_exchange(ctx, lambda p: request("OPTIONS", "sip:localhost", port=p, call_id=False))
    expect_status(ctx, m, 400, "OPTIONS without Call-ID")


@scenario("require_unknown_extension_420", ONLY)
def require_unknown(ctx):
    m = udp_exchange(ctx, lambda p: request("OPTIONS", "sip:localhost", port=p,
                                            extra=["Require: x-herald-no-such-extension"]))
    m = expect_status(ctx, m, 420, "OPTIONS with Require: x-herald-no-such-extension")
    check("x-herald-no-such-extension" in m.get("unsupported"),
          f"420 without `Unsupported: x-herald-no-such-extension` (got {m.get('unsupported')!r})")


@scenario("max_forwards_zero_483", ONLY)
def max_forwards_zero(ctx):
    # Not OPTIONS: RFC 3261 section 11 lets the server answer an OPTIONS with
    # Max-Forwards: 0 itself. A MESSAGE for bob would have to be forwarded.
    m = udp_exchange(ctx, lambda p: request("MESSAGE", "sip:bob@localhost", port=p, max_forwards=0,
                                            extra=["Content-Type: text/plain"], body=b"hop"))
    expect_status(ctx, m, 483, "MESSAGE with Max-Forwards: 0")


@scenario("cseq_method_mismatch_400", ONLY)
def cseq_mismatch(ctx):
    m = udp_exchange(ctx, lambda p: request("OPTIONS", "sip:localhost", port=p, cseq="1 INVITE"))
    expect_status(ctx, m, 400, "OPTIONS with CSeq: 1 INVITE")


@scenario("oversize_udp_513", ONLY)
def oversize_udp(ctx):
    # The largest datagram loopback carries; beyond any sane SIP message limit.
    body = b"x" * 65000
    m = udp_exchange(ctx, lambda p: request("MESSAGE", "sip:bob@localhost", port=p,
                                            extra=["Content-Type: text/plain"], body=body))
    expect_status(ctx, m, 513, f"a {len(body)}-byte MESSAGE over UDP")


@scenario("oversize_tcp_closed", ONLY)
def oversize_tcp(ctx):
    s = tcp_connect(ctx)
    try:
        head = request("MESSAGE", "sip:bob@localhost", port=s.getsockname()[1], transport="TCP",
                       extra=["Content-Type: text/plain"], content_length=8 * 1024 * 1024)
        closed = False
        try:
            s.sendall(head)
            chunk = b"y" * 65536
            deadline = time.monotonic() + 10
            sent = 0
            s.settimeout(2)
            while sent < 8 * 1024 * 1024 and time.monotonic() < deadline:
                s.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            closed = True
        m, eof = tcp_read_response(s, 5)
        check(closed or eof or (m is not None and m.status == 513),
              f"an 8 MiB MESSAGE over TCP: the connection stayed open (response: {m.start if m else None})")
        if m is not None:
            check(m.status >= 400, f"an 8 MiB MESSAGE over TCP was answered `{m.start}`")
    finally:
        s.close()
    ctx.options_ok()


@scenario("garbage_bytes", ONLY)
def garbage(ctx):
    rnd = random.Random(4475)
    blobs = [bytes(rnd.randrange(256) for _ in range(n)) for n in (1, 17, 512, 1400, 9000)]
    blobs += [b"\r\n\r\n", b"SIP/2.0\r\n\r\n", b"INVITE\r\n\r\n", b"\x00" * 100,
              b"OPTIONS sip:localhost SIP/2.0\r\nVia: \r\n\r\n", b"REGISTER " + b"%" * 3000 + b" SIP/2.0\r\n\r\n"]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for b in blobs:
            u.sendto(b, (HOST, ctx.port))
    finally:
        u.close()
    ctx.options_ok()
    for b in blobs:
        s = tcp_connect(ctx)
        try:
            s.sendall(b)
        except OSError:
            pass
        finally:
            s.close()
    ctx.options_ok()
    # And a TCP connection that sends garbage and then a valid OPTIONS on a new one.
    s = tcp_connect(ctx)
    try:
        s.sendall(request("OPTIONS", "sip:localhost", port=s.getsockname()[1], transport="TCP"))
        m, _ = tcp_read_response(s, 3)
        check(m is not None and m.status == 200, f"OPTIONS over TCP after garbage: {m.start if m else 'nothing'}")
    finally:
        s.close()


@scenario("tcp_short_body_waits", ONLY)
def short_body(ctx):
    """Content-Length larger than what was sent: the server waits for the rest (no
    answer yet), keeps serving others, and answers once the rest arrives."""
    s = tcp_connect(ctx)
    try:
        body = b"0123456789" * 10
        msg = request("OPTIONS", "sip:localhost", port=s.getsockname()[1], transport="TCP",
                      extra=["Content-Type: text/plain"], body=body)
        cut = len(msg) - 90
        s.sendall(msg[:cut])
        m, closed = tcp_read_response(s, 1.5)
        check(m is None and not closed,
              f"a TCP request 90 bytes short of its Content-Length was answered or closed at once "
              f"({m.start if m else 'closed'}); the server must wait for the rest")
        ctx.options_ok()
        other = tcp_connect(ctx)
        try:
            other.sendall(request("OPTIONS", "sip:localhost", port=other.getsockname()[1], transport="TCP"))
            m2, _ = tcp_read_response(other, 3)
            check(m2 is not None and m2.status == 200,
                  f"another TCP connection was not served meanwhile ({m2.start if m2 else 'nothing'})")
        finally:
            other.close()
        s.sendall(msg[cut:])
        m, closed = tcp_read_response(s, 3)
        check(m is not None and 200 <= m.status < 300,
              f"the completed request got {m.start if m else ('a close' if closed else 'nothing')}, want 200")
    finally:
        s.close()


@scenario("tls_options", ONLY)
def tls_options(ctx):
    port = ctx.server.tls_port
    ca = ctx.server.ca_file()
    cx = ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()
    if not ca:
        cx.check_hostname = False
        cx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection((HOST, port), timeout=5)
    with cx.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(request("OPTIONS", "sip:localhost", port=s.getsockname()[1], transport="TLS"))
        m, closed = tcp_read_response(s, 5)
        check(m is not None and m.status == 200,
              f"OPTIONS over TLS on {HOST}:{port} got {m.start if m else ('a close' if closed else 'nothing')}")


# Invalid messages of RFC 4475 section 3.1.2 that are requests (bigcode is a response,
# which must be dropped silently; it is sent too).
RFC4475_INVALID = ["badinv01", "clerr", "ncl", "scalar02", "scalarlg", "quotbal", "ltgtruri",
                   "lwsruri", "lwsstart", "trws", "escruri", "regbadct", "badaspec", "baddn",
                   "badvers", "mismatch01", "mismatch02", "bigcode"]


@scenario("rfc4475_invalid_sample", ONLY, timeout=90)
def rfc4475(ctx):
    """Each message over UDP from a fresh socket: a response, if one reaches us (most
    carry a Via naming another host, where the server may rightly send its answer),
    must be 4xx/5xx; and the server answers OPTIONS after each."""
    answered = []
    for name in RFC4475_INVALID:
        data = (RFC4475 / f"{name}.dat").read_bytes()
        m = udp_exchange(ctx, lambda _p, d=data: d, timeout=1.0)
        if m is not None:
            check(m.status >= 400, f"RFC 4475 {name}: answered `{m.start}`, want 4xx/5xx or nothing")
            answered.append(f"{name}={m.status}")
        ctx.options_ok()
    from common import log  # noqa: PLC0415
    log(f"rfc4475 answered: {answered}")


# ---------------------------------------------------------------------------- mixed


@scenario("mixed_sip_xmpp", ONLY, timeout=90)
def mixed(ctx):
    asyncio.run(_mixed(ctx))


PIDF_AWAY = """<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
    xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
    xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:mixalice@localhost">
<tuple id="sip-alice"><status><basic>open</basic></status><note>{note}</note></tuple>
<dm:person id="p-alice"><rpid:activities><rpid:away/></rpid:activities><dm:note>{note}</dm:note></dm:person>
</presence>
"""


async def _mixed(ctx):
    if str(REPO / "interop" / "scenarios") not in sys.path:
        sys.path.append(str(REPO / "interop" / "scenarios"))
    from clients import Client, is_message, is_presence  # noqa: PLC0415

    srv = ctx.server
    bob = Client("mixbob@localhost/xmpp", MIXED_USERS["mixbob"], host=HOST, port=srv.c2s_port, ca_file=srv.ca_file(),
                 presence={"pshow": "dnd", "pstatus": "in a meeting"})
    alice = ctx.ua("mixalice", MIXED_USERS["mixalice"])
    try:
        await bob.start()
        r = await asyncio.to_thread(alice.register, 120)
        check(r.status == 200, f"alice's REGISTER got `{r.start}`")

        # alice (SIP) subscribes to bob: Herald asks bob (XMPP) for authorization.
        since_sip = alice.mark()
        mark = bob.mark()
        r, dialog = await asyncio.to_thread(alice.subscribe, "sip:mixbob@localhost", 300)
        check(r.status in (200, 202), f"alice's SUBSCRIBE to bob got `{r.start}`, want 200/202")
        req = await bob.wait_for(lambda s: is_presence(s, sender="mixalice@localhost", ptype="subscribe"),
                                 "a presence subscription request from mixalice@localhost", timeout=10, since=mark)
        bob.send_presence(pto="mixalice@localhost", ptype="subscribed")
        # bob subscribes back, to see alice's SIP presence.
        bob.send_presence(pto="mixalice@localhost", ptype="subscribe")

        def notify_with(*needles):
            def pred(m):
                body = m.body.decode("utf-8", "replace")
                return m.method == "NOTIFY" and all(n in body for n in needles)
            return pred

        n = await asyncio.to_thread(alice.wait_request, notify_with(">open</", "in a meeting"),
                                    "NOTIFY with basic open and note 'in a meeting'", 10, since_sip)
        check("presence" in n.get("event"), f"the NOTIFY's Event is {n.get('event')!r}")
        check("active" in n.get("subscription-state"),
              f"the NOTIFY's Subscription-State is {n.get('subscription-state')!r}, want active")
        del req

        # alice publishes away with a note; bob sees show=away.
        note = f"lunch {siplib.new_token(4)}"
        mark = bob.mark()
        r = await asyncio.to_thread(alice.publish, PIDF_AWAY.format(note=note), 120)
        check(r.status == 200 and r.get("sip-etag"), f"alice's PUBLISH got `{r.start}` (SIP-ETag {r.get('sip-etag')!r})")

        def away(s):
            return (is_presence(s, sender="mixalice@localhost", ptype="available")
                    and s["show"] == "away" and note in (s["status"] or ""))
        await bob.wait_for(away, f"alice's presence show=away status {note!r}", timeout=10, since=mark)

        # MESSAGE from SIP alice reaches XMPP bob; bob's reply reaches alice's SIP UA.
        text = f"hello bob from SIP {siplib.new_token(4)}"
        mark = bob.mark()
        r = await asyncio.to_thread(alice.message, "sip:mixbob@localhost", text)
        check(r.status in (200, 202), f"alice's MESSAGE got `{r.start}`, want 200/202")
        await bob.wait_for(lambda s: is_message(s, sender="mixalice@localhost", body=text),
                           f"alice's message {text!r}", timeout=10, since=mark)
        reply = f"hello alice from XMPP {siplib.new_token(4)}"
        since_sip = alice.mark()
        bob.send_message(mto="mixalice@localhost", mbody=reply, mtype="chat")

        def sip_message(m):
            return m.method == "MESSAGE" and reply in m.body.decode("utf-8", "replace")
        m = await asyncio.to_thread(alice.wait_request, sip_message, f"MESSAGE {reply!r}", 10, since_sip)
        check("mixbob@localhost" in m.get("from"), f"bob's reply came From {m.get('from')!r}")

        r = await asyncio.to_thread(alice.unsubscribe, dialog)
        check(r.status in (200, 202), f"alice's unsubscribe got `{r.start}`")
        await asyncio.to_thread(alice.register, 0)
    finally:
        await bob.stop(wait=2.0)
        await bob.kill()

