"""Token classification (NER): word alignment, the on-device word values, the token epoch files,
per-word and per-sentence metrics against plain loops, and (slow) the whole pipeline end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training_dynamics.analysis import metrics
from training_dynamics.kinds.token import dynamics as token_dynamics, metrics as token_metrics
from training_dynamics.core.dynamics_file import DynamicsError


def _random_run(tmp_path, *, n=6, epochs=3, classes=5, seed=0, fmt="jsonl", shuffle_later=True):
    """Write a token run of ``n`` sentences with random per-word values; returns what was written."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 6, size=n)
    w = int(counts.sum())
    guids = np.arange(100, 100 + n)
    word_index = np.concatenate([np.arange(c) for c in counts])
    gold = rng.integers(0, classes, size=w)
    logits = rng.normal(size=(w, epochs, classes)) * 2
    per = metrics.per_epoch_arrays(logits, gold)
    dy = tmp_path / "run" / "training_dynamics"
    for e in range(epochs):
        values = np.stack([per["logp_gold"][:, e], per["pred"][:, e], per["margin"][:, e], per["el2n"][:, e]], axis=1)
        order = np.arange(n)
        if shuffle_later and e > 0:
            order = rng.permutation(n)  # sentences in another order in later epochs
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        idx = np.concatenate([np.arange(starts[s], starts[s] + counts[s]) for s in order])
        token_dynamics.write_token_epoch(dy, e, guids[order], counts[order], word_index[idx], gold[idx], values[idx],
                                         fmt=fmt)
    (dy / "dynamics_meta.json").write_text(json.dumps({"kind": "token_classification", "num_labels": classes,
                                                       "label_names": [f"T{i}" for i in range(classes)]}))
    return dy, guids, counts, gold, logits


@pytest.mark.parametrize("fmt", ["jsonl", "npz"])
def test_token_epoch_files_round_trip_and_metrics_match_a_loop(tmp_path, fmt):
    dy, guids, counts, gold, logits = _random_run(tmp_path, fmt=fmt)
    dyn = token_dynamics.read_token_dynamics(dy)
    np.testing.assert_array_equal(dyn.guids, guids)
    np.testing.assert_array_equal(dyn.gold, gold)
    words = token_metrics.word_metrics(dyn)
    # per-word reference: softmax of the full logits, one word at a time
    for k in range(len(gold)):
        z = logits[k]
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        pg = p[:, gold[k]]
        correct = z.argmax(1) == gold[k]
        others = np.delete(z, gold[k], axis=1)
        assert words["confidence"][k] == pytest.approx(pg.mean(), rel=1e-5)
        assert words["variability"][k] == pytest.approx(pg.std(), rel=1e-4, abs=1e-6)
        assert words["correctness"][k] == correct.sum()
        forgot = sum(correct[e] and not correct[e + 1] for e in range(len(correct) - 1))
        assert words["forgetfulness"][k] == (1000 if not correct.any() else forgot)
        assert words["aum"][k] == pytest.approx((z[:, gold[k]] - others.max(1)).mean(), rel=1e-5)
        assert words["loss"][k] == pytest.approx(-np.log(pg).mean(), rel=1e-5)
        assert words["el2n"][k] == pytest.approx(np.linalg.norm(p - np.eye(z.shape[1])[gold[k]], axis=1).mean(), rel=1e-4)
    assert words["guid"].tolist() == np.repeat(guids, counts).tolist()
    sent = token_metrics.sentence_metrics(words, dyn.guids, dyn.num_words)
    start = 0
    for s, c in enumerate(counts):
        conf = words["confidence"][start:start + c]
        worst = start + int(np.argmin(conf))
        assert sent["confidence"][s] == conf.min()
        assert sent["least_confident_word"][s] == words["word_index"][worst]
        assert sent["variability"][s] == words["variability"][worst]
        assert sent["mean_confidence"][s] == pytest.approx(conf.mean())
        assert sent["aum"][s] == words["aum"][start:start + c].min()
        assert sent["num_words"][s] == c
        start += c


def test_token_epoch_reader_refuses_changed_words(tmp_path):
    dy, guids, counts, gold, _ = _random_run(tmp_path, epochs=2, shuffle_later=False)
    path = dy / "dynamics_epoch_1.jsonl"
    lines = path.read_text().splitlines()
    rec = json.loads(lines[0])
    rec["gold"][0] = (rec["gold"][0] + 1) % 5
    path.write_text("\n".join([json.dumps(rec)] + lines[1:]) + "\n")
    with pytest.raises(DynamicsError, match="gold tag .* tags must not change"):
        token_dynamics.read_token_dynamics(dy)


