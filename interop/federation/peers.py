"""The XMPP servers the federation suite runs against each other, behind one interface.

Every server serves one domain, listens for clients (STARTTLS) and for servers on free
127.0.0.1 ports, uses a certificate from the suite's test CA, resolves other servers
through the suite's dnsmasq (dns.py), and keeps its configuration, data and logs in
its own directory under the run's temp directory. Nothing is read from or written to
/etc, /var/lib or /var/log, and every process is started as a child and stopped by its
own id (PID, or the process group it leads).

    server = SERVERS["prosody"](domain, workdir)   # picks free ports
    await server.start(setting)                     # Setting: CA, certificates, DNS port, auth mode
    await server.add_user("alice", "secret")
    server.c2s_port, server.s2s_port, server.domain, server.ca_file
    server.log_tail()
    ok, why = await server.stop()

Implementations: `ProsodyServer` (Debian's prosody), `EjabberdServer` (Debian's
ejabberd) and `HeraldServer` (`herald serve`; it can also reload its configuration
with SIGHUP and report its `/metrics`).
"""

from __future__ import annotations

import asyncio
import os
import pwd
import secrets
import shutil
import signal
import socket
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from dns import candidate_ports
from pki import Issued

HOST = "127.0.0.1"
START_TIMEOUT = 60.0
STOP_GRACE = 15.0
CLI_TIMEOUT = 60.0
RELOAD_TIMEOUT = 10.0


class ServerError(RuntimeError):
    pass


@dataclass(frozen=True)
class Setting:
    """What the run gives every server."""

    ca_file: Path  # the test CA: clients verify every server against it
    trust_file: Path  # what servers trust for s2s (the test CA, or an unrelated CA)
    cert: Issued  # this server's certificate and key
    dns_port: int  # dnsmasq on 127.0.0.1
    # "pkix": s2s authenticated by certificates only (no dialback);
    # "dialback": servers do not trust each other's CA, so XEP-0220 dialback does it.
    auth: str = "pkix"
    debug: bool = False  # debug-level server logs


_HANDED_OUT: set[int] = set()


