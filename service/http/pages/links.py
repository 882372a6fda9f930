"""Where the service's pages live, for links that leave the page they are on (CDS Hooks cards, e-mails).

One place builds these paths, so moving a page means changing one function. Absolute URLs use
PUBLIC_BASE_URL when set (the address clinicians reach the service at, behind a proxy), else the
address of the current request.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import request

from ...ruleset.model import Ruleset
from .. import app_context
from .forms import query_string

# The Coding system of `source.topic` on CDS cards when PUBLIC_BASE_URL is not set: a stable name, so the
# topic of a ruleset is the same whichever host name a request came in by.
TOPIC_SYSTEM = "urn:rules-service:ruleset"


def base_url() -> str:
    return app_context.settings().public_base_url or request.url_root.rstrip("/")


def topic_system() -> str:
    """The system of a ruleset's topic Coding (its code is the ruleset id): from configuration, never the request."""
    public = app_context.settings().public_base_url
    return f"{public}/rulesets" if public else TOPIC_SYSTEM


def ruleset_url(ruleset_id: str) -> str:
    """The ruleset's page: what it decides, who reviewed it, its rules and proofs."""
    return f"{base_url()}/rulesets/{quote(ruleset_id, safe='')}"


def form_url(ruleset: Ruleset, profile: dict[str, Any]) -> str:
    """The clinician form prefilled with a (raw, possibly partial) profile; submitting it shows the answer."""
    query = query_string(ruleset, profile)
    return f"{ruleset_url(ruleset.id)}/try" + (f"?{query}" if query else "")
