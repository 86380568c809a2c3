#!/usr/bin/env python3
"""Herald interop suite: real slixmpp clients against a real `herald serve`.

    python3 interop/scenarios/run.py [--herald PATH] [-k NAME] [-v]

Starts a private server (temporary data dir, free loopback ports), creates the
accounts the scenarios need with `herald user add`, runs every scenario with a
timeout, stops the server with SIGTERM and checks it exits 0 within 10 s. Prints one
line per scenario and ends with `N passed, M failed`; the exit code is 0 only if
nothing failed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

from clients import Client, ScenarioError  # noqa: E402
from gosendxmpp import GoSendxmpp  # noqa: E402
from relay import Relay  # noqa: E402
from scenarios import SCENARIOS, Scenario  # noqa: E402

DOMAIN = "localhost"
HOST = "127.0.0.1"
SHUTDOWN_GRACE = 10.0
STARTUP_TIMEOUT = 30.0
SHUTDOWN_WATCHER = "shutdown-watcher"
SHUTDOWN_WATCHER_PW = "watching the end"


def free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on 127.0.0.1 (held open together while choosing)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Server:
    """One `herald serve` process with its configuration and temp directory."""

    def __init__(self, herald: Path, workdir: Path, extra_c2s: str = "") -> None:
        self.herald = herald
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.extra_c2s = extra_c2s
        self.data_dir = workdir / "data"
        self.config = workdir / "herald.toml"
        self.stdout_path = workdir / "herald.stdout"
        self.stderr_path = workdir / "herald.stderr"
        self.c2s_port, self.tls_port, self.admin_port = free_ports(3)
        self.proc: asyncio.subprocess.Process | None = None
        self.ca_file: str = ""

    def write_config(self) -> None:
        self.config.write_text(
            f"""# Written by interop/scenarios/run.py
[server]
domains = ["{DOMAIN}"]
data_dir = "{self.data_dir}"

# SIP off: its default ports are fixed (5060/5061) and would collide.
[sip]
listen_udp = []
listen_tcp = []
listen_tls = []

[c2s]
listen = ["{HOST}:{self.c2s_port}"]
listen_tls = ["{HOST}:{self.tls_port}"]
auth_failure_delay_ms = 100
{self.extra_c2s}
[admin]
listen = "{HOST}:{self.admin_port}"

