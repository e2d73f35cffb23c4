"""find_label_issues.py: ranking by a trained model's loss and by recorded dynamics."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import run_cli
from training_dynamics.decisions import ranking as le
from training_dynamics.core import dynamics_file
from training_dynamics.analysis import selection
from training_dynamics.analysis.run import METRICS_NAME, SETTINGS_NAME, Run
from training_dynamics.core.arguments import DataArguments


def _read_jsonl(path) -> pd.DataFrame:
    return pd.DataFrame([json.loads(line) for line in open(path, encoding="utf-8")])


def _model_dir(recorded_run):
    """The model trained by the ``recorded_run`` fixture (its --output_dir is beside dy_log)."""
    return recorded_run.parents[2] / "model_out"


def _demo_rows(demo_data) -> list[dict]:
    return [json.loads(line) for line in open(demo_data["train"], encoding="utf-8")]


# -- arithmetic -------------------------------------------------------------------------------------
def test_loss_and_probabilities_are_per_example_softmax_over_classes():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=4, size=(9, 3)).astype(np.float32)
    gold = rng.integers(3, size=9)
    loss, probs = le.loss_and_probabilities(logits, gold)
    want = torch.nn.functional.cross_entropy(torch.tensor(logits, dtype=torch.float64), torch.tensor(gold),
                                             reduction="none").numpy()
    np.testing.assert_allclose(loss, want, rtol=1e-12)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)  # over classes, each example
    np.testing.assert_allclose(probs, torch.softmax(torch.tensor(logits, dtype=torch.float64), dim=-1).numpy())
    # one example's probabilities do not depend on the rest of the batch
    np.testing.assert_allclose(le.loss_and_probabilities(logits[:1], gold[:1])[1], probs[:1])


def test_align_labels_by_name():
    m, names = le.align_labels(["positive", "negative"], ["negative", "positive"])
    assert m.tolist() == [1, 0] and names == ["positive", "negative"]
    m, names = le.align_labels(["a", "b", "c"], ["c", "a"])  # data may lack a class
    assert m.tolist() == [2, 0] and names == ["a", "b", "c"]
    m, names = le.align_labels(["POSITIVE", "NEGATIVE"], ["negative", "positive"])  # case-insensitive fallback
    assert m.tolist() == [1, 0] and names == ["positive", "negative"]  # the data's spelling
    m, names = le.align_labels(["a", "b", "c"], ["c", "a"])
    assert m.tolist() == [2, 0] and names == ["a", "b", "c"]
    with pytest.raises(ValueError, match=r"\['neutral'\] are not among the model's classes"):
        le.align_labels(["negative", "positive"], ["negative", "neutral"])
    with pytest.raises(ValueError, match="--trust_label_order"):
        le.align_labels(["LABEL_0", "LABEL_1"], ["negative", "positive"])
    m, names = le.align_labels(["LABEL_0", "LABEL_1"], ["negative", "positive"], trust_order=True)
    assert m.tolist() == [0, 1] and names == ["negative", "positive"]
    with pytest.raises(ValueError, match="only for models without label names"):
        le.align_labels(["positive", "negative"], ["negative", "positive"], trust_order=True)


def test_rank_examples_sorts_by_score_then_guid():
    df = le.rank_examples(guids=np.array([5, 3, 9, 1]), texts=list("abcd"), gold=np.array([0, 1, 1, 0]),
                          probabilities=np.array([[.9, .1], [.2, .8], [.6, .4], [.3, .7]]),
                          score=np.array([0.5, 2.0, 0.5, 1.0]), score_name="loss", label_names=["n", "p"], top_k=3)
    assert df["guid"].tolist() == [3, 1, 5]  # 0.5 tie: guid 5 before 9
    assert df["rank"].tolist() == [1, 2, 3]
    assert df["predicted_name"].tolist() == ["p", "p", "n"] and df["gold_name"].tolist() == ["p", "n", "n"]
    assert df.attrs["label_names"] == ["n", "p"]


# -- model source -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_model_ranking_equals_a_manual_per_example_computation(recorded_run, demo_data, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model_dir, out = _model_dir(recorded_run), tmp_path / "issues"
    run_cli("find_label_issues.py", "--source", "model", "--model_name_or_path", model_dir,
            "--train_file", demo_data["train"], "--output_dir", out, "--model_dir", recorded_run,
            "--batch_size", 7, "--disable_tqdm")
    got = _read_jsonl(out / le.ISSUES_NAME)
    rows = _demo_rows(demo_data)
    assert len(got) == len(rows) and sorted(got["guid"]) == list(range(len(rows)))

    # the obvious loop: one example at a time, no padding, eval mode, no grad
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    assert names == ["negative", "positive"]
    want_loss, want_probs, want_gold = [], [], []
    with torch.no_grad():
        for r in rows:
            logits = model(**tok(r["sentence"], return_tensors="pt")).logits[0].double()
            y = names.index(r["label"])
            want_loss.append(float(-torch.log_softmax(logits, -1)[y]))
            want_probs.append(torch.softmax(logits, -1).numpy())
            want_gold.append(y)
    g = got.set_index("guid").sort_index()
    np.testing.assert_allclose(g["score"], want_loss, atol=2e-5)
    np.testing.assert_allclose(g["loss"], g["score"])
    probs = np.array(g["probabilities"].tolist())
    np.testing.assert_allclose(probs, np.array(want_probs), atol=2e-5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    assert g["gold"].tolist() == want_gold
    assert g["gold_name"].tolist() == [r["label"] for r in rows]
    assert g["text"].tolist() == [r["sentence"] for r in rows]
    assert (g["predicted"] == probs.argmax(axis=1)).all()
    assert (g["predicted_name"] == np.array(names)[probs.argmax(axis=1)]).all()
    # most suspicious first
    assert got["rank"].tolist() == list(range(1, len(got) + 1))
    assert (np.diff(got["score"].to_numpy()) <= 0).all()
    assert set(got["score_name"]) == {"loss"}
    # regions of the recorded run, matched by guid
    df = Run(recorded_run).metrics()
    want_region = pd.Series(selection.region_of(df).to_numpy(), index=df["guid"])
    assert g["region"].tolist() == want_region.reindex(g.index).tolist()
    assert {"hard", "easy", "ambiguous"} <= set(g["region"])
    # csv + settings beside it
    csv = pd.read_csv(out / le.ISSUES_CSV, keep_default_na=False)
    assert csv["guid"].tolist() == got["guid"].tolist()
    np.testing.assert_allclose(np.array([json.loads(p) for p in csv["probabilities"]]), np.array(got["probabilities"].tolist()))
    settings = json.loads((out / le.SETTINGS_NAME).read_text())
    assert settings["label_names"] == names and settings["score_name"] == "loss" and settings["source"] == "model"


@pytest.mark.slow
def test_model_labels_are_matched_by_name_not_position(recorded_run, demo_data, tmp_path):
    """A model whose id2label order is the reverse of the data's sorted order gives the same ranking."""
    from transformers import AutoModelForSequenceClassification

    src = _model_dir(recorded_run)
    flipped = tmp_path / "flipped"
    shutil.copytree(src, flipped)
    model = AutoModelForSequenceClassification.from_pretrained(src)
    with torch.no_grad():
        model.classifier.weight.copy_(model.classifier.weight.flip(0))
        model.classifier.bias.copy_(model.classifier.bias.flip(0))
    model.config.id2label = {0: "positive", 1: "negative"}
    model.config.label2id = {"positive": 0, "negative": 1}
    model.save_pretrained(flipped)

    data = DataArguments(train_file=str(demo_data["train"])).load()
    assert data.label_names == ["negative", "positive"]  # sorted: the opposite of the flipped model
    a = le.issues_from_model(data, str(src), batch_size=32, progress=False).set_index("guid").sort_index()
    b = le.issues_from_model(data, str(flipped), batch_size=32, progress=False).set_index("guid").sort_index()
    assert b.attrs["label_names"] == ["positive", "negative"]
    assert (b["gold"] == 1 - a["gold"]).all()  # ids follow the model ...
    assert (b["gold_name"] == a["gold_name"]).all() and (b["predicted_name"] == a["predicted_name"]).all()  # names agree
    np.testing.assert_allclose(b["score"], a["score"], atol=1e-6)
    np.testing.assert_allclose(np.array(b["probabilities"].tolist())[:, ::-1], np.array(a["probabilities"].tolist()),
                               atol=1e-6)


