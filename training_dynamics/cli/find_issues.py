"""Rank training examples by how likely their label is wrong; writes label_issues.jsonl + .csv.

  --source model:    one no-grad pass of a trained model; score = per-example cross-entropy (loss).
  --source dynamics: recorded training dynamics only (one run, or several of the same data,
                     averaged); score = 1-confidence (default), -aum, mean loss or their mean rank;
                     a cross-fitted run (record --cross_fit 2) ranks by default on the mean rank of
                     its held-out and in-sample confidence, and counts from the held-out probabilities.

Higher score = more suspicious; rank 1 first. --decision flags the likely wrong labels
(is_label_issue) and prints how many there are per given -> likely-true class pair.
Review the result with `training-dynamics review`.

  training-dynamics find-issues --source dynamics --run_dir dy_log/sst2/bert-tiny --output_dir issues
  training-dynamics find-issues --source dynamics --run_dir dy_log/sst2/seed1 dy_log/sst2/seed2 --output_dir issues
  training-dynamics find-issues --source model --model_name_or_path outputs/sst2-bert-tiny \\
      --task_name sst2 --output_dir issues
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

from training_dynamics.core.binding import ALLOW_HELP
from training_dynamics.decisions.rules import DECISIONS, RULES
from training_dynamics.core.arguments import DataArguments, ProgressArguments, RegionArguments
from training_dynamics.cli.common import parse, setup_logging
from training_dynamics.core.errors import TrainingDynamicsError

logger = logging.getLogger(__name__)


@dataclass
class FindIssuesArguments:
    _argument_group_name = "ranking"
    output_dir: str = field(metadata={"help": "Where label_issues.jsonl, label_issues.csv and label_issues_settings.json go."})
    source: Literal["model", "dynamics"] = field(default="dynamics", metadata={"help": "Score from the recorded "
                                                 "dynamics of --run_dir (the default), or with a trained model "
                                                 "(--model_name_or_path, one pass)."})
    top_k: int | None = field(default=None, metadata={"help": "Keep only the K most suspicious examples (default: all)."})
    allow_changed_data: bool = field(default=False, metadata={"help": ALLOW_HELP})
    run_dir: list[str] | None = field(default=None, metadata={"aliases": ["--model_dir"], "help": "Recorded run "
                                      "folder(s) dy_log/<task>/<model>; several runs of the same data (seeds or models) "
                                      "are averaged. Required for --source dynamics; with --source model they add "
                                      "each example's region."})
    score: Literal["auto", "confidence", "aum", "loss", "rank_mean", "worst_turn", "combined"] = field(
        default="auto", metadata={
            "help": "Dynamics source: auto (default) is combined on a cross-fitted run (record --cross_fit 2) and "
                    "confidence otherwise. Rank by low confidence (score = 1-confidence), low AUM (-aum), high mean "
                    "loss over epochs, rank_mean (the mean of the confidence and AUM ranks), worst_turn "
                    "(conversations: the confidence of the least confident assistant turn) or combined (the mean of "
                    "the ranks of held-out and in-sample confidence)."})
    burn_out: int | None = field(default=None, metadata={"help": "Use only the first N epochs of the dynamics (default: all)."})
    decision: str | None = field(
        default=None, metadata={"choices": DECISIONS, "help": "Which labels to flag (is_label_issue): " + "; ".join(
            f"{name}: {text}" for name, text in RULES.items()) + "."})
    count_epochs: int | None = field(default=None, metadata={"help": "--decision rank_count from dynamics: estimate "
                                     "the count from the probabilities of the first N epochs (default: chosen from the "
                                     "training curve: the first half, rounded up, before the model fits the wrong "
                                     "labels, grown until its last epoch had fitted the data)."})
    threshold_run_dir: str | None = field(default=None, metadata={"help": "For --decision aum_threshold: a run of the "
                                          "same data in which about N/(C+1) examples were given the fake class "
                                          "__threshold__ (Pleiss et al., 2020)."})
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Replace the files an earlier `find-issues` "
                                       "wrote into --output_dir (never another file)."})

    def __post_init__(self):
        if self.top_k is not None and self.top_k < 1:
            raise TrainingDynamicsError("--top_k must be at least 1")
        if self.source == "dynamics" and not self.run_dir:
            raise TrainingDynamicsError("--source dynamics needs --run_dir (a run folder dy_log/<task>/<model>)")
        if self.decision == "aum_threshold" and (self.source != "dynamics" or not self.threshold_run_dir):
            raise TrainingDynamicsError("--decision aum_threshold needs --source dynamics and --threshold_run_dir")
        if self.count_epochs is not None and (self.decision not in (None, "rank_count") or self.source != "dynamics"):
            raise TrainingDynamicsError("--count_epochs is for --decision rank_count with --source dynamics")
        if self.count_epochs is not None and self.count_epochs < 1:
            raise TrainingDynamicsError("--count_epochs must be at least 1")
        if self.decision == "aum_mixture" and self.source != "dynamics":
            raise TrainingDynamicsError("--decision aum_mixture needs --source dynamics (the AUM)")


@dataclass
class ScoringModelArguments:
    _argument_group_name = "model source"
    model_name_or_path: str | None = field(default=None, metadata={"help": "A trained classifier: a local folder "
                                           "saved with save_pretrained, or a Hub id. With --source dynamics it is "
                                           "scored too, and the summary and label_issues_settings.json (agreement) "
                                           "say how far its ranking and flags agree with the dynamics'."})
    max_seq_length: int | None = field(default=None, metadata={"help": "--source model: longer inputs are cut as the run "
                                       "was trained (its --max_seq_length and --truncation, from its meta; 128 without a "
                                       "run)."})
    per_device_eval_batch_size: int = field(default=64, metadata={"aliases": ["--batch_size"],
                                            "help": "Examples per forward pass."})
    device: str | None = field(default=None, metadata={"help": "torch device (default: cuda when available, else cpu)."})
    trust_label_order: bool = field(default=False, metadata={"help": "Only for a model whose config has no label "
                                    "names (LABEL_0, LABEL_1, ...): take its class i to be the data's i-th label. "
                                    "Named classes are always matched by name."})
    cache_dir: str | None = field(default=None, metadata={"help": "Where Hub downloads are cached."})


def main(argv: list[str] | None = None, *, prog: str = "training-dynamics find-issues") -> int:
    """Rank, write the issues files, log the top few."""
    args, model_args, data_args, region_args, progress = parse(
        (FindIssuesArguments, ScoringModelArguments, DataArguments, RegionArguments, ProgressArguments), argv,
        prog=prog, doc=__doc__)
    if args.source == "model" and not model_args.model_name_or_path:
        raise TrainingDynamicsError("--source model needs --model_name_or_path")
    if args.source == "model" and not data_args.given:
        raise TrainingDynamicsError("--source model needs --task_name or --train_file")
    setup_logging()
    from training_dynamics.workflows.find_issues import find_label_issues
    from training_dynamics.analysis.run import Run

    from training_dynamics.decisions.ranking import issue_paths
    from training_dynamics.core.outputs import Outputs

    guard = Outputs("find-issues", inputs=[*(args.run_dir or []), data_args.train_file, model_args.model_name_or_path,
                                           args.threshold_run_dir], overwrite=args.overwrite_output_dir)
    guard.check_folder(args.output_dir)
    guard.check_files(issue_paths(args.output_dir).values())
    runs = [r for path in args.run_dir or [] for r in Run(path).recorded_runs()]  # an averaged folder: its runs
    data = None
    if runs and (data_args.train_file or (not data_args.given and runs[0].meta.get("data"))):
        # the run's own data (or its moved file, read with the recorded columns), checked against its binding
        from training_dynamics.core.data import split_list

        data = runs[0].data(train_file=data_args.train_file, cache_dir=model_args.cache_dir,
                            text_columns=split_list(data_args.text_columns), label_column=data_args.label_column,
                            allow_changed=args.allow_changed_data)
    elif data_args.given:
        data = data_args.load(cache_dir=model_args.cache_dir)
    found = find_label_issues(
        runs=runs, data=data, source=args.source, score=args.score, rule=args.decision, burn_out=args.burn_out,
        proportion=region_args.proportion, count_epochs=args.count_epochs, top_k=args.top_k,
        threshold_run=Run(args.threshold_run_dir) if args.threshold_run_dir else None,
        model_name_or_path=model_args.model_name_or_path, batch_size=model_args.per_device_eval_batch_size,
        max_seq_length=model_args.max_seq_length, device=model_args.device,
        trust_label_order=model_args.trust_label_order, cache_dir=model_args.cache_dir,
        progress=not progress.disable_tqdm)
    if data_args.class_names:  # (a ranking loaded with them already has them: then nothing changes)
        from training_dynamics.core.data import split_list

        found.rename_labels(split_list(data_args.class_names))
    found.write(args.output_dir)
    guard.written(*issue_paths(args.output_dir).values())
    top = found.table.head(5)
    logger.info("most suspicious: %s", "; ".join(f"guid {g} ({s:.3f})" for g, s in zip(top["guid"], top["score"])))
    if found.decision is not None:
        print(found.describe())
    if found.describe_agreement():
        print(found.describe_agreement())
    return 0
