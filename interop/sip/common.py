"""What run.py and the scenario modules share: constants, the scenario registry, the
failure type."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Callable

HOST = "127.0.0.1"
DOMAIN = "localhost"
REALM = "localhost"
# db_text (the Kamailio control's tables) separates columns with ':', so no ':' here.
USERS = {"alice": "alice-Secret-1", "bob": "bob-Secret-2", "carol": "carol-Secret-3"}
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
