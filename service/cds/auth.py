"""JWT verification of every CDS Hooks call (CDS Hooks 2.0.1 "Trusting CDS Clients").

Each EHR (issuer) is trusted explicitly: the JSON file named by CDS_HOOKS_ISSUERS lists its `iss` and its
public keys, inline (`jwks`) or as a URL (`jwks_url`). A token passes only if it is signed with ES384 or
RS384 by a key of that issuer's set (`kid` selects it), is addressed to the exact URL called (`aud`), is
current (`exp`, `iat`), lives at most an hour, and its `jti` was never seen before - in any worker process.
Why a token failed is logged (with its `iss` and `jti`, never the token) but never told to the caller.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from .store import ReplayCache
from .urls import secure_enough

log = logging.getLogger(__name__)

ALGORITHMS = ("ES384", "RS384")
REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "jti"]
LEEWAY_S = 60
MAX_LIFETIME_S = 3600  # CDS Hooks best practice: JWTs live "no more than an hour"; bounds the replay cache
JWKS_TTL_S = 3600
UNKNOWN_KID_RETRY_S = 60  # an unknown `kid` is looked for again at most once a minute
UNKNOWN_KID_REFETCHES = 2  # refetches for unknown kids per issuer and minute, whatever kids the tokens name
MAX_REMEMBERED_MISSES = 1024
JWKS_DEADLINE_S = 3.0  # the whole fetch, connection and body, not each socket operation
JWKS_MAX_BYTES = 512 * 1024

PublicKey = EllipticCurvePublicKey | RSAPublicKey
Fetch = Callable[[str], dict[str, Any]]


class ConfigError(ValueError):
    """The issuers file is unusable; the message says which entry and why."""


class AuthFailed(Exception):
    """A token was refused. The reason is for the log only; the caller gets a bare 401."""


@dataclass
class Issuer:
    iss: str
    jwks: dict[str, Any] | None = None
    jwks_url: str = ""
    tenants: tuple[str, ...] = ()


def load_issuers(path: str) -> list[Issuer]:
    """Read and check the trusted-issuers file: `[{"iss": ..., "jwks": {...} | "jwks_url": ..., "tenants"?: [...]}]`."""
    where = f"CDS_HOOKS_ISSUERS file {path}"
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read it ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, list):
        raise ConfigError(f"{where}: must be a JSON list of issuers")
    issuers: list[Issuer] = []
    for i, entry in enumerate(data):
        at = f"{where}, entry {i}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{at}: must be an object")
        unknown = set(entry) - {"iss", "jwks", "jwks_url", "tenants"}
        if unknown:
            raise ConfigError(f"{at}: unknown keys {sorted(unknown)} (allowed: iss, jwks, jwks_url, tenants)")
        iss = entry.get("iss")
        if not isinstance(iss, str) or not iss:
            raise ConfigError(f"{at}: `iss` must be the issuer's identifier (a non-empty string)")
        if any(other.iss == iss for other in issuers):
            raise ConfigError(f"{at}: issuer {iss} is listed twice")
        if ("jwks" in entry) == ("jwks_url" in entry):
            raise ConfigError(f"{at}: give exactly one of `jwks` (the key set) or `jwks_url` (where to fetch it)")
        tenants = entry.get("tenants", [])
        if not isinstance(tenants, list) or not all(isinstance(t, str) and t for t in tenants):
            raise ConfigError(f"{at}: `tenants` must be a list of tenant identifiers")
        issuer = Issuer(iss=iss, tenants=tuple(tenants))
        if "jwks" in entry:
            if not _public_keys(entry["jwks"], at):
                raise ConfigError(f"{at}: `jwks` holds no usable ES384 or RS384 public key")
            issuer.jwks = entry["jwks"]
        else:
            url = entry["jwks_url"]
            if not isinstance(url, str) or not secure_enough(url):
                raise ConfigError(f"{at}: `jwks_url` must be an https URL (http only on loopback)")
            issuer.jwks_url = url
        issuers.append(issuer)
    return issuers


def _public_keys(jwks: Any, where: str) -> dict[str, tuple[PublicKey, str]]:
    """kid -> (key, alg) for the usable signature keys of a JWK Set; anything else is skipped with a log line."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise ConfigError(f"{where}: a JWK Set is an object with a `keys` list")
    keys: dict[str, tuple[PublicKey, str]] = {}
    for jwk in jwks["keys"]:
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str) or not jwk["kid"]:
            log.warning("%s: skipping a JWK without a `kid`", where)
            continue
        kid = jwk["kid"]
        if "d" in jwk or jwk.get("kty") == "oct":
            log.warning("%s: skipping JWK %s: private or symmetric key material does not belong here", where, kid)
            continue
        if jwk.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK(jwk).key
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError) as exc:
            log.warning("%s: skipping JWK %s: %s", where, kid, exc)
            continue
        alg = _algorithm_for(key)
        if alg is None or jwk.get("alg", alg) != alg:
            log.warning("%s: skipping JWK %s: only P-384 EC (ES384) and RSA >= 2048 (RS384) keys are used", where, kid)
            continue
        keys[kid] = (key, alg)
    return keys


