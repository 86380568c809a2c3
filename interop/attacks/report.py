#!/usr/bin/env python3
"""Markdown tables from a results directory written by run_all.sh.

    python3 interop/attacks/report.py interop/attacks/results/<UTC time>
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def load(d: Path, name: str) -> dict | None:
    p = d / f"{name}.txt"
    if not p.is_file():
        return None
    first = p.read_text().splitlines()[:1]
    try:
        return json.loads(first[0]) if first else None
    except ValueError:
        return None


def runs(d: Path, mode: str) -> list[tuple[str, dict]]:
    out = []
    for who in ("before", "after"):
        for i in (1, 2):
            r = load(d, f"{mode}-{who}-{i}")
            if r is not None:
                out.append((f"{who} {i}", r))
    return out


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def mib(kib: object) -> str:
    try:
        return f"{int(kib) / 1024:.0f}"
    except (TypeError, ValueError):
        return "?"


def amplify(d: Path) -> str:
    rs = runs(d, "amplify")
    fields = [
        ("load avg at start", lambda r: r["loadavg_start"][0]),
        ("messages sent / time (s)", lambda r: f"{r['sent']}/{r['messages']} in {r['send_secs']}"),
        ("RSS before (MiB)", lambda r: mib(r["rss_before_kib"])),
        ("RSS peak (MiB)", lambda r: mib(r["rss_peak_kib"])),
        ("RSS end of sending (MiB)", lambda r: mib(r["rss_end_of_sending_kib"])),
        ("RSS 30 s after (MiB)", lambda r: mib(r["rss_settled_kib"])),
        ("bob sessions connected at end (server gauge)", lambda r: r["bob_sessions_server_view"]),
        ("bob sessions connected at end (client drain)", lambda r: f"{r['bob_connected_end']}/{r['sessions']}"),
        ("server socket send queues, kernel (MiB)", lambda r: f"{r['server_tls_sockets']['send_queue_bytes'] / 1048576:.1f} "
                                                             f"{r['server_tls_sockets']['by_state']}"),
        ("herald.db* (MiB)", lambda r: f"{r['db_bytes_total'] / 1048576:.1f}"),
        ("offline messages stored", lambda r: int(r["metrics_end"].get("herald_offline_queue_messages", -1))),
        ("alice ping right after sending", lambda r: ping(r["ping_after_sending"])),
        ("alice ping 30 s later (alive?)", lambda r: ping(r["ping_after_settle"])),
        ("error stanzas alice received", lambda r: r["alice_error_stanzas"]),
        ("stream errors (metric)", lambda r: short({k: v for k, v in r["metrics_end"].items() if "stream_errors" in k})),
        ("server CPU during attack (s)", lambda r: r.get("server_cpu_secs_attack", "?")),
        ("server exit after SIGTERM", lambda r: r["server_stop"].get("exit")),
    ]
    return table(["figure"] + [n for n, _ in rs], [[f] + [cell(fn, r) for _, r in rs] for f, fn in fields])


def ping(p: dict) -> str:
    return f"yes {p['secs']} s" if p.get("answered") else f"no ({p.get('error')})"


def short(m: dict) -> str:
    return ", ".join(f"{k.split('condition=')[-1].strip('}').strip(chr(34))}={int(v)}" for k, v in m.items()) or "-"


def cell(fn, r) -> str:
    try:
        return str(fn(r))
    except (KeyError, TypeError, IndexError):
        return "?"


def login(x: dict) -> str:
    return f"ok {x['secs']} s" if x["ok"] else f"FAIL {x['error']} ({x['secs']} s)"


def guess(d: Path, mode: str = "guess") -> str:
    rows = []
    for name, r in runs(d, mode):
        for v in r["variants"]:
            a = v["answers"]
            rows.append([
                name, r["loadavg_start"][0], v["sources"].split(" ")[-1].strip("()") + " addr",
                f"{a.get('not-authorized', 0)} ({v['password_checks_per_sec']}/s)",
                f"{a.get('temporary-auth-failure', 0)} ({v['temporary_auth_failures_per_sec']}/s)",
                f"{sum(v['connect_failures'].values())} ({v['connection_refusals_per_sec']}/s)",
                v["connections_made"], v.get("mean_answer_secs"),
                login(v["login_bystander_during"]), login(v["login_bystander_after"]),
                login(v["login_attacker_addr_after"]),
            ])
    return table(["run", "load", "sources", "not-authorized (real checks)", "temporary-auth-failure",
                  "connections refused", "connections made", "mean answer (s)",
                  "bystander login during", "bystander login after", "attacker-address login after"], rows)


def slots(d: Path, mode: str = "slots") -> str:
    rs = runs(d, mode)
    fields = [
        ("load avg at start", lambda r: r["loadavg_start"][0]),
        ("sockets held, max (client side)", lambda r: r["held_max"]),
        ("sockets held >= 2 s, max", lambda r: r["held_2s_max"]),
        ("connects made (per s)", lambda r: f"{r['connects']} ({r['connects_per_sec']})"),
        ("connect timeouts", lambda r: r["connect_failures"].get("timeout", 0)),
        ("herald_c2s_connections max / end", lambda r: f"{int(r['gauge_max'])} / {int(r['gauge_end'])}"),
        ("server open fds max", lambda r: r["server_fds_max"]),
        ("listen backlog at end", lambda r: r["server_c2s_sockets_end"]["listen_backlog"]),
        ("refused: rate_limited", lambda r: int(refused(r, "rate_limited"))),
        ("refused: per_ip_unauthenticated", lambda r: int(refused(r, "per_ip_unauthenticated"))),
        ("refused: other", lambda r: int(sum(v for k, v in r["refused"].items()
                                            if "rate_limited" not in k and "per_ip_unauthenticated" not in k))),
        ("server CPU in window (s)", lambda r: r["server_cpu_secs"]),
        ("login without attack, p50 (s)", lambda r: r["login_baseline_secs"]),
        ("logins ok during attack", lambda r: f"{r['login_ok']}/{r['logins']}"),
        ("login p50 / max (s)", lambda r: f"{r['login_p50_secs']} / {r['login_max_secs']}"),
    ]
    return table(["figure"] + [n for n, _ in rs], [[f] + [cell(fn, r) for _, r in rs] for f, fn in fields])


def refused(r: dict, reason: str) -> float:
    return sum(v for k, v in r["refused"].items() if f'"{reason}"' in k)


def pipeline(d: Path) -> str:
    rows = []
    for n in (300, 600, 1000):
        for name, r in runs(d, f"pipeline{n}"):
            rows.append([n, name, r["replies"], "yes" if r["disconnected"] else "no",
                         r["end"] or "-", short(r["stream_errors"])])
    return table(["stanzas pipelined", "run", "replies received", "disconnected", "how", "stream error metric"], rows)


def relogin(d: Path) -> str:
    rows = []
    for who in ("before", "after"):
        r = load(d, f"guess-relogin62-{who}-1")
        if r is None:
            continue
        for v in r["variants"]:
            later = v.get("login_bystander_later") or {}
            rows.append([who, v["sources"].split(" ")[-1].strip("()") + " addr", v["answers"].get("not-authorized", 0),
                         login(v["login_bystander_after"]),
                         login(later) if later else "-"])
    return table(["binary", "sources", "real checks", "bystander login right after", "bystander login 62 s after"], rows)


def main() -> None:
    d = Path(sys.argv[1])
    print("### amplify\n\n" + amplify(d) + "\n")
    print("### guess (20 connections)\n\n" + guess(d) + "\n")
    print("### guess (200 connections)\n\n" + guess(d, "guess-conns200") + "\n")
    print("### slots\n\n" + slots(d) + "\n")
    print("### slots, server open-files limit 2048\n\n" + slots(d, "slots-nofile2048") + "\n")
    print("### guess, then a login 62 s later\n\n" + relogin(d) + "\n")
    print("### pipeline\n\n" + pipeline(d) + "\n")


if __name__ == "__main__":
    main()
