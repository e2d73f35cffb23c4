"""Decision rules (training_dynamics.decisions.rules) on synthetic data with planted label noise."""

from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import N_TRAIN, run_cli, train_args
from training_dynamics.core import kind as kinds
from training_dynamics.decisions import rules as decision
from training_dynamics.core import dynamics_file
from training_dynamics.analysis.run import Run

needs_cleanlab = pytest.mark.skipif(importlib.util.find_spec("cleanlab") is None, reason="pip install cleanlab")

C = 3


def planted(n: int = 3000, *, seed: int = 0, strength: float = 4.0):
    """Probabilities of a decent classifier, and 10% of labels flipped class-conditionally (c -> c+1)."""
    rng = np.random.default_rng(seed)
    clean = rng.integers(C, size=n)
    logits = rng.normal(size=(n, C))
    logits[np.arange(n), clean] += strength
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    noisy = clean.copy()
    flip = rng.random(n) < np.array([0.05, 0.10, 0.15])[clean]
    noisy[flip] = (clean[flip] + 1) % C
    loss = -np.log(probs[np.arange(n), noisy])
    return {"clean": clean, "noisy": noisy, "flipped": flip, "probs": probs, "loss": loss}


def _precision_recall(flagged, flipped):
    tp = (flagged & flipped).sum()
    return tp / max(flagged.sum(), 1), tp / flipped.sum()


def _true_counts(d):
    return decision.noise_counts(d["noisy"], d["clean"], d["flipped"], C)


def test_noise_counts_and_likely_true_by_hand():
    gold = np.array([0, 0, 1, 2, 2])
    probs = np.array([[0.9, 0.06, 0.04], [0.2, 0.3, 0.5], [0.5, 0.1, 0.4], [0.3, 0.3, 0.4], [0.1, 0.8, 0.1]])
    likely = decision.likely_true_class(probs, gold)
    assert likely.tolist() == [1, 2, 0, 0, 1]  # the best class other than the given one; ties: lower id
    flagged = np.array([False, True, True, False, True])
    want = np.zeros((C, C), dtype=int)
    want[0, 2] = want[1, 0] = want[2, 1] = 1
    np.testing.assert_array_equal(decision.noise_counts(gold, likely, flagged, C), want)


def test_top_k_breaks_ties_by_guid():
    flagged = decision.top_k(np.array([0.5, 0.9, 0.5, 0.1]), 2, guids=np.array([7, 3, 2, 1]))
    assert flagged.tolist() == [False, True, True, False]


@pytest.mark.parametrize("rule", [pytest.param("rank_count", marks=needs_cleanlab),
                                  pytest.param("confident_learning", marks=needs_cleanlab)])
def test_rules_find_planted_flips_and_count_them_per_class_pair(rule):
    d = planted()
    dec = decision.decide(rule, gold=d["noisy"], probabilities=d["probs"], score=d["loss"], loss=d["loss"])
    precision, recall = _precision_recall(dec.flagged, d["flipped"])
    n_flipped = int(d["flipped"].sum())
    assert precision >= 0.85 and recall >= 0.85, (rule, precision, recall)
    assert abs(dec.num_flagged - n_flipped) <= 0.15 * n_flipped
    true = _true_counts(d)
    assert np.abs(dec.noise_counts - true).max() <= 0.2 * true.max() + 5, (dec.noise_counts, true)
    assert np.trace(dec.noise_counts) == 0  # never "given c, truly c"
    summary = dec.summary(["a", "b", "c"])
    assert summary["num_label_issues"] == dec.num_flagged == sum(p["count"] for p in summary["by_class_pair"])
    assert json.loads(json.dumps(summary)) == summary
    assert kinds.get(None).describe_decision(dec, ["a", "b", "c"]).startswith(f"{rule}: estimated {dec.num_flagged} of 3000 labels wrong")


def test_loss_mixture_finds_the_flips_but_overestimates_their_number():
    d = planted()
    dec = decision.decide("loss_mixture", gold=d["noisy"], probabilities=d["probs"], score=d["loss"], loss=d["loss"])
    precision, recall = _precision_recall(dec.flagged, d["flipped"])
    assert recall >= 0.95 and precision >= 0.5, (precision, recall)  # clean examples' loss tail joins the upper part
    assert dec.details["fitted_to"] == "loss" and len(dec.details["mixture"]["means"]) == 2
    assert (dec.noise_counts >= _true_counts(d)).all()  # every pair found, some clean ones with them


