"""`pipeline`: a client that reads everything but pipelines many stanzas that each get
a reply (here: messages to a remote domain, each bounced with remote-server-not-found).

Not one of the outside findings: a follow-up of `amplify`, where the AFTER binary
closed alice (who reads all along) as "client is not reading". It measures whether a
reading client that pipelines N stanzas is served all N replies or disconnected, and
what the server logged.
"""

from __future__ import annotations

import asyncio
import time

from herald_proc import HOST, Herald
from wire import describe_error, first_condition, login

PASSWORD = "pipeline-pw"
WAIT_SECS = 10.0


def count_new(window: bytes, overlap: int, needle: bytes) -> int:
    """Occurrences of `needle` in `window` that end past its first `overlap` bytes (the
    tail already counted)."""
    n = 0
    i = window.find(needle)
    while i >= 0:
        if i + len(needle) > overlap:
            n += 1
        i = window.find(needle, i + 1)
    return n


async def run(srv: Herald, args) -> dict[str, object]:
    await srv.add_user("alice", PASSWORD)
    conn = await login(HOST, srv.tls_port, srv.ca_file, "alice", PASSWORD, direct_tls=True, resource="a")
    got = {"bytes": 0, "replies": 0, "end": ""}
    tail = b""

    async def reader() -> None:
        nonlocal tail
        while True:
            data = await conn.recv_some()
            if not data:
                got["end"] = got["end"] or "eof"
                return
            window = tail + data
            got["bytes"] += len(data)
            got["replies"] += count_new(window, len(tail), b"type='error'")
            got["replies"] += count_new(window, len(tail), b'type="error"')
            if b"<stream:error" in window:
                got["end"] = "stream-error:" + (first_condition(window[window.find(b"<stream:error"):]) or "?")
            tail = window[-256:]

    task = asyncio.create_task(reader())
    batch = b"".join(
        f"<message to='nobody@example.org' type='chat' id='q{i}'><body>{i}</body></message>".encode()
        for i in range(args.stanzas))
    t0 = time.monotonic()
    send_error = ""
    try:
        await asyncio.wait_for(conn.send(batch), WAIT_SECS)
    except (OSError, asyncio.TimeoutError) as e:
        send_error = describe_error(e)
    deadline = t0 + WAIT_SECS
    while time.monotonic() < deadline and got["replies"] < args.stanzas and not task.done():
        # Waiting on the reader's count, bounded by WAIT_SECS.
        await asyncio.sleep(0.05)
    took = time.monotonic() - t0
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    conn.close()
    m = await srv.metrics()
    return {
        "stanzas": args.stanzas,
        "replies": got["replies"],
        "all_replies": got["replies"] >= args.stanzas,
        "disconnected": bool(got["end"]),
        "end": got["end"],
        "send_error": send_error,
        "secs": round(took, 2),
        "stream_errors": {k: v for k, v in m.items() if k.startswith("herald_stream_errors")},
        "server_log": srv.log_lines("not reading") + srv.log_lines("too many stanzas"),
    }


def summary(r: dict[str, object]) -> list[str]:
    return [
        f"pipelined {r['stanzas']} stanzas: {r['replies']} replies in {r['secs']} s; "
        f"disconnected {r['disconnected']} ({r['end']}) {r['send_error']}",
        f"stream errors {r['stream_errors']}",
    ] + [f"log: {line[-200:]}" for line in r["server_log"]]
