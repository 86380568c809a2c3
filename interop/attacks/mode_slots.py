"""`slots`: idle connections that hold the server's client slots.

From K source addresses, up to P sockets each (bounded in all), connect to the STARTTLS
port and send nothing (even slots) or only the stream header (odd slots), reconnecting
whenever the server closes them, for D seconds. Every second a fresh full login
(STARTTLS, PLAIN, bind) is timed from a bystander address. Measured: sockets held from
the client side, the server's connection gauge and refusal counters, login latencies.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from pathlib import Path
from collections import Counter

from herald_proc import HOST, Herald, tcp_sockets
from wire import STREAM_HEADER, Conn, describe_error

HERE = Path(__file__).resolve().parent

RIGHT_PW = "slot-user-pw"
BYSTANDER = "127.0.0.250"
PROBE_TIMEOUT = 10.0
RECONNECT_PAUSE = 0.2
MAX_DISCARD_BYTES = 1 << 20
HELD_LONG_SECS = 2.0


class Holder:
    def __init__(self) -> None:
        self.open_since: dict[int, float] = {}
        self.connects = 0
        self.closed_by_server = 0
        self.connect_failures: Counter[str] = Counter()
        self.samples: list[tuple[float, int, int]] = []


async def hold(slot: int, srv: Herald, source: str, header: bool, deadline: float, h: Holder) -> None:
    while time.monotonic() < deadline:
        left = deadline - time.monotonic()
        try:
            conn = await Conn.connect(HOST, srv.c2s_port, source=source, timeout=min(5.0, left))
        except asyncio.TimeoutError:
            if time.monotonic() < deadline:
                h.connect_failures["timeout"] += 1
            continue
        except OSError as e:
            h.connect_failures[describe_error(e)] += 1
            await asyncio.sleep(RECONNECT_PAUSE)
            continue
        h.connects += 1
        h.open_since[slot] = time.monotonic()
        try:
            if header:
                await conn.send(STREAM_HEADER)
            while conn.bytes_in < MAX_DISCARD_BYTES:
                if not await conn.recv_some():
                    break
            h.closed_by_server += 1
        except OSError:
            h.closed_by_server += 1
        finally:
            h.open_since.pop(slot, None)
            conn.close()
        await asyncio.sleep(RECONNECT_PAUSE)


async def start_probes(srv: Herald, duration: float) -> asyncio.subprocess.Process:
    """The bystander's logins run in a child process: in this one, thousands of
    reconnecting sockets would make the event loop, not the server, the latency."""
    return await asyncio.create_subprocess_exec(
        sys.executable, str(HERE / "probe_child.py"), str(srv.c2s_port), srv.ca_file, BYSTANDER,
        "alice", RIGHT_PW, str(duration), "--timeout", str(PROBE_TIMEOUT),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def probe_results(proc: asyncio.subprocess.Process, wait: float) -> list[dict[str, object]]:
    try:
        out, err = await asyncio.wait_for(proc.communicate(), wait)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        return [{"at": -1, "ok": False, "secs": wait, "error": "probe process hung"}]
    try:
        return json.loads(out.decode())
    except ValueError:
        return [{"at": -1, "ok": False, "secs": 0, "error": "probe process: " + err.decode(errors="replace")[-200:]}]


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


async def run(srv: Herald, args) -> dict[str, object]:
    await srv.add_user("alice", RIGHT_PW)
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    total = min(args.max_sockets, args.addresses * args.per_address, max(0, soft - 500))
    sources = [f"127.0.2.{i}" for i in range(1, args.addresses + 1)]
    # The same logins with no attack running, for comparison.
    baseline = await probe_results(await start_probes(srv, 3.0), PROBE_TIMEOUT + 10)
    base_ok = [r["secs"] for r in baseline if r["ok"]]
    h = Holder()
    start = time.monotonic()
    deadline = start + args.duration
    tasks = [asyncio.create_task(hold(j, srv, sources[j % len(sources)], j % 2 == 1, deadline, h))
             for j in range(total)]
    cpu0 = srv.cpu_secs()
    probes = await start_probes(srv, args.duration)
    gauges: list[tuple[float, float]] = []
    fds: list[int] = []

    async def scrape() -> None:
        while time.monotonic() < deadline:
            t = time.monotonic()
            m = await srv.metrics(timeout=2.0)
            gauges.append((round(t - start, 1), m.get("herald_c2s_connections", -1)))
            fds.append(srv.open_fds())
            # One scrape a second (a slow scrape delays only the next one).
            await asyncio.sleep(max(0.0, t + 1.0 - time.monotonic()))

    scraper = asyncio.create_task(scrape())
    tick = 0
    while time.monotonic() < deadline:
        now = time.monotonic()
        held = len(h.open_since)
        held_long = sum(1 for t in list(h.open_since.values()) if now - t >= HELD_LONG_SECS)
        h.samples.append((round(now - start, 1), held, held_long))
        tick += 1
        # Sampling period of the held count.
        await asyncio.sleep(max(0.0, start + tick * 0.5 - time.monotonic()))
    await asyncio.gather(scraper, return_exceptions=True)
    m_end = await srv.metrics()
    server_socks = tcp_sockets(srv.c2s_port)
    cpu = srv.cpu_secs() - cpu0
    end_held = len(h.open_since)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    results = await probe_results(probes, PROBE_TIMEOUT + 10)
    ok = [r["secs"] for r in results if r["ok"]]
    failures = [r for r in results if not r["ok"]]
    return {
        "addresses": args.addresses,
        "sockets_planned": total,
        "duration_secs": args.duration,
        "held_max": max((s[1] for s in h.samples), default=0),
        "held_2s_max": max((s[2] for s in h.samples), default=0),
        "held_at_end": end_held,
        "connects": h.connects,
        "closed_by_server": h.closed_by_server,
        "connect_failures": dict(h.connect_failures),
        "connects_per_sec": round(h.connects / args.duration, 1),
        "server_cpu_secs": round(cpu, 2),
        "gauge_max": max((g for _, g in gauges), default=-1),
        "gauge_end": m_end.get("herald_c2s_connections", -1),
        "server_fds_max": max(fds, default=-1),
        "server_c2s_sockets_end": server_socks,
        "refused": {k: v for k, v in m_end.items() if k.startswith("herald_c2s_connections_refused")},
        "stream_errors": {k: v for k, v in m_end.items() if k.startswith("herald_stream_errors")},
        "login_baseline_secs": percentile(base_ok, 0.5),
        "login_baseline_ok": f"{len(base_ok)}/{len(baseline)}",
        "logins": len(results),
        "login_ok": len(ok),
        "login_p50_secs": percentile(ok, 0.5),
        "login_max_secs": max(ok, default=None),
        "login_failures": [f"{r['at']}s:{r['error']}" for r in failures],
        "held_samples": h.samples[::2],
        "gauge_samples": gauges,
    }


def summary(r: dict[str, object]) -> list[str]:
    return [
        f"held max {r['held_max']} (>=2 s: {r['held_2s_max']}), at end {r['held_at_end']} of {r['sockets_planned']} "
        f"planned; connects {r['connects']} ({r['connects_per_sec']}/s), server CPU {r['server_cpu_secs']} s, closed by server {r['closed_by_server']}, connect failures {r['connect_failures']}",
        f"server gauge max {r['gauge_max']}, end {r['gauge_end']}; sockets at end {r['server_c2s_sockets_end']}; server fds max {r['server_fds_max']}; refused {r['refused']}",
        f"baseline login {r['login_baseline_secs']} s ({r['login_baseline_ok']}); "
        f"logins {r['login_ok']}/{r['logins']} ok, p50 {r['login_p50_secs']} s, max {r['login_max_secs']} s; "
        f"failures {r['login_failures']}",
    ]
