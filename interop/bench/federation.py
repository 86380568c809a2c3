#!/usr/bin/env python3
"""Federation benchmark: clients on one XMPP server message clients on another, so
every message crosses the two servers' s2s link. Pairs measured in one run, on this
machine, with the same generator and parameters:

    prosody-herald      Prosody's clients write to Herald's (the edge receiving)
    prosody-prosody     Prosody to Prosody (the reference)
    ejabberd-ejabberd   ejabberd to ejabberd (the other reference)
    herald-herald       Herald to Herald (the edge on both sides)
    herald-local        one Herald, sender and receiver on the same server (no s2s:
                        the baseline that the federated latencies are compared to)

    python3 interop/bench/federation.py [--users 100] [--rates 500,1000,2000,4000]
        [--duration 10] [--repeat 3] [--pairs prosody-herald,prosody-prosody,...]
        [--json-out results.json]

Everything runs on 127.0.0.1: the suite's own test CA and dnsmasq
(interop/federation/pki.py, dns.py), Debian's Prosody and ejabberd and `herald serve`
(interop/federation/peers.py) with s2s authenticated by certificates (SASL EXTERNAL),
and `herald-loadgen` in its federated mode (`--peer-server`): user i on the sending
server writes to user i on the receiving one, and the latency is measured in the
generator from a send timestamp carried in the body (sender and receiver are in the
same process and use the same clock). Each pair is started fresh for each repeat and
stopped after it; repeats go round the pairs in turn so that noise from the rest of
the machine spreads over all of them. Herald's per-domain inbound limits (200
stanzas/s by default) are raised for the peer with a policy-only [[s2s.route]], as an
admin would for a busy partner.

`HERALD_BIN` and `LOADGEN_BIN` name the binaries (release builds: see
interop/bench/README.md). Every loop and wait is bounded; servers are stopped by
the PIDs this script started.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "interop" / "federation"))

from dns import Dns  # noqa: E402
from peers import (HOST, EjabberdServer, HeraldServer, HeraldVariant, ProsodyServer,  # noqa: E402
                   Server, Setting)
from pki import TestCA  # noqa: E402

# Pair name -> (sending server, receiving server); None: no federation (one server).
PAIRS: dict[str, tuple[str, str | None]] = {
    "prosody-herald": ("prosody-a", "herald-b"),
    "prosody-prosody": ("prosody-a", "prosody-b"),
    "ejabberd-ejabberd": ("ejabberd-a", "ejabberd-b"),
    "herald-herald": ("herald-a", "herald-b"),
    "herald-local": ("herald-b", None),
}
# Server name -> (kind, domain).
SERVERS: dict[str, tuple[str, str]] = {
    "prosody-a": ("prosody", "pa.example"),
    "prosody-b": ("prosody", "pb.example"),
    "ejabberd-a": ("ejabberd", "ea.example"),
    "ejabberd-b": ("ejabberd", "eb.example"),
    "herald-a": ("herald", "ha.example"),
    "herald-b": ("herald", "herald.example"),
}
KINDS = {"prosody": ProsodyServer, "ejabberd": EjabberdServer, "herald": HeraldServer}
# A generator run may take its traffic and drain time plus this (logins, close).
RUN_SLACK = 120.0
# A delivered rate counts as sustained when at least this share arrived...
SUSTAINED_SHARE = 0.999
# ...and the p99 latency stayed under this (milliseconds).
SUSTAINED_P99_MS = 100.0


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def server_pid(s: Server) -> int | None:
    """The process doing the work: ejabberd's beam (from its pid file; the process we
    started is the ejabberdctl script), else the process we started."""
    if isinstance(s, EjabberdServer):
        try:
            return int(s.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
    return s.proc.pid if s.proc is not None else None


async def provision(s: Server, users: int, workdir: Path, running: bool) -> None:
    """Accounts user0..user{users-1} with passwords pass{i}, in each server's own bulk
    format: Prosody's files before it starts; Herald's import and ejabberd's XEP-0227
    import once it runs (Herald's database exists from its first start)."""
    if isinstance(s, ProsodyServer) and not running:
        subprocess.run([sys.executable, str(HERE / "provision_prosody.py"), str(s.data), s.domain,
                        "0", str(users)], check=True, stdout=subprocess.DEVNULL, timeout=300)
    elif isinstance(s, HeraldServer) and running:
        csv = workdir / f"accounts-{s.domain}.csv"
        csv.write_text("".join(f"user{i},pass{i}\n" for i in range(users)))
        subprocess.run([str(s.binary), "user", "--config", str(s.config), "import", str(csv)],
                       check=True, stdout=subprocess.DEVNULL, timeout=300)
    elif isinstance(s, EjabberdServer) and running:
        out = workdir / f"pie-{s.domain}"
        subprocess.run([sys.executable, str(HERE / "provision_rosters.py"), "piefxis", str(users), "0",
                        str(users), str(out), s.domain], check=True, stdout=subprocess.DEVNULL, timeout=120)
        # The node runs as `ejabberd` and reads the files itself.
        os.chmod(out, 0o755)
        for part in sorted(out.glob("part-*.xml")):
            os.chmod(part, 0o644)
            await s.ctl_call("import_piefxis", str(part))


@dataclass
class Bench:
    args: argparse.Namespace
    workdir: Path
    ca: TestCA
    dns: Dns
    servers: dict[str, Server]
    results: list[dict] = field(default_factory=list)

    def setting(self, name: str) -> Setting:
        s = self.servers[name]
        return Setting(self.ca.cert, self.ca.cert, self.ca.issue(s.domain), self.dns.port, "pkix")

    async def start(self, name: str, peer: str | None) -> Server:
        s = self.servers[name]
        if isinstance(s, HeraldServer):
            tables = ""
            if peer is not None:
                tables = (f'[[s2s.route]]\ndomain = "{self.servers[peer].domain}"\n'
                          "limits = { stanzas_per_sec = 1000000, bytes_per_sec = 1000000000 }\n")
            s.variant = HeraldVariant(tables=tables)
        setting = self.setting(name)
        fresh = not (s.workdir / ".provisioned").exists()
        if fresh:
            await provision(s, self.args.users, self.workdir, running=False)
        await s.start(setting)
        if fresh:
            await provision(s, self.args.users, self.workdir, running=True)
            (s.workdir / ".provisioned").write_text("")
        return s

    async def stop(self, s: Server) -> None:
        ok, how = await s.stop()
        if not ok:
            log(f"warning: {s.kind} {s.domain}: {how}")
        await s.kill()

    async def loadgen(self, pair: str, a: Server, b: Server | None, rate: int, rep: int) -> dict:
        argv = [self.args.loadgen, "--server", f"{HOST}:{a.c2s_port}", "--domain", a.domain,
                "--ca", str(self.ca.cert), "--users", str(self.args.users), "--connect-rate", "200",
                "--msg-rate", str(rate), "--duration", str(self.args.duration),
                "--drain", str(self.args.drain), "--hold", "1", "--json", "--label", pair]
        pid = server_pid(a)
        if pid:
            argv += ["--server-pid", str(pid)]
        if b is not None:
            argv += ["--peer-server", f"{HOST}:{b.c2s_port}", "--peer-domain", b.domain]
            peer_pid = server_pid(b)
            if peer_pid:
                argv += ["--peer-pid", str(peer_pid)]
        load_before = os.getloadavg()
        budget = self.args.duration + self.args.drain + RUN_SLACK
        proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), budget)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise RuntimeError(f"herald-loadgen ran over {budget:.0f}s for {pair} at {rate}/s")
        lines = [ln for ln in out.decode().splitlines() if ln.startswith("{")]
        if not lines:
            raise RuntimeError(f"herald-loadgen gave no report for {pair} at {rate}/s "
                               f"(exit {proc.returncode}): {err.decode()[-2000:]}")
        r = json.loads(lines[-1])
        r.update(pair=pair, rate=rate, repeat=rep, loadavg_before=load_before[0],
                 loadavg_after=os.getloadavg()[0])
        return r

    async def run_pair(self, pair: str, rep: int) -> None:
        a_name, b_name = PAIRS[pair]
        log(f"{pair} (repeat {rep + 1}): starting {a_name}" + (f" and {b_name}" if b_name else ""))
        started: list[Server] = []
        try:
            a = await self.start(a_name, b_name)
            started.append(a)
            b = None
            if b_name is not None:
                b = await self.start(b_name, a_name)
                started.append(b)
            # One warm-up round opens the s2s streams (DNS, TLS, SASL EXTERNAL) so
            # the measured runs ride established links.
            await self.loadgen(pair, a, b, 50, rep)
            for rate in self.args.rates:
                r = await self.loadgen(pair, a, b, rate, rep)
                self.results.append(r)
                log(f"  {pair} {rate}/s: {summary_line(r)}")
        finally:
            for s in reversed(started):
                await self.stop(s)


