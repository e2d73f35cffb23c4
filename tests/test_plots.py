"""Data maps: correctness bins, the figure's contents, and plot_cartography.py end to end."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from conftest import ROOT, run_cli  # noqa: E402
from training_dynamics.analysis import plots  # noqa: E402

SCRIPT = "plot_cartography.py"


def metrics_df(n: int = 60, epochs: int = 4, seed: int = 0, max_correct: int | None = None) -> pd.DataFrame:
    """A td_metrics-like table; correctness never exceeds ``max_correct`` (default ``epochs``)."""
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0, 1, n)
    corr = rng.integers(0, (max_correct if max_correct is not None else epochs) + 1, n)
    forget = rng.integers(0, 3, n)
    forget[corr == 0] = 1000
    return pd.DataFrame({"guid": rng.choice(10 * n, n, replace=False), "index": np.arange(n),
                         "threshold_closeness": conf * (1 - conf), "confidence": conf,
                         "variability": rng.uniform(0, 0.45, n), "correctness": corr, "forgetfulness": forget,
                         "never_learned": corr == 0, "aum": rng.normal(size=n), "gold": rng.integers(0, 2, n)})


def scatter_points(ax) -> int:
    return sum(len(c.get_offsets()) for c in ax.collections)


def test_correctness_levels_labels_and_bins():
    np.testing.assert_allclose(plots.correctness_levels(4), [0, 0.25, 0.5, 0.75, 1])
    assert plots.correctness_labels(4) == ["0.0", "0.25", "0.5", "0.75", "1.0"]
    assert plots.correctness_labels(6) == ["0.0", "0.17", "0.33", "0.5", "0.67", "0.83", "1.0"]
    assert plots.correctness_labels(1) == ["0.0", "1.0"]
    # no example correct in every epoch: bins still index the fixed 0..E grid
    np.testing.assert_array_equal(plots.correctness_bins([0, 3, 1, 3, 2], 4), [0, 3, 1, 3, 2])
    np.testing.assert_allclose(plots.correctness_levels(4)[plots.correctness_bins([3], 4)], [0.75])
    with pytest.raises(ValueError, match="outside 0..4"):
        plots.correctness_bins([0, 5], 4)
    with pytest.raises(ValueError, match="whole numbers"):
        plots.correctness_bins([0.5], 4)
    colors = plots.correctness_colors(4)
    assert colors.shape == (5, 4) and len({tuple(c) for c in colors}) == 5


def test_bins_normalised_by_epochs_not_observed_max():
    """Nobody is correct in all 4 epochs: the legend still spans 0..1 by 1/4, the best examples
    (3 of 4) get the 0.75 colour, the 1.0 bin is empty in the histogram."""
    df = metrics_df(n=80, epochs=4, max_correct=3)
    assert df["correctness"].max() == 3
    fig = plots.plot_data_map(df, num_epochs=4, show_hist=True, title="t")
    ax_map = fig.axes[0]
    assert [t.get_text() for t in ax_map.get_legend().get_texts()] == ["0.0", "0.25", "0.5", "0.75", "1.0"]
    colors = plots.correctness_colors(4)
    face = {tuple(np.round(c[:3], 6)) for c in ax_map.collections[0].get_facecolors()}
    assert face == {tuple(np.round(c[:3], 6)) for c in colors[:4]}  # 0..0.75 used, 1.0 never
    bars = fig.axes[-1].patches
    expected = np.bincount(df["correctness"], minlength=5)
    assert [int(b.get_height()) for b in bars] == expected.tolist() and expected[4] == 0
    assert [t.get_text() for t in fig.axes[-1].get_xticklabels()] == ["0.0", "0.25", "0.5", "0.75", "1.0"]
    plt.close(fig)


def test_num_epochs_from_attrs_or_observed_max(caplog):
    df = metrics_df(max_correct=3)
    df.attrs["num_epochs"] = 5
    fig = plots.plot_data_map(df)
    assert len(fig.axes[0].get_legend().get_texts()) == 6
    plt.close(fig)
    df.attrs.clear()
    with caplog.at_level(logging.WARNING, logger="training_dynamics.analysis.plots"):
        fig = plots.plot_data_map(df)
    assert "assuming 3" in caplog.text
    assert len(fig.axes[0].get_legend().get_texts()) == 4
    plt.close(fig)


def test_every_point_drawn_rasterised_and_region_labels():
    df = metrics_df(n=300)
    fig = plots.plot_data_map(df, num_epochs=4, title="sst2-bert Data Map")
    ax = fig.axes[0]
    assert scatter_points(ax) == 300
    assert all(c.get_rasterized() for c in ax.collections)
    assert ax.get_title() == "sst2-bert Data Map"
    assert ax.get_xlabel() == "variability" and ax.get_ylabel() == "confidence"
    labels = {t.get_text(): t for t in ax.texts}
    assert set(labels) == {"easy-to-learn", "ambiguous", "hard-to-learn"}
    # easy above hard; ambiguous to the right of both
    (ex, ey), (ax_, _), (hx, hy) = (labels[k].xy for k in ("easy-to-learn", "ambiguous", "hard-to-learn"))
    assert ey > hy and ax_ > ex and ax_ > hx
    plt.close(fig)


def test_max_points_seeded_subsample():
    df = metrics_df(n=500)
    f1 = plots.plot_data_map(df, num_epochs=4, max_points=120, seed=3)
    f2 = plots.plot_data_map(df, num_epochs=4, max_points=120, seed=3)
    f3 = plots.plot_data_map(df, num_epochs=4, max_points=120, seed=4)
    o1, o2, o3 = (f.axes[0].collections[0].get_offsets() for f in (f1, f2, f3))
    assert len(o1) == 120
    np.testing.assert_array_equal(o1, o2)
    assert not np.array_equal(np.sort(o1, axis=0), np.sort(o3, axis=0))
    plt.close("all")


def test_continuous_hue_keeps_never_learned_out_of_the_colour_scale():
    df = metrics_df(n=100)
    fig = plots.plot_data_map(df, hue="forgetfulness", num_epochs=4)
    ax = fig.axes[0]
    grey, main = ax.collections
    assert len(grey.get_offsets()) == int(df["never_learned"].sum()) > 0
    assert main.norm.vmax == df.loc[~df["never_learned"], "forgetfulness"].max() < 1000
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["never learned"]
    assert any(a.get_label() == "<colorbar>" for a in fig.axes)
    plt.close(fig)
    fig = plots.plot_data_map(df, hue="aum")
    assert scatter_points(fig.axes[0]) == 100
    plt.close(fig)
    with pytest.raises(ValueError, match="unknown hue column 'nope'"):
        plots.plot_data_map(df, hue="nope")


def test_facet_by_gold_and_draw_into_given_axes():
    df = metrics_df(n=120)
    fig = plots.plot_data_map(df, num_epochs=4, facet_by_gold=True, show_hist=True, label_names=["neg", "pos"])
    maps = [a for a in fig.axes if a.get_xlabel() == "variability" and a.get_ylabel() in ("confidence", "")][:2]
    titles = [a.get_title() for a in fig.axes if a.get_title()]
    counts = df["gold"].value_counts()
    assert titles == [f"gold = neg (n={counts[0]})", f"gold = pos (n={counts[1]})"]
    assert [scatter_points(a) for a in maps] == [counts[0], counts[1]]
    assert maps[0].get_xlim() == maps[1].get_xlim() and maps[0].get_xlim()[1] > df["variability"].max()
    plt.close(fig)
    fig0, ax0 = plt.subplots()
    assert plots.plot_data_map(df, num_epochs=4, ax=ax0) is fig0 and scatter_points(ax0) == 120
    with pytest.raises(ValueError, match="ax=None"):
        plots.plot_data_map(df, num_epochs=4, ax=ax0, show_hist=True)
    plt.close("all")


def test_save_figure_png_and_pdf(tmp_path):
    fig = plots.plot_data_map(metrics_df(), num_epochs=4, show_hist=True)
    paths = plots.save_figure(fig, tmp_path / "sub" / "m")
    assert [p.name for p in paths] == ["m.png", "m.pdf"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths[1].read_bytes()[:5] == b"%PDF-"
    plt.close(fig)


def test_interactive_page_keeps_dataset_text_inert(tmp_path):
    """Text that would close the script block, and a title with markup or a placeholder, stay plain
    data; the page is the shared template with its CSP; guids travel as exact strings."""
    import re

    df = metrics_df(n=3, epochs=2)
    df["guid"] = [2 ** 60, 2 ** 60 + 1, 2 ** 60 + 2]  # one double in JavaScript
    evil = "</script><!--<script>alert(1)</script> & {{ note }}"
    texts = {int(g): evil for g in df["guid"]}
    page = plots.write_interactive_html(df, tmp_path / "m.html", num_epochs=2, title="t {{ data }} <b>", texts=texts).read_text()
    assert page.count("<script") == 2 and page.count("</script>") == 2 and "alert(1)</script>" not in page
    assert "<h1>t {{ data }} &lt;b&gt;</h1>" in page and "<title>t {{ data }} &lt;b&gt;</title>" in page
    assert "default-src 'none'" in page and "script-src 'sha256-" in page
    data = json.loads(re.search(r'<script type="application/json" id="td-data">(.*?)</script>', page, re.S).group(1))
    assert data["text"] == [evil] * 3 and sorted(data["guid"]) == [str(g) for g in sorted(df["guid"].tolist())]
    assert sorted(zip(data["guid"], data["x"])) == sorted(zip(map(str, df["guid"]), df["variability"].round(4)))


def test_density_map_from_the_threshold_on(monkeypatch, tmp_path):
    """Above DENSITY_FROM points (or when asked) the map is hexagons counting every example, not markers."""
    import json
    import re

    from matplotlib.collections import PolyCollection

    df = metrics_df(n=500, epochs=4)
    fig = plots.plot_data_map(df, num_epochs=4)  # below the threshold: markers
    assert scatter_points(fig.axes[0]) == 500
    monkeypatch.setattr(plots, "DENSITY_FROM", 400)
    fig = plots.plot_data_map(df, num_epochs=4, show_hist=True, facet_by_gold=True)
    for ax, g in zip(fig.axes[:2], (0, 1)):
        hexes = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert len(hexes) == 1 and hexes[0].get_array().sum() > 0
        assert not any(type(c).__name__ == "PathCollection" for c in ax.collections)
    counts = [c for c in fig.axes[0].collections if isinstance(c, PolyCollection)][0].get_array()
    assert np.isclose(counts.sum(), (df["gold"] == 0).sum())  # each example counted once (bins="log" keeps counts)
    assert any("examples per hexagon" in a.get_ylabel() for a in fig.axes)
    assert scatter_points(plots.plot_data_map(df, num_epochs=4, style="scatter").axes[0]) == 500  # forced
    with pytest.raises(ValueError, match="unknown map style"):
        plots.plot_data_map(df, num_epochs=4, style="dots")
    monkeypatch.setattr(plots, "INTERACTIVE_MAX_POINTS", 100)  # the interactive page samples
    page = plots.write_interactive_html(df, tmp_path / "m.html", num_epochs=4).read_text()
    data = json.loads(re.search(r'<script type="application/json" id="td-data">(.*?)</script>', page, re.S).group(1))
    assert len(data["x"]) == 100 and "Showing 100 of 500 examples" in page
    plt.close("all")


# --------------------------------------------------------------------------- CLI
@pytest.mark.slow
def test_cli_on_recorded_dynamics(synthetic_dynamics, tmp_path):
    run, arrays = synthetic_dynamics(n=60, epochs=5)
    proc = run_cli(SCRIPT, "--model_dir", run, "--burn_out", 3, "--show_hist", "--interactive")
    out = run / "plots"
    stem = f"{run.parent.name}_{run.name}_data_map"
    for ext in ("png", "pdf", "html"):
        assert (out / f"{stem}.{ext}").stat().st_size > 1000, ext
    assert (out / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
    # metrics were computed for the first 3 epochs, as asked
    td = [json.loads(line) for line in (run / "td_metrics.jsonl").read_text().splitlines()]
    assert len(td) == 60 and max(r["correctness"] for r in td) <= 3
    assert json.loads((run / "td_metrics_settings.json").read_text())["burn_out"] == 3
    page = (out / f"{stem}.html").read_text()
    assert "<script src" not in page and "http" not in page.split("<script>")[1]  # self-contained
    assert "TDDataMap" in page  # the data-map component the review page uses too
    assert '"labels":["0.0","0.33","0.67","1.0"]' in page
    assert "wrote" in proc.stderr

    # another hue and facets, into a chosen folder
    run_cli(SCRIPT, "--model_dir", run, "--plots_dir", tmp_path / "p", "--hue", "aum", "--facet_by_gold",
            "--max_instances_to_plot", 20)
    assert (tmp_path / "p" / f"{stem}_aum_by_gold.pdf").stat().st_size > 1000


def _axes_to_data(ax, xy):
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    return x0 + xy[0] * (x1 - x0), y0 + xy[1] * (y1 - y0)


def test_region_labels_sit_over_their_points_or_are_left_out():
    """A map whose points all sit low and left (an underfit run): each region's name lies inside
    the box of its own examples, not at the paper's fixed places over empty space."""
    rng = np.random.default_rng(3)
    n = 400
    df = pd.DataFrame({"guid": np.arange(n), "confidence": rng.uniform(0.05, 0.45, n),
                       "variability": rng.uniform(0.0, 0.12, n), "correctness": rng.integers(0, 3, n)})
    df.loc[:9, "variability"] = 0.4  # a few far to the right, so the map is wide
    fig = plots.plot_data_map(df, num_epochs=4)
    ax = fig.axes[0]
    from training_dynamics.analysis.selection import region_of

    region = region_of(df).to_numpy()
    names = {"easy-to-learn": "easy", "ambiguous": "ambiguous", "hard-to-learn": "hard"}
    labels = {t.get_text(): t for t in ax.texts}
    assert set(labels) == set(names)
    for text, name in names.items():
        x, y = _axes_to_data(ax, labels[text].xy)
        mine = df[region == name]
        assert mine["variability"].min() <= x <= mine["variability"].max(), (text, x)
        assert mine["confidence"].min() - 0.1 <= y <= mine["confidence"].max() + 0.1, (text, y)
    ys = sorted(t.xy[1] for t in ax.texts)
    assert min(np.diff(ys)) >= plots.REGION_LABEL_GAP[1] - 1e-9 or len({round(t.xy[0], 1) for t in ax.texts}) == 3
    plt.close(fig)
    fig = plots.plot_data_map(df, num_epochs=4, region_labels=False)
    assert len(fig.axes[0].texts) == 0
    plt.close(fig)
    pos = plots.region_label_positions(df)
    assert pos["easy"][1] > pos["hard"][1] and pos["ambiguous"][0] > pos["hard"][0]


