#!/usr/bin/env python3
"""Timed logins in a process of their own, so that their latency is not the attacker's
event loop being busy: one full login (STARTTLS or direct TLS, PLAIN, bind) started
every `interval` seconds for `duration` seconds, each bounded by `timeout`. Prints one
JSON list of {"at", "ok", "secs", "error"} when done.

    python3 probe_child.py PORT CA_FILE SOURCE USER PASSWORD DURATION [--direct-tls]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from wire import Closed, LoginError, describe_error, login  # noqa: E402

HOST = "127.0.0.1"


async def one(args, n: int, at: float) -> dict[str, object]:
    t0 = time.monotonic()
    try:
        conn = await login(HOST, args.port, args.ca_file, args.user, args.password,
                           direct_tls=args.direct_tls, resource=f"p{n}", source=args.source,
                           timeout=args.timeout)
    except (OSError, asyncio.TimeoutError, Closed, LoginError) as e:
        return {"at": round(at, 1), "ok": False, "secs": round(time.monotonic() - t0, 3),
                "error": describe_error(e)}
    took = time.monotonic() - t0
    try:
        await asyncio.wait_for(conn.send(b"</stream:stream>"), 2.0)
    except (OSError, asyncio.TimeoutError):
        pass
    conn.close()
    return {"at": round(at, 1), "ok": True, "secs": round(took, 3)}


async def main_async(args) -> None:
    start = time.monotonic()
    tasks = []
    n = 0
    while time.monotonic() - start < args.duration:
        tasks.append(asyncio.create_task(one(args, n, time.monotonic() - start)))
        n += 1
        # The probe schedule: one login every `interval` seconds.
        await asyncio.sleep(max(0.0, start + n * args.interval - time.monotonic()))
    print(json.dumps(await asyncio.gather(*tasks)), flush=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("ca_file")
    p.add_argument("source")
    p.add_argument("user")
    p.add_argument("password")
    p.add_argument("duration", type=float)
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--direct-tls", action="store_true")
    args = p.parse_args()
    args.duration = max(0.0, min(args.duration, 300.0))
    args.interval = max(0.1, args.interval)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
