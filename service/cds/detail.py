"""A card's `detail`: at most 600 characters of Markdown, the most telling first.

An EHR shows the detail in a narrow panel beside the chart, so a card says for each option its short reason
and this patient's facts behind it, then as many key caveats as fit; regimen, evidence and references are
in the full answer the card links to. The budget is filled in rounds: every entry's head line first (so no
option is silently dropped: what does not fit is counted, "and 2 more"), then one more part per entry per
round (the facts, then caveats), each kept only if the whole still fits; for the facts, an entry's reason is
shortened when that makes them fit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..engine.answer import Reason

DETAIL_MAX = 600


def md(text: str) -> str:
    """Ruleset text as Markdown without raw HTML (GFM would pass tags through to the EHR)."""
    return " ".join(str(text).split()).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(text: str, limit: int) -> str:
    """At most `limit` characters, cut at a word with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)].rsplit(" ", 1)[0].rstrip(" ,;:-") + "…"


@dataclass
class Entry:
    """One option on a card: its head line ("**Label** (strength): reason") and the parts that may follow."""

    head: str
    parts: list[str] = field(default_factory=list)


def facts_part(reasons: Iterable[Reason]) -> str | None:
    """The patient's facts behind the reasons, each once ("Facts: Pregnant: yes; Sex: Female")."""
    facts: list[str] = []
    for reason in reasons:
        facts.extend(f for f in getattr(reason, "facts", ()) or () if f not in facts)
    return f"*{md('; '.join(facts))}*" if facts else None


def reason_entry(label: str, reasons: list[Reason], fallback: Iterable[str] = (), *, note: str = "") -> Entry:
    """A head line with the first short reason, then the facts behind all of them."""
    texts = [r.text for r in reasons] or list(fallback)
    head = f"**{md(label)}**{note}" + (f": {md(texts[0])}" if texts else "")
    facts = facts_part(reasons)
    return Entry(head, [facts] if facts else [])


def fit(entries: list[Entry], *, intro: str = "", outro: str = "", limit: int = DETAIL_MAX) -> str:
    """The entries as a Markdown list within `limit` characters (see the module's docstring)."""
    fixed = [line for line in (intro, outro) if line]

    def render(lines: list[str], more: int) -> str:
        body = [f"- {line}" for line in lines]
        if more:
            body.append(f"- and {more} more in the full answer")
        return "\n".join(([intro, ""] if intro else []) + body + (["", outro] if outro else []))

    lines = [e.head for e in entries]
    shown = len(lines)
    # Heads first: shorten them evenly, then drop from the end (counted) until they fit.
    while shown and len(render(lines[:shown], len(lines) - shown)) > limit:
        room = (limit - sum(len(x) + 2 for x in fixed) - 30) // shown - 3
        shortened = [cut(line, room) for line in lines[:shown]]
        if room >= 60 and len(render(shortened, len(lines) - shown)) <= limit:
            lines[:shown] = shortened
            break
        shown -= 1
    lines = lines[:shown]
    # Then one more part per entry per round, each only if everything still fits.
    depth = max((len(e.parts) for e in entries[:shown]), default=0)
    for level in range(depth):
        for i, entry in enumerate(entries[:shown]):
            if level < len(entry.parts):
                trial = [*lines[:i], f"{lines[i]} {entry.parts[level]}", *lines[i + 1 :]]
                over = len(render(trial, len(entries) - shown)) - limit
                if over > 0 and level == 0 and len(lines[i]) - over >= 60:
                    # The patient's facts matter more than the end of the reason: shorten the reason for them.
                    trial[i] = f"{cut(lines[i], len(lines[i]) - over)} {entry.parts[level]}"
                    over = len(render(trial, len(entries) - shown)) - limit
                if over <= 0:
                    lines = trial
    text = render(lines, len(entries) - shown)
    return text if len(text) <= limit else cap(text, limit)


def cap(text: str, limit: int = DETAIL_MAX) -> str:
    """Any detail within the limit: whole lines while they fit, then a pointer to the full answer."""
    if len(text) <= limit:
        return text
    tail = "\n\n… more in the full answer."
    kept: list[str] = []
    for line in text.split("\n"):
        if len("\n".join([*kept, line])) + len(tail) > limit:
            break
        kept.append(line)
    if not any(line.strip() for line in kept):
        kept = [cut(text, limit - len(tail))]
    return "\n".join(kept).rstrip() + tail
