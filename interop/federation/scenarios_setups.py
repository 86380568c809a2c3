"""Scenarios that restart a server or give Herald a setup of its own (routes, SRV, direct TLS, ACLs)."""

from __future__ import annotations

from registry import *  # noqa: F401,F403


# ------------------------------------------------ scenarios with a Herald setup, restarts


def acl(action_direction: str):
    def setup(ctx: Context) -> HeraldSetup:
        return HeraldSetup(tables=f"""
[[s2s.acl]]
domain = "{ctx.b.domain}"
action = "deny"
direction = "{action_direction}"
""")
    return setup


@scenario("acl_deny_outbound", users=(("alice", "a"), ("bob", "b")), herald=acl("outbound"))
async def acl_deny_outbound(ctx: Context) -> str:
    """Herald denies outbound s2s to B ([[s2s.acl]] direction "outbound"): alice's
    message to bob comes back as an error `not-allowed` from bob's JID, and bob gets
    nothing. Barrier: bob then writes to alice (inbound is allowed; it may be delivered
    or bounced, recorded) and syncs with his own server before the check."""
    alice, bob = await ctx.client("alice"), await ctx.client("bob")
    mark_b = bob.mark()
    mark = alice.mark()
    alice.send_message(mto=ctx.jid("bob"), mbody="this must not leave herald", mtype="chat")
    err = await alice.wait_for(lambda s: is_message(s, sender=ctx.jid("bob"), mtype="error"),
                               f"an error message from {ctx.jid('bob')}", timeout=FIRST_HOP, since=mark)
    cond = error_condition(err)
    check(cond == "not-allowed", f"{alice.label}: the bounce has condition {cond!r}, want 'not-allowed': "
                                 f"{describe(err)}")
    back = "inbound is still allowed"
    mark = alice.mark()
    bob.send_message(mto=alice.boundjid, mbody=back, mtype="chat")
    how, got = await first_of({
        "delivered": alice.wait_for(lambda s: is_message(s, sender=bob.boundjid, body=back),
                                    "bob's message", timeout=FIRST_HOP, since=mark),
        "bounced": bob.wait_for(lambda s: is_message(s, sender=alice.boundjid, mtype="error"),
                                "an error from alice", timeout=FIRST_HOP, since=mark_b),
    }, "bob's message to alice arriving or bouncing", FIRST_HOP)
    await bob.sync()
    bob.check_none(lambda s: is_message(s, sender=alice.boundjid), "alice's message", since=mark_b)
    extra = f", {error_condition(got)}" if how == "bounced" else ""
    return f"[herald said {cond}; bob -> alice meanwhile: {how}{extra}]"


# Last (order 3): the peer remembers the refused stream for a while (ejabberd keeps
# bouncing stanzas to Herald's domain), which would break the scenarios after it.
@scenario("acl_deny_inbound", users=(("alice", "a"), ("bob", "b")), herald=acl("inbound"), order=3)
async def acl_deny_inbound(ctx: Context) -> str:
    """Herald denies inbound s2s from B ([[s2s.acl]] direction "inbound"): bob's
    message to alice comes back to bob as an error (whatever condition B reports: the
    PASS line records it), and alice gets nothing (checked after a second refused
    message and a drain barrier on alice's session)."""
    alice, bob = await ctx.client("alice"), await ctx.client("bob")
    mark_a = alice.mark()
    conds = []
    for n in (1, 2):
        mark = bob.mark()
        bob.send_message(mto=ctx.jid("alice"), mbody=f"refused {n}", mtype="chat")
        err = await bob.wait_for(lambda s: is_message(s, sender=ctx.jid("alice"), mtype="error"),
                                 f"an error message from {ctx.jid('alice')}", timeout=FIRST_HOP, since=mark)
        conds.append(error_condition(err))
    await alice.drain()
    alice.check_none(lambda s: is_message(s, sender=bob.boundjid), "bob's messages", since=mark_a)
    return f"[{ctx.b.domain} said {', '.join(conds)}]"


@scenario("static_route_without_srv", users=(("alice", "a"), ("bob", "b")),
          herald=lambda ctx: HeraldSetup(tables=f"""
[[s2s.route]]
domain = "{ctx.b.domain}"
target = "{HOST}:{ctx.b.s2s_port}"
""", srv=[]))
async def static_route_without_srv(ctx: Context) -> None:
    """Herald's DNS has no record for B at all (no SRV, no address); a [[s2s.route]]
    with target 127.0.0.1:<B's s2s port> routes to it: alice's message reaches bob,
    and bob's reply reaches alice."""
    alice, bob = await ctx.client("alice"), await ctx.client("bob")
    await deliver(alice, bob, ctx.jid("bob"), "by static route", FIRST_HOP)
    await deliver(bob, alice, alice.boundjid, "and back by SRV", FIRST_HOP)


@scenario("srv_failover", users=(("alice", "a"), ("bob", "b")),
          herald=lambda ctx: HeraldSetup(srv=[
              (f"_xmpp-server._tcp.{ctx.b.domain}", "localhost", ctx.closed_port, 0, 0),
              (f"_xmpp-server._tcp.{ctx.b.domain}", "localhost", ctx.b.s2s_port, 10, 0),
              (f"_xmpp-server._tcp.{ctx.a.domain}", "localhost", ctx.a.s2s_port, 0, 0),
          ]))
