"""Offline stand-ins for the Hub: a generated sentiment dataset with planted label noise and
ambiguity (ground truth saved beside it), and a tiny BERT with a word-level tokenizer built from
that data, saved with ``save_pretrained`` so it loads through ``--model_name_or_path DIR``; and for
generative fine-tuning, prompt/response pairs with planted bad responses and a tiny GPT-2.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Sequence

import numpy as np

logger = logging.getLogger(__name__)

LABEL_NAMES = ("negative", "positive")
POSITIVE = ("wonderful brilliant moving delightful superb charming gripping funny warm clever "
            "beautiful touching stunning fresh witty engaging inventive heartfelt joyful masterful").split()
NEGATIVE = ("dull boring awful tedious clumsy bland painful lifeless messy stale shallow "
            "tiresome dreadful flat annoying weak pointless sloppy forgettable hollow").split()
FILLER = ("the a this that film movie story plot cast script acting director scene ending "
          "is was feels seems and but with its of really quite rather somewhat overall "
          "performance dialogue pace music camera").split()
#: kinds of generated example and their shares of the training set
KINDS = {"easy": 0.55, "hard": 0.15, "ambiguous": 0.18, "flipped": 0.12}


def _sentence(rng: np.random.Generator, n_pos: int, n_neg: int) -> str:
    words = list(rng.choice(POSITIVE, n_pos)) + list(rng.choice(NEGATIVE, n_neg))
    words += list(rng.choice(FILLER, int(rng.integers(5, 10))))
    rng.shuffle(words)
    return " ".join(words)


def make_examples(n: int, *, seed: int = 0, noisy: bool = True) -> list[dict]:
    """``n`` labelled sentences. With ``noisy``, a share is ambiguous (as many positive as negative
    cue words, random label) or flipped (a clear sentence with the wrong label).

    Each record: ``sentence``, ``label`` (name), ``clean_label`` (name, or None when ambiguous), ``kind``.
    """
    rng = np.random.default_rng(seed)
    kinds = np.array(list(KINDS)) if noisy else np.array(["easy", "hard"])
    p = np.array(list(KINDS.values())) if noisy else np.array([0.75, 0.25])
    out = []
    for kind in rng.choice(kinds, size=n, p=p / p.sum()):
        y = int(rng.integers(2))
        if kind == "ambiguous":
            k = int(rng.integers(1, 3))
            text, clean, label = _sentence(rng, k, k), None, int(rng.integers(2))
        else:
            strong = 1 if kind == "hard" else int(rng.integers(2, 4))  # cue words for the clean label
            n_pos, n_neg = (strong, 0) if y == 1 else (0, strong)
            text, clean = _sentence(rng, n_pos, n_neg), y
            label = 1 - y if kind == "flipped" else y
        out.append({"sentence": text, "label": LABEL_NAMES[label],
                    "clean_label": None if clean is None else LABEL_NAMES[clean], "kind": str(kind)})
    return out


def write_split_files(out_dir: str | Path, train: list[dict], val: list[dict], columns: Sequence[str],
                      truth: Sequence[str]) -> dict[str, Path]:
    """``train.jsonl`` and ``validation.jsonl`` (the ``columns`` of each row) and ``train_truth.jsonl``
    (``guid`` = row index and the ``truth`` fields of each training row) in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"train": out / "train.jsonl", "validation": out / "validation.jsonl", "truth": out / "train_truth.jsonl"}
    for key, rows in (("train", train), ("validation", val)):
        with open(paths[key], "w") as fh:
            fh.writelines(json.dumps({c: r[c] for c in columns}) + "\n" for r in rows)
    with open(paths["truth"], "w") as fh:
        fh.writelines(json.dumps({"guid": i, **{c: r[c] for c in truth}}) + "\n" for i, r in enumerate(train))
    return paths


def write_demo_dataset(out_dir: str | Path, *, n_train: int = 2000, n_validation: int = 400,
                       seed: int = 0) -> dict[str, Path]:
    """Write ``train.jsonl`` (with planted noise), ``validation.jsonl`` (clean) and
    ``train_truth.jsonl`` (guid = row index, kind, clean label) into ``out_dir``."""
    train = make_examples(n_train, seed=seed)
    val = make_examples(n_validation, seed=seed + 1, noisy=False)
    paths = write_split_files(out_dir, train, val, ("sentence", "label"), ("kind", "label", "clean_label"))
    logger.info("demo dataset: %d train (%s), %d validation -> %s", n_train,
                {k: sum(r["kind"] == k for r in train) for k in KINDS}, n_validation, out_dir)
    return paths


BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def bert_tokenizer(model, vocab: dict[str, int], pre_tokenizer, *, model_max_length: int):
    """A lower-casing BERT-style fast tokenizer (``[CLS] a [SEP] b [SEP]``) over a ``tokenizers`` model."""
    from tokenizers import Tokenizer, normalizers, processors
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(model)
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizer
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", model_max_length=model_max_length,
        model_input_names=["input_ids", "token_type_ids", "attention_mask"])


