"""A decision as plain text for a terminal (`flask rulesets evaluate --format text`).

The same order as the answer page: options with their strength and short reason, the patient's facts
behind it and the caveats; referrals; options not recommended and those to consider once more is recorded,
each with its reason and facts; then rule warnings and one line per fact to record. JSON stays the default
output; this is for reading.
"""

from __future__ import annotations

import textwrap

from .engine.answer import Decision, Exclusion, Reason, WarningKind
from .ruleset.model import Ruleset

WIDTH = 100


def _wrap(text: str, indent: str, first: str = "", hang: int | None = None) -> list[str]:
    rest = indent + " " * (len(first) if hang is None else hang)
    return textwrap.wrap(text, WIDTH, initial_indent=indent + first, subsequent_indent=rest)


def _reason(reason: Reason) -> str:
    facts = "; ".join(getattr(reason, "facts", ()) or ())
    return f"{reason.text} ({facts})" if facts else reason.text


def _excluded(lines: list[str], title: str, rows: list[Exclusion]) -> None:
    if not rows:
        return
    lines += ["", title]
    for e in rows:
        for i, reason in enumerate(e.reasons):
            lines += _wrap(_reason(reason) + f" [{reason.rule}]", "  ", f"- {e.label}: " if i == 0 else "  ", hang=2)


def decision_text(ruleset: Ruleset, decision: Decision) -> str:
    """The decision for a person to read (see the module's docstring)."""
    strengths = {s.id: s.label for s in ruleset.strengths}
    lines = [f"{ruleset.title}, version {decision.ruleset.version}", "", "Options to consider"]
    if not decision.candidates:
        lines.append("  none" + (" (see the referrals)" if decision.referrals else ""))
    for n, c in enumerate(decision.candidates, 1):
        lines.append(f"  {n}. {c.label} ({strengths.get(c.strength, c.strength)})")
        reasons = c.reasons or tuple(Reason(rule=r, text=t) for r, t in zip(c.rules, c.rationale, strict=False))
        for reason in reasons:
            lines += _wrap(_reason(reason) + f" [{reason.rule}]", "     ", "why: ")
        for caveat in c.caveats:
            lines += _wrap(caveat, "     ", "caveat: ")
    if decision.referrals:
        lines += ["", "Referrals"]
        for r in decision.referrals:
            lines.append(f"  - {r.label}")
            reasons = r.reasons or tuple(Reason(rule=x, text=t) for x, t in zip(r.rules, r.rationale, strict=False))
            for reason in reasons:
                lines += _wrap(_reason(reason) + f" [{reason.rule}]", "     ", "why: ")
    _excluded(lines, "Not recommended", [e for e in decision.excluded if not e.until_recorded])
    _excluded(lines, "To consider once recorded", [e for e in decision.excluded if e.until_recorded])
    warnings = [w for w in decision.warnings if w.kind != WarningKind.UNKNOWN_INPUTS]
    prompts = [w for w in decision.warnings if w.kind == WarningKind.UNKNOWN_INPUTS]
    if warnings:
        lines += ["", "Warnings"]
        for w in warnings:
            lines += _wrap(w.text + (f" [{w.rule}]" if w.rule else ""), "  ", "- ")
    if prompts:
        lines += ["", "Facts to record"]
        for w in prompts:
            lines += _wrap(w.text, "  ", "- ")
    if decision.decision_id:
        lines += ["", f"Decision {decision.decision_id}"]
    return "\n".join(lines) + "\n"
