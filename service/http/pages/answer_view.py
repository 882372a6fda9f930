"""The answer page's shape: what a busy clinician reads first, built from the typed decision.

The page shows, on one screen, each option with its strength and one-line reason in this patient's facts,
every excluded option with its reason, referrals and warnings; everything else (regimen, course, cost,
all caveats, evidence, references, the rule-by-rule trace) is one click away. This module sorts the
decision into those rows so the template only loops and prints:

- exclusions that rest on facts not yet recorded (`Exclusion.until_recorded`) are "to consider once
  recorded", the others "not recommended";
- rule warnings (and the other kinds a clinician must see) come before the missing-facts prompts, one
  prompt per unrecorded input (`unknown_inputs` warnings).

Fields of the layered decision (Reason.facts, Candidate.reasons, ...) are read with `getattr` and a
fallback, so the page also renders decisions recorded before those fields existed (replays, the log).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ...engine.answer import Candidate, Citation, Decision, Exclusion, Reason, Referral, Warning, WarningKind
from ...ruleset.model import Ruleset
from .handout_view import patient_texts


@dataclass(frozen=True)
class Why:
    """One reason: the rule's short text and the patient's facts that made it fire."""

    rule: str
    text: str
    facts: tuple[str, ...] = ()
    detail: str | None = None


@dataclass(frozen=True)
class CaveatRow:
    text: str
    detail: str | None = None


@dataclass(frozen=True)
class OptionRow:
    """A candidate or a referral: the first line (label, strength, first reason) and what its details hold."""

    option: str
    label: str
    strength: str
    strength_label: str
    why: Why | None
    more_why: tuple[Why, ...]
    caveats: tuple[CaveatRow, ...]
    entry: Candidate | Referral
    detail: str | None
    handout: bool  # the option has a patient layer (it can go on the handout)
    references: tuple[Citation, ...] = ()  # with full citations, from the ruleset's catalogue
    checked: tuple[str, ...] = ()  # every fact behind the first reason (the first line names the telling ones)


@dataclass(frozen=True)
class ExcludedRow:
    option: str
    label: str
    why: Why | None
    more_why: tuple[Why, ...]
    until_recorded: tuple[str, ...]  # labels of the inputs to record


@dataclass(frozen=True)
class ExcludedGroup:
    """Options excluded for one and the same first reason (the 5-ARIs in pregnancy): said once, for all."""

    rows: tuple[ExcludedRow, ...]

    @property
    def why(self) -> Why | None:
        return self.rows[0].why

    @property
    def more(self) -> tuple[ExcludedRow, ...]:
        return tuple(r for r in self.rows if r.more_why)


@dataclass(frozen=True)
class AnswerView:
    options: tuple[OptionRow, ...]
    shared_facts: tuple[str, ...]  # facts behind two or more options' first reasons: said once, above them
    referrals: tuple[OptionRow, ...]
    not_recommended: tuple[ExcludedGroup, ...]
    once_recorded: tuple[ExcludedGroup, ...]
    warnings: tuple[Warning, ...]  # rule warnings and the like, first
    prompts: tuple[Warning, ...]  # one per unrecorded input that could change the answer


def _why(reason: Reason) -> Why:
    return Why(
        rule=reason.rule,
        text=reason.text,
        facts=tuple(getattr(reason, "facts", None) or ()),
        detail=getattr(reason, "detail", None),
    )


def _reasons(entry: Candidate | Referral) -> list[Why]:
    reasons = getattr(entry, "reasons", None)
    if reasons:
        return [_why(r) for r in reasons]
    return [Why(rule=rule, text=text) for rule, text in zip(entry.rules, entry.rationale, strict=False)]


def _caveats(entry: Candidate | Referral) -> tuple[CaveatRow, ...]:
    notes = getattr(entry, "caveat_notes", None)
    if notes:
        return tuple(CaveatRow(n.text, getattr(n, "detail", None)) for n in notes)
    return tuple(CaveatRow(text) for text in getattr(entry, "caveats", ()))


def _citations(ruleset: Ruleset, entry: Candidate | Referral) -> tuple[Citation, ...]:
    """An entry's references with their full citations: the default view names them by id only."""
    evidence = getattr(entry, "evidence", None)
    out = []
    for ref in evidence.references if evidence is not None else ():
        known = ruleset.references.get(ref.id)
        if known is None:
            out.append(ref)
        else:
            out.append(
                Citation(id=ref.id, citation=known.citation, url=known.url or None, evidence=known.evidence or None)
            )
    return tuple(out)


