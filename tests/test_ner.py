"""Token classification (NER): word alignment, the on-device word values, the token epoch files,
per-word and per-sentence metrics against plain loops, and (slow) the whole pipeline end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training_dynamics import metrics, token_dynamics, token_metrics
from training_dynamics.dynamics_file import DynamicsError


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
    from training_dynamics.record_ner import word_values

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

    from training_dynamics.ner_data import IGNORE_INDEX, TAGS, TOKENS, WORD, tokenize_and_align
    from training_dynamics.ner_demo_data import LABEL_NAMES, build_wordpiece_tokenizer

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
