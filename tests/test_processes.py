"""A server started by a test run does not outlive the run, even when the run is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_child_dies_when_its_test_run_is_killed(tmp_path):
    pid_file = tmp_path / "child.pid"
    parent_code = textwrap.dedent(
        f"""
        import subprocess, sys, time
        from tests.processes import die_with_parent
        child = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(120)"], preexec_fn=die_with_parent
        )
        open({str(pid_file)!r}, "w").write(str(child.pid))
        time.sleep(120)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code], cwd=ROOT)  # noqa: S603
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the parent never started its child"
        time.sleep(0.05)
    child_pid = int(pid_file.read_text())
    os.kill(child_pid, 0)  # alive while the parent lives

    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=10)
    deadline = time.monotonic() + 10
    while True:
        try:
            finished, _ = os.waitpid(child_pid, os.WNOHANG)
        except ChildProcessError:
            finished = child_pid  # reparented to init, which reaps it
        if finished == child_pid:
            try:
                os.kill(child_pid, 0)
            except ProcessLookupError:
                return
        assert time.monotonic() < deadline, "the child outlived its killed parent"
        time.sleep(0.05)
