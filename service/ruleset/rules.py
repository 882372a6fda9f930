"""Rules (when/then) and invariants."""

from __future__ import annotations

from typing import Any

from .conditions import parse_condition
from .errors import suggest
from .model import (
    ACTION_KINDS,
    INVARIANT_KINDS,
    Action,
    All,
    Invariant,
    Rule,
    Ruleset,
)
from .reader import RULE_ID, Path, TreeReader
from .sections import read_refs

RULE_KEYS = {"id": True, "title": True, "description": False, "when": True, "then": True, "references": False}


def read_rules(r: TreeReader, node: Any, rs: Ruleset) -> tuple[Rule, ...]:
    if not isinstance(node, list) or not node:
        if node is not None:
            r.error(("rules",), "`rules` must be a list of rules")
        return ()
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(node):
        p = ("rules", i)
        rid = item.get("id") if isinstance(item, dict) else None
        r.rule = rid if isinstance(rid, str) else None
        if not r.keys(item, p, RULE_KEYS, "a rule"):
            continue
        if not isinstance(rid, str) or not RULE_ID.match(rid):
            r.error((*p, "id"), f"rule id {rid!r} must be letters, digits, `-`, `_`, `.` or `:`")
            continue
        if rid in seen:
            r.error((*p, "id"), f"duplicate rule id `{rid}` (first used on line {seen[rid]})")
            continue
        seen[rid] = r.src.line((*p, "id")) or 0
        when = parse_condition(r, item.get("when"), (*p, "when"), rs)
        then = _actions(r, item.get("then"), (*p, "then"), rs)
        rules.append(
            Rule(
                id=rid,
                title=r.text(item, "title", p, f"rule `{rid}`"),
                when=when if when is not None else All(()),
                then=then,
                description=r.text(item, "description", p, f"rule `{rid}`", False),
                references=read_refs(r, item, p, rs.references, f"rule `{rid}`"),
                line=r.src.line(p),
            )
        )
    return tuple(rules)


_LAYERS = {"detail": False, "evidence": False}
ACTION_KEYS = {
    "recommend": {"recommend": True, "strength": True, "rationale": True, **_LAYERS},
    "exclude": {"exclude": True, "reason": True, **_LAYERS},
    "caveat": {"caveat": True, "text": True, **_LAYERS, "when": False},
    "refer": {"refer": True, "rationale": True, **_LAYERS},
    "warn": {"warn": True, **_LAYERS},
}


def _actions(r: TreeReader, node: Any, path: Path, rs: Ruleset) -> tuple[Action, ...]:
    if not isinstance(node, list) or not node:
        r.error(path, "`then` must be a non-empty list of actions (recommend, exclude, caveat, refer, warn)")
        return ()
    out = []
    for i, item in enumerate(node):
        p = (*path, i)
        kinds = [k for k in ACTION_KINDS if isinstance(item, dict) and k in item]
        if len(kinds) != 1:
            keys = list(item) if isinstance(item, dict) else []
            hint = suggest(keys[0], ACTION_KINDS) if keys and not kinds else ""
            r.error(p, f"each action must have exactly one of {', '.join(ACTION_KINDS)}{hint}")
            continue
        kind = kinds[0]
        if not r.keys(item, p, ACTION_KEYS[kind], f"a `{kind}` action"):
            continue
        what = f"a `{kind}` action"
        layers = {
            "detail": r.layered(item, "detail", p, what, "detail"),
            "evidence": r.layered(item, "evidence", p, what, "evidence"),
        }
        if kind == "warn":
            out.append(Action("warn", text=r.layered(item, "warn", p, "a warning", "short", required=True), **layers))
            continue
        options = item[kind]
        if isinstance(options, str):
            options = [options]
        if not isinstance(options, list) or not options or not all(isinstance(o, str) for o in options):
            r.error((*p, kind), f"`{kind}` must name an option or a list of options")
            continue
        for o in options:
            if o not in rs.options:
                r.error((*p, kind), f"`{kind}` names option `{o}`, which is not in `options`{suggest(o, rs.options)}")
            elif kind == "refer" and rs.options[o].kind == "treatment":
                r.error((*p, kind), f"`refer` needs a referral option; `{o}` is a {rs.options[o].kind}")
            elif kind == "recommend" and rs.options[o].kind == "referral":
                r.error((*p, kind), f"`recommend` needs a treatment option; `{o}` is a referral (use `refer`)")
        strength = ""
        if kind == "recommend":
            strength = item.get("strength")
            ids = [s.id for s in rs.strengths]
            if strength not in ids:
                r.error(
                    (*p, "strength"), f"strength {strength!r} is not declared in `strengths`{suggest(strength, ids)}"
                )
        text_key = {"recommend": "rationale", "exclude": "reason", "caveat": "text", "refer": "rationale"}[kind]
        text = r.layered(item, text_key, p, what, "short", required=True)
        when = parse_condition(r, item["when"], (*p, "when"), rs) if "when" in item else None
        out.append(Action(kind, tuple(options), strength or "", text, when=when, **layers))
    return tuple(out)


