#!/usr/bin/env python3
"""SIP presence benchmark: Herald against Kamailio, same machine, same run.

For every repeat, and for every server (the order alternates between repeats), the
harness makes a fresh work directory, provisions N users (user{i} / pass{i} in domain
and realm `localhost`), starts the server on a free loopback UDP port, and runs
`herald-loadgen sip-presence` against it:

  1. REGISTER every user (digest, 401 answered);
  2. every watcher SUBSCRIBEs (Event: presence) to K presentities (w+1..w+K mod N),
     every NOTIFY answered 200;
  3. PUBLISH steps at --rates (each --duration s then --drain s): PIDF with a note
     `hb-seq=S t=MICROS`; the NOTIFYs carrying it give the publish -> NOTIFY latency;
     stepping stops after the first step whose NOTIFY p99 exceeds --stop-p99-ms or
     that loses more than --stop-loss of its NOTIFYs or PUBLISHes.

Authorization: both servers let every watcher see every presentity. Kamailio runs
presence_xml with force_active=1 (no XCAP); Herald authorizes from rosters, so each
watcher/presentity pair is imported as a mutual (`both`) roster entry.

Measured per server and repeat: registrations and subscriptions held, PUBLISH/s and
NOTIFY/s at the highest step within the bounds, p50/p99 latencies, memory per
subscription (sum of VmRSS, and of PSS, of every process of the server's process group
before/after the SUBSCRIBE phase, divided by the subscriptions held; Kamailio's processes
share memory, so the RSS sum counts shared pages once per process and PSS is the fair
figure), CPU time of the server processes, and the 1-minute load average. The report is
a markdown table (median [min-max] over repeats, and Herald/Kamailio ratios of the
medians) and a JSON file with every generator report.

Usage:
  python3 interop/bench/sip_presence.py --servers kamailio[,herald]
      [--herald PATH/herald] [--loadgen PATH/herald-loadgen] [--users 200] [--watch 5]
      [--rates 200,500,1000,2000] [--duration 10] [--drain 3] [--repeat 3]
      [--workdir /tmp/herald-sipbench] [--json-out F] [--md-out F]

Only loopback addresses are used; every wait is bounded.
"""
import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
HOST = "127.0.0.1"
DOMAIN = "localhost"
KAMAILIO_CFG = HERE / "kamailio" / "kamailio.cfg"
KAMAILIO_TABLES = Path("/usr/share/kamailio/dbtext/kamailio")
DB_TABLES = ["version", "subscriber", "location", "presentity", "active_watchers",
             "watchers", "xcap", "pua"]
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def sip_ping(port: int, timeout: float = 0.5) -> bool:
    """Whether an OPTIONS to 127.0.0.1:port gets any SIP response."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        s.settimeout(timeout)
        local = s.getsockname()[1]
        msg = (f"OPTIONS sip:{DOMAIN} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP {HOST}:{local};branch=z9hG4bKping{time.monotonic_ns()};rport\r\n"
               f"Max-Forwards: 70\r\nFrom: <sip:ping@{DOMAIN}>;tag=p\r\nTo: <sip:{DOMAIN}>\r\n"
               f"Call-ID: ping{time.monotonic_ns()}@bench\r\nCSeq: 1 OPTIONS\r\n"
               f"Content-Length: 0\r\n\r\n").encode()
        try:
            s.sendto(msg, (HOST, port))
            data, _ = s.recvfrom(65535)
            return data.startswith(b"SIP/2.0 ")
        except OSError:
            return False


def udp_bound(port: int) -> bool:
    """Whether some socket is bound to UDP 127.0.0.1:port (/proc/net/udp)."""
    want = f"0100007F:{port:04X}"
    try:
        lines = Path("/proc/net/udp").read_text().splitlines()[1:]
    except OSError:
        return False
    return any(ln.split()[1] == want for ln in lines if len(ln.split()) > 1)


def group_pids(pgid: int) -> list[int]:
    """Every process whose process group is `pgid` (the servers run in their own
    session, started by this script)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if int(fields[2]) == pgid:
            out.append(int(d))
    return sorted(out)