async def srv_failover(ctx: Context) -> None:
    """Herald's DNS publishes two `_xmpp-server` SRV records for B: priority 0 points
    at a closed loopback port, priority 10 at B's s2s listener. alice's message still
    reaches bob (Herald falls over to the second target)."""
    alice, bob = await ctx.client("alice"), await ctx.client("bob")
    await deliver(alice, bob, ctx.jid("bob"), "through the second SRV target", FIRST_HOP)
    await deliver(bob, alice, alice.boundjid, "and back", FIRST_HOP)


@scenario("direct_tls_outbound", users=(("alice", "a"), ("bob", "b")),
          herald=lambda ctx: HeraldSetup(listen_tls=True, srv=[
              (f"_xmpps-server._tcp.{ctx.b.domain}", "localhost", ctx.b.s2s_tls_port, 0, 0),
              (f"_xmpp-server._tcp.{ctx.a.domain}", "localhost", ctx.a.s2s_port, 0, 0),
          ]))
async def direct_tls_outbound(ctx: Context) -> None:
    """Herald's DNS publishes only `_xmpps-server._tcp.B` (XEP-0368), pointing at B's
    direct-TLS s2s listener (Prosody `s2s_direct_tls_ports`, ejabberd `ejabberd_s2s_in`
    with `tls: true`); there is no `_xmpp-server` record and no address record for B,
    so only a direct-TLS connection can carry alice's message to bob."""
    alice, bob = await ctx.client("alice"), await ctx.client("bob")
    await deliver(alice, bob, ctx.jid("bob"), "over direct TLS", FIRST_HOP)
    await deliver(bob, alice, alice.boundjid, "and back", FIRST_HOP)


@scenario("direct_tls_inbound", users=(("alice", "a"), ("bob", "b")), peers=("prosody", "herald"),
          herald=lambda ctx: HeraldSetup(listen_tls=True, peer_srv=[
              (f"_xmpps-server._tcp.{ctx.a.domain}", "localhost", ctx.a.s2s_tls_port, 0, 0),
          ]))
async def direct_tls_inbound(ctx: Context) -> None:
    """Herald listens for direct-TLS s2s ([s2s] listen_tls); the peer (Prosody 0.12,
    which looks up `_xmpps-server` before `_xmpp-server`, or a second Herald, which
    pools both record kinds) resolves through a dnsmasq
    that publishes only `_xmpps-server._tcp.A` pointing at that listener: no
    `_xmpp-server` and no address record for A. So bob's message can reach alice only
    over a direct-TLS stream into Herald. alice's reply goes back as usual."""
    alice, bob = await ctx.client("alice"), await ctx.client("bob")
    await deliver(bob, alice, ctx.jid("alice"), "over direct TLS into herald", FIRST_HOP)
    await deliver(alice, bob, bob.boundjid, "and back", FIRST_HOP)


# Herald's pairs only: in the control pair it would add two ejabberd restarts (~30 s)
# to every CI run and check nothing about Herald.
@scenario("peer_restart", users=(("alice", "a"), ("bob", "b")), order=1, herald_only=True)
async def peer_restart(ctx: Context) -> str:
    """Messages flow A -> B; B is stopped (Prosody: SIGTERM; ejabberd: `ejabberdctl
    stop`) and alice writes to bob: that message must bounce back to alice as an error
    or reach bob once B is up again, never vanish. B starts again (same data), bob
    logs in again, and messages flow both ways."""
    alice, bob = await ctx.client("alice"), await ctx.client("bob")
    await deliver(alice, bob, ctx.jid("bob"), "before the restart", FIRST_HOP)
    ok, how = await ctx.b.stop()
    check(ok, f"stopping {ctx.b.kind}: {how}")
    await bob.kill()
    mark = alice.mark()
    body = "while you were down"
    alice.send_message(mto=ctx.jid("bob"), mbody=body, mtype="chat")
    early = None
    try:  # a bounce while B is down (the usual case); else it may still come later
        early = await alice.wait_for(lambda s: is_message(s, sender=ctx.jid("bob"), mtype="error"),
                                     "an error while B is down", timeout=HOP, since=mark)
    except ScenarioError:
        pass
    await ctx.b.start(ctx.b.setting)
    bob2 = await ctx.client("bob", "back")
    if early is not None:
        outcome = f"bounced while down ({error_condition(early)})"
    else:
        how, got = await first_of({
            "bounced": alice.wait_for(lambda s: is_message(s, sender=ctx.jid("bob"), mtype="error"),
                                      "an error", timeout=FIRST_HOP, since=mark),
            "delivered": bob2.wait_for(lambda s: is_message(s, sender=alice.boundjid, body=body),
                                       "the message", timeout=FIRST_HOP),
        }, "alice's message bouncing or reaching bob", FIRST_HOP)
        outcome = f"{how} after the restart" + (f" ({error_condition(got)})" if how == "bounced" else "")
    bounces = await deliver_after_backoff(alice, bob2, ctx.jid("bob"), "after the restart", FIRST_HOP)
    await deliver(bob2, alice, alice.boundjid, "back again", FIRST_HOP)
    after = f"; then {len(bounces)} bounce(s) ({', '.join(sorted(set(bounces)))}) before delivery" if bounces else ""
    return f"[message sent while {ctx.b.kind} was down: {outcome}{after}]"