def test_word_values_on_device_match_numpy():
    torch = pytest.importorskip("torch")
    from training_dynamics.kinds.token.record import word_values

    rng = np.random.default_rng(1)
    z = rng.normal(size=(40, 7)).astype(np.float32) * 3
    gold = rng.integers(0, 7, size=40)
    got = word_values(torch.tensor(z), torch.tensor(gold)).numpy()
    ref = metrics.per_epoch_arrays(z[:, None, :].astype(np.float64), gold)
    np.testing.assert_allclose(got[:, 0], ref["logp_gold"][:, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got[:, 1], ref["pred"][:, 0])
    np.testing.assert_allclose(got[:, 2], ref["margin"][:, 0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[:, 3], ref["el2n"][:, 0], rtol=1e-5, atol=1e-6)


def test_alignment_first_sub_token_labels_the_word():
    from datasets import Dataset

    from training_dynamics.kinds.token.data import IGNORE_INDEX, TAGS, TOKENS, WORD, tokenize_and_align
    from training_dynamics.demo.ner_data import LABEL_NAMES, build_wordpiece_tokenizer

    names = list(LABEL_NAMES)
    tok = build_wordpiece_tokenizer(["anna", "visited", "valencia", "today"], split=["valencia"])
    tags = [names.index("B-PER"), names.index("O"), names.index("B-LOC"), names.index("O")]
    ds = Dataset.from_dict({TOKENS: [["anna", "visited", "valencia", "today"]], TAGS: [tags], "guid": [0]})
    enc = tokenize_and_align(ds, tok, label_names=names)[0]
    assert tok.convert_ids_to_tokens(enc["input_ids"]) == ["[CLS]", "anna", "visited", "vale", "##ncia", "today", "[SEP]"]
    assert enc["labels"] == [IGNORE_INDEX, tags[0], tags[1], tags[2], IGNORE_INDEX, tags[3], IGNORE_INDEX]
    assert enc[WORD] == [-1, 0, 1, 2, -1, 3, -1]
    assert enc["word_index"] == [0, 1, 2, 3] and enc["word_tags"] == tags
    every = tokenize_and_align(ds, tok, label_names=names, label_all_tokens=True)[0]
    assert every["labels"][4] == names.index("I-LOC")  # B- becomes I- on the later sub-tokens
    assert every[WORD] == enc[WORD]  # the dynamics still come from the first sub-token
    cut = tokenize_and_align(ds, tok, label_names=names, max_seq_length=5)[0]
    assert cut["word_index"] == [0, 1, 2]  # "today" lost to truncation is not recorded
    assert enc["num_tokens"] == cut["num_tokens"] == 7  # the sentence's length before the cut: the run's report


# -- end to end (slow): the real CLIs on generated sentences and a tiny WordPiece BERT -------------
@pytest.fixture(scope="module")
def ner_demo(tmp_path_factory):
    from training_dynamics.demo.ner_data import build_tiny_token_bert, write_ner_demo

    out = tmp_path_factory.mktemp("ner")
    paths = write_ner_demo(out / "data", n_train=300, n_validation=40, seed=3, retype_rate=0.1)
    sentences = [json.loads(line)["tokens"] for key in ("train", "validation") for line in open(paths[key])]
    paths["model"] = build_tiny_token_bert(out / "model", sentences, hidden_size=32)
    paths["out"] = out
    return paths


def sentences_with_guids(sentences: list[dict]) -> list[dict]:
    return [{**s, "guid": i} for i, s in enumerate(sentences)]


def _record_args(d, out, *extra, epochs):
    return ["--model_name_or_path", d["model"], "--train_file", d["train"], "--output_dir", out / "model_out",
            "--dy_log_dir", out / "dy_log", "--dy_model_name", "tiny", "--num_train_epochs", epochs,
            "--learning_rate", "3e-3", "--per_device_train_batch_size", 16, "--report_to", "none",
            "--save_strategy", "no", "--disable_tqdm", "true", "--seed", 1, *extra]


@pytest.mark.slow
def test_ner_pipeline_records_every_word_and_finds_the_retyped_mentions(ner_demo, tmp_path):
    from conftest import run_cli

    from training_dynamics.demo.ner_data import planted_scores, split_words

    epochs = 6
    run_cli("run_ner_and_record_td.py", *_record_args(ner_demo, tmp_path, "--text_column_name", "tokens",
                                                      "--label_column_name", "ner_tags", epochs=epochs))
    run = tmp_path / "dy_log" / "train" / "tiny"
    sentences = [json.loads(line) for line in open(ner_demo["train"])]
    assert any(w in split_words() for s in sentences for w in s["tokens"])  # sub-word splits are exercised
    for e in range(epochs):  # every word of every sentence exactly once per epoch
        rows = [json.loads(line) for line in open(run / "training_dynamics" / f"dynamics_epoch_{e}.jsonl")]
        assert sorted(r["guid"] for r in rows) == list(range(len(sentences)))
        for r in rows:
            assert r["word_index"] == list(range(len(sentences[r["guid"]]["tokens"])))
            assert len(r[f"logprob_epoch_{e}"]) == len(r["word_index"])
    meta = json.loads((run / "training_dynamics" / "dynamics_meta.json").read_text())
    assert meta["kind"] == "token_classification" and meta["num_words"] == sum(len(s["tokens"]) for s in sentences)
    assert meta["truncation"]["num_examples"] == len(sentences) and meta["truncation"]["num_truncated"] == 0

    run_cli("td_metrics.py", "--run_dir", run)
    words = [json.loads(line) for line in open(run / "td_metrics.jsonl")]
    assert len(words) == meta["num_words"] and {"guid", "word_index", "aum", "el2n"} <= set(words[0])
    assert sum(1 for _ in open(run / "td_sentence_metrics.jsonl")) == len(sentences)

    run_cli("find_label_issues.py", "--source", "dynamics", "--run_dir", run, "--output_dir", tmp_path / "issues")
    issues = [json.loads(line) for line in open(tmp_path / "issues" / "label_issues.jsonl")]
    assert len(issues) == meta["num_words"]
    top = issues[0]
    assert top["word"] == sentences[top["guid"]]["tokens"][top["word_index"]] and top["gold_name"] != top["likely_true_name"]
    scores = planted_scores(tmp_path / "issues" / "label_issues.jsonl", ner_demo["truth"])
    assert scores["auroc"] >= 0.9, scores
    # rank_count's estimate comes from the first half of the epochs, which on 300 sentences are still
    # under-trained: the model has not learned I-LOC there (0 of its 69 words right at epoch 2), so the count
    # (391 for 111 planted) is not believed: find-issues says it cannot count and flags only the tags the model
    # rejects, of learned types (kinds/token/evidence.py)
    dec = json.loads((tmp_path / "issues" / "label_issues_settings.json").read_text())["decision"]
    assert dec["countable"] is False and dec["evidence"]["never_learned_tags"] == ["I-LOC"]
    assert dec["would_flag"] > 3 * scores["num_planted"] > dec["num_label_issues"]
    assert scores["recall"] >= 0.6 and scores["precision"] >= 0.9, scores

    # review -> corrections (a reviewer who relabels the flagged words that are wrong and keeps the rest,
    # exported as the page does) -> apply: the planted errors flagged are fixed in the output file
    run_cli("review_label_issues.py", "--issues", tmp_path / "issues" / "label_issues.jsonl")
    page = _page_payload(tmp_path / "issues" / "review.html")  # by default: the flagged words and some context
    num_flagged = sum(bool(r["is_label_issue"]) for r in issues)
    assert len(page["items"]["key"]) == min(meta["num_words"], num_flagged + max(25, -(-num_flagged // 10)))
    assert sum(next(f for f in page["flags"] if f["name"] == "is_label_issue")["values"]) == num_flagged and page["map"]["x"][0] is not None
    truth = {r["guid"]: r for r in map(json.loads, open(ner_demo["truth"]))}
    flagged = [r for r in issues if r["is_label_issue"]]
    choices = {(str(r["guid"]), r["word_index"]): ("keep", r["gold_name"]) if truth[r["guid"]]["clean_tags"][
        r["word_index"]] == r["gold_name"] else ("relabel", truth[r["guid"]]["clean_tags"][r["word_index"]])
        for r in flagged}
    planted_flagged = [r for r in flagged if r["word_index"] in truth[r["guid"]]["noisy_words"]]
    suggested = sum(r["likely_true_name"] == truth[r["guid"]]["clean_tags"][r["word_index"]] for r in planted_flagged)
    assert suggested >= 0.9 * len(planted_flagged)  # the likely true tag of a retyped mention is its own type
    (tmp_path / "corrections.json").write_text(json.dumps(_exported(page, choices)))
    run_cli("apply_corrections.py", "--train_file", ner_demo["train"], "--corrections", tmp_path / "corrections.json",
            "--output", tmp_path / "fixed.jsonl")
    fixed = [json.loads(line) for line in open(tmp_path / "fixed.jsonl")]
    wrong = lambda rows: sum(a != b for r in rows for a, b in zip(r["ner_tags"], truth[r["guid"]]["clean_tags"]))
    assert wrong(sentences_with_guids(sentences)) == scores["num_planted"]
    assert wrong(fixed) == scores["num_planted"] - len(planted_flagged) <= 0.4 * scores["num_planted"]  # flags: supported only
    assert [r["tokens"] for r in fixed] == [s["tokens"] for s in sentences]

    # a sentence retagged since recording: refused in one line, or left out with --allow_changed_data
    changed = tmp_path / "changed.jsonl"
    edited = [dict(s) for s in sentences]
    edited[5]["ner_tags"] = ["B-ORG" if edited[5]["ner_tags"][0] != "B-ORG" else "B-LOC"] + edited[5]["ner_tags"][1:]
    changed.write_text("".join(json.dumps(s) + "\n" for s in edited))
    proc = run_cli("find_label_issues.py", "--source", "dynamics", "--run_dir", run, "--train_file", changed,
                   "--output_dir", tmp_path / "issues2", check=False)
    assert proc.returncode == 2 and "1 of 300 examples" in proc.stderr and "--allow_changed_data" in proc.stderr
    run_cli("find_label_issues.py", "--source", "dynamics", "--run_dir", run, "--train_file", changed,
            "--output_dir", tmp_path / "issues2", "--allow_changed_data")
    left = [json.loads(line) for line in open(tmp_path / "issues2" / "label_issues.jsonl")]
    assert len(left) == meta["num_words"] - len(sentences[5]["tokens"]) and 5 not in {r["guid"] for r in left}

    run_cli("plot_cartography.py", "--run_dir", run, "--output_dir", tmp_path / "plots")
    assert (tmp_path / "plots" / "train_tiny_data_map.png").stat().st_size > 0
    assert (tmp_path / "plots" / "train_tiny_sentence_map.png").stat().st_size > 0

    # regions of sentences, written as data record-ner reads (the same columns, tag names, guids kept)
    run_cli("data_selection.py", "--run_dir", run, "--write_data")
    regions = json.loads((run / "three_regions_data_indices.json").read_text())
    assert len(regions["hard"]) == round(0.33 * len(sentences))
    noisy = {json.loads(line)["guid"] for line in open(ner_demo["truth"]) if json.loads(line)["noisy_words"]}
    assert len(noisy & set(regions["hard"])) > 2 * len(noisy & set(regions["easy"]))
    from training_dynamics.kinds.token.data import load_token_classification

    hard = load_token_classification(train_file=str(run / "selected_data" / "hard.jsonl"), text_column_name="tokens",
                                     label_column_name="ner_tags")
    assert sorted(hard.train["guid"]) == sorted(regions["hard"])
    g = hard.train["guid"][0]
    assert [hard.label_names[t] for t in hard.train["tags"][0]] == sentences[g]["ner_tags"]


@pytest.mark.slow
def test_ner_post_epoch_values_are_the_final_models_on_each_first_sub_token(ner_demo, tmp_path):
    """post_epoch + npz + integer tags named by --class_names + --label_all_tokens: the last epoch's
    recorded values equal an eval-mode pass of the saved model, word by word."""
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from conftest import run_cli

    from training_dynamics.demo.ner_data import LABEL_NAMES

    rows = [json.loads(line) for line in open(ner_demo["train"])][:40]
    data = tmp_path / "int_tags.jsonl"
    data.write_text("".join(json.dumps({"words": r["tokens"], "tags": [LABEL_NAMES.index(t) for t in r["ner_tags"]]})
                            + "\n" for r in rows))
    d = {**ner_demo, "train": data}
    run_cli("run_ner_and_record_td.py", *_record_args(d, tmp_path, "--td_mode", "post_epoch", "--td_format", "npz",
                                                      "--label_all_tokens", "--class_names", ",".join(LABEL_NAMES),
                                                      epochs=2))
    run = tmp_path / "dy_log" / "int_tags" / "tiny"
    with np.load(run / "training_dynamics" / "dynamics_epoch_1.npz") as z:
        logprob, pred, gold = z["logprob"], z["pred"], z["gold"]
    model = AutoModelForTokenClassification.from_pretrained(tmp_path / "model_out").eval()
    tok = AutoTokenizer.from_pretrained(tmp_path / "model_out")
    assert model.config.id2label[0] == LABEL_NAMES[0]
    expected_lp, expected_pred = [], []
    for r in rows:
        enc = tok(r["tokens"], is_split_into_words=True, return_tensors="pt")
        with torch.no_grad():
            logp = torch.log_softmax(model(**enc).logits[0], -1)
        first = [i for i, w in enumerate(enc.word_ids()) if w is not None and (i == 0 or enc.word_ids()[i - 1] != w)]
        tags = [LABEL_NAMES.index(t) for t in r["ner_tags"]]
        expected_lp += [float(logp[i, t]) for i, t in zip(first, tags)]
        expected_pred += [int(logp[i].argmax()) for i in first]
    np.testing.assert_array_equal(gold, [LABEL_NAMES.index(t) for r in rows for t in r["ner_tags"]])
    np.testing.assert_allclose(logprob, expected_lp, atol=1e-4)
    np.testing.assert_array_equal(pred, expected_pred)


NAMES = ["B-LOC", "B-PER", "I-PER", "O"]


def _page_payload(path) -> dict:
    import re

    from training_dynamics.review.scale import expand_payload

    html = open(path, encoding="utf-8").read()
    return expand_payload(json.loads(re.search(r'<script type="application/json" id="td-data">(.*?)</script>', html,
                                               re.S).group(1)))


def _exported(payload: dict, choices: dict) -> dict:
    """corrections.json as the page exports it: ``choices`` maps (guid, word_index) -> (action, tag or None)."""
    it, out = payload["items"], []
    for i, key in enumerate(it["key"]):
        g, w = it["guid"][i], it["word_index"][i]
        if (g, w) in choices:
            action, label = choices[(g, w)]
            out.append({"guid": g, "word_index": w, "example_fingerprint": it["fp"][i], "action": action,
                        "label": label, "original_label": payload["label_names"][it["gold"][i]]})
    return {"dataset": payload["dataset"], "dataset_fingerprint": payload["dataset_fingerprint"],
            "kind": payload["kind"], "label_names": payload["label_names"], "corrections": out}


@pytest.mark.parametrize("as_ids", [False, True])
def test_word_review_page_and_apply_write_the_tags_back_in_the_data_columns(tmp_path, as_ids):
    """A hand-made word ranking: the page shows each ranked word's sentence (words, tags) keyed by
    (guid, word_index) with the sentence's fingerprint; apply writes the corrected tags back into the
    same columns (names or ids, as the file had them), and refuses a word whose tag changed since."""
    from training_dynamics.review.corrections import CorrectionsError
    from training_dynamics.workflows.apply import apply_corrections_file
    from training_dynamics.workflows.review import build_review_page

    sents = [(["anna", "met", "paris", "hilton"], ["B-PER", "O", "B-LOC", "I-PER"]), (["in", "rome"], ["O", "B-PER"])]
    data = tmp_path / "train.jsonl"
    tags = (lambda t: [NAMES.index(x) for x in t]) if as_ids else (lambda t: t)
    data.write_text("".join(json.dumps({"words": w, "labels": tags(t), "idx": 10 + i}) + "\n"
                            for i, (w, t) in enumerate(sents)))
    ranked = [(11, 1, "rome", "B-PER", 0.9, True), (10, 2, "paris", "B-LOC", 0.7, True), (10, 0, "anna", "B-PER", 0.1, False)]
    rows = [{"rank": r + 1, "guid": g, "word_index": w, "word": word, "text": " ".join(sents[g - 10][0]),
             "gold": NAMES.index(gold), "gold_name": gold, "probabilities": [0.25] * 4, "score": sc, "is_label_issue": f}
            for r, (g, w, word, gold, sc, f) in enumerate(ranked)]
    issues = tmp_path / "issues"
    issues.mkdir()
    (issues / "label_issues.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    src = {"kind": "token_classification", "train_file": str(data), "text_columns": ["words"], "label_column": "labels"}
    (issues / "label_issues_settings.json").write_text(json.dumps({"kind": "token_classification", "data": src,
                                                                    "label_names": NAMES}))
    page = build_review_page(issues / "label_issues.jsonl", tmp_path / "review.html")
    p = _page_payload(page)
    assert p["kind"] == "token_classification" and p["items"]["key"] == ["11#1", "10#2", "10#0"]
    assert p["sentences"]["guid"] == ["10", "11"] and p["sentences"]["words"][1] == ["in", "rome"]
    assert [NAMES[t] for t in p["sentences"]["tags"][0]] == sents[0][1] and p["items"]["sent"] == [1, 0, 0]
    assert p["items"]["fp"][1] == p["items"]["fp"][2] != p["items"]["fp"][0]  # the sentence's fingerprint

    doc = _exported(p, {("11", 1): ("relabel", "B-LOC"), ("10", 2): ("keep", "B-LOC"), ("10", 0): ("unsure", None)})
    (tmp_path / "corrections.json").write_text(json.dumps(doc))
    args = dict(train_file=str(data), text_columns=["words"], label_column="labels",
                class_names=NAMES if as_ids else None)
    apply_corrections_file(tmp_path / "corrections.json", output=tmp_path / "fixed.jsonl", **args)
    out = [json.loads(line) for line in open(tmp_path / "fixed.jsonl")]
    assert [r["guid"] for r in out] == [10, 11] and out[1]["words"] == ["in", "rome"]
    assert out[1]["labels"] == tags(["O", "B-LOC"]) and out[0]["labels"] == tags(sents[0][1])
    assert out[1]["original_tags"] == tags(["O", "B-PER"])
    assert out[0]["review_actions"] == ["unsure", "unreviewed", "keep", "unreviewed"]
    apply_corrections_file(tmp_path / "corrections.json", output=tmp_path / "dropped.jsonl", unsure="drop", **args)
    assert [json.loads(line)["guid"] for line in open(tmp_path / "dropped.jsonl")] == [11]

    with pytest.raises(CorrectionsError, match="written as .jsonl, .json, .parquet"):
        apply_corrections_file(tmp_path / "corrections.json", output=tmp_path / "fixed.csv", **args)
    # the sentence of guid 11 retagged since the review: refused, or skipped with --ignore_fingerprint
    lines = data.read_text().splitlines()
    lines[1] = json.dumps({"words": ["in", "rome"], "labels": tags(["O", "B-LOC"]), "idx": 11})
    data.write_text("\n".join(lines) + "\n")
    with pytest.raises(CorrectionsError, match="made for other data"):
        apply_corrections_file(tmp_path / "corrections.json", output=tmp_path / "again.jsonl", **args)
    df = apply_corrections_file(tmp_path / "corrections.json", output=tmp_path / "again.jsonl", ignore_fingerprint=True,
                                **args)
    assert df["review_actions"].tolist() == [["unsure", "unreviewed", "keep", "unreviewed"], ["unreviewed"] * 2]
    # the page of the same ranking now leaves the changed sentence's word out, with a warning
    p = _page_payload(build_review_page(issues / "label_issues.jsonl", tmp_path / "review2.html"))
    assert p["items"]["key"] == ["10#2", "10#0"] and "1 of the 3 ranked words are left out" in p["warnings"][0]
    data.rename(tmp_path / "moved.jsonl")  # the page draws each sentence's tags: refused in one line without them
    from training_dynamics.core.errors import TrainingDynamicsError

    with pytest.raises(TrainingDynamicsError, match="sentences cannot be read: .*train.jsonl: the training file"):
        build_review_page(issues / "label_issues.jsonl", tmp_path / "review3.html")


def test_token_runs_are_not_averaged_or_compared_yet(tmp_path):
    from training_dynamics.kinds import KindError
    from training_dynamics.analysis.multirun import average_runs
    from training_dynamics.analysis.run import Run

    dy, *_ = _random_run(tmp_path, epochs=2)
    run = Run(dy.parent)
    with pytest.raises(KindError, match="averaging and comparing its runs is not supported yet"):
        average_runs([run, run])