def pct(r: dict, key: str) -> float:
    ms = r.get(key)
    return float("nan") if ms is None else ms * 100.0 / 1000.0 / max(r["traffic_secs"], 1e-9)


def summary_line(r: dict) -> str:
    return (f"received {r['msgs_per_sec']:.0f}/s ({r['msgs_received']}/{r['msgs_sent']}, "
            f"errors {r['msgs_error']}), p50 {r['lat_p50_us'] / 1000:.2f} ms, "
            f"p99 {r['lat_p99_us'] / 1000:.2f} ms; CPU sender {pct(r, 'server_cpu_traffic_ms'):.0f} %, "
            f"receiver {pct(r, 'peer_cpu_traffic_ms'):.0f} %, generator "
            f"{pct(r, 'generator_cpu_traffic_ms'):.0f} %; load {r['loadavg_before']:.2f}")


def sustained(r: dict) -> bool:
    return (r["msgs_sent"] > 0 and r["msgs_received"] >= SUSTAINED_SHARE * r["msgs_sent"]
            and r["lat_p99_us"] <= SUSTAINED_P99_MS * 1000)


def spread(values: list[float]) -> str:
    vals = [v for v in values if v == v]
    if not vals:
        return "-"
    med = statistics.median(vals)
    return f"{med:.2f} ({min(vals):.2f}–{max(vals):.2f})" if len(vals) > 1 else f"{med:.2f}"


