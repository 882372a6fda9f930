"""The activation gate, run on publish and again in every worker before it swaps a revision in.

Strict load of the ruleset with its tests, the two evaluators' cross-check, the invariant proofs, the
tests with coverage (service/verify), and the FHIR mapping checked against the ruleset. The same function
runs in the publishing process and in each serving process (defence in depth): a worker never trusts the
stored report, only the text, and the text must still hash to the revision's key.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cds.mapping import MAPPING_SUFFIX, load_mapping, mapping_path
from ..registry import failure_reasons, verified
from ..ruleset import Ruleset, RulesetError, load_file
from ..ruleset.loader import TEST_FILE_SUFFIX
from .files import FileSet, stem


@dataclass
class GateResult:
    ok: bool
    ruleset: Ruleset | None
    problems: list[str] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "problems": self.problems, "verification": self.report}


def materialise(files: FileSet, workdir: Path) -> Path:
    """Write a file set under `workdir/<sha256>/` and return the ruleset file's path.

    Loaded from real files, a stored revision behaves like a folder one: its tests file is found by the
    decision log (replay needs it) and its FHIR mapping by CDS Hooks. Files are written to a temporary name
    and renamed, so two workers materialising the same revision never see a half-written file.
    """
    folder = workdir / files.sha256
    folder.mkdir(parents=True, exist_ok=True)
    base = stem(Path(files.file_name))
    wanted = {Path(files.file_name).name: files.source_text}
    if files.tests_text is not None:
        wanted[base + TEST_FILE_SUFFIX] = files.tests_text
    if files.fhir_text is not None:
        wanted[base + MAPPING_SUFFIX] = files.fhir_text
    for name, text in wanted.items():
        target = folder / name
        if target.is_file() and target.read_text(encoding="utf-8") == text:
            continue
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".part-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, target)
    return folder / Path(files.file_name).name


def run_gate(files: FileSet, workdir: Path, expected_sha256: str | None = None) -> GateResult:
    """The whole gate on a file set (materialised under `workdir`); never raises for a bad set, it reports it."""
    if expected_sha256 is not None and files.sha256 != expected_sha256:
        return GateResult(
            False,
            None,
            [f"the stored ruleset text hashes to {files.sha256[:12]}, not to its key {expected_sha256[:12]}: altered"],
        )
    try:
        path = materialise(files, workdir)
        ruleset = load_file(path)
    except RulesetError as exc:
        return GateResult(False, None, [f"does not load: {p}" for p in exc.problems] or [str(exc)])
    except (OSError, UnicodeError) as exc:
        return GateResult(False, None, [f"cannot be written for loading: {exc}"])
    report = verified(ruleset)
    problems = [f"verification failed: {r}" for r in failure_reasons(report)] if not report.ok else []
    mapping = mapping_path(path)
    if mapping.exists():
        try:
            load_mapping(mapping, ruleset)
        except RulesetError as exc:
            problems += [f"FHIR mapping: {p}" for p in exc.problems]
    return GateResult(not problems, ruleset, problems, report.as_dict())
