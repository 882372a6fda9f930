"""Credentials: a bearer token becomes a Principal (its roles and a hashed subject for the logs).

Two kinds of credential are accepted. Hashed static tokens: each role has its own list of SHA-256
digests (INTEGRATION_TOKEN_HASHES, CLINICIAN_TOKEN_HASHES, AUDITOR_TOKEN_HASHES, ADMIN_TOKEN_HASHES), so
the environment never holds a usable token, and every digest is compared in constant time. OAuth2/OIDC
bearer JWTs from one identity provider (OIDC_ISSUER): its keys come from the JWKS named in its discovery
document, a token passes only if it is signed with RS256 or ES256 by one of them (`kid`), has exactly our
`iss`, our `aud` (OIDC_AUDIENCE), is current (`exp`, `iat`), and its roles claim maps to our roles.

The provider's documents are fetched with one overall deadline per fetch and a bounded size, cached, and a
token with an unknown `kid` refetches the JWKS at most once per UNKNOWN_KID_RETRY_S for all tokens
together, so random key ids cannot make every request wait on the provider. Why a token failed is for the
log only; the caller learns no more than "invalid".
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
import requests

from ...cds.urls import secure_enough
from ...config import ROLES, TOKEN_HASH_SETTINGS, token_hashes

log = logging.getLogger(__name__)

ALGORITHMS = ("RS256", "ES256")
LEEWAY_S = 60
UNKNOWN_KID_RETRY_S = 60.0
FAILURE_BACKOFF_S = 10.0  # after a failed fetch, tokens wait this long before the provider is asked again
MAX_DOCUMENT_BYTES = 512 * 1024
DISCOVERY_PATH = "/.well-known/openid-configuration"


@dataclass(frozen=True)
class Principal:
    """Who sent a request: the roles it holds and a subject safe to log (a hash, never the credential)."""

    roles: frozenset[str]
    subject: str
    via: str  # "token" (static), "oidc" (bearer JWT) or "session" (signed in to the pages)
    digest: str | None = None  # a static token's configured digest, remembered by a session

    def has(self, role: str) -> bool:
        return role in self.roles


class Refused(Exception):
    """A credential was refused; the message is for the log only."""


class ProviderUnavailable(Exception):
    """The identity provider's discovery document or keys cannot be had just now."""


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class StaticTokens:
    """The configured token digests of every role (config.token_hashes: ConfigurationError names a bad one)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.by_role = {
            role: token_hashes(str(config.get(name) or ""), name) for role, name in TOKEN_HASH_SETTINGS.items()
        }

    def configured(self, role: str) -> bool:
        return bool(self.by_role.get(role))

    def roles_of(self, digest: str) -> frozenset[str]:
        """The roles whose lists hold this digest; every digest of every role is compared, in constant time."""
        roles = set()
        for role, digests in self.by_role.items():
            for known in digests:
                if hmac.compare_digest(digest, known):
                    roles.add(role)
        return frozenset(roles)

    def principal(self, token: str) -> Principal | None:
        digest = digest_of(token)
        roles = self.roles_of(digest)
        return Principal(roles, "token:" + digest[:12], "token", digest) if roles else None


def fetch_json(url: str, timeout_s: float, max_bytes: int = MAX_DOCUMENT_BYTES) -> dict[str, Any]:
    """GET a JSON object within one overall deadline (not per socket operation) and a size bound."""
    deadline = time.monotonic() + timeout_s
    try:
        with requests.get(url, timeout=(timeout_s, timeout_s), stream=True, allow_redirects=False) as resp:
            if resp.status_code != 200:
                raise ProviderUnavailable(f"{url} answered {resp.status_code}")
            body = bytearray()
            for chunk in resp.iter_content(8192):
                body += chunk
                if len(body) > max_bytes:
                    raise ProviderUnavailable(f"{url} sent more than {max_bytes} bytes")
                if time.monotonic() > deadline:
                    raise ProviderUnavailable(f"{url} took longer than {timeout_s}s")
    except requests.RequestException as exc:
        raise ProviderUnavailable(f"{url}: {type(exc).__name__}") from None
    try:
        data = json.loads(bytes(body))
    except ValueError:
        raise ProviderUnavailable(f"{url} did not send JSON") from None
    if not isinstance(data, dict):
        raise ProviderUnavailable(f"{url} did not send a JSON object")
    return data


def map_roles(value: Any, role_map: Mapping[str, str]) -> frozenset[str]:
    """Our roles for a roles claim: a list of names or one space-separated string; unknown names count for none."""
    names: Iterable[Any] = value.split() if isinstance(value, str) else value if isinstance(value, list) else ()
    return frozenset(role_map[n] for n in names if isinstance(n, str) and n in role_map)


def claim(claims: Mapping[str, Any], name: str) -> Any:
    """A claim by its name, or by a dotted path into nested objects (e.g. `realm_access.roles`)."""
    if name in claims:
        return claims[name]
    found: Any = claims
    for part in name.split("."):
        if not isinstance(found, Mapping) or part not in found:
            return None
        found = found[part]
    return found


class OidcProvider:
    """One identity provider: its discovery document and keys (cached), and the checks of its tokens."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        roles_claim: str = "roles",
        role_map: Mapping[str, str] | None = None,
        timeout_s: float = 3.0,
        ttl_s: float = 3600.0,
        fetch: Callable[[str, float], dict[str, Any]] = fetch_json,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.roles_claim = roles_claim
        self.role_map = dict(role_map or {r: r for r in ROLES})
        self.timeout_s = timeout_s
        self.ttl_s = ttl_s
        self._fetch = fetch
        self._lock = threading.RLock()  # key() holds it while _load_keys() reads metadata()
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys: dict[str, dict[str, Any]] = {}
        self._keys_at = 0.0
        self._last_refetch = 0.0
        self._failed_at = -FAILURE_BACKOFF_S

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + DISCOVERY_PATH

    def _get(self, url: str) -> dict[str, Any]:
        if time.monotonic() - self._failed_at < FAILURE_BACKOFF_S:
            raise ProviderUnavailable("the identity provider failed moments ago; not asking again yet")
        try:
            return self._fetch(url, self.timeout_s)
        except ProviderUnavailable:
            self._failed_at = time.monotonic()
            raise

    def metadata(self) -> dict[str, Any]:
        """The discovery document; its `issuer` must be exactly ours and its `jwks_uri` https."""
        with self._lock:
            if self._metadata is not None and time.monotonic() - self._metadata_at < self.ttl_s:
                return self._metadata
            data = self._get(self.discovery_url)
            if data.get("issuer") != self.issuer:
                self._failed_at = time.monotonic()
                raise ProviderUnavailable(f"the discovery document names another issuer: {data.get('issuer')!r}")
            jwks_uri = data.get("jwks_uri")
            if not isinstance(jwks_uri, str) or not secure_enough(jwks_uri):
                self._failed_at = time.monotonic()
                raise ProviderUnavailable("the discovery document has no https jwks_uri")
            self._metadata, self._metadata_at = data, time.monotonic()
            return data

    def _load_keys(self) -> None:
        jwks = self._get(self.metadata()["jwks_uri"])
        keys = jwks.get("keys")
        if not isinstance(keys, list):
            self._failed_at = time.monotonic()
            raise ProviderUnavailable("the JWKS has no `keys` list")
        self._keys = {k["kid"]: k for k in keys if isinstance(k, dict) and isinstance(k.get("kid"), str)}
        self._keys_at = time.monotonic()

    def key(self, kid: str) -> dict[str, Any]:
        """The JWK with this id: from the cache, refetched when stale, or once a minute for an unknown kid."""
        self.metadata()
        with self._lock:
            now = time.monotonic()
            if not self._keys_at or now - self._keys_at >= self.ttl_s:
                self._load_keys()
            elif kid not in self._keys and now - self._last_refetch >= UNKNOWN_KID_RETRY_S:
                self._last_refetch = now
                self._load_keys()
            found = self._keys.get(kid)
        if found is None:
            raise Refused(f"unknown key id {kid[:40]!r}")
        return found

    def verify(self, token: str, audience: str | None = None) -> dict[str, Any]:
        """The claims of a valid token of this provider; Refused (or ProviderUnavailable) otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Refused(f"not a JWT ({type(exc).__name__})") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALGORITHMS:
            raise Refused(f"algorithm {str(alg)[:20]!r} is not one of {', '.join(ALGORITHMS)}")
        if not isinstance(kid, str) or not kid:
            raise Refused("no `kid` in the header")
        jwk = self.key(kid)
        try:
            key = jwt.PyJWK(jwk, algorithm=alg).key
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=audience or self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_S,
                options={"require": ["iss", "aud", "exp", "iat"]},
            )
        except (jwt.PyJWTError, TypeError, ValueError, KeyError) as exc:
            raise Refused(f"{type(exc).__name__}: {str(exc)[:120]}") from None
        if not isinstance(claims.get("iat"), int | float):
            raise Refused("`iat` is not a number")
        return claims

    def roles(self, claims: Mapping[str, Any]) -> frozenset[str]:
        return map_roles(claim(claims, self.roles_claim), self.role_map)

    def principal(self, claims: Mapping[str, Any]) -> Principal:
        subject = hashlib.sha256(f"{claims.get('iss')}\n{claims.get('sub')}".encode()).hexdigest()
        return Principal(self.roles(claims), "oidc:" + subject[:12], "oidc")


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("eyJ")