def report(results: list[dict], pairs: list[str], rates: list[int]) -> str:
    out = ["| pair | offered/s | received/s | lost | p50 ms | p99 ms | CPU % sender | CPU % receiver | receiver CPU ms per 1k msgs |",
           "|---|---|---|---|---|---|---|---|---|"]
    for pair in pairs:
        for rate in rates:
            rs = [r for r in results if r["pair"] == pair and r["rate"] == rate]
            if not rs:
                continue
            per_k = [r["peer_cpu_traffic_ms"] * 1000.0 / max(r["msgs_received"], 1)
                     for r in rs if r.get("peer_cpu_traffic_ms") is not None]
            out.append("| " + " | ".join([
                pair, str(rate),
                spread([r["msgs_per_sec"] for r in rs]),
                spread([float(r["msgs_lost"]) for r in rs]),
                spread([r["lat_p50_us"] / 1000 for r in rs]),
                spread([r["lat_p99_us"] / 1000 for r in rs]),
                spread([pct(r, "server_cpu_traffic_ms") for r in rs]),
                spread([pct(r, "peer_cpu_traffic_ms") for r in rs]) if pair != "herald-local" else "-",
                spread(per_k) if per_k else "-",
            ]) + " |")
    out.append("")
    out.append(f"Highest offered rate sustained (≥ {SUSTAINED_SHARE * 100:g} % delivered within the drain, "
               f"p99 ≤ {SUSTAINED_P99_MS:g} ms), per repeat:")
    best: dict[str, list[int]] = {}
    reps = sorted({r["repeat"] for r in results})
    for pair in pairs:
        per_rep = []
        for rep in reps:
            ok = [r["rate"] for r in results if r["pair"] == pair and r["repeat"] == rep and sustained(r)]
            per_rep.append(max(ok) if ok else 0)
        best[pair] = per_rep
        out.append(f"- {pair}: {', '.join(str(v) for v in per_rep)}")
    ref = best.get("prosody-prosody")
    if ref:
        for pair in ("prosody-herald", "herald-herald"):
            if pair in best:
                ratios = [f"{x / y:.2f}" if y else "n/a" for x, y in zip(best[pair], ref)]
                out.append(f"- {pair} / prosody-prosody, per repeat: {', '.join(ratios)}")
    local = [r for r in results if r["pair"] == "herald-local"]
    if local:
        out.append("")
        out.append("Latency the federation hop adds (p99 of the federated pair minus herald-local's "
                   "p99 at the same rate and repeat):")
        for pair in ("prosody-herald", "herald-herald"):
            deltas = []
            for r in results:
                if r["pair"] != pair:
                    continue
                base = [x for x in local if x["rate"] == r["rate"] and x["repeat"] == r["repeat"]]
                if base:
                    deltas.append((r["rate"], (r["lat_p99_us"] - base[0]["lat_p99_us"]) / 1000))
            if deltas:
                out.append(f"- {pair}: " + ", ".join(f"{rate}/s {d:+.2f} ms" for rate, d in deltas))
    return "\n".join(out)


