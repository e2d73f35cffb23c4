"""How large is the review page of a word ranking? (a benchmark, not a test)

Reads a CoNLL file (default: WNUT 2017 dev from ../shared/data), optionally repeated to more words
(``--repeat``, new guids), writes it as jsonl, records a seeded 3-epoch token classification run of it
without a model (per-word logits: the gold tag usually ahead, a share of words pulled to another tag),
ranks it with ``find-issues --source dynamics`` (default decision) and builds the review page twice:
by default (flagged words plus context) and with ``--top_k`` = every word. Prints words, page sizes
and build times.

    python bench/review_size.py [--conll ../shared/data/wnut17/dev.conll --repeat 1 --out /tmp/review_size]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from training_dynamics.analysis import metrics
from training_dynamics.kinds.token import dynamics as token_dynamics
from training_dynamics.cli import run_command

HERE = Path(__file__).resolve().parent


def read_conll(path: Path) -> list[tuple[list[str], list[str]]]:
    """(tokens, tags) per sentence: the first and last column, blank lines between sentences."""
    out, toks, tags = [], [], []
    for line in path.read_text(encoding="utf-8").splitlines() + [""]:
        parts = line.split()
        if not parts:
            if toks:
                out.append((toks, tags))
            toks, tags = [], []
        elif parts[0] != "-DOCSTART-":
            toks.append(parts[0])
            tags.append(parts[-1])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--conll", default=str(HERE.parent.parent / "shared" / "data" / "wnut17" / "dev.conll"))
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--out", default="/tmp/review_size")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sents = read_conll(Path(args.conll)) * args.repeat
    names = sorted({t for _, tags in sents for t in tags})
    train = out / "train.jsonl"
    train.write_text("".join(json.dumps({"tokens": w, "ner_tags": t}) + "\n" for w, t in sents), encoding="utf-8")
    counts = np.array([len(w) for w, _ in sents])
    gold = np.array([names.index(t) for _, tags in sents for t in tags])
    rng = np.random.default_rng(args.seed)
    n_words, c, epochs = len(gold), len(names), 3
    pull = np.where(rng.random(n_words) < 0.05, rng.integers(0, c, n_words), gold)
    logits = rng.normal(size=(n_words, epochs, c))
    logits[np.arange(n_words), :, gold] += 3.0
    logits[np.arange(n_words), :, pull] += 3.5 * (pull != gold)[:, None]
    per = metrics.per_epoch_arrays(logits, gold)
    run = out / "run"
    dy = run / "training_dynamics"
    word_index = np.concatenate([np.arange(k) for k in counts])
    for e in range(epochs):
        values = np.stack([per["logp_gold"][:, e], per["pred"][:, e], per["margin"][:, e], per["el2n"][:, e]], axis=1)
        token_dynamics.write_token_epoch(dy, e, np.arange(len(sents)), counts, word_index, gold, values, fmt="npz")
    (dy / "dynamics_meta.json").write_text(json.dumps({
        "kind": "token_classification", "num_labels": c, "label_names": names, "num_examples": len(sents),
        "num_words": n_words, "epochs_completed": epochs, "data": {"kind": "token_classification", "train_file":
                                                                  str(train.resolve()), "text_columns": ["tokens"],
                                                                  "label_column": "ner_tags"}}))
    assert run_command("find-issues", ["--source", "dynamics", "--run_dir", str(run), "--output_dir", str(out / "issues"),
                                       "--overwrite_output_dir", "--disable_tqdm"]) == 0
    issues = out / "issues" / "label_issues.jsonl"
    flagged = sum(json.loads(line).get("is_label_issue") is True for line in open(issues))
    print(f"{len(sents)} sentences, {n_words} words, {c} tags, {flagged} flagged")
    for name, extra in (("default", []), ("all words", ["--top_k", str(n_words)])):
        page = out / f"review_{name.replace(' ', '_')}.html"
        t0 = time.perf_counter()
        assert run_command("review", ["--issues", str(issues), "--output", str(page), "--overwrite_output_dir",
                                      *extra]) == 0
        print(f"review ({name}): {page.stat().st_size / 1e6:.2f} MB in {time.perf_counter() - t0:.1f} s -> {page}")


if __name__ == "__main__":
    main()
