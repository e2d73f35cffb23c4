/* The label-review page (training-dynamics review). The payload comes from #td-data; dataset text
 * reaches the DOM through textContent and attributes only.
 *
 * Choices are kept in localStorage under DATA.storage_key (derived from the fingerprint of the whole
 * training set) as {guid: {fp, action, label, note, t}} (t: when it was made, ms); guids are strings,
 * so 64-bit ids stay exact. A saved choice counts only while its fp equals the fingerprint of the
 * example's text and label on this page: it never shows on, nor is exported for, another text.
 *
 * "Load corrections" takes an exported corrections.json back (another browser, machine, colleague):
 * a choice is taken only when its guid is on this page AND its example_fingerprint is this example's,
 * and never replaces a choice made here later than it (updated_at). Exporting is a full snapshot, so
 * exporting often and loading any of the files later loses nothing.
 *
 * DATA.card (the run's kind's review_card, kinds.py) says how a card presents an example: with
 * choices "keep_drop" (a generative run) it shows prompt and response, how well the model learned the
 * response, and keep / drop (exported as keep, and relabel to "other"); the other numbers are secondary.
 *
 * A token classification ranking (DATA.sentences) has one card per word: its sentence with the tags as
 * coloured BIO spans, the word boxed. Its choices are keyed by IT.key = guid#word_index (else the key is
 * the guid) and carry the fingerprint of the whole sentence; the export adds word_index.
 * A multi-label ranking (card choices "toggles", DATA.examples) has one card per (example, label) pair:
 * the text with every label as a toggle (on = carried; the example's choices on this page applied), the
 * pair's label boxed. Toggling a label flips that pair (a relabel = add or remove it); keys are
 * guid#label, the fingerprint is the whole example's; the export adds label_index, given and fix.
 */
