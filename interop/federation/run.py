#!/usr/bin/env python3
"""Herald federation suite: two real XMPP servers federating on loopback, with real
slixmpp clients on both domains.

    python3 interop/federation/run.py [--pair prosody,ejabberd] [--auth pkix|dialback]
                                      [-k NAME] [--timeout S] [--keep] [-v]

Makes a test CA and a certificate per domain (pki.py), starts dnsmasq on a free
loopback port serving the domains' `_xmpp-server._tcp` SRV records (dns.py), starts the
two servers of the pair (peers.py), each for its own `.example` domain, resolving
through that dnsmasq only, creates the scenarios' accounts, and runs every scenario
with a timeout. Prints one PASS/FAIL line per scenario and ends with
`N passed, M failed`; exit status 0 only if nothing failed. On failure the temp dir
(configs, data, every log) is kept and its path printed.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from registry import *  # noqa: E402,F401,F403
# Each module registers its scenarios when imported, in this order.
from scenarios_links import *  # noqa: E402,F401,F403
from scenarios_setups import *  # noqa: E402,F401,F403
from scenarios_reload import *  # noqa: E402,F401,F403
from scenarios_spoof import *  # noqa: E402,F401,F403


# ---------------------------------------------------------------------- runner


def emit(text: str) -> None:
    first, *rest = text.rstrip("\n").splitlines() or [""]
    print(first, flush=True)
    for line in rest:
        print(f"    | {line}", flush=True)


async def apply_setup(ctx: Context) -> None:
    """Restart Herald (side a) with the scenario's configuration variant, and start its
    own dnsmasq first if the variant has one."""
    setup = ctx.scenario.herald(ctx)
    dns_port = 0
    if setup.srv is not None:
        ctx.dns = Dns(ctx.workdir / f"dns-{ctx.scenario.name}", {}, srv=setup.srv)
        ctx.dns.start()
        dns_port = ctx.dns.port
    if setup.peer_srv is not None:
        ctx.peer_dns = Dns(ctx.workdir / f"dns-{ctx.scenario.name}-peer", {}, srv=setup.peer_srv)
        ctx.peer_dns.start()
        ctx.peer_dns_restore = ctx.b.setting.dns_port
        ok, how = await ctx.b.stop()
        check(ok, f"stopping {ctx.b.kind} to give it this scenario's DNS: {how}")
        await ctx.b.kill()
        await ctx.b.start(dataclasses.replace(ctx.b.setting, dns_port=ctx.peer_dns.port))
    ok, how = await ctx.a.reconfigure(HeraldVariant(setup.tables, setup.listen_tls, dns_port))
    check(ok, f"restarting herald for this scenario's configuration: {how}")


async def run_scenario(a: Server, b: Server, sc: Scenario, timeout: float,
                       workdir: Path | None = None, s2s_ca: TestCA | None = None) -> tuple[bool, str]:
    ctx = Context(a, b, sc, workdir, s2s_ca)
    started = time.monotonic()
    ok, reason, note = True, "", None
    try:
        if sc.herald is not None:
            await asyncio.wait_for(apply_setup(ctx), 60)
        note = await asyncio.wait_for(sc.func(ctx), timeout)
    except asyncio.TimeoutError:
        ok, reason = False, f"scenario timed out after {timeout:g}s"
    except ScenarioError as e:
        ok, reason = False, str(e)
    except Exception as e:  # noqa: BLE001 - any crash is a failure of the scenario
        ok, reason = False, f"{type(e).__name__}: {e}\n{traceback.format_exc()}"
    finally:
        try:
            await asyncio.wait_for(ctx.close_all(), 10)
        except asyncio.TimeoutError:
            pass
        if ctx.dns is not None:
            ctx.dns.stop()
        if ctx.peer_dns is not None:
            # The peer goes back to the run's dnsmasq (its setting has the scenario's).
            try:
                if ctx.b.alive():
                    good, how = await ctx.b.stop()
                    if ok and not good:
                        ok, reason = False, f"stopping {ctx.b.kind} after the scenario: {how}"
                await ctx.b.kill()
                await ctx.b.start(dataclasses.replace(ctx.b.setting, dns_port=ctx.peer_dns_restore))
            except ServerError as e:
                ok, reason = False, (reason or "") + f"\nrestarting {ctx.b.kind} after the scenario: {e}"
            ctx.peer_dns.stop()
    for srv in (a, b):
        if not srv.alive():
            if ok:
                ok, reason = False, f"{srv} is not running any more:\n{srv.log_tail()}"
            # A scenario that stops a server may fail before it starts it again: start it
            # here, so the scenarios after it still have their pair.
            if srv.setting is not None:
                try:
                    await srv.kill()
                    await srv.start(srv.setting)
                except ServerError as e:
                    reason += f"\n(starting {srv.kind} again failed: {e})"
    took = time.monotonic() - started
    if not reason:
        return ok, f"({took:.1f}s)" + (f" {note}" if note else "")
    first, _, details = reason.partition("\n")
    return ok, f"{first} ({took:.1f}s)" + (f"\n{details}" if details else "")


async def start_all(args: argparse.Namespace, workdir: Path, kinds: list[str],
                    selected: list[Scenario]) -> tuple[Dns, list[Server], TestCA]:
    ca = TestCA(workdir / "pki")
    # Dialback mode: servers trust an unrelated CA, so the peer's certificate does not
    # verify and s2s must authenticate with dialback (clients still trust the test CA).
    s2s_ca = TestCA(workdir / "pki-stranger", "Unrelated CA") if args.auth == "dialback" else ca
    trust = s2s_ca.cert
    # herald,herald: the second is herald2.example, in herald2/, so domains and
    # directories stay distinct (ports always are: free_ports never repeats one).
    names = [kinds[0], kinds[1] + ("2" if kinds[1] == kinds[0] else "")]
    servers = [SERVERS[k](f"{n}.example", workdir / n) for k, n in zip(kinds, names)]
    if isinstance(servers[1], HeraldServer):
        # Herald as the peer (side b) listens for direct-TLS s2s too, as Prosody and
        # ejabberd always do, so direct_tls_outbound finds a listener there.
        servers[1].variant = HeraldVariant(listen_tls=True)
    dns = Dns(workdir / "dns", {s.domain: s.s2s_port for s in servers})
    dns.start()
    try:
        # Both start at once; every start is awaited (even when one fails early), so no
        # server process is left half-started when setup gives up.
        results = await asyncio.gather(
            *(s.start(Setting(ca.cert, trust, ca.issue(s.domain), dns.port, args.auth, args.debug_logs))
              for s in servers), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r
        gate = asyncio.Semaphore(4)
        ctxs = [Context(servers[0], servers[1], sc) for sc in selected]

        async def add(ctx: Context, user: str, side: str) -> None:
            async with gate:
                await ctx.server(side).add_user(ctx.account(user), ctx.password(user))

        await asyncio.gather(*(add(c, u, side) for c in ctxs for u, side in c.scenario.users))
    except BaseException:
        for s in servers:
            await s.kill()
        dns.stop()
        raise
    return dns, servers, s2s_ca


async def main_async(args: argparse.Namespace) -> int:
    kinds = [k.strip() for k in args.pair.split(",")]
    # Two of a kind only for Herald (two `herald serve` processes, each with its own
    # domain, directory and ports); Prosody and ejabberd pairs of one kind are not set up.
    if (len(kinds) != 2 or any(k not in SERVERS for k in kinds)
            or (kinds[0] == kinds[1] and kinds[0] != "herald")):
        print(f"FAIL setup: --pair wants two servers of {', '.join(SERVERS)} (the same one twice "
              f"only for herald); got {args.pair!r}")
        print("0 passed, 1 failed")
        return 1
    selected = [s for s in SCENARIOS if (not args.k or args.k in s.name) and applies(s, kinds)]
    selected.sort(key=lambda s: s.order)  # stable: registry order within each group
    if not selected:
        print(f"FAIL selection: no scenario matches -k {args.k!r}; "
              f"scenarios: {', '.join(s.name for s in SCENARIOS)}")
        print("0 passed, 1 failed")
        return 1

    workdir = Path(tempfile.mkdtemp(prefix="herald-fed-interop-"))
    suite_started = time.monotonic()
    try:
        dns, servers, s2s_ca = await start_all(args, workdir, kinds, selected)
    except (PKIError, DnsError, ServerError, NotImplementedError, OSError) as e:
        emit(f"FAIL setup: {e}")
        print(f"(configs and logs kept in {workdir})")
        print(f"0 passed, {len(selected) + 1} failed")
        return 1
    a, b = servers
    print(f"pair: {a}; {b}; dnsmasq on {HOST}:{dns.port}; s2s auth: {args.auth}; "
          f"temp dir {workdir}", flush=True)
    passed = failed = 0
    try:
        for sc in selected:
            # The run's dnsmasq is a child of this process and only this run stops it.
            # If it has exited anyway (something else on the machine ended it: once, in
            # a run on a shared machine, every lookup after the first timed out), say so
            # and start it again on its port, so that the scenarios after it test the
            # servers and not a missing DNS server.
            rc = dns.exited()
            if rc is not None:
                emit(f"NOTE the run's dnsmasq exited ({rc}) before {sc.name} without this run stopping "
                     f"it; starting it again on {HOST}:{dns.port}. Its log ends:\n{dns.log_tail(3)}")
                try:
                    dns.start(dns.port)
                except DnsError as e:
                    emit(f"NOTE starting the run's dnsmasq again failed: {e}")
            ok, reason = await run_scenario(a, b, sc, args.timeout, workdir, s2s_ca)
            if ok:
                emit(f"PASS {sc.name} {reason}")
                passed += 1
            else:
                emit(f"FAIL {sc.name}: {reason}")
                failed += 1
                for srv in servers:
                    emit(f"     {srv.kind} log tail:\n{srv.log_tail(15)}")
        stops = [await s.stop() for s in servers]
        ok = all(o for o, _ in stops)
        emit(f"{'PASS' if ok else 'FAIL'} clean_stop{'' if ok else ':'} " + "; ".join(r for _, r in stops))
        passed, failed = passed + ok, failed + (not ok)
    finally:
        for s in servers:
            await s.kill()
        dns.stop()
    print(f"suite took {time.monotonic() - suite_started:.1f}s", flush=True)
    if failed or args.keep:
        print(f"(configs, data and logs kept in {workdir})")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pair", default="prosody,ejabberd",
                   help=f"the two servers under test, of {', '.join(SERVERS)} (default prosody,ejabberd)")
    p.add_argument("--auth", choices=("pkix", "dialback"), default="pkix",
                   help="s2s authentication: pkix (certificates from the test CA, no dialback) or "
                        "dialback (servers do not trust each other's CA; XEP-0220)")
    p.add_argument("-k", metavar="NAME", default="", help="run only scenarios whose name contains NAME")
    p.add_argument("--timeout", type=float, default=90.0, help="per-scenario timeout in seconds")
    p.add_argument("--keep", action="store_true", help="keep the temp dir even on success")
    p.add_argument("--debug-logs", action="store_true", help="servers log at debug level")
    p.add_argument("-v", "--verbose", action="store_true", help="slixmpp debug logging on stderr")
    args = p.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.CRITICAL,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")

    # SIGTERM (e.g. from `timeout`) ends the run like Ctrl-C does: the running
    # coroutine is cancelled and its `finally` blocks stop the servers and dnsmasq.
    def interrupted(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    try:
        return asyncio.run(main_async(args))
    except KeyboardInterrupt:
        print("interrupted: servers and dnsmasq stopped; the temp dir is left in place", flush=True)
        print("0 passed, 1 failed")
        return 130


if __name__ == "__main__":
    sys.exit(main())