def _algorithm_for(key: Any) -> str | None:
    if isinstance(key, EllipticCurvePublicKey) and key.curve.name == "secp384r1":
        return "ES384"
    if isinstance(key, RSAPublicKey) and key.key_size >= 2048:
        return "RS384"
    return None


def fetch_jwks(url: str, timeout: float = JWKS_DEADLINE_S) -> dict[str, Any]:
    """GET a JWK Set within one overall deadline and a size limit; redirects are not followed.

    Socket timeouts bound each operation only, so a host that drips its headers or body a byte at a time
    would hold the worker until gunicorn kills it. A watchdog shuts the socket at the deadline instead,
    which ends any read in progress: the whole fetch, connection included, takes at most about `timeout`.
    """
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=timeout)
    else:
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    expired = threading.Event()

    def abort() -> None:
        expired.set()
        if conn.sock is not None:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)

    watchdog = threading.Timer(timeout, abort)
    watchdog.daemon = True
    watchdog.start()
    try:
        conn.request("GET", target, headers={"Accept": "application/json, application/jwk-set+json"})
        resp = conn.getresponse()
        if resp.status != 200:
            raise ValueError(f"the JWK Set URL answered {resp.status}")
        body = resp.read(JWKS_MAX_BYTES + 1)
    except OSError:
        if expired.is_set():
            raise TimeoutError(f"JWK Set not received within {timeout:g} s") from None
        raise
    finally:
        watchdog.cancel()
        conn.close()
    if expired.is_set():
        raise TimeoutError(f"JWK Set not received within {timeout:g} s")
    if len(body) > JWKS_MAX_BYTES:
        raise ValueError("JWK Set larger than 512 KiB")
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("a JWK Set is a JSON object")
    return data


@dataclass
class KeySet:
    """One issuer's keys: inline, or fetched and cached, refetched on an unknown `kid` (key rotation).

    Refetches are bounded per issuer, not only per `kid`: tokens that each name a fresh random `kid` must
    not turn every request into a fetch (at most UNKNOWN_KID_REFETCHES a minute, and each `kid` once a
    minute), and a key host that fails or stalls is not tried again for a minute.
    """

    issuer: Issuer
    fetch: Fetch
    _keys: dict[str, tuple[PublicKey, str]] = field(default_factory=dict)
    _fetched_at: float | None = None
    _failed_at: float | None = None
    _misses: dict[str, float] = field(default_factory=dict)
    _refetches: deque[float] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.issuer.jwks is not None:
            self._keys = _public_keys(self.issuer.jwks, f"issuer {self.issuer.iss}")

    def key(self, kid: str) -> tuple[PublicKey, str] | None:
        if not self.issuer.jwks_url:
            return self._keys.get(kid)
        with self._lock:
            now = time.monotonic()
            resting = self._failed_at is not None and now - self._failed_at < UNKNOWN_KID_RETRY_S
            stale = self._fetched_at is None or now - self._fetched_at > JWKS_TTL_S
            if stale and not resting:
                self._refresh(now)
            elif kid not in self._keys and not resting and self._may_refetch_for(kid, now):
                self._refetches.append(now)
                self._refresh(now)
            if kid not in self._keys:
                if len(self._misses) >= MAX_REMEMBERED_MISSES:
                    self._misses.clear()
                self._misses[kid] = now
            return self._keys.get(kid)

    def _may_refetch_for(self, kid: str, now: float) -> bool:
        if now - self._misses.get(kid, -UNKNOWN_KID_RETRY_S) < UNKNOWN_KID_RETRY_S:
            return False
        while self._refetches and now - self._refetches[0] >= UNKNOWN_KID_RETRY_S:
            self._refetches.popleft()
        return len(self._refetches) < UNKNOWN_KID_REFETCHES

    def _refresh(self, now: float) -> None:
        try:
            keys = _public_keys(self.fetch(self.issuer.jwks_url), f"issuer {self.issuer.iss} JWKS")
        except (http.client.HTTPException, ValueError, ConfigError, OSError) as exc:
            # Keep serving the last good keys; the host is left alone for a minute.
            self._failed_at = time.monotonic()
            log.warning("issuer %s: cannot fetch its JWK Set: %s", self.issuer.iss, type(exc).__name__)
            return
        self._keys = keys
        self._fetched_at = now
        self._failed_at = None
        self._misses.clear()


