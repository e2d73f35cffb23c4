"""Run the offline demo of the whole pipeline: data with planted label noise, two tiny BERTs made
locally, and every step (record, metrics, plot, select, compare, find-issues, review); then the
generative part: prompt/response pairs with planted bad responses, a tiny GPT-2, record-clm and the
same analysis; then token classification: BIO sentences with retyped mentions, a tiny BERT token
classifier, record-ner and the same analysis word by word.

  training-dynamics demo --output_dir demo_output

Needs no network; takes about 2 minutes (107 s of CPU time measured, on one thread; other jobs on the
machine stretch it in proportion).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from training_dynamics.cli.common import parse, setup_logging
from training_dynamics.core.errors import TrainingDynamicsError


@dataclass
class DemoArguments:
    output_dir: str = field(default="demo_output", metadata={"help": "Everything the demo makes goes here."})
    n_train: int = field(default=2000, metadata={"help": "Training examples to generate."})
    num_train_epochs: int = field(default=5, metadata={"aliases": ["--epochs"], "help": "Training epochs."})
    seed: int = field(default=42, metadata={"help": "Seed for data, models and training."})
    generative: bool = field(default=True, metadata={"help": "Also the generative part (a tiny GPT-2 on prompt/response "
                             "pairs, into <output_dir>/generative); --generative false skips it."})
    ner: bool = field(default=True, metadata={"help": "Also the token classification part (a tiny BERT tagger on "
                      "BIO sentences with retyped mentions, into <output_dir>/ner); --ner false skips it."})
    num_threads: int | None = field(default=None, metadata={"help": "CPU threads to train on. Default: 1, unless "
                                    "OMP_NUM_THREADS is set (the tiny models train as fast on one thread, and on a "
                                    "busy machine several threads wait for each other)."})

    def __post_init__(self):
        if self.n_train < 50 or self.num_train_epochs < 2:
            raise TrainingDynamicsError("the demo needs --n_train >= 50 and --num_train_epochs >= 2")
        if self.num_threads is not None and self.num_threads < 1:
            raise TrainingDynamicsError(f"--num_threads must be >= 1, not {self.num_threads}")


def main(argv: list[str] | None = None, *, prog: str = "training-dynamics demo") -> int:
    """Run the demo."""
    (args,) = parse((DemoArguments,), argv, prog=prog, doc=__doc__)
    setup_logging()
    from training_dynamics.cli.demo_run import run_demo

    run_demo(args.output_dir, n_train=args.n_train, epochs=args.num_train_epochs, seed=args.seed,
             generative=args.generative, ner=args.ner, num_threads=args.num_threads)
    return 0