def test_colour_by_a_column_of_the_users_file(tmp_path):
    """A known-noise column of the training file, matched by guid as training reads the file (row
    order here), colours the map; an example it has no value for is grey, named in the legend."""
    from training_dynamics.core.data import DataError, load_column

    df = metrics_df(n=40).assign(guid=np.arange(40))
    rows = [{"sentence": f"s{i}", "label": i % 2, "is_noisy": i % 5 == 0} for i in range(39)]  # no row 39
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    noisy = load_column(str(train), "is_noisy")
    assert noisy.index.tolist() == list(range(39)) and noisy[5] and not noisy[6]
    joined = plots.join_column(df, noisy, where="train.jsonl")
    assert joined["is_noisy"].tolist()[:6] == [True, False, False, False, False, True] and pd.isna(joined["is_noisy"][39])
    fig = plots.plot_data_map(joined, hue="is_noisy", num_epochs=4)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["False", "True", "no value"]
    assert fig.axes[0].get_legend().get_title().get_text() == "is_noisy"
    plt.close(fig)
    # an idx column names the examples; ids that are not the run's are refused
    idx = tmp_path / "idx.csv"
    pd.DataFrame({"idx": [7, 3], "noise": [1.5, 2.5]}).to_csv(idx, index=False)
    assert load_column(str(idx), "noise").to_dict() == {7: 1.5, 3: 2.5}
    with pytest.raises(ValueError, match="none of its ids is an example of the run"):
        plots.join_column(df.assign(guid=df["guid"] + 100), load_column(str(idx), "noise"), where="idx.csv")
    with pytest.raises(DataError, match="no column 'nope'"):
        load_column(str(train), "nope")


