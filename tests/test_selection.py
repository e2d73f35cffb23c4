"""Data selection: regions, the paper's filtering options, indices files, and retraining on a region."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, run_cli, train_args
from training_dynamics.analysis import selection
from training_dynamics.analysis.run import Run


# -- a hand-made metrics table ------------------------------------------------------------------
# guids are out of order; confidence has a tie (0.5 at guids 40 and 20), variability a tie (0.3 at 70 and 10).
GUIDS = [50, 10, 40, 20, 30, 90, 60, 80, 70, 0]
CONF = [0.90, 0.10, 0.50, 0.50, 0.95, 0.20, 0.70, 0.05, 0.60, 0.99]
VAR = [0.05, 0.30, 0.20, 0.10, 0.01, 0.25, 0.15, 0.02, 0.30, 0.00]
CORR = [4, 0, 2, 2, 4, 1, 3, 0, 3, 4]


def table() -> pd.DataFrame:
    return pd.DataFrame({"guid": GUIDS, "index": range(10), "confidence": CONF, "variability": VAR, "correctness": CORR})


def by_loop(df: pd.DataFrame, metric: str, descending: bool) -> list[int]:
    """The obvious ranking: sort (value, guid) pairs, value flipped for descending."""
    pairs = [(-v if descending else v, g) for v, g in zip(df[metric], df["guid"])]
    return [g for _, g in sorted(pairs)]


def test_three_regions_content_and_order():
    regions = selection.three_regions(table(), proportion=0.33)  # round(3.3) = 3
    assert regions == {"hard": [80, 10, 90],          # lowest confidence first
                       "easy": [0, 30, 50],           # highest confidence first
                       "ambiguous": [10, 70, 90]}     # highest variability; tie 0.3 -> guid 10 before 70


def test_three_regions_match_the_obvious_loop_on_random_tables():
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 50, 301):
        df = pd.DataFrame({"guid": rng.choice(10 * n, n, replace=False),
                           "confidence": rng.integers(0, 5, n) / 4,   # many ties
                           "variability": rng.integers(0, 3, n) / 10})
        k = int(np.floor(0.33 * n + 0.5))
        regions = selection.three_regions(df, proportion=0.33)
        assert regions["hard"] == by_loop(df, "confidence", False)[:k]
        assert regions["easy"] == by_loop(df, "confidence", True)[:k]
        assert regions["ambiguous"] == by_loop(df, "variability", True)[:k]


def test_regions_ignore_row_order_and_ties_go_by_guid():
    df = table()
    shuffled = df.sample(frac=1, random_state=3).reset_index(drop=True)
    assert selection.three_regions(shuffled, seed=1) == selection.three_regions(df, seed=1)
    flat = df.assign(confidence=0.5, variability=0.1)
    regions = selection.three_regions(flat)
    assert regions["hard"] == regions["easy"] == regions["ambiguous"] == [0, 10, 20]


def test_random_region_is_seeded_same_size_and_unique():
    df = table()
    a, b, c = (selection.three_regions(df, seed=s)["random"] for s in (7, 7, 8))
    assert a == b and a != c
    assert len(a) == len(set(a)) == 3 and set(a) <= set(GUIDS) and a == sorted(a)
    assert "random" not in selection.three_regions(df)


@pytest.mark.parametrize("n, fraction, size", [(10, 0.33, 3), (150, 0.33, 50), (100, 0.33, 33), (10, 0.25, 3),
                                                (30, 0.1, 3), (3, 0.5, 2), (7, 1.0, 7), (5, 0.01, 0)])
def test_exact_sizes(n, fraction, size):
    df = pd.DataFrame({"guid": range(n), "confidence": np.linspace(0, 1, n), "variability": 0.0})
    assert selection.selection_size(n, fraction) == size
    assert len(selection.select_by_metric(df, "confidence", fraction=fraction)) == size
    assert len(selection.select_by_metric(df, "confidence", fraction=fraction, both_ends=True)) == size
    assert all(len(v) == size for v in selection.three_regions(df, proportion=fraction, seed=0).values())


def test_sizes_never_exceed_round_fraction():
    for n in range(1, 120):
        for fraction in (0.01, 0.1, 1 / 6, 0.25, 0.33, 0.3319, 0.5, 0.75, 1.0):
            k = selection.selection_size(n, fraction)
            assert k == min(n, int(np.floor(fraction * n + 0.5 + 1e-9))) and abs(k - fraction * n) <= 0.5 + 1e-9


def test_select_by_metric_usual_order_and_worst():
    df = table()
    assert selection.select_by_metric(df, "confidence", fraction=0.3) == [80, 10, 90]            # hard
    assert selection.select_by_metric(df, "confidence", fraction=0.3, worst=True) == [0, 30, 50]  # easy
    assert selection.select_by_metric(df, "variability", fraction=0.3) == [10, 70, 90]            # ambiguous
    assert selection.select_by_metric(df, "variability", fraction=0.2, worst=True) == [0, 30]
    assert selection.select_by_metric(df, "correctness", fraction=0.2) == [10, 80]                # never correct
    assert selection.select_by_metric(df, "correctness", fraction=0.2, worst=True) == [0, 30]
    df["custom"] = np.arange(10)[::-1]
    assert selection.select_by_metric(df, "custom", fraction=0.2, ascending=True) == [0, 70]
    with pytest.raises(ValueError, match="no usual order for metric 'custom'"):
        selection.select_by_metric(df, "custom", fraction=0.2)


def test_select_by_metric_both_ends():
    df = table()
    # confidence ascending: 80 .05, 10 .10, 90 .20, 20 .50, 40 .50, 70 .60, 60 .70, 50 .90, 30 .95, 0 .99
    # k = 5: floor(0.7 * 5) = 3 from the front, 2 from the back (the paper's train_dy_filtering.py split)
    assert selection.select_by_metric(df, "confidence", fraction=0.5, both_ends=True) == [80, 10, 90, 0, 30]
    assert selection.select_by_metric(df, "confidence", fraction=0.5, both_ends=True, worst=True) == [0, 30, 50, 80, 10]
    assert selection.select_by_metric(df, "confidence", fraction=0.5, both_ends=True, front_share=0.5) == [80, 10, 0, 30, 50]
    everything = selection.select_by_metric(df, "confidence", fraction=1.0, both_ends=True)
    assert sorted(everything) == sorted(GUIDS)  # no overlap, no repeat


def test_region_of_labels_and_priority():
    df = table().set_index(pd.Index(list("abcdefghij")))
    labels = selection.region_of(df, proportion=0.33)
    assert labels.index.equals(df.index)
    got = dict(zip(df["guid"], labels))
    assert [g for g in GUIDS if got[g] == "hard"] == [10, 90, 80]       # 10 and 90 are also ambiguous: hard wins
    assert sorted(g for g in GUIDS if got[g] == "easy") == [0, 30, 50]
    assert [g for g in GUIDS if got[g] == "ambiguous"] == [70]
    assert sorted(g for g in GUIDS if got[g] == "") == [20, 40, 60]
    wide = selection.region_of(table(), proportion=0.6)  # hard and easy overlap in the middle
    assert dict(zip(GUIDS, wide))[70] == "hard"


def test_bad_tables():
    with pytest.raises(ValueError, match="no column.*variability"):
        selection.three_regions(table().drop(columns="variability"))
    with pytest.raises(ValueError, match="non-finite value at guid 40"):
        selection.three_regions(table().assign(confidence=[0.1, 0.2, np.nan, 0, 0, 0, 0, 0, 0, 0]))
    with pytest.raises(ValueError, match="fraction must lie in"):
        selection.three_regions(table(), proportion=0)
    with pytest.raises(ValueError, match="empty"):
        selection.three_regions(table().iloc[:0])


# -- indices files ------------------------------------------------------------------------------
def test_read_indices(tmp_path):
    path = selection.write_indices(tmp_path / "sel.json", {"hard": [3, 1], "easy": [2]}, {"proportion": 0.33})
    assert json.loads(path.read_text()) == {"hard": [3, 1], "easy": [2]}
    assert json.loads(selection.settings_path(path).read_text()) == {"proportion": 0.33}
    region, guids = selection.read_indices(path, "hard")
    assert region == "hard" and guids.tolist() == [3, 1] and guids.dtype == np.int64
    with pytest.raises(ValueError, match="unknown region 'middle'; choose one of hard, easy"):
        selection.read_indices(path, "middle")
    with pytest.raises(ValueError, match="holds several regions"):
        selection.read_indices(path)
    (tmp_path / "list.json").write_text("[5, 7]")
    region, guids = selection.read_indices(tmp_path / "list.json")
    assert region == "list" and guids.tolist() == [5, 7]
    with pytest.raises(FileNotFoundError, match="no such indices file"):
        selection.read_indices(tmp_path / "nope.json", "hard")
    for bad, msg in (('{"hard": [1, 1]}', "guid 1 more than once"), ('{"hard": [1.5]}', "ids must be integers or strings, not real numbers"),
                     ('{"hard": []}', "empty"), ("{", "not valid JSON")):
        (tmp_path / "bad.json").write_text(bad)
        with pytest.raises(ValueError, match=msg):
            selection.read_indices(tmp_path / "bad.json", "hard")


def test_select_guids_matches_ids_not_positions(tmp_path):
    """A shuffled file with its own ``idx`` column: rows are found by id, in the file's order."""
    from training_dynamics.core.data import load_text_classification

    ids = np.random.default_rng(0).permutation(20) * 10 + 1000
    with open(tmp_path / "train.jsonl", "w") as fh:
        for i in ids:
            fh.write(json.dumps({"idx": int(i), "sentence": f"text {i}", "label": "pos" if i % 20 else "neg"}) + "\n")
    ds = load_text_classification(train_file=str(tmp_path / "train.jsonl")).train
    want = [int(ids[5]), int(ids[0]), int(ids[17])]
    kept = selection.select_guids(ds, np.array(want))
    assert kept["guid"] == [g for g in ids.tolist() if g in want]
    assert kept["sentence"] == [f"text {g}" for g in kept["guid"]]
    with pytest.raises(ValueError, match="1 of 2 selected guids are not in the training set \\(first: 5;"):
        selection.select_guids(ds, np.array([int(ids[0]), 5]))


