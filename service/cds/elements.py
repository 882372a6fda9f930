"""Reading FHIR elements as an EHR actually sent them.

A resource from an EHR may hold anything where the specification says an array or an object (a mutated or
broken record, a server bug). Such data is skipped - and so stays "not recorded" - instead of crashing the
call: these accessors are the one place that decides it.
"""

from __future__ import annotations

from typing import Any


def as_list(value: Any) -> list[Any]:
    """A FHIR array as sent, or empty when the EHR sent something else there: data of the wrong shape is
    skipped (and so stays "not recorded"), never a crash."""
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> dict[str, Any]:
    """A FHIR element as sent, or empty when it is not an object."""
    return value if isinstance(value, dict) else {}


def as_str(value: Any) -> str | None:
    """A FHIR code or string as sent, or None when the EHR sent another shape there (a list, a number)."""
    return value if isinstance(value, str) else None
