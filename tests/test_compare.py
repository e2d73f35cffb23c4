"""Weak vs strong comparison: alignment, deltas with the never-learned sentinel, the region
transition table, rank correlations, and compare_models.py end to end."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli, write_synthetic_dynamics
from training_dynamics.analysis import compare
from training_dynamics.core import dynamics_file

SCRIPT = "compare_models.py"


def table(**cols) -> pd.DataFrame:
    return pd.DataFrame(cols)


# hand-made 7-example runs (proportion 0.33 -> 2 per region); see test_transition_table_by_hand
WEAK = table(guid=[0, 1, 2, 3, 4, 5, 6], confidence=[0.1, 0.2, 0.5, 0.6, 0.9, 0.95, 0.55],
             variability=[0.05, 0.1, 0.4, 0.35, 0.1, 0.05, 0.2], correctness=[0, 1, 2, 2, 4, 4, 3],
             forgetfulness=[1000, 1, 0, 1, 0, 0, 1], never_learned=[True, False, False, False, False, False, False])
STRONG = table(guid=[6, 5, 4, 3, 2, 1, 0], confidence=[0.5, 0.1, 0.95, 0.6, 0.2, 0.3, 0.9],
               variability=[0.2, 0.2, 0.05, 0.3, 0.1, 0.4, 0.1], correctness=[3, 0, 4, 2, 1, 2, 4],
               forgetfulness=[0, 1000, 0, 2, 1, 1, 0], never_learned=[False, True, False, False, False, False, False])


def test_align_reorders_by_guid_and_refuses_different_sets():
    w, s = compare.align_runs(WEAK, STRONG)
    assert w["guid"].tolist() == s["guid"].tolist() == list(range(7))
    assert s["confidence"].tolist() == [0.9, 0.3, 0.2, 0.6, 0.95, 0.1, 0.5]
    with pytest.raises(ValueError, match=r"weak has 7, strong has 5 \(2 only in weak, 0 only in strong\); "
                                         r"guid 0 is only in weak; pass --intersection to compare the 5 shared"):
        compare.align_runs(WEAK, STRONG[STRONG.guid > 1])
    w, s = compare.align_runs(WEAK, STRONG[STRONG.guid > 1], intersection=True)
    assert w["guid"].tolist() == s["guid"].tolist() == [2, 3, 4, 5, 6]
    with pytest.raises(ValueError, match="share no example"):
        compare.align_runs(WEAK, STRONG.assign(guid=STRONG.guid + 100), intersection=True)
    with pytest.raises(ValueError, match="weak run: guid 3: appears more than once"):
        compare.align_runs(WEAK.assign(guid=[0, 1, 2, 3, 3, 5, 6]), STRONG)


def test_deltas_and_never_learned_sentinel():
    w, s = compare.align_runs(WEAK, STRONG)
    cmp = compare.compare_runs(w, s, weak_epochs=4, strong_epochs=4, proportion=0.33)
    np.testing.assert_allclose(cmp["delta_confidence"], s["confidence"] - w["confidence"])
    np.testing.assert_allclose(cmp["delta_variability"], s["variability"] - w["variability"])
    assert cmp["delta_correctness"].tolist() == [4, 1, -1, 0, 0, -4, 0]
    np.testing.assert_allclose(cmp["delta_correctness_frac"], np.array([4, 1, -1, 0, 0, -4, 0]) / 4)
    # guid 0: weak never learned (1000), strong learned; guid 5: the other way round
    assert cmp["weak_never_learned"].tolist() == [True] + [False] * 6
    assert cmp["strong_never_learned"].tolist() == [False] * 5 + [True, False]
    d = cmp["delta_forgetfulness"].to_numpy()
    assert np.isnan(d[0]) and np.isnan(d[5])
    assert d[[1, 2, 3, 4, 6]].tolist() == [0, 1, 1, 0, -1]
    assert cmp.loc[0, "weak_forgetfulness"] == 1000  # kept for compatibility, flagged beside it
    # runs of different lengths: correctness compared as fractions only
    cmp = compare.compare_runs(w, s, weak_epochs=4, strong_epochs=5)
    assert cmp["delta_correctness"].isna().all()
    np.testing.assert_allclose(cmp["delta_correctness_frac"], s["correctness"] / 5 - w["correctness"] / 4)


def test_transition_table_by_hand():
    """weak regions: hard {0,1}, easy {5,4}, ambiguous {2,3}, other {6};
    strong: hard {5,2}, easy {4,0}, ambiguous {1,3}, other {6}."""
    w, s = compare.align_runs(WEAK, STRONG)
    cmp = compare.compare_runs(w, s, weak_epochs=4, strong_epochs=4, proportion=0.33)
    assert cmp["weak_region"].tolist() == ["hard", "hard", "ambiguous", "ambiguous", "easy", "easy", "other"]
    assert cmp["strong_region"].tolist() == ["easy", "ambiguous", "hard", "ambiguous", "easy", "hard", "other"]
    t = compare.transition_table(cmp["weak_region"], cmp["strong_region"])
    assert list(t.index) == list(t.columns) == ["easy", "ambiguous", "hard", "other"]
    expected = [[1, 0, 1, 0],   # easy -> easy (4), hard (5)
                [0, 1, 1, 0],   # ambiguous -> ambiguous (3), hard (2)
                [1, 1, 0, 0],   # hard -> easy (0), ambiguous (1)
                [0, 0, 0, 1]]   # other -> other (6)
    assert t.to_numpy().tolist() == expected and t.to_numpy().sum() == 7
    md = compare.transition_markdown(t)
    assert "| easy | 1 | 0 | 1 | 0 | 2 |" in md and md.strip().endswith("| total | 2 | 2 | 2 | 1 | 7 |")


def test_transition_table_sums_to_n_on_random_runs():
    rng = np.random.default_rng(0)
    n = 1000
    runs = [table(guid=np.arange(n), confidence=rng.uniform(size=n), variability=rng.uniform(0, 0.5, n),
                  correctness=rng.integers(0, 5, n)) for _ in range(2)]
    cmp = compare.compare_runs(*runs, weak_epochs=4, strong_epochs=4, proportion=0.25)
    t = compare.transition_table(cmp["weak_region"], cmp["strong_region"])
    assert t.to_numpy().sum() == n
    assert t.sum(axis=1).tolist() == pd.Series(cmp["weak_region"]).value_counts().reindex(t.index, fill_value=0).tolist()


def test_spearman():
    assert compare.spearman(np.arange(10), np.arange(10) ** 3) == pytest.approx(1.0)
    assert compare.spearman(np.arange(10), -np.arange(10.0)) == pytest.approx(-1.0)
    assert np.isnan(compare.spearman(np.ones(5), np.arange(5)))
    # ties get average ranks: ranks a = [1, 2.5, 2.5, 4], b = [1, 2, 3, 4]
    ra, rb = np.array([1, 2.5, 2.5, 4]), np.array([1, 2, 3, 4.0])
    assert compare.spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(np.corrcoef(ra, rb)[0, 1])
    assert compare.spearman([1, np.nan, 2, 3], [3, 0, 2, 1]) == pytest.approx(-1.0)  # NaN pairs dropped
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 6, 200), rng.normal(size=200)
    assert compare.spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic)


# --------------------------------------------------------------------------- CLI
def two_runs(tmp_path, n=60, strong_n=None):
    """A weak 4-epoch and a strong 5-epoch run over the same guids (the strong run's first ``strong_n``)."""
    weak = tmp_path / "dy_log" / "demo" / "weak"
    arrays = write_synthetic_dynamics(dynamics_file.dynamics_dir(weak), n=n, epochs=4, seed=0)
    strong = tmp_path / "dy_log" / "demo" / "strong"
    rng = np.random.default_rng(1)
    k = strong_n or n
    logits = rng.normal(size=(k, 5, 2))
    logits[np.arange(k), :, arrays["gold"][:k]] += 2.0
    for e in range(5):
        dynamics_file.write_epoch(dynamics_file.dynamics_dir(strong), e, arrays["guids"][:k], logits[:, e], arrays["gold"][:k])
    return weak, strong


@pytest.mark.slow
def test_cli_end_to_end(tmp_path):
    weak, strong = two_runs(tmp_path)
    out = tmp_path / "cmp"
    proc = run_cli(SCRIPT, "--weak_dir", weak, "--strong_dir", strong, "--output_dir", out)
    for name in ("delta_data_map", "strong_vs_weak"):
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG" and (out / f"{name}.png").stat().st_size > 1000
        assert (out / f"{name}.pdf").read_bytes()[:5] == b"%PDF-" and (out / f"{name}.pdf").stat().st_size > 1000
    rows = [json.loads(line) for line in (out / "compare.jsonl").read_text().splitlines()]
    assert len(rows) == 60 and len(pd.read_csv(out / "compare.csv")) == 60
    td_w = {r["guid"]: r for r in map(json.loads, (weak / "td_metrics.jsonl").read_text().splitlines())}
    td_s = {r["guid"]: r for r in map(json.loads, (strong / "td_metrics.jsonl").read_text().splitlines())}
    for r in rows:
        w, s = td_w[r["guid"]], td_s[r["guid"]]
        assert r["delta_confidence"] == pytest.approx(s["confidence"] - w["confidence"], abs=1e-9)
        assert r["delta_correctness"] is None  # 4 vs 5 epochs: counts are not comparable
        assert r["delta_correctness_frac"] == pytest.approx(s["correctness"] / 5 - w["correctness"] / 4)
        if w["never_learned"] or s["never_learned"]:
            assert r["delta_forgetfulness"] is None
        else:
            assert r["delta_forgetfulness"] == s["forgetfulness"] - w["forgetfulness"]
    assert any(r["weak_never_learned"] for r in rows)  # the sentinel case is exercised
    t = pd.read_csv(out / "region_transitions.csv", index_col=0)
    assert t.to_numpy().sum() == 60 and list(t.columns) == ["easy", "ambiguous", "hard", "other"]
    summary = json.loads((out / "compare_summary.json").read_text())
    assert summary["num_examples"] == 60 and (summary["weak_epochs"], summary["strong_epochs"]) == (4, 5)
    assert set(summary["spearman"]) == {"confidence", "variability", "correctness"}
    assert "| weak \\ strong |" in proc.stdout and "Spearman" in proc.stdout
    assert (out / "region_transitions.md").read_text() in proc.stdout


@pytest.mark.slow
def test_cli_refuses_mismatched_runs_unless_intersection(tmp_path):
    weak, strong = two_runs(tmp_path, n=50, strong_n=40)
    out = tmp_path / "cmp"
    proc = run_cli(SCRIPT, "--weak_dir", weak, "--strong_dir", strong, "--output_dir", out, check=False)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{SCRIPT}: error: {weak} vs {strong}: the runs cover different examples: weak has 50, "
                           "strong has 40 (10 only in weak, 0 only in strong); guid "), proc.stderr
    assert last.endswith("pass --intersection to compare the 40 shared examples") and "Traceback" not in proc.stderr
    assert not out.exists()
    run_cli(SCRIPT, "--weak_dir", weak, "--strong_dir", strong, "--output_dir", out, "--intersection",
            "--burn_out", 3, "--proportion", 0.25)
    rows = (out / "compare.jsonl").read_text().splitlines()
    assert len(rows) == 40
    summary = json.loads((out / "compare_summary.json").read_text())
    assert (summary["weak_epochs"], summary["strong_epochs"], summary["proportion"]) == (3, 3, 0.25)
    assert all(json.loads(r)["delta_correctness"] is not None for r in rows)  # same epochs: counts compare


@pytest.mark.slow
def test_cli_bare_metrics_files_need_num_epochs(tmp_path):
    """Published-style coordinates (no settings file beside them): E is never guessed from the data."""
    rng = np.random.default_rng(0)
    paths = []
    for name in ("weak", "strong"):
        df = pd.DataFrame({"guid": np.arange(30), "confidence": rng.random(30), "variability": rng.random(30) / 3,
                           "correctness": rng.integers(0, 5, 30)})  # 6 epochs, but nobody was right in all of them
        paths.append(tmp_path / f"{name}.jsonl")
        df.to_json(paths[-1], orient="records", lines=True)
    args = ["--weak_dir", paths[0], "--strong_dir", paths[1], "--output_dir", tmp_path / "cmp"]
    proc = run_cli(SCRIPT, *args, check=False)
    assert proc.returncode == 2 and f"{paths[0]}: pass --num_epochs" in proc.stderr and "Traceback" not in proc.stderr
    run_cli(SCRIPT, *args, "--num_epochs", 6)
    summary = json.loads((tmp_path / "cmp" / "compare_summary.json").read_text())
    assert (summary["weak_epochs"], summary["strong_epochs"]) == (6, 6)