# -- data_selection.py on a hand-made metrics file ----------------------------------------------
def test_cli_three_regions_from_metrics_file(tmp_path):
    metrics = tmp_path / "td_metrics.jsonl"
    table().to_json(metrics, orient="records", lines=True)
    proc = run_cli("data_selection.py", "--metrics_file", metrics, "--seed", 5)
    written = json.loads((tmp_path / "three_regions_data_indices.json").read_text())
    assert list(written) == ["hard", "easy", "ambiguous", "random"]
    assert written == selection.three_regions(table(), proportion=0.33, seed=5)
    settings = json.loads((tmp_path / "three_regions_data_indices_settings.json").read_text())
    assert settings["proportion"] == 0.33 and settings["seed"] == 5 and settings["sizes"]["hard"] == 3
    assert "hard      3 examples; confidence [0.05, 0.2]" in proc.stderr


def test_cli_paper_filtering_fractions(tmp_path):
    metrics = tmp_path / "m.jsonl"
    table().to_json(metrics, orient="records", lines=True)
    run_cli("data_selection.py", "--metrics_file", metrics, "--metric", "confidence", "--worst",
            "--fractions", "0.1,0.25,0.5", "--output_dir", tmp_path / "out")
    for fraction, size in (("0.1", 1), ("0.25", 3), ("0.5", 5)):
        got = json.loads((tmp_path / "out" / f"selection_confidence_worst_{fraction}.json").read_text())
        assert got == {f"confidence_worst_{fraction}": [0, 30, 50, 60, 70][:size]}
        settings = json.loads((tmp_path / "out" / f"selection_confidence_worst_{fraction}_settings.json").read_text())
        assert settings["order"] == "descending" and settings["size"] == size
    run_cli("data_selection.py", "--metrics_file", metrics, "--metric", "variability", "--both_ends",
            "--fractions", "0.4", "--output_dir", tmp_path / "out")
    got = json.loads((tmp_path / "out" / "selection_variability_both_ends_0.4.json").read_text())
    assert got == {"variability_both_ends_0.4": [10, 70, 0, 30]}


