"""The hash chain: each record's hash covers its content and the hash of the record before it.

hash = SHA-256(prev_hash || canonical JSON of the content). Editing a record breaks its own hash;
deleting or reordering records breaks the `prev_hash` links; cutting off the newest records leaves the
chain head (kept in `chain_heads`) pointing past the end. `seq` is not hashed: it is the position, and
the position is what the links protect, which lets verify tell "reordered" apart from "edited".

The content is built from stored column values only (strings, integers, None), with datetimes written
as RFC 3339 UTC with microseconds, so that a verifier reading the row back gets byte-identical input on
SQLite and PostgreSQL. Ruleset revisions are not a chain (a decision links to its revision by the
sha256 of the ruleset text, which is hashed in the decision); the other columns of a revision are
covered by its `content_hash` (REVISION_FORMAT), and verify also re-derives id, version and options
from the text. The full decision text (tens of kilobytes with its evidence) enters as its own
SHA-256, which protects it just as well and spares encoding it a second time on every append.

The ruleset lifecycle (service/lifecycle) keeps its actions in a chain of their own (head `lifecycle`).
Published releases and reviewer sign-offs are append-only rows that are not chained themselves: the
action that stored each one carries the hash of all its columns (`release_hash`, `signoff_hash`), so
an edit of any column is caught by the actions chain that anchors it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import Any

GENESIS = "0" * 64
FORMAT = 1  # bump (and keep the old content functions) if the hashed content ever changes

DECISION_FIELDS = (
    "decision_id",
    "evaluated_at",
    "channel",
    "ruleset_id",
    "ruleset_version",
    "ruleset_sha256",
    "profile",
    "candidates",
    "excluded",
    "referrals",
    "fired_rules",
    "latency_us",
    "decision",
    "patient_hash",
    "user_hash",
    "hook_instance_hash",
)
CARD_FIELDS = ("uuid", "position", "option", "indicator", "summary", "rules")
CARD_OPTIONAL = ("service_id", "suggestions")  # migration 0006: hashed only when set (older cards unchanged)
REVISION_FORMAT = 1  # the content of ruleset_revisions.content_hash (migration 0004); same rule as FORMAT
REVISION_FIELDS = ("sha256", "ruleset_id", "version", "tests_text", "options", "stored_at")
FEEDBACK_FIELDS = (
    "card_uuid",
    "decision_id",
    "service_id",
    "outcome",
    "outcome_timestamp",
    "override_reason",
    "accepted_suggestions",
    "received_at",
)

ACTION_FIELDS = ("at", "actor", "action", "ruleset_id", "sha256", "detail")
RELEASE_FIELDS = (
    "sha256",
    "ruleset_id",
    "version",
    "file_name",
    "source_text",
    "tests_text",
    "fhir_text",
    "gate_ok",
    "gate_report",
    "published_at",
    "published_by",
)
SIGNOFF_FIELDS = ("sha256", "jws_sha256", "jws", "added_at")


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def canonical(value: Any) -> str:
    """One text for one JSON value: sorted keys, no spaces, non-ASCII as \\u escapes. Tuples become lists."""
    return _CANONICAL.encode(value)


def timestamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _plain(row: Mapping[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {f: timestamp(row[f]) if isinstance(row[f], dt.datetime) else row[f] for f in fields}


DIGESTED = ("decision",)


def decision_content(row: Mapping[str, Any], cards: list[Mapping[str, Any]]) -> dict[str, Any]:
    content = _plain(row, DECISION_FIELDS)
    for name in DIGESTED:
        content[name] = hashlib.sha256(content[name].encode("utf-8")).hexdigest()
    content["cards"] = [_card(c) for c in sorted(cards, key=lambda c: c["position"])]
    content["format"] = FORMAT
    return content


def _card(card: Mapping[str, Any]) -> dict[str, Any]:
    content = _plain(card, CARD_FIELDS)
    content.update({f: card[f] for f in CARD_OPTIONAL if card.get(f) is not None})
    return content


def feedback_content(row: Mapping[str, Any]) -> dict[str, Any]:
    return {**_plain(row, FEEDBACK_FIELDS), "format": FORMAT}


def revision_hash(row: Mapping[str, Any]) -> str:
    """The hash of every column of a ruleset revision (the text itself through its sha256, checked apart)."""
    content = {**_plain(row, REVISION_FIELDS), "format": REVISION_FORMAT}
    return hashlib.sha256(canonical(content).encode("utf-8")).hexdigest()


def action_content(row: Mapping[str, Any]) -> dict[str, Any]:
    """A lifecycle action's content in its chain (publish, stage changes, rollbacks, sign-offs, shadows)."""
    return _plain(row, ACTION_FIELDS)


def release_hash(row: Mapping[str, Any]) -> str:
    """The hash of every column of a published release, carried by the `publish` action that stored it."""
    return hashlib.sha256(canonical({**_plain(row, RELEASE_FIELDS), "format": FORMAT}).encode("utf-8")).hexdigest()


def signoff_hash(row: Mapping[str, Any]) -> str:
    """The hash of every column of a stored sign-off, carried by the action that added it."""
    return hashlib.sha256(canonical({**_plain(row, SIGNOFF_FIELDS), "format": FORMAT}).encode("utf-8")).hexdigest()


def link_hash(prev_hash: str, content: Mapping[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical(content)).encode("utf-8")).hexdigest()
