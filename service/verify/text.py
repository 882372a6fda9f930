"""The `rulesets check` report as plain text, for a terminal or a CI log."""

from __future__ import annotations

import json

from . import Report


def report_text(report: Report) -> str:
    lines: list[str] = []
    w = lines.append
    verdict = "PASS" if report.ok else "FAIL"
    w(f"{verdict}  {report.ruleset} {report.version} (sha256 {report.sha256[:12]}, {report.seconds:.1f}s)")
    agree = "agree" if not report.disagreements else f"DISAGREE on {len(report.disagreements)} profile(s)"
    w(f"  evaluators: durable_rules and the reference evaluator {agree} on {report.crosscheck_profiles} profiles")
    for d in report.disagreements:
        w(f"    profile {json.dumps(d['profile'])}: durable_rules {d['durable_rules']} vs reference {d['reference']}")
    space = f"{report.partitions} pieces of the input space"
    w(f"  invariants ({len(report.invariants)}; {space}{', all enumerated' if report.enumerated else ''}):")
    for inv in report.invariants:
        w(f"    {inv.status.upper():9} {inv.id}: {inv.title}")
        w(f"              method: {inv.method}")
        if inv.counterexample is not None:
            w(f"              counterexample: {json.dumps(inv.counterexample)}")
            w(f"              decision: {inv.detail}")
    passed = sum(t.passed for t in report.tests)
    w(f"  tests: {passed}/{len(report.tests)} passed")
    for t in report.tests:
        if not t.passed:
            w(f"    FAILED {t.name}: {'; '.join(t.failures)}")
    total = len(report.covered_rules) + len(report.uncovered_rules)
    w(f"  rule coverage: {report.coverage:.0f}% ({len(report.covered_rules)}/{total})")
    if report.uncovered_rules:
        w(f"    not covered by any test: {', '.join(report.uncovered_rules)}")
    w(f"  rules that can never fire: {', '.join(report.dead_rules) or 'none'}")
    w(f"  options never reachable: {', '.join(report.unreachable_options) or 'none'}")
    if report.gaps:
        w(f"  gaps (valid profiles with no candidate and no referral), e.g.: {json.dumps(report.gaps[0])}")
        for gap in report.gaps[1:]:
            w(f"    also: {json.dumps(gap)}")
    else:
        w("  gaps: none (every valid profile gets a candidate or a referral)")
    for err in report.errors:
        w(f"  ERROR {err}")
    return "\n".join(lines)