def _option_row(ruleset: Ruleset, entry: Candidate | Referral, strengths: dict[str, str]) -> OptionRow:
    reasons = _reasons(entry)
    strength = getattr(entry, "strength", "referral")
    option = ruleset.options.get(entry.option)
    return OptionRow(
        option=entry.option,
        label=entry.label,
        strength=strength,
        strength_label=strengths.get(strength, "Referral" if strength == "referral" else strength),
        why=reasons[0] if reasons else None,
        more_why=tuple(reasons[1:]),
        caveats=_caveats(entry),
        entry=entry,
        detail=getattr(entry, "detail", None),
        handout=option is not None and bool(patient_texts(option)),
        references=_citations(ruleset, entry),
    )


def _excluded_row(ruleset: Ruleset, exclusion: Exclusion) -> ExcludedRow:
    reasons = [_why(r) for r in exclusion.reasons]
    pending = getattr(exclusion, "until_recorded", None) or ()
    return ExcludedRow(
        option=exclusion.option,
        label=exclusion.label,
        why=reasons[0] if reasons else None,
        more_why=tuple(reasons[1:]),
        until_recorded=tuple(ruleset.inputs[f].label if f in ruleset.inputs else f for f in pending),
    )


def _shared_facts(rows: list[OptionRow]) -> tuple[str, ...]:
    """Facts behind the first reasons of two or more options (sex, age, diagnosis...): said once, above them.

    Each option's first line then names only the facts that are its own; its details list all of them.
    """
    firsts = [row.why.facts if row.why else () for row in rows]
    seen: list[str] = []
    for facts in firsts:
        seen.extend(f for f in facts if f not in seen and not _absence(f))
    return tuple(f for f in seen if sum(f in facts for facts in firsts) >= 2)


def _absence(fact: str) -> bool:
    """A fact that only says a contraindication is absent ("Relevant conditions: none of ...", words.fact_words)."""
    return ": none of " in fact


def _first_line(row: OptionRow, shared: tuple[str, ...]) -> OptionRow:
    """The first line names the facts that tell this option apart; all of them stay in its details."""
    if row.why is None:
        return row
    telling = tuple(f for f in row.why.facts if f not in shared and not _absence(f))
    return replace(row, why=replace(row.why, facts=telling), checked=row.why.facts)


def _grouped(rows: list[ExcludedRow]) -> tuple[ExcludedGroup, ...]:
    """Rows with the same first reason (rule, text and facts) together, in the order of their first option."""
    groups: dict[object, list[ExcludedRow]] = {}
    for row in rows:
        key = (row.why.rule, row.why.text, row.why.facts) if row.why else row.option
        groups.setdefault(key, []).append(row)
    return tuple(ExcludedGroup(tuple(g)) for g in groups.values())


def answer_view(ruleset: Ruleset, decision: Decision) -> AnswerView:
    """Sort a decision into the rows of the answer page (see the module's docstring)."""
    strengths = {s.id: s.label for s in ruleset.strengths}
    excluded = [_excluded_row(ruleset, e) for e in decision.excluded]
    options = [_option_row(ruleset, c, strengths) for c in decision.candidates]
    shared = _shared_facts(options)
    return AnswerView(
        options=tuple(_first_line(row, shared) for row in options),
        shared_facts=shared,
        referrals=tuple(_first_line(_option_row(ruleset, r, strengths), ()) for r in decision.referrals),
        not_recommended=_grouped([e for e in excluded if not e.until_recorded]),
        once_recorded=_grouped([e for e in excluded if e.until_recorded]),
        warnings=tuple(w for w in decision.warnings if w.kind != WarningKind.UNKNOWN_INPUTS),
        prompts=tuple(w for w in decision.warnings if w.kind == WarningKind.UNKNOWN_INPUTS),
    )