[log]
level = "info"
"""
        )

    async def start(self) -> None:
        self.write_config()
        out = open(self.stdout_path, "ab")
        err = open(self.stderr_path, "ab")
        self.proc = await asyncio.create_subprocess_exec(
            str(self.herald), "serve", "--config", str(self.config),
            stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=err,
        )
        out.close()
        err.close()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if self.proc.returncode is not None:
                raise RuntimeError(
                    f"herald serve exited with {self.proc.returncode} during startup:\n{self.stderr_tail()}"
                )
            if await port_open(HOST, self.c2s_port) and await port_open(HOST, self.tls_port):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"herald did not listen on {HOST}:{self.c2s_port} within {STARTUP_TIMEOUT}s")
            # Polling an external process: a connection attempt every 20 ms until both
            # ports accept (the observable effect of startup), bounded by STARTUP_TIMEOUT.
            await asyncio.sleep(0.02)
        self.ca_file = self.find_ca()

    def find_ca(self) -> str:
        """The dev CA: from the banner if printed, else <data_dir>/tls/dev-ca.pem."""
        for line in self.stdout_path.read_text(errors="replace").splitlines():
            if "development CA" in line and ":" in line:
                path = line.rsplit(": ", 1)[-1].strip()
                if Path(path).is_file():
                    return path
        path = self.data_dir / "tls" / "dev-ca.pem"
        if not path.is_file():
            raise RuntimeError(f"no development CA at {path}")
        return str(path)

    async def cli(self, *args: str, timeout: float = 30.0) -> str:
        """Run `herald ARGS --config FILE`; returns stdout, raises on a non-zero exit."""
        proc = await asyncio.create_subprocess_exec(
            str(self.herald), *args, "--config", str(self.config),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise ScenarioError(f"`herald {' '.join(args)}` did not finish within {timeout}s") from None
        if proc.returncode != 0:
            raise ScenarioError(
                f"`herald {' '.join(args)}` exited {proc.returncode}: {err.decode(errors='replace').strip()}"
            )
        return out.decode(errors="replace")

    async def add_user(self, name: str, password: str) -> None:
        out = await self.cli("user", "add", name, "--password", password)
        if f"{name}@{DOMAIN}" not in out:
            raise ScenarioError(f"`herald user add {name}` printed {out.strip()!r}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def stop(self) -> tuple[bool, str]:
        """SIGTERM, then expect exit status 0 within the grace period."""
        if self.proc is None:
            return False, "server was never started"
        if self.proc.returncode is not None:
            return False, f"server had already exited with {self.proc.returncode}"
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = await asyncio.wait_for(self.proc.wait(), SHUTDOWN_GRACE)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            return False, f"no exit within {SHUTDOWN_GRACE:.0f}s of SIGTERM (killed)"
        took = time.monotonic() - started
        if rc != 0:
            return False, f"exit status {rc} after SIGTERM:\n{self.stderr_tail()}"
        return True, f"exit 0 after SIGTERM in {took:.2f}s"

    async def kill(self) -> None:
        if self.alive():
            self.proc.kill()
            await self.proc.wait()

    def stderr_tail(self, lines: int = 15) -> str:
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


async def port_open(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
    except (OSError, asyncio.TimeoutError):
        return False
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return True


class Context:
    """What a scenario sees: its own accounts, and clients that it may start."""

    def __init__(self, server: Server, scenario: Scenario) -> None:
        self.server = server
        self.scenario = scenario
        self.domain = DOMAIN
        self.clients: list[Client] = []
        self.servers: list[Server] = []
        self.relays: list[Relay] = []
        self.go_clients: list[GoSendxmpp] = []

    def account(self, user: str) -> str:
        """The account name for this scenario's `user` (accounts are per scenario)."""
        return f"{self.scenario.name}-{user}"

    def password(self, user: str) -> str:
        return f"pw {self.account(user)} !"

    def jid(self, user: str, resource: str | None = None) -> str:
        bare = f"{self.account(user)}@{self.domain}"
        return f"{bare}/{resource}" if resource else bare

    def make_client(self, user: str, resource: str = "interop", *, password: str | None = None,
                    direct_tls: bool = False, server: Server | None = None, via: Relay | None = None,
                    **kwargs) -> Client:
        """A client of the suite's server (or of `server`, one from spawn_server),
        connecting through `via` (a relay from `relay()`) if given."""
        srv = server or self.server
        port = srv.tls_port if direct_tls else srv.c2s_port
        c = Client(
            self.jid(user, resource),
            self.password(user) if password is None else password,
            host=HOST,
            port=via.port if via is not None else port,
            ca_file=srv.ca_file,
            direct_tls=direct_tls,
            **kwargs,
        )
        self.clients.append(c)
        return c

    async def client(self, user: str, resource: str = "interop", **kwargs) -> Client:
        """A started client (session established, roster fetched, initial presence sent
        unless `presence=None`)."""
        kwargs.setdefault("presence", {})
        return await self.make_client(user, resource, **kwargs).start()

    def go_sendxmpp(self, user: str, server: Server | None = None) -> GoSendxmpp:
        """go-sendxmpp for this scenario's `user` (see gosendxmpp.py), trusting the
        server's dev CA; whatever it still runs is killed at the end of the scenario."""
        srv = server or self.server
        workdir = srv.workdir / "go-sendxmpp" / self.account(user)
        g = GoSendxmpp(workdir, self.jid(user), self.password(user), srv.ca_file)
        self.go_clients.append(g)
        return g

    def address(self, server: Server | None = None, direct_tls: bool = False) -> str:
        """HOST:PORT of the server's STARTTLS (or direct TLS) client port."""
        srv = server or self.server
        return f"{HOST}:{srv.tls_port if direct_tls else srv.c2s_port}"

    async def add_user(self, user: str, server: Server | None = None) -> None:
        await (server or self.server).add_user(self.account(user), self.password(user))

    async def relay(self, server: Server | None = None, direct_tls: bool = False) -> Relay:
        """A started relay to a client port of the server (see relay.py); closed at the
        end of the scenario."""
        srv = server or self.server
        relay = await Relay(HOST, srv.tls_port if direct_tls else srv.c2s_port).start()
        self.relays.append(relay)
        return relay

    async def spawn_server(self, name: str, extra_c2s: str = "") -> Server:
        """Start a private server for this scenario, in <workdir>/<scenario>-<name>
        (the same name again reuses that data directory: a restart). Killed at the end
        of the scenario if still running."""
        workdir = self.server.workdir / f"{self.scenario.name}-{name}"
        srv = Server(self.server.herald, workdir, extra_c2s)
        self.servers.append(srv)
        await srv.start()
        return srv

    async def close_all(self) -> None:
        await asyncio.gather(*(c.stop(wait=2.0) for c in self.clients), return_exceptions=True)
        for c in self.clients:
            await c.kill()
        for g in self.go_clients:
            await g.close()
        for relay in self.relays:
            await relay.close()
        for srv in self.servers:
            await srv.kill()


async def run_scenario(server: Server, sc: Scenario, timeout: float) -> tuple[bool, str]:
    ctx = Context(server, sc)
    started = time.monotonic()
    ok, reason = True, ""
    try:
        await asyncio.wait_for(sc.func(ctx), timeout)
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
    if ok and not server.alive():
        ok, reason = False, f"server exited with {server.proc.returncode}:\n{server.stderr_tail()}"
    took = time.monotonic() - started
    if not reason:
        return ok, f"({took:.1f}s)"
    first, _, details = reason.partition("\n")
    return ok, f"{first} ({took:.1f}s)" + (f"\n{details}" if details else "")


def emit(text: str) -> None:
    """One line per result; any details (traceback, server log) indented below it."""
    first, *rest = text.rstrip("\n").splitlines() or [""]
    print(first, flush=True)
    for line in rest:
        print(f"    | {line}", flush=True)


