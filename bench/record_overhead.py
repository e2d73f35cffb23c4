"""Recording overhead: wall time of DynamicsTrainer (each td_mode) / plain transformers.Trainer.

Same data (generated demo set), model (small BERT from config) and seed; the three trainers run
interleaved, round after round, in one process, and the median of each is compared, so machine
noise hits all three alike. Last line: ``overhead_ratio=<in_training / plain>``.
``--model ner``: the token classification recorder (TokenDynamicsTrainer) on generated BIO sentences
and a small BERT token classifier with a WordPiece tokenizer.
``--model gpt2``: the causal LM recorder (CausalLMDynamicsTrainer) on the generated prompt/response
set and a small GPT-2 from config (``--vocab_size``: its output layer, as wide as a real model's).

    python bench/record_overhead.py [--n_train 2000 --epochs 5 --rounds 5 --hidden_size 128]
    python bench/record_overhead.py --model gpt2 --batch_size 8 --vocab_size 32000
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                          TrainingArguments, set_seed)

from training_dynamics.core.data import load_text_classification, tokenize
from training_dynamics.demo.data import build_tiny_bert, build_tiny_gpt2, write_demo_dataset, write_generative_demo
from training_dynamics.core.recorder import DynamicsTrainer


def bert_setup(work: Path, args):
    """(model folder, tokenized train set, collator, model class, recording trainer class) for a small BERT."""
    paths = write_demo_dataset(work / "data", n_train=args.n_train, n_validation=10, seed=0)
    texts = [json.loads(line)["sentence"] for line in open(paths["train"])]
    model_dir = build_tiny_bert(work / "model", texts, hidden_size=args.hidden_size, num_layers=2,
                                num_heads=2, seed=0)
    tok = AutoTokenizer.from_pretrained(model_dir)
    data = load_text_classification(train_file=str(paths["train"]))
    return (model_dir, tokenize(data.train, tok, data.text_columns, 128), DataCollatorWithPadding(tok),
            AutoModelForSequenceClassification, DynamicsTrainer)


def gpt2_setup(work: Path, args):
    """The same for a small GPT-2 on prompt/response pairs (loss and recording on the responses)."""
    from transformers import AutoModelForCausalLM

    from training_dynamics.kinds.generative.data import CausalLMCollator, load_generative, tokenize_generative
    from training_dynamics.kinds.generative.record import CausalLMDynamicsTrainer

    paths = write_generative_demo(work / "data", n_train=args.n_train, n_validation=10, seed=0)
    texts = [json.loads(line)[k] for line in open(paths["train"]) for k in ("prompt", "response")]
    model_dir = build_tiny_gpt2(work / "model", texts, hidden_size=args.hidden_size, seed=0, vocab_size=args.vocab_size)
    tok = AutoTokenizer.from_pretrained(model_dir)
    data = load_generative(train_file=str(paths["train"]))
    return (model_dir, tokenize_generative(data.train, tok, data.text_columns, 64), CausalLMCollator(tok.pad_token_id),
            AutoModelForCausalLM, CausalLMDynamicsTrainer)


def ner_setup(work: Path, args):
    """The same for a small BERT token classifier on generated BIO sentences (a word's first sub-token recorded)."""
    from transformers import AutoModelForTokenClassification

    from training_dynamics.kinds.token.data import TokenCollator, load_token_classification, tokenize_and_align
    from training_dynamics.demo.ner_data import build_tiny_token_bert, write_ner_demo
    from training_dynamics.kinds.token.record import TokenDynamicsTrainer

    paths = write_ner_demo(work / "data", n_train=args.n_train, n_validation=10, seed=0)
    sentences = [json.loads(line)["tokens"] for line in open(paths["train"])]
    model_dir = build_tiny_token_bert(work / "model", sentences, hidden_size=args.hidden_size, seed=0)
    tok = AutoTokenizer.from_pretrained(model_dir)
    data = load_token_classification(train_file=str(paths["train"]))
    train = tokenize_and_align(data.train, tok, label_names=data.label_names)

    return model_dir, train, TokenCollator(tok), AutoModelForTokenClassification, TokenDynamicsTrainer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n_train", type=int, default=2000, help="demo training examples")
    p.add_argument("--epochs", type=int, default=5, help="epochs per training run")
    p.add_argument("--batch_size", type=int, default=32, help="per-device batch size")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median taken)")
    p.add_argument("--hidden_size", type=int, default=128, help="model width (2 layers)")
    p.add_argument("--model", choices=("bert", "gpt2", "ner"), default="bert", help="a classifier, or a causal LM")
    p.add_argument("--vocab_size", type=int, default=None, help="gpt2: output layer width (default: the tokenizer's)")
    p.add_argument("--workdir", default=None, help="scratch folder (default: a temp dir)")
    args = p.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="td_overhead_"))
    model_dir, train, collator, model_cls, recording_cls = {"gpt2": gpt2_setup, "ner": ner_setup}.get(args.model, bert_setup)(work, args)
    steps = args.epochs * -(-len(train) // args.batch_size)

    def run(mode: str, r: int) -> float:
        set_seed(0)
        model = model_cls.from_pretrained(model_dir)
        targs = TrainingArguments(output_dir=str(work / "out"), num_train_epochs=args.epochs, learning_rate=3e-3,
                                  per_device_train_batch_size=args.batch_size, save_strategy="no",
                                  logging_strategy="no", report_to="none", disable_tqdm=True, seed=0)
        kw = dict(model=model, args=targs, train_dataset=train, data_collator=collator)
        if mode == "plain" and args.model == "ner":  # what a plain run_ner.py trains on: no recording columns
            kw["train_dataset"] = train.remove_columns(["guid", "td_word", "word_index", "word_tags"])
        trainer = Trainer(**kw) if mode == "plain" else \
            recording_cls(**kw, dynamics_dir=work / "dy" / mode / str(r) / "training_dynamics", td_mode=mode)
        t0 = time.perf_counter()
        trainer.train()
        return time.perf_counter() - t0

    modes = ["plain", "in_training", "post_epoch"]
    run("plain", -1)  # warm-up: first-call costs (kernels, allocator) hit no one mode
    times: dict[str, list[float]] = {m: [] for m in modes}
    for r in range(args.rounds):
        for m in modes[r % 3:] + modes[:r % 3]:  # rotate the order each round
            times[m].append(run(m, r))
            print(f"round {r} {m:12s} {times[m][-1]:7.2f} s", flush=True)
    med = {m: statistics.median(v) for m, v in times.items()}
    print(f"\n{args.n_train} examples x {args.epochs} epochs = {steps} steps, batch {args.batch_size}, "
          f"{args.model.upper()} 2x{args.hidden_size}{f', vocab {args.vocab_size}' if args.vocab_size else ''}, torch threads {torch.get_num_threads()}, {args.rounds} rounds")
    for m in modes:
        print(f"{m:12s} median {med[m]:7.2f} s   ratio {med[m] / med['plain']:.3f}   runs {[round(t, 2) for t in times[m]]}")
    print(f"post_epoch_ratio={med['post_epoch'] / med['plain']:.3f}")
    print(f"overhead_ratio={med['in_training'] / med['plain']:.3f}")


if __name__ == "__main__":
    main()