def test_rank_count_flags_the_top_of_the_given_ranking():
    d = planted(seed=1)
    score = d["loss"]
    dec = decision.rank_count(d["noisy"], d["probs"], score)
    k = dec.details["estimated_count"]
    assert dec.num_flagged == k
    assert score[dec.flagged].min() >= score[~dec.flagged].max()


@needs_cleanlab
def test_no_noise_flags_few():
    d = planted(seed=2, strength=6.0)
    clean_loss = -np.log(d["probs"][np.arange(3000), d["clean"]])
    for rule in ("rank_count", "confident_learning"):
        dec = decision.decide(rule, gold=d["clean"], probabilities=d["probs"], score=clean_loss, loss=clean_loss)
        assert dec.num_flagged <= 0.01 * 3000, rule


def test_two_gaussian_fit_recovers_the_components():
    rng = np.random.default_rng(0)
    low, high = rng.normal(-3, 0.5, 900), rng.normal(1, 1.0, 100)
    x = np.r_[low, high]
    fit = decision.fit_two_gaussians(x)
    np.testing.assert_allclose(fit["means"], [low.mean(), high.mean()], atol=0.1)  # the samples' own statistics
    np.testing.assert_allclose(fit["stds"], [low.std(), high.std()], atol=0.1)
    np.testing.assert_allclose(fit["weights"], [0.9, 0.1], atol=0.02)
    assert ((fit["posterior_high"] > 0.5) == (x > -1.4)).mean() > 0.98


def test_aum_threshold_flags_below_the_fake_class_percentile():
    rng = np.random.default_rng(0)
    n = 2000
    flipped = rng.random(n) < 0.1
    aum = np.where(flipped, rng.normal(-2, 1, n), rng.normal(3, 1, n))
    fake_aum = rng.normal(-2, 1, n // 3)  # threshold samples behave like mislabelled examples
    threshold = decision.aum_threshold_value(fake_aum)
    assert threshold == pytest.approx(np.percentile(fake_aum, 99))
    gold = rng.integers(2, size=n)
    probs = np.full((n, 2), 0.5)
    dec = decision.decide("aum_threshold", gold=gold, probabilities=probs, score=-aum, aum=aum, threshold=threshold)
    np.testing.assert_array_equal(dec.flagged, aum < threshold)
    precision, recall = _precision_recall(dec.flagged, flipped)
    assert precision >= 0.9 and recall >= 0.95
    with pytest.raises(ValueError, match="threshold_run_dir"):
        decision.decide("aum_threshold", gold=gold, probabilities=probs, score=-aum)


def test_threshold_labels_move_n_over_c_plus_1_to_the_fake_class():
    gold = np.arange(300) % 2
    fake = decision.threshold_labels(gold, 2, seed=3)
    assert (fake == 2).sum() == 100 and (fake[fake != 2] == gold[fake != 2]).all()


def test_aum_threshold_from_a_threshold_run(tmp_path):
    rng = np.random.default_rng(0)
    n, epochs = 90, 3
    guids = np.arange(n)
    gold = decision.threshold_labels(rng.integers(2, size=n), 2, seed=0)
    logits = rng.normal(size=(n, epochs, 3))
    dy = dynamics_file.dynamics_dir(tmp_path / "thr")
    for e in range(epochs):
        dynamics_file.write_epoch(dy, e, guids, logits[:, e].astype(np.float32), gold)
    (dy / dynamics_file.META_NAME).write_text(json.dumps({"label_names": ["neg", "pos", decision.FAKE_CLASS]}))
    fake = gold == 2
    z = logits.astype(np.float32).astype(np.float64)[fake]
    margin = z[:, :, 2] - z[:, :, :2].max(axis=-1)
    want = np.percentile(margin.mean(axis=1), 99)
    assert decision.aum_threshold_from_run(Run(tmp_path / "thr")) == pytest.approx(want, abs=1e-9)
    (dy / dynamics_file.META_NAME).write_text(json.dumps({"label_names": ["neg", "pos", "x"]}))
    with pytest.raises(ValueError, match="no class named '__threshold__'"):
        decision.aum_threshold_from_run(Run(tmp_path / "thr"))


def test_decide_table_adds_columns_in_table_order():
    d = planted(n=600, seed=4)
    order = np.argsort(-d["loss"])
    df = pd.DataFrame({"guid": order + 100, "gold": d["noisy"][order], "probabilities": list(d["probs"][order]),
                       "score": d["loss"][order], "loss": d["loss"][order]})
    df.attrs["label_names"] = ["a", "b", "c"]
    out, dec = decision.decide_table(df, "loss_mixture")
    assert out["is_label_issue"].tolist() == dec.flagged.tolist()
    assert set(out["likely_true_name"]) <= {"a", "b", "c"} and (out["likely_true"] != out["gold"]).all()
    assert out.attrs["label_names"] == ["a", "b", "c"]
    same, none = decision.decide_table(df, "none")
    assert none is None and "is_label_issue" not in same


def test_unknown_rule_is_an_error():
    with pytest.raises(ValueError, match="--decision must be one of"):
        decision.decide("magic", gold=np.zeros(2, int), probabilities=np.full((2, 2), 0.5), score=np.zeros(2))


def test_missing_cleanlab_is_a_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "cleanlab", None)  # import cleanlab now raises ImportError
    d = planted(n=100)
    for rule in ("rank_count", "confident_learning"):
        with pytest.raises(ValueError, match=rf"--decision {rule} needs cleanlab: pip install cleanlab"):
            decision.decide(rule, gold=d["noisy"], probabilities=d["probs"], score=d["loss"])
    assert decision.decide("loss_mixture", gold=d["noisy"], probabilities=d["probs"], score=d["loss"], loss=d["loss"])