INVARIANT_KEYS = {"id": True, "title": True, "when": False, **{k: False for k in INVARIANT_KINDS}}


def read_invariants(r: TreeReader, node: Any, rs: Ruleset) -> tuple[Invariant, ...]:
    if not isinstance(node, list) or not node:
        if node is not None:
            r.error(("invariants",), "`invariants` must be a list of statements that hold for every profile")
        return ()
    out: list[Invariant] = []
    for i, item in enumerate(node):
        p = ("invariants", i)
        iid = item.get("id") if isinstance(item, dict) else None
        r.rule = None
        if not r.keys(item, p, INVARIANT_KEYS, "an invariant"):
            continue
        if not isinstance(iid, str) or not RULE_ID.match(iid):
            r.error((*p, "id"), f"invariant id {iid!r} must be letters, digits, `-`, `_`, `.` or `:`")
            continue
        if iid in [x.id for x in out]:
            r.error((*p, "id"), f"duplicate invariant id `{iid}`")
            continue
        kinds = [k for k in INVARIANT_KINDS if k in item]
        if len(kinds) != 1:
            r.error(p, f"invariant `{iid}` needs exactly one of {', '.join(INVARIANT_KINDS)}")
            continue
        kind = kinds[0]
        options: tuple[str, ...] = ()
        strength = ""
        if kind == "at_most":
            cap = item[kind]
            strengths = [s.id for s in rs.strengths]
            if not isinstance(cap, dict) or set(cap) != {"strength", "options"}:
                r.error((*p, kind), "`at_most` takes `strength` (a strength id) and `options` (a list of options)")
                continue
            strength = cap["strength"]
            if strength not in strengths:
                r.error(
                    (*p, kind, "strength"),
                    f"`{strength}` is not a strength{suggest(str(strength), strengths)}: one of {', '.join(strengths)}",
                )
                continue
            item = {**item, kind: cap["options"]}
        if kind == "some_candidate_or_referral":
            if item[kind] is not True:
                r.error((*p, kind), "`some_candidate_or_referral` takes the value true")
        else:
            raw = item[kind]
            raw = [raw] if isinstance(raw, str) else raw
            if not isinstance(raw, list) or not raw:
                r.error((*p, kind), f"`{kind}` needs an option or a list of options")
                continue
            for o in raw:
                if o not in rs.options:
                    r.error(
                        (*p, kind),
                        f"invariant `{iid}` names option `{o}`, which is not in `options`{suggest(o, rs.options)}",
                    )
            options = tuple(raw)
        when = parse_condition(r, item["when"], (*p, "when"), rs) if "when" in item else None
        title = r.text(item, "title", p, f"invariant `{iid}`")
        out.append(Invariant(iid, title, when, kind, options, r.src.line(p), strength))
    return tuple(out)