@pytest.mark.parametrize("args, message", [
    (["--metric", "nope"], "invalid choice: 'nope'"),
    (["--worst"], "--worst, --both_ends and --fractions go with --metric"),
    (["--metric", "loss", "--fractions", "0.1,2"], "must lie in (0, 1], not 2.0"),
    (["--proportion", "0.5", "--metrics_file", "missing.jsonl"], "missing.jsonl: no such metrics file"),
    (["--metric", "loss", "--fractions", "0.3,0.01"], "a fraction of 0.01 of 10 examples selects none"),
    (["--proportion", "0.04"], "a fraction of 0.04 of 10 examples selects none"),
])
def test_cli_errors(tmp_path, args, message):
    metrics = tmp_path / "m.jsonl"
    table().to_json(metrics, orient="records", lines=True)
    proc = run_cli("data_selection.py", "--metrics_file", metrics, *args, check=False)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


# -- end to end: record -> metrics -> select -> retrain on a region -----------------------------
@pytest.fixture(scope="module")
def selected(recorded_run, tmp_path_factory):
    """data_selection.py on the real 4-epoch recording, with --write_data."""
    out = tmp_path_factory.mktemp("selected")
    run_cli("data_selection.py", "--model_dir", recorded_run, "--burn_out", 4, "--write_data", "--output_dir", out)
    return out


