"""Named failpoints: places in multi-row writes where a test can pause or fail the process.

The crash tests start a real server with ``TUKI_FAILPOINTS=message.after_insert=sleep(5)``,
wait for the "failpoint reached" line on stdout and kill the process there, to prove that
a unit of work is all or nothing. Several are separated by commas or semicolons. Actions:

- ``sleep(SECONDS)``: announce, then wait (the test kills or stops the process meanwhile);
- ``error``: announce, then raise :class:`FailpointError` (an ordinary unexpected error);
- ``off``: do nothing.

Failpoints are armed only outside production: :func:`configure` refuses a spec when
``TUKI_ENV`` is production, and tests arm them in process with :func:`armed`. When none
is armed, :func:`failpoint` is one dictionary lookup.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

ENV_VAR = "TUKI_FAILPOINTS"
MARKER = "failpoint reached:"

_ACTION = re.compile(r"^(?:(?P<simple>off|error)|sleep\((?P<seconds>\d+(?:\.\d+)?)\))$")


class FailpointError(RuntimeError):
    """Raised by a failpoint armed with ``error``."""


@dataclass(frozen=True)
class Action:
    kind: str
    seconds: float = 0.0


_armed: dict[str, Action] = {}


def parse(spec: str) -> dict[str, Action]:
    """``name=action`` pairs; a malformed spec is an error rather than a test that silently passes."""
    actions: dict[str, Action] = {}
    for item in re.split(r"[,;]", spec):
        item = item.strip()
        if not item:
            continue
        name, sep, action = item.partition("=")
        match = _ACTION.match(action.strip()) if sep else None
        if not name.strip() or match is None:
            raise ValueError(f"invalid failpoint {item!r}; use name=sleep(SECONDS), error or off")
        if match.group("simple"):
            actions[name.strip()] = Action(match.group("simple"))
        else:
            actions[name.strip()] = Action("sleep", float(match.group("seconds")))
    return actions


def configure(spec: str | None, *, env: str) -> None:
    """Arm the failpoints named in ``spec`` (from ``TUKI_FAILPOINTS``); never in production."""
    _armed.clear()
    if not spec:
        return
    if env == "production":
        raise ValueError(f"{ENV_VAR} is set, but failpoints are never armed in production")
    _armed.update(parse(spec))


@contextmanager
def armed(spec: str) -> Iterator[None]:
    """Arm failpoints for the duration of a block (in-process tests)."""
    previous = dict(_armed)
    _armed.clear()
    _armed.update(parse(spec))
    try:
        yield
    finally:
        _armed.clear()
        _armed.update(previous)


async def failpoint(name: str) -> None:
    """Pause or fail here if a test armed ``name``; otherwise return at once."""
    action = _armed.get(name)
    if action is None or action.kind == "off":
        return
    # Flushed at once: the test is waiting for this line to kill the process.
    sys.stdout.write(f"{MARKER} {name}\n")
    sys.stdout.flush()
    if action.kind == "error":
        raise FailpointError(f"failpoint {name}")
    await asyncio.sleep(action.seconds)
