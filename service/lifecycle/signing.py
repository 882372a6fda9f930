"""Reviewer sign-off: a detached JWS over the sha256 of each file of a revision, with who signed, as what, when.

The signature file sits next to the ruleset (`x.sig-<reviewer>.jws`) and travels with it on publish; it
never changes the ruleset file, so the revision key (the ruleset file's sha256) stays what reviewers saw.
Keys are Ed25519 (alg EdDSA) or P-256 (ES256), made with `cryptography`; PyJWT signs and verifies. The
key id is the SHA-256 of the public key (DER SubjectPublicKeyInfo), so a trusted-keys list needs no names.

With RULESET_SIGNING=required a production activation needs RULESET_SIGNATURES_REQUIRED valid sign-offs
by distinct keys listed in RULESET_REVIEWER_KEYS (PEM public key files or folders of them).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from .files import SIGNATURE_INFIX, SIGNATURE_SUFFIX, FileSet, stem

TYPE = "ruleset-signoff+jws"
PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey


class SigningError(Exception):
    """A key or signature that cannot be used; the message names the file and the reason."""


def key_id(public: PublicKey) -> str:
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:32]


def _alg(key: PrivateKey | PublicKey) -> str:
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "EdDSA"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1":
        return "ES256"
    raise SigningError("reviewer keys must be Ed25519 or EC P-256 (ES256)")


def generate_key(path: Path) -> Path:
    """Write a new Ed25519 private key (PEM, mode 0600) at `path` and its public key at `path`.pub."""
    private = ed25519.Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.touch(mode=0o600, exist_ok=False)
    path.write_bytes(pem)
    public_path = path.with_name(path.name + ".pub")
    public_path.write_bytes(
        private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return public_path


def load_private_key(path: Path) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SigningError(f"{path}: not a readable unencrypted PEM private key ({exc})") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        raise SigningError(f"{path}: reviewer keys must be Ed25519 or EC P-256")
    _alg(key)
    return key


def load_public_keys(setting: str) -> dict[str, PublicKey]:
    """RULESET_REVIEWER_KEYS: comma-separated PEM public key files or folders (*.pem, *.pub) -> kid -> key."""
    keys: dict[str, PublicKey] = {}
    for item in (s.strip() for s in setting.split(",") if s.strip()):
        path = Path(item)
        files = sorted([*path.glob("*.pem"), *path.glob("*.pub")]) if path.is_dir() else [path]
        for file in files:
            try:
                key = serialization.load_pem_public_key(file.read_bytes())
            except (OSError, ValueError) as exc:
                raise SigningError(f"RULESET_REVIEWER_KEYS: {file} is not a PEM public key ({exc})") from None
            if not isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):
                raise SigningError(f"RULESET_REVIEWER_KEYS: {file} is not an Ed25519 or P-256 key")
            keys[key_id(key)] = key
    return keys


def sign(
    files: FileSet,
    ruleset_id: str,
    version: str,
    key: PrivateKey,
    reviewer: str,
    role: str,
    date: dt.date | None = None,
) -> str:
    """The compact JWS of one reviewer's sign-off of exactly these files."""
    payload = {
        "ruleset": ruleset_id,
        "version": version,
        "files": files.digests(),
        "reviewer": reviewer,
        "role": role,
        "date": (date or dt.date.today()).isoformat(),
        "iat": int(dt.datetime.now(dt.UTC).timestamp()),
    }
    headers = {"kid": key_id(key.public_key()), "typ": TYPE}
    return jwt.encode(payload, key, algorithm=_alg(key), headers=headers)  # type: ignore[arg-type]


def signature_path(ruleset_path: Path, reviewer: str) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "-", reviewer.lower()).strip("-") or "reviewer"
    return ruleset_path.with_name(f"{stem(ruleset_path)}{SIGNATURE_INFIX}{slug}{SIGNATURE_SUFFIX}")


@dataclass(frozen=True)
class Signoff:
    valid: bool
    reviewer: str
    role: str
    date: str
    kid: str
    problem: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "reviewer": self.reviewer,
            "role": self.role,
            "date": self.date,
            "key_id": self.kid,
            **({"problem": self.problem} if self.problem else {}),
        }


def check(files: FileSet, trusted: dict[str, PublicKey]) -> list[Signoff]:
    """Every sign-off of a file set, each valid or not with the reason (untrusted key, bad signature, changed file)."""
    out = []
    for token in files.signatures:
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            out.append(Signoff(False, "?", "?", "?", "?", f"not a JWS: {exc}"))
            continue
        who = (str(claims.get("reviewer", "?")), str(claims.get("role", "?")), str(claims.get("date", "?")))
        kid = str(header.get("kid", "?"))
        key = trusted.get(kid)
        if key is None:
            problem = "signed with a key that is not in RULESET_REVIEWER_KEYS" if trusted else "no trusted keys set"
            out.append(Signoff(False, *who, kid, problem))
            continue
        try:
            jwt.decode(token, key, algorithms=[_alg(key)])  # type: ignore[arg-type]
        except jwt.PyJWTError as exc:
            out.append(Signoff(False, *who, kid, f"the signature does not verify: {exc}"))
            continue
        signed = claims.get("files") if isinstance(claims.get("files"), dict) else {}
        actual = files.digests()
        changed = sorted(n for n in set(signed) | set(actual) if signed.get(n) != actual.get(n))
        if changed:
            out.append(Signoff(False, *who, kid, f"changed after signing: {', '.join(changed)}"))
            continue
        out.append(Signoff(True, *who, kid))
    return out


def valid_count(signoffs: list[Signoff]) -> int:
    """Valid sign-offs by distinct keys (one reviewer signing twice counts once)."""
    return len({s.kid for s in signoffs if s.valid})
