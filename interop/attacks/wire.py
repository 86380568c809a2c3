"""Minimal XMPP client wire code for the attack tool: raw asyncio sockets, TLS through
ssl.SSLObject over memory BIOs, substring matching on the byte stream.

Reading happens only when a caller asks for it, so a connection that must "never read
again" simply is not read: the kernel receive buffer fills and the server's writes
stall. Every read is bounded in bytes and in time.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
import time

DOMAIN = "localhost"
STREAM_HEADER = (
    b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
    b" to='localhost' version='1.0'>"
)
STREAM_END = b"</stream:stream>"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
RECV_CHUNK = 65536
# A negotiation reply larger than this is an error of the peer (or of this tool).
MAX_NEGOTIATION_BYTES = 1 << 20


class Closed(Exception):
    """The connection ended (EOF, reset, TLS close). `data` holds what was buffered."""

    def __init__(self, why: str, data: bytes = b"") -> None:
        super().__init__(why)
        self.data = data


class LoginError(Exception):
    """A login did not reach the wanted state. `stage` says where, `condition` what."""

    def __init__(self, stage: str, condition: str) -> None:
        super().__init__(f"{stage}: {condition}")
        self.stage = stage
        self.condition = condition


def tls_context(ca_file: str, alpn: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca_file)
    if alpn:
        ctx.set_alpn_protocols(["xmpp-client"])
    return ctx


def first_condition(data: bytes) -> str:
    """The first SASL or stream error condition named in `data`, or ''."""
    for cond in (
        b"temporary-auth-failure", b"not-authorized", b"aborted", b"account-disabled",
        b"credentials-expired", b"encryption-required", b"incorrect-encoding",
        b"invalid-authzid", b"invalid-mechanism", b"malformed-request",
        b"mechanism-too-weak", b"policy-violation", b"connection-timeout",
        b"resource-constraint", b"not-well-formed", b"system-shutdown", b"conflict",
        b"internal-server-error", b"host-unknown", b"undefined-condition",
    ):
        if cond in data:
            return cond.decode()
    return ""


class Conn:
    """One client connection: TCP, optionally TLS (direct or after STARTTLS)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.loop = asyncio.get_running_loop()
        self.tls: ssl.SSLObject | None = None
        self.inbio = ssl.MemoryBIO()
        self.outbio = ssl.MemoryBIO()
        self.buf = bytearray()
        self.eof = False
        self.closed = False
        self.bytes_in = 0

    @classmethod
    async def connect(cls, host: str, port: int, *, source: str | None = None,
                      rcvbuf: int | None = None, timeout: float = 10.0) -> Conn:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            if rcvbuf is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            if source is not None:
                sock.bind((source, 0))
            await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (host, port)), timeout)
        except BaseException:
            sock.close()
            raise
        return cls(sock)

    def local_port(self) -> int:
        try:
            return self.sock.getsockname()[1]
        except OSError:
            return 0

    def tcp_state(self) -> int:
        """Linux TCP state of the socket (1 ESTABLISHED, 8 CLOSE_WAIT, 7 CLOSE), -1 if unknown."""
        try:
            return self.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
        except OSError:
            return -1

    async def _flush(self) -> None:
        data = self.outbio.read()
        if data:
            await self.loop.sock_sendall(self.sock, data)

    async def start_tls(self, ctx: ssl.SSLContext, timeout: float = 10.0) -> None:
        self.tls = ctx.wrap_bio(self.inbio, self.outbio, server_side=False, server_hostname=DOMAIN)
        # Bytes already read past <proceed/> belong to the TLS layer.
        if self.buf:
            self.inbio.write(bytes(self.buf))
            self.buf.clear()
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.tls.do_handshake()
                await self._flush()
                return
            except ssl.SSLWantReadError:
                await self._flush()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise asyncio.TimeoutError("TLS handshake") from None
                raw = await asyncio.wait_for(self.loop.sock_recv(self.sock, RECV_CHUNK), left)
                if not raw:
                    raise Closed("EOF during TLS handshake") from None
                self.inbio.write(raw)

    async def send(self, data: bytes) -> None:
        if self.tls is None:
            await self.loop.sock_sendall(self.sock, data)
            return
        self.tls.write(data)
        await self._flush()

    async def recv_some(self) -> bytes:
        """Some bytes of the stream, b'' at the end of it."""
        if self.eof:
            return b""
        while True:
            if self.tls is None:
                try:
                    raw = await self.loop.sock_recv(self.sock, RECV_CHUNK)
                except (ConnectionError, OSError):
                    raw = b""
                if not raw:
                    self.eof = True
                self.bytes_in += len(raw)
                return raw
            try:
                data = self.tls.read(RECV_CHUNK)
                if not data:
                    self.eof = True
                self.bytes_in += len(data)
                return data
            except ssl.SSLWantReadError:
                try:
                    raw = await self.loop.sock_recv(self.sock, RECV_CHUNK)
                except (ConnectionError, OSError):
                    raw = b""
                if not raw:
                    self.inbio.write_eof()
                else:
                    self.inbio.write(raw)
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                self.eof = True
                return b""
            except ssl.SSLError:
                self.eof = True
                return b""

    async def read_until(self, needles: tuple[bytes, ...], timeout: float,
                         limit: int = MAX_NEGOTIATION_BYTES) -> tuple[bytes, bytes]:
        """Read until one of `needles` appears; returns (needle, bytes up to and
        including it). Raises Closed at EOF, TimeoutError after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            best = -1
            found = b""
            for n in needles:
                i = self.buf.find(n)
                if i >= 0 and (best < 0 or i < best):
                    best, found = i, n
            if best >= 0:
                end = best + len(found)
                out = bytes(self.buf[:end])
                del self.buf[:end]
                return found, out
            if len(self.buf) > limit:
                raise Closed(f"more than {limit} bytes without {needles!r}", bytes(self.buf[-4096:]))
            left = deadline - time.monotonic()
            if left <= 0:
                raise asyncio.TimeoutError(f"waiting for {needles!r}")
            data = await asyncio.wait_for(self.recv_some(), left)
            if not data:
                raise Closed("EOF", bytes(self.buf))
            self.buf += data

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass


async def open_stream(conn: Conn, timeout: float) -> bytes:
    """Send the stream header, return the features (up to </stream:features>)."""
    await conn.send(STREAM_HEADER)
    _, data = await conn.read_until((b"</stream:features>", b"<stream:error"), timeout)
    if b"<stream:error" in data:
        raise LoginError("stream", "stream-error")
    return data


async def connect_stream(host: str, port: int, ca_file: str, *, direct_tls: bool,
                         source: str | None = None, rcvbuf: int | None = None,
                         timeout: float = 10.0) -> Conn:
    """A connection with TLS up and the (post-TLS) stream features read."""
    deadline = time.monotonic() + timeout

    def left() -> float:
        return max(0.01, deadline - time.monotonic())

    conn = await Conn.connect(host, port, source=source, rcvbuf=rcvbuf, timeout=left())
    try:
        if direct_tls:
            await conn.start_tls(tls_context(ca_file, alpn=True), left())
            await open_stream(conn, left())
            return conn
        feats = await open_stream(conn, left())
        if b"<starttls" not in feats:
            raise LoginError("starttls", "not offered")
        await conn.send(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        got, _ = await conn.read_until((b"<proceed", b"<failure"), left())
        if got != b"<proceed":
            raise LoginError("starttls", "failure")
        # The rest of the <proceed .../> element is plaintext the TLS layer must not see.
        await conn.read_until((b">",), left())
        await conn.start_tls(tls_context(ca_file, alpn=False), left())
        await open_stream(conn, left())
        return conn
    except BaseException:
        conn.close()
        raise


def plain_auth(user: str, password: str) -> bytes:
    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    return f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{token}</auth>".encode()


async def sasl_plain(conn: Conn, user: str, password: str, timeout: float) -> tuple[str, bytes]:
    """One PLAIN attempt: ('success', data) or ('failure', data) with the <failure/>
    element in data. Raises Closed if the server ends the stream instead."""
    await conn.send(plain_auth(user, password))
    got, data = await conn.read_until((b"<success", b"</failure>", b"<stream:error"), timeout)
    if got == b"<success":
        return "success", data
    if got == b"<stream:error":
        raise Closed("stream error", data + bytes(conn.buf))
    return "failure", data


async def bind(conn: Conn, resource: str, timeout: float) -> None:
    await conn.send(
        f"<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
        f"<resource>{resource}</resource></bind></iq>".encode()
    )
    _, data = await conn.read_until((b"</iq>",), timeout)
    if b"type='result'" not in data and b'type="result"' not in data:
        raise LoginError("bind", first_condition(data) or "error")


async def login(host: str, port: int, ca_file: str, user: str, password: str, *,
                direct_tls: bool, resource: str, source: str | None = None,
                rcvbuf: int | None = None, presence: bool = False,
                timeout: float = 15.0) -> Conn:
    """A bound session (and initial presence if asked). Raises LoginError, Closed,
    OSError or TimeoutError."""
    deadline = time.monotonic() + timeout

    def left() -> float:
        return max(0.01, deadline - time.monotonic())

    conn = await connect_stream(host, port, ca_file, direct_tls=direct_tls, source=source,
                                rcvbuf=rcvbuf, timeout=left())
    try:
        result, data = await sasl_plain(conn, user, password, left())
        if result != "success":
            raise LoginError("sasl", first_condition(data) or "failure")
        await open_stream(conn, left())
        await bind(conn, resource, left())
        if presence:
            await conn.send(b"<presence/>")
        return conn
    except BaseException:
        conn.close()
        raise


def describe_error(e: BaseException) -> str:
    """A short label for a failed connection or login."""
    if isinstance(e, LoginError):
        return f"{e.stage}:{e.condition}"
    if isinstance(e, Closed):
        cond = first_condition(e.data)
        return f"closed:{cond}" if cond else "closed"
    if isinstance(e, asyncio.TimeoutError):
        return "timeout"
    if isinstance(e, ConnectionRefusedError):
        return "refused"
    if isinstance(e, ConnectionResetError):
        return "reset"
    if isinstance(e, ssl.SSLError):
        return f"tls:{e.reason or e.__class__.__name__}"
    if isinstance(e, OSError):
        return f"os:{e.errno}"
    return type(e).__name__
