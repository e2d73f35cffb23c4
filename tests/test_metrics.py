"""Metrics: hand-computed values, the vectorised code against the obvious loop, order/format
independence, td_metrics.py end to end on a real recording, and load_td_metrics' freshness."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, run_cli, write_synthetic_dynamics

from training_dynamics.core import dynamics_file
from training_dynamics.analysis import metrics, streaming
from training_dynamics.analysis.metrics import COLUMNS, compute_td_metrics
from training_dynamics.analysis.run import METRICS_NAME, SETTINGS_NAME, SUMMARY_NAME, Run
from training_dynamics.core.dynamics_file import Dynamics, DynamicsError


def dyn(logits, gold, guids=None) -> Dynamics:
    logits = np.asarray(logits, dtype=np.float64)
    guids = np.arange(100, 100 + len(logits)) if guids is None else np.asarray(guids)
    return Dynamics(guids=guids, gold=np.asarray(gold), logits=logits, dy_dir=Path("hand"))


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


# ---------------------------------------------------------------------------------------------
# hand-computed values
# ---------------------------------------------------------------------------------------------

S2 = sigmoid(2)  # p(gold) when the gold logit leads by 2 (two classes)


@pytest.fixture
def two_class() -> Dynamics:
    """Four epochs, two classes; one example per situation worth checking."""
    a, b = [2.0, 0.0], [0.0, 2.0]
    logits = [
        [[1, 0]] * 4,        # 0: gold 1, never correct
        [a, b, a, b],        # 1: gold 0, correct/incorrect alternating: forgotten twice
        [[0, 0]] * 4,        # 2: gold 0, tie every epoch -> argmax 0 -> correct
        [[0, 0]] * 4,        # 3: gold 1, tie every epoch -> argmax 0 -> never correct
        [b, a, a, a],        # 4: gold 0, learned at epoch 1 and kept
        [a, b, b, a],        # 5: gold 0, forgotten once, relearned
    ]
    return dyn(logits, [1, 0, 0, 1, 0, 0])


def test_columns_in_seed_order(two_class):
    df = compute_td_metrics(two_class)
    assert list(df.columns) == ["guid", "index", "threshold_closeness", "confidence", "variability", "correctness",
                                "forgetfulness", "never_learned", "loss", "aum", "aleatoric", "el2n", "last_pred",
                                "gold"]
    assert df["guid"].tolist() == [100, 101, 102, 103, 104, 105]
    assert df["index"].tolist() == [0, 1, 2, 3, 4, 5]


def test_never_correct(two_class):
    r = compute_td_metrics(two_class).iloc[0]
    p = 1 - sigmoid(1)  # softmax([1, 0])[1]
    assert r.confidence == pytest.approx(p, abs=1e-12)
    assert r.variability == pytest.approx(0, abs=1e-12)
    assert r.correctness == 0 and r.forgetfulness == 1000 and bool(r.never_learned)
    assert r.threshold_closeness == pytest.approx(p * (1 - p), abs=1e-12)
    assert r.loss == pytest.approx(-math.log(p), abs=1e-12)
    assert r.aum == pytest.approx(-1, abs=1e-12)
    assert r.aleatoric == pytest.approx(p * (1 - p), abs=1e-12)
    assert r.el2n == pytest.approx(math.sqrt(2) * (1 - p), abs=1e-12)  # ||(1-p, p-1)||
    assert r.last_pred == 0 and r.gold == 1


def test_forgotten_twice(two_class):
    r = compute_td_metrics(two_class).iloc[1]
    assert r.confidence == pytest.approx(0.5, abs=1e-12)                   # (S2 + (1 - S2)) / 2
    assert r.variability == pytest.approx(S2 - 0.5, abs=1e-12)             # population std of {S2, 1-S2}
    assert r.correctness == 2 and r.forgetfulness == 2 and not r.never_learned
    assert r.threshold_closeness == pytest.approx(0.25, abs=1e-12)
    assert r.loss == pytest.approx(-(math.log(S2) + math.log(1 - S2)) / 2, abs=1e-12)
    assert r.aum == pytest.approx(0, abs=1e-12)                            # margins 2, -2, 2, -2
    assert r.aleatoric == pytest.approx(S2 * (1 - S2), abs=1e-12)
    assert r.el2n == pytest.approx(math.sqrt(2) * 0.5, abs=1e-12)          # mean of sqrt2(1-S2), sqrt2*S2
    assert r.last_pred == 1


def test_include_ci(two_class):
    r = compute_td_metrics(two_class, include_ci=True).iloc[1]
    var = (S2 - 0.5) ** 2
    assert r.variability == pytest.approx(math.sqrt(var + var**2 / 3), abs=1e-12)


def test_argmax_ties_go_to_lowest_index(two_class):
    df = compute_td_metrics(two_class)
    tie_gold0, tie_gold1 = df.iloc[2], df.iloc[3]
    assert tie_gold0.correctness == 4 and tie_gold0.forgetfulness == 0 and tie_gold0.last_pred == 0
    assert tie_gold1.correctness == 0 and tie_gold1.forgetfulness == 1000 and tie_gold1.never_learned
    for r in (tie_gold0, tie_gold1):
        assert r.confidence == pytest.approx(0.5) and r.aum == 0 and r.loss == pytest.approx(math.log(2))


def test_learned_and_relearned(two_class):
    df = compute_td_metrics(two_class)
    assert df.loc[4, "correctness"] == 3 and df.loc[4, "forgetfulness"] == 0
    assert df.loc[5, "correctness"] == 2 and df.loc[5, "forgetfulness"] == 1
    assert df["never_learned"].tolist() == [True, False, False, True, False, False]
    assert df["never_learned"].dtype == bool


def test_three_classes():
    z = [1.0, 2.0, 3.0]
    e = [math.exp(v) for v in z]
    q = [v / sum(e) for v in e]
    # example 0: gold 0 (wrong); example 1: gold 2 (right); example 2: tie between classes 1 and 2, gold 2.
    d = dyn([[z, z], [z, z], [[1, 3, 3], [1, 3, 3]]], [0, 2, 2])
    df = compute_td_metrics(d)
    assert df.loc[0, "confidence"] == pytest.approx(q[0], abs=1e-12)
    assert df.loc[0, "aum"] == pytest.approx(1 - 3)
    assert df.loc[0, "el2n"] == pytest.approx(math.sqrt((q[0] - 1) ** 2 + q[1] ** 2 + q[2] ** 2), abs=1e-12)
    assert df.loc[0, "forgetfulness"] == 1000 and df.loc[0, "last_pred"] == 2
    assert df.loc[1, "confidence"] == pytest.approx(q[2], abs=1e-12)
    assert df.loc[1, "aum"] == pytest.approx(3 - 2)
    assert df.loc[1, "correctness"] == 2 and df.loc[1, "loss"] == pytest.approx(-math.log(q[2]), abs=1e-12)
    assert df.loc[2, "correctness"] == 0 and df.loc[2, "last_pred"] == 1 and df.loc[2, "aum"] == 0


def test_one_epoch():
    d = dyn([[[2.0, 0.0]], [[2.0, 0.0]]], [0, 1])
    for include_ci in (False, True):
        df = compute_td_metrics(d, include_ci=include_ci)
        assert df["variability"].tolist() == [0.0, 0.0]  # no spread, no division by zero
        assert df["confidence"].to_numpy() == pytest.approx([S2, 1 - S2], abs=1e-12)
        assert df["correctness"].tolist() == [1, 0]
        assert df["forgetfulness"].tolist() == [0, 1000]
        assert np.allclose(df["aleatoric"], df["threshold_closeness"])  # E = 1: both are p(1-p)


def test_burn_out_uses_first_epochs(two_class):
    df = compute_td_metrics(two_class, burn_out=2)
    # example 1 is (correct, incorrect) over epochs 0-1; example 4 (incorrect, correct).
    assert df.loc[1, "correctness"] == 1 and df.loc[1, "forgetfulness"] == 1 and df.loc[1, "last_pred"] == 1
    assert df.loc[4, "correctness"] == 1 and df.loc[4, "forgetfulness"] == 0 and df.loc[4, "last_pred"] == 0
    assert df.loc[5, "correctness"] == 1 and df.loc[5, "forgetfulness"] == 1
    pd.testing.assert_frame_equal(compute_td_metrics(two_class, burn_out=4), compute_td_metrics(two_class))
    one = compute_td_metrics(two_class, burn_out=1)
    assert one["correctness"].tolist() == [0, 1, 1, 0, 0, 1]
    assert (one["variability"] == 0).all()


@pytest.mark.parametrize("bad", [0, -1, 5, 2.5, True])
def test_bad_burn_out(two_class, bad):
    with pytest.raises(DynamicsError, match="burn_out"):
        compute_td_metrics(two_class, burn_out=bad)


def test_training_summary(two_class):
    s = metrics.training_summary(two_class)
    assert s["epoch"].tolist() == [0, 1, 2, 3]
    # correct per epoch: ex2 always; ex1 at 0, 2; ex4 at 1, 2, 3; ex5 at 0, 3 -> counts 3, 2, 3, 3 of 6.
    assert s["accuracy"].tolist() == pytest.approx([3 / 6, 2 / 6, 3 / 6, 3 / 6])
    losses = -np.log([1 - sigmoid(1), S2, 0.5, 0.5, 1 - S2, S2])  # epoch 0
    assert s.loc[0, "loss"] == pytest.approx(losses.mean(), abs=1e-12)
    assert s["num_examples"].tolist() == [6] * 4


# ---------------------------------------------------------------------------------------------
# vectorised == the obvious loop
# ---------------------------------------------------------------------------------------------


def reference(logits: np.ndarray, gold: np.ndarray, include_ci: bool) -> dict[str, list]:
    """The metric definitions, one example and one epoch at a time (seed style)."""
    out: dict[str, list] = {c: [] for c in COLUMNS[2:]}
    n_ex, n_ep, n_cls = logits.shape
    for n in range(n_ex):
        y = int(gold[n])
        probs, correct, losses, margins, el2ns = [], [], [], [], []
        for e in range(n_ep):
            z = [float(v) for v in logits[n, e]]
            m = max(z)
            ex = [math.exp(v - m) for v in z]
            q = [v / sum(ex) for v in ex]
            probs.append(q[y])
            correct.append(z.index(max(z)) == y)
            losses.append(-math.log(q[y]))
            margins.append(z[y] - max(v for c, v in enumerate(z) if c != y))
            el2ns.append(math.sqrt(sum((q[c] - (1.0 if c == y else 0.0)) ** 2 for c in range(n_cls))))
        conf = sum(probs) / n_ep
        var = sum((p - conf) ** 2 for p in probs) / n_ep
        if include_ci and n_ep > 1:
            var = var + var * var / (n_ep - 1)
        learned, forgotten = False, 0
        for ok in correct:
            if learned and not ok:
                forgotten += 1
            learned = ok
        out["threshold_closeness"].append(conf * (1 - conf))
        out["confidence"].append(conf)
        out["variability"].append(math.sqrt(var))
        out["correctness"].append(sum(correct))
        out["forgetfulness"].append(forgotten if any(correct) else 1000)
        out["never_learned"].append(not any(correct))
        out["loss"].append(sum(losses) / n_ep)
        out["aum"].append(sum(margins) / n_ep)
        out["aleatoric"].append(sum(p * (1 - p) for p in probs) / n_ep)
        out["el2n"].append(sum(el2ns) / n_ep)
        out["last_pred"].append(z.index(max(z)))
        out["gold"].append(y)
    return out


@pytest.mark.parametrize("n_epochs,n_classes,include_ci", [(5, 3, False), (5, 3, True), (1, 2, True), (3, 2, False),
                                                          (4, 40, False)])
def test_vectorised_equals_loop(n_epochs, n_classes, include_ci):
    rng = np.random.default_rng(n_epochs * 100 + n_classes)
    n = 300
    logits = rng.normal(scale=3, size=(n, n_epochs, n_classes))
    logits[: n // 3] = np.round(logits[: n // 3])  # plenty of argmax ties
    gold = rng.integers(n_classes, size=n)
    df = compute_td_metrics(dyn(logits, gold), include_ci=include_ci)
    ref = reference(logits, gold, include_ci)
    for col, expected in ref.items():
        np.testing.assert_allclose(df[col].to_numpy(dtype=float), np.asarray(expected, dtype=float),
                                   rtol=1e-9, atol=1e-9, err_msg=col)


def test_blocks_do_not_change_the_result():
    rng = np.random.default_rng(1)
    logits, gold = rng.normal(size=(50, 3, 4)), rng.integers(4, size=50)
    whole = metrics.per_epoch_arrays(logits, gold)
    blocked = metrics.per_epoch_arrays(logits, gold, block=7)
    for name in whole:
        np.testing.assert_array_equal(blocked[name], whole[name], err_msg=name)


def test_extreme_logits_are_stable():
    d = dyn([[[1000.0, -1000.0], [-1000.0, 1000.0]]], [0])
    r = compute_td_metrics(d).iloc[0]
    assert r.confidence == pytest.approx(0.5) and r.loss == pytest.approx(1000)
    assert np.isfinite(r[["loss", "aum", "el2n", "variability"]].astype(float)).all()


# ---------------------------------------------------------------------------------------------
# through files: order and format independence
# ---------------------------------------------------------------------------------------------


def test_shuffled_epochs_give_the_same_metrics(synthetic_dynamics, tmp_path):
    run, arrays = synthetic_dynamics(n=60, epochs=4, classes=3, shuffle=True, seed=3)
    d = dynamics_file.read_dynamics(dynamics_file.dynamics_dir(run), progress=False)
    df = compute_td_metrics(d)
    first_file = [json.loads(line)["guid"] for line in open(d.files[0])]
    assert df["guid"].tolist() == first_file  # seed order: the first epoch file's
    assert df["index"].tolist() == list(range(60))
    # the same dynamics written in one fixed order, and the arrays themselves
    write_synthetic_dynamics(tmp_path / "ordered" / "training_dynamics", n=60, epochs=4, classes=3, seed=3)
    ordered = compute_td_metrics(dynamics_file.read_dynamics(tmp_path / "ordered" / "training_dynamics", progress=False))
    direct = compute_td_metrics(dyn(arrays["logits"].astype(np.float64), arrays["gold"], arrays["guids"]))
    a = df.set_index("guid").drop(columns="index").sort_index()
    for other in (ordered, direct):
        pd.testing.assert_frame_equal(a, other.set_index("guid").drop(columns="index").sort_index(), check_exact=True)


def test_npz_equals_jsonl(tmp_path):
    dfs = []
    for fmt in ("jsonl", "npz"):
        dy = tmp_path / fmt / "training_dynamics"
        write_synthetic_dynamics(dy, n=40, epochs=3, classes=3, seed=5, fmt=fmt, shuffle=True)
        dfs.append(compute_td_metrics(dynamics_file.read_dynamics(dy, progress=False), include_ci=True))
    pd.testing.assert_frame_equal(dfs[0], dfs[1], check_exact=True)


# ---------------------------------------------------------------------------------------------
# td_metrics.py end to end on a real recording; load_td_metrics
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_td_metrics_cli_on_recorded_run(recorded_run, tmp_path):
    recorded_run = shutil.copytree(recorded_run, tmp_path / "run")  # leave the shared fixture untouched
    run_cli("td_metrics.py", "--model_dir", recorded_run)
    meta = json.loads((dynamics_file.dynamics_dir(recorded_run) / dynamics_file.META_NAME).read_text())
    lines = (recorded_run / METRICS_NAME).read_text().splitlines()
    assert len(lines) == meta["num_examples"] == 150
    rows = [json.loads(line) for line in lines]
    assert all(list(r) == list(COLUMNS) for r in rows)
    # recompute from the raw epoch files, the slow obvious way
    raw = [{} for _ in range(4)]
    for e in range(4):
        for line in open(dynamics_file.epoch_path(dynamics_file.dynamics_dir(recorded_run), e)):
            rec = json.loads(line)
            raw[e][rec["guid"]] = (rec[f"logits_epoch_{e}"], rec["gold"])
    guids = [r["guid"] for r in rows]
    assert guids == list(raw[0])  # first epoch file's order
    assert [r["index"] for r in rows] == list(range(150))
    logits = np.array([[raw[e][g][0] for e in range(4)] for g in guids])
    gold = np.array([raw[0][g][1] for g in guids])
    ref = reference(logits, gold, include_ci=False)
    for col, expected in ref.items():
        np.testing.assert_allclose([r[col] for r in rows], expected, rtol=1e-9, atol=1e-12, err_msg=col)
    summary = [json.loads(line) for line in open(recorded_run / SUMMARY_NAME)]
    assert [s["epoch"] for s in summary] == [0, 1, 2, 3]
    for e, s in enumerate(summary):
        acc = np.mean([np.argmax(raw[e][g][0]) == raw[e][g][1] for g in guids])
        assert s["accuracy"] == pytest.approx(acc, abs=1e-12) and s["num_examples"] == 150
        assert s["loss"] == pytest.approx(np.mean([-math.log(
            math.exp(raw[e][g][0][raw[e][g][1]]) / sum(math.exp(v) for v in raw[e][g][0])) for g in guids]), rel=1e-9)
    settings = json.loads((recorded_run / SETTINGS_NAME).read_text())
    assert settings["burn_out"] == 4 and settings["epochs_used"] == [0, 1, 2, 3] and settings["include_ci"] is False
    assert [s["file"] for s in settings["sources"]] == [f"dynamics_epoch_{e}.jsonl" for e in range(4)]
    # a second run with --burn_out 2 --include_ci changes what is written
    run_cli("td_metrics.py", "--model_dir", recorded_run, "--burn_out", 2, "--include_ci", "--no_progress")
    settings = json.loads((recorded_run / SETTINGS_NAME).read_text())
    assert settings["burn_out"] == 2 and settings["include_ci"] is True
    rows2 = [json.loads(line) for line in open(recorded_run / METRICS_NAME)]
    ref2 = reference(logits[:, :2], gold, include_ci=True)
    np.testing.assert_allclose([r["variability"] for r in rows2], ref2["variability"], rtol=1e-9, atol=1e-12)
    assert max(r["correctness"] for r in rows2) <= 2


def test_load_td_metrics_reuses_fresh_and_recomputes_stale(synthetic_dynamics, monkeypatch):
    run, _ = synthetic_dynamics(n=30, epochs=3, classes=2, seed=7)
    first = Run(run).metrics()
    assert (run / METRICS_NAME).exists() and (run / SETTINGS_NAME).exists()
    assert (run / SUMMARY_NAME).exists()
    pd.testing.assert_frame_equal(first, compute_td_metrics(dynamics_file.read_dynamics(dynamics_file.dynamics_dir(run))))
    assert Run(run).metrics_are_fresh()

    real_read = streaming.stream_metrics
    calls = []
    monkeypatch.setattr(streaming, "stream_metrics", lambda *a, **k: calls.append(1) or real_read(*a, **k))
    again = Run(run).metrics()
    assert calls == []  # read back from td_metrics.jsonl, not recomputed
    pd.testing.assert_frame_equal(again, first, check_exact=True)  # floats are written exactly
    assert list(again.columns) == list(COLUMNS) and again["never_learned"].dtype == bool
    assert again["correctness"].dtype == np.int64

    two = Run(run).metrics(burn_out=2)  # other settings: recomputed
    assert calls == [1] and two["correctness"].max() <= 2
    assert json.loads((run / SETTINGS_NAME).read_text())["burn_out"] == 2
    Run(run).metrics(burn_out=2)
    assert calls == [1]
    Run(run).metrics(burn_out=2, include_ci=True)
    assert calls == [1, 1]

    # an epoch file changes: stale, recomputed from the new logits
    write_synthetic_dynamics(dynamics_file.dynamics_dir(run), n=30, epochs=3, classes=2, seed=8)
    assert not Run(run).metrics_are_fresh(burn_out=2, include_ci=True)
    changed = Run(run).metrics(burn_out=2, include_ci=True)
    assert calls == [1, 1, 1]
    assert not np.allclose(changed["confidence"], two["confidence"])

    # td_metrics.jsonl replaced by something else (e.g. the seed's output): stale
    (run / METRICS_NAME).write_text('{"guid": 1}\n')
    assert not Run(run).metrics_are_fresh(burn_out=2, include_ci=True)
    Run(run).metrics(burn_out=2, include_ci=True)
    assert calls == [1, 1, 1, 1]


def test_outputs_are_readable_by_others(synthetic_dynamics):
    """Atomic writes must not leave the private 0600 mode of temp files."""
    run, _ = synthetic_dynamics(n=5, epochs=1)
    Run(run).write_metrics(progress=False)
    mode = os.stat(run / METRICS_NAME).st_mode & 0o777
    assert mode == 0o666 & ~_umask()


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def test_td_metrics_cli_does_not_import_pandas(synthetic_dynamics):
    """Process start-up dominates at SST-2 scale: the td_metrics.py path stays free of pandas."""
    run, _ = synthetic_dynamics(n=20, epochs=2)
    code = ("import sys; from training_dynamics.cli.metrics import main; "
            f"main(['--model_dir', {str(run)!r}, '--no_progress']); assert 'pandas' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)
    assert len((run / METRICS_NAME).read_text().splitlines()) == 20
