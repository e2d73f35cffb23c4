"""The label-review page: ONE self-contained HTML file (``review_label_issues.py``).

No server, no network, no CDN: CSS and JavaScript are inline and the page works when opened from
disk (``file://``). The examples are embedded as JSON in a ``<script type="application/json">``
block with ``<``, ``>``, ``&``, U+2028 and U+2029 escaped, and rendered with ``textContent`` only,
so dataset text is always shown as text and never runs. A Content-Security-Policy allows only the
page's own script (by hash) and no network at all, as a second line of defence.

Reviewers' choices are kept in ``localStorage`` under a key derived from the dataset and its label
names, and exported as ``corrections.json``::

    {"dataset": ..., "label_names": [...],
     "corrections": [{"guid": 7, "action": "relabel" | "keep" | "unsure",
                      "label": name-or-null, "original_label": name}, ...]}
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from . import fileio, web
from .label_errors import read_issues
from .run import Run

logger = logging.getLogger(__name__)

def dataset_id(dataset: str, label_names: Sequence[str]) -> str:
    """A short stable id of (dataset, label names): the page's localStorage key. Choices are per
    guid, so a new ranking of the same dataset (another ``--top_k``, another run) keeps them."""
    return hashlib.sha256(json.dumps([dataset, [str(n) for n in label_names]]).encode()).hexdigest()[:16]


def review_payload(issues: pd.DataFrame, *, label_names: Sequence[str], dataset: str = "", score_name: str = "score",
                   data_map: pd.DataFrame | None = None, max_map_points: int = 20000, title: str | None = None,
                   seed: int = 0) -> dict:
    """Everything the page shows, as plain JSON-able data.

    Args:
        issues: ranked rows of ``label_issues.jsonl`` (guid, text, gold, probabilities, score, ...).
        label_names: (C,) class names in id order.
        data_map: optional metrics table (``guid``, ``confidence``, ``variability``) of the whole
            run: the reviewed examples are drawn on the data map, the others as a grey background
            (at most ``max_map_points``, a seeded sample).
    """
    label_names = [str(n) for n in label_names]
    c = len(label_names)
    probs = np.asarray(issues["probabilities"].tolist(), dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != c:
        raise ValueError(f"probabilities have {probs.shape[-1] if probs.ndim == 2 else '?'} classes but there are "
                         f"{c} label names {label_names}")
    gold = issues["gold"].to_numpy(np.int64)
    if ((gold < 0) | (gold >= c)).any():
        raise ValueError(f"guid {issues['guid'].iloc[int(np.flatnonzero((gold < 0) | (gold >= c))[0])]}: "
                         f"gold label outside 0..{c - 1}")
    predicted = issues["predicted"].to_numpy(np.int64) if "predicted" in issues else probs.argmax(1)
    n = len(issues)
    guids = issues["guid"].to_numpy(np.int64)
    ranks = issues["rank"].to_numpy(np.int64) if "rank" in issues else np.arange(1, n + 1)
    region = issues["region"].fillna("").astype(str).tolist() if "region" in issues else [""] * n
    items = {"guid": guids.tolist(), "rank": ranks.tolist(), "text": issues["text"].fillna("").astype(str).tolist(),
             "gold": gold.tolist(), "predicted": predicted.tolist(), "probabilities": np.round(probs, 4).tolist(),
             "score": np.round(issues["score"].to_numpy(np.float64), 6).tolist(), "region": region}
    payload = {"title": title or f"Label review: {dataset or 'dataset'}", "dataset": dataset,
               "dataset_id": dataset_id(dataset, label_names), "label_names": label_names,
               "score_name": score_name, "items": items, "map": None}
    if data_map is not None:
        payload["map"] = _map_payload(data_map, guids, max_map_points=max_map_points, seed=seed)
    return payload


def _map_payload(metrics: pd.DataFrame, guids: np.ndarray, *, max_map_points: int, seed: int) -> dict:
    """Data-map coordinates: one (variability, confidence) per reviewed item (NaN -> null when the
    run lacks it) and a seeded sample of the other examples as background."""
    m = metrics.set_index("guid")[["confidence", "variability"]].astype(np.float64)
    own = m.reindex(guids)
    rest = m.loc[~m.index.isin(guids)]
    if len(rest) > max_map_points:
        rest = rest.iloc[np.sort(np.random.default_rng(seed).choice(len(rest), max_map_points, replace=False))]

    def col(s: pd.Series) -> list:
        return [None if np.isnan(v) else round(float(v), 4) for v in s.to_numpy()]

    return {"x": col(own["variability"]), "y": col(own["confidence"]),
            "bg_x": col(rest["variability"]), "bg_y": col(rest["confidence"]), "total": int(len(m))}


def render_html(payload: dict) -> str:
    """The complete page for ``payload`` (see :func:`review_payload`)."""
    script_hash = base64.b64encode(hashlib.sha256(_SCRIPT.encode("utf-8")).digest()).decode()
    csp = (f"default-src 'none'; script-src 'sha256-{script_hash}'; style-src 'unsafe-inline'; "
           "img-src data: blob:; connect-src 'none'; form-action 'none'; base-uri 'none'")
    parts = {"CSP": csp, "CSS": _CSS, "DATA": web.json_for_html(payload), "SCRIPT": _SCRIPT}
    # one pass: text substituted in (the data) is never scanned for placeholders again
    return re.sub(r"__(CSP|CSS|DATA|SCRIPT)__", lambda m: parts[m.group(1)], _TEMPLATE)


def write_review_page(path: str | os.PathLike, payload: dict) -> Path:
    """Write the page atomically; returns its path."""
    path = Path(path)
    with fileio.atomic_write(path) as fh:
        fh.write(render_html(payload))
    logger.info("review page with %d examples -> %s", len(payload["items"]["guid"]), path)
    return path


_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="__CSP__">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Label review</title>
<style>__CSS__</style>
</head>
<body>
<header>
  <h1 id="title">Label review</h1>
  <div class="bar">
    <span id="progress" class="progress">0 / 0 reviewed</span>
    <span id="counts" class="muted"></span>
    <button id="export" type="button" title="Download corrections.json">Export corrections</button>
    <button id="clear-all" type="button" class="ghost" title="Forget every choice on this page">Reset all</button>
  </div>
</header>
<section class="controls" aria-label="Sort and filter">
  <label>Sort <select id="sort">
    <option value="rank">most suspicious first</option>
    <option value="score-asc">least suspicious first</option>
    <option value="gold">gold label</option>
    <option value="predicted">predicted label</option>
    <option value="region">region</option>
  </select></label>
  <label>Gold <select id="f-gold"><option value="">all</option></select></label>
  <label>Predicted <select id="f-pred"><option value="">all</option></select></label>
  <label>Agreement <select id="f-agree"><option value="">all</option><option value="disagree">predicted &ne; gold</option><option value="agree">predicted = gold</option></select></label>
  <label id="region-wrap">Region <select id="f-region"><option value="">all</option></select></label>
  <label>Min score <input id="f-score" type="number" step="any" inputmode="decimal" placeholder="any"></label>
  <label>Status <select id="f-status">
    <option value="">all</option><option value="todo">not reviewed</option><option value="done">reviewed</option>
    <option value="relabel">relabelled</option><option value="keep">kept</option><option value="unsure">unsure</option>
  </select></label>
  <label>Search <input id="f-text" type="search" placeholder="text contains"></label>
  <span id="shown" class="muted"></span>
</section>
<details class="help" open>
  <summary>Keys</summary>
  <p id="keys-help"></p>
</details>
<section id="map-wrap" class="map-wrap" hidden>
  <h2>Data map <span class="muted">(variability vs confidence; hover for the text, click to jump)</span></h2>
  <div class="map-box"><canvas id="map" width="560" height="360" aria-label="Data map"></canvas>
  <div id="tip" class="tip" hidden></div></div>
</section>
<nav class="pager"><button id="prev-page" type="button">&larr; previous page</button>
  <span id="page-info"></span><button id="next-page" type="button">next page &rarr;</button></nav>
<main id="list" aria-live="polite"></main>
<script type="application/json" id="td-data">__DATA__</script>
<script>__SCRIPT__</script>
</body>
</html>
"""

