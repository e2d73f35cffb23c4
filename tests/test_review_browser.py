"""The review page and the interactive data map: self-contained, escaped, and driven for real in
headless Chromium (Playwright).

The browser tests need Debian's ``chromium`` (``/usr/bin/chromium``) and the ``playwright``
package; they fail when those are missing under CI (``CI=true``) and are skipped elsewhere.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli
from training_dynamics.core import kind as kinds
from training_dynamics import web
from training_dynamics.review import corrections, page as review
from training_dynamics.workflows.review import build_review_page
from training_dynamics.core import dynamics_file, fileio
from training_dynamics.analysis import plots
from training_dynamics.decisions import ranking as le
from training_dynamics.core.data import example_texts, load_text_classification
from training_dynamics.analysis.run import Run

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
XSS = "<img src=x onerror=alert(1)>"
BREAKOUT = "</script><script>alert(2)</script> & \u2028 \"quoted\" \u2029 end"
LABELS = ["negative", "neutral", "positive"]
# guid = row: (text, gold label, mean gold probability -> confidence ranking 3, 4, 1, 2, 0)
ROWS = [("a fine, quiet film", "neutral", 0.9), (XSS, "positive", 0.3), (BREAKOUT, "negative", 0.5),
        ("dull and tedious", "positive", 0.1), ("wonderful from start to end", "negative", 0.15)]
BIG = 2 ** 60  # int64 ids that JavaScript numbers cannot tell apart (2**60 + 1 == 2**60 as a double)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium through Playwright; a missing browser fails under CI, skips elsewhere."""
    missing = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = "the playwright package is not installed (pip install playwright)"
    if missing is None and not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        missing = f"{CHROMIUM} is missing (apt-get install chromium)"
    if missing:
        if _in_ci():
            pytest.fail(f"browser test cannot run under CI: {missing}")
        pytest.skip(missing)
    exe = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Tab:
    """A page opened from disk, with its dialogs, errors (page errors, console errors such as CSP
    violations) and requests recorded."""

    def __init__(self, context, path: Path):
        self.page = context.new_page()
        self.dialogs, self.errors, self.requests = [], [], []
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.goto(path)

    def goto(self, path: Path) -> None:
        self.page.goto(path.resolve().as_uri())
        self.page.wait_for_selector("body[data-ready='1']")

    def reload(self) -> None:
        self.page.reload()
        self.page.wait_for_selector("body[data-ready='1']")

    def item(self, guid):
        return self.page.locator(f".item[data-guid='{guid}']")

    def status(self, guid) -> str:
        return self.item(guid).get_attribute("data-status")

    def guids(self) -> list[str]:
        return self.page.locator(".item").evaluate_all("els => els.map(e => e.dataset.guid)")

    def export(self, *, times: bool = False) -> dict:
        """The exported corrections.json; without ``times``, its export and choice times left out."""
        with self.page.expect_download() as dl:
            self.page.click("#export")
        assert dl.value.suggested_filename == "corrections.json"
        obj = json.loads(Path(dl.value.path()).read_text(encoding="utf-8"))
        return obj if times else _timeless(obj)

    def load(self, path: Path) -> str:
        """Load an exported corrections file back through the page's "Load corrections" button."""
        with self.page.expect_file_chooser() as fc:
            self.page.click("#load")
        fc.value.set_files(str(path))
        self.page.wait_for_selector("#loaded:not([hidden])")
        return self.page.text_content("#loaded")

    def to_screen(self, x: float, y: float) -> tuple[float, float]:
        """Page coordinates of the data point (variability x, confidence y) in the current map view."""
        canvas = self.page.locator("#map")
        lay = json.loads(canvas.get_attribute("data-layout"))
        box = canvas.bounding_box()
        w, h = int(canvas.get_attribute("width")), int(canvas.get_attribute("height"))
        cx = lay["left"] + (w - lay["left"] - lay["right"]) * (x - lay["x0"]) / (lay["x1"] - lay["x0"])
        cy = h - lay["bottom"] - (h - lay["top"] - lay["bottom"]) * (y - lay["y0"]) / (lay["y1"] - lay["y0"])
        return box["x"] + cx * box["width"] / w, box["y"] + cy * box["height"] / h

    def assert_clean(self) -> None:
        assert self.dialogs == [] and self.errors == [], (self.dialogs, self.errors)
        assert all(u.startswith(("file:", "blob:", "data:")) for u in self.requests), self.requests


def _timeless(obj: dict) -> dict:
    """An export without the times it carries (when it was exported, when each choice was made)."""
    assert "T" in obj.get("exported_at", "") and all("T" in c["updated_at"] for c in obj["corrections"])
    return {**{k: v for k, v in obj.items() if k != "exported_at"},
            "corrections": [{k: v for k, v in c.items() if k != "updated_at"} for c in obj["corrections"]]}


def _payload(html: Path) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="td-data">(.*?)</script>',
                                html.read_text(encoding="utf-8"), re.S).group(1))


def _write_run(tmp: Path) -> tuple[Path, Path]:
    """A 5-example, 3-class training file and a recorded run of it (3 epochs) with planned confidences."""
    train = tmp / "train.jsonl"
    train.write_text("".join(json.dumps({"sentence": t, "label": y}) + "\n" for t, y, _ in ROWS), encoding="utf-8")
    run = tmp / "dy_log" / "train" / "m"
    dy = dynamics_file.dynamics_dir(run)
    guids = np.arange(len(ROWS))
    gold = np.array([LABELS.index(y) for _, y, _ in ROWS])
    for e in range(3):
        p = np.empty((len(ROWS), 3))
        for i, (_, _, c) in enumerate(ROWS):
            ce = c + 0.04 * (e - 1) * (i + 1) / 5  # a little spread over epochs
            others = [k for k in range(3) if k != gold[i]]
            p[i, gold[i]], p[i, others[0]], p[i, others[1]] = ce, 0.7 * (1 - ce), 0.3 * (1 - ce)
        dynamics_file.write_epoch(dy, e, guids, np.log(p), gold)
    fileio.write_json(dy / dynamics_file.META_NAME, {
        "data": {"train_file": str(train.resolve()), "text_columns": ["sentence"], "label_column": "label"},
        "label_names": LABELS, "num_examples": len(ROWS), "num_labels": 3, "epochs_completed": 3})
    return train, run