def free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on 127.0.0.1 (held open together while choosing),
    none of them handed out before in this process: servers pick their ports one after
    the other and listen only later, so the kernel could offer one twice. They come
    from below the kernel's ephemeral range (dns.listen_port_range), so no outgoing
    connection can take one while its server restarts."""
    socks, ports = [], []
    try:
        for candidate in candidate_ports(n + 200):
            if len(ports) == n:
                break
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((HOST, candidate))
            except OSError:  # taken
                s.close()
                continue
            socks.append(s)
            port = s.getsockname()[1]
            if port not in _HANDED_OUT and port not in ports:
                ports.append(port)
        if len(ports) < n:
            raise ServerError(f"could not find {n} unused ports on {HOST}")
        _HANDED_OUT.update(ports)
        return ports
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


async def run_cli(argv: list[str], *, cwd: Path | None = None, timeout: float = CLI_TIMEOUT,
                  **popen) -> tuple[int, str]:
    """Run a command to completion (bounded) in its own process group; returns (exit
    status, stdout+stderr). `popen`: more subprocess arguments (env, user, group)."""
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        start_new_session=True, **popen,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        _kill_group(proc.pid)
        await proc.wait()
        raise ServerError(f"`{' '.join(argv)}` did not finish within {timeout:g}s") from None
    return proc.returncode, out.decode(errors="replace")


def _kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    """Signal the process group we started (its leader's PID is the group id)."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Server:
    """One XMPP server for one domain (the interface the suite uses)."""

    kind = "server"

    def __init__(self, domain: str, workdir: Path) -> None:
        self.domain = domain
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        # s2s_tls_port: a direct-TLS (XEP-0368) s2s listener. Prosody and ejabberd
        # always open it; Herald only in scenarios whose variant asks for it.
        self.c2s_port, self.s2s_port, self.s2s_tls_port = free_ports(3)
        self.ca_file = ""  # what clients verify this server's certificate against
        self.proc: asyncio.subprocess.Process | None = None
        self.setting: Setting | None = None  # what start() was given (restart() reuses it)

    def __str__(self) -> str:
        return f"{self.kind} {self.domain} (c2s {HOST}:{self.c2s_port}, s2s {HOST}:{self.s2s_port})"

    async def start(self, setting: Setting) -> None:
        raise NotImplementedError

    async def add_user(self, name: str, password: str) -> None:
        raise NotImplementedError

    async def restart(self) -> tuple[bool, str]:
        """stop() then start() again with the same setting, ports and data (accounts
        survive). Returns stop()'s verdict; a failed start raises ServerError."""
        ok, how = await self.stop()
        await self.kill()
        await self.start(self.setting)
        return ok, how

    async def stop(self) -> tuple[bool, str]:
        """Stop the server; (True, how) if it exited in time and cleanly."""
        raise NotImplementedError

    def log_tail(self, lines: int = 30) -> str:
        raise NotImplementedError

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def kill(self) -> None:
        """Last resort, by the id of the process group the server was started in."""
        if self.alive():
            _kill_group(self.proc.pid)
            await self.proc.wait()

    async def _wait_listening(self, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.returncode is not None:
                raise ServerError(f"{what} exited with {self.proc.returncode} during startup:\n{self.log_tail()}")
            if await port_open(self.c2s_port) and await port_open(self.s2s_port):
                return
            if time.monotonic() > deadline:
                raise ServerError(f"{what} did not listen on {HOST}:{self.c2s_port} and :{self.s2s_port} "
                                  f"within {START_TIMEOUT:g}s:\n{self.log_tail()}")
            # Polling an external process with no readiness signal: one connection
            # attempt per port every 50 ms until both accept, bounded by START_TIMEOUT.
            await asyncio.sleep(0.05)

    async def _stop_process(self, what: str) -> tuple[bool, str]:
        if self.proc is None:
            return False, f"{what} was never started"
        if self.proc.returncode is not None:
            return False, f"{what} had already exited with {self.proc.returncode}"
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = await asyncio.wait_for(self.proc.wait(), STOP_GRACE)
        except asyncio.TimeoutError:
            await self.kill()
            return False, f"{what} did not exit within {STOP_GRACE:g}s of SIGTERM (killed)"
        if rc != 0:
            return False, f"{what} exited {rc} after SIGTERM"
        return True, f"{what} exited 0 in {time.monotonic() - started:.1f}s"


def lua_str(s: str | Path) -> str:
    """A Lua string literal."""
    text = str(s)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class ProsodyServer(Server):
    """Debian's Prosody (0.12), foreground (`prosody -F --config FILE`), as root with
    `run_as_root = true`. DNS through its libunbound, forwarded to our dnsmasq only
    (no resolv.conf, no hosts file)."""

    kind = "prosody"
    binary = "/usr/bin/prosody"
    ctl = "/usr/bin/prosodyctl"

    def __init__(self, domain: str, workdir: Path) -> None:
        super().__init__(domain, workdir)
        self.config = workdir / "prosody.cfg.lua"
        self.data = workdir / "data"
        self.log = workdir / "prosody.log"
        self.console = workdir / "prosody.console"

    def write_config(self, s: Setting) -> None:
        pkix = s.auth == "pkix"
        modules = ["roster", "saslauth", "tls", "disco", "ping", "posix"]
        if not pkix:
            modules.append("dialback")
        ssl = (f"{{ certificate = {lua_str(s.cert.chain)}; key = {lua_str(s.cert.key)}; "
               f"cafile = {lua_str(s.trust_file)}; capath = {lua_str(self.workdir / 'no-capath')} }}")
        self.config.write_text(f"""-- Written by interop/federation/peers.py for one federation run.
run_as_root = true
pidfile = {lua_str(self.workdir / "prosody.pid")}
data_path = {lua_str(self.data)}
installer_plugin_path = {lua_str(self.workdir / "custom_plugins")}
certificates = {lua_str(self.workdir / "certs")}
log = {{ {"debug" if s.debug else "info"} = {lua_str(self.log)} }}
interfaces = {{ "{HOST}" }}
c2s_ports = {{ {self.c2s_port} }}
s2s_ports = {{ {self.s2s_port} }}
c2s_direct_tls_ports = {{ }}
s2s_direct_tls_ports = {{ {self.s2s_tls_port} }}
modules_enabled = {{ {"; ".join(lua_str(m) for m in modules)} }}
authentication = "internal_hashed"
storage = "internal"
c2s_require_encryption = true
s2s_require_encryption = true
s2s_secure_auth = {"true" if pkix else "false"}
unbound = {{ forward = "{HOST}@{s.dns_port}"; resolvconf = false; hoststxt = false }}
ssl = {ssl}

VirtualHost {lua_str(self.domain)}
    ssl = {ssl}
""")

    async def start(self, setting: Setting) -> None:
        for b in (self.binary, self.ctl):
            if not os.access(b, os.X_OK):
                raise ServerError(f"{b} not found: install Debian's prosody")
        self.data.mkdir(parents=True, exist_ok=True)
        (self.workdir / "no-capath").mkdir(exist_ok=True)
        (self.workdir / "certs").mkdir(exist_ok=True)
        self.setting = setting
        self.write_config(setting)
        self.ca_file = str(setting.ca_file)
        log_from = self.log.stat().st_size if self.log.exists() else 0
        out = open(self.console, "ab")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                self.binary, "-F", "--config", str(self.config),
                stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
            )
        finally:
            out.close()
        await self._wait_listening("prosody")
        # Listening is not ready: Prosody opens its ports while loading its global
        # modules, and until mod_posix is loaded a SIGTERM kills it (exit -15, seen
        # when a scenario restarts it and the suite stops it right after). The host's
        # "Certificates loaded" comes after the global modules.
        deadline = time.monotonic() + START_TIMEOUT
        mark = f"{self.domain}:tls\tinfo\tCertificates loaded"
        while True:
            try:
                with open(self.log, "rb") as f:
                    f.seek(log_from)
                    if mark.encode() in f.read():
                        return
            except OSError:
                pass
            if self.proc.returncode is not None or time.monotonic() > deadline:
                raise ServerError(f"prosody did not load {self.domain} (no {mark!r} in its log):\n"
                                  f"{self.log_tail()}")
            # Polling a log file, which has no readiness signal: every 50 ms, bounded.
            await asyncio.sleep(0.05)

    async def add_user(self, name: str, password: str) -> None:
        rc, out = await run_cli([self.ctl, "--config", str(self.config), "register", name, self.domain, password])
        if rc != 0:
            raise ServerError(f"prosodyctl register {name} {self.domain} exited {rc}: {out.strip()}")

    async def stop(self) -> tuple[bool, str]:
        return await self._stop_process("prosody")

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(t for t in (_tail(self.console, lines), _tail(self.log, lines)) if t)


class EjabberdServer(Server):
    """Debian's ejabberd (23.01), `ejabberdctl foreground` with a private config dir,
    spool and log dir. ejabberdctl only runs as root or as the `ejabberd` user; as
    root it would switch user with `su`, whose child starts a new session, so the node
    would escape the process group we can stop. Instead, when we are root, ejabberdctl
    itself is started as `ejabberd` (and HOME set to the server's directory), so the
    node stays in the process group the suite started; its directory is handed to
    that user. Erlang distribution uses a fixed private port (`ERL_DIST_PORT`: no epmd
    is started) and its own cookie. DNS: the node's inetrc looks names up in
    /etc/hosts, then asks our dnsmasq only."""

    kind = "ejabberd"
    ctl = "/usr/sbin/ejabberdctl"
    user = "ejabberd"

    def __init__(self, domain: str, workdir: Path) -> None:
        super().__init__(domain, workdir)
        self.confdir = workdir / "etc"
        self.spool = workdir / "spool"
        self.logs = workdir / "logs"
        self.console = workdir / "ejabberd.console"
        self.pidfile = workdir / "ejabberd.pid"
        (self.dist_port,) = free_ports(1)
        self.node = f"herald-fed-{secrets.token_hex(4)}@localhost"
        self.cookie = secrets.token_hex(16)

    def write_config(self, s: Setting) -> None:
        pkix = s.auth == "pkix"
        self.confdir.mkdir(parents=True, exist_ok=True)
        (self.confdir / "ejabberdctl.cfg").write_text(f"""# Written by interop/federation/peers.py
ERLANG_NODE={self.node}
ERL_DIST_PORT={self.dist_port}
INET_DIST_INTERFACE={HOST}
ERL_OPTIONS="-setcookie {self.cookie} -env ERL_CRASH_DUMP_BYTES 0"
CONTRIB_MODULES_PATH={self.workdir / "contrib"}
CONTRIB_MODULES_CONF_DIR={self.confdir / "modules.d"}
EJABBERD_BYPASS_WARNINGS=true
EJABBERD_PID_PATH={self.pidfile}
""")
        # Erlang's resolver: /etc/hosts first (the SRV targets are `localhost`), then
        # DNS from our dnsmasq only (no /etc/resolv.conf).
        (self.confdir / "inetrc").write_text(
            "{lookup, [file, dns]}.\n"
            '{resolv_conf, ""}.\n'
            f"{{nameserver, {{127,0,0,1}}, {s.dns_port}}}.\n"
            "{timeout, 2000}.\n{retry, 2}.\n"
        )
        modules = ["mod_roster: {}", "mod_disco: {}", "mod_ping: {}"]
        if not pkix:
            modules.append("mod_s2s_dialback: {}")
        # s2s_max_retry_delay: after an outbound stream fails or is closed with an
        # error (a peer's ACL refusing it), ejabberd bounces stanzas for that domain
        # for a random 1..N seconds before it connects again; the default N is 300,
        # which would outlast the scenarios that lift a refusal (sighup_acl_reload).
        (self.confdir / "ejabberd.yml").write_text(f"""# Written by interop/federation/peers.py for one federation run.
hosts:
  - "{self.domain}"
loglevel: {"debug" if s.debug else "info"}
log_rotate_count: 0
certfiles:
  - "{s.cert.bundle}"
ca_file: "{s.trust_file}"
s2s_use_starttls: required
outgoing_s2s_families:
  - ipv4
s2s_dns_timeout: 5
s2s_dns_retries: 1
outgoing_s2s_timeout: 10
s2s_max_retry_delay: 2
auth_method: internal
auth_password_format: scram
listen:
  - port: {self.c2s_port}
    ip: "{HOST}"
    module: ejabberd_c2s
    starttls_required: true
  - port: {self.s2s_port}
    ip: "{HOST}"
    module: ejabberd_s2s_in
  - port: {self.s2s_tls_port}
    ip: "{HOST}"
    module: ejabberd_s2s_in
    tls: true
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
api_permissions:
  "console commands":
    from:
      - ejabberd_ctl
    who: all
    what: "*"
modules:
{"".join(f"  {m}{chr(10)}" for m in modules)}""")

    def _as_node_user(self) -> dict:
        """Keyword arguments for starting ejabberdctl as the `ejabberd` user (when we
        are root) with HOME in the server's directory."""
        env = dict(os.environ, HOME=str(self.workdir))
        if os.geteuid() != 0:
            return {"env": env}
        pw = pwd.getpwnam(self.user)
        return {"env": env, "user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}

    def _argv(self, *args: str) -> list[str]:
        return [self.ctl, "--config-dir", str(self.confdir), "--spool", str(self.spool),
                "--logs", str(self.logs), *args]

    def _hand_over(self) -> None:
        """As root, ejabberdctl runs the node as `ejabberd`: give it this directory,
        and let it traverse the run's temp dir (mkdtemp makes it 0700; that one
        directory becomes 0711). Directories above it are never changed: if one is
        not traversable by others, this fails with the path to fix."""
        if os.geteuid() != 0:
            if pwd.getpwuid(os.geteuid()).pw_name != self.user:
                raise ServerError(f"ejabberdctl runs only as root or as `{self.user}`; "
                                  f"run the suite as one of them")
            return
        try:
            pw = pwd.getpwnam(self.user)
        except KeyError:
            raise ServerError(f"no `{self.user}` user: install Debian's ejabberd") from None
        run_root = self.workdir.parent
        os.chmod(run_root, run_root.stat().st_mode | 0o111)
        for parent in run_root.parents:
            if not parent.stat().st_mode & 0o001:
                raise ServerError(f"{parent} is not traversable by others, so the `{self.user}` "
                                  f"user cannot reach {self.workdir}; set TMPDIR elsewhere")
        for root, dirs, files in os.walk(self.workdir):
            for name in [*dirs, *files]:
                os.chown(os.path.join(root, name), pw.pw_uid, pw.pw_gid)
        os.chown(self.workdir, pw.pw_uid, pw.pw_gid)

    async def start(self, setting: Setting) -> None:
        if not os.access(self.ctl, os.X_OK):
            raise ServerError(f"{self.ctl} not found: install Debian's ejabberd")
        self.setting = setting
        for d in (self.spool, self.logs, self.workdir / "contrib", self.confdir / "modules.d"):
            d.mkdir(parents=True, exist_ok=True)
        # The certificate bundle (with its key) must be readable by the node.
        own = self.workdir / "certs"
        own.mkdir(exist_ok=True)
        bundle = own / setting.cert.bundle.name
        shutil.copyfile(setting.cert.bundle, bundle)
        trust = own / f"trust-{setting.trust_file.name}"
        shutil.copyfile(setting.trust_file, trust)
        setting = Setting(setting.ca_file, trust, Issued(setting.cert.domain, setting.cert.cert,
                          setting.cert.key, setting.cert.chain, bundle),
                          setting.dns_port, setting.auth, setting.debug)
        self.write_config(setting)
        self._hand_over()
        self.ca_file = str(setting.ca_file)
        out = open(self.console, "ab")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self._argv("foreground"), stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out,
                cwd=self.workdir, start_new_session=True, **self._as_node_user(),
            )
        finally:
            out.close()
        await self._wait_listening("ejabberd")

    async def ctl_call(self, *args: str) -> str:
        rc, out = await run_cli(self._argv(*args), cwd=self.workdir, **self._as_node_user())
        if rc != 0:
            raise ServerError(f"ejabberdctl {' '.join(args[:1])} exited {rc}: {out.strip()}")
        return out

    async def add_user(self, name: str, password: str) -> None:
        await self.ctl_call("register", name, self.domain, password)

    async def stop(self) -> tuple[bool, str]:
        if self.proc is None:
            return False, "ejabberd was never started"
        if self.proc.returncode is not None:
            return False, f"ejabberd had already exited with {self.proc.returncode}"
        started = time.monotonic()
        try:
            await self.ctl_call("stop")
        except ServerError as e:
            await self.kill()
            return False, f"ejabberdctl stop failed ({e}); killed"
        try:
            rc = await asyncio.wait_for(self.proc.wait(), STOP_GRACE)
        except asyncio.TimeoutError:
            await self.kill()
            return False, f"ejabberd did not exit within {STOP_GRACE:g}s of `ejabberdctl stop` (killed)"
        if rc != 0:
            return False, f"ejabberd exited {rc} after `ejabberdctl stop`"
        return True, f"ejabberd exited 0 in {time.monotonic() - started:.1f}s"

    async def kill(self) -> None:
        """The process group we started, and the node by the PID it wrote, should it
        have left the group (checked to be a beam process, against PID reuse)."""
        await super().kill()
        try:
            pid = int(self.pidfile.read_text().strip())
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except (OSError, ValueError):
            return
        if comm.startswith("beam"):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def log_tail(self, lines: int = 30) -> str:
        parts = [_tail(self.console, lines), _tail(self.logs / "ejabberd.log", lines)]
        return "\n".join(t for t in parts if t)


@dataclass(frozen=True)
class HeraldVariant:
    """What a scenario may change in Herald's configuration (see herald.example.toml)."""

    tables: str = ""  # TOML appended at the end, e.g. [[s2s.acl]] or [[s2s.route]] tables
    listen_tls: bool = False  # [s2s] listen_tls on s2s_tls_port (direct TLS, XEP-0368)
    dns_port: int = 0  # [dns] nameservers: this dnsmasq instead of the run's (0: the run's)


class HeraldServer(Server):
    """Herald (`herald serve`, the binary in `HERALD_BIN`, default `target/debug/herald`)
    for its domain: a herald.toml with the test certificate, c2s and s2s listeners on
    loopback, the suite's trust file and DNS server; users added with `herald user add`;
    stopped with SIGTERM (exit 0 expected)."""

    kind = "herald"

    def __init__(self, domain: str, workdir: Path) -> None:
        super().__init__(domain, workdir)
        root = Path(__file__).resolve().parents[2]
        self.binary = Path(os.environ.get("HERALD_BIN", root / "target" / "debug" / "herald"))
        self.config = workdir / "herald.toml"
        self.log = workdir / "herald.log"
        self.variant = HeraldVariant()
        # The admin listener (/metrics) on a port of its own; its bearer token is the
        # file Herald generates in its data directory on first start.
        (self.admin_port,) = free_ports(1)
        self.token_file = workdir / "data" / "admin.token"

    def write_config(self, s: Setting, extra: str = "") -> None:
        v = self.variant
        dns_port = v.dns_port or s.dns_port
        listen_tls = f'"{HOST}:{self.s2s_tls_port}"' if v.listen_tls else ""
        # "pkix" runs: certificates only; "dialback" runs: the peer's certificate does
        # not verify (unrelated trust), so Server Dialback authenticates.
        auth = "pkix" if s.auth == "pkix" else "any"
        self.config.write_text(f"""# Written by interop/federation/peers.py for one federation run.
[server]
domains = ["{self.domain}"]
data_dir = "{self.workdir / 'data'}"

[[tls.certificates]]
cert = "{s.cert.chain}"
key = "{s.cert.key}"

# SIP off: its default ports are fixed (5060/5061) and would collide.
[sip]
listen_udp = []
listen_tcp = []
listen_tls = []

[c2s]
listen = ["{HOST}:{self.c2s_port}"]
listen_tls = []

[admin]
listen = "{HOST}:{self.admin_port}"

[s2s]
listen = ["{HOST}:{self.s2s_port}"]
listen_tls = [{listen_tls}]
trust = ["{s.trust_file}"]
tls = "required"
auth = "{auth}"

[dns]
nameservers = ["{HOST}:{dns_port}"]

[log]
level = "{'debug' if s.debug else 'info'}"
{v.tables}{extra}""")

    async def start(self, setting: Setting) -> None:
        if not os.access(self.binary, os.X_OK):
            raise ServerError(f"{self.binary} not found: build it (cargo build -p herald-edge) "
                              "or set HERALD_BIN")
        self.setting = setting
        self.write_config(setting)
        self.ca_file = str(setting.ca_file)
        out = open(self.log, "ab")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                str(self.binary), "serve", "--config", str(self.config),
                stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
            )
        finally:
            out.close()
        await self._wait_listening("herald")

    async def add_user(self, name: str, password: str) -> None:
        rc, out = await run_cli([str(self.binary), "user", "add", name, "--password", password,
                                 "--config", str(self.config)])
        if rc != 0:
            raise ServerError(f"herald user add {name} exited {rc}: {out.strip()}")

    async def stop(self) -> tuple[bool, str]:
        return await self._stop_process("herald")

    async def reconfigure(self, variant: "HeraldVariant") -> tuple[bool, str]:
        """Restart with another variant of the configuration (same ports, same data)."""
        self.variant = variant
        with open(self.log, "a") as f:
            f.write(f"---- interop/federation: restarting with variant {variant}\n")
        return await self.restart()

    def log_size(self) -> int:
        """Where the log ends now: `log_since(mark)` reads what came after."""
        try:
            return self.log.stat().st_size
        except OSError:
            return 0

    def log_since(self, mark: int) -> str:
        try:
            with open(self.log, "rb") as f:
                f.seek(mark)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    async def reload(self, variant: "HeraldVariant", broken: str = "") -> tuple[str, str]:
        """Rewrite herald.toml for `variant` (with `broken` appended verbatim: text that
        makes the file fail to load) and send SIGHUP to Herald's PID, without a
        restart. Returns ("reloaded" or "refused", the log lines the reload wrote),
        once Herald's log says which (`configuration reloaded` or `reload refused`);
        raises ServerError if it says neither within RELOAD_TIMEOUT. A refused reload
        keeps the running rules, so `self.variant` is changed only by one that took."""
        if not self.alive():
            raise ServerError("herald is not running: nothing to reload")
        old = self.variant
        self.variant = variant
        try:
            self.write_config(self.setting, extra=broken)
        finally:
            self.variant = old
        with open(self.log, "a") as f:
            f.write(f"---- interop/federation: SIGHUP (pid {self.proc.pid}) with variant {variant}"
                    f"{' and a broken file' if broken else ''}\n")
        mark = self.log_size()
        os.kill(self.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + RELOAD_TIMEOUT
        while True:
            text = self.log_since(mark)
            if "configuration reloaded" in text:
                self.variant = variant
                return "reloaded", text
            if "reload refused" in text:
                return "refused", text
            if not self.alive():
                raise ServerError(f"herald exited ({self.proc.returncode}) on SIGHUP:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise ServerError(f"herald's log shows no outcome of SIGHUP within {RELOAD_TIMEOUT:g}s:\n"
                                  f"{text[-2000:]}")
            # Polling a log file, which has no readiness signal: every 50 ms, bounded.
            await asyncio.sleep(0.05)

    async def metrics(self) -> str:
        """The Prometheus text of GET /metrics on the admin listener (bearer token)."""
        token = self.token_file.read_text().strip()
        req = urllib.request.Request(f"http://{HOST}:{self.admin_port}/metrics",
                                     headers={"Authorization": f"Bearer {token}"})

        def get() -> str:
            with urllib.request.urlopen(req, timeout=5.0) as r:
                return r.read().decode()

        try:
            return await asyncio.to_thread(get)
        except OSError as e:
            raise ServerError(f"GET /metrics on {HOST}:{self.admin_port} failed: {e}") from None

    async def s2s_streams(self, domain: str) -> dict[str, int]:
        """herald_s2s_streams for `domain`: direction ("in", "out") -> established
        streams (0 for a direction with no series yet)."""
        found = {"in": 0, "out": 0}
        for line in (await self.metrics()).splitlines():
            if line.startswith("herald_s2s_streams{") and f'domain="{domain}"' in line:
                for d in found:
                    if f'direction="{d}"' in line:
                        found[d] = int(float(line.rsplit(" ", 1)[1]))
        return found

    def log_tail(self, lines: int = 30) -> str:
        return _tail(self.log, lines)


SERVERS: dict[str, type[Server]] = {
    "prosody": ProsodyServer,
    "ejabberd": EjabberdServer,
    "herald": HeraldServer,
}
