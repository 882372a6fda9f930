"""Sign-off: detached JWS over the sha256 of each file; RULESET_SIGNING=required gates production activation."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from service.lifecycle import read_fileset, signing

from .conftest import ADMIN, RULESET_ID, example, raw_sql, unguard, write


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    return {
        name: tmp_path / f"{name}.key"
        for name in ("alice", "mallory")
        if signing.generate_key(tmp_path / f"{name}.key")
    }


@pytest.fixture
def signed_app(make_app: Callable[..., Flask], keys: dict[str, Path]) -> Flask:
    return make_app(RULESET_SIGNING="required", RULESET_REVIEWER_KEYS=f"{keys['alice']}.pub")


def _sign(app: Flask, path: Path, key: Path, reviewer: str = "Alice Derm") -> Path:
    result = app.test_cli_runner().invoke(
        args=[
            "rulesets",
            "sign",
            str(path),
            "--key",
            str(key),
            "--reviewer",
            reviewer,
            "--role",
            "Dermatologist",
            "--date",
            "2026-12-01",
        ]
    )
    assert result.exit_code == 0, result.output
    return signing.signature_path(path, reviewer)


def _publish_and_activate(app: Flask, path: Path) -> tuple[int, str]:
    runner = app.test_cli_runner()
    published = runner.invoke(args=["rulesets", "publish", str(path)])
    assert published.exit_code == 0, published.output
    result = runner.invoke(args=["rulesets", "activate", RULESET_ID, read_fileset(path).sha256])
    return result.exit_code, result.output


def test_the_signature_covers_every_file_and_names_the_reviewer(signed_app: Flask, keys: dict, tmp_path: Path) -> None:
    path = write(tmp_path / "c", example("0.2.0"))
    (tmp_path / "c" / "minimal.tests.yaml").write_text(
        "tests:\n  - name: extra\n    profile: {age: 50, diagnosis: confirmed, pregnant: false}\n"
        "    expect: {candidates: [topical, oral]}\n",
        encoding="utf-8",
    )
    sig = _sign(signed_app, path, keys["alice"])
    assert sig.name == "minimal.sig-alice-derm.jws"
    claims = json.loads(signing.jwt.api_jws.base64url_decode(sig.read_text().split(".")[1]))
    files = read_fileset(path)
    assert claims["files"] == {"ruleset": files.sha256, "tests": files.digests()["tests"]}
    assert (claims["reviewer"], claims["role"], claims["date"]) == ("Alice Derm", "Dermatologist", "2026-12-01")
    [check] = signing.check(files, signing.load_public_keys(f"{keys['alice']}.pub"))
    assert check.valid


def test_production_needs_a_valid_signoff(signed_app: Flask, keys: dict, tmp_path: Path) -> None:
    # missing
    unsigned = write(tmp_path / "unsigned", example("0.2.0"))
    code, output = _publish_and_activate(signed_app, unsigned)
    assert code == 1 and "0 valid sign-off(s)" in output and "needs 1" in output
    # testing needs no sign-off
    result = signed_app.test_cli_runner().invoke(
        args=["rulesets", "activate", RULESET_ID, read_fileset(unsigned).sha256, "--stage", "testing"]
    )
    assert result.exit_code == 0, result.output

    # signed with a key that is not trusted
    wrong = write(tmp_path / "wrong", example("0.3.0"))
    _sign(signed_app, wrong, keys["mallory"], "Mallory")
    code, output = _publish_and_activate(signed_app, wrong)
    assert code == 1 and "Mallory: signed with a key that is not in RULESET_REVIEWER_KEYS" in output

    # the file changed after it was signed
    changed = write(tmp_path / "changed", example("0.4.0"))
    _sign(signed_app, changed, keys["alice"])
    changed.write_text(example("0.4.0", lambda t: t.replace("Twice daily.", "Once daily.")), encoding="utf-8")
    code, output = _publish_and_activate(signed_app, changed)
    assert code == 1 and "Alice Derm: changed after signing: ruleset" in output

    # a valid sign-off by a trusted reviewer
    good = write(tmp_path / "good", example("0.5.0"))
    _sign(signed_app, good, keys["alice"])
    code, output = _publish_and_activate(signed_app, good)
    assert code == 0, output
    assert signed_app.extensions["lifecycle"].store.production()[RULESET_ID] == read_fileset(good).sha256


def test_an_unsigned_production_revision_says_so(app: Flask) -> None:
    """Signing off: the folder's revision serves without a sign-off, and its document says so in a banner."""
    page = app.test_client().get(f"/rulesets/{RULESET_ID}").get_data(as_text=True)
    assert "No valid sign-off." in page and "Nobody has signed this revision." in page


