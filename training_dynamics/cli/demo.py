"""Run the offline demo of the whole pipeline: data with planted label noise, two tiny BERTs made
locally, and every step (record, metrics, plot, select, compare, find-issues, review); then the
generative part: prompt/response pairs with planted bad responses, a tiny GPT-2, record-clm and the
same analysis; then token classification: BIO sentences with retyped mentions, a tiny BERT token
classifier, record-ner and the same analysis word by word.

  training-dynamics demo --output_dir demo_output

Needs no network; about a minute and a half on a laptop CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .common import parse, setup_logging
from ..errors import TrainingDynamicsError


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

    def __post_init__(self):
        if self.n_train < 50 or self.num_train_epochs < 2:
            raise TrainingDynamicsError("the demo needs --n_train >= 50 and --num_train_epochs >= 2")


def main(argv: list[str] | None = None, *, prog: str = "training-dynamics demo") -> int:
    """Run the demo."""
    (args,) = parse((DemoArguments,), argv, prog=prog, doc=__doc__)
    setup_logging()
    from .demo_run import run_demo

    run_demo(args.output_dir, n_train=args.n_train, epochs=args.num_train_epochs, seed=args.seed,
             generative=args.generative, ner=args.ner)
    return 0
