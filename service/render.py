"""A ruleset as a Markdown document for the committee that signs it.

Every rule is written as "When ... then ..." in words generated from the file itself, so the document
cannot drift from what the engine runs. Verification results (proofs, tests, coverage) are included
when a report is given, the reviewers' sign-offs of this exact revision when they are given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .ruleset.model import Ruleset
from .ruleset.words import (
    COURSE_LABELS,
    LEVEL_WORDS,
    SEMANTICS,
    allowed_words,
    describe,
    describe_action,
    invariant_words,
)
from .verify import Report


def tests_by_rule(report: Report) -> dict[str, list[str]]:
    """For each rule that fires in some test, the names of those tests (coverage, rule by rule)."""
    out: dict[str, list[str]] = {}
    for test in report.tests:
        for rid in test.fired:
            out.setdefault(rid, []).append(test.name)
    return out


def _esc(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _signoffs(w: Callable[[str], None], rs: Ruleset, signoffs: list[dict[str, Any]], mode: str | None) -> None:
    w("## Sign-offs of this revision")
    w("")
    if rs.status == "production" and not any(s["valid"] for s in signoffs):
        asked = ", which RULESET_SIGNING=required asks for" if mode == "required" else ""
        w(
            f"**No valid sign-off.** This production revision ({rs.sha256[:12]}) carries no valid "
            f"reviewer signature{asked}."
        )
        w("")
    if not signoffs:
        w("Nobody has signed this revision.")
        w("")
        return
    w("| Reviewer | Role | Date | Key | Signature |")
    w("|---|---|---|---|---|")
    for s in signoffs:
        state = "valid" if s["valid"] else f"not valid: {s.get('problem', '')}"
        w(f"| {_esc(s['reviewer'])} | {_esc(s['role'])} | {_esc(s['date'])} | `{s['key_id'][:12]}` | {_esc(state)} |")
    w("")


def render_markdown(
    rs: Ruleset,
    report: Report | None = None,
    signoffs: list[dict[str, Any]] | None = None,
    signing_mode: str | None = None,
) -> str:
    """The document; with `signoffs` (service/lifecycle: who signed this exact revision, valid or why not)
    a section lists them, and a production revision without a valid one says so first."""
    out: list[str] = []
    w = out.append
    w(f"# {rs.title}")
    w("")
    w(f"**Ruleset** `{rs.id}` · **version** {rs.version} · **status** {rs.status} · **institution** {rs.institution}")
    w("")
    w(f"Effective {rs.effective.isoformat()} · review due {rs.review_due.isoformat()} · sha256 `{rs.sha256}`")
    w("")
    w("## Purpose")
    w("")
    w(rs.purpose)
    w("")
    w("## Explanation")
    w("")
    w(rs.explanation)
    w("")
    w(f"Keywords: {', '.join(rs.keywords)}")
    w("")
    w("## Authors and reviewers")
    w("")
    w("| Name | Role | Reviewed |")
    w("|---|---|---|")
    for p in rs.authors:
        w(f"| {_esc(p.name)} | {_esc(p.role or 'author')} | |")
    for p in rs.reviewers:
        w(f"| {_esc(p.name)} | {_esc(p.role)} | {p.date.isoformat() if p.date else ''} |")
    w("")
    if signoffs is not None:
        _signoffs(w, rs, signoffs, signing_mode)
    w("## Recommendation strengths")
    w("")
    w("Listed strongest first. When several rules recommend one option, the strongest applies.")
    w("")
    for s in rs.strengths:
        w(f"- **{s.label}** (`{s.id}`): {s.description}")
    w("")
    w("## Decision semantics")
    w("")
    for sentence in SEMANTICS:
        w(f"- {sentence}")
    w("")
    w("## Inputs")
    w("")
    w("| Field | Label | Type | Required | Allowed values |")
    w("|---|---|---|---|---|")
    for f in rs.inputs.values():
        w(f"| `{f.id}` | {_esc(f.label)} | {f.type} | {'yes' if f.required else 'no'} | {_esc(allowed_words(f))} |")
    w("")
    w("## Options")
    for o in rs.options.values():
        w("")
        w(f"### {o.label} (`{o.id}`, {o.kind})")
        w("")
        w(o.summary)
        w("")
        if o.regimen:
            w(f"- **Regimen:** {o.regimen}")
        for key, label in COURSE_LABELS:
            value = getattr(o.course, key)
            if value:
                w(f"- **{label}:** {value}")
        if o.cost:
            w(f"- **Cost:** {o.cost}")
        w(f"- **Evidence:** {LEVEL_WORDS[o.evidence_level]}. {o.evidence_note}")
        for c in o.caveats:
            w(f"- **Caveat:** {c}")
        if o.references:
            w(f"- **References:** {', '.join(f'[{r}](#ref-{r})' for r in o.references)}")
    w("")
    w("## Rules")
    coverage = tests_by_rule(report) if report else {}
    for rule in rs.rules:
        w("")
        w(f"### {rule.id}: {rule.title}")
        w("")
        if rule.description:
            w(rule.description)
            w("")
        w(f"**When** {describe(rs, rule.when)},")
        w("")
        w("**then**")
        w("")
        for a in rule.then:
            w(f"- {describe_action(rs, a)}")
        if rule.references:
            w("")
            w(f"References: {', '.join(f'[{r}](#ref-{r})' for r in rule.references)}")
        if report:
            covering = coverage.get(rule.id)
            w("")
            w(f"Covered by tests: {'; '.join(covering)}." if covering else "**Not covered by any test.**")
    w("")
    w("## Safety invariants")
    w("")
    statuses = {i.id: i for i in report.invariants} if report else {}
    for inv in rs.invariants:
        res = statuses.get(inv.id)
        status = f" — **{res.status}** ({res.method})" if res else ""
        w(f"- **{inv.id}** {inv.title}: {invariant_words(rs, inv)}{status}")
        if res and res.counterexample:
            w(f"  - counterexample: `{res.counterexample}`")
    w("")
    w("## Tests")
    w("")
    results = {t.name: t for t in report.tests} if report else {}
    for case in rs.tests:
        res = results.get(case.name)
        mark = "" if res is None else (" — passed" if res.passed else " — **FAILED**: " + "; ".join(res.failures))
        w(f"- {case.name}{mark}")
    if report:
        w("")
        w(
            f"Rule coverage: {report.coverage:.0f}% ({len(report.covered_rules)} of "
            f"{len(report.covered_rules) + len(report.uncovered_rules)} rules fire in at least one test)."
        )
        if report.uncovered_rules:
            w(f"Not covered: {', '.join(report.uncovered_rules)}.")
    w("")
    w("## References")
    w("")
    for ref in rs.references.values():
        url = f" <{ref.url}>" if ref.url else ""
        note = f" — {ref.evidence}" if ref.evidence else ""
        w(f'- <a id="ref-{ref.id}"></a>**{ref.id}**: {ref.citation}{url}{note}')
    w("")
    w("## Sign-off")
    w("")
    w("| Name | Role | Signature | Date |")
    w("|---|---|---|---|")
    for p in rs.reviewers:
        w(f"| {_esc(p.name)} | {_esc(p.role)} | | |")
    w("")
    return "\n".join(out)
