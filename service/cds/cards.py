"""CDS Hooks cards from a decision made on the facts the patient record gives (often a partial profile).

What the cards claim is only what holds whatever the missing facts turn out to be: candidates, exclusions
and referrals present in every completion of the profile. What the missing facts could change is said
separately, naming those facts, with a link to the clinician form prefilled with what is known.

Every card has a uuid (feedback refers to it), a summary of at most 139 characters, an indicator, a
source naming the ruleset and its version, GitHub-flavoured Markdown detail without raw HTML, the form
link and coded override reasons with displays; optional fields without a value are left out, never null.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..engine.answer import Candidate, Decision, Exclusion, Referral, WarningKind
from ..ruleset.model import Rule, Ruleset, condition_leaves
from ..ruleset.words import LEVEL_WORDS
from .extract import Extraction, Order

SUMMARY_MAX = 139

# Override reasons: HL7 CDS Hooks "non-adherence-reason-codes" (CodeSystem-non-adherence-reason-codes.json in
# github.com/HL7/cds-hooks input/vocabulary), with their published displays.
NON_ADHERENCE = "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes"
REASON_DISPLAYS = {
    "cds-not-applicable": "PC CDS does not apply to patient",
    "risk-benefit-ratio": "Recipient assessment of risk/benefit ratio",
    "expert-contradicts": "Advice from expert contradicts the recommended action",
    "action-performed-no-adverse-effect": "Intended action was performed previously without adverse effect",
    "prefers-alternative": "Patient prefers an alternative approach or treatment",
    "too-costly-uncovered": "Recommended action is too costly or not covered by insurance",
    "service-not-available": "Treatment or service is not practically available",
    "need-more-info": (
        "Could not address recommended action due to need for more information/pending results/pending consult"
    ),
    "limited-time": "Could not address recommended action due to limited time",
}
ORDER_OVERRIDES = (
    "risk-benefit-ratio",
    "expert-contradicts",
    "action-performed-no-adverse-effect",
    "cds-not-applicable",
)
OPTION_OVERRIDES = ("prefers-alternative", "too-costly-uncovered", "service-not-available", "cds-not-applicable")
FACTS_OVERRIDES = ("limited-time", "need-more-info", "cds-not-applicable")


def prune(value: Any) -> Any:
    """Drop null and empty optional members, recursively (CDS Hooks: "SHALL NOT be null ... SHALL NOT be empty")."""
    if isinstance(value, dict):
        out = {k: prune(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, "", [], {})}
    if isinstance(value, list):
        return [v for v in (prune(v) for v in value) if v not in (None, "", [], {})]
    return value


def shorten(text: str, limit: int = SUMMARY_MAX) -> str:
    """One line of at most `limit` characters, cut at a word with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:-")
    return cut + "…"


def md(text: str) -> str:
    """Ruleset text as Markdown without raw HTML (GFM would pass tags through to the EHR)."""
    return " ".join(str(text).split()).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def listing(labels: list[str], limit: int = 3) -> str:
    shown = ", ".join(labels[:limit])
    return shown + (f" and {len(labels) - limit} more" if len(labels) > limit else "")


@dataclass
class Possible:
    """An option some completions of the profile exclude, and the missing facts that decide it."""

    option: str
    reasons: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)