@pytest.mark.parametrize("rule, min_precision, min_recall", [
    pytest.param("rank_count", 0.8, 0.8, marks=needs_cleanlab),
    pytest.param("confident_learning", 0.9, 0.6, marks=needs_cleanlab),  # all epochs: memorised flips look right
    ("aum_mixture", 0.7, 0.9),
    ("loss_mixture", 0.45, 0.9),  # the clean losses' long tail takes part of the upper component
])
def test_find_issues_cli_flags_planted_flips_in_dynamics(rule, min_precision, min_recall, tmp_path, capsys):
    """Recorded dynamics of a model that learns the clean labels early and begins to fit the 10%
    planted flips in the last epochs (as a pretrained encoder does)."""
    import pandas as pd

    from training_dynamics.decisions import ranking as le
    from training_dynamics.cli import run_command

    rng = np.random.default_rng(0)
    n, epochs = 1000, 4
    clean = rng.integers(2, size=n)
    noisy = clean.copy()
    flipped = np.zeros(n, dtype=bool)
    flipped[rng.choice(n, size=100, replace=False)] = True
    noisy[flipped] = 1 - clean[flipped]
    logits = rng.normal(scale=1.0, size=(n, epochs, 2))
    logits[np.arange(n), :, clean] += np.linspace(2.5, 4.0, epochs)  # learns the clean class
    memorised = np.flatnonzero(flipped & (rng.random(n) < 0.5))  # half of the flips get fitted in the last epoch
    logits[memorised, -1, noisy[memorised]] += 5.0
    dy = dynamics_file.dynamics_dir(tmp_path / "run")
    for e in range(epochs):
        dynamics_file.write_epoch(dy, e, np.arange(n), logits[:, e].astype(np.float32), noisy)
    (dy / dynamics_file.META_NAME).write_text(json.dumps({"label_names": ["neg", "pos"]}))
    out = tmp_path / "issues"
    assert run_command("find-issues", ["--source", "dynamics", "--run_dir", str(tmp_path / "run"), "--decision", rule,
                                       "--output_dir", str(out), "--disable_tqdm"]) == 0
    got = pd.read_json(out / le.ISSUES_NAME, lines=True)
    flagged = got.set_index("guid")["is_label_issue"].sort_index().to_numpy()
    precision, recall = _precision_recall(flagged, flipped)
    assert precision >= min_precision and recall >= min_recall, (precision, recall)
    assert f"{rule}: estimated {flagged.sum()} of {n} labels wrong" in capsys.readouterr().out
    pairs = json.loads((out / le.SETTINGS_NAME).read_text())["decision"]["by_class_pair"]
    true = decision.noise_counts(noisy, clean, flipped, 2)
    for p in pairs:  # per given -> likely-true pair, close to the planted counts
        i, j = ["neg", "pos"].index(p["given"]), ["neg", "pos"].index(p["likely_true"])
        if min(min_precision, min_recall) >= 0.7:
            assert abs(p["count"] - true[i, j]) <= 0.35 * true[i, j] + 3, (p, true)


