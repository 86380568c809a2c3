"""`guess`: online password guessing with SASL PLAIN over direct TLS.

C connections from the given source addresses each try wrong passwords for alice,
again on the same connection after every <failure/>, and reconnect when the server
closes it, for D seconds. Every answer is classified (not-authorized is a real
password check, temporary-auth-failure a refusal during a block). During and after
the window a legitimate login of alice is timed from a bystander address, and after
the window one from the attacking address.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from herald_proc import HOST, Herald
from wire import Closed, LoginError, connect_stream, describe_error, first_condition, login, sasl_plain

RIGHT_PW = "right"
BYSTANDER = "127.0.0.2"
LOGIN_TIMEOUT = 30.0
CONNECT_BACKOFF = 0.05


class Stats:
    def __init__(self) -> None:
        self.answers: Counter[str] = Counter()
        self.connect_failures: Counter[str] = Counter()
        self.closes: Counter[str] = Counter()
        self.connections = 0
        self.answer_secs_sum = 0.0
        self.answer_secs_max = 0.0
        self.in_flight_at_end = 0


async def worker(i: int, srv: Herald, source: str, deadline: float, st: Stats) -> None:
    n = 0
    while time.monotonic() < deadline:
        left = deadline - time.monotonic()
        try:
            conn = await connect_stream(HOST, srv.tls_port, srv.ca_file, direct_tls=True,
                                        source=source, timeout=min(10.0, left))
        except asyncio.TimeoutError:
            if time.monotonic() < deadline:
                st.connect_failures["timeout"] += 1
            continue
        except (OSError, Closed, LoginError) as e:
            st.connect_failures[describe_error(e)] += 1
            # Without a pause a refused connect loop would only measure this tool.
            await asyncio.sleep(CONNECT_BACKOFF)
            continue
        st.connections += 1
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                n += 1
                t0 = time.monotonic()
                try:
                    result, data = await sasl_plain(conn, "alice", f"wrong-{i}-{n}", left)
                except asyncio.TimeoutError:
                    st.in_flight_at_end += 1
                    return
                except (Closed, OSError) as e:
                    st.closes[describe_error(e)] += 1
                    break
                took = time.monotonic() - t0
                st.answer_secs_sum += took
                st.answer_secs_max = max(st.answer_secs_max, took)
                if result == "success":
                    st.answers["success(!)"] += 1
                    break
                st.answers[first_condition(data) or "other"] += 1
        finally:
            conn.close()


async def timed_login(srv: Herald, source: str, label: str) -> dict[str, object]:
    t0 = time.monotonic()
    try:
        conn = await login(HOST, srv.tls_port, srv.ca_file, "alice", RIGHT_PW, direct_tls=True,
                           resource=f"legit-{label}", source=source, timeout=LOGIN_TIMEOUT)
    except (OSError, asyncio.TimeoutError, Closed, LoginError) as e:
        return {"from": source, "ok": False, "secs": round(time.monotonic() - t0, 3), "error": describe_error(e)}
    took = time.monotonic() - t0
    try:
        await conn.send(b"</stream:stream>")
    except OSError:
        pass
    conn.close()
    return {"from": source, "ok": True, "secs": round(took, 3)}


async def variant(srv: Herald, sources: list[str], args) -> dict[str, object]:
    st = Stats()
    cpu0 = srv.cpu_secs()
    start = time.monotonic()
    deadline = start + args.duration

    async def during() -> dict[str, object]:
        # Half-way through the window: can a bystander log in while the attack runs?
        await asyncio.sleep(args.duration / 2)
        return await timed_login(srv, BYSTANDER, "during")

    during_task = asyncio.create_task(during())
    workers = [worker(i, srv, sources[i % len(sources)], deadline, st) for i in range(args.conns)]
    await asyncio.wait_for(asyncio.gather(*workers), args.duration + 15)
    window = time.monotonic() - start
    cpu = srv.cpu_secs() - cpu0
    after_bystander = await timed_login(srv, BYSTANDER, "after")
    after_attacker = await timed_login(srv, sources[0], "attacker")
    login_during = await during_task
    relogin = None
    if args.relogin_after > 0:
        # How long the account stays locked for its owner once the attack has stopped.
        await asyncio.sleep(max(0.0, start + window + args.relogin_after - time.monotonic()))
        relogin = await timed_login(srv, BYSTANDER, "later")
        relogin["after_secs"] = args.relogin_after
    m = await srv.metrics()
    checked = st.answers.get("not-authorized", 0)
    refused_taf = st.answers.get("temporary-auth-failure", 0)
    refused_conn = sum(st.connect_failures.values())
    answered = sum(st.answers.values())
    return {
        "sources": f"{sources[0]}..{sources[-1]} ({len(sources)})",
        "conns": args.conns,
        "window_secs": round(window, 2),
        "server_cpu_secs_window": round(cpu, 2),
        "answers": dict(st.answers),
        "connections_made": st.connections,
        "connect_failures": dict(st.connect_failures),
        "closed_by_server": dict(st.closes),
        "in_flight_at_end": st.in_flight_at_end,
        "password_checks_per_sec": round(checked / args.duration, 2),
        "temporary_auth_failures_per_sec": round(refused_taf / args.duration, 2),
        "connection_refusals_per_sec": round(refused_conn / args.duration, 2),
        "mean_answer_secs": round(st.answer_secs_sum / answered, 3) if answered else None,
        "max_answer_secs": round(st.answer_secs_max, 3),
        "login_bystander_during": login_during,
        "login_bystander_after": after_bystander,
        "login_attacker_addr_after": after_attacker,
        "login_bystander_later": relogin,
        "metrics": {k: v for k, v in m.items() if k.startswith(("herald_auth", "herald_c2s_connections_refused"))},
    }


async def run_variant(binary, args, sources: list[str]) -> dict[str, object]:
    srv = Herald(binary, keep=args.keep)
    try:
        await srv.start()
        await srv.add_user("alice", RIGHT_PW)
        res = await variant(srv, sources, args)
        res["server_alive"] = srv.alive()
        res["server_stop"] = await srv.stop()
        res["panics"] = srv.panics()
        return res
    finally:
        if srv.alive():
            await srv.stop()
        srv.cleanup()


async def run(binary, args) -> dict[str, object]:
    variants = []
    if args.sources in (0, 1):
        variants.append(await run_variant(binary, args, ["127.0.0.1"]))
    if args.sources in (0, 20):
        variants.append(await run_variant(binary, args, [f"127.0.1.{i}" for i in range(1, 21)]))
    return {"duration_secs": args.duration, "conns": args.conns, "variants": variants}


def summary(r: dict[str, object]) -> list[str]:
    lines = []
    for v in r["variants"]:
        def lg(x: dict) -> str:
            return f"{'ok' if x['ok'] else 'FAIL ' + x.get('error', '')} {x['secs']}s"
        lines.append(
            f"[{v['sources']}] checks/s {v['password_checks_per_sec']}, temp-fail/s "
            f"{v['temporary_auth_failures_per_sec']}, conn refusals/s {v['connection_refusals_per_sec']}; "
            f"answers {v['answers']}; connects {v['connections_made']}, failures {v['connect_failures']}, "
            f"closes {v['closed_by_server']}")
        lines.append(
            f"    login bystander during {lg(v['login_bystander_during'])}, after {lg(v['login_bystander_after'])}; "
            f"from attacker addr {lg(v['login_attacker_addr_after'])}; server alive {v['server_alive']}"
            + (f"; bystander {v['login_bystander_later']['after_secs']} s after the window: "
               f"{lg(v['login_bystander_later'])}" if v.get("login_bystander_later") else ""))
    return lines