def cpu_ms(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])
    return total * 1000 // os.sysconf("SC_CLK_TCK")


class Server:
    kind = ""

    def __init__(self, workdir: Path, users: int, watch: int) -> None:
        self.workdir = workdir
        self.users = users
        self.watch = watch
        self.port = free_udp_port()
        self.proc: subprocess.Popen | None = None
        self.log = workdir / f"{self.kind}.log"

    def pairs(self):
        for w in range(self.users):
            for j in range(self.watch):
                yield w, (w + 1 + j) % self.users

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited {self.proc.returncode} (see {self.log})")
            if sip_ping(self.port):
                return
            # A server that ignores OPTIONS is taken as ready once its port is bound
            # for a few seconds.
            if time.monotonic() > deadline - START_TIMEOUT + 5 and udp_bound(self.port):
                log(f"{self.kind}: no answer to OPTIONS, but udp {HOST}:{self.port} is bound")
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.kind} did not answer OPTIONS on {HOST}:{self.port} (see {self.log})")

    def pids(self) -> list[int]:
        return group_pids(self.proc.pid) if self.proc else []

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(STOP_TIMEOUT)

    def _spawn(self, argv: list[str]) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(argv, cwd=self.workdir, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=out, start_new_session=True)


class Kamailio(Server):
    """Kamailio with interop/bench/kamailio/kamailio.cfg: db_text tables copied from the
    Debian package, `subscriber` filled with user{i}/pass{i} (and their HA1s)."""

    kind = "kamailio"

    def __init__(self, workdir: Path, users: int, watch: int, args) -> None:
        super().__init__(workdir, users, watch)
        self.binary = args.kamailio
        self.shm_mb = args.kamailio_shm

    def provision_and_start(self) -> None:
        db = self.workdir / "db"
        db.mkdir(parents=True)
        for t in DB_TABLES:
            shutil.copy(KAMAILIO_TABLES / t, db / t)
        # presence's write-back inserts active_watchers rows without `flags` (db_text
        # refuses a NULL where the packaged table definition does not allow one).
        aw = db / "active_watchers"
        aw.write_text(aw.read_text().replace("flags(int)", "flags(int,null)", 1)
                      .replace("updated_winfo(int)", "updated_winfo(int,null)", 1))
        header = (KAMAILIO_TABLES / "subscriber").read_text().splitlines()[0]
        with open(db / "subscriber", "w") as f:
            f.write(header + "\n")
            for i in range(self.users):
                u, p = f"user{i}", f"pass{i}"
                ha1 = hashlib.md5(f"{u}:{DOMAIN}:{p}".encode()).hexdigest()
                ha1b = hashlib.md5(f"{u}@{DOMAIN}:{DOMAIN}:{p}".encode()).hexdigest()
                f.write(f"{i + 1}:{u}:{DOMAIN}:{p}:{ha1}:{ha1b}\n")
        self._spawn([self.binary, "-f", str(KAMAILIO_CFG), "-DD", "-E", "-w", str(self.workdir),
                     "-l", f"udp:{HOST}:{self.port}", "-m", str(self.shm_mb), "-M", "16",
                     "-A", f'DBURL="text://{db}"'])
        self.wait_ready()


