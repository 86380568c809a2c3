#!/usr/bin/env python3
"""Herald SIP interop suite: real SIP tools (SIPp, sipsak, pjsua2) against a registrar
and presence server.

    python3 interop/sip/run.py --server herald|kamailio [--herald PATH] [-k NAME] [-v]

Starts the server under test on free loopback ports (UDP and TCP on one port number,
TLS too for Herald), creates the users alice, bob and carol, waits until the SIP UDP
port answers an OPTIONS, runs every scenario that applies to that server with a
timeout, and stops the server (only the process it started, by PID). Prints
`PASS name` / `FAIL name: reason` per scenario and ends with `N passed, M failed`;
the exit code is 0 only if nothing failed.

Kamailio (interop/sip/kamailio/kamailio.cfg) is the reference server the scenarios
were validated against; `--server herald` runs the same scenarios against
`herald serve`, plus the Herald-only ones (bad input, TLS, mixed SIP/XMPP).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

import siplib  # noqa: E402
from common import (DOMAIN, HOST, MIXED_USERS, REALM, ROSTER_PAIRS, SCENARIOS,  # noqa: E402
                    USERS, VERBOSE, Scenario, ScenarioError, check, free_port, log)
from siplib import SipError  # noqa: E402

SIPP_DIR = HERE / "sipp"
STARTUP_TIMEOUT = 30.0

# ---------------------------------------------------------------------------- ports

def wait_options(port: int, proc: subprocess.Popen, what: str, stderr_tail) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} during startup:\n{stderr_tail()}")
        if siplib.options_probe(port, timeout=0.5) is not None:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer OPTIONS on udp {HOST}:{port} within "
                               f"{STARTUP_TIMEOUT:g}s:\n{stderr_tail()}")
        # Polling an external process until it answers: bounded by STARTUP_TIMEOUT.
        time.sleep(0.1)


# ---------------------------------------------------------------------------- servers


class ServerBase:
    name = "?"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.sip_port = free_port()  # UDP and TCP
        self.tls_port: int | None = None
        self.proc: subprocess.Popen | None = None
        self.stdout_path = workdir / f"{self.name}.stdout"
        self.stderr_path = workdir / f"{self.name}.stderr"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stderr_tail(self, lines: int = 15) -> str:
        text = ""
        for p in (self.stderr_path, self.stdout_path):
            try:
                text += p.read_text(errors="replace")
            except OSError:
                pass
        return "\n".join(text.splitlines()[-lines:])

    def _spawn(self, cmd: list[str]) -> None:
        log("starting " + " ".join(cmd))
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            # Its own process group: kamailio forks workers, and stop() signals exactly
            # the group this suite created.
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         start_new_session=True, cwd=self.workdir)

    def stop(self) -> tuple[bool, str]:
        if self.proc is None:
            return False, "server was never started"
        if self.proc.poll() is not None:
            return False, f"server had already exited with {self.proc.returncode}"
        pgid = self.proc.pid  # start_new_session: the group id is our child's pid
        started = time.monotonic()
        os.killpg(pgid, signal.SIGTERM)
        try:
            rc = self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.proc.wait()
            return False, "no exit within 10s of SIGTERM (killed)"
        # Workers of our group that outlive the main process (kamailio) go too.
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return (rc == 0, f"exit {rc} after SIGTERM in {time.monotonic() - started:.2f}s")

    def kill(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()


class Herald(ServerBase):
    name = "herald"

    def __init__(self, workdir: Path, binary: Path) -> None:
        super().__init__(workdir)
        self.binary = binary
        self.c2s_port, self.c2s_tls_port, self.admin_port = free_port(), free_port(), free_port()
        self.tls_port = free_port()
        self.data_dir = workdir / "data"
        self.config = workdir / "herald.toml"

    def write_config(self) -> None:
        self.config.write_text(
            f"""# Written by interop/sip/run.py
