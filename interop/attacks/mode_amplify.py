"""`amplify`: sessions that never read, and a sender of large messages to their bare JID.

Bob logs in N times over direct TLS with a small receive buffer, sends initial
presence and never reads again. Alice sends M messages with a large body to bob's bare
JID as fast as the server takes them. Measured: the server's RSS (before, peak, at the
end of sending, a settle time after), bob's sessions still connected, the database
size, and whether alice's own stream still answers a ping.
"""

from __future__ import annotations

import asyncio
import time

from herald_proc import HOST, Herald, tcp_sockets
from wire import Conn, describe_error, first_condition, login

ALICE_PW = "alice-secret"
BOB_PW = "bob-secret"
SEND_BOUND_SECS = 100.0
PING_TIMEOUT = 20.0
DRAIN_SECS = 10.0
TAIL = 4096


class RssSampler:
    """VmRSS of the server every `period` seconds, kept as (t, KiB)."""

    def __init__(self, srv: Herald, period: float = 0.5) -> None:
        self.srv = srv
        self.period = period
        self.samples: list[tuple[float, int]] = []
        self.t0 = time.monotonic()
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            self.samples.append((time.monotonic() - self.t0, self.srv.rss_kib()[0]))
            # A sampling period: the figure is read from /proc at this rate.
            await asyncio.sleep(self.period)

    def peak(self) -> tuple[int, float]:
        if not self.samples:
            return 0, 0.0
        t, kib = max(self.samples, key=lambda s: s[1])
        return kib, round(t, 1)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


