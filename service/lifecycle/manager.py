"""The lifecycle as one object per process: publish, stage changes, sign-off policy, and following the store.

Every serving process (each gunicorn worker of each replica) follows the store: a background thread
checks the actions chain's head every LIFECYCLE_POLL_SECONDS (one indexed row read), and at once when
PostgreSQL notifies a new action (LISTEN/NOTIFY, notify.py; polling stays the fallback); when it moved, the
process re-runs the gate on each revision the store wants it to serve, in its own process, and swaps the
ones that pass into the registry (one dict assignment: atomic for requests). A revision that fails is not
served here; the last good one keeps serving, and the refusal is written to `ruleset_worker_status` so
/readyz and /v1/rulesets/<id>/status of any worker say which worker refused what and why.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ..config import Settings
from ..decisions.errors import ConfigurationError
from ..registry import Registry
from . import signing
from .files import FileSet, read_fileset
from .gate import GateResult, run_gate
from .notify import Listener
from .store import LifecycleError, Store, StoredRevision

log = logging.getLogger(__name__)
STARTUP = "startup (RULESETS_DIR)"


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(eq=False)
class Lifecycle:
    store: Store
    registry: Registry
    workdir: Path
    settings: Settings  # the application's (service/config.py): signing policy and poll interval
    refused: dict[str, tuple[str, str]] = field(default_factory=dict)  # ruleset id -> (sha, why), this process
    shadow: Any = None  # the ShadowRunner (shadow.py), set by open_lifecycle
    _generation: int = -1
    _thread_pid: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _sync_lock: threading.Lock = field(default_factory=threading.Lock)
    _stopped: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        try:
            self.trusted = signing.load_public_keys(self.settings.ruleset_reviewer_keys)
        except signing.SigningError as exc:
            raise ConfigurationError(str(exc)) from None

    # ---- publish ---------------------------------------------------------------------------------

    def publish(self, files: FileSet, actor: str) -> tuple[StoredRevision, GateResult, bool]:
        """Run the whole gate on a file set and store it (as a draft) with its report, even if it failed."""
        gate = run_gate(files, self.workdir)
        new = self.store.publish(files, gate, actor)
        revision = self.store.get(files.sha256)
        assert revision is not None
        return revision, gate, new

    def publish_folder(self) -> None:
        """At start: publish the RULESETS_DIR files the registry activated; the folder is the embedded default.

        A ruleset with no production revision in the store gets the folder's; so does one whose production
        revision was itself set from the folder (the folder changed). One an admin activated stays.
        """
        unsigned: dict[str, tuple[str, str]] = {}  # path -> (ruleset id, why)
        for path, ruleset_id in sorted(self.registry.paths.items()):
            active = self.registry.get(ruleset_id)
            if active is None:
                continue
            try:
                files = read_fileset(path)
            except (OSError, UnicodeError):
                continue
            if files.sha256 != active.ruleset.sha256:
                continue  # changed on disk since it was loaded; the next start picks it up
            stored = self.store.get(files.sha256)
            if stored is None:
                gate = run_gate(files, self.workdir)
                self.store.publish(files, gate, STARTUP, quiet_if_known=True)
                if not gate.ok:
                    continue
            elif set(files.signatures) - set(stored.files.signatures):  # signed since: add the new sign-offs
                report = stored.gate_report
                known = GateResult(stored.gate_ok, None, report.get("problems", []), report.get("verification", {}))
                self.store.publish(files, known, STARTUP, quiet_if_known=True)
            stored = self.store.get(files.sha256)
            why = self.signing_problem(stored.files) if stored is not None else "it is not in the store"
            if why:  # RULESET_SIGNING=required holds for the folder too: published, never served unsigned
                unsigned[path] = (ruleset_id, f"revision {files.sha256[:12]} from the folder is not served: {why}")
                continue
            current = self.store.production().get(ruleset_id)
            if current == files.sha256 or (current and self._set_by_admin(ruleset_id)):
                continue
            try:
                self.store.set_stage(ruleset_id, files.sha256, "production", STARTUP)
            except (LifecycleError, IntegrityError) as exc:  # another process did it first
                log.info("ruleset %s: folder revision not made production (%s)", ruleset_id, exc)

        # A ruleset that came from the folder and left it is no longer served (unless an admin activated it).
        # Not when a folder file failed to load: its id is unknown, and the store's last good one keeps serving.
        if not self.registry.failures:
            folder_ids = set(self.registry.paths.values())
            for ruleset_id, sha in self.store.production().items():
                if ruleset_id not in folder_ids and not self._set_by_admin(ruleset_id):
                    self.store.set_stage(ruleset_id, sha, "retired", STARTUP, action="stage")
        for path, (ruleset_id, why) in unsigned.items():
            log.error("ruleset %s: %s", ruleset_id, why)
            self.registry.withdraw(ruleset_id, path, why)  # sync() then serves the store's production, if signed

    def _set_by_admin(self, ruleset_id: str) -> bool:
        for action in reversed(self.store.actions(ruleset_id)):
            if action["action"] in ("activate", "rollback") and action["detail"].get("stage") == "production":
                return action["actor"] != STARTUP
        return False

    # ---- stages ----------------------------------------------------------------------------------

    def resolve(self, ruleset_id: str, ref: str) -> StoredRevision:
        revision = self.store.find(ruleset_id, ref)
        if revision is None:
            known = ", ".join(f"{r.version} {r.sha256[:12]}" for r in self.store.revisions(ruleset_id)) or "none"
            raise LifecycleError(f"ruleset `{ruleset_id}` has no published revision `{ref}` (published: {known})", 404)
        return revision

    def activate(self, ruleset_id: str, ref: str, actor: str, stage: str = "production") -> StoredRevision:
        revision = self.resolve(ruleset_id, ref)
        return self.store.set_stage(ruleset_id, revision.sha256, stage, actor, check=self.check_signoffs)

    def set_shadow(self, ruleset_id: str, ref: str | None, actor: str) -> str | None:
        """Let a testing revision shadow production (ref None: stop); returns the shadow's sha256."""
        sha = self.resolve(ruleset_id, ref).sha256 if ref else None
        self.store.set_shadow(ruleset_id, sha, actor)
        return sha

    def rollback(self, ruleset_id: str, actor: str) -> StoredRevision:
        return self.store.rollback(ruleset_id, actor, check=self.check_signoffs)

    def signoffs(self, files: FileSet) -> list[signing.Signoff]:
        return signing.check(files, self.trusted)

    def check_signoffs(self, revision: StoredRevision) -> None:
        """Refuse production for a file whose own `status` is not production, and (RULESET_SIGNING=required)
        without enough valid sign-offs by trusted keys."""
        declared = re.search(r"(?m)^status:\s*['\"]?(\w+)", revision.files.source_text)
        if declared and declared.group(1) != "production":
            raise LifecycleError(
                f"revision {revision.sha256[:12]} says `status: {declared.group(1)}`: only a file that says "
                "`status: production` can be made production (it can be made testing)",
                422,
            )
        why = self.signing_problem(revision.files)
        if why:
            raise LifecycleError(f"revision {revision.sha256[:12]} {why}", 422)

    def signing_problem(self, files: FileSet) -> str | None:
        """Why this file set may not serve as production under RULESET_SIGNING=required (None: it may).

        Asked wherever a revision can become production: activation and rollback, the folder at start,
        and each worker before it swaps a production revision in (so a stage set around the check, or a
        policy tightened since, still serves nothing unsigned).
        """
        if self.settings.ruleset_signing != "required":
            return None
        signoffs = self.signoffs(files)
        count = signing.valid_count(signoffs)
        if count >= self.settings.ruleset_signatures_required:
            return None
        problems = "; ".join(f"{s.reviewer}: {s.problem}" for s in signoffs if not s.valid) or "none signed"
        return (
            f"has {count} valid sign-off(s) by trusted reviewer keys; "
            f"RULESET_SIGNING=required needs {self.settings.ruleset_signatures_required} ({problems})"
        )

    # ---- following the store -----------------------------------------------------------------------

    def sync(self, report: bool = True) -> None:
        """Serve what the store says: production and testing revisions, each gated here before the swap.

        `report` (serving processes only) writes what this process serves or refused to the store.
        """
        with self._sync_lock:
            generation = self.store.generation()
            production = self.store.production()
            testing = self.store.in_stage("testing")
            me = worker_name()
            for ruleset_id, sha in production.items():
                current = self.registry.get(ruleset_id)
                if current is not None and current.ruleset.sha256 == sha:
                    self.refused.pop(ruleset_id, None)
                    if report:
                        self._report(me, ruleset_id, sha, None, None)
                    continue
                refused = self.refused.get(ruleset_id)
                if refused is None or refused[0] != sha:
                    why = self._install(sha, "production")
                    if why:
                        self.refused[ruleset_id] = (sha, why)
                    else:
                        self.refused.pop(ruleset_id, None)
                serving = self.registry.get(ruleset_id)
                refusal = self.refused.get(ruleset_id)
                if report:
                    self._report(
                        me,
                        ruleset_id,
                        serving.ruleset.sha256 if serving else None,
                        refusal[0] if refusal else None,
                        refusal[1] if refusal else None,
                    )
            wanted = {sha for shas in testing.values() for sha in shas}
            for sha in sorted(wanted - set(self.registry.testing)):
                why = self._install(sha, "testing")
                if why:
                    log.error("testing revision %s refused here: %s", sha[:12], why)
                    wanted.discard(sha)
            self.registry.drop_testing(wanted)
            shadows = self.store.shadows()
            self.registry.shadow = {
                rid: self.registry.testing[sha] for rid, sha in shadows.items() if sha in self.registry.testing
            }
            self._generation = generation

    def _install(self, sha: str, stage: str) -> str | None:
        revision = self.store.get(sha)
        if revision is None:
            return "the revision is not in the store"
        gate = run_gate(revision.files, self.workdir, expected_sha256=sha)
        if not gate.ok or gate.ruleset is None:
            why = "; ".join(gate.problems[:5])
            log.error("ruleset %s revision %s refused by this worker: %s", revision.ruleset_id, sha[:12], why)
            return why
        if gate.ruleset.id != revision.ruleset_id:
            return f"the stored text has ruleset id `{gate.ruleset.id}`, not `{revision.ruleset_id}`"
        unsigned = self.signing_problem(revision.files) if stage == "production" else None
        if unsigned:
            log.error("ruleset %s revision %s refused by this worker: %s", revision.ruleset_id, sha[:12], unsigned)
            return unsigned
        self.registry.install(gate.ruleset, stage)
        return None

    def _report(self, me: str, ruleset_id: str, serving: str | None, refused: str | None, why: str | None) -> None:
        try:
            self.store.report_worker(me, ruleset_id, serving, refused, why)
        except SQLAlchemyError as exc:
            log.warning("worker status not stored: %s", type(exc).__name__)

    def follow(self) -> None:
        """Start this process's follower thread (once per process; after a fork, in the child)."""
        if self.settings.lifecycle_poll_seconds <= 0:
            return
        with self._lock:
            if self._thread_pid == os.getpid():
                return
            self._thread_pid = os.getpid()
        ref = weakref.ref(self)
        interval = self.settings.lifecycle_poll_seconds
        thread = threading.Thread(target=_follow, args=(ref, interval), name="ruleset-follower", daemon=True)
        thread.start()

    def stop(self) -> None:
        """Stop following: the follower thread ends at its next wake-up without touching the store (an
        application being closed, e.g. in tests, must not have its database connections reopened)."""
        self._stopped.set()

    def after_fork(self) -> None:
        self._generation = -1
        self._sync_lock = threading.Lock()
        self._lock = threading.Lock()
        self.follow()

    # ---- reading -------------------------------------------------------------------------------------

    def readiness(self) -> dict[str, Any]:
        """For /readyz: each refusal by any worker (what and why), and this worker's own."""
        try:
            # Only refusals of what the store still asks for: a worker that refused a revision since replaced
            # (or a worker long gone) is history, kept in the status endpoint, not a readiness concern.
            wanted = set(self.store.production().values())
            refusals = [w for w in self.store.worker_status() if w["refused_sha256"] in wanted]
        except SQLAlchemyError:
            refusals = []
        return {
            "worker": worker_name(),
            "refusals": [
                {k: w[k] for k in ("worker", "ruleset_id", "serving_sha256", "refused_sha256", "reason", "checked_at")}
                for w in refusals
            ],
        }

    def document(self, ruleset: Any) -> dict[str, Any]:
        """For the ruleset document (page and `rulesets render`): the sign-offs of the revision shown,
        checked against the trusted keys."""
        return {
            "signoffs": [s.as_dict() for s in self.signoffs_of(ruleset)],
            "signing_mode": self.settings.ruleset_signing,
        }

    def signoffs_of(self, ruleset: Any) -> list[signing.Signoff]:
        """The sign-offs of a revision: those stored with it, or (not published yet) those beside its file."""
        try:
            stored = self.store.get(ruleset.sha256)
        except SQLAlchemyError:
            stored = None
        if stored is not None:
            return self.signoffs(stored.files)
        try:
            files = read_fileset(ruleset.path) if ruleset.path else None
        except (OSError, UnicodeError):
            files = None
        return self.signoffs(files) if files is not None and files.sha256 == ruleset.sha256 else []

    def status(self, ruleset_id: str) -> dict[str, Any]:
        revisions = self.store.revisions(ruleset_id)
        if not revisions and self.registry.get(ruleset_id) is None:
            raise LifecycleError(f"there is no ruleset `{ruleset_id}`", 404)
        production = self.store.production().get(ruleset_id)
        here = self.registry.get(ruleset_id)
        out = []
        for r in revisions:
            full = self.store.get(r.sha256)
            entry = r.summary()
            entry["signoffs"] = [s.as_dict() for s in self.signoffs(full.files)] if full else []
            out.append(entry)
        return {
            "id": ruleset_id,
            "production": production,
            "serving_here": {"worker": worker_name(), "sha256": here.ruleset.sha256 if here else None},
            "signing": {"mode": self.settings.ruleset_signing, "required": self.settings.ruleset_signatures_required},
            "revisions": out,
            "workers": self.store.worker_status(ruleset_id),
            "shadow": self.store.divergences(ruleset_id, limit=1000),
            "actions": self.store.actions(ruleset_id, limit=50),
        }


def _follow(ref: weakref.ref[Lifecycle], interval: float) -> None:
    """The follower loop: one cheap read per wake-up; a full sync only when the actions chain moved.

    It wakes every `interval` seconds, or at once when PostgreSQL NOTIFYs a new action (notify.py).
    """
    first = True
    lifecycle = ref()
    if lifecycle is None:
        return
    listener = Listener(lifecycle.store.engine)
    del lifecycle
    listener.start()
    try:
        while True:
            lifecycle = ref()
            if lifecycle is None or lifecycle._stopped.is_set():
                return
            try:
                if first or lifecycle.store.generation() != lifecycle._generation:
                    lifecycle.sync()
                first = False
            except Exception as exc:  # the database may be away for a while; keep serving what we have
                log.warning("ruleset follower: %s", type(exc).__name__)
            del lifecycle
            listener.wait(interval)
    finally:
        listener.close()
