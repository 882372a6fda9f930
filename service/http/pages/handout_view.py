"""The patient handout: the options a clinician ticked, in plain language, from each option's `patient` layer.

The sheet is given to the patient, so it carries no identifiers: no decision id, no profile, nothing but the
ruleset's own texts for the options chosen. The query names the options (`option=a&option=b`) and is read
strictly, like every other page's: an unknown parameter, an unknown option or one without a patient text is
a problem reported to the clinician, never dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from werkzeug.datastructures import MultiDict

from ...ruleset.errors import suggest
from ...ruleset.model import Option, Ruleset

# The patient layer's keys (the contract of issue 11), in the order a patient reads them, with their headings.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("what", "What it is"),
    ("how", "How it is used"),
    ("results", "When to expect results"),
    ("maintenance", "Sessions and keeping it up"),
    ("cost", "Cost"),
    ("common_effects", "Common side effects"),
    ("serious_effects", "Serious side effects: contact your clinician"),
    ("tell", "Tell your clinician"),
)
MAX_OPTIONS = 20  # more options than any sheet needs; bounds the work a link can ask for


@dataclass(frozen=True)
class Sheet:
    option: str
    label: str
    sections: tuple[tuple[str, str], ...]  # (heading, text) of each patient text the option has


def patient_texts(option: Option) -> dict[str, str]:
    """The option's patient layer as {key: text}; empty when it has none."""
    layer: Any = getattr(option, "patient", None)
    if not layer:
        return {}
    # A mapping of the layer's keys, or a frozen dataclass of them.
    items = layer.items() if isinstance(layer, Mapping) else ((key, getattr(layer, key, None)) for key, _ in SECTIONS)
    return {key: str(text) for key, text in items if text}


def read_options(ruleset: Ruleset, params: MultiDict[str, str]) -> tuple[list[str], list[str]]:
    """(option ids in the order given, without repeats; problems), from the query string."""
    problems: list[str] = []
    chosen: list[str] = []
    for key in params:
        if key != "option":
            problems.append(f"Unknown parameter {key[:40]}: a handout takes only option=<id>.")
    values = params.getlist("option")
    if len(values) > MAX_OPTIONS:
        return [], [f"At most {MAX_OPTIONS} options fit on a handout."]
    for value in values:
        option = ruleset.options.get(value)
        if option is None:
            hint = suggest(value, ruleset.options).replace("`", "")
            problems.append(f"Unknown option {value[:40]}{hint}.")
        elif not patient_texts(option):
            problems.append(f"{option.label} has no patient text in this ruleset yet.")
        elif value not in chosen:
            chosen.append(value)
    if not values:
        problems.append("Tick at least one option on the answer to make a handout.")
    return chosen, problems


def sheet(option: Option) -> Sheet:
    texts = patient_texts(option)
    return Sheet(option.id, option.label, tuple((heading, texts[key]) for key, heading in SECTIONS if key in texts))