def build_tokenizer(texts, *, model_max_length: int = 128):
    """A lower-casing word-level BERT-style tokenizer whose vocabulary is the words of ``texts``."""
    from tokenizers import models, pre_tokenizers

    words = sorted({w for t in texts for w in t.lower().split()})
    vocab = {w: i for i, w in enumerate(BERT_SPECIALS + words)}
    return bert_tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"), vocab, pre_tokenizers.Whitespace(),
                          model_max_length=model_max_length)


def build_tiny_bert(out_dir: str | Path, texts, *, hidden_size: int = 64, num_layers: int = 2,
                    num_heads: int = 2, num_labels: int = 2, seed: int = 0) -> Path:
    """Save a randomly initialised small BERT classifier and a tokenizer built from ``texts``."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    tokenizer = build_tokenizer(texts)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=hidden_size, num_hidden_layers=num_layers,
                        num_attention_heads=num_heads, intermediate_size=4 * hidden_size,
                        max_position_embeddings=tokenizer.model_max_length, num_labels=num_labels,
                        pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config)
    out = Path(out_dir)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    logger.info("tiny BERT (%d layers, %d wide, vocab %d) -> %s", num_layers, hidden_size, len(tokenizer), out)
    return out


# -- generative: prompt/response data and a tiny GPT-2 --------------------------------------------
ANIMALS = {  # name: (kind, food, home)
    "fox": ("mammal", "mice", "forest"), "owl": ("bird", "mice", "forest"), "cod": ("fish", "shrimp", "sea"),
    "frog": ("amphibian", "flies", "pond"), "bee": ("insect", "nectar", "hive"), "cow": ("mammal", "grass", "farm"),
    "hawk": ("bird", "rabbits", "cliffs"), "eel": ("fish", "worms", "river"), "newt": ("amphibian", "snails", "pond"),
    "ant": ("insect", "seeds", "nest"), "bear": ("mammal", "berries", "forest"), "duck": ("bird", "weeds", "lake"),
    "shark": ("fish", "seals", "sea"), "toad": ("amphibian", "beetles", "garden"), "moth": ("insect", "nectar", "meadow"),
    "goat": ("mammal", "shrubs", "hills"), "crow": ("bird", "grain", "fields"), "trout": ("fish", "flies", "stream"),
    "wasp": ("insect", "caterpillars", "nest"), "seal": ("mammal", "fish", "coast"), "swan": ("bird", "weeds", "lake"),
    "pike": ("fish", "frogs", "river"), "horse": ("mammal", "hay", "farm"), "wren": ("bird", "spiders", "hedges"),
}
PROMPTS = ("tell me about the {a}", "what is a {a}", "describe the animal called {a}", "give facts about the {a}",
           "what do you know about the {a}", "explain what is meant by {a}")
RESPONSES = ("it is a {k} that eats {f} and lives in the {h}",
             "a {k} . it eats {f} and its home is the {h}")


def make_instructions(n: int, *, seed: int = 0, bad_rate: float = 0.1) -> list[dict]:
    """``n`` prompt/response pairs about animals; a share ``bad_rate`` of the responses is *bad*: the
    response of another prompt, about another animal (the planted errors).

    Each record: ``prompt``, ``response``, ``kind`` (``good`` or ``bad``), ``clean_response``.
    """
    rng = np.random.default_rng(seed)
    names = sorted(ANIMALS)
    out = []
    for _ in range(n):
        a = str(rng.choice(names))
        k, f, h = ANIMALS[a]
        prompt = str(rng.choice(PROMPTS)).format(a=a)
        clean = str(rng.choice(RESPONSES)).format(a=a, k=k, f=f, h=h)
        out.append({"prompt": prompt, "response": clean, "kind": "good", "clean_response": clean, "animal": a})
    for i in rng.choice(n, size=int(round(bad_rate * n)), replace=False):
        other = out[int(rng.integers(n))]
        while other["animal"] == out[i]["animal"]:  # a response about another animal
            other = out[int(rng.integers(n))]
        out[i] = {**out[i], "response": other["clean_response"], "kind": "bad"}
    return out


def write_generative_demo(out_dir: str | Path, *, n_train: int = 1000, n_validation: int = 200, seed: int = 0,
                          bad_rate: float = 0.1) -> dict[str, Path]:
    """Write ``train.jsonl`` (prompt, response; with planted bad responses), ``validation.jsonl`` (clean)
    and ``train_truth.jsonl`` (guid = row index, kind, clean response) into ``out_dir``."""
    train = make_instructions(n_train, seed=seed, bad_rate=bad_rate)
    val = make_instructions(n_validation, seed=seed + 1, bad_rate=0.0)
    paths = write_split_files(out_dir, train, val, ("prompt", "response"), ("kind", "clean_response"))
    logger.info("generative demo dataset: %d train (%d bad responses), %d validation -> %s", n_train,
                sum(r["kind"] == "bad" for r in train), n_validation, out_dir)
    return paths


def build_causal_tokenizer(texts, *, model_max_length: int = 64):
    """A lower-casing word-level tokenizer for a causal LM (``<pad>``, ``<unk>``, ``<eos>``; no BOS)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<eos>"]
    words = sorted({w for t in texts for w in t.lower().split()})
    tok = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(specials + words)}, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="<eos>",
                                   model_max_length=model_max_length, model_input_names=["input_ids", "attention_mask"])


