"""A private `herald serve` for one attack: temporary data directory, free loopback
ports, accounts made with `herald user add`, figures read from /proc and /metrics,
and a stop by PID (SIGTERM, then SIGKILL after a grace period).

The configuration written holds only keys that both the before and the after binary
know, so every limit is the binary's own default.
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import shutil
import signal
import socket
import tempfile
import time
from pathlib import Path

HOST = "127.0.0.1"
STARTUP_TIMEOUT = 30.0
SHUTDOWN_GRACE = 10.0
MAX_METRICS_BYTES = 4 << 20


def free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on 127.0.0.1 (held together while choosing)."""
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


async def port_open(port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 1.0)
    except (OSError, asyncio.TimeoutError):
        return False
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return True


class Herald:
    """One `herald serve` process started and stopped by this tool."""

    def __init__(self, binary: Path, keep: bool = False, nofile: int | None = None,
                 log_level: str = "warn") -> None:
        self.binary = binary
        self.log_level = log_level
        self.keep = keep
        self.nofile = nofile
        self.workdir = Path(tempfile.mkdtemp(prefix="herald-attack-"))
        self.data_dir = self.workdir / "data"
        self.config = self.workdir / "herald.toml"
        self.stderr_path = self.workdir / "herald.stderr"
        self.stdout_path = self.workdir / "herald.stdout"
        self.c2s_port, self.tls_port, self.admin_port = free_ports(3)
        self.proc: asyncio.subprocess.Process | None = None
        self.ca_file = ""
        self.token = ""

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc is not None else 0

    def write_config(self) -> None:
        self.config.write_text(
            f"""# Written by interop/attacks/attack.py: listeners and data_dir only; every
# limit is the binary's default.
[server]
domains = ["localhost"]
data_dir = "{self.data_dir}"

# SIP off: its default ports are fixed (5060/5061) and would collide.
[sip]
listen_udp = []
listen_tcp = []
listen_tls = []

[c2s]
listen = ["{HOST}:{self.c2s_port}"]
listen_tls = ["{HOST}:{self.tls_port}"]

[admin]
listen = "{HOST}:{self.admin_port}"

[log]
level = "{self.log_level}"
"""
        )

    async def start(self) -> None:
        self.write_config()
        out = open(self.stdout_path, "ab")
        err = open(self.stderr_path, "ab")
        nofile = self.nofile

        def limit_fds() -> None:
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.proc = await asyncio.create_subprocess_exec(
            str(self.binary), "serve", "--config", str(self.config),
            stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=err,
            preexec_fn=limit_fds if nofile is not None else None,
        )
        out.close()
        err.close()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if self.proc.returncode is not None:
                raise RuntimeError(f"herald exited with {self.proc.returncode} at startup:\n{self.stderr_tail()}")
            if await port_open(self.c2s_port) and await port_open(self.tls_port):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("herald did not listen within 30 s")
            # Polling an outside process until its ports accept, bounded by the deadline.
            await asyncio.sleep(0.05)
        ca = self.data_dir / "tls" / "dev-ca.pem"
        if not ca.is_file():
            raise RuntimeError(f"no development CA at {ca}")
        self.ca_file = str(ca)
        token = self.data_dir / "admin.token"
        self.token = token.read_text().strip() if token.is_file() else ""

    async def add_user(self, name: str, password: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            str(self.binary), "user", "add", name, "--password", password, "--config", str(self.config),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, err = await asyncio.wait_for(proc.communicate(), 30)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise RuntimeError(f"`herald user add {name}` did not finish in 30 s") from None
        if proc.returncode != 0:
            raise RuntimeError(f"`herald user add {name}` exited {proc.returncode}: {err.decode(errors='replace')}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def rss_kib(self) -> tuple[int, int]:
        """(VmRSS, VmHWM) in KiB; (0, 0) when the process is gone."""
        rss = hwm = 0
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss = int(line.split()[1])
                    elif line.startswith("VmHWM:"):
                        hwm = int(line.split()[1])
        except (OSError, ValueError):
            pass
        return rss, hwm

    def open_fds(self) -> int:
        try:
            return len(os.listdir(f"/proc/{self.pid}/fd"))
        except OSError:
            return -1

    def db_bytes(self) -> dict[str, int]:
        sizes = {}
        for p in sorted(self.data_dir.glob("herald.db*")):
            try:
                sizes[p.name] = p.stat().st_size
            except OSError:
                pass
        return sizes

    def cpu_secs(self) -> float:
        """User plus system CPU time the server has used, in seconds (-1 if gone)."""
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return -1.0

    async def metrics(self, timeout: float = 5.0) -> dict[str, float]:
        """`/metrics` as {series: value}; {} when unreachable."""
        if not self.token:
            # The token file may appear a moment after the client ports open.
            token = self.data_dir / "admin.token"
            self.token = token.read_text().strip() if token.is_file() else ""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(HOST, self.admin_port), timeout)
        except (OSError, asyncio.TimeoutError):
            return {}
        try:
            writer.write(
                f"GET /metrics HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {self.token}\r\n"
                f"Connection: close\r\n\r\n".encode())
            await writer.drain()
            body = await asyncio.wait_for(reader.read(MAX_METRICS_BYTES), timeout)
            while True:
                more = await asyncio.wait_for(reader.read(MAX_METRICS_BYTES), timeout)
                if not more or len(body) > MAX_METRICS_BYTES:
                    break
                body += more
        except (OSError, asyncio.TimeoutError):
            return {}
        finally:
            writer.close()
        text = body.decode(errors="replace").partition("\r\n\r\n")[2]
        out: dict[str, float] = {}
        for line in text.splitlines():
            if not line.startswith("herald_"):
                continue
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                pass
        return out

    async def stop(self) -> dict[str, object]:
        """SIGTERM by PID; SIGKILL after the grace period. Returns what happened."""
        if self.proc is None:
            return {"stopped": "never started"}
        if self.proc.returncode is not None:
            return {"stopped": "had exited", "exit": self.proc.returncode, "stderr_tail": self.stderr_tail()}
        started = time.monotonic()
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            rc = await asyncio.wait_for(self.proc.wait(), SHUTDOWN_GRACE)
        except asyncio.TimeoutError:
            os.kill(self.proc.pid, signal.SIGKILL)
            rc = await self.proc.wait()
            return {"stopped": "SIGKILL after no exit within 10 s of SIGTERM", "exit": rc}
        return {"stopped": "SIGTERM", "exit": rc, "stop_secs": round(time.monotonic() - started, 2)}

    def panics(self) -> list[str]:
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return []
        return [line for line in text.splitlines() if "panicked" in line][:5]

    def log_lines(self, needle: str, limit: int = 5) -> list[str]:
        """Server log lines containing `needle`, colour codes removed."""
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return []
        text = re.sub(r"\x1b\[[0-9;]*m", "", text)
        return [line for line in text.splitlines() if needle in line][:limit]

    def stderr_tail(self, lines: int = 10) -> str:
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def cleanup(self) -> None:
        if not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)


def tcp_sockets(local_port: int) -> dict[str, object]:
    """Server-side sockets of `local_port` from /proc/net/tcp: count by state, the
    bytes waiting in their send queues (kernel memory, not in the server's RSS), and
    the connections waiting in the listen backlog (not accepted yet)."""
    states = {"01": "ESTABLISHED", "04": "FIN_WAIT1", "05": "FIN_WAIT2", "06": "TIME_WAIT",
              "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING"}
    by_state: dict[str, int] = {}
    tx = 0
    backlog = 0
    try:
        with open("/proc/net/tcp") as f:
            next(f, None)
            for line in f:
                parts = line.split()
                if len(parts) < 5:
                    continue
                port = int(parts[1].rsplit(":", 1)[1], 16)
                if port != local_port:
                    continue
                if parts[3] == "0A":
                    backlog = int(parts[4].split(":")[1], 16)
                    continue
                name = states.get(parts[3], parts[3])
                by_state[name] = by_state.get(name, 0) + 1
                tx += int(parts[4].split(":")[0], 16)
    except (OSError, ValueError, IndexError):
        pass
    return {"by_state": by_state, "send_queue_bytes": tx, "listen_backlog": backlog}