def test_the_folder_is_held_to_required_signing(make_app: Callable[..., Flask], keys: dict, ruleset_dir: Path) -> None:
    """RULESET_SIGNING=required: the folder's unsigned file is published but never served; signed, it is."""
    trusted = f"{keys['alice']}.pub"
    app = make_app(RULESET_SIGNING="required", RULESET_REVIEWER_KEYS=trusted)
    client = app.test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json["rulesets"] == []
    [failure] = ready.json["failures"]
    assert "from the folder is not served" in failure["problems"][0] and "none signed" in failure["problems"][0]
    resp = client.post("/v1/evaluations", json={"ruleset": RULESET_ID, "profile": {"age": 30, "diagnosis": "x"}})
    assert resp.status_code == 404, resp.json
    sha = read_fileset(ruleset_dir / "minimal.yaml").sha256
    assert app.extensions["lifecycle"].store.get(sha) is not None  # published, so it can be reviewed and signed
    assert RULESET_ID not in app.extensions["lifecycle"].store.production()

    # signed by a trusted reviewer, the next start serves it
    _sign(app, ruleset_dir / "minimal.yaml", keys["alice"])
    signed = make_app(RULESET_SIGNING="required", RULESET_REVIEWER_KEYS=trusted)
    ready = signed.test_client().get("/readyz")
    assert ready.status_code == 200, ready.json
    assert [r["sha256"] for r in ready.json["rulesets"]] == [sha] and "failures" not in ready.json
    assert signed.extensions["lifecycle"].store.production()[RULESET_ID] == sha

    # the sign-off stays with the stored revision, even once the file beside it is gone
    signing.signature_path(ruleset_dir / "minimal.yaml", "Alice Derm").unlink()
    kept = make_app(RULESET_SIGNING="required", RULESET_REVIEWER_KEYS=trusted)
    assert [r["sha256"] for r in kept.test_client().get("/readyz").json["rulesets"]] == [sha]

    # Alice's key no longer trusted: neither the folder nor the store's production revision is served
    distrusted = make_app(RULESET_SIGNING="required", RULESET_REVIEWER_KEYS=f"{keys['mallory']}.pub")
    ready = distrusted.test_client().get("/readyz").json
    assert ready["rulesets"] == [] and "not in RULESET_REVIEWER_KEYS" in ready["failures"][0]["problems"][0]


def test_the_admin_api_takes_signatures_and_the_document_shows_them(
    signed_app: Flask, keys: dict, tmp_path: Path
) -> None:
    client = signed_app.test_client()
    path = write(tmp_path / "c", example("0.2.0"))
    sig = _sign(signed_app, path, keys["alice"])
    body = {"ruleset": path.read_text(), "file_name": "minimal.yaml", "signatures": [sig.read_text().strip()]}
    resp = client.post("/v1/admin/rulesets", json=body, headers=ADMIN)
    assert resp.status_code == 201, resp.json
    resp = client.post(f"/v1/admin/rulesets/{RULESET_ID}/activate", json={"sha256": resp.json["sha256"]}, headers=ADMIN)
    assert resp.status_code == 200, resp.json
    signed_app.extensions["lifecycle"].sync()
    page = client.get(f"/rulesets/{RULESET_ID}").get_data(as_text=True)
    assert "No valid sign-off." not in page
    assert "Alice Derm" in page and "Dermatologist" in page and "2026-12-01" in page and ">valid<" in page


H = "'" + "a" * 64 + "'"
SIGNOFF_EDITS = {
    "sha256": H,
    "jws_sha256": H,
    "jws": "jws || 'x'",
    "added_at": "'2020-01-02 03:04:05.000006'",
}


def test_every_signoff_column_is_in_the_edits() -> None:
    from service.decisions.models import Base

    assert set(SIGNOFF_EDITS) == set(Base.metadata.tables["ruleset_signoffs"].columns.keys())


@pytest.mark.parametrize("column", sorted(SIGNOFF_EDITS))
def test_an_edited_signoff_is_named_by_decisions_verify(
    signed_app: Flask, keys: dict, tmp_path: Path, database_url: str, column: str
) -> None:
    """A stored sign-off is append-only and anchored by the action that added it: `decisions verify` sees any edit."""
    path = write(tmp_path / "c", example("0.2.0"))
    _sign(signed_app, path, keys["alice"])
    runner = signed_app.test_cli_runner()
    assert runner.invoke(args=["rulesets", "publish", str(path)]).exit_code == 0
    intact = runner.invoke(args=["decisions", "verify"])
    assert intact.exit_code == 0 and "sign-offs: 1" in intact.output, intact.output
    raw_sql(
        database_url,
        *unguard(database_url, "ruleset_signoffs"),
        f"UPDATE ruleset_signoffs SET {column} = {SIGNOFF_EDITS[column]}",
    )
    result = runner.invoke(args=["decisions", "verify"])
    assert result.exit_code == 1 and "ruleset_signoffs" in result.output, result.output


def test_render_lists_the_signoffs(make_app: Callable[..., Flask], keys: dict, ruleset_dir: Path) -> None:
    """`rulesets render` shows who signed the revision it prints (valid or why not), as the page does."""
    app = make_app()
    unsigned = app.test_cli_runner().invoke(args=["rulesets", "render", RULESET_ID])
    assert unsigned.exit_code == 0, unsigned.output
    assert "## Sign-offs of this revision" in unsigned.output and "**No valid sign-off.**" in unsigned.output
    assert "Nobody has signed this revision." in unsigned.output

    _sign(app, ruleset_dir / "minimal.yaml", keys["alice"])
    _sign(app, ruleset_dir / "minimal.yaml", keys["mallory"], "Mallory")
    signed = make_app(RULESET_REVIEWER_KEYS=f"{keys['alice']}.pub")  # publishes the folder with its signatures
    output = signed.test_cli_runner().invoke(args=["rulesets", "render", RULESET_ID]).output
    assert "**No valid sign-off.**" not in output
    assert "| Alice Derm | Dermatologist | 2026-12-01 |" in output and "| valid |" in output
    assert "| Mallory | Dermatologist | 2026-12-01 |" in output
    assert "not valid: signed with a key that is not in RULESET_REVIEWER_KEYS" in output
