"""The query string of `GET /v1/evaluations`, checked: every bad parameter is named with what it accepts.

Ruleset and option ids are checked against the revisions stored in the log (so retired rulesets stay
searchable), not against a list written here; channels are checked for form only, since a channel that
has not answered yet simply has no records.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from werkzeug.datastructures import MultiDict

from ...decisions import DecisionLog, queries
from ...decisions.feedback import parse_timestamp
from ...errors import ServiceError

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
FORMATS = ("json", "csv")
PARAMETERS = (
    "ruleset",
    "option",
    "role",
    "channel",
    "since",
    "until",
    "patient_hash",
    "user_hash",
    "hook_instance_hash",
    "limit",
    "cursor",
    "format",
)
CHANNEL = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
LIMIT = re.compile(r"^[0-9]{1,4}$")  # ASCII digits only: str.isdigit() also takes "²", which int() refuses


@dataclass(frozen=True)
class ParamProblem:
    parameter: str
    message: str
    allowed: tuple[Any, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"parameter": self.parameter, "message": self.message}
        if self.allowed:
            out["allowed"] = list(self.allowed)
        return out


class BadQuery(ServiceError, ValueError):
    """Query parameters the audit list cannot use; `problems` name each parameter and what it accepts."""

    status = 400
    title = "Bad Request"

    def __init__(self, problems: list[ParamProblem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems

    @property
    def detail(self) -> str:
        return str(self)

    @property
    def extra(self) -> dict[str, Any]:
        return {"errors": [p.as_dict() for p in self.problems]}


@dataclass(frozen=True)
class Query:
    filters: queries.Filters
    limit: int
    cursor: str | None
    format: str


def _instant(value: str) -> dt.datetime | None:
    if DATE.match(value):
        try:
            return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
        except ValueError:
            return None
    return parse_timestamp(value)


def parse(args: MultiDict[str, str], log: DecisionLog, wants_csv: bool) -> Query:
    """Check every parameter; raises BadQuery listing all problems at once."""
    problems: list[ParamProblem] = []
    say = problems.append
    for name in args:
        if name not in PARAMETERS:
            say(ParamProblem(name, f"unknown parameter `{name}`", PARAMETERS))
        elif len(args.getlist(name)) > 1:
            say(ParamProblem(name, f"give `{name}` once"))
    one = {name: args.get(name, "") for name in PARAMETERS if name in args}

    values: dict[str, Any] = {}
    if "ruleset" in one or "option" in one:
        known = queries.known_options(log)
        ruleset = one.get("ruleset")
        if ruleset is not None and ruleset not in known:
            say(ParamProblem("ruleset", f"no decisions were made with ruleset `{ruleset}`", tuple(sorted(known))))
        elif ruleset is not None:
            values["ruleset"] = ruleset
        if "option" in one:
            options = known.get(ruleset, set()) if ruleset in known else set().union(*known.values())
            if one["option"] not in options:
                say(
                    ParamProblem(
                        "option", f"`{one['option']}` is not an option of the stored rulesets", tuple(sorted(options))
                    )
                )
            else:
                values["option"] = one["option"]
    if "role" in one:
        if "option" not in one:
            say(ParamProblem("role", "`role` narrows `option`: give `option` too"))
        elif one["role"] not in queries.ROLES:
            say(ParamProblem("role", f"`role` must be one of {', '.join(queries.ROLES)}", queries.ROLES))
        else:
            values["role"] = one["role"]
    if "channel" in one:
        if CHANNEL.match(one["channel"]):
            values["channel"] = one["channel"]
        else:
            say(ParamProblem("channel", "`channel` must be a channel name", tuple(queries.known_channels(log))))
    for name in ("since", "until"):
        if name in one:
            instant = _instant(one[name])
            if instant is None:
                say(
                    ParamProblem(
                        name,
                        f"`{name}` must be a date (2026-01-31) or an RFC 3339 date-time with offset, "
                        "within the years 0001-9999 in UTC",
                    )
                )
            else:
                values[name] = instant
    if "since" in values and "until" in values and values["since"] >= values["until"]:
        say(ParamProblem("until", "`until` must be later than `since`"))
    for name in ("patient_hash", "user_hash", "hook_instance_hash"):
        if name in one:
            if HEX64.match(one[name]):
                values[name] = one[name]
            else:
                say(ParamProblem(name, f"`{name}` must be 64 lower-case hex characters (flask decisions hash-id)"))

    fmt = one.get("format", "csv" if wants_csv else "json")
    if fmt not in FORMATS:
        say(ParamProblem("format", f"`format` must be one of {', '.join(FORMATS)}", FORMATS))
    limit = DEFAULT_LIMIT
    if "limit" in one:
        raw = one["limit"]
        if not LIMIT.match(raw) or not 1 <= int(raw) <= MAX_LIMIT:
            say(ParamProblem("limit", f"`limit` must be a whole number from 1 to {MAX_LIMIT}"))
        else:
            limit = int(raw)
    if fmt == "csv":
        for name in ("limit", "cursor"):
            if name in one:
                say(ParamProblem(name, f"`{name}` pages the JSON list; the CSV export holds every matching record"))

    filters = queries.Filters(**values)
    cursor = one.get("cursor") or None
    if cursor is not None and not problems:
        try:
            queries.decode_cursor(filters, cursor)
        except queries.BadCursor as exc:
            say(ParamProblem("cursor", str(exc)))
    if problems:
        raise BadQuery(problems)
    return Query(filters, limit, cursor, fmt)