class Herald(Server):
    """`herald serve` with a [sip] UDP listener; accounts imported with
    `herald user import` and the watcher/presentity pairs as mutual roster entries with
    `herald roster import` (once the database exists, i.e. after the first start)."""

    kind = "herald"

    def __init__(self, workdir: Path, users: int, watch: int, args) -> None:
        super().__init__(workdir, users, watch)
        self.binary = args.herald
        self.extra = args.herald_extra_config
        self.config = workdir / "herald.toml"

    def herald(self, *argv: str) -> None:
        subprocess.run([self.binary, *argv[:1], "--config", str(self.config), *argv[1:]],
                       check=True, stdout=subprocess.DEVNULL, timeout=600)

    def provision_and_start(self) -> None:
        if not self.binary or not os.access(self.binary, os.X_OK):
            raise RuntimeError(f"herald binary {self.binary!r} not found: pass --herald "
                               "(cargo build --release -p herald-edge)")
        c2s = free_tcp_port()
        self.config.write_text(f"""# Written by interop/bench/sip_presence.py.
[server]
domains = ["{DOMAIN}"]
data_dir = "{self.workdir / 'data'}"

[c2s]
listen = ["{HOST}:{c2s}"]
listen_tls = []

[sip]
listen_udp = ["{HOST}:{self.port}"]
listen_tcp = []
listen_tls = []
# The generator is one address; Kamailio runs without a per-source limit (no pike).
requests_per_ip_per_sec = 1000000
requests_per_ip_burst = 1000000
# RFC 3261 keeps a UDP non-INVITE server transaction 64*T1 = 32 s after its answer
# (timer J): 1,500 PUBLISH/s alone hold 48,000. Kamailio's tm keeps them wt_timer = 5 s.
max_transactions = 1000000
realm = "{DOMAIN}"

[log]
level = "warn"
{self.extra}
""")
        self._spawn([self.binary, "serve", "--config", str(self.config)])
        self.wait_ready()
        accounts = self.workdir / "accounts.csv"
        accounts.write_text("".join(f"user{i},pass{i}\n" for i in range(self.users)))
        self.herald("user", "import", str(accounts))
        seen = set()
        rows = ["owner,contact"]
        for w, p in self.pairs():
            for a, b in ((w, p), (p, w)):
                if (a, b) not in seen:
                    seen.add((a, b))
                    rows.append(f"user{a},user{b}")
        contacts = self.workdir / "contacts.csv"
        contacts.write_text("\n".join(rows) + "\n")
        self.herald("roster", "import", str(contacts))


KINDS = {"kamailio": Kamailio, "herald": Herald}


def run_one(args, kind: str, rep: int) -> dict:
    workdir = Path(args.workdir) / f"{kind}-{rep}"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    server = KINDS[kind](workdir, args.users, args.watch, args)
    try:
        t0 = time.monotonic()
        server.provision_and_start()
        log(f"{kind} #{rep}: up on udp {HOST}:{server.port} in {time.monotonic() - t0:.1f} s "
            f"(pids {server.pids()})")
        pids = server.pids()
        cpu0 = cpu_ms(pids)
        load_before = os.getloadavg()
        argv = [args.loadgen, "sip-presence", "--server", f"{HOST}:{server.port}",
                "--domain", DOMAIN, "--users", str(args.users), "--watch", str(args.watch),
                "--rates", ",".join(f"{r:g}" for r in args.rates),
                "--duration", str(args.duration), "--drain", str(args.drain),
                "--stop-p99-ms", str(args.stop_p99_ms), "--stop-loss", str(args.stop_loss),
                "--server-pid", ",".join(str(p) for p in pids)]
        budget = (args.users / 100 + args.users * args.watch / 200 + 60
                  + len(args.rates) * (args.duration + args.drain + 20))
        proc = subprocess.run(argv, capture_output=True, timeout=budget)
        for line in proc.stderr.decode(errors="replace").splitlines():
            log(f"{kind} #{rep}: {line}")
        lines = [ln for ln in proc.stdout.decode().splitlines() if ln.startswith("{")]
        if not lines:
            raise RuntimeError(f"herald-loadgen gave no report against {kind} (exit {proc.returncode})")
        r = json.loads(lines[-1])
        r.update(server_kind=kind, repeat=rep, server_pids=pids,
                 server_cpu_ms_total=cpu_ms(pids) - cpu0,
                 loadavg_before=load_before[0], loadavg_after=os.getloadavg()[0],
                 server_alive=server.proc.poll() is None)
        return r
    finally:
        server.stop()
        if not args.keep:
            for d in ("db", "data"):
                shutil.rmtree(workdir / d, ignore_errors=True)


def best_step(r: dict) -> dict | None:
    passed = [s for s in r["steps"] if s["passed"]]
    return max(passed, key=lambda s: s["rate"]) if passed else None


def spread(values: list[float], fmt: str = "{:.0f}") -> str:
    vals = [v for v in values if v is not None and v == v]
    if not vals:
        return "-"
    med = statistics.median(vals)
    if len(vals) == 1:
        return fmt.format(med)
    return f"{fmt.format(med)} [{fmt.format(min(vals))}-{fmt.format(max(vals))}]"


