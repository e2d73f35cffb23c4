"""An honest "cannot count" (decisions/evidence.py and each kind's evidence): a run whose model did not fit its data still
ranks, but says so in one line instead of flagging a quarter of the data, for every kind; a fitted run
still counts. Runs are written as epoch files directly (no training needed)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from training_dynamics.core import dynamics_file
from training_dynamics.kinds.generative import dynamics as gen_dynamics
from training_dynamics.kinds.generative import evidence as generative_evidence
from training_dynamics.decisions import evidence
from training_dynamics.kinds.token import dynamics as token_dynamics
from training_dynamics.cli import run_command

pytest.importorskip("cleanlab")
NAMES = ["neg", "pos", "neu"]


def _classification_run(path, *, n=600, epochs=2, learned=True, seed=0):
    """A 3-class run with 10% uniform flips: ``learned``: the model learns the clean class (and fits no flip);
    else its logits stay near zero (a model at chance). Returns the flipped mask by guid."""
    rng = np.random.default_rng(seed)
    clean = rng.integers(3, size=n)
    flipped = np.zeros(n, dtype=bool)
    flipped[rng.choice(n, size=n // 10, replace=False)] = True
    noisy = np.where(flipped, (clean + rng.integers(1, 3, size=n)) % 3, clean)
    dy = dynamics_file.dynamics_dir(path)
    for e in range(epochs):
        logits = rng.normal(scale=0.3 if not learned else 1.0, size=(n, 3))
        if learned:
            logits[np.arange(n), clean] += 3.0 + e
        dynamics_file.write_epoch(dy, e, np.arange(n), logits.astype(np.float32), noisy)
    (dy / dynamics_file.META_NAME).write_text(json.dumps({"label_names": NAMES}))
    return flipped


def _find(run, out, *extra):
    return run_command("find-issues", ["--source", "dynamics", "--run_dir", str(run), "--output_dir", str(out),
                                       "--disable_tqdm", *extra])


def test_judge_classification_by_hand():
    gold = np.array([0, 0, 1, 1])
    fitted = np.array([[0.9, 0.1], [0.1, 0.9], [0.2, 0.8], [0.1, 0.9]])  # guid 1: the label is rejected (0.1 <= 0.25)
    v = evidence.judge_classification(fitted, gold, num_flagged=1)
    assert v.countable and v.supported.tolist() == [False, True, False, False]
    assert v.numbers["rejected"] == 1 and v.numbers["reject_below"] == 0.25
    flat = np.array([[0.45, 0.55], [0.55, 0.45], [0.4, 0.6], [0.6, 0.4]])  # disagrees, rejects nothing
    v = evidence.judge_classification(flat, gold, num_flagged=2)
    assert not v.countable and v.supported.sum() == 0 and "near chance" in v.reasons[0]
    # above chance (0.67 against 0.50), but of the 2 it disagrees with it rejects none
    half = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    v = evidence.judge_classification(half, np.array([0, 0, 0, 1, 1, 1]), num_flagged=2)
    assert not v.countable and "rejects the given label of only 0 examples, 0% of the 2" in v.reasons[0]


def test_a_classification_run_that_learned_nothing_cannot_count(tmp_path, capsys):
    _classification_run(tmp_path / "run", learned=False)
    assert _find(tmp_path / "run", tmp_path / "issues") == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("rank_count: cannot count the wrong labels of 600: training accuracy")
    assert "near chance" in out[0] and "--cross_fit 2" in out[0] and "is_label_issue marks none" in out[0]
    got = pd.read_json(tmp_path / "issues" / "label_issues.jsonl", lines=True)
    assert len(got) == 600 and got["is_label_issue"].sum() == 0 and got["rank"].tolist() == list(range(1, 601))
    dec = json.loads((tmp_path / "issues" / "label_issues_settings.json").read_text())["decision"]
    assert dec["countable"] is False and dec["num_label_issues"] == 0 and dec["by_class_pair"] == []
    assert dec["would_flag"] >= 150  # what the count would have flagged: a quarter of the data or more
    assert dec["cannot_count"] == out[0] and dec["evidence"]["chance_accuracy"] > 0.3


def test_a_fitted_classification_run_still_counts(tmp_path, capsys):
    flipped = _classification_run(tmp_path / "run", learned=True)
    assert _find(tmp_path / "run", tmp_path / "issues") == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("rank_count: estimated ") and "cannot" not in line
    got = pd.read_json(tmp_path / "issues" / "label_issues.jsonl", lines=True).set_index("guid").sort_index()
    flagged = got["is_label_issue"].to_numpy()
    assert 0.8 * flipped.sum() <= flagged.sum() <= 1.25 * flipped.sum()
    assert (flagged & flipped).sum() >= 0.8 * flipped.sum()
    dec = json.loads((tmp_path / "issues" / "label_issues_settings.json").read_text())["decision"]
    assert dec["countable"] is True and dec["evidence"]["rejected_share_of_count"] >= evidence.MIN_REJECTED_SHARE


def test_the_count_window_grows_until_the_model_rejects_what_it_counts(tmp_path, capsys):
    """Epoch 0 looks fitted by the training curve (well above chance, and epoch 1 adds little) but the model only
    leans to the clean class; by epoch 1 it rejects the flipped labels: the window grows to 0..1."""
    rng = np.random.default_rng(1)
    n = 900
    clean = rng.integers(3, size=n)
    flipped = np.zeros(n, dtype=bool)
    flipped[rng.choice(n, size=90, replace=False)] = True
    noisy = np.where(flipped, (clean + rng.integers(1, 3, size=n)) % 3, clean)
    dy = dynamics_file.dynamics_dir(tmp_path / "run")
    for e, (lean, scale) in enumerate([(0.8, 0.4), (4.0, 0.5)]):
        logits = rng.normal(scale=scale, size=(n, 3))
        logits[np.arange(n), clean] += lean
        dynamics_file.write_epoch(dy, e, np.arange(n), logits.astype(np.float32), noisy)
    (dy / dynamics_file.META_NAME).write_text(json.dumps({"label_names": NAMES}))
    assert _find(tmp_path / "run", tmp_path / "issues") == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("rank_count: estimated ")
    settings = json.loads((tmp_path / "issues" / "label_issues_settings.json").read_text())
    assert settings["count_epochs"] == 2 and settings["count_window_grown_by"] == "the evidence (rejected labels)"
    got = pd.read_json(tmp_path / "issues" / "label_issues.jsonl", lines=True).set_index("guid").sort_index()
    assert 0.7 * 90 <= got["is_label_issue"].sum() <= 1.4 * 90


def _generative_run(path, values):
    dy = path / "training_dynamics"
    dy.mkdir(parents=True)
    for e in range(values.shape[1]):
        gen_dynamics.write_generative_epoch(dy, e, np.arange(len(values)), values[:, e])
    (dy / "dynamics_meta.json").write_text(json.dumps({"kind": "generative", "label_names": ["response", "other"],
                                                       "num_labels": 2, "num_examples": len(values)}))


def test_a_lora_like_run_that_learned_nothing_cannot_count(tmp_path, capsys):
    """400 responses, 2 epochs; the loss stays where it started and no response is ever learned (the LoRA run of
    issue 27: "never learned: 400 of 400", yet 102 flagged)."""
    rng = np.random.default_rng(0)
    n = 400
    base = rng.normal(-3.0, 0.6, size=n)
    base[:100] -= 1.5  # a hard quarter: a mixture splits it off
    values = np.stack([np.stack([base + rng.normal(0, 0.02, n), rng.uniform(0.1, 0.4, n), np.full(n, 12.0)], axis=1)
                       for _ in range(2)], axis=1)
    _generative_run(tmp_path / "run", values)
    assert _find(tmp_path / "run", tmp_path / "issues") == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("score_mixture: cannot count the wrong responses of 400: the response "
                                               "loss did not fall over the 2 epochs")
    assert "100% of the responses were never learned" in out[0] and "is_label_issue marks none" in out[0]
    got = pd.read_json(tmp_path / "issues" / "label_issues.jsonl", lines=True)
    assert got["is_label_issue"].sum() == 0 and len(got) == 400
    dec = json.loads((tmp_path / "issues" / "label_issues_settings.json").read_text())["decision"]
    assert dec["countable"] is False and dec["would_flag"] >= 60
    assert dec["evidence"]["never_learned_share"] == 1.0 and dec["evidence"]["loss_drop"] < generative_evidence.MIN_LOSS_DROP


def test_a_generative_run_that_learned_still_flags(tmp_path, capsys):
    rng = np.random.default_rng(0)
    n = 400
    bad = np.zeros(n, dtype=bool)
    bad[rng.choice(n, size=40, replace=False)] = True
    epochs = []
    for e in range(3):
        logprob = np.where(bad, -3.0 + 0.1 * e, -2.0 + 0.8 * e) + rng.normal(0, 0.1, n)
        acc = np.where(bad, 0.3, 0.5 + 0.25 * e)
        epochs.append(np.stack([logprob, acc, np.full(n, 10.0)], axis=1))
    _generative_run(tmp_path / "run", np.stack(epochs, axis=1))
    assert _find(tmp_path / "run", tmp_path / "issues") == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("score_mixture: ") and "cannot" not in line
    got = pd.read_json(tmp_path / "issues" / "label_issues.jsonl", lines=True).set_index("guid").sort_index()
    assert (got["is_label_issue"].to_numpy() == bad).mean() >= 0.95


def _ner_run(tmp_path, *, learned_rare: bool, n=300, epochs=2, seed=0):
    """Sentences of 8 words, mostly O, with PER (common) and a rare PROD mention; 5% of the PER tags planted as O.
    The model learns O and PER; it learns PROD only when ``learned_rare`` (else always predicts O for it)."""
    names = ["B-PER", "B-PROD", "O"]
    rng = np.random.default_rng(seed)
    words = [[f"w{rng.integers(50)}" for _ in range(8)] for _ in range(n)]
    clean = np.full((n, 8), 2)
    clean[:, 1] = 0  # a PER mention in every sentence
    prod = rng.random(n) < 0.1
    clean[prod, 5] = 1
    given = clean.copy()
    planted = rng.random(n) < 0.05
    given[planted, 1] = 2  # PER mistagged as O
    with open(tmp_path / "train.jsonl", "w") as fh:
        for i in range(n):
            fh.write(json.dumps({"guid": i, "tokens": words[i], "ner_tags": [names[t] for t in given[i]]}) + "\n")
    dy = tmp_path / "run" / "training_dynamics"
    gold = given.ravel()
    c = clean.ravel().copy()
    if not learned_rare:
        c[c == 1] = 2  # the model predicts O for every PROD word
    for e in range(epochs):
        logits = rng.normal(scale=0.5, size=(len(gold), 3))
        logits[np.arange(len(gold)), c] += 4.0
        logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        others = logits.copy()
        others[np.arange(len(gold)), gold] = -np.inf
        values = np.stack([logp[np.arange(len(gold)), gold], logits.argmax(axis=1),
                           logits[np.arange(len(gold)), gold] - others.max(axis=1), np.zeros(len(gold))], axis=1)
        token_dynamics.write_token_epoch(dy, e, np.arange(n), np.full(n, 8), np.tile(np.arange(8), n), gold, values)
    meta = {"kind": "token_classification", "num_labels": 3, "label_names": names,
            "data": {"train_file": str(tmp_path / "train.jsonl"), "text_columns": ["tokens"], "label_column": "ner_tags"}}
    (dy / "dynamics_meta.json").write_text(json.dumps(meta))
    return planted


@pytest.mark.parametrize("learned_rare", [False, True])
def test_a_ner_run_that_never_learned_a_rare_type_cannot_count(tmp_path, capsys, learned_rare):
    from training_dynamics.analysis.run import Run
    from training_dynamics.kinds.token.issues import find_word_issues

    planted = _ner_run(tmp_path, learned_rare=learned_rare)
    table, dec, settings = find_word_issues(Run(tmp_path / "run"))
    flagged_prod = table["is_label_issue"] & ((table["gold_name"] == "B-PROD") | (table["likely_true_name"] == "B-PROD"))
    per_flags = table[table["is_label_issue"] & (table["word_index"] == 1)]
    if learned_rare:
        assert dec.details["countable"] is True and "cannot_count" not in dec.details
        assert abs(dec.num_flagged - planted.sum()) <= 0.2 * planted.sum() + 2
    else:  # every PROD word looks like an O -> ... error: the count would take them all
        line = dec.details["cannot_count"]
        assert line.startswith("rank_count: cannot count the wrong word tags of 2400: the model never learned 1 of "
                               "the 2 tags (words right at epoch 0: B-PROD 0/")
        assert dec.details["would_flag"] > dec.num_flagged and flagged_prod.sum() == 0
        assert settings["decision"]["evidence"]["never_learned_tags"] == ["B-PROD"]
    # the supported flags are the planted PER -> O errors in either case
    assert set(per_flags["guid"]) <= set(np.flatnonzero(planted)) and len(per_flags) >= 0.8 * planted.sum()
