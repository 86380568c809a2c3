"""go-sendxmpp, a command-line XMPP client written in Go (Debian package `go-sendxmpp`),
run as a subprocess against the Herald under test.

Each instance has its own directory: the account's configuration file (`-f`, mode
0600, so the password is never on a command line), and a private HOME and XDG
directories, so nothing is read from or written to the real ones. TLS certificates
are verified: Go reads its trusted roots from `SSL_CERT_FILE`, set to the server's
development CA, and `SSL_CERT_DIR` points at an empty directory, so the system's roots
are not trusted. Every run is bounded by a timeout; a process still running is killed
by its own handle, never by name.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Awaitable, Callable, TypeVar

from clients import ScenarioError

BINARY = "go-sendxmpp"
# go-sendxmpp's own connection timeout (`--timeout`, seconds); our bounds are above it.
CONNECT_TIMEOUT = 10

T = TypeVar("T")


def binary() -> str:
    path = shutil.which(BINARY)
    if path is None:
        raise ScenarioError(f"{BINARY} is not installed (apt-get install {BINARY})")
    return path


class GoSendxmpp:
    """One account's go-sendxmpp: `send()` runs it once, `listen()` starts `-l`."""

    def __init__(self, workdir: Path, jid: str, password: str, ca_file: str) -> None:
        self.binary = binary()
        self.jid = jid
        self.workdir = workdir
        home = workdir / "home"
        no_roots = workdir / "no-system-roots"
        for d in (home, no_roots):
            d.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "config"
        fd = os.open(self.config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"username: {jid}\npassword: {password}\n")
        os.chmod(self.config, 0o600)
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "SSL_CERT_FILE": ca_file,
            "SSL_CERT_DIR": str(no_roots),
            "LANG": "C.UTF-8",
        }
        self.procs: list[asyncio.subprocess.Process] = []

    def _args(self, address: str, direct_tls: bool) -> list[str]:
        args = [self.binary, "-f", str(self.config), "-j", address, "--timeout", str(CONNECT_TIMEOUT)]
        if direct_tls:
            args.append("-t")
        return args

    async def send(self, address: str, recipient: str, body: str, *, direct_tls: bool = False,
                   timeout: float = 30.0) -> None:
        """`go-sendxmpp -f CONFIG -j ADDRESS [-t] RECIPIENT` with `body` on stdin; fails
        unless it exits 0 within `timeout`."""
        proc = await asyncio.create_subprocess_exec(
            *self._args(address, direct_tls), recipient,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=self.env, cwd=self.workdir,
        )
        self.procs.append(proc)
        try:
            out, err = await asyncio.wait_for(proc.communicate(body.encode()), timeout)
        except asyncio.TimeoutError:
            await self._kill(proc)
            raise ScenarioError(f"{BINARY} ({self.jid} to {recipient}) did not exit within {timeout:g}s") from None
        if proc.returncode != 0:
            raise ScenarioError(
                f"{BINARY} ({self.jid} to {recipient} via {address}{' direct TLS' if direct_tls else ''}) "
                f"exited {proc.returncode}: {(err or out).decode(errors='replace').strip()}"
            )

    async def listen(self, address: str, *, direct_tls: bool = False) -> "Listener":
        """`go-sendxmpp -l`: logs in and prints every message it receives."""
        proc = await asyncio.create_subprocess_exec(
            *self._args(address, direct_tls), "-l",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=self.env, cwd=self.workdir,
        )
        self.procs.append(proc)
        return Listener(self, proc)

    async def close(self) -> None:
        """Kill what is still running (each process by its own handle)."""
        for proc in self.procs:
            await self._kill(proc)

    @staticmethod
    async def _kill(proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is None:
            try:
                proc.kill()
            except ProcessLookupError:
                pass
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except asyncio.TimeoutError:
            pass


class Listener:
    """A running `go-sendxmpp -l`: its stdout lines, as they come."""

    def __init__(self, owner: GoSendxmpp, proc: asyncio.subprocess.Process) -> None:
        self.owner = owner
        self.proc = proc
        self.lines: list[str] = []

    async def wait_line(self, pred: Callable[[str], bool], what: str, timeout: float = 10.0) -> str:
        """The first stdout line (so far or to come) for which `pred` holds."""
        for line in self.lines:
            if pred(line):
                return line
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        assert self.proc.stdout is not None
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise ScenarioError(f"{BINARY} -l: no {what} within {timeout:g}s; stdout: {self.lines!r}")
            try:
                raw = await asyncio.wait_for(self.proc.stdout.readline(), left)
            except asyncio.TimeoutError:
                continue
            if not raw:
                await self.proc.wait()
                err = await self.proc.stderr.read() if self.proc.stderr else b""
                raise ScenarioError(
                    f"{BINARY} -l exited {self.proc.returncode} before {what}: "
                    f"{err.decode(errors='replace').strip()}; stdout: {self.lines!r}"
                )
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            if pred(line):
                return line

    async def while_running(self, aw: Awaitable[T], what: str) -> T:
        """Await `aw`, but fail at once if go-sendxmpp exits first (with its stderr)."""
        task = asyncio.ensure_future(aw)
        exited = asyncio.ensure_future(self.proc.wait())
        try:
            done, _ = await asyncio.wait({task, exited}, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                return task.result()
            err = await self.proc.stderr.read() if self.proc.stderr else b""
            raise ScenarioError(
                f"{BINARY} -l exited {self.proc.returncode} while waiting for {what}: "
                f"{err.decode(errors='replace').strip()}"
            )
        finally:
            for t in (task, exited):
                if not t.done():
                    t.cancel()

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within 5 s."""
        if self.proc.returncode is None:
            try:
                self.proc.terminate()
                await asyncio.wait_for(self.proc.wait(), 5)
            except (ProcessLookupError, asyncio.TimeoutError):
                pass
        await GoSendxmpp._kill(self.proc)
