"""The package's structure is tested like behaviour: layers import downward only, kinds are plugins."""

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "training_dynamics"
ROOT = PACKAGE.parent


def test_import_contracts_hold():
    """`lint-imports` (import-linter, contracts in pyproject.toml): cli > workflows > kinds > review > decisions >
    analysis > core; no shared layer imports a kind; no kind imports another."""
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    out = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


def _module_imports() -> dict[str, set[str]]:
    """Every import between the package's modules, including those inside functions."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for target in [node.module] + [f"{node.module}.{a.name}" for a in node.names]:
                    if target in modules and target != name:
                        edges[name].add(target)
            elif isinstance(node, ast.Import):
                edges[name].update(a.name for a in node.names if a.name in modules and a.name != name)
    return edges


def test_no_import_cycle_between_modules():
    """No circle in the module graph (a package's __init__ re-exporting its own modules aside)."""
    edges = _module_imports()
    state: dict[str, int] = {}

    def visit(m, stack):
        state[m] = 1
        for t in edges[m]:
            if m.startswith(t + ".") or t.startswith(m + "."):  # a package and its own modules
                continue
            if state.get(t) == 1:
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(t):] + [t]))
            if state.get(t) is None:
                visit(t, stack + [t])
        state[m] = 2

    for m in edges:
        if m not in state:
            visit(m, [m])


def test_no_relative_or_flat_imports_left():
    """Every internal import names its layer (``training_dynamics.core.…``), so a reader sees where it comes from."""
    flat = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                flat.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not flat, flat


SHARED_LAYERS = ("core", "analysis", "decisions", "review", "web")
#: a condition that asks which kind a run is, tests a capability flag or sniffs a kind's own column
KIND_TEST = re.compile(r"\b(if|elif)\b.*(kind\.name|\.kind ==|kind_name\(|ranks_words|joins_runs|writes_labels|"
                       r"scores_with_model|corrections_name_labels|metrics_module|\.generative\b|GENERATIVE|word_index|"
                       r"label_index|conversational|separator|max_turns|\"(classification|generative|token_classification|"
                       r"multi_label)\")")


def test_no_shared_layer_branches_on_a_kind():
    """Core, analysis, decisions, review and web never ask which kind a run is: they call the kind (or the data,
    or the epoch-file layout) they are given. Counted the way docs/design.md states it."""
    hits = []
    for layer in SHARED_LAYERS:
        for path in (PACKAGE / layer).rglob("*.py"):
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if KIND_TEST.search(line) and "dtype.kind" not in line:
                    hits.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not hits, "\n".join(hits)


def test_the_previous_releases_flat_import_paths_still_import_with_a_warning():
    """``from training_dynamics.trl_sft import DynamicsSFTTrainer`` (the old README) and the other moved modules
    import as the module that holds their names now, with a DeprecationWarning naming it (docs/changes.md)."""
    import importlib
    import warnings

    from training_dynamics._moved import MOVED

    for old, new in MOVED.items():
        if old == "trl_sft" and importlib.util.find_spec("trl") is None:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            module = importlib.import_module(f"training_dynamics.{old}")
        assert module is importlib.import_module(f"training_dynamics.{new}"), old
        assert module.__name__ == f"training_dynamics.{new}"
    proc = subprocess.run([sys.executable, "-W", "always::DeprecationWarning", "-c",
                           "from training_dynamics.record import DynamicsTrainer; print(DynamicsTrainer.__module__)"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.stdout.strip() == "training_dynamics.core.recorder"
    assert ("DeprecationWarning: training_dynamics.record has moved to training_dynamics.core.recorder; import it "
            "from there (docs/changes.md)") in proc.stderr
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("training_dynamics.no_such_module")