def _rank(train: Path, out: Path, *, flagged: tuple = ()) -> Path:
    """Rank a training file as find_label_issues.py does (probabilities from a fixed seed; no model)
    and write label_issues.jsonl + settings; ``flagged`` guids get ``is_label_issue`` true."""
    data = load_text_classification(train_file=str(train))
    guids = np.asarray(data.train["guid"], dtype=np.int64)
    gold = np.asarray(data.train["label"], dtype=np.int64)
    probs = np.random.default_rng(0).dirichlet(np.ones(len(data.label_names)), size=len(guids))
    df = le.rank_examples(guids=guids, texts=example_texts(data.train, data.text_columns), gold=gold,
                          probabilities=probs, score=1 - probs[np.arange(len(gold)), gold], score_name="1-confidence",
                          label_names=data.label_names, extra={"is_label_issue": np.isin(guids, flagged)})
    le.write_issues(df, out, {"source": "model", "score_name": "1-confidence", "data": data.source,
                              "dataset": le.dataset_name(data.source), "label_names": df.attrs["label_names"]})
    return out / le.ISSUES_NAME


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def page_path(tmp_path_factory) -> dict:
    """The review page of a recorded run, made by review_label_issues.py."""
    tmp = tmp_path_factory.mktemp("review")
    train, run = _write_run(tmp)
    df = le.issues_from_dynamics(Run(run), progress=False)
    source = {"train_file": str(train.resolve()), "text_columns": ["sentence"], "label_column": "label"}
    le.write_issues(df, tmp / "issues", {"source": "dynamics", "score_name": "1-confidence", "run_dir": str(run),
                                         "data": source, "dataset": str(train.resolve()),
                                         "label_names": df.attrs["label_names"]})
    out = tmp / "issues" / "review.html"
    run_cli("review_label_issues.py", "--issues", tmp / "issues" / le.ISSUES_NAME, "--output", out)
    return {"html": out, "train": train, "issues": df, "tmp": tmp}


# -- without a browser ------------------------------------------------------------------------------
def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@pytest.mark.slow  # the page_path fixture runs review_label_issues.py
def test_embedded_data_cannot_close_its_script_block(page_path):
    html = page_path["html"].read_text(encoding="utf-8")
    assert html.count("<script") == 2 and html.count("</script>") == 2  # the data block and the page's code
    block = re.search(r'<script type="application/json" id="td-data">(.*?)</script>', html, re.S).group(1)
    assert not any(ch in block for ch in "<>&\u2028\u2029")
    data = json.loads(block)
    assert XSS in data["items"]["text"] and BREAKOUT in data["items"]["text"]
    assert data["label_names"] == LABELS and data["items"]["guid"] == ["3", "4", "1", "2", "0"]  # guids as strings
    assert data["map"] is not None and len(data["map"]["x"]) == len(ROWS)
    # self-contained: no network, no innerHTML; the CSP allows exactly this page's script and style
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", html) and "innerHTML" not in html
    script = re.search(r"<script>(.*)</script>", html, re.S).group(1)
    style = re.search(r"<style>(.*)</style>", html, re.S).group(1)
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', html).group(1)
    assert f"script-src {_csp_hash(script)};" in csp and f"style-src {_csp_hash(style)};" in csp
    assert "default-src 'none'" in csp and "connect-src 'none'" in csp and "unsafe-inline" not in csp
    assert "TDDataMap" in script  # the shared data-map component
    # the title names the file, and no absolute path is written into the page
    assert "<title>Label review: train.jsonl</title>" in html and str(page_path["tmp"]) not in html


def test_text_in_the_template_is_escaped():
    """A title or warning with markup (e.g. from a file name) is escaped by the templater; dataset
    text in the payload cannot close the data block."""
    issues = pd.DataFrame({"guid": [1], "text": [BREAKOUT], "gold": [0], "probabilities": [[0.4, 0.6]], "score": [0.6]})
    payload = review.review_payload(issues, label_names=["a", "b"], title="</title><script>alert(3)</script>",
                                    warnings=["<b>bold</b> & co"])
    html = review.render_html(payload)
    assert html.count("<script") == 2 and "alert(3)</script>" not in html
    assert "<title>&lt;/title&gt;&lt;script&gt;alert(3)&lt;/script&gt;</title>" in html
    assert "<p class=\"warn\">&lt;b&gt;bold&lt;/b&gt; &amp; co</p>" in html


def test_templates_are_package_data_and_assets_cannot_break_out(monkeypatch):
    from importlib import resources

    files = {p.name for p in resources.files("training_dynamics.web").iterdir()}
    assert {"base.html.j2", "review.html.j2", "data_map.html.j2", "data_map.js", "review.js", "data_map_page.js",
            "base.css", "review.css"} <= files
    real = web.asset
    monkeypatch.setattr(web, "asset", lambda name: "var x = '</SCRIPT>';" if name == "evil.js" else real(name))
    with pytest.raises(ValueError, match="cannot be inlined"):
        web.render("data_map.html.j2", payload={}, scripts=("evil.js",), styles=("base.css",), title="t", note="")


def test_json_for_html_round_trips():
    obj = {"t": ["<b>&amp;</b>", "\u2028\u2029", "</script>", "é ✓"]}
    text = web.json_for_html(obj)
    assert json.loads(text) == obj and not any(ch in text for ch in "<>&\u2028\u2029")


