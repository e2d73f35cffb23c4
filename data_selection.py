#!/usr/bin/env python
"""Select hard-to-learn / easy-to-learn / ambiguous training examples from recorded dynamics.

    python data_selection.py --task_name sst2 --model_name bert-tiny --burn_out 4

writes dy_log/sst2/bert-tiny/three_regions_data_indices.json ({"hard": [guid...], "easy": [...],
"ambiguous": [...], "random": [...]}) and the settings used beside it. The paper's filtering:

    python data_selection.py --task_name sst2 --model_name bert-tiny --metric variability --fractions 0.1,0.25,0.33

writes one selection_<metric>[_worst][_both_ends]_<fraction>.json per fraction. Retrain on a
selection with run_glue.sh (or run_glue_and_record_td.py --with_data_selection).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from training_dynamics import selection
from training_dynamics.cli import run, setup_logging

logger = logging.getLogger("data_selection")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = p.add_argument_group("which run")
    src.add_argument("--task_name", help="Task part of the run folder <dy_log_dir>/<task_name>/<model_name>.")
    src.add_argument("--model_name", help="Model part of the run folder.")
    src.add_argument("--dy_log_dir", default="dy_log", help="Root folder of recorded dynamics (default: dy_log).")
    src.add_argument("--model_dir", help="The run folder itself (holds training_dynamics/), instead of --task_name/--model_name.")
    src.add_argument("--metrics_file", help="Select from an existing td_metrics.jsonl (e.g. the seed's) instead of computing "
                                            "metrics from the run's dynamics.")
    m = p.add_argument_group("metrics")
    m.add_argument("--burn_out", type=int, default=None, help="Use the first N epochs only (default: all recorded).")
    m.add_argument("--include_ci", action="store_true", help="Variability with the small-sample correction sqrt(var + var^2/(E-1)).")
    r = p.add_argument_group("three regions (default)")
    r.add_argument("--proportion", type=float, default=0.33, help="Share of the training set in each region: round(q*N) examples, halves rounded up (default: 0.33).")
    r.add_argument("--seed", type=int, default=42, help="Seed of the 'random' baseline region of the same size (default: 42).")
    f = p.add_argument_group("the paper's filtering (instead of the three regions)")
    f.add_argument("--metric", choices=list(selection.USUAL_ASCENDING), metavar="METRIC",
                   help="Select by this metric column: " + ", ".join(
        f"{k} ({'lowest' if v else 'highest'} first)" for k, v in selection.USUAL_ASCENDING.items()) + ".")
    f.add_argument("--worst", action="store_true", help="Flip the metric's usual order (e.g. highest confidence first).")
    f.add_argument("--both_ends", action="store_true", help="70%% from the front of the order and 30%% from the back (the paper's split).")
    f.add_argument("--fractions", default=None,
                   help="Comma-separated fractions, one file each: selection_<metric>[_worst][_both_ends]_<fraction>.json "
                        "(default: --proportion).")
    o = p.add_argument_group("output")
    o.add_argument("--output_dir", help="Where the indices files go (default: the run folder).")
    o.add_argument("--write_data", action="store_true",
                   help="Also write each selection's rows (text, label name, guid) to <output_dir>/selected_data/<name>.jsonl, "
                        "a file --train_file accepts.")
    args = p.parse_args(argv)
    if not args.model_dir and not args.metrics_file and not (args.task_name and args.model_name):
        p.error("give --task_name and --model_name, or --model_dir, or --metrics_file")
    if (args.worst or args.both_ends or args.fractions) and not args.metric:
        p.error("--worst, --both_ends and --fractions go with --metric")
    try:
        args.fractions = [float(x) for x in (args.fractions or str(args.proportion)).split(",") if x.strip()]
    except ValueError:
        p.error(f"--fractions must be comma-separated numbers, not {args.fractions!r}")
    for q in [args.proportion, *args.fractions]:
        if not 0 < q <= 1:
            p.error(f"fractions and --proportion must lie in (0, 1], not {q}")
    return args


def _run_folder(args: argparse.Namespace) -> Path:
    if args.model_dir:
        return Path(args.model_dir)
    if args.task_name and args.model_name:
        return Path(args.dy_log_dir) / args.task_name / args.model_name
    return Path(args.metrics_file).parent


def _load_metrics(args: argparse.Namespace, run_dir: Path):
    import pandas as pd

    if args.metrics_file:
        path = Path(args.metrics_file)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such metrics file")
        try:
            return pd.read_json(path, lines=True)
        except ValueError as exc:
            raise ValueError(f"{path}: cannot be read as jsonl ({str(exc).splitlines()[0]})") from None
    from training_dynamics import metrics

    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: no such run folder (record dynamics with run_glue_and_record_td.py first)")
    return metrics.load_td_metrics(run_dir, burn_out=args.burn_out, include_ci=args.include_ci)


def _fraction_name(args: argparse.Namespace, fraction: float) -> str:
    """E.g. ``confidence_worst_0.25``: the selection's key in its file ``selection_<name>.json``."""
    return f"{args.metric}{'_worst' if args.worst else ''}{'_both_ends' if args.both_ends else ''}_{fraction:g}"


