"""Herald reloading its configuration by SIGHUP while streams are up."""

from __future__ import annotations

from registry import *  # noqa: F401,F403


# ------------------------------------------------ Herald reloading by SIGHUP, live


def herald_links(pid: int) -> set[tuple[int, int]]:
    """(local port, remote port) of every established TCP connection (IPv4) the
    process `pid` holds: its socket inodes (/proc/PID/fd) looked up in /proc/net/tcp."""
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    links = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        if len(f) > 9 and f[3] == "01" and f[9] in inodes:  # 01: ESTABLISHED
            links.add((int(f[1].rsplit(":", 1)[1], 16), int(f[2].rsplit(":", 1)[1], 16)))
    return links


def stream_links(ctx: Context) -> set[tuple[int, int]]:
    """Herald's (side a) connections with the peer's s2s listener (outbound) and into
    its own s2s listener (inbound: only the peer connects there in this run)."""
    return {(lp, rp) for lp, rp in herald_links(ctx.a.proc.pid)
            if rp == ctx.b.s2s_port or lp == ctx.a.s2s_port}


def streams_opened(herald: HeraldServer, domain: str) -> tuple[int, int]:
    """How many streams with `domain` Herald's log says it has set up since it was
    first started: (inbound authenticated, outbound up)."""
    text = herald.log_since(0)
    inbound = sum(1 for line in text.splitlines()
                  if "inbound stream authenticated" in line and f"remote={domain} " in line + " ")
    outbound = sum(1 for line in text.splitlines()
                   if "outbound stream up" in line and f"s2s-out{{remote={domain}}}" in line)
    return inbound, outbound


async def wait_streams(herald: HeraldServer, domain: str, want: dict[str, int], what: str,
                       timeout: float = HOP) -> None:
    """Until Herald's herald_s2s_streams for `domain` is `want` ({"in": n, "out": m})."""
    deadline = time.monotonic() + timeout
    while True:
        got = await herald.s2s_streams(domain)
        if got == want:
            return
        if time.monotonic() > deadline:
            raise ScenarioError(f"{what}: herald_s2s_streams for {domain} is {got}, want {want} "
                                f"(waited {timeout:g}s)")
        # /metrics has no change notification: one request every 50 ms, bounded.
        await asyncio.sleep(0.05)


def reload_closed(text: str) -> int:
    """The `closed` count of Herald's `s2s rules reloaded closed=N` line."""
    m = re.search(r"s2s rules reloaded closed=(\d+)", text)
    check(m is not None, f"no 's2s rules reloaded closed=N' line in herald's log after SIGHUP:\n{text[-1500:]}")
    return int(m.group(1))


async def bounce(sender: Client, to: str, body: str, timeout: float) -> str:
    """sender writes to `to`; the message comes back as an error from `to`: its condition."""
    mark = sender.mark()
    sender.send_message(mto=to, mbody=body, mtype="chat")
    err = await sender.wait_for(lambda s: is_message(s, sender=to, mtype="error"),
                                f"an error message from {to} for {body!r}", timeout=timeout, since=mark)
    return error_condition(err)


async def both_ways_on_the_same_streams(ctx: Context, alice: Client, bob: Client, step: str,
                                        before: tuple, links: set) -> None:
    """Messages cross both ways, and Herald still has exactly the streams of `before`
    (streams_opened counts) with no connection outside `links`."""
    await deliver(alice, bob, ctx.jid("bob"), f"alice after {step}", HOP)
    await deliver(bob, alice, alice.boundjid, f"bob after {step}", HOP)
    await wait_streams(ctx.a, ctx.b.domain, {"in": 1, "out": 1}, f"after {step}")
    now = streams_opened(ctx.a, ctx.b.domain)
    check(now == before, f"after {step}: herald set up streams with {ctx.b.domain} again: "
                         f"(inbound, outbound) opened {before} before, {now} now")
    new = stream_links(ctx) - links
    check(not new, f"after {step}: herald has new s2s connections {sorted(new)} "
                   f"(before: {sorted(links)})")


