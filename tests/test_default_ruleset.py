"""The default ruleset `androgenetic-alopecia` against its contract (issue 3).

EHR integrations and the web form code against the vocabulary and option ids, so they are pinned here
exactly. Verification is the same `verify()` that `flask rulesets check` and the registry run: proofs,
cross-check of the two evaluators, named tests with coverage, dead rules and gaps.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.engine import Engine, InvalidProfile
from service.engine.answer import to_json
from service.ruleset import Ruleset, load_file
from service.verify import Report, verify

RULESET_FILE = Path(__file__).resolve().parent.parent / "rulesets" / "androgenetic-alopecia.yaml"

NORWOOD = ["I", "II", "IIa", "III", "IIIa", "IIIv", "IV", "IVa", "V", "Va", "VI", "VII"]
VOCABULARY: dict[str, tuple[str, bool, Any]] = {
    "sex": ("enum", True, ["male", "female"]),
    "age": ("integer", True, (0, 120)),
    "diagnosis": ("enum", True, ["androgenetic_alopecia", "uncertain", "other"]),
    "pattern": (
        "enum",
        True,
        [f"norwood-{g}" for g in NORWOOD]
        + ["ludwig-I", "ludwig-II", "ludwig-III", "frontal-recession", "diffuse-unpatterned"],
    ),
    "prior_finasteride": (
        "enum",
        True,
        [
            "not_tried",
            "responder",
            "partial_responder",
            "non_responder",
            "intolerant_sexual",
            "intolerant_mood",
            "intolerant_other",
        ],
    ),
    # 1.1.0 (issue 12): the topical minoxidil history decides the oral minoxidil indication (§8, §17.B).
    "topical_minoxidil": ("enum", False, ["not_tried", "responding", "ineffective", "irritating", "impractical"]),
    "transplant_history": ("enum", True, ["none", "fue", "fut"]),
    "months_since_transplant": ("integer", False, (0, 600)),
    "pregnant": ("boolean", False, None),
    "breastfeeding": ("boolean", False, None),
    "trying_to_conceive": ("boolean", False, None),
    "childbearing_potential": ("boolean", False, None),
    "reliable_contraception": ("boolean", False, None),
    "conditions": (
        "set",
        False,
        [
            "heart_failure",
            "pericardial_disease",
            "pulmonary_hypertension",
            "pheochromocytoma",
            "hypotension",
            "coronary_artery_disease",
            "arrhythmia",
            "treated_hypertension",
            "renal_impairment",
            "thrombocytopenia",
            "platelet_dysfunction",
            "coagulopathy",
            "active_malignancy",
            "scalp_infection",
            "hyperkalaemia",
            "adrenal_insufficiency",
            "hyperandrogenism",
            "abnormal_semen_analysis",
            "paradoxical_alopecia_history",
            # 1.1.0 (issue 12): cautions of H-6, H-10 and H-11 that lived only in caveat text.
            "erectile_or_ejaculatory_dysfunction",
            "systemic_infection",
            "haemodynamic_instability",
            "unstable_loss",
            "body_dysmorphic_disorder",
            "trichotillomania",
            "medically_unfit_for_surgery",
        ],
    ),
    "medications": (
        "set",
        False,
        [
            "anticoagulant",
            "antiplatelet",
            "eplerenone",
            "potassium_sparing_diuretic",
            "ace_inhibitor_or_arb",
            "potassium_supplement",
        ],
    ),
    "preferences": ("set", False, ["avoid_oral", "avoid_injections", "avoid_surgery"]),
}
TREATMENTS = {
    "dutasteride_mesotherapy",
    "prp",
    "oral_minoxidil",
    "topical_minoxidil",
    "oral_finasteride",
    "topical_finasteride",
    "oral_dutasteride",
    "spironolactone",
    "lllt",
    "hair_transplant",
    "mesotherapy_cocktails",  # 1.1.0: never a candidate, always shown as not recommended (§17.C)
}
NEVER_CANDIDATES = ["mesotherapy_cocktails"]
REFERRALS = {"diagnosis_review", "endocrine_workup", "specialist_review"}
FIVE_ARIS = ["oral_finasteride", "topical_finasteride", "oral_dutasteride", "dutasteride_mesotherapy"]
TAG = re.compile(r"\[(V|S|U)\b")
# Rules that state no clinical fact (patient preferences, a data-quality check) and so cite nothing.
UNREFERENCED_RULES = {"P-1", "P-2", "P-3", "T-7"}


@pytest.fixture(scope="module")
def ruleset() -> Ruleset:
    return load_file(RULESET_FILE)


@pytest.fixture(scope="module")
def engine(ruleset: Ruleset) -> Iterator[Engine]:
    eng = Engine(ruleset)
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def report(ruleset: Ruleset, engine: Engine) -> Report:
    return verify(ruleset, engine)


def adult(**overrides: Any) -> dict[str, Any]:
    """A man with confirmed AGA and nothing else recorded; tests change what they are about."""
    profile: dict[str, Any] = {
        "sex": "male",
        "age": 30,
        "diagnosis": "androgenetic_alopecia",
        "pattern": "norwood-III",
        "prior_finasteride": "not_tried",
        "transplant_history": "none",
    }
    profile.update(overrides)
    return profile


def evaluate(engine: Engine, profile: dict[str, Any]) -> dict[str, Any]:
    """The decision as the JSON API sends it."""
    return to_json(engine.evaluate(profile))


def candidates(decision: dict[str, Any]) -> dict[str, str]:
    return {c["option"]: c["strength"] for c in decision["candidates"]}


def layers(item: dict[str, Any]) -> str:
    """A reason's or caveat's text with its detail and evidence layers (the full view)."""
    return " ".join(item.get(k) or "" for k in ("text", "detail", "evidence"))


def excluded(decision: dict[str, Any]) -> dict[str, list[str]]:
    return {e["option"]: [layers(r) for r in e["reasons"]] for e in decision["excluded"]}


def caveat_texts(card: dict[str, Any]) -> list[str]:
    """A candidate's caveats in all their layers (the full view's caveat notes)."""
    return [layers(c) for c in card["caveat_notes"]]


def excluded_by(decision: dict[str, Any]) -> dict[str, set[str]]:
    """The rules behind each exclusion (rule ids live in the evidence layer, not in the short texts)."""
    return {e["option"]: {r["rule"] for r in e["reasons"]} for e in decision["excluded"]}


# ---- the contract: metadata, vocabulary, options -------------------------------------------------


def test_metadata_is_production_1_1_0_with_role_names(ruleset: Ruleset) -> None:
    assert (ruleset.id, ruleset.version, ruleset.status) == ("androgenetic-alopecia", "1.1.0", "production")
    assert [s.id for s in ruleset.strengths] == ["recommended", "consider", "specialist_only"]
    assert all(s.description for s in ruleset.strengths)
    assert ruleset.reviewers and all("pending" in r.name.lower() for r in ruleset.reviewers)
    assert ruleset.effective < ruleset.review_due


def test_vocabulary_is_exactly_the_issue_table(ruleset: Ruleset) -> None:
    assert list(ruleset.inputs) == list(VOCABULARY)
    for fid, (ftype, required, allowed) in VOCABULARY.items():
        field = ruleset.inputs[fid]
        assert (field.type, field.required) == (ftype, required), fid
        assert field.label and field.help, fid
        if ftype == "integer":
            assert (field.minimum, field.maximum) == allowed, fid
        elif allowed is None:
            assert field.codes == (), fid
        else:
            assert list(field.codes) == allowed, fid


def test_option_ids_and_kinds_are_exactly_the_issue_list(ruleset: Ruleset) -> None:
    kinds = {oid: o.kind for oid, o in ruleset.options.items()}
    assert kinds == {**dict.fromkeys(TREATMENTS, "treatment"), **dict.fromkeys(REFERRALS, "referral")}


def test_every_treatment_has_the_catalogue_entries_auditors_need(ruleset: Ruleset) -> None:
    for oid in TREATMENTS:
        option = ruleset.options[oid]
        assert option.summary and option.cost and option.caveats and option.references, oid
        assert option.evidence_level in {"high", "moderate", "low", "very_low"}, oid
        assert TAG.search(option.evidence_note), f"{oid}: evidence note without a verification tag"


def test_evidence_notes_do_not_restate_the_level(ruleset: Ruleset) -> None:
    # Pages print the level word and then the note ("High. <note>"): a note opening with a level reads twice.
    level_words = ("high", "moderate", "low", "very low", "not applicable")
    for oid, option in ruleset.options.items():
        assert not option.evidence_note.lower().startswith(level_words), f"{oid}: {option.evidence_note[:40]}"


def test_five_ari_options_carry_the_mandatory_h9_caveats(ruleset: Ruleset) -> None:
    for oid in FIVE_ARIS:  # in any layer of the caveats (short text, detail, evidence)
        text = " ".join(f"{c.text} {c.detail} {c.evidence}" for c in ruleset.options[oid].caveat_items).lower()
        for topic in ("sexual", "mood", "psa", "blood donation"):
            assert topic in text, f"{oid} lacks the H-9 caveat on {topic}"


def test_mesotherapy_carries_the_h10_caveats_course_and_unverified_cost(ruleset: Ruleset) -> None:
    meso = ruleset.options["dutasteride_mesotherapy"]
    caveats = " ".join(f"{c.text} {c.detail} {c.evidence}" for c in meso.caveat_items)
    for words in ("not FDA- or EMA-approved", "compounded", "low quality", "paradoxical", "atrophy"):
        assert words in caveats
    assert meso.evidence_level == "low"
    assert "type 1 and type 2" in f"{meso.summary} {meso.detail}"
    assert "3 months" in meso.course.maintenance and "a year or more" in meso.course.time_to_response
    assert "per session" in meso.cost and "[U" in meso.cost


def test_references_are_used_and_traceable(ruleset: Ruleset) -> None:
    cited = {r for o in ruleset.options.values() for r in o.references}
    cited |= {r for rule in ruleset.rules for r in rule.references}
    assert cited == set(ruleset.references), "every reference is cited and every citation is listed"
    for ref in ruleset.references.values():
        assert ref.url or "No URL recorded" in ref.evidence, ref.id
        assert TAG.search(ref.evidence), f"{ref.id}: evidence note without a verification tag"


def test_rule_texts_are_short_for_the_clinician_with_the_audit_trail_in_evidence(ruleset: Ruleset) -> None:
    # Issue 12 (concise texts): tags, section numbers and policy notes left the short texts for `evidence`.
    actions = [(rule.id, a) for rule in ruleset.rules for a in rule.then]
    for rid, a in actions:
        assert not TAG.search(a.text) and "§" not in a.text and "policy of this ruleset" not in a.text.lower(), rid
    assert sum(bool(TAG.search(a.evidence)) for _, a in actions) >= 100
    # Caveats about semen analysis and erectile or ejaculatory function are for men only.
    men_only = [a for rid, a in actions if rid in ("H-10-S", "H-10-E")]
    assert men_only and all((a.when.field, a.when.value) == ("sex", "male") for a in men_only)  # type: ignore[union-attr]


def test_every_rule_is_titled_explained_and_referenced(ruleset: Ruleset) -> None:
    for rule in ruleset.rules:
        assert rule.title and all(a.text for a in rule.then), rule.id
        assert bool(rule.references) != (rule.id in UNREFERENCED_RULES), rule.id


def test_each_hard_exclusion_is_a_rule_and_an_invariant(ruleset: Ruleset) -> None:
    rule_ids = [r.id for r in ruleset.rules]
    invariant_ids = [i.id for i in ruleset.invariants]
    for n in range(1, 12):
        assert any(re.fullmatch(rf"H-{n}(-.+|U.*)?", rid) for rid in rule_ids), f"no rule for H-{n}"
        assert any(re.fullmatch(rf"INV-H{n}(-.+)?", iid) for iid in invariant_ids), f"no invariant for H-{n}"
    assert any(i.kind == "some_candidate_or_referral" for i in ruleset.invariants)


# ---- verification: what `flask rulesets check` requires ---------------------------------------------


def test_the_ruleset_passes_verification(report: Report) -> None:
    assert report.ok, report.as_dict()


def test_every_invariant_is_proven(ruleset: Ruleset, report: Report) -> None:
    assert len(report.invariants) == len(ruleset.invariants) >= 40
    assert [(i.id, i.counterexample) for i in report.invariants if i.status != "proven"] == []


def test_named_tests_pass_with_full_rule_coverage(report: Report) -> None:
    assert len(report.tests) >= 40
    assert [(t.name, t.failures) for t in report.tests if not t.passed] == []
    assert report.uncovered_rules == [] and report.coverage == 100.0


def test_named_tests_span_the_required_cases(ruleset: Ruleset) -> None:
    profiles = [t.profile for t in ruleset.tests]
    assert {p["sex"] for p in profiles} == {"male", "female"}
    assert {p["prior_finasteride"] for p in profiles} == set(VOCABULARY["prior_finasteride"][2])
    assert {p["transplant_history"] for p in profiles} == {"none", "fue", "fut"}
    fired = {rid for t in ruleset.tests for rid in t.expect.fired}
    assert {f"H-{n}" for n in range(1, 12) if n != 3} <= fired


def test_no_dead_rules_unreachable_options_or_gaps(report: Report) -> None:
    # The only unreachable option is the one that is never a candidate by design (INV-X1).
    assert (report.dead_rules, report.unreachable_options, report.gaps) == ([], NEVER_CANDIDATES, [])


def test_durable_rules_agrees_with_the_reference_evaluator(report: Report) -> None:
    assert report.crosscheck_profiles > 500
    assert report.disagreements == []


# ---- clinically important decisions, end to end ---------------------------------------------------


def test_pregnant_woman_gets_no_5ari_spironolactone_or_oral_minoxidil(engine: Engine) -> None:
    d = evaluate(
        engine,
        adult(
            sex="female", pattern="ludwig-II", pregnant=True, childbearing_potential=True, reliable_contraception=True
        ),
    )
    assert not {*FIVE_ARIS, "spironolactone", "oral_minoxidil", "topical_minoxidil"} & set(candidates(d))
    assert "H-1" in excluded_by(d)["oral_minoxidil"]
    assert [r["option"] for r in d["referrals"]] == ["specialist_review"]


def test_typical_mans_answer_carries_no_pregnancy_or_breastfeeding_warning(engine: Engine) -> None:
    d = evaluate(
        engine, adult(age=34, prior_finasteride="non_responder", conditions=[], medications=[], preferences=[])
    )
    pending = {w["fields"][0]: w["options"] for w in d["warnings"] if w["kind"] == "unknown_inputs"}
    # 1.1.0: conception plans decide oral dutasteride (M-9-D) and dutasteride mesotherapy (withheld by
    # H-10U until they are recorded), and the topical minoxidil history decides oral minoxidil.
    assert pending == {
        "trying_to_conceive": ["dutasteride_mesotherapy", "oral_dutasteride", "specialist_review"],
        "topical_minoxidil": ["oral_minoxidil"],
    }
    text = " ".join(w["text"] for w in d["warnings"]).lower()
    assert "pregnan" not in text and "breastfeeding" not in text
    assert "oral_dutasteride" in candidates(d) and "specialist_review" not in {r["option"] for r in d["referrals"]}
    # A caution, not an exclusion: the finasteride non-responder keeps dutasteride, with the prompt to ask.
    card = next(c for c in d["candidates"] if c["option"] == "oral_dutasteride")
    assert any("Conception plans are not recorded" in c for c in card["caveats"])
    assert "H-10U" in excluded_by(d)["dutasteride_mesotherapy"]
    assert any("Withheld until" in r for r in excluded(d)["dutasteride_mesotherapy"])
    meso = next(e for e in d["excluded"] if e["option"] == "dutasteride_mesotherapy")
    assert meso["until_recorded"] == ["trying_to_conceive"]


def test_pregnancy_recorded_for_a_man_is_flagged_and_withholds_pregnancy_contraindicated_drugs(engine: Engine) -> None:
    d = evaluate(engine, adult(pregnant=True, conditions=[], medications=[], preferences=[]))
    assert any(w.get("rule") == "H-1-M" and "check the sex" in w["text"] for w in d["warnings"])
    assert not {*FIVE_ARIS, "oral_minoxidil"} & set(candidates(d))
    assert "topical_minoxidil" in candidates(d)


def test_uncertain_diagnosis_is_referred_with_no_options(engine: Engine) -> None:
    d = evaluate(engine, adult(diagnosis="uncertain", prior_finasteride="responder"))
    assert d["candidates"] == []
    assert [r["option"] for r in d["referrals"]] == ["diagnosis_review"]
    assert set(excluded(d)) == TREATMENTS


def test_unrecorded_childbearing_potential_withholds_5ari_and_says_what_to_record(engine: Engine) -> None:
    d = evaluate(
        engine,
        adult(sex="female", age=52, pattern="ludwig-I", pregnant=False, breastfeeding=False, trying_to_conceive=False),
    )
    assert not {*FIVE_ARIS, "spironolactone"} & set(candidates(d))
    assert "H-2U-P" in excluded_by(d)["spironolactone"]
    assert any(
        "Withheld until it is recorded whether she can become pregnant" in t for t in excluded(d)["spironolactone"]
    )
    assert candidates(d)["topical_minoxidil"] == "recommended"
    prompt = next(w for w in d["warnings"] if w.get("fields") == ["childbearing_potential"])
    assert "spironolactone" in prompt["options"] and prompt["text"].startswith("Record childbearing potential")


def test_woman_with_pregnancy_unrecorded_gets_topical_minoxidil_only_with_caution(engine: Engine) -> None:
    d = evaluate(
        engine, adult(sex="female", pattern="ludwig-I", childbearing_potential=True, reliable_contraception=True)
    )
    assert candidates(d)["topical_minoxidil"] == "consider"
    card = next(c for c in d["candidates"] if c["option"] == "topical_minoxidil")
    assert any("not recorded" in c for c in card["caveats"])
    assert "oral_minoxidil" in excluded(d)


def test_first_line_for_a_man_comes_first_with_evidence_and_h9_caveats(engine: Engine) -> None:
    d = evaluate(engine, adult(conditions=[], medications=[], preferences=[]))
    order = [c["option"] for c in d["candidates"]]
    assert order[:2] == ["topical_minoxidil", "oral_finasteride"]
    finasteride = d["candidates"][1]
    assert finasteride["strength"] == "recommended" and finasteride["evidence"]["level"] == "high"
    assert any("PSA" in c for c in finasteride["caveats"]) and finasteride["evidence"]["references"]


def test_unrecorded_conditions_withhold_oral_minoxidil_and_prp_and_say_what_to_record(engine: Engine) -> None:
    # 1.1.0 (issue 12, fix 2): unrecorded conditions are no longer reassuring (H-5, H-6 are hard exclusions).
    d = evaluate(engine, adult(topical_minoxidil="ineffective"))
    assert not {"oral_minoxidil", "prp"} & set(candidates(d))
    assert "H-5U" in excluded_by(d)["oral_minoxidil"] and "H-6U" in excluded_by(d)["prp"]
    assert any("Withheld until" in r and "cardiac" in r for r in excluded(d)["oral_minoxidil"])
    assert any("Withheld until" in r and "anticoagulation" in r for r in excluded(d)["prp"])
    prompt = next(w for w in d["warnings"] if w.get("fields") == ["conditions"])
    assert prompt["kind"] == "unknown_inputs" and {"oral_minoxidil", "prp"} <= set(prompt["options"])
    assert "needed to consider low-dose oral minoxidil" in prompt["text"]
    oral = next(e for e in d["excluded"] if e["option"] == "oral_minoxidil")
    assert oral["until_recorded"] == ["conditions"]
    recorded = evaluate(engine, adult(topical_minoxidil="ineffective", conditions=[], medications=[]))
    assert candidates(recorded)["oral_minoxidil"] == "consider" and "prp" in candidates(recorded)


def test_man_trying_to_conceive_gets_oral_dutasteride_only_through_a_specialist(engine: Engine) -> None:
    d = evaluate(
        engine, adult(prior_finasteride="partial_responder", trying_to_conceive=True, conditions=[], medications=[])
    )
    assert "oral_dutasteride" not in candidates(d)
    assert any("Trying to conceive" in r and "specialist" in r for r in excluded(d)["oral_dutasteride"])
    referral = next(r for r in d["referrals"] if r["option"] == "specialist_review")
    assert any("Trying to conceive" in t for t in referral["rationale"])
    finasteride = next(c for c in d["candidates"] if c["option"] == "oral_finasteride")
    assert any("andrology referral" in c for c in caveat_texts(finasteride))
    assert any("condom" in c for c in caveat_texts(finasteride))


def test_breastfeeding_counts_whatever_the_childbearing_potential(engine: Engine) -> None:
    woman = adult(sex="female", pattern="ludwig-II", childbearing_potential=False, topical_minoxidil="ineffective")
    woman.update(conditions=[], medications=[], preferences=[])
    unrecorded = evaluate(engine, woman)
    assert not {*FIVE_ARIS, "spironolactone", "oral_minoxidil"} & set(candidates(unrecorded))
    prompt = next(w for w in unrecorded["warnings"] if w.get("fields") == ["breastfeeding"])
    assert "oral_minoxidil" in prompt["options"]
    assert not any(w.get("fields") == ["trying_to_conceive"] for w in unrecorded["warnings"])  # cannot conceive
    lactating = evaluate(engine, dict(woman, breastfeeding=True))
    assert not {*FIVE_ARIS, "spironolactone", "oral_minoxidil", "topical_minoxidil"} & set(candidates(lactating))
    assert [r["option"] for r in lactating["referrals"]] == ["specialist_review"]
    recorded = evaluate(engine, dict(woman, breastfeeding=False))
    assert {"spironolactone", "oral_minoxidil"} <= set(candidates(recorded))


def test_mesotherapy_cocktails_are_always_shown_as_not_recommended(engine: Engine) -> None:
    for profile in (adult(), adult(sex="female", pattern="ludwig-I", age=15), adult(diagnosis="other")):
        d = evaluate(engine, profile)
        assert "mesotherapy_cocktails" not in candidates(d)
        assert any("Not recommended" in r for r in excluded(d)["mesotherapy_cocktails"])


def test_recent_transplant_protects_native_hair_and_defers_injections(engine: Engine) -> None:
    d = evaluate(
        engine, adult(age=45, prior_finasteride="responder", transplant_history="fue", months_since_transplant=3)
    )
    assert candidates(d)["oral_finasteride"] == candidates(d)["topical_minoxidil"] == "recommended"
    assert {"prp", "dutasteride_mesotherapy", "hair_transplant"} <= set(excluded(d))


def test_mood_change_on_finasteride_stops_every_5ari(engine: Engine) -> None:
    d = evaluate(engine, adult(prior_finasteride="intolerant_mood", pattern="norwood-IV", age=40))
    assert set(FIVE_ARIS) <= set(excluded(d))
    assert "topical_minoxidil" in candidates(d)


def test_invalid_profile_is_rejected_with_the_allowed_values(engine: Engine) -> None:
    with pytest.raises(InvalidProfile) as info:
        engine.evaluate(adult(pattern="norwood-8", age=130))
    problems = {p.field: p for p in info.value.errors}
    assert set(problems) == {"pattern", "age"}
    assert "norwood-VII" in problems["pattern"].allowed
    assert "0 to 120" in problems["age"].message
