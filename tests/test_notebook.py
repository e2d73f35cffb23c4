"""plot_demo.ipynb runs top to bottom (creating its demo outputs) and is committed without outputs."""

from __future__ import annotations

import os

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import ROOT

NOTEBOOK = ROOT / "plot_demo.ipynb"


def test_notebook_is_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    assert not any("def plot" in c.source or "plt.scatter" in c.source for c in code), "plotting belongs in the package"


@pytest.mark.slow
def test_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    monkeypatch.setenv("TD_DEMO_DIR", str(tmp_path / "demo"))
    monkeypatch.setenv("TD_DEMO_N_TRAIN", "600")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel draws inline, as for a user
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2, "the data map and the delta map are drawn"
    text = "".join(o.get("text", "") for o in outputs)
    assert "planted label flips" in text and (tmp_path / "demo" / "label_issues" / "review.html").exists()
    assert os.environ["TD_DEMO_DIR"] == str(tmp_path / "demo")