def median(values: list[float]) -> float | None:
    vals = [v for v in values if v is not None and v == v]
    return statistics.median(vals) if vals else None


def summary_metrics(rs: list[dict]) -> dict[str, list[float]]:
    m: dict[str, list[float]] = {k: [] for k in (
        "registered", "subscriptions", "best_rate", "publish_per_sec", "notify_per_sec",
        "notify_p50_ms", "notify_p99_ms", "publish_p99_ms", "rss_per_sub", "pss_per_sub",
        "cpu_ms_per_1k_notify", "server_cpu_s", "load")}
    for r in rs:
        b = best_step(r)
        m["registered"].append(r["registered"])
        m["subscriptions"].append(r["subscriptions_held"])
        m["best_rate"].append(r["best_rate"])
        m["publish_per_sec"].append(r["best_publish_per_sec"])
        m["notify_per_sec"].append(r["best_notify_per_sec"])
        m["notify_p50_ms"].append(b["notify_p50_us"] / 1000 if b else None)
        m["notify_p99_ms"].append(b["notify_p99_us"] / 1000 if b else None)
        m["publish_p99_ms"].append(b["publish_p99_us"] / 1000 if b else None)
        m["rss_per_sub"].append(r["rss_bytes_per_subscription"])
        m["pss_per_sub"].append(r["pss_bytes_per_subscription"])
        m["cpu_ms_per_1k_notify"].append(
            b["server_cpu_ms"] * 1000 / b["notify_matched"] if b and b["notify_matched"] else None)
        m["server_cpu_s"].append(r["server_cpu_ms_total"] / 1000)
        m["load"].append(r["loadavg_before"])
    return m


COLUMNS = [
    ("registered", "registrations held", "{:.0f}"),
    ("subscriptions", "subscriptions held", "{:.0f}"),
    ("best_rate", "best PUBLISH rate within bounds /s", "{:.0f}"),
    ("publish_per_sec", "PUBLISH/s", "{:.0f}"),
    ("notify_per_sec", "NOTIFY/s", "{:.0f}"),
    ("notify_p50_ms", "NOTIFY p50 ms", "{:.2f}"),
    ("notify_p99_ms", "NOTIFY p99 ms", "{:.2f}"),
    ("publish_p99_ms", "PUBLISH 200 p99 ms", "{:.2f}"),
    ("rss_per_sub", "RSS sum bytes/subscription", "{:.0f}"),
    ("pss_per_sub", "PSS bytes/subscription", "{:.0f}"),
    ("cpu_ms_per_1k_notify", "server CPU ms per 1k NOTIFY", "{:.0f}"),
    ("server_cpu_s", "server CPU s (whole run)", "{:.1f}"),
    ("load", "load avg (1 min) before", "{:.2f}"),
]


