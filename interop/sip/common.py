"""What run.py and the scenario modules share: constants, the scenario registry, the
failure type."""

from __future__ import annotations

import socket
import sys
from dataclasses import dataclass
from typing import Callable

HOST = "127.0.0.1"
DOMAIN = "localhost"
REALM = "localhost"
# db_text (the Kamailio control's tables) separates columns with ':', so no ':' here.
USERS = {"alice": "alice-Secret-1", "bob": "bob-Secret-2", "carol": "carol-Secret-3"}
# Herald only: the mixed SIP/XMPP scenario's pair (mixalice on SIP, mixbob on XMPP),
# with no roster between them, so that alice's SUBSCRIBE must be authorized by bob.
MIXED_USERS = {"mixalice": "mixalice-Secret-4", "mixbob": "mixbob-Secret-5"}
# alice, bob and carol have mutual presence subscriptions in Herald's rosters (set up
# by run.py with `herald roster import`), as Kamailio's force_active allows every
# watcher: the SIP-only scenarios test SIP, not an authorization nobody can give.
ROSTER_PAIRS = [("alice", "bob"), ("alice", "carol"), ("bob", "carol")]
VERBOSE = [False]


class ScenarioError(AssertionError):
    """A scenario check failed; the message says what was expected and what came."""


def check(cond: bool, message: str) -> None:
    if not cond:
        raise ScenarioError(message)


def log(text: str) -> None:
    if VERBOSE[0]:
        print(f"    . {text}", file=sys.stderr, flush=True)


@dataclass
class Scenario:
    name: str
    func: Callable
    servers: tuple[str, ...]
    timeout: float


SCENARIOS: list[Scenario] = []


def scenario(name: str, servers: tuple[str, ...] = ("herald", "kamailio"), timeout: float = 60.0):
    """Register `func(ctx)` as scenario `name`, for the servers listed."""
    def deco(f):
        SCENARIOS.append(Scenario(name, f, servers, timeout))
        return f
    return deco


_handed_out: set[int] = set()


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1, never handed out twice."""
    for _ in range(200):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            t.bind((HOST, 0))
            port = t.getsockname()[1]
            if port in _handed_out:
                continue
            try:
                u.bind((HOST, port))
            except OSError:
                continue
            _handed_out.add(port)
            return port
        finally:
            t.close()
            u.close()
    raise RuntimeError("no free UDP+TCP port pair on 127.0.0.1")
