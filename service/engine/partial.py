"""Decisions when required facts are missing, e.g. a CDS Hooks call where the EHR cannot know the pattern.

Missing required facts cannot be treated as "unknown" inside rules (rules rely on them being known), so
instead the decision is made for every way they could be filled in, using one representative of each
group of values the rules cannot tell apart (ruleset/space.py). What holds in every completion is
certain and is reported as usual; what holds in only some is reported separately as possible. So a
pregnant woman's exclusion of finasteride is certain even when her pattern of loss is not recorded.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from ..ruleset.model import Ruleset
from ..ruleset.space import UNKNOWN, representatives

MAX_COMPLETIONS = 5000


class TooManyCompletions(ValueError):
    """The missing facts leave too many cases to decide over; the caller must ask for more data."""


def completions(ruleset: Ruleset, profile: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    missing = [f for f in ruleset.inputs.values() if f.required and f.id not in profile]
    choices = [[v for v in representatives(ruleset, f) if v is not UNKNOWN] for f in missing]
    total = 1
    for c in choices:
        total *= len(c)
    if total > MAX_COMPLETIONS:
        names = ", ".join(f.id for f in missing)
        raise TooManyCompletions(f"too many possibilities ({total}) with {names} missing; record them first")
    filled = [
        dict(profile, **dict(zip([f.id for f in missing], combo, strict=True))) for combo in itertools.product(*choices)
    ]
    return [f.id for f in missing], filled


def aggregate(ruleset: Ruleset, missing: list[str], decisions: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge the decisions of every completion: certain parts as usual, the rest under `partial`."""
    n = len(decisions)

    def count(key: str) -> dict[str, int]:
        seen: dict[str, int] = {}
        for d in decisions:
            for item in d[key]:
                seen[item["option"]] = seen.get(item["option"], 0) + 1
        return seen

    cand_count, excl_count, ref_count = count("candidates"), count("excluded"), count("referrals")

    weakest: dict[str, dict[str, Any]] = {}
    for d in decisions:
        for c in d["candidates"]:
            prev = weakest.get(c["option"])
            if prev is None or ruleset.strength_rank(c["strength"]) > ruleset.strength_rank(prev["strength"]):
                weakest[c["option"]] = c
    candidates = [weakest[o] for o, k in cand_count.items() if k == n]
    candidates.sort(key=lambda c: (ruleset.strength_rank(c["strength"]), ruleset.option_index(c["option"])))

    reasons: dict[str, list[dict[str, str]]] = {}
    for d in decisions:
        for e in d["excluded"]:
            bucket = reasons.setdefault(e["option"], [])
            for r in e["reasons"]:
                if r not in bucket:
                    bucket.append(r)
    excluded = [
        {"option": o, "label": ruleset.options[o].label, "reasons": reasons[o]}
        for o in sorted(excl_count, key=ruleset.option_index)
        if excl_count[o] == n
    ]
    first_ref = {r["option"]: r for d in decisions for r in d["referrals"]}
    referrals = [first_ref[o] for o in sorted(ref_count, key=ruleset.option_index) if ref_count[o] == n]

    fired_sets = [set(d["fired_rules"]) for d in decisions]
    always = set.intersection(*fired_sets)
    fired = [r.id for r in ruleset.rules if r.id in always]
    warnings: list[dict[str, Any]] = []
    for d in decisions:
        for w in d["warnings"]:
            # A rule's own warning counts when it holds for every completion; a rule that could apply
            # once an optional fact is recorded is worth saying whenever it is so in any completion.
            keep = w["rule"] in always if w["kind"] == "rule" else w["rule"] not in always
            if keep and w not in warnings:
                warnings.append(w)
    labels = ", ".join(ruleset.inputs[f].label for f in missing)
    warnings.insert(
        0,
        {
            "kind": "missing_required",
            "fields": missing,
            "text": f"Not recorded: {labels}. Only what holds whatever their values is shown as certain.",
        },
    )
    return {
        "ruleset": decisions[0]["ruleset"],
        "candidates": candidates,
        "excluded": excluded,
        "referrals": referrals,
        "warnings": warnings,
        "fired_rules": fired,
        "partial": {
            "missing": missing,
            "completions": n,
            "possible_candidates": [o for o in sorted(cand_count, key=ruleset.option_index) if cand_count[o] < n],
            "possible_referrals": [o for o in sorted(ref_count, key=ruleset.option_index) if ref_count[o] < n],
            "possibly_excluded": {
                o: reasons[o] for o in sorted(excl_count, key=ruleset.option_index) if excl_count[o] < n
            },
        },
    }


def decide_partial(
    ruleset: Ruleset, decide: Callable[[dict[str, Any]], dict[str, Any]], profile: dict[str, Any]
) -> dict[str, Any]:
    """`decide` is the engine's complete decision (durable_rules, assembly, pending facts) for one profile."""
    missing, filled = completions(ruleset, profile)
    if not missing:
        return decide(profile)
    return aggregate(ruleset, missing, [decide(p) for p in filled])
