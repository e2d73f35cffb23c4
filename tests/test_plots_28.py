"""Pictures that read (issue 28): facets in a grid, titles that fit, a note on 1- and 2-epoch maps, region names
inside their regions on any data, a distinct colour for every label. Asserts on the figure objects, not pixels."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from conftest import ROOT  # noqa: E402
from training_dynamics.analysis import plots  # noqa: E402
from training_dynamics.analysis.selection import region_of  # noqa: E402

WNUT_TAGS = ["B-corporation", "B-creative-work", "B-group", "B-location", "B-person", "B-product", "I-corporation",
             "I-creative-work", "I-group", "I-location", "I-person", "I-product", "O"]


def epochs_map(n: int, epochs: int, *, seed: int = 0, ease: float = 1.0, classes: int = 13) -> pd.DataFrame:
    """A data map computed as the paper does from simulated per-epoch gold probabilities (``ease`` > 1: most
    examples learned early, the map crowds its top, as WinoGrande's published one does)."""
    rng = np.random.default_rng(seed)
    skill = rng.beta(2.0 * ease, 1.0, size=(n, 1))
    p = np.clip(skill + rng.normal(0, 0.18, size=(n, epochs)) * (1 - skill) ** 0.5, 1e-3, 1 - 1e-3)
    return pd.DataFrame({"guid": np.arange(n), "confidence": p.mean(1), "variability": p.std(1),
                         "correctness": (p > 0.5).sum(1), "gold": np.where(rng.random(n) < 0.5, 12,
                                                                            rng.integers(0, classes, n))})


def map_axes(fig) -> list:
    return [a for a in fig.axes if a.get_xlabel() == "variability"]


def test_facets_of_13_tags_form_a_grid_not_a_row():
    df = epochs_map(700, 4)
    fig = plots.plot_data_map(df, num_epochs=4, facet_by_gold=True, label_names=WNUT_TAGS, title="wnut17 Data Map")
    axes = map_axes(fig)
    assert len(axes) == 13 and plots.facet_grid_shape(13) == (3, 5)
    lefts = sorted({round(a.get_position().x0, 3) for a in axes})
    bottoms = sorted({round(a.get_position().y0, 3) for a in axes})
    assert (len(bottoms), len(lefts)) == (3, 5)  # 3 rows of 5, the last row 3 panels
    assert sum(round(a.get_position().y0, 3) == bottoms[0] for a in axes) == 3
    w, h = fig.get_size_inches()
    assert w < 30 and w / h < 2.5  # not 14,625 pixels in one row
    assert [a.get_title() for a in axes][:2] == [f"gold = B-corporation (n={(df['gold'] == 0).sum():,})",
                                               f"gold = B-creative-work (n={(df['gold'] == 1).sum():,})"]
    # one legend for the grid, under it; every panel on the same scales; y labels on the first column only
    assert len(fig.legends) == 1 and not any(a.get_legend() for a in axes)
    assert len({a.get_xlim() for a in axes}) == 1 and len({a.get_ylim() for a in axes}) == 1
    assert [a.get_ylabel() for a in axes].count("confidence") == 3
    plt.close(fig)
    assert [plots.facet_grid_shape(n) for n in (1, 2, 3, 4, 6, 20)] == [(1, 1), (1, 2), (1, 3), (2, 3), (2, 3), (4, 6)]


def test_facets_with_histograms_keep_the_histograms_beside_the_grid():
    df = epochs_map(600, 4)
    fig = plots.plot_data_map(df, num_epochs=4, facet_by_gold=True, show_hist=True, label_names=WNUT_TAGS)
    maps = map_axes(fig)[:13]
    hists = [a for a in fig.axes if a.get_ylabel() == "count"]
    assert len(hists) == 3
    assert min(h.get_position().x0 for h in hists) > max(a.get_position().x1 for a in maps)
    plt.close(fig)


@pytest.mark.parametrize("facet", [False, True])
def test_long_titles_are_wrapped_inside_the_figure(facet):
    title = "wnut17-bert-tiny Sentence Map (each sentence at its least confident word)"
    df = epochs_map(300, 4).assign(gold=lambda d: d["gold"] % 2)
    fig = plots.plot_data_map(df, num_epochs=4, title=title, facet_by_gold=facet, label_names=WNUT_TAGS)
    fig.canvas.draw()
    text = fig._suptitle if facet else fig.axes[0].title
    box, page = text.get_window_extent(), fig.bbox
    assert page.x0 <= box.x0 and box.x1 <= page.x1 and box.y1 <= page.y1, (box, page)
    assert " ".join(text.get_text().split()) == title  # wrapped, never cut
    assert ("\n" in text.get_text()) != facet  # the single map's title needed a second line; the grid's did not
    plt.close(fig)


@pytest.mark.parametrize("epochs, low", [(1, False), (2, False), (4, False), (2, True)])
def test_a_map_resting_on_two_epochs_says_so(epochs, low):
    """... over no example: in the lower right corner of a classification map (empty on so few epochs), elsewhere
    when examples are there (a generative run's responses sit low: the whole sequence is rarely likely)."""
    df = epochs_map(400, epochs)
    if low:  # confidence 0..0.15, variability up to 0.08
        df = df.assign(confidence=df["confidence"] * 0.15, variability=df["variability"].clip(upper=0.08))
    fig = plots.plot_data_map(df, num_epochs=epochs)
    ax = fig.axes[0]
    notes = [t for t in ax.texts if t.get_gid() == "few_epochs_note"]
    if epochs == 4:
        assert notes == []
    else:
        assert len(notes) == 1 and notes[0].get_text() == plots.FEW_EPOCHS_NOTES[epochs]
        assert notes[0].get_text().startswith(f"{epochs} epoch")
        if epochs == 2:
            assert "half the gap between the two epochs" in notes[0].get_text() and "lines" in notes[0].get_text()
        fig.canvas.draw()
        inv = ax.transData.inverted()
        (x0, y0), (x1, y1) = inv.transform(notes[0].get_window_extent().get_points())
        inside = df["variability"].between(x0, x1) & df["confidence"].between(y0, y1)
        assert inside.sum() <= 0.01 * len(df)
        assert notes[0].get_position()[1] > 0.5 if low else notes[0].get_position() == (0.99, 0.015)
        # and no region name under it
        note_box = notes[0].get_window_extent()
        assert not any(t.get_bbox_patch().get_window_extent().overlaps(note_box) for t in ax.texts
                       if t.get_text() in ("easy-to-learn", "ambiguous", "hard-to-learn"))
    plt.close(fig)


def _label_sits_in_its_region(ax, df: pd.DataFrame, region: np.ndarray, text, name: str) -> None:
    """The name lies inside the axes' data ranges, and most of the examples nearest to it are of its region."""
    x, y = ax.transData.inverted().transform(ax.transAxes.transform(text.xyann if hasattr(text, "xyann") else text.xy))
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    assert x0 < x < x1 and y0 < y < y1, (name, x, y)
    fx = (df["variability"].to_numpy() - x) / (x1 - x0)
    fy = (df["confidence"].to_numpy() - y) / (y1 - y0)
    nearest = np.argsort(np.hypot(fx, fy))[:25]
    assert (region[nearest] == name).mean() >= 0.6, (name, x, y, pd.Series(region[nearest]).value_counts().to_dict())


@pytest.mark.parametrize("ease, epochs", [(1.0, 4), (6.0, 6), (0.3, 5), (3.0, 2)])
def test_region_names_sit_inside_their_regions_on_any_map(ease, epochs):
    """Also on a map that crowds its top (WinoGrande's published coordinates do: 2/3 of the examples above 0.83
    confidence), the names sit each inside its own region and on none of the others'."""
    df = epochs_map(3000, epochs, ease=ease, seed=int(ease * 10))
    region = region_of(df).to_numpy()
    fig = plots.plot_data_map(df, num_epochs=epochs)
    ax = fig.axes[0]
    names = {"easy-to-learn": "easy", "ambiguous": "ambiguous", "hard-to-learn": "hard"}
    labels = {t.get_text(): t for t in ax.texts if t.get_text() in names}
    assert set(labels) == set(names)
    for text, name in names.items():
        _label_sits_in_its_region(ax, df, region, labels[text], name)
    fig.canvas.draw()
    boxes = [t.get_bbox_patch().get_window_extent() for t in labels.values()]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    assert all(ax.bbox.contains(*b.min) and ax.bbox.contains(*b.max) for b in boxes)
    plt.close(fig)


def test_region_names_are_placed_the_same_way_every_time():
    df = epochs_map(3000, 4, ease=4.0)
    a = plots.region_label_positions(df)
    assert a == plots.region_label_positions(df) and set(a) == {"easy", "ambiguous", "hard"}
    assert a["easy"][1] > a["hard"][1]


@pytest.mark.parametrize("n", [2, 10, 13, 20, 21, 60, 75])
def test_category_colours_are_all_different(n):
    colors = plots.category_colors(n)
    assert colors.shape == (n, 4)
    assert len({tuple(np.round(c, 4)) for c in colors}) == n


def test_every_tag_of_the_ner_legend_has_its_own_colour():
    """13 WNUT tags coloured by gold: 13 legend entries, 13 colours (B-group and O were both green)."""
    df = epochs_map(3000, 4)
    fig = plots.plot_data_map(df, num_epochs=4, hue="gold", label_names=WNUT_TAGS)
    legend = fig.axes[0].get_legend()
    entries = [t.get_text() for t in legend.get_texts()]
    assert entries == WNUT_TAGS
    colors = [tuple(np.round(matplotlib.colors.to_rgba(h.get_color()), 4)) for h in legend.legend_handles]
    assert len(set(colors)) == 13
    assert colors[entries.index("B-group")] != colors[entries.index("O")]
    # each point has its tag's colour
    faces = fig.axes[0].collections[0].get_facecolors()
    assert len({tuple(np.round(c[:3], 4)) for c in faces}) == 13
    plt.close(fig)


def test_the_review_page_gives_every_tag_its_own_colour():
    """The word review's legend colours tags with review.js's palette: at least 20 different colours before it
    falls back to computed hues, none repeated."""
    js = (ROOT / "training_dynamics" / "web" / "review.js").read_text()
    block = re.search(r"var COLORS = \[(.*?)\];", js, re.S).group(1)
    colors = re.findall(r'"(#[0-9a-f]{6})"', block)
    assert len(colors) >= 20 and len(set(colors)) == len(colors)
    assert "COLORS[c % COLORS.length]" not in js  # no cycling back to the first colours


def test_a_word_map_names_its_regions_by_word_not_by_sentence():
    """A word map's rows share their sentence's guid: the regions are the words' own (before, the words of one
    sentence counted as one example and the map lost its ambiguous name)."""
    df = epochs_map(1500, 4, seed=5).assign(guid=lambda d: d["guid"] // 7, word_index=lambda d: d["guid"] % 7)
    assert not df["guid"].is_unique
    by_row = region_of(df.assign(guid=np.arange(len(df)))).to_numpy()
    fig = plots.plot_data_map(df, num_epochs=4)
    ax = fig.axes[0]
    names = {"easy-to-learn": "easy", "ambiguous": "ambiguous", "hard-to-learn": "hard"}
    labels = {t.get_text(): t for t in ax.texts if t.get_text() in names}
    assert set(labels) == set(names)
    for text, name in names.items():
        _label_sits_in_its_region(ax, df, by_row, labels[text], name)
    plt.close(fig)
