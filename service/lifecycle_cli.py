"""`flask --app service rulesets publish|activate|rollback|status|history|keygen|sign|diff|impact`.

The lifecycle commands of the `rulesets` group (service/cli.py). They act on the application's store (the
decision log's database, DATABASE_URL or SQLite in the instance folder), so a command on one host is seen
by every worker of every replica within LIFECYCLE_POLL_SECONDS. The actor recorded is `--by` (default:
the login name) with "(cli)".
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import sys
from pathlib import Path

import click

from .cli import rulesets
from .http import app_context
from .lifecycle import LifecycleError, read_fileset, signing
from .lifecycle import diff as diffs
from .lifecycle import impact as impacts
from .lifecycle.gate import run_gate
from .ruleset import Ruleset, RulesetError, load_file

BY = click.option("--by", default=None, help="Who does it (recorded with the action); default: your login name.")


def _actor(by: str | None) -> str:
    try:
        name = by or getpass.getuser()
    except (KeyError, OSError):
        name = "unknown"
    return f"{name[:150]} (cli)"


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"FAIL  {message}", err=True)
    sys.exit(code)


@rulesets.command("publish")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@BY
def publish(path: str, by: str | None) -> None:
    """Run the activation gate on PATH (+ .tests.yaml, .fhir.yaml, sign-offs) and store it as a draft."""
    try:
        files = read_fileset(path)
    except (OSError, UnicodeError) as exc:
        _fail(f"{path}: cannot read: {exc}")
    revision, gate, new = app_context.lifecycle().publish(files, _actor(by))
    state = "published" if new else "already published"
    if gate.ok:
        click.echo(f"{state}: {revision.ruleset_id} {revision.version} {revision.sha256} (stage {revision.stage})")
        click.echo("gate passed: strict load, cross-check, invariants proven, tests green, FHIR mapping checked")
        return
    click.echo(f"{state} as refused: {revision.ruleset_id} {revision.sha256}")
    for problem in gate.problems:
        click.echo(f"  {problem}")
    sys.exit(1)


@rulesets.command("activate")
@click.argument("ruleset_id")
@click.argument("sha")
@click.option(
    "--stage", default="production", type=click.Choice(["draft", "testing", "production", "retired"]), show_default=True
)
@BY
def activate(ruleset_id: str, sha: str, stage: str, by: str | None) -> None:
    """Move revision SHA (sha256, a prefix of 8+, or a version) of RULESET_ID to a stage."""
    try:
        revision = app_context.lifecycle().activate(ruleset_id, sha, _actor(by), stage)
    except LifecycleError as exc:
        _fail(str(exc))
    click.echo(f"{revision.ruleset_id} {revision.version} {revision.sha256} is now {revision.stage}")


@rulesets.command("rollback")
@click.argument("ruleset_id")
@BY
def rollback(ruleset_id: str, by: str | None) -> None:
    """Make the previous production revision of RULESET_ID production again."""
    try:
        revision = app_context.lifecycle().rollback(ruleset_id, _actor(by))
    except LifecycleError as exc:
        _fail(str(exc))
    click.echo(f"rolled back: {revision.ruleset_id} {revision.version} {revision.sha256} is production again")


@rulesets.command("shadow")
@click.argument("ruleset_id")
@click.argument("sha", required=False)
@click.option("--off", is_flag=True, help="Stop shadowing.")
@BY
def shadow(ruleset_id: str, sha: str | None, off: bool, by: str | None) -> None:
    """Let testing revision SHA shadow RULESET_ID's production revision (or --off); without either, the report."""
    lifecycle = app_context.lifecycle()
    if sha or off:
        try:
            chosen = lifecycle.set_shadow(ruleset_id, None if off else sha, _actor(by))
        except LifecycleError as exc:
            _fail(str(exc))
        click.echo(f"{ruleset_id}: shadow {chosen or 'off'}")
        return
    report = lifecycle.store.divergences(ruleset_id)
    click.echo(f"{ruleset_id}: shadow {report['shadow'] or 'off'}, {report['diverged_decisions']} diverged decision(s)")
    for k in report["kinds"]:
        click.echo(f"  {k['kind']}: {k['decisions']} (e.g. {', '.join(d[:8] for d in k['decision_ids'][:5])})")


@rulesets.command("status")
@click.argument("ruleset_id")
@click.option("--json", "as_json", is_flag=True)
def status(ruleset_id: str, as_json: bool) -> None:
    """Revisions and their stages, sign-offs, what each worker serves or refused, recent actions."""
    try:
        body = app_context.lifecycle().status(ruleset_id)
    except LifecycleError as exc:
        _fail(str(exc), 2)
    if as_json:
        click.echo(json.dumps(body, indent=2))
        return
    click.echo(f"{ruleset_id}: production {body['production'] or 'none'}")
    for r in body["revisions"]:
        valid = sum(1 for s in r["signoffs"] if s["valid"])
        gate = "gate ok" if r["gate"]["ok"] else "gate FAILED"
        click.echo(f"  {r['stage']:<10} {r['version']:<10} {r['sha256']} {gate}, {valid} valid sign-off(s)")
    for w in body["workers"]:
        refused = f", refused {w['refused_sha256'][:12]}: {w['reason']}" if w["refused_sha256"] else ""
        click.echo(f"  worker {w['worker']} serves {(w['serving_sha256'] or 'nothing')[:12]}{refused}")


