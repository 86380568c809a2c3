"""A small SIP user agent over raw UDP sockets, for the suite's own probes.

Not a SIP stack: just enough to send requests with digest authentication (RFC 3261
section 22, RFC 2617 qop=auth, MD5), answer the requests a server sends us (NOTIFY,
MESSAGE) with 200, and wait for what comes. Used for the OPTIONS readiness probe, the
bad-input probes and the SIP side of the mixed SIP/XMPP scenario. The real SIP tools
(SIPp, sipsak, pjsua2) are what the interop checks rely on.
"""

from __future__ import annotations

import hashlib
import queue
import random
import re
import socket
import threading
import time
from dataclasses import dataclass, field

HOST = "127.0.0.1"


class SipError(AssertionError):
    """A SIP check failed."""


@dataclass
class Msg:
    """A parsed SIP message: start line, headers (name lower-cased, in order), body."""

    start: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    raw: bytes = b""
    source: tuple[str, int] | None = None

    @property
    def is_response(self) -> bool:
        return self.start.startswith("SIP/2.0 ")

    @property
    def status(self) -> int:
        return int(self.start.split()[1]) if self.is_response else 0

    @property
    def method(self) -> str:
        if self.is_response:
            return self.get("cseq").split()[-1] if self.get("cseq") else ""
        return self.start.split()[0]

    def get(self, name: str, default: str = "") -> str:
        name = COMPACT.get(name.lower(), name.lower())
        for k, v in self.headers:
            if k == name:
                return v
        return default

    def all(self, name: str) -> list[str]:
        name = COMPACT.get(name.lower(), name.lower())
        return [v for k, v in self.headers if k == name]

    def short(self) -> str:
        return self.start


COMPACT = {"i": "call-id", "m": "contact", "e": "content-encoding", "l": "content-length",
           "c": "content-type", "f": "from", "s": "subject", "k": "supported", "t": "to",
           "v": "via", "o": "event", "u": "allow-events"}


def parse(data: bytes, source=None) -> Msg | None:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    lines = head.decode("utf-8", "replace").replace("\r\n", "\n").split("\n")
    if not lines or not lines[0].strip():
        return None
    msg = Msg(lines[0].strip(), raw=data, source=source)
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and msg.headers:
            k, v = msg.headers[-1]
            msg.headers[-1] = (k, v + " " + line.strip())
            continue
        name, colon, value = line.partition(":")
        if colon:
            key = name.strip().lower()
            msg.headers.append((COMPACT.get(key, key), value.strip()))
    msg.body = body
    return msg


def md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


def param(header: str, name: str) -> str | None:
    m = re.search(r'(?i)\b' + re.escape(name) + r'\s*=\s*("([^"]*)"|[^,\s;]+)', header)
    if not m:
        return None
    return m.group(2) if m.group(2) is not None else m.group(1)


def tag_of(header: str) -> str | None:
    m = re.search(r";\s*tag=([^;>\s,]+)", header)
    return m.group(1) if m else None


def new_token(n: int = 10) -> str:
    return "".join(random.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))


