"""What a candidate revision would change in the decisions actually made: re-evaluate the logged profiles.

The decision log is read newest first in pages (keyset on seq, so 100,000 decisions are a few hundred
short queries); decisions with the same profile and the same recorded outcome are evaluated once. Each
change is counted in decisions and grouped in words ("Oral treatment no longer a candidate: 1,234
decisions"), with example decision ids that link to their replay. A profile the candidate cannot read
(a field removed, a value renamed) is counted and listed with the reason, never an error.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine as DbEngine
from sqlalchemy import select

from ..decisions.models import Decision
from ..engine import Engine, InvalidProfile
from ..ruleset.model import Ruleset

PAGE = 2000
EXAMPLES = 5


@dataclass
class Group:
    text: str
    decisions: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, ids: list[str]) -> None:
        self.decisions += len(ids)
        room = EXAMPLES - len(self.examples)
        if room > 0:
            self.examples.extend(ids[:room])

    def as_dict(self) -> dict[str, Any]:
        return {
            "change": self.text,
            "decisions": self.decisions,
            "examples": [{"decision_id": d, "replay": f"/decisions/{d}"} for d in self.examples],
        }


@dataclass
class Impact:
    ruleset: dict[str, str]
    since: str | None
    decisions: int = 0
    profiles: int = 0
    changed: int = 0
    unchanged: int = 0
    changes: dict[str, Group] = field(default_factory=dict)
    unreadable: dict[str, Group] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ruleset": self.ruleset,
            "since": self.since,
            "decisions": self.decisions,
            "distinct_profiles": self.profiles,
            "changed_decisions": self.changed,
            "unchanged_decisions": self.unchanged,
            "changes": [g.as_dict() for g in _ranked(self.changes)],
            "other_vocabulary": [g.as_dict() for g in _ranked(self.unreadable)],
        }


def _ranked(groups: dict[str, Group]) -> list[Group]:
    return sorted(groups.values(), key=lambda g: (-g.decisions, g.text))


def _label(rs: Ruleset, option: str) -> str:
    return rs.options[option].label if option in rs.options else f"`{option}`"


def _changes(rs: Ruleset, old: dict[str, set[str]], new: dict[str, set[str]]) -> list[str]:
    out = []
    for kind, noun in (("candidates", "a candidate"), ("excluded", "excluded"), ("referrals", "a referral")):
        for option in sorted(old[kind] - new[kind]):
            out.append(f"{_label(rs, option)} no longer {noun}")
        for option in sorted(new[kind] - old[kind]):
            out.append(f"{_label(rs, option)} newly {noun}")
    return out


def pages(
    db: DbEngine,
    ruleset_id: str,
    *,
    since: dt.datetime | None = None,
    limit: int | None = None,
    page: int = PAGE,
) -> Iterator[list[tuple[str, str, str, str, str]]]:
    """The logged decisions of a ruleset id, newest first, in pages of (decision id, profile, candidates,
    excluded, referrals): keyset on seq, so each page is one short query on the primary key."""
    read = 0
    last: int | None = None
    while limit is None or read < limit:
        size = page if limit is None else min(page, limit - read)
        q = (
            select(
                Decision.seq,
                Decision.decision_id,
                Decision.profile,
                Decision.candidates,
                Decision.excluded,
                Decision.referrals,
            )
            .where(Decision.ruleset_id == ruleset_id)
            .order_by(Decision.seq.desc())
            .limit(size)
        )
        if since is not None:
            q = q.where(Decision.evaluated_at >= since)
        if last is not None:
            q = q.where(Decision.seq < last)
        with db.connect() as conn:
            rows = conn.execute(q).all()
        if not rows:
            return
        last = rows[-1][0]
        read += len(rows)
        yield [tuple(r[1:]) for r in rows]


def impact(
    db: DbEngine,
    candidate: Ruleset,
    *,
    since: dt.datetime | None = None,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
    page: int = PAGE,
) -> Impact:
    """Re-evaluate the logged decisions of the candidate's ruleset id (newest first, at most `limit`)."""
    result = Impact(candidate.summary, since.isoformat() if since else None)
    seen: dict[tuple[str, str], list[str]] = {}  # (profile, recorded outcome) -> decision ids
    for rows in pages(db, candidate.id, since=since, limit=limit, page=page):
        for decision_id, profile, candidates, excluded, referrals in rows:
            seen.setdefault((profile, f"{candidates}|{excluded}|{referrals}"), []).append(decision_id)
        result.decisions += len(rows)
        if progress is not None:
            progress(len(rows))
    evaluator = _Evaluator(candidate)
    try:
        outcomes: dict[str, Any] = {}
        profiles = set()
        for (profile_text, recorded), ids in seen.items():
            profiles.add(profile_text)
            if profile_text not in outcomes:
                outcomes[profile_text] = evaluator.outcome(profile_text)
            now = outcomes[profile_text]
            if isinstance(now, str):
                result.unreadable.setdefault(now, Group(now)).add(ids)
                continue
            candidates, excluded, referrals = (set(json.loads(t)) for t in recorded.split("|"))
            changes = _changes(candidate, {"candidates": candidates, "excluded": excluded, "referrals": referrals}, now)
            if changes:
                result.changed += len(ids)
            else:
                result.unchanged += len(ids)
            for text in changes:
                result.changes.setdefault(text, Group(text)).add(ids)
        result.profiles = len(profiles)
    finally:
        evaluator.close()
    return result