def test_payload_metrics_flags_and_label_warning():
    issues = pd.DataFrame({"rank": [1, 2], "guid": [BIG + 1, BIG], "text": ["x", "y"], "gold": [1, 0],
                           "predicted": [0, 0], "probabilities": [[0.7, 0.3], [0.6, 0.4]], "score": [0.7, 0.4],
                           "loss": [0.7, 0.4], "aum": [-1.5, np.nan], "is_label_issue": [True, False],
                           "likely_true": [0, 1]})
    p = review.review_payload(issues, label_names=["0", "1"], dataset="t.jsonl", score_name="loss",
                              dataset_fingerprint="f" * 64)
    assert p["items"]["guid"] == [str(BIG + 1), str(BIG)]
    assert [(m["name"], m["label"], m["values"]) for m in p["metrics"]] == [
        ("score", "loss", [0.7, 0.4]), ("aum", "aum", [-1.5, None])]  # loss is the score itself: shown once
    # (likely_true is a class id, not a metric)
    assert p["flags"] == [{"name": "is_label_issue", "label": "flagged", "values": [True, False]}]
    assert p["storage_key"] == "td-review:" + "f" * 32
    assert p["items"]["fp"] == [corrections.example_fingerprint("x", "1"), corrections.example_fingerprint("y", "0")]
    assert len(p["warnings"]) == 1 and "Only integer label ids are known (0, 1)" in p["warnings"][0]
    assert review.label_warning(["neg", "pos"]) is None
    assert p["kind"] == "classification" and p["label_display"] == ["class 0", "class 1"]
    assert review.label_display(["neg", "pos"]) == ["neg", "pos"]
    gk = kinds.get("generative")
    gen = review.review_payload(issues, label_names=["response", "other"], card=gk.review_card(), kind=gk.name)
    assert gen["warnings"] == [] and gen["title"] == "Response review: dataset"
    assert gen["flags"][0]["label"] == "suspicious response" and gen["card"]["separator"] == "\n\u27f6 "
    assert gen["card"]["choices"] == "keep_drop" and p["card"]["choices"] == "classes"
    assert review.short_dataset_name({"data": {"train_file": "/a/b/train.csv"}}) == "train.csv"
    assert review.short_dataset_name({"data": {"task_name": "sst2"}, "dataset": "sst2"}) == "sst2"


# -- in the browser ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_review_in_headless_chromium(browser, page_path, tmp_path):
    html, issues, train = page_path["html"], page_path["issues"], page_path["train"]
    assert issues["guid"].tolist() == [3, 4, 1, 2, 0]  # ranked by low confidence
    data = _payload(html)
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 800})
    tab = Tab(context, html)
    page, item = tab.page, tab.item

    # the first screen: the title names the file; the first examples are fully visible; the map has a legend
    assert page.title() == "Label review: train.jsonl" and page.text_content("h1") == "Label review: train.jsonl"
    for k in range(3):
        box = page.locator(".item").nth(k).bounding_box()
        assert box["y"] >= 0 and box["y"] + box["height"] <= 800, (k, box)
    legend = page.text_content("#map-legend")
    assert all(f"gold {n}" in legend for n in LABELS) and "reviewed" in legend and "rest of the run" in legend
    assert page.is_visible("#map") and not page.is_visible("#warnings .warn")

    # every example shown, dataset text as literal text, nothing injected
    assert page.locator(".item").count() == len(ROWS)
    assert item(1).locator(".text").text_content() == XSS
    assert item(2).locator(".text").text_content() == BREAKOUT
    assert page.locator("main img, main script").count() == 0
    assert page.text_content("#progress") == "0 / 5 reviewed"

    # filters: gold label; a metric range (the score, 1 - confidence >= 0.8: guids 3 and 4)
    page.select_option("#f-gold", "2")  # positive
    assert sorted(tab.guids()) == ["1", "3"]
    page.select_option("#f-gold", "")
    assert page.input_value("#f-metric") == "0" and data["metrics"][0]["name"] == "score"
    page.fill("#f-min", "0.8")
    assert sorted(tab.guids()) == ["3", "4"]
    page.fill("#f-min", "")
    # sort by any metric present: variability, low first
    names = [m["name"] for m in data["metrics"]]
    assert {"score", "confidence", "variability", "correctness", "aum"} <= set(names)
    k = names.index("variability")
    page.select_option("#sort", f"m:{k}:asc")
    var = dict(zip(data["items"]["guid"], data["metrics"][k]["values"]))
    assert tab.guids() == sorted(var, key=lambda g: (var[g], data["items"]["rank"][data["items"]["guid"].index(g)]))
    assert item(3).locator("[data-metric='variability'] b").text_content() == f"{var['3']:.3f}"
    page.select_option("#sort", "rank")

    # relabel guid 3 by click; guid 4 by key "3" (positive), which moves on to guid 1: "u" = unsure
    item(3).locator("button[data-label='negative']").click()
    item(4).locator(".text").click()
    page.keyboard.press("3")
    page.keyboard.press("u")
    assert page.text_content("#progress") == "3 / 5 reviewed"
    # a note on guid 0; keys typed into it are text, not choices
    item(0).locator(".note").click()
    page.keyboard.type("k u 0 z: check")
    assert tab.status(0) == "" and page.text_content("#progress") == "3 / 5 reviewed"
    # undo the last choice, by key and by button
    item(2).locator(".text").click()
    page.keyboard.press("k")
    assert tab.status(2) == "keep"
    page.keyboard.press("z")
    assert tab.status(2) == "" and tab.status(1) == "unsure"
    item(2).locator("button[data-action='keep']").click()
    page.click("#undo")
    assert tab.status(2) == "" and page.text_content("#progress") == "3 / 5 reviewed"
    page.keyboard.press("e")  # the focused card's note field; Esc leaves it
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Note on guid 2"
    page.keyboard.press("Escape")
    assert page.evaluate("document.activeElement === document.body")

    tab.reload()
    status = {g: tab.status(g) for g in range(len(ROWS))}
    assert status == {0: "", 1: "unsure", 2: "", 3: "relabel", 4: "relabel"}
    assert page.text_content("#progress") == "3 / 5 reviewed"
    assert item(3).locator(".state").text_content() == "relabel \u2192 negative"
    assert item(0).locator(".note").input_value() == "k u 0 z: check"

    # map <-> list: hovering guid 1 shows its text literally; clicking the point focuses its card;
    # clicking a card highlights its point
    i = data["items"]["guid"].index("1")
    pt = tab.to_screen(data["map"]["x"][i], data["map"]["y"][i])
    page.mouse.move(*pt)
    assert page.is_visible("#tip") and XSS in page.text_content("#tip")
    page.mouse.click(*pt)
    assert page.locator(".item.focused").get_attribute("data-guid") == "1"
    assert page.get_attribute("#map", "data-highlight-guid") == "1"
    item(4).locator(".text").click()
    assert page.get_attribute("#map", "data-highlight-guid") == "4"

    # zoom (wheel), pan (drag), reset
    full = json.loads(page.get_attribute("#map", "data-layout"))
    page.mouse.move(*pt)
    page.mouse.wheel(0, -400)
    page.wait_for_function("w => JSON.parse(document.getElementById('map').dataset.layout).x1 - "
                           "JSON.parse(document.getElementById('map').dataset.layout).x0 < w", arg=full["x1"] - full["x0"])
    zoomed = json.loads(page.get_attribute("#map", "data-layout"))
    assert zoomed["y1"] - zoomed["y0"] < full["y1"] - full["y0"]
    page.mouse.move(pt[0], pt[1])
    page.mouse.down()
    page.mouse.move(pt[0] + 40, pt[1] + 30, steps=4)
    page.mouse.up()
    panned = json.loads(page.get_attribute("#map", "data-layout"))
    assert panned["x0"] < zoomed["x0"] and panned["y0"] > zoomed["y0"]  # dragged right/down: shows more left/up
    page.click("#map-reset")
    assert json.loads(page.get_attribute("#map", "data-layout")) == full

    # drag a box (shift+drag) around the two least confident examples: the list shows exactly them
    ys = sorted(zip(data["map"]["y"], data["items"]["guid"]))
    cut = (ys[1][0] + ys[2][0]) / 2
    a = tab.to_screen(full["x0"] + 0.01 * (full["x1"] - full["x0"]), cut)
    b = tab.to_screen(full["x1"] - 0.01 * (full["x1"] - full["x0"]), full["y0"] + 0.005)
    page.keyboard.down("Shift")
    page.mouse.move(*a)
    page.mouse.down()
    page.mouse.move(*b, steps=5)
    page.mouse.up()
    page.keyboard.up("Shift")
    assert sorted(tab.guids()) == sorted(g for _, g in ys[:2]) == ["3", "4"]
    assert page.text_content("#map-count") == "2 examples"
    page.click("#map-clear")
    assert page.locator(".item").count() == len(ROWS) and not page.is_visible("#map-filter")

    exported = tab.export()
    fp, example_fps = corrections.data_fingerprints(load_text_classification(train_file=str(train)))
    efp = {g: example_fps[str(g)] for g in range(len(ROWS))}  # indexed by the text key of each guid
    assert exported == {
        "dataset": "train.jsonl",
        "dataset_fingerprint": fp,
        "kind": "classification",
        "label_names": LABELS,
        "corrections": [
            {"guid": "3", "example_fingerprint": efp[3], "action": "relabel", "label": "negative",
             "original_label": "positive"},
            {"guid": "4", "example_fingerprint": efp[4], "action": "relabel", "label": "positive",
             "original_label": "negative"},
            {"guid": "1", "example_fingerprint": efp[1], "action": "unsure", "label": None, "original_label": "positive"},
            {"guid": "0", "example_fingerprint": efp[0], "action": None, "label": None, "original_label": "neutral",
             "note": "k u 0 z: check"},
        ],
    }
    tab.assert_clean()
    context.close()

    # the export is what apply_corrections.py takes (its fingerprint matches the training file)
    corr = tmp_path / "corrections.json"
    corr.write_text(json.dumps(exported), encoding="utf-8")
    run_cli("apply_corrections.py", "--train_file", train, "--corrections", corr, "--output", tmp_path / "fixed.jsonl")
    fixed = pd.read_json(tmp_path / "fixed.jsonl", lines=True)
    assert fixed["corrected_label"].tolist() == ["neutral", "positive", "negative", "negative", "positive"]
    assert fixed["review_action"].tolist() == ["unreviewed", "unsure", "unreviewed", "relabel", "relabel"]
    assert fixed["review_note"].tolist() == ["k u 0 z: check", "", "", "", ""]
    assert fixed["sentence"].tolist() == [t for t, _, _ in ROWS]


