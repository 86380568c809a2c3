"""The plain scenarios: messages, presence, subscriptions and errors across the two domains."""

from __future__ import annotations

from registry import *  # noqa: F401,F403


# ---------------------------------------------------------------------- scenarios


@scenario("messages_both_ways", users=(("alice", "a"), ("bob", "b")))
async def messages_both_ways(ctx: Context) -> None:
    """alice@A sends a chat message to bob@B's bare JID; bob receives it with alice's
    full JID as `from` and the body intact. bob answers alice's full JID; alice
    receives it from bob's full JID with its body."""
    alice, bob = await ctx.client("alice"), await ctx.client("bob")
    body = "hello across the federation: é ü ✓ <&>"
    mark = bob.mark()
    alice.send_message(mto=ctx.jid("bob"), mbody=body, mtype="chat")
    got = await bob.wait_for(lambda s: is_message(s, sender=alice.boundjid),
                             f"alice's message from {alice.boundjid}", timeout=FIRST_HOP, since=mark)
    check(got["from"] == alice.boundjid, f"from is {got['from']}, want {alice.boundjid}")
    check(got["body"] == body, f"body is {got['body']!r}, want {body!r}")
    check(got["type"] == "chat", f"type is {got['type']!r}, want 'chat'")
    reply = "and back again"
    mark = alice.mark()
    bob.send_message(mto=alice.boundjid, mbody=reply, mtype="chat")
    got = await alice.wait_for(lambda s: is_message(s, sender=bob.boundjid),
                               f"bob's reply from {bob.boundjid}", timeout=FIRST_HOP, since=mark)
    check(got["from"] == bob.boundjid, f"from is {got['from']}, want {bob.boundjid}")
    check(got["body"] == reply, f"body is {got['body']!r}, want {reply!r}")


@scenario("iq_ping_both_ways", users=(("alice", "a"), ("bob", "b")))
async def iq_ping_both_ways(ctx: Context) -> None:
    """IQs cross in both directions and their results come back: alice@A pings bob's
    full JID (answered by bob's client) and the server B itself; bob pings alice's full
    JID and the server A."""
    alice, bob = await ctx.client("alice"), await ctx.client("bob")
    await alice.ping(bob.boundjid, "bob's client, across s2s", timeout=FIRST_HOP)
    await bob.ping(alice.boundjid, "alice's client, across s2s", timeout=FIRST_HOP)
    await alice.ping(ctx.b.domain, "the remote server", timeout=HOP)
    await bob.ping(ctx.a.domain, "the remote server", timeout=HOP)


@scenario("subscription_both_ways", users=(("alice", "a"), ("bob", "b")))
async def subscription_both_ways(ctx: Context) -> None:
    """alice@A asks bob@B for a subscription; bob gets the request from alice's bare
    JID and approves; alice gets `subscribed` and a roster push. Then the same from bob
    to alice. Finally both rosters, fetched fresh, show the other with
    subscription='both' and no pending ask."""
    alice, bob = await ctx.client("alice"), await ctx.client("bob")
    await befriend(ctx, alice, bob)
    for c, other in ((alice, ctx.jid("bob")), (bob, ctx.jid("alice"))):
        items = await fetch_roster(c)
        item = items.get(other)
        check(item is not None, f"{c.label}: {other} is not on the roster: {items}")
        check(item["subscription"] == "both" and not item["ask"],
              f"{c.label}: roster item {other} is {item}, want subscription='both' without ask")


