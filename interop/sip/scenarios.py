"""The scenarios of the SIP interop suite. Each is `func(ctx)` (ctx: run.Context),
registered with the servers it applies to; a failed check raises ScenarioError.

SIPp scenarios run over UDP (`-t u1`) and TCP (`-t t1`); sipsak and pjsua2 over UDP.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

import siplib
from common import HOST, USERS, ScenarioError, check, free_port, log, scenario

TRANSPORTS = {"udp": "u1", "tcp": "t1"}


# ---------------------------------------------------------------------------- SIPp


def _register_digest(ctx, t):
    out = ctx.sipp("register_digest.xml", user="alice", auth_uri="localhost", transport=t)
    check("registered, Contact:" in out, f"no registration logged: {out!r}")


def _register_bad_password(ctx, t):
    ctx.sipp("register_bad_password.xml", user="alice", password="not-" + USERS["alice"],
             auth_uri="localhost", transport=t)


def _publish(ctx, t):
    out = ctx.sipp("publish.xml", user="alice", auth_uri="alice@localhost", transport=t)
    m = re.search(r"etag1=(\S*) etag2=(\S*)", out)
    check(m is not None, f"no etags logged: {out!r}")
    e1, e2 = m.group(1), m.group(2)
    check(e1 and e2, f"a 200 to PUBLISH without SIP-ETag (etag1={e1!r}, etag2={e2!r})")
    check(e1 != e2, f"the refresh got the same SIP-ETag as the initial publication ({e1!r}); "
                    "RFC 3903 section 6 step 8: a new entity-tag for every successful PUBLISH")


def _subscribe_notify(ctx, t):
    out = ctx.sipp("subscribe_notify.xml", user="alice", auth_uri="bob@localhost", transport=t)
    check("final NOTIFY, Subscription-State terminated" in out, f"no terminating NOTIFY logged: {out!r}")


def _message(ctx, t):
    token = siplib.new_token()
    uas_port = free_port()
    uas, files = ctx.sipp_start("uas_message.xml", port=uas_port, transport=t, timeout=20)
    time.sleep(0.3)  # SIPp binds its port at start-up; nothing to poll for it
    ctx.sipp("register_only.xml", user="bob", auth_uri="localhost", transport=t,
             keys={"contact_port": uas_port, "expires": 120}, tag="-bind")
    try:
        ctx.sipp("message.xml", user="alice", auth_uri="bob@localhost", transport=t,
                 keys={"token": token})
        out = ctx.sipp_finish("uas_message.xml", uas, files)
        check(f"hello bob {token}" in out, f"bob's UA logged another body: {out!r}")
    finally:
        ctx.sipp("register_only.xml", user="bob", auth_uri="localhost", transport=t,
                 keys={"contact_port": uas_port, "expires": 0}, tag="-unbind")


def _watcher(ctx, t):
    note = f"in a meeting {siplib.new_token(6)}"
    published = ctx.sipp("publish_note.xml", user="bob", auth_uri="bob@localhost", transport=t,
                         keys={"note": note})
    etag = re.search(r"published, etag (\S+)", published)
    check(etag is not None, f"publish_note.xml logged no entity-tag: {published!r}")
    try:
        out = ctx.sipp("watcher.xml", user="alice", auth_uri="bob@localhost", transport=t)
        check(f">{note}<" in out, f"alice's first NOTIFY did not carry bob's note {note!r}: {out!r}")
    finally:
        # Later scenarios (pjsua2's) must not see this note among bob's publications:
        # a server that composes every publication (Kamailio does) would show both.
        ctx.sipp("unpublish.xml", user="bob", auth_uri="bob@localhost", transport=t,
                 keys={"etag": etag.group(1)}, tag="-unpublish")


for _name, _func in [("register_digest", _register_digest),
                     ("register_bad_password", _register_bad_password),
                     ("publish", _publish),
                     ("subscribe_notify", _subscribe_notify),
                     ("message", _message),
                     ("watcher", _watcher)]:
    for _tname, _t in TRANSPORTS.items():
        scenario(f"sipp_{_name}_{_tname}", timeout=60)(
            (lambda f, t: lambda ctx: f(ctx, t))(_func, _t))


# ---------------------------------------------------------------------------- sipsak


def _sipsak(ctx, *args, timeout=15) -> tuple[int, str]:
    cmd = ["sipsak", *args, "-k", HOST, "-vv"]
    log(" ".join(cmd))
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ScenarioError(f"sipsak {' '.join(args)} did not end within {timeout}s") from None
    return r.returncode, r.stdout + r.stderr


@scenario("sipsak_options")
def sipsak_options(ctx):
    rc, out = _sipsak(ctx, "-s", f"sip:alice@{HOST}:{ctx.port}")
    check(rc == 0 and re.search(r"SIP/2.0 200", out) is not None,
          f"sipsak OPTIONS: exit {rc}, want 0 with a 200: {out[-400:]!r}")


@scenario("sipsak_register")
def sipsak_register(ctx):
    lport = free_port()
    common = ["-U", "-s", "sip:alice@localhost", "-p", f"{HOST}:{ctx.port}", "-l", str(lport),
              "-C", f"sip:alice@{HOST}:{lport}", "-u", "alice", "-x", "60", "-i"]
    rc, out = _sipsak(ctx, *common, "-a", USERS["alice"])
    check(rc == 0 and "successful" in out,
          f"sipsak register with the right password: exit {rc}, want 0: {out[-500:]!r}")
    rc, out = _sipsak(ctx, *common, "-a", "wrong-password")
    check(rc != 0, f"sipsak register with a wrong password: exit 0, want a failure: {out[-500:]!r}")
    check(re.search(r"SIP/2.0 (401|403|407)", out) is not None,
          f"sipsak register with a wrong password: no 401/403/407: {out[-500:]!r}")


# ---------------------------------------------------------------------------- pjsua2


def _pjsua(ctx, transport: str):
    try:
        import pjsua2  # noqa: F401,PLC0415
    except ImportError:
        raise ScenarioError("pjsua2 is not installed (pip install -r interop/sip/requirements.txt)") from None
    note = f"reading RFCs {siplib.new_token(5)}"
    cmd = [sys.executable, str(ctx_here() / "pjsua_ua.py"), "--port", str(ctx.port),
           "--transport", transport, "--note", note, "--text", f"hello from pjsua {siplib.new_token(5)}",
           "--alice-password", USERS["alice"], "--bob-password", USERS["bob"],
           "--log", str(ctx.workdir / "pjsua.log")]
    log(" ".join(cmd))
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=50)
    except subprocess.TimeoutExpired:
        raise ScenarioError("the pjsua2 scenario did not end within 50s") from None
    lines = [line for line in r.stdout.splitlines() if line.strip()]
    check(r.returncode == 0, f"pjsua2 UAs: exit {r.returncode}: {' / '.join(lines[-4:]) or r.stderr[-400:]}")


def ctx_here():
    from pathlib import Path  # noqa: PLC0415
    return Path(__file__).resolve().parent


@scenario("pjsua2_buddies_and_pager_udp", timeout=60)
def pjsua2_udp(ctx):
    _pjsua(ctx, "udp")


@scenario("pjsua2_buddies_and_pager_tcp", timeout=60)
def pjsua2_tcp(ctx):
    _pjsua(ctx, "tcp")


# The Herald-only scenarios: bad input over raw sockets, TLS, the RFC 4475 sample,
# and the mixed SIP/XMPP scenario.
import herald_only  # noqa: E402,F401