@dataclass(frozen=True)
class Caller:
    """What the service knows about a verified caller (logged; never the token)."""

    iss: str
    jti: str
    tenant: str = ""


class Verifier:
    def __init__(self, issuers: list[Issuer], replay: ReplayCache, fetch: Fetch = fetch_jwks) -> None:
        self.keysets = {i.iss: KeySet(i, fetch) for i in issuers}
        self.replay = replay

    def verify(self, authorization: str | None, audience: str) -> Caller:
        """Check an `Authorization` header for a call to `audience`; raises AuthFailed."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthFailed("no bearer token")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise AuthFailed(f"not a JWT ({type(exc).__name__})") from None
        alg, kid, typ = header.get("alg"), header.get("kid"), header.get("typ")
        if alg not in ALGORITHMS:
            raise AuthFailed(f"algorithm {alg!r} is not accepted (only {', '.join(ALGORITHMS)})")
        if not isinstance(typ, str) or typ.upper() != "JWT":
            raise AuthFailed("header `typ` must be JWT")
        if not isinstance(kid, str) or not kid:
            raise AuthFailed("header `kid` is required")
        iss = unverified.get("iss")
        keyset = self.keysets.get(iss) if isinstance(iss, str) else None
        if keyset is None:
            raise AuthFailed(f"issuer {iss!r} is not trusted")
        found = keyset.key(kid)
        if found is None:
            raise AuthFailed(f"issuer {iss} has no usable key {kid!r}")
        key, key_alg = found
        if key_alg != alg:
            raise AuthFailed(f"key {kid!r} is for {key_alg}, the token says {alg}")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=audience,
                issuer=iss,
                leeway=LEEWAY_S,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError as exc:
            raise AuthFailed(f"issuer {iss}: {type(exc).__name__}: {exc}") from None
        jti, exp, iat = claims["jti"], claims["exp"], claims["iat"]
        if not isinstance(jti, str) or not jti:
            raise AuthFailed(f"issuer {iss}: `jti` must be a non-empty string")
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (exp, iat)):
            raise AuthFailed(f"issuer {iss}: `exp` and `iat` must be NumericDate numbers (RFC 7519)")
        if exp - time.time() > MAX_LIFETIME_S + LEEWAY_S or exp - iat > MAX_LIFETIME_S:
            raise AuthFailed(f"issuer {iss}: token lifetime exceeds {MAX_LIFETIME_S} s")
        tenant = claims.get("tenant", "")
        if keyset.issuer.tenants and tenant not in keyset.issuer.tenants:
            raise AuthFailed(f"issuer {iss}: tenant is not allowed")
        if not self.replay.first_use(iss, jti, exp + LEEWAY_S):
            raise AuthFailed(f"issuer {iss}: jti {jti} was already used")
        return Caller(iss=iss, jti=jti, tenant=tenant if isinstance(tenant, str) else "")