@pytest.mark.slow
def test_model_without_label_names_needs_trust_label_order(tiny_model, demo_data, tmp_path):
    proc = run_cli("find_label_issues.py", "--source", "model", "--model_name_or_path", tiny_model,
                   "--train_file", demo_data["train"], "--output_dir", tmp_path / "o", "--disable_tqdm", check=False)
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()[-1]
    assert err.startswith("find_label_issues.py: error: ") and "--trust_label_order" in err
    assert "Traceback" not in proc.stderr and not (tmp_path / "o").exists()
    data = DataArguments(train_file=str(demo_data["train"])).load()
    got = le.issues_from_model(data, str(tiny_model), trust_label_order=True, top_k=5, progress=False)
    assert len(got) == 5 and got.attrs["label_names"] == ["negative", "positive"]
    assert set(got["region"]) == {""}  # no dynamics given


# -- dynamics source --------------------------------------------------------------------------------
@pytest.mark.slow
def test_dynamics_ranking_by_confidence_and_aum(recorded_run, demo_data, tmp_path):
    out = tmp_path / "conf"
    run_cli("find_label_issues.py", "--source", "dynamics", "--model_dir", recorded_run, "--output_dir", out,
            "--disable_tqdm")
    got = _read_jsonl(out / le.ISSUES_NAME)
    dyn = dynamics_file.read_dynamics(dynamics_file.dynamics_dir(recorded_run), progress=False)
    n = len(dyn.guids)
    p = np.exp(dyn.logits - dyn.logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    mean_p = p.mean(axis=1)  # (N, C): mean over epochs of each epoch's softmax
    confidence = mean_p[np.arange(n), dyn.gold]
    want = pd.DataFrame({"guid": dyn.guids, "score": 1 - confidence, "gold": dyn.gold}).set_index("guid")
    g = got.set_index("guid")
    assert len(got) == n and set(g.index) == set(want.index)
    np.testing.assert_allclose(g["score"], want["score"].reindex(g.index), atol=1e-9)
    np.testing.assert_allclose(np.array(g["probabilities"].tolist()), mean_p[pd.Index(dyn.guids).get_indexer(g.index)],
                               atol=1e-9)
    assert (g["gold"] == want["gold"].reindex(g.index)).all()
    assert (np.diff(got["score"].to_numpy()) <= 0).all() and got["rank"].tolist() == list(range(1, n + 1))
    assert set(got["score_name"]) == {"1-confidence"}
    texts = [r["sentence"] for r in _demo_rows(demo_data)]
    assert g["text"].tolist() == [texts[i] for i in g.index]  # guid = row index of the demo file
    df = Run(recorded_run).metrics()
    assert g["region"].tolist() == pd.Series(selection.region_of(df).to_numpy(), index=df["guid"]).reindex(g.index).tolist()
    hard = selection.three_regions(df)["hard"]  # lowest confidence = the top of this ranking
    assert set(got["guid"].head(len(hard))) == set(hard)

    out = tmp_path / "aum"
    saved = {name: (recorded_run / name).read_bytes() for name in (METRICS_NAME, SETTINGS_NAME)}
    run_cli("find_label_issues.py", "--source", "dynamics", "--model_dir", recorded_run, "--output_dir", out,
            "--score", "aum", "--burn_out", 3, "--top_k", 10, "--disable_tqdm")
    # ranking only reads the run: the all-epoch td_metrics.jsonl stays as it was
    assert all((recorded_run / name).read_bytes() == data for name, data in saved.items())
    got = _read_jsonl(out / le.ISSUES_NAME)
    z = dyn.logits[:, :3]
    zg = z[np.arange(n), :, dyn.gold]
    other = np.where(np.arange(z.shape[2])[None, None, :] == dyn.gold[:, None, None], -np.inf, z).max(-1)
    aum = pd.Series((zg - other).mean(axis=1), index=dyn.guids)
    top = (-aum).sort_values(ascending=False, kind="stable").head(10)
    assert got["guid"].tolist() == top.index.tolist()
    np.testing.assert_allclose(got["score"], top.to_numpy(), atol=1e-9)
    assert set(got["score_name"]) == {"-aum"}
    assert json.loads((out / le.SETTINGS_NAME).read_text())["burn_out"] == 3


@pytest.mark.parametrize("args, message", [
    (["--source", "dynamics"], "needs --run_dir"),
    (["--source", "model", "--train_file", "x.jsonl"], "needs --model_name_or_path"),
    (["--source", "dynamics", "--model_dir", "no/such/run"], "no/such/run"),
    (["--source", "model", "--model_name_or_path", "m", "--train_file", "x.jsonl", "--decision", "aum_threshold"],
     "needs --source dynamics and --threshold_run_dir"),
    (["--source", "model", "--model_name_or_path", "m", "--train_file", "x.jsonl", "--count_epochs", "2"],
     "--count_epochs is for --decision rank_count with --source dynamics"),
])
def test_bad_input_is_a_one_line_error(args, message, tmp_path):
    proc = run_cli("find_label_issues.py", *args, "--output_dir", tmp_path / "o", check=False)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr.strip().splitlines()[-1] and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_decision_end_to_end_on_a_recorded_run(recorded_run, demo_data, tmp_path):
    """The default ranking and decision through the script; the flagged set is the top of the ranking.
    (The 150-example fixture model is too weak to find its flips: precision and recall are tested on
    planted noise in test_decision.py.)"""
    pytest.importorskip("cleanlab")
    out = tmp_path / "decided"
    proc = run_cli("find_label_issues.py", "--source", "dynamics", "--model_dir", recorded_run, "--output_dir", out,
                   "--disable_tqdm")
    got = _read_jsonl(out / le.ISSUES_NAME)
    settings = json.loads((out / le.SETTINGS_NAME).read_text())
    dec = settings["decision"]
    flagged = got["is_label_issue"].astype(bool)
    assert dec["rule"] == "rank_count" and dec["num_examples"] == len(got)
    assert dec["num_label_issues"] == int(flagged.sum()) == sum(p["count"] for p in dec["by_class_pair"])
    # the fixture model never leaves chance (training accuracy 0.57 in every epoch, 0.57 by always predicting the
    # most common label): find-issues says it cannot count, in one line, and flags only what the evidence supports
    assert not dec["countable"] and dec["would_flag"] > dec["num_label_issues"]
    assert proc.stdout.startswith(f"rank_count: cannot count the wrong labels of {len(got)}: training accuracy 0.57")
    assert "near chance" in proc.stdout and "--cross_fit 2" in proc.stdout and len(proc.stdout.splitlines()) == 1
    assert (got["likely_true"] != got["gold"]).all()
    assert set(got["likely_true_name"]) <= {"negative", "positive"}
    assert flagged.tolist() == (got["rank"] <= int(flagged.sum())).tolist()  # the top of the ranking
    pairs = got[flagged].groupby(["gold_name", "likely_true_name"]).size().to_dict()
    assert pairs == {(p["given"], p["likely_true"]): p["count"] for p in dec["by_class_pair"]}
    # --top_k keeps the decision over the whole set; --decision none leaves the columns out
    run_cli("find_label_issues.py", "--source", "dynamics", "--model_dir", recorded_run, "--output_dir", tmp_path / "k",
            "--top_k", 5, "--disable_tqdm")
    top = _read_jsonl(tmp_path / "k" / le.ISSUES_NAME)
    assert len(top) == 5 and top["is_label_issue"].tolist() == got["is_label_issue"].head(5).tolist()
    run_cli("find_label_issues.py", "--source", "dynamics", "--model_dir", recorded_run, "--output_dir", tmp_path / "n",
            "--decision", "none", "--disable_tqdm")
    assert "is_label_issue" not in _read_jsonl(tmp_path / "n" / le.ISSUES_NAME)
    assert json.loads((tmp_path / "n" / le.SETTINGS_NAME).read_text())["decision"] == {"rule": "none"}
