/* The data map: one canvas scatter of variability (x) against confidence (y), shared by the review
 * page and the interactive data map page.
 *
 * TDDataMap(o) draws point i at (o.x[i], o.y[i]) (null: not on the map) over optional grey background
 * points (o.bgX, o.bgY), coloured by o.color(i) and drawn as o.look(i): "full", "faint" or "hollow".
 * A legend (o.legendItems: {label, color, kind}) goes into o.legend, a tooltip (o.tipText(i)) into
 * o.tip. The wheel zooms around the cursor, a drag pans, o.resetButton shows the whole map again.
 * With o.onSelect, shift+drag (or a drag while o.boxButton is pressed) selects a box and calls
 * o.onSelect(indices of the points in it). A click on a point calls o.onClick(i).
 * Every string reaches the DOM through textContent. The canvas publishes its current view as
 * data-layout (JSON: margins in canvas pixels, data range shown) and the highlighted point as
 * data-highlight.
 */
"use strict";
function TDDataMap(o) {
  var cv = o.canvas, ctx = cv.getContext("2d"), P = {l: 46, r: 12, t: 12, b: 34};
  var X = o.x, Y = o.y, N = X.length, BX = o.bgX || [], BY = o.bgY || [];
  var color = o.color || function () { return "#2563eb"; };
  var look = o.look || function () { return "full"; };
  var radius = o.radius || (N > 20000 ? 1.5 : N > 2000 ? 2.5 : 3.5);
  var full = fullView(), view = copy(full), highlight = -1, selBox = null, drag = null, boxMode = false, pending = false;

  function copy(v) { return {x0: v.x0, x1: v.x1, y0: v.y0, y1: v.y1}; }
  function fullView() {
    var big = 0, i;
    for (i = 0; i < N; i++) if (X[i] !== null && X[i] > big) big = X[i];
    for (i = 0; i < BX.length; i++) if (BX[i] !== null && BX[i] > big) big = BX[i];
    var xmax = Math.max(0.05, Math.ceil(20 * big * 1.02) / 20);
    return {x0: -0.02 * xmax, x1: xmax, y0: -0.03, y1: 1.03};
  }
  function plotW() { return cv.width - P.l - P.r; }
  function plotH() { return cv.height - P.t - P.b; }
  function sx(x) { return P.l + plotW() * (x - view.x0) / (view.x1 - view.x0); }
  function sy(y) { return cv.height - P.b - plotH() * (y - view.y0) / (view.y1 - view.y0); }
  function dx(px) { return view.x0 + (px - P.l) * (view.x1 - view.x0) / plotW(); }
  function dy(py) { return view.y0 + (cv.height - P.b - py) * (view.y1 - view.y0) / plotH(); }
  function publish() {
    cv.setAttribute("data-layout", JSON.stringify({left: P.l, right: P.r, top: P.t, bottom: P.b,
      x0: view.x0, x1: view.x1, y0: view.y0, y1: view.y1}));
  }
  function schedule() {
    if (pending) return;
    pending = true;
    window.requestAnimationFrame(draw);
  }
  function changed() { publish(); schedule(); }

  // -- drawing ------------------------------------------------------------------------------------
  function ticks(a, b) {
    var raw = (b - a) / 5, p = Math.pow(10, Math.floor(Math.log10(raw))), m = raw / p;
    var step = (m >= 5 ? 5 : m >= 2 ? 2 : 1) * p, out = [];
    for (var t = Math.ceil(a / step) * step; t <= b + step * 1e-9; t += step) out.push(Math.abs(t) < step * 1e-9 ? 0 : t);
    return {values: out, digits: Math.max(0, Math.ceil(-Math.log10(step) - 1e-9))};
  }
  function line(x0, y0, x1, y1) { ctx.beginPath(); ctx.moveTo(x0, y0); ctx.lineTo(x1, y1); ctx.stroke(); }
  function drawAxes() {
    var w = cv.width, h = cv.height, k, t;
    ctx.font = "11px sans-serif"; ctx.lineWidth = 1; ctx.strokeStyle = "#eceef2"; ctx.fillStyle = "#6b7280";
    t = ticks(view.x0, view.x1);
    for (k = 0; k < t.values.length; k++) {
      line(sx(t.values[k]), P.t, sx(t.values[k]), h - P.b);
      ctx.fillText(t.values[k].toFixed(t.digits), sx(t.values[k]) - 10, h - P.b + 14);
    }
    t = ticks(view.y0, view.y1);
    for (k = 0; k < t.values.length; k++) {
      line(P.l, sy(t.values[k]), w - P.r, sy(t.values[k]));
      ctx.fillText(t.values[k].toFixed(t.digits), P.l - 32, sy(t.values[k]) + 4);
    }
    ctx.strokeStyle = "#9ca3af";
    line(P.l, P.t, P.l, h - P.b); line(P.l, h - P.b, w - P.r, h - P.b);
    ctx.fillText("variability", w / 2 - 25, h - 4);
    ctx.save(); ctx.translate(10, P.t + plotH() / 2 + 28); ctx.rotate(-Math.PI / 2); ctx.fillText("confidence", 0, 0); ctx.restore();
  }
  function dot(i, r) {
    var x = sx(X[i]), y = sy(Y[i]);
    ctx.beginPath();
    if (r < 2) ctx.rect(x - r, y - r, 2 * r, 2 * r); else ctx.arc(x, y, r, 0, 2 * Math.PI);
  }
  function draw() {
    pending = false;
    var w = cv.width, h = cv.height, i, k, looks = [], passes = ["faint", "full", "hollow"];
    ctx.clearRect(0, 0, w, h);
    drawAxes();
    ctx.save();
    ctx.beginPath(); ctx.rect(P.l, P.t, plotW(), plotH()); ctx.clip();
    ctx.fillStyle = "rgba(148,163,184,0.45)";
    for (i = 0; i < BX.length; i++) if (BX[i] !== null) ctx.fillRect(sx(BX[i]) - 1, sy(BY[i]) - 1, 2, 2);
    for (i = 0; i < N; i++) looks.push(X[i] === null || Y[i] === null ? null : look(i));
    for (k = 0; k < passes.length; k++) {
      for (i = 0; i < N; i++) {
        if (looks[i] !== passes[k]) continue;
        dot(i, radius);
        if (looks[i] === "hollow") {
          ctx.globalAlpha = 1; ctx.fillStyle = "#fff"; ctx.fill();
          ctx.strokeStyle = color(i); ctx.lineWidth = 1.5; ctx.stroke(); ctx.lineWidth = 1;
        } else {
          ctx.globalAlpha = looks[i] === "faint" ? 0.18 : 0.85; ctx.fillStyle = color(i); ctx.fill();
        }
      }
    }
    ctx.globalAlpha = 1;
    if (highlight >= 0 && X[highlight] !== null && Y[highlight] !== null) {
      ctx.beginPath(); ctx.arc(sx(X[highlight]), sy(Y[highlight]), radius + 5, 0, 2 * Math.PI);
      ctx.strokeStyle = "#111827"; ctx.lineWidth = 2; ctx.stroke(); ctx.lineWidth = 1;
    }
    var b = drag && drag.box && drag.moved ? drag.rect : selBox;
    if (b) {
      ctx.setLineDash([4, 3]); ctx.strokeStyle = "#111827";
      ctx.strokeRect(sx(b.x0), sy(b.y1), sx(b.x1) - sx(b.x0), sy(b.y0) - sy(b.y1));
      ctx.setLineDash([]);
    }
    ctx.restore();
  }

  // -- view changes -------------------------------------------------------------------------------
  function clamp(v) {  // never show more than the whole map, never leave it
    var wx = Math.min(v.x1 - v.x0, full.x1 - full.x0), wy = Math.min(v.y1 - v.y0, full.y1 - full.y0);
    var x0 = Math.min(Math.max(v.x0, full.x0), full.x1 - wx), y0 = Math.min(Math.max(v.y0, full.y0), full.y1 - wy);
    return {x0: x0, x1: x0 + wx, y0: y0, y1: y0 + wy};
  }
  function zoom(cx, cy, f) {
    var wx = Math.max((view.x1 - view.x0) * f, (full.x1 - full.x0) * 1e-3);
    var wy = Math.max((view.y1 - view.y0) * f, (full.y1 - full.y0) * 1e-3);
    var ax = (cx - view.x0) / (view.x1 - view.x0), ay = (cy - view.y0) / (view.y1 - view.y0);
    view = clamp({x0: cx - ax * wx, x1: cx + (1 - ax) * wx, y0: cy - ay * wy, y1: cy + (1 - ay) * wy});
    changed();
  }
  function reset() { view = copy(full); changed(); }

  // -- pointer ------------------------------------------------------------------------------------
  function at(ev) {
    var r = cv.getBoundingClientRect();
    return {x: (ev.clientX - r.left) * cv.width / r.width, y: (ev.clientY - r.top) * cv.height / r.height,
            cx: ev.clientX - r.left, cy: ev.clientY - r.top, w: r.width};
  }
  function nearest(p) {
    var best = -1, bd = 64;
    for (var i = 0; i < N; i++) {
      if (X[i] === null || Y[i] === null) continue;
      var ex = sx(X[i]) - p.x, ey = sy(Y[i]) - p.y, d = ex * ex + ey * ey;
      if (d < bd) { bd = d; best = i; }
    }
    return best;
  }
  function inBox(b) {
    var out = [];
    for (var i = 0; i < N; i++) {
      if (X[i] !== null && Y[i] !== null && X[i] >= b.x0 && X[i] <= b.x1 && Y[i] >= b.y0 && Y[i] <= b.y1) out.push(i);
    }
    return out;
  }
  cv.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    var p = at(ev);
    zoom(dx(p.x), dy(p.y), Math.exp(Math.max(-1, Math.min(1, ev.deltaY * 0.002))));
  }, {passive: false});
  cv.addEventListener("mousedown", function (ev) {
    if (ev.button !== 0) return;
    ev.preventDefault();
    drag = {p: at(ev), view: copy(view), box: !!o.onSelect && (ev.shiftKey || boxMode), moved: false, rect: null};
    if (o.tip) o.tip.hidden = true;
  });
  window.addEventListener("mousemove", function (ev) {
    if (!drag) return;
    var p = at(ev), d = drag;
    if (Math.abs(p.x - d.p.x) + Math.abs(p.y - d.p.y) > 3) d.moved = true;
    if (!d.moved) return;
    if (d.box) {
      d.rect = {x0: dx(Math.min(p.x, d.p.x)), x1: dx(Math.max(p.x, d.p.x)),
                y0: dy(Math.max(p.y, d.p.y)), y1: dy(Math.min(p.y, d.p.y))};
      schedule();
    } else {
      var kx = (d.view.x1 - d.view.x0) / plotW(), ky = (d.view.y1 - d.view.y0) / plotH();
      var ox = (d.p.x - p.x) * kx, oy = (p.y - d.p.y) * ky;
      view = clamp({x0: d.view.x0 + ox, x1: d.view.x1 + ox, y0: d.view.y0 + oy, y1: d.view.y1 + oy});
      changed();
    }
  });
  window.addEventListener("mouseup", function (ev) {
    if (!drag) return;
    var d = drag;
    drag = null;
    if (!d.moved) {
      var i = nearest(at(ev));
      if (i >= 0 && o.onClick) o.onClick(i);
    } else if (d.box && d.rect) {
      selBox = d.rect;
      schedule();
      o.onSelect(inBox(selBox));
    }
  });
  cv.addEventListener("mousemove", function (ev) {
    if (drag || !o.tip || !o.tipText) return;
    var p = at(ev), i = nearest(p);
    if (i < 0) { o.tip.hidden = true; return; }
    o.tip.textContent = o.tipText(i);
    o.tip.style.left = Math.max(0, Math.min(p.cx + 12, p.w - 240)) + "px";
    o.tip.style.top = (p.cy + 12) + "px";
    o.tip.hidden = false;
  });
  cv.addEventListener("mouseleave", function () { if (o.tip) o.tip.hidden = true; });
  if (o.resetButton) o.resetButton.addEventListener("click", reset);
  if (o.boxButton) {
    o.boxButton.addEventListener("click", function () {
      boxMode = !boxMode;
      o.boxButton.setAttribute("aria-pressed", String(boxMode));
      cv.classList.toggle("box-mode", boxMode);
    });
  }

  // -- legend -------------------------------------------------------------------------------------
  if (o.legend && o.legendItems) {
    if (o.legendTitle) { var t = document.createElement("b"); t.textContent = o.legendTitle; o.legend.appendChild(t); }
    o.legendItems.forEach(function (it) {
      var s = document.createElement("span"), sw = document.createElement("span");
      s.className = "lg";
      sw.className = "sw" + (it.kind ? " sw-" + it.kind : "");
      if (it.kind === "hollow") sw.style.borderColor = it.color; else sw.style.backgroundColor = it.color;
      s.appendChild(sw);
      s.appendChild(document.createTextNode(it.label));
      o.legend.appendChild(s);
    });
  }

  publish();
  draw();
  return {
    draw: schedule,
    reset: reset,
    setHighlight: function (i) {
      highlight = i;
      cv.setAttribute("data-highlight", i >= 0 ? String(i) : "");
      schedule();
    },
    clearSelection: function () { selBox = null; schedule(); }
  };
}