(function () {
  var DATA = expand(JSON.parse(document.getElementById("td-data").textContent));
  var L = DATA.label_names, C = L.length, IT = DATA.items, N = IT.guid.length;
  var METRICS = DATA.metrics, FLAGS = DATA.flags, KEY = DATA.storage_key, PAGE = 50;
  // how a card presents an example: the run's kind's review_card (kinds.py)
  var CARD = DATA.card || {choices: "classes", parts: null, separator: null, learned: null};
  var GEN = CARD.choices === "keep_drop", SHOW = DATA.label_display || L, SEP = CARD.separator;
  var LEARNED = CARD.learned ? METRICS.filter(function (m) { return m.name === CARD.learned; })[0] : null;
  var S = DATA.sentences, WORDS = !!S, NOUN = WORDS ? "word" : "example", NOUNS = WORDS ? "words" : "examples";
  var TOG = CARD.choices === "toggles", EX = DATA.examples, PAIR = {};  // multi-label: PAIR[ex][label] = pos
  if (TOG) for (var pp = 0; pp < N; pp++) (PAIR[IT.ex[pp]] = PAIR[IT.ex[pp]] || {})[IT.gold[pp]] = pp;
  var TFLAG = FLAGS.filter(function (f) { return f.name === "is_label_issue"; })[0];
  var KEYS = IT.key || IT.guid, KEYPOS = {};  // a choice's key: the guid, or guid#word_index for a word
  KEYS.forEach(function (g, i) { KEYPOS[g] = i; });
  // a colour per label, never one twice (13 NER tags: 13 colours); past the list, hues a golden angle apart
  var COLORS = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#1e3a8a", "#475569",
                "#92400e", "#0f766e", "#111827", "#be123c", "#ca8a04", "#a21caf", "#2dd4bf", "#4d7c0f", "#c2410c", "#6b21a8"];
  var color = function (c) {
    return c < COLORS.length ? COLORS[c] : "hsl(" + Math.round((c * 137.508) % 360) + ", 65%, " + (c % 2 ? 38 : 50) + "%)";
  };
  var $ = function (id) { return document.getElementById(id); };

  // The page embeds a compact payload (review_scale.compact_payload): no per-item repetition. Expand it
  // once to the plain columns the rest of this script reads (cards are still built only for one page).
  function expand(d) {
    if (!d.compact) return d;
    var it = d.items, c = d.label_names.length, n = it.gold.length, s = d.sentences, i;
    it.probabilities = new Array(n);
    for (i = 0; i < n; i++) it.probabilities[i] = it.p1000.slice(i * c, (i + 1) * c).map(function (v) { return v / 1000; });
    delete it.p1000;
    if (s && !it.guid) {
      it.guid = new Array(n); it.key = new Array(n); it.fp = new Array(n); it.text = new Array(n);
      var texts = s.words.map(function (w) { return w.join(" "); });
      for (i = 0; i < n; i++) {
        var k = it.sent[i];
        it.guid[i] = s.guid[k]; it.key[i] = s.guid[k] + "#" + it.word_index[i]; it.fp[i] = s.fp[k]; it.text[i] = texts[k];
      }
    }
    it.region = it.region_code ? it.region_code.map(function (r) { return it.region_names[r]; }) : new Array(n).fill("");
    if (!it.seen) it.seen = null;
    d.flags.forEach(function (f) { f.values = f.values.map(function (v) { return v === null ? null : v === 1; }); });
    return d;
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls === "text" || cls === "sentence") e.dir = "auto";  // (with review.css: a bidi control stays inside)
    return e;
  }
  function opt(sel, value, text) { var o = el("option", null, text); o.value = value; sel.appendChild(o); }
  function warn(text) { $("warnings").appendChild(el("p", "warn", text)); }
  function fmt(v) { return v === null ? "\u2013" : Math.abs(v) >= 100 || v === Math.round(v) ? String(v) : v.toFixed(3); }

  // -- saved choices ---------------------------------------------------------------------------------
  var store = {}, storageOk = true, undoStack = [];
  try { store = JSON.parse(localStorage.getItem(KEY) || "{}") || {}; } catch (e) { storageOk = false; }
  if (typeof store !== "object" || Array.isArray(store)) store = {};
  function save() {
    try { localStorage.setItem(KEY, JSON.stringify(store)); } catch (e) {
      if (storageOk) warn("This browser does not keep the choices (localStorage is off): export before closing the page.");
      storageOk = false;
    }
  }
  function rec(pos) {  // the saved record of the example at pos, only if it was made on this very text + label
    var r = Object.prototype.hasOwnProperty.call(store, KEYS[pos]) ? store[KEYS[pos]] : null;
    return r && typeof r === "object" && r.fp === IT.fp[pos] ? r : null;
  }
  function status(pos) { var r = rec(pos); return r && r.action ? r.action : ""; }
  function note(pos) { var r = rec(pos); return r && r.note ? String(r.note) : ""; }
  function put(pos, fields, when) {
    var r = rec(pos) || {fp: IT.fp[pos]};
    for (var k in fields) r[k] = fields[k];
    r.t = when || Date.now();
    if (!r.action && !r.note) delete store[KEYS[pos]]; else store[KEYS[pos]] = r;
    save();
  }
  function setChoice(pos, action, cls) {
    var r = rec(pos), before = {action: r && r.action ? r.action : null, label: r && r.action ? r.label : null}, next;
    if (action === null) next = {action: null, label: null};
    else if (action === "class") next = {action: cls === IT.gold[pos] ? "keep" : "relabel", label: L[cls]};
    else if (action === "keep") next = {action: "keep", label: L[IT.gold[pos]]};
    else if (action === "flip") next = {action: "relabel", label: L[IT.gold[pos]]};  // toggles: add/remove it
    else next = {action: "unsure", label: null};
    if (before.action === next.action && before.label === next.label) return;
    undoStack.push({pos: pos, before: before});
    put(pos, next);
    changed(pos);
  }
  function undo() {
    var u = undoStack.pop();
    if (!u) return;
    put(u.pos, u.before);
    changed(u.pos);
    jumpTo(u.pos);
  }
  function changed(pos) {
    refreshItem(pos); progress(); exportState();
    if (TOG) { var sib = PAIR[IT.ex[pos]]; for (var c in sib) if (sib[c] !== pos) refreshItem(sib[c]); }
    $("undo").disabled = !undoStack.length;
    if (map) map.draw();
  }

  // -- filter + sort ---------------------------------------------------------------------------------
  var view = [], inView = [], page = 0, focus = -1, mapSel = null;
  function computeView() {
    var fg = $("f-gold").value, fp = $("f-pred").value, fr = $("f-region").value, fa = $("f-agree").value;
    var fs = $("f-status").value, ft = $("f-text").value.toLowerCase(), ff = $("f-flag").value;
    var fm = METRICS[+$("f-metric").value], lo = parseFloat($("f-min").value), hi = parseFloat($("f-max").value);
    var flag = ff ? FLAGS[+ff.split(":")[0]].values : null, want = ff.split(":")[1] === "1";
    view = []; inView = [];
    for (var i = 0; i < N; i++) {
      inView.push(false);
      if (fg !== "" && IT.gold[i] !== +fg) continue;
      if (fp !== "" && IT.predicted[i] !== +fp) continue;
      if (fr !== "" && IT.region[i] !== (fr === "(none)" ? "" : fr)) continue;
      if (fa === "agree" && IT.predicted[i] !== IT.gold[i]) continue;
      if (fa === "disagree" && IT.predicted[i] === IT.gold[i]) continue;
      if (fm && (!isNaN(lo) || !isNaN(hi))) {
        var v = fm.values[i];
        if (v === null || (!isNaN(lo) && v < lo) || (!isNaN(hi) && v > hi)) continue;
      }
      if (flag && (flag[i] === true) !== want) continue;
      var st = status(i);
      if (fs === "todo" && st) continue;
      if (fs === "done" && !st) continue;
      if (fs === "note" && !note(i)) continue;
      if (fs && ["todo", "done", "note"].indexOf(fs) < 0 && st !== fs) continue;
      if (ft && IT.text[i].toLowerCase().indexOf(ft) < 0) continue;
      if (mapSel && !mapSel[i]) continue;
      view.push(i); inView[i] = true;
    }
    view.sort(comparator($("sort").value));
    page = 0; focus = view.length ? 0 : -1;
    render();
    if (map) map.draw();
  }
  function comparator(s) {
    var byRank = function (a, b) { return IT.rank[a] - IT.rank[b]; }, parts = s.split(":");
    if (parts[0] === "m") {
      var vals = METRICS[+parts[1]].values, dir = parts[2] === "asc" ? 1 : -1;
      return function (a, b) {
        var x = vals[a], y = vals[b];
        if (x === null || y === null) return x === y ? byRank(a, b) : x === null ? 1 : -1;
        return x !== y ? dir * (x - y) : byRank(a, b);
      };
    }
    if (parts[0] === "f") {
      var fl = FLAGS[+parts[1]].values;
      return function (a, b) { return (fl[b] === true) - (fl[a] === true) || byRank(a, b); };
    }
    var key = {gold: IT.gold, predicted: IT.predicted, region: IT.region}[s];
    if (!key) return byRank;
    return function (a, b) { return key[a] < key[b] ? -1 : key[a] > key[b] ? 1 : byRank(a, b); };
  }
  function clearFilters() {
    ["f-gold", "f-pred", "f-region", "f-agree", "f-status", "f-flag", "f-min", "f-max", "f-text"].forEach(function (id) { $(id).value = ""; });
    setMapSel(null, false);
  }
  function setMapSel(list, recompute) {
    if (list === null) {
      mapSel = null;
      if (map) map.clearSelection();
    } else {
      mapSel = {};
      list.forEach(function (i) { mapSel[i] = true; });
      $("map-count").textContent = list.length + (list.length === 1 ? " example" : " examples");
    }
    $("map-filter").hidden = mapSel === null;
    if (recompute !== false) computeView();
  }

  // -- rendering -------------------------------------------------------------------------------------
  var rows = {};  // pos -> element on the current page
  function render() {
    var list = $("list");
    list.replaceChildren();
    rows = {};
    var pages = Math.max(1, Math.ceil(view.length / PAGE));
    page = Math.min(Math.max(page, 0), pages - 1);
    $("page-info").textContent = "page " + (page + 1) + "/" + pages;
    $("prev-page").disabled = page === 0; $("next-page").disabled = page >= pages - 1;
    $("shown").textContent = view.length + " of " + N + " shown";
    if (!view.length) { list.appendChild(el("p", "empty", "No example matches the filters.")); return; }
    for (var v = page * PAGE; v < Math.min(view.length, (page + 1) * PAGE); v++) {
      rows[view[v]] = buildItem(view[v], v);
      list.appendChild(rows[view[v]]);
    }
    markFocus(false);
  }
  function buildMeta(pos) {
    var meta = el("div", "meta");
    meta.appendChild(el("span", "rank", "#" + IT.rank[pos]));
    meta.appendChild(el("span", "guid", "guid " + IT.guid[pos]));
    if (WORDS) {
      var wd = el("span", "word-meta");
      wd.appendChild(document.createTextNode("word " + IT.word_index[pos] + " "));
      wd.appendChild(el("b", null, S.words[IT.sent[pos]][IT.word_index[pos]]));
      meta.appendChild(wd);
    }
    if (TOG) {
      var lp = el("span");
      lp.appendChild(document.createTextNode("label ")); lp.appendChild(el("b", "gold", SHOW[IT.gold[pos]]));
      lp.appendChild(document.createTextNode(IT.given[pos] ? " \u00b7 given" : " \u00b7 not given"));
      meta.appendChild(lp);
      METRICS.forEach(function (m) { meta.appendChild(metricSpan(m, pos)); });
    } else if (!GEN) {
      var gp = el("span");
      gp.appendChild(document.createTextNode("gold ")); gp.appendChild(el("b", "gold", SHOW[IT.gold[pos]]));
      gp.appendChild(document.createTextNode(" \u00b7 pred ")); gp.appendChild(el("b", "pred", SHOW[IT.predicted[pos]]));
      meta.appendChild(gp);
      METRICS.forEach(function (m) { meta.appendChild(metricSpan(m, pos)); });
    }
    if (IT.region[pos]) meta.appendChild(el("span", "tag", IT.region[pos]));
    FLAGS.forEach(function (f) { if (f.values[pos] === true) meta.appendChild(el("span", "tag flag", f.label)); });
    return meta;
  }
  function metricSpan(m, pos) {
    var s = el("span", "metric");
    s.setAttribute("data-metric", m.name);
    s.appendChild(document.createTextNode(m.label + " ")); s.appendChild(el("b", null, fmt(m.values[pos])));
    return s;
  }
  function buildText(pos) {  // a prompt/response pair as two labelled blocks; else the text as it is
    var t = IT.text[pos], cut = CARD.parts && SEP ? t.indexOf(SEP) : -1;
    if (!CARD.parts || (IT.seen && IT.seen[pos])) return seenText(pos);  // (a cut conversation: greyed too)
    var box = el("div", "pair"), parts = cut < 0 ? [["text", t]] : [[CARD.parts[0], t.slice(0, cut)], [CARD.parts[1], t.slice(cut + SEP.length)]];
    parts.forEach(function (p) {
      var row = el("div", "part part-" + p[0]);
      row.appendChild(el("span", "part-name", p[0]));
      row.appendChild(el("div", "text", p[1]));
      box.appendChild(row);
    });
    return box;
  }
  function buildProbs(pos) {
    var bar = el("div", "probs"), leg = [], p = IT.probabilities[pos];
    if (TOG) {  // the pair's label: its mean probability over the epochs
      var q = p[IT.gold[pos]], sq = el("span");
      sq.style.width = (100 * q).toFixed(2) + "%"; sq.style.backgroundColor = color(IT.gold[pos]);
      bar.appendChild(sq); bar.title = "p(" + SHOW[IT.gold[pos]] + ") " + q.toFixed(3);
      return [bar, el("span", "plegend", "p(" + SHOW[IT.gold[pos]] + ") " + q.toFixed(2))];
    }
    if (GEN) {  // how well the model learned the response: its mean probability over the epochs
      var v = LEARNED ? LEARNED.values[pos] : p[0], seg = el("span");
      seg.style.width = (100 * (v || 0)).toFixed(2) + "%"; seg.style.backgroundColor = v !== null && v < 0.5 ? "#dc2626" : "#16a34a";
      bar.appendChild(seg); bar.title = "learned " + fmt(v);
      var lab = el("span", "learned");
      lab.appendChild(document.createTextNode("learned the response "));
      lab.appendChild(el("b", null, v === null ? "\u2013" : (100 * v).toFixed(0) + "%"));
      return [bar, lab];
    }
    for (var c = 0; c < C; c++) {
      var sg = el("span");
      sg.style.width = (100 * p[c]).toFixed(2) + "%"; sg.style.backgroundColor = color(c); sg.title = SHOW[c] + " " + p[c].toFixed(3);
      bar.appendChild(sg);
      leg.push(SHOW[c] + " " + p[c].toFixed(2));
    }
    return [bar, el("span", "plegend", leg.join(" \u00b7 "))];
  }
  function button(cls, key, text) {
    var b = el("button", cls);
    b.type = "button";
    if (key) { b.appendChild(el("kbd", null, key)); b.appendChild(document.createTextNode(" ")); }
    b.appendChild(document.createTextNode(text));
    return b;
  }
  function buildActions(pos) {
    var acts = el("div", "actions"), b;
    if (TOG) {  // flip the pair's label (add it, or remove it), keep the labels as given, unsure
      [["flip", "t", (IT.given[pos] ? "remove " : "add ") + SHOW[IT.gold[pos]]], ["keep", "k", "keep"],
       ["unsure", "u", "unsure"], ["clear", "0", "clear"]].forEach(function (a) {
        b = button(a[0] === "clear" ? "ghost" : null, a[1], a[2]); b.setAttribute("data-action", a[0]);
        acts.appendChild(b);
      });
    } else if (GEN) {  // keep the response, or drop it (= relabel to "other", left out by apply)
      [["keep", "k", "keep"], ["drop", "d", "drop"], ["unsure", "u", "unsure"], ["clear", "0", "clear"]].forEach(function (a) {
        b = button(a[0] === "clear" ? "ghost" : null, a[1], a[2]); b.setAttribute("data-action", a[0]);
        acts.appendChild(b);
      });
    } else {
      for (var c = 0; c < C; c++) {
        b = button(c === IT.gold[pos] ? "gold-btn" : null, c < 9 ? String(c + 1) : null, SHOW[c]);
        b.setAttribute("data-label", L[c]); b.setAttribute("data-class", String(c));
        acts.appendChild(b);
      }
      [["keep", "k"], ["unsure", "u"], ["clear", "0"]].forEach(function (a) {
        b = button(a[0] === "clear" ? "ghost" : null, a[1], a[0]); b.setAttribute("data-action", a[0]);
        acts.appendChild(b);
      });
    }
    acts.appendChild(el("span", "state"));
    return acts;
  }
  function seenText(pos) {  // a text cut by --max_seq_length: the part the model never read is greyed
    var t = IT.text[pos], seen = IT.seen ? IT.seen[pos] : null, box = el("div", "text"), at = 0;
    if (!seen) { box.textContent = t; return box; }
    box.appendChild(el("span", "cut-note", "\u2702 cut to --max_seq_length: the model read only the dark text "));
    seen.forEach(function (s) {
      if (s[0] > at) box.appendChild(el("span", "cut", t.slice(at, s[0])));
      box.appendChild(el("span", null, t.slice(s[0], s[1])));
      at = s[1];
    });
    if (at < t.length) box.appendChild(el("span", "cut", t.slice(at)));
    return box;
  }
  // -- a sentence as coloured BIO spans (token classification) -----------------------------------------
  var TYPES = [];  // entity types in tag order (B-PER, I-PER -> PER); O has none
  function typeOf(c) { var n = L[c]; return /^[BIES]-/.test(n) ? n.slice(2) : null; }
  L.forEach(function (n, c) { var t = typeOf(c); if (t && TYPES.indexOf(t) < 0) TYPES.push(t); });
  var flaggedWords = {};  // sentence -> {word_index: true} for the words a decision flagged
  if (WORDS) {
    var fl = FLAGS.filter(function (f) { return f.name === "is_label_issue"; })[0];
    for (var q = 0; q < N; q++) {
      if (fl && fl.values[q] !== true) continue;
      (flaggedWords[IT.sent[q]] = flaggedWords[IT.sent[q]] || {})[IT.word_index[q]] = true;
    }
  }
  function buildSentence(pos) {
    var s = IT.sent[pos], words = S.words[s], tags = S.tags[s], box = el("div", "text sentence"), span = null, prev = null;
    var r = rec(pos), st = status(pos), mark = flaggedWords[s] || {};
    for (var w = 0; w < words.length; w++) {
      var c = tags[w], t = typeOf(c), begins = t !== null && (L[c].charAt(0) === "B" || L[c].charAt(0) === "S" || t !== prev);
      if (t === null || begins) {
        if (span) box.appendChild(span);
        span = null;
        if (w) box.appendChild(document.createTextNode(" "));
      } else span.appendChild(document.createTextNode(" "));
      if (t !== null && begins) {
        span = el("span", "ent");
        span.style.setProperty("--ent", color(TYPES.indexOf(t)));
        span.appendChild(el("span", "ent-type", t));
      }
      var word = el("span", "w" + (w === IT.word_index[pos] ? " w-focus" : "") + (mark[w] ? " w-flag" : ""), words[w]);
      word.title = L[c];
      if (w === IT.word_index[pos]) {
        word.appendChild(el("sub", "w-tag", st === "relabel" ? L[c] + " → " + r.label : L[c]));
      }
      (span || box).appendChild(word);
      prev = t;
    }
    if (span) box.appendChild(span);
    return box;
  }

  // -- an example's labels as toggles (multi-label) ------------------------------------------------------
  function carried(pos) {  // the pair's label as the choices made so far say: given, flipped by a relabel
    return status(pos) === "relabel" ? !IT.given[pos] : !!IT.given[pos];
  }
  function buildToggles(pos) {
    var box = el("div", "toggles-card"), ex = IT.ex[pos], have = EX.labels[ex], sib = PAIR[ex] || {};
    box.appendChild(seenText(pos));
    var row = el("div", "toggles");
    for (var c = 0; c < C; c++) {
      var p = Object.prototype.hasOwnProperty.call(sib, c) ? sib[c] : -1;
      var on = p >= 0 ? carried(p) : have.indexOf(c) >= 0, t = el("button", "toggle" + (on ? " on" : "") +
        (c === IT.gold[pos] ? " t-focus" : "") + (p >= 0 && TFLAG && TFLAG.values[p] === true ? " t-flag" : ""), SHOW[c]);
      t.type = "button"; t.style.setProperty("--ent", color(c));
      t.setAttribute("aria-pressed", on ? "true" : "false");
      if (p >= 0) t.setAttribute("data-toggle", String(p)); else t.disabled = true;
      t.title = SHOW[c] + (on ? ": carried" : ": not carried") + (p < 0 ? " (not ranked here)" : "");
      row.appendChild(t);
    }
    box.appendChild(row);
    return box;
  }

  function buildItem(pos, v) {
    var row = el("article", "item" + (GEN ? " gen" : ""));
    row.setAttribute("data-guid", IT.guid[pos]);
    row.setAttribute("data-key", KEYS[pos]);
    row.setAttribute("data-pos", String(pos));
    row.appendChild(buildMeta(pos));
    row.appendChild(WORDS ? buildSentence(pos) : TOG ? buildToggles(pos) : buildText(pos));
    var row2 = el("div", "row2");
    buildProbs(pos).forEach(function (e) { row2.appendChild(e); });
    row2.appendChild(buildActions(pos));
    var nt = el("input", "note");
    nt.type = "text"; nt.placeholder = "note"; nt.maxLength = 2000; nt.value = note(pos);
    nt.setAttribute("aria-label", "Note on guid " + IT.guid[pos]);
    nt.addEventListener("input", function () { put(pos, {note: nt.value}); progress(); exportState(); });
    row2.appendChild(nt);
    row.appendChild(row2);
    if (GEN && METRICS.length) {  // the other numbers, secondary
      var more = el("div", "meta secondary");
      METRICS.forEach(function (m) { more.appendChild(metricSpan(m, pos)); });
      row.appendChild(more);
    }
    row.addEventListener("click", function (ev) {
      var t = ev.target.closest("button");
      focus = v; markFocus(false);
      if (!t) return;
      var a = t.getAttribute("data-action");
      if (t.hasAttribute("data-toggle")) { var tp = +t.getAttribute("data-toggle"); setChoice(tp, status(tp) === "relabel" ? null : "flip"); }
      else if (a === "flip") setChoice(pos, "flip");
      else if (t.hasAttribute("data-class")) setChoice(pos, "class", +t.getAttribute("data-class"));
      else if (a === "clear") setChoice(pos, null);
      else if (a === "drop") setChoice(pos, "class", 1);
      else setChoice(pos, a);
    });
    paintItem(row, pos);
    return row;
  }
  function stateText(pos) {
    var r = rec(pos), st = status(pos);
    if (!st) return "";
    if (GEN) return st === "relabel" ? "drop" : st;
    if (TOG) return st === "relabel" ? (IT.given[pos] ? "remove " : "add ") + SHOW[IT.gold[pos]] : st === "keep" ? "keep as given" : "unsure";
    var shown = L.indexOf(r.label) < 0 ? r.label : SHOW[L.indexOf(r.label)];
    return st === "relabel" ? "relabel \u2192 " + shown : st === "keep" ? "keep " + shown : "unsure";
  }
  function paintItem(row, pos) {
    var r = rec(pos), st = status(pos);
    row.classList.remove("s-relabel", "s-keep", "s-unsure");
    if (st) row.classList.add("s-" + st);
    row.setAttribute("data-status", st);
    var btns = row.querySelectorAll(".actions button");
    for (var k = 0; k < btns.length; k++) {
      var b = btns[k], on = false, a = b.getAttribute("data-action");
      if (st && b.hasAttribute("data-class")) on = st === "relabel" && r.label === b.getAttribute("data-label");
      else if (st) on = a === "drop" || a === "flip" ? st === "relabel" : st === a;
      b.classList.toggle("on", on);
    }
    row.querySelector(".state").textContent = stateText(pos);
    var nt = row.querySelector(".note");
    if (nt !== document.activeElement) nt.value = note(pos);
    if (WORDS) row.replaceChild(buildSentence(pos), row.querySelector(".sentence"));
    if (TOG) row.replaceChild(buildToggles(pos), row.querySelector(".toggles-card"));
  }
  function refreshItem(pos) { if (rows[pos]) paintItem(rows[pos], pos); }
  function markFocus(scroll) {
    var old = document.querySelector(".item.focused");
    if (old) old.classList.remove("focused");
    var pos = focus >= 0 && focus < view.length ? view[focus] : -1;
    if (map) {
      map.setHighlight(pos);
      $("map").setAttribute("data-highlight-guid", pos >= 0 ? IT.guid[pos] : "");
    }
    if (pos < 0 || !rows[pos]) return;
    rows[pos].classList.add("focused");
    if (scroll) rows[pos].scrollIntoView({block: "nearest"});
  }
  function moveFocus(delta) {
    if (!view.length) return;
    focus = Math.min(Math.max(focus + delta, 0), view.length - 1);
    var want = Math.floor(focus / PAGE);
    if (want !== page) { page = want; render(); }
    markFocus(true);
  }
  function jumpTo(pos) {
    var v = view.indexOf(pos);
    if (v < 0) { clearFilters(); computeView(); v = view.indexOf(pos); }
    focus = v; page = Math.floor(v / PAGE); render(); markFocus(true);
  }
  function progress() {
    var n = 0, notes = 0, cnt = {relabel: 0, keep: 0, unsure: 0};
    for (var i = 0; i < N; i++) { var s = status(i); if (s) { n++; cnt[s]++; } if (note(i)) notes++; }
    $("progress").textContent = n + " / " + N + " reviewed";
    $("counts").textContent = cnt.relabel + (GEN ? " drop \u00b7 " : " relabel \u00b7 ") + cnt.keep + " keep \u00b7 " + cnt.unsure + " unsure" +
      (notes ? " \u00b7 " + notes + (notes === 1 ? " note" : " notes") : "");
  }

  // -- keys ------------------------------------------------------------------------------------------
  document.addEventListener("keydown", function (ev) {
    var t = ev.target, k = ev.key;
    if (t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA")) {
      if (k === "Escape" && t.classList.contains("note")) { t.blur(); ev.preventDefault(); }
      return;
    }
    if ((ev.ctrlKey || ev.metaKey) && !ev.altKey && !ev.shiftKey && (k === "z" || k === "Z")) { undo(); ev.preventDefault(); return; }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    var pos = focus >= 0 && focus < view.length ? view[focus] : -1;
    if (k === "ArrowDown" || k === "j" || k === "n") { moveFocus(1); }
    else if (k === "ArrowUp" || k === "p") { moveFocus(-1); }
    else if (k === "ArrowRight" || k === "PageDown") { moveFocus(PAGE - (focus % PAGE)); }
    else if (k === "ArrowLeft" || k === "PageUp") { moveFocus(-(focus % PAGE) - PAGE); }
    else if (k === "z") { undo(); }
    else if (pos >= 0 && TOG && k === "t") { setChoice(pos, "flip"); moveFocus(1); }
    else if (pos >= 0 && !GEN && !TOG && /^[1-9]$/.test(k) && +k <= C) { setChoice(pos, "class", +k - 1); moveFocus(1); }
    else if (pos >= 0 && !GEN && !TOG && (k === "t" || k === "/")) { openPicker(pos); }
    else if (pos >= 0 && GEN && k === "d") { setChoice(pos, "class", 1); moveFocus(1); }
    else if (pos >= 0 && k === "k") { setChoice(pos, "keep"); moveFocus(1); }
    else if (pos >= 0 && k === "u") { setChoice(pos, "unsure"); moveFocus(1); }
    else if (pos >= 0 && (k === "0" || k === "Backspace" || k === "Delete")) { setChoice(pos, null); }
    else if (pos >= 0 && k === "e" && rows[pos]) { rows[pos].querySelector(".note").focus(); }
    else return;
    ev.preventDefault();
  });
  // -- the label picker (t or /): any label by typing its first letters (more labels than keys 1-9) -----
  var pickFor = -1, pickHl = 0, pickMatches = [];
  function pickerMatches(q) {
    q = q.trim().toLowerCase();
    var starts = [], inside = [];
    SHOW.forEach(function (n, c) {
      var a = String(n).toLowerCase(), b = L[c].toLowerCase();
      if (!q || a.indexOf(q) === 0 || b.indexOf(q) === 0) starts.push(c);
      else if (a.indexOf(q) > 0 || b.indexOf(q) > 0) inside.push(c);
    });
    return starts.concat(inside);
  }
  function paintPicker() {
    var list = $("picker-list");
    list.replaceChildren();
    pickMatches = pickerMatches($("picker-input").value);
    pickHl = Math.min(Math.max(pickHl, 0), Math.max(pickMatches.length - 1, 0));
    pickMatches.forEach(function (c, j) {
      var b = el("button", j === pickHl ? "hl" : null, SHOW[c] + (c === IT.gold[pickFor] ? " (gold)" : ""));
      b.type = "button"; b.setAttribute("data-class", String(c)); b.setAttribute("role", "option");
      b.addEventListener("mousedown", function (ev) { ev.preventDefault(); pickerChoose(c); });
      list.appendChild(b);
    });
    if (!pickMatches.length) list.appendChild(el("p", "muted", "no label matches"));
  }
  function openPicker(pos) {
    pickFor = pos; pickHl = 0;
    $("picker").hidden = false; $("picker-input").value = "";
    paintPicker(); $("picker-input").focus();
  }
  function closePicker() { $("picker").hidden = true; pickFor = -1; $("picker-input").blur(); }
  function pickerChoose(c) {
    var pos = pickFor;
    closePicker();
    if (pos >= 0 && c !== undefined) { setChoice(pos, "class", c); moveFocus(1); }
  }
  $("picker-input").addEventListener("input", function () { pickHl = 0; paintPicker(); });
  $("picker-input").addEventListener("blur", function () { if (pickFor >= 0) closePicker(); });
  $("picker-input").addEventListener("keydown", function (ev) {
    if (ev.key === "Escape") closePicker();
    else if (ev.key === "Enter") pickerChoose(pickMatches[pickHl]);
    else if (ev.key === "ArrowDown") { pickHl++; paintPicker(); }
    else if (ev.key === "ArrowUp") { pickHl--; paintPicker(); }
    else return;
    ev.preventDefault(); ev.stopPropagation();
  });

  function keysHelp() {
    var h = $("keys-help"), parts = TOG ? [
      ["t", "toggle the focused pair's label (add it, or remove it)"], ["k", "keep the labels as given"], ["u", "unsure"],
      ["0", "clear the choice"], ["z / Ctrl+Z", "undo the last choice"], ["e", "write a note (Esc leaves it)"],
      ["\u2193 / j / n", "next pair"], ["\u2191 / p", "previous pair"], ["\u2192 / \u2190", "next / previous page"]] : GEN ? [
      ["k", "keep the response"], ["d", "drop the response (apply leaves it out)"], ["u", "unsure"],
      ["0", "clear the choice"], ["z / Ctrl+Z", "undo the last choice"], ["e", "write a note (Esc leaves it)"],
      ["\u2193 / j / n", "next example"], ["\u2191 / p", "previous example"], ["\u2192 / \u2190", "next / previous page"]] : [
      [C <= 9 ? "1\u2013" + C : "1\u20139", C <= 9 ? "set the focused example's label (" + SHOW.map(function (n, i) { return (i + 1) + " " + n; }).join(", ") + "); its gold label means keep" : "set one of the first 9 labels (t picks any)"],
      ["t or /", "pick any label by typing its first letters (Enter chooses)"],
      ["k", "keep the gold label"], ["u", "unsure"], ["0", "clear the choice"], ["z / Ctrl+Z", "undo the last choice"],
      ["e", "write a note (Esc leaves it)"], ["\u2193 / j / n", "next example"], ["\u2191 / p", "previous example"],
      ["\u2192 / \u2190", "next / previous page"]];
    parts.forEach(function (p, i) {
      h.appendChild(el("kbd", null, p[0])); h.appendChild(document.createTextNode(" " + p[1] + (i < parts.length - 1 ? " \u00b7 " : ".")));
    });
    h.appendChild(document.createTextNode(" Choosing by key moves on to the next example. Choices and notes are saved in this browser (localStorage) for this exact dataset and survive a reload; \u201cExport corrections\u201d downloads all of them as corrections.json (export as often as you like: each file is complete), and \u201cLoad corrections\u201d takes such a file back, in any browser, to resume."));
  }

  // -- export ----------------------------------------------------------------------------------------
  function corrections() {
    var out = [];
    for (var i = 0; i < N; i++) {
      var r = rec(i), st = status(i), nt = note(i);
      if (!st && !nt) continue;
      var c = {guid: IT.guid[i], example_fingerprint: IT.fp[i], action: st || null,
               label: st === "relabel" || st === "keep" ? r.label : null, original_label: L[IT.gold[i]]};
      if (WORDS) c.word_index = IT.word_index[i];
      if (TOG) {  // the pair: its label (by index and name), whether it was given, and the fix chosen
        c.label_index = IT.gold[i]; c.label = L[IT.gold[i]]; c.given = !!IT.given[i];
        c.fix = st === "relabel" ? (IT.given[i] ? "remove" : "add") : null; delete c.original_label;
      }
      if (nt) c.note = nt;
      if (r.t) c.updated_at = new Date(r.t).toISOString();
      out.push([IT.rank[i], c]);
    }
    out.sort(function (a, b) { return a[0] - b[0]; });
    return {dataset: DATA.dataset, dataset_fingerprint: DATA.dataset_fingerprint, kind: DATA.kind, label_names: L,
            exported_at: new Date().toISOString(), corrections: out.map(function (x) { return x[1]; })};
  }
  var EXPORTED = KEY + ":exported", exportedAt = 0;
  try { exportedAt = +(localStorage.getItem(EXPORTED) || 0); } catch (e) { exportedAt = 0; }
  function exportState() {  // how much would be lost with this browser's storage: changes since the last export
    var since = 0, any = false;
    for (var i = 0; i < N; i++) { var r = rec(i); if (r) { any = true; if ((r.t || 0) > exportedAt) since++; } }
    var e = $("export-state");
    e.textContent = !any ? "" : !exportedAt ? "not exported yet" : since ? since + (since === 1 ? " change" : " changes") +
      " since the last export" : "all exported";
    e.classList.toggle("unsaved", any && (!exportedAt || since > 0));
  }
  $("export").addEventListener("click", function () {
    var blob = new Blob([JSON.stringify(corrections(), null, 2) + "\n"], {type: "application/json"});
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob); a.download = "corrections.json";
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(function () { URL.revokeObjectURL(a.href); }, 10000);
    exportedAt = Date.now();
    try { localStorage.setItem(EXPORTED, String(exportedAt)); } catch (e) { /* the warning about storage is shown */ }
    exportState();
  });

  // -- load an exported file back --------------------------------------------------------------------
  function loadCorrections(obj, name) {
    var done = {taken: 0, same: 0, newer: 0, gone: 0, changed: 0, bad: 0};
    if (!obj || typeof obj !== "object" || !Array.isArray(obj.corrections))
      return showLoaded(name + " is not a corrections file (no \u201ccorrections\u201d list): nothing loaded.", true);
    if (obj.kind && DATA.kind && obj.kind !== DATA.kind)
      return showLoaded(name + " was made on a " + obj.kind + " run's page, this is a " + DATA.kind + " run's: nothing loaded.", true);
    if (Array.isArray(obj.label_names) && obj.label_names.join("\u0000") !== L.join("\u0000"))
      return showLoaded(name + " was made for other labels (" + obj.label_names.join(", ") + "): nothing loaded.", true);
    obj.corrections.forEach(function (c) {
      if (!c || typeof c !== "object") { done.bad++; return; }
      var g = String(c.guid) + (WORDS ? "#" + c.word_index : TOG ? "#" + c.label : ""), pos = Object.prototype.hasOwnProperty.call(KEYPOS, g) ? KEYPOS[g] : -1;
      if (pos < 0) { done.gone++; return; }
      if (c.example_fingerprint !== IT.fp[pos]) { done.changed++; return; }  // never on another text
      var a = c.action === undefined ? null : c.action, nt = typeof c.note === "string" ? c.note : "";
      if (["relabel", "keep", "unsure", null].indexOf(a) < 0 || (a === null && !nt) ||
          (a === "relabel" && (L.indexOf(c.label) < 0 || (c.label === L[IT.gold[pos]]) !== TOG))) { done.bad++; return; }
      var next = {action: a, label: a === "relabel" ? c.label : a === "keep" ? L[IT.gold[pos]] : null, note: nt};
      var when = Date.parse(c.updated_at) || 0, r = rec(pos);
      if (r && (r.action || null) === next.action && (r.action ? r.label : null) === next.label &&
          (r.note || "") === next.note) { done.same++; return; }
      if (r && (r.t || 0) > when) { done.newer++; return; }  // made here after the file's choice
      var before = {action: r && r.action ? r.action : null, label: r && r.action ? r.label : null, note: r ? r.note || "" : ""};
      undoStack.push({pos: pos, before: before});
      put(pos, next, when || Date.now());
      done.taken++;
    });
    var parts = [done.taken + (done.taken === 1 ? " choice" : " choices") + " loaded from " + name];
    if (done.same) parts.push(done.same + " already here");
    if (done.newer) parts.push(done.newer + " kept as made here later");
    if (done.changed) parts.push(done.changed + " skipped: the example's text or label changed since");
    if (done.gone) parts.push(done.gone + " skipped: not on this page");
    if (done.bad) parts.push(done.bad + " skipped: not a valid choice");
    if (obj.dataset_fingerprint && DATA.dataset_fingerprint && obj.dataset_fingerprint !== DATA.dataset_fingerprint)
      parts.push("the file was made on another version of the data: only unchanged examples were taken");
    showLoaded(parts.join(" \u00b7 ") + ".", done.changed + done.gone + done.bad > 0);
    $("undo").disabled = !undoStack.length;
    render(); progress(); exportState();
    if (map) map.draw();
  }
  function showLoaded(text, warnLook) {
    var p = $("loaded");
    p.textContent = text; p.hidden = false; p.classList.toggle("warn", !!warnLook);
  }
  $("load").addEventListener("click", function () { $("load-file").value = ""; $("load-file").click(); });
  $("load-file").addEventListener("change", function () {
    var f = this.files && this.files[0];
    if (!f) return;
    var reader = new FileReader();
    reader.onload = function () {
      var obj = null;
      try { obj = JSON.parse(String(reader.result)); } catch (e) { return showLoaded(f.name + " is not valid JSON: nothing loaded.", true); }
      loadCorrections(obj, f.name);
    };
    reader.onerror = function () { showLoaded(f.name + " could not be read: nothing loaded.", true); };
    reader.readAsText(f);
  });
  $("clear-all").addEventListener("click", function () {
    var mine = [];
    for (var i = 0; i < N; i++) if (rec(i)) mine.push(i);
    if (!mine.length || !window.confirm("Forget the choices and notes of " + mine.length + " examples on this page?")) return;
    mine.forEach(function (i) { delete store[KEYS[i]]; });
    undoStack = []; save(); render(); progress(); exportState(); $("undo").disabled = true;
    if (map) map.draw();
  });
  $("undo").addEventListener("click", undo);

  // -- data map --------------------------------------------------------------------------------------
  var M = DATA.map, map = null, SUSPICIOUS = FLAGS.filter(function (f) { return f.name === "is_label_issue"; })[0];
  if (M) {
    $("map-wrap").hidden = false;
    if (window.innerWidth < 1000) $("map-details").open = false;
    map = TDDataMap({
      canvas: $("map"), legend: $("map-legend"), tip: $("tip"), resetButton: $("map-reset"), boxButton: $("map-box"),
      x: M.x, y: M.y, bgX: M.bg_x, bgY: M.bg_y,
      color: function (i) { return GEN ? (SUSPICIOUS && SUSPICIOUS.values[i] === true ? "#dc2626" : "#2563eb") : color(IT.gold[i]); },
      look: function (i) { return !inView[i] ? "faint" : status(i) ? "hollow" : "full"; },
      legendItems: (GEN ? (SUSPICIOUS ? [{label: SUSPICIOUS.label, color: "#dc2626"}, {label: "other responses", color: "#2563eb"}]
                                      : [{label: "responses", color: "#2563eb"}])
                        : SHOW.map(function (n, c) { return {label: "gold " + n, color: color(c)}; })).concat([
        {label: "reviewed", color: "#6b7280", kind: "hollow"}, {label: "filtered out", color: "#6b7280", kind: "faint"},
        {label: "rest of the run (" + M.bg_x.length + " of " + M.total + ")", color: "#94a3b8", kind: "bg"}]),
      tipText: function (i) {
        if (GEN) return "#" + IT.rank[i] + "  learned " + (LEARNED && LEARNED.values[i] !== null ? (100 * LEARNED.values[i]).toFixed(0) + "%" : "\u2013") + "\n" + IT.text[i];
        return "#" + IT.rank[i] + "  gold " + SHOW[IT.gold[i]] + " \u00b7 pred " + SHOW[IT.predicted[i]] + "\n" + IT.text[i];
      },
      onClick: jumpTo,
      onSelect: function (list) { setMapSel(list); }
    });
  }

  // -- start -----------------------------------------------------------------------------------------
  var sort = $("sort");
  opt(sort, "rank", "most suspicious first");
  METRICS.forEach(function (m, k) { opt(sort, "m:" + k + ":desc", m.label + " \u2193 high first"); opt(sort, "m:" + k + ":asc", m.label + " \u2191 low first"); });
  if (!GEN) { opt(sort, "gold", "gold label"); opt(sort, "predicted", "predicted label"); }
  if (GEN) {
    Array.prototype.forEach.call(document.querySelectorAll(".cls-only"), function (e) { e.hidden = true; });
    $("o-relabel").textContent = "dropped";
  }
  METRICS.forEach(function (m, k) { opt($("f-metric"), String(k), m.label); });
  FLAGS.forEach(function (f, k) { opt($("f-flag"), k + ":1", f.label); opt($("f-flag"), k + ":0", "not " + f.label); opt(sort, "f:" + k, f.label + " first"); });
  $("flag-wrap").hidden = !FLAGS.length;
  SHOW.forEach(function (n, c) { opt($("f-gold"), String(c), n); opt($("f-pred"), String(c), n); });
  var regions = [];
  IT.region.forEach(function (r) { if (regions.indexOf(r) < 0) regions.push(r); });
  if (regions.length === 1 && regions[0] === "") $("region-wrap").hidden = true;
  else opt(sort, "region", "region");
  regions.sort().forEach(function (r) { opt($("f-region"), r === "" ? "(none)" : r, r === "" ? "(none)" : r); });
  ["sort", "f-gold", "f-pred", "f-region", "f-agree", "f-status", "f-flag", "f-metric"].forEach(function (id) { $(id).addEventListener("change", computeView); });
  ["f-min", "f-max", "f-text"].forEach(function (id) { $(id).addEventListener("input", computeView); });
  $("map-clear").addEventListener("click", function () { setMapSel(null); });
  $("prev-page").addEventListener("click", function () { moveFocus(-(focus % PAGE) - PAGE); });
  $("next-page").addEventListener("click", function () { moveFocus(PAGE - (focus % PAGE)); });
  if (!storageOk) warn("This browser does not keep the choices (localStorage is off): export before closing the page.");
  if (!N) $("load").disabled = true;
  keysHelp(); progress(); exportState(); computeView();
  document.body.setAttribute("data-ready", "1");
})();
