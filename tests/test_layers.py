"""The house has no back-arrows: every import inside ``core`` points down the pipeline, and
``core`` never imports Streamlit or the dashboard.

The layers, lowest first, follow the data path of the seed's method: behaviour logs (store) ->
item features (encoder) -> per-user trajectories -> interest model / detectors -> results ->
explanations and re-recommendation; the CLI on top. A module may import its own layer or any
layer below it, never one above.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

LAYERS = [
    # foundations: errors, the memory limit, who owns which event, derived-file helpers
    {"core.errors", "core.limits", "core.user_events", "core.derived_files", "core.spreadsheet",
     "core.composition", "core.metrics", "core.user_split", "core.synthetic", "core.sessions"},
    {"core.store"},  # behaviour logs: the only SQL
    {"core.ingest"},  # sources of logs, written through the store
    {"core.encoder", "core.embeddings", "core.finetune", "core.co_consumption"},  # item features
    {"core.trajectory"},  # per-user trajectories f_1 … f_t
    {"core.detectors"},  # interest model and detectors, their calibration
    {"core.explain", "core.recommend", "core.projection", "core.headline"},  # what changed, lists, the map, words
    {"core.artefacts"},  # every derived file of the stages above
    {"core.results"},  # one way to read detection results
    {"core.benchmark", "core.runner"},  # ground truth, engines
    {"core.commands", "core.cli", "core.__main__", "core"},  # the command line
]  # fmt: skip


def _unit(module: str) -> str:
    """The layer unit of a module: its package under core, or the module itself."""
    parts = module.split(".")
    packages = {"store", "ingest", "detectors", "artefacts", "results", "benchmark", "commands", "runner"}
    return ".".join(parts[:2]) if len(parts) > 2 or (len(parts) == 2 and parts[1] in packages) else module


def _layer(module: str) -> int:
    unit = _unit(module)
    for i, layer in enumerate(LAYERS):
        if unit in layer:
            return i
    raise AssertionError(f"{module} belongs to no layer of tests/test_layers.py: place it")


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "core":
                found += [f"core.{a.name}" for a in node.names]
            else:
                found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names]
    return found


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


SOURCES = sorted((ROOT / "core").rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_core_imports_point_down_the_pipeline(path):
    me = _module(path)
    mine = _layer(me)
    # ``import core`` alone names the package's folder (Ray ships it to workers), not a layer
    up = [m for m in _imports(path) if m.startswith("core.") and _layer(m) > mine]
    assert not up, f"{me} (layer {mine}) imports from a layer above: {up}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_core_never_imports_streamlit_or_the_dashboard(path):
    bad = [m for m in _imports(path) if m.split(".")[0] in ("streamlit", "dashboard", "pages")]
    assert not bad, f"{_module(path)} imports {bad}"


def test_the_layers_catch_a_back_arrow():
    # the check itself can fail: a detector importing the results API is a back-arrow
    assert _layer("core.detectors.best_split") < _layer("core.results.base")
    assert _layer("core.store.queries") < _layer("core.encoder") < _layer("core.trajectory")


def test_sql_only_in_the_store():
    # SQL text and execute( calls live in core/store/ only
    offenders = []
    for path in sorted((ROOT / "core").rglob("*.py")) + sorted((ROOT / "dashboard").rglob("*.py")):
        if "store" in path.relative_to(ROOT).parts:
            continue
        text = path.read_text(encoding="utf-8")
        if ".execute(" in text or "SELECT " in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, offenders