_CSS = """
:root { --fg:#1d2330; --muted:#6b7280; --line:#e5e7eb; --focus:#2563eb; --bg:#fff; --soft:#f6f7f9;
  --relabel:#d97706; --keep:#059669; --unsure:#7c3aed; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg);
  margin: 0 auto; max-width: 1100px; padding: 0 16px 64px; }
header { position: sticky; top: 0; background: var(--bg); border-bottom: 1px solid var(--line); padding: 10px 0;
  z-index: 2; display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between; gap: 8px; }
h1 { font-size: 20px; margin: 0; } h2 { font-size: 16px; margin: 12px 0 6px; }
.bar { display: flex; gap: 10px; align-items: center; flex-wrap: wrap; }
.progress { font-weight: 600; } .muted { color: var(--muted); font-size: 13px; }
button { font: inherit; font-size: 13px; padding: 4px 10px; border: 1px solid #cbd5e1; border-radius: 6px;
  background: #fff; cursor: pointer; } button:hover { background: var(--soft); }
#export { background: var(--focus); color: #fff; border-color: var(--focus); }
button.ghost { color: var(--muted); }
.controls { display: flex; flex-wrap: wrap; gap: 8px 14px; align-items: center; padding: 10px 0; font-size: 13px; }
.controls input[type=number] { width: 7em; } select, input { font: inherit; font-size: 13px; }
.help { font-size: 13px; color: var(--muted); } .help p { margin: 4px 0 8px; }
kbd { font: 12px ui-monospace, monospace; border: 1px solid #cbd5e1; border-bottom-width: 2px; border-radius: 4px;
  padding: 0 4px; background: var(--soft); color: var(--fg); }
.map-box { position: relative; display: inline-block; }
#map { border: 1px solid var(--line); border-radius: 6px; cursor: crosshair; max-width: 100%; }
.tip { position: absolute; pointer-events: none; max-width: 360px; background: #111827; color: #fff; font-size: 12px;
  padding: 6px 8px; border-radius: 6px; white-space: pre-wrap; z-index: 3; }
.pager { display: flex; gap: 12px; align-items: center; justify-content: center; padding: 8px 0; font-size: 13px; }
.item { border: 1px solid var(--line); border-left: 5px solid var(--line); border-radius: 8px; padding: 10px 12px;
  margin: 8px 0; background: #fff; }
.item.focused { outline: 2px solid var(--focus); outline-offset: 1px; }
.item.s-relabel { border-left-color: var(--relabel); } .item.s-keep { border-left-color: var(--keep); }
.item.s-unsure { border-left-color: var(--unsure); }
.meta { display: flex; flex-wrap: wrap; gap: 6px 14px; font-size: 13px; color: var(--muted); }
.meta b { color: var(--fg); } .tag { padding: 0 6px; border-radius: 10px; background: var(--soft); }
.text { margin: 6px 0; font-size: 16px; white-space: pre-wrap; overflow-wrap: anywhere; }
.probs { display: flex; height: 16px; border-radius: 4px; overflow: hidden; background: var(--soft); margin: 4px 0; }
.probs span { display: block; height: 100%; }
.plegend { display: flex; flex-wrap: wrap; gap: 4px 12px; font-size: 12px; color: var(--muted); }
.sw { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; vertical-align: -1px; }
.actions { display: flex; flex-wrap: wrap; gap: 6px; margin-top: 6px; align-items: center; }
.actions button.on { background: var(--fg); color: #fff; border-color: var(--fg); }
.actions button.gold-btn::after { content: " (gold)"; color: var(--muted); }
.actions button.on.gold-btn::after { color: #cbd5e1; }
.state { font-size: 13px; font-weight: 600; margin-left: 6px; }
.s-relabel .state { color: var(--relabel); } .s-keep .state { color: var(--keep); } .s-unsure .state { color: var(--unsure); }
.empty { color: var(--muted); padding: 24px; text-align: center; }
"""