@pytest.mark.slow  # two runs of the command
def test_cli_hue_file(tmp_path):
    df = metrics_df(n=30, epochs=4).assign(guid=np.arange(30))
    path = tmp_path / "m.jsonl"
    df.to_json(path, orient="records", lines=True)
    users = tmp_path / "mine.jsonl"
    users.write_text("".join(json.dumps({"guid": i, "flip": i < 3}) + "\n" for i in range(30)))
    run_cli(SCRIPT, "--metrics_file", path, "--num_epochs", 4, "--plots_dir", tmp_path / "o", "--hue_file", users,
            "--hue", "flip", "--region_labels", "false")
    assert (tmp_path / "o" / "m_data_map_flip.png").stat().st_size > 1000
    proc = run_cli(SCRIPT, "--metrics_file", path, "--num_epochs", 4, "--plots_dir", tmp_path / "o", "--hue_file",
                   users, "--hue", "nope", check=False)
    assert proc.returncode == 2 and "mine.jsonl: no column 'nope'" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_cli_metrics_file(tmp_path):
    """Published coordinates (guid, index, confidence, variability, correctness) plotted with --num_epochs."""
    df = metrics_df(n=50, epochs=6, max_correct=5)[["guid", "index", "confidence", "variability", "correctness"]]
    path = tmp_path / "coords.jsonl"
    df.to_json(path, orient="records", lines=True)
    run_cli(SCRIPT, "--metrics_file", path, "--num_epochs", 6, "--plots_dir", tmp_path / "out", "--title", "Wino")
    assert (tmp_path / "out" / "coords_data_map.png").stat().st_size > 1000
    assert (tmp_path / "out" / "coords_data_map.pdf").stat().st_size > 1000


