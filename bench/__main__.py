"""Run the benchmarks: every module of this package that defines `run()`, or only those named.

    python -m bench            # all
    python -m bench http_api   # one

A new benchmark is a module with a `run() -> object` function that prints its own report (and, by the
project's convention, a ratio against a baseline measured in the same run).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback
from collections.abc import Callable
from types import ModuleType

import bench


def benchmarks() -> dict[str, Callable[[], object]]:
    """Module name -> its run(), for every module of the package that has one (helpers have none)."""
    found: dict[str, Callable[[], object]] = {}
    for info in sorted(pkgutil.iter_modules(bench.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module: ModuleType = importlib.import_module(f"bench.{info.name}")
        run = getattr(module, "run", None)
        if callable(run):
            found[info.name] = run
    return found


def main(argv: list[str]) -> int:
    available = benchmarks()
    unknown = [name for name in argv if name not in available]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(available)}", file=sys.stderr)
        return 2
    failed = []
    for name, run in available.items():
        if argv and name not in argv:
            continue
        print(f"== bench.{name}", flush=True)
        started = time.perf_counter()
        try:
            run()
        except Exception:
            traceback.print_exc()
            failed.append(name)
        print(f"== bench.{name}: {time.perf_counter() - started:.1f} s\n", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
