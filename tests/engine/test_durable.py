"""The durable_rules driver under the conditions that break it when used naively (reference section 2)."""

from __future__ import annotations

import random
import sys
import threading

from service.engine import Engine, reference
from service.ruleset import space
from tests.engine.vocab import rule, ruleset

RULES = [
    rule("adults", {"field": "age", "at_least": 18}),
    rule("unknown-pregnancy", {"unknown": "pregnant"}, "y"),
    {
        "id": "preg",
        "title": "p",
        "when": {"field": "pregnant", "equals": True},
        "then": [{"exclude": ["x", "y"], "reason": "pregnancy"}],
    },
    rule(
        "stage",
        {"all": [{"field": "stage", "at_least": "moderate"}, {"not": {"field": "conditions", "contains": "a"}}]},
        "z",
    ),
]


def test_a_profile_matching_no_rule_is_answered_without_crashing() -> None:
    """Without the catch-all rule, delete_state after an unhandled fact segfaults (P2/P3)."""
    engine = Engine(ruleset(RULES))
    try:
        for _ in range(3):
            assert engine.fired(engine.check({"sex": "male", "age": 10, "pregnant": False})) == []
    finally:
        engine.close()


def test_sessions_are_freed_beyond_the_1024_live_session_limit() -> None:
    """durable_rules fails at the 1025th live session (P4); every evaluation must delete its own."""
    engine = Engine(ruleset(RULES))
    try:
        profile = engine.check({"sex": "female", "age": 30})
        for _ in range(3000):
            assert engine.fired(profile) == ["adults", "unknown-pregnancy"]
    finally:
        engine.close()


def test_concurrent_threads_get_correct_answers() -> None:
    """No dispatcher thread, one session per call: threads never see each other's actions (2.4)."""
    rs = ruleset(RULES)
    engine = Engine(rs)
    rng = random.Random(5)
    profiles = [space.random_profile(rs, rng) for _ in range(400)]
    expected = [reference.fired_rules(rs, p) for p in profiles]
    errors: list[str] = []
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)

    def work() -> None:
        for p, want in zip(profiles, expected, strict=True):
            got = engine.fired(p)
            if got != want:
                errors.append(f"{p}: {got} != {want}")

    try:
        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
        engine.close()
    assert errors == []


def test_two_revisions_of_one_ruleset_live_side_by_side() -> None:
    """Rulesets get unique durable names, so a reload can compile the new revision before dropping the old."""
    a = Engine(ruleset(RULES))
    b = Engine(ruleset(RULES[:1]))
    try:
        p = a.check({"sex": "female", "age": 30})
        assert a.fired(p) == ["adults", "unknown-pregnancy"]
        assert b.fired(p) == ["adults"]
    finally:
        a.close()
        b.close()