def options_probe(port: int, timeout: float = 1.0, host: str = HOST) -> int | None:
    """Send one OPTIONS over UDP; the final status code, or None if nothing came."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((HOST, 0))
        lport = s.getsockname()[1]
        branch = "z9hG4bK" + new_token()
        req = (
            f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {HOST}:{lport};branch={branch};rport\r\n"
            f"Max-Forwards: 70\r\n"
            f"From: <sip:probe@localhost>;tag={new_token()}\r\n"
            f"To: <sip:{host}:{port}>\r\n"
            f"Call-ID: {new_token(16)}@{HOST}\r\n"
            f"CSeq: 1 OPTIONS\r\n"
            f"Accept: application/sdp\r\n"
            f"Content-Length: 0\r\n\r\n"
        ).encode()
        s.sendto(req, (HOST, port))
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
            m = parse(data)
            if m and m.is_response and m.status >= 200:
                return m.status
    finally:
        s.close()


class UA:
    """One SIP user on one UDP socket: `user`@`domain`, authenticating with `password`.

    A thread reads the socket: responses go to the response queue, requests are
    answered 200 (with the right dialog headers) and kept in `self.requests`."""

    def __init__(self, user: str, password: str, server_port: int, domain: str = "localhost") -> None:
        self.user, self.password, self.domain = user, password, domain
        self.server = (HOST, server_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.port = self.sock.getsockname()[1]
        self.responses: "queue.Queue[Msg]" = queue.Queue()
        self.requests: list[Msg] = []
        self.cond = threading.Condition()
        self.cseq = random.randint(1, 1000)
        self.closed = False
        self.challenge: tuple[str, str] | None = None  # (header name, challenge)
        self.nc = 0
        self.thread = threading.Thread(target=self._reader, daemon=True)
        self.thread.start()

    @property
    def aor(self) -> str:
        return f"sip:{self.user}@{self.domain}"

    @property
    def contact(self) -> str:
        return f"<sip:{self.user}@{HOST}:{self.port}>"

    def close(self) -> None:
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass

    def _reader(self) -> None:
        while not self.closed:
            try:
                self.sock.settimeout(0.2)
                data, src = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            m = parse(data, src)
            if m is None:
                continue
            if m.is_response:
                self.responses.put(m)
            else:
                self._answer(m, 200, "OK")
                with self.cond:
                    self.requests.append(m)
                    self.cond.notify_all()

    def _answer(self, req: Msg, code: int, reason: str) -> None:
        to = req.get("to")
        if tag_of(to) is None:
            to += ";tag=" + new_token()
        lines = [f"SIP/2.0 {code} {reason}"]
        lines += [f"Via: {v}" for v in req.all("via")]
        lines += [f"From: {req.get('from')}", f"To: {to}", f"Call-ID: {req.get('call-id')}",
                  f"CSeq: {req.get('cseq')}", f"Contact: {self.contact}", "Content-Length: 0", "", ""]
        target = req.source or self.server
        try:
            self.sock.sendto("\r\n".join(lines).encode(), target)
        except OSError:
            pass

    def wait_request(self, pred, what: str, timeout: float = 10.0, since: int = 0) -> Msg:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for m in self.requests[since:]:
                    if pred(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    got = "; ".join(m.short() + " " + m.body[:200].decode("utf-8", "replace")
                                    for m in self.requests[since:][-3:]) or "nothing"
                    raise SipError(f"{self.user}: no {what} within {timeout}s (got: {got})")
                self.cond.wait(left)

    def mark(self) -> int:
        with self.cond:
            return len(self.requests)

    def _authorization(self, method: str, uri: str) -> str | None:
        if not self.challenge:
            return None
        name, ch = self.challenge
        realm, nonce = param(ch, "realm") or "", param(ch, "nonce") or ""
        opaque, qop = param(ch, "opaque"), param(ch, "qop")
        ha1 = md5(f"{self.user}:{realm}:{self.password}")
        ha2 = md5(f"{method}:{uri}")
        hname = "Authorization" if name.lower() == "www-authenticate" else "Proxy-Authorization"
        parts = [f'username="{self.user}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"',
                 "algorithm=MD5"]
        if qop and "auth" in [q.strip() for q in qop.split(",")]:
            self.nc += 1
            nc = f"{self.nc:08x}"
            cnonce = new_token(8)
            resp = md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
            parts += ["qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
        else:
            resp = md5(f"{ha1}:{nonce}:{ha2}")
        parts.append(f'response="{resp}"')
        if opaque is not None:
            parts.append(f'opaque="{opaque}"')
        return f"{hname}: Digest " + ", ".join(parts)

    def request(self, method: str, uri: str, headers: list[str] | None = None, body: bytes = b"",
                to: str | None = None, call_id: str | None = None, from_tag: str | None = None,
                timeout: float = 5.0, auth: bool = True) -> Msg:
        """Send a request (again with credentials on 401/407) and return the final
        response. Retransmits on UDP every 500 ms until a response comes."""
        call_id = call_id or f"{new_token(16)}@{HOST}"
        from_tag = from_tag or new_token()
        to = to or f"<{uri}>"
        for _attempt in range(3):
            self.cseq += 1
            branch = "z9hG4bK" + new_token(12)
            lines = [f"{method} {uri} SIP/2.0",
                     f"Via: SIP/2.0/UDP {HOST}:{self.port};branch={branch};rport",
                     "Max-Forwards: 70",
                     f"From: <{self.aor}>;tag={from_tag}",
                     f"To: {to}",
                     f"Call-ID: {call_id}",
                     f"CSeq: {self.cseq} {method}",
                     f"Contact: {self.contact}",
                     "User-Agent: herald-interop-siplib"]
            a = self._authorization(method, uri) if auth else None
            if a:
                lines.append(a)
            lines += headers or []
            lines.append(f"Content-Length: {len(body)}")
            data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
            final = self._transact(data, branch, timeout)
            if final.status in (401, 407) and auth:
                hname = "www-authenticate" if final.status == 401 else "proxy-authenticate"
                ch = final.get(hname)
                stale = (param(ch, "stale") or "").lower() == "true"
                if self.challenge and self.challenge[1] == ch and not stale:
                    return final  # the same challenge again: the credentials are wrong
                self.challenge = (hname, ch)
                self.nc = 0
                continue
            return final
        return final

    def _transact(self, data: bytes, branch: str, timeout: float) -> Msg:
        deadline = time.monotonic() + timeout
        next_send = 0.0
        while True:
            now = time.monotonic()
            if now >= deadline:
                raise SipError(f"{self.user}: no final response within {timeout}s to "
                               f"{data.split(b' ', 1)[0].decode()}")
            if now >= next_send:
                self.sock.sendto(data, self.server)
                next_send = now + 0.5
            try:
                m = self.responses.get(timeout=min(0.1, max(0.01, deadline - now)))
            except queue.Empty:
                continue
            if branch in m.get("via") and m.status >= 200:
                return m
            if branch in m.get("via"):
                next_send = deadline  # provisional: stop retransmitting

    # ------------------------------------------------------------------ helpers

    def register(self, expires: int = 120) -> Msg:
        r = self.request("REGISTER", f"sip:{self.domain}", [f"Expires: {expires}"], to=f"<{self.aor}>")
        return r

    def subscribe(self, target: str, expires: int = 120) -> tuple[Msg, dict]:
        """SUBSCRIBE to `target`'s presence; returns the final response and the dialog."""
        call_id, tag = f"{new_token(16)}@{HOST}", new_token()
        r = self.request("SUBSCRIBE", target, ["Event: presence", "Accept: application/pidf+xml",
                                               f"Expires: {expires}"],
                         call_id=call_id, from_tag=tag)
        dialog = {"call_id": call_id, "from_tag": tag, "to": r.get("to"), "target": target}
        m = re.search(r"<([^>]+)>", r.get("contact"))
        if m:
            dialog["target"] = m.group(1)
        return r, dialog

    def unsubscribe(self, dialog: dict) -> Msg:
        return self.request("SUBSCRIBE", dialog["target"], ["Event: presence", "Expires: 0"],
                            to=dialog["to"], call_id=dialog["call_id"], from_tag=dialog["from_tag"])

    def publish(self, pidf: str, expires: int = 120, etag: str | None = None) -> Msg:
        headers = ["Event: presence", f"Expires: {expires}"]
        if etag:
            headers.append(f"SIP-If-Match: {etag}")
        if pidf:
            headers.append("Content-Type: application/pidf+xml")
        return self.request("PUBLISH", self.aor, headers, body=pidf.encode())

    def message(self, target: str, text: str) -> Msg:
        return self.request("MESSAGE", target, ["Content-Type: text/plain;charset=UTF-8"],
                            body=text.encode())


def pidf(entity: str, basic: str, note: str | None = None, tuple_id: str = "t1", extra: str = "") -> str:
    note_xml = f"<note>{note}</note>" if note is not None else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="{entity}">\n'
        f'<tuple id="{tuple_id}"><status><basic>{basic}</basic></status>{note_xml}</tuple>\n'
        f'{extra}</presence>\n'
    )
