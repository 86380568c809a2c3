#!/usr/bin/env python3
"""Attack a private Herald on loopback and measure what it costs the server.

    python3 interop/attacks/attack.py BINARY MODE [options]

MODE is `amplify` (large messages to sessions that never read), `guess` (online
password guessing), `slots` (idle connections holding client slots) or `pipeline` (a
reading client that pipelines stanzas which each get a reply). The tool starts
`BINARY serve` with a temporary data directory on free 127.0.0.1 ports, runs one
attack bounded in count and time, stops the server by PID and prints one JSON line of
figures, then a short human summary. Traffic stays on 127.0.0.0/8. Standard library
only. See README.md next to this file.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mode_amplify  # noqa: E402
import mode_guess  # noqa: E402
import mode_pipeline  # noqa: E402
import mode_slots  # noqa: E402
from herald_proc import Herald  # noqa: E402

# Hard bound on one invocation, whatever the options.
WALL_BOUND_SECS = 420.0


def raise_nofile() -> tuple[int, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


async def with_server(binary: Path, args, body) -> dict[str, object]:
    """Start a server, run `body(srv, args)`, record its fate, stop it by PID."""
    srv = Herald(binary, keep=args.keep, nofile=args.server_nofile,
                 log_level="info" if args.mode == "pipeline" else "warn")
    out: dict[str, object] = {}
    try:
        await srv.start()
        out["server_pid"] = srv.pid
        out.update(await body(srv, args))
    except (RuntimeError, OSError, asyncio.TimeoutError) as e:
        out["error"] = f"{type(e).__name__}: {e}"
    finally:
        out["server_alive_at_end"] = srv.alive()
        if srv.proc is not None and not srv.alive():
            out["server_exit"] = srv.proc.returncode
            out["server_stderr_tail"] = srv.stderr_tail()
        out["server_stop"] = await srv.stop()
        out["panics"] = srv.panics()
        if args.keep:
            out["workdir"] = str(srv.workdir)
        srv.cleanup()
    return out


async def main_async(args) -> int:
    binary = Path(args.binary).resolve()
    if not os.access(binary, os.X_OK):
        print(f"not an executable: {binary}", file=sys.stderr)
        return 2
    nofile = raise_nofile()
    head = {
        "mode": args.mode,
        "binary": str(binary),
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "loadavg_start": open("/proc/loadavg").read().split()[:3],
        "nofile": list(nofile),
    }
    started = time.monotonic()
    if args.mode == "amplify":
        res = await with_server(binary, args, mode_amplify.run)
        lines = mode_amplify.summary(res) if "error" not in res else []
    elif args.mode == "guess":
        res = await mode_guess.run(binary, args)
        lines = mode_guess.summary(res)
    elif args.mode == "pipeline":
        res = await with_server(binary, args, mode_pipeline.run)
        lines = mode_pipeline.summary(res) if "error" not in res else []
    else:
        res = await with_server(binary, args, mode_slots.run)
        lines = mode_slots.summary(res) if "error" not in res else []
    head["took_secs"] = round(time.monotonic() - started, 1)
    head["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    head.update(res)
    print(json.dumps(head, sort_keys=False), flush=True)
    print(f"== {args.mode} against {binary} ({head['date_utc']}, load {' '.join(head['loadavg_start'])}, "
          f"took {head['took_secs']} s)")
    if "error" in res:
        print(f"ERROR: {res['error']}")
    for line in lines:
        print("  " + line)
    if res.get("panics"):
        print(f"  server panicked: {res['panics']}")
    if "server_stop" in res:
        print(f"  server stop: {res['server_stop']}")
    return 1 if "error" in res else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("binary", help="the herald binary to start")
    p.add_argument("mode", choices=["amplify", "guess", "slots", "pipeline"])
    p.add_argument("--keep", action="store_true", help="keep the server's temporary directory")
    p.add_argument("--server-nofile", type=int, default=None,
                   help="start the server with this open-files limit (default: inherited)")
    g = p.add_argument_group("amplify")
    g.add_argument("--sessions", type=int, default=4, help="bob's sessions that never read (4)")
    g.add_argument("--messages", type=int, default=500, help="messages alice sends (500)")
    g.add_argument("--body-bytes", type=int, default=200_000, help="body size of each message (200000)")
    g.add_argument("--settle", type=float, default=30.0, help="seconds after the last message for the RSS figure (30)")
    g = p.add_argument_group("pipeline")
    g.add_argument("--stanzas", type=int, default=1000, help="stanzas pipelined in one write (1000)")
    g = p.add_argument_group("guess and slots")
    g.add_argument("--duration", type=float, default=None, help="attack window in seconds (guess 10, slots 20)")
    g.add_argument("--conns", type=int, default=20, help="guess: concurrent connections (20)")
    g.add_argument("--sources", type=int, default=0, choices=[0, 1, 20],
                   help="guess: 1 source address, 20, or 0 for both variants (default)")
    g.add_argument("--relogin-after", type=float, default=0.0,
                   help="guess: also time the bystander's login this many seconds after the window (0: no)")
    g.add_argument("--addresses", type=int, default=10, help="slots: attacking source addresses (10)")
    g.add_argument("--per-address", type=int, default=300, help="slots: sockets per address (300)")
    g.add_argument("--max-sockets", type=int, default=3000, help="slots: sockets in all (3000)")
    args = p.parse_args()
    if args.duration is None:
        args.duration = 10.0 if args.mode == "guess" else 20.0
    args.sessions = max(1, min(args.sessions, 50))
    args.messages = max(1, min(args.messages, 5000))
    args.body_bytes = max(1, min(args.body_bytes, 1_000_000))
    args.settle = max(0.0, min(args.settle, 120.0))
    args.duration = max(1.0, min(args.duration, 120.0))
    args.conns = max(1, min(args.conns, 500))
    args.addresses = max(1, min(args.addresses, 200))
    args.per_address = max(1, min(args.per_address, 1000))
    args.max_sockets = max(1, min(args.max_sockets, 3000))
    args.stanzas = max(1, min(args.stanzas, 20000))
    args.relogin_after = max(0.0, min(args.relogin_after, 330.0))

    async def bounded() -> int:
        return await asyncio.wait_for(main_async(args), WALL_BOUND_SECS)

    try:
        return asyncio.run(bounded())
    except asyncio.TimeoutError:
        print(json.dumps({"mode": args.mode, "error": f"whole run exceeded {WALL_BOUND_SECS:g} s"}))
        return 1


if __name__ == "__main__":
    sys.exit(main())
