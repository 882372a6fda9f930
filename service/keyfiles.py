"""Secrets generated into the instance folder on first run (the decision log's HMAC key, the session key).

A generated secret is written to a private (0600) temporary file and then hard-linked into place, so
several gunicorn workers starting together agree on one secret: the first link wins and every process
reads the file that won. Nothing here logs a secret.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def read_or_create(path: Path, nbytes: int = 32) -> tuple[str, bool]:
    """The secret in `path` (created with `nbytes` random bytes as hex if missing), and whether it was created."""
    created = False
    if not path.exists():
        created = _create(path, nbytes)
    return path.read_text(encoding="ascii").strip(), created


def _create(path: Path, nbytes: int) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_hex(nbytes) + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:  # another worker won the race: its secret is the secret
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
