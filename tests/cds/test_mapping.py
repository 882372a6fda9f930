"""The FHIR mapping file is loaded as strictly as a ruleset: every problem, with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from service import create_app
from service.cds.mapping import load_mapping
from service.ruleset import Ruleset, RulesetError, load_file

from .conftest import DATA

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ruleset() -> Ruleset:
    return load_file(DATA / "cds-fixture.yaml")


def problems(tmp_path: Path, ruleset: Ruleset, text: str) -> list[str]:
    path = tmp_path / "x.fhir.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RulesetError) as exc:
        load_mapping(path, ruleset)
    return [str(p) for p in exc.value.problems]


def fixture_text() -> str:
    return (DATA / "cds-fixture.fhir.yaml").read_text(encoding="utf-8")


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_the_fixture_mapping_loads(ruleset: Ruleset) -> None:
    mapping = load_mapping(DATA / "cds-fixture.fhir.yaml", ruleset)
    assert mapping.prefetch["patient"].required and mapping.prefetch["patient"].read
    assert mapping.sources()["medications"] == {"MedicationRequest", "MedicationStatement"}
    assert mapping.ingredient_of("http://www.nlm.nih.gov/research/umls/rxnorm", "200172")[0].id == "finasteride"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("field: diagnosis\n    value: other", "field: diagnosys\n    value: other", "`diagnosys` is not an input"),
        ("value: hyperkalaemia", "value: hyperkalemia", "`hyperkalemia` is not a value of `conditions`"),
        ("option: oral_finasteride, source", "option: finasteride_oral, source", "is not an option"),
        ("code=http://loinc.org|82810-3&_sort", "code:text=pregnancy&_sort", "modifier `:text`"),
        ("{{context.patientId}}&status=active", "{{context.draftOrders.id}}&status=active", "not allowed"),
        ("Patient/{{context.patientId}}", "Patient/{{context.patientId}", "unbalanced"),
        ("&_sort=-date&_count=1\n  lactation", "&_elements=code\n  lactation", "`_elements` is outside"),
        ("sct: http://snomed.info/sct", "sct: http://snomed.info/id", "is not one the service knows"),
        ("{system: icd10cm, code: E87.5,", "{system: icd9, code: E87.5,", "unknown code system `icd9`"),
        ("max_age_days: 30", "max_age_days: soon", "`max_age_days` must be a whole number"),
        ("value: true\n    months_since", "value: yes please\n    months_since", "true or false"),
        ("months_since: months_since_transplant", "months_since: age_at_transplant", "not an input"),
        ("ruleset: cds-fixture", "ruleset: other-ruleset", "must be `cds-fixture`"),
        ('{system: sct, code: "87872006"', "{system: sct, code: 87872006", "quote numeric codes"),
        ("source: cds-hooks.md 5.2}\n  - field: diagnosis", "source: my memory}\n  - field: diagnosis", "`source`"),
        ("subcodes: true, display: Heart", 'subcodes: "true", display: Heart', "`subcodes: true`"),
    ],
)
def test_each_mistake_is_named_with_file_and_line(
    tmp_path: Path, ruleset: Ruleset, old: str, new: str, message: str
) -> None:
    text = fixture_text()
    assert old in text, old
    changed = text.replace(old, new, 1)
    found = problems(tmp_path, ruleset, changed)
    matching = [p for p in found if message in p]
    assert matching, found
    assert all(p.startswith(f"{tmp_path / 'x.fhir.yaml'}:") for p in matching)
    first_changed = line_of(changed, new.splitlines()[0])
    lines = {int(p.split(":")[1]) for p in matching}
    assert any(abs(line - first_changed) <= 2 for line in lines), (lines, first_changed)


def test_every_problem_is_reported_at_once(tmp_path: Path, ruleset: Ruleset) -> None:
    text = fixture_text().replace("value: hyperkalaemia", "value: nope").replace("field: sex", "field: gender")
    found = problems(tmp_path, ruleset, text)
    assert any("`nope`" in p for p in found) and any("`gender` is not an input" in p for p in found)


def test_a_duplicate_key_is_an_error(tmp_path: Path, ruleset: Ruleset) -> None:
    text = fixture_text().replace('version: "1.0.0"', 'version: "1.0.0"\nversion: "1.0.1"')
    assert any("duplicate key `version`" in p for p in problems(tmp_path, ruleset, text))


def test_medication_codes_must_be_rxnorm(tmp_path: Path, ruleset: Ruleset) -> None:
    text = fixture_text().replace('{system: rxnorm, code: "11289"', '{system: sct, code: "11289"')
    assert any("medication codes are RxNorm" in p for p in problems(tmp_path, ruleset, text))


def test_rulesets_check_checks_the_mapping_file(tmp_path: Path) -> None:
    folder = tmp_path / "rulesets"
    folder.mkdir()
    for name in ("cds-fixture.yaml", "cds-fixture.fhir.yaml"):
        (folder / name).write_text((DATA / name).read_text(encoding="utf-8"), encoding="utf-8")
    app = create_app({"RULESETS_DIR": str(folder), "INSTANCE_PATH": str(tmp_path / "instance")})
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["rulesets", "check"])
    assert ok.exit_code == 0, ok.output
    assert "FHIR mapping cds-fixture.fhir.yaml: every code and target checked" in ok.output

    mapping = folder / "cds-fixture.fhir.yaml"
    mapping.write_text(mapping.read_text(encoding="utf-8").replace("value: hyperkalaemia", "value: hyperkalemia"))
    bad = runner.invoke(args=["rulesets", "check"])
    assert bad.exit_code == 1
    assert "FAIL  FHIR mapping: 1 problem(s)" in bad.output
    assert f"{mapping}:" in bad.output and "`hyperkalemia` is not a value of `conditions`" in bad.output


# ---- issue 13: aliases, names, texts, statuses ---------------------------------------------------------


def test_system_aliases_must_be_oids_with_a_source(tmp_path: Path, ruleset: Ruleset) -> None:
    text = fixture_text().replace(
        "  icd10cm: http://hl7.org/fhir/sid/icd-10-cm\n",
        "  icd10cm: {url: http://hl7.org/fhir/sid/icd-10-cm, aliases: [icd10]}\n",
    )
    found = problems(tmp_path, ruleset, text)
    assert any("must be an OID URI" in p for p in found) and any("`source` must say" in p for p in found)


def test_an_alias_matches_like_the_url(tmp_path: Path, ruleset: Ruleset) -> None:
    text = fixture_text().replace(
        "  icd10cm: http://hl7.org/fhir/sid/icd-10-cm\n",
        '  icd10cm: {url: http://hl7.org/fhir/sid/icd-10-cm, aliases: ["urn:oid:2.16.840.1.113883.6.90"],'
        " source: https://build.fhir.org/ig/HL7/UTG/CodeSystem-icd10CM.html}\n",
    )
    path = tmp_path / "x.fhir.yaml"
    path.write_text(text, encoding="utf-8")
    mapping = load_mapping(path, ruleset)
    heart = next(f for f in mapping.conditions if f.value == "heart_failure")
    assert heart.codes[0].matches("urn:oid:2.16.840.1.113883.6.90", "I50.9")
    assert not heart.codes[0].matches("urn:oid:2.16.840.1.113883.6.96", "I50.9")
    hyperkalaemia = next(f for f in mapping.conditions if f.value == "hyperkalaemia").codes[0]
    assert hyperkalaemia.matches("http://hl7.org/fhir/sid/icd-10-cm", "E875")  # without the dot
    assert not hyperkalaemia.matches("http://hl7.org/fhir/sid/icd-10-cm", "E87.6")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("      orders: [oral_finasteride]\n", "      orders: [oral_finasteride]\n      names: [fin]\n", "too short"),
        (
            "    max_age_days: 30\n",
            "    max_age_days: 30\n    statuses: [final, done]\n",
            "`done` is not a FHIR status",
        ),
        (
            "  - field: conditions\n    value: heart_failure\n",
            "  - field: conditions\n    value: heart_failure\n    unconfirmed: heart_failure\n",
            "`unconfirmed` is for enum fields",
        ),
        ("&status=active\n", "&status=active&_include=MedicationRequest:requester\n", "is not supported"),
    ],
)
def test_new_keys_are_checked(tmp_path: Path, ruleset: Ruleset, old: str, new: str, message: str) -> None:
    text = fixture_text()
    assert old in text, old
    assert any(message in p for p in problems(tmp_path, ruleset, text.replace(old, new, 1)))
