"""The shape of the code, checked on its import graph (grimp reads the sources; nothing is imported).

Packages depend on each other in one direction only, so each can be read, tested and changed from the
bottom up: ruleset <- engine <- verify <- registry <- decisions, cds <- http. The language and the engine
never import Flask, so they run the same in the CLI, the verification, the benchmarks and the service.
"""

from __future__ import annotations

import graphlib

import grimp
import pytest

PACKAGE = "service"
NO_FLASK = ("service.ruleset", "service.engine")
# (lower, upper): the language under the engine, and nothing but the app factory above HTTP.
LAYERS = (
    ("service.ruleset", "service.engine"),
    ("service.engine", "service.verify"),
    ("service.engine", "service.http"),
    ("service.ruleset", "service.http"),
    ("service.decisions", "service.http"),
    ("service.cds", "service.http"),
)


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    # Imports under `if TYPE_CHECKING:` only name types for annotations and never run.
    return grimp.build_graph(PACKAGE, include_external_packages=True, exclude_type_checking_imports=True)


def _unit(module: str, packages: set[str]) -> str:
    """The package a module belongs to; a module directly in `service` is a unit of its own."""
    parts = module.split(".")
    while ".".join(parts) not in packages:
        parts.pop()
    owner = ".".join(parts)
    return module if owner == PACKAGE and module not in packages else owner


def _package_edges(graph: grimp.ImportGraph) -> dict[str, set[str]]:
    modules = {m for m in graph.modules if m == PACKAGE or m.startswith(PACKAGE + ".")}
    packages = {m for m in modules if graph.find_children(m)} | {PACKAGE}
    edges: dict[str, set[str]] = {}
    for module in modules:
        for imported in graph.find_modules_directly_imported_by(module):
            if imported in modules and _unit(module, packages) != _unit(imported, packages):
                edges.setdefault(_unit(module, packages), set()).add(_unit(imported, packages))
    return edges


def test_no_import_cycle_between_packages(graph: grimp.ImportGraph) -> None:
    edges = _package_edges(graph)
    assert "service.http.api" in edges  # the graph was read: the subpackages of http are units of their own
    try:
        order = list(graphlib.TopologicalSorter(edges).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle between packages: {' -> '.join(exc.args[1])}")
    assert len(order) > 10


@pytest.mark.parametrize(("lower", "upper"), LAYERS)
def test_a_lower_layer_never_reaches_an_upper_one(graph: grimp.ImportGraph, lower: str, upper: str) -> None:
    chain = graph.find_shortest_chain(importer=lower, imported=upper, as_packages=True)
    assert chain is None, f"{lower} reaches {upper}: {' -> '.join(chain or ())}"


@pytest.mark.parametrize("package", NO_FLASK)
def test_language_and_engine_do_not_import_flask(graph: grimp.ImportGraph, package: str) -> None:
    for web in ("flask", "werkzeug"):
        chain = graph.find_shortest_chain(importer=package, imported=web, as_packages=True)
        assert chain is None, f"{package} reaches {web}: {' -> '.join(chain or ())}"