class StreamWatcher:
    """Reads alice's stream all along (so she is never the stuck one): counts bytes,
    error stanzas, notes ping results and the end of the stream."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self.bytes = 0
        self.errors = 0
        self.ended = ""
        self.ping_seen: dict[str, float] = {}
        self.tail = b""
        self.first_error_head = ""
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            data = await self.conn.recv_some()
            if not data:
                self.ended = self.ended or "eof"
                return
            self.bytes += len(data)
            window = self.tail + data
            overlap = len(self.tail)
            for needle in (b"type='error'", b'type="error"'):
                # Count occurrences that end in the new data only.
                start = 0
                while True:
                    i = window.find(needle, start)
                    if i < 0:
                        break
                    if i + len(needle) > overlap:
                        self.errors += 1
                        if not self.first_error_head:
                            head = window[max(0, window.rfind(b"<", 0, i)):i + 200]
                            self.first_error_head = head.decode(errors="replace")
                    start = i + 1
            for pid in ("p1", "p2"):
                if pid not in self.ping_seen and (f"id='{pid}'".encode() in window or f'id="{pid}"'.encode() in window):
                    self.ping_seen[pid] = time.monotonic()
            if b"<stream:error" in window or b"</stream:stream>" in window:
                self.ended = "stream-error:" + (first_condition(window) or "?") if b"<stream:error" in window else "stream-end"
            self.tail = window[-64:]

    async def ping(self, pid: str, timeout: float) -> dict[str, object]:
        sent = time.monotonic()
        try:
            await asyncio.wait_for(
                self.conn.send(f"<iq type='get' id='{pid}'><ping xmlns='urn:xmpp:ping'/></iq>".encode()), timeout)
        except (OSError, asyncio.TimeoutError) as e:
            return {"answered": False, "error": "send:" + describe_error(e)}
        deadline = sent + timeout
        while pid not in self.ping_seen and time.monotonic() < deadline and not self.task.done():
            # Waiting on the reader task's observation, bounded by the ping timeout.
            await asyncio.sleep(0.05)
        if pid in self.ping_seen:
            return {"answered": True, "secs": round(self.ping_seen[pid] - sent, 3)}
        return {"answered": False, "error": self.ended or "timeout"}

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def drain(conn: Conn, secs: float) -> dict[str, object]:
    """Read a never-read session for up to `secs`: did the server end it?"""
    deadline = time.monotonic() + secs
    got = 0
    tail = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return {"state": f"open (still sending after {secs:g} s)", "drained": got}
        try:
            data = await asyncio.wait_for(conn.recv_some(), min(left, 3.0))
        except asyncio.TimeoutError:
            return {"state": "open (quiet after data)" if got else "open (idle)", "drained": got}
        if not data:
            cond = first_condition(tail) if b"<stream:error" in tail else ""
            return {"state": f"closed (stream error {cond})" if cond else "closed (no stream error)", "drained": got}
        got += len(data)
        tail = (tail + data)[-TAIL:]


TCP_STATES = {1: "ESTABLISHED", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", -1: "unknown"}


async def run(srv: Herald, args) -> dict[str, object]:
    await srv.add_user("alice", ALICE_PW)
    await srv.add_user("bob", BOB_PW)
    rss = RssSampler(srv)
    rss.start()
    out: dict[str, object] = {"sessions": args.sessions, "messages": args.messages, "body_bytes": args.body_bytes}
    bobs: list[Conn] = []
    try:
        for i in range(args.sessions):
            bobs.append(await login(HOST, srv.tls_port, srv.ca_file, "bob", BOB_PW, direct_tls=True,
                                    resource=f"b{i}", rcvbuf=4096, presence=True))
        alice = await login(HOST, srv.tls_port, srv.ca_file, "alice", ALICE_PW, direct_tls=True, resource="a")
        watcher = StreamWatcher(alice)
        # Let the logins settle before the "before" figure.
        await asyncio.sleep(1.0)
        out["rss_before_kib"] = srv.rss_kib()[0]
        cpu0 = srv.cpu_secs()
        out["metrics_before"] = pick(await srv.metrics())

        body = "x" * args.body_bytes
        sent = 0
        t_start = time.monotonic()
        send_error = ""
        for i in range(args.messages):
            stanza = (f"<message to='bob@localhost' type='chat' id='m{i}'><body>{body}</body></message>").encode()
            left = t_start + SEND_BOUND_SECS - time.monotonic()
            try:
                await asyncio.wait_for(alice.send(stanza), max(0.01, left))
            except asyncio.TimeoutError:
                send_error = f"send stalled: bound of {SEND_BOUND_SECS:g}s reached"
                break
            except OSError as e:
                send_error = "send:" + describe_error(e)
                break
            sent += 1
        t_end = time.monotonic()
        out["sent"] = sent
        out["send_secs"] = round(t_end - t_start, 2)
        out["send_error"] = send_error
        out["rss_end_of_sending_kib"] = srv.rss_kib()[0]
        out["ping_after_sending"] = await watcher.ping("p1", PING_TIMEOUT)
        settle = t_end + args.settle - time.monotonic()
        if settle > 0:
            # The brief's "30 s after the last message" figure.
            await asyncio.sleep(settle)
        out["rss_settled_kib"] = srv.rss_kib()[0]
        out["server_cpu_secs_attack"] = round(srv.cpu_secs() - cpu0, 2)
        out["settle_secs"] = args.settle
        peak, at = rss.peak()
        out["rss_peak_kib"] = peak
        out["rss_peak_at_secs_from_start"] = at
        out["vm_hwm_kib"] = srv.rss_kib()[1]
        out["ping_after_settle"] = await watcher.ping("p2", PING_TIMEOUT)
        out["alice_alive"] = bool(out["ping_after_settle"].get("answered"))
        out["alice_bytes_in"] = watcher.bytes
        out["alice_error_stanzas"] = watcher.errors
        out["alice_stream_end"] = watcher.ended
        out["alice_first_error_head"] = watcher.first_error_head
        m = await srv.metrics()
        out["metrics_end"] = pick(m)
        out["server_sessions_gauge"] = m.get("herald_c2s_sessions", -1)
        out["bob_sessions_server_view"] = max(0, int(m.get("herald_c2s_sessions", 0)) - 1) if m else -1
        out["bob_tcp_states_client"] = [TCP_STATES.get(b.tcp_state(), str(b.tcp_state())) for b in bobs]
        out["server_tls_sockets"] = tcp_sockets(srv.tls_port)
        out["db_bytes"] = srv.db_bytes()
        out["db_bytes_total"] = sum(out["db_bytes"].values())
        out["server_fds"] = srv.open_fds()
        drains = await asyncio.gather(*(drain(b, DRAIN_SECS) for b in bobs))
        out["bob_drain"] = drains
        out["bob_connected_end"] = sum(1 for d in drains if str(d["state"]).startswith("open"))
        out["rss_after_drain_kib"] = srv.rss_kib()[0]
        out["rss_peak_incl_drain_kib"] = rss.peak()[0]
        await watcher.stop()
        alice.close()
    finally:
        for b in bobs:
            b.close()
        await rss.stop()
    out["rss_samples"] = [[round(t, 1), kib] for t, kib in rss.samples[::4]]
    return out


def pick(m: dict[str, float]) -> dict[str, float]:
    keep = ("herald_c2s_connections", "herald_c2s_sessions", "herald_offline_queue_messages")
    res = {k: v for k, v in m.items() if k in keep}
    res.update({k: v for k, v in m.items() if k.startswith("herald_stream_errors")})
    return res


def summary(r: dict[str, object]) -> list[str]:
    mb = lambda kib: f"{int(kib) / 1024:.0f} MiB"  # noqa: E731
    lines = [
        f"sent {r.get('sent')}/{r.get('messages')} x {r.get('body_bytes')} B in {r.get('send_secs')} s {r.get('send_error') or ''}",
        f"RSS before {mb(r.get('rss_before_kib', 0))}, peak {mb(r.get('rss_peak_kib', 0))}, end of sending "
        f"{mb(r.get('rss_end_of_sending_kib', 0))}, {r.get('settle_secs')} s later {mb(r.get('rss_settled_kib', 0))}",
        f"bob sessions connected at end (client drain): {r.get('bob_connected_end')}/{r.get('sessions')}; "
        f"server sessions gauge {r.get('server_sessions_gauge')}; drains {[d['state'] for d in r.get('bob_drain', [])]}",
        f"server TLS-port sockets {r.get('server_tls_sockets')}",
        f"db {r.get('db_bytes')}",
        f"alice: ping after sending {r.get('ping_after_sending')}, after settle {r.get('ping_after_settle')}, "
        f"{r.get('alice_error_stanzas')} error stanzas, {r.get('alice_bytes_in')} B in, end={r.get('alice_stream_end')!r}",
    ]
    return lines
