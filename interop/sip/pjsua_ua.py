#!/usr/bin/env python3
"""Two real SIP user agents (pjsua2, PJSIP's own API) against the server under test.

    python3 pjsua_ua.py --port PORT [--transport udp|tcp] --note NOTE --text TEXT
                        --alice-password PW --bob-password PW [--log FILE]

alice and bob (sip:USER@localhost) register through the server at 127.0.0.1:PORT (an
outbound proxy: the server's address, a loose route), each adds the other as a buddy
(SUBSCRIBE Event: presence), bob goes online with NOTE (PUBLISH PIDF) and alice must
see him online with that note (her buddy state, from the server's NOTIFY); alice goes
online with NOTE too and bob must see that; then alice sends bob a pager MESSAGE
(TEXT) that bob must receive, with a 2xx for alice. Everything on 127.0.0.1, no audio
device (null device), no STUN, no ICE, no NAT rewriting. Runs as its own process (run
by run.py) so a stuck PJSIP can be killed. Prints progress, `OK` at the end; exit 0
only if every step happened within its deadline.
"""

from __future__ import annotations

import argparse
import sys
import time

import pjsua2 as pj

STEP_TIMEOUT = 10.0


class Acc(pj.Account):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.reg_code = 0
        self.reg_active = False
        self.messages: list[tuple[str, str, str]] = []
        self.im_status: list[int] = []

    def onRegState(self, prm):
        info = self.getInfo()
        self.reg_code = prm.code
        self.reg_active = info.regIsActive
        print(f"{self.name}: registration {prm.code} {prm.reason} active={info.regIsActive}", flush=True)

    def onInstantMessage(self, prm):
        print(f"{self.name}: MESSAGE from {prm.fromUri} ({prm.contentType}): {prm.msgBody!r}", flush=True)
        self.messages.append((prm.fromUri, prm.contentType, prm.msgBody))

    def onInstantMessageStatus(self, prm):
        print(f"{self.name}: MESSAGE status {prm.code} {prm.reason}", flush=True)
        self.im_status.append(prm.code)


