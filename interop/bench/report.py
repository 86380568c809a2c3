#!/usr/bin/env python3
"""Merges the generator results of one run.sh run and prints the comparison table.

Usage: report.py RESULTS_DIR   (writes RESULTS_DIR/summary.json as well)
"""
import glob
import json
import math
import os
import sys

SERVERS = ["herald", "prosody", "ejabberd"]


def load_lines(path):
    out = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    out.append(json.loads(line))
    except FileNotFoundError:
        pass
    return out


def quantile(hist, q):
    total = sum(c for _, c in hist)
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for v, c in sorted(hist):
        seen += c
        if seen >= rank:
            return v
    return sorted(hist)[-1][0]


def merge(server, res):
    runs = []
    for path in sorted(glob.glob(os.path.join(res, f"{server}.*.json"))):
        if path.endswith(".meta.json"):
            continue
        runs.extend(load_lines(path))
    if not runs:
        return None
    meta = (load_lines(os.path.join(res, f"{server}.meta.json")) or [{}])[0]
    s = {"server": server, "procs": len(runs)}
    for k in ["users", "attempted", "established", "failed", "dropped", "held",
              "msgs_sent", "msgs_received", "msgs_lost", "msgs_duplicate", "msgs_error",
              "msgs_stale", "msgs_send_skipped", "presence_sent", "presence_expected",
              "presence_received"]:
        s[k] = sum(r.get(k, 0) for r in runs)
    for k in ["failures", "drops"]:
        d = {}
        for r in runs:
            for why, n in r.get(k, {}).items():
                d[why] = d.get(why, 0) + n
        s[k] = d
    s["establish_secs"] = max(r["establish_secs"] for r in runs)
    s["connect_rate"] = s["established"] / s["establish_secs"] if s["establish_secs"] > 0 else None
    s["traffic_secs"] = max(r["traffic_secs"] for r in runs)
    s["msgs_per_sec"] = sum(r["msgs_per_sec"] for r in runs)
    lat = [tuple(p) for r in runs for p in r.get("lat_hist", [])]
    login = [tuple(p) for r in runs for p in r.get("login_hist", [])]
    for name, hist in [("lat", lat), ("login", login)]:
        for q, tag in [(0.5, "p50"), (0.9, "p90"), (0.99, "p99"), (1.0, "max")]:
            v = quantile(hist, q)
            s[f"{name}_{tag}_ms"] = None if v is None else v / 1000.0
    cpu_c = [r["server_cpu_connect_ms"] for r in runs if r.get("server_cpu_connect_ms") is not None]
    cpu_t = [r["server_cpu_traffic_ms"] for r in runs if r.get("server_cpu_traffic_ms") is not None]
    # Every generator process measures the same server over (nearly) the same window.
    s["cpu_per_login_ms"] = max(cpu_c) / s["established"] if cpu_c and s["established"] else None
    s["cpu_traffic_pct"] = (max(cpu_t) / 10.0 / s["traffic_secs"]
                            if cpu_t and s["traffic_secs"] > 0 else None)
    s["cpu_per_kmsg_ms"] = (max(cpu_t) / (s["msgs_received"] / 1000.0)
                            if cpu_t and s["msgs_received"] else None)
    gen_c = [r["generator_cpu_traffic_ms"] for r in runs if r.get("generator_cpu_traffic_ms") is not None]
    s["gen_cpu_traffic_pct"] = (sum(gen_c) / 10.0 / s["traffic_secs"]
                                if gen_c and s["traffic_secs"] > 0 else None)
    gen_rss = [r["generator_rss_up_kib"] for r in runs if r.get("generator_rss_up_kib") is not None]
    s["gen_rss_per_session_kib"] = (sum(gen_rss) / s["established"]
                                    if gen_rss and s["established"] else None)
    s["loadavg"] = meta.get("loadavg")
    before, up = meta.get("rss_before_kib"), meta.get("rss_up_kib")
    s["rss_before_kib"], s["rss_up_kib"] = before, up
    if before is not None and up is not None and s["established"] > 0:
        s["rss_per_session_kib"] = (up - before) / s["established"]
    else:
        s["rss_per_session_kib"] = None
    return s