@pytest.mark.slow
def test_narrow_window_collapses_the_map(browser, page_path):
    context = browser.new_context(viewport={"width": 760, "height": 700})
    tab = Tab(context, page_path["html"])
    assert tab.page.evaluate("document.getElementById('map-details').open") is False
    box = tab.page.locator(".item").first.bounding_box()
    assert box["y"] + box["height"] <= 700
    tab.assert_clean()
    context.close()


@pytest.mark.slow
def test_choices_stay_with_their_example(browser, tmp_path):
    """Review v1 of a file; reorder its rows (guids are row numbers, so guid 2 names another text)
    or change the reviewed text; rebuild the page: the old choice never shows on another text nor
    is exported for it, and reappears when the data is as reviewed again."""
    texts = ["first text", "second text", "third text", "fourth text"]
    rows = [{"text": t, "label": y} for t, y in zip(texts, ["a", "b", "a", "b"])]
    train, out = _jsonl(tmp_path / "train.jsonl", rows), tmp_path / "issues"
    html = tmp_path / "review.html"

    def build():
        build_review_page(_rank(train, out), html)

    build()
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    tab = Tab(context, html)
    tab.item(2).locator("button[data-label='b']").click()
    v1 = tab.export()
    assert [(c["guid"], c["action"], c["label"]) for c in v1["corrections"]] == [("2", "relabel", "b")]
    v1_key = _payload(html)["storage_key"]

    _jsonl(train, rows[::-1])  # reordered: guid 2 is now "second text"
    build()
    tab.reload()
    assert tab.item(2).locator(".text").text_content() == "second text"
    assert all(tab.status(g) == "" for g in range(4)) and tab.export()["corrections"] == []
    # even a choice carried over under this page's key stays off another text
    key = _payload(html)["storage_key"]
    assert key != v1_key
    tab.page.evaluate("([a, b]) => localStorage.setItem(b, localStorage.getItem(a))", [v1_key, key])
    tab.reload()
    assert all(tab.status(g) == "" for g in range(4)) and tab.export()["corrections"] == []
    assert tab.page.text_content("#progress") == "0 / 4 reviewed"

    _jsonl(train, [{**r, "text": r["text"] + " (edited)"} if i == 2 else r for i, r in enumerate(rows)])
    build()
    tab.reload()
    assert tab.status(2) == "" and tab.export()["corrections"] == []

    _jsonl(train, rows)  # the data as reviewed: the choice is back, on its text
    build()
    tab.reload()
    assert tab.status(2) == "relabel" and tab.item(2).locator(".text").text_content() == "third text"
    assert tab.export() == v1
    tab.assert_clean()
    context.close()