# The page's only script. Dataset text reaches the DOM through textContent / setAttribute only.
_SCRIPT = r"""
"use strict";
(function () {
  var DATA = JSON.parse(document.getElementById("td-data").textContent);
  var L = DATA.label_names, C = L.length, IT = DATA.items, N = IT.guid.length;
  var KEY = "td-review:" + DATA.dataset_id, PAGE = 50;
  var COLORS = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#9333ea", "#475569"];
  var color = function (c) { return COLORS[c % COLORS.length]; };
  var $ = function (id) { return document.getElementById(id); };
  var posOfGuid = {};
  for (var i = 0; i < N; i++) posOfGuid[IT.guid[i]] = i;

  // -- state: choices {guid: {action, label}} in localStorage ----------------------------------
  var choices = {};
  try { choices = JSON.parse(localStorage.getItem(KEY) || "{}") || {}; } catch (e) { choices = {}; }
  function save() { try { localStorage.setItem(KEY, JSON.stringify(choices)); } catch (e) { /* storage off */ } }
  function setChoice(pos, action, cls) {
    var g = IT.guid[pos];
    if (action === null) { delete choices[g]; }
    else if (action === "class") {
      choices[g] = cls === IT.gold[pos] ? {action: "keep", label: L[cls]} : {action: "relabel", label: L[cls]};
    } else if (action === "keep") { choices[g] = {action: "keep", label: L[IT.gold[pos]]}; }
    else { choices[g] = {action: "unsure", label: null}; }
    save(); refreshItem(pos); progress(); drawMap();
  }

  // -- view: filter + sort + page ------------------------------------------------------------
  var view = [], page = 0, focus = -1;  // focus: index into view
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function opt(sel, value, text) { var o = el("option", null, text); o.value = value; sel.appendChild(o); }
  function status(pos) { var c = choices[IT.guid[pos]]; return c ? c.action : ""; }
  function computeView() {
    var fg = $("f-gold").value, fp = $("f-pred").value, fr = $("f-region").value, fa = $("f-agree").value;
    var fs = $("f-status").value, ft = $("f-text").value.toLowerCase(), ms = parseFloat($("f-score").value);
    view = [];
    for (var i = 0; i < N; i++) {
      if (fg !== "" && IT.gold[i] !== +fg) continue;
      if (fp !== "" && IT.predicted[i] !== +fp) continue;
      if (fr !== "" && IT.region[i] !== (fr === "(none)" ? "" : fr)) continue;
      if (fa === "agree" && IT.predicted[i] !== IT.gold[i]) continue;
      if (fa === "disagree" && IT.predicted[i] === IT.gold[i]) continue;
      if (!isNaN(ms) && !(IT.score[i] >= ms)) continue;
      var st = status(i);
      if (fs === "todo" && st) continue;
      if (fs === "done" && !st) continue;
      if (fs && fs !== "todo" && fs !== "done" && st !== fs) continue;
      if (ft && IT.text[i].toLowerCase().indexOf(ft) < 0) continue;
      view.push(i);
    }
    var s = $("sort").value, by = function (a, b) { return IT.rank[a] - IT.rank[b]; };
    var key = {gold: IT.gold, predicted: IT.predicted, region: IT.region}[s];
    if (s === "score-asc") view.sort(function (a, b) { return -by(a, b); });
    else if (key) view.sort(function (a, b) { return key[a] < key[b] ? -1 : key[a] > key[b] ? 1 : by(a, b); });
    else view.sort(by);
    page = 0; focus = view.length ? 0 : -1;
    render();
  }

  // -- rendering -----------------------------------------------------------------------------
  var rows = {};  // pos -> element on the current page
  function render() {
    var list = $("list");
    list.replaceChildren();
    rows = {};
    var pages = Math.max(1, Math.ceil(view.length / PAGE));
    page = Math.min(Math.max(page, 0), pages - 1);
    $("page-info").textContent = "page " + (page + 1) + " of " + pages;
    $("prev-page").disabled = page === 0; $("next-page").disabled = page >= pages - 1;
    $("shown").textContent = view.length + " of " + N + " shown";
    if (!view.length) { list.appendChild(el("p", "empty", "No example matches the filters.")); return; }
    for (var v = page * PAGE; v < Math.min(view.length, (page + 1) * PAGE); v++) {
      var row = buildItem(view[v], v);
      rows[view[v]] = row;
      list.appendChild(row);
    }
    markFocus(false);
  }
  function buildItem(pos, v) {
    var row = el("article", "item");
    row.setAttribute("data-guid", String(IT.guid[pos]));
    row.setAttribute("data-pos", String(pos));
    var meta = el("div", "meta");
    var r = el("span", null, "#" + IT.rank[pos]); meta.appendChild(r);
    meta.appendChild(el("span", null, "guid " + IT.guid[pos]));
    var sc = el("span"); sc.appendChild(el("span", null, DATA.score_name + " ")); sc.appendChild(el("b", null, IT.score[pos].toFixed(4)));
    meta.appendChild(sc);
    var gp = el("span"); gp.appendChild(el("span", null, "gold ")); gp.appendChild(el("b", "gold", L[IT.gold[pos]]));
    gp.appendChild(el("span", null, " \u00b7 predicted ")); gp.appendChild(el("b", "pred", L[IT.predicted[pos]]));
    meta.appendChild(gp);
    if (IT.region[pos]) meta.appendChild(el("span", "tag", IT.region[pos]));
    row.appendChild(meta);
    row.appendChild(el("div", "text", IT.text[pos]));
    var bar = el("div", "probs"), leg = el("div", "plegend"), p = IT.probabilities[pos];
    for (var c = 0; c < C; c++) {
      var seg = el("span"); seg.style.width = (100 * p[c]).toFixed(2) + "%"; seg.style.background = color(c);
      seg.title = L[c] + " " + p[c].toFixed(3); bar.appendChild(seg);
      var lg = el("span"), sw = el("span", "sw"); sw.style.background = color(c);
      lg.appendChild(sw); lg.appendChild(el("span", null, L[c] + " " + p[c].toFixed(3))); leg.appendChild(lg);
    }
    row.appendChild(bar); row.appendChild(leg);
    var acts = el("div", "actions");
    for (c = 0; c < C; c++) {
      var b = el("button", c === IT.gold[pos] ? "gold-btn" : null, (c < 9 ? (c + 1) + " " : "") + L[c]);
      b.type = "button"; b.setAttribute("data-label", L[c]); b.setAttribute("data-class", String(c));
      acts.appendChild(b);
    }
    var kb = el("button", null, "keep (k)"); kb.type = "button"; kb.setAttribute("data-action", "keep"); acts.appendChild(kb);
    var ub = el("button", null, "unsure (u)"); ub.type = "button"; ub.setAttribute("data-action", "unsure"); acts.appendChild(ub);
    var cb = el("button", "ghost", "clear (0)"); cb.type = "button"; cb.setAttribute("data-action", "clear"); acts.appendChild(cb);
    acts.appendChild(el("span", "state"));
    row.appendChild(acts);
    row.addEventListener("click", function (ev) {
      var t = ev.target.closest("button");
      focus = v; markFocus(false);
      if (!t) return;
      if (t.hasAttribute("data-class")) setChoice(pos, "class", +t.getAttribute("data-class"));
      else if (t.getAttribute("data-action") === "clear") setChoice(pos, null);
      else setChoice(pos, t.getAttribute("data-action"));
    });
    paintItem(row, pos);
    return row;
  }
  function paintItem(row, pos) {
    var ch = choices[IT.guid[pos]], st = ch ? ch.action : "";
    row.classList.remove("s-relabel", "s-keep", "s-unsure");
    if (st) row.classList.add("s-" + st);
    row.setAttribute("data-status", st);
    var btns = row.querySelectorAll(".actions button");
    for (var k = 0; k < btns.length; k++) {
      var b = btns[k], on = false;
      if (ch && b.hasAttribute("data-class")) on = ch.action === "relabel" && ch.label === b.getAttribute("data-label");
      else if (ch) on = ch.action === b.getAttribute("data-action");
      b.classList.toggle("on", on);
    }
    row.querySelector(".state").textContent = !ch ? "" : ch.action === "relabel" ? "relabel \u2192 " + ch.label
      : ch.action === "keep" ? "keep " + ch.label : "unsure";
  }
  function refreshItem(pos) { if (rows[pos]) paintItem(rows[pos], pos); }
  function markFocus(scroll) {
    var old = document.querySelector(".item.focused");
    if (old) old.classList.remove("focused");
    if (focus < 0 || focus >= view.length) return;
    var row = rows[view[focus]];
    if (row) { row.classList.add("focused"); if (scroll) row.scrollIntoView({block: "nearest"}); }
    drawMap();
  }
  function moveFocus(delta) {
    if (!view.length) return;
    focus = Math.min(Math.max(focus + delta, 0), view.length - 1);
    var want = Math.floor(focus / PAGE);
    if (want !== page) { page = want; render(); }
    markFocus(true);
  }
  function progress() {
    var n = 0, cnt = {relabel: 0, keep: 0, unsure: 0};
    for (var i = 0; i < N; i++) { var s = status(i); if (s) { n++; cnt[s]++; } }
    $("progress").textContent = n + " / " + N + " reviewed";
    $("counts").textContent = cnt.relabel + " relabel \u00b7 " + cnt.keep + " keep \u00b7 " + cnt.unsure + " unsure";
  }

  // -- keys ----------------------------------------------------------------------------------
  document.addEventListener("keydown", function (ev) {
    var t = ev.target;
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA")) return;
    var k = ev.key, pos = focus >= 0 && focus < view.length ? view[focus] : -1;
    if (k === "ArrowDown" || k === "j" || k === "n") { moveFocus(1); }
    else if (k === "ArrowUp" || k === "p") { moveFocus(-1); }
    else if (k === "ArrowRight" || k === "PageDown") { moveFocus(PAGE - (focus % PAGE)); }
    else if (k === "ArrowLeft" || k === "PageUp") { moveFocus(-(focus % PAGE) - PAGE); }
    else if (pos >= 0 && /^[1-9]$/.test(k) && +k <= C) { setChoice(pos, "class", +k - 1); moveFocus(1); }
    else if (pos >= 0 && k === "k") { setChoice(pos, "keep"); moveFocus(1); }
    else if (pos >= 0 && k === "u") { setChoice(pos, "unsure"); moveFocus(1); }
    else if (pos >= 0 && (k === "0" || k === "Backspace" || k === "Delete")) { setChoice(pos, null); }
    else return;
    ev.preventDefault();
  });
  function keysHelp() {
    var h = $("keys-help"), parts = [
      [C <= 9 ? "1\u2013" + C : "1\u20139", C <= 9 ? "set the focused example's label (" + L.map(function (n, i) { return (i + 1) + " " + n; }).join(", ") + "); its gold label means keep" : "set one of the first 9 labels (click for the others)"],
      ["k", "keep the gold label"], ["u", "unsure"], ["0", "clear the choice"],
      ["\u2193 / j / n", "next example"], ["\u2191 / p", "previous example"], ["\u2192 / \u2190", "next / previous page"]];
    parts.forEach(function (p, i) {
      h.appendChild(el("kbd", null, p[0])); h.appendChild(document.createTextNode(" " + p[1] + (i < parts.length - 1 ? " \u00b7 " : ".")));
    });
    h.appendChild(document.createTextNode(" Choosing a label by key moves on to the next example. Choices are saved in this browser (localStorage) and survive a reload; \u201cExport corrections\u201d downloads corrections.json."));
  }

  // -- export --------------------------------------------------------------------------------
  function corrections() {
    var out = [];
    for (var i = 0; i < N; i++) {
      var ch = choices[IT.guid[i]];
      if (!ch) continue;
      out.push({guid: IT.guid[i], action: ch.action, label: ch.label, original_label: L[IT.gold[i]]});
    }
    out.sort(function (a, b) { return IT.rank[posOfGuid[a.guid]] - IT.rank[posOfGuid[b.guid]]; });
    return {dataset: DATA.dataset, label_names: L, corrections: out};
  }
  $("export").addEventListener("click", function () {
    var blob = new Blob([JSON.stringify(corrections(), null, 2) + "\n"], {type: "application/json"});
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob); a.download = "corrections.json";
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(function () { URL.revokeObjectURL(a.href); }, 10000);
  });
  $("clear-all").addEventListener("click", function () {
    var mine = IT.guid.filter(function (g) { return choices[g]; });
    if (!mine.length) return;
    if (!window.confirm("Forget the " + mine.length + " choices made on this page?")) return;
    mine.forEach(function (g) { delete choices[g]; });
    save(); render(); progress(); drawMap();
  });

  // -- data map ------------------------------------------------------------------------------
  var M = DATA.map, cv = $("map"), ctx = null, P = {l: 46, r: 12, t: 12, b: 36}, xmax = 0.5;
  function sx(x) { return P.l + (cv.width - P.l - P.r) * x / xmax; }
  function sy(y) { return cv.height - P.b - (cv.height - P.t - P.b) * y; }
  function drawMap() {
    if (!ctx) return;
    var w = cv.width, h = cv.height, i;
    ctx.clearRect(0, 0, w, h);
    ctx.strokeStyle = "#9ca3af"; ctx.fillStyle = "#6b7280"; ctx.font = "11px sans-serif"; ctx.lineWidth = 1;
    ctx.beginPath(); ctx.moveTo(P.l, P.t); ctx.lineTo(P.l, h - P.b); ctx.lineTo(w - P.r, h - P.b); ctx.stroke();
    for (i = 0; i <= 5; i++) {
      var xv = xmax * i / 5, yv = i / 5;
      ctx.fillText(xv.toFixed(2), sx(xv) - 10, h - P.b + 14); ctx.fillText(yv.toFixed(1), P.l - 26, sy(yv) + 4);
    }
    ctx.fillText("variability", w / 2 - 25, h - 6);
    ctx.save(); ctx.translate(12, h / 2 + 28); ctx.rotate(-Math.PI / 2); ctx.fillText("confidence", 0, 0); ctx.restore();
    ctx.fillStyle = "rgba(148,163,184,0.35)";
    for (i = 0; i < M.bg_x.length; i++) ctx.fillRect(sx(M.bg_x[i]) - 1, sy(M.bg_y[i]) - 1, 2, 2);
    for (i = 0; i < N; i++) {
      if (M.x[i] === null) continue;
      var st = status(i);
      ctx.beginPath(); ctx.arc(sx(M.x[i]), sy(M.y[i]), 3.5, 0, 2 * Math.PI);
      ctx.fillStyle = color(IT.gold[i]); ctx.globalAlpha = st ? 0.35 : 0.85; ctx.fill(); ctx.globalAlpha = 1;
    }
    if (focus >= 0 && focus < view.length && M.x[view[focus]] !== null) {
      var f = view[focus];
      ctx.beginPath(); ctx.arc(sx(M.x[f]), sy(M.y[f]), 8, 0, 2 * Math.PI);
      ctx.strokeStyle = "#111827"; ctx.lineWidth = 2; ctx.stroke(); ctx.lineWidth = 1;
    }
  }
  function nearest(ev) {
    var r = cv.getBoundingClientRect(), mx = (ev.clientX - r.left) * cv.width / r.width,
        my = (ev.clientY - r.top) * cv.height / r.height, best = -1, bd = 64;
    for (var i = 0; i < N; i++) {
      if (M.x[i] === null) continue;
      var dx = sx(M.x[i]) - mx, dy = sy(M.y[i]) - my, d = dx * dx + dy * dy;
      if (d < bd) { bd = d; best = i; }
    }
    return best;
  }
  function jumpTo(pos) {
    var v = view.indexOf(pos);
    if (v < 0) {  // filtered out: clear the filters so it shows
      ["f-gold", "f-pred", "f-region", "f-agree", "f-status"].forEach(function (id) { $(id).value = ""; });
      $("f-score").value = ""; $("f-text").value = ""; computeView(); v = view.indexOf(pos);
    }
    focus = v; page = Math.floor(v / PAGE); render(); markFocus(true);
  }
  if (M) {
    $("map-wrap").hidden = false;
    ctx = cv.getContext("2d");
    var big = 0;
    M.x.concat(M.bg_x).forEach(function (x) { if (x !== null && x > big) big = x; });
    xmax = Math.max(0.05, Math.ceil(20 * big) / 20);
    cv.setAttribute("data-layout", JSON.stringify({left: P.l, right: P.r, top: P.t, bottom: P.b, xmax: xmax}));
    var tip = $("tip");
    cv.addEventListener("mousemove", function (ev) {
      var i = nearest(ev);
      if (i < 0) { tip.hidden = true; return; }
      tip.textContent = "#" + IT.rank[i] + "  gold " + L[IT.gold[i]] + " \u00b7 predicted " + L[IT.predicted[i]] + "\n" + IT.text[i];
      tip.style.left = Math.min(sx(M.x[i]) + 12, cv.width - 200) + "px"; tip.style.top = (sy(M.y[i]) + 12) + "px";
      tip.hidden = false;
    });
    cv.addEventListener("mouseleave", function () { tip.hidden = true; });
    cv.addEventListener("click", function (ev) { var i = nearest(ev); if (i >= 0) jumpTo(i); });
  }

  // -- start ---------------------------------------------------------------------------------
  $("title").textContent = DATA.title; document.title = DATA.title;
  L.forEach(function (n, c) { opt($("f-gold"), String(c), n); opt($("f-pred"), String(c), n); });
  var regions = [];
  IT.region.forEach(function (r) { if (regions.indexOf(r) < 0) regions.push(r); });
  if (regions.length === 1 && regions[0] === "") $("region-wrap").hidden = true;
  regions.sort().forEach(function (r) { opt($("f-region"), r === "" ? "(none)" : r, r === "" ? "(none)" : r); });
  ["sort", "f-gold", "f-pred", "f-region", "f-agree", "f-status"].forEach(function (id) { $(id).addEventListener("change", computeView); });
  ["f-score", "f-text"].forEach(function (id) { $(id).addEventListener("input", computeView); });
  $("prev-page").addEventListener("click", function () { moveFocus(-(focus % PAGE) - PAGE); });
  $("next-page").addEventListener("click", function () { moveFocus(PAGE - (focus % PAGE)); });
  keysHelp(); progress(); computeView();
  document.body.setAttribute("data-ready", "1");
})();
"""


