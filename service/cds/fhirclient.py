"""Reading the EHR's FHIR server when prefetch did not bring the data (CDS Hooks 2.0.1 "FHIR Resource Access").

The access token from `fhirAuthorization` is transient: it is sent only to the `fhirServer` origin (never to
a `next` link elsewhere), never logged, never stored. Every request has a short timeout and a size limit, so
a slow EHR gives "unavailable" (and perhaps a 412) rather than a hung worker.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from .elements import as_list
from .outcome import is_operation_outcome

log = logging.getLogger(__name__)

MAX_BYTES = 8 * 1_048_576
MAX_PAGES = 10


class Unavailable(Exception):
    """The server could not give the data; the message is safe to log (no token, no patient data)."""


class FhirClient:
    def __init__(self, base_url: str, access_token: str, timeout: float) -> None:
        self.base = base_url.rstrip("/") + "/"
        self.origin = urlsplit(self.base)[:2]
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {access_token}", "Accept": "application/fhir+json"})
        self.session.trust_env = False  # no proxy or netrc credentials picked up from the environment

    def close(self) -> None:
        self.session.close()

    def read(self, relative: str) -> dict[str, Any] | None:
        """One resource, or None if the server says it does not exist (404/410)."""
        status, body = self._get(urljoin(self.base, relative))
        if status in (404, 410):
            return None
        if status != 200 or not isinstance(body, dict) or is_operation_outcome(body):
            raise Unavailable(f"read answered HTTP {status}")
        return body

    def search(self, relative: str) -> tuple[list[dict[str, Any]], bool]:
        """Every entry of a search, following `next` links on the same server; (resources, complete)."""
        url: str | None = urljoin(self.base, relative)
        resources: list[dict[str, Any]] = []
        for _page in range(MAX_PAGES):
            assert url is not None
            status, body = self._get(url)
            if status != 200 or not isinstance(body, dict) or body.get("resourceType") != "Bundle":
                raise Unavailable(f"search answered HTTP {status}" + ("" if status != 200 else " without a Bundle"))
            resources.extend(bundle_resources(body))
            url = next_link(body)
            if url is None:
                return resources, True
            if urlsplit(url)[:2] != self.origin:
                log.warning("FHIR server paging link points to another origin; not followed")
                return resources, False
        return resources, False

    def _get(self, url: str) -> tuple[int, Any]:
        if urlsplit(url)[:2] != self.origin:
            raise Unavailable("URL outside the FHIR server; the access token is not sent there")
        try:
            with self.session.get(
                url, timeout=(self.timeout, self.timeout), allow_redirects=False, stream=True
            ) as resp:
                raw = resp.raw.read(MAX_BYTES + 1, decode_content=True)
                status = resp.status_code
        except requests.RequestException as exc:
            raise Unavailable(f"request failed ({type(exc).__name__})") from None
        if len(raw) > MAX_BYTES:
            raise Unavailable("answer larger than 8 MiB")
        if status != 200:
            return status, None
        try:
            return status, json.loads(raw)
        except ValueError:
            raise Unavailable("answer is not JSON") from None


def bundle_resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """The resources of a Bundle, without the OperationOutcomes a server adds as search warnings."""
    out = []
    for entry in as_list(bundle.get("entry")):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and not is_operation_outcome(resource):
            out.append(resource)
    return out


def bundle_urls(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The resources of a Bundle by their entry's `fullUrl` (absolute, or `urn:uuid:`), to follow references."""
    out = {}
    for entry in as_list(bundle.get("entry")):
        if (
            isinstance(entry, dict)
            and isinstance(entry.get("fullUrl"), str)
            and isinstance(entry.get("resource"), dict)
        ):
            out[entry["fullUrl"]] = entry["resource"]
    return out


def next_link(bundle: dict[str, Any]) -> str | None:
    for link in as_list(bundle.get("link")):
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return link["url"]
    return None
