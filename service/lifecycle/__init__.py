"""The ruleset lifecycle: revisions in the shared store, stages, sign-off, diff and impact (issue 14).

`open_lifecycle` is what create_app calls after the decision log is open: the folder's files are
published, production revisions are taken from the store, and each serving process follows the store.
Nothing here imports Flask: the HTTP layer (service/http/admin/) and the CLI (service/lifecycle_cli.py) translate.
"""

from __future__ import annotations

import weakref
from pathlib import Path

from ..config import Settings
from ..decisions import DecisionLog
from ..registry import Registry
from .files import FileSet, read_fileset
from .manager import Lifecycle
from .store import STAGES, LifecycleError, Store, StoredRevision

__all__ = [
    "STAGES",
    "FileSet",
    "Lifecycle",
    "LifecycleError",
    "Store",
    "StoredRevision",
    "follow_in_worker",
    "open_lifecycle",
    "read_fileset",
]

_instances: weakref.WeakSet[Lifecycle] = weakref.WeakSet()  # this process's (one per application)


def open_lifecycle(
    settings: Settings, instance_path: str | Path, registry: Registry, decision_log: DecisionLog
) -> Lifecycle:
    """Publish the folder, serve the store's production revisions; the follower starts in each worker."""
    workdir = Path(instance_path) / "rulesets"
    store = Store(decision_log.engine, decision_log.writer)
    lifecycle = Lifecycle(store, registry, workdir, settings)
    try:
        lifecycle.publish_folder()
        lifecycle.sync(report=False)  # the serving processes report, once they follow
    finally:
        decision_log.close()  # no connection outlives start-up: gunicorn --preload forks the workers after this
    from .shadow import ShadowRunner  # prometheus_client: not before gunicorn.conf.py set its metrics directory

    lifecycle.shadow = ShadowRunner(store, registry)
    registry.shadow_sink = lifecycle.shadow.submit
    _instances.add(lifecycle)
    return lifecycle


def follow_in_worker() -> None:
    """gunicorn's post_fork hook (gunicorn.conf.py): each worker, forked after create_app, follows the store.

    Only serving processes follow: CLI commands and test applications never start a polling thread.
    """
    for lifecycle in list(_instances):
        lifecycle.after_fork()
