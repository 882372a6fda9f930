"""The file set of one ruleset revision: the ruleset file and its siblings, read once, hashed as bytes.

A revision is the ruleset file (`x.yaml`) with its tests (`x.tests.yaml`) and FHIR mapping (`x.fhir.yaml`)
when they exist, and any reviewer sign-offs (`x.sig-<reviewer>.jws`). The revision's key is the sha256 of
the ruleset file alone, as `GET /v1/rulesets` shows it; sign-offs cover the sha256 of every file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from ..cds.mapping import MAPPING_SUFFIX
from ..ruleset.loader import TEST_FILE_SUFFIX

SIGNATURE_INFIX = ".sig-"
SIGNATURE_SUFFIX = ".jws"


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stem(path: Path) -> str:
    return path.name.removesuffix(".yaml").removesuffix(".yml")


@dataclass(frozen=True)
class FileSet:
    file_name: str
    source_text: str
    tests_text: str | None = None
    fhir_text: str | None = None
    signatures: tuple[str, ...] = field(default=())

    @property
    def sha256(self) -> str:
        return sha256_text(self.source_text)

    def digests(self) -> dict[str, str]:
        """What a sign-off covers: the sha256 of each file of the set (absent files are left out)."""
        out = {"ruleset": self.sha256}
        if self.tests_text is not None:
            out["tests"] = sha256_text(self.tests_text)
        if self.fhir_text is not None:
            out["fhir"] = sha256_text(self.fhir_text)
        return out


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None


def signature_paths(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{stem(path)}{SIGNATURE_INFIX}*{SIGNATURE_SUFFIX}"))


def read_fileset(path: str | Path) -> FileSet:
    """The ruleset file at `path` with its siblings. Raises OSError / UnicodeDecodeError if unreadable."""
    path = Path(path)
    raw = path.read_bytes()
    base = stem(path)
    return FileSet(
        file_name=path.name,
        source_text=raw.decode("utf-8"),
        tests_text=_read(path.with_name(base + TEST_FILE_SUFFIX)),
        fhir_text=_read(path.with_name(base + MAPPING_SUFFIX)),
        signatures=tuple(p.read_text(encoding="utf-8").strip() for p in signature_paths(path)),
    )