def report(results: list[dict], servers: list[str], args) -> str:
    out = [f"SIP presence, {args.users} users x {args.watch} subscriptions, rates "
           f"{','.join(f'{r:g}' for r in args.rates)}/s, {args.duration:g} s per step, "
           f"{args.repeat} repeat(s); median [min-max]. Bounds: NOTIFY p99 <= "
           f"{args.stop_p99_ms:g} ms, losses <= {args.stop_loss * 100:g} %.", ""]
    metrics = {s: summary_metrics([r for r in results if r["server_kind"] == s]) for s in servers}
    both = "herald" in servers and "kamailio" in servers
    head = ["metric"] + servers + (["Herald/Kamailio"] if both else [])
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    for key, label, fmt in COLUMNS:
        row = [label] + [spread(metrics[s][key], fmt) for s in servers]
        if both:
            h, k = median(metrics["herald"][key]), median(metrics["kamailio"][key])
            row.append(f"{h / k:.2f}" if h is not None and k else "-")
        out.append("| " + " | ".join(row) + " |")
    out += ["", "Per step (median over repeats):", "",
            "| server | offered/s | PUBLISH/s | NOTIFY/s | lost NOTIFY | PUBLISH failed or skipped | "
            "p50 ms | p99 ms | max ms | retransmitted | UDP drops | server CPU % | within bounds |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in servers:
        for rate in args.rates:
            steps = [st for r in results if r["server_kind"] == s for st in r["steps"]
                     if st["rate"] == rate]
            if not steps:
                continue
            out.append("| " + " | ".join([
                s, f"{rate:g}",
                spread([st["publish_per_sec"] for st in steps]),
                spread([st["notify_per_sec"] for st in steps]),
                spread([st["notify_lost"] for st in steps]),
                spread([st["publish_failed"] + st["publish_skipped"] for st in steps]),
                spread([st["notify_p50_us"] / 1000 for st in steps], "{:.2f}"),
                spread([st["notify_p99_us"] / 1000 for st in steps], "{:.2f}"),
                spread([st["notify_max_us"] / 1000 for st in steps], "{:.1f}"),
                spread([st["retransmits"] for st in steps]),
                spread([st.get("udp_rcvbuf_errors") for st in steps]),
                spread([st["server_cpu_ms"] / 10 / st["secs"] for st in steps]),
                f"{sum(st['passed'] for st in steps)}/{len(steps)}",
            ]) + " |")
    return "\n".join(out) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--servers", default="kamailio,herald")
    p.add_argument("--herald", default=os.environ.get("HERALD_BIN", str(REPO / "target/release/herald")))
    p.add_argument("--herald-extra-config", default="", help="TOML appended to herald.toml")
    p.add_argument("--kamailio", default="/usr/sbin/kamailio")
    p.add_argument("--kamailio-shm", type=int, default=1024, help="shared memory MB (-m)")
    p.add_argument("--loadgen", default=os.environ.get(
        "LOADGEN_BIN", str(Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "release/herald-loadgen")))
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--watch", type=int, default=5)
    p.add_argument("--rates", default="200,500,1000,2000")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--drain", type=float, default=3.0)
    p.add_argument("--stop-p99-ms", type=float, default=100.0)
    p.add_argument("--stop-loss", type=float, default=0.01)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--workdir", default="/tmp/herald-sipbench")
    p.add_argument("--json-out", default="sip_presence.json")
    p.add_argument("--md-out", default="sip_presence.md")
    p.add_argument("--keep", action="store_true", help="keep the servers' databases")
    args = p.parse_args()
    args.rates = [float(r) for r in args.rates.split(",")]
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    for s in servers:
        if s not in KINDS:
            p.error(f"unknown server {s!r} (kamailio, herald)")
    if not (1 <= args.repeat <= 20 and 2 <= args.users <= 19_500 and 1 <= args.watch < args.users):
        p.error("--repeat 1..20, --users 2..19500, --watch 1..users-1")
    if "herald" in servers and not os.access(args.herald, os.X_OK):
        p.error(f"{args.herald} not found: pass --herald (cargo build --release -p herald-edge)")
    if "kamailio" in servers and not os.access(args.kamailio, os.X_OK):
        p.error(f"{args.kamailio} not found: pass --kamailio")
    if not os.access(args.loadgen, os.X_OK):
        p.error(f"{args.loadgen} not found: cargo build --release -p herald-interop")
    results: list[dict] = []
    for rep in range(args.repeat):
        order = servers if rep % 2 == 0 else list(reversed(servers))
        for kind in order:
            r = run_one(args, kind, rep)
            b = best_step(r)
            log(f"{kind} #{rep}: registered {r['registered']}, subscriptions {r['subscriptions_held']}, "
                f"best {r['best_rate']:.0f}/s: PUBLISH {r['best_publish_per_sec']:.0f}/s "
                f"NOTIFY {r['best_notify_per_sec']:.0f}/s p99 "
                f"{(b['notify_p99_us'] / 1000 if b else float('nan')):.1f} ms; "
                f"load {r['loadavg_before']:.2f}")
            results.append(r)
            Path(args.json_out).write_text(json.dumps({"args": {k: v for k, v in vars(args).items()},
                                                       "results": results}, indent=1))
    md = report(results, servers, args)
    Path(args.md_out).write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
