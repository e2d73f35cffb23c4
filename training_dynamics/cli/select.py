"""Select hard-to-learn / easy-to-learn / ambiguous training examples from recorded dynamics.

  training-dynamics select --run_dir dy_log/sst2/bert-tiny --burn_out 4

writes dy_log/sst2/bert-tiny/three_regions_data_indices.json ({"hard": [guid...], "easy": [...],
"ambiguous": [...], "random": [...]}) and the settings used beside it. The paper's filtering:

  training-dynamics select --run_dir dy_log/sst2/bert-tiny --metric variability --fractions 0.1,0.25,0.33

writes one selection_<metric>[_worst][_both_ends]_<fraction>.json per fraction. Retrain on a
selection with run_glue.sh (or `training-dynamics record --with_data_selection`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from training_dynamics.core.binding import ALLOW_HELP
from training_dynamics.analysis.selection import USUAL_ASCENDING
from training_dynamics.core.arguments import MetricsArguments, RegionArguments
from training_dynamics.cli.common import parse, setup_logging
from training_dynamics.core.errors import TrainingDynamicsError

logger = logging.getLogger(__name__)
MetricName = Literal[tuple(USUAL_ASCENDING)]


@dataclass
class SelectSourceArguments:
    _argument_group_name = "which run"
    run_dir: str | None = field(default=None, metadata={"aliases": ["--model_dir"], "help": "The run folder "
                                "<dy_log_dir>/<task>/<model> (holding training_dynamics/)."})
    task_name: str | None = field(default=None, metadata={"help": "Or name it: the task part of <dy_log_dir>/<task_name>/<model_name>."})
    model_name: str | None = field(default=None, metadata={"help": "The model part of the run folder."})
    dy_log_dir: str = field(default="dy_log", metadata={"help": "Root folder of recorded dynamics."})
    metrics_file: str | None = field(default=None, metadata={"help": "Select from an existing td_metrics.jsonl (e.g. "
                                     "the seed's) instead of computing metrics from a run's dynamics."})

    def __post_init__(self):
        if not self.run_dir and not self.metrics_file and not (self.task_name and self.model_name):
            raise TrainingDynamicsError("give --run_dir, or --task_name and --model_name, or --metrics_file")

    @property
    def folder(self) -> Path:
        """The run folder (for a bare metrics file: the folder holding it)."""
        if self.run_dir:
            return Path(self.run_dir)
        if self.task_name and self.model_name:
            from training_dynamics.analysis.run import Run

            return Run.at(self.dy_log_dir, self.task_name, self.model_name).path
        return Path(self.metrics_file).parent


@dataclass
class SelectArguments:
    _argument_group_name = "what to select"
    seed: int = field(default=42, metadata={"help": "Seed of the 'random' baseline region of the same size."})
    metric: MetricName | None = field(default=None, metadata={"help": "The paper's filtering instead of the three "
                                      "regions: select by this metric column, in its usual order (" + ", ".join(
                                          f"{k}: {'lowest' if v else 'highest'} first" for k, v in USUAL_ASCENDING.items()) + ")."})
    worst: bool = field(default=False, metadata={"help": "Flip the metric's usual order (e.g. highest confidence first)."})
    both_ends: bool = field(default=False, metadata={"help": "70%% from the front of the order and 30%% from the back (the paper's split)."})
    fractions: str | None = field(default=None, metadata={"help": "Comma-separated fractions, one file each: "
                                  "selection_<metric>[_worst][_both_ends]_<fraction>.json (default: --proportion)."})
    output_dir: str | None = field(default=None, metadata={"help": "Where the indices files go (default: the run folder)."})
    write_data: bool = field(default=False, metadata={"help": "Also write each selection's rows (text, label name, guid) "
                             "to <output_dir>/selected_data/<name>.jsonl, a file --train_file accepts."})
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Replace the files an earlier `select` wrote "
                                       "there (never another file)."})
    allow_changed_data: bool = field(default=False, metadata={"help": ALLOW_HELP})

    def __post_init__(self):
        if (self.worst or self.both_ends or self.fractions) and not self.metric:
            raise TrainingDynamicsError("--worst, --both_ends and --fractions go with --metric")

    def fraction_list(self, proportion: float) -> list[float]:
        """The fractions to select (``--fractions``, else ``--proportion``), checked to lie in (0, 1]."""
        try:
            values = [float(x) for x in (self.fractions or str(proportion)).split(",") if x.strip()]
        except ValueError:
            raise TrainingDynamicsError(f"--fractions must be comma-separated numbers, not {self.fractions!r}") from None
        for q in values:
            if not 0 < q <= 1:
                raise TrainingDynamicsError(f"fractions must lie in (0, 1], not {q}")
        return values

    def name(self, fraction: float) -> str:
        """E.g. ``confidence_worst_0.25``: the selection's key in its file ``selection_<name>.json``."""
        return f"{self.metric}{'_worst' if self.worst else ''}{'_both_ends' if self.both_ends else ''}_{fraction:g}"


