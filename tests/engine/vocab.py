"""A small ruleset with one field of every type, into which tests put their own rules."""

from __future__ import annotations

import json
from typing import Any

from service.ruleset import Ruleset, load_text

HEAD = """
id: semantics
version: "1.0.0"
title: Semantics fixture
status: testing
institution: Test
authors: [{name: Tests}]
reviewers: [{name: Tests, role: tests, date: 2026-01-01}]
effective: 2026-01-01
review_due: 2027-01-01
purpose: Exercise the condition semantics.
explanation: Each test adds its own rules.
keywords: [test]
references:
  ref1: {citation: A citation.}
strengths:
  - {id: strong, label: Strong}
  - {id: weak, label: Weak}
inputs:
  sex: {type: enum, label: Sex, help: h, required: true, values: [{code: male, label: Male}, {code: female, label: Female}]}
  age: {type: integer, label: Age, help: h, required: true, min: 0, max: 120, unit: years}
  stage: {type: ordered_enum, label: Stage, help: h, required: false,
          values: [{code: mild, label: Mild}, {code: moderate, label: Moderate}, {code: severe, label: Severe}]}
  pregnant: {type: boolean, label: Pregnant, help: h, required: false}
  months: {type: integer, label: Months, help: h, required: false, min: 0, max: 600, unit: months}
  conditions: {type: set, label: Conditions, help: h, required: false,
               values: [{code: a, label: A}, {code: b, label: B}, {code: c, label: C}]}
options:
  x: {label: X, kind: treatment, summary: s, evidence: {level: high, note: n}, caveats: [standing caveat]}
  y: {label: Y, kind: treatment, summary: s, evidence: {level: low, note: n}}
  z: {label: Z, kind: treatment, summary: s, evidence: {level: low, note: n}}
  refer: {label: Refer, kind: referral, summary: s, evidence: {level: not_applicable, note: n}}
"""


def ruleset(rules: list[dict[str, Any]], invariants: list[dict[str, Any]] | None = None) -> Ruleset:
    """A ruleset from rule dicts (JSON is valid YAML), with one trivial test so it loads."""
    text = HEAD + "rules: " + json.dumps(rules) + "\n"
    invariants = invariants or [{"id": "i", "title": "referrals are never candidates", "never_candidate": ["refer"]}]
    text += "invariants: " + json.dumps(invariants) + "\n"
    text += "tests: [{name: t, profile: {sex: male, age: 30}, expect: {fired: []}}]\n"
    return load_text(text, "semantics.yaml")


def rule(rid: str, when: dict[str, Any], option: str = "x", strength: str = "strong") -> dict[str, Any]:
    return {
        "id": rid,
        "title": rid,
        "when": when,
        "then": [{"recommend": option, "strength": strength, "rationale": rid}],
    }
