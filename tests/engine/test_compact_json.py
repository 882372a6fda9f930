"""The default view narrowed from the full decision's JSON is the default view built from the decision."""

from __future__ import annotations

import json

import orjson

from service.config import ROOT
from service.engine import Engine, InvalidProfile, TooManyCompletions
from service.engine.answer import encode, to_json
from service.engine.views import compact, compact_json
from service.ruleset import load_file


def test_compact_json_equals_the_compact_view_on_every_test_profile() -> None:
    rs = load_file(ROOT / "rulesets" / "androgenetic-alopecia.yaml")
    engine = Engine(rs)
    try:
        required = [f.id for f in rs.inputs.values() if f.required]
        partials = 0
        for test in rs.tests:
            raw = json.loads(json.dumps(test.profile, default=list))
            for partial in (False, True):
                if partial:  # a required fact missing: the decision carries a `partial` section
                    raw = {k: v for k, v in raw.items() if k != next((f for f in required if f in raw), None)}
                try:
                    profile = engine.check(raw, partial=partial)
                except InvalidProfile:
                    continue
                for explain in (False, True):
                    try:
                        decision = (
                            engine.decide_partial(profile, explain=explain)
                            if partial
                            else engine.decide(profile, explain=explain)
                        )
                    except TooManyCompletions:
                        continue
                    partials += decision.partial is not None
                    narrowed = orjson.dumps(compact_json(orjson.loads(encode(decision))))
                    assert narrowed == encode(compact(decision)), test.name
                    assert orjson.loads(narrowed) == to_json(compact(decision))
    finally:
        engine.close()
    assert partials  # the partial section was among the decisions compared