[server]
domains = ["{DOMAIN}"]
data_dir = "{self.data_dir}"
[c2s]
listen = ["{HOST}:{self.c2s_port}"]
listen_tls = ["{HOST}:{self.c2s_tls_port}"]
[admin]
listen = "{HOST}:{self.admin_port}"
[log]
level = "{os.environ.get('HERALD_LOG', 'info')}"
[sip]
listen_udp = ["{HOST}:{self.sip_port}"]
listen_tcp = ["{HOST}:{self.sip_port}"]
listen_tls = ["{HOST}:{self.tls_port}"]
realm = "{REALM}"
"""
        )

    def add_user(self, name: str, password: str) -> None:
        cmd = [str(self.binary), "--config", str(self.config), "user", "add", f"{name}@{DOMAIN}"]
        r = subprocess.run(cmd, input=password + "\n", capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"`herald user add {name}@{DOMAIN}` exited {r.returncode}: {r.stderr.strip()}")

    def start(self) -> None:
        self.write_config()
        self._spawn([str(self.binary), "--config", str(self.config), "serve"])
        wait_options(self.sip_port, self.proc, "herald serve", self.stderr_tail)
        # `herald user add` needs the database `herald serve` creates: users come after.
        for user, pw in {**USERS, **MIXED_USERS}.items():
            self.add_user(user, pw)
        roster = self.workdir / "roster.csv"
        roster.write_text("".join(f"{a},{b}@{DOMAIN},{b},,both\n{b},{a}@{DOMAIN},{a},,both\n"
                                  for a, b in ROSTER_PAIRS))
        cmd = [str(self.binary), "--config", str(self.config), "roster", "import", str(roster)]
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"`herald roster import` exited {r.returncode}: {r.stderr.strip()}")

    def ca_file(self) -> str | None:
        for line in self.stdout_path.read_text(errors="replace").splitlines():
            if "development CA" in line and ":" in line:
                path = line.rsplit(": ", 1)[-1].strip()
                if Path(path).is_file():
                    return path
        path = self.data_dir / "tls" / "dev-ca.pem"
        return str(path) if path.is_file() else None


class Kamailio(ServerBase):
    name = "kamailio"
    CFG = HERE / "kamailio" / "kamailio.cfg"
    TEMPLATES = Path("/usr/share/kamailio/dbtext/kamailio")
    TABLES = ["version", "subscriber", "presentity", "active_watchers", "watchers", "xcap", "pua"]

    def __init__(self, workdir: Path, binary: str = "/usr/sbin/kamailio") -> None:
        super().__init__(workdir)
        self.binary = binary
        self.db = workdir / "db"
        self.rundir = workdir / "run"

    def write_db(self) -> None:
        """The db_text tables: the packaged headers, every string column nullable (a row
        with an empty string column does not load back otherwise), and the subscribers
        with their digest HA1 (MD5(user:realm:password)) and HA1B (user@domain form)."""
        self.db.mkdir(parents=True, exist_ok=True)
        for t in self.TABLES:
            src = self.TEMPLATES / t
            text = src.read_text()
            if t != "version":
                header = re.sub(r"\((string)\)", r"(\1,null)", text.splitlines()[0])
                text = header + "\n"
            if t == "subscriber":
                for i, (u, pw) in enumerate(USERS.items(), 1):
                    ha1 = hashlib.md5(f"{u}:{REALM}:{pw}".encode()).hexdigest()
                    ha1b = hashlib.md5(f"{u}@{DOMAIN}:{REALM}:{pw}".encode()).hexdigest()
                    text += f"{i}:{u}:{DOMAIN}:{pw}:{ha1}:{ha1b}\n"
            (self.db / t).write_text(text)

    def start(self) -> None:
        if not os.access(self.binary, os.X_OK):
            raise RuntimeError(f"kamailio not found at {self.binary} (apt-get install kamailio "
                               f"kamailio-presence-modules)")
        self.write_db()
        self.rundir.mkdir(parents=True, exist_ok=True)
        self._spawn([self.binary, "-DD", "-E", "-f", str(self.CFG),
                     "-A", f'DBURL="text://{self.db}"', "-Y", str(self.rundir),
                     "-P", str(self.rundir / "kamailio.pid"),
                     "-l", f"udp:{HOST}:{self.sip_port}", "-l", f"tcp:{HOST}:{self.sip_port}",
                     "-m", "64", "-M", "8"])
        wait_options(self.sip_port, self.proc, "kamailio", self.stderr_tail)

    def stop(self) -> tuple[bool, str]:
        ok, reason = super().stop()
        # kamailio exits 0 on SIGTERM as well; report, never fail the control on it.
        return True, reason


# ---------------------------------------------------------------------------- context


class Context:
    def __init__(self, server: ServerBase, kind: str, workdir: Path) -> None:
        self.server = server
        self.kind = kind
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.procs: list[subprocess.Popen] = []
        self.closers: list[Callable[[], None]] = []
        self.n = 0

    @property
    def port(self) -> int:
        return self.server.sip_port

    def sipp_cmd(self, xml: str, *, user: str | None = None, password: str | None = None,
                 auth_uri: str | None = None, transport: str = "u1", keys: dict | None = None,
                 port: int | None = None, timeout: float = 15.0, tag: str = "") -> tuple[list[str], dict]:
        self.n += 1
        stem = self.workdir / f"{self.n:02d}-{Path(xml).stem}{tag}"
        files = {"log": f"{stem}.log", "msg": f"{stem}.messages", "err": f"{stem}.errors",
                 "out": f"{stem}.screen"}
        cmd = ["sipp", "-sf", str(SIPP_DIR / xml), "-m", "1", "-i", HOST,
               "-p", str(port or free_port()), "-t", transport, "-nostdin",
               "-timeout", f"{int(timeout)}s", "-timeout_error",
               "-trace_logs", "-log_file", files["log"], "-trace_msg", "-message_file", files["msg"],
               "-trace_err", "-error_file", files["err"]]
        if user is not None:
            cmd += ["-s", user, "-au", user, "-ap", password if password is not None else USERS[user]]
        if auth_uri:
            # SIPp writes uri="sip:<auth_uri>" in the Authorization: no scheme here. The
            # default (remote ip:port) is not the Request-URI the digest must cover.
            cmd += ["-auth_uri", auth_uri]
        for k, v in (keys or {}).items():
            cmd += ["-key", k, str(v)]
        if user is not None:
            cmd.append(f"{HOST}:{self.port}")
        return cmd, files

    def sipp(self, xml: str, **kw) -> str:
        """Run one SIPp scenario to its end; returns its log (the scenario's <log>
        lines); raises with SIPp's own error lines if it did not succeed."""
        timeout = kw.get("timeout", 15.0)
        cmd, files = self.sipp_cmd(xml, **kw)
        log(" ".join(cmd))
        with open(files["out"], "wb") as out:
            try:
                rc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    timeout=timeout + 10).returncode
            except subprocess.TimeoutExpired:
                raise ScenarioError(f"sipp {xml} did not end within {timeout + 10:g}s") from None
        return self.sipp_result(xml, rc, files)

    def sipp_start(self, xml: str, **kw) -> tuple[subprocess.Popen, dict]:
        """Start SIPp in the background (a UAS); finish it with sipp_finish."""
        cmd, files = self.sipp_cmd(xml, **kw)
        log(" ".join(cmd))
        out = open(files["out"], "wb")
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        self.procs.append(p)
        return p, files

    def sipp_finish(self, xml: str, p: subprocess.Popen, files: dict, timeout: float = 15.0) -> str:
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise ScenarioError(f"sipp {xml} did not end within {timeout:g}s: "
                                f"{self.tail(files['err']) or 'no error logged (still waiting for a message)'}")
        return self.sipp_result(xml, rc, files)

    @staticmethod
    def tail(path: str, n: int = 4) -> str:
        try:
            lines = [line for line in Path(path).read_text(errors="replace").splitlines()
                     if line.strip() and not line.startswith("The following events")]
        except OSError:
            return ""
        return " | ".join(lines[-n:])

    def sipp_result(self, xml: str, rc: int, files: dict) -> str:
        text = Path(files["log"]).read_text(errors="replace") if Path(files["log"]).exists() else ""
        if rc != 0:
            last = self.last_message(files["msg"])
            raise ScenarioError(f"sipp {xml} exited {rc}: {self.tail(files['err'])}"
                                + (f"; last message: {last}" if last else ""))
        return text

    @staticmethod
    def last_message(path: str) -> str:
        try:
            text = Path(path).read_text(errors="replace")
        except OSError:
            return ""
        blocks = [b for b in text.split("-----------------------------------------------") if b.strip()]
        if not blocks:
            return ""
        lines = [line for line in blocks[-1].splitlines() if line.strip()]
        return " / ".join(lines[:3])[:300]

    def ua(self, user: str, password: str | None = None) -> siplib.UA:
        u = siplib.UA(user, password if password is not None else USERS[user], self.port)
        self.closers.append(u.close)
        return u

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for c in self.closers:
            try:
                c()
            except Exception:  # noqa: BLE001
                pass

    def options_ok(self) -> None:
        code = siplib.options_probe(self.port, timeout=2.0)
        check(code is not None and 200 <= code < 300,
              f"the server no longer answers OPTIONS with 2xx (got {code})")