@pytest.mark.slow
def test_64bit_guids_flags_and_integer_labels(browser, tmp_path):
    """idx values 2**60 + k (int64; JavaScript numbers merge them) stay exact from the file through
    the page (click, export) to apply_corrections.py. Integer-only labels show a warning; the
    is_label_issue column shows as a tag and a filter."""
    ids = [BIG + k for k in range(4)]
    rows = [{"idx": i, "sentence": f"sentence {k}", "label": y} for k, (i, y) in enumerate(zip(ids, [1, 1, 0, 0]))]
    train = _jsonl(tmp_path / "train.jsonl", rows)
    issues = _rank(train, tmp_path / "issues", flagged=(BIG + 1,))
    html = tmp_path / "review.html"
    run_cli("review_label_issues.py", "--issues", issues, "--output", html)
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    tab = Tab(context, html)
    assert sorted(tab.guids()) == [str(i) for i in ids]
    warnings = tab.page.text_content("#warnings")
    assert "Only integer label ids are known (0, 1)" in warnings and "training-dynamics find-issues" in warnings
    assert ".py" not in warnings  # the commands a user has, not the old scripts
    buttons = tab.item(BIG).locator(".actions button").all_text_contents()
    assert buttons[:2] == ["1 class 0", "2 class 1"]  # the key, then the class: never "1 0"
    assert tab.item(BIG).locator(".gold").text_content() == "class 1"
    assert tab.item(BIG + 1).locator(".tag.flag").text_content() == "flagged"
    tab.page.select_option("#f-flag", "0:1")
    assert tab.guids() == [str(BIG + 1)]
    tab.page.select_option("#f-flag", "")

    tab.item(BIG + 1).locator("button[data-label='0']").click()
    assert tab.status(BIG + 1) == "relabel" and tab.status(BIG) == ""
    exported = tab.export()
    assert [(c["guid"], c["action"], c["label"]) for c in exported["corrections"]] == [(str(BIG + 1), "relabel", "0")]
    tab.assert_clean()
    context.close()

    corr = tmp_path / "corrections.json"
    corr.write_text(json.dumps(exported), encoding="utf-8")
    run_cli("apply_corrections.py", "--train_file", train, "--corrections", corr, "--output", tmp_path / "fixed.jsonl")
    fixed = [json.loads(line) for line in (tmp_path / "fixed.jsonl").read_text().splitlines()]
    assert [(r["guid"], r["corrected_label"], r["original_label"], r["review_action"]) for r in fixed] == [
        (BIG, 1, 1, "unreviewed"), (BIG + 1, 0, 1, "relabel"), (BIG + 2, 0, 0, "unreviewed"),
        (BIG + 3, 0, 0, "unreviewed")]  # integer labels stay integers


@pytest.mark.slow
def test_resume_a_half_done_review_from_an_exported_file_in_a_fresh_profile(browser, page_path, tmp_path):
    """Half a review, exported in one browser profile, loaded into a fresh one (another machine, a
    colleague): the same choices and notes on the same examples, and the work goes on there. An
    older export loaded again never replaces a newer choice; a choice whose example changed, or
    whose guid is not on the page, is skipped."""
    html, size = page_path["html"], {"width": 1280, "height": 900}
    morning = browser.new_context(accept_downloads=True, viewport=size)
    tab = Tab(morning, html)
    tab.item(3).locator("button[data-label='negative']").click()
    tab.item(1).locator("button[data-action='unsure']").click()
    tab.item(0).locator(".note").fill("sarcasm?")
    assert tab.page.text_content("#export-state") == "not exported yet"
    half = tab.export(times=True)
    assert tab.page.text_content("#export-state") == "all exported"
    tab.item(2).locator("button[data-action='keep']").click()
    assert tab.page.text_content("#export-state") == "1 change since the last export"
    tab.assert_clean()
    morning.close()
    saved = tmp_path / "corrections.json"
    saved.write_text(json.dumps(half), encoding="utf-8")

    fresh = browser.new_context(accept_downloads=True, viewport=size)  # a new profile: empty storage
    tab = Tab(fresh, html)
    assert tab.page.text_content("#progress") == "0 / 5 reviewed"
    assert tab.load(saved) == "3 choices loaded from corrections.json."
    assert {g: tab.status(g) for g in range(5)} == {0: "", 1: "unsure", 2: "", 3: "relabel", 4: ""}
    assert tab.item(0).locator(".note").input_value() == "sarcasm?"
    assert tab.item(3).locator(".state").text_content() == "relabel \u2192 negative"
    assert tab.page.text_content("#progress") == "2 / 5 reviewed"
    assert tab.export() == _timeless(half)  # the same file back
    tab.reload()  # and kept in this profile
    assert tab.status(3) == "relabel" and tab.status(1) == "unsure"

    # the work goes on here; the morning's file loaded again leaves the newer choice alone
    tab.item(3).locator("button[data-action='keep']").click()
    tab.item(4).locator("button[data-label='positive']").click()
    msg = tab.load(saved)
    assert msg == "0 choices loaded from corrections.json \u00b7 2 already here \u00b7 1 kept as made here later."
    assert tab.status(3) == "keep" and tab.status(4) == "relabel"
    later = tab.export()
    assert [(c["guid"], c["action"]) for c in later["corrections"]] == [
        ("3", "keep"), ("4", "relabel"), ("1", "unsure"), ("0", None)]
    tab.assert_clean()
    fresh.close()

    # another version of the data: the example of guid 0 changed, guid 99 is gone; other labels
    tampered = json.loads(json.dumps(half))
    tampered["corrections"][-1]["example_fingerprint"] = "0" * 16
    tampered["corrections"].append({**tampered["corrections"][0], "guid": "99"})
    tampered["dataset_fingerprint"] = "f" * 64
    (tmp_path / "other.json").write_text(json.dumps(tampered), encoding="utf-8")
    (tmp_path / "labels.json").write_text(json.dumps({**half, "label_names": ["neg", "pos"]}), encoding="utf-8")
    (tmp_path / "junk.json").write_text("{not json", encoding="utf-8")
    third = browser.new_context(accept_downloads=True, viewport=size)
    tab = Tab(third, html)
    assert tab.load(tmp_path / "junk.json") == "junk.json is not valid JSON: nothing loaded."
    assert tab.load(tmp_path / "labels.json") == "labels.json was made for other labels (neg, pos): nothing loaded."
    assert tab.page.text_content("#progress") == "0 / 5 reviewed"
    msg = tab.load(tmp_path / "other.json")
    assert msg.startswith("2 choices loaded from other.json \u00b7 1 skipped: the example's text or label changed "
                          "since \u00b7 1 skipped: not on this page") and "another version of the data" in msg
    assert tab.status(3) == "relabel" and tab.item(0).locator(".note").input_value() == ""
    tab.page.click("#undo")  # a loaded choice is undone like any other
    assert tab.page.text_content("#progress") == "1 / 5 reviewed"
    tab.assert_clean()
    third.close()


