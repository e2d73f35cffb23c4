"""Offline NER demo: generated BIO-tagged sentences (PER / LOC / ORG) with planted annotation errors,
and a tiny BERT token classifier whose WordPiece tokenizer splits the long words into sub-words.

Planted errors (ground truth in ``train_truth.jsonl``): a share of the mentions is *retyped* (every
word of the mention gets another entity type) and, optionally, a share is *missed* (tagged ``O``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from training_dynamics.demo.data import BERT_SPECIALS, bert_tokenizer, write_split_files

logger = logging.getLogger(__name__)

TYPES = ("PER", "LOC", "ORG")
LABEL_NAMES = ("B-LOC", "B-ORG", "B-PER", "I-LOC", "I-ORG", "I-PER", "O")  #: sorted, as run_ner.py orders string tags
NAMES = {
    "PER": ["anna", "boris", "carla", "dmitri", "elena", "farid", "greta", "hiroshi", "ingrid", "jamal", "katrin",
            "lorenzo", "maria", "nikolai", "olga", "pedro", "quentin", "rosalind", "samir", "tatiana"],
    "LOC": ["paris", "lisbon", "oslo", "nairobi", "toronto", "madrid", "vienna", "santiago", "helsinki", "cairo",
            "dublin", "montreal", "prague", "bangalore", "valencia", "melbourne", "geneva", "warsaw", "jakarta", "lima"],
    "ORG": ["acme", "globex", "initech", "umbrella", "hooli", "vandelay", "wonka", "cyberdyne", "tyrell", "soylent",
            "monarch", "aperture", "stark", "wayne", "oscorp", "nakatomi", "gringotts", "dunder", "prestige", "zorg"],
}
SURNAMES = ["smith", "novak", "garcia", "kowalski", "tanaka", "okafor", "schmidt", "rossi", "petrov", "dubois"]
ORG_SUFFIX = ["corp", "industries", "bank", "group", "labs"]
LOC_PREFIX = ["new", "north", "south", "port"]
TEMPLATES = [
    "{PER} moved to {LOC} last year", "{PER} works for {ORG} in {LOC}", "the {ORG} office in {LOC} hired {PER}",
    "yesterday {PER} met {PER} near {LOC}", "{ORG} opened a branch in {LOC}", "{PER} left {ORG} to join {ORG}",
    "reporters in {LOC} asked {PER} about {ORG}", "{PER} flew from {LOC} to {LOC} on monday",
    "shares of {ORG} rose after {PER} spoke", "we visited {LOC} with {PER}",
]


def _mention(rng: np.random.Generator, kind: str) -> list[str]:
    name = str(rng.choice(NAMES[kind]))
    if kind == "PER" and rng.random() < 0.5:
        return [name, str(rng.choice(SURNAMES))]
    if kind == "ORG" and rng.random() < 0.5:
        return [name, str(rng.choice(ORG_SUFFIX))]
    if kind == "LOC" and rng.random() < 0.25:
        return [str(rng.choice(LOC_PREFIX)), name]
    return [name]


def make_sentences(n: int, *, seed: int = 0, retype_rate: float = 0.08, miss_rate: float = 0.0) -> list[dict]:
    """``n`` sentences: ``{"tokens", "ner_tags" (as given, with the planted errors), "clean_tags",
    "noisy_words" (indices of the words whose tag was changed)}``."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        tokens, given, clean, noisy = [], [], [], []
        for part in str(rng.choice(TEMPLATES)).split():
            if not part.startswith("{"):
                tokens.append(part)
                given.append("O")
                clean.append("O")
                continue
            kind = part[1:-1]
            words = _mention(rng, kind)
            tags = [f"B-{kind}"] + [f"I-{kind}"] * (len(words) - 1)
            u = rng.random()
            if u < retype_rate:
                other = str(rng.choice([t for t in TYPES if t != kind]))
                noisy_tags = [t[:2] + other for t in tags]
            elif u < retype_rate + miss_rate:
                noisy_tags = ["O"] * len(words)
            else:
                noisy_tags = tags
            if noisy_tags != tags:
                noisy += range(len(tokens), len(tokens) + len(words))
            tokens += words
            given += noisy_tags
            clean += tags
        out.append({"tokens": tokens, "ner_tags": given, "clean_tags": clean, "noisy_words": noisy})
    return out