def main(argv: list[str] | None = None) -> int:
    """``data_selection.py`` entry point: metrics -> indices file(s) [-> data files]."""
    args = parse_args(argv)
    setup_logging()
    run_dir = _run_folder(args)
    out = Path(args.output_dir) if args.output_dir else run_dir
    df = _load_metrics(args, run_dir)
    if args.metrics_file and (args.burn_out is not None or args.include_ci):
        logger.warning("--burn_out / --include_ci are ignored with --metrics_file (its metrics are used as they are)")
    for q in args.fractions if args.metric else [args.proportion]:
        if selection.selection_size(len(df), q) == 0:
            raise ValueError(f"a fraction of {q:g} of {len(df)} examples selects none; choose a larger one")
    data = _training_data(run_dir) if args.write_data else None  # fail before writing anything
    n = len(df)
    common = {"run_dir": str(run_dir), "metrics_file": args.metrics_file, "burn_out": args.burn_out,
              "include_ci": args.include_ci, "num_examples": n}
    written: dict[str, list[int]] = {}  # selection name -> guids
    if args.metric:
        for fraction in args.fractions:
            guids = selection.select_by_metric(df, args.metric, fraction=fraction, worst=args.worst, both_ends=args.both_ends)
            name = _fraction_name(args, fraction)
            path = selection.write_indices(out / f"selection_{name}.json", {name: guids}, {
                **common, "metric": args.metric, "worst": args.worst, "both_ends": args.both_ends,
                "fraction": fraction, "size": len(guids),
                "order": "ascending" if selection.USUAL_ASCENDING.get(args.metric, True) != args.worst else "descending"})
            logger.info("%s: %s -> %s", name, selection.describe(df, guids, ("confidence", "variability", args.metric)), path)
            written[name] = guids
    else:
        regions = selection.three_regions(df, proportion=args.proportion, seed=args.seed)
        sizes = {k: len(v) for k, v in regions.items()}
        path = selection.write_indices(out / selection.INDICES_NAME, regions, {
            **common, "proportion": args.proportion, "seed": args.seed, "sizes": sizes,
            "definition": "hard: lowest confidence; easy: highest confidence; ambiguous: highest variability; "
                          "random: uniform without replacement; ties by ascending guid"})
        for name, guids in regions.items():
            logger.info("%-9s %s", name, selection.describe(df, guids))
            written[name] = guids
        logger.info("wrote %s (%d of %d examples per region)", path, sizes["hard"], n)
    if data is not None:
        for name, guids in written.items():
            path = selection.write_selected_data(out / "selected_data" / f"{name}.jsonl", data.train, guids,
                                                 text_columns=data.text_columns, label_names=data.label_names)
            logger.info("wrote %s (%d rows)", path, len(guids))
    return 0


def _training_data(run_dir: Path):
    """The run's training texts, found through its ``dynamics_meta.json``."""
    from training_dynamics import dynamics_file
    from training_dynamics.data import load_from_meta

    meta = dynamics_file.read_meta(dynamics_file.dynamics_dir(run_dir))
    if not meta:
        raise FileNotFoundError(f"{dynamics_file.dynamics_dir(run_dir) / dynamics_file.META_NAME}: no such file; --write_data needs the "
                                "run's dynamics_meta.json to find the training texts")
    return load_from_meta(meta)


if __name__ == "__main__":
    sys.exit(run(main, "data_selection.py"))