def label_names_from_rows(issues: pd.DataFrame) -> list[str]:
    """Class names recovered from the rows' ``gold``/``gold_name`` and ``predicted``/``predicted_name``
    (for an issues file without its settings file); a class never seen is named by its id."""
    c = len(issues["probabilities"].iloc[0])
    names = [str(i) for i in range(c)]
    for id_col, name_col in (("predicted", "predicted_name"), ("gold", "gold_name")):
        if id_col in issues and name_col in issues:
            for i, name in zip(issues[id_col].to_numpy(np.int64), issues[name_col].astype(str)):
                names[i] = name
    return names


def build_review_page(issues_path: str | os.PathLike, output: str | os.PathLike, *,
                      model_dir: str | os.PathLike | None = None, burn_out: int | None = None,
                      max_map_points: int = 20000, title: str | None = None) -> Path:
    """Read ``label_issues.jsonl`` (+ its settings) and write the review page to ``output``.

    The data map comes from ``model_dir`` (a recorded run folder), else from the run the issues
    were ranked from (``run_dir`` in the settings) when it still exists; else there is none.
    """
    issues, settings = read_issues(issues_path)
    label_names = settings.get("label_names") or label_names_from_rows(issues)
    data_map = None
    folder = model_dir or settings.get("run_dir")
    if folder is not None:
        run = Run(folder)
        if model_dir is None and not run.dynamics_dir.is_dir():
            logger.warning("%s: no recorded dynamics any more; the page has no data map", folder)
        else:
            data_map = run.require().metrics(burn_out=burn_out if burn_out is not None else settings.get("burn_out"),
                                             save=False)
    score_name = settings.get("score_name") or (str(issues["score_name"].iloc[0]) if "score_name" in issues else "score")
    payload = review_payload(issues, label_names=label_names, dataset=str(settings.get("dataset", "")),
                             score_name=score_name, data_map=data_map, max_map_points=max_map_points, title=title)
    return write_review_page(output, payload)