@needs_cleanlab
def test_rank_count_counts_from_the_given_probabilities():
    d = planted(seed=5)
    fitted = d["probs"].copy()  # a model that has begun to fit the wrong labels: they look right
    fitted[d["flipped"]] = 0.1 / (C - 1)
    fitted[np.flatnonzero(d["flipped"]), d["noisy"][d["flipped"]]] = 0.9
    late = decision.rank_count(d["noisy"], fitted, d["loss"])
    early = decision.rank_count(d["noisy"], fitted, d["loss"], count_probabilities=d["probs"])
    assert late.num_flagged < 0.2 * d["flipped"].sum()
    assert abs(early.num_flagged - d["flipped"].sum()) <= 0.15 * d["flipped"].sum()
    assert early.details["estimated_count"] == early.num_flagged
    assert [decision.count_epochs(e) for e in (1, 2, 3, 4, 5)] == [1, 1, 2, 2, 3]


@pytest.mark.slow
def test_record_threshold_samples_then_decide_with_them(demo_data, tiny_model, recorded_run, tmp_path):
    """record --threshold_samples: N/(C+1) examples get the fake class, in a run beside the real one."""
    run_cli("run_glue_and_record_td.py", *train_args(tiny_model, demo_data, tmp_path, "--threshold_samples", epochs=2))
    thr = Run(tmp_path / "dy_log" / "train" / f"{tiny_model.name}_threshold")
    assert thr.label_names == ["negative", "positive", decision.FAKE_CLASS]
    gold = thr.dynamics(progress=False).gold
    assert (gold == 2).sum() == N_TRAIN // 3 and set(np.unique(gold)) == {0, 1, 2}
    res = run_cli("find_label_issues.py", "--source", "dynamics", "--run_dir", recorded_run, "--decision",
                  "aum_threshold", "--threshold_run_dir", thr.path, "--output_dir", tmp_path / "issues")
    assert res.stdout.startswith("aum_threshold: estimated ")
    settings = json.loads((tmp_path / "issues" / "label_issues_settings.json").read_text())
    assert settings["decision"]["rule"] == "aum_threshold" and np.isfinite(settings["decision"]["threshold"])


def test_a_mixture_flagging_most_examples_warns(caplog):
    rng = np.random.default_rng(0)
    score = np.r_[rng.normal(0.8, 0.05, 90), rng.normal(0.2, 0.05, 10)]  # most examples look suspicious
    gold = np.zeros(100, dtype=np.int64)
    probs = np.c_[1 - score, score]
    with caplog.at_level("WARNING"):
        dec = decision.decide("score_mixture", gold=gold, probabilities=probs, score=score)
    assert dec.num_flagged == 90 and "do not split into a small suspicious group" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        decision.decide("score_mixture", gold=gold, probabilities=probs, score=1 - score)
    assert "suspicious group" not in caplog.text


def test_count_window_grows_until_its_last_epoch_had_fitted():
    # a short run: epoch 0 still learning fast (0.61 -> 0.90, chance 0.50): count over both, not epoch 0 alone
    short = decision.choose_count_epochs([0.61, 0.90], chance=0.5)
    assert (short.epochs, short.first_fitted, short.underfit) == (2, 1, False)
    # MiniLM on SST-2, 2 epochs: 0.68 -> 0.81 with chance 0.54 is still learning
    assert decision.choose_count_epochs([0.684, 0.814], chance=0.541).epochs == 2
    # a long run that fitted early keeps the first half (rounded up)
    long = decision.choose_count_epochs([0.618, 0.753, 0.778, 0.796, 0.797], chance=0.51)
    assert (long.epochs, long.first_fitted) == (3, 1)
    assert decision.choose_count_epochs([0.8, 0.9, 0.95, 0.97], chance=0.55).epochs == 2
    # a weak model that keeps memorising slowly after the first half: the window stays the first half
    assert decision.choose_count_epochs([0.60, 0.70, 0.76, 0.82, 0.88], chance=0.55).epochs == 3
    # the model only fitted in its last epoch: count over every epoch
    assert decision.choose_count_epochs([0.49, 0.52, 0.51, 0.65, 0.90], chance=0.52).epochs == 5
    # never above chance: every epoch, and flagged as underfit
    none = decision.choose_count_epochs([0.48, 0.51], chance=0.52)
    assert (none.epochs, none.first_fitted, none.underfit) == (2, None, True)
    assert none.details()["training_accuracy"] == [0.48, 0.51]