def parse_tsung(res):
    logs = sorted(glob.glob(os.path.join(res, "tsung", "log", "*", "tsung.log")))
    if not logs:
        return None
    t = {"users_max": 0, "login_count": 0, "login_mean_ms": None, "errors": {}}
    with open(logs[-1], encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 3 or parts[0] != "stats:":
                continue
            name = parts[1]
            nums = parts[2:]
            try:
                if name == "users":
                    t["users_max"] = max(t["users_max"], int(float(nums[1])))
                elif name == "tr_login" and len(nums) >= 7:
                    t["login_count"] = int(float(nums[6]))
                    t["login_mean_ms"] = float(nums[5])
                elif name.startswith("error_") or name in ("connect_failed",):
                    t["errors"][name] = int(float(nums[-1] if len(nums) == 1 else nums[1]))
            except (ValueError, IndexError):
                continue
    peak = load_lines(os.path.join(res, "tsung", "peak.json"))
    t["herald_sessions_peak"] = peak[0]["herald_sessions_peak"] if peak else None
    return t


def fmt(v, digits=1):
    if v is None:
        return "-"
    if isinstance(v, int):
        return str(v)
    return f"{v:.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}"


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    res = sys.argv[1]
    try:
        with open(os.path.join(res, "params.json"), encoding="utf-8") as f:
            params = json.load(f)
    except (OSError, ValueError):
        params = {}
    servers = {s: merge(s, res) for s in SERVERS}
    h = servers.get("herald") or {}
    p = servers.get("prosody") or {}
    e = servers.get("ejabberd") or {}
    rows = [
        ("sessions held (of N)", "held", 0, True),
        ("sessions failed", "failed", 0, False),
        ("time to establish all (s)", "establish_secs", 2, False),
        ("connect rate achieved (/s)", "connect_rate", 1, True),
        ("login p50 (ms)", "login_p50_ms", 2, False),
        ("login p99 (ms)", "login_p99_ms", 2, False),
        ("server CPU per login (ms)", "cpu_per_login_ms", 2, False),
        ("RSS before (MiB)", "rss_before_mib", 1, False),
        ("RSS/session (KiB)", "rss_per_session_kib", 1, False),
        ("msgs/s received", "msgs_per_sec", 1, True),
        ("msgs sent", "msgs_sent", 0, True),
        ("server CPU in traffic (%core)", "cpu_traffic_pct", 1, False),
        ("server CPU per 1k msgs (ms)", "cpu_per_kmsg_ms", 1, False),
        ("msgs not received by drain end", "msgs_lost", 0, False),
        ("latency p50 (ms)", "lat_p50_ms", 2, False),
        ("latency p90 (ms)", "lat_p90_ms", 2, False),
        ("latency p99 (ms)", "lat_p99_ms", 2, False),
        ("latency max (ms)", "lat_max_ms", 2, False),
        ("presence sent", "presence_sent", 0, True),
        ("generator CPU, traffic (%core)", "gen_cpu_traffic_pct", 1, False),
        ("generator RSS/session (KiB)", "gen_rss_per_session_kib", 1, False),
        ("presence recv/expected", "presence_ratio", 3, True),
    ]
    for s in servers.values():
        if s:
            s["rss_before_mib"] = None if s["rss_before_kib"] is None else s["rss_before_kib"] / 1024
            s["presence_ratio"] = (s["presence_received"] / s["presence_expected"]
                                   if s["presence_expected"] else None)
    out = []
    out.append(f"herald-loadgen comparison, N={params.get('n')} ({params.get('date')}, "
               f"{params.get('host')}, herald {params.get('herald_commit')})")
    out.append(f"connect {params.get('connect_rate')}/s, hold {params.get('hold')} s, "
               f"{params.get('msg_rate')} msg/s and {params.get('presence_rate')} presence/s "
               f"for {params.get('duration')} s, {params.get('roster_k')} contacts/user")
    head = f"{'':31} {'Herald':>10} {'Prosody':>10} {'ejabberd':>10} {'H/P':>6} {'H/E':>6}"
    out.append(head)
    out.append("-" * len(head))
    for label, key, digits, _ in rows:
        hv, pv, ev = h.get(key), p.get(key), e.get(key)
        out.append(f"{label:31} {fmt(hv, digits):>10} {fmt(pv, digits):>10} {fmt(ev, digits):>10} "
                   f"{ratio(hv, pv):>6} {ratio(hv, ev):>6}")
    out.append("load average when each server started: " + ", ".join(
        f"{name} {s.get('loadavg')}" for name, s in servers.items() if s))
    for name, s in servers.items():
        if s and (s["failures"] or s["drops"]):
            out.append(f"{name}: failures {s['failures']} drops {s['drops']}")
    t = parse_tsung(res)
    if t:
        out.append("")
        out.append("tsung cross-check against Herald (SASL PLAIN, same N and connect rate):")
        out.append(f"  tsung users at peak {t['users_max']}, logins completed {t['login_count']}, "
                   f"mean login {fmt(t['login_mean_ms'], 2)} ms, Herald session gauge peak "
                   f"{t['herald_sessions_peak']}; herald-loadgen held {h.get('held')} "
                   f"(login p50 {fmt(h.get('login_p50_ms'), 2)} ms, SCRAM-SHA-1)")
        if t["errors"]:
            out.append(f"  tsung errors: {t['errors']}")
    print("\n".join(out))
    with open(os.path.join(res, "summary.json"), "w", encoding="utf-8") as f:
        json.dump({"params": params, "servers": servers, "tsung": t}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
