"""A set input known only in part: the values found are present, whether any other value is is unknown.

A patient record can show some of a set's values (an anticoagulant among the active medications) while
other items in it could not be classified, or a list could not be read in full. Treating what was found as
the whole set would make "has none of ..." true for values nobody looked for - silence where there may be
a contraindication. So such a set is neither recorded nor absent: every comparison that the found values
make true (contains, contains_any) or false (not_contains, contains_none) is decided, every other one is
unknown, and `known`/`unknown` treat it as not recorded (the list is still to be completed). In
durable_rules terms the flags of the values found are true and the others, and the "recorded" marker, are
left out instead of false.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

POSITIVE = frozenset({"contains", "contains_any"})  # decided (true) only when a found value makes them true
NEGATIVE = frozenset({"not_contains", "contains_none"})  # decided (false) only when a found value makes them false


class PartlyKnown(tuple):  # type: ignore[type-arg]
    """The values of a set input found in the record, with how many items could not be classified."""

    unclassified: int

    def __new__(cls, values: Iterable[Any], unclassified: int = 0) -> PartlyKnown:
        obj = super().__new__(cls, values)
        obj.unclassified = unclassified
        return obj


def is_known(profile: Mapping[str, Any], field: str) -> bool:
    """Recorded in full: present, and not a set known only in part."""
    return field in profile and not isinstance(profile[field], PartlyKnown)


def partly(op: str, result: bool) -> bool | None:
    """The three-valued result of a set comparison on a PartlyKnown value, from its result on the values found."""
    if op in POSITIVE:
        return True if result else None
    if op in NEGATIVE:
        return False if not result else None
    return None


def mark(profile: dict[str, Any], unclassified: Mapping[str, int], set_fields: Iterable[str]) -> dict[str, Any]:
    """The typed profile with the named set inputs marked as known only in part (the others unchanged)."""
    sets = set(set_fields)
    out = dict(profile)
    for fid, count in unclassified.items():
        if fid in sets and fid in out and out[fid] is not None:
            out[fid] = PartlyKnown(out[fid], count)
    return out


def marked_in(warnings: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """The set inputs a recorded decision (its JSON warnings) read as known only in part, to replay it alike.

    They are the fields named by the engine's rule-less `unknown_inputs` warnings (the one-per-input prompts
    and the "known only in part" notes, engine/__init__.py); `mark` wraps only those present in the recorded
    profile - and a set present in full is never prompted for, so those are exactly the ones known in part.
    The count of items not classified is only in the text, which replay does not compare: it is given as 0.
    """
    out: dict[str, int] = {}
    for w in warnings:
        if isinstance(w, Mapping) and w.get("kind") == "unknown_inputs" and not w.get("rule"):
            for fid in w.get("fields") or ():
                out[str(fid)] = 0
    return out