@dataclass
class CardMaker:
    ruleset: Ruleset
    extraction: Extraction
    form_link: str
    ruleset_link: str
    topic_system: str
    options_of: dict[str, list[str]] = field(default_factory=dict)  # card uuid -> the options it is about
    # Fields that only say whom an option is for (sex): an exclusion by them alone ("not for men") is no news.
    population: tuple[str, ...] = ()
    service_id: str = ""  # recorded with each card: feedback is taken only by the service that issued it
    patient_id: str = ""  # the subject of a suggested alternative order
    # option -> the mapped product (system, code, display) a suggestion may order instead of an excluded one
    orderable: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    smart_link: str = ""  # the form as a SMART app (EHR launch); "" when SMART launch is not configured

    # ---- shared parts ---------------------------------------------------------------------------

    def card(
        self,
        indicator: str,
        summary: str,
        detail: list[str],
        overrides: Iterable[str],
        options: Iterable[str] = (),
        suggestions: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        rs = self.ruleset
        card = {
            "uuid": str(uuid.uuid4()),
            "summary": shorten(summary),
            "indicator": indicator,
            "detail": "\n".join(detail).strip(),
            "source": {
                "label": f"{rs.title} {rs.version}",
                "url": self.ruleset_link,
                "topic": {"system": self.topic_system, "code": rs.id, "display": rs.title},
            },
            "links": [
                {
                    "label": "Complete the profile and see the full explanation",
                    "url": self.form_link,
                    "type": "absolute",
                }
            ],
            "overrideReasons": [{"system": NON_ADHERENCE, "code": c, "display": REASON_DISPLAYS[c]} for c in overrides],
        }
        if self.smart_link:
            # The EHR launches it with `iss` and `launch`: the form reads the record itself, no facts in a URL.
            card["links"].append(
                {"label": "Open the form as an app in the EHR (SMART)", "url": self.smart_link, "type": "smart"}
            )
        if suggestions:
            # One of them at most: removing the order and replacing it exclude each other.
            card["suggestions"] = suggestions
            card["selectionBehavior"] = "at-most-one"
        self.options_of[card["uuid"]] = list(options)
        return prune(card)

    def for_the_log(self, cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The cards as the decision log keeps them: a card about one option names it (to link its rules),
        and each names the service that issued it (feedback is checked against it)."""
        out = []
        for card in cards:
            options = self.options_of.get(card["uuid"], [])
            kept = {**card, "option": options[0]} if len(options) == 1 else dict(card)
            if self.service_id:
                kept["service"] = self.service_id
            out.append(kept)
        return out

    # ---- suggestions (CDS Hooks Suggestion/Action) --------------------------------------------------

    def order_suggestions(self, order: Order, candidates: list[Candidate]) -> list[dict[str, Any]]:
        """Remove the draft order (recommended); or replace it by a draft order for a candidate the mapping
        has a product code for. No dose or timing is proposed: the prescriber completes the new order."""
        remove = {
            "type": "delete",
            "description": f"Remove the draft order {order.reference} ({order.label}).",
            "resourceId": order.reference,
        }
        out = [
            {
                "label": shorten(f"Remove the order for {order.label}", 80),
                "uuid": str(uuid.uuid4()),
                "isRecommended": True,
                "actions": [remove],
            }
        ]
        for c in candidates:
            product = self.orderable.get(c.option)
            if product is None or c.option in order.options:
                continue
            system, code, display = product
            resource = {
                "resourceType": "MedicationRequest",
                "status": "draft",
                "intent": "order",
                "subject": {"reference": f"Patient/{self.patient_id}"} if self.patient_id else None,
                "medicationCodeableConcept": {"coding": [{"system": system, "code": code, "display": display}]},
            }
            out.append(
                {
                    "label": shorten(f"Order {c.label} instead ({display})", 80),
                    "uuid": str(uuid.uuid4()),
                    "actions": [
                        remove,
                        {
                            "type": "create",
                            "description": f"Draft order for {display}; dose and timing to be completed.",
                            "resource": prune(resource),
                        },
                    ],
                }
            )
        return out

    def label(self, fid: str) -> str:
        return self.ruleset.inputs[fid].label

    def waiting(self, decision: Decision) -> list[tuple[Rule, list[str]]]:
        """Rules that could still change the answer once an unrecorded fact is recorded, with those facts.

        The decision prompts once per unrecorded input, naming the options it could change; the rules
        behind a prompt are those that test the input and act on one of those options.
        """
        out: dict[str, tuple[Rule, list[str]]] = {}
        for w in decision.warnings:
            if w.kind is not WarningKind.UNKNOWN_INPUTS or not w.fields:
                continue
            options = set(w.options or ())
            for rule in self.ruleset.rules:
                tested = self._rule_fields(rule.id)
                fields = [f for f in w.fields if f in tested]
                if not fields or not any(options.intersection(a.options) for a in rule.then):
                    continue
                entry = out.setdefault(rule.id, (rule, []))
                entry[1].extend(f for f in fields if f not in entry[1])
        return list(out.values())

    def unknown(self, decision: Decision) -> list[str]:
        """Facts the decision could depend on that are not recorded, in the ruleset's order."""
        missing = set(decision.partial.missing if decision.partial else ())
        missing.update(f for w in decision.warnings if w.kind is WarningKind.UNKNOWN_INPUTS for f in w.fields or ())
        missing.update(self.extraction.incomplete)
        return [f for f in self.ruleset.inputs if f in missing]

    def _rule_fields(self, rule_id: Any) -> list[str]:
        try:
            rule = self.ruleset.rule(str(rule_id))
        except KeyError:
            return []
        return [leaf.field for leaf in condition_leaves(rule.when)]

    def _population_only(self, rule_id: Any) -> bool:
        """A rule that reads only whom an option is for (e.g. `sex equals male`): its exclusion is not news."""
        fields = self._rule_fields(rule_id)
        return bool(fields) and bool(self.population) and set(fields) <= set(self.population)

    def by_cases(self, decision: Decision) -> list[Exclusion]:
        """Options excluded in every completion, but by no one reason in all of them (e.g. sex not recorded:
        "not for men" for a man, another reason for a woman). Saying "not suitable" with mixed reasons would
        mislead; what decides them is said with the missing facts instead."""
        if decision.partial is None:
            return []
        fired = set(decision.fired_rules)
        return [e for e in decision.excluded if not any(r.rule in fired for r in e.reasons)]

    def news_exclusions(self, decision: Decision) -> list[Exclusion]:
        """The patient-view exclusions worth a card: certain by one reason, and not only "not for" the sex."""
        cases = {e.option for e in self.by_cases(decision)}
        out = []
        for e in self.certain_exclusions(decision):
            if e.option in cases:
                continue
            reasons = tuple(r for r in e.reasons if not self._population_only(r.rule))
            if reasons:
                out.append(dataclasses.replace(e, reasons=reasons))
        return out

    def possible_exclusions(self, decision: Decision) -> dict[str, Possible]:
        """Options excluded in some completions of the profile, or by a rule waiting for an unrecorded fact."""
        cases = self.by_cases(decision)
        certain = decision.excluded_ids() - {e.option for e in cases}
        unknown = set(self.unknown(decision))
        out: dict[str, Possible] = {}
        partial = decision.partial
        for e in cases:
            entry = out.setdefault(e.option, Possible(e.option))
            for reason in e.reasons:
                entry.facts.extend(f for f in self._rule_fields(reason.rule) if f in unknown and f not in entry.facts)
                if reason.text and reason.text not in entry.reasons and not self._population_only(reason.rule):
                    entry.reasons.append(reason.text)
        for option, reasons in (partial.possibly_excluded if partial else {}).items():
            if option in certain:
                continue
            entry = out.setdefault(option, Possible(option))
            for reason in reasons:
                if reason.text and reason.text not in entry.reasons:
                    entry.reasons.append(reason.text)
                fields = self._rule_fields(reason.rule)
                entry.facts.extend(f for f in fields if f in unknown and f not in entry.facts)
            if not entry.facts and partial:
                entry.facts = [f for f in partial.missing if f in self.ruleset.inputs]
        for rule, fields in self.waiting(decision):
            for action in rule.then:
                if action.kind != "exclude":
                    continue
                for option in action.options:
                    if option in certain:
                        continue
                    entry = out.setdefault(option, Possible(option))
                    if action.text not in entry.reasons:
                        entry.reasons.append(action.text)
                    entry.facts.extend(f for f in fields if f not in entry.facts)
        order = list(self.ruleset.options)
        return dict(sorted(out.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))

    @staticmethod
    def certain_exclusions(decision: Decision) -> list[Exclusion]:
        """Exclusions with the reasons whose rule fired in every completion of the profile.

        An option can be excluded whatever the missing facts are while some of its reasons hold only for
        some values of them (e.g. "did not respond to finasteride" when the response is not recorded):
        those reasons are not facts about this patient and are not shown as such.
        """
        fired = set(decision.fired_rules)
        out = []
        for e in decision.excluded:
            reasons = tuple(r for r in e.reasons if r.rule in fired) or e.reasons
            out.append(dataclasses.replace(e, reasons=reasons))
        return out

    def possible_candidates(self, decision: Decision, shown: list[str]) -> list[str]:
        """Labels of options that are candidates for some values of the missing facts (not yet certain)."""
        possible = [
            *(decision.partial.possible_candidates if decision.partial else ()),
            *(c.option for c in decision.candidates),
        ]
        extra = dict.fromkeys(o for o in possible if o not in shown and o in self.ruleset.options)
        return [self.ruleset.options[o].label for o in extra]

    def _facts_words(self, fields: list[str]) -> str:
        return listing([self.label(f).lower() for f in fields], 4) or "facts not recorded"

    # ---- patient-view -----------------------------------------------------------------------------

    def patient_view(self, decision: Decision) -> list[dict[str, Any]]:
        cards = []
        possible = self.possible_exclusions(decision)
        candidates = [c for c in decision.candidates if c.option not in possible]
        if candidates:
            cards.append(self._candidates_card(decision, candidates))
        excluded = self.news_exclusions(decision)
        if excluded:
            cards.append(self._exclusions_card(excluded))
        if decision.referrals:
            cards.append(self._referrals_card(list(decision.referrals)))
        rule_warnings = [w for w in decision.warnings if w.kind is WarningKind.RULE]
        if rule_warnings:
            texts = [w.text for w in rule_warnings]
            detail = ["**Points to check before choosing a treatment:**", "", *(f"- {md(t)}" for t in texts)]
            cards.append(self.card("warning", f"Check: {texts[0]}", detail, OPTION_OVERRIDES))
        facts = self._facts_card(decision, certain=[c.option for c in candidates])
        if facts:
            cards.append(facts)
        return cards

    def _strength(self, sid: str) -> str:
        return next((s.label for s in self.ruleset.strengths if s.id == sid), sid)

    def _candidates_card(self, decision: Decision, candidates: list[Candidate]) -> dict[str, Any]:
        labels = [c.label for c in candidates]
        summary = f"Treatment options to consider: {listing(labels)}"
        detail = []
        if self.unknown(decision):
            detail += ["These options hold whatever the facts not yet recorded turn out to be.", ""]
        for c in candidates:
            detail += [f"### {md(c.label)} ({md(self._strength(c.strength))})", "", md(c.summary), ""]
            if c.regimen:
                detail.append(f"- **Regimen:** {md(c.regimen)}")
            detail += [f"- **Why:** {md(r)}" for r in c.rationale]
            detail += [f"- **Caveat:** {md(cv)}" for cv in c.caveats]
            evidence = c.evidence
            if evidence.level:
                note = f": {md(evidence.note)}" if evidence.note else ""
                detail.append(f"- **Evidence:** {md(LEVEL_WORDS.get(evidence.level, evidence.level))}{note}")
            for ref in evidence.references:
                citation = md(ref.citation)
                detail.append(
                    f"- **Reference:** [{citation}]({ref.url})" if ref.url else f"- **Reference:** {citation}"
                )
            detail.append("")
        extra = self.possible_candidates(decision, shown=[c.option for c in candidates])
        if extra:
            detail.append(f"Depending on the missing facts, also possible: {md(', '.join(extra))}.")
        detail += [
            "",
            "The service suggests options for a clinician to consider; it does not make treatment decisions.",
        ]
        return self.card("info", summary, detail, OPTION_OVERRIDES, [c.option for c in candidates])

    def _exclusions_card(self, excluded: list[Exclusion]) -> dict[str, Any]:
        first = excluded[0]
        reason = first.reasons[0].text if first.reasons else ""
        if len(excluded) == 1:
            summary = f"Not suitable: {first.label}. {reason}"
        else:
            summary = f"Not suitable for this patient: {listing([e.label for e in excluded])}"
        detail = ["**Options excluded for this patient, with the reasons:**", ""]
        for e in excluded:
            facts = list(dict.fromkeys(f for r in e.reasons for f in r.facts))
            because = f" ({md('; '.join(facts))})" if facts else ""
            detail.append(f"- **{md(e.label)}**: " + " ".join(md(r.text) for r in e.reasons) + because)
        return self.card("warning", summary, detail, ORDER_OVERRIDES, [e.option for e in excluded])

    def _referrals_card(self, referrals: list[Referral]) -> dict[str, Any]:
        summary = f"Referral suggested: {listing([r.label for r in referrals])}"
        detail = []
        for r in referrals:
            detail += [f"### {md(r.label)}", "", md(r.summary), ""]
            detail += [f"- **Why:** {md(t)}" for t in r.rationale]
            detail.append("")
        return self.card("warning", summary, detail, OPTION_OVERRIDES, [r.option for r in referrals])

    def _facts_card(self, decision: Decision, certain: list[str]) -> dict[str, Any] | None:
        unknown = self.unknown(decision)
        notes = self.extraction.notes
        if not unknown and not notes:
            return None
        labels = [self.label(f) for f in unknown]
        summary = (
            f"Record {len(labels)} more fact{'s' if len(labels) != 1 else ''} for a complete answer: {listing(labels)}"
            if labels
            else "Check facts from the record before relying on the options"
        )
        detail = []
        if labels:
            detail += ["**Not in the patient record (or not readable), to be completed by the clinician:**", ""]
            for fid in unknown:
                f = self.ruleset.inputs[fid]
                why = " (the record could not be read in full)" if fid in self.extraction.incomplete else ""
                detail.append(f"- **{md(f.label)}**{why}: {md(f.help)}" if f.help else f"- **{md(f.label)}**{why}")
            detail.append("")
        options = self.possible_candidates(decision, shown=certain)
        if options:
            detail += [f"**Options that may apply once they are recorded:** {md(', '.join(options))}.", ""]
        possible = self.possible_exclusions(decision)
        if possible:
            detail += ["**What these facts decide:**", ""]
            for p in possible.values():
                label = self.ruleset.options[p.option].label if p.option in self.ruleset.options else p.option
                detail.append(
                    f"- **{md(label)}** may be excluded, depending on {self._facts_words(p.facts)}: "
                    + md(" ".join(p.reasons))
                )
            detail.append("")
        if notes:
            detail += ["**Facts in the record that could not be used:**", "", *(f"- {md(n)}" for n in notes), ""]
        detail.append("Open the linked form, prefilled with the facts from the record, to complete the profile.")
        return self.card("info", summary, detail, FACTS_OVERRIDES)

    # ---- order-select -------------------------------------------------------------------------------

    def order_select(self, decision: Decision, orders: list[Order]) -> list[dict[str, Any]]:
        excluded = {e.option: e for e in self.certain_exclusions(decision)}
        possible = self.possible_exclusions(decision)
        cards = []
        alternatives = [c for c in decision.candidates if c.option not in possible]
        for order in orders:
            certain = [o for o in order.options if o in excluded]
            maybe = [o for o in order.options if o in possible]
            if certain and len(certain) == len(order.options):
                cards.append(self._excluded_order(order, [excluded[o] for o in certain], alternatives))
            elif certain or maybe:
                cards.append(
                    self._possibly_excluded_order(order, [excluded[o] for o in certain], [possible[o] for o in maybe])
                )
        return cards

    def _option_label(self, option: str) -> str:
        return self.ruleset.options[option].label

    def _excluded_order(
        self, order: Order, exclusions: list[Exclusion], alternatives: Iterable[Candidate] = ()
    ) -> dict[str, Any]:
        labels = [e.label for e in exclusions]
        reasons = [r.text for e in exclusions for r in e.reasons]
        summary = f"{' / '.join(labels)} is excluded for this patient: {reasons[0] if reasons else ''}"
        detail = [f"**{md(order.label)}** ({md(order.reference)}) is excluded by the ruleset for this patient.", ""]
        for e in exclusions:
            detail += [f"- **{md(e.label)}**: " + " ".join(md(r.text) for r in e.reasons)]
        detail += ["", "This holds whatever the facts missing from the record turn out to be."]
        detail += self._by_name(order)
        suggestions = self.order_suggestions(order, list(alternatives))
        return self.card("critical", summary, detail, ORDER_OVERRIDES, [e.option for e in exclusions], suggestions)

    @staticmethod
    def _by_name(order: Order) -> list[str]:
        if not order.by_name:
            return []
        return ["", f"The order was recognised by its text (matched by name: {md(order.ingredient)}), not by a code."]

    def _possibly_excluded_order(
        self, order: Order, exclusions: list[Exclusion], possible: list[Possible]
    ) -> dict[str, Any]:
        facts = [f for p in possible for f in p.facts]
        facts = [f for f in self.ruleset.inputs if f in facts]
        names = [self._option_label(p.option) for p in possible] + [e.label for e in exclusions]
        summary = f"{' / '.join(names)} may be unsuitable: it depends on {self._facts_words(facts)}"
        detail = [f"**{md(order.label)}** ({md(order.reference)}) may be excluded for this patient.", ""]
        if not possible:
            # Certain exclusions of some of the options the order could be (its dose form is not coded).
            summary = f"{order.label}: {' / '.join(names)} is excluded for this patient; check which form is ordered"
            detail = [
                f"**{md(order.label)}** ({md(order.reference)}) does not say its dose form; it could be "
                + ", ".join(md(self._option_label(o)) for o in order.options if o in self.ruleset.options)
                + ".",
                "",
                *(f"{md(e.label)} is excluded for this patient." for e in exclusions),
                "",
            ]
        for p in possible:
            detail.append(
                f"- **{md(self._option_label(p.option))}** may be excluded, depending on "
                f"{self._facts_words(p.facts)}: " + md(" ".join(p.reasons))
            )
        for e in exclusions:
            detail.append(f"- **{md(e.label)}** is excluded: " + " ".join(md(r.text) for r in e.reasons))
        detail += ["", "Record the missing facts in the linked form to settle it before signing the order."]
        detail += self._by_name(order)
        options = [p.option for p in possible] + [e.option for e in exclusions]
        return self.card("warning", summary, detail, ORDER_OVERRIDES, options)

    # ---- no decision ------------------------------------------------------------------------------

    def cannot_decide(self, fields: list[str]) -> list[dict[str, Any]]:
        """When the record lacks a fact no completion can stand in for (a number such as age)."""
        labels = [self.label(f) for f in fields if f in self.ruleset.inputs] or ["required facts"]
        summary = f"Treatment options cannot be assessed: record {listing(labels)}"
        detail = [
            "The patient record does not give these facts, and the options depend on them:",
            "",
            *(f"- **{md(label)}**" for label in labels),
            "",
            *(f"- {md(n)}" for n in self.extraction.notes),
            "",
            "Open the linked form, prefilled with the facts from the record, to complete the profile.",
        ]
        return [self.card("info", summary, detail, FACTS_OVERRIDES)]