@pytest.mark.slow
def test_generative_review_shows_prompt_and_response_to_keep_or_drop(browser, tmp_path):
    """A generative run's page: prompt and response, how well the model learned it, a suspicious
    flag, keep or drop (exported as keep / relabel to other, which apply leaves out); no gold,
    pred or class buttons."""
    from training_dynamics.kinds.generative import data as clm_data

    pairs = [("what is an owl", "it is a bird"), ("what is a fox", "it is a fish"), ("what is a cod", "it is a fish")]
    train = _jsonl(tmp_path / "sft.jsonl", [{"prompt": q, "response": a} for q, a in pairs])
    data = clm_data.load_generative(train_file=str(train))
    conf = np.array([0.8, 0.05, 0.6])
    df = le.rank_examples(guids=np.arange(3), texts=example_texts(data.train, data.text_columns, separator=data.separator),
                          gold=np.zeros(3), probabilities=np.stack([conf, 1 - conf], 1), score=1 - conf,
                          score_name="1-confidence", label_names=clm_data.LABEL_NAMES,
                          extra={"confidence": conf, "correctness": np.array([3, 0, 2]),
                                 "is_label_issue": np.array([False, True, False])})
    source = {**data.source, "kind": "generative"}
    le.write_issues(df, tmp_path / "issues", {"source": "dynamics", "score_name": "1-confidence", "kind": "generative",
                                              "data": source, "label_names": clm_data.LABEL_NAMES})
    html = tmp_path / "review.html"
    run_cli("review_label_issues.py", "--issues", tmp_path / "issues" / le.ISSUES_NAME, "--output", html)
    assert _payload(html)["kind"] == "generative" and _payload(html)["card"]["parts"] == ["prompt", "response"]
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    tab = Tab(context, html)
    page, card = tab.page, tab.item(1)
    assert page.title() == "Response review: sft.jsonl" and not page.is_visible("#warnings .warn")
    assert tab.guids() == ["1", "2", "0"]  # least learned first
    assert card.locator(".part-prompt .text").text_content() == "what is a fox"
    assert card.locator(".part-response .text").text_content() == "it is a fish"
    assert card.locator(".learned").text_content() == "learned the response 5%"
    assert card.locator(".tag.flag").text_content() == "suspicious response"
    meta = card.locator(".meta").first.text_content()
    assert "gold" not in meta and "pred" not in meta and "response" not in meta.replace("suspicious response", "")
    assert card.locator(".secondary [data-metric='correctness'] b").text_content() == "0"  # secondary numbers
    assert card.locator(".actions button").all_text_contents() == ["k keep", "d drop", "u unsure", "0 clear"]
    assert not page.is_visible("#f-gold") and not page.is_visible("#f-pred")
    card.locator(".text").first.click()
    page.keyboard.press("d")  # drop guid 1, move on to guid 2
    page.keyboard.press("k")
    assert card.locator(".state").text_content() == "drop" and tab.status(2) == "keep"
    assert page.text_content("#counts") == "1 drop \u00b7 1 keep \u00b7 0 unsure"
    page.keyboard.press("1")  # no class keys on this page
    assert tab.status(0) == ""
    exported = tab.export()
    assert [(c["guid"], c["action"], c["label"], c["original_label"]) for c in exported["corrections"]] == [
        ("1", "relabel", "other", "response"), ("2", "keep", "response", "response")]
    tab.assert_clean()
    context.close()
    corr = tmp_path / "corrections.json"
    corr.write_text(json.dumps(exported), encoding="utf-8")
    run_cli("apply_corrections.py", "--train_file", train, "--corrections", corr, "--output", tmp_path / "clean.jsonl")
    clean = [json.loads(line) for line in (tmp_path / "clean.jsonl").read_text().splitlines()]
    assert [(r["guid"], r["response"], r["review_action"]) for r in clean] == [
        (0, "it is a bird", "unreviewed"), (2, "it is a fish", "keep")]


def test_a_cut_text_shows_what_the_model_read(browser, tmp_path):
    """A row with ``seen`` spans (a text cut by --max_seq_length): the card keeps the whole text and greys
    the part the model never read; a text read whole is plain."""
    text = "it starts well " + "and goes on " * 20 + "but ends badly"
    train = _jsonl(tmp_path / "train.jsonl", [{"sentence": text, "label": 0}, {"sentence": "short", "label": 1}])
    issues = _rank(train, tmp_path / "issues")
    rows = [json.loads(line) for line in issues.read_text().splitlines()]
    for r in rows:
        r["seen"] = [[0, 14], [len(text) - 14, len(text)]] if r["guid"] == 0 else None
    _jsonl(issues, rows)
    html = tmp_path / "review.html"
    run_cli("review_label_issues.py", "--issues", issues, "--output", html)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = Tab(context, html)
    card = tab.item(0).locator(".text")
    assert card.locator(".cut").all_text_contents() == [" " + "and goes on " * 20]
    assert card.text_content().endswith(text) and "the model read only the dark text" in card.text_content()
    assert tab.item(1).locator(".text .cut").count() == 0 and tab.item(1).locator(".text").text_content() == "short"
    tab.assert_clean()
    context.close()


@pytest.mark.slow
def test_data_map_page_in_headless_chromium(browser, tmp_path):
    """plot_cartography.py --interactive: the same component, with a correctness legend, hover
    details shown literally, zoom and reset; 64-bit guids exact."""
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"guid": [BIG + k for k in range(30)], "confidence": rng.uniform(0, 1, 30),
                       "variability": rng.uniform(0, 0.4, 30), "correctness": rng.integers(0, 3, 30),
                       "gold": rng.integers(0, 2, 30)})
    texts = {BIG + k: XSS if k == 0 else f"text {k}" for k in range(30)}
    path = plots.write_interactive_html(df, tmp_path / "map.html", num_epochs=2, title="SST-2 <map>", texts=texts,
                                        label_names=["neg", "pos"])
    data = _payload(path)
    assert sorted(data["guid"]) == sorted(str(g) for g in df["guid"])
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    tab = Tab(context, path)
    page = tab.page
    assert page.title() == "SST-2 <map>" and page.text_content("h1") == "SST-2 <map>"
    assert page.text_content("#map-legend") == "correctness0.00.51.0"
    i = data["guid"].index(str(BIG))
    page.mouse.move(*tab.to_screen(data["x"][i], data["y"][i]))
    tip = page.text_content("#tip")
    assert page.is_visible("#tip") and tip.startswith(f"guid {BIG}\n") and tip.endswith("\n" + XSS)
    full = page.get_attribute("#map", "data-layout")
    page.mouse.wheel(0, -300)
    page.wait_for_function("f => document.getElementById('map').dataset.layout !== f", arg=full)
    page.click("#map-reset")
    assert page.get_attribute("#map", "data-layout") == full
    tab.assert_clean()
    context.close()


