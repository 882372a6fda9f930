"""CDS Hooks feedback items, checked and turned into rows of the feedback chain.

Feedback is kept in its own append-only, hash-chained table rather than in the decisions chain: it
arrives out of band, seconds to weeks after the answer, possibly batched and repeated; the decisions
chain stays one link per answer (its seq counts answers), and on PostgreSQL feedback appends lock their
own chain head, so they never queue behind decision appends. Each row still names its card and the
decision the card came with, and the card row names the rules behind its option.

A repeated report (same card, outcome and outcomeTimestamp, same content) is a no-op: CDS clients may
resend feedback. One that adds or changes information under the same card, outcome and outcomeTimestamp
(e.g. an overrideReason sent later) is refused with 409, never dropped: the log keeps one report per moment,
and a later report carries its own outcomeTimestamp. Feedback is taken only by the service that issued
the card, and an `accepted` outcome only names suggestions the card offered.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from ..ruleset.profile import FieldProblem
from .chain import canonical
from .errors import InvalidFeedback

OUTCOMES = ("accepted", "overridden")
MAX_ITEMS = 1000
MAX_TEXT = 2000
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII)


def parse_timestamp(value: Any) -> dt.datetime | None:
    """An RFC 3339 date-time with its offset, as aware UTC; None if it is not one.

    Also None for an instant that exists only outside years 1-9999 in UTC (9999-12-31T23:59:59-23:59):
    Python's datetime, and so the log, cannot hold it.
    """
    if not isinstance(value, str) or not RFC3339.fullmatch(value):
        return None
    try:
        return dt.datetime.fromisoformat(value.upper()).astimezone(dt.UTC)
    except (ValueError, OverflowError):
        return None


def _text(value: Any, *, limit: int = MAX_TEXT) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit and "\x00" not in value


def check_items(items: Any) -> list[dict[str, Any]]:
    """Validate a CDS Hooks `feedback` array; raises InvalidFeedback naming every bad field."""
    problems: list[FieldProblem] = []
    if not isinstance(items, list):
        raise InvalidFeedback([FieldProblem("feedback", "`feedback` must be a list of feedback objects")])
    if len(items) > MAX_ITEMS:
        raise InvalidFeedback([FieldProblem("feedback", f"at most {MAX_ITEMS} feedback items per request")])
    rows = []
    for i, item in enumerate(items):
        at = f"feedback[{i}]"
        if not isinstance(item, dict):
            problems.append(FieldProblem(at, f"`{at}` must be an object with card, outcome and outcomeTimestamp"))
            continue
        before = len(problems)
        card = item.get("card")
        if not _text(card, limit=100):
            problems.append(FieldProblem(f"{at}.card", f"`{at}.card` must be the uuid of a card this service issued"))
        outcome = item.get("outcome")
        if outcome not in OUTCOMES:
            problems.append(
                FieldProblem(f"{at}.outcome", f"`{at}.outcome` must be one of {', '.join(OUTCOMES)}", OUTCOMES)
            )
        when = parse_timestamp(item.get("outcomeTimestamp"))
        if when is None:
            problems.append(
                FieldProblem(
                    f"{at}.outcomeTimestamp",
                    f"`{at}.outcomeTimestamp` must be an RFC 3339 date-time with offset, e.g. 2026-01-31T09:30:00Z, "
                    "within the years 0001-9999 in UTC",
                )
            )
        reason = _override_reason(item.get("overrideReason"), f"{at}.overrideReason", problems)
        suggestions = _accepted(item.get("acceptedSuggestions"), f"{at}.acceptedSuggestions", problems)
        if len(problems) == before:
            rows.append(
                {
                    "card_uuid": card,
                    "outcome": outcome,
                    "outcome_timestamp": when,
                    "override_reason": canonical(reason) if reason else None,
                    "accepted_suggestions": canonical(suggestions) if suggestions is not None else None,
                }
            )
    if problems:
        raise InvalidFeedback(problems)
    return rows


def _override_reason(value: Any, at: str, problems: list[FieldProblem]) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not ({"reason", "userComment"} & set(value)):
        problems.append(FieldProblem(at, f"`{at}` must be an object with `reason` (a Coding) and/or `userComment`"))
        return None
    out: dict[str, Any] = {}
    if "reason" in value:
        coding = value["reason"]
        if (
            not isinstance(coding, dict)
            or not _text(coding.get("code"), limit=200)
            or not _text(coding.get("system"), limit=500)
            or ("display" in coding and not _text(coding["display"], limit=500))
        ):
            problems.append(
                FieldProblem(
                    f"{at}.reason", f"`{at}.reason` must be a Coding: code and system (text), display optional"
                )
            )
        else:
            out["reason"] = {k: coding[k] for k in ("system", "code", "display") if k in coding}
    if "userComment" in value:
        if not _text(value["userComment"]):
            problems.append(
                FieldProblem(f"{at}.userComment", f"`{at}.userComment` must be text of 1 to {MAX_TEXT} characters")
            )
        else:
            out["userComment"] = value["userComment"]
    return out


def _accepted(value: Any, at: str, problems: list[FieldProblem]) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(s, dict) and _text(s.get("id"), limit=100) for s in value):
        problems.append(FieldProblem(at, f'`{at}` must be a list of {{"id": suggestion uuid}} objects'))
        return None
    return [s["id"] for s in value]


def against_cards(rows: list[dict[str, Any]], cards: dict[str, Any], service_id: str) -> list[FieldProblem]:
    """What the issued cards (uuid -> row with service_id and suggestions) say against these reports."""
    problems = []
    for i, row in enumerate(rows):
        at = f"feedback[{i}]"
        card = cards.get(row["card_uuid"])
        if card is None:
            problems.append(FieldProblem(f"{at}.card", f"no card `{row['card_uuid']}` was issued here"))
            continue
        if card.service_id is None:
            continue  # recorded before migration 0006, or not by a CDS service: nothing to check it against
        if card.service_id != service_id:
            problems.append(
                FieldProblem(
                    f"{at}.card",
                    f"card `{row['card_uuid']}` was issued by the service `{card.service_id}`: send its feedback there",
                )
            )
            continue
        if row["outcome"] != "accepted":
            continue
        offered = set(json.loads(card.suggestions)) if card.suggestions else set()
        named = json.loads(row["accepted_suggestions"] or "[]")
        unknown = [s for s in named if s not in offered]
        if not offered:
            problems.append(
                FieldProblem(f"{at}.outcome", f"card `{row['card_uuid']}` offered no suggestions to accept")
            )
        elif unknown:
            problems.append(
                FieldProblem(
                    f"{at}.acceptedSuggestions",
                    f"suggestion `{unknown[0]}` is not one card `{row['card_uuid']}` offered",
                    tuple(sorted(offered)),
                )
            )
    return problems


def conflicts(rows: list[dict[str, Any]], stored: dict[tuple[Any, ...], tuple[Any, Any]]) -> list[FieldProblem]:
    """Reports whose card, outcome and outcomeTimestamp are stored with other content (or sent twice so)."""
    problems = []
    seen = dict(stored)
    for i, row in enumerate(rows):
        key = (row["card_uuid"], row["outcome"], row["outcome_timestamp"])
        content = (row["override_reason"], row["accepted_suggestions"])
        if key in seen and seen[key] != content:
            problems.append(
                FieldProblem(
                    f"feedback[{i}]",
                    f"feedback for card `{row['card_uuid']}` ({row['outcome']}) at this outcomeTimestamp was already "
                    "received with other content; send the new information with its own outcomeTimestamp",
                )
            )
        seen.setdefault(key, content)
    return problems
