#!/usr/bin/env python3
"""Registers accounts in a running ejabberd through mod_http_api on loopback.

`ejabberdctl register` starts an Erlang VM per account (about a second each), and
`ejabberdctl import_prosody` needs ejabberd built with Lua support (Debian's is not);
a few keep-alive HTTP connections to /api/register do thousands in seconds.
Usage: provision_ejabberd.py HTTP_PORT DOMAIN FIRST END [CONNECTIONS]
"""
import concurrent.futures
import http.client
import json
import sys
import threading

_local = threading.local()


def register(port: int, domain: str, i: int) -> str:
    body = json.dumps({"user": f"user{i}", "host": domain, "password": f"pass{i}"})
    for attempt in range(3):
        conn = getattr(_local, "conn", None)
        if conn is None:
            conn = _local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            conn.request("POST", "/api/register", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            text = resp.read().decode(errors="replace")
        except (ConnectionError, http.client.HTTPException, TimeoutError):
            conn.close()
            _local.conn = None
            if attempt == 2:
                raise
            continue
        if resp.status == 200:
            return "created"
        if resp.status == 409 or "already registered" in text:
            return "existed"
        raise RuntimeError(f"user{i}: HTTP {resp.status}: {text}")
    raise RuntimeError(f"user{i}: no answer")


def main() -> int:
    if len(sys.argv) not in (5, 6):
        print(__doc__, file=sys.stderr)
        return 2
    port, domain = int(sys.argv[1]), sys.argv[2]
    first, end = int(sys.argv[3]), int(sys.argv[4])
    workers = int(sys.argv[5]) if len(sys.argv) == 6 else 4
    counts = {"created": 0, "existed": 0}
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        try:
            for outcome in pool.map(lambda i: register(port, domain, i), range(first, end)):
                counts[outcome] += 1
        except RuntimeError as e:
            print(f"ejabberd: {e}", file=sys.stderr)
            return 1
    print(f"ejabberd: registered {counts['created']} account(s), {counts['existed']} already there")
    return 0


if __name__ == "__main__":
    sys.exit(main())
