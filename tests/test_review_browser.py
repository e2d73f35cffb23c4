"""The review page: self-contained, escaped, and driven for real in headless Chromium (Playwright).

The browser test needs Debian's ``chromium`` (``/usr/bin/chromium``) and the ``playwright`` package;
it fails when they are missing under CI (``CI=true``) and is skipped elsewhere.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli
from training_dynamics import label_errors as le
from training_dynamics import dynamics_file, fileio, review, web

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
XSS = "<img src=x onerror=alert(1)>"
BREAKOUT = "</script><script>alert(2)</script> & \u2028 \"quoted\" \u2029 end"
LABELS = ["negative", "neutral", "positive"]
# guid = row: (text, gold label, mean gold probability -> confidence ranking 3, 4, 1, 2, 0)
ROWS = [("a fine, quiet film", "neutral", 0.9), (XSS, "positive", 0.3), (BREAKOUT, "negative", 0.5),
        ("dull and tedious", "positive", 0.1), ("wonderful from start to end", "negative", 0.15)]


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


@pytest.fixture(scope="module")
def page_path(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("review")
    train, run = _write_run(tmp)
    df = le.issues_from_dynamics(run, progress=False)
    le.write_issues(df, tmp / "issues", {"source": "dynamics", "score_name": "1-confidence", "run_dir": str(run),
                                         "dataset": str(train.resolve()), "label_names": df.attrs["label_names"]})
    out = tmp / "issues" / "review.html"
    run_cli("review_label_issues.py", "--issues", tmp / "issues" / le.ISSUES_NAME, "--output", out)
    return {"html": out, "train": train, "issues": df, "tmp": tmp}


# -- without a browser ------------------------------------------------------------------------------
def test_embedded_data_cannot_close_its_script_block(page_path):
    html = page_path["html"].read_text(encoding="utf-8")
    assert html.count("<script") == 2 and html.count("</script>") == 2  # the data block and the page's code
    block = re.search(r'<script type="application/json" id="td-data">(.*?)</script>', html, re.S).group(1)
    assert not any(ch in block for ch in "<>&\u2028\u2029")
    data = json.loads(block)
    assert XSS in data["items"]["text"] and BREAKOUT in data["items"]["text"]
    assert data["label_names"] == LABELS
    assert data["map"] is not None and len(data["map"]["x"]) == len(ROWS)
    # self-contained: no network, no innerHTML; the CSP allows only this page's script
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", html) and "innerHTML" not in html
    assert "default-src 'none'" in html and "script-src 'sha256-" in html


def test_json_for_html_round_trips():
    obj = {"t": ["<b>&amp;</b>", "\u2028\u2029", "</script>", "é ✓"]}
    text = web.json_for_html(obj)
    assert json.loads(text) == obj and not any(ch in text for ch in "<>&\u2028\u2029")


# -- in the browser ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_review_in_headless_chromium(browser, page_path, tmp_path):
    html, issues = page_path["html"], page_path["issues"]
    assert issues["guid"].tolist() == [3, 4, 1, 2, 0]  # ranked by low confidence
    context = browser.new_context(accept_downloads=True, viewport={"width": 1200, "height": 1600})
    page = context.new_page()
    dialogs, errors, requests = [], [], []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: requests.append(r.url))
    page.goto(html.resolve().as_uri())
    page.wait_for_selector("body[data-ready='1']")

    def item(guid):
        return page.locator(f".item[data-guid='{guid}']")

    # every example shown, dataset text as literal text, nothing injected
    assert page.locator(".item").count() == len(ROWS)
    assert item(1).locator(".text").text_content() == XSS
    assert item(2).locator(".text").text_content() == BREAKOUT
    assert page.locator("main img, main script").count() == 0
    assert page.text_content("#progress") == "0 / 5 reviewed"

    # filters: gold label, then minimum score
    page.select_option("#f-gold", "2")  # positive
    assert sorted(int(g) for g in page.locator(".item").evaluate_all("els => els.map(e => e.dataset.guid)")) == [1, 3]
    page.select_option("#f-gold", "")
    page.fill("#f-score", "0.8")
    assert page.locator(".item").count() == 2  # 1 - confidence >= 0.8: guids 3 and 4
    page.fill("#f-score", "")
    assert page.locator(".item").count() == len(ROWS)

    # relabel guid 3 by click; guid 4 by key "3" (positive), which moves on to guid 1: "u" = unsure
    item(3).locator("button[data-label='negative']").click()
    item(4).locator(".text").click()
    page.keyboard.press("3")
    page.keyboard.press("u")
    assert page.text_content("#progress") == "3 / 5 reviewed"

    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    status = {g: item(g).get_attribute("data-status") for g in range(len(ROWS))}
    assert status == {0: "", 1: "unsure", 2: "", 3: "relabel", 4: "relabel"}
    assert page.text_content("#progress") == "3 / 5 reviewed"
    assert item(3).locator(".state").text_content() == "relabel \u2192 negative"

    # the data map: hover over guid 1 shows its text (literally), a click jumps to it
    canvas = page.locator("#map")
    layout = json.loads(canvas.get_attribute("data-layout"))
    box = canvas.bounding_box()
    w, h = int(canvas.get_attribute("width")), int(canvas.get_attribute("height"))
    i = issues["guid"].tolist().index(1)
    dmap = json.loads(re.search(r'id="td-data">(.*?)</script>', html.read_text(), re.S).group(1))["map"]
    x = layout["left"] + (w - layout["left"] - layout["right"]) * dmap["x"][i] / layout["xmax"]
    y = h - layout["bottom"] - (h - layout["top"] - layout["bottom"]) * dmap["y"][i]
    page.mouse.move(box["x"] + x * box["width"] / w, box["y"] + y * box["height"] / h)
    assert page.is_visible("#tip") and XSS in page.text_content("#tip")
    page.mouse.click(box["x"] + x * box["width"] / w, box["y"] + y * box["height"] / h)
    assert page.locator(".item.focused").get_attribute("data-guid") == "1"

    with page.expect_download() as dl:
        page.click("#export")
    assert dl.value.suggested_filename == "corrections.json"
    exported = json.loads(Path(dl.value.path()).read_text(encoding="utf-8"))
    assert exported == {
        "dataset": str(page_path["train"].resolve()),
        "label_names": LABELS,
        "corrections": [
            {"guid": 3, "action": "relabel", "label": "negative", "original_label": "positive"},
            {"guid": 4, "action": "relabel", "label": "positive", "original_label": "negative"},
            {"guid": 1, "action": "unsure", "label": None, "original_label": "positive"},
        ],
    }
    assert dialogs == [] and errors == []
    assert all(u.startswith(("file:", "blob:", "data:")) for u in requests), requests
    context.close()

    # the export is what apply_corrections.py takes
    corrections = tmp_path / "corrections.json"
    corrections.write_text(json.dumps(exported), encoding="utf-8")
    run_cli("apply_corrections.py", "--train_file", page_path["train"], "--corrections", corrections,
            "--output", tmp_path / "fixed.jsonl")
    fixed = pd.read_json(tmp_path / "fixed.jsonl", lines=True)
    assert fixed["corrected_label"].tolist() == ["neutral", "positive", "negative", "negative", "positive"]
    assert fixed["review_action"].tolist() == ["unreviewed", "unsure", "unreviewed", "relabel", "relabel"]
    assert fixed["sentence"].tolist() == [t for t, _, _ in ROWS]