# -- hostile texts through the whole pipeline ----------------------------------------------------------
HOSTILE = [XSS, BREAKOUT, "\u202eevil RTL override\u202c then normal", "nul \x00 inside", "line\u2028sep\u2029para",
           "<!--<script>alert(5)</script>-->", "emoji 🎬 and ✓ é", "javascript:alert(6)", "x" * (1 << 20)]


@pytest.mark.slow
def test_hostile_texts_go_through_record_rank_and_review_inert(browser, tiny_model, tmp_path):
    """HTML/script, RTL, NUL, U+2028 and a 1 MB line: recorded, ranked and shown as literal text in
    Chromium; nothing runs, nothing is fetched. A lone surrogate is refused in one line (test_data)."""
    rows = [{"sentence": t, "label": ["negative", "positive"][i % 2]} for i, t in enumerate(HOSTILE * 3)]
    train = tmp_path / "hostile.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    run_cli("run_glue_and_record_td.py", "--model_name_or_path", tiny_model, "--train_file", train,
            "--output_dir", tmp_path / "out", "--dy_log_dir", tmp_path / "dy_log", "--num_train_epochs", 2,
            "--per_device_train_batch_size", 8, "--report_to", "none", "--save_strategy", "no", "--disable_tqdm", "true",
            "--dy_model_name", "tiny")
    run = tmp_path / "dy_log" / "hostile" / "tiny"
    run_cli("find_label_issues.py", "--source", "dynamics", "--run_dir", run, "--output_dir", tmp_path / "issues")
    run_cli("review_label_issues.py", "--issues", tmp_path / "issues" / le.ISSUES_NAME, "--top_k", 1000)  # every row
    html = tmp_path / "issues" / "review.html"
    page_text = html.read_text(encoding="utf-8")
    assert page_text.count("<script") == 2 and "alert(2)</script>" not in page_text and "\x00" not in page_text
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    tab = Tab(context, html)
    assert tab.page.locator(".item").count() == len(rows)
    for guid in (0, 1, 2, 3, 4, 5, 6, 7):  # the first copy of each short text, shown exactly
        assert tab.item(guid).locator(".text").text_content() == rows[guid]["sentence"], guid
    assert len(tab.item(8).locator(".text").text_content()) == 1 << 20
    assert tab.page.locator("main img, main script, main iframe").count() == 0
    assert not tab.dialogs and not tab.errors and all(u.startswith("file://") for u in tab.requests)
    context.close()


@pytest.mark.slow
def test_word_review_in_headless_chromium(browser, tmp_path):
    """A token classification ranking: each card shows its sentence as BIO spans (dataset words as literal
    text), the keys relabel / keep the focused word, choices survive a reload keyed by (guid, word_index),
    and the export is what apply takes."""
    from training_dynamics.workflows.apply import apply_corrections_file
    from training_dynamics.workflows.review import build_review_page

    names = ["B-LOC", "B-PER", "I-PER", "O"]
    sents = [(["anna", "smith", "met", XSS], ["B-PER", "I-PER", "O", "B-LOC"]), (["in", "rome"], ["O", "B-PER"])]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"tokens": w, "ner_tags": t}) + "\n" for w, t in sents))
    ranked = [(1, 1, "B-PER", True), (0, 3, "B-LOC", True), (0, 0, "B-PER", False)]
    rows = [{"rank": r + 1, "guid": g, "word_index": w, "word": sents[g][0][w], "text": " ".join(sents[g][0]),
             "gold": names.index(gold), "probabilities": [0.25] * 4, "score": 1.0 - r / 10, "is_label_issue": f}
            for r, (g, w, gold, f) in enumerate(ranked)]
    (tmp_path / "label_issues.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    src = {"kind": "token_classification", "train_file": str(data), "text_columns": ["tokens"], "label_column": "ner_tags"}
    (tmp_path / "label_issues_settings.json").write_text(json.dumps({"kind": "token_classification", "data": src,
                                                                     "label_names": names}))
    html = build_review_page(tmp_path / "label_issues.jsonl", tmp_path / "review.html")
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 800})
    tab = Tab(context, html)
    page = tab.page
    keys = page.locator(".item").evaluate_all("els => els.map(e => e.dataset.key)")
    assert keys == ["1#1", "0#3", "0#0"]
    card = page.locator(".item[data-key='0#3']")
    spans = card.locator(".ent").evaluate_all("els => els.map(e => [e.querySelector('.ent-type').textContent, "
                                              "[...e.querySelectorAll('.w')].map(w => w.firstChild.textContent)])")
    assert spans == [["PER", ["anna", "smith"]], ["LOC", [XSS]]]  # a mention of two words is one span
    assert card.locator(".w-focus").first.evaluate("w => w.firstChild.textContent") == XSS
    assert card.locator(".w-flag").count() == 1 and page.locator("main img, main script").count() == 0
    # keys: "1" relabels the first card's word "rome" B-PER -> B-LOC and moves on; "k" keeps the next
    page.keyboard.press("1")
    page.keyboard.press("k")
    assert page.locator(".item[data-key='1#1'] .w-focus .w-tag").text_content() == "B-PER \u2192 B-LOC"
    tab.reload()
    assert page.text_content("#progress") == "2 / 3 reviewed"
    doc = tab.export()
    assert [(c["guid"], c["word_index"], c["action"], c["label"]) for c in doc["corrections"]] == [
        ("1", 1, "relabel", "B-LOC"), ("0", 3, "keep", "B-LOC")]
    tab.assert_clean()
    (tmp_path / "corrections.json").write_text(json.dumps(doc))
    # loaded back in another browser: each choice lands on its own word (guid and word_index)
    other = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 800})
    fresh = Tab(other, html)
    assert "2 choices loaded" in fresh.load(tmp_path / "corrections.json")
    state = fresh.page.locator(".item").evaluate_all("els => els.map(e => [e.dataset.key, e.dataset.status])")
    assert state == [["1#1", "relabel"], ["0#3", "keep"], ["0#0", ""]]
    fresh.assert_clean()
    other.close()
    apply_corrections_file(tmp_path / "corrections.json", train_file=str(data), output=tmp_path / "fixed.jsonl")
    fixed = [json.loads(line) for line in open(tmp_path / "fixed.jsonl")]
    assert fixed[1]["ner_tags"] == ["O", "B-LOC"] and fixed[0]["ner_tags"] == sents[0][1]
    context.close()