@scenario("sighup_acl_reload", users=(("alice", "a"), ("bob", "b")), order=1, herald_only=True)
async def sighup_acl_reload(ctx: Context) -> str:
    """Herald federates with B (streams up both ways), and its herald.toml is rewritten
    and Herald sent SIGHUP (by PID), five times:
    (1) a deny for `*.blocked.example` and another `[s2s.limits]` rate: reloaded, a
    message to that domain bounces `not-allowed`, and messages cross both ways on the
    same streams (herald_s2s_streams 1 in, 1 out; no new stream in Herald's log; no new
    TCP connection of Herald's with B);
    (2) a file that denies B but does not load (an unknown key): refused, the same
    streams keep carrying messages both ways;
    (3) a deny for B (both directions): Herald closes both streams (`closed=2`, the
    gauges drop to 0); alice's message bounces `not-allowed`; bob's message does not
    reach alice (it bounces back to bob, recorded, or nothing comes within the wait);
    bob gets nothing from alice;
    (4) a file that lifts the deny but does not load: refused, alice's message still
    bounces `not-allowed`;
    (5) the run's own configuration: messages flow both ways again (B may bounce
    bob's first tries while it backs off from the refusals: retried once a second).
    Herald keeps its run configuration afterwards, restored also when a step fails."""
    herald = ctx.a
    check(isinstance(herald, HeraldServer), "side a must be herald")
    base = herald.variant
    b_dom = ctx.b.domain
    deny_b = f"""
[[s2s.acl]]
domain = "{b_dom}"
action = "deny"
direction = "both"
"""
    unrelated = """
[[s2s.acl]]
domain = "*.blocked.example"
action = "deny"
direction = "both"

[s2s.limits]
stanzas_per_sec = 150
"""
    notes = []
    restored = False
    try:
        alice, bob = await ctx.client("alice"), await ctx.client("bob")
        await deliver(alice, bob, ctx.jid("bob"), "before any reload", FIRST_HOP)
        await deliver(bob, alice, alice.boundjid, "and back before any reload", FIRST_HOP)
        await wait_streams(herald, b_dom, {"in": 1, "out": 1}, "before the reloads")
        opened = streams_opened(herald, b_dom)
        check(opened[0] >= 1 and opened[1] >= 1,
              f"herald's log shows (inbound, outbound) streams with {b_dom} set up: {opened}")
        links = stream_links(ctx)
        check(any(rp == ctx.b.s2s_port for _, rp in links) and any(lp == ctx.a.s2s_port for lp, _ in links),
              f"herald holds no connection to {b_dom}'s s2s port {ctx.b.s2s_port} or none into its own "
              f"{ctx.a.s2s_port}: {sorted(links)}")

        # (1) an unrelated change: the streams with B stay.
        outcome, text = await herald.reload(dataclasses.replace(base, tables=base.tables + unrelated))
        check(outcome == "reloaded", f"(1) reload refused:\n{text[-1500:]}")
        check(reload_closed(text) == 0, f"(1) the unrelated reload closed streams:\n{text[-1500:]}")
        cond = await bounce(alice, "someone@x.blocked.example", "to a denied domain", HOP)
        check(cond == "not-allowed", f"(1) the message to x.blocked.example bounced with {cond!r}, "
                                     f"want 'not-allowed' (the reloaded ACL)")
        await both_ways_on_the_same_streams(ctx, alice, bob, "the unrelated reload", opened, links)
        notes.append(f"unrelated reload: same streams, same {len(links)} connections")

        # (2) a broken file (that would deny B) is refused; the same streams carry on.
        outcome, text = await herald.reload(dataclasses.replace(base, tables=base.tables + deny_b),
                                            broken="no_such_key = 1\n")
        check(outcome == "refused", f"(2) a broken file was not refused: {outcome}:\n{text[-1500:]}")
        await both_ways_on_the_same_streams(ctx, alice, bob, "the refused reload", opened, links)
        notes.append("broken file refused")

        # (3) deny B: both streams close, nothing crosses.
        before = await herald.s2s_streams(b_dom)
        outcome, text = await herald.reload(dataclasses.replace(base, tables=base.tables + deny_b))
        check(outcome == "reloaded", f"(3) reload refused:\n{text[-1500:]}")
        closed = reload_closed(text)
        check(closed == before["in"] + before["out"],
              f"(3) the deny closed {closed} streams, want {before['in'] + before['out']} ({before})")
        check(f"domain={b_dom}" in text and "s2s stream closed: the reloaded ACL denies it" in text,
              f"(3) herald's log does not say it closed the streams with {b_dom}:\n{text[-1500:]}")
        await wait_streams(herald, b_dom, {"in": 0, "out": 0}, "(3) after the deny")
        mark_a, mark_b = alice.mark(), bob.mark()
        cond = await bounce(alice, ctx.jid("bob"), "denied by the reload", HOP)
        check(cond == "not-allowed", f"(3) alice's message to bob bounced with {cond!r}, want 'not-allowed'")
        refused = "refused by the reload"
        bob.send_message(mto=alice.boundjid, mbody=refused, mtype="chat")
        try:
            how, got = await first_of({
                "delivered": alice.wait_for(lambda s: is_message(s, sender=bob.boundjid, body=refused),
                                            "bob's message", timeout=FIRST_HOP, since=mark_a),
                "bounced": bob.wait_for(lambda s: is_message(s, sender=alice.boundjid, mtype="error"),
                                        "an error from alice", timeout=FIRST_HOP, since=mark_b),
            }, "bob's message to alice arriving or bouncing", FIRST_HOP)
        except ScenarioError:  # neither within the wait: nothing came back, which is allowed
            how, got = "nothing came back", None
        check(how != "delivered", f"(3) bob's message reached alice although herald denies {b_dom}")
        await alice.drain()
        alice.check_none(lambda s: is_message(s, sender=bob.boundjid), "bob's message while denied",
                         since=mark_a)
        await bob.sync()
        bob.check_none(lambda s: is_message(s, sender=alice.boundjid), "alice's message while denied",
                       since=mark_b)
        notes.append(f"deny closed {closed} streams; alice -> bob {cond}; bob -> alice "
                     + (f"bounced ({error_condition(got)})" if how == "bounced" else how))

        # (4) a broken file that would lift the deny: refused, still denied.
        outcome, text = await herald.reload(base, broken="[[s2s.acl]]\ndomain = 7\n")
        check(outcome == "refused", f"(4) a broken file was not refused: {outcome}:\n{text[-1500:]}")
        cond = await bounce(alice, ctx.jid("bob"), "still denied", HOP)
        check(cond == "not-allowed", f"(4) after the refused reload alice's message bounced with {cond!r}, "
                                     f"want 'not-allowed' (the deny still in force)")

        # (5) the run's configuration again: delivery is back.
        outcome, text = await herald.reload(base)
        check(outcome == "reloaded", f"(5) reload refused:\n{text[-1500:]}")
        restored = True
        await deliver(alice, bob, ctx.jid("bob"), "the deny is lifted", FIRST_HOP)
        bounces = await deliver_after_backoff(bob, alice, alice.boundjid, "bob after the lift", FIRST_HOP)
        await wait_streams(herald, b_dom, {"in": 1, "out": 1}, "(5) after the lift")
        notes.append("lifted: delivered both ways" + (f" (bob's first {len(bounces)} bounced: "
                                                      f"{', '.join(sorted(set(bounces)))})" if bounces else ""))
        return "[" + "; ".join(notes) + "]"
    finally:
        if not restored and herald.alive():
            try:
                outcome, _ = await herald.reload(base)
            except ServerError:
                outcome = "failed"
            if outcome != "reloaded":
                await herald.reconfigure(base)