# The scenarios register themselves (common.scenario) on import.
import scenarios  # noqa: E402,F401


# ---------------------------------------------------------------------------- main


class ScenarioTimeout(Exception):
    pass


def _alarm(_sig, _frame):
    raise ScenarioTimeout()


def run_one(server: ServerBase, kind: str, sc: Scenario, workdir: Path) -> tuple[bool, str]:
    ctx = Context(server, kind, workdir / sc.name)
    started = time.monotonic()
    ok, reason = True, ""
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(int(sc.timeout))
    try:
        sc.func(ctx)
    except ScenarioTimeout:
        ok, reason = False, f"scenario timed out after {sc.timeout:g}s"
    except (ScenarioError, SipError, AssertionError) as e:
        ok, reason = False, str(e)
    except Exception as e:  # noqa: BLE001 - any crash is a failure of the scenario
        ok, reason = False, f"{type(e).__name__}: {e}\n{traceback.format_exc()}"
    finally:
        signal.alarm(0)
        ctx.close()
    if ok and not server.alive():
        ok, reason = False, f"server exited with {server.proc.returncode}:\n{server.stderr_tail()}"
    took = time.monotonic() - started
    first, _, details = reason.partition("\n")
    if not reason:
        return ok, f"({took:.1f}s)"
    return ok, f"{first} ({took:.1f}s)" + (f"\n{details}" if details else "")


