"""A private DNS server on loopback for the federation suite: dnsmasq as a child.

dnsmasq (the binary from Debian's `dnsmasq-base`, never the `dnsmasq` service package)
runs in the foreground (`-k`) on a free 127.0.0.1 port with no upstream servers
(`--no-resolv`), no /etc/hosts (`--no-hosts`), no configuration file, and every name
under `example.` answered locally (`--local=/example/`: a name it has no record for is
NXDOMAIN, never forwarded). It serves:

* for each federating domain D, the SRV record `_xmpp-server._tcp.D` -> `localhost`
  port P (the domain's s2s listener) — servers that resolve the SRV target with the
  system resolver (ejabberd) then find `localhost` in /etc/hosts;
* `localhost` A 127.0.0.1, for servers whose resolver does not read /etc/hosts
  (Prosody's libunbound with `hoststxt = false`).

It is stopped by its PID (SIGTERM, then SIGKILL after a grace period).

    dns = Dns(workdir, {"prosody.example": 40001, "ejabberd.example": 40002})
    dns.start()          # raises DnsError if it does not answer within the timeout
    dns.port             # UDP and TCP port on 127.0.0.1
    query(dns.port, "_xmpp-server._tcp.prosody.example", "SRV")
    dns.stop()
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

HOST = "127.0.0.1"
START_TIMEOUT = 10.0
STOP_GRACE = 5.0
TYPES = {"A": 1, "SRV": 33, "AAAA": 28}


class DnsError(RuntimeError):
    pass


def listen_port_range() -> tuple[int, int]:
    """Where the suite picks its listening ports: below the kernel's ephemeral range
    (net.ipv4.ip_local_port_range), from 10000. A port in the ephemeral range can be
    taken, while its server restarts, as the source port of any outgoing connection
    on the machine (a TCP connection to a port nobody listens on can even connect to
    itself): ejabberd once failed to start again in peer_restart with `eaddrinuse`.
    (0, 0) when that range is too small: the kernel then chooses (port 0)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0, 0
    return (10000, low - 1) if low - 10000 >= 2000 else (0, 0)


def candidate_ports(tries: int):
    """Ports to try, `tries` of them: random ones from listen_port_range(), or 0."""
    low, high = listen_port_range()
    for _ in range(tries):
        yield random.randint(low, high) if high else 0


def free_udp_tcp_port() -> int:
    """A port free on 127.0.0.1 for both UDP and TCP (dnsmasq listens on both)."""
    for candidate in candidate_ports(200):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            try:
                u.bind((HOST, candidate))
                port = u.getsockname()[1]
                t.bind((HOST, port))
            except OSError:
                continue
            return port
        finally:
            u.close()
            t.close()
    raise DnsError("no port free for both UDP and TCP on 127.0.0.1")


def query(port: int, name: str, qtype: str = "A", timeout: float = 2.0) -> tuple[int, int]:
    """One UDP query to 127.0.0.1:port; returns (rcode, number of answers)."""
    qid = random.randrange(1 << 16)
    packet = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        packet += bytes([len(label)]) + label.encode()
    packet += b"\0" + struct.pack(">HH", TYPES[qtype], 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(packet, (HOST, port))
        deadline = time.monotonic() + timeout
        while True:
            s.settimeout(max(deadline - time.monotonic(), 0.01))
            data, _ = s.recvfrom(4096)  # socket.timeout ends it
            rid, flags, _qd, an = struct.unpack(">HHHH", data[:8])
            if rid == qid:
                return flags & 0xF, an


class Dns:
    def __init__(self, workdir: Path, s2s: dict[str, int], binary: str = "dnsmasq",
                 srv: list[tuple[str, str, int, int, int]] | None = None) -> None:
        """`s2s`: domain -> s2s port, published as `_xmpp-server._tcp.<domain>` ->
        localhost:<port>. `srv`: when given, exactly these SRV records instead, each
        (owner name, target, port, priority, weight), e.g.
        ("_xmpps-server._tcp.prosody.example", "localhost", 40003, 0, 0); an empty list
        publishes no SRV record at all (only `localhost` A)."""
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.s2s = dict(s2s)
        if srv is None:
            srv = [(f"_xmpp-server._tcp.{d}", "localhost", p, 0, 0) for d, p in sorted(self.s2s.items())]
        self.srv = list(srv)
        self.binary = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/sbin") or binary
        self.port = 0
        self.log_path = workdir / "dnsmasq.log"
        self.proc: subprocess.Popen | None = None
        self.stopped = False  # stop() was called

    def argv(self) -> list[str]:
        args = [
            self.binary, "-k",
            f"--port={self.port}", f"--listen-address={HOST}", "--bind-interfaces",
            "--no-resolv", "--no-hosts", "--conf-file=/dev/null", "--pid-file=",
            "--local=/example/", "--log-facility=-", "--log-queries",
            "--host-record=localhost,127.0.0.1",
        ]
        for name, target, port, priority, weight in self.srv:
            args.append(f"--srv-host={name},{target},{port},{priority},{weight}")
        return args

    def start(self, port: int = 0) -> "Dns":
        """Start dnsmasq on `port`, or on a free port when 0."""
        if not os.path.exists(self.binary):
            raise DnsError(f"dnsmasq not found ({self.binary}); install Debian's dnsmasq-base")
        self.port = port or free_udp_tcp_port()
        self.stopped = False
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT
        probe = self.srv[0][0] if self.srv else "localhost"
        kind = "SRV" if self.srv else "A"
        while True:
            if self.proc.poll() is not None:
                raise DnsError(f"dnsmasq exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                rcode, answers = query(self.port, probe, kind, timeout=0.5)
                if rcode == 0 and answers > 0:
                    return self
                raise DnsError(f"dnsmasq answered {probe} {kind} with rcode {rcode}, {answers} answers")
            except (socket.timeout, ConnectionRefusedError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise DnsError(f"dnsmasq did not answer on {HOST}:{self.port} within {START_TIMEOUT}s")
            # Polling a child process that has no readiness signal: one query per 50 ms,
            # bounded by START_TIMEOUT.
            time.sleep(0.05)

    def exited(self) -> int | None:
        """dnsmasq's exit status if it has exited (without stop() being called), else None."""
        if self.proc is None or self.stopped:
            return None
        return self.proc.poll()

    def stop(self) -> None:
        self.stopped = True
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(STOP_GRACE)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


if __name__ == "__main__":  # a quick look: python3 dns.py DIR DOMAIN=PORT...
    import sys

    d = Dns(Path(sys.argv[1]), {k: int(v) for k, v in (a.split("=") for a in sys.argv[2:])}).start()
    try:
        for dom in d.s2s:
            print(dom, query(d.port, f"_xmpp-server._tcp.{dom}", "SRV"))
        print("localhost A", query(d.port, "localhost", "A"))
        print("nope.example A", query(d.port, "nope.example", "A"))
    finally:
        d.stop()
    print(d.log_tail())
