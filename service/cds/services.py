"""The CDS services offered, derived from the active production rulesets that have a valid FHIR mapping.

Each such ruleset gives a `patient-view` service (candidate options and exclusions for the patient) and,
when its mapping knows which medication orders are which options, `order-select` and `order-sign`
services (a warning or critical card when a selected, or to-be-signed, drug is excluded; the same
prefetch and checks). Titles, descriptions and the facts the clinician
must add come from the ruleset and the mapping, so a new ruleset needs no code.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from ..registry import Registry
from ..ruleset import RulesetError
from ..ruleset.model import Ruleset
from .mapping import FhirMapping, load_mapping, mapping_path

log = logging.getLogger(__name__)

SPEC_VERSION = "2.0.1"
HOOKS = ("patient-view", "order-select", "order-sign")
ORDER_HOOKS = ("order-select", "order-sign")


@dataclass(frozen=True)
class Service:
    id: str
    hook: str
    ruleset: Ruleset
    mapping: FhirMapping

    def missing_numbers(self, profile: dict[str, Any]) -> list[str]:
        """Required numbers (age) the profile lacks: no completion can stand in for them, so no decision."""
        return [
            f.id for f in self.ruleset.inputs.values() if f.required and f.type == "integer" and f.id not in profile
        ]

    def discovery(self) -> dict[str, Any]:
        rs = self.ruleset
        from_ehr = sorted(set(self.mapping.sources()) & set(rs.inputs), key=list(rs.inputs).index)
        clinician = [f for f in rs.inputs.values() if f.id not in from_ehr]
        if self.hook == "patient-view":
            title = f"{rs.title}: treatment options"
            description = (
                f"Candidate treatment options, exclusions with their reasons, and referrals from the ruleset "
                f"“{rs.title}” {rs.version} ({rs.institution}), for the facts the patient record gives. "
                "The cards say which facts are missing and link to a form prefilled with what is known."
            )
        else:
            options = sorted(
                {o for ing in self.mapping.ingredients.values() for o in ing.orders}
                | {p.option for ing in self.mapping.ingredients.values() for p in ing.products if p.option},
                key=list(rs.options).index,
            )
            moment = "selected" if self.hook == "order-select" else "about to be signed"
            title = f"{rs.title}: order check" + (" at signing" if self.hook == "order-sign" else "")
            description = (
                f"When one of {', '.join(rs.options[o].label for o in options)} is {moment}, a critical card if "
                f"the ruleset “{rs.title}” {rs.version} excludes it for this patient (with suggestions to remove "
                "the order or order a candidate instead), a warning if facts the record lacks decide it."
            )
        required = ", ".join(f"`{t.key}`" for t in self.mapping.prefetch.values() if t.required) or "none"
        missing = ", ".join(f.label for f in clinician if f.required) or "none"
        usage = (
            "Every call carries a JWT signed with ES384 or RS384 by a trusted issuer. Required prefetch keys "
            f"({required}) must be prefetched or readable on fhirServer with fhirAuthorization; the other keys "
            f"are used when given. Facts no FHIR resource gives ({missing}) are completed by the clinician in "
            "the linked form."
        )
        return {
            "hook": self.hook,
            "id": self.id,
            "title": title,
            "description": description,
            "prefetch": {t.key: t.query for t in self.mapping.prefetch.values()},
            "usageRequirements": usage,
            "version": SPEC_VERSION,
        }


def service_id(ruleset_id: str, hook: str) -> str:
    return f"{ruleset_id}-{hook}"


def offers_orders(mapping: FhirMapping) -> bool:
    return any(ing.orders or any(p.option for p in ing.products) for ing in mapping.ingredients.values())


class Catalog:
    """Mappings loaded once per revision of the ruleset and of the mapping file (checked by file stat)."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[tuple[Any, ...], FhirMapping | None]] = {}
        self._lock = threading.Lock()

    def mapping(self, ruleset: Ruleset) -> FhirMapping | None:
        path = mapping_path(ruleset.path)
        try:
            stat = path.stat()
        except OSError:
            return None
        key = (ruleset.sha256, stat.st_mtime_ns, stat.st_size)
        with self._lock:
            cached = self._cache.get(str(path))
            if cached and cached[0] == key:
                return cached[1]
            try:
                mapping: FhirMapping | None = load_mapping(path, ruleset)
            except RulesetError as exc:
                log.error("FHIR mapping not used, its CDS services are not offered: %s", exc)
                mapping = None
            self._cache[str(path)] = (key, mapping)
            return mapping

    def services(self, registry: Registry) -> dict[str, Service]:
        out: dict[str, Service] = {}
        for active in registry.all():
            rs = active.ruleset
            if rs.status != "production":
                continue
            mapping = self.mapping(rs)
            if mapping is None:
                continue
            for hook in HOOKS:
                if hook in ORDER_HOOKS and not offers_orders(mapping):
                    continue
                out[service_id(rs.id, hook)] = Service(service_id(rs.id, hook), hook, rs, mapping)
        return out
