"""What the gunicorn (server.py) and nginx (proxy.py) helpers share: a process listening on a loopback port,
and its graceful stop."""

from __future__ import annotations

import signal
import subprocess
from dataclasses import dataclass


@dataclass
class Listening:
    """A child process serving HTTP on host:port."""

    host: str
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def stop(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    """SIGTERM (gunicorn: graceful; nginx: fast shutdown), then SIGKILL if it does not exit in time.
    Returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode
