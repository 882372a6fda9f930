"""`flask --app service rulesets ...`: the commands auditors and CI run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask.cli import AppGroup

from .cds.mapping import load_mapping, mapping_path
from .decision_text import decision_text
from .engine import Engine, InvalidProfile
from .engine.answer import to_json
from .http import app_context
from .registry import verified
from .render import render_markdown
from .ruleset import Ruleset, RulesetError, load_file, ruleset_files
from .verify.text import report_text

rulesets = AppGroup("rulesets", help="Check, evaluate and render ruleset files.")


@rulesets.command("check")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the reports as JSON.")
def check(paths: tuple[str, ...], as_json: bool) -> None:
    """Load, cross-check, prove invariants and run tests; exit 1 on any failure."""
    targets = [Path(p) for p in paths] or [Path(app_context.settings().rulesets_dir)]
    files: list[Path] = []
    for target in targets:
        if not target.exists():
            click.echo(f"FAIL  {target}: no such file or folder", err=True)
            sys.exit(1)
        files.extend(ruleset_files(target))
    if not files:
        click.echo(f"FAIL  no ruleset files found in {', '.join(map(str, targets))}", err=True)
        sys.exit(1)
    failed = False
    reports = []
    for path in files:
        try:
            ruleset = load_file(path)
        except RulesetError as exc:
            failed = True
            if as_json:
                reports.append({"file": str(path), "ok": False, "problems": [p.as_dict() for p in exc.problems]})
            else:
                click.echo(f"FAIL  {path}: {len(exc.problems)} problem(s)")
                for problem in exc.problems:
                    click.echo(f"  {problem}")
            continue
        report = verified(ruleset)
        failed |= not report.ok
        mapping_problems = _mapping_problems(ruleset)
        failed |= bool(mapping_problems)
        if as_json:
            reports.append({"file": str(path), **report.as_dict(), "fhir_mapping_problems": mapping_problems})
        else:
            click.echo(f"{path}:")
            click.echo(report_text(report))
            if mapping_problems:
                click.echo(f"FAIL  FHIR mapping: {len(mapping_problems)} problem(s)")
                for problem in mapping_problems:
                    click.echo(f"  {problem}")
            elif mapping_path(ruleset.path).exists():
                click.echo(f"  FHIR mapping {mapping_path(ruleset.path).name}: every code and target checked")
    if as_json:
        click.echo(json.dumps(reports, indent=2, default=str))
    else:
        click.echo(f"\n{len(files)} file(s) checked: {'FAILED' if failed else 'all passed'}")
    sys.exit(1 if failed else 0)


def _mapping_problems(ruleset: Ruleset) -> list[str]:
    """Problems of the ruleset's FHIR mapping file (CDS Hooks), if it has one: it is reviewed like the ruleset."""
    path = mapping_path(ruleset.path)
    if not path.exists():
        return []
    try:
        load_mapping(path, ruleset)
    except RulesetError as exc:
        return [str(p) for p in exc.problems]
    return []


def _find(ruleset_id: str) -> Ruleset:
    registry = app_context.registry()
    active = registry.get(ruleset_id)
    if active is not None:
        return active.ruleset
    for path in ruleset_files(app_context.settings().rulesets_dir):
        try:
            ruleset = load_file(path)
        except RulesetError:
            continue
        if ruleset.id == ruleset_id:
            return ruleset
    known = ", ".join(a.ruleset.id for a in registry.all()) or "none"
    click.echo(f"unknown ruleset `{ruleset_id}` (loaded: {known})", err=True)
    sys.exit(2)


@rulesets.command("evaluate")
@click.argument("ruleset_id")
@click.option("--profile", "profile_file", required=True, type=click.File("r"), help="Profile JSON file, - for stdin.")
@click.option("--explain", is_flag=True, help="Include the rule-by-rule explanation.")
@click.option(
    "--format",
    "output",
    type=click.Choice(["json", "text"]),
    default="json",
    show_default=True,
    help="JSON (the full decision) or readable text (options, reasons and facts, exclusions, prompts).",
)
def evaluate(ruleset_id: str, profile_file: click.utils.LazyFile, explain: bool, output: str) -> None:
    """Print the decision for one profile as JSON, or as text to read."""
    ruleset = _find(ruleset_id)
    try:
        profile = json.load(profile_file)
    except json.JSONDecodeError as exc:
        click.echo(f"profile is not valid JSON: {exc}", err=True)
        sys.exit(2)
    engine = Engine(ruleset)
    try:
        decision = engine.evaluate(profile, explain=explain)
    except InvalidProfile as exc:
        for e in exc.errors:
            click.echo(f"invalid profile: {e.message}", err=True)
        sys.exit(2)
    finally:
        engine.close()
    if output == "text":
        click.echo(decision_text(ruleset, decision), nl=False)
        return
    click.echo(json.dumps(to_json(decision), indent=2, ensure_ascii=False))


@rulesets.command("render")
@click.argument("ruleset_id")
def render(ruleset_id: str) -> None:
    """Print the ruleset as a Markdown document for auditors."""
    ruleset = _find(ruleset_id)
    lifecycle = app_context.lifecycle_or_none()
    document = lifecycle.document(ruleset) if lifecycle is not None else {}
    click.echo(
        render_markdown(
            ruleset, verified(ruleset), signoffs=document.get("signoffs"), signing_mode=document.get("signing_mode")
        )
    )
