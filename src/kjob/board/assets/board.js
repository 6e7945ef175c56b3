/* kjob board: the page's state, the runs table and the curves, drawn from data.js; the campaign
 * view and the run page are pages.js's, the --where conditions and sorting query.js's.
 *
 * Every value that comes from a run (names, notes, tags, messages, parameters, metric names)
 * goes into the page as text (textContent, createTextNode) or as an attribute set one by one;
 * nothing is parsed as markup. Charts are hand-written SVG (charts.js). The page polls data.js (a
 * <script> re-inserted with a cache-busting query: fetch() is refused from file://) and
 * redraws in place when its stamp changes. State lives in the URL's fragment (#view=...&sort=...)
 * so that a view can be bookmarked and reloaded.
 */
(function () {
  "use strict";

  var PAGE = 100;  // table rows per page
  var POLL_MS = 3000;
  var MAX_PLOTTED = 8;  // runs plotted by default
  var board = null;       // data.js's content
  var byId = {};          // run id -> row
  var details = {};       // run id -> runs/<id>.js content
  var asked = {};         // run id -> the detail stamp asked for
  var state = {};         // the fragment's keys
  var hidden = {};        // run ids switched off in the curves' legend

  // the shared helpers (dom.js) and charts (charts.js), loaded before this file
  var D = window.kjobDom, C = window.kjobCharts;
  var el = D.el, add = D.add, clear = D.clear, isNum = D.isNum, fmt = D.fmt, duration = D.duration, when = D.when,
      PALETTE = D.PALETTE;
  var lineChart = C.lineChart;

  function statusBadge(status) {
    return el("span", { "class": "status " + String(status).split(" ")[0], text: status });
  }
  // Which way a metric is better: what the recipes and evaluators declared (data.js), the
  // declared way of NAME.best for a curve NAME, else by its name (kjob.metrics.name_mode).
  function mode(name) {
    var modes = board.modes || {};
    if (modes[name]) return modes[name];
    if (modes[name + ".best"]) return modes[name + ".best"];
    var words = String(name).toLowerCase().match(/[a-z]+/g) || [];
    return words.some(function (w) {
      return w.indexOf("loss") >= 0 || w.slice(0, 3) === "err" || w === "mae" || w === "rmse" || w === "wer";
    }) ? "min" : "max";
  }
  function runLink(id, text) {
    return el("a", { href: "#view=run&run=" + id, text: text });
  }

  // -- state in the fragment ----------------------------------------------------------------

  function readState() {
    state = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (part) {
      if (!part) return;
      var i = part.indexOf("=");
      var k = decodeURIComponent(i < 0 ? part : part.slice(0, i));
      state[k] = i < 0 ? "" : decodeURIComponent(part.slice(i + 1).replace(/\+/g, " "));
    });
    if (!state.view) state.view = "runs";
  }
  function go(changes, replace) {
    var next = {};
    Object.keys(state).forEach(function (k) { next[k] = state[k]; });
    Object.keys(changes).forEach(function (k) {
      if (changes[k] === null || changes[k] === "") delete next[k]; else next[k] = changes[k];
    });
    var text = "#" + Object.keys(next).map(function (k) {
      return encodeURIComponent(k) + "=" + encodeURIComponent(next[k]);
    }).join("&");
    if (replace) { history.replaceState(null, "", text); render(); } else location.hash = text;
  }

  // -- the selection every view shares ----------------------------------------------------------

  function selected() {
    var runs = board.runs, problem = null;
    try {
      var conditions = parseWhere(state.where || "");
      runs = runs.filter(function (r) { return conditions.every(function (c) { return holds(c, r); }); });
    } catch (e) { problem = e.message; runs = board.runs; }
    if (state.sort) {
      try { runs = sortRuns(runs, state.sort); } catch (e) { problem = problem || e.message; }
    }
    return { runs: runs, problem: problem };
  }
  function bestRun(runs) {
    var metric = board.primary;
    if (!metric) return null;
    var best = null;
    runs.forEach(function (r) {
      var v = r.metrics[metric];
      if (!isNum(v)) return;
      if (best === null || (mode(metric) === "min" ? v < best.metrics[metric] : v > best.metrics[metric])) best = r;
    });
    return best;
  }

  // -- the runs table -----------------------------------------------------------------------------

  function tableColumns() {  // what each column shows and the --where/--sort NAME it stands for
    var cols = [
      { key: "kernel", label: "plot \u00b7 run", sort: "kernel", cell: function (r) {
        var cell = [runLink(r.id, r.ref)];
        if (r.files === "missing" || r.files === "archived" || r.files === "gone")
          cell.push(el("span", { "class": "files", title: {
            missing: "its fetched files were deleted", archived: "packed by kjob runs archive",
            gone: "its kernel is gone and nothing was fetched" }[r.files], text: r.files }));
        return cell;
      } },
      { key: "status", label: "status", sort: "status", cell: function (r) {
        var badge = statusBadge(r.status);
        if (r.failure) badge.setAttribute("title", r.failure);
        return badge;
      } },
      { key: "duration", label: "duration", sort: "duration", num: true, cell: function (r) { return duration(r.duration); } }
    ];  // newest first unless sorted: the run page says when each was created
    board.columns.params.forEach(function (p) {
      var numeric = board.runs.every(function (r) { var v = r.params ? r.params[p] : null; return v === null || v === undefined || isNum(v); });
      cols.push({ key: "param." + p, label: p, sort: "param." + p, num: numeric, text: !numeric, param: true,
                  cell: function (r) { return fmt(r.params ? r.params[p] : null); } });
    });
    board.columns.metrics.forEach(function (m) {
      cols.push({ key: "metric." + m, label: m, sort: "metric." + m, num: true, metric: m,
                  cell: function (r) { return fmt(r.metrics[m]); } });
    });
    var any = function (k) { return board.runs.some(function (r) { var v = COLUMNS[k](r); return v && (!Array.isArray(v) || v.length); }); };
    if (any("campaign")) cols.push({ key: "campaign", label: "campaign", sort: "campaign", cell: function (r) {
      return r.campaign ? [r.campaign, r.stage ? el("span", { "class": "muted", text: " / " + r.stage }) : null] : "";
    } });
    if (any("inputs")) cols.push({ key: "inputs", label: "inputs", sort: "inputs", text: true, cell: function (r) {
      return (r.inputs || []).map(function (i, n) { return [n ? ", " : "", i.run ? runLink(i.run, i.label) : i.label]; });
    } });
    if (any("tags")) cols.push({ key: "tags", label: "tags", sort: "tags", cell: function (r) {
      return r.tags.map(function (t) { return el("span", { "class": "tag", text: t }); });
    } });
    // one column for why it was pushed and what it taught (the run page shows both whole)
    cols.push({ key: "message", label: any("note") ? "message \u00b7 note" : "message", sort: "message", text: true, wide: true,
                cell: function (r) {
      return [r.message || "", r.note ? el("span", { "class": "muted", text: (r.message ? " \u00b7 " : "") + r.note }) : null];
    } });
    return cols;
  }

  function renderRuns(root) {
    var sel = selected(), runs = sel.runs, best = bestRun(runs);
    var cols = tableColumns();
    var input = el("input", { type: "text", id: "where", spellcheck: "false", value: state.where || "",
      placeholder: "filter as kjob runs --where: e.g.  val_acc>0.8; status=complete; tags=baseline   (; between conditions)" });
    input.addEventListener("keydown", function (e) { if (e.key === "Enter") go({ where: input.value, page: null }); });
    var apply = el("button", { onclick: function () { go({ where: input.value, page: null }); }, text: "Filter" });
    var reset = el("button", { onclick: function () { go({ where: null, sort: null, page: null }); }, text: "Reset" });
    root.appendChild(el("div", { "class": "bar" }, input, apply, reset,
      el("span", { id: "count", "class": "muted", "data-shown": runs.length, "data-total": board.runs.length,
                   text: runs.length + " of " + board.runs.length + " run(s)" })));
    if (sel.problem) root.appendChild(el("p", { "class": "error", id: "where-error", text: sel.problem }));
    if (best) {
      root.appendChild(el("div", { "class": "best-line", id: "best" }, "Best by ", el("b", { text: board.primary }),
        " (" + (mode(board.primary) === "min" ? "lowest" : "highest") + "): ", runLink(best.id, best.ref), " ",
        el("b", { text: fmt(best.metrics[board.primary]) }), "  ",
        plottable(best) ? el("a", { href: "#view=curves&runs=" + best.id, text: "its curves \u2192" }) : null));
    }
    var sortNow = state.sort ? sortSpec(state.sort) : null;
    var head = el("tr");
    cols.forEach(function (c) {
      var cls = (c.num ? "num " : "") + (c.metric ? "group-metric " : "");
      if (sortNow && ((sortNow.name === c.sort) || (c.metric && sortNow.field.kind === "metric" && sortNow.field.name === c.metric) ||
                      (c.param && sortNow.field.kind === "param" && "param." + sortNow.field.name === c.sort)))
        cls += sortNow.descending ? "sorted-desc" : "sorted-asc";
      head.appendChild(el("th", { "class": cls, "data-sort": c.sort, title: "sort by " + c.label, text: c.label, onclick: function () {
        var current = state.sort || "", next;
        if (c.metric) next = current === c.sort ? (mode(c.metric) === "max" ? "+" : "-") + c.sort : c.sort;
        else next = current === "+" + c.sort ? "-" + c.sort : "+" + c.sort;
        go({ sort: next, page: null });
      } }));
    });
    var plotted = plottedIds(runs);
    var page = Math.max(0, Math.min(parseInt(state.page || "0", 10) || 0, Math.floor((runs.length - 1) / PAGE)));
    var body = el("tbody");
    runs.slice(page * PAGE, page * PAGE + PAGE).forEach(function (r) {
      var box = el("input", { type: "checkbox", "class": "plot", title: plottable(r) ? "plot this run" : "no curves here (not fetched)",
                              disabled: !plottable(r), checked: plotted.indexOf(r.id) >= 0 });
      box.addEventListener("change", function () { togglePlot(r.id, box.checked, runs); });
      var tr = el("tr", { "data-run": r.id, "data-ref": r.ref, "class": best && best.id === r.id ? "best" : null });
      cols.forEach(function (c, i) {
        var td = el("td", { "class": c.num ? "num" : null });
        // a table cell's max-width is not binding: text is clipped by a box of its own
        var holder = c.text ? el("div", { "class": "clip" + (c.wide ? " wide" : "") }) : td;
        if (i === 0) add(holder, [box, " "]);  // the run's plot box, before its name
        add(holder, c.cell(r));
        if (c.text) { td.appendChild(holder); td.setAttribute("title", holder.textContent); }
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    root.appendChild(el("div", { "class": "table-wrap" }, el("table", { "class": "runs", id: "runs" }, el("thead", null, head), body)));
    var pages = Math.max(1, Math.ceil(runs.length / PAGE));
    root.appendChild(el("div", { "class": "pager" },
      el("button", { disabled: page === 0, onclick: function () { go({ page: page - 1 }); }, text: "\u2190 newer" }),
      el("span", { id: "page", text: "page " + (page + 1) + " of " + pages }),
      el("button", { disabled: page >= pages - 1, onclick: function () { go({ page: page + 1 }); }, text: "older \u2192" }),
      el("span", { "class": "muted", text: "(" + PAGE + " rows a page; click a header to sort, again to reverse)" })));
  }

  // -- curves -------------------------------------------------------------------------------------

  function plottedIds(runs) {
    if (state.runs !== undefined) return state.runs.split(",").map(Number).filter(function (id) { return byId[id]; });
    var ordered = state.sort || !board.primary ? runs : sortRuns(runs, board.primary);
    return ordered.filter(plottable).slice(0, MAX_PLOTTED).map(function (r) { return r.id; });
  }
  // a run whose curves may be here: its files fetched (or its sandbox, in flight)
  function plottable(r) { return r.detail && (r.files === "ok" || r.files === "live"); }
  function togglePlot(id, on, runs) {
    var ids = plottedIds(runs).filter(function (x) { return x !== id; });
    if (on) ids.push(id);
    go({ runs: ids.join(",") }, true);
  }
  function needDetail(id) {
    var row = byId[id];
    if (!row || !row.detail) return false;
    var stamp = row.dstamp || "1";
    if (details[id] && details[id].stamp === stamp) return false;
    if (asked[id] === stamp) return true;
    asked[id] = stamp;
    var script = document.createElement("script");
    script.src = "runs/" + id + ".js?s=" + encodeURIComponent(stamp);
    script.onload = script.onerror = function () { script.remove(); };
    document.body.appendChild(script);
    return true;
  }

  function seriesNames(ids) {
    var names = {};
    ids.forEach(function (id) { if (details[id]) Object.keys(details[id].data.series || {}).forEach(function (n) { names[n] = 1; }); });
    return Object.keys(names).sort();
  }
  function defaultMetric(names) {
    var primary = board.primary ? board.primary.replace(/\.(best|last)$/, "") : null;
    // how its loss moved: a held-out loss (val_loss, Loss/val, eval_loss, test_loss) before a training one
    var loss = names.filter(function (n) { return /loss/i.test(n); });
    var heldOut = loss.filter(function (n) { return /(^|[^a-z])(val|valid|validation|eval|dev|test)([^a-z]|$)/i.test(n); });
    return (loss.indexOf("val_loss") >= 0 ? "val_loss" : heldOut[0] || loss[0]) ||
      (names.indexOf(primary) >= 0 ? primary : names[0]);
  }

  function renderCurves(root) {
    var sel = selected(), ids = plottedIds(sel.runs), waiting = false;
    ids.forEach(function (id) { waiting = needDetail(id) || waiting; });
    var names = seriesNames(ids);
    var metric = state.metric && names.indexOf(state.metric) >= 0 ? state.metric : defaultMetric(names);
    var hasEpoch = ids.some(function (id) {
      var s = details[id] && details[id].data.series[metric];
      return s && s.some(function (p) { return isNum(p[1]); });
    });
    var x = state.x === "epoch" && hasEpoch ? "epoch" : "step";
    var pick = el("select", { id: "metric", onchange: function () { go({ metric: pick.value }, true); } });
    names.forEach(function (n) { pick.appendChild(el("option", { value: n, selected: n === metric, text: n })); });
    var xs = el("select", { id: "x", onchange: function () { go({ x: xs.value }, true); } },
      el("option", { value: "step", selected: x === "step", text: "x: step" }),
      el("option", { value: "epoch", selected: x === "epoch", disabled: !hasEpoch, text: "x: epoch" }));
    var lines = [];
    ids.forEach(function (id, i) {
      var d = details[id], points = d && d.data.series[metric];
      if (!points) return;
      var pts = [];
      points.forEach(function (p) { var xv = x === "epoch" ? p[1] : p[0]; if (isNum(xv) && isNum(p[2])) pts.push([xv, p[2]]); });
      if (pts.length) lines.push({ id: id, label: byId[id].ref, color: PALETTE[i % PALETTE.length], points: pts });
    });
    root.appendChild(el("div", { "class": "bar" }, el("label", null, "metric ", pick), xs,
      el("span", { "class": "muted", id: "plotted", text: ids.length + " run(s) chosen, " + lines.length + " with " + (metric || "a curve") +
        " here; pick them with the plot boxes of the Runs tab" +
        (state.where ? " (filter: " + state.where + ")" : "") })));
    var layout = el("div", { "class": "chart-layout" });
    var box = el("div", { "class": "chart-box", id: "curves" });
    layout.appendChild(box);
    var legend = el("div", { "class": "legend", id: "legend" });
    layout.appendChild(legend);
    root.appendChild(layout);
    if (!lines.length) {
      box.appendChild(el("p", { "class": "muted", text: waiting ? "loading curves\u2026" :
        "No curves: none of the plotted runs has a per-step series fetched here (metrics.jsonl, TensorBoard " +
        "events, Lightning's metrics.csv, trainer_state.json or the recipe's [metrics] log patterns)." }));
    }
    var top = bestRun(sel.runs), topId = top ? top.id : null;
    lines.forEach(function (l) { l.best = l.id === topId; });
    // the best run by the board's primary metric: its curve on top of the others, thicker
    var shown = lines.filter(function (l) { return !hidden[l.id] && !l.best; })
      .concat(lines.filter(function (l) { return !hidden[l.id] && l.best; }));
    if (lines.length) lineChart(box, shown, { width: 1040, height: 500, x: x, y: metric });
    lines.forEach(function (l) {
      var last = l.points[l.points.length - 1][1];
      var row = byId[l.id], what = row.campaign ? (row.stage || row.campaign) + " " : "";
      what += COLUMNS.parameters(row) || "";
      var sw = el("span", { "class": "swatch" });
      sw.style.background = l.color;
      legend.appendChild(el("div", { "class": (hidden[l.id] ? "off" : "") + (l.best ? " best" : ""), "data-run": l.id,
        title: l.label + (what ? "  " + what : "") + "  (click: show or hide)",
        onclick: function () { hidden[l.id] = !hidden[l.id]; render(); } },
        sw, el("span", { "class": "val", text: fmt(last) }), l.label,
        l.best ? el("span", { "class": "best-mark", title: "best by " + board.primary, text: " \u2605 best " + board.primary }) : null,
        what ? el("div", { "class": "sub muted", text: what }) : null));
    });
    if (lines.length) legend.appendChild(el("p", { "class": "muted", text: "last value on the right; " +
      (mode(metric) === "min" ? "lower" : "higher") + " is better" }));
  }

  // -- drawing and refreshing ------------------------------------------------------------------

  // the views in pages.js, and the query (query.js), read this file's state when they draw
  var K = { board: function () { return board; }, byId: function () { return byId; },
            details: function () { return details; }, state: function () { return state; },
            mode: mode, go: go, statusBadge: statusBadge, runLink: runLink, plottable: plottable,
            needDetail: needDetail, defaultMetric: defaultMetric };
  var Q = window.kjobQuery(K), COLUMNS = Q.COLUMNS, parseWhere = Q.parseWhere, holds = Q.holds,
      sortSpec = Q.sortSpec, sortRuns = Q.sortRuns;
  var pages = window.kjobPages(K);
  var VIEWS = { runs: renderRuns, curves: renderCurves, campaigns: pages.campaigns, run: pages.run };

  function render() {
    if (!board) return;
    readState();
    var view = VIEWS[state.view] ? state.view : "runs";
    var scroll = window.scrollY;
    Array.prototype.forEach.call(document.querySelectorAll("#tabs a"), function (a) {
      a.className = a.getAttribute("data-view") === view ? "on" : "";
      var keep = ["where", "sort", "runs", "metric", "x", "campaign"].filter(function (k) { return state[k] !== undefined; });
      a.setAttribute("href", "#view=" + a.getAttribute("data-view") + keep.map(function (k) {
        return "&" + k + "=" + encodeURIComponent(state[k]);
      }).join(""));
    });
    Object.keys(VIEWS).forEach(function (v) {
      var section = document.getElementById("view-" + v);
      section.hidden = v !== view;
      if (v !== view) clear(section);
    });
    var root = clear(document.getElementById("view-" + view));
    var focused = document.activeElement && document.activeElement.id;
    VIEWS[view](root);
    if (focused === "where") { var w = document.getElementById("where"); if (w) w.focus(); }
    window.scrollTo(0, scroll);
    document.body.setAttribute("data-view", view);
    document.body.setAttribute("data-stamp", board.stamp || "");
  }

  window.kjobBoard = function (data) {
    if (board && board.stamp === data.stamp) return;
    board = data;
    byId = {};
    board.runs.forEach(function (r) { byId[r.id] = r; });
    var loading = document.getElementById("loading");
    if (loading) loading.remove();
    document.getElementById("workspace").textContent = board.workspace +
      (board.query.kernel ? " \u00b7 kernel " + board.query.kernel : "") +
      (board.query.campaign ? " \u00b7 campaign " + board.query.campaign : "") +
      (board.query.where.length ? " \u00b7 where " + board.query.where.join(", ") : "");
    document.getElementById("freshness").textContent = board.runs.length + " run(s)" +
      (board.as_of ? " \u00b7 latest change " + when(board.as_of) : "") + " \u00b7 checked " + when(Date.now() / 1000);
    render();
  };
  window.kjobRun = function (id, data) {
    var row = byId[id];
    details[id] = { stamp: row ? row.dstamp || "1" : "1", data: data };
    render();
  };

  function poll() {
    var script = document.createElement("script");
    script.src = "data.js?t=" + Date.now();
    script.onload = script.onerror = function () {
      script.remove();
      if (board) document.getElementById("freshness").textContent = board.runs.length + " run(s)" +
        (board.as_of ? " \u00b7 latest change " + when(board.as_of) : "") + " \u00b7 checked " + when(Date.now() / 1000);
    };
    document.body.appendChild(script);
  }
  window.addEventListener("hashchange", render);
  setInterval(poll, POLL_MS);
})();
