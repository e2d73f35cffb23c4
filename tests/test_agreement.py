"""Which source to believe (training_dynamics/agreement.py): overlap and rank correlation of the sources'
rankings, by hand, and through find-issues with a model beside recorded dynamics."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from training_dynamics.decisions import agreement


def _table(guids, score, flagged):
    return pd.DataFrame({"guid": guids, "score": score, "is_label_issue": flagged})


def test_spearman_matches_scipy_with_ties():
    scipy = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 5, 200).astype(float), rng.normal(size=200)
    assert agreement.spearman(a, b) == pytest.approx(scipy.spearmanr(a, b).statistic, abs=1e-12)
    assert np.isnan(agreement.spearman(np.ones(5), np.arange(5.0)))


def test_compare_by_hand_joins_by_guid():
    a = _table([1, 2, 3, 4], [0.9, 0.8, 0.1, 0.2], [True, True, False, False])
    b = _table([4, 3, 2, 1], [0.95, 0.1, 0.8, 0.9], [True, False, True, False])  # rows in another order
    got = agreement.compare({"dynamics": a, "model": b}, used="dynamics")
    assert got["used"] == "dynamics" and got["flagged"] == {"dynamics": 2, "model": 2}
    pair = got["pairs"][0]
    assert (pair["both"], pair["jaccard"], pair["examples"]) == (1, round(1 / 3, 4), 4)  # guid 2 in both; 1, 2, 4 in either
    assert pair["spearman"] == pytest.approx(0.4)  # ranks of guids 1..4: 4,3,1,2 and 3,2,1,4: 1 - 6*6/(4*15)
    line = agreement.describe(got)
    assert line == ("sources: dynamics flags 2, model flags 2; dynamics vs model: 1 flagged by both (Jaccard 0.33), "
                    "rank correlation (Spearman) 0.40; the decision used dynamics")


@pytest.mark.slow
def test_find_issues_compares_the_model_with_the_dynamics(recorded_run, demo_data, tmp_path):
    pytest.importorskip("cleanlab")
    from conftest import run_cli

    model = recorded_run.parents[2] / "model_out"
    out = tmp_path / "o"
    proc = run_cli("find_label_issues.py", "--source", "dynamics", "--run_dir", recorded_run, "--model_name_or_path",
                   model, "--output_dir", out, "--disable_tqdm")
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith("sources: dynamics flags ") and "the decision used dynamics" in lines[1]
    settings = json.loads((out / "label_issues_settings.json").read_text())
    ag = settings["agreement"]
    assert ag["used"] == "dynamics" and set(ag["flagged"]) == {"dynamics", "model"}
    pair = ag["pairs"][0]
    assert pair["examples"] == 150 and -1 <= pair["spearman"] <= 1
    # the model's ranking recomputed by hand: its loss; the Spearman correlation with the dynamics' score
    model_table = pd.read_json(run_cli("find_label_issues.py", "--source", "model", "--model_name_or_path", model,
                                       "--train_file", demo_data["train"], "--output_dir", tmp_path / "m",
                                       "--disable_tqdm") and tmp_path / "m" / "label_issues.jsonl", lines=True)
    dyn_table = pd.read_json(out / "label_issues.jsonl", lines=True)
    m = model_table.set_index("guid")["score"].sort_index()
    d = dyn_table.set_index("guid")["score"].sort_index()
    assert pair["spearman"] == pytest.approx(agreement.spearman(d.to_numpy(), m.to_numpy()), abs=1e-4)
    # --source model with the run: the other way round
    back = json.loads((tmp_path / "m" / "label_issues_settings.json").read_text())
    assert "agreement" not in back  # no --run_dir given: one source