@pytest.mark.parametrize("args, message", [
    (["--hue", "nope", "--num_epochs", 4], "unknown hue column 'nope'"),
    (["--num_epochs", 2], "outside 0..2"),
    ([], "m.jsonl: pass --num_epochs"),
])
def test_cli_errors_are_one_line(tmp_path, args, message):
    df = metrics_df(n=20, epochs=4)
    path = tmp_path / "m.jsonl"
    df.to_json(path, orient="records", lines=True)
    proc = run_cli(SCRIPT, "--metrics_file", path, "--plots_dir", tmp_path / "o", *args, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{SCRIPT}: error:") and message in lines[0], proc.stderr


def test_cli_bad_metrics_line(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"guid": 1, "confidence": 0.5, "variability": 0.1, "correctness": 1}\n{"guid": 2, "conf\n')
    proc = run_cli(SCRIPT, "--metrics_file", path, "--plots_dir", tmp_path / "o", check=False)
    assert proc.returncode == 2 and f"{path}: line 2: not valid JSON" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_plot_sh(synthetic_dynamics, tmp_path):
    """The seed-style wrapper: TASK_NAME / MODEL / BURN_OUT from the environment, extra flags passed on."""
    run, _ = synthetic_dynamics(n=40, epochs=5)
    env = {"DY_LOG_DIR": str(run.parent.parent), "TASK_NAME": run.parent.name, "MODEL": run.name,
           "BURN_OUT": "2", "PYTHON": sys.executable, "PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg"}
    proc = subprocess.run(["sh", str(ROOT / "plot.sh"), "--plots_dir", str(tmp_path / "p")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "p" / f"{run.parent.name}_{run.name}_data_map.png").stat().st_size > 1000
    assert json.loads((run / "td_metrics_settings.json").read_text())["burn_out"] == 2