# -- review at scale ---------------------------------------------------------------------------------
WNUT_TAGS = ["B-corporation", "B-creative-work", "B-group", "B-location", "B-person", "B-product", "I-corporation",
             "I-creative-work", "I-group", "I-location", "I-person", "I-product", "O"]


def _big_word_page(tmp_path: Path, n_sent: int = 6250, n_words: int = 16) -> tuple[Path, dict]:
    """The review page of a 100,000-word ranking (13 tags, as WNUT 2017), built from its payload."""
    rng = np.random.default_rng(0)
    c, w = len(WNUT_TAGS), n_sent * n_words
    tags = np.where(rng.random((n_sent, n_words)) < 0.8, c - 1, rng.integers(0, c - 1, (n_sent, n_words)))
    words = [[f"w{s}x{i}" for i in range(n_words)] for s in range(n_sent)]
    sent = np.repeat(np.arange(n_sent), n_words)
    wi = np.tile(np.arange(n_words), n_sent)
    gold = tags.ravel()
    probs = rng.dirichlet(np.ones(c) * 0.2, size=w)
    score = 1 - probs[np.arange(w), gold]
    order = np.argsort(-score, kind="stable")
    rank = np.empty(w, dtype=np.int64)
    rank[order] = np.arange(1, w + 1)
    guid = (sent + 1000).astype(str)
    fps = [corrections.example_fingerprint(" ".join(ws), " ".join(WNUT_TAGS[t] for t in ts))
           for ws, ts in zip(words, tags)]
    issues = pd.DataFrame({"rank": rank, "guid": sent + 1000, "word_index": wi, "text": [" ".join(words[s]) for s in sent],
                           "gold": gold, "probabilities": list(probs), "score": score, "confidence": 1 - score,
                           "is_label_issue": rank <= 5000})
    extra = {"items": {"key": [f"{g}#{i}" for g, i in zip(guid, wi)], "word_index": wi.tolist(), "sent": sent.tolist(),
                       "fp": [fps[s] for s in sent]},
             "sentences": {"guid": [str(s + 1000) for s in range(n_sent)], "words": words, "tags": tags.tolist()}}
    data_map = pd.DataFrame({"guid": sent + 1000, "word_index": wi, "confidence": 1 - score,
                             "variability": rng.random(w) * 0.4})
    payload = review.review_payload(issues, label_names=WNUT_TAGS, dataset="wnut-like.jsonl", score_name="1-confidence",
                                    kind="token_classification", dataset_fingerprint="f" * 64, extra=extra,
                                    data_map=data_map)
    html = review.write_review_page(tmp_path / "review.html", payload)
    return html, {"guid": guid, "wi": wi, "gold": gold, "fp": [fps[s] for s in sent], "order": order}


@pytest.mark.slow
def test_review_of_100k_words_opens_in_seconds_and_picks_any_tag(browser, tmp_path):
    """100,000 words, 13 tags: the page is a few MB (compact payload), opens within seconds with the first
    page of cards visible; tags past key 9 are chosen with the picker (t or /, type the first letters); the
    export names each chosen word with its sentence's fingerprint."""
    import time

    html, truth = _big_word_page(tmp_path)
    size = html.stat().st_size
    assert size < 14e6, size  # 5.2 MB for 15,687 words before the compact payload: 33 MB at this scale
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    t0 = time.perf_counter()
    tab = Tab(context, html)
    opened = time.perf_counter() - t0
    assert opened < 5.0, opened
    page = tab.page
    assert page.text_content("#progress") == "0 / 100000 reviewed" and page.locator(".item").count() == 50
    box = page.locator(".item").first.bounding_box()
    assert 0 <= box["y"] and box["y"] + box["height"] <= 900
    first = [int(i) for i in truth["order"][:4]]
    assert page.locator(".item").evaluate_all("els => els.slice(0, 4).map(e => e.dataset.key)") == [
        f"{truth['guid'][i]}#{truth['wi'][i]}" for i in first]
    # the picker: t, "i-pro" -> I-product (tag 12, no key); "/", "group" -> B-group, I-group; down -> I-group
    page.keyboard.press("t")
    assert page.is_visible("#picker")
    page.keyboard.type("i-pro")
    assert page.locator("#picker-list button").all_text_contents()[0].startswith("I-product")
    page.keyboard.press("Enter")
    assert not page.is_visible("#picker")
    page.keyboard.press("/")
    page.keyboard.type("group")
    assert [b.split(" (")[0] for b in page.locator("#picker-list button").all_text_contents()] == ["B-group", "I-group"]
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.keyboard.press("t")  # Esc closes the picker without a choice
    page.keyboard.type("b-")
    page.keyboard.press("Escape")
    assert not page.is_visible("#picker")
    page.keyboard.press("2")  # keys 1-9 still pick the first nine tags (and move on)
    page.keyboard.press("t")  # picking the word's own tag keeps it
    page.keyboard.type(WNUT_TAGS[truth["gold"][first[3]]])
    page.keyboard.press("Enter")
    doc = tab.export()
    want = {first[0]: "I-product", first[1]: "I-group", first[2]: "B-creative-work", first[3]: WNUT_TAGS[truth["gold"][first[3]]]}
    got = [(c["guid"], c["word_index"], c["action"], c["label"], c["original_label"], c["example_fingerprint"])
           for c in doc["corrections"]]
    assert got == [(truth["guid"][i], int(truth["wi"][i]), "keep" if lb == WNUT_TAGS[truth["gold"][i]] else "relabel", lb,
                    WNUT_TAGS[truth["gold"][i]], truth["fp"][i]) for i, lb in want.items()]
    assert doc["kind"] == "token_classification" and doc["label_names"] == WNUT_TAGS
    tab.assert_clean()
    context.close()
