"""The two views of a decision: `full` (everything, as the decision log stores it) and `default` (compact).

A clinician reads the short texts, the facts behind each rule and the details; auditors need the evidence
notes and the full citations too. The default view leaves out what is one click away: evidence notes,
the caveats' evidence layer, the options' longer `detail` prose (the summary, regimen, course and cost stay)
and the citations (references are named by id; the catalogue with the full
citations is at GET /v1/rulesets/<id>, cacheable by its ETag). The engine always builds the full decision;
a channel narrows it at its edge, so the decision log keeps everything.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from .answer import Candidate, Citation, Decision, Evidence, Exclusion, Partial, Reason, Referral

View = Literal["default", "full"]
VIEWS: tuple[str, ...] = ("default", "full")

__all__ = ["VIEWS", "View", "compact", "in_view"]

_replace = dataclasses.replace


def _reasons(reasons: tuple[Reason, ...]) -> tuple[Reason, ...]:
    return tuple(r if r.evidence is None else _replace(r, evidence=None) for r in reasons)


def _untexted(reasons: tuple[Reason, ...]) -> tuple[Reason, ...]:
    """A candidate's or referral's reasons without their texts: `rationale` carries them, in this order."""
    return tuple(_replace(r, evidence=None, text=None) for r in reasons)


def _evidence(evidence: Evidence, cache: dict[int, Evidence]) -> Evidence:
    found = cache.get(id(evidence))
    if found is None:
        refs = tuple(Citation(id=c.id) for c in evidence.references)
        found = cache[id(evidence)] = Evidence(level=evidence.level, note=None, references=refs)
    return found


def _candidate(c: Candidate, cache: dict[int, Evidence]) -> Candidate:
    return _replace(
        c, evidence=_evidence(c.evidence, cache), reasons=_untexted(c.reasons), caveat_notes=None, detail=None
    )


def _referral(r: Referral) -> Referral:
    return _replace(r, reasons=_untexted(r.reasons), detail=None)


def _exclusion(e: Exclusion) -> Exclusion:
    return _replace(e, reasons=_reasons(e.reasons))


def compact(decision: Decision) -> Decision:
    """The default view: short texts, facts, details and evidence levels; references by id only."""
    cache: dict[int, Evidence] = {}
    partial = decision.partial
    if partial is not None:
        partial = Partial(
            missing=partial.missing,
            completions=partial.completions,
            possible_candidates=partial.possible_candidates,
            possible_referrals=partial.possible_referrals,
            possibly_excluded={o: _reasons(rs) for o, rs in partial.possibly_excluded.items()},
        )
    return _replace(
        decision,
        candidates=tuple(_candidate(c, cache) for c in decision.candidates),
        excluded=tuple(_exclusion(e) for e in decision.excluded),
        referrals=tuple(_referral(r) for r in decision.referrals),
        partial=partial,
    )


def in_view(decision: Decision, view: str) -> Decision:
    """The decision as the view asks: `full` as it is, `default` compact."""
    return decision if view == "full" else compact(decision)