@rulesets.command("history")
@click.argument("ruleset_id", required=False)
@click.option("--verify", is_flag=True, help="Check the actions' hash chain; exit 1 if it is broken.")
def history(ruleset_id: str | None, verify: bool) -> None:
    """Every lifecycle action (who, what, when), oldest first."""
    store = app_context.lifecycle().store
    for a in store.actions(ruleset_id, limit=10_000):
        sha = (a["sha256"] or "")[:12]
        click.echo(
            f"{a['seq']:>5} {a['at']} {a['actor']}: {a['action']} {a['ruleset_id']} {sha} {json.dumps(a['detail'])}"
        )
    if verify:
        problems = store.verify_chain()
        for p in problems:
            click.echo(f"FAIL  {p}", err=True)
        click.echo("actions chain intact" if not problems else f"{len(problems)} problem(s)")
        sys.exit(1 if problems else 0)


@rulesets.command("keygen")
@click.argument("path", type=click.Path(dir_okay=False))
def keygen(path: str) -> None:
    """Write a new Ed25519 reviewer key at PATH (private, 0600) and PATH.pub (to list in RULESET_REVIEWER_KEYS)."""
    try:
        public = signing.generate_key(Path(path))
    except FileExistsError:
        _fail(f"{path} exists; choose another path")
    key = signing.load_private_key(Path(path))
    click.echo(f"private key {path}, public key {public}, key id {signing.key_id(key.public_key())}")


@rulesets.command("sign")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--key", "key_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--reviewer", required=True, help="The reviewer's name, as it should appear in the document.")
@click.option("--role", required=True, help="e.g. 'Dermatologist, clinical committee'.")
@click.option("--date", "date", default=None, help="YYYY-MM-DD (default: today).")
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="Default: <name>.sig-<reviewer>.jws")
def sign(path: str, key_path: str, reviewer: str, role: str, date: str | None, out: str | None) -> None:
    """Sign the exact file set of PATH (sha256 of each file) with a detached JWS."""
    try:
        ruleset = load_file(path)
        files = read_fileset(path)
        key = signing.load_private_key(Path(key_path))
        day = dt.date.fromisoformat(date) if date else None
    except RulesetError as exc:
        _fail(f"{path} does not load; only a valid file set can be signed:\n{exc}")
    except (signing.SigningError, ValueError) as exc:
        _fail(str(exc))
    token = signing.sign(files, ruleset.id, ruleset.version, key, reviewer, role, day)
    target = Path(out) if out else signing.signature_path(Path(path), reviewer)
    target.write_text(token + "\n", encoding="utf-8")
    click.echo(f"signed {', '.join(f'{n} {h[:12]}' for n, h in files.digests().items())}: {target}")


def _revision(ref: str) -> Ruleset:
    """A ruleset from a path, or from the store by sha256 (or a prefix of 8+ characters)."""
    path = Path(ref)
    if path.is_file():
        try:
            return load_file(path)
        except RulesetError as exc:
            _fail(f"{ref} does not load:\n{exc}", 2)
    lifecycle = app_context.lifecycle()
    matches = [
        r for r in lifecycle.store.revisions() if r.sha256 == ref or (len(ref) >= 8 and r.sha256.startswith(ref))
    ]
    if len(matches) != 1:
        _fail(f"`{ref}` is neither a file nor {'a unique' if matches else 'a published'} revision sha256", 2)
    revision = lifecycle.store.get(matches[0].sha256)
    assert revision is not None
    gate = run_gate(revision.files, lifecycle.workdir, expected_sha256=revision.sha256)
    if gate.ruleset is None:
        _fail(f"revision {ref} does not load: {'; '.join(gate.problems)}", 2)
    return gate.ruleset  # type: ignore[return-value]


@rulesets.command("diff")
@click.argument("old")
@click.argument("new")
@click.option("--json", "as_json", is_flag=True)
def diff(old: str, new: str, as_json: bool) -> None:
    """What changed from OLD to NEW (paths or published sha256s), rule by rule, as Markdown."""
    result = diffs.diff(_revision(old), _revision(new))
    click.echo(json.dumps(result.as_dict(), indent=2) if as_json else diffs.to_markdown(result), nl=False)


@rulesets.command("impact")
@click.argument("new")
@click.option("--since", default=None, help="Only decisions from this date (YYYY-MM-DD) or time (RFC 3339) on.")
@click.option("--limit", default=None, type=click.IntRange(min=1), help="At most this many decisions, newest first.")
@click.option("--json", "as_json", is_flag=True)
def impact(new: str, since: str | None, limit: int | None, as_json: bool) -> None:
    """How the logged decisions would change under NEW (a path or a published sha256)."""
    candidate = _revision(new)
    start = None
    if since:
        try:
            start = dt.datetime.fromisoformat(since.replace("Z", "+00:00"))
        except ValueError:
            _fail(f"--since must be a date (YYYY-MM-DD) or an RFC 3339 time, not {since!r}", 2)
        if start.tzinfo is None:
            start = start.replace(tzinfo=dt.UTC)
    db = app_context.decision_log().engine
    read = 0

    def progress(n: int) -> None:
        nonlocal read
        read += n
        click.echo(f"\rread {read:,} decision(s)", err=True, nl=False)

    result = impacts.impact(db, candidate, since=start, limit=limit, progress=progress)
    click.echo(f"\rread {read:,} decision(s), {result.profiles:,} distinct profile(s) re-evaluated", err=True)
    click.echo(json.dumps(result.as_dict(), indent=2) if as_json else impacts.to_markdown(result), nl=False)