Outcome = dict[str, set[str]]


class _Evaluator:
    """The candidate's outcome (option ids offered, excluded, referred) for logged profiles, fast.

    What the service would answer, with the work a decision log of 100,000 distinct profiles makes
    expensive taken out: each field value is validated once (the validator has no cross-field rules, so a
    profile whose every field passes on its own passes as a whole; anything else goes through the whole
    check, for its exact problems), durable_rules finds the fired rules as on the request path, and only the
    option ids are derived from them (Assembler.outcome_ids: no texts, warnings or JSON form).
    """

    def __init__(self, candidate: Ruleset) -> None:
        self.engine = Engine(candidate)
        self.inputs = candidate.inputs
        self.required = [f.id for f in candidate.inputs.values() if f.required]
        self._values: dict[tuple[str, Any], tuple[bool, Any]] = {}

    def close(self) -> None:
        self.engine.close()

    def outcome(self, profile_text: str) -> Outcome | str:
        """The outcome for a logged profile (canonical JSON), or why the candidate cannot read it (in words)."""
        data = json.loads(profile_text)
        profile = self._typed(data) if isinstance(data, dict) else None
        if profile is None:
            try:
                profile = self.engine.check(data)
            except InvalidProfile as exc:
                first = exc.errors[0].message if exc.errors else "the profile does not fit the candidate's inputs"
                return f"not readable by the candidate: {first}"
        candidates, excluded, referrals = self.engine.assembler.outcome_ids(self.engine.fired(profile))
        return {"candidates": candidates, "excluded": excluded, "referrals": referrals}

    def _typed(self, data: dict[str, Any]) -> dict[str, Any] | None:
        """The typed profile from field values checked one by one (memoised), or None: check it whole."""
        if any(fid not in data or data[fid] is None for fid in self.required):
            return None
        profile: dict[str, Any] = {}
        for fid, value in data.items():
            if fid not in self.inputs:
                return None
            if value is None:
                continue
            key = (fid, json.dumps(value) if isinstance(value, list | dict) else (type(value).__name__, value))
            known = self._values.get(key)
            if known is None:
                check = self.engine.validator.check({fid: value}, partial=True)
                known = self._values[key] = (check.ok, check.profile.get(fid))
            ok, typed = known
            if not ok:
                return None
            if typed is not None:
                profile[fid] = typed
        return profile


def to_markdown(result: Impact) -> str:
    r = result.ruleset
    lines = [
        f"# Impact of `{r['id']}` {r['version']} (`{r['sha256'][:12]}`) on past decisions",
        "",
        f"{result.decisions:,} logged decision(s){' since ' + result.since if result.since else ''}, "
        f"{result.profiles:,} distinct profile(s): {result.changed:,} would change, {result.unchanged:,} would not, "
        f"{sum(g.decisions for g in result.unreadable.values()):,} recorded under another vocabulary.",
        "",
    ]
    if result.changes:
        lines += ["## Changes", ""]
        for g in _ranked(result.changes):
            examples = ", ".join(f"[{d[:8]}](/decisions/{d})" for d in g.examples)
            lines.append(f"- {g.text}: {g.decisions:,} decision(s) (e.g. {examples})")
        lines.append("")
    if result.unreadable:
        lines += ["## Profiles under another vocabulary (counted, not re-evaluated)", ""]
        for g in _ranked(result.unreadable):
            lines.append(f"- {g.text}: {g.decisions:,} decision(s) (e.g. {', '.join(d[:8] for d in g.examples)})")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
