"""Recording overhead inside TRL: wall time of DynamicsSFTTrainer / plain trl.SFTTrainer on the same run.

The generated chat set (conversations of two question/answer turns, ``assistant_only_loss``), a small GPT-2
from a config (``--vocab_size``: its output layer as wide as a real model's), the same seed; the two trainers
run interleaved, round after round, in one process, and the medians are compared, so machine noise hits both
alike. ``--use_peft``: LoRA adapters (all linear layers). Last line: ``overhead_ratio=<recording / plain>``.

    python bench/sft_overhead.py [--n_train 400 --epochs 2 --rounds 5 --hidden_size 128 --vocab_size 32000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from datasets import load_dataset
from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
from trl import SFTConfig, SFTTrainer

from training_dynamics.demo.data import TINY_CHAT_TEMPLATE_TAGGED, build_tiny_gpt2, chat_texts, write_chat_demo
from training_dynamics.kinds.generative.trl import DynamicsSFTTrainer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n_train", type=int, default=400, help="conversations")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median taken)")
    p.add_argument("--hidden_size", type=int, default=128, help="model width (2 layers)")
    p.add_argument("--vocab_size", type=int, default=None, help="output layer width (default: the tokenizer's)")
    p.add_argument("--use_peft", action="store_true", help="LoRA r=16 on all linear layers")
    p.add_argument("--profile", action="store_true", help="one recording run, timing the recording code in it")
    p.add_argument("--workdir", default=None, help="scratch folder (default: a temp dir)")
    args = p.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="td_sft_overhead_"))
    paths = write_chat_demo(work / "data", n_train=args.n_train, n_validation=4, seed=0)
    model_dir = build_tiny_gpt2(work / "model", chat_texts(paths["train"]), hidden_size=args.hidden_size, seed=0,
                                max_length=96, vocab_size=args.vocab_size)
    peft_config = None
    if args.use_peft:
        from peft import LoraConfig

        peft_config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")

    def run(mode: str, r: int) -> float:
        set_seed(0)
        tok = AutoTokenizer.from_pretrained(model_dir)
        tok.chat_template = TINY_CHAT_TEMPLATE_TAGGED
        ds = load_dataset("json", data_files=str(paths["train"]), split="train")
        cfg = SFTConfig(output_dir=str(work / "out"), num_train_epochs=args.epochs, learning_rate=3e-3,
                        per_device_train_batch_size=args.batch_size, save_strategy="no", logging_strategy="no",
                        report_to="none", disable_tqdm=True, seed=0, max_length=96, assistant_only_loss=True,
                        bf16=False, dataloader_pin_memory=False)
        kw = dict(model=AutoModelForCausalLM.from_pretrained(model_dir), args=cfg, train_dataset=ds,
                  processing_class=tok, peft_config=peft_config)
        trainer = SFTTrainer(**kw) if mode == "plain" else \
            DynamicsSFTTrainer(**kw, dynamics_dir=work / "dy" / str(r), overwrite_dynamics=True)
        t0 = time.perf_counter()
        trainer.train()
        return time.perf_counter() - t0

    if args.profile:  # the time spent in the recording code itself, inside one recording run
        import training_dynamics.kinds.generative.trl as ts
        from training_dynamics.core.recorder import DynamicsRecorder

        from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

        spent = {"ours": 0.0, "trl_collate": 0.0}

        def timed(fn, key):
            def inner(*a, **kw):
                t0 = time.perf_counter()
                try:
                    return fn(*a, **kw)
                finally:
                    spent[key] += time.perf_counter() - t0
            return inner

        ts.reduce_tokens = timed(ts.reduce_tokens, "ours")
        DynamicsRecorder.update = timed(DynamicsRecorder.update, "ours")
        ts._CarryRows.__call__ = timed(ts._CarryRows.__call__, "ours")  # minus TRL's own collation, timed apart
        DataCollatorForLanguageModeling.torch_call = timed(DataCollatorForLanguageModeling.torch_call, "trl_collate")
        total = run("recording", 0)
        ours = spent["ours"] - spent["trl_collate"]
        print(f"recording code (reduce_tokens, recorder.update, passing the row ids around TRL's collator): "
              f"{ours:.3f} s of {total:.2f} s training ({100 * ours / total:.2f}%)")
        return

    modes = ["plain", "recording"]
    run("plain", -1)  # warm-up
    times: dict[str, list[float]] = {m: [] for m in modes}
    for r in range(args.rounds):
        for m in modes[r % 2:] + modes[:r % 2]:  # alternate the order each round
            times[m].append(run(m, r))
            print(f"round {r} {m:10s} {times[m][-1]:7.2f} s", flush=True)
    med = {m: statistics.median(v) for m, v in times.items()}
    print(f"\n{args.n_train} conversations x {args.epochs} epochs, batch {args.batch_size}, GPT-2 2x{args.hidden_size}"
          f"{f', vocab {args.vocab_size}' if args.vocab_size else ''}{', LoRA' if args.use_peft else ''}, "
          f"torch threads {torch.get_num_threads()}, {args.rounds} rounds")
    for m in modes:
        print(f"{m:10s} median {med[m]:7.2f} s   ratio {med[m] / med['plain']:.3f}   runs {[round(t, 2) for t in times[m]]}")
    print(f"overhead_ratio={med['recording'] / med['plain']:.3f}")


if __name__ == "__main__":
    main()
