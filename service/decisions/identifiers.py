"""Keyed hashes of CDS Hooks identifiers: searchable by an auditor who holds the key, never stored in clear.

A plain SHA-256 of a patient id could be reversed by hashing every plausible id; an HMAC cannot without
the key. The kind of identifier is part of the message, so a patient and a user with the same id string
get unrelated hashes. The key comes from DECISION_HMAC_KEY; without it one is generated once into the
instance folder (0600) - fine next to the default SQLite file, wrong for replicas sharing PostgreSQL,
which must all use the same configured key (the log refuses a key that differs from the one it was
written with, see log.py).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from pathlib import Path

from .. import keyfiles
from .errors import ConfigurationError

log = logging.getLogger(__name__)

KEY_FILE = "decision-hmac.key"
MIN_KEY_CHARS = 32
# CDS Hooks names -> decision log columns. Nothing else is accepted: an unknown identifier is a caller bug.
KINDS = {"patientId": "patient_hash", "userId": "user_hash", "hookInstance": "hook_instance_hash"}


class IdentifierKey:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def hash(self, kind: str, value: str) -> str:
        if kind not in KINDS:
            raise ValueError(f"unknown identifier `{kind}`; the decision log hashes {', '.join(KINDS)}")
        message = f"{kind}\x00{value}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def columns(self, identifiers: dict[str, str] | None) -> dict[str, str | None]:
        """Decision log columns for a channel's identifiers; absent ones are None."""
        out: dict[str, str | None] = dict.fromkeys(KINDS.values())
        for kind, value in (identifiers or {}).items():
            if value is None:
                continue
            if not isinstance(value, str):
                raise ValueError(f"identifier `{kind}` must be text")
            digest = self.hash(kind, value)
            out[KINDS[kind]] = digest
        return out

    @property
    def fingerprint(self) -> str:
        """Identifies the key without revealing it, so a log can refuse to mix hashes made with two keys."""
        return hmac.new(self._key, b"decision-log key fingerprint", hashlib.sha256).hexdigest()[:16]


def load_key(configured: str, instance_path: str | Path) -> IdentifierKey:
    """The configured key, or the instance folder's generated one (created on first run)."""
    if configured:
        if len(configured) < MIN_KEY_CHARS:
            raise ConfigurationError(
                f"DECISION_HMAC_KEY must be at least {MIN_KEY_CHARS} characters, e.g. the output of "
                "`python -c 'import secrets; print(secrets.token_hex(32))'`"
            )
        return IdentifierKey(configured.encode("utf-8"))
    path = Path(instance_path) / KEY_FILE
    key, created = keyfiles.read_or_create(path)
    if created:
        log.warning(
            "DECISION_HMAC_KEY is not set: generated a key for hashing patient and user ids in %s. Back it up "
            "with the database; set DECISION_HMAC_KEY when several replicas share one database.",
            path,
        )
    if len(key) < MIN_KEY_CHARS:
        raise ConfigurationError(f"{path} does not hold a key of at least {MIN_KEY_CHARS} characters")
    return IdentifierKey(key.encode("ascii"))
