"""`flask --app service decisions ...`: what an auditor runs against the decision log."""

from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import AppGroup

from .identifiers import KINDS
from .integrity import summary_lines, verify

decisions = AppGroup("decisions", help="Verify the decision log; hash identifiers to search it.")


@decisions.command("verify")
def verify_command() -> None:
    """Walk the hash chains; exit 1 naming every edited, deleted or reordered record."""
    report = verify(current_app.extensions["decision_log"])
    for line in summary_lines(report):
        click.echo(line)
    for problem in report.problems:
        click.echo(f"FAIL  {problem}")
    if report.ok:
        click.echo("OK    the decision log is intact")
    else:
        click.echo(f"{len(report.problems)} problem(s): the decision log was altered", err=True)
    sys.exit(0 if report.ok else 1)


@decisions.command("hash-id")
@click.option("--kind", type=click.Choice(sorted(KINDS)), default="patientId", show_default=True)
def hash_id(kind: str) -> None:
    """Print the keyed hash of an identifier read from stdin, to search the log (e.g. ?patient_hash=...).

    The identifier is read from stdin, not from the command line, so it stays out of shell history.
    """
    value = click.get_text_stream("stdin").read().strip()
    if not value:
        click.echo("give the identifier on stdin, e.g. `printf %s Patient/123 | flask ... hash-id`", err=True)
        sys.exit(2)
    click.echo(current_app.extensions["decision_log"].key.hash(kind, value))
