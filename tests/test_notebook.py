"""plot_demo.ipynb runs top to bottom (creating its demo outputs) and is committed executed."""

from __future__ import annotations

import json
import re

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import ROOT

NOTEBOOK = ROOT / "plot_demo.ipynb"


def test_committed_notebook_shows_real_outputs():
    """Committed executed (GitHub shows the story), top to bottom, without errors or this machine's paths."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs for c in code), "run `make demo && make notebook` and commit the result"
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2
    text = json.dumps([o for o in outputs if "image/png" not in o.get("data", {})])
    assert "/tmp/" not in text and "/work/" not in text and "/home/" not in text
    assert not any("def plot" in c.source or "plt.scatter" in c.source for c in code), "plotting belongs in the package"


@pytest.mark.slow
def test_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    """The notebook makes the demo in TD_DEMO_DIR (600 examples) and its outputs describe what it made."""
    demo_dir = tmp_path / "demo"
    monkeypatch.setenv("TD_DEMO_DIR", str(demo_dir))
    monkeypatch.setenv("TD_DEMO_N_TRAIN", "600")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel draws inline, as for a user
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3, "the data map, the delta map and the maps before/after fixing are drawn"
    # what it wrote: both runs recorded 5 epochs of the 600 generated examples, then every later stage ran
    strong = demo_dir / "dy_log" / "demo" / "tiny-bert-strong"
    for run in (strong, strong.with_name("tiny-bert-weak")):
        assert len((run / "training_dynamics" / "dynamics_epoch_4.jsonl").read_text().splitlines()) == 600
    assert (strong / "three_regions_data_indices.json").exists() and list((demo_dir / "plots").glob("*.png"))
    assert (demo_dir / "label_issues" / "review.html").exists()
    # what it printed is computed from those files
    text = "".join(o.get("text", "") for o in outputs)
    assert "(600, 5, 2) examples x epochs x classes; labels: ['negative', 'positive']" in text
    truth = [json.loads(line) for line in open(demo_dir / "data" / "train_truth.jsonl")]
    n_flipped = sum(r["kind"] == "flipped" for r in truth)
    assert re.search(rf"\d+% of the top {n_flipped} ranked examples are planted label flips", text), text
    # inspect, fix (apply), retrain: the corrected file, the retrained run and the gain computed from them
    fixed = [json.loads(line) for line in open(demo_dir / "data" / "train_corrected.jsonl")]
    assert len(fixed) == 600 and sum(r["review_action"] == "relabel" for r in fixed) > 0
    right = re.search(r"training labels right: ([\d.]+)% before, ([\d.]+)% after", text)
    assert right and float(right[2]) > float(right[1]), text
    retrained = demo_dir / "outputs" / "tiny-bert-strong-corrected" / "eval_results.json"
    ev = [json.loads((demo_dir / "outputs" / m / "eval_results.json").read_text())["eval_loss"]
          for m in ("tiny-bert-strong", "tiny-bert-strong-corrected")]
    assert retrained.exists() and f"validation loss {ev[0]:.3f} -> {ev[1]:.3f}" in text
    assert len((strong.with_name("tiny-bert-strong-corrected") / "training_dynamics" / "dynamics_epoch_4.jsonl")
               .read_text().splitlines()) == 600
    # the generative part: a tiny GPT-2 recorded on prompt/response pairs, its map and its suspicious responses
    assert (demo_dir / "generative" / "response_issues" / "review.html").exists()
    assert "generative" in text and re.search(r"\d+% of the \d+ lowest-confidence responses are planted bad ones", text), text