@scenario("presence_both_ways", users=(("alice", "a"), ("bob", "b")))
async def presence_both_ways(ctx: Context) -> None:
    """With a mutual subscription: alice's presence change reaches bob (from her full
    JID, status intact) and bob's reaches alice; bob logging out reaches alice as
    unavailable; bob logging in again reaches alice as available, and bob gets
    alice's current presence (his server probes hers across s2s)."""
    alice, bob = await ctx.client("alice"), await ctx.client("bob")
    await befriend(ctx, alice, bob)
    for sender, receiver, status in ((alice, bob, "alice is federating"), (bob, alice, "bob too")):
        mark = receiver.mark()
        sender.send_presence(pstatus=status)
        got = await receiver.wait_for(
            lambda s: is_presence(s, sender=sender.boundjid, ptype="available") and s["status"] == status,
            f"available presence with status {status!r} from {sender.boundjid}", timeout=HOP, since=mark)
        check(got["from"] == sender.boundjid, f"from is {got['from']}, want {sender.boundjid}")
    mark = alice.mark()
    old = JID(bob.boundjid)
    await bob.stop()
    await alice.wait_for(lambda s: is_presence(s, sender=old, ptype="unavailable"),
                         f"unavailable presence from {old}", timeout=HOP, since=mark)
    mark = alice.mark()
    bob2 = await ctx.client("bob", "again", presence={"pstatus": "back"})
    await alice.wait_for(
        lambda s: is_presence(s, sender=bob2.boundjid, ptype="available") and s["status"] == "back",
        f"available presence from {bob2.boundjid}", timeout=HOP, since=mark)
    await bob2.wait_for(
        lambda s: is_presence(s, sender=alice.boundjid, ptype="available")
        and s["status"] == "alice is federating",
        f"alice's current presence (answer to the probe) from {alice.boundjid}", timeout=HOP)


@scenario("message_to_nonexistent_remote_user", users=(("alice", "a"), ("bob", "b")))
async def message_to_nonexistent_remote_user(ctx: Context) -> None:
    """alice@A writes to a user that does not exist on B, and bob@B to one that does
    not exist on A: each gets a message of type 'error' back from that JID (bounced by
    the remote server across s2s), with an error condition."""
    alice, bob = await ctx.client("alice"), await ctx.client("bob")
    seen = []
    for c, target in ((alice, f"nobody-{ctx.scenario.name}@{ctx.b.domain}"),
                      (bob, f"nobody-{ctx.scenario.name}@{ctx.a.domain}")):
        mark = c.mark()
        c.send_message(mto=target, mbody="is anybody there?", mtype="chat")
        err = await c.wait_for(lambda s: is_message(s, sender=target, mtype="error"),
                               f"an error message from {target}", timeout=FIRST_HOP, since=mark)
        cond = error_condition(err)
        check(cond in ("service-unavailable", "item-not-found", "recipient-unavailable"),
              f"{c.label}: the bounce from {target} has condition {cond!r}: {describe(err)}")
        c.check_none(lambda s: is_message(s, sender=target), f"a non-error message from {target}", since=mark)
        seen.append(f"{target.split('@')[1]} said {cond}")
    return "[" + ", ".join(seen) + "]"


@scenario("message_to_unknown_domain", users=(("alice", "a"), ("bob", "b")))
async def message_to_unknown_domain(ctx: Context) -> None:
    """A message to a domain with no SRV and no address record (NXDOMAIN from the
    suite's DNS) comes back to the sender as an error, from both servers: the local
    server gives up on the route instead of holding the stanza forever."""
    alice, bob = await ctx.client("alice"), await ctx.client("bob")
    seen = []
    for c in (alice, bob):
        target = f"someone@nowhere-{c.boundjid.domain.split('.')[0]}.example"
        mark = c.mark()
        c.send_message(mto=target, mbody="hello, void", mtype="chat")
        err = await c.wait_for(lambda s: is_message(s, sender=target, mtype="error"),
                               f"an error message from {target}", timeout=FIRST_HOP, since=mark)
        cond = error_condition(err)
        check(cond in ("remote-server-not-found", "remote-server-timeout", "service-unavailable"),
              f"{c.label}: the bounce from {target} has condition {cond!r}: {describe(err)}")
        seen.append(f"{c.boundjid.domain} said {cond}")
    return "[" + ", ".join(seen) + "]"