def read_epoch(path: Path) -> dict[int, int]:
    return {r["guid"]: r["gold"] for r in map(json.loads, path.read_text().splitlines())}


@pytest.mark.slow
def test_end_to_end_regions_from_a_recorded_run(recorded_run, selected, demo_data):
    df = Run(recorded_run).metrics(burn_out=4)
    regions = json.loads((selected / "three_regions_data_indices.json").read_text())
    assert regions == selection.three_regions(df, proportion=0.33, seed=42)
    assert all(len(v) == 50 for v in regions.values())  # round(0.33 * 150)
    conf = dict(zip(df["guid"], df["confidence"]))
    others = set(df["guid"]) - set(regions["hard"])
    assert max(conf[g] for g in regions["hard"]) <= min(conf[g] for g in others)
    # --write_data: rows with text and label name, loadable with --train_file, guids kept
    from training_dynamics.core.data import load_text_classification

    rows = [json.loads(line) for line in open(demo_data["train"])]
    written = load_text_classification(train_file=str(selected / "selected_data" / "ambiguous.jsonl"),
                                       label_names=["negative", "positive"]).train
    assert sorted(written["guid"]) == sorted(regions["ambiguous"])
    for g, text, label in zip(written["guid"], written["sentence"], written["label"]):
        assert rows[g]["sentence"] == text and rows[g]["label"] == ["negative", "positive"][label]


@pytest.mark.slow
def test_retrain_on_a_region_trains_exactly_on_it(recorded_run, selected, demo_data, tiny_model, tmp_path):
    """run_glue.sh's command with --record_dynamics: the recorded epoch holds exactly the region's guids."""
    ambiguous = json.loads((selected / "three_regions_data_indices.json").read_text())["ambiguous"]
    args = train_args(tiny_model, demo_data, tmp_path, epochs=1)
    run_cli("run_glue_and_record_td.py", *args, "--dy_model_name", "tiny", "--with_data_selection",
            "--data_selection_region", "ambiguous", "--data_selection_file", selected / "three_regions_data_indices.json",
            "--record_dynamics")
    seen = read_epoch(tmp_path / "dy_log" / "train" / "tiny_ambiguous" / "training_dynamics" / "dynamics_epoch_0.jsonl")
    assert sorted(seen) == sorted(ambiguous)
    gold = {i: ["negative", "positive"].index(json.loads(line)["label"]) for i, line in enumerate(open(demo_data["train"]))}
    assert all(seen[g] == gold[g] for g in seen)
    record = json.loads((tmp_path / "model_out" / "data_selection.json").read_text())
    assert record["region"] == "ambiguous" and record["guids"] == sorted(ambiguous) and record["num_train_examples"] == 150
    results = json.loads((tmp_path / "model_out" / "eval_results.json").read_text())
    assert 0 <= results["eval_accuracy"] <= 1 and "eval_loss" in results