class Buddy(pj.Buddy):
    def __init__(self, owner: str) -> None:
        super().__init__()
        self.owner = owner
        self.states: list[tuple[int, str, str, int]] = []

    def onBuddyState(self):
        info = self.getInfo()
        st = info.presStatus
        self.states.append((st.status, st.statusText, st.note, info.subState))
        print(f"{self.owner} sees {info.uri}: status={st.status} text={st.statusText!r} "
              f"note={st.note!r} sub={info.subStateName} ({info.subTermReason})", flush=True)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--transport", choices=["udp", "tcp"], default="udp")
    p.add_argument("--note", required=True)
    p.add_argument("--text", required=True)
    p.add_argument("--alice-password", required=True)
    p.add_argument("--bob-password", required=True)
    p.add_argument("--log", default="")
    args = p.parse_args()

    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.uaConfig.stunServer = pj.StringVector()
    cfg.uaConfig.userAgent = "herald-interop-pjsua2"
    cfg.logConfig.level = 5 if args.log else 1
    cfg.logConfig.consoleLevel = 0
    if args.log:
        cfg.logConfig.filename = args.log
    cfg.medConfig.hasIoqueue = True
    ep.libInit(cfg)
    tcfg = pj.TransportConfig()
    tcfg.boundAddress = "127.0.0.1"
    tcfg.publicAddress = "127.0.0.1"
    tcfg.port = 0
    kind = pj.PJSIP_TRANSPORT_UDP if args.transport == "udp" else pj.PJSIP_TRANSPORT_TCP
    ep.transportCreate(kind, tcfg)
    ep.libStart()
    ep.audDevManager().setNullDev()

    proxy = f"sip:127.0.0.1:{args.port};lr;transport={args.transport}"

    def poll(cond, what: str, timeout: float = STEP_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
            ep.libHandleEvents(20)

    def account(user: str, password: str) -> Acc:
        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:{user}@localhost"
        acfg.regConfig.registrarUri = "sip:localhost"
        acfg.regConfig.timeoutSec = 120
        acfg.sipConfig.proxies.append(proxy)
        acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", user, 0, password))
        acfg.presConfig.publishEnabled = True
        acfg.natConfig.contactRewriteUse = 0
        acfg.natConfig.viaRewriteUse = 0
        acfg.natConfig.sdpNatRewriteUse = 0
        acfg.natConfig.sipOutboundUse = 0
        acfg.natConfig.iceEnabled = False
        acfg.natConfig.sipStunUse = pj.PJSUA_STUN_USE_DISABLED
        acfg.natConfig.mediaStunUse = pj.PJSUA_STUN_USE_DISABLED
        acc = Acc(user)
        acc.create(acfg)
        return acc

    status = 1
    try:
        alice = account("alice", args.alice_password)
        bob = account("bob", args.bob_password)
        poll(lambda: alice.reg_active and bob.reg_active,
             "both registrations (alice "
             f"{alice.reg_code}, bob {bob.reg_code})")
        print("both registered", flush=True)

        def buddy(owner: Acc, uri: str) -> Buddy:
            bcfg = pj.BuddyConfig()
            bcfg.uri = uri
            bcfg.subscribe = True
            b = Buddy(owner.name)
            b.create(owner, bcfg)
            return b

        bob_at_alice = buddy(alice, "sip:bob@localhost")
        alice_at_bob = buddy(bob, "sip:alice@localhost")
        active = pj.PJSIP_EVSUB_STATE_ACTIVE
        poll(lambda: bob_at_alice.getInfo().subState == active and alice_at_bob.getInfo().subState == active,
             "both presence subscriptions active")
        print("both subscriptions active", flush=True)

        def go_online(acc: Acc, note: str) -> None:
            ps = pj.PresenceStatus()
            ps.status = pj.PJSUA_BUDDY_STATUS_ONLINE
            ps.note = note
            acc.setOnlineStatus(ps)

        def sees_online(b: Buddy, note: str):
            def cond() -> bool:
                # Keep the BuddyInfo alive while reading its presStatus: a member of a
                # temporary is freed memory through SWIG (std::bad_alloc, or SIGSEGV).
                info = b.getInfo()
                st = info.presStatus
                return st.status == pj.PJSUA_BUDDY_STATUS_ONLINE and st.note == note
            return cond

        go_online(bob, args.note)
        poll(sees_online(bob_at_alice, args.note),
             f"alice to see bob online with note {args.note!r} (states seen: {bob_at_alice.states})")
        print("alice sees bob online with his note", flush=True)
        go_online(alice, args.note + " too")
        poll(sees_online(alice_at_bob, args.note + " too"),
             f"bob to see alice online with her note (states seen: {alice_at_bob.states})")
        print("bob sees alice online with her note", flush=True)

        prm = pj.SendInstantMessageParam()
        prm.content = args.text
        bob_at_alice.sendInstantMessage(prm)
        poll(lambda: any(body == args.text for _f, _c, body in bob.messages),
             f"bob to receive alice's MESSAGE (got {bob.messages})")
        poll(lambda: bool(alice.im_status), "alice's MESSAGE status")
        if not 200 <= alice.im_status[-1] < 300:
            raise RuntimeError(f"alice's MESSAGE got {alice.im_status[-1]}, want 2xx")
        sender = bob.messages[-1][0]
        if "alice@localhost" not in sender:
            raise RuntimeError(f"bob's MESSAGE came from {sender!r}, want sip:alice@localhost")
        print("pager MESSAGE delivered", flush=True)

        # Unsubscribe and unregister before leaving (pjsua would on destroy too).
        bob_at_alice.subscribePresence(False)
        alice_at_bob.subscribePresence(False)
        alice.setRegistration(False)
        bob.setRegistration(False)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and (alice.reg_active or bob.reg_active):
            ep.libHandleEvents(20)
        print("OK", flush=True)
        status = 0
    except Exception as e:  # noqa: BLE001
        print(f"FAIL {type(e).__name__}: {e}", flush=True)
    finally:
        try:
            ep.libDestroy()
        except Exception:  # noqa: BLE001
            pass
    return status


if __name__ == "__main__":
    sys.exit(main())
