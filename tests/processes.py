"""Child processes started by tests (servers, workers) die with the test run, even when it is killed."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent

_PR_SET_PDEATHSIG = 1
# Loaded once here, not in the child between fork and exec, where loading could deadlock.
_LIBC = ctypes.CDLL("libc.so.6", use_errno=True) if sys.platform.startswith("linux") else None


def die_with_parent() -> None:
    """``preexec_fn`` for subprocess.Popen: the kernel sends SIGTERM when pytest goes away.

    Without it, a pytest killed by a timeout or Ctrl-C twice leaves uvicorn holding its port
    and its database file. Linux only; elsewhere the fixtures' own cleanup has to do.
    """
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def demo_server(workdir: Path, database_url: str, *, ready_path: str = "/readyz") -> Iterator[str]:
    """``make run`` in a subprocess: migrate, load the demo clinic, serve; yields the base URL.

    Staff two-factor and the scheduler are off, so tests log in with the demo password and
    nothing is sent behind their back. The server dies with the test run.
    """
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "TUKI_ENV": "test",
        "TUKI_DATABASE_URL": database_url,
        "TUKI_BASE_URL": base_url,
        "TUKI_SCHEDULER_ENABLED": "false",
        "TUKI_REQUIRE_STAFF_2FA": "false",
        "TUKI_DEMO_OUTBOX_DIR": str(workdir / "outbox"),
    }
    env.pop("TUKI_TEST_DATABASE_URL", None)
    tuki = [sys.executable, "-m", "app.cli"]
    for command in (["migrate"], ["demo"]):
        subprocess.run([*tuki, *command], cwd=ROOT, env=env, check=True, capture_output=True)  # noqa: S603
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "uvicorn",
                "app.asgi:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base_url}{ready_path}", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(log_path.read_text(errors="replace"))
                time.sleep(0.2)
            yield base_url
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