def main(argv: list[str] | None = None, *, prog: str = "training-dynamics select") -> int:
    """Metrics -> indices file(s) [-> data files]."""
    src, metric_args, region_args, args = parse((SelectSourceArguments, MetricsArguments, RegionArguments,
                                                 SelectArguments), argv, prog=prog, doc=__doc__)
    setup_logging()
    from training_dynamics import kinds
    from training_dynamics.analysis import selection
    from training_dynamics.analysis.run import Run, load_metrics
    from training_dynamics.core.outputs import Outputs

    if src.metrics_file and (metric_args.burn_out is not None or metric_args.include_ci):
        logger.warning("--burn_out / --include_ci are ignored with --metrics_file (its metrics are used as they are)")
        metric_args = MetricsArguments()
    fractions = args.fraction_list(region_args.proportion)
    folder = src.folder
    out = Path(args.output_dir) if args.output_dir else folder
    names = [args.name(q) for q in fractions] if args.metric else [*selection.REGIONS, "random"]
    indices = ([out / f"selection_{name}.json" for name in names] if args.metric else [out / selection.INDICES_NAME])
    data_files = [out / "selected_data" / f"{name}.jsonl" for name in names] if args.write_data else []
    source = {} if src.metrics_file else (Run(folder).meta.get("data") or {})
    guard = Outputs("select", inputs=[src.metrics_file, source.get("train_file"), source.get("validation_file")],
                    overwrite=args.overwrite_output_dir)
    guard.check_folder(out)
    guard.check_files([*indices, *map(selection.settings_path, indices), *data_files])  # before any work
    if src.metrics_file:
        rm = load_metrics(src.metrics_file)
    else:
        rm = load_metrics(folder, burn_out=metric_args.burn_out, include_ci=metric_args.include_ci)
    kind = kinds.of_run(rm.run) if rm.run is not None else kinds.get(None)
    df = kind.selection_table(rm)  # what is selected: examples (a token run: sentences)
    if args.metric in (None, "variability"):
        selection.refuse_constant_variability(df, "the ambiguous region" if args.metric is None
                                              else "a selection by variability")
    for q in fractions if args.metric else [region_args.proportion]:
        if selection.selection_size(len(df), q) == 0:
            raise TrainingDynamicsError(f"a fraction of {q:g} of {len(df)} examples selects none; choose a larger one")
    data = Run(folder).recorded_runs()[0].data(allow_changed=args.allow_changed_data) if args.write_data else None  # fail before writing
    n = len(df)
    common = {"run_dir": str(folder), "metrics_file": src.metrics_file, "burn_out": metric_args.burn_out,
              "include_ci": metric_args.include_ci, "num_examples": n}
    written: dict[str, list[int]] = {}  # selection name -> guids
    if args.metric:
        for fraction in fractions:
            guids = selection.select_by_metric(df, args.metric, fraction=fraction, worst=args.worst,
                                               both_ends=args.both_ends)
            name = args.name(fraction)
            ascending = USUAL_ASCENDING.get(args.metric, True) != args.worst
            path = selection.write_indices(out / f"selection_{name}.json", {name: guids}, {
                **common, "metric": args.metric, "worst": args.worst, "both_ends": args.both_ends,
                "fraction": fraction, "size": len(guids), "order": "ascending" if ascending else "descending"})
            guard.written(path, selection.settings_path(path))
            logger.info("%s: %s -> %s", name, selection.describe(df, guids, ("confidence", "variability", args.metric)), path)
            written[name] = guids
    else:
        regions = selection.three_regions(df, proportion=region_args.proportion, seed=args.seed)
        sizes = {k: len(v) for k, v in regions.items()}
        path = selection.write_indices(out / selection.INDICES_NAME, regions, {
            **common, "proportion": region_args.proportion, "seed": args.seed, "sizes": sizes,
            "definition": "hard: lowest confidence; easy: highest confidence; ambiguous: highest variability; "
                          "random: uniform without replacement; ties by ascending guid"})
        guard.written(path, selection.settings_path(path))
        for name, guids in regions.items():
            logger.info("%-9s %s", name, selection.describe(df, guids))
            written[name] = guids
        logger.info("wrote %s (%d of %d examples per region)", path, sizes["hard"], n)
    if data is not None:
        excluded = set(data.excluded_guids.tolist())  # changed since recording (--allow_changed_data)
        for name, guids in written.items():
            if len(data.excluded_guids):
                kept = [g for g in guids if g not in excluded]
                logger.warning("%s: %d of its %d examples changed since recording and are left out of the data "
                               "written", name, len(guids) - len(kept), len(guids))
                guids = kept
            path = kind.write_selected_data(out / "selected_data" / f"{name}.jsonl", data, guids)
            guard.written(path)
            logger.info("wrote %s (%d rows)", path, len(guids))
    return 0
