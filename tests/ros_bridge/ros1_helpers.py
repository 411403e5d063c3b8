"""Process helpers for the ROS 1 live tests (fixtures are in conftest.py)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen, timeout: float = 15.0) -> int | None:
    """SIGINT to the process group (roslaunch / roscore pass it on), then SIGKILL."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGINT)
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        except ProcessLookupError:
            pass
    return proc.returncode


def run_probe(env: dict, *args: str, timeout: float = 120.0) -> dict:
    """Run ros1_probe.py (the camera and the subscribers) and return what it recorded."""
    out = subprocess.run([sys.executable, str(Path(__file__).parent / "ros1_probe.py"), *args], env=env,
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"probe failed: {out.stdout[-2000:]} {out.stderr[-3000:]}"
    return json.loads(out.stdout.strip().splitlines()[-1])


class NodeProcess:
    """A node started by a command (edgefuse ros / roslaunch), its output in a file."""

    def __init__(self, cmd: list[str], env: dict, log: Path) -> None:
        self.log_path = log
        self._log = open(log, "w")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def stop(self) -> int | None:
        code = stop(self.proc)
        self._log.close()
        return code