def write_ner_demo(out_dir: str | Path, *, n_train: int = 1200, n_validation: int = 200, seed: int = 0,
                   retype_rate: float = 0.08, miss_rate: float = 0.0) -> dict[str, Path]:
    """Write ``train.jsonl`` (tokens, ner_tags with planted errors), ``validation.jsonl`` (clean) and
    ``train_truth.jsonl`` (guid = row index, clean_tags, noisy_words) into ``out_dir``."""
    train = make_sentences(n_train, seed=seed, retype_rate=retype_rate, miss_rate=miss_rate)
    val = make_sentences(n_validation, seed=seed + 1, retype_rate=0.0, miss_rate=0.0)
    paths = write_split_files(out_dir, train, val, ("tokens", "ner_tags"), ("clean_tags", "noisy_words"))
    logger.info("NER demo: %d train sentences (%d words with a planted error), %d validation -> %s", n_train,
                sum(len(r["noisy_words"]) for r in train), n_validation, out_dir)
    return paths


def split_words() -> list[str]:
    """The demo words the tokenizer cuts into two sub-words (every name of 8 letters or more)."""
    return sorted({w for names in NAMES.values() for w in names if len(w) >= 8})


def build_wordpiece_tokenizer(words, *, split: list[str] = (), model_max_length: int = 64):
    """A lower-casing WordPiece BERT tokenizer: ``words`` are whole tokens except ``split``, which become
    two pieces (``vale`` ``##ncia``); single characters and ``##`` characters cover any other word."""
    from tokenizers import models, pre_tokenizers

    specials = BERT_SPECIALS
    split = set(split)
    vocab_words = sorted({w.lower() for w in words} - split)
    pieces = sorted({p for w in split for p in (w[:len(w) // 2], "##" + w[len(w) // 2:])})
    chars = sorted({c for w in words for c in w.lower()})
    entries = list(dict.fromkeys(specials + vocab_words + pieces + chars + ["##" + c for c in chars]))
    vocab = {w: i for i, w in enumerate(entries)}
    return bert_tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]", continuing_subword_prefix="##"), vocab,
                          pre_tokenizers.WhitespaceSplit(), model_max_length=model_max_length)


def build_tiny_token_bert(out_dir: str | Path, sentences, *, hidden_size: int = 64, num_layers: int = 2,
                          num_heads: int = 2, seed: int = 0) -> Path:
    """Save a randomly initialised small BERT token classifier (7 BIO tags) and a WordPiece tokenizer
    built from the words of ``sentences`` (lists of words) that splits :func:`split_words`."""
    import torch
    from transformers import BertConfig, BertForTokenClassification

    tokenizer = build_wordpiece_tokenizer([w for s in sentences for w in s], split=split_words())
    id2label = dict(enumerate(LABEL_NAMES))
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=hidden_size, num_hidden_layers=num_layers,
                        num_attention_heads=num_heads, intermediate_size=4 * hidden_size,
                        max_position_embeddings=tokenizer.model_max_length, num_labels=len(LABEL_NAMES),
                        id2label=id2label, label2id={v: k for k, v in id2label.items()},
                        pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    model = BertForTokenClassification(config)
    out = Path(out_dir)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    logger.info("tiny BERT token classifier (%d layers, %d wide, vocab %d) -> %s", num_layers, hidden_size,
                len(tokenizer), out)
    return out


def planted_scores(issues_path: str | Path, truth_path: str | Path) -> dict:
    """How well a word ranking (``label_issues.jsonl`` of a token run) finds the planted errors of
    ``train_truth.jsonl``: ranking AUROC / AP over all words, and the flagged set's precision / recall / F1."""
    import pandas as pd
    from sklearn.metrics import average_precision_score, roc_auc_score

    issues = pd.read_json(issues_path, lines=True, dtype=False)
    noisy = {(int(r["guid"]), int(w)) for r in map(json.loads, open(truth_path)) for w in r["noisy_words"]}
    truth = np.asarray([(int(g), int(w)) in noisy for g, w in zip(issues["guid"], issues["word_index"])])
    score = issues["score"].to_numpy(float)
    out = {"num_words": len(issues), "num_planted": int(truth.sum()), "auroc": float(roc_auc_score(truth, score)),
           "ap": float(average_precision_score(truth, score))}
    if "is_label_issue" in issues:
        flagged = issues["is_label_issue"].to_numpy(bool)
        tp = int((flagged & truth).sum())
        p, r = tp / max(int(flagged.sum()), 1), tp / max(int(truth.sum()), 1)
        out |= {"num_flagged": int(flagged.sum()), "precision": p, "recall": r, "f1": 2 * p * r / max(p + r, 1e-12)}
    return out