async def main_async(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="herald-fed-bench-"))
    log(f"temp dir {workdir}; load average {os.getloadavg()}")
    ca = TestCA(workdir / "pki")
    wanted = {n for p in args.pairs for n in PAIRS[p] if n is not None}
    servers = {n: KINDS[SERVERS[n][0]](SERVERS[n][1], workdir / n) for n in sorted(wanted)}
    dns = Dns(workdir / "dns", {s.domain: s.s2s_port for s in servers.values()})
    dns.start()
    bench = Bench(args, workdir, ca, dns, servers)
    ok = True
    try:
        for rep in range(args.repeat):
            for pair in args.pairs:
                await bench.run_pair(pair, rep)
    except Exception as e:  # noqa: BLE001 - reported, and the results so far kept
        log(f"FAILED: {type(e).__name__}: {e}")
        ok = False
    finally:
        for s in servers.values():
            await s.kill()
        dns.stop()
    text = report(bench.results, args.pairs, args.rates)
    print()
    print(f"users {args.users} per server, {args.duration:g} s per rate, {args.repeat} repeat(s), "
          f"load average at the end {os.getloadavg()}")
    print(text)
    if args.json_out:
        Path(args.json_out).write_text("".join(json.dumps(r) + "\n" for r in bench.results))
    if ok and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"(configs and logs kept in {workdir})")
    return 0 if ok else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=100, help="accounts per server (1-2000)")
    p.add_argument("--rates", default="500,1000,2000,4000",
                   help="offered message rates, messages/s across all senders")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of traffic per rate (1-300)")
    p.add_argument("--drain", type=float, default=5.0, help="seconds to wait for messages in flight")
    p.add_argument("--repeat", type=int, default=3, help="rounds over all pairs (1-10)")
    p.add_argument("--pairs", default=",".join(PAIRS), help=f"of {', '.join(PAIRS)}")
    p.add_argument("--json-out", help="write every generator report here, one JSON line each")
    p.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = p.parse_args()
    args.rates = [int(x) for x in args.rates.split(",") if x.strip()]
    args.pairs = [x.strip() for x in args.pairs.split(",") if x.strip()]
    bad = [x for x in args.pairs if x not in PAIRS]
    if bad or not args.pairs:
        p.error(f"unknown pair(s) {bad}; pairs: {', '.join(PAIRS)}")
    if not (1 <= args.users <= 2000 and 1 <= args.duration <= 300 and 1 <= args.repeat <= 10
            and 0 <= args.drain <= 60 and all(1 <= r <= 100_000 for r in args.rates) and args.rates):
        p.error("out of range: --users 1-2000, --duration 1-300, --drain 0-60, --repeat 1-10, "
                "--rates 1-100000")
    root = REPO / "target" / "release"
    os.environ.setdefault("HERALD_BIN", str(root / "herald"))
    args.loadgen = os.environ.get("LOADGEN_BIN", str(root / "herald-loadgen"))
    for b in (os.environ["HERALD_BIN"], args.loadgen):
        if not os.access(b, os.X_OK):
            p.error(f"{b} not found: cargo build --release -p herald-edge -p herald-interop "
                    "(or set HERALD_BIN / LOADGEN_BIN)")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