async def shutdown_with_client(server: Server) -> tuple[bool, str]:
    """SIGTERM with a client still connected: it must be told (system-shutdown stream
    error or at least a closed stream) and the server must exit 0 within the grace."""
    watcher = Client(f"{SHUTDOWN_WATCHER}@{DOMAIN}/watch", SHUTDOWN_WATCHER_PW, host=HOST,
                     port=server.c2s_port, ca_file=server.ca_file, presence={})
    try:
        await watcher.start()
    except ScenarioError as e:
        return False, f"could not connect the shutdown watcher: {e}"
    ok, reason = await server.stop()
    # The server has exited, so the client's connection is closed or about to be
    # noticed as closed: wait (bounded) for slixmpp's disconnected event.
    try:
        await watcher.wait_event("disconnected", "the connection to end", timeout=5)
    except ScenarioError:
        await watcher.kill()
        return False, f"{reason}; but the connected client was not disconnected"
    await watcher.kill()
    errors = [p for n, p in watcher.events if n == "stream_error"]
    if ok and errors and errors[0]["condition"] != "system-shutdown":
        return False, f"{reason}; the client got stream error {errors[0]['condition']!r}, want system-shutdown"
    told = f"client got <{errors[0]['condition']}/>" if errors else "client's stream closed without a stream error"
    return ok, f"{reason}; {told}"


async def main_async(args: argparse.Namespace) -> int:
    selected = [s for s in SCENARIOS if not args.k or args.k in s.name]
    if not selected:
        print(f"FAIL selection: no scenario matches -k {args.k!r}; "
              f"scenarios: {', '.join(s.name for s in SCENARIOS)}")
        print("0 passed, 1 failed")
        return 1
    herald = Path(args.herald).resolve()
    if not os.access(herald, os.X_OK):
        print(f"FAIL setup: herald binary not found at {herald} "
              f"(build it: cargo build -p herald-edge --bin herald)")
        print("0 passed, 1 failed")
        return 1

    workdir = Path(tempfile.mkdtemp(prefix="herald-interop-"))
    server = Server(herald, workdir)
    passed = failed = 0
    suite_started = time.monotonic()
    try:
        try:
            await server.start()
            print(f"herald on {HOST}:{server.c2s_port} (STARTTLS), {HOST}:{server.tls_port} (TLS); "
                  f"data in {workdir}", flush=True)
            accounts = [(Context(server, s).account(u), Context(server, s).password(u))
                        for s in selected for u in s.users]
            accounts.append((SHUTDOWN_WATCHER, SHUTDOWN_WATCHER_PW))
            gate = asyncio.Semaphore(3)

            async def add(name: str, password: str) -> None:
                async with gate:
                    await server.add_user(name, password)

            await asyncio.gather(*(add(n, p) for n, p in accounts))
        except (RuntimeError, ScenarioError, OSError) as e:
            emit(f"FAIL setup: {e}\nserver stderr:\n{server.stderr_tail()}")
            await server.kill()
            print(f"(server log and data kept in {workdir})")
            print(f"0 passed, {len(selected) + 1} failed")
            return 1

        for sc in selected:
            ok, reason = await run_scenario(server, sc, args.timeout)
            if sc.xfail and not ok:
                emit(f"PASS {sc.name} [expected failure: {sc.xfail}] -- got: {reason}")
                passed += 1
            elif sc.xfail and ok and sc.strict:
                emit(f"FAIL {sc.name} unexpectedly passed; remove its xfail marker ({sc.xfail}) {reason}")
                failed += 1
            elif sc.xfail and ok:
                emit(f"PASS {sc.name} [expected failure did not show this run (racy): {sc.xfail}] {reason}")
                passed += 1
            elif ok:
                emit(f"PASS {sc.name} {reason}")
                passed += 1
            else:
                emit(f"FAIL {sc.name}: {reason}")
                failed += 1

        ok, reason = await shutdown_with_client(server)
        panics = [line for line in server.stderr_path.read_text(errors="replace").splitlines()
                  if "panicked" in line]
        if ok and panics:
            ok, reason = False, f"server log shows a panic: {panics[0]}"
        emit(f"{'PASS' if ok else 'FAIL'} clean_shutdown{'' if ok else ':'} {reason}")
        passed, failed = passed + ok, failed + (not ok)
    finally:
        await server.kill()
    print(f"suite took {time.monotonic() - suite_started:.1f}s", flush=True)
    if failed or args.keep:
        print(f"(server log and data kept in {workdir})")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--herald", default=str(REPO / "target" / "debug" / "herald"),
                   help="path to the herald binary (default: target/debug/herald)")
    p.add_argument("-k", metavar="NAME", default="", help="run only scenarios whose name contains NAME")
    p.add_argument("--timeout", type=float, default=45.0, help="per-scenario timeout in seconds")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (config, data, server log)")
    p.add_argument("-v", "--verbose", action="store_true", help="slixmpp debug logging (stanzas) on stderr")
    args = p.parse_args()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.CRITICAL,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