def build_tiny_gpt2(out_dir: str | Path, texts, *, hidden_size: int = 128, num_layers: int = 2, num_heads: int = 2,
                    max_length: int = 64, seed: int = 0, vocab_size: int | None = None) -> Path:
    """Save a randomly initialised small GPT-2 and a word-level tokenizer built from ``texts``
    (``vocab_size``: a larger output layer than the tokenizer needs, as a real model's)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = build_causal_tokenizer(texts, model_max_length=max_length)
    config = GPT2Config(vocab_size=max(len(tokenizer), vocab_size or 0), n_positions=max_length, n_embd=hidden_size, n_layer=num_layers,
                        n_head=num_heads, bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config)
    out = Path(out_dir)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    logger.info("tiny GPT-2 (%d layers, %d wide, vocab %d) -> %s", num_layers, hidden_size, len(tokenizer), out)
    return out


# -- conversations: the same facts as chats of two question/answer turns ---------------------------
#: a chat template for the tiny word-level tokenizer (its markers are words of the vocabulary)
TINY_CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} <|end|> {% endfor %}"
                      "{% if add_generation_prompt %}<|assistant|> {% endif %}")
#: the same rendering with the assistant's output marked (``return_assistant_tokens_mask``)
TINY_CHAT_TEMPLATE_TAGGED = (
    "{% for m in messages %}{% if m['role'] == 'assistant' %}<|assistant|> {% generation %}{{ m['content'] }} "
    "<|end|>{% endgeneration %} {% else %}<|{{ m['role'] }}|> {{ m['content'] }} <|end|> {% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}")
CHAT_MARKERS = "<|system|> <|user|> <|assistant|> <|end|>"


def make_conversations(n: int, *, seed: int = 0, bad_rate: float = 0.1, turns: int = 2) -> list[dict]:
    """``n`` conversations of ``turns`` question/answer pairs (from :func:`make_instructions`); in a share
    ``bad_rate`` of them one assistant turn (drawn at random) is a bad response (about another animal).

    Each record: ``messages``, ``kind`` (``good``/``bad``), ``bad_turn`` (1-based; 0 when good).
    """
    rng = np.random.default_rng(seed + 7)
    pairs = make_instructions(n * turns, seed=seed, bad_rate=0.0)
    bad_pairs = make_instructions(n * turns, seed=seed + 100, bad_rate=1.0)
    is_bad = np.zeros(n, dtype=bool)
    is_bad[rng.choice(n, size=int(round(bad_rate * n)), replace=False)] = True
    out = []
    for i in range(n):
        qa = pairs[i * turns:(i + 1) * turns]
        bad_turn = int(rng.integers(turns)) if is_bad[i] else -1
        messages = [{"role": "system", "content": "answer questions about animals"}]
        for k, p in enumerate(qa):
            response = p["response"]
            if k == bad_turn:  # another animal's answer
                other = next(b for b in bad_pairs[i * turns:] if b["animal"] != p["animal"])
                response = other["clean_response"]
            messages += [{"role": "user", "content": p["prompt"]}, {"role": "assistant", "content": response}]
        out.append({"messages": messages, "kind": "bad" if is_bad[i] else "good", "bad_turn": bad_turn + 1})
    return out


def write_chat_demo(out_dir: str | Path, *, n_train: int = 500, n_validation: int = 50, seed: int = 0,
                    bad_rate: float = 0.1, turns: int = 2) -> dict[str, Path]:
    """Write ``train.jsonl`` / ``validation.jsonl`` (a ``messages`` column; planted bad turns in train)
    and ``train_truth.jsonl`` (guid, kind, bad_turn) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train = make_conversations(n_train, seed=seed, bad_rate=bad_rate, turns=turns)
    val = make_conversations(n_validation, seed=seed + 1, bad_rate=0.0, turns=turns)
    paths = {"train": out / "train.jsonl", "validation": out / "validation.jsonl", "truth": out / "train_truth.jsonl"}
    for key, rows in (("train", train), ("validation", val)):
        with open(paths[key], "w") as fh:
            fh.writelines(json.dumps({"messages": r["messages"]}) + "\n" for r in rows)
    with open(paths["truth"], "w") as fh:
        fh.writelines(json.dumps({"guid": i, "kind": r["kind"], "bad_turn": r["bad_turn"]}) + "\n"
                      for i, r in enumerate(train))
    logger.info("chat demo dataset: %d train conversations (%d with a bad turn), %d validation -> %s", n_train,
                sum(r["kind"] == "bad" for r in train), n_validation, out)
    return paths


def chat_texts(path: str | Path) -> list[str]:
    """The words of a chat file's conversations and the template's markers (a tokenizer's vocabulary)."""
    texts = [CHAT_MARKERS]
    with open(path) as fh:
        for line in fh:
            texts += [m["content"] for m in json.loads(line)["messages"]]
    return texts