@pytest.mark.slow
def test_run_glue_sh(recorded_run, selected, demo_data, tiny_model, tmp_path):
    """The script itself, with environment overrides; no dynamics recorded by default."""
    import subprocess
    import sys

    dy_log = recorded_run.parents[1]
    env = {**os.environ, "PYTHON": sys.executable, "MODEL": str(tiny_model), "SELECTION_MODEL": "tiny", "REGION": "hard",
           "TRAIN_FILE": str(demo_data["train"]), "VALIDATION_FILE": str(demo_data["validation"]), "DY_LOG_DIR": str(dy_log),
           "SELECTION_FILE": str(selected / "three_regions_data_indices.json"),
           "EPOCHS": "1", "BATCH_SIZE": "16", "LR": "5e-3", "OUTPUT_DIR": str(tmp_path / "out")}
    proc = subprocess.run(["sh", str(ROOT / "run_glue.sh"), "--disable_tqdm", "true"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    hard = json.loads((selected / "three_regions_data_indices.json").read_text())["hard"]
    assert json.loads((tmp_path / "out" / "data_selection.json").read_text())["guids"] == sorted(hard)
    results = json.loads((tmp_path / "out" / "eval_results.json").read_text())
    assert set(results) >= {"eval_accuracy", "eval_loss", "epoch"}
    assert json.loads((tmp_path / "out" / "trainer_state.json").read_text())["global_step"] == 4  # ceil(50 / 16)
    assert not (dy_log / "train" / f"{tiny_model.name}_hard").exists() and not (dy_log / "train" / "tiny_hard").exists()


@pytest.mark.slow
def test_retrain_on_a_single_list_file(demo_data, tiny_model, tmp_path):
    """A --fractions file holds one list: no region needed; the run records to <model>_<its name>."""
    from training_dynamics.cli.record import main

    guids = list(range(3, 150, 7))
    path = selection.write_indices(tmp_path / "selection_loss_0.15.json", {"loss_0.15": guids}, {})
    assert main([str(a) for a in (*train_args(tiny_model, demo_data, tmp_path, epochs=1), "--dy_model_name", "tiny",
                                  "--with_data_selection", "--data_selection_file", path, "--record_dynamics")]) == 0
    seen = read_epoch(tmp_path / "dy_log" / "train" / "tiny_loss_0.15" / "training_dynamics" / "dynamics_epoch_0.jsonl")
    assert sorted(seen) == guids


def _retrain(argv, capsys) -> tuple[int, str]:
    from training_dynamics.cli import run
    from training_dynamics.cli.record import main

    rc = run(lambda: main([str(a) for a in argv]), "run_glue_and_record_td.py")
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # logging may come before; the error is one line, no traceback
    assert "Traceback" not in err and last.startswith("run_glue_and_record_td.py: error: "), err[-2000:]
    return rc, last


@pytest.mark.slow
def test_retrain_errors(demo_data, tiny_model, tmp_path, capsys):
    base = [*train_args(tiny_model, demo_data, tmp_path, epochs=1), "--dy_model_name", "tiny", "--with_data_selection"]
    default = tmp_path / "dy_log" / "train" / "tiny" / "three_regions_data_indices.json"  # the seed's default path
    default.parent.mkdir(parents=True)
    default.write_text('{"hard": [1, 2], "easy": [3], "ambiguous": [4]}')
    rc, err = _retrain([*base, "--data_selection_region", "middle"], capsys)
    assert rc == 2 and "unknown region 'middle'; choose one of hard, easy, ambiguous" in err
    rc, err = _retrain([*base, "--data_selection_region", "hard", "--data_selection_file", tmp_path / "none.json"], capsys)
    assert rc == 2 and "none.json: no such indices file" in err
    (tmp_path / "far.json").write_text('{"hard": [1, 2, 100000]}')
    rc, err = _retrain([*base, "--data_selection_region", "hard", "--data_selection_file", tmp_path / "far.json"], capsys)
    assert rc == 2 and "1 of 3 selected guids are not in the training set (first: 100000" in err
    rc, err = _retrain([*base, "--data_selection_region", "easy", "--max_train_samples", 2], capsys)  # guid 3 cut off
    assert rc == 2 and "not in the training set (first: 3" in err
    rc, err = _retrain([a for a in base if a != "--with_data_selection"] + ["--data_selection_region", "hard"], capsys)
    assert rc == 2 and err.strip().endswith("need --with_data_selection")
    assert not (tmp_path / "model_out").exists()
