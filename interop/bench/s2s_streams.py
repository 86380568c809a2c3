#!/usr/bin/env python3
"""Memory per inbound s2s stream: K authenticated, idle server-to-server streams from K
distinct remote domains, held open against Herald, Prosody and ejabberd in turn, on
this machine in one run; the server's RSS is read before and with all K up.

    python3 interop/bench/s2s_streams.py [--streams 300] [--repeat 3]
        [--servers herald,prosody,ejabberd]

Each stream is what a real peer does (RFC 6120, XEP-0178): TCP to the server's s2s
port on 127.0.0.1, a `jabber:server` stream from `pN.peers.example`, STARTTLS with a
client certificate for `*.peers.example` from the run's test CA (which every server
trusts), the new stream, SASL EXTERNAL for the domain, the stream after
authentication, then nothing until the end. The server certificates and CA are those
of interop/federation (pki.py); the servers are started by peers.py with
certificate-only s2s authentication. A stream counts once the server's features
after authentication arrived. Every wait is bounded; servers are stopped by their
PIDs.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import shutil
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "interop" / "federation"))

from dns import Dns  # noqa: E402
from peers import HOST, EjabberdServer, HeraldServer, HeraldVariant, ProsodyServer, Server, Setting  # noqa: E402
from pki import TestCA  # noqa: E402

KINDS = {"herald": HeraldServer, "prosody": ProsodyServer, "ejabberd": EjabberdServer}
PEERS = "peers.example"
STEP_TIMEOUT = 15.0
SETTLE = 2.0
NS_STREAM = "http://etherx.jabber.org/streams"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def work_pid(s: Server) -> int:
    if isinstance(s, EjabberdServer):
        return int(s.pidfile.read_text().strip())
    return s.proc.pid


class Stream:
    """One inbound s2s stream, driven by plain string matching on what the server
    sends (enough to follow a well-behaved server; anything else fails the stream)."""

    def __init__(self, origin: str, target: str, port: int, tls: ssl.SSLContext) -> None:
        self.origin, self.target, self.port, self.tls = origin, target, port, tls
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.buf = ""

    async def until(self, *marks: str) -> str:
        """Read until one of `marks` is in the buffer; returns the buffer, emptied."""
        while not any(m in self.buf for m in marks):
            if "<stream:error" in self.buf or "failure" in self.buf:
                raise RuntimeError(f"{self.origin}: server said {self.buf[-300:]!r}")
            chunk = await asyncio.wait_for(self.reader.read(65536), STEP_TIMEOUT)
            if not chunk:
                raise RuntimeError(f"{self.origin}: closed by the server after {self.buf[-300:]!r}")
            self.buf += chunk.decode(errors="replace")
        out, self.buf = self.buf, ""
        return out

    def send(self, text: str) -> None:
        self.writer.write(text.encode())

    def header(self) -> None:
        self.send(f"<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='{NS_STREAM}' "
                  f"from='{self.origin}' to='{self.target}' version='1.0'>")

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.wait_for(asyncio.open_connection(HOST, self.port), STEP_TIMEOUT)
        self.header()
        await self.until("</stream:features>")
        self.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        await self.until("<proceed")
        await asyncio.wait_for(self.writer.start_tls(self.tls, server_hostname=self.target), STEP_TIMEOUT)
        self.header()
        features = await self.until("</stream:features>")
        if "EXTERNAL" not in features:
            raise RuntimeError(f"{self.origin}: no SASL EXTERNAL offered: {features[-300:]!r}")
        authzid = base64.b64encode(self.origin.encode()).decode()
        self.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>{authzid}</auth>")
        await self.until("<success")
        self.header()
        await self.until("</stream:features>", "<stream:features/>")

    async def close(self) -> None:
        if self.writer is None:
            return
        try:
            self.send("</stream:stream>")
            await asyncio.wait_for(self.writer.drain(), 2)
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 2)
        except (OSError, asyncio.TimeoutError, ssl.SSLError):
            pass


async def measure(kind: str, k: int, ca: TestCA, client: ssl.SSLContext, dns: Dns, workdir: Path,
                  rep: int) -> dict:
    s = KINDS[kind](f"{kind}.example", workdir / f"{kind}-{rep}")
    if isinstance(s, HeraldServer):
        # The K peers are K domains from one address: the per-IP cap on streams being
        # set up is not what is measured here.
        s.variant = HeraldVariant()
    await s.start(Setting(ca.cert, ca.cert, ca.issue(s.domain), dns.port, "pkix"))
    streams: list[Stream] = []
    try:
        await asyncio.sleep(SETTLE)
        pid = work_pid(s)
        before = rss_kib(pid)
        gate = asyncio.Semaphore(8)
        failures: list[str] = []

        async def one(i: int) -> None:
            st = Stream(f"p{i}.{PEERS}", s.domain, s.s2s_port, client)
            async with gate:
                try:
                    await st.open()
                    streams.append(st)
                except (OSError, RuntimeError, asyncio.TimeoutError, ssl.SSLError) as e:
                    failures.append(str(e))
                    await st.close()

        t0 = time.monotonic()
        await asyncio.gather(*(one(i) for i in range(k)))
        took = time.monotonic() - t0
        await asyncio.sleep(SETTLE)
        up = rss_kib(pid)
        held = len(streams)
        result = {"server": kind, "repeat": rep, "streams": held, "failed": len(failures),
                  "rss_before_kib": before, "rss_up_kib": up, "setup_secs": took,
                  "kib_per_stream": (up - before) / held if held else float("nan"),
                  "loadavg": os.getloadavg()[0]}
        if failures:
            result["first_failure"] = failures[0][:300]
        return result
    finally:
        await asyncio.gather(*(st.close() for st in streams))
        ok, how = await s.stop()
        if not ok:
            log(f"warning: {kind}: {how}")
        await s.kill()


async def main_async(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="herald-s2s-streams-"))
    log(f"temp dir {workdir}; load average {os.getloadavg()}")
    ca = TestCA(workdir / "pki")
    peer = ca.issue(f"*.{PEERS}")
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca.cert))
    client.load_cert_chain(str(peer.chain), str(peer.key))
    # Names for SRV: only the servers themselves; the peers need none (EXTERNAL).
    dns = Dns(workdir / "dns", {})
    dns.start()
    results: list[dict] = []
    ok = True
    try:
        for rep in range(args.repeat):
            for kind in args.servers:
                r = await measure(kind, args.streams, ca, client, dns, workdir, rep)
                results.append(r)
                log(f"{kind} (repeat {rep + 1}): {r['streams']} streams up ({r['failed']} failed) in "
                    f"{r['setup_secs']:.1f} s; RSS {r['rss_before_kib']} -> {r['rss_up_kib']} KiB, "
                    f"{r['kib_per_stream']:.1f} KiB per stream; load {r['loadavg']:.2f}"
                    + (f"; first failure: {r['first_failure']}" if r.get("first_failure") else ""))
                if r["failed"]:
                    ok = False
    except Exception as e:  # noqa: BLE001 - reported with the results so far
        log(f"FAILED: {type(e).__name__}: {e}")
        ok = False
    finally:
        dns.stop()
    print()
    print(f"{args.streams} inbound s2s streams per server, {args.repeat} repeat(s); "
          f"load average at the end {os.getloadavg()}")
    print("| server | KiB per stream, median (min–max) | streams held |")
    print("|---|---|---|")
    for kind in args.servers:
        vals = [r["kib_per_stream"] for r in results if r["server"] == kind]
        held = [r["streams"] for r in results if r["server"] == kind]
        if vals:
            print(f"| {kind} | {statistics.median(vals):.1f} ({min(vals):.1f}–{max(vals):.1f}) | "
                  f"{', '.join(map(str, held))} |")
    if ok and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"(configs and logs kept in {workdir})")
    return 0 if ok else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--streams", type=int, default=300, help="streams per server (1-2000)")
    p.add_argument("--repeat", type=int, default=3, help="rounds over the servers (1-10)")
    p.add_argument("--servers", default="herald,prosody,ejabberd")
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    args.servers = [x.strip() for x in args.servers.split(",") if x.strip()]
    if any(x not in KINDS for x in args.servers) or not args.servers:
        p.error(f"--servers: of {', '.join(KINDS)}")
    if not (1 <= args.streams <= 2000 and 1 <= args.repeat <= 10):
        p.error("--streams 1-2000, --repeat 1-10")
    os.environ.setdefault("HERALD_BIN", str(REPO / "target" / "release" / "herald"))
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
