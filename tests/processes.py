"""Child processes started by tests (servers, workers) die with the test run, even when it is killed."""

from __future__ import annotations

import ctypes
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """``preexec_fn`` for subprocess.Popen: the kernel sends SIGTERM when pytest goes away.

    Without it, a pytest killed by a timeout or Ctrl-C twice leaves uvicorn holding its port
    and its database file. Linux only; elsewhere the fixtures' own cleanup has to do.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
