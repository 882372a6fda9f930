"""Decisions when required facts are missing, e.g. a CDS Hooks call where the EHR cannot know the pattern.

Missing required facts cannot be treated as "unknown" inside rules (rules rely on them being known), so
instead the decision is made for every way they could be filled in, using one representative of each
group of values the rules cannot tell apart (ruleset/space.py). What holds in every completion is
certain and is reported as usual; what holds in only some is reported separately as possible. So a
pregnant woman's exclusion of finasteride is certain even when her pattern of loss is not recorded.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any

from ..ruleset.model import Ruleset
from ..ruleset.space import UNKNOWN, representatives
from .answer import Candidate, Decision, Exclusion, Partial, Reason, Referral, Warning, WarningKind

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


def aggregate(ruleset: Ruleset, missing: list[str], decisions: list[Decision]) -> Decision:
    """Merge the decisions of every completion: certain parts as usual, the rest under `partial`."""
    n = len(decisions)

    def count(groups: Iterable[tuple[Candidate, ...] | tuple[Exclusion, ...] | tuple[Referral, ...]]) -> dict[str, int]:
        seen: dict[str, int] = {}
        for items in groups:
            for item in items:
                seen[item.option] = seen.get(item.option, 0) + 1
        return seen

    cand_count = count(d.candidates for d in decisions)
    excl_count = count(d.excluded for d in decisions)
    ref_count = count(d.referrals for d in decisions)

    weakest: dict[str, Candidate] = {}
    for d in decisions:
        for c in d.candidates:
            prev = weakest.get(c.option)
            if prev is None or ruleset.strength_rank(c.strength) > ruleset.strength_rank(prev.strength):
                weakest[c.option] = c
    candidates = [weakest[o] for o, k in cand_count.items() if k == n]
    candidates.sort(key=lambda c: (ruleset.strength_rank(c.strength), ruleset.option_index(c.option)))

    reasons: dict[str, list[Reason]] = {}
    for d in decisions:
        for e in d.excluded:
            bucket = reasons.setdefault(e.option, [])
            for r in e.reasons:
                if r not in bucket:
                    bucket.append(r)
    excluded = tuple(
        Exclusion(option=o, label=ruleset.options[o].label, reasons=tuple(reasons[o]))
        for o in sorted(excl_count, key=ruleset.option_index)
        if excl_count[o] == n
    )
    first_ref = {r.option: r for d in decisions for r in d.referrals}
    referrals = tuple(first_ref[o] for o in sorted(ref_count, key=ruleset.option_index) if ref_count[o] == n)

    fired_sets = [set(d.fired_rules) for d in decisions]
    always = set.intersection(*fired_sets)
    fired = tuple(r.id for r in ruleset.rules if r.id in always)
    labels = ", ".join(ruleset.inputs[f].label for f in missing)
    warnings: list[Warning] = [
        Warning(
            kind=WarningKind.MISSING_REQUIRED,
            fields=tuple(missing),
            text=f"Not recorded: {labels}. Only what holds whatever their values is shown as certain.",
        )
    ]
    prompts: dict[tuple[str, ...] | None, Warning] = {}
    for d in decisions:
        for w in d.warnings:
            # A rule's own warning counts when it holds for every completion; an unrecorded optional fact
            # that could change the answer is worth asking for whenever it could in any completion (the
            # completion where it could change the most options speaks for the input).
            if w.kind is WarningKind.UNKNOWN_INPUTS:
                prev = prompts.get(w.fields)
                if prev is None or len(w.options or ()) > len(prev.options or ()):
                    prompts[w.fields] = w
                continue
            keep = w.rule in always if w.kind is WarningKind.RULE else w.rule not in always
            if keep and w not in warnings:
                warnings.append(w)
    warnings.extend(sorted(prompts.values(), key=lambda w: -len(w.options or ())))
    return Decision(
        ruleset=decisions[0].ruleset,
        candidates=tuple(candidates),
        excluded=excluded,
        referrals=referrals,
        warnings=tuple(warnings),
        fired_rules=fired,
        partial=Partial(
            missing=tuple(missing),
            completions=n,
            possible_candidates=tuple(o for o in sorted(cand_count, key=ruleset.option_index) if cand_count[o] < n),
            possible_referrals=tuple(o for o in sorted(ref_count, key=ruleset.option_index) if ref_count[o] < n),
            possibly_excluded={
                o: tuple(reasons[o]) for o in sorted(excl_count, key=ruleset.option_index) if excl_count[o] < n
            },
        ),
    )


def decide_partial(ruleset: Ruleset, decide: Callable[[dict[str, Any]], Decision], profile: dict[str, Any]) -> Decision:
    """`decide` is the engine's complete decision (durable_rules, assembly, pending facts) for one profile."""
    missing, filled = completions(ruleset, profile)
    if not missing:
        return decide(profile)
    return aggregate(ruleset, missing, [decide(p) for p in filled])
