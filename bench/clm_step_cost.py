"""One causal-LM training step (forward + backward) with and without recording, in isolation.

The same GPT-2 (2 layers x 128, output layer ``--vocab_size`` wide) and batch; the plain step lets the
model compute its loss, the recording step computes it with the recorder's
``causal_lm_loss_and_stats``; runs alternate, and the best (least disturbed) and median times are
printed. Less noisy than whole training runs on a shared machine.

    python bench/clm_step_cost.py [--vocab_size 32000 --rounds 40]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from training_dynamics.kinds.generative.record import causal_lm_loss_and_stats


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--vocab_size", type=int, default=32000)
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--seq_len", type=int, default=22)
    p.add_argument("--rounds", type=int, default=40)
    args = p.parse_args()
    torch.manual_seed(0)
    v, b, t = args.vocab_size, args.batch_size, args.seq_len
    model = GPT2LMHeadModel(GPT2Config(vocab_size=v, n_positions=64, n_embd=128, n_layer=2, n_head=2))
    ids = torch.randint(0, v, (b, t))
    mask = torch.ones(b, t, dtype=torch.long)
    labels = ids.clone()
    labels[:, : t // 3] = -100                     # a prompt
    labels[b // 2:, 3 * t // 4:] = -100            # padding
    mask[b // 2:, 3 * t // 4:] = 0
    n = torch.tensor(int((labels[:, 1:] != -100).sum()))

    def plain():
        model.zero_grad()
        model(input_ids=ids, attention_mask=mask, labels=labels, num_items_in_batch=n).loss.backward()

    def recording():
        model.zero_grad()
        loss, _ = causal_lm_loss_and_stats(model(input_ids=ids, attention_mask=mask).logits, labels, n)
        loss.backward()

    steps = {"plain": plain, "recording": recording}
    times: dict[str, list[float]] = {k: [] for k in steps}
    for f in steps.values():
        f()
    for _ in range(args.rounds):
        for k, f in steps.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    for k, v_ in times.items():
        print(f"{k:10s} best {min(v_) * 1e3:7.2f} ms   median {statistics.median(v_) * 1e3:7.2f} ms")
    print(f"ratio_best={min(times['recording']) / min(times['plain']):.3f}")


if __name__ == "__main__":
    main()
