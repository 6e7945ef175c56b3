/* kjob board: its charts, hand-written SVG (docs/board.md says why): a line chart of several
 * runs' curves with real axes and a hover readout, and a metric against one parameter of a
 * campaign's grid. Labels are SVG text nodes: a metric or run name stays text.
 */
window.kjobCharts = (function (D) {
  "use strict";

  var el = D.el, svg = D.svg, clear = D.clear, fmt = D.fmt, isNum = D.isNum, PALETTE = D.PALETTE;

  // "Nice" ticks: steps of 1, 2 or 5 times a power of ten, about `count` of them.
  function niceTicks(lo, hi, count) {
    if (!(hi > lo)) { var pad = Math.abs(lo) * 0.1 || 1; lo -= pad; hi += pad; }
    var raw = (hi - lo) / Math.max(1, count), power = Math.pow(10, Math.floor(Math.log10(raw)));
    var step = [1, 2, 5, 10].map(function (m) { return m * power; }).filter(function (s) { return s >= raw; })[0];
    var first = Math.floor(lo / step) * step, last = Math.ceil(hi / step) * step, ticks = [];
    for (var v = first; v <= last + step / 2; v += step) ticks.push(parseFloat(v.toPrecision(12)));
    return { lo: first, hi: last, ticks: ticks, step: step };
  }
  function tickText(v, step) {
    if (Math.abs(v) < step / 1e6) return "0";
    var a = Math.abs(v);
    if (a >= 1e6 || a < 1e-4) return v.toExponential(1);
    var digits = Math.max(0, -Math.floor(Math.log10(step)));
    return v.toFixed(Math.min(digits, 8));
  }

  function lineChart(box, lines, o) {
    var W = o.width, H = o.height, m = { l: 64, r: 16, t: 14, b: 44 };
    var xsAll = [], ysAll = [];
    lines.forEach(function (l) { l.points.forEach(function (p) { xsAll.push(p[0]); ysAll.push(p[1]); }); });
    if (!xsAll.length) return;
    var xt = niceTicks(Math.min.apply(null, xsAll), Math.max.apply(null, xsAll), 8);
    var yt = niceTicks(Math.min.apply(null, ysAll), Math.max.apply(null, ysAll), 6);
    function X(v) { return m.l + (v - xt.lo) / (xt.hi - xt.lo) * (W - m.l - m.r); }
    function Y(v) { return H - m.b - (v - yt.lo) / (yt.hi - yt.lo) * (H - m.t - m.b); }
    var chart = svg("svg", { "class": "chart", viewBox: "0 0 " + W + " " + H, role: "img",
                             "aria-label": o.y + " against " + o.x });
    yt.ticks.forEach(function (v) {
      chart.appendChild(svg("line", { "class": "grid", x1: m.l, x2: W - m.r, y1: Y(v), y2: Y(v) }));
      chart.appendChild(svg("text", { x: m.l - 6, y: Y(v) + 4, "text-anchor": "end", text: tickText(v, yt.step) }));
    });
    xt.ticks.forEach(function (v) {
      chart.appendChild(svg("line", { "class": "grid", x1: X(v), x2: X(v), y1: m.t, y2: H - m.b }));
      chart.appendChild(svg("text", { x: X(v), y: H - m.b + 16, "text-anchor": "middle", text: tickText(v, xt.step) }));
    });
    chart.appendChild(svg("path", { "class": "axis", d: "M" + m.l + "," + m.t + "V" + (H - m.b) + "H" + (W - m.r), fill: "none" }));
    chart.appendChild(svg("text", { "class": "axis-title", x: (m.l + W - m.r) / 2, y: H - 8, "text-anchor": "middle", text: o.x }));
    chart.appendChild(svg("text", { "class": "axis-title", x: 14, y: (m.t + H - m.b) / 2, "text-anchor": "middle",
      transform: "rotate(-90 14 " + (m.t + H - m.b) / 2 + ")", text: o.y }));
    lines.forEach(function (l) {
      var d = l.points.map(function (p, i) { return (i ? "L" : "M") + X(p[0]).toFixed(1) + "," + Y(p[1]).toFixed(1); }).join("");
      chart.appendChild(svg("path", { "class": "series" + (l.best ? " best" : ""), d: d, stroke: l.color, "data-run": l.id, "data-points": l.points.length },
                            svg("title", { text: l.label })));
      if (l.points.length <= 60) l.points.forEach(function (p) {
        chart.appendChild(svg("circle", { cx: X(p[0]).toFixed(1), cy: Y(p[1]).toFixed(1), r: 2.5, fill: l.color }));
      });
    });
    // the hover readout: each run's value nearest the pointer's x
    var cursor = svg("line", { "class": "cursor", y1: m.t, y2: H - m.b, visibility: "hidden" });
    chart.appendChild(cursor);
    var readout = el("div", { "class": "readout", hidden: true });
    var hit = svg("rect", { x: m.l, y: m.t, width: W - m.l - m.r, height: H - m.t - m.b, fill: "transparent" });
    hit.addEventListener("mousemove", function (e) {
      var r = chart.getBoundingClientRect(), scale = W / r.width;
      var xv = xt.lo + ((e.clientX - r.left) * scale - m.l) / (W - m.l - m.r) * (xt.hi - xt.lo);
      clear(readout);
      var at = null;
      lines.forEach(function (l) {
        var best = l.points[0];
        l.points.forEach(function (p) { if (Math.abs(p[0] - xv) < Math.abs(best[0] - xv)) best = p; });
        at = at === null ? best[0] : at;
        var sw = el("span", { "class": "swatch" });
        sw.style.background = l.color;
        readout.appendChild(el("div", null, sw, l.label + ": ", el("b", { text: fmt(best[1]) }),
          el("span", { "class": "muted", text: "  (" + o.x + " " + fmt(best[0]) + ")" })));
      });
      readout.insertBefore(el("div", { "class": "muted", text: o.y + " at " + o.x + " \u2248 " + fmt(at) }), readout.firstChild);
      cursor.setAttribute("x1", X(at)); cursor.setAttribute("x2", X(at)); cursor.setAttribute("visibility", "visible");
      readout.hidden = false;
      var px = (e.clientX - r.left) + 18, box2 = box.getBoundingClientRect();
      readout.style.left = Math.min(px, box2.width - 260) + "px";
      readout.style.top = Math.max(8, e.clientY - box2.top - 20) + "px";
    });
    hit.addEventListener("mouseleave", function () { readout.hidden = true; cursor.setAttribute("visibility", "hidden"); });
    chart.appendChild(hit);
    box.appendChild(chart);
    box.appendChild(readout);
  }

  // A metric against one parameter of a campaign's grid: numbers on a linear or log axis,
  // anything else as evenly spaced categories.
  function paramChart(dim, points, metric, onPick) {
    var W = 340, H = 240, m = { l: 56, r: 12, t: 24, b: 40 };
    var chart = svg("svg", { "class": "chart param-plot", viewBox: "0 0 " + W + " " + H, "data-param": dim, role: "img",
                             "aria-label": metric + " against " + dim });
    var ys = points.map(function (p) { return p.y; });
    if (!ys.length) {
      chart.appendChild(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", text: "no member has " + metric + " yet" }));
      return chart;
    }
    var numeric = points.every(function (p) { return isNum(p.x); }), cats = [], xf, ticks;
    if (numeric) {
      var xs = points.map(function (p) { return p.x; }), lo = Math.min.apply(null, xs), hi = Math.max.apply(null, xs);
      var log = lo > 0 && hi / lo >= 50;
      if (log) {
        var a = Math.floor(Math.log10(lo)), b = Math.ceil(Math.log10(hi));
        if (a === b) b = a + 1;
        var pa = a - 0.25, pb = b + 0.25;  // room around the end points
        xf = function (v) { return m.l + (Math.log10(v) - pa) / (pb - pa) * (W - m.l - m.r); };
        ticks = []; for (var k = a; k <= b; k++) ticks.push({ v: Math.pow(10, k), t: "1e" + k });
      } else {
        var nt = niceTicks(lo, hi, 5), span = nt.hi - nt.lo, pad = span * 0.06;
        xf = function (v) { return m.l + (v - nt.lo + pad) / (span + 2 * pad) * (W - m.l - m.r); };
        ticks = nt.ticks.map(function (v) { return { v: v, t: tickText(v, nt.step) }; });
      }
    } else {
      points.forEach(function (p) { var t = fmt(p.x); if (cats.indexOf(t) < 0) cats.push(t); });
      xf = function (v) { return m.l + (cats.indexOf(fmt(v)) + 0.5) / cats.length * (W - m.l - m.r); };
      ticks = cats.map(function (c) { return { v: c, t: c }; });
    }
    var yt = niceTicks(Math.min.apply(null, ys), Math.max.apply(null, ys), 4);
    function Y(v) { return H - m.b - (v - yt.lo) / (yt.hi - yt.lo) * (H - m.t - m.b); }
    yt.ticks.forEach(function (v) {
      chart.appendChild(svg("line", { "class": "grid", x1: m.l, x2: W - m.r, y1: Y(v), y2: Y(v) }));
      chart.appendChild(svg("text", { x: m.l - 5, y: Y(v) + 4, "text-anchor": "end", text: tickText(v, yt.step) }));
    });
    ticks.forEach(function (t) {
      var px = numeric ? xf(t.v) : xf(t.v);
      chart.appendChild(svg("line", { "class": "grid", x1: px, x2: px, y1: m.t, y2: H - m.b }));
      chart.appendChild(svg("text", { x: px, y: H - m.b + 14, "text-anchor": "middle", text: String(t.t).slice(0, 14) }));
    });
    chart.appendChild(svg("path", { "class": "axis", d: "M" + m.l + "," + m.t + "V" + (H - m.b) + "H" + (W - m.r), fill: "none" }));
    chart.appendChild(svg("text", { "class": "axis-title", x: (m.l + W - m.r) / 2, y: H - 6, "text-anchor": "middle", text: dim }));
    chart.appendChild(svg("text", { "class": "axis-title", x: 12, y: (m.t + H - m.b) / 2, "text-anchor": "middle",
      transform: "rotate(-90 12 " + (m.t + H - m.b) / 2 + ")", text: metric }));
    var stages = [];
    points.forEach(function (p) {
      if (stages.indexOf(p.stage) < 0) stages.push(p.stage);
      var c = svg("circle", { "class": "point", cx: xf(p.x).toFixed(1), cy: Y(p.y).toFixed(1), r: 5, "fill-opacity": 0.8,
        fill: PALETTE[stages.indexOf(p.stage) % PALETTE.length], "data-run": p.run },
        svg("title", { text: p.label + ": " + fmt(p.y) }));
      if (p.run) { c.style.cursor = "pointer"; c.addEventListener("click", function () { onPick(p.run); }); }
      chart.appendChild(c);
    });
    if (stages.length > 1) {  // which colour is which stage
      var lx = m.l + 6;
      stages.forEach(function (s, i) {
        chart.appendChild(svg("circle", { cx: lx, cy: m.t - 12, r: 4, fill: PALETTE[i % PALETTE.length] }));
        var label = svg("text", { x: lx + 7, y: m.t - 8, text: s });
        chart.appendChild(label);
        lx += 18 + 7 * s.length;
      });
    }
    return chart;
  }

  return { niceTicks: niceTicks, tickText: tickText, lineChart: lineChart, paramChart: paramChart };
})(window.kjobDom);