def emit(text: str) -> None:
    first, *rest = text.rstrip("\n").splitlines() or [""]
    print(first, flush=True)
    for line in rest:
        print(f"    | {line}", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", choices=["herald", "kamailio"], default="herald")
    p.add_argument("--herald", default=str(REPO / "target" / "debug" / "herald"),
                   help="path to the herald binary (default: target/debug/herald)")
    p.add_argument("--kamailio", default="/usr/sbin/kamailio", help="path to the kamailio binary")
    p.add_argument("-k", metavar="NAME", default="", help="run only scenarios whose name contains NAME")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (config, logs, SIPp traces)")
    p.add_argument("-v", "--verbose", action="store_true", help="print the commands run, on stderr")
    args = p.parse_args()
    VERBOSE[0] = args.verbose

    selected = [s for s in SCENARIOS if args.server in s.servers and (not args.k or args.k in s.name)]
    if not selected:
        print(f"FAIL selection: no scenario for {args.server} matches -k {args.k!r}")
        print("0 passed, 1 failed")
        return 1
    missing = [t for t in ("sipp", "sipsak") if shutil.which(t) is None]
    if missing:
        print(f"FAIL setup: {', '.join(missing)} not installed (apt-get install sip-tester sipsak)")
        print(f"0 passed, {len(selected) + 1} failed")
        return 1

    workdir = Path(tempfile.mkdtemp(prefix=f"herald-sip-{args.server}-"))
    if args.server == "herald":
        binary = Path(args.herald).resolve()
        if not os.access(binary, os.X_OK):
            print(f"FAIL setup: herald binary not found at {binary} "
                  f"(build it: cargo build -p herald-edge --bin herald)")
            print(f"0 passed, {len(selected) + 1} failed")
            return 1
        server: ServerBase = Herald(workdir / "server", binary)
    else:
        server = Kamailio(workdir / "server", args.kamailio)
    server.workdir.mkdir(parents=True, exist_ok=True)

    passed = failed = 0
    started = time.monotonic()
    try:
        try:
            server.start()
        except (RuntimeError, OSError, subprocess.SubprocessError) as e:
            emit(f"FAIL setup: {e}")
            print(f"(logs kept in {workdir})")
            print(f"0 passed, {len(selected) + 1} failed")
            return 1
        tls = f", tls {HOST}:{server.tls_port}" if server.tls_port else ""
        print(f"{args.server} on udp+tcp {HOST}:{server.sip_port}{tls}; logs in {workdir}", flush=True)
        for sc in selected:
            ok, reason = run_one(server, args.server, sc, workdir)
            if ok:
                emit(f"PASS {sc.name} {reason}")
                passed += 1
            else:
                emit(f"FAIL {sc.name}: {reason}")
                failed += 1
        if args.server == "herald" and not args.k:
            ok, reason = server.stop()
            panics = [line for line in server.stderr_tail(10_000).splitlines() if "panicked" in line]
            if ok and panics:
                ok, reason = False, f"server log shows a panic: {panics[0]}"
            emit(f"{'PASS' if ok else 'FAIL'} clean_shutdown{'' if ok else ':'} {reason}")
            passed, failed = passed + ok, failed + (not ok)
        else:
            server.stop()
    finally:
        server.kill()
    print(f"suite took {time.monotonic() - started:.1f}s", flush=True)
    if failed or args.keep:
        print(f"(logs kept in {workdir})")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
