/* kjob board: the runs table, curves, campaigns and run pages, drawn from data.js.
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
  // The run's own columns `kjob runs --where` knows (kjob.runquery.RUN_COLUMNS).
  var COLUMNS = {
    kernel: function (r) { return r.kernel; }, version: function (r) { return r.version; },
    backend: function (r) { return r.backend; }, status: function (r) { return r.status; },
    duration: function (r) { return r.duration; }, created: function (r) { return r.created; },
    started: function (r) { return r.started; }, finished: function (r) { return r.finished; },
    parameters: function (r) {
      var keys = Object.keys(r.overrides || {}).sort();
      return keys.length ? keys.map(function (k) { return k + "=" + r.overrides[k]; }).join(" ") : null;
    },
    notebook: function (r) { return r.notebook; }, commit: function (r) { return r.commit; },
    message: function (r) { return r.message; }, note: function (r) { return r.note; },
    tags: function (r) { return r.tags; }, archived: function (r) { return r.files === "archived"; },
    campaign: function (r) { return r.campaign; }, stage: function (r) { return r.stage; },
    inputs: function (r) { return r.inputs ? r.inputs.map(function (i) { return i.label; }).join(", ") : null; },
    input: function (r) { return r.input_names || null; }  // every name of each input: input=train:v3
  };
  var TIMES = { created: 1, started: 1, finished: 1 };
  var CONDITION = /^\s*([^<>=!\s]+)\s*(<=|>=|!=|==|=|<|>)\s*(.*?)\s*$/;  // kjob.runquery._CONDITION
  var BOOLS = { "true": true, "yes": true, "1": true, "false": false, "no": false, "0": false };
  var COMPARE = {
    "<": function (a, b) { return a < b; }, "<=": function (a, b) { return a <= b; },
    ">": function (a, b) { return a > b; }, ">=": function (a, b) { return a >= b; },
    "=": function (a, b) { return a === b; }, "==": function (a, b) { return a === b; },
    "!=": function (a, b) { return a !== b; }
  };

  var board = null;       // data.js's content
  var byId = {};          // run id -> row
  var details = {};       // run id -> runs/<id>.js content
  var asked = {};         // run id -> the detail stamp asked for
  var state = {};         // the fragment's keys
  var hidden = {};        // run ids switched off in the curves' legend

  // the shared helpers (dom.js) and charts (charts.js), loaded before this file
  var D = window.kjobDom, C = window.kjobCharts;
  var el = D.el, add = D.add, clear = D.clear, isNum = D.isNum, href = D.href, fmt = D.fmt,
      duration = D.duration, when = D.when, size = D.size, PALETTE = D.PALETTE;
  var lineChart = C.lineChart, paramChart = C.paramChart;

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

  // -- --where, as kjob runs reads it (kjob.runquery) -----------------------------------------

  function hasMetric(name) { return board.runs.some(function (r) { return r.metrics[name] !== undefined; }); }
  function hasParam(name) { return board.runs.some(function (r) { return r.params && name in r.params; }); }
  function resolve(name) {
    var dot = name.indexOf("."), head = dot < 0 ? name : name.slice(0, dot), rest = dot < 0 ? "" : name.slice(dot + 1);
    if (COLUMNS[name]) return { kind: "column", name: name };
    if (hasMetric(name)) return { kind: "metric", name: name };
    if (head === "metric" && hasMetric(rest)) return { kind: "metric", name: rest };
    if (head === "param" && hasParam(rest)) return { kind: "param", name: rest };
    if (hasMetric(name + ".best")) return { kind: "metric", name: name + ".best" };
    if (hasParam(name)) return { kind: "param", name: name };
    throw new Error("no run has a metric '" + name + "' (nor a parameter or column of that name)");
  }
  function value(field, run) {
    if (field.kind === "column") return COLUMNS[field.name](run);
    var v = (field.kind === "metric" ? run.metrics : run.params || {})[field.name];
    return v === undefined ? null : v;
  }
  function parseWhere(text) {
    return text.split(";").map(function (s) { return s.trim(); }).filter(Boolean).map(function (s) {
      var m = CONDITION.exec(s);
      if (!m || !m[3]) throw new Error("'" + s + "': expected NAME OP VALUE, OP one of < <= > >= = != (e.g. 'lr<0.01')");
      var literal = m[3];
      if (literal.length >= 2 && literal[0] === literal[literal.length - 1] && (literal[0] === "'" || literal[0] === '"'))
        literal = literal.slice(1, -1);
      return { text: s, name: m[1], op: m[2], literal: literal, field: resolve(m[1]) };
    });
  }
  function holds(c, run) {
    var v = value(c.field, run), compare = COMPARE[c.op];
    if (v === null || v === undefined) return false;
    if (Array.isArray(v)) {
      if (c.op !== "=" && c.op !== "==" && c.op !== "!=") throw new Error("'" + c.text + "': " + c.name + " is a list; use = or !=");
      return (v.indexOf(c.literal) >= 0) === (c.op !== "!=");
    }
    if (typeof v === "boolean") {
      var b = BOOLS[c.literal.toLowerCase()];
      if (b === undefined || (c.op !== "=" && c.op !== "==" && c.op !== "!="))
        throw new Error("'" + c.text + "': " + c.name + " is true or false; use = or != with one of those");
      return compare(v, b);
    }
    if (isNum(v)) {
      var n = NaN;
      if (c.field.kind === "column" && TIMES[c.field.name]) n = Date.parse(c.literal) / 1000;
      if (!isFinite(n)) n = Number(c.literal);
      if (c.literal.trim() === "" || !isFinite(n)) throw new Error("'" + c.text + "': " + c.name + " is a number, '" + c.literal + "' is not");
      return compare(v, n);
    }
    return compare(String(v), c.literal);
  }

  // -- sorting (kjob.runquery.sort_runs: missing values last) --------------------------------

  function sortKey(field, run) {
    var v = value(field, run);
    if (field.kind === "column" && field.name === "version") return [0, v === null ? 0 : v];
    if (typeof v === "boolean") return [0, v ? 1 : 0];
    if (isNum(v)) return [0, v];
    if (Array.isArray(v)) return v.length ? [1, v.join(",")] : null;
    return v === null || v === undefined ? null : [1, String(v)];
  }
  function compareKeys(a, b) {
    if (a[0] !== b[0]) return a[0] - b[0];
    return a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0;
  }
  function sortSpec(spec) {
    var sign = spec[0] === "-" || spec[0] === "+" ? spec[0] : "", name = sign ? spec.slice(1) : spec;
    var field = resolve(name);
    var descending = sign === "-" || (!sign && field.kind === "metric" && mode(field.name) === "max");
    return { field: field, descending: descending, sign: sign, name: name };
  }
  function sortRuns(runs, spec) {
    var s = sortSpec(spec), keyed = runs.map(function (r, i) { return { r: r, k: sortKey(s.field, r), i: i }; });
    keyed.sort(function (a, b) {
      if (a.k === null || b.k === null) return a.k === null ? (b.k === null ? a.i - b.i : 1) : -1;
      var c = compareKeys(a.k, b.k);
      return (s.descending ? -c : c) || a.i - b.i;
    });
    return keyed.map(function (x) { return x.r; });
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
    var loss = names.filter(function (n) { return /loss/i.test(n); });
    return (loss.indexOf("val_loss") >= 0 ? "val_loss" : loss[0]) || (names.indexOf(primary) >= 0 ? primary : names[0]);
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
        "No curves: none of the plotted runs has a per-step series (metrics.jsonl) fetched here." }));
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

  // -- campaigns ----------------------------------------------------------------------------------

  function stageState(s) {
    if (s.state !== "open" || !s.members.length) return s.state;
    if (s.members.some(function (m) { return /^(queued|running|submitting)/.test(m.status); })) return "running";
    return s.members.every(function (m) { return m.status === "complete"; }) ? "complete" : "open";
  }
  function renderCampaigns(root) {
    var list = board.campaigns || [];
    if (!list.length) { root.appendChild(el("p", { "class": "muted", text: "No campaign among these runs (kjob sweep NAME runs one)." })); return; }
    var name = state.campaign && list.some(function (c) { return c.name === state.campaign; }) ? state.campaign : list[0].name;
    var c = list.filter(function (x) { return x.name === name; })[0];
    var tabs = el("div", { "class": "bar" });
    list.forEach(function (x) {
      tabs.appendChild(el("button", { "class": x.name === name ? "on" : null, disabled: x.name === name,
        onclick: function () { go({ campaign: x.name }); }, text: x.name }));
    });
    if (list.length > 1) root.appendChild(tabs);
    var counts = {};
    c.stages.forEach(function (s) { s.members.forEach(function (m) { counts[m.status] = (counts[m.status] || 0) + 1; }); });
    root.appendChild(el("h2", { id: "campaign", "data-name": c.name }, "campaign ", c.name,
      el("span", { "class": "muted", text: c.recipe ? "  recipe " + c.recipe + " on " + c.backend +
        (c.metric ? ", ranked by " + c.metric + " (" + (c.mode === "min" ? "lower" : "higher") + " is better)" : "") : "" })));
    var members = [];
    c.stages.forEach(function (s) { s.members.forEach(function (mb) { if (mb.run && byId[mb.run] && plottable(byId[mb.run])) members.push(mb.run); }); });
    root.appendChild(el("p", { "class": "muted" }, Object.keys(counts).map(function (k) { return counts[k] + " " + k; }).join(", ") +
      (c.strays ? "; " + c.strays + " run(s) of this campaign are no member now (the file or the sources changed)" : ""),
      members.length ? ["  \u00b7  ", el("a", { id: "campaign-curves", href: "#view=curves&runs=" + members.join(","),
                                                  text: "its members' curves \u2192" })] : null));
    if (c.error) root.appendChild(el("p", { "class": "error", text: "campaign file: " + c.error + " (its runs are shown by stage)" }));
    var first = c.leaderboard[0];
    if (first) root.appendChild(el("div", { "class": "best-line", id: "campaign-best" }, "Best member by ", el("b", { text: c.metric }),
      " (" + (c.mode === "min" ? "lowest" : "highest") + "): " + first.label + "  ", byId[first.run] ? runLink(first.run, first.ref) : first.ref,
      " ", el("b", { text: fmt(first.value) }), "  ",
      byId[first.run] && plottable(byId[first.run]) ? el("a", { href: "#view=curves&runs=" + first.run, text: "its curves \u2192" }) : null));
    var cards = el("div", { "class": "cards", id: "stages" });
    c.stages.forEach(function (s) {
      var card = el("div", { "class": "card stage", "data-stage": s.name },
        el("h3", null, "stage " + s.name + " ", statusBadge(stageState(s)),
           s.top ? el("span", { "class": "muted", text: "  (top of " + s.top + ")" }) : null));
      if (s.why) card.appendChild(el("p", { "class": "why" + (/does not hold|cannot be judged/.test(s.why) ? " off" : / holds/.test(s.why) ? " held" : ""),
                                            text: s.why }));
      var t = el("table", null, el("thead", null, el("tr", null, el("th", { text: "member" }), el("th", { text: "status" }),
        el("th", { text: "run" }), c.metric ? el("th", { "class": "num", text: c.metric }) : null)));
      var body = el("tbody");
      s.members.forEach(function (mb) {
        body.appendChild(el("tr", { "data-member": mb.label }, el("td", { title: mb.label, text: mb.point_text || mb.label }),
          el("td", null, statusBadge(mb.status), mb.note ? el("span", { "class": "muted", text: " " + mb.note }) : null),
          el("td", null, mb.run ? (byId[mb.run] ? runLink(mb.run, mb.ref) : mb.ref) : "-"),
          c.metric ? el("td", { "class": "num", text: fmt(mb.value) }) : null));
      });
      if (!s.members.length) body.appendChild(el("tr", null, el("td", { "class": "muted", text: "no member yet" })));
      t.appendChild(body);
      card.appendChild(t);
      cards.appendChild(card);
    });
    root.appendChild(cards);
    if (c.metric && c.dims.length) {
      root.appendChild(el("h3", { text: c.metric + " against each parameter of the grid" }));
      var plots = el("div", { "class": "plots", id: "param-plots" });
      c.dims.forEach(function (dim) {
        var pts = [];
        c.stages.forEach(function (s) { s.members.forEach(function (mb) {
          if (isNum(mb.value) && mb.point && dim in mb.point) pts.push({ x: mb.point[dim], y: mb.value, run: mb.run, stage: s.name, label: mb.label });
        }); });
        plots.appendChild(el("div", { "class": "card" }, paramChart(dim, pts, c.metric, function (run) { go({ view: "run", run: run }); })));
      });
      root.appendChild(plots);
    }
    root.appendChild(el("h3", { text: "leaderboard" + (c.metric ? " by " + c.metric : "") }));
    if (!c.leaderboard.length) { root.appendChild(el("p", { "class": "muted", text: "no complete member has the metric yet" })); return; }
    var lb = el("table", { "class": "runs", id: "leaderboard" }, el("thead", null, el("tr", null, el("th", { text: "rank" }),
      el("th", { text: "member" }), el("th", { "class": "num", text: c.metric }), el("th", { text: "run" }))));
    var lbBody = el("tbody");
    c.leaderboard.forEach(function (e) {
      lbBody.appendChild(el("tr", { "class": e.rank === 1 ? "best" : null }, el("td", { text: e.rank }), el("td", { text: e.label }),
        el("td", { "class": "num", text: fmt(e.value) }), el("td", null, byId[e.run] ? runLink(e.run, e.ref) : e.ref)));
    });
    lb.appendChild(lbBody);
    root.appendChild(el("div", { "class": "table-wrap narrow" }, lb));
  }

  // -- one run ------------------------------------------------------------------------------------

  function kv(rows) {
    var t = el("table", { "class": "kv" });
    rows.forEach(function (r) { if (r) t.appendChild(el("tr", null, el("td", { text: r[0], title: r[0] }), el("td", null, r[1]))); });
    return t;
  }
  function renderRun(root) {
    var r = byId[Number(state.run)];
    if (!r) { root.appendChild(el("p", { "class": "error", text: "no run " + state.run + " on this board" })); return; }
    var waiting = needDetail(r.id), d = details[r.id] ? details[r.id].data : null;
    root.appendChild(el("h2", { id: "run-title" }, r.ref + "  ", statusBadge(r.status)));
    if (r.failure) root.appendChild(el("p", { "class": "error", text: r.failure }));
    if (r.files !== "ok") root.appendChild(el("p", { "class": "files", id: "run-files", text: {
      live: "in flight: its curves and log so far, from its sandbox (kjob board --watch keeps them coming)",
      none: "not fetched here yet (kjob fetch " + r.kernel + " --version " + r.version + " --output)",
      missing: "its fetched files were deleted: only what the ledger holds is shown",
      archived: "archived (kjob runs archive): its files are packed; kjob runs restore unpacks them",
      gone: "its kernel is gone and nothing was fetched" }[r.files] || r.files }));
    var grid = el("div", { "class": "run-grid" });
    var params = Object.keys(r.params || {}).sort().map(function (k) {
      return [k, el("span", { "class": "mono", text: fmt(r.params[k]) + (r.overrides && k in r.overrides ? "   (-p)" : "") })];
    });
    grid.appendChild(el("div", { "class": "card" }, el("h3", { text: "parameters" }), params.length ? kv(params) : el("p", { "class": "muted", text: "none" })));
    var metrics = Object.keys(r.metrics).sort().map(function (k) { return [k, el("span", { "class": "mono", text: fmt(r.metrics[k]) })]; });
    grid.appendChild(el("div", { "class": "card" }, el("h3", { text: "metrics" }), metrics.length ? kv(metrics) : el("p", { "class": "muted", text: "none recorded" })));
    var sources = d && d.sources && d.sources.length ? el("div", null, d.sources.map(function (s) {
      return el("div", { "class": "mono", text: s.path + "  " + s.sha256.slice(0, 12) });
    })) : el("span", { "class": "muted", text: d ? "not kept" : "" });
    grid.appendChild(el("div", { "class": "card" }, el("h3", { text: "provenance" }), kv([
      ["backend", r.backend], ["created", when(r.created, true)], ["started", when(r.started, true)], ["finished", when(r.finished, true)],
      ["duration", duration(r.duration)],
      ["notebook", el("span", null, el("span", { "class": "mono", text: r.notebook }),
        d && d.notebook ? [" ", el("a", { href: href(d.notebook), text: "open" })] : null)],
      d && d.recipe_sha256 ? ["recipe", el("span", { "class": "mono", text: d.recipe_sha256 })] : null,
      ["git commit", el("span", { "class": "mono", text: (r.commit || "-") + (r.dirty ? " (uncommitted changes)" : "") })],
      ["sources", sources],
      r.campaign ? ["campaign", r.campaign + (r.stage ? " / " + r.stage : "")] : null,
      r.folder ? ["files", el("a", { href: href(r.folder), text: r.folder })] : null
    ])));
    grid.appendChild(el("div", { "class": "card", id: "run-notes" }, el("h3", { text: "message, note and tags" }), kv([
      ["message", el("span", { "class": "note-text", text: r.message || "-" })],
      ["note", el("span", { "class": "note-text", text: r.note || "-" })],
      ["tags", r.tags.length ? r.tags.map(function (t) { return el("span", { "class": "tag", text: t }); }) : "-"]
    ])));
    grid.appendChild(lineageCard(r, d, waiting));
    var reports = r.reports.length ? r.reports.map(function (p) {
      return el("div", null, p.href ? el("a", { href: href(p.href), text: p.name }) : el("span", { text: p.name + " (no report.html)" }));
    }) : el("span", { "class": "muted", text: "no evaluation (kjob eval-local --run)" });
    var outputs = d ? (d.outputs.length ? d.outputs.map(function (o) {
      return el("div", null, el("a", { href: href(o.href), text: o.name }), el("span", { "class": "muted", text: "  " + size(o.size) }));
    }) : el("span", { "class": "muted", text: "no output files" })) : el("span", { "class": "muted", text: waiting ? "loading\u2026" : "not here" });
    grid.appendChild(el("div", { "class": "card" }, el("h3", { text: "outputs" }), outputs, el("h3", { text: "evaluation reports" }), reports));
    root.appendChild(grid);
    if (d && Object.keys(d.series).length) {
      var names = Object.keys(d.series).sort(), metric = state.metric && d.series[state.metric] ? state.metric : defaultMetric(names);
      var pick = el("select", { onchange: function () { go({ metric: pick.value }, true); } });
      names.forEach(function (n) { pick.appendChild(el("option", { value: n, selected: n === metric, text: n })); });
      root.appendChild(el("h3", null, "curve ", pick));
      var box = el("div", { "class": "chart-box", id: "run-curve" });
      root.appendChild(box);
      var pts = d.series[metric].map(function (p) { return [p[0], p[2]]; }).filter(function (p) { return isNum(p[0]) && isNum(p[1]); });
      lineChart(box, [{ id: r.id, label: r.ref, color: PALETTE[0], points: pts }], { width: 1300, height: 300, x: "step", y: metric });
    }
    root.appendChild(el("h3", { text: "log" + (d && d.log && d.log.cut ? " (its end)" : "") }));
    root.appendChild(el("pre", { "class": "log", id: "run-log", text: d && d.log ? d.log.lines.join("\n") : (waiting ? "loading\u2026" : "no log here") }));
  }
  // What the run was given (its inputs: each a run, where it was mounted, its files' SHA-256 as
  // the push recorded them) and the runs given its outputs; each run a link to its page.
  function lineageCard(r, d, waiting) {
    var card = el("div", { "class": "card", id: "run-lineage" }, el("h3", { text: "made from (inputs)" }));
    var inputs = r.inputs || [];
    if (!inputs.length) card.appendChild(el("p", { "class": "muted", text: "nothing: no inputs (kjob push --input)" }));
    inputs.forEach(function (i) {
      var files = d && d.inputs ? (d.inputs.filter(function (x) { return x.label === i.label; })[0] || {}).files : null;
      var item = el("div", { "class": "input", "data-input": i.label },
        i.run ? runLink(i.run, byId[i.run] ? byId[i.run].ref : i.label) : el("span", { text: i.label }),
        i.run ? [" ", statusBadge(byId[i.run].status)] : el("span", { "class": "muted", text: "  (not on this board)" }),
        i.mounts.length ? el("div", { "class": "muted mono", text: i.mounts.map(function (m) { return "/kaggle/input/" + m; }).join("  ") }) : null);
      if (files) {
        item.appendChild(kv(Object.keys(files).map(function (name) {
          return [name, el("span", { "class": "mono sha", title: "SHA-256 " + files[name], "data-sha256": files[name],
                                     text: files[name].slice(0, 16) + "\u2026" })];
        })));
      } else if (i.files) {
        item.appendChild(el("div", { "class": "muted", text: i.files + " file(s)" + (waiting ? ", loading\u2026" : "") }));
      }
      card.appendChild(item);
    });
    card.appendChild(el("h3", { text: "made into (runs given its outputs)" }));
    var made = r.made_into || [];
    if (!made.length) card.appendChild(el("p", { "class": "muted", text: "nothing yet" }));
    made.forEach(function (m) {
      card.appendChild(el("div", { "class": "made", "data-run": m.run },
        m.run ? runLink(m.run, m.ref) : el("span", { text: m.ref }), " ", statusBadge(m.status),
        m.run ? null : el("span", { "class": "muted", text: "  (not on this board)" })));
    });
    return card;
  }

  // -- drawing and refreshing ------------------------------------------------------------------

  var VIEWS = { runs: renderRuns, curves: renderCurves, campaigns: renderCampaigns, run: renderRun };

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