@needs_cleanlab
def test_find_issues_warns_when_the_count_rests_on_underfit_epochs(tmp_path, capsys):
    from training_dynamics.cli import run_command

    rng = np.random.default_rng(0)
    n = 400
    gold = np.arange(n) % 2
    dy = dynamics_file.dynamics_dir(tmp_path / "run")
    for e in range(2):  # a model that never left chance: it predicts the first class, with a little noise
        logits = np.c_[np.full(n, 0.5), np.zeros(n)] + rng.normal(scale=0.1, size=(n, 2))
        dynamics_file.write_epoch(dy, e, np.arange(n), logits.astype(np.float32), gold)
    (dy / dynamics_file.META_NAME).write_text(json.dumps({"label_names": ["neg", "pos"]}))
    assert run_command("find-issues", ["--source", "dynamics", "--run_dir", str(tmp_path / "run"),
                                       "--output_dir", str(tmp_path / "issues"), "--disable_tqdm"]) == 0
    assert "the count rests on underfit epochs" in capsys.readouterr().err
    settings = json.loads((tmp_path / "issues" / "label_issues_settings.json").read_text())
    assert settings["count_epochs"] == 2 and settings["first_fitted_epoch"] is None
    assert len(settings["training_accuracy"]) == 2


@needs_cleanlab
@pytest.mark.slow
def test_default_count_holds_on_a_short_run(tmp_path):
    """A tiny BERT, 900 examples with 10% of labels flipped, 2 epochs: epoch 0 is still near chance
    (counted alone it took about a third of the labels for wrong); the default count stays near the truth."""
    from training_dynamics.demo.data import LABEL_NAMES, build_tiny_bert, make_examples

    rows = make_examples(900, seed=0, noisy=False)
    flipped = np.zeros(900, dtype=bool)
    flipped[np.random.default_rng(0).choice(900, size=90, replace=False)] = True
    names = list(LABEL_NAMES)
    with open(tmp_path / "train.jsonl", "w") as fh:
        for i, r in enumerate(rows):
            label = names[1 - names.index(r["label"])] if flipped[i] else r["label"]
            fh.write(json.dumps({"sentence": r["sentence"], "label": label}) + "\n")
    model = build_tiny_bert(tmp_path / "model", [r["sentence"] for r in rows], hidden_size=32)
    run_cli("run_glue_and_record_td.py", "--model_name_or_path", model, "--train_file", tmp_path / "train.jsonl",
            "--output_dir", tmp_path / "out", "--dy_log_dir", tmp_path / "dy", "--dy_model_name", "tiny",
            "--dy_task_name", "train",
            "--num_train_epochs", 2, "--per_device_train_batch_size", 32, "--learning_rate", "5e-3",
            "--max_seq_length", 64, "--report_to", "none", "--save_strategy", "no", "--seed", 1,
            "--disable_tqdm", "true")
    run_cli("find_label_issues.py", "--source", "dynamics", "--run_dir", tmp_path / "dy" / "train" / "tiny",
            "--output_dir", tmp_path / "issues")
    got = pd.read_json(tmp_path / "issues" / "label_issues.jsonl", lines=True).set_index("guid").sort_index()
    flagged = got["is_label_issue"].to_numpy()
    precision, recall = _precision_recall(flagged, flipped)
    assert 0.6 * 90 <= flagged.sum() <= 1.6 * 90, flagged.sum()
    assert precision >= 0.5 and recall >= 0.5, (precision, recall)
    settings = json.loads((tmp_path / "issues" / "label_issues_settings.json").read_text())
    assert settings["count_epochs"] == 2 and settings["first_fitted_epoch"] == 1
